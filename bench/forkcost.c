/*
 * bench/forkcost - fork() to the child's first byte back at the parent, and
 * fork to reaped, with MiB of memory touched; run with and without
 * librfork.so preloaded (bench/fork.sh) to see what the wrapper costs.
 *
 *	forkcost [-n iterations] [-m MiB] [label]
 */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include "bench.h"

static void
report(const char *label, const char *what, double *lat, int n)
{
	qsort(lat, n, sizeof(*lat), cmpd);
	printf("%-22s %-16s p50 %8.1f us  p99 %8.1f us\n", label, what,
	    lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6);
}

int
main(int argc, char *argv[])
{
	const char *errstr, *label;
	double *first, *reaped, t0;
	char *mem, c;
	int ch, i, n = 500, mib = 8, p[2], st;
	pid_t pid;

	while ((ch = getopt(argc, argv, "m:n:")) != -1) {
		switch (ch) {
		case 'm':
			mib = strtonum(optarg, 0, 4096, &errstr);
			if (errstr != NULL)
				errx(64, "-m %s: %s", optarg, errstr);
			break;
		case 'n':
			n = strtonum(optarg, 1, 1000000, &errstr);
			if (errstr != NULL)
				errx(64, "-n %s: %s", optarg, errstr);
			break;
		default:
			fprintf(stderr, "usage: forkcost [-n iterations] [-m MiB] [label]\n");
			exit(64);
		}
	}
	argc -= optind;
	argv += optind;
	label = argc > 0 ? argv[0] : "fork";
	if ((first = calloc(n, sizeof(double))) == NULL ||
	    (reaped = calloc(n, sizeof(double))) == NULL ||
	    (mem = malloc((size_t)mib << 20 | 1)) == NULL)
		err(71, "malloc");
	memset(mem, 1, (size_t)mib << 20);
	for (i = 0; i < n; i++) {
		if (pipe(p) == -1)
			err(71, "pipe");
		t0 = now();
		if ((pid = fork()) == -1)
			err(71, "fork");
		if (pid == 0) {
			(void)!write(p[1], "x", 1);
			_exit(0);
		}
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			errx(70, "no byte from the child");
		first[i] = now() - t0;
		if (waitpid(pid, &st, 0) != pid || st != 0)
			errx(70, "child status 0x%x", st);
		reaped[i] = now() - t0;
		close(p[0]);
	}
	report(label, "first byte", first, n);
	report(label, "reaped", reaped, n);
	return 0;
}
