/*
 * fwdpost - write-behind (posted writes) as a remote child sees it, run
 * under rf-run: the parent makes a pipe and forks; the child writes into it.
 * One line per check on stdout ("BAD what" and exit 1 on a failure):
 *
 *	fwdpost bulk MIB	the child writes MIB MiB (odd sizes, writev too)
 *				and exits at once; the parent finds the child
 *				not yet ended while data waits, then every byte
 *				in order (checksum), EOF, exit status 0
 *	fwdpost kill N		N rounds: the child writes 1000 bytes and kills
 *				the parent (SIGUSR1), whose handler finds them
 *				in the pipe (non-blocking read)
 *	fwdpost epipe ign|dfl	the reader closes; the child writes once (posted:
 *				it succeeds, or EPIPE when not posted), makes a
 *				synchronous call (fstat), and writes again: EPIPE
 *				(SIGPIPE ignored) or death by SIGPIPE
 *	fwdpost epipeloop	the reader closes; the child writes 64 KiB until
 *				it fails: SIGPIPE, with few writes late
 *	fwdpost closepoll	the child fills the pipe (64 KiB, posted): poll
 *				says it is not writable; it writes 1 MiB more,
 *				closes the fd and waits: the parent reads every
 *				byte, then EOF, while the child still runs
 *	fwdpost nonblock before|later|child
 *				the write end is O_NONBLOCK (set by the parent
 *				before the fork, by the parent after the child's
 *				first write, by the child): the child fills the
 *				pipe with 4 KiB writes, EAGAIN exactly when full
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "victim.h"

static uint64_t
gen(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void
fill(unsigned char *b, size_t n, uint64_t *x)
{
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = gen(x) >> 56;
}

static void
status(pid_t pid, const char *what)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		bad("%s: waitpid: %s", what, strerror(errno));
	if (WIFSIGNALED(st))
		say("%s: child killed by %d\n", what, WTERMSIG(st));
	else
		say("%s: child exit %d\n", what, WEXITSTATUS(st));
}

static void
bulk(long mib)
{
	static unsigned char buf[200000], want[200000];
	size_t total = (size_t)mib << 20, done = 0, n;
	uint64_t x = 88172645463325252ULL;
	struct iovec iov[3];
	ssize_t k;
	int p[2], st, i = 0;
	pid_t pid;

	if (pipe(p) == -1)
		bad("pipe");
	if ((pid = fork()) == -1)
		bad("fork");
	if (pid == 0) {
		close(p[0]);
		while (done < total) {
			/* sizes that do not line up with pages or pieces */
			n = (size_t[]){ 65536, 1, 4097, 131072 + 3, 77 }[i++ % 5];
			if (n > total - done)
				n = total - done;
			fill(buf, n, &x);
			if (i % 3 == 0 && n > 2) {
				iov[0] = (struct iovec){ buf, 1 };
				iov[1] = (struct iovec){ buf + 1, n / 2 };
				iov[2] = (struct iovec){ buf + 1 + n / 2, n - 1 - n / 2 };
				k = writev(p[1], iov, 3);
			} else
				k = write(p[1], buf, n);
			if (k != (ssize_t)n)
				bad("child: write %zu: %zd", n, k);
			done += n;
		}
		_exit(0);
	}
	close(p[1]);
	/* The child is done at once, but its bytes are not all in: no status. */
	usleep(300000);
	if (waitpid(pid, &st, WNOHANG) != 0)
		bad("child ended while its data waited");
	while (done < total) {
		if ((k = read(p[0], buf, sizeof(buf))) <= 0)
			bad("EOF after %zu of %zu bytes", done, total);
		fill(want, k, &x);
		if (memcmp(buf, want, k) != 0)
			bad("bytes differ near %zu", done);
		done += k;
	}
	if ((k = read(p[0], buf, 1)) != 0)
		bad("no EOF after the data (%zd)", k);
	say("bulk: %zu bytes in order, then EOF\n", done);
	status(pid, "bulk");
}

static int kfd;
static volatile sig_atomic_t kgot, klen;

static void
on_usr1(int sig)
{
	char b[2000];
	ssize_t k = read(kfd, b, sizeof(b));

	(void)sig;
	klen = k;
	kgot = 1;
}

static void
killorder(int rounds)
{
	char msg[1000], b;
	int p[2], q[2], i;
	sigset_t block, old;
	pid_t pid;

	memset(msg, 'k', sizeof(msg));
	if (pipe(p) == -1 || pipe(q) == -1)
		bad("pipe");
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	signal(SIGUSR1, on_usr1);
	if ((pid = fork()) == -1)
		bad("fork");
	if (pid == 0) {
		close(p[0]);
		close(q[1]);
		for (i = 0; i < rounds; i++) {
			if (write(p[1], msg, sizeof(msg)) != sizeof(msg))
				bad("child: write");
			kill(getppid(), SIGUSR1);
			if (read(q[0], &b, 1) != 1)
				_exit(2);
		}
		_exit(0);
	}
	close(p[1]);
	close(q[0]);
	kfd = p[0];
	fcntl(kfd, F_SETFL, O_NONBLOCK);
	for (i = 0; i < rounds; i++) {
		while (!kgot)
			sigsuspend(&old);
		kgot = 0;
		if (klen != sizeof(msg))
			bad("round %d: the handler found %d bytes, not %zu", i, (int)klen, sizeof(msg));
		if (write(q[1], "g", 1) != 1)
			bad("write");
	}
	say("kill: %d rounds, the data was there each time\n", rounds);
	status(pid, "kill");
}

/* The parent: the child's first byte, then the reader goes, then "go". */
static void
reader_leaves(int p[2], int q[2])
{
	char b;

	close(p[1]);
	close(q[0]);
	if (read(p[0], &b, 1) != 1)
		bad("no first byte");
	close(p[0]);
	if (write(q[1], "g", 1) != 1)
		bad("write go");
}

static void
epipe(int ign)
{
	struct stat st;
	char b;
	int p[2], q[2];
	ssize_t k;
	pid_t pid;

	if (pipe(p) == -1 || pipe(q) == -1)
		bad("pipe");
	if ((pid = fork()) == -1)
		bad("fork");
	if (pid == 0) {
		close(p[0]);
		close(q[1]);
		if (ign)
			signal(SIGPIPE, SIG_IGN);
		if (write(p[1], "a", 1) != 1)
			bad("child: first write");
		if (read(q[0], &b, 1) != 1)
			bad("child: no go");
		/* the reader is gone now */
		k = write(p[1], "b", 1);
		say("epipe: write1 %zd %s\n", k, k < 0 ? strerror(errno) : "");
		fstat(p[1], &st);
		k = write(p[1], "c", 1);
		say("epipe: write2 %zd %s\n", k, k < 0 ? strerror(errno) : "");
		_exit(0);
	}
	reader_leaves(p, q);
	status(pid, "epipe");
}

static void
epipeloop(void)
{
	static char buf[65536];
	char b;
	int p[2], q[2], n;
	pid_t pid;

	if (pipe(p) == -1 || pipe(q) == -1)
		bad("pipe");
	if ((pid = fork()) == -1)
		bad("fork");
	if (pid == 0) {
		close(p[0]);
		close(q[1]);
		if (write(p[1], "a", 1) != 1)
			bad("child: first write");
		if (read(q[0], &b, 1) != 1)
			bad("child: no go");
		for (n = 0; n < 100000; n++) {
			if (write(p[1], buf, sizeof(buf)) != sizeof(buf))
				bad("write failed without SIGPIPE after %d", n);
			if (n % 8 == 7)
				say("epipeloop: %d late\n", n + 1);
		}
		bad("no SIGPIPE");
	}
	reader_leaves(p, q);
	status(pid, "epipeloop");
}

static void
closepoll(void)
{
	static char buf[1 << 20];
	struct pollfd pf;
	size_t done = 0;
	ssize_t k;
	int p[2], q[2], r[2], st;
	char b;
	pid_t pid;

	if (pipe(p) == -1 || pipe(q) == -1 || pipe(r) == -1)
		bad("pipe");
	if ((pid = fork()) == -1)
		bad("fork");
	if (pid == 0) {
		close(p[0]);
		close(q[1]);
		close(r[0]);
		if (write(p[1], buf, fcntl(p[1], F_GETPIPE_SZ)) != 65536)
			bad("child: fill");
		pf.fd = p[1];
		pf.events = POLLOUT;
		k = poll(&pf, 1, 0);
		say("closepoll: poll on the full pipe: %zd %#x\n", k, k > 0 ? pf.revents : 0);
		if (write(r[1], "r", 1) != 1)
			bad("child: write ready");
		if (write(p[1], buf, sizeof(buf)) != sizeof(buf))
			bad("child: write");
		close(p[1]);
		/* until the parent has seen EOF */
		if (read(q[0], &b, 1) != 1)
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	close(q[0]);
	close(r[1]);
	/* not a byte read before the child's poll */
	if (read(r[0], &b, 1) != 1)
		bad("no ready");
	while ((k = read(p[0], buf, sizeof(buf))) > 0)
		done += k;
	if (k < 0)
		bad("read: %s", strerror(errno));
	if (waitpid(pid, &st, WNOHANG) != 0)
		bad("child ended before EOF");
	say("closepoll: %zu bytes, then EOF, the child still running\n", done);
	if (write(q[1], "g", 1) != 1)
		bad("write go");
	status(pid, "closepoll");
}

static void
nonblock(const char *when)
{
	static char buf[4096];
	long total = 0, sz;
	ssize_t k;
	char b;
	int p[2], q[2];
	pid_t pid;

	if (pipe(p) == -1 || pipe(q) == -1)
		bad("pipe");
	if (strcmp(when, "before") == 0)
		fcntl(p[1], F_SETFL, O_NONBLOCK);
	if ((pid = fork()) == -1)
		bad("fork");
	if (pid == 0) {
		close(p[0]);
		close(q[1]);
		if (strcmp(when, "before") != 0) {
			if (write(p[1], buf, sizeof(buf)) != sizeof(buf))
				bad("child: first write");
			total = sizeof(buf);
		}
		if (strcmp(when, "later") == 0 && read(q[0], &b, 1) != 1)
			bad("child: no go");
		if (strcmp(when, "child") == 0)
			fcntl(p[1], F_SETFL, O_NONBLOCK);
		sz = fcntl(p[1], F_GETPIPE_SZ);
		while ((k = write(p[1], buf, sizeof(buf))) == sizeof(buf))
			if ((total += k) > 4 * sz)
				bad("never full");
		say("nonblock %s: %ld of %ld bytes, then %s\n", when, total, sz,
		    k < 0 ? strerror(errno) : "a short write");
		_exit(0);
	}
	close(q[0]);
	if (strcmp(when, "later") == 0) {
		/* the same open file as the child's: shared, as after fork */
		fcntl(p[1], F_SETFL, O_NONBLOCK);
		if (write(q[1], "g", 1) != 1)
			bad("write go");
	}
	close(p[1]);
	status(pid, "nonblock");
}

int
main(int argc, char *argv[])
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc == 3 && strcmp(argv[1], "bulk") == 0)
		bulk(atol(argv[2]));
	else if (argc == 3 && strcmp(argv[1], "kill") == 0)
		killorder(atoi(argv[2]));
	else if (argc == 3 && strcmp(argv[1], "epipe") == 0)
		epipe(strcmp(argv[2], "ign") == 0);
	else if (argc == 2 && strcmp(argv[1], "epipeloop") == 0)
		epipeloop();
	else if (argc == 2 && strcmp(argv[1], "closepoll") == 0)
		closepoll();
	else if (argc == 3 && strcmp(argv[1], "nonblock") == 0)
		nonblock(argv[2]);
	else {
		fprintf(stderr, "usage: fwdpost bulk MIB | kill N | epipe ign|dfl | epipeloop | "
		    "closepoll | nonblock before|later|child\n");
		return 64;
	}
	return 0;
}
