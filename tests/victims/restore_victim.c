/*
 * restore_victim MODE DIR - a process for rf-snap to dump and rf-restore to
 * rebuild, which checks its own state once it goes on.  It closes every fd
 * but 0, 1 and 2, prints
 * "ready pid=N", stops itself (raise(SIGSTOP), except where noted), and
 * after the restore prints "PASS what" or "FAIL what" lines, then "done",
 * and exits 0 if everything passed, else 1.  Modes:
 *   mem     heap (20 MiB), stack (and its growth), brk, a sparse 1 GiB mapping, a
 *           private file mapping of DIR/data with a written page, DIR/shared
 *           mapped shared ("before", then "after" a page later), read-only
 *           and PROT_NONE data; clocks (the vdso block moved back), rseq,
 *           /proc/self/cmdline, cwd, umask, rlimit, nice
 *   sig     handlers (raise, and an outside SIGUSR1 it waits for after
 *           printing "waiting"), alternate stack, blocked, ignored, pending
 *   fpu     x87, SSE, AVX and AVX-512 registers and the rounding mode,
 *           stopped from inside an asm block
 *   file    writes lines to DIR/out before and after (no gap, no overlap),
 *           and a line to stderr (to be run with 2>&1)
 *   sleep   nanosleep(600 ms) in which the test stops it: must return 0
 *   read    blocks reading stdin (stopped there by the test); prints the line
 *   exit42  exits 42 after the restore;  term  kills itself with SIGTERM
 *   shm     has a MAP_SHARED anonymous mapping;  sysv  a System V segment
 */
#include <errno.h>
#include <fcntl.h>
#include <fenv.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PG 4096
#define SPARSE (1UL << 30)
#define BIG (20u << 20)	/* past restore_pages.c's threshold for a second thread */

static int failed;
static const char *dir;

static void
check(int ok, const char *what)
{
	printf("%s %s\n", ok ? "PASS" : "FAIL", what);
	fflush(stdout);
	failed |= !ok;
}

static void
ready(void)
{
	printf("ready pid=%d\n", getpid());
	fflush(stdout);
}

static int
finish(void)
{
	printf("done\n");
	fflush(stdout);
	return failed;
}

/* The perms column of /proc/self/maps for the mapping holding addr. */
static void
perms_of(const void *addr, char out[5])
{
	char line[512];
	unsigned long s, e;
	FILE *f = fopen("/proc/self/maps", "r");

	strcpy(out, "????");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %4s", &s, &e, out) == 3 &&
		    (unsigned long)addr >= s && (unsigned long)addr < e)
			break;
	if (f)
		fclose(f);
}

static long
rss_kib(void)
{
	char line[256];
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Uses about 2 MiB of stack: the [stack] mapping must grow down. */
static int
deep(int n)
{
	volatile char pad[1024];

	pad[0] = 1;
	return n == 0 ? 0 : deep(n - 1) + pad[0];
}

static int
mode_mem(int argc, char *argv[])
{
	unsigned char stackbuf[64 << 10];
	size_t i, nsmall = 2000;
	char **small = malloc(nsmall * sizeof(*small));
	unsigned char *big = malloc(BIG), *sparse, *fmap, *ro, *none, *brk0, *brk1, *shared;
	char path[4096], cwd[4096], perms[5];
	unsigned long vdso = getauxval(AT_SYSINFO_EHDR);
	struct rlimit rl;
	double t0, t1;
	struct timeval tv;
	int fd, ok;

	for (i = 0; i < sizeof(stackbuf); i++)
		stackbuf[i] = i * 7;
	for (i = 0; i < BIG; i++)
		big[i] = i * 13;
	for (i = 0; i < nsmall; i++) {
		small[i] = malloc(100);
		snprintf(small[i], 100, "small %zu", i);
	}
	sparse = mmap(NULL, SPARSE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
	    MAP_NORESERVE, -1, 0);
	sparse[0] = 1;
	sparse[SPARSE / 3] = 2;
	sparse[SPARSE - 1] = 3;
	snprintf(path, sizeof(path), "%s/data", dir);
	if ((fd = open(path, O_RDONLY)) == -1 ||
	    (fmap = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
		return perror("data"), 2;
	close(fd);
	memcpy(fmap + PG, "written", 8);
	snprintf(path, sizeof(path), "%s/shared", dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0666)) == -1 || ftruncate(fd, 2 * PG) ||
	    (shared = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
		return perror("shared"), 2;
	close(fd);
	strcpy((char *)shared, "before");
	ro = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	strcpy((char *)ro, "read-only data");
	mprotect(ro, 2 * PG, PROT_READ);
	none = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	strcpy((char *)none, "hidden");
	mprotect(none, PG, PROT_NONE);
	snprintf(path, sizeof(path), "%s/sub", dir);
	mkdir(path, 0755);
	if (chdir(path) == -1)
		return perror("chdir"), 2;
	umask(027);
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = 123;
	setrlimit(RLIMIT_NOFILE, &rl);
	setpriority(PRIO_PROCESS, 0, 7);
	t0 = mono();
	brk0 = sbrk(0);

	ready();
	raise(SIGSTOP);

	for (ok = 1, i = 0; i < sizeof(stackbuf); i++)
		ok &= stackbuf[i] == (unsigned char)(i * 7);
	check(ok, "stack");
	for (ok = 1, i = 0; i < BIG; i++)
		ok &= big[i] == (unsigned char)(i * 13);
	check(ok, "heap big");
	for (ok = 1, i = 0; i < nsmall; i++) {
		char want[100];
		snprintf(want, sizeof(want), "small %zu", i);
		ok &= strcmp(small[i], want) == 0;
	}
	check(ok, "heap small");
	ok = sparse[0] == 1 && sparse[SPARSE / 3] == 2 && sparse[SPARSE - 1] == 3 &&
	    sparse[SPARSE / 2] == 0 && sparse[4 * PG] == 0;
	check(ok, "sparse data");
	check(rss_kib() < 100 * 1024, "sparse stays sparse");
	ok = memcmp(fmap + PG, "written", 8) == 0 && fmap[0] == 'd' && fmap[3 * PG] == 'd';
	check(ok, "file mapping (copied-on-write page and file pages)");
	perms_of(ro, perms);
	check(strcmp((char *)ro, "read-only data") == 0 && strcmp(perms, "r--p") == 0,
	    "read-only data");
	perms_of(none, perms);
	mprotect(none, PG, PROT_READ);
	check(strcmp(perms, "---p") == 0 && strcmp((char *)none, "hidden") == 0,
	    "PROT_NONE data");

	/* brk: the heap grows after the restore */
	for (i = 0; i < 20000; i++)
		memset(malloc(100), 'x', 100);
	brk1 = sbrk(0);
	check(brk0 != (void *)-1 && brk1 > brk0 && sbrk(64 << 10) != (void *)-1 &&
	    (memset(brk1, 1, 64 << 10), 1), "brk grows");

	strcpy((char *)shared + PG, "after");
	check(strcmp((char *)shared, "before") == 0 && msync(shared, 2 * PG, MS_SYNC) == 0,
	    "shared file mapping");
	check(deep(2000) == 2000, "stack grows");
	{
		char cmd[8192];
		size_t n = 0;
		int i, cfd = open("/proc/self/cmdline", O_RDONLY);
		ssize_t got = read(cfd, cmd, sizeof(cmd));
		close(cfd);
		for (ok = got > 0, i = 0; i < argc && ok; i++) {
			ok = (size_t)got > n && strcmp(cmd + n, argv[i]) == 0;
			n += strlen(argv[i]) + 1;
		}
		check(ok && (size_t)got == n, "/proc/self/cmdline");
	}

	t1 = mono();
	/* time() reads the coarse clock, which may trail gettimeofday by a tick */
	check(t1 >= t0 && gettimeofday(&tv, NULL) == 0 && tv.tv_sec > 1600000000 &&
	    time(NULL) >= tv.tv_sec - 1, "clocks (vdso)");
	{
		char line[512];
		unsigned long s = 0, e;
		FILE *f = fopen("/proc/self/maps", "r");
		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &s, &e) == 2)
				break;
		if (f)
			fclose(f);
		check(vdso != 0 && s == vdso, "[vdso] where the auxiliary vector says");
	}
	if (__rseq_size > 0) {
		/* Registered again at the same place: the kernel says EBUSY. */
		long r = syscall(SYS_rseq, (char *)__builtin_thread_pointer() + __rseq_offset,
		    32, 0, 0x53053053);
		check(r == -1 && errno == EBUSY, "rseq registered");
	}
	check(getcwd(cwd, sizeof(cwd)) && strcmp(cwd, path) == 0, "cwd");
	check(umask(0) == 027, "umask");
	check(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur == 123, "rlimit");
	errno = 0;
	check(getpriority(PRIO_PROCESS, 0) == 7 && errno == 0, "nice");
	return finish();
}

static volatile sig_atomic_t n_usr1, n_winch, usr2_onstack = -1;
static char *altstack;

static void
on_usr1(int sig)
{
	n_usr1++;
}

static void
on_winch(int sig)
{
	n_winch++;
}

static void
on_usr2(int sig)
{
	char here;

	usr2_onstack = &here >= altstack && &here < altstack + (64 << 10);
}

static int
mode_sig(void)
{
	struct sigaction sa = { 0 };
	sigset_t set, pend;
	stack_t ss = { 0 };
	int i;

	altstack = malloc(64 << 10);
	ss.ss_sp = altstack;
	ss.ss_size = 64 << 10;
	sigaltstack(&ss, NULL);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_winch;
	sigaction(SIGWINCH, &sa, NULL);
	sa.sa_handler = on_usr2;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGWINCH);
	sigprocmask(SIG_BLOCK, &set, NULL);
	raise(SIGWINCH);

	ready();
	raise(SIGSTOP);

	sigprocmask(SIG_BLOCK, NULL, &set);
	check(sigismember(&set, SIGHUP) && sigismember(&set, SIGWINCH) &&
	    !sigismember(&set, SIGUSR1), "blocked mask");
	sigaction(SIGPIPE, NULL, &sa);
	check(sa.sa_handler == SIG_IGN, "ignored SIGPIPE");
	sigaction(SIGUSR1, NULL, &sa);
	check(sa.sa_handler == on_usr1 && (sa.sa_flags & SA_RESTART), "handler installed");
	memset(&ss, 0, sizeof(ss));
	sigaltstack(NULL, &ss);
	check(ss.ss_sp == altstack && ss.ss_size == (64 << 10) && !(ss.ss_flags & SS_DISABLE),
	    "alternate stack");
	sigpending(&pend);
	check(sigismember(&pend, SIGWINCH) && n_winch == 0, "pending SIGWINCH kept");
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	check(n_winch == 1, "pending SIGWINCH delivered when unblocked");
	raise(SIGUSR1);
	check(n_usr1 == 1, "handler by raise");
	raise(SIGUSR2);
	check(usr2_onstack == 1, "handler on the alternate stack");
	printf("waiting\n");
	fflush(stdout);
	alarm(20);
	for (i = 0; i < 2000 && n_usr1 < 2; i++)
		usleep(10000);
	check(n_usr1 == 2, "handler by an outside kill");
	return finish();
}

static const uint64_t pat[8] = { 0x0123456789abcdef, 0xfedcba9876543210,
    0x1111111122222222, 0x3333333344444444, 0x5555555566666666,
    0x7777777788888888, 0x99999999aaaaaaaa, 0xbbbbbbbbcccccccc };

struct fpu_out {
	uint64_t x8[2], y9[4], z17[8], r12;
	double pi_in, pi_out;
};

/* Registers loaded, the stop (kill(getpid(), SIGSTOP)), read back: no libc between. */
__attribute__((target("avx512f"))) static void
stop_avx512(struct fpu_out *o, long pid)
{
	__asm__ volatile (
	    "vmovdqu64 (%[p]), %%zmm17\n\t"
	    "vmovdqu (%[p]), %%ymm9\n\t"
	    "movdqu 16(%[p]), %%xmm8\n\t"
	    "fldl %[pi]\n\t"
	    "mov $0x5a5a5a5a5a5a5a5a, %%r12\n\t"
	    "mov %[pid], %%rdi\n\t"
	    "mov $19, %%esi\n\t"
	    "mov $62, %%eax\n\t"
	    "syscall\n\t"
	    "vmovdqu64 %%zmm17, %[z]\n\t"
	    "vmovdqu %%ymm9, %[y]\n\t"
	    "movdqu %%xmm8, %[x]\n\t"
	    "fstpl %[po]\n\t"
	    "mov %%r12, %[r]\n\t"
	    : [z]"=m"(o->z17), [y]"=m"(o->y9), [x]"=m"(o->x8), [po]"=m"(o->pi_out),
	      [r]"=m"(o->r12)
	    : [p]"r"(pat), [pi]"m"(o->pi_in), [pid]"r"(pid)
	    : "rax", "rdi", "rsi", "rcx", "r11", "r12", "xmm8", "xmm9", "xmm17", "st");
}

__attribute__((target("avx"))) static void
stop_avx(struct fpu_out *o, long pid)
{
	__asm__ volatile (
	    "vmovdqu (%[p]), %%ymm9\n\t"
	    "movdqu 16(%[p]), %%xmm8\n\t"
	    "fldl %[pi]\n\t"
	    "mov $0x5a5a5a5a5a5a5a5a, %%r12\n\t"
	    "mov %[pid], %%rdi\n\t"
	    "mov $19, %%esi\n\t"
	    "mov $62, %%eax\n\t"
	    "syscall\n\t"
	    "vmovdqu %%ymm9, %[y]\n\t"
	    "movdqu %%xmm8, %[x]\n\t"
	    "fstpl %[po]\n\t"
	    "mov %%r12, %[r]\n\t"
	    : [y]"=m"(o->y9), [x]"=m"(o->x8), [po]"=m"(o->pi_out), [r]"=m"(o->r12)
	    : [p]"r"(pat), [pi]"m"(o->pi_in), [pid]"r"(pid)
	    : "rax", "rdi", "rsi", "rcx", "r11", "r12", "xmm8", "xmm9", "st");
}

static int
mode_fpu(void)
{
	struct fpu_out o = { .pi_in = 3.14159265358979 };
	int avx512 = __builtin_cpu_supports("avx512f");

	fesetround(FE_TOWARDZERO);
	ready();
	if (avx512)
		stop_avx512(&o, getpid());
	else
		stop_avx(&o, getpid());
	check(o.x8[0] == pat[2] && o.x8[1] == pat[3], "SSE register");
	check(memcmp(o.y9, pat, 32) == 0, "AVX register");
	if (avx512)
		check(memcmp(o.z17, pat, 64) == 0, "AVX-512 register");
	check(o.pi_out == o.pi_in, "x87 stack");
	check(o.r12 == 0x5a5a5a5a5a5a5a5a, "general register");
	check(fegetround() == FE_TOWARDZERO, "rounding mode");
	return finish();
}

static int
mode_file(void)
{
	char path[4096];
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "%s/out", dir);
	if ((f = fopen(path, "w")) == NULL)
		return perror(path), 2;
	for (i = 1; i <= 500; i++)
		fprintf(f, "line %d\n", i);
	fflush(f);
	ready();
	raise(SIGSTOP);
	for (; i <= 1000; i++)
		fprintf(f, "line %d\n", i);
	check(fclose(f) == 0, "file written");
	fprintf(stderr, "stderr line\n");	/* 2>&1: one offset with stdout */
	return finish();
}

static int
mode_sleep(void)
{
	struct timespec ts = { 0, 600 * 1000 * 1000 };
	int r;

	ready();
	r = nanosleep(&ts, NULL);
	check(r == 0, "nanosleep restarted and completed");
	return finish();
}

static int
mode_read(void)
{
	char buf[256];
	ssize_t n;

	ready();
	n = read(0, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	check(n > 0, "read restarted");
	printf("got %s", buf);
	return finish();
}

static int
mode_shared(int sysv)
{
	char *p;
	int id;

	if (sysv) {
		id = shmget(IPC_PRIVATE, 4 * PG, IPC_CREAT | 0600);
		p = shmat(id, NULL, 0);
		shmctl(id, IPC_RMID, NULL);
	} else {
		p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	}
	strcpy(p, "shared");
	ready();
	raise(SIGSTOP);
	check(1, "restored although shared");
	return finish();
}

int
main(int argc, char *argv[])
{
	const char *mode;

	if (argc != 3) {
		fprintf(stderr, "usage: restore_victim MODE DIR\n");
		return 2;
	}
	/* Only what the test gave: not the fds the test harness leaks to us. */
	syscall(SYS_close_range, 3, ~0u, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	mode = argv[1];
	dir = argv[2];
	if (strcmp(mode, "mem") == 0)
		return mode_mem(argc, argv);
	if (strcmp(mode, "sig") == 0)
		return mode_sig();
	if (strcmp(mode, "fpu") == 0)
		return mode_fpu();
	if (strcmp(mode, "file") == 0)
		return mode_file();
	if (strcmp(mode, "sleep") == 0)
		return mode_sleep();
	if (strcmp(mode, "read") == 0)
		return mode_read();
	if (strcmp(mode, "shm") == 0 || strcmp(mode, "sysv") == 0)
		return mode_shared(mode[1] == 'y');
	ready();
	raise(SIGSTOP);
	if (strcmp(mode, "exit42") == 0)
		return 42;
	if (strcmp(mode, "term") == 0)
		raise(SIGTERM);
	return 3;
}
