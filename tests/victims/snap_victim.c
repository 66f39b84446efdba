/*
 * snap_victim MODE [DIR [MIB]] - a process for rf-snap to dump, which checks its
 * own state once it goes on.  It sets up what rf-snap must see: a SIGUSR1
 * handler (SA_SIGINFO|SA_RESTART|SA_ONSTACK, mask SIGUSR2) on an alternate
 * stack, SIGUSR2 blocked, SIGPIPE ignored, umask 027, nice 5, RLIMIT_NOFILE
 * 123, cwd DIR, DIR/data open at offset 5, and in memory:
 *   sparse  1 GiB anonymous, 3 pages written
 *   zero    64 pages anonymous: 16 written with zeros, 16 with data
 *   cow     DIR/cow (16 pages of 'c'), private, one page written
 *   gone    DIR/gone (4 pages of 'g'), private, the file is removed
 *   hidden  2 pages of data, then made PROT_NONE
 *   bulk    MIB MiB of anonymous memory full of data (default 0)
 *   lone    4 pages with unmapped room below them
 *   grows   the same, MAP_GROWSDOWN
 *   rec     its own record (struct rf_selfrec, as librfork's S writes one)
 *           for fork number 7, but with its break planted a page too high
 * then prints one line "ready pid=.. handler=.. altstack=.. brk=.. sparse=..
 * zero=.. cow=.. gone=.. hidden=.. lone=.. grows=.. rec=.." and, by MODE:
 *   sleep  sleeps 500 ms in 10 ms nanosleep steps
 *   read   reads one line from stdin
 *   spin   runs floating point (SSE/AVX) arithmetic for 300 ms of CPU time,
 *          no syscalls
 *   thread starts a second thread, then sleeps
 *   secret maps a page of memfd_secret(2), then sleeps
 *   seccomp installs a seccomp filter that kills it on rt_sigaction, sleeps
 * At the end it checks memory, mask, handler, FPU results and prints
 * "ok usr1=N pending=M" (N SIGUSR1 handled, M the pending mask) or "FAIL ...".
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <time.h>
#include <unistd.h>
#include "rf_image.h"

#define PG 4096
#define SPARSE (1UL << 30)

static volatile sig_atomic_t usr1;
static volatile int onstack_ok = 1;
static char *altstack;

static void
on_usr1(int sig, siginfo_t *si, void *ctx)
{
	char here;

	usr1++;
	if (&here < altstack || &here >= altstack + 65536)
		onstack_ok = 0;
}

static void
fail(const char *what)
{
	printf("FAIL %s\n", what);
	fflush(stdout);
	exit(1);
}

static double
now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* deterministic floating point work, vectorised by the compiler */
static double
fpwork(long iters)
{
	double v[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, s = 0;
	long i;
	int k;

	for (i = 0; i < iters; i++)
		for (k = 0; k < 8; k++)
			v[k] = v[k] * 0.999999 + 1e-3 * k;
	for (k = 0; k < 8; k++)
		s += v[k];
	return s;
}

static void *
idle(void *arg)
{
	pause();
	return arg;
}

/* a mapping of its own: PROT_NONE pages on both sides keep the kernel from
   merging it with a neighbour */
static char *
guarded(size_t len)
{
	char *p = mmap(NULL, len + 2 * PG, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED || mprotect(p, PG, PROT_NONE) == -1 ||
	    mprotect(p + PG + len, PG, PROT_NONE) == -1)
		fail("mmap");
	return p + PG;
}

static struct rf_selfrec rec;

/* The record librfork's S writes, but with brk a page too high: whoever
   reads it shows that it did. */
static void
self_record(void)
{
	int sig;

	for (sig = 1; sig <= RF_NSIG; sig++)
		if (syscall(SYS_rt_sigaction, sig, NULL, &rec.sigact[sig - 1], 8) != 0)
			fail("rt_sigaction");
	if (syscall(SYS_sigaltstack, NULL, &rec.altstack) != 0)
		fail("sigaltstack");
	rec.brk = syscall(SYS_brk, 0) + 4096;
	rec.pid = getpid();
	rec.gen = 7;
	rec.magic = RF_SELFREC_MAGIC;
}

/* 4 pages with 60 unmapped below them (a MAP_GROWSDOWN one could grow
   there), or NULL */
static char *
alone(int flags)
{
	char *p = mmap(NULL, 64 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED || munmap(p, 60 * PG) == -1 ||
	    mmap(p + 60 * PG, 4 * PG, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | flags, -1, 0) == MAP_FAILED)
		fail("mmap");
	p[63 * PG] = 'a';
	return p + 60 * PG;
}

static char *
map_file(const char *path, int c, size_t pages)
{
	char *p, buf[PG];
	size_t i;
	int fd;

	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644)) == -1)
		fail("open file");
	memset(buf, c, PG);
	for (i = 0; i < pages; i++)
		if (write(fd, buf, PG) != PG)
			fail("write file");
	p = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		fail("mmap file");
	close(fd);
	return p;
}

int
main(int argc, char *argv[])
{
	const char *mode = argc > 1 ? argv[1] : "sleep", *dir = argc > 2 ? argv[2] : ".";
	size_t bulk = argc > 3 ? strtoul(argv[3], NULL, 10) << 20 : 0;
	char *sparse, *zero, *cow, *gone, *hidden, *lone, *grows, line[256];
	struct sigaction sa = { 0 };
	struct rlimit rl;
	stack_t ss;
	sigset_t set, pend;
	double t0, t1, ref = 0;
	long iters = 0, i;
	pthread_t th;
	volatile int m = 0;
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (chdir(dir) == -1)
		fail("chdir");
	umask(027);
	if (setpriority(PRIO_PROCESS, 0, 5) == -1)
		fail("setpriority");
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = 123;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		fail("setrlimit");

	altstack = malloc(65536);
	ss.ss_sp = altstack;
	ss.ss_size = 65536;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) == -1)
		fail("sigaltstack");
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	if (sigaction(SIGUSR1, &sa, NULL) == -1)
		fail("sigaction");
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if ((fd = open("data", O_RDWR | O_CREAT | O_TRUNC, 0644)) == -1 ||
	    write(fd, "0123456789", 10) != 10 || lseek(fd, 5, SEEK_SET) != 5)
		fail("data file");

	sparse = guarded(SPARSE);
	zero = guarded(64 * PG);
	sparse[0] = 's';
	sparse[SPARSE / 2] = 'p';
	sparse[SPARSE - 1] = 'e';
	for (i = 0; i < 16; i++)
		memset(zero + i * PG, 0, PG);
	for (i = 16; i < 32; i++)
		memset(zero + i * PG, 'z', PG);
	for (i = 32; i < 48; i++)	/* read only: the zero page */
		m += zero[i * PG];
	/* between read-write neighbours, so that the PROT_NONE part is a
	   mapping of its own */
	hidden = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (hidden == MAP_FAILED)
		fail("mmap");
	hidden += PG;
	memset(hidden, 'h', 2 * PG);
	if (mprotect(hidden, 2 * PG, PROT_NONE) == -1)
		fail("mprotect");
	cow = map_file("cow", 'c', 16);
	cow[3 * PG + 7] = 'W';
	gone = map_file("gone", 'g', 4);
	if (unlink("gone") == -1)
		fail("unlink");
	for (i = 0; i < 4; i++)	/* fault the pages in: they are the file's */
		m += gone[i * PG];

	if (bulk > 0)
		memset(guarded(bulk), 'b', bulk);
	lone = alone(0);
	grows = alone(MAP_GROWSDOWN);
	self_record();

	if (strcmp(mode, "thread") == 0 && pthread_create(&th, NULL, idle, NULL) != 0)
		fail("pthread_create");
	if (strcmp(mode, "seccomp") == 0) {
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigaction, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = { sizeof(f) / sizeof(*f), f };

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == -1)
			fail("seccomp");
	}
	if (strcmp(mode, "secret") == 0) {
		int sfd = syscall(SYS_memfd_secret, 0);
		char *sec;

		if (sfd == -1 || ftruncate(sfd, PG) == -1)
			fail("memfd_secret");
		sec = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
		if (sec == MAP_FAILED)
			fail("memfd_secret");
		close(sfd);
		sec[0] = 's';
	}
	if (strcmp(mode, "spin") == 0)
		ref = fpwork(1000);

	printf("ready pid=%d handler=%#lx altstack=%#lx brk=%#lx sparse=%#lx zero=%#lx"
	    " cow=%#lx gone=%#lx hidden=%#lx lone=%#lx grows=%#lx rec=%#lx\n", (int)getpid(),
	    (unsigned long)on_usr1, (unsigned long)altstack, (unsigned long)sbrk(0),
	    (unsigned long)sparse, (unsigned long)zero, (unsigned long)cow,
	    (unsigned long)gone, (unsigned long)hidden, (unsigned long)lone,
	    (unsigned long)grows, (unsigned long)&rec);

	/* the spinner counts its own CPU time: time stopped is not spent */
	t0 = now(CLOCK_PROCESS_CPUTIME_ID);
	t1 = now(CLOCK_MONOTONIC);
	if (strcmp(mode, "read") == 0) {
		if (fgets(line, sizeof(line), stdin) == NULL)
			fail("read");
	} else if (strcmp(mode, "spin") == 0) {
		/* the same 1000-step work again and again: each must match */
		while (now(CLOCK_PROCESS_CPUTIME_ID) - t0 < 0.3) {
			for (i = 0; i < 200; i++)
				if (fpwork(1000) != ref)
					fail("floating point result changed");
			iters++;
		}
	} else {
		while (now(CLOCK_MONOTONIC) - t1 < 0.5) {
			struct timespec ts = { 0, 10000000 };

			while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
				;
		}
	}

	if (sparse[0] != 's' || sparse[SPARSE / 2] != 'p' || sparse[SPARSE - 1] != 'e')
		fail("sparse mapping");
	/* PROT_GROWSDOWN is EINVAL unless the mapping grows down */
	if (lone[3 * PG] != 'a' || grows[3 * PG] != 'a' ||
	    mprotect(grows, PG, PROT_READ | PROT_WRITE | PROT_GROWSDOWN) == -1 ||
	    mprotect(lone, PG, PROT_READ | PROT_WRITE | PROT_GROWSDOWN) == 0)
		fail("MAP_GROWSDOWN mapping");
	for (i = 0; i < 48; i++)
		if (zero[i * PG + 100] != (i >= 16 && i < 32 ? 'z' : 0))
			fail("zero mapping");
	for (i = 0; i < 16 * PG; i++)
		if (cow[i] != (i == 3 * PG + 7 ? 'W' : 'c'))
			fail("cow mapping");
	for (i = 0; i < 4 * PG; i++)
		if (gone[i] != 'g')
			fail("gone mapping");
	if (mprotect(hidden, 2 * PG, PROT_READ) == -1)
		fail("mprotect");
	for (i = 0; i < 2 * PG; i++)
		if (hidden[i] != 'h')
			fail("hidden mapping");
	if (lseek(fd, 0, SEEK_CUR) != 5)
		fail("file offset");
	sigprocmask(SIG_SETMASK, NULL, &set);
	if (!sigismember(&set, SIGUSR2) || sigismember(&set, SIGUSR1))
		fail("signal mask");
	if (sigaltstack(NULL, &ss) == -1 || ss.ss_sp != altstack || ss.ss_size != 65536)
		fail("alternate stack");
	if (!onstack_ok)
		fail("handler not on the alternate stack");
	raise(SIGUSR1);
	sigpending(&pend);
	printf("ok usr1=%d pending=%s\n", (int)usr1,
	    sigismember(&pend, SIGUSR2) ? "usr2" : "none");
	return 0;
}
