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

/*
 * For the stand-ins of rf-stub (fakestub, stubdial): "-K fd" means S
 * exec'd us before the answer (librfork's early stub).  Read it as rf-stub
 * does: "local" -> say "l", return -1 (end unseen); "stub HOST TOKEN" ->
 * say "g", close fd, and rewrite argv as the late start would have had it
 * ("... -- HOST TOKEN" in place of "-K fd").  0 if there was no -K.
 */
#include <stdlib.h>
#include <string.h>

static int __attribute__((unused))
stub_verdict(int *argc, char ***argvp)
{
	static char line[1024], *host, *token, *nargv[64];
	char **argv = *argvp;
	size_t n = 0;
	int i, j, fd = -1;

	for (i = 1; i < *argc - 1; i++)
		if (strcmp(argv[i], "-K") == 0)
			fd = atoi(argv[i + 1]);
	if (fd < 0)
		return 0;
	while (n < sizeof(line) - 1 && read(fd, line + n, 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	if (strncmp(line, "stub ", 5) != 0 || (token = strchr(line + 5, ' ')) == NULL) {
		(void)!write(fd, "l", 1);
		return -1;
	}
	*token++ = '\0';
	token[strcspn(token, " ")] = '\0';
	host = line + 5;
	(void)!write(fd, "g", 1);
	close(fd);
	for (i = j = 0; i < *argc && j < 60; i++) {
		if (strcmp(argv[i], "-K") == 0) {
			i++;
			continue;
		}
		nargv[j++] = argv[i];
	}
	nargv[j++] = "--";
	nargv[j++] = host;
	nargv[j++] = token;
	nargv[j] = NULL;
	*argc = j;
	*argvp = nargv;
	return 1;
}

#endif
