/* victim.h - how the victims here report: one write(2) per line, so that
 * lines of processes sharing a stdout never mix; "BAD what" and exit 1. */
#ifndef RF_VICTIM_H
#define RF_VICTIM_H

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static void
say(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	if (write(1, buf, n) != n)
		_exit(99);
}

static void __attribute__((noreturn, unused))
bad(const char *fmt, ...)
{
	char buf[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say("BAD %s (pid %d)\n", buf, getpid());
	_exit(1);
}

#endif
