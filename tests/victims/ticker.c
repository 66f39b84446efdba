/*
 * ticker [N] - demo and test victim: every 50 ms write "tick I pid P host H" to
 * stdout with write(2), N ticks (default 100), then "done SUM" where SUM is
 * the sum of all tick numbers kept in a heap counter, so a restored copy that
 * lost or repeated state prints a wrong sum.  It checks nothing itself; the
 * reader of its output sees ticks continue across a move with a new pid and
 * host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

int
main(int argc, char *argv[])
{
	int n = argc > 1 ? atoi(argv[1]) : 100, i;
	long *sum = calloc(1, sizeof(*sum));
	char host[64], line[160];
	struct timespec ts = { 0, 50 * 1000000 };

	for (i = 1; i <= n; i++) {
		gethostname(host, sizeof(host));
		*sum += i;
		int len = snprintf(line, sizeof(line), "tick %d pid %d host %s\n", i, getpid(), host);
		write(1, line, len);
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
		ts.tv_nsec = 50 * 1000000;
	}
	int len = snprintf(line, sizeof(line), "done %ld\n", *sum);
	write(1, line, len);
	return 0;
}
