/*
 * log.c - messages without stdio: strings built on the stack, one line
 * written to stderr with one write(2), so lines of concurrent processes do
 * not mix.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include "rfork.h"

void
rfp_catn(struct rfp_str *b, const char *s, size_t n)
{
	if (n > sizeof(b->s) - 1 - b->n)
		n = sizeof(b->s) - 1 - b->n;
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
}

void
rfp_cat(struct rfp_str *b, const char *s)
{
	rfp_catn(b, s, strlen(s));
}

void
rfp_num(struct rfp_str *b, unsigned long v)
{
	char d[24];
	size_t i = sizeof(d);

	do {
		d[--i] = '0' + v % 10;
		v /= 10;
	} while (v != 0);
	rfp_catn(b, d + i, sizeof(d) - i);
}

void
rfp_log(const char *s, ...)
{
	char line[RFP_WHY + 160];
	struct rfp_str head = { .n = 0 };
	size_t n, l;
	va_list ap;

	rfp_cat(&head, "rfork: pid ");
	rfp_num(&head, (unsigned long)syscall(SYS_getpid));
	rfp_cat(&head, ": ");
	memcpy(line, head.s, head.n);
	n = head.n;
	va_start(ap, s);
	for (; s != NULL; s = va_arg(ap, const char *)) {
		l = strlen(s);
		if (l > sizeof(line) - 1 - n)
			l = sizeof(line) - 1 - n;
		memcpy(line + n, s, l);
		n += l;
	}
	va_end(ap);
	line[n++] = '\n';
	(void)rfp_write(STDERR_FILENO, line, n);
}
