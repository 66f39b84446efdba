/*
 * fwdstub.c - the home side of forwarded calls: performs each request of the
 * proxy on the real fds and answers (docs/FORK.md "The stub").
 *
 * The child's fd numbers are its own business: the stub keeps a map from
 * the child's number to one of its own fds, with a count of numbers per
 * open fd, so that dup'ed numbers share one open file description here as
 * they would in the child, and closing the last one closes it at home.
 * Processes the child starts on its host without CLONE_FILES have their own
 * maps (families), copied at the clone, and their own working directories:
 * the stub's own cwd never changes, relative paths go through the family's.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "rf_fwd.h"

#define MAPMAX (1 << 24)	/* highest fd number the child may bind */
#define IBUFSZ (RF_FWD_IO_MAX + 2 * RF_FWD_PATH_MAX + 8)
#define NEWSTUB_MAX 16		/* grandchildren being born at once */
#define GOMAX 512		/* STUBGO's "HOST\0TOKEN\0" */

/* One fd table of the remote side: the child's (0), or a local descendant's. */
/* Effective ids and groups to act with. */
struct creds {
	uint32_t uid, gid, ruid, rgid, umask;
	int ng;
	uint32_t g[RF_FWD_GROUPS_MAX];
};

struct famtab {
	int *map;		/* number -> own fd, -1 */
	size_t nmap;
	int cwd;		/* its working directory (O_PATH), for relative paths */
	int used;
	int cred;		/* c holds its ids (CREDS); else the stub's own */
	struct creds c;
};

struct stub {
	struct rf_fwd_conn c;
	int connfd;
	struct famtab *fam;
	size_t nfam;
	struct famtab *cur;	/* the family of the request in hand */
	int *refs;		/* own fd -> numbers (of all families) bound to it */
	size_t nrefs;
	char *ibuf, *obuf;
	sigset_t none, all;
	pid_t self;
	const struct rf_stub_opts *o;
	struct newstub { pid_t pid; int go; } news[NEWSTUB_MAX];
	/* new stubs whose grandchild has a stand-in at the child's: theirs
	   are not the child's waits, their news go to the proxy (stand_news) */
	pid_t *stand;
	size_t nstand, capstand;
	/* write-behind: allowed at all; own fds reported postable; bytes of
	   posted writes done and not yet acknowledged */
	int post, revoke;
	int *postfds;
	size_t npost, cappost;
	int64_t acked;
	sigset_t nourg;
	sigset_t nottou;	/* SIGTTOU blocked: a terminal change for a child
				   that blocks or ignores it (RF_FWDF_TTOU) */
	/* the ids the stub started with, and those it acts with now (now_ok
	   0: not known, set them again) */
	struct creds own, now;
	int now_ok;
};

static volatile uint64_t sigpend;
static volatile sig_atomic_t cancelled;
static pid_t sig_self;
static volatile pid_t own_child;	/* rf_stub_own_child */
/*
 * Real-time signals queue (each one counts), and sigqueue's carry a value
 * and their sender: those wait here, in order, to go one by one; a full
 * queue falls back to sigpend (one of each, as standard signals are).
 */
#define SIGQ 64
static struct sigq {
	int sig, code, ready;
	pid_t pid;
	uid_t uid;
	int64_t value;
} sigq[SIGQ];
static unsigned sigq_head, sigq_tail;

static int
sigq_put(int sig, const siginfo_t *si)
{
	unsigned h;
	struct sigq *q;

	do {
		h = __atomic_load_n(&sigq_head, __ATOMIC_ACQUIRE);
		if (h - __atomic_load_n(&sigq_tail, __ATOMIC_ACQUIRE) >= SIGQ)
			return -1;
	} while (!__atomic_compare_exchange_n(&sigq_head, &h, h + 1, 0, __ATOMIC_ACQ_REL,
	    __ATOMIC_ACQUIRE));
	q = &sigq[h % SIGQ];
	q->sig = sig;
	q->code = si->si_code;
	q->pid = si->si_pid;
	q->uid = si->si_uid;
	q->value = (int64_t)(intptr_t)si->si_value.sival_ptr;
	__atomic_store_n(&q->ready, 1, __ATOMIC_RELEASE);
	return 0;
}

static void
on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	/* A fault of the stub's own: die of it rather than loop. */
	if (si->si_code > 0 && (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL ||
	    sig == SIGFPE || sig == SIGTRAP || sig == SIGSYS)) {
		signal(sig, SIG_DFL);
		return;
	}
	/* The proxy's urgent byte: cut the call short, pass nothing on. */
	if (sig == SIGURG && si->si_code == SI_KERNEL) {
		cancelled = 1;
		return;
	}
	/* SIGPIPE and SIGXFSZ raised by the stub's own write: the proxy
	   raises them in the child from the errno instead. */
	if ((sig == SIGPIPE || sig == SIGXFSZ) && si->si_pid == sig_self &&
	    (si->si_code == SI_USER || si->si_code == SI_KERNEL))
		return;
	/* The end of the stub's own helper (the page source) is not news of
	   a child of the child's */
	if (sig == SIGCHLD && own_child > 0 && si->si_pid == own_child)
		return;
	if ((sig > 31 || si->si_code == SI_QUEUE) && sigq_put(sig, si) == 0)
		return;
	__atomic_fetch_or(&sigpend, 1ULL << (sig - 1), __ATOMIC_RELAXED);
}

void
rf_stub_own_child(pid_t pid)
{
	own_child = pid;
}

static int
catch_all(void)
{
	struct sigaction sa;
	int sig;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;	/* no SA_RESTART: a signal interrupts the call */
	sigfillset(&sa.sa_mask);
	for (sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (sigaction(sig, &sa, NULL) == -1 && errno != EINVAL)
			return -1;
	}
	return 0;
}

/*
 * The child stopped, by sig (STOP): stop here too, by the same signal, so
 * that the parent's waitpid(WUNTRACED) and SIGCHLD see what it would of a
 * local child.  The parent's SIGCONT ends it, and is passed on to the child
 * as any signal.  SIGTSTP and the like are discarded in an orphaned process
 * group (the kernel would not have stopped a local child either): then the
 * child is continued.
 */
static void
stop_as(int sig)
{
	struct sigaction dfl, old;
	sigset_t one, pend;

	if (sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)
		return;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	if (sig != SIGSTOP)
		sigaction(sig, &dfl, &old);
	sigemptyset(&one);
	sigaddset(&one, sig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	raise(sig);	/* here until continued */
	sigprocmask(SIG_BLOCK, &one, NULL);
	if (sig != SIGSTOP)
		sigaction(sig, &old, NULL);
	/* continued, a SIGCONT waits (blocked until ppoll); else not stopped */
	if (sigpending(&pend) == 0 && !sigismember(&pend, SIGCONT))
		__atomic_fetch_or(&sigpend, 1ULL << (SIGCONT - 1), __ATOMIC_RELAXED);
}

/* Read the urgent byte, if one came, so that the next one raises SIGURG. */
static void
take_urgent(struct stub *s)
{
	char b;

	if (!cancelled)
		return;
	cancelled = 0;
	if (s->connfd >= 0)
		while (recv(s->connfd, &b, 1, MSG_OOB | MSG_DONTWAIT) == 1)
			;
}

/* --- write-behind --- */

/* A pipe, FIFO or stream socket, blocking: a write to it may be posted. */
static int
postable(int fd)
{
	struct stat st;
	struct timeval tv;
	socklen_t len = sizeof(int), tlen = sizeof(tv);
	int fl, type;

	if (fstat(fd, &st) == -1 || (fl = fcntl(fd, F_GETFL)) == -1 || (fl & O_NONBLOCK))
		return 0;
	if (S_ISFIFO(st.st_mode))
		return 1;
	return S_ISSOCK(st.st_mode) && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	    type == SOCK_STREAM && getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &tlen) == 0 &&
	    tv.tv_sec == 0 && tv.tv_usec == 0;
}

static void
post_add(struct stub *s, int fd)
{
	size_t i;
	int *v;

	for (i = 0; i < s->npost; i++)
		if (s->postfds[i] == fd)
			return;
	if (s->npost == s->cappost) {
		if ((v = reallocarray(s->postfds, s->cappost + 16, sizeof(int))) == NULL)
			return;
		s->postfds = v;
		s->cappost += 16;
	}
	s->postfds[s->npost++] = fd;
}

/*
 * Before anything that could let the child act on news from home (a reply,
 * a signal): if another process made a postable fd non-blocking, the proxy
 * must stop posting, so that EAGAIN stays exact from then on.
 */
static int
revoke_check(struct stub *s)
{
	size_t i;
	int fl, fd;

	if (s->revoke) {
		s->revoke = 0;
		s->npost = 0;
		return RF_FWDF_REVOKE;
	}
	for (i = 0; i < s->npost; i++) {
		fd = s->postfds[i];
		if ((size_t)fd >= s->nrefs || s->refs[fd] <= 0) {
			s->postfds[i--] = s->postfds[--s->npost];	/* closed here */
			continue;
		}
		if ((fl = fcntl(fd, F_GETFL)) == -1 || (fl & O_NONBLOCK)) {
			s->npost = 0;
			return RF_FWDF_REVOKE;
		}
	}
	return 0;
}

static int
reply(struct stub *s, const struct rf_fwd_msg *rq, int64_t ret, int64_t aux,
    const void *data, size_t len, int flags)
{
	struct rf_fwd_msg m;

	/* A reply acknowledges every posted write before it. */
	s->acked = 0;
	memset(&m, 0, sizeof(m));
	m.op = rq->op;
	m.flags = flags | revoke_check(s);
	m.fam = rq->fam;
	m.dlen = len;
	m.a[0] = ret;
	m.a[1] = aux;
	return rf_fwd_send(&s->c, &m, data);
}

static int
stand_has(const struct stub *s, pid_t pid)
{
	size_t i;

	for (i = 0; i < s->nstand; i++)
		if (s->stand[i] == pid)
			return 1;
	return 0;
}

/*
 * The news of new stubs with stand-ins, each taken (an end reaped here: the
 * child's wait is its stand-in's) and sent as SIGNAL SIGCHLD with a[1] the
 * CLD_ code, a[2] the wait status, a[3] the pid; the proxy has the stand-in
 * do the same.  Returns 1 if another child has news too, else 0; -1 if the
 * connection failed.
 */
static int
stand_news(struct stub *s)
{
	struct rf_fwd_msg m;
	siginfo_t si;
	size_t i;
	int status, r;

	for (i = 0; i < s->nstand;) {
		memset(&si, 0, sizeof(si));
		r = waitid(P_PID, s->stand[i], &si, WEXITED | WSTOPPED | WCONTINUED | WNOHANG);
		if (r == -1 && errno == ECHILD) {
			s->stand[i] = s->stand[--s->nstand];	/* not ours any more */
			continue;
		}
		if (r == -1 || si.si_pid == 0) {
			i++;
			continue;
		}
		switch (si.si_code) {
		case CLD_EXITED:
			status = (si.si_status & 0xff) << 8;
			break;
		case CLD_KILLED:
			status = si.si_status & 0x7f;
			break;
		case CLD_DUMPED:
			status = (si.si_status & 0x7f) | 0x80;
			break;
		case CLD_STOPPED:
		case CLD_TRAPPED:
			status = (si.si_status & 0xff) << 8 | 0x7f;
			break;
		default:
			status = 0xffff;
		}
		memset(&m, 0, sizeof(m));
		m.op = RF_FWD_SIGNAL;
		m.flags = revoke_check(s);
		m.a[0] = SIGCHLD;
		m.a[1] = si.si_code;
		m.a[2] = status;
		m.a[3] = si.si_pid;
		if (si.si_code == CLD_EXITED || si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED)
			s->stand[i] = s->stand[--s->nstand];
		if (rf_fwd_send(&s->c, &m, NULL) == -1)
			return -1;
	}
	memset(&si, 0, sizeof(si));
	return waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid != 0 && !stand_has(s, si.si_pid) && si.si_pid != own_child;
}

static int
send_signals(struct stub *s)
{
	struct rf_fwd_msg m;
	uint64_t p;
	int sig, r;

	p = __atomic_exchange_n(&sigpend, 0, __ATOMIC_RELAXED);
	if ((p & (1ULL << (SIGCHLD - 1))) && s->nstand > 0) {
		if ((r = stand_news(s)) == -1)
			return -1;
		if (r == 0)
			p &= ~(1ULL << (SIGCHLD - 1));
	}
	for (sig = 1; p != 0 && sig <= 64; sig++) {
		if (!(p & (1ULL << (sig - 1))))
			continue;
		p &= ~(1ULL << (sig - 1));
		memset(&m, 0, sizeof(m));
		m.op = RF_FWD_SIGNAL;
		m.flags = revoke_check(s);
		m.a[0] = sig;
		if (rf_fwd_send(&s->c, &m, NULL) == -1)
			return -1;
	}
	/* the queued ones, in order: a[1] si_code, a[2] the value, a[3] pid | uid << 32 */
	while (sigq_tail != __atomic_load_n(&sigq_head, __ATOMIC_ACQUIRE)) {
		struct sigq *q = &sigq[sigq_tail % SIGQ];

		if (!__atomic_load_n(&q->ready, __ATOMIC_ACQUIRE))
			break;
		memset(&m, 0, sizeof(m));
		m.op = RF_FWD_SIGNAL;
		m.flags = revoke_check(s);
		m.a[0] = q->sig;
		m.a[1] = q->code;
		m.a[2] = q->value;
		m.a[3] = (int64_t)((uint64_t)(uint32_t)q->pid | (uint64_t)q->uid << 32);
		__atomic_store_n(&q->ready, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&sigq_tail, sigq_tail + 1, __ATOMIC_RELEASE);
		if (rf_fwd_send(&s->c, &m, NULL) == -1)
			return -1;
	}
	return 0;
}

static int
ack(struct stub *s, int fam, int64_t ret, int64_t num, int64_t bytes)
{
	struct rf_fwd_msg m;

	memset(&m, 0, sizeof(m));
	m.op = RF_FWD_WRITE;
	m.flags = RF_FWDF_POST | revoke_check(s);
	m.fam = fam;
	m.a[0] = ret;
	m.a[1] = num;
	m.a[2] = bytes;
	return rf_fwd_send(&s->c, &m, NULL);
}

/* The successes so far in one ack, when the stub is about to wait. */
static int
flush_acks(struct stub *s)
{
	int64_t n = s->acked;

	if (n == 0)
		return 0;
	s->acked = 0;
	return ack(s, 0, 0, -1, n);
}

/*
 * A posted write: the child was told it is done, so it is done whole, or
 * its error is reported for the child's next call on the number.  Signals
 * interrupt it only to be passed on; the proxy's urgent byte (SIGURG) stays
 * pending for the next call that blocks, which is the one it was meant for.
 */
static int
posted_write(struct stub *s, const struct rf_fwd_msg *m, int fd)
{
	struct pollfd pf;
	size_t done = 0;
	ssize_t r;
	int err = fd < 0 ? EBADF : 0;

	sigprocmask(SIG_SETMASK, &s->nourg, NULL);
	while (err == 0 && done < m->dlen) {
		if (m->a[3] != 0)
			r = send(fd, s->ibuf + done, m->dlen - done, (int)m->a[3]);
		else
			r = write(fd, s->ibuf + done, m->dlen - done);
		if (r > 0) {
			done += r;
			continue;
		}
		if (r == -1 && errno == EINTR) {
			sigprocmask(SIG_BLOCK, &s->all, NULL);
			if (send_signals(s) == -1)
				return -1;
			sigprocmask(SIG_SETMASK, &s->nourg, NULL);
		} else if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* made non-blocking here since: wait (revoke_check tells) */
			pf.fd = fd;
			pf.events = POLLOUT;
			poll(&pf, 1, -1);
		} else {
			err = r == 0 ? EIO : errno;
		}
	}
	sigprocmask(SIG_BLOCK, &s->all, NULL);
	if (err == 0) {
		s->acked += RF_FWD_POST_COST(m->dlen);
		return 0;
	}
	if (flush_acks(s) == -1)
		return -1;
	return ack(s, m->fam, -err, m->a[0], RF_FWD_POST_COST(m->dlen));
}

static int
grow(int **a, size_t *n, size_t want)
{
	size_t k = *n ? *n : 64, i;
	int *p;

	if (want < *n)
		return 0;
	while (k <= want)
		k *= 2;
	if ((p = realloc(*a, k * sizeof(int))) == NULL)
		return -1;
	for (i = *n; i < k; i++)
		p[i] = -1;
	*a = p;
	*n = k;
	return 0;
}

/* The own fd for the child's number, or -1. */
static int
xlate(struct stub *s, int64_t n)
{
	if (n < 0 || (size_t)n >= s->cur->nmap)
		return -1;
	return s->cur->map[n];
}

static int
dirfd_of(struct stub *s, int64_t n)
{
	if (n == AT_FDCWD)
		return s->cur->cwd;
	return xlate(s, n);
}

static void
unref(struct stub *s, int fd)
{
	if (fd < 0 || (size_t)fd >= s->nrefs)
		return;
	if (s->refs[fd] > 0)
		s->refs[fd]--;
	if (s->refs[fd] <= 0) {
		s->refs[fd] = -1;
		close(fd);
	}
}

/* Returns 0, or -errno. */
static int
unbind_num(struct stub *s, int64_t n, int *closeret)
{
	int fd = xlate(s, n);

	if (fd < 0)
		return -EBADF;
	s->cur->map[n] = -1;
	if (s->refs[fd] > 1) {
		s->refs[fd]--;
		return 0;
	}
	s->refs[fd] = -1;
	if (close(fd) == -1 && closeret != NULL)
		*closeret = -errno;
	return 0;
}

static int
bind_num(struct stub *s, int64_t n, int fd)
{
	if (n < 0 || n >= MAPMAX || fd < 0)
		return -EBADF;
	if (grow(&s->cur->map, &s->cur->nmap, n) == -1 || grow(&s->refs, &s->nrefs, fd) == -1)
		return -ENOMEM;
	/* Reference first: n may already name fd. */
	s->refs[fd] = s->refs[fd] < 0 ? 1 : s->refs[fd] + 1;
	if (s->cur->map[n] >= 0)
		unbind_num(s, n, NULL);
	s->cur->map[n] = fd;
	return 0;
}

static struct famtab *
fam_get(struct stub *s, unsigned id, int create)
{
	struct famtab *v;

	if (id >= s->nfam) {
		if (!create)
			return NULL;
		if ((v = reallocarray(s->fam, id + 16, sizeof(*v))) == NULL)
			return NULL;
		memset(v + s->nfam, 0, (id + 16 - s->nfam) * sizeof(*v));
		s->fam = v;
		s->nfam = id + 16;
	}
	if (!s->fam[id].used && !create)
		return NULL;
	return &s->fam[id];
}

static void
fam_end(struct stub *s, struct famtab *f)
{
	struct famtab *save = s->cur;
	size_t n;

	s->cur = f;
	for (n = 0; n < f->nmap; n++)
		if (f->map[n] >= 0)
			unbind_num(s, n, NULL);
	free(f->map);
	if (f->cwd >= 0)
		close(f->cwd);
	memset(f, 0, sizeof(*f));
	s->cur = save == f ? &s->fam[0] : save;
}

/* A copy of the current family's map: the same files, one more reference. */
static void
fam_fork(struct stub *s, int64_t id)
{
	struct famtab *f, *from;
	size_t n, cur = s->cur - s->fam;

	if (id <= 0 || id > 65535 || (f = fam_get(s, id, 1)) == NULL)
		return;
	from = s->cur = &s->fam[cur];	/* fam_get may have moved the array */
	if (f == from)
		return;
	if (f->used)
		fam_end(s, f);
	if ((f->map = calloc(from->nmap ? from->nmap : 1, sizeof(int))) == NULL)
		return;
	f->nmap = from->nmap;
	f->used = 1;
	f->cred = from->cred;
	f->c = from->c;
	f->cwd = fcntl(from->cwd, F_DUPFD_CLOEXEC, 0);
	for (n = 0; n < from->nmap; n++) {
		f->map[n] = from->map[n];
		if (f->map[n] >= 0)
			s->refs[f->map[n]]++;
	}
}

struct rf_stub_pre {
	int32_t *v;		/* HELLO's (fd, flags) pairs, little-endian */
	size_t n;
	int cwd;
};

/* Write-behind, unless RFORK_WRITE_BEHIND=0. */
static int
post_on(void)
{
	const char *v = getenv("RFORK_WRITE_BEHIND");

	return v == NULL || strcmp(v, "0") != 0;
}

/* The fd table as HELLO tells it: every fd open now but skip. */
static int
scan_fds(const struct rf_stub_opts *o, int skip, int post, struct rf_stub_pre *h)
{
	struct dirent *d;
	DIR *dir;
	int32_t *v = NULL, fd, flags;
	size_t n = 0, cap = 0, i;
	const char *err;

	if ((dir = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL) {
		fd = strtonum(d->d_name, 0, INT_MAX, &err);
		if (err != NULL || fd == dirfd(dir) || fd == skip)
			continue;
		if (n >= RF_FWD_NFD_MAX)
			break;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((v = reallocarray(v, cap, 2 * sizeof(int32_t))) == NULL) {
				closedir(dir);
				return -1;
			}
		}
		flags = 0;
		for (i = 0; i < o->ncloexec; i++)
			if (o->cloexec[i] == fd)
				flags = FD_CLOEXEC;
		if (post && postable(fd))
			flags |= RF_FWD_HELLO_POSTOK;
		v[2 * n] = htole32(fd);
		v[2 * n + 1] = htole32(flags);
		n++;
	}
	closedir(dir);
	h->v = v;
	h->n = n;
	return 0;
}

struct rf_stub_pre *
rf_stub_prepare(const struct rf_stub_opts *o, int skipfd)
{
	struct rf_stub_pre *h;
	sigset_t all;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if (scan_fds(o, skipfd, post_on(), h) == -1 ||
	    (h->cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		free(h->v);
		free(h);
		return NULL;
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	sig_self = getpid();
	if (catch_all() == -1) {
		rf_stub_pre_free(h);
		return NULL;
	}
	return h;
}

void
rf_stub_pre_free(struct rf_stub_pre *h)
{
	if (h == NULL)
		return;
	if (h->cwd >= 0)
		close(h->cwd);
	free(h->v);
	free(h);
}

static int
hello(struct stub *s, const struct rf_stub_opts *o)
{
	struct rf_stub_pre h = { .cwd = -1 };
	struct rf_fwd_msg m;
	int32_t *v;
	size_t n, i;
	int r;

	if (o->pre != NULL) {
		h = *o->pre;
		o->pre->v = NULL;
		o->pre->cwd = -1;
	} else if (scan_fds(o, o->connfd, s->post, &h) == -1)
		return -1;
	v = h.v;
	n = h.n;
	for (i = 0; i < n; i++)
		if (le32toh(v[2 * i + 1]) & RF_FWD_HELLO_POSTOK)
			post_add(s, (int32_t)le32toh(v[2 * i]));
	if ((s->cur = fam_get(s, 0, 1)) == NULL) {
		free(v);
		if (h.cwd >= 0)
			close(h.cwd);
		errno = ENOMEM;
		return -1;
	}
	s->cur->used = 1;
	if ((s->cur->cwd = h.cwd) == -1 &&
	    (s->cur->cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) == -1) {
		free(v);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (bind_num(s, (int32_t)le32toh(v[2 * i]), (int32_t)le32toh(v[2 * i])) != 0) {
			free(v);
			errno = ENOMEM;
			return -1;
		}
	memset(&m, 0, sizeof(m));
	m.op = RF_FWD_HELLO;
	m.flags = (s->post ? RF_FWDF_POST : 0) | RF_FWDF_EPOLL | RF_FWDF_CREDS;
	m.a[0] = RF_FWD_VERSION;
	m.a[1] = getpid();
	m.a[2] = getppid();
	m.a[3] = n;
	m.dlen = n * 2 * sizeof(int32_t);
	r = rf_fwd_send(&s->c, &m, v);
	free(v);
	return r;
}

/* The path in the request's data; *second the one after it (or NULL). */
static const char *
paths(struct stub *s, const struct rf_fwd_msg *m, const char **second)
{
	char *p = s->ibuf, *z;

	if (second != NULL)
		*second = NULL;
	if (m->dlen == 0 || (z = memchr(p, '\0', m->dlen)) == NULL)
		return NULL;
	if (second != NULL && z + 1 < p + m->dlen) {
		if (memchr(z + 1, '\0', p + m->dlen - (z + 1)) == NULL)
			return NULL;
		*second = z + 1;
	}
	return p;
}

static long
do_ioctl(struct stub *s, const struct rf_fwd_msg *m, int fd, size_t *outlen)
{
	const struct rf_fwd_ioctl *t = rf_fwd_ioctl_find((unsigned long)m->a[1]);
	long r;

	*outlen = 0;
	if (t == NULL)
		return -ENOTTY;
	if (t->in == 0 && t->out == 0)
		r = ioctl(fd, (unsigned long)m->a[1], (unsigned long)m->a[2]);
	else {
		if (m->dlen != t->in)
			return -EINVAL;
		memset(s->obuf, 0, t->in > t->out ? t->in : t->out);
		memcpy(s->obuf, s->ibuf, t->in);
		r = ioctl(fd, (unsigned long)m->a[1], s->obuf);
		if (r >= 0)
			*outlen = t->out;
	}
	return r == -1 ? -errno : r;
}

/* The family's cwd becomes path (relative to dirfd), or dirfd itself. */
static int
set_cwd(struct stub *s, int dirfd, const char *path)
{
	struct stat st;
	int fd;

	if (*path != '\0' && faccessat(dirfd, path, X_OK, 0) == -1)
		return -1;
	fd = *path != '\0' ? openat(dirfd, path, O_PATH | O_DIRECTORY | O_CLOEXEC) :
	    fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1 || !S_ISDIR(st.st_mode)) {
		close(fd);
		errno = ENOTDIR;
		return -1;
	}
	if (*path == '\0' && faccessat(fd, "", X_OK, AT_EMPTY_PATH) == -1) {
		close(fd);
		return -1;
	}
	close(s->cur->cwd);
	s->cur->cwd = fd;
	return 0;
}

static long
do_fdop(struct stub *s, const struct rf_fwd_msg *m, int fd)
{
	long r;

	switch (m->flags) {
	case RF_FDOP_FSYNC: r = fsync(fd); break;
	case RF_FDOP_FDATASYNC: r = fdatasync(fd); break;
	case RF_FDOP_FTRUNCATE: r = ftruncate(fd, m->a[1]); break;
	case RF_FDOP_FCHMOD: r = fchmod(fd, m->a[1]); break;
	case RF_FDOP_FCHOWN: r = fchown(fd, m->a[1], m->a[2]); break;
	case RF_FDOP_FLOCK: r = flock(fd, m->a[1]); break;
	case RF_FDOP_FALLOCATE: r = fallocate(fd, m->a[1], m->a[2], m->a[3]); break;
	case RF_FDOP_FADVISE: r = syscall(SYS_fadvise64, fd, m->a[1], m->a[2], m->a[3]); break;
	case RF_FDOP_FCHDIR: r = set_cwd(s, fd, ""); break;
	case RF_FDOP_SHUTDOWN: r = shutdown(fd, m->a[1]); break;
	default: errno = ENOSYS; r = -1; break;
	}
	(void)s;
	return r == -1 ? -errno : r;
}

/*
 * The extended attribute calls (RF_PATHOP_XATTR): path p ("": the fd dfd
 * itself), relative to dfd through /proc/self/fd (there are no *at forms),
 * then the name and the value in the request's data.  -1 with errno, or
 * what the call returned.
 */
static long
do_xattr(struct stub *s, const struct rf_fwd_msg *m, int dfd, const char *p, char *path,
    size_t pathsz, size_t *outlen)
{
	const char *name = p + strlen(p) + 1, *end = s->ibuf + m->dlen, *val;
	int op = (int)m->a[1] & ~RF_XATTR_NOFOLLOW, nf = (m->a[1] & RF_XATTR_NOFOLLOW) != 0;
	size_t cap = (size_t)m->a[2] > RF_XATTR_MAX ? RF_XATTR_MAX : (size_t)m->a[2];
	long r;

	if (op != RF_XATTR_LIST && (name >= end || memchr(name, '\0', end - name) == NULL)) {
		errno = EINVAL;
		return -1;
	}
	val = op == RF_XATTR_LIST ? name : name + strlen(name) + 1;
	if (*p != '\0' && p[0] != '/' && dfd >= 0) {
		if ((size_t)snprintf(path, pathsz, "/proc/self/fd/%d/%s", dfd, p) >= pathsz) {
			errno = ENAMETOOLONG;
			return -1;
		}
		p = path;
	}
	switch (op) {
	case RF_XATTR_GET:
		r = *p == '\0' ? fgetxattr(dfd, name, s->obuf, cap) :
		    nf ? lgetxattr(p, name, s->obuf, cap) : getxattr(p, name, s->obuf, cap);
		break;
	case RF_XATTR_LIST:
		r = *p == '\0' ? flistxattr(dfd, s->obuf, cap) :
		    nf ? llistxattr(p, s->obuf, cap) : listxattr(p, s->obuf, cap);
		break;
	case RF_XATTR_SET:
		r = *p == '\0' ? fsetxattr(dfd, name, val, end - val, (int)m->a[2]) :
		    nf ? lsetxattr(p, name, val, end - val, (int)m->a[2]) :
		    setxattr(p, name, val, end - val, (int)m->a[2]);
		break;
	case RF_XATTR_REMOVE:
		r = *p == '\0' ? fremovexattr(dfd, name) :
		    nf ? lremovexattr(p, name) : removexattr(p, name);
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	if (r > 0 && cap > 0 && op != RF_XATTR_SET)
		*outlen = r;
	return r;
}

static long
do_pathop(struct stub *s, const struct rf_fwd_msg *m, size_t *outlen)
{
	char path[RF_FWD_PATH_MAX + 64];
	const char *p, *q;
	int dfd = dirfd_of(s, m->a[0]), dfd2;
	long r;

	*outlen = 0;
	if (m->flags == RF_PATHOP_GETCWD) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", s->cur->cwd);
		if ((r = readlink(path, s->obuf, RF_FWD_PATH_MAX - 1)) == -1)
			return -errno;
		s->obuf[r] = '\0';
		if (s->obuf[0] != '/')
			return -ENOENT;		/* removed */
		*outlen = r + 1;
		return *outlen;
	}
	if ((p = paths(s, m, &q)) == NULL)
		return -EINVAL;
	if (dfd == -1 && m->a[0] != AT_FDCWD)
		return -EBADF;
	switch (m->flags) {
	case RF_PATHOP_ACCESS:
		r = syscall(SYS_faccessat2, dfd, p, (int)m->a[1], (int)m->a[2]);
		break;
	case RF_PATHOP_READLINK:
		r = readlinkat(dfd, p, s->obuf,
		    m->a[1] > 0 && m->a[1] < RF_FWD_PATH_MAX ? m->a[1] : RF_FWD_PATH_MAX);
		if (r >= 0)
			*outlen = r;
		break;
	case RF_PATHOP_UNLINK: r = unlinkat(dfd, p, m->a[1]); break;
	case RF_PATHOP_MKDIR: r = mkdirat(dfd, p, m->a[1]); break;
	case RF_PATHOP_CHMOD: r = fchmodat(dfd, p, m->a[1], 0); break;
	case RF_PATHOP_CHDIR: r = set_cwd(s, dfd, p); break;
	case RF_PATHOP_TRUNCATE:
		if (p[0] != '/' && dfd >= 0) {
			snprintf(path, sizeof(path), "/proc/self/fd/%d/", dfd);
			if (strlcat(path, p, sizeof(path)) >= sizeof(path)) {
				errno = ENAMETOOLONG;
				r = -1;
				break;
			}
			p = path;
		}
		r = truncate(p, m->a[1]);
		break;
	case RF_PATHOP_UTIMENS: {
		struct timespec ts[2];
		uint64_t le[4];
		size_t pl = strlen(p) + 1;

		if (m->a[2] != 0) {
			if (m->dlen != pl + sizeof(le))
				return -EINVAL;
			memcpy(le, p + pl, sizeof(le));
			ts[0].tv_sec = (int64_t)le64toh(le[0]);
			ts[0].tv_nsec = (long)(int64_t)le64toh(le[1]);
			ts[1].tv_sec = (int64_t)le64toh(le[2]);
			ts[1].tv_nsec = (long)(int64_t)le64toh(le[3]);
		}
		/* "": the fd itself (futimens), which a path of "" cannot name */
		r = syscall(SYS_utimensat, dfd, *p != '\0' ? p : NULL, m->a[2] != 0 ? ts : NULL,
		    *p != '\0' ? (int)m->a[1] : 0);
		break;
	}
	case RF_PATHOP_XATTR:
		r = do_xattr(s, m, dfd, p, path, sizeof(path), outlen);
		break;
	case RF_PATHOP_MKNOD:
		r = mknodat(dfd, p, (mode_t)m->a[1], (dev_t)m->a[2]);
		break;
	case RF_PATHOP_CHOWN:
		r = fchownat(dfd, p, (uid_t)m->a[1], (gid_t)m->a[2], (int)m->a[3]);
		break;
	case RF_PATHOP_STATFS: {
		struct statfs sf;
		int f = *p != '\0' ? openat(dfd, p, O_PATH | O_CLOEXEC) : dfd;

		r = f == -1 ? -1 : fstatfs(f, &sf);
		if (f != dfd && f != -1)
			close(f);
		if (r == 0) {
			memcpy(s->obuf, &sf, sizeof(sf));
			*outlen = sizeof(sf);
		}
		break;
	}
	case RF_PATHOP_RENAME:
	case RF_PATHOP_LINK:
	case RF_PATHOP_SYMLINK:
		if (q == NULL)
			return -EINVAL;
		dfd2 = dirfd_of(s, m->a[1]);
		if (dfd2 == -1 && m->a[1] != AT_FDCWD)
			return -EBADF;
		if (m->flags == RF_PATHOP_RENAME)
			r = syscall(SYS_renameat2, dfd, p, dfd2, q, (unsigned)m->a[2]);
		else if (m->flags == RF_PATHOP_LINK)
			r = linkat(dfd, p, dfd2, q, m->a[2]);
		else
			r = symlinkat(p, dfd2, q);
		break;
	default:
		errno = ENOSYS;
		r = -1;
	}
	return r == -1 ? -errno : r;
}

/* The child's SCM_RIGHTS: its home numbers are our fds. */
static long
sock_sendmsg(struct stub *s, const struct rf_fwd_msg *m, int fd)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int) * RF_SOCK_FDS_MAX)]; } cb;
	struct msghdr mh;
	struct cmsghdr *c;
	struct iovec io;
	int32_t num;
	int64_t n = m->a[2], i;
	int f;

	if (n < 1 || n > RF_SOCK_FDS_MAX || m->dlen < (uint32_t)n * 4)
		return -EINVAL;
	memset(&cb, 0, sizeof(cb));
	c = &cb.h;
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * n);
	for (i = 0; i < n; i++) {
		memcpy(&num, s->ibuf + 4 * i, 4);
		if ((f = xlate(s, num)) == -1)
			return -EBADF;
		memcpy(CMSG_DATA(c) + sizeof(int) * i, &f, sizeof(int));
	}
	io.iov_base = s->ibuf + 4 * n;
	io.iov_len = m->dlen - 4 * n;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &io;
	mh.msg_iovlen = 1;
	mh.msg_control = cb.b;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
	return sendmsg(fd, &mh, (int)m->a[1]) == -1 ? -errno : (long)(m->dlen - 4 * n);
}

/* fds that come with the bytes become handles, for the proxy to bind. */
static long
sock_recvmsg(struct stub *s, const struct rf_fwd_msg *m, int fd, size_t *outlen)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int) * RF_SOCK_FDS_MAX)]; } cb;
	int64_t most = m->a[3] < 1 ? 1 : m->a[3] > RF_SOCK_FDS_MAX ? RF_SOCK_FDS_MAX : m->a[3];
	size_t head = 8 + 4 * most, cnt;
	struct cmsghdr *c;
	struct msghdr mh;
	struct iovec io;
	int32_t hdr[2] = { 0, 0 }, h;
	ssize_t r;
	size_t k;
	int f;

	cnt = m->a[1] < 0 ? 0 : (size_t)m->a[1];
	if (cnt > RF_FWD_IO_MAX - head)
		cnt = RF_FWD_IO_MAX - head;
	io.iov_base = s->obuf + head;
	io.iov_len = cnt;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &io;
	mh.msg_iovlen = 1;
	mh.msg_control = cb.b;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * most);
	if ((r = recvmsg(fd, &mh, ((int)m->a[2] & ~MSG_CMSG_CLOEXEC) | MSG_CMSG_CLOEXEC)) == -1)
		return -errno;
	hdr[1] = mh.msg_flags;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (k = 0; CMSG_LEN(sizeof(int) * (k + 1)) <= c->cmsg_len; k++) {
			memcpy(&f, CMSG_DATA(c) + sizeof(int) * k, sizeof(int));
			if (hdr[0] == most || grow(&s->refs, &s->nrefs, f) == -1) {
				close(f);
				hdr[1] |= MSG_CTRUNC;
				continue;
			}
			s->refs[f] = 0;	/* a handle until BIND, as for OPEN */
			h = f;
			memcpy(s->obuf + 8 + 4 * hdr[0]++, &h, 4);
		}
	}
	memcpy(s->obuf, hdr, 8);
	memmove(s->obuf + 8 + 4 * hdr[0], s->obuf + head, r);
	*outlen = 8 + 4 * hdr[0] + r;
	return r;
}

static long
do_sock(struct stub *s, const struct rf_fwd_msg *m, int fd, size_t *outlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	long r;

	*outlen = 0;
	switch (m->flags) {
	case RF_SOCK_ACCEPT:
		r = accept4(fd, (struct sockaddr *)&ss, &len,
		    ((int)m->a[1] & SOCK_NONBLOCK) | SOCK_CLOEXEC);
		if (r >= 0) {
			if (grow(&s->refs, &s->nrefs, r) == -1) {
				close(r);
				return -ENOMEM;
			}
			s->refs[r] = 0;	/* a handle until BIND, as for OPEN */
		}
		break;
	case RF_SOCK_GETSOCKNAME:
		r = getsockname(fd, (struct sockaddr *)&ss, &len);
		break;
	case RF_SOCK_GETPEERNAME:
		r = getpeername(fd, (struct sockaddr *)&ss, &len);
		break;
	case RF_SOCK_GETSOCKOPT:
		len = m->a[3] > 0 && m->a[3] <= RF_FWD_OPT_MAX ? m->a[3] : RF_FWD_OPT_MAX;
		r = getsockopt(fd, m->a[1], m->a[2], s->obuf, &len);
		if (r == 0)
			*outlen = len;
		return r == -1 ? -errno : r;
	case RF_SOCK_SETSOCKOPT:
		if (m->dlen > RF_FWD_OPT_MAX)
			return -EINVAL;
		r = setsockopt(fd, m->a[1], m->a[2], s->ibuf, m->dlen);
		return r == -1 ? -errno : r;
	case RF_SOCK_SENDMSG:
		return sock_sendmsg(s, m, fd);
	case RF_SOCK_RECVMSG:
		return sock_recvmsg(s, m, fd, outlen);
	default:
		return -ENOSYS;
	}
	if (r == -1)
		return -errno;
	if (len > sizeof(ss))
		len = sizeof(ss);
	memcpy(s->obuf, &ss, len);
	*outlen = len;
	return r;
}

static long
do_proc(const struct rf_fwd_msg *m)
{
	long r;

	switch (m->flags) {
	case RF_PROC_GETPGID: r = getpgid(m->a[0]); break;
	case RF_PROC_SETPGID: r = setpgid(m->a[0], m->a[1]); break;
	case RF_PROC_GETSID: r = getsid(m->a[0]); break;
	case RF_PROC_SETSID: r = setsid(); break;
	case RF_PROC_GETPRIO: r = syscall(SYS_getpriority, PRIO_PROCESS, (id_t)m->a[0]); break;
	case RF_PROC_SETPRIO: r = setpriority(PRIO_PROCESS, (id_t)m->a[0], (int)m->a[1]); break;
	default: errno = ENOSYS; r = -1;
	}
	return r == -1 ? -errno : r;
}

static long
do_poll(struct stub *s, const struct rf_fwd_msg *m, size_t *outlen)
{
	struct pollfd *pf = (struct pollfd *)s->obuf;
	int32_t *own = (int32_t *)(s->obuf + RF_FWD_IO_MAX / 2);
	size_t n = m->a[0], i;
	int r;

	*outlen = 0;
	if (n > 4096 || m->dlen != n * sizeof(*pf))
		return -EINVAL;
	memcpy(pf, s->ibuf, m->dlen);
	for (i = 0; i < n; i++) {
		own[i] = pf[i].fd;
		pf[i].fd = pf[i].fd < 0 ? -1 : xlate(s, pf[i].fd);
		if (own[i] >= 0 && pf[i].fd < 0)
			pf[i].fd = INT_MAX;	/* poll says POLLNVAL, as for a bad fd */
	}
	r = poll(pf, n, m->a[1] < -1 || m->a[1] > INT_MAX ? -1 : (int)m->a[1]);
	for (i = 0; i < n; i++)
		pf[i].fd = own[i];
	if (r >= 0)
		*outlen = m->dlen;
	return r == -1 ? -errno : r;
}

/* An epoll set the child inherited: ours, shared with its parent. */
static int
do_epoll(struct stub *s, const struct rf_fwd_msg *m, int epfd, size_t *outlen)
{
	struct epoll_event ev;
	int fd, r;
	long n;

	*outlen = 0;
	switch (m->flags) {
	case RF_EPOLL_CTL:
		if ((fd = xlate(s, m->a[2])) == -1)
			return -EBADF;
		memset(&ev, 0, sizeof(ev));
		if (m->dlen != 0 && m->dlen != sizeof(ev))
			return -EINVAL;
		memcpy(&ev, s->ibuf, m->dlen);
		r = epoll_ctl(epfd, (int)m->a[1], fd, &ev);
		return r == -1 ? -errno : r;
	case RF_EPOLL_WAIT:
		n = m->a[2];
		if (n <= 0)
			return -EINVAL;
		if ((size_t)n > RF_FWD_IO_MAX / sizeof(ev))
			n = RF_FWD_IO_MAX / sizeof(ev);
		r = epoll_wait(epfd, (struct epoll_event *)(void *)s->obuf, (int)n,
		    m->a[1] < -1 || m->a[1] > INT_MAX ? -1 : (int)m->a[1]);
		if (r > 0)
			*outlen = r * sizeof(ev);
		return r == -1 ? -errno : r;
	default:
		return -EINVAL;
	}
}

/* --- a remote child's fork (docs/FORK.md "Grandchildren") --- */

/* The grandchild waits for a stub that cannot come: to its parent it is a
   child lost, as when a stub's connection ends (SIGKILL, not an exit code). */
static void __attribute__((noreturn))
lost_child(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	kill(getpid(), SIGKILL);
	_exit(RF_EX_OSERR);
}

/* In a new stub: close every fd but the family's numbers (those with a
   file) and, if sources, what src[] still holds. */
static void
keep_only(const struct famtab *f, const int *src, int sources)
{
	struct dirent *d;
	DIR *dir;
	size_t i;
	int fd;

	if ((dir = opendir("/proc/self/fd")) == NULL)
		lost_child();
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] < '0' || d->d_name[0] > '9' ||
		    (fd = atoi(d->d_name)) == dirfd(dir))
			continue;
		if ((size_t)fd < f->nmap && f->map[fd] >= 0 && (src[fd] < 0 || sources))
			continue;
		for (i = 0; sources && i < f->nmap && src[i] != fd; i++)
			;
		if (!sources || i == f->nmap)
			close(fd);
	}
	closedir(dir);
}

/* What number i holds, which other moves need, goes to the lowest free
   number that no move fills; src[] follows it.  Returns it, or -1. */
static int
move_out(const struct famtab *f, int *src, int i)
{
	int tmp[64], nt = 0, fd, k;
	size_t j;

	for (;;) {
		if ((fd = fcntl(i, F_DUPFD_CLOEXEC, 0)) == -1)
			break;
		if ((size_t)fd >= f->nmap || src[fd] < 0 || nt == 64)
			break;
		tmp[nt++] = fd;	/* a number a move fills: held, not used */
	}
	for (k = 0; k < nt; k++)
		close(tmp[k]);
	if (fd == -1)
		return -1;
	for (j = 0; j < f->nmap; j++)
		if (src[j] == i)
			src[j] = fd;
	return fd;
}

/*
 * In the new stub: wait for STUBGO's word, put the family's files at the
 * child's numbers (nothing else open), take its cwd, and become a stub of
 * the grandchild.  Never returns.
 */
static void __attribute__((noreturn))
newstub_run(struct stub *s, struct famtab *f, int go, const int *cloexec, size_t ncloexec)
{
	char msg[GOMAX + 1], *token;
	size_t n = 0, i;
	ssize_t r;
	size_t j;
	int fd, *src;

	while (n < GOMAX && (r = read(go, msg + n, GOMAX - n)) != 0) {
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			_exit(0);
		n += r;
	}
	msg[n] = '\0';
	token = memchr(msg, '\0', n);
	if (n == 0 || token == NULL || token + 1 >= msg + n)
		_exit(0);	/* aborted: the parent reaps us, no one else sees it */
	token++;
	/*
	 * The family's files go to the child's numbers (src[i] holds what
	 * goes to i), the rest closes.  A file already at its number (as a
	 * rule: S has P's table) stays.  Nothing may go above the fd limit, P
	 * may have lowered it below numbers it still has open (a shell
	 * script's fd 255): a number is filled once no other move still
	 * needs what is there, and what is in the way moves to the lowest
	 * free number no move fills.
	 */
	if ((src = calloc(f->nmap ? f->nmap : 1, sizeof(int))) == NULL)
		lost_child();
	for (i = 0; i < f->nmap; i++)
		src[i] = f->map[i] >= 0 && f->map[i] != (int)i ? f->map[i] : -1;
	if (f->cwd >= 0 && fchdir(f->cwd) == -1)
		lost_child();
	keep_only(f, src, 1);
	for (;;) {
		int moved = 0, left = 0, in_way = -1;

		for (i = 0; i < f->nmap; i++) {
			if (src[i] < 0)
				continue;
			for (j = 0; j < f->nmap && (j == i || src[j] != (int)i); j++)
				;
			if (j < f->nmap) {
				in_way = i;	/* i holds what j needs */
				left++;
				continue;
			}
			if (dup2(src[i], i) == -1)
				lost_child();
			src[i] = -1;
			moved = 1;
		}
		if (left == 0)
			break;
		if (!moved && (fd = move_out(f, src, in_way)) == -1)
			lost_child();
	}
	for (i = 0; i < f->nmap; i++)
		if (f->map[i] >= 0)
			fcntl(i, F_SETFD, 0);
	keep_only(f, src, 0);
	s->o->respawn(s->o->arg, msg, token, cloexec, ncloexec);
	lost_child();
}

/* FORKSTUB: a new stub, our child (so its pid is the grandchild's, and
   its parent the child's), waiting for STUBGO.  Returns its pid or -errno. */
static long
newstub(struct stub *s, const struct rf_fwd_msg *m)
{
	int go[2], *cloexec, slot = -1, e;
	size_t i, n = m->dlen / 4;
	pid_t pid;

	if (s->o->respawn == NULL)
		return -ENOSYS;
	for (i = 0; i < NEWSTUB_MAX; i++)
		if (s->news[i].pid == 0) {
			slot = i;
			break;
		}
	if (slot < 0)
		return -EAGAIN;
	if ((cloexec = calloc(n ? n : 1, sizeof(int))) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		int32_t v;
		memcpy(&v, s->ibuf + 4 * i, 4);
		cloexec[i] = (int32_t)le32toh(v);
	}
	if (pipe2(go, O_CLOEXEC) == -1) {
		e = errno;
		free(cloexec);
		return -e;
	}
	if ((pid = fork()) == -1) {
		e = errno;
		close(go[0]);
		close(go[1]);
		free(cloexec);
		return -e;
	}
	if (pid == 0) {
		close(go[1]);
		newstub_run(s, s->cur, go[0], cloexec, n);
	}
	free(cloexec);
	close(go[0]);
	s->news[slot].pid = pid;
	s->news[slot].go = go[1];
	return pid;
}

/* STUBGO: tell the new stub where to go, or end it unseen; 1 if it went
   with a stand-in (a[1] 1, asked by the proxy). */
static long
stubgo(struct stub *s, const struct rf_fwd_msg *m)
{
	struct newstub *ns = NULL;
	siginfo_t si;
	sigset_t chld;
	struct timespec zero = { 0, 0 };
	size_t i;
	long r = 0;

	for (i = 0; i < NEWSTUB_MAX; i++)
		if (s->news[i].pid > 0 && s->news[i].pid == m->a[0])
			ns = &s->news[i];
	if (ns == NULL)
		return -ESRCH;
	if (m->dlen > 0 && m->dlen <= GOMAX) {
		if (write(ns->go, s->ibuf, m->dlen) != (ssize_t)m->dlen)
			r = -EPIPE;
		else if (m->a[1] == 1 && rf_fwd_pids_add(&s->stand, &s->nstand, &s->capstand, ns->pid) == 0)
			r = 1;	/* its grandchild has a stand-in: its news are the proxy's */
	}
	close(ns->go);
	if (m->dlen == 0 || r < 0) {
		/* Not born: reap it, and swallow its SIGCHLD unless another
		   child has news too. */
		if (r != 0)
			kill(ns->pid, SIGKILL);
		while (waitpid(ns->pid, NULL, 0) == -1 && errno == EINTR)
			;
		memset(&si, 0, sizeof(si));
		if (waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) ==
		    -1 || si.si_pid == 0) {
			sigemptyset(&chld);
			sigaddset(&chld, SIGCHLD);
			sigtimedwait(&chld, NULL, &zero);
			__atomic_fetch_and(&sigpend, ~(1ULL << (SIGCHLD - 1)), __ATOMIC_RELAXED);
		}
	}
	ns->pid = 0;
	ns->go = -1;
	return r;
}

/* Has the stub children other than the stand-ins' stubs and its page source? */
static int
others(const struct stub *s)
{
	char path[64], buf[4096], *q, *end;
	ssize_t k;
	long pid;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)syscall(SYS_gettid));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 1;
	k = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[k > 0 ? k : 0] = '\0';
	for (q = buf; (pid = strtol(q, &end, 10)) > 0 && end != q; q = end)
		if (!stand_has(s, pid) && pid != own_child)
			return 1;
	return 0;
}

/*
 * The child's wait at home while new stubs have stand-ins: those are not
 * the child's to reap (a stand-in ends as its grandchild ends, and is
 * waited for where the child is); the rest as the kernel would.  As waitid
 * (si) or wait4 (status, ru), by m->flags & 1; returns what they return, or
 * -errno.
 */
static long
wait_mine(struct stub *s, const struct rf_fwd_msg *m, siginfo_t *si, int *status,
    struct rusage *ru)
{
	siginfo_t pk;
	idtype_t idt;
	id_t id;
	int opts, wopts;
	pid_t pid;
	long r;

	if (m->flags & 1) {
		idt = (idtype_t)m->a[0];
		id = (id_t)m->a[1];
		opts = wopts = (int)m->a[2];
	} else {
		pid = (pid_t)m->a[0];
		opts = (int)m->a[1];
		idt = pid == -1 ? P_ALL : pid <= 0 ? P_PGID : P_PID;
		id = pid < -1 ? (id_t)-pid : pid > 0 ? (id_t)pid : 0;
		wopts = WEXITED | (opts & (WUNTRACED | WCONTINUED | WNOHANG | __WALL |
		    __WCLONE | __WNOTHREAD));
	}
	if (idt == P_PID && stand_has(s, (pid_t)id))
		return -ECHILD;
	for (;;) {
		memset(&pk, 0, sizeof(pk));
		if (waitid(idt, id, &pk, wopts | WNOHANG | WNOWAIT) == -1)
			return -errno;
		if (pk.si_pid != 0 && pk.si_pid == own_child) {
			/* the page source is the stub's, never the child's */
			waitid(P_PID, pk.si_pid, &pk, WEXITED | WSTOPPED | WCONTINUED | WNOHANG);
			continue;
		}
		if (pk.si_pid != 0 && stand_has(s, pk.si_pid)) {
			if (stand_news(s) == -1)
				return -EIO;
			continue;
		}
		if (pk.si_pid != 0) {
			if (si != NULL)
				return waitid(P_PID, pk.si_pid, si, opts) == -1 ? -errno : 0;
			r = wait4(pk.si_pid, status, opts, ru);
			return r == -1 ? -errno : r;
		}
		if (!others(s))
			return -ECHILD;
		if (opts & WNOHANG)
			return 0;
		if (waitid(idt, id, &pk, (wopts & ~WNOHANG) | WNOWAIT) == -1)
			return -errno;
	}
}

/* CREDS: the family's ids, from now on (the proxy saw them change). */
static void
creds_set(struct stub *s, const struct rf_fwd_msg *m)
{
	struct famtab *f = s->cur;
	uint32_t v;
	size_t i;

	f->c.uid = (uint32_t)m->a[0];
	f->c.gid = (uint32_t)m->a[1];
	f->c.ruid = (uint32_t)m->a[2];
	f->c.rgid = (uint32_t)((uint64_t)m->a[2] >> 32);
	f->c.umask = (uint32_t)m->a[3] & 0777;
	f->c.ng = 0;
	for (i = 0; i + 4 <= m->dlen && f->c.ng < RF_FWD_GROUPS_MAX; i += 4) {
		memcpy(&v, s->ibuf + i, 4);
		f->c.g[f->c.ng++] = le32toh(v);
	}
	f->cred = 1;
}

static int
creds_eq(const struct creds *a, const struct creds *b)
{
	return a->uid == b->uid && a->gid == b->gid && a->ruid == b->ruid && a->rgid == b->rgid &&
	    a->umask == b->umask && a->ng == b->ng &&
	    memcmp(a->g, b->g, a->ng * sizeof(a->g[0])) == 0;
}

/*
 * Act with the family's ids (SPEC 7: what the child dropped, it has
 * dropped at home too).  This thread's only (raw calls, not glibc's, which
 * would set every thread's): back to the stub's own effective ids, then
 * the groups, the gid, the uid; the real and saved ids stay the stub's, so
 * it can come back.  A step the stub may not take leaves it with its own
 * ids there, which are never more than the child had: the child's came
 * from them, and only a set-id program on its own host raised them.
 */
static void
creds_apply(struct stub *s)
{
	const struct creds *w = s->cur->cred ? &s->cur->c : &s->own;
	gid_t g[RF_FWD_GROUPS_MAX];
	int i, ok = 1;

	if (s->now_ok && creds_eq(w, &s->now))
		return;
	umask(w->umask);
	syscall(SYS_setresuid, -1, s->own.uid, -1);
	syscall(SYS_setresuid, s->own.ruid, -1, -1);
	syscall(SYS_setresgid, s->own.rgid, s->own.gid, -1);
	for (i = 0; i < w->ng; i++)
		g[i] = w->g[i];
	if (syscall(SYS_setgroups, w->ng, g) == -1 && !creds_eq(w, &s->own))
		ok = 0;
	if ((w->gid != s->own.gid || w->rgid != s->own.rgid) &&
	    syscall(SYS_setresgid, w->rgid, w->gid, -1) == -1)
		ok = 0;
	if ((w->uid != s->own.uid || w->ruid != s->own.ruid) &&
	    syscall(SYS_setresuid, w->ruid, w->uid, -1) == -1)
		ok = 0;
	s->now = *w;
	s->now_ok = ok;
}

/* One request; its data is in s->ibuf.  Returns 0, or -1 (connection). */
static int
serve(struct stub *s, const struct rf_fwd_msg *m)
{
	size_t outlen = 0, cnt;
	int64_t aux = 0;
	long r;
	int fd = -1, flags = 0, closeret = 0, e, blocks;
	struct stat st;
	struct statx stx;
	struct flock fl;
	struct rusage ru;
	siginfo_t si;
	char path[64];
	const char *p;

	if (m->op == RF_FWD_WRITE && (m->flags & RF_FWDF_POST)) {
		if ((s->cur = fam_get(s, m->fam, 0)) == NULL)
			s->cur = &s->fam[0];
		return posted_write(s, m, fam_get(s, m->fam, 0) != NULL ? xlate(s, m->a[0]) : -1);
	}
	{
		struct famtab *f = fam_get(s, m->fam, 0);
		if (f == NULL) {
			if (m->op == RF_FWD_BIND || m->op == RF_FWD_DROP || m->op == RF_FWD_EXEC ||
			    m->op == RF_FWD_FORK || m->op == RF_FWD_FAMEND || m->op == RF_FWD_CREDS)
				return 0;
			return reply(s, m, -EBADF, 0, NULL, 0, 0);
		}
		s->cur = f;
	}
	if (m->op != RF_FWD_CREDS)
		creds_apply(s);
	switch (m->op) {
	case RF_FWD_CREDS:
		creds_set(s, m);
		return 0;
	case RF_FWD_FORK:
		fam_fork(s, m->a[0]);
		return 0;
	case RF_FWD_FAMEND:
		if (m->fam != 0)
			fam_end(s, s->cur);
		return 0;
	case RF_FWD_BIND:
		if (m->a[0] < 0) {
			if (m->a[1] == 0)
				unref(s, m->a[2]);
			return 0;
		}
		fd = m->a[1] == 0 ? (int)m->a[2] : xlate(s, m->a[2]);
		if (m->a[1] == 0 && (m->a[2] < 0 || (size_t)m->a[2] >= s->nrefs ||
		    s->refs[m->a[2]] != 0))
			fd = -1;	/* not a handle of an OPEN */
		bind_num(s, m->a[0], fd);
		return 0;
	case RF_FWD_DROP:
		unbind_num(s, m->a[0], NULL);
		return 0;
	case RF_FWD_EXEC:
		for (cnt = 0; cnt + 4 <= m->dlen; cnt += 4) {
			int32_t n;
			memcpy(&n, s->ibuf + cnt, 4);
			unbind_num(s, (int32_t)le32toh(n), NULL);
		}
		return 0;
	case RF_FWD_FORKSTUB:
		return reply(s, m, newstub(s, m), 0, NULL, 0, 0);
	case RF_FWD_STUBGO:
		return reply(s, m, stubgo(s, m), 0, NULL, 0, 0);
	case RF_FWD_OPEN:
	case RF_FWD_STATAT:
	case RF_FWD_STATX:
	case RF_FWD_PATHOP:
	case RF_FWD_KILL:
	case RF_FWD_WAIT:
	case RF_FWD_PROC:
	case RF_FWD_POLL:
		break;
	default:
		if ((fd = xlate(s, m->a[0])) == -1)
			return reply(s, m, -EBADF, 0, NULL, 0, 0);
	}

	if ((blocks = rf_fwd_op_blocks(m->op)))
		sigprocmask(SIG_SETMASK, m->op == RF_FWD_IOCTL && (m->flags & RF_FWDF_TTOU) ?
		    &s->nottou : &s->none, NULL);
	/* The urgent byte came before the call began (it waited behind a
	   posted write): the handler has run, the call would not see it. */
	if (blocks && cancelled) {
		r = -EINTR;
		goto done;
	}
	switch (m->op) {
	case RF_FWD_READ:
		cnt = m->a[1] < 0 ? 0 : m->a[1] > RF_FWD_IO_MAX ? RF_FWD_IO_MAX : m->a[1];
		if (m->flags & RF_FWDF_POS)
			r = pread(fd, s->obuf, cnt, m->a[2]);
		else if (m->a[3] != 0)
			r = recv(fd, s->obuf, cnt, m->a[3]);
		else
			r = read(fd, s->obuf, cnt);
		outlen = r > 0 ? r : 0;
		break;
	case RF_FWD_WRITE:
		if (m->flags & RF_FWDF_POS)
			r = pwrite(fd, s->ibuf, m->dlen, m->a[1]);
		else if (m->a[3] != 0)
			r = send(fd, s->ibuf, m->dlen, m->a[3]);
		else
			r = write(fd, s->ibuf, m->dlen);
		e = errno;
		if (s->post && !(m->flags & RF_FWDF_POS) && (m->a[3] & ~MSG_NOSIGNAL) == 0 &&
		    postable(fd)) {
			flags = RF_FWDF_POSTOK;
			post_add(s, fd);
		}
		errno = e;
		break;
	case RF_FWD_LSEEK:
		r = lseek(fd, m->a[1], m->a[2]);
		break;
	case RF_FWD_CLOSE:
		r = unbind_num(s, m->a[0], &closeret);
		if (r == 0)
			r = closeret;
		errno = -r;
		r = r < 0 ? -1 : 0;
		break;
	case RF_FWD_OPEN:
		if ((p = paths(s, m, NULL)) == NULL) {
			errno = EINVAL;
			r = -1;
			break;
		}
		fd = dirfd_of(s, m->a[0]);
		if (m->flags & RF_FWDF_FDPATH) {
			/* /dev/fd/N of a home fd: reopen our own. */
			snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
			p = path;
			fd = AT_FDCWD;
		}
		if (fd == -1) {
			errno = EBADF;
			r = -1;
			break;
		}
		r = openat(fd, p, (int)m->a[1] | O_CLOEXEC, (mode_t)m->a[2]);
		if (r >= 0) {
			if (grow(&s->refs, &s->nrefs, r) == -1) {
				close(r);
				errno = ENOMEM;
				r = -1;
			} else
				s->refs[r] = 0;	/* a handle until BIND */
		}
		break;
	case RF_FWD_FCNTL:
		switch (m->a[1]) {
		case F_GETFL: case F_SETFL: case F_GETPIPE_SZ: case F_SETPIPE_SZ:
		case F_GETOWN: case F_SETOWN: case F_GETSIG: case F_SETSIG:
		case F_GET_SEALS: case F_ADD_SEALS: case F_GETLEASE: case F_SETLEASE:
		case F_NOTIFY:
			r = fcntl(fd, (int)m->a[1], (long)m->a[2]);
			break;
		default:
			errno = EINVAL;
			r = -1;
		}
		break;
	case RF_FWD_LOCK:
		if (m->dlen != sizeof(fl)) {
			errno = EINVAL;
			r = -1;
			break;
		}
		memcpy(&fl, s->ibuf, sizeof(fl));
		switch (m->a[1]) {
		case F_GETLK: case F_SETLK: case F_SETLKW:
		case F_OFD_GETLK: case F_OFD_SETLK: case F_OFD_SETLKW:
			r = fcntl(fd, (int)m->a[1], &fl);
			break;
		default:
			errno = EINVAL;
			r = -1;
		}
		if (r >= 0) {
			memcpy(s->obuf, &fl, sizeof(fl));
			outlen = sizeof(fl);
		}
		break;
	case RF_FWD_FSTAT:
		r = fstat(fd, &st);
		if (r == 0) {
			memcpy(s->obuf, &st, sizeof(st));
			outlen = sizeof(st);
		}
		break;
	case RF_FWD_STATAT:
	case RF_FWD_STATX:
		fd = dirfd_of(s, m->a[0]);
		if ((p = paths(s, m, NULL)) == NULL || (fd == -1 && m->a[0] != AT_FDCWD)) {
			errno = p == NULL ? EINVAL : EBADF;
			r = -1;
			break;
		}
		if (m->op == RF_FWD_STATAT) {
			r = fstatat(fd, p, &st, (int)m->a[1]);
			memcpy(s->obuf, &st, sizeof(st));
			outlen = r == 0 ? sizeof(st) : 0;
		} else {
			r = statx(fd, p, (int)m->a[1], (unsigned)m->a[2], &stx);
			memcpy(s->obuf, &stx, sizeof(stx));
			outlen = r == 0 ? sizeof(stx) : 0;
		}
		break;
	case RF_FWD_GETDENTS:
		cnt = m->a[1] < 0 ? 0 : m->a[1] > RF_FWD_IO_MAX ? RF_FWD_IO_MAX : m->a[1];
		r = syscall(SYS_getdents64, fd, s->obuf, cnt);
		outlen = r > 0 ? r : 0;
		break;
	case RF_FWD_IOCTL:
		r = do_ioctl(s, m, fd, &outlen);
		goto done;
	case RF_FWD_FDOP:
		r = do_fdop(s, m, fd);
		goto done;
	case RF_FWD_PATHOP:
		r = do_pathop(s, m, &outlen);
		goto done;
	case RF_FWD_PROC:
		if (m->flags == RF_PROC_PRLIMIT) {
			struct rlimit nl, ol;
			if (m->a[2] && m->dlen == sizeof(nl))
				memcpy(&nl, s->ibuf, sizeof(nl));
			r = prlimit((pid_t)m->a[0], (int)m->a[1], m->a[2] ? &nl : NULL, &ol);
			if (r == 0) {
				memcpy(s->obuf, &ol, sizeof(ol));
				outlen = sizeof(ol);
			}
			break;
		}
		r = do_proc(m);
		goto done;
	case RF_FWD_SOCK:
		r = do_sock(s, m, fd, &outlen);
		/* a send timeout (SO_SNDTIMEO) would make a posted write
		   wait where the child's would fail: ask again */
		if (m->flags == RF_SOCK_SETSOCKOPT)
			s->revoke = 1;
		goto done;
	case RF_FWD_POLL:
		r = do_poll(s, m, &outlen);
		goto done;
	case RF_FWD_EPOLL:
		r = do_epoll(s, m, fd, &outlen);
		goto done;
	case RF_FWD_KILL:
		if ((m->a[3] == 3 || m->a[3] == 4) && m->dlen == sizeof(si)) {
			memcpy(&si, s->ibuf, sizeof(si));
			r = m->a[3] == 4 ? syscall(SYS_rt_tgsigqueueinfo, (pid_t)m->a[0],
			    (pid_t)m->a[2], (int)m->a[1], &si) :
			    syscall(SYS_rt_sigqueueinfo, (pid_t)m->a[0], (int)m->a[1], &si);
		} else if (m->a[3] == 1)
			r = syscall(SYS_tgkill, (pid_t)m->a[0], (pid_t)m->a[2], (int)m->a[1]);
		else if (m->a[3] == 2)
			r = syscall(SYS_tkill, (pid_t)m->a[2], (int)m->a[1]);
		else
			r = kill((pid_t)m->a[0], (int)m->a[1]);
		break;
	case RF_FWD_WAIT:
		memset(&ru, 0, sizeof(ru));
		if (m->flags & 1) {
			memset(&si, 0, sizeof(si));
			r = s->nstand > 0 ? wait_mine(s, m, &si, NULL, NULL) :
			    waitid((idtype_t)m->a[0], (id_t)m->a[1], &si, (int)m->a[2]);
			if (r == 0) {
				memcpy(s->obuf, &si, sizeof(si));
				outlen = sizeof(si);
			}
		} else {
			int status = 0;
			r = s->nstand > 0 ? wait_mine(s, m, NULL, &status, &ru) :
			    wait4((pid_t)m->a[0], &status, (int)m->a[1], &ru);
			aux = status;
			memcpy(s->obuf, &ru, sizeof(ru));
			outlen = r >= 0 ? sizeof(ru) : 0;
		}
		break;
	default:
		errno = ENOSYS;
		r = -1;
	}
	if (r == -1)
		r = -errno;
done:
	e = errno;
	if (blocks)
		sigprocmask(SIG_BLOCK, &s->all, NULL);
	if (r == -EINTR && (sigpend != 0 || sigq_head != sigq_tail || cancelled))
		flags |= RF_FWDF_INTR;
	take_urgent(s);
	errno = e;
	if (send_signals(s) == -1)
		return -1;
	return reply(s, m, r, aux, s->obuf, outlen, flags);
}

int
rf_stub_serve(const struct rf_fwd_io *io, const struct rf_stub_opts *o, int *status,
    struct rf_err *e)
{
	struct stub s;
	struct rf_fwd_msg m;
	struct pollfd pf;
	sigset_t all;
	int r, ret = -1, idle;

	memset(&s, 0, sizeof(s));
	s.connfd = o->connfd;
	s.o = o;
	s.self = sig_self = getpid();
	sigemptyset(&s.none);
	sigfillset(&all);
	s.all = all;
	sigemptyset(&s.nourg);
	sigaddset(&s.nourg, SIGURG);
	sigemptyset(&s.nottou);
	sigaddset(&s.nottou, SIGTTOU);
	s.post = post_on();
	{
		uid_t r, e, sv;
		gid_t gr, ge, gs, g[RF_FWD_GROUPS_MAX];
		int n, i;

		getresuid(&r, &e, &sv);
		getresgid(&gr, &ge, &gs);
		s.own.uid = e;
		s.own.gid = ge;
		s.own.ruid = r;
		s.own.rgid = gr;
		s.own.umask = umask(022);
		umask(s.own.umask);
		if ((n = getgroups(RF_FWD_GROUPS_MAX, g)) < 0)
			n = 0;
		for (i = 0; i < n; i++)
			s.own.g[i] = g[i];
		s.own.ng = n;
		s.now = s.own;
		s.now_ok = 1;
	}
	if (rf_fwd_conn_init(&s.c, io) == -1)
		return rf_errno(e, "stub");
	if (io->readahead != NULL)
		io->readahead(io->ctx);	/* an encrypted channel: one read a frame */
	/* replies are built where they are sent from: one write, no copy */
	s.obuf = rf_fwd_outbuf(&s.c);
	if ((s.ibuf = malloc(IBUFSZ)) == NULL) {
		rf_errno(e, "stub");
		goto out;
	}
	/* Signals are taken only where the stub can pass them on: in ppoll
	   between requests, and during a call (which they interrupt). */
	sigprocmask(SIG_BLOCK, &all, NULL);
	if (o->pre == NULL && catch_all() == -1) {
		rf_errno(e, "stub: sigaction");
		goto out;
	}
	if (hello(&s, o) == -1) {
		rf_errno(e, "stub: hello");
		goto out;
	}
	if (o->after_hello != NULL)
		o->after_hello(o->arg);
	/* The proxy's urgent byte raises SIGURG here. */
	if (s.connfd >= 0)
		fcntl(s.connfd, F_SETOWN, getpid());
	for (;;) {
		take_urgent(&s);
		if (send_signals(&s) == -1)
			break;
		/*
		 * Acks of posted writes go when the stub is about to sleep, or
		 * a quarter of the window is done: a child that writes and then
		 * reads gets its reply with no ack before it.
		 */
		/* a frame may hold several messages: the transport's buffer
		   counts as received */
		idle = rf_fwd_pending(&s.c) < RF_FWD_HDR &&
		    (s.c.io.pending == NULL || !s.c.io.pending(s.c.io.ctx));
		if (idle && (s.connfd < 0 || s.acked >= RF_FWD_POST_WINDOW / 4) &&
		    flush_acks(&s) == -1)
			break;
		if (idle && s.connfd >= 0) {
			pf.fd = s.connfd;
			pf.events = POLLIN;
			if (rf_fwd_spin(&pf, 1) == 0 && (flush_acks(&s) == -1 ||
			    ppoll(&pf, 1, NULL, &s.none) == -1)) {
				if (errno == EINTR)
					continue;
				break;
			}
		}
		if ((r = rf_fwd_recv_hdr(&s.c, &m)) <= 0)
			break;
		if (m.dlen > IBUFSZ - 1 || rf_fwd_recv_data(&s.c, s.ibuf, m.dlen) == -1)
			break;
		s.ibuf[m.dlen] = '\0';
		if (m.op == RF_FWD_EXIT) {
			/* posted writes were made: the proxy waits for this echo
			   to close without losing them */
			if ((m.flags & RF_FWDF_POST) && rf_fwd_send(&s.c, &m, NULL) == -1)
				break;
			*status = (int)m.a[0];
			ret = RF_STUB_EXITED;
			goto out;
		}
		if (m.op == RF_FWD_STOP) {
			stop_as((int)m.a[0]);
			continue;
		}
		if (serve(&s, &m) == -1)
			break;
	}
	ret = RF_STUB_LOST;
out:
	rf_fwd_conn_free(&s.c);
	free(s.ibuf);
	free(s.stand);
	for (size_t i = 0; i < s.nfam; i++)
		free(s.fam[i].map);
	free(s.fam);
	free(s.refs);
	free(s.postfds);
	return ret;
}
