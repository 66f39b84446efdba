/*
 * fwdproxy.c - the remote side of forwarded calls: the child's seccomp
 * filter, and the proxy that answers its notifications, locally or through
 * the stub (docs/FORK.md "The proxy").
 *
 * Every home fd number of the child holds the same placeholder: the write
 * end of a pipe whose read end is closed, which the proxy also holds.  Calls
 * the filter does not send here fail on it loudly (read EBADF, write EPIPE,
 * poll POLLERR, mmap ENODEV) instead of acting on the wrong file.  (O_PATH
 * would be quieter still, but SECCOMP_IOCTL_NOTIF_ADDFD cannot pass it.)
 * kcmp(KCMP_FILE) against the proxy's copy tells whether a number is still a
 * placeholder: how a successful exec is noticed, its close-on-exec home
 * numbers being gone.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/kcmp.h>
#include <linux/seccomp.h>
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/random.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "rf_fwd.h"

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#define ERESTARTSYS 512		/* restarted, or EINTR, as the child's handler says */

#define F_HOME 0x1
#define F_CLOEXEC 0x2
#define F_POST 0x4		/* writes to it may be posted (the stub said so) */
#define PERR_MAX 16
#define HOLD_US 20		/* posted writes wait this long for company */

/*
 * A family: the processes sharing one fd table.  Family 0 is the child's;
 * each process it (or its own) starts here without CLONE_FILES gets one,
 * a copy of its parent's table taken at the clone call.
 */
struct fam {
	uint16_t id;
	pid_t pid;		/* a process of it; 0 while the clone is pending */
	int pidfd;		/* readable once that process is gone */
	uint8_t *fds;		/* number -> F_HOME | F_CLOEXEC */
	size_t nfds;
	int exec_pending;
	pid_t exec_tid;
	uint64_t seq;		/* order of the clone calls */
	/* its ids as the stub last had them (CREDS); dirty: a set*id call or
	   an exec was let through since */
	int cred_dirty, ngroups;
	uint32_t uid, gid, ruid, rgid, umask, groups[RF_FWD_GROUPS_MAX];
};

#define FAM_MAX 1024
#define PENDING_MAX 64
#define QMAX 256		/* notifications held while a call waits at home */

#define EPSET_MAX 16
#define EPENT_MAX 64
struct px {
	struct rf_fwd_conn c;
	const struct rf_proxy_opts *o;
	int lfd, connfd, pidfd, ph;
	int sigfd;		/* SIGCHLD: the child stopped */
	pid_t child, self;
	const char **local;	/* the local path list with RFORK_LOCAL's, or NULL */
	/* epoll sets holding home fds: the proxy's copy of each set's file, and
	   what the child registered there of its home fds ("epoll", below) */
	struct epset {
		int dup;
		size_t n;
		struct epent { int fd, off; uint32_t events; uint64_t data; } e[EPENT_MAX];
	} *ep[EPSET_MAX];
	size_t nep;
	char *localbuf;
	struct fam *fams[FAM_MAX];	/* [0] is the child's */
	size_t nfam;
	struct fam *f;		/* the family of the call in hand */
	pid_t last_tid;
	pid_t tid;		/* the thread whose call is in hand */
	uint16_t next_id;
	uint64_t seq;
	int32_t *hello;		/* HELLO's (fd, flags) pairs */
	size_t nhello;
	int armed;
	struct seccomp_notif *n;
	struct seccomp_notif_resp *r;
	size_t nsize, rsize;
	char *buf;		/* RF_FWD_IO_MAX + slack */
	char path[RF_FWD_PATH_MAX], path2[RF_FWD_PATH_MAX];
	struct rf_err *e;
	int lost;
	pid_t hostpid;		/* the child in /proc, which shows the outer namespace */
	/* notifications taken while a call waited at home, for the main loop */
	uint8_t *q;
	size_t nq;
	/* join_waits' poll is in hand: cut short, it goes back to join_waits */
	int joint;
	/* the stub serves a set the child inherited (RF_FWD_EPOLL) */
	int epoll_home;
	/* poll mixing home and local fds: local copies watched during a call */
	struct pollfd *watch;
	size_t nwatch;
	int watched;
	/* signals the signalfds among them take: a signalfd says what is
	   pending for whoever polls it, so the proxy looks at C's (sigfd_ready) */
	unsigned long long sigw;
	/* fds of this host a grandchild takes along (do_magic) */
	int fdsock;		/* listening, or -1 */
	int32_t *lfds;		/* (number, fd flags, our copy) triples */
	size_t nlfds;
	/* grandchildren whose local copy stays, at their pid, as their
	   stand-in (a child of C here that ends as the grandchild ends) */
	pid_t *standin;
	size_t nstandin, capstandin;
	int creds;		/* the stub takes CREDS */
	/* write-behind: allowed (HELLO), bytes posted and not acknowledged,
	   errors of posted writes kept for the next call on their number */
	int post_on, post_used;
	int post_revoked;	/* a REVOKE came: HELLO's POSTOK no longer holds */
	uint64_t posted;
	struct perr { uint16_t fam; int fd, err; } perr[PERR_MAX];
	size_t nperr;
};

/* The syscalls the filter sends to the proxy. */
static const int notified[] = {
	SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid, SYS_setresgid,
	SYS_setgroups, SYS_setfsuid, SYS_setfsgid, SYS_umask,
	SYS_pidfd_open, SYS_pidfd_send_signal, SYS_getpriority, SYS_setpriority,
	SYS_prlimit64,
	SYS_read, SYS_write, SYS_open, SYS_close, SYS_stat, SYS_fstat, SYS_lstat,
	SYS_poll, SYS_lseek, SYS_ioctl, SYS_pread64, SYS_pwrite64, SYS_readv,
	SYS_writev, SYS_access, SYS_dup, SYS_dup2, SYS_sendfile, SYS_sendto,
	SYS_recvfrom, SYS_sendmsg, SYS_recvmsg, SYS_shutdown, SYS_wait4,
	SYS_execve, SYS_fcntl, SYS_flock, SYS_fsync, SYS_fdatasync, SYS_truncate,
	SYS_ftruncate, SYS_getcwd, SYS_chdir, SYS_fchdir, SYS_rename, SYS_mkdir,
	SYS_rmdir, SYS_creat, SYS_link, SYS_unlink, SYS_symlink, SYS_readlink,
	SYS_chmod, SYS_fchmod, SYS_fchown, SYS_setpgid, SYS_getpgrp, SYS_setsid,
	SYS_getpgid, SYS_getsid, SYS_getdents64, SYS_fadvise64, SYS_waitid,
	SYS_openat, SYS_mkdirat, SYS_newfstatat, SYS_unlinkat, SYS_renameat,
	SYS_linkat, SYS_symlinkat, SYS_readlinkat, SYS_fchmodat, SYS_faccessat,
	SYS_ppoll, SYS_splice, SYS_tee, SYS_fallocate, SYS_dup3, SYS_preadv,
	SYS_pwritev, SYS_execveat, SYS_copy_file_range, SYS_preadv2, SYS_pwritev2,
	SYS_statx, SYS_close_range, SYS_openat2, SYS_faccessat2, SYS_renameat2,
	SYS_select, SYS_pselect6, SYS_clone, SYS_clone3, SYS_fork, SYS_vfork,
	SYS_accept, SYS_accept4, SYS_getsockname, SYS_getpeername, SYS_getsockopt,
	SYS_setsockopt, SYS_epoll_ctl, SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2,
	SYS_utimensat, SYS_utimes, SYS_utime, SYS_futimesat, SYS_chown, SYS_lchown,
	SYS_fchownat, SYS_statfs, SYS_fstatfs, SYS_mknod, SYS_mknodat,
	SYS_getxattr, SYS_lgetxattr, SYS_fgetxattr, SYS_setxattr, SYS_lsetxattr,
	SYS_fsetxattr, SYS_listxattr, SYS_llistxattr, SYS_flistxattr, SYS_removexattr,
	SYS_lremovexattr, SYS_fremovexattr,
};

/* Signals to itself stay native; anything else comes here. */
static const int signalling[] = {
	SYS_kill, SYS_tkill, SYS_tgkill, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo,
};

/* What the filter does with a syscall number: */
enum { ACT_ALLOW = -2, ACT_NOTIF = -1 };	/* or an index into signalling */
#define FILTER_NR_MAX 1024			/* above every number listed */

/* A jump (jt or jf of instruction at) to an action's code, patched last. */
struct ffix {
	size_t at;
	int act, jt;
};

struct fgen {
	struct sock_filter *f;
	size_t k, max;
	uint32_t *lo;		/* interval i: numbers lo[i] .. lo[i + 1] - 1 */
	int *act;		/* and what the filter does with them */
	size_t nfix;
	struct ffix fix[256];
};

/*
 * A binary search over the intervals [lo, hi) of syscall numbers: one JGE
 * per node, each leaf a jump to its interval's action, patched at the end.
 */
static int
fgen_tree(struct fgen *g, size_t lo, size_t hi)
{
	size_t mid = (lo + hi) / 2, at;

	if (g->k >= g->max || g->nfix + 2 > sizeof(g->fix) / sizeof(g->fix[0]))
		return -1;
	at = g->k++;
	g->f[at] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, g->lo[mid], 0, 0);
	if (mid - lo == 1)
		g->fix[g->nfix++] = (struct ffix){ at, g->act[lo], 0 };
	else if (fgen_tree(g, lo, mid) == -1)
		return -1;
	if (hi - mid == 1) {
		g->fix[g->nfix++] = (struct ffix){ at, g->act[mid], 1 };
		return 0;
	}
	if (g->k - at - 1 > 255)
		return -1;
	g->f[at].jt = g->k - at - 1;
	return fgen_tree(g, mid, hi);
}

/*
 * The filter: the notified syscalls go to the proxy, and so do the
 * signalling ones unless aimed at the child itself (args[0] == self).  The
 * numbers are found by a binary search, not a list: the kernel runs the
 * program for every syscall number when it is installed (the action cache),
 * and a list of 100 tests made that seccomp() call cost 0.17 ms of every
 * remote fork; the search, 0.04 ms.
 */
size_t
rf_fwd_filter_prog(pid_t self, struct sock_filter *f, size_t max)
{
	enum { NS = sizeof(signalling) / sizeof(signalling[0]) };
	uint32_t lo[2 * (sizeof(notified) / sizeof(notified[0]) + NS) + 2], nr, top = 0;
	int act[sizeof(lo) / sizeof(lo[0])];
	struct fgen g = { .f = f, .max = max, .lo = lo, .act = act };
	size_t n = 0, i, allow, notif, sig[NS], to;
	signed char what[FILTER_NR_MAX + 1];

	memset(what, ACT_ALLOW, sizeof(what));
	for (i = 0; i < sizeof(notified) / sizeof(notified[0]); i++) {
		if ((nr = notified[i]) >= FILTER_NR_MAX)
			return 0;
		what[nr] = ACT_NOTIF;
		top = nr > top ? nr : top;
	}
	for (i = 0; i < NS; i++) {
		if ((nr = signalling[i]) >= FILTER_NR_MAX)
			return 0;
		what[nr] = i;
		top = nr > top ? nr : top;
	}
	/* Intervals of one action, from 0 to past the highest listed number. */
	for (nr = 0; nr <= top + 1; nr++)
		if (n == 0 || what[nr] != act[n - 1]) {
			lo[n] = nr;
			act[n++] = what[nr];
		}
	if (max < 8 + 2 * NS + n)
		return 0;
	f[g.k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
	    offsetof(struct seccomp_data, arch));
	f[g.k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[g.k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[g.k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
	    offsetof(struct seccomp_data, nr));
	f[g.k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);
	f[g.k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	if (n < 2 || fgen_tree(&g, 0, n) == -1 || g.k + 2 * NS + 2 > max)
		return 0;
	for (i = 0; i < NS; i++) {
		sig[i] = g.k;
		f[g.k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, args[0]));
		f[g.k] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)self, 0, 0);
		g.fix[g.nfix++] = (struct ffix){ g.k, ACT_ALLOW, 1 };
		g.fix[g.nfix++] = (struct ffix){ g.k, ACT_NOTIF, 0 };
		g.k++;
	}
	allow = g.k;
	f[g.k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	notif = g.k;
	f[g.k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	for (i = 0; i < g.nfix; i++) {
		to = g.fix[i].act == ACT_ALLOW ? allow : g.fix[i].act == ACT_NOTIF ? notif :
		    sig[g.fix[i].act];
		if (to - g.fix[i].at - 1 > 255)
			return 0;
		if (g.fix[i].jt)
			f[g.fix[i].at].jt = to - g.fix[i].at - 1;
		else
			f[g.fix[i].at].jf = to - g.fix[i].at - 1;
	}
	return g.k;
}

int
rf_fwd_filter_install(pid_t self)
{
	struct sock_filter f[RF_FWD_FILTER_MAX];
	struct sock_fprog prog;
	int fd;

	prog.len = rf_fwd_filter_prog(self, f, RF_FWD_FILTER_MAX);
	prog.filter = f;
	/* KILLABLE: once the proxy holds a call only a fatal signal ends the
	   wait, so a signal cannot lose what the stub already read at home. */
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
	    SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
	/* Without CAP_SYS_ADMIN the kernel wants no_new_privs. */
	if (fd == -1 && errno == EACCES) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
			return -1;
		fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		    SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
		    &prog);
	}
	return fd;
}

/* --- the child's memory and the notification fd --- */

static int
rmem(struct px *p, pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)(uintptr_t)addr, len };
	ssize_t k;

	if (len == 0)
		return 0;
	k = process_vm_readv(pid, &l, 1, &r, 1, 0);
	if (k != (ssize_t)len)
		return -EFAULT;
	(void)p;
	return 0;
}

static int
wmem(struct px *p, pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec l = { (void *)buf, len }, r = { (void *)(uintptr_t)addr, len };
	ssize_t k;

	if (len == 0)
		return 0;
	k = process_vm_writev(pid, &l, 1, &r, 1, 0);
	if (k != (ssize_t)len)
		return -EFAULT;
	(void)p;
	return 0;
}

/* A NUL-terminated string, a page at a time (the next may be unmapped). */
static int
rstr(struct px *p, pid_t pid, uint64_t addr, char *buf, size_t cap)
{
	size_t got = 0, k;
	struct iovec l, r;
	ssize_t n;
	char *z;

	if (addr == 0)
		return -EFAULT;
	while (got < cap) {
		k = 4096 - ((addr + got) & 4095);
		if (k > cap - got)
			k = cap - got;
		l.iov_base = buf + got;
		l.iov_len = k;
		r.iov_base = (void *)(uintptr_t)(addr + got);
		r.iov_len = k;
		n = process_vm_readv(pid, &l, 1, &r, 1, 0);
		if (n <= 0)
			return -EFAULT;
		if ((z = memchr(buf + got, '\0', n)) != NULL)
			return z - buf;
		got += n;
	}
	(void)p;
	return -ENAMETOOLONG;
}

static void
resp(struct px *p, uint64_t id, int64_t val, int err)
{
	struct seccomp_notif_resp *r = p->r;

	memset(r, 0, p->rsize);
	r->id = id;
	if (err < 0)
		r->error = err;
	else
		r->val = val;
	/* ENOENT: the child was killed, or the call was interrupted. */
	ioctl(p->lfd, SECCOMP_IOCTL_NOTIF_SEND, r);
}

/* A result as the stub gave it: -errno or a value. */
static void
result(struct px *p, uint64_t id, int64_t ret)
{
	if (ret < 0)
		resp(p, id, 0, ret);
	else
		resp(p, id, ret, 0);
}

static void
cont(struct px *p, uint64_t id)
{
	struct seccomp_notif_resp *r = p->r;

	memset(r, 0, p->rsize);
	r->id = id;
	r->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	ioctl(p->lfd, SECCOMP_IOCTL_NOTIF_SEND, r);
}

/* Put the placeholder at newfd (-1: lowest free); with send, it answers the
   call with the number.  Returns the number or -errno. */
static int
addfd(struct px *p, uint64_t id, int newfd, int cloexec, int send)
{
	struct seccomp_notif_addfd a;
	int r;

	memset(&a, 0, sizeof(a));
	a.id = id;
	a.srcfd = p->ph;
	a.newfd = newfd < 0 ? 0 : newfd;
	a.flags = (newfd >= 0 ? SECCOMP_ADDFD_FLAG_SETFD : 0) |
	    (send ? SECCOMP_ADDFD_FLAG_SEND : 0);
	a.newfd_flags = cloexec ? O_CLOEXEC : 0;
	r = ioctl(p->lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
	return r == -1 ? -errno : r;
}

/* --- the table of home numbers --- */

static int
home(struct px *p, int64_t fd)
{
	return fd >= 0 && (uint64_t)fd < p->f->nfds && (p->f->fds[fd] & F_HOME);
}

/* The error of a posted write on number fd of family fam, taken (0: none). */
static int
perr_take(struct px *p, uint16_t fam, int64_t fd)
{
	size_t i;
	int err;

	for (i = 0; i < p->nperr; i++)
		if (p->perr[i].fam == fam && p->perr[i].fd == fd) {
			err = p->perr[i].err;
			p->perr[i] = p->perr[--p->nperr];
			return err;
		}
	return 0;
}

static int
mark(struct px *p, int64_t fd, int flags)
{
	size_t k;
	uint8_t *v;

	if (fd < 0)
		return -1;
	/* a number closed or reused: its posted error goes with it */
	if (p->nperr > 0)
		perr_take(p, p->f->id, fd);
	if ((uint64_t)fd >= p->f->nfds) {
		if (flags == 0)
			return 0;
		for (k = p->f->nfds ? p->f->nfds : 64; k <= (uint64_t)fd; k *= 2)
			;
		if ((v = realloc(p->f->fds, k)) == NULL)
			return -1;
		memset(v + p->f->nfds, 0, k - p->f->nfds);
		p->f->fds = v;
		p->f->nfds = k;
	}
	p->f->fds[fd] = flags;
	return 0;
}

/* Is number fd open in the caller's table at all?  (pidfd_getfd dups it.) */
static int
child_has(struct px *p, int fd)
{
	int k = syscall(SYS_pidfd_getfd, p->f->pidfd, fd, 0);

	if (k < 0)
		return 0;
	close(k);
	return 1;
}

/* --- talking to the stub --- */

static int
lost(struct px *p, const char *what)
{
	if (!p->lost)
		rf_errf(p->e, RF_EX_UNAVAILABLE, "proxy: %s: connection to the stub lost%s%s",
		    what, errno ? ": " : "", errno ? strerror(errno) : "");
	p->lost = 1;
	return -1;
}

/* An fd the stub called postable was made non-blocking at home. */
static void
revoke_all(struct px *p)
{
	size_t i, k;

	/* also before arming: the fds HELLO called postable must not be marked */
	p->post_revoked = 1;
	for (i = 0; i < p->nfam; i++)
		for (k = 0; k < p->fams[i]->nfds; k++)
			p->fams[i]->fds[k] &= ~F_POST;
}

static struct fam *
fam_by_id(struct px *p, uint16_t id)
{
	size_t i;

	for (i = 0; i < p->nfam; i++)
		if (p->fams[i]->id == id)
			return p->fams[i];
	return NULL;
}

/* An acknowledgement of posted writes (rf_fwd.h). */
static void
on_ack(struct px *p, const struct rf_fwd_msg *m)
{
	struct fam *f;

	if (m->flags & RF_FWDF_REVOKE)
		revoke_all(p);
	p->posted = (uint64_t)m->a[2] < p->posted ? p->posted - m->a[2] : 0;
	if (m->a[0] >= 0)
		return;
	if (p->o->verbose)
		fprintf(stderr, "proxy: posted write to fd %lld failed: %s\n", (long long)m->a[1],
		    strerror(-m->a[0]));
	if ((f = fam_by_id(p, m->fam)) == NULL || m->a[1] < 0 || (uint64_t)m->a[1] >= f->nfds)
		return;
	/* the next write there is synchronous, and fails with this first */
	f->fds[m->a[1]] &= ~F_POST;
	perr_take(p, m->fam, m->a[1]);
	if (p->nperr == PERR_MAX)
		p->perr[0] = p->perr[--p->nperr];
	p->perr[p->nperr].fam = m->fam;
	p->perr[p->nperr].fd = m->a[1];
	p->perr[p->nperr++].err = -m->a[0];
}

static ssize_t
standin_find(struct px *p, pid_t pid)
{
	size_t i;

	for (i = 0; i < p->nstandin; i++)
		if (p->standin[i] == pid)
			return i;
	return -1;
}

/*
 * What the grandchild did (SIGNAL SIGCHLD with a[1] its CLD_ code, a[2] its
 * wait status, a[3] its pid), done by its stand-in, so that C's waits and
 * SIGCHLD are the kernel's own: it stops, goes on, or ends as the
 * grandchild did.  0 if the pid has no stand-in.
 */
static int
standin_event(struct px *p, const struct rf_fwd_msg *m)
{
	pid_t pid = (pid_t)(m->a[3] & 0xffffffff);
	ssize_t i = standin_find(p, pid);
	siginfo_t si;

	if (i < 0)
		return 0;
	switch (m->a[1]) {
	case CLD_STOPPED:
		kill(pid, SIGSTOP);
		break;
	case CLD_CONTINUED:
		kill(pid, SIGCONT);
		break;
	case CLD_EXITED:
	case CLD_KILLED:
	case CLD_DUMPED:
		memset(&si, 0, sizeof(si));
		si.si_signo = RF_FWD_STANDIN_SIG;
		si.si_code = SI_QUEUE;
		si.si_pid = p->self;
		si.si_uid = getuid();
		si.si_value.sival_ptr = (void *)(uintptr_t)((uint64_t)RF_FWD_STANDIN << 32 |
		    (uint32_t)m->a[2]);
		if (syscall(SYS_rt_sigqueueinfo, pid, RF_FWD_STANDIN_SIG, &si) == -1)
			kill(pid, SIGKILL);	/* not the stand-in it was: at least no waiting */
		p->standin[i] = p->standin[--p->nstandin];
		break;
	}
	return 1;
}

static int
on_signal_msg(struct px *p, const struct rf_fwd_msg *m)
{
	if (m->flags & RF_FWDF_REVOKE)
		revoke_all(p);
	siginfo_t si;

	if (m->a[0] < 1 || m->a[0] > 64)
		return 0;
	/* a grandchild with a stand-in here stopped, went on or ended */
	if (m->a[0] == SIGCHLD && m->a[1] > 0 && standin_event(p, m))
		return 0;
	/* sigqueue's: its value and sender, as the stub got them */
	if (m->a[1] == SI_QUEUE) {
		memset(&si, 0, sizeof(si));
		si.si_signo = (int)m->a[0];
		si.si_code = SI_QUEUE;
		si.si_pid = (pid_t)(m->a[3] & 0xffffffff);
		si.si_uid = (uid_t)((uint64_t)m->a[3] >> 32);
		si.si_value.sival_ptr = (void *)(uintptr_t)m->a[2];
		if (syscall(SYS_rt_sigqueueinfo, p->child, (int)m->a[0], &si) == 0)
			return 0;
	}
	kill(p->child, (int)m->a[0]);
	return 0;
}

/* A one-way message to the stub, for the current family. */
static int
oneway4(struct px *p, int op, int flags, int64_t a0, int64_t a1, int64_t a2, int64_t a3,
    const void *data, size_t len)
{
	struct rf_fwd_msg m;

	memset(&m, 0, sizeof(m));
	m.op = op;
	m.flags = flags;
	m.fam = p->f->id;
	m.a[0] = a0;
	m.a[1] = a1;
	m.a[2] = a2;
	m.a[3] = a3;
	m.dlen = len;
	if (rf_fwd_send(&p->c, &m, data) == -1)
		return lost(p, rf_fwd_op_name(op));
	return 0;
}

static int
oneway(struct px *p, int op, int flags, int64_t a0, int64_t a1, int64_t a2,
    const void *data, size_t len)
{
	return oneway4(p, op, flags, a0, a1, a2, 0, data, len);
}

/* The process's pid in /proc (the outer numbering): NSpid of its pidfd. */
static pid_t
host_pid(int pidfd)
{
	char path[64], line[256];
	FILE *f;
	pid_t pid = -1;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "NSpid:", 6) == 0) {
			pid = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return pid;
}

static pid_t
host_tid(struct px *p, pid_t tid)
{
	pid_t pid;
	int fd;

	if (tid == p->child)
		return p->hostpid;
	if ((fd = syscall(SYS_pidfd_open, tid, O_EXCL /* PIDFD_THREAD */)) == -1 &&
	    (fd = syscall(SYS_pidfd_open, tid, 0)) == -1)
		return -1;
	pid = host_pid(fd);
	close(fd);
	return pid;
}

/* Thread tid's signals: pending (its own and its process's), blocked, ignored. */
/* Task tid's /proc/TID/status (/proc numbers it outside), or NULL. */
static FILE *
task_status(struct px *p, pid_t tid)
{
	char path[64];
	pid_t h = host_tid(p, tid);

	if (h <= 0)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)h);
	return fopen(path, "re");
}

static int
sig_state(struct px *p, pid_t tid, unsigned long long *pnd, unsigned long long *blk,
    unsigned long long *ign)
{
	char line[256];
	unsigned long long shd = 0;
	FILE *f;

	*pnd = *blk = *ign = 0;
	if ((f = task_status(p, tid)) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "SigPnd:", 7) == 0)
			*pnd = strtoull(line + 7, NULL, 16);
		else if (strncmp(line, "ShdPnd:", 7) == 0)
			shd = strtoull(line + 7, NULL, 16);
		else if (strncmp(line, "SigBlk:", 7) == 0)
			*blk = strtoull(line + 7, NULL, 16);
		else if (strncmp(line, "SigIgn:", 7) == 0)
			*ign = strtoull(line + 7, NULL, 16);
	}
	fclose(f);
	*pnd |= shd;
	return 0;
}

/*
 * Will the kernel deliver a signal to thread tid when its call returns?
 * Only then may the proxy answer -ERESTARTSYS: without one pending the
 * number would reach the program as errno 512.
 */
static int
deliverable(struct px *p, pid_t tid)
{
	unsigned long long pnd, blk, ign;

	if (sig_state(p, tid, &pnd, &blk, &ign) == -1)
		return 0;
	/* SIGKILL and SIGSTOP are always delivered. */
	return (pnd & (~(blk | ign) | (1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1)))) != 0;
}

/* Would a signalfd of C's taking mask be readable for thread tid now? */
static int
sigfd_ready(struct px *p, pid_t tid, unsigned long long mask)
{
	unsigned long long pnd, blk, ign;

	return mask != 0 && sig_state(p, tid, &pnd, &blk, &ign) == 0 && (pnd & mask) != 0;
}

/* Our copy k of a local fd: a signalfd's mask, or 0. */
static unsigned long long
sigfd_mask(int k)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", k);
	if ((n = readlink(path, line, sizeof(line) - 1)) <= 0)
		return 0;
	line[n] = '\0';
	if (strcmp(line, "anon_inode:[signalfd]") != 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", k);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "sigmask:", 8) == 0)
			mask = strtoull(line + 8, NULL, 16);
	fclose(f);
	return mask;
}

static struct fam *family_find(struct px *p, pid_t tid);

/*
 * While one thread's call waits at home, another's call on a local fd must
 * not wait behind it (a thread writing to a local pipe that the waiting
 * poll watches, say): such calls are let through at once; anything else is
 * held for the main loop.  1 if n was let through.
 */
static int
try_native(struct px *p, struct seccomp_notif *n)
{
	struct fam *f, *save = p->f;
	int64_t fd = (int)n->data.args[0];
	int local;

	switch (n->data.nr) {
	case SYS_read: case SYS_write: case SYS_pread64: case SYS_pwrite64:
	case SYS_readv: case SYS_writev: case SYS_preadv: case SYS_pwritev:
	case SYS_preadv2: case SYS_pwritev2: case SYS_recvfrom: case SYS_sendto:
	case SYS_recvmsg: case SYS_sendmsg: case SYS_fstat: case SYS_lseek:
	case SYS_getdents64: case SYS_fsync: case SYS_fdatasync: case SYS_ftruncate:
	case SYS_fallocate: case SYS_fadvise64: case SYS_shutdown: case SYS_accept:
	case SYS_accept4: case SYS_getsockname: case SYS_getpeername:
	case SYS_getsockopt: case SYS_setsockopt: case SYS_flock: case SYS_fchmod:
	case SYS_fchown: case SYS_ioctl: case SYS_fstatfs: case SYS_fgetxattr:
	case SYS_fsetxattr: case SYS_flistxattr: case SYS_fremovexattr:
		break;
	default:
		return 0;
	}
	if (!p->armed || fd < 0 || (f = family_find(p, n->pid)) == NULL || f->exec_pending)
		return 0;
	p->f = f;
	local = !home(p, fd);
	p->f = save;
	if (local)
		cont(p, n->id);
	return local;
}

/* A notification arrived during a call: through at once, or held. */
static void
take_notif(struct px *p)
{
	struct seccomp_notif *n;

	if (p->q == NULL && (p->q = malloc(QMAX * p->nsize)) == NULL)
		return;
	n = (struct seccomp_notif *)(p->q + p->nq * p->nsize);
	memset(n, 0, p->nsize);
	if (ioctl(p->lfd, SECCOMP_IOCTL_NOTIF_RECV, n) == -1)
		return;
	if (!try_native(p, n))
		p->nq++;
}

static int handle(struct px *p, struct seccomp_notif *n);

/*
 * Another thread's home call came while this one waits at home for input
 * (a read, an accept or a wait with nothing to send again, or a poll, sent
 * again with what is left of its time): the wait is cut short (nothing
 * read, nothing accepted) and
 * the held calls are served first, then the wait goes again.  Without it a
 * thread blocked reading the parent's answer would hold back the write of
 * the question another thread makes (and its posted writes at home).
 */
static int
preemptible(const struct rf_fwd_msg *m)
{
	return ((m->op == RF_FWD_READ || m->op == RF_FWD_WAIT ||
	    (m->op == RF_FWD_SOCK && m->flags == RF_SOCK_ACCEPT)) && m->dlen == 0) ||
	    m->op == RF_FWD_POLL || (m->op == RF_FWD_EPOLL && m->flags == RF_EPOLL_WAIT);
}

/*
 * A call that waits for input itself does not go first: one wait would only
 * replace another (and two of them could then wait for each other).
 */
static int
waits_for_input(const struct seccomp_notif *n)
{
	switch (n->data.nr) {
	case SYS_read: case SYS_readv: case SYS_pread64: case SYS_preadv:
	case SYS_preadv2: case SYS_recvfrom: case SYS_recvmsg: case SYS_recvmmsg:
	case SYS_wait4: case SYS_waitid: case SYS_poll: case SYS_ppoll:
	case SYS_select: case SYS_pselect6: case SYS_accept: case SYS_accept4:
	case SYS_pause: case SYS_rt_sigsuspend: case SYS_nanosleep:
	case SYS_clock_nanosleep: case SYS_flock: case SYS_fcntl:
		return 1;
	default:
		return 0;
	}
}

/* What the call in hand keeps while held calls are served in its midst. */
struct inhand {
	struct fam *f;
	pid_t tid, last;
	struct pollfd *watch;
	size_t nwatch;
};

static void
inhand_keep(struct px *p, struct inhand *h)
{
	*h = (struct inhand){ p->f, p->tid, p->last_tid, p->watch, p->nwatch };
	p->watch = NULL;
	p->nwatch = 0;
}

static void
inhand_back(struct px *p, const struct inhand *h)
{
	p->f = h->f;
	p->tid = h->tid;
	p->last_tid = h->last;
	p->watch = h->watch;
	p->nwatch = h->nwatch;
}

/* The held notification at place i, out of the queue into n. */
static void
unhold(struct px *p, size_t i, struct seccomp_notif *n)
{
	memcpy(n, p->q + i * p->nsize, p->nsize);
	memmove(p->q + i * p->nsize, p->q + (i + 1) * p->nsize, (p->nq - i - 1) * p->nsize);
	p->nq--;
}

static int
serve_held(struct px *p)
{
	struct inhand h;
	struct seccomp_notif *n;
	size_t i = 0;
	int r = 0;

	if ((n = malloc(p->nsize)) == NULL)
		return 0;	/* served after this call, as before */
	inhand_keep(p, &h);
	/* the held calls that do not wait for input, in order; the rest stay */
	while (r == 0 && i < p->nq) {
		if (waits_for_input((struct seccomp_notif *)(p->q + i * p->nsize))) {
			i++;
			continue;
		}
		unhold(p, i, n);
		r = handle(p, n);
	}
	free(n);
	inhand_back(p, &h);
	return r;
}

/*
 * A wait of this thread at home that another thread's may join: the one
 * waiting now (a plain read or an accept, nothing to send again; its fd
 * in a[0]) ...
 */
static int
joinable_wait(const struct rf_fwd_msg *m)
{
	return m->dlen == 0 && ((m->op == RF_FWD_READ && !(m->flags & RF_FWDF_POS)) ||
	    (m->op == RF_FWD_SOCK && m->flags == RF_SOCK_ACCEPT));
}

/* ... and the held call of another thread of its family: a read or an
   accept on a home fd. */
static int
joinable_notif(struct px *p, struct seccomp_notif *n, struct fam *f, int64_t *fd)
{
	struct fam *save = p->f;
	int r;

	switch (n->data.nr) {
	case SYS_read: case SYS_readv: case SYS_recvfrom: case SYS_recvmsg:
	case SYS_accept: case SYS_accept4:
		break;
	default:
		return 0;
	}
	if (family_find(p, n->pid) != f || f->exec_pending)
		return 0;
	*fd = (int)n->data.args[0];
	p->f = f;
	r = *fd >= 0 && home(p, *fd);
	p->f = save;
	return r;
}

static int call(struct px *p, struct rf_fwd_msg *m, const void *data, struct rf_fwd_msg *rep,
    void *out, size_t cap);
static void req(struct rf_fwd_msg *m, int op, int flags, int64_t a0, int64_t a1, int64_t a2,
    int64_t a3);

/*
 * This thread waits at home for input on fd (a read or an accept), and
 * other threads of its family (held) wait to read or accept on home fds
 * too: one poll at home for them all, and each held call goes as soon as
 * its fd is ready, until this one's is (or a signal for this thread
 * comes): then its call goes again.  Other
 * calls that come meanwhile cut the poll short and go first, as they cut a
 * read short.  Without it the first reader would hold back the others even
 * when their input is there, and wait for what only they would bring.
 */
static int
join_waits(struct px *p, int64_t fd)
{
	struct pollfd hp[64];
	size_t idx[64], nh, i, k;
	struct seccomp_notif *n, *q;
	struct rf_fwd_msg m, rep;
	struct inhand h;
	int64_t hfd;
	int r = 0;

	if ((n = malloc(p->nsize)) == NULL)
		return 0;	/* the held reads wait their turn, as before */
	inhand_keep(p, &h);
	for (;;) {
		hp[0] = (struct pollfd){ (int)fd, POLLIN, 0 };
		nh = 1;
		for (i = 0; i < p->nq && nh < sizeof(hp) / sizeof(*hp); i++) {
			q = (struct seccomp_notif *)(p->q + i * p->nsize);
			if (joinable_notif(p, q, h.f, &hfd)) {
				hp[nh] = (struct pollfd){ (int)hfd, POLLIN, 0 };
				idx[nh++] = i;
			}
		}
		if (nh == 1)
			break;
		p->f = h.f;
		p->tid = h.tid;
		req(&m, RF_FWD_POLL, 0, nh, -1, 0, 0);
		m.dlen = nh * sizeof(*hp);
		p->joint = 1;
		r = call(p, &m, hp, &rep, p->buf, m.dlen);
		p->joint = 0;
		if (r == -1)
			break;
		if (rep.a[0] == -EINTR) {
			if (deliverable(p, h.tid))
				break;
			if ((r = serve_held(p)) == -1)
				break;
			continue;	/* and the readers held by now */
		}
		if (rep.a[0] <= 0 || rep.dlen != m.dlen)
			break;		/* each read on its own again */
		memcpy(hp, p->buf, m.dlen);
		if (hp[0].revents)
			break;
		/* the ready ones, last first: the queue's earlier places stay */
		for (k = nh - 1; k >= 1 && r == 0; k--) {
			if (!hp[k].revents)
				continue;
			unhold(p, idx[k], n);
			r = handle(p, n);
		}
		if (r == -1)
			break;
	}
	free(n);
	inhand_back(p, &h);
	return r;
}

/*
 * One request and its reply; the reply's data (at most cap bytes) lands in
 * out.  SIGNAL messages met on the way are delivered first, so that the
 * signal is pending in the child when the call returns.  While the stub
 * works, the caller may die, or get a signal on this host: then the stub's
 * call is cut short (the urgent byte), as the kernel would cut a local one.
 */
static int
call(struct px *p, struct rf_fwd_msg *m, const void *data, struct rf_fwd_msg *rep,
    void *out, size_t cap)
{
	struct pollfd pf[3 + 512];
	struct seccomp_notif *nn;
	int cancelled, r, slow = 0, preempt;
	size_t i, npf, nw, nq;
	int64_t nfd, left;
	/* a poll sent again keeps its end (its time in a[1]) */
	long end = (m->op == RF_FWD_POLL || (m->op == RF_FWD_EPOLL &&
	    m->flags == RF_EPOLL_WAIT)) && m->a[1] > 0 ? rf_now_ms() + m->a[1] : 0;

	m->fam = p->f->id;
	if (p->o->verbose)
		fprintf(stderr, "proxy: %s fd %lld (family %u)%s%s\n", rf_fwd_op_name(m->op),
		    (long long)m->a[0], m->fam, data != NULL && m->dlen > 0 && m->dlen < 200 ? " " : "",
		    data != NULL && m->dlen > 0 && m->dlen < 200 && ((const char *)data)[m->dlen - 1] == '\0' ? (const char *)data : "");
again:
	cancelled = 0;
	preempt = 0;
	if (rf_fwd_send(&p->c, m, data) == -1)
		return lost(p, rf_fwd_op_name(m->op));
	for (;;) {
		if (rf_fwd_op_blocks(m->op) && rf_fwd_pending(&p->c) == 0 && p->connfd >= 0 &&
		    p->c.io.urgent != NULL &&
		    (p->c.io.pending == NULL || !p->c.io.pending(p->c.io.ctx))) {
			pf[0].fd = p->connfd;
			pf[0].events = POLLIN;
			pf[1].fd = cancelled ? -1 : p->f->pidfd;
			pf[1].events = POLLIN;
			/* Other threads' notifications are taken only once the call
			   has waited 1 ms: polling the listener costs every quick
			   call (measured: 20 us forwarded writes became 100 us). */
			pf[2].fd = slow && p->nq < QMAX ? p->lfd : -1;
			pf[2].events = POLLIN;
			npf = 3;
			for (i = 0; !cancelled && i < p->nwatch && npf < sizeof(pf) / sizeof(*pf); i++)
				pf[npf++] = p->watch[i];
			nw = npf;
			r = !slow && !cancelled && rf_fwd_spin(pf, npf) ? 1 :
			    poll(pf, npf, cancelled ? -1 : slow ? 20 : 1);
			if (r == 0 && !slow) {
				slow = 1;
				continue;
			}
			if (r == -1 && errno != EINTR)
				return lost(p, rf_fwd_op_name(m->op));
			if (r > 0 && (pf[2].revents & POLLIN)) {
				nq = p->nq;
				take_notif(p);
				nn = (struct seccomp_notif *)(p->q + nq * p->nsize);
				/* another thread's home call: let it go first; another
				   thread's read: wait for both (join_waits) */
				if (p->nq > nq && !cancelled && (preemptible(m) || p->joint) &&
				    !waits_for_input(nn)) {
					preempt = 1;
					pf[1].revents = POLLIN;
				} else if (p->nq > nq && !cancelled &&
				    (joinable_wait(m) || p->joint) &&
				    joinable_notif(p, nn, p->f, &nfd)) {
					preempt = 2;
					pf[1].revents = POLLIN;
				}
			}
			if (r == 0 && deliverable(p, p->tid))
				pf[1].revents = POLLIN;
			if (r == 0 && !cancelled && sigfd_ready(p, p->tid, p->sigw)) {
				p->watched = 1;
				pf[1].revents = POLLIN;
			}
			for (i = 3; !cancelled && i < nw; i++)
				if (pf[i].revents) {
					p->watched = 1;
					pf[1].revents = POLLIN;
				}
			if (!cancelled && pf[1].revents) {
				p->c.io.urgent(p->c.io.ctx);
				cancelled = 1;
			}
			if (r <= 0 || !pf[0].revents)
				continue;
		}
		errno = 0;
		if (rf_fwd_recv_hdr(&p->c, rep) != 1)
			return lost(p, rf_fwd_op_name(m->op));
		if (rep->op == RF_FWD_SIGNAL) {
			if (rep->dlen != 0)
				goto proto;
			on_signal_msg(p, rep);
			continue;
		}
		if (rep->op == RF_FWD_WRITE && (rep->flags & RF_FWDF_POST)) {
			if (rep->dlen != 0)
				goto proto;
			on_ack(p, rep);
			continue;
		}
		if (rep->op != m->op || rep->dlen > cap)
			goto proto;
		/* every posted write before the request is done */
		p->posted = 0;
		if (rep->flags & RF_FWDF_REVOKE)
			revoke_all(p);
		else if ((rep->flags & RF_FWDF_POSTOK) && m->op == RF_FWD_WRITE && p->post_on &&
		    home(p, m->a[0]))
			p->f->fds[m->a[0]] |= F_POST;
		if (rf_fwd_recv_data(&p->c, out, rep->dlen) == -1)
			return lost(p, rf_fwd_op_name(m->op));
		if ((rep->flags & RF_FWDF_INTR) && rep->a[0] == -EINTR && p->watched) {
			/* cut short for a local fd of a mixed poll: nothing home */
			rep->a[0] = 0;
			rep->dlen = 0;
		} else if ((rep->flags & RF_FWDF_INTR) && rep->a[0] == -EINTR) {
			/* join_waits' poll: it says what comes next */
			if (p->joint)
				return 0;
			/* Cut short for the other threads' calls: those first, or
			   for another's read: the first input of either first. */
			if (preempt && !deliverable(p, p->tid)) {
				if ((preempt == 2 ? join_waits(p, m->a[0]) : serve_held(p)) == -1)
					return -1;
				if (end != 0)
					m->a[1] = (left = end - rf_now_ms()) > 0 ? left : 0;
				goto again;
			}
			/* Cut short by a signal: the child's kernel restarts the
			   call or fails it with EINTR, as its handler says.  If no
			   signal will be delivered there, the call goes again. */
			if (deliverable(p, p->tid))
				rep->a[0] = -ERESTARTSYS;
			else if (syscall(SYS_tgkill, p->f->pid, p->tid, 0) == 0)
				goto again;
		}
		return 0;
	}
proto:
	errno = EPROTO;
	rf_errf(p->e, RF_EX_PROTOCOL, "proxy: %s: unexpected reply %s (%u bytes)",
	    rf_fwd_op_name(m->op), rf_fwd_op_name(rep->op), rep->dlen);
	p->lost = 1;
	return -1;
}

static void
req(struct rf_fwd_msg *m, int op, int flags, int64_t a0, int64_t a1, int64_t a2, int64_t a3)
{
	memset(m, 0, sizeof(*m));
	m->op = op;
	m->flags = flags;
	m->a[0] = a0;
	m->a[1] = a1;
	m->a[2] = a2;
	m->a[3] = a3;
}

/* --- arming and exec --- */

static int is_placeholder(struct px *p, int fd);

/* Number fd holds the placeholder already, with this close-on-exec flag
   (rf_proxy_opts.preset: put there by the restore). */
static int
preset(struct px *p, int fd, int cloexec)
{
	size_t i;

	for (i = 0; i < p->o->npreset; i++)
		if (p->o->preset[2 * i] == fd)
			return !p->o->preset[2 * i + 1] == !cloexec && is_placeholder(p, fd);
	return 0;
}

static int
arm(struct px *p, uint64_t id)
{
	struct rlimit old, big;
	size_t i;
	int fd, cloexec, r = 0, raised = 0;

	for (i = 0; i < p->nhello; i++) {
		fd = p->hello[2 * i];
		cloexec = p->hello[2 * i + 1] & FD_CLOEXEC;
		r = preset(p, fd, cloexec) ? 0 : addfd(p, id, fd, cloexec, 0);
		/*
		 * A home fd above the child's RLIMIT_NOFILE (the parent lowered it
		 * after opening the fd; a local child keeps such fds): ADDFD checks
		 * the limit, so lift it for the moment.
		 */
		if (r == -EBADF && !raised &&
		    prlimit(p->child, RLIMIT_NOFILE, NULL, &old) == 0) {
			big = old;
			big.rlim_cur = big.rlim_max;
			if (prlimit(p->child, RLIMIT_NOFILE, &big, NULL) == 0) {
				raised = 1;
				r = addfd(p, id, fd, cloexec, 0);
			}
		}
		if (r < 0)
			break;
		if (mark(p, fd, F_HOME | (cloexec ? F_CLOEXEC : 0) |
		    (p->post_on && !p->post_revoked &&
		    (p->hello[2 * i + 1] & RF_FWD_HELLO_POSTOK) ? F_POST : 0)) == -1) {
			r = -ENOMEM;
			break;
		}
	}
	if (raised)
		prlimit(p->child, RLIMIT_NOFILE, &old, NULL);
	if (r < 0)
		return r;
	p->armed = 1;
	return 0;
}

static int
is_placeholder(struct px *p, int fd)
{
	return syscall(SYS_kcmp, p->f->pid, p->self, KCMP_FILE, fd, p->ph) == 0;
}

/*
 * After an execve: the close-on-exec home numbers are gone once it worked,
 * and still placeholders when the exec'ing thread is back with another call.
 */
static int
exec_check(struct px *p, pid_t tid)
{
	int32_t *gone;
	size_t i, n = 0, k = 0;
	int r;

	for (i = 0; i < p->f->nfds; i++)
		if ((p->f->fds[i] & (F_HOME | F_CLOEXEC)) == (F_HOME | F_CLOEXEC)) {
			n++;
			if (!is_placeholder(p, i))
				k++;
		}
	if (k == 0) {
		if (tid == p->f->exec_tid || n == 0)
			p->f->exec_pending = 0;
		return 0;
	}
	if ((gone = calloc(n, sizeof(*gone))) == NULL)
		return -1;
	for (i = 0, k = 0; i < p->f->nfds; i++)
		if ((p->f->fds[i] & (F_HOME | F_CLOEXEC)) == (F_HOME | F_CLOEXEC)) {
			gone[k++] = htole32(i);
			p->f->fds[i] = 0;
		}
	p->f->exec_pending = 0;
	r = oneway(p, RF_FWD_EXEC, 0, 0, 0, 0, gone, k * sizeof(*gone));
	free(gone);
	return r;
}

/* --- where a path is opened --- */

/* /dev/fd/N and its aliases name the child's fd N: -1 if not one. */
static int
fdpath(struct px *p, const char *path)
{
	static const char *const pre[] = { "/dev/fd/", "/proc/self/fd/",
	    "/proc/thread-self/fd/" };
	char own[64];
	const char *s = NULL, *err;
	size_t i;
	int n;

	if (strcmp(path, "/dev/stdin") == 0)
		return 0;
	if (strcmp(path, "/dev/stdout") == 0)
		return 1;
	if (strcmp(path, "/dev/stderr") == 0)
		return 2;
	for (i = 0; i < sizeof(pre) / sizeof(pre[0]) && s == NULL; i++)
		if (strncmp(path, pre[i], strlen(pre[i])) == 0)
			s = path + strlen(pre[i]);
	snprintf(own, sizeof(own), "/proc/%d/fd/", (int)p->f->pid);
	if (s == NULL && strncmp(path, own, strlen(own)) == 0)
		s = path + strlen(own);
	if (s == NULL || *s == '\0' || strchr(s, '/') != NULL)
		return -1;
	n = strtonum(s, 0, INT_MAX, &err);
	return err == NULL ? n : -1;
}

/* A shared object, by name: "x.so" or "x.so.1.2". */
static int
shared_object(const char *path)
{
	const char *b = strrchr(path, '/'), *so;

	b = b != NULL ? b + 1 : path;
	if ((so = strstr(b, ".so")) == NULL || so == b)
		return 0;
	for (so += 3; *so != '\0'; so++)
		if (*so != '.' && (*so < '0' || *so > '9'))
			return 0;
	return 1;
}

/*
 * POSIX shared memory and semaphores (/dev/shm) are the host's: one the
 * child makes lives here, beside its own children, who can share it.  One
 * that exists only at home is home's: a mapping of it is refused (MAPFD),
 * never silently a second object.  1 at home (or home cannot say), 0 here.
 * The proxy's /dev/shm is C's: the namespace has no mounts of its own.
 */
static int
shm_home(struct px *p, const char *path)
{
	struct rf_fwd_msg m, rep;
	struct stat here;
	char st[256];

	if (lstat(path, &here) == 0)
		return 0;

	req(&m, RF_FWD_STATAT, 0, AT_FDCWD, AT_SYMLINK_NOFOLLOW, 0, 0);
	m.dlen = strlen(path) + 1;
	if (call(p, &m, path, &rep, st, sizeof(st)) == -1)
		return 1;
	return rep.a[0] != -ENOENT;
}

/* 1: at home, 0: here. */
static int
where(struct px *p, int64_t dirfd, const char *path)
{
	if (path[0] == '/' && strncmp(path, "/dev/shm/", 9) == 0 && strstr(path, "/..") == NULL)
		return shm_home(p, path);
	if (path[0] == '/')
		return !rf_fwd_path_local(path, p->local != NULL ? p->local : p->o->local);
	if (dirfd == AT_FDCWD)
		return 1;
	return home(p, dirfd);
}

/* The dirfd to send with a path that is home. */
static int64_t
home_dirfd(int64_t dirfd, const char *path)
{
	return path[0] == '/' ? AT_FDCWD : dirfd;
}

/* --- write-behind (docs/FORK.md "Posted writes") --- */

static int idle_msg(struct px *p);

/* Messages the stub has sent already (acks, signals), taken without waiting. */
static int
drain(struct px *p)
{
	struct pollfd pf;

	for (;;) {
		if (rf_fwd_pending(&p->c) < RF_FWD_HDR &&
		    (p->c.io.pending == NULL || !p->c.io.pending(p->c.io.ctx))) {
			if (p->connfd < 0)
				return 0;
			pf.fd = p->connfd;
			pf.events = POLLIN;
			if (poll(&pf, 1, 0) <= 0)
				return 0;
		}
		if (idle_msg(p) == -1)
			return -1;
	}
}

/* A write failed at home with err (negative): the signal it raises in a
   writer, SIGPIPE (unless MSG_NOSIGNAL) or SIGXFSZ (past the file size
   limit; the stub lets its own go), goes to the caller. */
static void
write_signal(struct px *p, struct seccomp_notif *n, int64_t err, int64_t msgflags)
{
	if (err == -EPIPE && !(msgflags & MSG_NOSIGNAL))
		syscall(SYS_tgkill, p->f->pid, n->pid, SIGPIPE);
	else if (err == -EFBIG)
		syscall(SYS_tgkill, p->f->pid, n->pid, SIGXFSZ);
}

/* A posted write to fd failed at home: this call fails with its error, and
   raises SIGPIPE as the write would have.  Returns -errno, or 0. */
static int
posted_error(struct px *p, struct seccomp_notif *n, int64_t fd, int64_t msgflags)
{
	int err;

	if (p->nperr == 0 || (err = perr_take(p, p->f->id, fd)) == 0)
		return 0;
	write_signal(p, n, -err, msgflags);
	return -err;
}

/*
 * A plain, blocking write of count bytes to a home pipe, FIFO or stream
 * socket may be posted, while what is unacknowledged stays in the window;
 * anything else (offsets, flags but MSG_NOSIGNAL, O_NONBLOCK, files, ttys)
 * waits for its result.
 */
static int
can_post(struct px *p, int64_t fd, int pos, int64_t msgflags, uint64_t count)
{
	return p->post_on && !pos && (msgflags & ~(int64_t)MSG_NOSIGNAL) == 0 && count > 0 &&
	    home(p, fd) && (p->f->fds[fd] & F_POST) && count <= RF_FWD_POST_WINDOW &&
	    p->posted + RF_FWD_POST_COST(count) <= RF_FWD_POST_WINDOW;
}

static int
post(struct px *p, int64_t fd, int64_t msgflags, const void *data, size_t len)
{
	struct rf_fwd_msg m;

	req(&m, RF_FWD_WRITE, RF_FWDF_POST, fd, 0, 0, msgflags);
	m.fam = p->f->id;
	m.dlen = len;
	if (p->o->verbose)
		fprintf(stderr, "proxy: write fd %lld (family %u), posted\n", (long long)fd, m.fam);
	/* held a moment: the child's next call often follows at once */
	if (rf_fwd_hold(&p->c, &m, data) == -1)
		return lost(p, "write");
	p->posted += RF_FWD_POST_COST(len);
	p->post_used = 1;
	return 0;
}

/* Before a write: learn what the stub says of earlier ones.  1: answered. */
static int
write_first(struct px *p, struct seccomp_notif *n, int64_t fd, int64_t msgflags)
{
	int r;

	if (p->posted > 0 && drain(p) == -1)
		return -1;
	if ((r = posted_error(p, n, fd, msgflags)) != 0) {
		resp(p, n->id, 0, r);
		return 1;
	}
	return 0;
}

/* --- the calls --- */

static int
do_read(struct px *p, struct seccomp_notif *n, int64_t fd, uint64_t buf, uint64_t count,
    int pos, int64_t off, int64_t msgflags)
{
	struct rf_fwd_msg m, rep;
	size_t cnt = count > RF_FWD_IO_MAX ? RF_FWD_IO_MAX : count;
	int r;

	req(&m, RF_FWD_READ, pos ? RF_FWDF_POS : 0, fd, cnt, off, msgflags);
	if (call(p, &m, NULL, &rep, p->buf, cnt) == -1)
		return -1;
	if (rep.a[0] > 0 && (r = wmem(p, n->pid, buf, p->buf, rep.dlen)) < 0)
		rep.a[0] = r;
	result(p, n->id, rep.a[0]);
	return 0;
}

static int
do_write(struct px *p, struct seccomp_notif *n, int64_t fd, uint64_t buf, uint64_t count,
    int pos, int64_t off, int64_t msgflags)
{
	struct rf_fwd_msg m, rep;
	uint64_t done = 0;
	char *ob;		/* the data goes out from there */
	size_t k;
	int r;

	if ((r = write_first(p, n, fd, msgflags)) != 0)
		return r < 0 ? -1 : 0;
	if (can_post(p, fd, pos, msgflags, count)) {
		r = 0;
		do {
			ob = rf_fwd_outbuf(&p->c);
			k = count - done > RF_FWD_IO_MAX ? RF_FWD_IO_MAX : count - done;
			if ((r = rmem(p, n->pid, buf + done, ob, k)) < 0)
				break;
			if (post(p, fd, msgflags, ob, k) == -1)
				return -1;
			done += k;
		} while (done < count);
		result(p, n->id, done > 0 ? (int64_t)done : r);
		return 0;
	}
	/* Large writes go in pieces, so that a regular file gets them whole. */
	do {
		ob = rf_fwd_outbuf(&p->c);
		k = count - done > RF_FWD_IO_MAX ? RF_FWD_IO_MAX : count - done;
		if ((r = rmem(p, n->pid, buf + done, ob, k)) < 0) {
			rep.a[0] = r;
			break;
		}
		req(&m, RF_FWD_WRITE, pos ? RF_FWDF_POS : 0, fd, off + done, 0, msgflags);
		m.dlen = k;
		if (call(p, &m, ob, &rep, p->buf, 0) == -1)
			return -1;
		if (rep.a[0] < 0)
			break;
		done += rep.a[0];
	} while ((size_t)rep.a[0] == k && done < count);
	if (done == 0)
		write_signal(p, n, rep.a[0], msgflags);
	result(p, n->id, done > 0 ? (int64_t)done : rep.a[0]);
	return 0;
}

/* readv/writev and the like: one READ or WRITE of the whole vector. */
static int
do_vec(struct px *p, struct seccomp_notif *n, int wr, int64_t fd, uint64_t iovp, uint64_t cnt,
    int pos, int64_t off, int64_t msgflags)
{
	struct iovec *iov;
	struct iovec l;
	struct rf_fwd_msg m, rep;
	char *ob = rf_fwd_outbuf(&p->c);
	size_t total = 0, i, left;
	int r;

	if (cnt > 1024) {
		resp(p, n->id, 0, -EINVAL);
		return 0;
	}
	if ((iov = calloc(cnt ? cnt : 1, sizeof(*iov))) == NULL) {
		resp(p, n->id, 0, -ENOMEM);
		return 0;
	}
	if ((r = rmem(p, n->pid, iovp, iov, cnt * sizeof(*iov))) < 0)
		goto fail;
	for (i = 0; i < cnt; i++) {
		if (iov[i].iov_len > RF_FWD_IO_MAX - total)
			iov[i].iov_len = RF_FWD_IO_MAX - total;
		total += iov[i].iov_len;
	}
	l.iov_base = wr ? ob : p->buf;
	l.iov_len = total;
	if (wr) {
		if (total > 0 && process_vm_readv(n->pid, &l, 1, iov, cnt, 0) != (ssize_t)total) {
			r = -EFAULT;
			goto fail;
		}
		if ((r = write_first(p, n, fd, msgflags)) != 0) {
			free(iov);
			return r < 0 ? -1 : 0;
		}
		if (can_post(p, fd, pos, msgflags, total)) {
			if (post(p, fd, msgflags, ob, total) == -1)
				goto lost;
			free(iov);
			result(p, n->id, total);
			return 0;
		}
		req(&m, RF_FWD_WRITE, pos ? RF_FWDF_POS : 0, fd, off, 0, msgflags);
		m.dlen = total;
		if (call(p, &m, ob, &rep, p->buf, 0) == -1)
			goto lost;
		write_signal(p, n, rep.a[0], msgflags);
	} else {
		req(&m, RF_FWD_READ, pos ? RF_FWDF_POS : 0, fd, total, off, msgflags);
		if (call(p, &m, NULL, &rep, p->buf, total) == -1)
			goto lost;
		if (rep.a[0] > 0) {
			for (i = 0, left = rep.dlen; i < cnt; i++) {
				if (iov[i].iov_len > left)
					iov[i].iov_len = left;
				left -= iov[i].iov_len;
			}
			l.iov_len = rep.dlen;
			if (process_vm_writev(n->pid, &l, 1, iov, cnt, 0) != (ssize_t)rep.dlen)
				rep.a[0] = -EFAULT;
		}
	}
	free(iov);
	result(p, n->id, rep.a[0]);
	return 0;
fail:
	free(iov);
	resp(p, n->id, 0, r);
	return 0;
lost:
	free(iov);
	return -1;
}

/*
 * sendmsg with SCM_RIGHTS on a home socket: the fds must be home ones (the
 * stub holds them; a file of this host cannot cross): EOPNOTSUPP else, as
 * for any other ancillary data.
 */
static int
send_rights(struct px *p, struct seccomp_notif *n, const struct msghdr *mh)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int) * RF_SOCK_FDS_MAX)]; } cb;
	int fd = (int)n->data.args[0], flags = (int)n->data.args[2], r, f;
	char *ob = rf_fwd_outbuf(&p->c);
	struct iovec iov[64], l;
	struct rf_fwd_msg m, rep;
	struct msghdr h = *mh;
	struct cmsghdr *c;
	size_t nf = 0, total = 0, i, k;
	int32_t nums[RF_SOCK_FDS_MAX];

	if (h.msg_controllen > sizeof(cb) || h.msg_iovlen > 64)
		return -EOPNOTSUPP;
	if ((r = rmem(p, n->pid, (uintptr_t)h.msg_control, cb.b, h.msg_controllen)) < 0)
		return r;
	h.msg_control = cb.b;
	for (c = CMSG_FIRSTHDR(&h); c != NULL; c = CMSG_NXTHDR(&h, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			return -EOPNOTSUPP;
		for (k = 0; CMSG_LEN(sizeof(int) * (k + 1)) <= c->cmsg_len; k++) {
			memcpy(&f, CMSG_DATA(c) + sizeof(int) * k, sizeof(int));
			if (!home(p, f))
				return child_has(p, f) ? -EOPNOTSUPP : -EBADF;
			if (nf == RF_SOCK_FDS_MAX)
				return -ETOOMANYREFS;
			nums[nf++] = f;
		}
	}
	if (nf == 0)
		return -EINVAL;
	if ((r = posted_error(p, n, fd, flags)) < 0)
		return r;
	if ((r = rmem(p, n->pid, (uintptr_t)h.msg_iov, iov, h.msg_iovlen * sizeof(*iov))) < 0)
		return r;
	for (i = 0; i < h.msg_iovlen; i++) {
		if (iov[i].iov_len > RF_FWD_IO_MAX - 4 * nf - total)
			iov[i].iov_len = RF_FWD_IO_MAX - 4 * nf - total;
		total += iov[i].iov_len;
	}
	memcpy(ob, nums, 4 * nf);
	l.iov_base = ob + 4 * nf;
	l.iov_len = total;
	if (total > 0 && process_vm_readv(n->pid, &l, 1, iov, h.msg_iovlen, 0) != (ssize_t)total)
		return -EFAULT;
	req(&m, RF_FWD_SOCK, RF_SOCK_SENDMSG, fd, flags, nf, 0);
	m.dlen = 4 * nf + total;
	if (call(p, &m, ob, &rep, p->buf, 0) == -1)
		return -1000;
	if (rep.a[0] == -EPIPE && !(flags & MSG_NOSIGNAL))
		syscall(SYS_tgkill, p->f->pid, n->pid, SIGPIPE);
	return rep.a[0];
}

/*
 * recvmsg with room for SCM_RIGHTS on a home socket: fds that come become
 * home numbers of the child (placeholders here, bound at the stub), in a
 * control message as the kernel would write it.
 */
static int
recv_rights(struct px *p, struct seccomp_notif *n, struct msghdr *mh)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int) * RF_SOCK_FDS_MAX)]; } cb;
	int fd = (int)n->data.args[0], flags = (int)n->data.args[2], r, newfd;
	size_t most, total = 0, i, left, nf, ok = 0;
	struct rf_fwd_msg m, rep;
	struct iovec iov[64], l;
	int32_t hdr[2], h, fds[RF_SOCK_FDS_MAX];

	if (mh->msg_iovlen > 64)
		return -EINVAL;
	most = mh->msg_controllen < CMSG_LEN(sizeof(int)) ? 0 :
	    (mh->msg_controllen - CMSG_LEN(0)) / sizeof(int);
	if (most > RF_SOCK_FDS_MAX)
		most = RF_SOCK_FDS_MAX;
	if ((r = rmem(p, n->pid, (uintptr_t)mh->msg_iov, iov, mh->msg_iovlen * sizeof(*iov))) < 0)
		return r;
	for (i = 0; i < mh->msg_iovlen; i++)
		total += iov[i].iov_len;
	req(&m, RF_FWD_SOCK, RF_SOCK_RECVMSG, fd, total, flags, most);
	if (call(p, &m, NULL, &rep, p->buf, RF_FWD_IO_MAX) == -1)
		return -1000;
	if (rep.a[0] < 0)
		return rep.a[0];
	memcpy(hdr, p->buf, 8);
	nf = hdr[0] < 0 ? 0 : (size_t)hdr[0];
	for (i = 0; i < nf; i++) {
		memcpy(&h, p->buf + 8 + 4 * i, 4);
		newfd = ok < most ? addfd(p, n->id, -1, flags & MSG_CMSG_CLOEXEC, 0) : -EMSGSIZE;
		if (newfd < 0) {
			hdr[1] |= MSG_CTRUNC;
			if (oneway(p, RF_FWD_BIND, 0, -1, 0, h, NULL, 0) == -1)
				return -1000;
			continue;
		}
		mark(p, newfd, F_HOME | (flags & MSG_CMSG_CLOEXEC ? F_CLOEXEC : 0));
		if (oneway(p, RF_FWD_BIND, 0, newfd, 0, h, NULL, 0) == -1)
			return -1000;
		fds[ok++] = newfd;
	}
	/* the bytes, then the control message and the header's lengths */
	l.iov_base = p->buf + 8 + 4 * nf;
	l.iov_len = rep.a[0];
	for (i = 0, left = rep.a[0]; i < mh->msg_iovlen; i++) {
		if (iov[i].iov_len > left)
			iov[i].iov_len = left;
		left -= iov[i].iov_len;
	}
	if (rep.a[0] > 0 && process_vm_writev(n->pid, &l, 1, iov, mh->msg_iovlen, 0) !=
	    (ssize_t)rep.a[0])
		return -EFAULT;
	if (ok > 0) {
		memset(&cb, 0, sizeof(cb));
		cb.h.cmsg_level = SOL_SOCKET;
		cb.h.cmsg_type = SCM_RIGHTS;
		cb.h.cmsg_len = CMSG_LEN(sizeof(int) * ok);
		memcpy(CMSG_DATA(&cb.h), fds, sizeof(int) * ok);
		if ((r = wmem(p, n->pid, (uintptr_t)mh->msg_control, cb.b, CMSG_SPACE(sizeof(int) *
		    ok) < mh->msg_controllen ? CMSG_SPACE(sizeof(int) * ok) : mh->msg_controllen)) < 0)
			return r;
		mh->msg_controllen = CMSG_SPACE(sizeof(int) * ok) < mh->msg_controllen ?
		    CMSG_SPACE(sizeof(int) * ok) : mh->msg_controllen;
	} else
		mh->msg_controllen = 0;
	mh->msg_namelen = 0;
	mh->msg_flags = hdr[1];
	if ((r = wmem(p, n->pid, n->data.args[1], mh, sizeof(*mh))) < 0)
		return r;
	return rep.a[0];
}

static int
do_msg(struct px *p, struct seccomp_notif *n, int wr)
{
	struct msghdr mh;
	int64_t ret;
	int r;

	if ((r = rmem(p, n->pid, n->data.args[1], &mh, sizeof(mh))) < 0) {
		resp(p, n->id, 0, r);
		return 0;
	}
	if (mh.msg_control != NULL && mh.msg_controllen > 0 &&
	    !(wr && mh.msg_name != NULL && mh.msg_namelen > 0)) {
		ret = wr ? send_rights(p, n, &mh) : recv_rights(p, n, &mh);
		if (ret == -1000)
			return -1;
		result(p, n->id, ret);
		return 0;
	}
	if (wr && ((mh.msg_name != NULL && mh.msg_namelen > 0) ||
	    (mh.msg_control != NULL && mh.msg_controllen > 0))) {
		resp(p, n->id, 0, -EOPNOTSUPP);
		return 0;
	}
	if (!wr) {
		/* Neither an address nor ancillary data come back from home. */
		mh.msg_namelen = 0;
		mh.msg_controllen = 0;
		mh.msg_flags = 0;
		if ((r = wmem(p, n->pid, n->data.args[1], &mh, sizeof(mh))) < 0) {
			resp(p, n->id, 0, r);
			return 0;
		}
	}
	return do_vec(p, n, wr, (int)n->data.args[0], (uintptr_t)mh.msg_iov, mh.msg_iovlen, 0, 0,
	    (int)n->data.args[2]);
}

static int
do_open(struct px *p, struct seccomp_notif *n, int64_t dirfd, uint64_t pathp, int64_t flags,
    int64_t mode)
{
	struct rf_fwd_msg m, rep;
	int len, fdn, newfd;

	if ((len = rstr(p, n->pid, pathp, p->path, sizeof(p->path))) < 0) {
		resp(p, n->id, 0, len);
		return 0;
	}
	if ((fdn = fdpath(p, p->path)) >= 0 && home(p, fdn)) {
		req(&m, RF_FWD_OPEN, RF_FWDF_FDPATH, fdn, flags, mode, 0);
		p->path[0] = '\0';
		len = 0;
	} else if (fdn >= 0 || !where(p, dirfd, p->path) ||
	    ((flags & O_ACCMODE) == O_RDONLY && shared_object(p->path))) {
		/* Libraries are mapped, and a placeholder cannot be: the
		   program's own come from this host, as the program does. */
		cont(p, n->id);
		return 0;
	} else
		req(&m, RF_FWD_OPEN, 0, home_dirfd(dirfd, p->path), flags, mode, 0);
	m.dlen = len + 1;
	if (call(p, &m, p->path, &rep, p->buf, 0) == -1)
		return -1;
	if (rep.a[0] < 0) {
		result(p, n->id, rep.a[0]);
		return 0;
	}
	newfd = addfd(p, n->id, -1, flags & O_CLOEXEC, 1);
	if (newfd < 0) {
		resp(p, n->id, 0, newfd);
		return oneway(p, RF_FWD_BIND, 0, -1, 0, rep.a[0], NULL, 0);
	}
	mark(p, newfd, F_HOME | (flags & O_CLOEXEC ? F_CLOEXEC : 0));
	return oneway(p, RF_FWD_BIND, 0, newfd, 0, rep.a[0], NULL, 0);
}

/* dup family: the placeholder goes to the new number, the stub binds it. */
static int
dup_to(struct px *p, struct seccomp_notif *n, int64_t old, int newfd, int cloexec)
{
	int r;

	if ((r = addfd(p, n->id, newfd, cloexec, 1)) < 0) {
		resp(p, n->id, 0, r);
		return 0;
	}
	mark(p, r, F_HOME | (cloexec ? F_CLOEXEC : 0));
	return oneway(p, RF_FWD_BIND, 0, r, 1, old, NULL, 0);
}

static int
do_dup2(struct px *p, struct seccomp_notif *n, int64_t old, int64_t newfd, int64_t flags, int three)
{
	if (old == newfd || (three && (flags & ~O_CLOEXEC))) {
		cont(p, n->id);
		return 0;
	}
	if (newfd < 0 || newfd > INT_MAX) {
		resp(p, n->id, 0, -EBADF);
		return 0;
	}
	if (home(p, old))
		return dup_to(p, n, old, newfd, flags & O_CLOEXEC);
	if (home(p, newfd) && child_has(p, old)) {
		/* A local file replaces a home number. */
		mark(p, newfd, 0);
		if (oneway(p, RF_FWD_DROP, 0, newfd, 0, 0, NULL, 0) == -1)
			return -1;
	}
	cont(p, n->id);
	return 0;
}

static int
do_fcntl(struct px *p, struct seccomp_notif *n)
{
	int64_t fd = (int)n->data.args[0], cmd = (int)n->data.args[1], arg = n->data.args[2];
	struct rf_fwd_msg m, rep;
	struct flock fl;
	int k, r;

	if (!home(p, fd)) {
		cont(p, n->id);
		return 0;
	}
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		if (arg < 0 || arg > INT_MAX) {
			resp(p, n->id, 0, -EINVAL);
			return 0;
		}
		for (k = arg; child_has(p, k); k++)
			;
		return dup_to(p, n, fd, k, cmd == F_DUPFD_CLOEXEC);
	case F_GETFD:
		resp(p, n->id, p->f->fds[fd] & F_CLOEXEC ? FD_CLOEXEC : 0, 0);
		return 0;
	case F_SETFD:
		if ((r = addfd(p, n->id, fd, arg & FD_CLOEXEC, 0)) < 0) {
			resp(p, n->id, 0, r);
			return 0;
		}
		p->f->fds[fd] = (p->f->fds[fd] & ~F_CLOEXEC) | (arg & FD_CLOEXEC ? F_CLOEXEC : 0);
		resp(p, n->id, 0, 0);
		return 0;
	case F_GETLK: case F_SETLK: case F_SETLKW:
	case F_OFD_GETLK: case F_OFD_SETLK: case F_OFD_SETLKW:
		if ((r = rmem(p, n->pid, arg, &fl, sizeof(fl))) < 0) {
			resp(p, n->id, 0, r);
			return 0;
		}
		req(&m, RF_FWD_LOCK, 0, fd, cmd, 0, 0);
		m.dlen = sizeof(fl);
		if (call(p, &m, &fl, &rep, p->buf, sizeof(fl)) == -1)
			return -1;
		if (rep.a[0] >= 0 && rep.dlen == sizeof(fl) &&
		    (r = wmem(p, n->pid, arg, p->buf, sizeof(fl))) < 0)
			rep.a[0] = r;
		result(p, n->id, rep.a[0]);
		return 0;
	default:
		req(&m, RF_FWD_FCNTL, 0, fd, cmd, arg, 0);
		if (call(p, &m, NULL, &rep, p->buf, 0) == -1)
			return -1;
		result(p, n->id, rep.a[0]);
		return 0;
	}
}

/*
 * librfork of the child asks (rf_fwd.h RF_FWD_IOC_*): its own fork is to be
 * a remote child too, with a new stub at home (docs/FORK.md "Grandchildren").
 */
static void
lfds_drop(struct px *p)
{
	size_t i;

	for (i = 0; i < p->nlfds; i++)
		close(p->lfds[3 * i + 2]);
	free(p->lfds);
	p->lfds = NULL;
	p->nlfds = 0;
	if (p->fdsock >= 0)
		close(p->fdsock);
	p->fdsock = -1;
}

/* fd's flags word in /proc/PID/fdinfo (octal). */
static int
fd_flags(struct px *p, int fd)
{
	char path[64], line[128];
	FILE *f;
	long fl = 0;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)p->hostpid, fd);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "flags:", 6) == 0)
			fl = strtol(line + 6, NULL, 8);
	fclose(f);
	return (fl & O_CLOEXEC) ? FD_CLOEXEC : 0;
}

/*
 * The child's fds of this host (not placeholders, not the filter's
 * listener): copies kept for the server, served on "rfork-fds-KEY".
 * Returns how many, -1 on failure; fr gets the lowest and the key.
 */
static int
take_local_fds(struct px *p, struct rf_fwd_forkreq *fr)
{
	char path[64], link[64];
	struct sockaddr_un a;
	struct dirent *d;
	uint8_t rnd[16];
	int32_t *v;
	DIR *dir;
	int fd, k;
	size_t i;
	ssize_t l;

	lfds_drop(p);
	fr->localfd = -1;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)p->hostpid);
	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] < '0' || d->d_name[0] > '9')
			continue;
		fd = atoi(d->d_name);
		if (syscall(SYS_kcmp, p->child, p->self, KCMP_FILE, fd, p->ph) == 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)p->hostpid, fd);
		if ((l = readlink(path, link, sizeof(link) - 1)) > 0) {
			link[l] = '\0';
			if (strcmp(link, "anon_inode:seccomp notify") == 0)
				continue;
		}
		if (p->nlfds >= RF_FWD_FDS_MAX ||
		    (k = syscall(SYS_pidfd_getfd, p->pidfd, fd, 0)) == -1)
			continue;	/* closed meanwhile */
		if ((v = reallocarray(p->lfds, p->nlfds + 1, 3 * sizeof(int32_t))) == NULL) {
			close(k);
			closedir(dir);
			lfds_drop(p);
			return -1;
		}
		p->lfds = v;
		v[3 * p->nlfds] = fd;
		v[3 * p->nlfds + 1] = fd_flags(p, fd);
		v[3 * p->nlfds + 2] = k;
		p->nlfds++;
		if (fr->localfd < 0 || fd < fr->localfd)
			fr->localfd = fd;
	}
	closedir(dir);
	if (p->nlfds == 0)
		return 0;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
		lfds_drop(p);
		return -1;
	}
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(fr->fdkey + 2 * i, 3, "%02x", rnd[i]);
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	l = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "rfork-fds-%s", fr->fdkey);
	if ((p->fdsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(p->fdsock, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + l)
	    == -1 || listen(p->fdsock, 1) == -1) {
		lfds_drop(p);
		return -1;
	}
	return p->nlfds;
}

/* The server came for the fds: only a process of our own user. */
static void
serve_local_fds(struct px *p)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(RF_FWD_FDS_BATCH * sizeof(int))]; } cb;
	int32_t pairs[2 * RF_FWD_FDS_BATCH];
	struct ucred uc;
	socklen_t ul = sizeof(uc);
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *c;
	size_t i, k, n;
	int s;

	if ((s = accept4(p->fdsock, NULL, NULL, SOCK_CLOEXEC)) == -1)
		return;
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == -1 || uc.uid != geteuid()) {
		close(s);
		return;
	}
	for (i = 0; i < p->nlfds; i += n) {
		n = p->nlfds - i > RF_FWD_FDS_BATCH ? RF_FWD_FDS_BATCH : p->nlfds - i;
		memset(&mh, 0, sizeof(mh));
		memset(&cb, 0, sizeof(cb));
		for (k = 0; k < n; k++) {
			pairs[2 * k] = p->lfds[3 * (i + k)];
			pairs[2 * k + 1] = p->lfds[3 * (i + k) + 1];
		}
		iov.iov_base = pairs;
		iov.iov_len = n * 2 * sizeof(int32_t);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cb.b;
		mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(n * sizeof(int));
		for (k = 0; k < n; k++)
			memcpy(CMSG_DATA(c) + k * sizeof(int), &p->lfds[3 * (i + k) + 2], sizeof(int));
		if (sendmsg(s, &mh, MSG_NOSIGNAL) == -1)
			break;
	}
	close(s);
	lfds_drop(p);
}

/*
 * A home file that C maps (MAPFD, from librfork's mmap once the kernel said
 * ENODEV for the placeholder): a sealed memfd of the file's size with the
 * range as it is at home now, given to C at a new number, which librfork
 * maps instead and closes.  Answered here, by ADDFD with the number.
 */
static int
do_mapfd(struct px *p, struct seccomp_notif *n, uint64_t arg)
{
	struct seccomp_notif_addfd a;
	struct rf_fwd_mapreq q;
	struct rf_fwd_msg m, rep;
	struct stat st;
	uint64_t at, end;
	size_t k;
	int r, mfd = -1;

	if ((r = rmem(p, n->pid, arg, &q, sizeof(q))) < 0)
		goto out;
	r = -EBADF;	/* not ours: the kernel's answer stands */
	if (!home(p, q.fd))
		goto out;
	r = -EXDEV;
	if ((q.flags & MAP_TYPE) != MAP_PRIVATE && (q.prot & PROT_WRITE))
		goto out;
	req(&m, RF_FWD_FSTAT, 0, q.fd, 0, 0, 0);
	if (call(p, &m, NULL, &rep, p->buf, 256) == -1)
		return -1;
	r = rep.a[0] < 0 ? (int)rep.a[0] : -EIO;
	if (rep.a[0] < 0 || rep.dlen < sizeof(st))
		goto out;
	memcpy(&st, p->buf, sizeof(st));
	r = -ENODEV;
	if (!S_ISREG(st.st_mode))
		goto out;
	r = -EINVAL;
	if (q.off < 0 || q.len == 0 || q.off + q.len < (uint64_t)q.off)
		goto out;
	at = q.off;
	end = q.off + q.len < (uint64_t)st.st_size ? q.off + q.len : (uint64_t)st.st_size;
	r = -ENOMEM;
	if (end > at && end - at > RF_FWD_MAP_MAX)
		goto out;
	if ((mfd = memfd_create("rfork-home-map", MFD_CLOEXEC | MFD_ALLOW_SEALING)) == -1 ||
	    ftruncate(mfd, st.st_size) == -1) {
		r = -errno;
		goto out;
	}
	while (at < end) {
		k = end - at > RF_FWD_IO_MAX ? RF_FWD_IO_MAX : end - at;
		req(&m, RF_FWD_READ, RF_FWDF_POS, q.fd, k, at, 0);
		if (call(p, &m, NULL, &rep, p->buf, k) == -1) {
			close(mfd);
			return -1;
		}
		/* not open for reading: what the kernel says of such a mapping */
		r = rep.a[0] == -EBADF ? -EACCES : (int)rep.a[0];
		if (rep.a[0] < 0)
			goto out;
		if (rep.a[0] == 0)
			break;	/* shorter now: the rest reads as zeros */
		if (pwrite(mfd, p->buf, rep.dlen, at) != (ssize_t)rep.dlen) {
			r = -EIO;
			goto out;
		}
		at += rep.dlen;
	}
	/* no write through any mapping of it, shared or (mprotect) later */
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == -1) {
		r = -errno;
		goto out;
	}
	memset(&a, 0, sizeof(a));
	a.id = n->id;
	a.srcfd = mfd;
	a.flags = SECCOMP_ADDFD_FLAG_SEND;
	a.newfd_flags = O_CLOEXEC;
	r = ioctl(p->lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
	close(mfd);
	/* answered with the number; or the call is gone (ENOENT), or ours failed */
	if (r == -1 && errno != ENOENT)
		resp(p, n->id, 0, -errno);
	return 0;
out:
	if (mfd >= 0)
		close(mfd);
	resp(p, n->id, 0, r);
	return 0;
}

/*
 * The next pid of this namespace (C's) is to be the new stub's, so that the
 * local copy C forks now has the grandchild's pid and can stay as its
 * stand-in.  A thread of C that makes a task first takes it: then the copy
 * ends unseen as before.
 */
static void
next_pid(pid_t pid)
{
	char v[24];
	int fd, n;

	if (pid <= 1 || (fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC)) == -1)
		return;
	n = snprintf(v, sizeof(v), "%d", (int)pid - 1);
	(void)!write(fd, v, n);
	close(fd);
}

/*
 * Is pid (numbered in this namespace) a child of C's?  /proc here numbers
 * processes outside it: the pid's own number there (its pidfd's NSpid) and
 * its parent's are compared with C's.  (Where the origin is this same
 * machine, the namespace's number names the new stub at home, whose parent
 * is C's stub, of C's number: reading /proc by it would say yes wrongly.)
 */
static int
standin_is(struct px *p, pid_t pid)
{
	char path[64], st[512], *q;
	int fd;
	ssize_t k;
	long ppid;
	pid_t h;

	if (pid <= 1 || p->hostpid <= 0 || standin_find(p, pid) >= 0 ||
	    (fd = syscall(SYS_pidfd_open, pid, 0)) == -1)
		return 0;
	h = host_pid(fd);
	close(fd);
	if (h <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)h);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	k = read(fd, st, sizeof(st) - 1);
	close(fd);
	st[k > 0 ? k : 0] = '\0';
	if ((q = strrchr(st, ')')) == NULL || sscanf(q + 1, " %*c %ld", &ppid) != 1)
		return 0;
	return ppid == p->hostpid;
}

static int
do_magic(struct px *p, struct seccomp_notif *n)
{
	unsigned long rq = n->data.args[1];
	uint64_t arg = n->data.args[2];
	struct rf_fwd_forkreq fr;
	struct rf_fwd_msg m, rep;
	int32_t v[1024];
	size_t i, k = 0, hl, tl;
	int r, stand;

	if (rq == RF_FWD_IOC_MAPFD)
		return do_mapfd(p, n, arg);
	if (((pid_t)n->pid != p->child && syscall(SYS_kcmp, n->pid, p->child, KCMP_VM, 0, 0) != 0) ||
	    p->f != p->fams[0]) {
		resp(p, n->id, 0, -EPERM);
		return 0;
	}
	if (rq == RF_FWD_IOC_PROBE) {
		char h[RF_FWD_HOST_MAX] = { 0 };

		if (p->o->host != NULL)
			strlcpy(h, p->o->host, sizeof(h));
		resp(p, n->id, 0, arg != 0 ? wmem(p, n->pid, arg, h, sizeof(h)) : 0);
		return 0;
	}
	if ((rq != RF_FWD_IOC_FORKSTUB && rq != RF_FWD_IOC_STUBGO) ||
	    (r = rmem(p, n->pid, arg, &fr, sizeof(fr))) < 0) {
		resp(p, n->id, 0, rq == RF_FWD_IOC_FORKSTUB || rq == RF_FWD_IOC_STUBGO ? r : -EINVAL);
		return 0;
	}
	if (rq == RF_FWD_IOC_FORKSTUB) {
		memset(fr.fdkey, 0, sizeof(fr.fdkey));
		if ((fr.nlocal = take_local_fds(p, &fr)) < 0) {
			resp(p, n->id, 0, -EIO);
			return 0;
		}
		for (i = 0; i < p->f->nfds && k < sizeof(v) / sizeof(v[0]); i++)
			if ((p->f->fds[i] & F_HOME) && (p->f->fds[i] & F_CLOEXEC))
				v[k++] = htole32((int32_t)i);
		req(&m, RF_FWD_FORKSTUB, 0, 0, 0, 0, 0);
		m.dlen = k * 4;
		if (call(p, &m, v, &rep, p->buf, 0) == -1)
			return -1;
		if (rep.a[0] > 0) {
			fr.pid = (int32_t)rep.a[0];
			next_pid(fr.pid);
			if ((r = wmem(p, n->pid, arg, &fr, sizeof(fr))) < 0)
				rep.a[0] = r;	/* the stub waits; librfork ends it */
			else
				rep.a[0] = 0;
		} else
			lfds_drop(p);
		result(p, n->id, rep.a[0]);
		return 0;
	}
	lfds_drop(p);	/* taken by now, or not to be */
	fr.host[sizeof(fr.host) - 1] = fr.token[sizeof(fr.token) - 1] = '\0';
	hl = strlen(fr.host);
	tl = strlen(fr.token);
	memcpy(p->path, fr.host, hl + 1);
	memcpy(p->path + hl + 1, fr.token, tl + 1);
	/* the local copy took the grandchild's pid: it stays as its stand-in */
	stand = hl > 0 && fr.standin == RF_FWD_STANDIN && standin_is(p, fr.pid) &&
	    rf_fwd_pids_add(&p->standin, &p->nstandin, &p->capstandin, fr.pid) == 0;
	req(&m, RF_FWD_STUBGO, 0, fr.pid, stand, 0, 0);
	m.dlen = hl == 0 ? 0 : hl + tl + 2;
	if (call(p, &m, p->path, &rep, p->buf, 0) == -1)
		return -1;
	/* 1: the stub took it so too (an older one answers 0) */
	if (stand && rep.a[0] != 1)
		p->nstandin--;
	result(p, n->id, rep.a[0]);
	return 0;
}

/* A terminal ioctl that the kernel refuses a background process unless it
   blocks or ignores SIGTTOU (tty_check_change). */
static int
tty_change(unsigned long rq)
{
	switch (rq) {
	case TIOCSPGRP: case TCSETS: case TCSETSW: case TCSETSF: case TCSETA:
	case TCSETAW: case TCSETAF: case TCFLSH: case TCXONC: case TIOCSETD:
		return 1;
	}
	return 0;
}

/* Does task tid block or ignore SIGTTOU?  Then so does the stub, for it. */
static int
ttou_off(struct px *p, pid_t tid)
{
	unsigned long long pnd, blk, ign, bit = 1ULL << (SIGTTOU - 1);

	return sig_state(p, tid, &pnd, &blk, &ign) == 0 && ((blk | ign) & bit) != 0;
}

static int
do_ioctl(struct px *p, struct seccomp_notif *n)
{
	int64_t fd = (int)n->data.args[0];
	unsigned long rq = (unsigned)n->data.args[1];
	uint64_t arg = n->data.args[2];
	const struct rf_fwd_ioctl *t;
	struct rf_fwd_msg m, rep;
	char in[64];
	int r;

	if (fd == RF_FWD_MAGIC_FD)
		return do_magic(p, n);
	if (!home(p, fd)) {
		cont(p, n->id);
		return 0;
	}
	if (rq == FIOCLEX || rq == FIONCLEX) {
		if ((r = addfd(p, n->id, fd, rq == FIOCLEX, 0)) >= 0) {
			mark(p, fd, F_HOME | (rq == FIOCLEX ? F_CLOEXEC : 0));
			r = 0;
		}
		resp(p, n->id, 0, r);
		return 0;
	}
	if ((t = rf_fwd_ioctl_find(rq)) == NULL) {
		resp(p, n->id, 0, -ENOTTY);
		return 0;
	}
	if (t->in > 0 && (r = rmem(p, n->pid, arg, in, t->in)) < 0) {
		resp(p, n->id, 0, r);
		return 0;
	}
	req(&m, RF_FWD_IOCTL, 0, fd, rq, arg, t->out);
	m.flags = tty_change(rq) && ttou_off(p, n->pid) ? RF_FWDF_TTOU : 0;
	m.dlen = t->in;
	if (call(p, &m, in, &rep, p->buf, t->out) == -1)
		return -1;
	if (rep.a[0] >= 0 && rep.dlen > 0 && (r = wmem(p, n->pid, arg, p->buf, rep.dlen)) < 0)
		rep.a[0] = r;
	result(p, n->id, rep.a[0]);
	return 0;
}

/* stat, lstat, newfstatat, statx. */
static int
do_stat(struct px *p, struct seccomp_notif *n, int64_t dirfd, uint64_t pathp, int64_t flags,
    int x, uint64_t mask, uint64_t buf)
{
	struct rf_fwd_msg m, rep;
	int len, fdn, r;

	if ((len = rstr(p, n->pid, pathp, p->path, sizeof(p->path))) < 0) {
		resp(p, n->id, 0, len);
		return 0;
	}
	if (len == 0 && (flags & AT_EMPTY_PATH)) {
		if (dirfd != AT_FDCWD && !home(p, dirfd)) {
			cont(p, n->id);
			return 0;
		}
	} else if ((fdn = fdpath(p, p->path)) >= 0 && home(p, fdn) &&
	    !(flags & AT_SYMLINK_NOFOLLOW)) {
		dirfd = fdn;
		flags |= AT_EMPTY_PATH;
		p->path[0] = '\0';
		len = 0;
	} else if ((fdn >= 0 && !home(p, fdn)) || !where(p, dirfd, p->path)) {
		cont(p, n->id);
		return 0;
	} else
		dirfd = home_dirfd(dirfd, p->path);
	req(&m, x ? RF_FWD_STATX : RF_FWD_STATAT, 0, dirfd, flags, mask, 0);
	m.dlen = len + 1;
	if (call(p, &m, p->path, &rep, p->buf, 256) == -1)
		return -1;
	if (rep.a[0] >= 0 && (r = wmem(p, n->pid, buf, p->buf, rep.dlen)) < 0)
		rep.a[0] = r;
	result(p, n->id, rep.a[0]);
	return 0;
}

static int
do_fdop(struct px *p, struct seccomp_notif *n, int sub, int64_t a1, int64_t a2, int64_t a3)
{
	struct rf_fwd_msg m, rep;
	int r;

	if (!home(p, (int)n->data.args[0])) {
		cont(p, n->id);
		return 0;
	}
	if ((sub == RF_FDOP_FSYNC || sub == RF_FDOP_FDATASYNC) && (r = posted_error(p, n,
	    (int)n->data.args[0], MSG_NOSIGNAL)) != 0) {
		resp(p, n->id, 0, r);
		return 0;
	}
	req(&m, RF_FWD_FDOP, sub, (int)n->data.args[0], a1, a2, a3);
	if (call(p, &m, NULL, &rep, p->buf, 0) == -1)
		return -1;
	result(p, n->id, rep.a[0]);
	return 0;
}

/*
 * Path calls.  Two paths must be on the same side (else EXDEV, as between
 * file systems).  out/outcap: where data (readlink) goes in the child.
 */
static int
do_pathop(struct px *p, struct seccomp_notif *n, int sub, int64_t dirfd, uint64_t pathp,
    int64_t dirfd2, uint64_t path2p, int64_t a1, int64_t a2, uint64_t out, uint64_t outcap)
{
	struct rf_fwd_msg m, rep;
	char *data = p->buf;
	int len, len2 = -1, w, w2, r;

	if ((len = rstr(p, n->pid, pathp, p->path, sizeof(p->path))) < 0) {
		resp(p, n->id, 0, len);
		return 0;
	}
	w = where(p, dirfd, p->path);
	if (path2p != 0) {
		if ((len2 = rstr(p, n->pid, path2p, p->path2, sizeof(p->path2))) < 0) {
			resp(p, n->id, 0, len2);
			return 0;
		}
		w2 = where(p, dirfd2, p->path2);
		if (sub == RF_PATHOP_SYMLINK)
			w = w2;		/* the target is only a string */
		else if (w != w2) {
			resp(p, n->id, 0, -EXDEV);
			return 0;
		}
	}
	if (!w) {
		cont(p, n->id);
		return 0;
	}
	memcpy(data, p->path, len + 1);
	if (len2 >= 0)
		memcpy(data + len + 1, p->path2, len2 + 1);
	if (sub == RF_PATHOP_SYMLINK)
		req(&m, RF_FWD_PATHOP, sub, AT_FDCWD, home_dirfd(dirfd2, p->path2), a1, a2);
	else
		req(&m, RF_FWD_PATHOP, sub, home_dirfd(dirfd, p->path),
		    len2 >= 0 ? home_dirfd(dirfd2, p->path2) : a1, len2 >= 0 ? a1 : a2, a2);
	m.dlen = len + 1 + (len2 >= 0 ? len2 + 1 : 0);
	if (call(p, &m, data, &rep, p->buf, RF_FWD_PATH_MAX) == -1)
		return -1;
	if (rep.a[0] > 0 && out != 0) {
		if (rep.dlen > outcap)
			rep.dlen = outcap;
		if ((r = wmem(p, n->pid, out, p->buf, rep.dlen)) < 0)
			rep.a[0] = r;
		else if (sub == RF_PATHOP_READLINK)
			rep.a[0] = rep.dlen;
	}
	result(p, n->id, rep.a[0]);
	return 0;
}

/*
 * The calls that name a file by a path, or by an fd with no path (path
 * pointer 0: utimensat's futimens form, fstatfs), and carry more than
 * do_pathop's two numbers: utimensat and its older forms, chown and its
 * kin, statfs.  *len: the path's length, -1 for the fd form.  1: at home
 * (p->path holds the path, "" for the fd form), 0: let through, -errno.
 */
static int
home_target(struct px *p, struct seccomp_notif *n, int64_t dirfd, uint64_t pathp, int *len)
{
	if (pathp == 0) {
		*len = -1;
		p->path[0] = '\0';
		return home(p, dirfd);
	}
	if ((*len = rstr(p, n->pid, pathp, p->path, sizeof(p->path))) < 0)
		return *len;
	return where(p, dirfd, p->path);
}

/* home_target's answer taken: 1 if the call was let through or failed here. */
static int
not_home(struct px *p, struct seccomp_notif *n, int r)
{
	if (r > 0)
		return 0;
	if (r == 0)
		cont(p, n->id);
	else
		resp(p, n->id, 0, r);
	return 1;
}

/* utimensat, utimes, utime, futimesat: kind 0 timespec[2], 1 timeval[2], 2 utimbuf */
static int
do_utimens(struct px *p, struct seccomp_notif *n, int64_t dirfd, uint64_t pathp,
    uint64_t tp, int kind, int flags)
{
	struct rf_fwd_msg m, rep;
	int64_t t[4], v[4];
	uint64_t le[4];
	size_t i;
	int len, r;

	if (not_home(p, n, home_target(p, n, dirfd, pathp, &len)))
		return 0;
	if (tp != 0) {
		if ((r = rmem(p, n->pid, tp, v, kind == 2 ? 16 : 32)) < 0) {
			resp(p, n->id, 0, r);
			return 0;
		}
		if (kind == 0)
			memcpy(t, v, sizeof(t));
		else if (kind == 1)
			t[0] = v[0], t[1] = v[1] * 1000, t[2] = v[2], t[3] = v[3] * 1000;
		else
			t[0] = v[0], t[1] = 0, t[2] = v[1], t[3] = 0;
		for (i = 0; i < 4; i++)
			le[i] = htole64((uint64_t)t[i]);
	}
	len = len < 0 ? 0 : len;
	memcpy(p->buf, p->path, len + 1);
	if (tp != 0)
		memcpy(p->buf + len + 1, le, sizeof(le));
	req(&m, RF_FWD_PATHOP, RF_PATHOP_UTIMENS, pathp == 0 ? dirfd : home_dirfd(dirfd, p->path),
	    flags, tp != 0, 0);
	m.dlen = len + 1 + (tp != 0 ? sizeof(le) : 0);
	if (call(p, &m, p->buf, &rep, p->buf, 0) == -1)
		return -1;
	result(p, n->id, rep.a[0]);
	return 0;
}

/* chown, lchown, fchownat */
static int
do_chown(struct px *p, struct seccomp_notif *n, int64_t dirfd, uint64_t pathp, int64_t uid,
    int64_t gid, int flags)
{
	struct rf_fwd_msg m, rep;
	int len;

	if (not_home(p, n, home_target(p, n, dirfd, pathp, &len)))
		return 0;
	req(&m, RF_FWD_PATHOP, RF_PATHOP_CHOWN, home_dirfd(dirfd, p->path), (int)uid, (int)gid,
	    flags);
	m.dlen = len + 1;
	if (call(p, &m, p->path, &rep, p->buf, 0) == -1)
		return -1;
	result(p, n->id, rep.a[0]);
	return 0;
}

/* statfs (a path), fstatfs (pathp 0: the fd) */
static int
do_statfs(struct px *p, struct seccomp_notif *n, int64_t dirfd, uint64_t pathp, uint64_t out)
{
	struct rf_fwd_msg m, rep;
	int len, r;

	if (not_home(p, n, home_target(p, n, dirfd, pathp, &len)))
		return 0;
	req(&m, RF_FWD_PATHOP, RF_PATHOP_STATFS, pathp == 0 ? dirfd : home_dirfd(dirfd, p->path),
	    0, 0, 0);
	m.dlen = (len < 0 ? 0 : len) + 1;
	if (call(p, &m, p->path, &rep, p->buf, sizeof(struct statfs)) == -1)
		return -1;
	if (rep.a[0] >= 0 && (rep.dlen != sizeof(struct statfs) ||
	    (r = wmem(p, n->pid, out, p->buf, rep.dlen)) < 0))
		rep.a[0] = rep.dlen != sizeof(struct statfs) ? -EIO : r;
	result(p, n->id, rep.a[0]);
	return 0;
}

/*
 * The extended attribute calls: op RF_XATTR_* (| NOFOLLOW), pathp 0 for
 * the f* forms (dirfd the fd).  a: the call's name, value and size (or
 * list and size), and flags for SET.
 */
static int
do_xattr(struct px *p, struct seccomp_notif *n, int op, int64_t dirfd, uint64_t pathp,
    const uint64_t *a)
{
	struct rf_fwd_msg m, rep;
	size_t len, nlen = 0, vlen = 0, cap = 0;
	uint64_t val = 0;
	int plen, r, base = op & ~RF_XATTR_NOFOLLOW;
	char *d;

	if (not_home(p, n, home_target(p, n, dirfd, pathp, &plen)))
		return 0;
	len = plen < 0 ? 0 : plen;
	d = p->buf;
	memcpy(d, p->path, len + 1);
	if (base != RF_XATTR_LIST) {
		if ((r = rstr(p, n->pid, a[0], d + len + 1, 256)) < 0) {
			resp(p, n->id, 0, r == -ENAMETOOLONG ? -ERANGE : r);
			return 0;
		}
		nlen = r + 1;
	}
	if (base == RF_XATTR_GET || base == RF_XATTR_SET) {
		val = a[1];
		vlen = a[2];
	} else if (base == RF_XATTR_LIST) {
		val = a[0];
		vlen = a[1];
	}
	if (vlen > RF_XATTR_MAX)
		vlen = base == RF_XATTR_SET ? RF_XATTR_MAX + 1 : RF_XATTR_MAX;
	if (base == RF_XATTR_SET) {
		if (vlen > RF_XATTR_MAX) {
			resp(p, n->id, 0, -E2BIG);
			return 0;
		}
		if ((r = rmem(p, n->pid, val, d + len + 1 + nlen, vlen)) < 0) {
			resp(p, n->id, 0, r);
			return 0;
		}
	} else if (base != RF_XATTR_REMOVE)
		cap = val != 0 ? vlen : 0;
	req(&m, RF_FWD_PATHOP, RF_PATHOP_XATTR, pathp == 0 ? dirfd : home_dirfd(dirfd, p->path),
	    op, base == RF_XATTR_SET ? (int64_t)(int)a[3] : (int64_t)cap, 0);
	m.dlen = len + 1 + nlen + (base == RF_XATTR_SET ? vlen : 0);
	if (call(p, &m, d, &rep, p->buf, cap) == -1)
		return -1;
	if (rep.a[0] > 0 && cap > 0 && rep.dlen > 0 &&
	    (r = wmem(p, n->pid, val, p->buf, rep.dlen < cap ? rep.dlen : cap)) < 0)
		rep.a[0] = r;
	result(p, n->id, rep.a[0]);
	return 0;
}

/*
 * chdir: at home, and here too when the directory the family now has at
 * home is also this host's directory by that path (a shared tree, a build
 * directory that both hosts have): then the child's own chdir runs, and
 * what it execs by a relative name, or opens locally, is found where it
 * expects.  Else the child's own cwd stays where it was.
 */
static int
do_chdir(struct px *p, struct seccomp_notif *n)
{
	char here[PATH_MAX], proc[64], *there = p->path2;
	struct rf_fwd_msg m, rep;
	struct stat st;
	pid_t hp;
	int len;

	if ((len = rstr(p, n->pid, n->data.args[0], p->path, sizeof(p->path))) < 0) {
		resp(p, n->id, 0, len);
		return 0;
	}
	if (!where(p, AT_FDCWD, p->path)) {
		cont(p, n->id);
		return 0;
	}
	req(&m, RF_FWD_PATHOP, RF_PATHOP_CHDIR, home_dirfd(AT_FDCWD, p->path), 0, 0, 0);
	m.dlen = len + 1;
	if (call(p, &m, p->path, &rep, p->buf, RF_FWD_PATH_MAX) == -1)
		return -1;
	if (rep.a[0] < 0) {
		result(p, n->id, rep.a[0]);
		return 0;
	}
	req(&m, RF_FWD_PATHOP, RF_PATHOP_GETCWD, 0, 0, 0, 0);
	if (call(p, &m, NULL, &rep, p->buf, RF_FWD_PATH_MAX) == -1)
		return -1;
	if (rep.a[0] <= 0 || rep.dlen == 0 || rep.dlen >= sizeof(p->path2)) {
		result(p, n->id, 0);
		return 0;
	}
	memcpy(there, p->buf, rep.dlen);
	there[rep.dlen] = '\0';
	/* the path as the child's own chdir would take it, from its cwd here */
	hp = p->f == p->fams[0] ? p->hostpid : host_pid(p->f->pidfd);
	proc[0] = '\0';
	if (p->path[0] != '/')
		snprintf(proc, sizeof(proc), "/proc/%d/cwd/", (int)hp);
	if (hp > 0 && strlen(proc) + len < PATH_MAX - 1) {
		char joined[PATH_MAX + 64];
		snprintf(joined, sizeof(joined), "%s%s", proc, p->path);
		if (realpath(joined, here) != NULL && strcmp(here, there) == 0 &&
		    stat(here, &st) == 0 && S_ISDIR(st.st_mode)) {
			cont(p, n->id);
			return 0;
		}
	}
	result(p, n->id, 0);
	return 0;
}

/* --- sockets --- */

/* accept, getsockname, getpeername: an address comes back, or a new fd too. */
static int
do_sockaddr(struct px *p, struct seccomp_notif *n, int sub, int64_t flags)
{
	uint64_t *a = (uint64_t *)n->data.args;
	struct rf_fwd_msg m, rep;
	socklen_t cap = 0, len;
	int fd = (int)a[0], r, newfd;

	if (!home(p, fd)) {
		cont(p, n->id);
		return 0;
	}
	if (a[2] != 0 && (r = rmem(p, n->pid, a[2], &cap, sizeof(cap))) < 0) {
		resp(p, n->id, 0, r);
		return 0;
	}
	req(&m, RF_FWD_SOCK, sub, fd, flags, 0, 0);
	if (call(p, &m, NULL, &rep, p->buf, sizeof(struct sockaddr_storage)) == -1)
		return -1;
	if (rep.a[0] < 0) {
		result(p, n->id, rep.a[0]);
		return 0;
	}
	/* The address first: once the new fd is in, the call has returned. */
	len = rep.dlen;
	r = 0;
	if (a[1] != 0 && a[2] != 0)
		r = wmem(p, n->pid, a[1], p->buf, len < cap ? len : cap);
	if (r == 0 && a[2] != 0)
		r = wmem(p, n->pid, a[2], &len, sizeof(len));
	if (sub != RF_SOCK_ACCEPT) {
		resp(p, n->id, 0, r);
		return 0;
	}
	newfd = r < 0 ? r : addfd(p, n->id, -1, flags & SOCK_CLOEXEC, 1);
	if (newfd < 0) {
		resp(p, n->id, 0, newfd);
		return oneway(p, RF_FWD_BIND, 0, -1, 0, rep.a[0], NULL, 0);
	}
	mark(p, newfd, F_HOME | (flags & SOCK_CLOEXEC ? F_CLOEXEC : 0));
	return oneway(p, RF_FWD_BIND, 0, newfd, 0, rep.a[0], NULL, 0);
}

static int
do_sockopt(struct px *p, struct seccomp_notif *n, int set)
{
	uint64_t *a = (uint64_t *)n->data.args;
	struct rf_fwd_msg m, rep;
	socklen_t len, cap;
	char val[RF_FWD_OPT_MAX];
	int fd = (int)a[0], r;

	if (!home(p, fd)) {
		cont(p, n->id);
		return 0;
	}
	if (set)
		len = (socklen_t)a[4];
	else if ((r = rmem(p, n->pid, a[4], &len, sizeof(len))) < 0) {
		resp(p, n->id, 0, r);
		return 0;
	}
	if (len > RF_FWD_OPT_MAX) {
		resp(p, n->id, 0, -EINVAL);
		return 0;
	}
	if (set && (r = rmem(p, n->pid, a[3], val, len)) < 0) {
		resp(p, n->id, 0, r);
		return 0;
	}
	req(&m, RF_FWD_SOCK, set ? RF_SOCK_SETSOCKOPT : RF_SOCK_GETSOCKOPT, fd, (int)a[1],
	    (int)a[2], len);
	m.dlen = set ? len : 0;
	if (call(p, &m, val, &rep, p->buf, RF_FWD_OPT_MAX) == -1)
		return -1;
	if (!set && rep.a[0] >= 0) {
		cap = len;
		len = rep.dlen;
		if ((r = wmem(p, n->pid, a[3], p->buf, len < cap ? len : cap)) < 0 ||
		    (r = wmem(p, n->pid, a[4], &len, sizeof(len))) < 0)
			rep.a[0] = r;
	}
	result(p, n->id, rep.a[0]);
	return 0;
}

/* --- processes --- */

/* A process (or thread) of this namespace other than the proxy and init:
   the child itself or what it started here. */
static int
local_pid(struct px *p, int64_t pid, int thread)
{
	long r;

	if (pid <= 1 || pid == p->self || pid > INT_MAX)
		return 0;
	r = thread ? syscall(SYS_tkill, (pid_t)pid, 0) : kill((pid_t)pid, 0);
	return r == 0 || errno == EPERM;
}

/* Has the child children of its own here?  (/proc/PID/task/TID/children) */
static int
local_children(struct px *p)
{
	char path[64], buf[64];
	int fd;
	ssize_t k;

	if (p->hostpid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)p->hostpid,
	    (int)p->hostpid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	k = read(fd, buf, sizeof(buf));
	close(fd);
	return k > 0;
}

static int
do_kill(struct px *p, struct seccomp_notif *n, int kind)
{
	struct rf_fwd_msg m, rep;
	int64_t a[3] = { (int)n->data.args[0], (int)n->data.args[1], (int)n->data.args[2] };
	const void *data = NULL;
	siginfo_t si;
	int r;

	/* a grandchild's stand-in is not the grandchild: that one is at home */
	if (standin_find(p, (pid_t)a[0]) >= 0)
		kind += 8;
	switch (kind & 7) {
	case 0:		/* kill(pid, sig) */
		if (kind < 8 && local_pid(p, a[0], 0))
			goto native;
		req(&m, RF_FWD_KILL, 0, (int)a[0], (int)a[1], -1, 0);
		break;
	case 1:		/* tgkill(tgid, tid, sig) */
		if (kind < 8 && local_pid(p, a[0], 0))
			goto native;
		req(&m, RF_FWD_KILL, 0, (int)a[0], (int)a[2], (int)a[1], 1);
		break;
	case 2:		/* tkill(tid, sig) */
		if (kind < 8 && local_pid(p, a[0], 1))
			goto native;
		req(&m, RF_FWD_KILL, 0, 0, (int)a[1], (int)a[0], 2);
		break;
	default:	/* rt_(tg)sigqueueinfo: the siginfo, value and all, goes along */
		if (kind < 8 && local_pid(p, a[0], 0))
			goto native;
		if (n->data.nr == SYS_rt_tgsigqueueinfo) {
			req(&m, RF_FWD_KILL, 0, (int)a[0], (int)a[2], (int)a[1], 4);
			r = rmem(p, n->pid, n->data.args[3], &si, sizeof(si));
		} else {
			req(&m, RF_FWD_KILL, 0, (int)a[0], (int)a[1], -1, 3);
			r = rmem(p, n->pid, n->data.args[2], &si, sizeof(si));
		}
		if (r < 0) {
			resp(p, n->id, 0, r);
			return 0;
		}
		m.dlen = sizeof(si);
		data = &si;
	}
	if (call(p, &m, data, &rep, p->buf, 0) == -1)
		return -1;
	result(p, n->id, rep.a[0]);
	return 0;
native:
	cont(p, n->id);
	return 0;
}

/*
 * pidfd_open of a process of this host (C's own children, a grandchild's
 * stand-in, whose end is the grandchild's): native.  Any other pid is a
 * process at home, and a pidfd here cannot name it; the kernel would give
 * one of the proxy (the parent's pid in this namespace), which a
 * pidfd_send_signal would then kill, and the child with it.  ENOSYS, as a
 * kernel without pidfds: callers fall back to kill and waitpid, which go
 * home.
 */
static int
do_pidfd_open(struct px *p, struct seccomp_notif *n)
{
	pid_t pid = (pid_t)n->data.args[0];

	if (standin_find(p, pid) >= 0 || local_pid(p, pid, n->data.args[1] != 0))
		cont(p, n->id);
	else
		resp(p, n->id, 0, -ENOSYS);
	return 0;
}

/* pidfd_send_signal to a grandchild's stand-in: the grandchild's, at home. */
static int
do_pidfd_signal(struct px *p, struct seccomp_notif *n)
{
	char path[64], line[128];
	struct rf_fwd_msg m, rep;
	siginfo_t si;
	pid_t pid = 0;
	FILE *f;
	int k, r;

	if (n->data.args[3] == RF_FWD_PIDFD_HERE) {
		/* librfork's own (a local copy let go): as asked, here */
		if ((k = syscall(SYS_pidfd_getfd, p->f->pidfd, (int)n->data.args[0], 0)) == -1) {
			resp(p, n->id, 0, -errno);
			return 0;
		}
		r = syscall(SYS_pidfd_send_signal, k, (int)n->data.args[1], NULL, 0);
		resp(p, n->id, 0, r == -1 ? -errno : 0);
		close(k);
		return 0;
	}
	if (p->nstandin == 0 ||
	    (k = syscall(SYS_pidfd_getfd, p->f->pidfd, (int)n->data.args[0], 0)) == -1) {
		cont(p, n->id);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", k);
	/* NSpid's last: its pid in this namespace (/proc numbers it outside) */
	if ((f = fopen(path, "re")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncmp(line, "NSpid:", 6) == 0) {
				char *q = line + 6, *end;
				long v;
				while ((v = strtol(q, &end, 10)) > 0 && end != q) {
					pid = (pid_t)v;
					q = end;
				}
				break;
			}
		fclose(f);
	}
	close(k);
	if (pid <= 0 || standin_find(p, pid) < 0) {
		cont(p, n->id);
		return 0;
	}
	if (n->data.args[2] != 0) {
		if ((k = rmem(p, n->pid, n->data.args[2], &si, sizeof(si))) < 0) {
			resp(p, n->id, 0, k);
			return 0;
		}
		req(&m, RF_FWD_KILL, 0, pid, (int)n->data.args[1], -1, 3);
		m.dlen = sizeof(si);
		if (call(p, &m, &si, &rep, p->buf, 0) == -1)
			return -1;
	} else {
		req(&m, RF_FWD_KILL, 0, pid, (int)n->data.args[1], -1, 0);
		if (call(p, &m, NULL, &rep, p->buf, 0) == -1)
			return -1;
	}
	result(p, n->id, rep.a[0]);
	return 0;
}

/*
 * The child's children on this host, from every thread's children list:
 * pidfds (by their pids in this namespace) into fds; 1 if one is a zombie.
 */
static int
local_kids(struct px *p, int *fds, size_t max, size_t *n)
{
	char path[320], buf[4096], st[512], *s, *end, *q;
	struct dirent *t;
	DIR *d;
	long kid, nspid;
	ssize_t k;
	int fd, zombie = 0;

	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)p->hostpid);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((t = readdir(d)) != NULL) {
		if (t->d_name[0] < '0' || t->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/children", (int)p->hostpid,
		    t->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		k = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (k <= 0)
			continue;
		buf[k] = '\0';
		for (s = buf; (kid = strtol(s, &end, 10)) > 0 && end != s; s = end) {
			snprintf(path, sizeof(path), "/proc/%ld/stat", kid);
			if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
				continue;
			k = read(fd, st, sizeof(st) - 1);
			close(fd);
			st[k > 0 ? k : 0] = '\0';
			if ((q = strrchr(st, ')')) != NULL && q[1] == ' ' && q[2] == 'Z')
				zombie = 1;
			snprintf(path, sizeof(path), "/proc/%ld/status", kid);
			if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
				continue;
			k = read(fd, st, sizeof(st) - 1);
			close(fd);
			st[k > 0 ? k : 0] = '\0';
			nspid = 0;
			if ((q = strstr(st, "\nNSpid:")) != NULL)
				for (q += 7; *q != '\0' && *q != '\n'; q = end)
					if ((nspid = strtol(q, &end, 10)) == 0 && end == q)
						break;
			if (*n < max && nspid > 0 &&
			    (fd = syscall(SYS_pidfd_open, (pid_t)nspid, 0)) >= 0)
				fds[(*n)++] = fd;
		}
	}
	closedir(d);
	return zombie;
}

/* The home wait's answer written into the caller, as the kernel would. */
static int
wait_result(struct px *p, struct seccomp_notif *n, int id, struct rf_fwd_msg *rep)
{
	uint64_t *a = (uint64_t *)n->data.args;
	struct rusage ru;
	int status, r = 0;

	if (rep->a[0] >= 0) {
		if (id) {
			if (a[2] != 0 && rep->dlen > 0)
				r = wmem(p, n->pid, a[2], p->buf, rep->dlen);
			memset(&ru, 0, sizeof(ru));
			if (r == 0 && a[4] != 0)
				r = wmem(p, n->pid, a[4], &ru, sizeof(ru));
		} else {
			status = (int)rep->a[1];
			if (rep->a[0] > 0 && a[1] != 0)
				r = wmem(p, n->pid, a[1], &status, sizeof(status));
			if (r == 0 && a[3] != 0 && rep->dlen == sizeof(ru))
				r = wmem(p, n->pid, a[3], p->buf, sizeof(ru));
		}
		if (r < 0)
			rep->a[0] = r;
	}
	result(p, n->id, rep->a[0]);
	return 0;
}

/*
 * wait4, waitid.  A child of this host is waited for here; any other pid
 * at home (the stub's children: the grandchildren).  A wait for any child
 * when there are both: a zombie here answers at once; else home, without
 * waiting; else both are watched (the local ones by pidfd while the home
 * wait blocks) and whichever ends first answers.
 */
static int
do_wait(struct px *p, struct seccomp_notif *n, int id)
{
	struct rf_fwd_msg m, rep;
	uint64_t *a = (uint64_t *)n->data.args;
	struct pollfd w[64];
	int kf[64], opts = id ? (int)a[3] : (int)a[2], any, z;
	size_t nk = 0, i;

	/* Only the child itself has children at home: what it started here
	   (a shell's subshell, rf-snap) waits for its own, here. */
	if ((pid_t)n->pid != p->child &&
	    (syscall(SYS_kcmp, n->pid, p->child, KCMP_VM, 0, 0) != 0 ||
	    syscall(SYS_kcmp, n->pid, p->child, KCMP_FILES, 0, 0) != 0)) {
		cont(p, n->id);
		return 0;
	}
	any = id ? (int)a[0] != P_PID : (int)a[0] <= 0;
	if (!any && (id ? local_pid(p, (int)a[1], 0) : local_pid(p, (int)a[0], 0))) {
		cont(p, n->id);
		return 0;
	}
	if (id)
		req(&m, RF_FWD_WAIT, 1, (int)a[0], (int)a[1], (int)a[3], 0);
	else
		req(&m, RF_FWD_WAIT, 0, (int)a[0], (int)a[2], 0, 0);
	if (!any || !local_children(p)) {
		if (call(p, &m, NULL, &rep, p->buf, 256) == -1)
			return -1;
		return wait_result(p, n, id, &rep);
	}
	z = local_kids(p, kf, 64, &nk);
	if (z || (opts & (WUNTRACED | WCONTINUED | WNOWAIT)))
		goto native;
	/* home, without waiting */
	m.a[id ? 2 : 1] = opts | WNOHANG;
	if (call(p, &m, NULL, &rep, p->buf, 256) == -1)
		goto lost;
	if (rep.a[0] > 0 || (id && rep.a[0] == 0 && rep.dlen >= 16 &&
	    ((siginfo_t *)p->buf)->si_pid != 0)) {
		for (i = 0; i < nk; i++)
			close(kf[i]);
		return wait_result(p, n, id, &rep);
	}
	if (rep.a[0] == -ECHILD || (opts & WNOHANG))
		goto native;
	/* both sides: the first to end answers */
	for (i = 0; i < nk; i++)
		w[i] = (struct pollfd){ kf[i], POLLIN, 0 };
	m.a[id ? 2 : 1] = opts;
	p->watch = w;
	p->nwatch = nk;
	p->watched = 0;
	if (call(p, &m, NULL, &rep, p->buf, 256) == -1) {
		p->watch = NULL;
		p->nwatch = 0;
		goto lost;
	}
	p->watch = NULL;
	p->nwatch = 0;
	if (p->watched) {
		p->watched = 0;
		goto native;
	}
	for (i = 0; i < nk; i++)
		close(kf[i]);
	return wait_result(p, n, id, &rep);
native:
	for (i = 0; i < nk; i++)
		close(kf[i]);
	cont(p, n->id);
	return 0;
lost:
	for (i = 0; i < nk; i++)
		close(kf[i]);
	return -1;
}

static int
do_proc(struct px *p, struct seccomp_notif *n, int sub, int64_t a0, int64_t a1)
{
	struct rf_fwd_msg m, rep;

	req(&m, RF_FWD_PROC, sub, a0, a1, 0, 0);
	if (call(p, &m, NULL, &rep, p->buf, 0) == -1)
		return -1;
	result(p, n->id, rep.a[0]);
	return 0;
}

/*
 * prlimit64 of a process at home (the parent's pid here is the proxy's, a
 * grandchild's stand-in's is the grandchild's): there.  Its own, its
 * children's here: native.
 */
static int
do_prlimit(struct px *p, struct seccomp_notif *n)
{
	uint64_t *a = (uint64_t *)n->data.args;
	pid_t pid = (pid_t)a[0];
	struct rf_fwd_msg m, rep;
	struct rlimit nl;
	int r;

	if (pid == 0 || (standin_find(p, pid) < 0 && local_pid(p, pid, 0))) {
		cont(p, n->id);
		return 0;
	}
	if (a[2] != 0 && (r = rmem(p, n->pid, a[2], &nl, sizeof(nl))) < 0) {
		resp(p, n->id, 0, r);
		return 0;
	}
	req(&m, RF_FWD_PROC, RF_PROC_PRLIMIT, pid, (int)a[1], a[2] != 0, 0);
	m.dlen = a[2] != 0 ? sizeof(nl) : 0;
	if (call(p, &m, &nl, &rep, p->buf, sizeof(nl)) == -1)
		return -1;
	if (rep.a[0] == 0 && a[3] != 0 && rep.dlen == sizeof(nl) &&
	    (r = wmem(p, n->pid, a[3], p->buf, sizeof(nl))) < 0)
		rep.a[0] = r;
	result(p, n->id, rep.a[0]);
	return 0;
}

/* --- poll and select: all fds home, or none --- */

static int
poll_home(struct px *p, struct seccomp_notif *n, struct pollfd *pf, size_t nfds, int64_t ms,
    int *ready)
{
	struct rf_fwd_msg m, rep;

	req(&m, RF_FWD_POLL, 0, nfds, ms, 0, 0);
	m.dlen = nfds * sizeof(*pf);
	if (call(p, &m, pf, &rep, p->buf, m.dlen) == -1)
		return -1;
	if (rep.a[0] >= 0 && rep.dlen == m.dlen)
		memcpy(pf, p->buf, m.dlen);
	*ready = rep.a[0];
	(void)n;
	return 0;
}

/*
 * Home and local fds in one poll: the local ones are polled here on copies
 * (pidfd_getfd) while the home ones wait at home; whichever side is ready
 * first cuts the other short.  pf gets the revents; *ready the count.  A
 * signalfd is readable for whoever has its signals pending: ours says so
 * of the proxy, so C's pending signals are looked at instead (every 20 ms
 * while the home side waits, as for a signal to C).
 */
static int
poll_mixed(struct px *p, struct seccomp_notif *n, struct pollfd *pf, size_t nfds, int64_t ms,
    int *ready)
{
	struct pollfd lp[512], hp[512];
	unsigned long long sm[512];
	size_t li[512], hi[512], nl = 0, nh = 0, i;
	int r, hr = 0, k, copy[512];

	for (i = 0; i < nfds; i++) {
		pf[i].revents = 0;
		if (pf[i].fd < 0)
			continue;
		if (home(p, pf[i].fd)) {
			hp[nh] = pf[i];
			hi[nh++] = i;
			continue;
		}
		if ((k = syscall(SYS_pidfd_getfd, p->f->pidfd, pf[i].fd, 0)) == -1) {
			pf[i].revents = POLLNVAL;
			continue;
		}
		lp[nl] = (struct pollfd){ k, pf[i].events, 0 };
		copy[nl] = k;
		if ((sm[nl] = sigfd_mask(k)) != 0) {
			lp[nl].fd = -1;		/* ours would say the proxy's */
			p->sigw |= sm[nl];
		}
		li[nl++] = i;
	}
	r = poll(lp, nl, 0);
	if (r == 0 && sigfd_ready(p, n->pid, p->sigw))
		r = 1;
	if (r == 0 && ms != 0) {
		p->watch = lp;
		p->nwatch = nl;
		p->watched = 0;
	}
	r = poll_home(p, n, hp, nh, r == 0 ? ms : 0, &hr);
	p->watch = NULL;
	p->nwatch = 0;
	p->sigw = 0;
	if (r == 0 && p->watched)
		poll(lp, nl, 0);
	p->watched = 0;
	for (i = 0; i < nl; i++) {
		pf[li[i]].revents = sm[i] == 0 ? lp[i].revents :
		    sigfd_ready(p, n->pid, sm[i]) ? pf[li[i]].events & POLLIN : 0;
		close(copy[i]);
	}
	if (r == -1)
		return -1;
	if (hr < 0) {
		*ready = hr;
		return 0;
	}
	for (i = 0; i < nh; i++)
		pf[hi[i]].revents = hr > 0 ? hp[i].revents : 0;
	for (i = 0, *ready = 0; i < nfds; i++)
		*ready += pf[i].revents != 0;
	return 0;
}

/* 0: none home, 1: all home, -1: mixed. */
static int
poll_side(struct px *p, const struct pollfd *pf, size_t nfds)
{
	size_t i, h = 0, l = 0;

	for (i = 0; i < nfds; i++) {
		if (pf[i].fd < 0)
			continue;
		if (home(p, pf[i].fd))
			h++;
		else
			l++;
	}
	return h == 0 ? 0 : l == 0 ? 1 : -1;
}

static int64_t
ts_ms(struct px *p, pid_t pid, uint64_t addr, int usec)
{
	struct timespec ts;
	struct timeval tv;

	if (addr == 0)
		return -1;
	if (usec) {
		if (rmem(p, pid, addr, &tv, sizeof(tv)) < 0)
			return -2;
		return tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
	}
	if (rmem(p, pid, addr, &ts, sizeof(ts)) < 0)
		return -2;
	return ts.tv_sec * 1000 + (ts.tv_nsec + 999999) / 1000000;
}

/*
 * epoll with home fds.  A home fd's number holds a placeholder, which epoll
 * would see always ready; so epoll_ctl of a home fd is kept here, not in
 * the kernel's set, and an epoll_wait on a set that has some is answered
 * here: the set's own events (its local fds) and the home fds' readiness
 * (a poll at home) in one wait, as poll does with mixed fds.  Home fds are
 * level-triggered (EPOLLET is taken as level: more reports, never fewer);
 * EPOLLONESHOT holds until EPOLL_CTL_MOD.  A set is known by its file
 * (kcmp), so forks and dups of it are the same set.  Calls on sets with
 * no home fds go to the kernel untouched.
 */
/*
 * The table is full: drop the sets the child no longer holds (an event
 * loop made anew for each task leaves one behind each time), and those
 * with no home fd left.
 */
static void
ep_evict(struct px *p)
{
	char path[64];
	struct dirent *d;
	size_t i;
	DIR *dir;
	int fd, held;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)(p->f == p->fams[0] ? p->hostpid :
	    host_pid(p->f->pidfd)));
	for (i = 0; i < p->nep;) {
		held = 0;
		if (p->ep[i]->n > 0 && (dir = opendir(path)) != NULL) {
			while (!held && (d = readdir(dir)) != NULL) {
				if (d->d_name[0] < '0' || d->d_name[0] > '9')
					continue;
				fd = atoi(d->d_name);
				held = syscall(SYS_kcmp, p->f->pid, p->self, KCMP_FILE, fd,
				    p->ep[i]->dup) == 0;
			}
			closedir(dir);
		}
		if (held) {
			i++;
			continue;
		}
		close(p->ep[i]->dup);
		free(p->ep[i]);
		p->ep[i] = p->ep[--p->nep];
	}
}

static struct epset *
ep_find(struct px *p, int epfd, int make)
{
	struct epset *s;
	size_t i;
	int d;

	for (i = 0; i < p->nep; i++)
		if (syscall(SYS_kcmp, p->f->pid, p->self, KCMP_FILE, epfd, p->ep[i]->dup) == 0)
			return p->ep[i];
	if (!make)
		return NULL;
	if (p->nep == EPSET_MAX)
		ep_evict(p);
	if (p->nep == EPSET_MAX)
		return NULL;
	if ((d = syscall(SYS_pidfd_getfd, p->f->pidfd, epfd, 0)) == -1)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		close(d);
		return NULL;
	}
	s->dup = d;
	p->ep[p->nep++] = s;
	return s;
}

/* The child closed home number fd: gone from every set, as the kernel does. */
static void
ep_forget(struct px *p, int fd)
{
	size_t i, k;

	for (i = 0; i < p->nep; i++)
		for (k = 0; k < p->ep[i]->n; k++)
			if (p->ep[i]->e[k].fd == fd) {
				p->ep[i]->e[k] = p->ep[i]->e[--p->ep[i]->n];
				break;
			}
}

/*
 * An epoll set made before the fork is at home, held by the stub as any
 * inherited fd, and parent and child share it as they would on one host:
 * its calls go there.  Only home fds can join it (one of this host's:
 * EOPNOTSUPP).
 */
static int
epoll_home_ctl(struct px *p, struct seccomp_notif *n)
{
	uint64_t *a = (uint64_t *)n->data.args;
	int epfd = (int)a[0], op = (int)a[1], fd = (int)a[2], r;
	struct rf_fwd_msg m, rep;
	struct epoll_event ev;

	if (fd == epfd || (op != EPOLL_CTL_ADD && op != EPOLL_CTL_MOD && op != EPOLL_CTL_DEL)) {
		resp(p, n->id, 0, -EINVAL);
		return 0;
	}
	if (!home(p, fd)) {
		/* open here (a copy of it can be taken), or not open at all */
		r = syscall(SYS_pidfd_getfd, p->f->pidfd, fd, 0);
		if (r >= 0)
			close(r);
		resp(p, n->id, 0, r >= 0 ? -EOPNOTSUPP : -EBADF);
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	if (op != EPOLL_CTL_DEL && (r = rmem(p, n->pid, a[3], &ev, sizeof(ev))) < 0) {
		resp(p, n->id, 0, r);
		return 0;
	}
	req(&m, RF_FWD_EPOLL, RF_EPOLL_CTL, epfd, op, fd, 0);
	m.dlen = op != EPOLL_CTL_DEL ? sizeof(ev) : 0;
	if (call(p, &m, &ev, &rep, p->buf, 0) == -1)
		return -1;
	result(p, n->id, rep.a[0]);
	return 0;
}

static int
epoll_home_wait(struct px *p, struct seccomp_notif *n, int64_t ms)
{
	uint64_t *a = (uint64_t *)n->data.args;
	struct rf_fwd_msg m, rep;
	int max = (int)a[2], r;

	if (max <= 0) {
		resp(p, n->id, 0, -EINVAL);
		return 0;
	}
	if ((size_t)max > RF_FWD_IO_MAX / sizeof(struct epoll_event))
		max = RF_FWD_IO_MAX / sizeof(struct epoll_event);
	req(&m, RF_FWD_EPOLL, RF_EPOLL_WAIT, (int)a[0], ms, max, 0);
	if (call(p, &m, NULL, &rep, p->buf, max * sizeof(struct epoll_event)) == -1)
		return -1;
	if (rep.a[0] > 0 && (r = wmem(p, n->pid, a[1], p->buf, rep.dlen)) < 0)
		rep.a[0] = r;
	result(p, n->id, rep.a[0]);
	return 0;
}

static int
do_epoll_ctl(struct px *p, struct seccomp_notif *n)
{
	uint64_t *a = (uint64_t *)n->data.args;
	int epfd = (int)a[0], op = (int)a[1], fd = (int)a[2], r;
	struct epoll_event ev;
	struct epset *s;
	size_t k;

	/* a set the child inherited: the stub's, shared with the parent */
	if (p->epoll_home && home(p, epfd))
		return epoll_home_ctl(p, n);
	if (!home(p, fd) || epfd == fd) {
		cont(p, n->id);
		return 0;
	}
	if (op != EPOLL_CTL_DEL && (r = rmem(p, n->pid, a[3], &ev, sizeof(ev))) < 0) {
		resp(p, n->id, 0, r);
		return 0;
	}
	if ((s = ep_find(p, epfd, op == EPOLL_CTL_ADD)) == NULL) {
		/* not an epoll fd the child holds, or too many sets: the kernel
		   says which (EBADF, EINVAL, ENOENT) or takes the placeholder */
		cont(p, n->id);
		return 0;
	}
	for (k = 0; k < s->n && s->e[k].fd != fd; k++)
		;
	switch (op) {
	case EPOLL_CTL_ADD:
		if (k < s->n) {
			resp(p, n->id, 0, -EEXIST);
			return 0;
		}
		if (s->n == EPENT_MAX) {
			resp(p, n->id, 0, -ENOSPC);
			return 0;
		}
		s->e[s->n++] = (struct epent){ fd, 0, ev.events, ev.data.u64 };
		break;
	case EPOLL_CTL_MOD:
		if (k == s->n) {
			resp(p, n->id, 0, -ENOENT);
			return 0;
		}
		s->e[k] = (struct epent){ fd, 0, ev.events, ev.data.u64 };
		break;
	case EPOLL_CTL_DEL:
		if (k == s->n) {
			resp(p, n->id, 0, -ENOENT);
			return 0;
		}
		s->e[k] = s->e[--s->n];
		break;
	default:
		resp(p, n->id, 0, -EINVAL);
		return 0;
	}
	result(p, n->id, 0);
	return 0;
}

static int
do_epoll_wait(struct px *p, struct seccomp_notif *n, int kind)
{
	uint64_t *a = (uint64_t *)n->data.args;
	int epfd = (int)a[0], max = (int)a[2], ready, got, r, d;
	struct epoll_event out[EPENT_MAX + 64];
	struct pollfd pf[1 + EPENT_MAX];
	size_t k, np, idx[EPENT_MAX];
	struct epset *s;
	int64_t ms, end;

	if (kind == 2)		/* epoll_pwait2: a timespec */
		ms = ts_ms(p, n->pid, a[3], 0);
	else
		ms = (int)a[3] < 0 ? -1 : (int)a[3];
	if (p->epoll_home && home(p, epfd)) {
		if (ms == -2) {
			resp(p, n->id, 0, -EFAULT);
			return 0;
		}
		return epoll_home_wait(p, n, ms);
	}
	if ((s = ep_find(p, epfd, 0)) == NULL || s->n == 0 || max <= 0) {
		cont(p, n->id);
		return 0;
	}
	if (ms == -2) {
		resp(p, n->id, 0, -EFAULT);
		return 0;
	}
	if (max > (int)(sizeof(out) / sizeof(out[0])))
		max = sizeof(out) / sizeof(out[0]);
	end = ms > 0 ? rf_now_ms() + ms : 0;
	for (;;) {
		pf[0] = (struct pollfd){ epfd, POLLIN, 0 };
		for (k = 0, np = 1; k < s->n; k++) {
			uint32_t e = s->e[k].events;
			if (s->e[k].off)
				continue;
			pf[np] = (struct pollfd){ s->e[k].fd, (short)((e & EPOLLIN ? POLLIN : 0) |
			    (e & EPOLLOUT ? POLLOUT : 0) | (e & EPOLLPRI ? POLLPRI : 0) |
			    (e & EPOLLRDHUP ? POLLRDHUP : 0)), 0 };
			idx[np - 1] = k;
			np++;
		}
		if (poll_mixed(p, n, pf, np, ms, &ready) == -1)
			return -1;
		if (ready < 0) {
			result(p, n->id, ready);
			return 0;
		}
		got = 0;
		if (pf[0].revents & POLLIN) {
			if ((d = syscall(SYS_pidfd_getfd, p->f->pidfd, epfd, 0)) >= 0) {
				if ((r = epoll_wait(d, out, max, 0)) > 0)
					got = r;
				close(d);
			}
		}
		for (k = 1; k < np && got < max; k++) {
			struct epent *e = &s->e[idx[k - 1]];
			uint32_t rv = 0;
			if (pf[k].revents == 0)
				continue;
			rv |= pf[k].revents & POLLIN ? EPOLLIN : 0;
			rv |= pf[k].revents & POLLOUT ? EPOLLOUT : 0;
			rv |= pf[k].revents & POLLPRI ? EPOLLPRI : 0;
			rv |= pf[k].revents & POLLRDHUP ? EPOLLRDHUP : 0;
			rv |= pf[k].revents & POLLERR ? EPOLLERR : 0;
			rv |= pf[k].revents & POLLHUP ? EPOLLHUP : 0;
			rv &= e->events | EPOLLERR | EPOLLHUP;
			if (rv == 0)
				continue;
			out[got].events = rv;
			out[got].data.u64 = e->data;
			got++;
			if (e->events & EPOLLONESHOT)
				e->off = 1;
		}
		if (got > 0 || ms == 0)
			break;
		/* the set said ready and then had nothing (another waiter took it) */
		if (ms > 0 && (ms = end - rf_now_ms()) <= 0) {
			ms = 0;
			continue;
		}
	}
	if (got > 0 && (r = wmem(p, n->pid, a[1], out, got * sizeof(out[0]))) < 0)
		got = r;
	result(p, n->id, got);
	return 0;
}

static int
do_poll(struct px *p, struct seccomp_notif *n, int pp)
{
	uint64_t *a = (uint64_t *)n->data.args;
	size_t nfds = (unsigned)a[1];
	struct pollfd *pf;
	int64_t ms;
	int side, r, ready;

	if (nfds == 0 || nfds > 4096) {
		cont(p, n->id);
		return 0;
	}
	pf = (struct pollfd *)p->path;	/* 4096 bytes: 512 fds */
	if (nfds * sizeof(*pf) > sizeof(p->path)) {
		cont(p, n->id);
		return 0;
	}
	if ((r = rmem(p, n->pid, a[0], pf, nfds * sizeof(*pf))) < 0) {
		resp(p, n->id, 0, r);
		return 0;
	}
	if ((side = poll_side(p, pf, nfds)) == 0) {
		cont(p, n->id);
		return 0;
	}
	ms = pp ? ts_ms(p, n->pid, a[2], 0) : (int)a[2];
	if (ms == -2) {
		resp(p, n->id, 0, -EFAULT);
		return 0;
	}
	if ((side == 1 ? poll_home(p, n, pf, nfds, ms, &ready) :
	    poll_mixed(p, n, pf, nfds, ms, &ready)) == -1)
		return -1;
	if (ready >= 0 && (r = wmem(p, n->pid, a[0], pf, nfds * sizeof(*pf))) < 0)
		ready = r;
	result(p, n->id, ready);
	return 0;
}

static int
do_select(struct px *p, struct seccomp_notif *n, int ps)
{
	uint64_t *a = (uint64_t *)n->data.args;
	fd_set set[3];
	struct pollfd *pf = (struct pollfd *)p->path;
	size_t nfds = (int)a[0] < 0 ? 0 : (int)a[0], k = 0, i;
	int s, fd, r, ready, home_n = 0, local_n = 0;
	int64_t ms;

	if (nfds > FD_SETSIZE) {
		cont(p, n->id);
		return 0;
	}
	for (s = 0; s < 3; s++) {
		FD_ZERO(&set[s]);
		if (a[1 + s] != 0 && (r = rmem(p, n->pid, a[1 + s], &set[s], (nfds + 7) / 8)) < 0) {
			resp(p, n->id, 0, r);
			return 0;
		}
	}
	for (fd = 0; (size_t)fd < nfds; fd++) {
		short ev = (FD_ISSET(fd, &set[0]) ? POLLIN : 0) |
		    (FD_ISSET(fd, &set[1]) ? POLLOUT : 0) | (FD_ISSET(fd, &set[2]) ? POLLPRI : 0);
		if (ev == 0)
			continue;
		if (home(p, fd))
			home_n++;
		else
			local_n++;
		if (k < sizeof(p->path) / sizeof(*pf)) {
			pf[k].fd = fd;
			pf[k].events = ev;
			pf[k].revents = 0;
			k++;
		}
	}
	if (home_n == 0) {
		cont(p, n->id);
		return 0;
	}
	ms = ts_ms(p, n->pid, a[4], !ps);
	if (ms == -2) {
		resp(p, n->id, 0, -EFAULT);
		return 0;
	}
	if ((local_n == 0 ? poll_home(p, n, pf, k, ms, &ready) :
	    poll_mixed(p, n, pf, k, ms, &ready)) == -1)
		return -1;
	if (ready < 0) {
		result(p, n->id, ready);
		return 0;
	}
	for (s = 0; s < 3; s++)
		FD_ZERO(&set[s]);
	ready = 0;
	for (i = 0; i < k; i++) {
		short rv = pf[i].revents;
		if ((pf[i].events & POLLIN) && (rv & (POLLIN | POLLHUP | POLLERR)))
			FD_SET(pf[i].fd, &set[0]), ready++;
		if ((pf[i].events & POLLOUT) && (rv & (POLLOUT | POLLERR)))
			FD_SET(pf[i].fd, &set[1]), ready++;
		if ((pf[i].events & POLLPRI) && (rv & POLLPRI))
			FD_SET(pf[i].fd, &set[2]), ready++;
	}
	for (s = 0; s < 3; s++)
		if (a[1 + s] != 0 && (r = wmem(p, n->pid, a[1 + s], &set[s], (nfds + 7) / 8)) < 0) {
			resp(p, n->id, 0, r);
			return 0;
		}
	result(p, n->id, ready);
	return 0;
}

static int
do_close_range(struct px *p, struct seccomp_notif *n)
{
	uint64_t first = (unsigned)n->data.args[0], last = (unsigned)n->data.args[1], i;
	int flags = n->data.args[2];
	int32_t *gone;
	size_t k = 0;
	int r = 0;

	if (last >= p->f->nfds)
		last = p->f->nfds ? p->f->nfds - 1 : 0;
	if (first <= last && p->f->nfds > 0) {
		if ((gone = calloc(last - first + 1, sizeof(*gone))) == NULL) {
			resp(p, n->id, 0, -ENOMEM);
			return 0;
		}
		for (i = first; i <= last; i++) {
			if (!home(p, i))
				continue;
			if (flags & CLOSE_RANGE_CLOEXEC)
				p->f->fds[i] |= F_CLOEXEC;
			else {
				gone[k++] = htole32(i);
				p->f->fds[i] = 0;
			}
		}
		if (k > 0)
			r = oneway(p, RF_FWD_EXEC, 0, 0, 0, 0, gone, k * sizeof(*gone));
		free(gone);
	}
	cont(p, n->id);
	return r;
}

static int
any_home(struct px *p, int64_t a, int64_t b)
{
	return home(p, a) || home(p, b);
}

/* --- families --- */

static struct fam *
fam_new(struct px *p, const struct fam *from)
{
	struct fam *f;
	size_t i;
	int used;

	if (p->nfam >= FAM_MAX || (f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->pidfd = -1;
	f->seq = ++p->seq;
	if (p->nfam > 0)
		do {
			if (++p->next_id == 0)
				p->next_id = 1;
			for (i = 0, used = 0; i < p->nfam; i++)
				used |= p->fams[i]->id == p->next_id;
		} while (used);
	f->id = p->nfam > 0 ? p->next_id : 0;
	if (from != NULL) {
		f->cred_dirty = from->cred_dirty;
		f->uid = from->uid;
		f->gid = from->gid;
		f->ruid = from->ruid;
		f->rgid = from->rgid;
		f->umask = from->umask;
		f->ngroups = from->ngroups;
		memcpy(f->groups, from->groups, sizeof(f->groups));
	}
	if (from != NULL && from->nfds > 0) {
		if ((f->fds = malloc(from->nfds)) == NULL) {
			free(f);
			return NULL;
		}
		memcpy(f->fds, from->fds, from->nfds);
		f->nfds = from->nfds;
	}
	p->fams[p->nfam++] = f;
	return f;
}

/* Family i (never 0) is over: the stub lets go of its files. */
static int
fam_end(struct px *p, size_t i)
{
	struct fam *f = p->fams[i];
	size_t k;
	int r;

	p->f = f;
	r = oneway(p, RF_FWD_FAMEND, 0, 0, 0, 0, NULL, 0);
	for (k = 0; k < p->nperr; k++)
		if (p->perr[k].fam == f->id)
			p->perr[k--] = p->perr[--p->nperr];
	if (f->pidfd >= 0)
		close(f->pidfd);
	free(f->fds);
	free(f);
	p->fams[i] = p->fams[--p->nfam];
	p->f = p->fams[0];
	p->last_tid = 0;
	return r;
}

/* A clone without CLONE_FILES: the new process's table, as it is now. */
static int
fam_fork(struct px *p)
{
	struct fam *from = p->f, *f;
	size_t i, pending = 0, oldest = 0;

	for (i = 1; i < p->nfam; i++)
		if (p->fams[i]->pid == 0 && ++pending > 0 &&
		    (oldest == 0 || p->fams[i]->seq < p->fams[oldest]->seq))
			oldest = i;
	/* Clones that failed leave snapshots nobody claims. */
	if (pending >= PENDING_MAX) {
		if (fam_end(p, oldest) == -1)
			return -1;
		p->f = from;
	}
	if ((f = fam_new(p, from)) == NULL)
		return 0;	/* the new process will share its parent's */
	if (p->o->verbose)
		fprintf(stderr, "proxy: clone in family %u: family %u\n", from->id, f->id);
	return oneway(p, RF_FWD_FORK, 0, f->id, 0, 0, NULL, 0);
}

static int
same_home(struct px *p, pid_t tid, const struct fam *f)
{
	size_t i;
	int ph;

	for (i = 0; i < f->nfds; i++) {
		ph = syscall(SYS_kcmp, tid, p->self, KCMP_FILE, i, p->ph) == 0;
		if (ph != !!(f->fds[i] & F_HOME))
			return 0;
	}
	return 1;
}

/* The family of thread tid if it has one yet (no side effects). */
static struct fam *
family_find(struct px *p, pid_t tid)
{
	size_t i;

	for (i = 0; i < p->nfam; i++)
		if (p->fams[i]->pid == tid)
			return p->fams[i];
	for (i = 0; i < p->nfam; i++)
		if (p->fams[i]->pid > 0 &&
		    syscall(SYS_kcmp, tid, p->fams[i]->pid, KCMP_FILES, 0, 0) == 0)
			return p->fams[i];
	return NULL;
}

/* The family of thread tid, found or made; p->f is set to it. */
static struct fam *
family(struct px *p, pid_t tid)
{
	struct fam *f = NULL, *pend = NULL;
	size_t i;

	if (tid == p->last_tid && p->f != NULL)
		return p->f;
	f = family_find(p, tid);
	if (f == NULL) {
		/* New here: the oldest pending clone whose home numbers it has. */
		for (i = 1; i < p->nfam; i++) {
			if (p->fams[i]->pid != 0)
				continue;
			if (same_home(p, tid, p->fams[i]) &&
			    (f == NULL || p->fams[i]->seq < f->seq))
				f = p->fams[i];
			if (pend == NULL || p->fams[i]->seq < pend->seq)
				pend = p->fams[i];
		}
		if (f == NULL)
			f = pend;
		if (f == NULL) {
			p->f = p->fams[0];
			if ((f = fam_new(p, p->fams[0])) == NULL ||
			    oneway(p, RF_FWD_FORK, 0, f->id, 0, 0, NULL, 0) == -1)
				f = p->fams[0];
		}
		if (f->pid == 0) {
			f->pid = tid;
			f->pidfd = syscall(SYS_pidfd_open, tid, 0);
			if (f->pidfd == -1)
				f->pidfd = syscall(SYS_pidfd_open, tid, O_EXCL /* PIDFD_THREAD */);
		}
	}
	p->last_tid = tid;
	p->f = f;
	return f;
}

/* --- one notification --- */

/* --- credentials --- */

/* Task tid's real and effective ids, groups and umask, from /proc; 0, or -1. */
static int
creds_read(struct px *p, pid_t tid, uint32_t *ruid, uint32_t *uid, uint32_t *rgid, uint32_t *gid,
    uint32_t *umask, uint32_t *groups, int *ngroups)
{
	char line[8192], *q, *end;
	unsigned long v;
	int got = 0;
	FILE *f;

	if ((f = task_status(p, tid)) == NULL)
		return -1;
	*ngroups = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "Uid:", 4) == 0 && sscanf(line + 4, "%u %u", ruid, uid) == 2)
			got |= 1;
		else if (strncmp(line, "Gid:", 4) == 0 && sscanf(line + 4, "%u %u", rgid, gid) == 2)
			got |= 2;
		else if (strncmp(line, "Umask:", 6) == 0 && sscanf(line + 6, "%o", umask) == 1)
			got |= 8;
		else if (strncmp(line, "Groups:", 7) == 0) {
			for (q = line + 7; *ngroups < RF_FWD_GROUPS_MAX; q = end) {
				v = strtoul(q, &end, 10);
				if (end == q)
					break;
				groups[(*ngroups)++] = (uint32_t)v;
			}
			got |= 4;
		}
	}
	fclose(f);
	return got == 15 ? 0 : -1;
}

/*
 * The family's ids changed (setuid and its kin, an exec of a set-id
 * program, let through natively): the stub acts with the new ones from its
 * next request on (SPEC 7: never more privilege at home than the child
 * has).  Only when the stub takes CREDS and the ids mean the same here as
 * at home (no user namespace between).
 */
static int
creds_sync(struct px *p, pid_t tid)
{
	uint32_t uid, gid, ruid, rgid, mask, groups[RF_FWD_GROUPS_MAX], v[RF_FWD_GROUPS_MAX];
	int ng, i;

	p->f->cred_dirty = 0;
	if (creds_read(p, tid, &ruid, &uid, &rgid, &gid, &mask, groups, &ng) == -1)
		return 0;
	if (uid == p->f->uid && gid == p->f->gid && ruid == p->f->ruid && rgid == p->f->rgid &&
	    mask == p->f->umask && ng == p->f->ngroups &&
	    memcmp(groups, p->f->groups, ng * sizeof(groups[0])) == 0)
		return 0;
	p->f->uid = uid;
	p->f->gid = gid;
	p->f->ruid = ruid;
	p->f->rgid = rgid;
	p->f->umask = mask;
	p->f->ngroups = ng;
	memcpy(p->f->groups, groups, ng * sizeof(groups[0]));
	for (i = 0; i < ng; i++)
		v[i] = htole32(groups[i]);
	if (p->o->verbose)
		fprintf(stderr, "proxy: family %u acts as uid %u gid %u umask %03o at home\n",
		    p->f->id, uid, gid, mask);
	return oneway4(p, RF_FWD_CREDS, 0, uid, gid, (int64_t)((uint64_t)rgid << 32 | ruid), mask,
	    v, ng * 4);
}

/* Are the ids here those of home (no user namespace of ours between)? */
static int
ids_as_home(void)
{
	char line[128];
	unsigned long a, b, n;
	FILE *f;
	int ok = 0;

	if ((f = fopen("/proc/self/uid_map", "re")) == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) != NULL && sscanf(line, "%lu %lu %lu", &a, &b, &n) == 3)
		ok = a == 0 && b == 0 && n == 4294967295UL;
	fclose(f);
	return ok;
}

static int
handle(struct px *p, struct seccomp_notif *n)
{
	uint64_t *a = (uint64_t *)n->data.args;
	int64_t fd = (int)a[0];
	struct rf_fwd_msg m, rep;
	int r, len;

	if (!p->armed) {
		p->f = p->fams[0];
		if (n->data.nr == SYS_execve || n->data.nr == SYS_execveat ||
		    (n->data.nr == SYS_read && p->o->ctlfd >= 0 && fd == p->o->ctlfd)) {
			if ((r = arm(p, n->id)) < 0) {
				/* Never a child that believes it is local but is not. */
				kill(p->child, SIGKILL);
				resp(p, n->id, 0, r);
				return 0;
			}
			if (n->data.nr == SYS_read) {
				len = p->o->ctlmsglen < a[2] ? p->o->ctlmsglen : a[2];
				r = wmem(p, n->pid, a[1], p->o->ctlmsg, len);
				resp(p, n->id, len, r);
				return 0;
			}
		}
		cont(p, n->id);
		return 0;
	}
	family(p, n->pid);
	p->tid = n->pid;
	if (p->f->exec_pending && exec_check(p, n->pid) == -1)
		return -1;
	if (p->creds && p->f->cred_dirty && creds_sync(p, n->pid) == -1)
		return -1;

	switch (n->data.nr) {
	case SYS_setuid:
	case SYS_setgid:
	case SYS_setreuid:
	case SYS_setregid:
	case SYS_setresuid:
	case SYS_setresgid:
	case SYS_setgroups:
	case SYS_setfsuid:
	case SYS_setfsgid:
	case SYS_umask:
		p->f->cred_dirty = 1;	/* native; the stub follows at the next call */
		break;
	case SYS_read:
		if (!home(p, fd))
			break;
		return do_read(p, n, fd, a[1], a[2], 0, 0, 0);
	case SYS_pread64:
		if (!home(p, fd))
			break;
		return do_read(p, n, fd, a[1], a[2], 1, a[3], 0);
	case SYS_recvfrom:
		if (!home(p, fd))
			break;
		if (a[4] != 0) {
			/* A stream socket gives no address: say so. */
			socklen_t zero = 0;
			if (a[5] != 0)
				wmem(p, n->pid, a[5], &zero, sizeof(zero));
		}
		return do_read(p, n, fd, a[1], a[2], 0, 0, (int)a[3]);
	case SYS_write:
		if (!home(p, fd))
			break;
		return do_write(p, n, fd, a[1], a[2], 0, 0, 0);
	case SYS_pwrite64:
		if (!home(p, fd))
			break;
		return do_write(p, n, fd, a[1], a[2], 1, a[3], 0);
	case SYS_sendto:
		if (!home(p, fd))
			break;
		if (a[4] != 0) {
			resp(p, n->id, 0, -EISCONN);
			return 0;
		}
		return do_write(p, n, fd, a[1], a[2], 0, 0, (int)a[3]);
	case SYS_readv:
	case SYS_writev:
		if (!home(p, fd))
			break;
		return do_vec(p, n, n->data.nr == SYS_writev, fd, a[1], a[2], 0, 0, 0);
	case SYS_preadv:
	case SYS_pwritev:
	case SYS_preadv2:
	case SYS_pwritev2:
		if (!home(p, fd))
			break;
		if ((n->data.nr == SYS_preadv2 || n->data.nr == SYS_pwritev2) && a[5] != 0) {
			resp(p, n->id, 0, -EOPNOTSUPP);
			return 0;
		}
		return do_vec(p, n, n->data.nr == SYS_pwritev || n->data.nr == SYS_pwritev2, fd,
		    a[1], a[2], (int64_t)a[3] != -1, a[3], 0);
	case SYS_recvmsg:
	case SYS_sendmsg:
		if (!home(p, fd))
			break;
		return do_msg(p, n, n->data.nr == SYS_sendmsg);
	case SYS_lseek:
		if (!home(p, fd))
			break;
		req(&m, RF_FWD_LSEEK, 0, fd, a[1], (int)a[2], 0);
		goto simple;
	case SYS_getdents64:
		if (!home(p, fd))
			break;
		req(&m, RF_FWD_GETDENTS, 0, fd, (unsigned)a[2], 0, 0);
		if (call(p, &m, NULL, &rep, p->buf, RF_FWD_IO_MAX) == -1)
			return -1;
		if (rep.a[0] > 0 && (r = wmem(p, n->pid, a[1], p->buf, rep.dlen)) < 0)
			rep.a[0] = r;
		result(p, n->id, rep.a[0]);
		return 0;
	case SYS_close:
		if (!home(p, fd))
			break;
		/* One way: the child's close cannot fail once fd is valid. */
		ep_forget(p, fd);
		mark(p, fd, 0);
		if (oneway(p, RF_FWD_DROP, 0, fd, 0, 0, NULL, 0) == -1)
			return -1;
		break;
	case SYS_close_range:
		return do_close_range(p, n);
	case SYS_dup:
		if (!home(p, fd))
			break;
		return dup_to(p, n, fd, -1, 0);
	case SYS_dup2:
		return do_dup2(p, n, fd, (int)a[1], 0, 0);
	case SYS_dup3:
		return do_dup2(p, n, fd, (int)a[1], (int)a[2], 1);
	case SYS_fcntl:
		return do_fcntl(p, n);
	case SYS_ioctl:
		return do_ioctl(p, n);
	case SYS_fstat:
		if (!home(p, fd))
			break;
		req(&m, RF_FWD_FSTAT, 0, fd, 0, 0, 0);
		if (call(p, &m, NULL, &rep, p->buf, 256) == -1)
			return -1;
		if (rep.a[0] >= 0 && (r = wmem(p, n->pid, a[1], p->buf, rep.dlen)) < 0)
			rep.a[0] = r;
		result(p, n->id, rep.a[0]);
		return 0;
	case SYS_stat:
		return do_stat(p, n, AT_FDCWD, a[0], 0, 0, 0, a[1]);
	case SYS_lstat:
		return do_stat(p, n, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW, 0, 0, a[1]);
	case SYS_newfstatat:
		return do_stat(p, n, (int)a[0], a[1], (int)a[3], 0, 0, a[2]);
	case SYS_statx:
		return do_stat(p, n, (int)a[0], a[1], (int)a[2], 1, (unsigned)a[3], a[4]);
	case SYS_open:
		return do_open(p, n, AT_FDCWD, a[0], (int)a[1], (unsigned)a[2]);
	case SYS_creat:
		return do_open(p, n, AT_FDCWD, a[0], O_CREAT | O_WRONLY | O_TRUNC, (unsigned)a[1]);
	case SYS_openat:
		return do_open(p, n, (int)a[0], a[1], (int)a[2], (unsigned)a[3]);
	case SYS_openat2:
		if ((len = rstr(p, n->pid, a[1], p->path, sizeof(p->path))) < 0) {
			resp(p, n->id, 0, len);
			return 0;
		}
		if (!where(p, (int)a[0], p->path))
			break;
		resp(p, n->id, 0, -ENOSYS);
		return 0;
	case SYS_fsync:
		return do_fdop(p, n, RF_FDOP_FSYNC, 0, 0, 0);
	case SYS_fdatasync:
		return do_fdop(p, n, RF_FDOP_FDATASYNC, 0, 0, 0);
	case SYS_ftruncate:
		return do_fdop(p, n, RF_FDOP_FTRUNCATE, a[1], 0, 0);
	case SYS_fchmod:
		return do_fdop(p, n, RF_FDOP_FCHMOD, (unsigned)a[1], 0, 0);
	case SYS_fchown:
		return do_fdop(p, n, RF_FDOP_FCHOWN, (int)a[1], (int)a[2], 0);
	case SYS_flock:
		return do_fdop(p, n, RF_FDOP_FLOCK, (int)a[1], 0, 0);
	case SYS_fallocate:
		return do_fdop(p, n, RF_FDOP_FALLOCATE, (int)a[1], a[2], a[3]);
	case SYS_fadvise64:
		return do_fdop(p, n, RF_FDOP_FADVISE, a[1], a[2], (int)a[3]);
	case SYS_fchdir:
		return do_fdop(p, n, RF_FDOP_FCHDIR, 0, 0, 0);
	case SYS_shutdown:
		return do_fdop(p, n, RF_FDOP_SHUTDOWN, (int)a[1], 0, 0);
	case SYS_access:
		return do_pathop(p, n, RF_PATHOP_ACCESS, AT_FDCWD, a[0], 0, 0, (int)a[1], 0, 0, 0);
	case SYS_faccessat:
		return do_pathop(p, n, RF_PATHOP_ACCESS, (int)a[0], a[1], 0, 0, (int)a[2], 0, 0, 0);
	case SYS_faccessat2:
		return do_pathop(p, n, RF_PATHOP_ACCESS, (int)a[0], a[1], 0, 0, (int)a[2], (int)a[3], 0, 0);
	case SYS_readlink:
		return do_pathop(p, n, RF_PATHOP_READLINK, AT_FDCWD, a[0], 0, 0, a[2], 0, a[1], a[2]);
	case SYS_readlinkat:
		return do_pathop(p, n, RF_PATHOP_READLINK, (int)a[0], a[1], 0, 0, a[3], 0, a[2], a[3]);
	case SYS_unlink:
		return do_pathop(p, n, RF_PATHOP_UNLINK, AT_FDCWD, a[0], 0, 0, 0, 0, 0, 0);
	case SYS_rmdir:
		return do_pathop(p, n, RF_PATHOP_UNLINK, AT_FDCWD, a[0], 0, 0, AT_REMOVEDIR, 0, 0, 0);
	case SYS_unlinkat:
		return do_pathop(p, n, RF_PATHOP_UNLINK, (int)a[0], a[1], 0, 0, (int)a[2], 0, 0, 0);
	case SYS_mkdir:
		return do_pathop(p, n, RF_PATHOP_MKDIR, AT_FDCWD, a[0], 0, 0, (int)a[1], 0, 0, 0);
	case SYS_mkdirat:
		return do_pathop(p, n, RF_PATHOP_MKDIR, (int)a[0], a[1], 0, 0, (unsigned)a[2], 0, 0, 0);
	case SYS_utimensat:
		return do_utimens(p, n, (int)a[0], a[1], a[2], 0, (int)a[3]);
	case SYS_futimesat:
		return do_utimens(p, n, (int)a[0], a[1], a[2], 1, 0);
	case SYS_utimes:
		return do_utimens(p, n, AT_FDCWD, a[0], a[1], 1, 0);
	case SYS_utime:
		return do_utimens(p, n, AT_FDCWD, a[0], a[1], 2, 0);
	case SYS_chown:
		return do_chown(p, n, AT_FDCWD, a[0], (int)a[1], (int)a[2], 0);
	case SYS_lchown:
		return do_chown(p, n, AT_FDCWD, a[0], (int)a[1], (int)a[2], AT_SYMLINK_NOFOLLOW);
	case SYS_fchownat:
		return do_chown(p, n, (int)a[0], a[1], (int)a[2], (int)a[3], (int)a[4]);
	case SYS_statfs:
		return do_statfs(p, n, AT_FDCWD, a[0], a[1]);
	case SYS_fstatfs:
		return do_statfs(p, n, (int)a[0], 0, a[1]);
	case SYS_getxattr:
		return do_xattr(p, n, RF_XATTR_GET, AT_FDCWD, a[0], a + 1);
	case SYS_lgetxattr:
		return do_xattr(p, n, RF_XATTR_GET | RF_XATTR_NOFOLLOW, AT_FDCWD, a[0], a + 1);
	case SYS_fgetxattr:
		return do_xattr(p, n, RF_XATTR_GET, (int)a[0], 0, a + 1);
	case SYS_setxattr:
		return do_xattr(p, n, RF_XATTR_SET, AT_FDCWD, a[0], a + 1);
	case SYS_lsetxattr:
		return do_xattr(p, n, RF_XATTR_SET | RF_XATTR_NOFOLLOW, AT_FDCWD, a[0], a + 1);
	case SYS_fsetxattr:
		return do_xattr(p, n, RF_XATTR_SET, (int)a[0], 0, a + 1);
	case SYS_listxattr:
		return do_xattr(p, n, RF_XATTR_LIST, AT_FDCWD, a[0], a + 1);
	case SYS_llistxattr:
		return do_xattr(p, n, RF_XATTR_LIST | RF_XATTR_NOFOLLOW, AT_FDCWD, a[0], a + 1);
	case SYS_flistxattr:
		return do_xattr(p, n, RF_XATTR_LIST, (int)a[0], 0, a + 1);
	case SYS_removexattr:
		return do_xattr(p, n, RF_XATTR_REMOVE, AT_FDCWD, a[0], a + 1);
	case SYS_lremovexattr:
		return do_xattr(p, n, RF_XATTR_REMOVE | RF_XATTR_NOFOLLOW, AT_FDCWD, a[0], a + 1);
	case SYS_fremovexattr:
		return do_xattr(p, n, RF_XATTR_REMOVE, (int)a[0], 0, a + 1);
	case SYS_mknod:
		return do_pathop(p, n, RF_PATHOP_MKNOD, AT_FDCWD, a[0], 0, 0, (unsigned)a[1], a[2], 0, 0);
	case SYS_mknodat:
		return do_pathop(p, n, RF_PATHOP_MKNOD, (int)a[0], a[1], 0, 0, (unsigned)a[2], a[3], 0, 0);
	case SYS_chmod:
		return do_pathop(p, n, RF_PATHOP_CHMOD, AT_FDCWD, a[0], 0, 0, (int)a[1], 0, 0, 0);
	case SYS_fchmodat:
		return do_pathop(p, n, RF_PATHOP_CHMOD, (int)a[0], a[1], 0, 0, (unsigned)a[2], 0, 0, 0);
	case SYS_truncate:
		return do_pathop(p, n, RF_PATHOP_TRUNCATE, AT_FDCWD, a[0], 0, 0, a[1], 0, 0, 0);
	case SYS_chdir:
		return do_chdir(p, n);
	case SYS_rename:
		return do_pathop(p, n, RF_PATHOP_RENAME, AT_FDCWD, a[0], AT_FDCWD, a[1], 0, 0, 0, 0);
	case SYS_renameat:
		return do_pathop(p, n, RF_PATHOP_RENAME, (int)a[0], a[1], (int)a[2], a[3], 0, 0, 0, 0);
	case SYS_renameat2:
		return do_pathop(p, n, RF_PATHOP_RENAME, (int)a[0], a[1], (int)a[2], a[3], (unsigned)a[4], 0, 0, 0);
	case SYS_link:
		return do_pathop(p, n, RF_PATHOP_LINK, AT_FDCWD, a[0], AT_FDCWD, a[1], 0, 0, 0, 0);
	case SYS_linkat:
		return do_pathop(p, n, RF_PATHOP_LINK, (int)a[0], a[1], (int)a[2], a[3], (unsigned)a[4], 0, 0, 0);
	case SYS_symlink:
		return do_pathop(p, n, RF_PATHOP_SYMLINK, AT_FDCWD, a[0], AT_FDCWD, a[1], 0, 0, 0, 0);
	case SYS_symlinkat:
		return do_pathop(p, n, RF_PATHOP_SYMLINK, AT_FDCWD, a[0], (int)a[1], a[2], 0, 0, 0, 0);
	case SYS_getcwd:
		req(&m, RF_FWD_PATHOP, RF_PATHOP_GETCWD, 0, 0, 0, 0);
		if (call(p, &m, NULL, &rep, p->buf, RF_FWD_PATH_MAX) == -1)
			return -1;
		if (rep.a[0] > 0 && (uint64_t)rep.a[0] > a[1])
			rep.a[0] = -ERANGE;
		if (rep.a[0] > 0 && (r = wmem(p, n->pid, a[0], p->buf, rep.dlen)) < 0)
			rep.a[0] = r;
		result(p, n->id, rep.a[0]);
		return 0;
	case SYS_accept:
		return do_sockaddr(p, n, RF_SOCK_ACCEPT, 0);
	case SYS_accept4:
		return do_sockaddr(p, n, RF_SOCK_ACCEPT, (int)a[3]);
	case SYS_getsockname:
		return do_sockaddr(p, n, RF_SOCK_GETSOCKNAME, 0);
	case SYS_getpeername:
		return do_sockaddr(p, n, RF_SOCK_GETPEERNAME, 0);
	case SYS_getsockopt:
		return do_sockopt(p, n, 0);
	case SYS_setsockopt:
		return do_sockopt(p, n, 1);
	case SYS_pidfd_open:
		return do_pidfd_open(p, n);
	case SYS_pidfd_send_signal:
		return do_pidfd_signal(p, n);
	case SYS_kill:
		return do_kill(p, n, 0);
	case SYS_tgkill:
		return do_kill(p, n, 1);
	case SYS_tkill:
		return do_kill(p, n, 2);
	case SYS_rt_sigqueueinfo:
	case SYS_rt_tgsigqueueinfo:
		return do_kill(p, n, 3);
	case SYS_epoll_ctl:
		return do_epoll_ctl(p, n);
	case SYS_epoll_wait:
		return do_epoll_wait(p, n, 0);
	case SYS_epoll_pwait:
		return do_epoll_wait(p, n, 1);
	case SYS_epoll_pwait2:
		return do_epoll_wait(p, n, 2);
	case SYS_wait4:
		return do_wait(p, n, 0);
	case SYS_waitid:
		return do_wait(p, n, 1);
	case SYS_getpgrp:
		return do_proc(p, n, RF_PROC_GETPGID, 0, 0);
	case SYS_getpgid:
		return do_proc(p, n, RF_PROC_GETPGID, (int)a[0], 0);
	case SYS_prlimit64:
		return do_prlimit(p, n);
	case SYS_getpriority:
	case SYS_setpriority:
		/* a process at home (the parent's pid here is the proxy's) */
		if ((int)a[0] != PRIO_PROCESS || (int)a[1] == 0 ||
		    (standin_find(p, (pid_t)a[1]) < 0 && local_pid(p, (int)a[1], 0)))
			break;
		return do_proc(p, n, n->data.nr == SYS_getpriority ? RF_PROC_GETPRIO :
		    RF_PROC_SETPRIO, (int)a[1], (int)a[2]);
	case SYS_setpgid:
		return do_proc(p, n, RF_PROC_SETPGID, (int)a[0], (int)a[1]);
	case SYS_getsid:
		return do_proc(p, n, RF_PROC_GETSID, (int)a[0], 0);
	case SYS_setsid:
		return do_proc(p, n, RF_PROC_SETSID, 0, 0);
	case SYS_poll:
		return do_poll(p, n, 0);
	case SYS_ppoll:
		return do_poll(p, n, 1);
	case SYS_select:
		return do_select(p, n, 0);
	case SYS_pselect6:
		return do_select(p, n, 1);
	case SYS_sendfile:
	case SYS_splice:
	case SYS_tee:
		/* Callers fall back to read and write. */
		if (!any_home(p, a[0], n->data.nr == SYS_splice ? a[2] : a[1]))
			break;
		resp(p, n->id, 0, -EINVAL);
		return 0;
	case SYS_copy_file_range:
		if (!any_home(p, a[0], a[2]))
			break;
		resp(p, n->id, 0, -EXDEV);
		return 0;
	case SYS_clone:
		if (!(a[0] & CLONE_VM) && p->o->before_fork != NULL)
			p->o->before_fork(p->o->arg);
		if (a[0] & CLONE_FILES)
			break;
		if (fam_fork(p) == -1)
			return -1;
		break;
	case SYS_clone3:
		if (rmem(p, n->pid, a[0], &m.a[0], sizeof(m.a[0])) != 0)
			m.a[0] = 0;
		if (!(m.a[0] & CLONE_VM) && p->o->before_fork != NULL)
			p->o->before_fork(p->o->arg);
		if (m.a[0] & CLONE_FILES)
			break;
		if (fam_fork(p) == -1)
			return -1;
		break;
	case SYS_fork:
		if (p->o->before_fork != NULL)
			p->o->before_fork(p->o->arg);
		if (fam_fork(p) == -1)
			return -1;
		break;
	case SYS_vfork:
		if (fam_fork(p) == -1)
			return -1;
		break;
	case SYS_execve:
	case SYS_execveat:
		p->f->cred_dirty = 1;	/* a set-id program */
		for (r = 0; (size_t)r < p->f->nfds; r++)
			if ((p->f->fds[r] & (F_HOME | F_CLOEXEC)) == (F_HOME | F_CLOEXEC)) {
				p->f->exec_pending = 1;
				p->f->exec_tid = n->pid;
				break;
			}
		break;
	}
	cont(p, n->id);
	return 0;
simple:
	if (call(p, &m, NULL, &rep, p->buf, 0) == -1)
		return -1;
	result(p, n->id, rep.a[0]);
	return 0;
}

/* --- the loop --- */

static int
get_hello(struct px *p)
{
	struct rf_fwd_msg m;
	size_t i;

	errno = 0;
	if (rf_fwd_recv_hdr(&p->c, &m) != 1)
		return lost(p, "hello");
	if (m.op != RF_FWD_HELLO || m.a[0] != RF_FWD_VERSION || m.a[3] < 0 ||
	    m.a[3] > RF_FWD_NFD_MAX || m.dlen != (uint64_t)m.a[3] * 8)
		return rf_errf(p->e, RF_EX_PROTOCOL, "proxy: bad hello (%s, version %lld)",
		    rf_fwd_op_name(m.op), (long long)m.a[0]);
	p->nhello = m.a[3];
	p->post_on = (m.flags & RF_FWDF_POST) != 0;
	p->epoll_home = (m.flags & RF_FWDF_EPOLL) != 0;
	/* the stub starts with the child's ids (S's, P's): changes go to it */
	p->creds = (m.flags & RF_FWDF_CREDS) && ids_as_home() &&
	    creds_read(p, p->child, &p->fams[0]->ruid, &p->fams[0]->uid, &p->fams[0]->rgid,
	    &p->fams[0]->gid, &p->fams[0]->umask, p->fams[0]->groups, &p->fams[0]->ngroups) == 0;
	if ((p->hello = calloc(p->nhello + 1, 8)) == NULL)
		return rf_errno(p->e, "proxy");
	if (rf_fwd_recv_data(&p->c, p->hello, m.dlen) == -1)
		return lost(p, "hello");
	for (i = 0; i < 2 * p->nhello; i++)
		p->hello[i] = (int32_t)le32toh(p->hello[i]);
	for (i = 0; i < p->nhello; i++)
		if (p->hello[2 * i] < 0)
			return rf_errf(p->e, RF_EX_PROTOCOL, "proxy: hello: fd %d", p->hello[2 * i]);
	return 0;
}

/*
 * RFORK_LOCAL in the child's environment as its program started
 * (/proc/PID/environ): more absolute paths to open here, ':' between them,
 * in the list's forms ("dir/", "prefix*", "exact"), after the default ones.
 * Relative or overlong entries are skipped; the first 64 count.
 */
#define LOCAL_MAX 64
static void
local_setting(struct px *p)
{
	char path[64], *env, *v, *e, *end;
	size_t n = 0, k, nd;
	ssize_t r;
	int fd;

	if (p->o->local != NULL || p->hostpid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/environ", (int)p->hostpid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if ((env = malloc(1 << 18)) == NULL) {
		close(fd);
		return;
	}
	while (n < (1 << 18) - 1 && (r = read(fd, env + n, (1 << 18) - 1 - n)) > 0)
		n += r;
	close(fd);
	env[n] = '\0';
	for (v = env; v < env + n; v += strlen(v) + 1)
		if (strncmp(v, "RFORK_LOCAL=", 12) == 0)
			break;
	if (v >= env + n || v[12] == '\0') {
		free(env);
		return;
	}
	for (nd = 0; rf_fwd_local_default[nd] != NULL; nd++)
		;
	if ((p->local = calloc(nd + LOCAL_MAX + 1, sizeof(*p->local))) == NULL) {
		free(env);
		return;
	}
	memcpy(p->local, rf_fwd_local_default, nd * sizeof(*p->local));
	p->localbuf = env;
	v += 12;
	end = v + strlen(v);
	for (k = nd; v < end && k < nd + LOCAL_MAX; v = e + 1) {
		if ((e = strchr(v, ':')) == NULL)
			e = end;
		*e = '\0';
		if (v[0] == '/' && e - v < RF_FWD_PATH_MAX)
			p->local[k++] = v;
	}
}

/*
 * The child stopped (SIGTSTP from the stub, SIGTTIN, its own raise of
 * SIGSTOP...): the stub stops too, by the same signal, so the parent's
 * waitpid(WUNTRACED) sees it; the parent's SIGCONT to the stub then comes
 * back here as a SIGNAL.  A continue needs no word: only the stub's own
 * can be seen at home.
 */
static int
child_stopped(struct px *p)
{
	struct signalfd_siginfo ssi;
	siginfo_t si;

	while (read(p->sigfd, &ssi, sizeof(ssi)) == sizeof(ssi))
		;
	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, p->child, &si, WSTOPPED | WNOHANG) == -1 || si.si_pid == 0)
			return 0;
		p->f = p->fams[0];
		if (si.si_code == CLD_STOPPED &&
		    oneway(p, RF_FWD_STOP, 0, si.si_status, 0, 0, NULL, 0) == -1)
			return -1;
	}
}

/* A message from the stub between calls: SIGNAL, or the end. */
static int
idle_msg(struct px *p)
{
	struct rf_fwd_msg m;

	errno = 0;
	if (rf_fwd_recv_hdr(&p->c, &m) != 1)
		return lost(p, "idle");
	if (m.op == RF_FWD_WRITE && (m.flags & RF_FWDF_POST) && m.dlen == 0) {
		on_ack(p, &m);
		return 0;
	}
	if (m.op != RF_FWD_SIGNAL || m.dlen != 0) {
		errno = EPROTO;
		p->lost = 1;
		return rf_errf(p->e, RF_EX_PROTOCOL, "proxy: unexpected %s from the stub",
		    rf_fwd_op_name(m.op));
	}
	return on_signal_msg(p, &m);
}

int
rf_proxy_serve(const struct rf_fwd_io *io, const struct rf_proxy_opts *o, int *status,
    struct rf_err *e)
{
	struct seccomp_notif_sizes sz;
	struct pollfd pf[5 + FAM_MAX];
	sigset_t chld, oldmask;
	struct px px, *p = &px;
	struct rf_fwd_msg m;
	int ret = -1, st = 0, r, pp[2], timeout, held;
	size_t i, npf;

	memset(p, 0, sizeof(*p));
	p->o = o;
	p->e = e;
	p->lfd = o->lfd;
	p->connfd = o->connfd;
	p->child = o->child;
	p->self = getpid();
	p->pidfd = p->ph = p->fdsock = p->sigfd = -1;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &oldmask);
	if ((p->sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) == -1) {
		rf_errno(e, "proxy: signalfd");
		goto out;
	}
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) == -1) {
		rf_errno(e, "proxy: seccomp notification sizes");
		goto out;
	}
	p->nsize = sz.seccomp_notif > sizeof(*p->n) ? sz.seccomp_notif : sizeof(*p->n);
	p->rsize = sz.seccomp_notif_resp > sizeof(*p->r) ? sz.seccomp_notif_resp : sizeof(*p->r);
	p->n = malloc(p->nsize);
	p->r = malloc(p->rsize);
	p->buf = malloc(RF_FWD_IO_MAX + RF_FWD_PATH_MAX * 2 + 64);
	if (p->n == NULL || p->r == NULL || p->buf == NULL) {
		rf_errno(e, "proxy");
		goto out;
	}
	if ((p->pidfd = syscall(SYS_pidfd_open, p->child, 0)) == -1) {
		rf_errno(e, "proxy: pidfd_open %d", (int)p->child);
		goto out;
	}
	p->hostpid = host_pid(p->pidfd);
	local_setting(p);
	if (o->ph > 0)
		p->ph = o->ph;
	else if (pipe2(pp, O_CLOEXEC) == -1) {
		rf_errno(e, "proxy: pipe");
		goto out;
	} else {
		close(pp[0]);
		p->ph = pp[1];
	}
	if (fam_new(p, NULL) == NULL) {
		rf_errno(e, "proxy");
		goto out;
	}
	p->f = p->fams[0];
	p->fams[0]->pid = p->child;
	p->fams[0]->pidfd = p->pidfd;
	/* The child and the proxy hand the CPU to each other: wake on this one
	   (Linux 6.6; older kernels just schedule as usual). */
	ioctl(p->lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
	/* all that is done before the stub comes: from its HELLO, only the
	   placeholders stand between it and the child's first call */
	if (o->wait_conn != NULL && (p->connfd = o->wait_conn(o->conn_arg, e)) == -1)
		goto lost;
	if (rf_fwd_conn_init(&p->c, io) == -1) {
		rf_errno(e, "proxy");
		goto out;
	}
	if (io->readahead != NULL)
		io->readahead(io->ctx);	/* an encrypted channel: one read a frame */
	if (get_hello(p) == -1)
		goto lost;

	for (;;) {
		if (rf_fwd_pending(&p->c) >= RF_FWD_HDR) {
			if (idle_msg(p) == -1)
				goto lost;
			continue;
		}
		if (p->nq > 0) {
			/* held during a call: oldest first */
			memcpy(p->n, p->q, p->nsize);
			memmove(p->q, p->q + p->nsize, --p->nq * p->nsize);
			if (handle(p, p->n) == -1)
				goto lost;
			continue;
		}
		pf[0].fd = p->lfd;
		pf[0].events = POLLIN;
		pf[1].fd = p->connfd;
		pf[1].events = POLLIN;
		pf[2].fd = p->pidfd;
		pf[2].events = POLLIN;
		pf[3].fd = p->fdsock;	/* -1: ignored */
		pf[3].events = POLLIN;
		pf[4].fd = p->sigfd;
		pf[4].events = POLLIN;
		npf = 5;
		timeout = -1;
		for (i = 0; i < p->nfam; i++) {
			if (p->fams[i]->exec_pending)
				timeout = 20;
			if (i > 0) {
				pf[npf].fd = p->fams[i]->pidfd;
				pf[npf++].events = POLLIN;
			}
		}
		/* Posted writes held: the child's next call may join them in one
		   frame (a read after a write, the next of a stream of writes). */
		held = rf_fwd_held(&p->c) > 0;
		if (held && !(held = rf_fwd_spin_us(pf, 1, HOLD_US)) &&
		    rf_fwd_flush(&p->c) == -1) {
			lost(p, "write");
			goto lost;
		}
		/* the child's next call (a stream of writes) or a message; the
		   rest (the child's end, its stops) can wait for the poll; the
		   call that came while writes were held goes at once */
		for (i = held ? 1 : 2; i < npf; i++)
			pf[i].revents = 0;
		r = held || rf_fwd_spin(pf, 2) ? 1 : poll(pf, npf, timeout);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			rf_errno(e, "proxy: poll");
			goto lost;
		}
		if (r == 0) {
			for (i = 0; i < p->nfam; i++) {
				p->f = p->fams[i];
				if (p->f->exec_pending && exec_check(p, 0) == -1)
					goto lost;
			}
			continue;
		}
		if (pf[1].revents) {
			if (idle_msg(p) == -1)
				goto lost;
			continue;
		}
		if (pf[0].revents & POLLIN) {
			memset(p->n, 0, p->nsize);
			if (ioctl(p->lfd, SECCOMP_IOCTL_NOTIF_RECV, p->n) == -1) {
				if (errno == EINTR || errno == ENOENT)
					continue;
				rf_errno(e, "proxy: seccomp receive");
				goto lost;
			}
			if (handle(p, p->n) == -1)
				goto lost;
			continue;
		}
		if (pf[2].revents || (pf[0].revents & (POLLHUP | POLLERR)))
			break;
		if (pf[3].revents) {
			serve_local_fds(p);
			continue;
		}
		if (pf[4].revents) {
			if (child_stopped(p) == -1)
				goto lost;
			continue;
		}
		/* A local descendant is gone (one per round: fam_end reorders). */
		for (i = 5; i < npf; i++)
			if (pf[i].revents) {
				if (fam_end(p, i - 4) == -1)
					goto lost;
				break;
			}
	}
	/* The child is gone: its status is the stub's to show. */
	if (waitpid(p->child, &st, 0) == -1) {
		rf_errno(e, "proxy: waitpid %d", (int)p->child);
		goto lost;
	}
	memset(&m, 0, sizeof(m));
	m.op = RF_FWD_EXIT;
	m.flags = p->post_used ? RF_FWDF_POST : 0;
	m.a[0] = st;
	if (rf_fwd_send(&p->c, &m, NULL) == -1) {
		lost(p, "exit");
		goto out;
	}
	/*
	 * After posted writes, acks may be on their way: closing with unread
	 * bytes would reset the connection, and the stub would lose the
	 * writes still queued before EXIT.  It echoes EXIT when done.
	 */
	while (p->post_used && rf_fwd_recv_hdr(&p->c, &m) == 1 && m.op != RF_FWD_EXIT)
		if (m.dlen > 0 && rf_fwd_recv_data(&p->c, p->buf, m.dlen) == -1)
			break;
	*status = st;
	ret = 0;
	goto out;
lost:
	if (e != NULL && e->msg[0] == '\0')
		rf_errf(e, RF_EX_UNAVAILABLE, "proxy: connection to the stub lost");
	kill(p->child, SIGKILL);
	waitpid(p->child, &st, 0);
	*status = st;
out:
	rf_fwd_conn_free(&p->c);
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (p->ph >= 0)
		close(p->ph);
	if (p->sigfd >= 0)
		close(p->sigfd);
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	free(p->standin);
	free(p->n);
	free(p->r);
	free(p->buf);
	for (i = 0; i < p->nfam; i++) {
		if (i > 0 && p->fams[i]->pidfd >= 0)
			close(p->fams[i]->pidfd);
		free(p->fams[i]->fds);
		free(p->fams[i]);
	}
	free(p->hello);
	free(p->local);
	free(p->localbuf);
	for (i = 0; i < p->nep; i++) {
		close(p->ep[i]->dup);
		free(p->ep[i]);
	}
	free(p->q);
	lfds_drop(p);
	return ret;
}
