/*
 * snapfork [-n rounds] [-m MiB] RF-SNAP... - rf-snap on a fork's child, as a
 * remote fork runs it: this program touches MiB MiB (default 8) and forks;
 * the child stops itself while `RF-SNAP -zl -w 3 PID` starts beside it, its
 * image into a pipe read here.  Several rf-snap builds take turns, the order
 * flipped each round (the machine is noisy).  For each, in ms: median and
 * min from the spawn to the image's first record header (after the
 * metadata is made), and to the end of the image.  Not run by bench/run.
 */
#include <err.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include "bench.h"

extern char **environ;

/* One rf-snap of a fresh child: seconds to the first 64 bytes and to EOF. */
static void
one(const char *snap, char *mem, size_t len, double *first, double *all)
{
	posix_spawn_file_actions_t fa;
	char pidstr[16], buf[1 << 16];
	char *argv[] = { (char *)snap, "-zl", "-w", "3", pidstr, NULL };
	size_t got = 0;
	double t0;
	ssize_t n;
	pid_t c, sp;
	int p[2], st;

	if ((c = fork()) == -1)
		err(71, "fork");
	if (c == 0) {
		raise(SIGSTOP);
		_exit(mem[len - 1] == 1 ? 0 : 1);
	}
	snprintf(pidstr, sizeof(pidstr), "%d", (int)c);
	if (pipe2(p, O_CLOEXEC) == -1)
		err(71, "pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	t0 = now();
	if (posix_spawn(&sp, snap, &fa, NULL, argv, environ) != 0)
		err(71, "spawn %s", snap);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	*first = 0;
	while ((n = read(p[0], buf, sizeof(buf))) > 0) {
		got += n;
		if (*first == 0 && got >= 64)
			*first = now() - t0;
	}
	*all = now() - t0;
	close(p[0]);
	if (waitpid(sp, &st, 0) == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		errx(70, "%s failed (status %#x)", snap, st);
	kill(c, SIGKILL);
	while (waitpid(c, &st, 0) == -1)
		;
}

int
main(int argc, char *argv[])
{
	double *first, *all, f, a;
	const char *errstr;
	size_t len;
	char *mem;
	int ch, n = 30, mib = 8, i, k, m, b;

	while ((ch = getopt(argc, argv, "m:n:")) != -1) {
		switch (ch) {
		case 'm':
			mib = strtonum(optarg, 1, 4096, &errstr);
			if (errstr != NULL)
				errx(64, "-m %s: %s", optarg, errstr);
			break;
		case 'n':
			n = strtonum(optarg, 1, 100000, &errstr);
			if (errstr != NULL)
				errx(64, "-n %s: %s", optarg, errstr);
			break;
		default:
			goto usage;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		goto usage;
	len = (size_t)mib << 20;
	if ((mem = malloc(len)) == NULL || (first = calloc((size_t)n * argc, sizeof(*first))) == NULL ||
	    (all = calloc((size_t)n * argc, sizeof(*all))) == NULL)
		err(71, "malloc");
	memset(mem, 1, len);
	for (i = 0; i < n; i++) {
		for (k = 0; k < argc; k++) {
			b = i % 2 ? argc - 1 - k : k;
			one(argv[b], mem, len, &f, &a);
			first[b * n + i] = f;
			all[b * n + i] = a;
		}
	}
	printf("%d rounds, %d MiB touched; ms, median (min): spawn to the first record"
	    " header, to the image's end\n", n, mib);
	for (b = 0; b < argc; b++) {
		qsort(first + b * n, n, sizeof(*first), cmpd);
		qsort(all + b * n, n, sizeof(*all), cmpd);
		m = b * n + n / 2;
		printf("%-50s %6.3f (%6.3f)  %6.3f (%6.3f)\n", argv[b], first[m] * 1e3,
		    first[b * n] * 1e3, all[m] * 1e3, all[b * n] * 1e3);
	}
	return 0;
usage:
	fprintf(stderr, "usage: snapfork [-n rounds] [-m MiB] rf-snap...\n");
	return 64;
}
