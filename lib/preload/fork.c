/*
 * fork.c - the fork wrapper of librfork.so (docs/FORK.md, steps 1-5).
 *
 * P (the caller) forks S for real.  S stops itself just before reading its
 * control socket K; P has S dumped and shipped (rf-snap | rf-send -F K),
 * then tells S on K what it is: "stub HOST TOKEN" (S execs rf-stub, which
 * holds pid, parent and fds at home for the child C now on HOST) or "local"
 * (S returns 0, an ordinary local child).  C, resumed from S's image, makes
 * the same read; its proxy answers "remote...".  A stopped S is the only copy
 * of the child until the remote one is confirmed: never both, never neither.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <time.h>
#include "rf_fwd.h"
#include "rfork.h"
#include "rf_standin.h"

#define EXPORT __attribute__((visibility("default")))
#define CTLMAX (RFP_HOST + RFP_TOKEN + 16)

struct rfp_cfg rfp_cfg;

static pid_t (*real_fork)(void);
static pid_t (*real_Fork)(void);
static atomic_int inited;
static atomic_ulong nforks;
static atomic_uint nexthost;
static atomic_int said_policy, said_hosts, said_nohost;
/* Set in a remote child: its forks go through its proxy and stub (grand_fork). */
static int remote_child;
/* The forking thread's name, for the remote child to take again: the
   restore leaves it the server's (rf-server) */
static __thread char fork_name[16];
/* ...but this process has no home identity (a local descendant of one). */
static int grand_off;
/* In a remote child: the host it was sent to, as home names it. */
static char my_host[RFP_HOST];
static char probe_host[RF_FWD_HOST_MAX];
/* A server said it cannot take post-copy images: ask no more (per process). */
static atomic_int postcopy_off;

/* SIGCHLD's SA_NOCLDSTOP, set while S stops and continues (see below). */
static atomic_flag cld_lock = ATOMIC_FLAG_INIT;
static int cld_users, cld_set;

static void
copyenv(char *dst, size_t n, const char *name)
{
	const char *v = getenv(name);
	size_t l;

	dst[0] = '\0';
	if (v == NULL || (l = strlen(v)) >= n)
		return;
	memcpy(dst, v, l + 1);
}

static unsigned long
number(const char *s, int *ok)
{
	unsigned long v = 0;

	*ok = *s != '\0';
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > 100000000UL) {
			*ok = 0;
			return 0;
		}
		v = v * 10 + (*s - '0');
	}
	return v;
}

static void
parse_policy(const char *s)
{
	int ok = 0;

	rfp_cfg.policy = RFP_BAD;
	if (*s == '\0' || strcmp(s, "all") == 0)
		rfp_cfg.policy = RFP_ALL;
	else if (strcmp(s, "none") == 0)
		rfp_cfg.policy = RFP_NONE;
	else if (strncmp(s, "every:", 6) == 0) {
		rfp_cfg.n = number(s + 6, &ok);
		if (ok && rfp_cfg.n > 0)
			rfp_cfg.policy = RFP_EVERY;
	} else if (strncmp(s, "first:", 6) == 0) {
		rfp_cfg.n = number(s + 6, &ok);
		if (ok)
			rfp_cfg.policy = RFP_FIRST;
	}
}

/* The directory librfork.so was loaded from, absolute: a program may chdir. */
static void
set_libdir(const char *path)
{
	char dir[PATH_MAX], *slash;
	size_t l = strlen(path);

	if (path[0] == '/' && l < sizeof(dir))
		memcpy(dir, path, l + 1);
	else if (realpath(path, dir) == NULL)
		return;
	if ((slash = strrchr(dir, '/')) == NULL)
		return;
	*slash = '\0';
	memcpy(rfp_cfg.libdir, dir, slash - dir + 1);
}

/* The environment is read once: a program may change or clear its own. */
static void
init(void)
{
	char t[16];
	Dl_info dl;
	const char *h;
	int ok;

	real_fork = (pid_t (*)(void))dlsym(RTLD_NEXT, "fork");
	real_Fork = (pid_t (*)(void))dlsym(RTLD_NEXT, "_Fork");
	copyenv(rfp_cfg.policy_str, sizeof(rfp_cfg.policy_str), "RFORK_POLICY");
	parse_policy(rfp_cfg.policy_str);
	copyenv(t, sizeof(t), "RFORK_STRICT");
	rfp_cfg.strict = strcmp(t, "1") == 0;
	copyenv(t, sizeof(t), "RFORK_POSTCOPY");
	rfp_cfg.postcopy = strcmp(t, "0") != 0;
	copyenv(t, sizeof(t), "RFORK_EARLY_STUB");
	rfp_cfg.early = strcmp(t, "0") != 0;
	copyenv(t, sizeof(t), "RFORK_SELFREC");
	rfp_cfg.selfrec = strcmp(t, "0") != 0;
	/* rf-run's agent, "@name" or a path; "0" or unset: none */
	copyenv(rfp_cfg.agent, sizeof(rfp_cfg.agent), "RFORK_AGENT");
	if (strcmp(rfp_cfg.agent, "0") == 0)
		rfp_cfg.agent[0] = '\0';
	copyenv(t, sizeof(t), "RFORK_TIMEOUT");
	rfp_cfg.timeout = number(t, &ok);
	if (!ok || rfp_cfg.timeout < 1 || rfp_cfg.timeout > 3600)
		rfp_cfg.timeout = 10;
	copyenv(rfp_cfg.hosts, sizeof(rfp_cfg.hosts), "RFORK_HOSTS");
	rfp_cfg.nhosts = 0;
	for (h = rfp_cfg.hosts; *h != '\0'; h++)
		if (*h != ',' && (h == rfp_cfg.hosts || h[-1] == ','))
			rfp_cfg.nhosts++;
	copyenv(rfp_cfg.key, sizeof(rfp_cfg.key), "RFORK_KEY");
	copyenv(rfp_cfg.bindir, sizeof(rfp_cfg.bindir), "RFORK_BINDIR");
	rfp_cfg.libdir[0] = '\0';
	if (dladdr((void *)init, &dl) != 0 && dl.dli_fname != NULL)
		set_libdir(dl.dli_fname);
	/* A program a remote child exec'd (a shell passes us on): its proxy
	   answers; no proxy, no such fd. */
	if (syscall(SYS_ioctl, RF_FWD_MAGIC_FD, RF_FWD_IOC_PROBE, probe_host) == 0) {
		remote_child = 1;
		/* its host, as home names it, for forks with fds of this host */
		probe_host[sizeof(probe_host) - 1] = '\0';
		if (strlen(probe_host) < sizeof(my_host))
			memcpy(my_host, probe_host, strlen(probe_host) + 1);
	}
	else if (errno == EPERM)
		grand_off = 1;
	atomic_store(&inited, 1);
}

__attribute__((constructor)) static void
ctor(void)
{
	if (!atomic_load(&inited))
		init();
}

/* The i-th HOST[:PORT] of RFORK_HOSTS, round robin. */
static void
pick_host(char *out)
{
	unsigned i = atomic_fetch_add(&nexthost, 1) % rfp_cfg.nhosts;
	const char *h = rfp_cfg.hosts;
	size_t l;

	for (;;) {
		h += strspn(h, ",");
		l = strcspn(h, ",");
		if (i-- == 0)
			break;
		h += l;
	}
	if (l >= RFP_HOST)
		l = 0;
	memcpy(out, h, l);
	out[l] = '\0';
}

/*
 * S's stop and continue would reach P's program as SIGCHLD (CLD_STOPPED,
 * CLD_CONTINUED) for a child it has not seen yet: a handler that calls
 * wait() would block.  SA_NOCLDSTOP suppresses both while forks are in
 * flight; the last one out takes it away again, unless the program changed
 * its handler meanwhile.
 */
static void
cld_enter(void)
{
	struct sigaction sa;

	while (atomic_flag_test_and_set(&cld_lock))
		sched_yield();
	if (cld_users++ == 0) {
		cld_set = 0;
		if (sigaction(SIGCHLD, NULL, &sa) == 0 && sa.sa_handler != SIG_IGN &&
		    !(sa.sa_flags & SA_NOCLDSTOP)) {
			sa.sa_flags |= SA_NOCLDSTOP;
			cld_set = sigaction(SIGCHLD, &sa, NULL) == 0;
		}
	}
	atomic_flag_clear(&cld_lock);
}

static void
cld_unset(void)
{
	struct sigaction sa;

	if (cld_set && sigaction(SIGCHLD, NULL, &sa) == 0 && (sa.sa_flags & SA_NOCLDSTOP)) {
		sa.sa_flags &= ~SA_NOCLDSTOP;
		sigaction(SIGCHLD, &sa, NULL);
	}
	cld_set = 0;
}

static void
cld_leave(void)
{
	while (atomic_flag_test_and_set(&cld_lock))
		sched_yield();
	if (--cld_users == 0)
		cld_unset();
	atomic_flag_clear(&cld_lock);
}

/* In S: alone now, whatever other threads of P were doing. */
static void
cld_child(void)
{
	cld_unset();
	cld_users = 0;
	atomic_flag_clear(&cld_lock);
}

/*
 * The proxy's answer, "remote child fd N": N is the filter's listener,
 * which the restore left in C at the lowest free number (the proxy has its
 * own copy).  Closed, the child's next fd gets the number a local child's
 * would.
 */
static void
drop_listener(const char *msg)
{
	const char *q = strstr(msg, " fd ");
	long fd;

	if (q != NULL && (fd = strtol(q + 4, NULL, 10)) > 2 && fd < INT_MAX)
		rfp_close((int)fd);
}

/* One message from K: a line, or the proxy's one answer ("remote..."). */
static size_t
read_ctl(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t r;

	while (n < cap - 1) {
		r = rfp_read(fd, buf + n, cap - 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += r;
		if (memchr(buf, '\n', n) != NULL || (n >= 6 && memcmp(buf, "remote", 6) == 0))
			break;
	}
	buf[n] = '\0';
	return n;
}

/*
 * S becomes rf-stub: exec keeps its pid, parent and fds, and drops its copy
 * of P's memory.  Fds that are close-on-exec must survive the exec (they are
 * the child's), so their flag is cleared and rf-stub is told (-x).  Returns
 * only if the exec failed, with every flag as it was.
 */
static void
exec_stub(int kfd, char *msg, int conn, const char *state, size_t slen, pid_t src)
{
	char *host = msg, *token = NULL, *argv[16], **env, *list, *p, db[4096];
	size_t envsize, listsize = 1 << 19, ln = 0;
	struct rfp_str why = { .n = 0 }, num, cstr = { .n = 0 }, sstr = { .n = 0 };
	struct rfp_str kstr = { .n = 0 };
	long nd, off;
	int dfd, fd, i = 0, e, sfd = -1;

	/* msg NULL: the answer is not in yet; rf-stub -K reads it from K */
	list = mmap(NULL, listsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((msg != NULL && (token = strchr(host, ' ')) == NULL) || list == MAP_FAILED) {
		rfp_close(conn);
		if (list != MAP_FAILED)
			munmap(list, listsize);
		return;
	}
	if (msg != NULL) {
		msg[strcspn(msg, "\n")] = '\0';
		*token++ = '\0';
		token[strcspn(token, " ")] = '\0';	/* " lazy" */
	} else if (fcntl(kfd, F_SETFD, 0) == -1) {
		munmap(list, listsize);
		return;
	}
	if ((dfd = rfp_open("/proc/self/fd", O_RDONLY | O_DIRECTORY)) == -1)
		goto out;
	while ((nd = syscall(SYS_getdents64, dfd, db, sizeof(db))) > 0) {
		for (off = 0; off < nd; off += *(unsigned short *)(db + off + 16)) {
			const char *name = db + off + 19;
			int fl;

			if (*name < '0' || *name > '9')
				continue;
			fd = atoi(name);
			if (fd == kfd || fd == dfd || (fl = fcntl(fd, F_GETFD)) == -1 ||
			    !(fl & FD_CLOEXEC) || ln + 12 > listsize)
				continue;
			if (fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) == -1)
				continue;
			num.n = 0;
			rfp_num(&num, fd);
			if (ln > 0)
				list[ln++] = ',';
			memcpy(list + ln, num.s, num.n + 1);
			ln += num.n;
		}
	}
	rfp_close(dfd);
	/* The fork's own connection (rf-send -H): its channel state in a memfd. */
	if (conn >= 0 && (sfd = memfd_create("rf-chan", 0)) != -1 &&
	    rfp_write(sfd, state, slen) == (ssize_t)slen) {
		rfp_num(&cstr, conn);
		rfp_cat(&cstr, ":");
		rfp_num(&cstr, sfd);
	}
	argv[i++] = "rf-stub";
	if (rfp_cfg.key[0] != '\0') {
		argv[i++] = "-k";
		argv[i++] = rfp_cfg.key;
	}
	if (ln > 0) {
		argv[i++] = "-x";
		argv[i++] = list;
	}
	/* post-copy: the page source, and where to dial for its connection */
	if (src > 0) {
		rfp_num(&sstr, src);
		argv[i++] = "-s";
		argv[i++] = sstr.s;
	}
	if (cstr.n > 0) {
		argv[i++] = "-C";
		argv[i++] = cstr.s;
	}
	if (msg == NULL) {
		rfp_num(&kstr, kfd);
		argv[i++] = "-K";
		argv[i++] = kstr.s;
	} else if (cstr.n == 0 || src > 0) {
		argv[i++] = "--";
		argv[i++] = host;
		argv[i++] = token;
	}
	argv[i] = NULL;
	if ((env = rfp_env(&envsize)) != NULL) {
		execve(rfp_cfg.stub, argv, env);
		e = errno;
		rfp_env_free(env, envsize);
	} else
		e = errno;
	rfp_cat(&why, rfp_cfg.stub);
	rfp_cat(&why, ": ");
	rfp_cat(&why, strerrordesc_np(e));
	rfp_log("fork stays local: ", why.s, NULL);
	for (p = list; ln > 0 && *p != '\0'; p += strcspn(p, ","), p += *p == ',') {
		fd = atoi(p);
		fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
	}
	if (msg == NULL)
		fcntl(kfd, F_SETFD, FD_CLOEXEC);
out:
	rfp_close(sfd);
	rfp_close(conn);
	munmap(list, listsize);
}

/* "hand": the connection and its state follow on K once S says "g". */
static int
take_conn(int kfd, char *state, size_t *slen)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cm;
	struct iovec iov = { state, RFP_STATE };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
	    .msg_controllen = sizeof(cm.b) };
	struct pollfd pfd = { .fd = kfd, .events = POLLIN };
	struct cmsghdr *h;
	ssize_t n;
	int fd = -1;

	if (rfp_write(kfd, "g", 1) != 1 || poll(&pfd, 1, 2000) != 1)
		return -1;
	n = recvmsg(kfd, &mh, 0);
	h = CMSG_FIRSTHDR(&mh);
	if (n > 0 && h != NULL && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
	    h->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(h), sizeof(int));
	if (n <= 0 || fd < 0) {
		rfp_close(fd);
		return -1;
	}
	*slen = n;
	return fd;
}

/*
 * Post-copy: S's page source, that rf-stub reads the lazy pages from once S
 * is gone (docs/FORK.md "Post-copy").  It shares S's memory (CLONE_VM), so
 * making it copies no page table, and S's exec into rf-stub leaves that
 * memory to it instead of tearing it down: from S's stop on, the memory
 * is as rf-snap reads it but for what S writes on its way to the exec,
 * which is its stack, thread pointer area and new mappings only (the image
 * carries those; the way there calls no malloc), and the source's own
 * stack below.  A bare clone: no exit signal (nothing of the program sees
 * it), no atfork handlers; it holds no fd, dies with its parent and
 * otherwise only waits to be killed.
 */
static char src_stack[8192] __attribute__((aligned(64)));

/* A system call that leaves errno alone: the source writes nothing of S's. */
static inline long
raw_syscall(long nr, long a1, long a2, long a3)
{
	long ret;

	__asm__ volatile ("syscall" : "=a"(ret) : "a"(nr), "D"(a1), "S"(a2), "d"(a3) :
	    "rcx", "r11", "memory");
	return ret;
}

static int
source_main(void *parent)
{
	raw_syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0);
	if (raw_syscall(SYS_getppid, 0, 0, 0) != (long)(intptr_t)parent)
		raw_syscall(SYS_exit, 0, 0, 0);
	raw_syscall(SYS_close_range, 0, ~0U, 0);
	for (;;)
		raw_syscall(SYS_pause, 0, 0, 0);
	return 0;
}

static pid_t
make_source(void)
{
	pid_t self = syscall(SYS_getpid);
	int r = clone(source_main, src_stack + sizeof(src_stack), CLONE_VM,
	    (void *)(intptr_t)self);

	return r > 0 ? r : 0;
}

static void
drop_source(pid_t src)
{
	if (src <= 0)
		return;
	syscall(SYS_kill, src, SIGKILL);
	while (syscall(SYS_wait4, src, NULL, __WALL, NULL) == -1 && errno == EINTR)
		;
}

/*
 * "pre": rf-snap has read S; the remote side is still at work.  S says "e"
 * and execs rf-stub -K to wait for the answer there: the stub's start-up
 * runs beside the remote restore instead of after it.  Returns only if the
 * exec failed: S says "x" and is the local child (P sees it, early_end).
 */
static void
pre_stub(int kfd, pid_t src)
{
	(void)!rfp_write(kfd, "e\n", 2);
	exec_stub(kfd, NULL, -1, NULL, 0, src);
	(void)!rfp_write(kfd, "x", 1);
}

/*
 * The SIGCONT that woke S (P's) or C (its server's) stays pending, every
 * signal blocked: rf-stub would take it as one for the child and pass it
 * on, and the child, local or remote, would run the program's handler for
 * it.  Ours: dropped (rt_sigtimedwait is not one of the calls the remote
 * child's filter sends to its proxy).
 */
static void
drop_cont(void)
{
	struct timespec zero = { 0, 0 };
	sigset_t cont;

	sigemptyset(&cont);
	sigaddset(&cont, SIGCONT);
	while (sigtimedwait(&cont, NULL, &zero) == SIGCONT)
		;
}

struct rf_selfrec rfp_selfrec;
static atomic_ulong forkgen;	/* remote forks tried, the last one's number */
static uint32_t rec_once;	/* RF_SELFREC_EXE, _AUXV: read at start-up */
static dev_t pipefs_dev;	/* a pipe's st_dev: "pipe:[ino]" without readlink */
static int pipefs_known;

/*
 * What does not change while the program runs, read once, at its first
 * remote fork (a program that never forks pays nothing): its executable and
 * auxiliary vector (only checkpoint/restore tools change them, and
 * rf-restore gives a process back the ones it had).  Threads that fork at
 * once: one reads, the others wait for it.
 */
static void
record_once(void)
{
	static atomic_int state;	/* 0 not yet, 1 under way, 2 done */
	struct rf_selfrec *r = &rfp_selfrec;
	struct stat sb;
	ssize_t n;
	int fd, p[2], want = 0;

	if (atomic_load(&state) == 2)
		return;
	if (!atomic_compare_exchange_strong(&state, &want, 1)) {
		while (atomic_load(&state) != 2)
			sched_yield();
		return;
	}
	rec_once = 0;
	n = readlink("/proc/self/exe", r->exe, sizeof(r->exe) - 1);
	if (n > 0) {
		r->exe[n] = '\0';
		rec_once |= RF_SELFREC_EXE;
	}
	if ((fd = open("/proc/self/auxv", O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, r->auxv, sizeof(r->auxv));
		/* the whole of it, in pairs, with room to spare */
		if (n > 0 && n < (ssize_t)sizeof(r->auxv) && n % 16 == 0) {
			r->auxv_len = n / 8;
			rec_once |= RF_SELFREC_AUXV;
		}
		close(fd);
	}
	if (pipe2(p, O_CLOEXEC) == 0) {
		if (fstat(p[0], &sb) == 0) {
			pipefs_dev = sb.st_dev;
			pipefs_known = 1;
		}
		close(p[0]);
		close(p[1]);
	}
	atomic_store(&state, 2);
}

/* Room left in the record's paths, and the end of what is used. */
#define REC_ROOM(r) (sizeof((r)->paths) - (r)->npaths)
#define REC_END(r) ((r)->paths + (r)->npaths)

/* The string that was put at REC_END, len bytes: its offset, or -1 if it
   did not fit whole (with its NUL). */
static long
rec_path(struct rf_selfrec *r, long len)
{
	long at = r->npaths;

	if (len <= 0 || (size_t)len + 1 > REC_ROOM(r))
		return -1;
	r->paths[at + len] = '\0';
	r->npaths += len + 1;
	return at;
}

/* A decimal number into b (at least 24 bytes): its length. */
static size_t
fmt_u64(char *b, uint64_t v)
{
	char t[24];
	size_t n = 0, i;

	do
		t[n++] = '0' + v % 10;
	while ((v /= 10) != 0);
	for (i = 0; i < n; i++)
		b[i] = t[n - 1 - i];
	return n;
}

/*
 * S's fd table as /proc/self/fd and fdinfo tell it, by calls on its own
 * fds: a readlink only where the name is not "pipe:[ino]" or
 * "socket:[ino]".  0 if all of it fits the record.
 */
static int
record_fds(struct rf_selfrec *r)
{
	static char dents[2048] __attribute__((aligned(8)));
	struct dirent64 *de;
	struct stat sb;
	long nread, off, at;
	ssize_t n;
	int dfd, fd, fl, cl, full = 0;

	if ((dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	while (!full && (nread = syscall(SYS_getdents64, dfd, dents, sizeof(dents))) > 0) {
		for (off = 0; off < nread && !full; off += de->d_reclen) {
			const char *d;
			struct rf_selfrec_fd *f;

			de = (struct dirent64 *)(dents + off);
			d = de->d_name;
			if (*d < '0' || *d > '9')
				continue;
			for (fd = 0; *d >= '0' && *d <= '9'; d++)
				fd = fd * 10 + (*d - '0');
			if (fd == dfd)
				continue;
			if (r->nfd == RF_SELFREC_NFD || (cl = fcntl(fd, F_GETFD)) == -1 ||
			    (fl = fcntl(fd, F_GETFL)) == -1 || fstat(fd, &sb) == -1) {
				full = 1;
				break;
			}
			f = &r->fd[r->nfd];
			f->fd = fd;
			f->flags = fl | (cl & FD_CLOEXEC ? O_CLOEXEC : 0);
			f->mode = sb.st_mode;
			f->dev = sb.st_dev;
			f->ino = sb.st_ino;
			f->rdev = sb.st_rdev;
			f->pos = 0;
			if (S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode) || S_ISBLK(sb.st_mode)) {
				off_t pos = lseek(fd, 0, SEEK_CUR);
				f->pos = pos > 0 ? (uint64_t)pos : 0;
			}
			/* the name straight into the record */
			if (S_ISSOCK(sb.st_mode) || (S_ISFIFO(sb.st_mode) && pipefs_known &&
			    sb.st_dev == pipefs_dev)) {
				const char *k = S_ISSOCK(sb.st_mode) ? "socket:[" : "pipe:[";
				size_t kl = strlen(k);

				n = -1;
				if (REC_ROOM(r) > kl + 26) {
					memcpy(REC_END(r), k, kl);
					kl += fmt_u64(REC_END(r) + kl, sb.st_ino);
					REC_END(r)[kl++] = ']';
					n = kl;
				}
			} else {
				/* by its entry, which getdents made: half the cost of a path */
				n = readlinkat(dfd, de->d_name, REC_END(r), REC_ROOM(r));
			}
			if ((at = rec_path(r, n)) < 0) {
				full = 1;
				break;
			}
			f->path = at;
			r->nfd++;
		}
	}
	close(dfd);
	return full || nread < 0 ? -1 : 0;
}

/*
 * S's record of what the kernel keeps from /proc or shows there at a
 * price (rfork.h): its signal actions, alternate stack and break, for the
 * snapshot to read in S's memory instead of running those calls inside S
 * (22 us by S's own calls here, against a ptrace stop and start for each
 * when injected), and its personality, limits, cwd and fd table, which
 * the snapshot would read from /proc at 20-30 us a file (5 files an fd).
 * The magic goes last: half a record is none.
 */
static void
self_record(uint64_t gen, const struct rfp_maps *m)
{
	struct rf_selfrec *r = &rfp_selfrec;
	long n, at;
	int sig, i;

	r->magic = 0;
	atomic_signal_fence(memory_order_seq_cst);
	r->gen = gen;
	r->pid = syscall(SYS_getpid);
	r->brk = syscall(SYS_brk, 0);
	for (sig = 1; sig <= RF_NSIG; sig++)
		if (syscall(SYS_rt_sigaction, sig, NULL, &r->sigact[sig - 1], 8) != 0)
			return;
	if (syscall(SYS_sigaltstack, NULL, &r->altstack) != 0)
		return;
	r->have = rec_once;
	r->nfd = 0;
	r->npaths = 0;
	/* a cwd getcwd cannot name as /proc does (gone, or out of reach) is
	   read from /proc */
	r->personality = (uint64_t)syscall(SYS_personality, 0xffffffffUL);
	n = syscall(SYS_getcwd, REC_END(r), REC_ROOM(r));
	if (n > 1 && REC_END(r)[0] == '/' && (at = rec_path(r, n - 1)) >= 0) {
		r->cwd = at;
		for (i = 0; i < RF_NRLIMIT; i++)
			if (syscall(SYS_prlimit64, 0, i, NULL, r->rlim[i]) != 0)
				break;
		if (i == RF_NRLIMIT && r->personality != (uint64_t)-1)
			r->have |= RF_SELFREC_ATTRS;
	}
	if (record_fds(r) == 0)
		r->have |= RF_SELFREC_FDS;
	/*
	 * The question the snapshot would otherwise ask by an injected call.
	 * EINVAL, and nothing changed, unless the mapping grows down; then the
	 * whole of it gets the protection the parent's maps showed: one that
	 * another thread changed since is as if it had changed after the fork.
	 */
	for (r->ngd = 0; r->ngd < m->ngd; r->ngd++) {
		r->gd[r->ngd].start = m->gd[r->ngd].start;
		r->gd[r->ngd].prot = m->gd[r->ngd].prot;
		r->gd[r->ngd].grows = syscall(SYS_mprotect, m->gd[r->ngd].start, m->gd[r->ngd].len,
		    m->gd[r->ngd].prot | PROT_GROWSDOWN) == 0;
	}
	r->have |= RF_SELFREC_GROWS;
	atomic_signal_fence(memory_order_seq_cst);
	r->magic = RF_SELFREC_MAGIC;
}

/* S, or C on the remote host.  All signals are blocked. */
static pid_t
child(int k[2], const sigset_t *old, pid_t ppid, int lazy, uint64_t gen,
    const struct rfp_maps *m)
{
	char msg[CTLMAX];
	pid_t src = 0;

	rfp_close(k[0]);
	cld_child();
	/* If P dies meanwhile, SIGCONT lets S go on as a local child. */
	if (prctl(PR_SET_PDEATHSIG, SIGCONT) == 0 && getppid() == ppid) {
		/* The page source, if any, is made before the stop (a clone
		   that shares S's memory: no copy).  S writes nothing but its
		   stack from here to the read below, and the image carries the
		   stack. */
		if (lazy)
			src = make_source();
		if (gen != 0)
			self_record(gen, m);
		(void)!rfp_write(k[1], "s", 1);
		syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
		/* The image is taken here: C resumes at this read. */
		read_ctl(k[1], msg, sizeof(msg));
		drop_cont();
		if (strncmp(msg, "pre\n", 4) == 0) {
			pre_stub(k[1], src);
			goto local;
		}
		prctl(PR_SET_PDEATHSIG, 0);
		if (strncmp(msg, "remote", 6) == 0) {
			/* Its forks go home for their pids (grand_fork), and so do
			   those of the programs it execs there, which keep us
			   (docs/PRELOAD.md).  src is a pid of home: not ours to touch. */
			remote_child = 1;
			src = 0;
			drop_listener(msg);
			prctl(PR_SET_NAME, fork_name);
		} else if (strncmp(msg, "stub ", 5) == 0 || strncmp(msg, "hand ", 5) == 0) {
			char state[RFP_STATE];
			size_t slen = 0;
			int conn = -1;

			/* "... lazy": pages come after the child starts, from src */
			if (strstr(msg, " lazy\n") == NULL) {
				drop_source(src);
				src = 0;
			}
			if (msg[0] == 'h')
				conn = take_conn(k[1], state, &slen);
			exec_stub(k[1], msg + 5, conn, state, slen, src);
			memset(state, 0, sizeof(state));
		}
	}
local:
	prctl(PR_SET_PDEATHSIG, 0);
	drop_source(src);
	rfp_close(k[1]);
	sigprocmask(SIG_SETMASK, old, NULL);
	return 0;
}

/* The pid as /proc numbers it: in a remote child, /proc is its host's. */
static pid_t
proc_pid(pid_t pid)
{
	struct rfp_str path = { .n = 0 };
	char b[512], *p;
	pid_t out = pid;
	ssize_t n;
	int pfd, fd;

	if (!remote_child || (pfd = syscall(SYS_pidfd_open, pid, 0)) == -1)
		return pid;
	rfp_cat(&path, "/proc/self/fdinfo/");
	rfp_num(&path, pfd);
	if ((fd = rfp_open(path.s, O_RDONLY)) != -1) {
		if ((n = rfp_read(fd, b, sizeof(b) - 1)) > 0) {
			b[n] = '\0';
			if ((p = strstr(b, "\nPid:")) != NULL && (out = atoi(p + 5)) <= 0)
				out = pid;
		}
		rfp_close(fd);
	}
	rfp_close(pfd);
	return out;
}

/* /proc/PID/stat's state letter; 0 if gone. */
static char
state(pid_t pid)
{
	struct rfp_str path = { .n = 0 };
	char b[512], *p;
	ssize_t n;
	int fd;

	rfp_cat(&path, "/proc/");
	rfp_num(&path, pid);
	rfp_cat(&path, "/stat");
	if ((fd = rfp_open(path.s, O_RDONLY)) == -1)
		return 0;
	n = rfp_read(fd, b, sizeof(b) - 1);
	rfp_close(fd);
	if (n <= 0)
		return 0;
	b[n] = '\0';
	if ((p = strrchr(b, ')')) == NULL || p[1] != ' ')
		return 0;
	return p[2];
}

/*
 * S says "s" on K just before it stops itself; then the stop is a matter of
 * microseconds.  -1 if S died, or did not stop (someone continued it: it
 * then waits on K, and gets "local").
 */
static int
wait_stopped(int kfd, pid_t pid)
{
	/* pid is ours; /proc may number it otherwise (a remote child's fork) */
	pid_t ppid = proc_pid(pid);
	struct timespec ts = { 0, 20000 }, t0, t;
	char c;
	int i;

	if (rfp_read(kfd, &c, 1) != 1 || c != 's')
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0;; i++) {
		switch (state(ppid)) {
		case 'T':
		case 't':	/* rf-snap -w has it already */
			return 0;
		case 0: case 'Z': case 'X': case 'x':
			return -1;
		}
		if (i < 100) {
			sched_yield();
			continue;
		}
		nanosleep(&ts, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= 3)
			return -1;
	}
}

/*
 * Continue S until it has read its answer and closed K (EOF): S may not
 * have stopped yet when P gives up waiting, and P must not return while S
 * could still stop for good.  Only a stopped S gets SIGCONT: a running one
 * (or rf-stub, which passes signals on) would see it as the program's.
 */
static void
release(int kfd, pid_t pid)
{
	struct pollfd pfd = { .fd = kfd, .events = POLLIN };
	siginfo_t si;
	char junk[64];
	int i, fd;
	pid_t ppid = proc_pid(pid);

	/* by pidfd, flagged: a remote child's proxy sends a kill of a
	   grandchild's stand-in (this L, once STUBGO has named it) home, but
	   this one it sends here; without a proxy the flag is EINVAL */
	fd = syscall(SYS_pidfd_open, pid, 0);
	for (;;) {
		if (state(ppid) == 'T' && (fd < 0 || syscall(SYS_pidfd_send_signal, fd, SIGCONT,
		    NULL, RF_FWD_PIDFD_HERE) == -1))
			kill(pid, SIGCONT);
		if (poll(&pfd, 1, 100) == 1 && rfp_read(kfd, junk, sizeof(junk)) <= 0)
			break;
	}
	if (fd >= 0)
		rfp_close(fd);
	/* The stop and continue are ours: the program's waitpid must not see them. */
	for (i = 0; i < 4; i++) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, pid, &si, WSTOPPED | WCONTINUED | WNOHANG) == -1 ||
		    si.si_pid == 0)
			break;
	}
}

/* The fork's connection and its channel state (SCM_RIGHTS). */
static void
send_conn(int kfd, struct rfp_hand *hand)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cm;
	struct iovec iov = { hand->state, hand->len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
	    .msg_controllen = sizeof(cm.b) };

	memset(&cm, 0, sizeof(cm));
	cm.h.cmsg_level = SOL_SOCKET;
	cm.h.cmsg_type = SCM_RIGHTS;
	cm.h.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&cm.h), &hand->conn, sizeof(int));
	(void)sendmsg(kfd, &mh, MSG_NOSIGNAL);
}

/*
 * "hand": S is continued, reads its line and says "g"; only then may the
 * connection follow, or S's plain read of the line would take it and drop
 * it.  If S does not ask, it dials instead.
 */
static void
hand_conn(int kfd, pid_t pid, struct rfp_hand *hand)
{
	struct pollfd pfd = { .fd = kfd, .events = POLLIN };
	char g;

	if (state(proc_pid(pid)) == 'T')
		kill(pid, SIGCONT);
	if (poll(&pfd, 1, 2000) != 1 || rfp_read(kfd, &g, 1) != 1 || g != 'g')
		return;
	send_conn(kfd, hand);
}

/* Tell S what it is now: "hand HOST TOKEN[ lazy]" or "stub ..." / "local". */
static size_t
ctl_msg(char *msg, const char *what, const char *host, const char *token, int lazy)
{
	size_t n;

	memcpy(msg, what, 5);
	n = 5 + strlen(host);
	memcpy(msg + 5, host, n - 5);
	msg[n++] = ' ';
	memcpy(msg + n, token, strlen(token));
	n += strlen(token);
	if (lazy) {
		memcpy(msg + n, " lazy", 5);
		n += 5;
	}
	msg[n++] = '\n';
	return n;
}

static void forget(pid_t pid);

struct early {
	int kfd;
	pid_t pid;
	const char *host;
	int pre;		/* S may start its stub before the answer */
	int started;		/* it did (1); S said nothing (-1) */
	int stopped;		/* S stopped (early_stopped) */
};

/* A line from K within the fork's timeout (no newline kept); -1 if none. */
static int
ctl_line(int kfd, char *b, size_t cap)
{
	struct pollfd pfd = { .fd = kfd, .events = POLLIN };
	size_t n = 0;

	while (n < cap - 1) {
		if (poll(&pfd, 1, rfp_cfg.timeout * 1000) != 1 || rfp_read(kfd, b + n, 1) != 1)
			return -1;
		if (b[n] == '\n')
			break;
		n++;
	}
	b[n] = '\0';
	return 0;
}

/* One byte from K within the fork's timeout; 0 if none. */
static char
ctl_byte(int kfd)
{
	struct pollfd pfd = { .fd = kfd, .events = POLLIN };
	char c;

	if (poll(&pfd, 1, rfp_cfg.timeout * 1000) != 1 || rfp_read(kfd, &c, 1) != 1)
		return 0;
	return c;
}

/* In the shipper, rf-send started: S must have stopped for rf-snap. */
static int
early_stopped(void *arg)
{
	struct early *x = arg;

	x->stopped = wait_stopped(x->kfd, x->pid) == 0;
	return x->stopped ? 0 : -1;
}

/*
 * In the shipper, once rf-snap has read S and ended (while rf-send waits
 * for the answer): "pre" lets S start rf-stub now (pre_stub).  It answers
 * "e" as it execs: nothing more may be sent on K until then, or S's read
 * could take it along.
 */
static int
early_pre(void *arg)
{
	struct early *x = arg;
	char b[8];

	if (!x->pre)
		return 0;
	x->pre = 0;
	if (send(x->kfd, "pre\n", 4, MSG_NOSIGNAL) != 4)
		return 0;
	/* Whatever its state: rf-agent lets S go without waiting for it to be
	   back in its stop (on its way there, it would stay), and S, still in
	   the wrapper until it reads this line, drops the SIGCONT (drop_cont). */
	kill(x->pid, SIGCONT);
	x->started = ctl_line(x->kfd, b, sizeof(b)) == 0 && b[0] == 'e' ? 1 : -1;
	return x->started == 1;
}

/*
 * A line from K within the fork's timeout, read whole once it is there (a
 * peek for its end, then one read), newline dropped: 0, or -1.
 */
static int
ctl_whole_line(int kfd, char *b, size_t cap)
{
	struct pollfd pfd = { .fd = kfd, .events = POLLIN };
	ssize_t r;
	char *nl;

	for (;;) {
		if (poll(&pfd, 1, rfp_cfg.timeout * 1000) != 1)
			return -1;
		if ((r = recv(kfd, b, cap - 1, MSG_PEEK)) <= 0)
			return -1;
		if ((nl = memchr(b, '\n', r)) != NULL)
			break;
		if ((size_t)r == cap - 1)
			return -1;
	}
	r = nl - b + 1;
	if (recv(kfd, b, r, 0) != r)
		return -1;
	b[r - 1] = '\0';
	return 0;
}

/*
 * In the shipper: rf-agent handed the connection over before the reply
 * (docs/FORK.md "The agent"): "prehand HOST" and the connection go to the
 * stub, which sends HELLO at once, then reads the reply and passes its line
 * back on K ("-WHY" if the child does not run there: the stub then ends).
 */
static int
early_prehand(void *arg, struct rfp_hand *hand, char *line, size_t cap)
{
	struct early *x = arg;
	char msg[CTLMAX];
	size_t n = strlen(x->host);

	memcpy(msg, "prehand ", 8);
	memcpy(msg + 8, x->host, n);
	msg[8 + n] = '\n';
	if (x->started != 1 || send(x->kfd, msg, 9 + n, MSG_NOSIGNAL) != (ssize_t)(9 + n))
		return -1;
	send_conn(x->kfd, hand);
	return ctl_whole_line(x->kfd, line, cap);
}

/*
 * In the shipper, as soon as rf-send has passed the reply and the fork's
 * connection: S becomes the stub while rf-send and rf-snap still end.
 */
static void
early_hand(void *arg, const char *token, int lazy, struct rfp_hand *hand)
{
	struct early *x = arg;
	char msg[CTLMAX];
	size_t n = ctl_msg(msg, "hand ", x->host, token, lazy);

	(void)send(x->kfd, msg, n, MSG_NOSIGNAL);
	/* S is rf-stub (it said "e"), which takes the line alone and the
	   connection after it: no need to wait for its "g" (release reads
	   it).  If its exec failed ("x"), S drops both unread. */
	if (x->started == 1)
		send_conn(x->kfd, hand);
	else
		hand_conn(x->kfd, x->pid, hand);
}

/*
 * The end of a fork whose stub started early (early_pre): S is rf-stub,
 * waiting on K for the answer.  If the child does not run there after all,
 * the stub ends unseen (forget) and a fork made now is the local child:
 * the program's atfork handlers then run twice in P (docs/FORK.md
 * "Limits").  If S's exec failed, S said "x" and is the local child.
 * Returns what fork returns; 0 in the new local child.
 */
static pid_t
early_end(struct early *x, pid_t (*realf)(void), const sigset_t *old, int ok, int early,
    struct rfp_hand *hand, const char *token, int lz, int *e)
{
	char msg[CTLMAX];
	size_t n;
	pid_t pid;
	int handed;

	if (ok && !early) {
		handed = rfp_hand_take(hand) == 0;
		n = ctl_msg(msg, handed ? "hand " : "stub ", x->host, token, lz);
		(void)send(x->kfd, msg, n, MSG_NOSIGNAL);
		if (handed)
			hand_conn(x->kfd, x->pid, hand);
		else
			ctl_byte(x->kfd);
	}
	if (!ok) {
		(void)send(x->kfd, "local\n", 6, MSG_NOSIGNAL);
		if (ctl_byte(x->kfd) != 'x') {
			forget(x->pid);
			if ((pid = realf()) == 0) {
				rfp_close(x->kfd);
				cld_child();
				sigprocmask(SIG_SETMASK, old, NULL);
				return 0;
			}
			*e = errno;
			return pid;
		}
	}
	release(x->kfd, x->pid);
	return x->pid;
}

/*
 * The server refused post-copy after S had become the stub (early_pre):
 * S's image cannot be read again.  The stub ends unseen and the fork starts
 * over, with the whole image (its atfork handlers then run twice, as for a
 * local fallback).  0 if S was the local child already ("x": its exec had
 * failed): the fork ends with S.
 */
static int
again(struct early *x, struct rfp_hand *hand, int kfd, const sigset_t *old)
{
	(void)send(kfd, "local\n", 6, MSG_NOSIGNAL);
	if (ctl_byte(kfd) == 'x') {
		x->started = 0;
		return 0;
	}
	forget(x->pid);
	rfp_hand_free(hand);
	cld_leave();
	rfp_close(kfd);
	sigprocmask(SIG_SETMASK, old, NULL);
	return 1;
}

static pid_t
remote_fork(pid_t (*realf)(void), const struct rfp_maps *m)
{
	char host[RFP_HOST], token[RFP_TOKEN], msg[CTLMAX];
	struct rfp_str why = { .n = 0 };
	struct rfp_hand hand = { .fd = -1, .conn = -1 };
	sigset_t all, old;
	pid_t pid, self = getpid();
	struct early x;
	uint64_t gen;
	int k[2], e, ok = 0, handed = 0, early = 0, lazy, lz;
	size_t n;

	if (rfp_find_tools(&why) == -1) {
		rfp_log("fork stays local: ", why.s, NULL);
		return realf();
	}
	pick_host(host);
	if (host[0] == '\0') {
		rfp_log("fork stays local: RFORK_HOSTS: a host name too long", NULL);
		return realf();
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, k) == -1) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return realf();
	}
	/* post-copy (docs/FORK.md): worth it for a big private anonymous mapping */
	lazy = rfp_cfg.postcopy && m->big && !atomic_load(&postcopy_off);
	/* the early stub (docs/FORK.md step 4) */
	x = (struct early){ k[0], 0, host, rfp_cfg.early, 0, 0 };
	gen = rfp_cfg.selfrec ? atomic_fetch_add(&forkgen, 1) + 1 : 0;
	if (gen != 0)
		record_once();
	cld_enter();
	prctl(PR_GET_NAME, fork_name);
	pid = realf();
	if (pid == 0) {
		/* the child's host, through S: set in S alone, where no other
		   thread forks meanwhile and takes it for another host */
		memcpy(my_host, host, sizeof(my_host));
		return child(k, &old, self, lazy, gen, m);
	}
	e = errno;
	rfp_close(k[1]);
	if (pid > 0) {
		lz = lazy;
		x.pid = pid;
		/* rf-send starts while S stops (early_stopped) */
		ok = rfp_ship_hand(pid, self, k[1], host, token, &hand, &lz, &why,
		    early_hand, &x, &early, early_pre, early_stopped, early_prehand, gen) == 0;
		/* a server that cannot take it: once more, the whole image */
		if (!ok && lazy && x.stopped && strstr(why.s, "post-copy") != NULL) {
			rfp_log("fork: no post-copy on ", host, ": ", why.s, NULL);
			atomic_store(&postcopy_off, 1);
			lz = 0;
			if (x.started == 0)
				ok = rfp_ship_hand(pid, self, k[1], host, token, &hand, &lz,
				    &why, early_hand, &x, &early, NULL, NULL, NULL, gen) == 0;
			else if (again(&x, &hand, k[0], &old)) {
				/* S is its stub already: a new fork, the whole image */
				return remote_fork(realf, m);
			}
		}
		if (x.started == -1) {
			/* S took "pre" and said nothing: it may be anything now */
			kill(pid, SIGKILL);
			ok = 0;
			why.n = 0;
			rfp_cat(&why, "its copy did not answer");
			x.started = 1;
		}
		if (x.started == 1) {
			pid = early_end(&x, realf, &old, ok, early, &hand, token, lz, &e);
			if (pid == 0) {
				rfp_hand_free(&hand);
				return 0;
			}
		} else {
			if (ok && !early) {
				handed = rfp_hand_take(&hand) == 0;
				n = ctl_msg(msg, handed ? "hand " : "stub ", host, token, lz);
				(void)send(k[0], msg, n, MSG_NOSIGNAL);
			} else if (!ok) {
				memcpy(msg, "local\n", 6);
				(void)send(k[0], msg, 6, MSG_NOSIGNAL);
			}
			if (handed)
				hand_conn(k[0], pid, &hand);
			release(k[0], pid);
		}
		rfp_hand_free(&hand);
	}
	cld_leave();
	rfp_close(k[0]);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (!ok && why.n > 0)
		rfp_log(pid > 0 ? "fork stays local: " : "fork fails: ", why.s, NULL);
	errno = e;
	return pid;
}

/*
 * A remote child's fork (SPEC 8, docs/FORK.md "Grandchildren").  Its pid
 * and parent are at home: its stub forks a new stub there (FORKSTUB), whose
 * pid the grandchild takes.  Here, a local copy L stops as S does; it is
 * shipped as the grandchild with that pid; the new stub is told to dial
 * (STUBGO) and L ends unseen.  Fds of this host go along (rf-send -L) to
 * this host's server only.  If anything fails the new stub ends unseen and
 * L is a local child on this host (its pid is this namespace's).
 */
/*
 * The copy L stays, at the grandchild's pid, as its stand-in: without
 * the program's fds (a pipe's end held here would never let its reader see
 * the end) and memory (C's writes would copy every page still shared), as
 * `rf-stub -W`, or here if that exec fails.
 */
static void __attribute__((noreturn))
stand_in(pid_t proxy)
{
	char num[16], *argv[] = { "rf-stub", "-W", num, NULL }, *envp[] = { NULL };

	snprintf(num, sizeof(num), "%d", (int)proxy);
	syscall(SYS_close_range, 0, ~0U, 0);
	execve(rfp_cfg.stub, argv, envp);
	rf_standin(proxy);
}

static pid_t
grand_child(int k[2], const sigset_t *old, pid_t ppid, pid_t newpid, pid_t proxy)
{
	char msg[CTLMAX];
	pid_t *tidp = NULL, mytid = syscall(SYS_gettid);
	char c = 's';

	rfp_close(k[0]);
	cld_child();
	/* glibc's cached tid (raise, mutexes) must be the grandchild's: the
	   kernel's clear_child_tid of a fork child points at it. */
	if (prctl(PR_GET_TID_ADDRESS, &tidp) != 0 || tidp == NULL || *tidp != mytid)
		c = 'x';
	else
		*tidp = newpid;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && getppid() == ppid) {
		(void)!rfp_write(k[1], &c, 1);
		if (c == 's')
			syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
		read_ctl(k[1], msg, sizeof(msg));
		prctl(PR_SET_PDEATHSIG, 0);
		if (strncmp(msg, "remote", 6) == 0) {
			rfp_close(k[1]);
			drop_listener(msg);
			prctl(PR_SET_NAME, fork_name);
			sigprocmask(SIG_SETMASK, old, NULL);
			return 0;
		}
		if (strncmp(msg, "gone", 4) == 0)
			syscall(SYS_exit_group, 0);
		/* no death signal: it would come when the thread that forked
		   ends, not C; C's end ends its namespace, and the stand-in */
		if (strncmp(msg, "stand", 5) == 0)
			stand_in(proxy);
	}
	if (c == 's')
		*tidp = mytid;
	rfp_close(k[1]);
	sigprocmask(SIG_SETMASK, old, NULL);
	return 0;
}

/* The copy L is reaped; its SIGCHLD is ours unless another child has news. */
static void
forget(pid_t pid)
{
	struct timespec zero = { 0, 0 };
	siginfo_t si;
	sigset_t chld;

	while (waitpid(pid, NULL, __WALL) == -1 && errno == EINTR)
		;
	memset(&si, 0, sizeof(si));
	if (waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid != 0)
		return;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigtimedwait(&chld, NULL, &zero);
}

static pid_t
grand_fork(pid_t (*realf)(void))
{
	struct rf_fwd_forkreq fr;
	struct rfp_str why = { .n = 0 };
	char msg[8];
	sigset_t all, old;
	pid_t pid, self = getpid(), proxy = getppid(), newpid;
	int k[2], e, ok = 0, stand = 0;
	long r = 0;

	if (rfp_find_tools(&why) == -1)
		goto local;
	memset(&fr, 0, sizeof(fr));
	pick_host(fr.host);
	if (fr.host[0] == '\0') {
		rfp_cat(&why, "RFORK_HOSTS: a host name too long");
		goto local;
	}
	if (syscall(SYS_ioctl, RF_FWD_MAGIC_FD, RF_FWD_IOC_FORKSTUB, &fr) == -1) {
		if (errno == EPERM) {
			/* said once: this process's forks all stay here */
			grand_off = 1;
			rfp_cat(&why, "a process started on this host has no pid at home");
		} else {
			rfp_cat(&why, "no new stub at home: ");
			rfp_cat(&why, strerrordesc_np(errno));
		}
		goto local;
	}
	newpid = fr.pid;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	/* fds of this host go along only to this host's server */
	if (fr.nlocal > 0) {
		if (my_host[0] == '\0') {
			e = ENXIO;
			/* said once: a program exec'd here loses the name */
			if (!atomic_exchange(&said_nohost, 1))
				rfp_cat(&why, "fds of this host are open, and this host's name is "
				    "unknown (said once)");
			goto abort;
		}
		memcpy(fr.host, my_host, sizeof(fr.host));
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, k) == -1) {
		e = errno;
		rfp_cat(&why, "socketpair: ");
		rfp_cat(&why, strerrordesc_np(e));
		goto abort;
	}
	cld_enter();
	prctl(PR_GET_NAME, fork_name);
	pid = realf();
	if (pid == 0) {
		memcpy(my_host, fr.host, sizeof(my_host));	/* the grandchild's, through L */
		return grand_child(k, &old, self, newpid, proxy);
	}
	e = errno;
	rfp_close(k[1]);
	if (pid > 0) {
		if (wait_stopped(k[0], pid) == 0)
			ok = rfp_ship(pid, self, newpid, k[1], fr.host,
			    fr.nlocal > 0 ? fr.fdkey : NULL, fr.token, &why) == 0;
		else
			rfp_cat(&why, "its local copy did not stop");
		/* L has the grandchild's pid (the proxy made it the next one):
		   it stays as the grandchild's stand-in, if proxy and stub can */
		fr.standin = pid == newpid ? RF_FWD_STANDIN : 0;
		if (ok && (r = syscall(SYS_ioctl, RF_FWD_MAGIC_FD, RF_FWD_IOC_STUBGO, &fr)) == -1) {
			ok = 0;
			rfp_cat(&why, "the new stub: ");
			rfp_cat(&why, strerrordesc_np(errno));
		}
		stand = ok && r == 1 && fr.standin == RF_FWD_STANDIN;
		snprintf(msg, sizeof(msg), "%s\n", stand ? "stand" : ok ? "gone" : "local");
		(void)send(k[0], msg, strlen(msg), MSG_NOSIGNAL);
		release(k[0], pid);
		if (ok && !stand)
			forget(pid);
	}
	cld_leave();
	rfp_close(k[0]);
	if (!ok) {
		fr.host[0] = '\0';
		syscall(SYS_ioctl, RF_FWD_MAGIC_FD, RF_FWD_IOC_STUBGO, &fr);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid > 0 && !ok)
		rfp_log("fork stays on this host: ", why.s, NULL);
	errno = e;
	return ok ? newpid : pid;
abort:
	fr.host[0] = '\0';
	syscall(SYS_ioctl, RF_FWD_MAGIC_FD, RF_FWD_IOC_STUBGO, &fr);
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = e;
local:
	if (rfp_cfg.strict) {
		rfp_log("fork fails (RFORK_STRICT=1): ", why.s, NULL);
		errno = EAGAIN;
		return -1;
	}
	if (why.n > 0)
		rfp_log("fork stays on this host: ", why.s, NULL);
	return realf();
}

static int
goes_remote(void)
{
	unsigned long n;

	switch (rfp_cfg.policy) {
	case RFP_NONE:
		return 0;
	case RFP_BAD:
		if (!atomic_exchange(&said_policy, 1))
			rfp_log("RFORK_POLICY=", rfp_cfg.policy_str,
			    ": not all, none, every:N or first:N; forks stay local", NULL);
		return 0;
	default:
		break;
	}
	n = atomic_fetch_add(&nforks, 1) + 1;
	if ((rfp_cfg.policy == RFP_EVERY && n % rfp_cfg.n != 0) ||
	    (rfp_cfg.policy == RFP_FIRST && n > rfp_cfg.n))
		return 0;
	if (rfp_cfg.nhosts == 0) {
		if (!atomic_exchange(&said_hosts, 1))
			rfp_log("RFORK_HOSTS not set: forks stay local", NULL);
		return 0;
	}
	return 1;
}

static pid_t
wrap(pid_t (*realf)(void))
{
	struct rfp_str why = { .n = 0 };
	struct rfp_maps m;

	if (rfp_cfg.policy == RFP_NONE || grand_off || !goes_remote())
		return realf();
	if (rfp_shared_mapping(&why, &m) != 0 || rfp_confined(&why, remote_child)) {
		if (rfp_cfg.strict) {
			rfp_log("fork fails (RFORK_STRICT=1): ", why.s, NULL);
			errno = EAGAIN;
			return -1;
		}
		rfp_log("fork stays local: ", why.s, NULL);
		return realf();
	}
	return remote_child ? grand_fork(realf) : remote_fork(realf, &m);
}

EXPORT pid_t
fork(void)
{
	if (!atomic_load(&inited))
		init();
	if (real_fork == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return wrap(real_fork);
}

EXPORT pid_t
_Fork(void)
{
	if (!atomic_load(&inited))
		init();
	if (real_Fork == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return wrap(real_Fork);
}
