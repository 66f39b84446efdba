/*
 * bench/fwd - what a forwarded system call costs, beside a raw ping-pong on
 * the same kind of link in the same run (docs/FORK.md "Cost").
 *
 *	fwd [-n iterations] [-m MiB]
 *
 * The remote child is this program again (-C), run under the proxy on this
 * host (lib/fwdlocal.c), with its fds held by rf-stub: a 1-byte write to a
 * home /dev/null is one full round trip child -> proxy -> stub -> proxy ->
 * child.  getpid in the child runs under the seccomp filter, natively.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include "rf_fwd.h"
#include "bench.h"

#define CHUNK (64 << 10)

/* One line: p50, p99 and mean of n latencies in seconds, as microseconds. */
static void
report(FILE *f, const char *what, double *lat, int n)
{
	double sum = 0;
	int i;

	for (i = 0; i < n; i++)
		sum += lat[i];
	qsort(lat, n, sizeof(*lat), cmpd);
	fprintf(f, "%-34s p50 %7.2f us  p99 %7.2f us  mean %7.2f us\n", what,
	    lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6, sum / n * 1e6);
}

/* The child's side: results go to its stdout, which is at home. */
static int
child(const char *mode, int n, int mib)
{
	double *lat, t0, t1;
	char *buf;
	int i, fd;
	long left;

	if ((lat = calloc(n, sizeof(*lat))) == NULL || (buf = calloc(1, CHUNK)) == NULL)
		return 1;
	if (strcmp(mode, "write") == 0) {
		for (i = 0; i < n; i++) {
			t0 = now();
			if (write(3, "x", 1) != 1)
				err(1, "write");
			lat[i] = now() - t0;
		}
		report(stdout, "forwarded 1-byte write", lat, n);
	} else if (strcmp(mode, "local") == 0) {
		if ((fd = open("/dev/null", O_WRONLY)) == -1)
			err(1, "/dev/null");
		for (i = 0; i < n; i++) {
			t0 = now();
			if (write(fd, "x", 1) != 1)
				err(1, "write");
			lat[i] = now() - t0;
		}
		report(stdout, "local-fd write (notify, continue)", lat, n);
	} else if (strcmp(mode, "getpid") == 0) {
		t0 = now();
		for (i = 0; i < n * 100; i++)
			syscall(SYS_getpid);
		t1 = now();
		printf("%-34s %7.3f us\n", "getpid in the child", (t1 - t0) / (n * 100.0) * 1e6);
	} else if (strcmp(mode, "bulk") == 0) {
		t0 = now();
		for (left = (long)mib << 20; left > 0; left -= CHUNK)
			if (write(4, buf, CHUNK) != CHUNK)
				err(1, "bulk write");
		t1 = now();
		printf("%-34s %7.1f MiB/s\n", "forwarded 64 KiB writes to a pipe", mib / (t1 - t0));
	}
	return 0;
}

/* A 1-byte ping-pong with an echo process. */
static void
pingpong(const char *what, int tcp, int n)
{
	double *lat = calloc(n, sizeof(double)), t0;
	int sv[2], i;
	pid_t pid;
	char b = 'x';

	if (lat == NULL || (tcp ? rf_fwdlocal_tcp_pair(sv) : socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) == -1)
		err(1, "%s", what);
	if ((pid = fork()) == 0) {
		close(sv[0]);
		while (read(sv[1], &b, 1) == 1)
			if (write(sv[1], &b, 1) != 1)
				break;
		_exit(0);
	}
	close(sv[1]);
	for (i = 0; i < n; i++) {
		t0 = now();
		if (write(sv[0], &b, 1) != 1 || read(sv[0], &b, 1) != 1)
			err(1, "%s", what);
		lat[i] = now() - t0;
	}
	close(sv[0]);
	waitpid(pid, NULL, 0);
	report(stdout, what, lat, n);
	free(lat);
}

/* Raw bulk: 64 KiB writes over loopback TCP to a reader that drops them. */
static void
raw_bulk(int mib)
{
	char *buf = calloc(1, CHUNK);
	double t0, t1;
	int sv[2];
	long left;
	pid_t pid;

	if (buf == NULL || rf_fwdlocal_tcp_pair(sv) == -1)
		err(1, "raw bulk");
	if ((pid = fork()) == 0) {
		close(sv[0]);
		while (read(sv[1], buf, CHUNK) > 0)
			;
		_exit(0);
	}
	close(sv[1]);
	t0 = now();
	for (left = (long)mib << 20; left > 0; left -= CHUNK)
		if (rf_writen(sv[0], buf, CHUNK) == -1)
			err(1, "raw bulk");
	close(sv[0]);
	waitpid(pid, NULL, 0);
	t1 = now();
	printf("%-34s %7.1f MiB/s\n", "raw TCP 64 KiB writes", mib / (t1 - t0));
	free(buf);
}

static void
remote(const char *self, const char *stub, const char *mode, int n, int mib, int flags)
{
	struct rf_fwdlocal l;
	struct rf_err e;
	char sn[16], sm[16];
	char *argv[] = { (char *)self, "-C", (char *)mode, sn, sm, NULL };
	int st;

	snprintf(sn, sizeof(sn), "%d", n);
	snprintf(sm, sizeof(sm), "%d", mib);
	fflush(stdout);
	if (rf_fwdlocal_spawn(argv, stub, flags, &l, &e) == -1)
		errx(e.code, "%s", e.msg);
	waitpid(l.stub, &st, 0);
	waitpid(l.tree, NULL, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		errx(1, "%s: child status %#x", mode, st);
}

static void
usage(void)
{
	fprintf(stderr, "usage: fwd [-n iterations] [-m MiB]\n");
	exit(RF_EX_USAGE);
}

int
main(int argc, char *argv[])
{
	char self[PATH_MAX], stub[PATH_MAX + 32];
	const char *errstr;
	int ch, n = 20000, mib = 256, p[2], nul, fd[3];
	double t0;
	ssize_t k;
	pid_t rd;

	if (argc == 5 && strcmp(argv[1], "-C") == 0)
		return child(argv[2], atoi(argv[3]), atoi(argv[4]));
	while ((ch = getopt(argc, argv, "hm:n:")) != -1) {
		switch (ch) {
		case 'm':
			mib = strtonum(optarg, 1, 1 << 16, &errstr);
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-m %s: %s", optarg, errstr);
			break;
		case 'n':
			n = strtonum(optarg, 100, 10000000, &errstr);
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-n %s: %s", optarg, errstr);
			break;
		default:
			usage();
		}
	}
	if ((k = readlink("/proc/self/exe", self, sizeof(self) - 1)) == -1)
		err(1, "/proc/self/exe");
	self[k] = '\0';
	snprintf(stub, sizeof(stub), "%s/../bin/rf-stub", dirname(strdup(self)));

	/* fd 3: a home /dev/null; fd 4: a home pipe, drained by a reader. */
	if ((fd[0] = open("/dev/null", O_WRONLY)) == -1 || pipe(p) == -1 ||
	    (nul = fcntl(fd[0], F_DUPFD, 10)) == -1 || (fd[1] = fcntl(p[0], F_DUPFD, 10)) == -1 ||
	    (fd[2] = fcntl(p[1], F_DUPFD, 10)) == -1)
		err(1, "setup");
	close(fd[0]);
	close(p[0]);
	close(p[1]);
	p[0] = fd[1];
	p[1] = fd[2];
	if (dup2(nul, 3) == -1 || dup2(p[1], 4) == -1)
		err(1, "setup");
	close(nul);
	close(p[1]);
	if ((rd = fork()) == 0) {
		char *b = malloc(CHUNK);
		close(4);
		while (read(p[0], b, CHUNK) > 0)
			;
		_exit(0);
	}
	close(p[0]);

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# %d round trips each; child = %s -C under the proxy\n", n, self);
	pingpong("raw ping-pong, AF_UNIX", 0, n);
	remote(self, stub, "write", n, mib, 0);
	pingpong("raw ping-pong, loopback TCP", 1, n);
	remote(self, stub, "write", n, mib, RF_FWDLOCAL_TCP);
	remote(self, stub, "local", n, mib, 0);
	t0 = now();
	for (ch = 0; ch < n * 100; ch++)
		syscall(SYS_getpid);
	printf("%-34s %7.3f us\n", "getpid here", (now() - t0) / (n * 100.0) * 1e6);
	remote(self, stub, "getpid", n, mib, 0);
	raw_bulk(mib);
	remote(self, stub, "bulk", n, mib, RF_FWDLOCAL_TCP);
	close(4);
	waitpid(rd, NULL, 0);
	return 0;
}
