/*
 * bench/rforkrun - the program bench/rfork.sh runs under rf-run: its fork()
 * children are remote with RFORK_POLICY=all, local with none.
 *
 *	rforkrun fork [-n forks] [-m MiB] [-r] [-a]
 *						fork to the child's first byte back
 *						(-r: the MiB random, which no
 *						compression shrinks; else one byte;
 *						-a: the child reads a word of each
 *						page of the MiB before its byte)
 *						(and to fork's return in the parent)
 *	rforkrun rtt [-n trips]			1-byte writes and echoes, child to home
 *	rforkrun bulk [-m MiB] [-o off]		64 KiB writes from the child into a home pipe
 *						(-o: from byte off of a page)
 *	rforkrun getpid [-n calls]		getpid here, then in the child
 *
 * One line per figure on stdout: a key, then numbers (microseconds, MiB/s,
 * or ns), for the script to read.  The child's own lines reach stdout
 * through its stub, so it flushes before it exits.
 */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include "bench.h"

#define CHUNK (64 << 10)

/* KEY p50 p99 mean min, in microseconds. */
static void
report(const char *key, double *lat, int n)
{
	double sum = 0;
	int i;

	for (i = 0; i < n; i++)
		sum += lat[i];
	qsort(lat, n, sizeof(*lat), cmpd);
	printf("%s %.1f %.1f %.1f %.1f\n", key, lat[n / 2] * 1e6,
	    lat[(n * 99 + 99) / 100 - 1] * 1e6, sum / n * 1e6, lat[0] * 1e6);
}

static void
reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		err(70, "waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		errx(70, "child status %#x", st);
}

static void
forks(int n, int mib, int rnd, int all)
{
	double *lat, *ret, t0;
	char *mem, c;
	int i, p[2];
	pid_t pid;

	if ((lat = calloc(n, sizeof(*lat))) == NULL ||
	    (ret = calloc(n, sizeof(*ret))) == NULL ||
	    (mem = malloc(((size_t)mib << 20) + 1)) == NULL)
		err(71, "malloc");
	memset(mem, 1, (size_t)mib << 20);
	if (rnd) {
		uint64_t *w = (uint64_t *)(void *)mem, z;
		size_t k;

		for (k = 0; k < ((size_t)mib << 20) / 8; k++) {	/* splitmix64 */
			z = (k + 1) * 0x9e3779b97f4a7c15ull;
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
			w[k] = z ^ (z >> 31);
		}
	}
	for (i = 0; i < n; i++) {
		if (pipe(p) == -1)
			err(71, "pipe");
		t0 = now();
		if ((pid = fork()) == -1)
			err(71, "fork");
		if (pid == 0) {
			if (all) {
				volatile char *v = mem;
				size_t k;
				char x = 0;

				for (k = 0; k < (size_t)mib << 20; k += 4096)
					x ^= v[k];
				(void)x;
			}
			(void)!write(p[1], "x", 1);
			_exit(0);
		}
		ret[i] = now() - t0;
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			errx(70, "no byte from the child");
		lat[i] = now() - t0;
		close(p[0]);
		reap(pid);
		/* RFORKRUN_EACH: every fork's times, to see the outliers */
		if (getenv("RFORKRUN_EACH") != NULL)
			fprintf(stderr, "fork %d: %.1f us, fork() returned after %.1f us\n", i,
			    lat[i] * 1e6, ret[i] * 1e6);
	}
	report("fork", lat, n);
	report("forkret", ret, n);
}

/*
 * The child: n 1-byte writes that the parent drains, then n trips of one
 * byte out and one back.  Timed in the child, where the calls are made.
 */
static void
rtt(int n)
{
	double *lat;
	char b = 'x', buf[4096];
	int i, sv[2];
	long got;
	ssize_t k;
	pid_t pid;

	if ((lat = calloc(n, sizeof(*lat))) == NULL)
		err(71, "malloc");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		err(71, "socketpair");
	fflush(stdout);
	if ((pid = fork()) == -1)
		err(71, "fork");
	if (pid == 0) {
		double t0;

		close(sv[0]);
		for (i = 0; i < n; i++) {
			t0 = now();
			if (write(sv[1], &b, 1) != 1)
				err(1, "write");
			lat[i] = now() - t0;
		}
		report("write", lat, n);
		for (i = 0; i < n; i++) {
			t0 = now();
			if (write(sv[1], &b, 1) != 1 || read(sv[1], &b, 1) != 1)
				err(1, "echo");
			lat[i] = now() - t0;
		}
		report("echo", lat, n);
		fflush(stdout);
		_exit(0);
	}
	close(sv[1]);
	/* Never past the n bytes: the next one is the first echo's. */
	for (got = 0; got < n; got += k)
		if ((k = read(sv[0], buf, n - got < (long)sizeof(buf) ? n - got : (long)sizeof(buf))) <= 0)
			errx(70, "writes: short");
	for (i = 0; i < n; i++)
		if (read(sv[0], &b, 1) != 1 || write(sv[0], &b, 1) != 1)
			errx(70, "echo: short");
	close(sv[0]);
	reap(pid);
}

/* From the first byte read to the last, as rawtcp's bulk receiver does. */
static void
bulk(int mib, int off)
{
	double t0 = 0;
	char *buf, *wbuf;
	long left, total = (long)mib << 20;
	ssize_t k;
	int p[2];
	pid_t pid;

	if ((buf = calloc(1, CHUNK)) == NULL)
		err(71, "malloc");
	wbuf = buf;
	if (off >= 0) {
		if ((wbuf = aligned_alloc(4096, CHUNK + 4096)) == NULL)
			err(71, "malloc");
		wbuf += off;
		memset(wbuf, 0, CHUNK);
	}
	if (pipe(p) == -1)
		err(71, "pipe");
	fflush(stdout);
	if ((pid = fork()) == -1)
		err(71, "fork");
	if (pid == 0) {
		close(p[0]);
		for (left = total; left > 0; left -= CHUNK)
			if (write(p[1], wbuf, CHUNK) != CHUNK)
				err(1, "bulk write");
		_exit(0);
	}
	close(p[1]);
	for (left = total; left > 0; left -= k) {
		if ((k = read(p[0], buf, CHUNK)) <= 0)
			errx(70, "bulk: short by %ld bytes", left);
		if (t0 == 0)
			t0 = now();
	}
	printf("bulk %.1f\n", mib / (now() - t0));
	close(p[0]);
	reap(pid);
}

static double
getpids(long n)
{
	double t0 = now();
	long i;

	for (i = 0; i < n; i++)
		syscall(SYS_getpid);
	return (now() - t0) / n * 1e9;
}

static void
getpid_both(long n)
{
	pid_t pid;

	printf("getpid-here %.1f\n", getpids(n));
	fflush(stdout);
	if ((pid = fork()) == -1)
		err(71, "fork");
	if (pid == 0) {
		printf("getpid-child %.1f\n", getpids(n));
		fflush(stdout);
		_exit(0);
	}
	reap(pid);
}

static void
usage(void)
{
	fprintf(stderr, "usage: rforkrun fork | rtt | bulk | getpid [-n count] [-m MiB] [-o off] "
	    "[-r] [-a]\n");
	exit(64);
}

int
main(int argc, char *argv[])
{
	const char *errstr, *mode;
	int ch, mib = -1, rnd = 0, all = 0, off = -1;
	long n = -1;

	if (argc < 2)
		usage();
	mode = argv[1];
	argc--;
	argv++;
	while ((ch = getopt(argc, argv, "am:n:o:r")) != -1) {
		switch (ch) {
		case 'r':
			rnd = 1;
			break;
		case 'a':
			all = 1;
			break;
		case 'm':
			mib = strtonum(optarg, 0, 4096, &errstr);
			if (errstr != NULL)
				errx(64, "-m %s: %s", optarg, errstr);
			break;
		case 'n':
			n = strtonum(optarg, 1, 100000000, &errstr);
			if (errstr != NULL)
				errx(64, "-n %s: %s", optarg, errstr);
			break;
		case 'o':
			off = strtonum(optarg, 0, 4095, &errstr);
			if (errstr != NULL)
				errx(64, "-o %s: %s", optarg, errstr);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	if (argc != 0)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "fork") == 0)
		forks(n > 0 ? n : 100, mib >= 0 ? mib : 8, rnd, all);
	else if (strcmp(mode, "rtt") == 0)
		rtt(n > 0 ? n : 5000);
	else if (strcmp(mode, "bulk") == 0)
		bulk(mib > 0 ? mib : 256, off);
	else if (strcmp(mode, "getpid") == 0)
		getpid_both(n > 0 ? n : 1000000);
	else
		usage();
	return 0;
}
