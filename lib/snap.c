/*
 * snap.c - take a stopped process whole: /proc for what it shows, ptrace for
 * the CPU, syscalls run inside the task for what only it can tell (signal
 * actions, alternate stack, brk), and the list of pages worth carrying.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "rf_snap.h"

#define BUFSZ RF_SNAP_BUFSZ	/* read buffer, reused: fresh memory is slow */
#define RECSZ (RF_PAGES_MAX < BUFSZ ? RF_PAGES_MAX : BUFSZ)
#define NIOV 1024		/* IOV_MAX */
#define HOT_BELOW (64u << 10)	/* post-copy: sent with the image, below and */
#define HOT_ABOVE (16u << 10)	/* above the stack and thread pointers */

/* results of the injected syscalls, in a scratch area of the target */
#define SA_SLOT 32		/* struct rf_sigaction, the kernel's layout */
#define SCRATCH (RF_NSIG * SA_SLOT + 32)

static void
nap(long ns)
{
	struct timespec ts = { 0, ns };

	nanosleep(&ts, NULL);
}

int
rf_snap_stop(pid_t pid, struct rf_err *e)
{
	if (kill(pid, SIGSTOP) == -1)
		return rf_errno(e, "pid %d", (int)pid);
	return rf_snap_wait(pid, 10, e);
}

int
rf_snap_wait(pid_t pid, int seconds, struct rf_err *e)
{
	struct rf_pstat st;
	int i;

	/* group stop is asynchronous; a task in D state gets there later:
	   10 ms in steps of 0.1 ms, then steps of 1 ms */
	for (i = 0; i < 100 + (seconds * 1000 - 10); i++) {
		if (rf_procfs_stat(pid, &st) == -1)
			return rf_errno(e, "pid %d", (int)pid);
		if (st.state == 'T' || st.state == 't' || st.state == 'Z' ||
		    st.state == 'X')
			return 0;
		nap(i < 100 ? 100000 : 1000000);
	}
	return rf_errf(e, RF_EX_TEMPFAIL, "pid %d did not stop", (int)pid);
}

static int
attach(struct rf_snap *s, pid_t pid, int flags, struct rf_err *e)
{
	struct rf_pstatus ps;
	struct rf_pstat st;
	char path[64];

	memset(s, 0, sizeof(*s));
	s->pid = pid;
	s->memfd = -1;
	s->pmfd = -1;
	if (rf_procfs_stat(pid, &st) == -1) {
		if (errno == ESRCH)
			return rf_errf(e, RF_EX_NOINPUT, "pid %d: no such process", (int)pid);
		return rf_errno(e, "pid %d: stat", (int)pid);
	}
	if (st.flags & RF_PF_KTHREAD)
		return rf_errf(e, RF_EX_NO, "pid %d is a kernel thread", (int)pid);
	if (st.state == 'Z' || st.state == 'X')
		return rf_errf(e, RF_EX_NO, "pid %d is a zombie", (int)pid);
	if (st.nthreads > 1)
		return rf_errf(e, RF_EX_NO, "pid %d has %ld threads; only single-threaded"
		    " processes can be dumped", (int)pid, st.nthreads);
	if (rf_procfs_status(pid, &ps) == -1)
		return rf_errno(e, "pid %d: status", (int)pid);
	/* both as the stopped task shows them: rf_snap_collect's too */
	s->st = st;
	s->ps = ps;
	if (ps.tracer != 0)
		return rf_errf(e, RF_EX_NO, "pid %d is traced by pid %d", (int)pid,
		    (int)ps.tracer);
	if (st.state != 'T')
		return rf_errf(e, RF_EX_NO, "pid %d is running; stop it (kill -STOP)"
		    " or use -s", (int)pid);
	if (rf_ptrace_seize(&s->pt, pid, ps.seccomp != 0 && !(flags & RF_SNAP_FILTER_OK)) == -1) {
		if (errno == ESRCH)
			return rf_errf(e, RF_EX_NOINPUT, "pid %d: no such process", (int)pid);
		if (errno == EPERM && ps.seccomp != 0)
			return rf_errf(e, RF_EX_NOPERM, "pid %d runs under seccomp:"
			    " dumping it needs CAP_SYS_ADMIN", (int)pid);
		if (errno == EPERM)
			return rf_errf(e, RF_EX_NOPERM, "pid %d: not permitted to trace it",
			    (int)pid);
		return rf_errno(e, "pid %d: ptrace", (int)pid);
	}
	if (s->pt.stopsig == 0) {
		/* continued between our look and the seize */
		rf_ptrace_detach(&s->pt);
		return rf_errf(e, RF_EX_NO, "pid %d is running; stop it (kill -STOP)"
		    " or use -s", (int)pid);
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)rf_procfs_pid(pid));
	if ((s->memfd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		rf_errno(e, "pid %d: %s", (int)pid, path);
		rf_ptrace_detach(&s->pt);
		return -1;
	}
	return 0;
}

int
rf_snap_attach(struct rf_snap *s, pid_t pid, int flags, struct rf_err *e)
{
	if (attach(s, pid, flags, e) == 0)
		return 0;
	free(s->ps.groups);
	s->ps.groups = NULL;
	return -1;
}

int
rf_snap_detach(struct rf_snap *s, struct rf_err *e)
{
	struct rf_pstat st;
	int i, ret = 0, stopped = s->pt.attached && s->pt.stopsig && !s->go_on;

	if (rf_ptrace_detach(&s->pt) == -1 && errno != ESRCH)
		ret = rf_errno(e, "pid %d: detach", (int)s->pid);
	/*
	 * The task goes back into group stop by itself, passing through R:
	 * wait until it is there (or visibly elsewhere: continued meanwhile).
	 */
	for (i = 0; stopped && ret == 0 && i < 10000; i++) {
		if (rf_procfs_stat(s->pid, &st) == -1 ||
		    (st.state != 't' && st.state != 'R'))
			break;
		nap(i < 100 ? 10000 : 100000);
	}
	if (s->memfd != -1)
		close(s->memfd);
	if (s->pmfd >= 0)
		close(s->pmfd);
	free(s->runs);
	if (s->buf != NULL && s->buf != s->warm)
		munmap(s->buf, s->buflen);
	free(s->ps.groups);
	free(s->rec);
	memset(s, 0, sizeof(*s));
	s->memfd = s->pmfd = -1;
	return ret;
}

static int
cpu_state(struct rf_snap *s, struct rf_proc *p, struct rf_err *e)
{
	struct rf_ptrace_rseq rs;
	uint8_t *xs;
	size_t len;

	/* as found: a syscall the stop interrupted shows as orig_rax and the
	   kernel's restart code in rax; the restorer restarts it */
	if (rf_ptrace_getregs(&s->pt, &p->regs) == -1)
		return rf_errno(e, "pid %d: registers", s->pid);
	if ((xs = malloc(RF_XSTATE_MAX)) == NULL)
		return rf_errno(e, "xstate");
	if (rf_ptrace_xstate(&s->pt, xs, RF_XSTATE_MAX, &len) == -1) {
		free(xs);
		return rf_errno(e, "pid %d: xstate", s->pid);
	}
	p->xstate = realloc(xs, len ? len : 1);
	if (p->xstate == NULL)
		p->xstate = xs;
	p->xstate_len = len;
	if (len >= 520)	/* XSTATE_BV opens the header after the legacy area */
		memcpy(&p->xfeatures, p->xstate + 512, 8);
	if (rf_ptrace_sigmask(&s->pt, &p->sigblocked) == -1)
		return rf_errno(e, "pid %d: signal mask", s->pid);
	if (rf_ptrace_rseq(&s->pt, &rs) == -1)
		return rf_errno(e, "pid %d: rseq", s->pid);
	p->rseq_ptr = rs.ptr;
	p->rseq_len = rs.len;
	p->rseq_sig = rs.sig;
	p->rseq_flags = rs.flags;
	return 0;
}

/*
 * A fork's child's own record (struct rf_selfrec), when the caller names
 * one and it is this task's for this fork: read once, checked, in s->rec.
 * It is the task's memory: nothing in it is trusted beyond its bounds.
 */
static void
read_record(struct rf_snap *s)
{
	struct rf_selfrec *r;
	uint32_t i;

	if (s->selfrec == 0 || s->selfgen == 0 || (r = malloc(sizeof(*r))) == NULL)
		return;
	if (rf_ptrace_peek(s->pid, s->selfrec, r, sizeof(*r)) == -1 ||
	    r->magic != RF_SELFREC_MAGIC || r->gen != s->selfgen || r->pid != s->pid) {
		free(r);
		return;
	}
	r->paths[sizeof(r->paths) - 1] = '\0';
	r->exe[sizeof(r->exe) - 1] = '\0';
	if (r->cwd >= sizeof(r->paths) || r->paths[r->cwd] != '/')
		r->have &= ~RF_SELFREC_ATTRS;
	if (r->auxv_len > RF_AUXV_MAX || r->auxv_len % 2 != 0)
		r->have &= ~RF_SELFREC_AUXV;
	if (r->nfd > RF_SELFREC_NFD)
		r->have &= ~RF_SELFREC_FDS;
	for (i = 0; i < r->nfd && (r->have & RF_SELFREC_FDS); i++)
		if (r->fd[i].path >= sizeof(r->paths) || r->fd[i].fd < 0 ||
		    (i > 0 && r->fd[i].fd <= r->fd[i - 1].fd))
			r->have &= ~RF_SELFREC_FDS;
	s->rec = r;
}

/* The fd table from the record (S wrote it: librfork's record_fds). */
static int
fds_from_record(const struct rf_selfrec *r, struct rf_fd **fdsp, size_t *np)
{
	struct rf_fd *fds;
	uint32_t i;

	if ((fds = calloc(r->nfd ? r->nfd : 1, sizeof(*fds))) == NULL)
		return -1;
	for (i = 0; i < r->nfd; i++) {
		const struct rf_selfrec_fd *g = &r->fd[i];
		struct rf_fd *f = &fds[i];

		if ((f->path = strdup(r->paths + g->path)) == NULL) {
			while (i-- > 0)
				free(fds[i].path);
			free(fds);
			return -1;
		}
		f->fd = g->fd;
		f->flags = g->flags;
		f->fdflags = g->flags & O_CLOEXEC ? FD_CLOEXEC : 0;
		f->kind = rf_procfs_fd_kind(f->path, g->mode);
		f->pos = g->pos;
		f->dev = g->dev;
		f->ino = g->ino;
		f->rdev = g->rdev;
	}
	*fdsp = fds;
	*np = r->nfd;
	return 0;
}

/*
 * stat and status as attach found them (the task has been stopped since),
 * the rest from the task's own record where it has them, else /proc.
 */
static int
attributes(struct rf_snap *s, struct rf_proc *p, uint64_t *caught, struct rf_err *e)
{
	const struct rf_pstatus *ps = &s->ps;
	const struct rf_pstat *st = &s->st;
	const struct rf_selfrec *r;
	struct utsname u;
	pid_t pid = s->pid;
	uint32_t have;

	read_record(s);
	r = s->rec;
	have = r != NULL ? r->have : 0;
	p->pid = pid;
	if (uname(&u) == -1)
		return rf_errno(e, "uname");
	if ((p->host = strdup(u.nodename)) == NULL || (p->kernel = strdup(u.release)) == NULL)
		return rf_errno(e, "uname");
	if ((p->comm = strdup(st->comm)) == NULL)
		return rf_errno(e, "comm");
	p->nice = (int)st->nice;
	p->mm = st->mm;
	p->umask = ps->umask;
	memcpy(p->uid, ps->uid, sizeof(p->uid));
	memcpy(p->gid, ps->gid, sizeof(p->gid));
	p->groups = ps->groups;
	p->ngroups = ps->ngroups;
	s->ps.groups = NULL;	/* p's now */
	p->sigpending = ps->sigpnd | ps->shdpnd;
	*caught = ps->sigcgt | ps->sigign;
	if (have & RF_SELFREC_ATTRS) {
		int i;

		p->personality = r->personality;
		for (i = 0; i < RF_NRLIMIT; i++) {
			p->rlim_cur[i] = r->rlim[i][0];
			p->rlim_max[i] = r->rlim[i][1];
		}
		if ((p->cwd = strdup(r->paths + r->cwd)) == NULL)
			return rf_errno(e, "cwd");
	} else {
		if (rf_procfs_personality(pid, &p->personality) == -1)
			return rf_errno(e, "pid %d: personality", pid);
		if (rf_procfs_limits(pid, p->rlim_cur, p->rlim_max) == -1)
			return rf_errno(e, "pid %d: limits", pid);
		if ((p->cwd = rf_procfs_link(pid, "cwd")) == NULL)
			return rf_errno(e, "pid %d: cwd", pid);
	}
	if (have & RF_SELFREC_AUXV) {
		memcpy(p->auxv, r->auxv, r->auxv_len * sizeof(r->auxv[0]));
		p->auxv_len = r->auxv_len;
	} else if (rf_procfs_auxv(pid, p->auxv, RF_AUXV_MAX, &p->auxv_len) == -1)
		return rf_errno(e, "pid %d: auxv", pid);
	if ((p->exe = have & RF_SELFREC_EXE ? strdup(r->exe) : rf_procfs_link(pid, "exe")) ==
	    NULL)
		return rf_errno(e, "pid %d: exe", pid);
	if ((have & RF_SELFREC_FDS ? fds_from_record(r, &p->fds, &p->nfd) :
	    rf_procfs_fds(pid, &p->fds, &p->nfd)) == -1)
		return rf_errno(e, "pid %d: fds", pid);
	return 0;
}

/* What a mapping carries. */
enum { TAKE_NONE, TAKE_ANON, TAKE_COW, TAKE_ALL };

static int
take(const struct rf_vma *v)
{
	switch (v->kind) {
	case RF_VMA_VVAR:
	case RF_VMA_VVAR_VCLOCK:
	case RF_VMA_VDSO:
	case RF_VMA_VSYSCALL:
		return TAKE_NONE;
	case RF_VMA_FILE:
		if (v->flags & RF_VMA_FILE_PAGES)
			return TAKE_ALL;
		return v->flags & RF_VMA_SHARED ? TAKE_NONE : TAKE_COW;
	default:
		return TAKE_ANON;
	}
}

/* A run of candidate pages; zcheck: leave out those that read as zeros. */
struct cand {
	uint64_t addr, npages;
	size_t vma;
	int zcheck;
};

struct cands {
	struct cand *c;
	size_t n, cap;
	uint64_t bytes;
	uint64_t scratch, scratch_any;	/* where injected syscalls may write */
	struct rf_pmrange *pm;		/* present or swapped pages */
	size_t npm;
};

static int
add_cand(struct cands *cs, uint64_t start, uint64_t end, size_t vma, int zcheck)
{
	struct cand *nc, *last = cs->n ? &cs->c[cs->n - 1] : NULL;

	cs->bytes += end - start;
	if (last != NULL && last->vma == vma && last->zcheck == zcheck &&
	    last->addr + last->npages * RF_PAGE_SIZE == start) {
		last->npages += (end - start) / RF_PAGE_SIZE;
		return 0;
	}
	if (cs->n == cs->cap) {
		cs->cap = cs->cap ? cs->cap * 2 : 256;
		if ((nc = reallocarray(cs->c, cs->cap, sizeof(*nc))) == NULL)
			return -1;
		cs->c = nc;
	}
	cs->c[cs->n++] = (struct cand){ start, (end - start) / RF_PAGE_SIZE, vma, zcheck };
	return 0;
}

static int
readable(int memfd, uint64_t addr)
{
	char c;

	return pread(memfd, &c, 1, (off_t)addr) == 1;
}

/* End of the part of a mapping that can be read: a file mapping reaching
   past the end of its file faults (SIGBUS) there. */
static uint64_t
readable_end(int memfd, const struct rf_vma *v)
{
	uint64_t lo, hi, mid;	/* page numbers: lo readable, hi not */

	if (readable(memfd, v->end - RF_PAGE_SIZE))
		return v->end;
	if (!readable(memfd, v->start))
		return v->start;
	lo = v->start / RF_PAGE_SIZE;
	hi = v->end / RF_PAGE_SIZE - 1;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (readable(memfd, mid * RF_PAGE_SIZE))
			lo = mid;
		else
			hi = mid;
	}
	return hi * RF_PAGE_SIZE;
}

/* Candidate pages of every mapping, from the page tables. */
static int
candidates(struct rf_snap *s, struct rf_proc *p, struct cands *cs, struct rf_err *e)
{
	struct rf_pmrange *r = NULL;
	const struct rf_vma *v;
	uint64_t lo, hi, want, end;
	size_t nr = 0, i, j = 0;
	char *wantv;
	int how, ok, cow;

	if ((wantv = calloc(p->nvma ? p->nvma : 1, 1)) == NULL)
		return rf_errno(e, "pages");
	/* executable mappings too: the syscall instruction we borrow must be
	   on a page already there, or borrowing it would fault one in */
	for (i = 0; i < p->nvma; i++) {
		how = take(&p->vmas[i]);
		wantv[i] = how == TAKE_ANON || how == TAKE_COW ||
		    (p->vmas[i].prot & PROT_EXEC && p->vmas[i].kind != RF_VMA_VSYSCALL);
	}
	ok = rf_pagemap_ranges(s->pid, p->vmas, wantv, p->nvma, s->force_pagemap_read,
	    &r, &nr);
	free(wantv);
	if (ok == -1)
		return rf_errno(e, "pid %d: pagemap", s->pid);
	want = (p->regs.rsp - 128 - SCRATCH) & ~(uint64_t)63;
	for (i = 0; i < p->nvma; i++) {
		v = &p->vmas[i];
		how = take(v);
		if (how == TAKE_NONE)
			continue;
		if (how == TAKE_ALL) {
			end = readable_end(s->memfd, v);
			if (end > v->start && add_cand(cs, v->start, end, i, 1) == -1)
				goto fail;
			continue;
		}
		while (j < nr && r[j].end <= v->start)
			j++;
		for (; j < nr && r[j].start < v->end; j++) {
			lo = r[j].start > v->start ? r[j].start : v->start;
			hi = r[j].end < v->end ? r[j].end : v->end;
			cow = !(r[j].cat & RF_PM_ZERO) && (r[j].cat & RF_PM_SWAPPED ||
			    (r[j].cat & RF_PM_PRESENT && !(r[j].cat & RF_PM_FILE)));
			if ((how == TAKE_ANON && !(r[j].cat & RF_PM_ZERO)) ||
			    (how == TAKE_COW && cow)) {
				if (add_cand(cs, lo, hi, i, how == TAKE_ANON) == -1)
					goto fail;
			}
			/* scratch: a present page of our own, best the stack's */
			if (cow && r[j].cat & RF_PM_PRESENT && v->prot & PROT_WRITE &&
			    !(v->flags & RF_VMA_SHARED)) {
				if (want >= lo && want + SCRATCH <= hi)
					cs->scratch = want;
				else if (cs->scratch_any == 0)
					cs->scratch_any = lo;
			}
			if (r[j].end > v->end)
				break;	/* the rest belongs to the next mapping */
		}
	}
	cs->pm = r;
	cs->npm = nr;
	if (cs->scratch == 0)
		cs->scratch = cs->scratch_any;
	return 0;
fail:
	free(r);
	return rf_errno(e, "pages");
}

/* Whether the page at addr is present, from the page list. */
static int
present(const struct cands *cs, uint64_t addr)
{
	size_t lo = 0, hi = cs->npm, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (addr < cs->pm[mid].start)
			hi = mid;
		else if (addr >= cs->pm[mid].end)
			lo = mid + 1;
		else
			return (cs->pm[mid].cat & RF_PM_PRESENT) != 0;
	}
	return 0;
}

/* Offset of the first 0f 05 in b, or -1. */
static ssize_t
find_0f05(const uint8_t *b, size_t len)
{
	const uint8_t *q = b, *end = b + len;

	while (q + 1 < end && (q = memchr(q, 0x0f, end - 1 - q)) != NULL) {
		if (q[1] == 0x05)
			return q - b;
		q++;
	}
	return -1;
}

/*
 * A `syscall` instruction (0f 05) on a present page of an executable
 * mapping: first the one the task stopped after (a task stopped in a
 * system call, as a fork's child is), else one in the vDSO, else in any
 * executable mapping.  Where it lies inside real instructions does not
 * matter.  (A fork's child has few such pages: fork copies no page table
 * entries of file mappings, and its vDSO is often not among them.)
 */
static int
find_syscall(struct rf_snap *s, const struct rf_proc *p, const struct cands *cs,
    struct rf_err *e)
{
	const struct rf_pmrange *r;
	const struct rf_vma *v;
	uint8_t b[RF_PAGE_SIZE];
	uint64_t a, ip = p->regs.rip - 2;
	size_t j;
	ssize_t vi, k;
	int pass;

	if ((vi = rf_proc_find_vma(p, ip)) != -1 && ip + 2 <= p->vmas[vi].end &&
	    p->vmas[vi].prot & PROT_EXEC && p->vmas[vi].kind != RF_VMA_VSYSCALL &&
	    present(cs, ip) && present(cs, ip + 1) &&
	    rf_ptrace_peek(s->pid, ip, b, 2) == 0 && b[0] == 0x0f && b[1] == 0x05) {
		s->pt.syscall_ip = ip;
		return 0;
	}
	for (pass = 0; pass < 2; pass++) {
		for (j = 0; j < cs->npm; j++) {
			r = &cs->pm[j];
			if (!(r->cat & RF_PM_PRESENT) ||
			    (vi = rf_proc_find_vma(p, r->start)) == -1)
				continue;
			v = &p->vmas[vi];
			if (!(v->prot & PROT_EXEC) || (pass == 0) != (v->kind == RF_VMA_VDSO))
				continue;
			for (a = r->start; a < r->end && a < v->end; a += RF_PAGE_SIZE) {
				if (rf_ptrace_peek(s->pid, a, b, sizeof(b)) == -1)
					break;
				if ((k = find_0f05(b, sizeof(b))) != -1) {
					s->pt.syscall_ip = a + k;
					return 0;
				}
			}
		}
	}
	return rf_errf(e, RF_EX_NO, "pid %d: no syscall instruction to borrow", s->pid);
}

/*
 * A private anonymous mapping that may be VM_GROWSDOWN (MAP_GROWSDOWN) and
 * could grow: one with room below it.  /proc/PID/maps does not say, and
 * smaps, which does, walks every page table entry (rf_procfs_vmas).  One
 * right above another mapping cannot grow while that is there, and is
 * carried as a plain mapping; the stack is known to be one.
 */
static int
maybe_growsdown(const struct rf_proc *p, size_t i)
{
	const struct rf_vma *v = &p->vmas[i];

	return v->kind == RF_VMA_ANON && !(v->flags & (RF_VMA_SHARED | RF_VMA_GROWSDOWN)) &&
	    (i == 0 || p->vmas[i - 1].end < v->start);
}

/*
 * The signal actions, alternate stack and brk from a fork's child's own
 * record (struct rf_selfrec), when the caller names one and it is this
 * task's for this fork: 1 if so, and they are in p.
 */
static int
own_record(struct rf_snap *s, struct rf_proc *p, uint64_t caught)
{
	const struct rf_selfrec *r = s->rec;
	int sig;

	if (r == NULL)
		return 0;
	for (sig = 1; sig <= RF_NSIG; sig++)
		if (caught & (1ULL << (sig - 1)) || sig == SIGCHLD)
			p->sigact[sig - 1] = r->sigact[sig - 1];
	p->altstack_sp = r->altstack.sp;
	p->altstack_size = r->altstack.size;
	p->altstack_flags = r->altstack.flags & ~SS_ONSTACK;
	p->mm.brk = r->brk;
	return 1;
}

/*
 * Whether mapping i grows down, as the task's own record says: 1 if it asked
 * (*grows its answer), for a mapping that starts and is protected as now.
 */
static int
own_grows(const struct rf_snap *s, const struct rf_vma *v, int *grows)
{
	const struct rf_selfrec *r = s->rec;
	uint32_t i;

	if (r == NULL || !(r->have & RF_SELFREC_GROWS))
		return 0;
	for (i = 0; i < r->ngd && i < RF_SELFREC_NGD; i++)
		if (r->gd[i].start == v->start && r->gd[i].prot == v->prot) {
			*grows = r->gd[i].grows != 0;
			return 1;
		}
	return 0;
}

/*
 * What only the task itself can tell: the signal actions, the alternate
 * stack, the exact brk (unless its own record has them: own_record), and
 * which mappings grow down (maybe_growsdown).  The results land in a
 * scratch area of the task's own memory, saved before and written back
 * after.
 */
static int
inject(struct rf_snap *s, struct rf_proc *p, const struct cands *cs, uint64_t caught,
    struct rf_err *e)
{
	uint64_t scratch = cs->scratch;
	uint8_t save[SCRATCH], res[SCRATCH];
	struct { uint64_t sp; int32_t flags, pad; uint64_t size; } ss;
	struct rf_vma *v;
	size_t i;
	long ret;
	int sig, n = 0, failed = 0, probes = 0, own;

	own = own_record(s, p, caught);
	for (i = 0; i < p->nvma; i++) {
		int grows;

		if (!maybe_growsdown(p, i))
			continue;
		if (own_grows(s, &p->vmas[i], &grows)) {
			if (grows)
				p->vmas[i].flags |= RF_VMA_GROWSDOWN;
			continue;
		}
		probes++;
	}
	if (own && probes == 0)
		return 0;	/* nothing to ask: no stop, no injected call */
	if (find_syscall(s, p, cs, e) == -1)
		return -1;
	if (!own && scratch == 0)
		return rf_errf(e, RF_EX_NO, "pid %d: no writable memory for syscall"
		    " results", s->pid);
	if (!own && rf_ptrace_peek(s->pid, scratch, save, SCRATCH) == -1)
		return rf_errno(e, "pid %d: read %#" PRIx64, s->pid, scratch);
	if (rf_ptrace_inject_begin(&s->pt) == -1)
		return rf_errno(e, "pid %d: prepare syscalls", s->pid);
	for (sig = 1; sig <= RF_NSIG && !failed && !own; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP ||
		    (!(caught & (1ULL << (sig - 1))) && sig != SIGCHLD))
			continue;
		if (rf_ptrace_syscall(&s->pt, &ret, SYS_rt_sigaction, sig, 0,
		    scratch + (sig - 1) * SA_SLOT, 8, 0, 0) == -1)
			failed = rf_errno(e, "pid %d: rt_sigaction", s->pid);
		else if (ret != 0)
			failed = rf_errf(e, RF_EX_OSERR, "pid %d: rt_sigaction(%d): %s",
			    s->pid, sig, strerror((int)-ret));
		n++;
	}
	if (!failed && !own) {
		if (rf_ptrace_syscall(&s->pt, &ret, SYS_sigaltstack, 0,
		    scratch + RF_NSIG * SA_SLOT, 0, 0, 0, 0) == -1)
			failed = rf_errno(e, "pid %d: sigaltstack", s->pid);
		else if (ret != 0)
			failed = rf_errf(e, RF_EX_OSERR, "pid %d: sigaltstack: %s",
			    s->pid, strerror((int)-ret));
		n++;
	}
	if (!failed && !own) {
		if (rf_ptrace_syscall(&s->pt, &ret, SYS_brk, 0, 0, 0, 0, 0, 0) == -1)
			failed = rf_errno(e, "pid %d: brk", s->pid);
		p->mm.brk = (uint64_t)ret;
		n++;
	}
	for (i = 0; i < p->nvma && !failed; i++) {
		int grows;

		v = &p->vmas[i];
		if (!maybe_growsdown(p, i) || own_grows(s, v, &grows))
			continue;
		/* PROT_GROWSDOWN: EINVAL unless VM_GROWSDOWN; else the
		   mapping's own protection again, which changes nothing */
		if (rf_ptrace_syscall(&s->pt, &ret, SYS_mprotect, v->start, RF_PAGE_SIZE,
		    v->prot | PROT_GROWSDOWN, 0, 0, 0) == -1)
			failed = rf_errno(e, "pid %d: mprotect", s->pid);
		else if (ret == 0)
			v->flags |= RF_VMA_GROWSDOWN;
		n++;
	}
	s->ninject += n;
	if (!own) {
		if (!failed && rf_ptrace_peek(s->pid, scratch, res, SCRATCH) == -1)
			failed = rf_errno(e, "pid %d: read %#" PRIx64, s->pid, scratch);
		/* the task's own bytes go back whatever happened */
		if (rf_ptrace_poke(s->pid, scratch, save, SCRATCH) == -1 && !failed)
			failed = rf_errno(e, "pid %d: write %#" PRIx64, s->pid, scratch);
	}
	if (rf_ptrace_inject_end(&s->pt) == -1 && !failed)
		failed = rf_errno(e, "pid %d: restore after syscalls", s->pid);
	if (failed)
		return -1;
	if (own)
		return 0;
	for (sig = 1; sig <= RF_NSIG; sig++)
		if (caught & (1ULL << (sig - 1)) || sig == SIGCHLD)
			memcpy(&p->sigact[sig - 1], res + (sig - 1) * SA_SLOT, SA_SLOT);
	memcpy(&ss, res + RF_NSIG * SA_SLOT, sizeof(ss));
	p->altstack_sp = ss.sp;
	p->altstack_size = ss.size;
	p->altstack_flags = ss.flags & ~SS_ONSTACK;
	return 0;
}

static int
page_is_zero(const uint8_t *pg)
{
	const uint64_t *w = (const uint64_t *)pg;
	uint64_t acc;
	size_t i, k;

	for (i = 0; i < RF_PAGE_SIZE / 8; i += 16) {
		acc = 0;
		for (k = 0; k < 16; k++)
			acc |= w[i + k];
		if (acc != 0)
			return 0;
	}
	return 1;
}

/*
 * Whether the target shares these pages with another process, as a fork's
 * child does with its parent until either writes: the first page of the
 * longest range is asked (pagemap bit 56: mapped here alone).  The ranges
 * hold private anonymous pages only.
 */
static int
shares_pages(struct rf_snap *s, const struct iovec *rv, size_t n)
{
	char path[64];
	uint64_t ent;
	size_t i, l = 0;

	if (s->pmfd == -1) {
		snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)rf_procfs_pid(s->pid));
		if ((s->pmfd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			s->pmfd = -2;
	}
	if (s->pmfd < 0 || n == 0)
		return 0;
	for (i = 1; i < n; i++)
		if (rv[i].iov_len > rv[l].iov_len)
			l = i;
	if (pread(s->pmfd, &ent, 8, (off_t)((uintptr_t)rv[l].iov_base / RF_PAGE_SIZE * 8)) != 8)
		return 0;
	return (ent >> 63 & 1) && !(ent >> 56 & 1);
}

/*
 * Read remote ranges into dst from /proc/PID/mem, one after the other.  A
 * read there takes each page as it is, where process_vm_readv pins it, and
 * a page the target shares (a fork's child with its parent: every page) is
 * first copied for it ("unshare"): 256 MiB of a fresh fork's child read at
 * 1300 against 2500 MiB/s here, and the child left holding a copy of each.
 */
static int
read_mem(struct rf_snap *s, const struct iovec *rv, size_t n, uint8_t *dst,
    struct rf_err *e)
{
	size_t i, off;
	ssize_t m;

	for (i = 0; i < n; i++) {
		for (off = 0; off < rv[i].iov_len; off += m) {
			m = pread(s->memfd, dst + off, rv[i].iov_len - off,
			    (off_t)((uintptr_t)rv[i].iov_base + off));
			if (m == -1 && errno == EINTR) {
				m = 0;
				continue;
			}
			if (m <= 0) {
				if (m == 0)
					errno = EIO;
				return rf_errno(e, "pid %d: read memory at %#" PRIxPTR, s->pid,
				    (uintptr_t)rv[i].iov_base + off);
			}
		}
		dst += rv[i].iov_len;
	}
	return 0;
}

/*
 * Read remote ranges into dst, one after the other: process_vm_readv in big
 * batches, /proc/PID/mem for what it cannot reach (no PROT_READ), or for
 * all of a target that shares its pages (read_mem).
 */
static int
read_target(struct rf_snap *s, const struct iovec *rv, size_t n, uint8_t *dst,
    struct rf_err *e)
{
	struct iovec r[NIOV], l;
	size_t i = 0, off = 0, cnt, k, total, left;
	ssize_t got, m;

	if (shares_pages(s, rv, n))
		return read_mem(s, rv, n, dst, e);
	while (i < n) {
		cnt = n - i < NIOV ? n - i : NIOV;
		total = 0;
		for (k = 0; k < cnt; k++) {
			r[k] = rv[i + k];
			total += r[k].iov_len;
		}
		r[0].iov_base = (char *)r[0].iov_base + off;
		r[0].iov_len -= off;
		total -= off;
		l.iov_base = dst;
		l.iov_len = total;
		got = process_vm_readv(s->pid, &l, 1, r, cnt, 0);
		if (got == -1) {
			if (errno == ESRCH)
				return rf_errno(e, "pid %d: read memory", s->pid);
			got = 0;
		}
		dst += got;
		for (k = 0; got > 0; k++) {
			left = r[k].iov_len;
			if ((size_t)got >= left) {
				got -= left;
				i++;
				off = 0;
			} else {
				off += got;
				got = 0;
			}
		}
		if (i < n && (size_t)(dst - (uint8_t *)l.iov_base) < total) {
			left = rv[i].iov_len - off;
			m = pread(s->memfd, dst, left, (off_t)((uintptr_t)rv[i].iov_base + off));
			if (m != (ssize_t)left) {
				if (m >= 0)
					errno = EIO;
				return rf_errno(e, "pid %d: read memory at %#" PRIxPTR, s->pid,
				    (uintptr_t)rv[i].iov_base + off);
			}
			dst += left;
			i++;
			off = 0;
		}
	}
	return 0;
}

static int
add_run(struct rf_snap *s, struct rf_proc *p, size_t *cap, uint64_t addr,
    uint64_t npages, size_t vma)
{
	struct rf_snap_run *nr, *last = s->nrun ? &s->runs[s->nrun - 1] : NULL;

	p->vmas[vma].npages += npages;
	if (last != NULL && last->vma == vma &&
	    last->addr + last->npages * RF_PAGE_SIZE == addr) {
		last->npages += npages;
		return 0;
	}
	if (s->nrun == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		if ((nr = reallocarray(s->runs, *cap, sizeof(*nr))) == NULL)
			return -1;
		s->runs = nr;
	}
	s->runs[s->nrun++] = (struct rf_snap_run){ addr, npages, vma, 0 };
	return 0;
}

/*
 * Candidates to runs, leaving out anonymous pages that read as zeros.  When
 * every candidate fits in the buffer it is read once, here, and the buffer
 * keeps the pages of the runs in order (s->cached) for rf_snap_write.
 */
static int
settle_pages(struct rf_snap *s, struct rf_proc *p, struct cands *cs, struct rf_err *e)
{
	static struct iovec rv[NIOV];
	static struct {
		size_t cand;
		uint64_t addr, npages;
		int read;
	} piece[NIOV];
	size_t ci = 0, runcap = 0, nrv, k, w, base = 0, keep = 0;
	uint64_t pg = 0, fill, room, a, n, run_a, run_n;
	int all = !s->keep_zero && cs->bytes <= BUFSZ;
	const struct cand *c;
	uint8_t *d;

	s->buflen = cs->bytes < BUFSZ ? (cs->bytes ? cs->bytes : RF_PAGE_SIZE) : BUFSZ;
	if (s->warm != NULL)
		s->buf = s->warm;
	else
		s->buf = mmap(NULL, s->buflen, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->buf == MAP_FAILED) {
		s->buf = NULL;
		return rf_errno(e, "read buffer");
	}
	while (ci < cs->n) {
		/* a window: pieces of candidates in order, those to read side by
		   side in the buffer (after the previous windows' if all are kept) */
		room = s->buflen - base;
		for (k = 0, nrv = 0, fill = 0; ci < cs->n && k < NIOV && fill < room; k++) {
			c = &cs->c[ci];
			a = c->addr + pg * RF_PAGE_SIZE;
			n = c->npages - pg;
			piece[k].cand = ci;
			piece[k].read = all || (c->zcheck && !s->keep_zero);
			if (piece[k].read) {
				if (n > (room - fill) / RF_PAGE_SIZE)
					n = (room - fill) / RF_PAGE_SIZE;
				rv[nrv].iov_base = (void *)(uintptr_t)a;
				rv[nrv++].iov_len = n * RF_PAGE_SIZE;
				fill += n * RF_PAGE_SIZE;
			}
			piece[k].addr = a;
			piece[k].npages = n;
			pg += n;
			if (pg == c->npages) {
				ci++;
				pg = 0;
			}
		}
		if (nrv > 0 && read_target(s, rv, nrv, s->buf + base, e) == -1)
			return -1;
		d = s->buf + base;
		if (all)
			base += fill;
		for (w = 0; w < k; w++) {
			c = &cs->c[piece[w].cand];
			if (!piece[w].read) {
				if (add_run(s, p, &runcap, piece[w].addr, piece[w].npages,
				    c->vma) == -1)
					return rf_errno(e, "pages");
				continue;
			}
			run_n = 0;
			run_a = 0;
			for (n = 0; n < piece[w].npages; n++, d += RF_PAGE_SIZE) {
				a = piece[w].addr + n * RF_PAGE_SIZE;
				if (c->zcheck && page_is_zero(d))
					continue;
				if (all) {
					if (s->buf + keep != d)
						memmove(s->buf + keep, d, RF_PAGE_SIZE);
					keep += RF_PAGE_SIZE;
				}
				if (run_n > 0 && run_a + run_n * RF_PAGE_SIZE == a) {
					run_n++;
					continue;
				}
				if (run_n > 0 && add_run(s, p, &runcap, run_a, run_n,
				    c->vma) == -1)
					return rf_errno(e, "pages");
				run_a = a;
				run_n = 1;
			}
			if (run_n > 0 && add_run(s, p, &runcap, run_a, run_n, c->vma) == -1)
				return rf_errno(e, "pages");
		}
	}
	s->cached = all;
	return 0;
}

int
rf_snap_collect(struct rf_snap *s, struct rf_proc *p, struct rf_err *e)
{
	struct cands cs = { 0 };
	uint64_t caught = 0;
	int r;

	memset(p, 0, sizeof(*p));
	if (attributes(s, p, &caught, e) == -1 || cpu_state(s, p, e) == -1 ||
	    rf_procfs_vmas(s->pid, &p->vmas, &p->nvma, e) == -1)
		return -1;
	r = candidates(s, p, &cs, e);
	if (r == 0)
		r = inject(s, p, &cs, caught, e);
	if (r == 0)
		r = settle_pages(s, p, &cs, e);
	free(cs.c);
	free(cs.pm);
	return r;
}

/* Post-copy: a mapping whose pages may come after the child starts. */
static int
lazy_vma(const struct rf_snap *s, const struct rf_vma *v)
{
	return s->lazy_min > 0 && !(v->flags & RF_VMA_SHARED) &&
	    v->end - v->start >= s->lazy_min &&
	    (v->kind == RF_VMA_ANON || v->kind == RF_VMA_HEAP);
}

/*
 * Post-copy: split the runs of such mappings into LAZY ones and those the
 * child touches first, which come with the image: around the stack pointer
 * and the thread pointer (TLS below it, the thread's struct and rseq area
 * above), wherever they lie (a thread's stack is a big anonymous mapping;
 * the main thread's TLS block often joins one).
 */
static int
mark_lazy(struct rf_snap *s, const struct rf_proc *p, struct rf_err *e)
{
	const uint64_t sp = p->regs.rsp, tp = p->regs.fs_base;
	const uint64_t hot[2][2] = {
		{ sp > HOT_BELOW ? (sp - HOT_BELOW) & ~(uint64_t)(RF_PAGE_SIZE - 1) : 0,
		  (sp + HOT_ABOVE) & ~(uint64_t)(RF_PAGE_SIZE - 1) },
		{ tp > HOT_BELOW ? (tp - HOT_BELOW) & ~(uint64_t)(RF_PAGE_SIZE - 1) : 0,
		  (tp + HOT_ABOVE) & ~(uint64_t)(RF_PAGE_SIZE - 1) },
	};
	struct rf_snap_run *out = NULL, *nr, r;
	size_t i, n = 0, cap = 0;
	uint64_t a, end, cut;
	int k, lz;

	for (i = 0; i < s->nrun; i++) {
		r = s->runs[i];
		end = r.addr + r.npages * RF_PAGE_SIZE;
		for (a = r.addr; a < end; a = cut) {
			/* the piece from a: hot or not, up to the next change */
			lz = lazy_vma(s, &p->vmas[r.vma]);
			cut = end;
			for (k = 0; k < 2; k++) {
				if (a >= hot[k][0] && a < hot[k][1]) {
					lz = 0;
					if (hot[k][1] < cut)
						cut = hot[k][1];
				} else if (hot[k][0] > a && hot[k][0] < cut)
					cut = hot[k][0];
			}
			if (n == cap) {
				cap = cap ? cap * 2 : s->nrun + 8;
				if ((nr = reallocarray(out, cap, sizeof(*nr))) == NULL) {
					free(out);
					return rf_errno(e, "pages");
				}
				out = nr;
			}
			if (n > 0 && out[n - 1].lazy == lz && out[n - 1].vma == r.vma &&
			    out[n - 1].addr + out[n - 1].npages * RF_PAGE_SIZE == a)
				out[n - 1].npages += (cut - a) / RF_PAGE_SIZE;
			else
				out[n++] = (struct rf_snap_run){ a, (cut - a) / RF_PAGE_SIZE, r.vma, lz };
		}
	}
	free(s->runs);
	s->runs = out;
	s->nrun = n;
	return 0;
}

int
rf_snap_write(struct rf_snap *s, const struct rf_proc *p, int fd, struct rf_err *e)
{
	static struct iovec rv[NIOV];
	struct rf_imgw w;
	size_t ri = 0, nrv, k;
	uint64_t pg = 0, fill, n, off = 0;
	const struct rf_snap_run *r;
	uint8_t *d;

	if (s->lazy_min > 0 && mark_lazy(s, p, e) == -1)
		return -1;
	if (rf_imgw_start(&w, fd, p, s->raw, e) == -1)
		return -1;
	while (ri < s->nrun) {
		/* a run of a post-copy mapping: only where its pages are */
		if (pg == 0 && s->runs[ri].lazy) {
			r = &s->runs[ri++];
			if (rf_imgw_lazy(&w, r->addr, r->npages * RF_PAGE_SIZE, e) == -1)
				return -1;
			if (s->cached)
				off += r->npages * RF_PAGE_SIZE;
			continue;
		}
		/* a batch of records, each inside one run, read in one go */
		for (nrv = 0, fill = 0; ri < s->nrun && nrv < NIOV && fill < s->buflen; nrv++) {
			r = &s->runs[ri];
			if (pg == 0 && r->lazy)
				break;
			n = r->npages - pg;
			if (n * RF_PAGE_SIZE > RECSZ)
				n = RECSZ / RF_PAGE_SIZE;
			if (!s->cached && fill + n * RF_PAGE_SIZE > s->buflen)
				n = (s->buflen - fill) / RF_PAGE_SIZE;
			rv[nrv].iov_base = (void *)(uintptr_t)(r->addr + pg * RF_PAGE_SIZE);
			rv[nrv].iov_len = n * RF_PAGE_SIZE;
			fill += n * RF_PAGE_SIZE;
			pg += n;
			if (pg == r->npages) {
				ri++;
				pg = 0;
			}
		}
		if (s->cached) {
			d = s->buf + off;
			off += fill;
		} else {
			if (read_target(s, rv, nrv, s->buf, e) == -1)
				return -1;
			d = s->buf;
		}
		for (k = 0; k < nrv; k++) {
			if (rf_imgw_pages(&w, (uintptr_t)rv[k].iov_base, d, rv[k].iov_len,
			    e) == -1)
				return -1;
			d += rv[k].iov_len;
		}
	}
	return rf_imgw_end(&w, e);
}

/*
 * The tracer and the traced task on one CPU while they take turns (each
 * injected call is a stop and a wake-up): a wake-up on the other CPU costs
 * 20-80 us in some virtual machines, on the same one a context switch.
 * Both masks are put back after.
 */
struct coloc {
	int on, away;
	pid_t sender;
	cpu_set_t ours, theirs, senders;
};

static void
colocate(pid_t pid, pid_t sender, struct coloc *co)
{
	cpu_set_t one, other;
	int cpu;

	co->on = co->away = 0;
	if (getenv("RFORK_SNAP_SPREAD") != NULL || (cpu = sched_getcpu()) < 0 ||
	    sched_getaffinity(0, sizeof(co->ours), &co->ours) == -1 ||
	    sched_getaffinity(pid, sizeof(co->theirs), &co->theirs) == -1 ||
	    !CPU_ISSET(cpu, &co->theirs))
		return;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(pid, sizeof(one), &one) == -1)
		return;
	co->on = 1;
	if (sched_setaffinity(0, sizeof(one), &one) == -1) {
		sched_setaffinity(pid, sizeof(co->theirs), &co->theirs);
		co->on = 0;
		return;
	}
	/*
	 * The sender sleeps on the image's pipe, and a pipe's writer wakes its
	 * reader on the writer's own CPU when that CPU runs nothing else: it
	 * would wait there for the whole snapshot while another CPU idles.
	 */
	if (sender > 0 && sched_getaffinity(sender, sizeof(co->senders), &co->senders) == 0) {
		CPU_AND(&other, &co->senders, &co->ours);
		CPU_CLR(cpu, &other);
		if (CPU_COUNT(&other) > 0 && sched_setaffinity(sender, sizeof(other), &other) == 0) {
			co->away = 1;
			co->sender = sender;
		}
	}
}

static void
uncolocate(pid_t pid, struct coloc *co)
{
	if (co->away)
		sched_setaffinity(co->sender, sizeof(co->senders), &co->senders);
	if (!co->on)
		return;
	sched_setaffinity(pid, sizeof(co->theirs), &co->theirs);
	sched_setaffinity(0, sizeof(co->ours), &co->ours);
}

int
rf_snap_take(pid_t pid, const struct rf_snap_opt *o, struct rf_proc *p, int fd,
    struct rf_err *e)
{
	struct rf_snap s;
	struct coloc co;
	int ok;

	memset(p, 0, sizeof(*p));
	if (o->wait > 0 && rf_snap_wait(pid, o->wait, e) == -1)
		return -1;
	if (o->stop && rf_snap_stop(pid, e) == -1)
		return -1;
	colocate(pid, o->sender, &co);
	if (rf_snap_attach(&s, pid, o->flags, e) == -1) {
		uncolocate(pid, &co);
		return -1;
	}
	s.keep_zero = o->keep_zero;
	s.raw = o->raw;
	s.go_on = o->go_on;
	s.lazy_min = o->lazy ? RF_LAZY_MIN : 0;
	s.force_pagemap_read = o->pagemap_read;
	s.warm = o->buf;
	s.selfrec = o->selfrec;
	s.selfgen = o->selfgen;
	ok = rf_snap_collect(&s, p, e) == 0;
	if (ok && fd >= 0 && rf_snap_write(&s, p, fd, e) == -1) {
		/* not writing the output is an I/O error whatever errno says */
		if (strncmp(e->msg, "image: write", 12) == 0)
			e->code = RF_EX_IOERR;
		ok = 0;
	}
	/* let the process go before anything else can fail */
	if (rf_snap_detach(&s, ok ? e : NULL) == -1)
		ok = 0;
	uncolocate(pid, &co);
	return ok ? 0 : -1;
}
