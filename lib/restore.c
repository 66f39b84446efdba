/*
 * restore.c - build the process: fork a child, set up in it what needs libc
 * (credentials, cwd, fds), hand it to the restorer blob, feed it the pages,
 * and give it the image's registers at its last stop.
 *
 *   rf-restore                     child C
 *   fork, PTRACE_SEIZE  ........>  creds, cwd, umask, nice, fds
 *   first page records read        copy blob + rst_args to a free spot, jump
 *                                  [blob] rseq off, unmap old layout,
 *                                  move vdso block, mmap every VMA
 *                      <........   RST_READY
 *   page records -> UFFDIO_COPY, process_vm_writev   (restore_pages.c)
 *   end record verified, RST_GO ..>
 *   (rf_restore_build returns)     mprotect, rlimits, PR_SET_MM_MAP, signals,
 *                                  rseq, pending signals, close own fds
 *                      <........   RST_DONE; munmap(blob) -> SIGSEGV stop
 *   SETREGS, xstate, sigmask       (rf_restore_finish)
 *   DETACH (signal discarded, or SIGSTOP for -S)
 *
 * The SIGSEGV of the fetch after munmap is a ptrace signal-delivery stop
 * that happens before anything runs in the gone region; resuming from a
 * signal-delivery stop lets the kernel do its own syscall-restart logic
 * with the image's orig_rax.  One ptrace stop in all.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <elf.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include "rf_restore.h"
#include "rf_fwd.h"
#include "restorer/restorer.h"

#define TASK_SIZE 0x7ffffffff000ull
#define PAGE RF_PAGE_SIZE
#define PG_UP(x) (((x) + PAGE - 1) & ~(uint64_t)(PAGE - 1))
#define NCAND 16
/*
 * Sleeping until the child answers costs up to a millisecond of wakeup
 * latency on these virtual CPUs; the answers come within that, so poll
 * (yielding, in case the child shares our CPU) before sleeping.
 */
#define SPIN_US 5000
#define RSEQ_SIG 0x53053053
#define ERESTARTNOINTR 513
#define ERESTART_RESTARTBLOCK 516
#ifndef PTRACE_SETSIGMASK
#define PTRACE_SETSIGMASK 0x420b
#endif

extern const char rf_restorer_blob[], rf_restorer_blob_end[];

struct build {
	struct rf_restore *rs;
	const struct rf_proc *p;
	struct rst_args *args;
	size_t args_len;
	size_t filter_off;	/* fork mode: the filter's place in args */
	uint64_t region_len;
	uint64_t cand[NCAND];
	int ncand;
	int fd_lo;
	int want_exe;
	int sock;		/* our end */
	int uffd;		/* the child's userfaultfd, or -1 */
	int csock;		/* the child's end, in the parent's numbering */
};

/* ---- the child, before the blob ---- */

__attribute__((noreturn, format(printf, 3, 4))) static void
child_fail(struct build *b, int code, const char *fmt, ...)
{
	struct rst_msg m = { .type = RST_FAIL, .step = RST_STEP_CHILD, .err = code };
	int saved = errno;
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(m.text, sizeof(m.text), fmt, ap);
	va_end(ap);
	if (code == 0) {
		m.err = rf_errno_code(saved);
		n = strlen(m.text);
		snprintf(m.text + n, sizeof(m.text) - n, ": %s", strerror(saved));
	}
	send(b->csock, &m, sizeof(m), MSG_NOSIGNAL);
	_exit(127);
}

static void
child_creds(struct build *b)
{
	const struct rf_proc *p = b->p;
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { 0 } };

	if (!b->rs->setcreds)
		return;
	if (b->rs->keepcap && prctl(PR_SET_KEEPCAPS, 1) == -1)
		child_fail(b, 0, "restore: PR_SET_KEEPCAPS");
	if (setgroups(p->ngroups, p->groups) == -1)
		child_fail(b, 0, "restore: setgroups");
	if (setresgid(p->gid[0], p->gid[1], p->gid[2]) == -1)
		child_fail(b, 0, "restore: setresgid %u", p->gid[0]);
	if (setresuid(p->uid[0], p->uid[1], p->uid[2]) == -1)
		child_fail(b, 0, "restore: setresuid %u", p->uid[0]);
	setfsgid(p->gid[3]);
	setfsuid(p->uid[3]);
	if (b->rs->keepcap) {
		if (b->rs->want_exe)
			d[CAP_CHECKPOINT_RESTORE / 32].effective =
			    d[CAP_CHECKPOINT_RESTORE / 32].permitted =
			    1u << (CAP_CHECKPOINT_RESTORE % 32);
		if (b->rs->keepadmin) {
			d[CAP_SYS_ADMIN / 32].effective |= 1u << (CAP_SYS_ADMIN % 32);
			d[CAP_SYS_ADMIN / 32].permitted |= 1u << (CAP_SYS_ADMIN % 32);
		}
		if (syscall(SYS_capset, &h, d) == -1 || prctl(PR_SET_KEEPCAPS, 0) == -1)
			child_fail(b, 0, "restore: capset");
	}
	/* Credential changes clear it; rf-restore must still reach the memory. */
	if (prctl(PR_SET_DUMPABLE, 1) == -1)
		child_fail(b, 0, "restore: PR_SET_DUMPABLE");
}

static int
cmp_int(const void *x, const void *y)
{
	return *(const int *)x - *(const int *)y;
}

/*
 * The image does not say which fds shared one open file description (2>&1):
 * an fd reopened like an earlier one (same file, flags and offset) is taken
 * as a dup of it, so that both go on writing at one offset.
 */
static ssize_t
shared_with(struct build *b, size_t i)
{
	const struct rf_fd *f = &b->p->fds[i], *g;
	size_t j;

	if (b->rs->fdplan[i] != RF_FDP_REOPEN)
		return -1;
	for (j = 0; j < i; j++) {
		g = &b->p->fds[j];
		if (b->rs->fdplan[j] == RF_FDP_REOPEN && g->kind == f->kind &&
		    g->dev == f->dev && g->ino == f->ino && g->rdev == f->rdev &&
		    g->flags == f->flags && g->pos == f->pos &&
		    strcmp(g->path, f->path) == 0)
			return j;
	}
	return -1;
}

/*
 * Our own fds go to fd_lo.. (socket, exe, mapped files) and supplied ones
 * to their numbers; every other fd we inherited is closed.  Two passes via
 * a scratch range above all targets, so no move overwrites a source.
 */
static void
child_fds(struct build *b)
{
	struct rf_restore *rs = b->rs;
	const struct rf_proc *p = b->p;
	size_t nkeep = 0, i, k;
	int *src, *dst, *tmp, *sorted, scratch, fd, flags;
	ssize_t j;
	struct stat st;

	k = 3 + rs->nmaps + rs->o.nsupply;
	src = calloc(k, sizeof(int));
	dst = calloc(k, sizeof(int));
	tmp = calloc(k, sizeof(int));
	sorted = calloc(k + 1, sizeof(int));
	if (!src || !dst || !tmp || !sorted)
		child_fail(b, 0, "restore");
	src[nkeep] = b->csock, dst[nkeep++] = b->fd_lo;
	if (b->want_exe && p->exe && (fd = open(p->exe, O_RDONLY | O_CLOEXEC)) != -1)
		src[nkeep] = fd, dst[nkeep++] = b->fd_lo + 1;
	for (i = 0; i < rs->nmaps; i++) {
		const struct rf_vma *v = NULL;
		size_t x;
		for (x = 0; x < p->nvma && v == NULL; x++)
			if (rs->vmafile[x] == (int)i)
				v = &p->vmas[x];
		fd = open(rs->maps[i].path, (rs->maps[i].rdwr ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		if (fd == -1)
			child_fail(b, 0, "restore: mapping 0x%" PRIx64 "-0x%" PRIx64 " %s",
			    v->start, v->end, rs->maps[i].path);
		if (fstat(fd, &st) == -1)
			child_fail(b, 0, "restore: %s", rs->maps[i].path);
		{
			struct rf_err e;
			if (rf_restore_same_file(v, &st, &e) == -1)
				child_fail(b, e.code, "%s", e.msg);
		}
		src[nkeep] = fd, dst[nkeep++] = b->fd_lo + 2 + i;
	}
	for (i = 0; i < rs->o.nsupply; i++)
		src[nkeep] = rs->o.supply[i].from, dst[nkeep++] = rs->o.supply[i].fd;
	if (b->args->uffd_fd >= 0) {
		src[nkeep] = b->args->uffd_fd, dst[nkeep++] = b->fd_lo + 2 + rs->nmaps;
		b->args->uffd_fd = b->fd_lo + 2 + rs->nmaps;
	}

	scratch = b->fd_lo + 3 + rs->nmaps;
	for (i = 0; i < nkeep; i++)
		if ((tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, scratch)) == -1)
			child_fail(b, 0, "restore: fd %d", src[i]);
	memcpy(sorted, tmp, nkeep * sizeof(int));
	qsort(sorted, nkeep, sizeof(int), cmp_int);
	fd = 0;
	for (i = 0; i < nkeep; i++) {
		if (sorted[i] > fd)
			syscall(SYS_close_range, fd, sorted[i] - 1, 0);
		fd = sorted[i] + 1;
	}
	syscall(SYS_close_range, fd, ~0u, 0);
	for (i = 0; i < nkeep; i++)
		if (dup3(tmp[i], dst[i], dst[i] >= b->fd_lo ? O_CLOEXEC : 0) == -1)
			child_fail(b, 0, "restore: fd %d", dst[i]);
	syscall(SYS_close_range, scratch, ~0u, 0);
	b->csock = b->fd_lo;

	for (i = 0; i < p->nfd; i++) {
		const struct rf_fd *f = &p->fds[i];
		if (rs->fdplan[i] == RF_FDP_NONE)
			continue;
		if (rs->fdplan[i] == RF_FDP_SUPPLIED) {
			fd = f->fd;
		} else {
			if ((j = shared_with(b, i)) >= 0) {
				fd = fcntl(p->fds[j].fd, F_DUPFD_CLOEXEC, 0);
			} else if (rs->fdplan[i] == RF_FDP_REOPEN) {
				flags = f->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_CLOEXEC);
				fd = open(f->path, flags | O_NOCTTY | O_CLOEXEC);
			} else {
				fd = open("/dev/null", (f->flags & O_ACCMODE) | O_CLOEXEC);
			}
			if (fd == -1)
				child_fail(b, 0, "restore: fd %d %s", f->fd,
				    rs->fdplan[i] == RF_FDP_REOPEN ? f->path : "/dev/null");
			if (fd != f->fd) {
				if (dup3(fd, f->fd, O_CLOEXEC) == -1)
					child_fail(b, 0, "restore: fd %d", f->fd);
				close(fd);
				fd = f->fd;
			}
			if (rs->fdplan[i] == RF_FDP_REOPEN && j < 0 && f->kind == RF_FD_FILE &&
			    lseek(fd, f->pos, SEEK_SET) == -1)
				child_fail(b, 0, "restore: fd %d %s: seek", f->fd, f->path);
		}
		if (fcntl(fd, F_SETFD, f->fdflags ? FD_CLOEXEC : 0) == -1)
			child_fail(b, 0, "restore: fd %d", f->fd);
	}
	/* Supplied fds the image did not have. */
	for (i = 0; i < rs->o.nsupply; i++)
		fcntl(rs->o.supply[i].fd, F_SETFD, rs->o.supply[i].cloexec ? FD_CLOEXEC : 0);
	free(src);
	free(dst);
	free(tmp);
	free(sorted);
}

__attribute__((noreturn)) static void
child_main(struct build *b)
{
	const struct rf_proc *p = b->p;
	struct rst_args *a = b->args;
	sigset_t all;
	char *region = MAP_FAILED;
	uint64_t code_len, stack_top;
	int i;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	close(b->sock);
	if (personality(p->personality) == -1)
		child_fail(b, 0, "restore: personality 0x%lx", p->personality);
	setpriority(PRIO_PROCESS, 0, b->rs->nice);
	a->uffd_fd = -1;
	if (b->rs->lazy_full) {
		/* Before the credentials: handling kernel faults needs privilege. */
		struct uffdio_api api = { .api = UFFD_API, .features = RF_LAZY_UFFD_FEATURES };
		int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

		if (fd == -1 || ioctl(fd, UFFDIO_API, &api) == -1)
			child_fail(b, 0, "restore: post-copy: userfaultfd");
		a->uffd_fd = fd;
	}
	child_creds(b);
	/*
	 * After the credentials, which clear it.  A fork-mode child with its
	 * pid given belongs to the proxy (our parent, or us): it dies with it.
	 */
	if (b->rs->o.fwd && (b->rs->o.sibling || b->rs->o.pid > 0) &&
	    prctl(PR_SET_PDEATHSIG, SIGKILL) == -1)
		child_fail(b, 0, "restore: PR_SET_PDEATHSIG");
	umask(p->umask & 0777);
	if (p->cwd && chdir(p->cwd) == -1)
		child_fail(b, 0, "restore: cwd %s", p->cwd);
	child_fds(b);

	for (i = 0; i < b->ncand && region == MAP_FAILED; i++)
		region = mmap((void *)b->cand[i], b->region_len, PROT_READ | PROT_WRITE | PROT_EXEC,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (region == MAP_FAILED)
		child_fail(b, RF_EX_DATAERR, "image: no room for the restorer between the "
		    "image's mappings and ours");
	code_len = PG_UP(rf_restorer_blob_end - rf_restorer_blob);
	memcpy(region, rf_restorer_blob, rf_restorer_blob_end - rf_restorer_blob);
	a->self = (uint64_t)region;
	a->self_len = b->region_len;
	a->bounce = (uint64_t)region + b->region_len - b->rs->host_vdso_len;
	a->sock = b->fd_lo;
	if (b->rs->o.fwd) {
		a->filter_len = rf_fwd_filter_prog(getpid(),
		    (struct sock_filter *)((char *)a + b->filter_off), RF_FWD_FILTER_MAX);
		a->filter = (uint64_t)region + code_len + b->filter_off;
		a->filter_flags = RF_FWD_FILTER_FLAGS;
		if (a->filter_len == 0)
			child_fail(b, RF_EX_SOFTWARE, "restore: seccomp filter too long");
	}
	memcpy(region + code_len, a, b->args_len);
	stack_top = (uint64_t)region + code_len + PG_UP(b->args_len) + RST_STACK_SIZE;
	__asm__ volatile (
		"mov %0, %%rsp\n\t"
		"jmp *%2\n\t"
		: : "r"(stack_top), "D"(region + code_len), "r"(region) : "memory");
	__builtin_unreachable();
}

/* ---- the parent ---- */

static int
cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return (a > b) - (a < b);
}

/*
 * The blob's last instruction fetch must fault (restore.c's header).  Below
 * a stack that may grow down over it, it would grow the stack instead.
 */
static int
below_stack(const struct rf_proc *p, uint64_t at, uint64_t len)
{
	uint64_t lim = p->rlim_cur[RLIMIT_STACK];
	size_t i;

	for (i = 0; i < p->nvma; i++) {
		const struct rf_vma *v = &p->vmas[i];
		if ((v->flags & RF_VMA_GROWSDOWN) && at + len <= v->start &&
		    (lim == UINT64_MAX || v->start - at <= lim + (1u << 20)))
			return 1;
	}
	return 0;
}

/* Spots for the blob's region free in our layout and in the image's, highest first. */
static int
pick_region(struct build *b, struct rf_err *e)
{
	const struct rf_proc *p = b->p;
	struct rf_restore *rs = b->rs;
	size_t n = 0, m = 0, i;
	uint64_t *r, lo, hi, margin = 1u << 20;

	if ((r = calloc(2 * (rs->nbusy + p->nvma) + 2, sizeof(*r))) == NULL)
		return rf_errno(e, "restore");
	for (i = 0; i < rs->nbusy; i++, n++)
		r[2 * n] = rs->busy[2 * i], r[2 * n + 1] = rs->busy[2 * i + 1];
	for (i = 0; i < p->nvma; i++)
		if (p->vmas[i].kind != RF_VMA_VSYSCALL)
			r[2 * n] = p->vmas[i].start, r[2 * n + 1] = p->vmas[i].end, n++;
	qsort(r, n, 2 * sizeof(*r), cmp_u64);
	for (i = 0; i < n; i++) {	/* merge into a sorted union */
		if (m > 0 && r[2 * i] <= r[2 * (m - 1) + 1]) {
			if (r[2 * i + 1] > r[2 * (m - 1) + 1])
				r[2 * (m - 1) + 1] = r[2 * i + 1];
			continue;
		}
		r[2 * m] = r[2 * i], r[2 * m + 1] = r[2 * i + 1], m++;
	}
	b->ncand = 0;
	for (i = m + 1; i-- > 0 && b->ncand < NCAND;) {
		lo = i > 0 ? r[2 * (i - 1) + 1] : 0x100000;
		hi = i < m ? r[2 * i] : TASK_SIZE;
		if (hi <= lo || hi - lo < b->region_len + 2 * margin)
			continue;
		if (!below_stack(p, hi - margin - b->region_len, b->region_len))
			b->cand[b->ncand++] = hi - margin - b->region_len;
		else if (!below_stack(p, lo + margin, b->region_len))
			b->cand[b->ncand++] = lo + margin;
	}
	free(r);
	if (b->ncand == 0)
		return rf_errf(e, RF_EX_DATAERR, "image: no room for the restorer between the "
		    "image's mappings and ours");
	return 0;
}

static void
fill_args(struct build *b)
{
	const struct rf_proc *p = b->p;
	struct rf_restore *rs = b->rs;
	struct rst_args *a = b->args;
	size_t i, n = 0;
	int sig;

	a->magic = RST_MAGIC;
	a->task_size = TASK_SIZE;
	a->vdso_from = rs->host_vdso;
	a->vdso_to = rs->img_vdso;
	a->vdso_len = rs->host_vdso_len;
	memcpy(a->vdso_part, rs->host_vdso_part, sizeof(a->vdso_part));
	a->fd_lo = b->fd_lo;
	if (__rseq_size > 0) {
		a->rseq_old = (uint64_t)__builtin_thread_pointer() + __rseq_offset;
		a->rseq_old_len[0] = 32;	/* glibc registers 32 bytes... */
		a->rseq_old_len[1] = __rseq_size;	/* ...or its feature size */
		a->rseq_old_sig = RSEQ_SIG;
	}
	a->rseq_ptr = p->rseq_ptr;
	a->rseq_len = p->rseq_len;
	a->rseq_flags = p->rseq_flags;
	a->rseq_sig = p->rseq_sig;
	a->drop_caps = rs->keepcap || rs->dropcaps;
	memcpy(a->rlim, rs->rlim, sizeof(a->rlim));
	a->mm.start_code = p->mm.start_code;
	a->mm.end_code = p->mm.end_code;
	a->mm.start_data = p->mm.start_data;
	a->mm.end_data = p->mm.end_data;
	a->mm.start_brk = p->mm.start_brk;
	a->mm.brk = p->mm.brk;
	a->mm.start_stack = p->mm.start_stack;
	a->mm.arg_start = p->mm.arg_start;
	a->mm.arg_end = p->mm.arg_end;
	a->mm.env_start = p->mm.env_start;
	a->mm.env_end = p->mm.env_end;
	memcpy(a->auxv, p->auxv, p->auxv_len * sizeof(uint64_t));
	a->mm.auxv_size = p->auxv_len * sizeof(uint64_t);
	a->mm.exe_fd = b->want_exe ? (uint32_t)(b->fd_lo + 1) : (uint32_t)-1;
	for (sig = 1; sig <= RST_NSIG; sig++) {
		const struct rf_sigaction *s = &p->sigact[sig - 1];
		a->sigact[sig - 1] = (struct rst_sigaction){ s->handler, s->flags, s->restorer,
		    s->mask };
		/* A fault's SIGSEGV resets an ignored SIGSEGV anyway (force_sig). */
		if (sig == SIGSEGV && s->handler == (uint64_t)SIG_IGN)
			a->sigact[sig - 1].handler = (uint64_t)SIG_DFL;
	}
	if (p->altstack_flags & SS_DISABLE) {
		a->ss_flags = SS_DISABLE;
	} else {
		a->ss_sp = p->altstack_sp;
		a->ss_size = p->altstack_size;
		a->ss_flags = p->altstack_flags & ~SS_ONSTACK;
	}
	a->pending = p->sigpending;
	for (i = 0; i < p->nvma; i++) {
		const struct rf_vma *v = &p->vmas[i];
		struct rst_vma *w = &a->vma[n];
		uint64_t len = v->end - v->start;
		if (v->kind == RF_VMA_VSYSCALL || v->kind == RF_VMA_VDSO ||
		    v->kind == RF_VMA_VVAR || v->kind == RF_VMA_VVAR_VCLOCK)
			continue;
		*w = (struct rst_vma){ .start = v->start, .len = len, .fd = -1, .prot = v->prot };
		if (rs->vmafile[i] >= 0) {
			w->fd = b->fd_lo + 2 + rs->vmafile[i];
			w->pgoff = v->pgoff;
		}
		if (v->flags & RF_VMA_SHARED)
			w->how |= RST_SHARED;
		else if (v->npages)
			w->how |= RST_FILL;
		if (v->flags & RF_VMA_GROWSDOWN)
			w->how |= RST_GROWSDOWN;
		n++;
	}
	a->nvma = n;
}

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

/* Kill and reap the half-built child. */
static void
kill_child(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	while (waitpid(pid, &st, __WALL) == -1 && errno == EINTR)
		;
}

static int
msg_error(const struct rst_msg *m, struct rf_err *e)
{
	static const char *const steps[] = {
		[RST_STEP_NONE] = "restorer", [RST_STEP_BLOCK] = "blocking signals",
		[RST_STEP_RSEQ_OFF] = "unregistering rseq", [RST_STEP_UNMAP] = "munmap",
		[RST_STEP_VDSO] = "moving the vdso", [RST_STEP_MMAP] = "mmap",
		[RST_STEP_WAIT] = "waiting", [RST_STEP_MPROTECT] = "mprotect",
		[RST_STEP_RLIMIT] = "setrlimit", [RST_STEP_MM] = "PR_SET_MM_MAP",
		[RST_STEP_SIGACTION] = "sigaction", [RST_STEP_ALTSTACK] = "sigaltstack",
		[RST_STEP_RSEQ] = "rseq", [RST_STEP_PENDING] = "raising pending signal",
		[RST_STEP_CAPS] = "capset",
	};
	const char *what = m->step < sizeof(steps) / sizeof(*steps) && steps[m->step] ?
	    steps[m->step] : "restorer";
	int code;

	if (m->step == RST_STEP_CHILD) {
		char text[sizeof(m->text) + 1];
		memcpy(text, m->text, sizeof(m->text));
		text[sizeof(m->text)] = '\0';
		return rf_errf(e, m->err > 0 && m->err < 128 ? m->err : RF_EX_SOFTWARE, "%s",
		    text);
	}
	/*
	 * What the blob sets comes from the image: the kernel refusing it is a
	 * bad image, unless it is about privilege or memory for mappings.
	 */
	code = rf_errno_code(m->err);
	if (code != RF_EX_NOPERM && (m->err == EINVAL || m->step > RST_STEP_WAIT))
		code = RF_EX_DATAERR;
	if (m->step == RST_STEP_MMAP || m->step == RST_STEP_MPROTECT)
		return rf_errf(e, code, "restore: %s of mapping 0x%" PRIx64 ": %s", what, m->addr,
		    strerror(m->err));
	if (m->step == RST_STEP_SIGACTION || m->step == RST_STEP_PENDING ||
	    m->step == RST_STEP_RLIMIT)
		return rf_errf(e, code, "restore: %s %u: %s", what, m->index, strerror(m->err));
	return rf_errf(e, code, "restore: %s: %s", what, strerror(m->err));
}

/*
 * The next message from the child.  While waiting, a stop of the child
 * (someone sent it SIGSTOP) is let go and remembered in *stopreq.
 */
static int
get_msg(struct build *b, pid_t pid, struct rst_msg *m, int *stopreq, struct rf_err *e)
{
	struct pollfd pfd = { b->sock, POLLIN, 0 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } cm;
	struct iovec iov = { m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
	    .msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *c;
	ssize_t n;
	int st, r, spin = 1;
	uint64_t t0 = mono_us();

	for (;;) {
		r = poll(&pfd, 1, spin ? 0 : 200);
		if (r == 0 && spin) {
			spin = mono_us() - t0 < SPIN_US;
			sched_yield();
			continue;
		}
		if (r == -1 && errno != EINTR)
			return rf_errno(e, "restore: poll");
		if (r > 0)
			break;
		r = waitpid(pid, &st, WNOHANG | __WALL);
		if (r == pid && WIFSTOPPED(st)) {
			*stopreq = 1;
			ptrace(PTRACE_CONT, pid, 0, 0);
		} else if (r == pid) {
			return rf_errf(e, RF_EX_SOFTWARE, "restore: the new process died (status "
			    "0x%x) before it was ready", st);
		}
	}
	n = recvmsg(b->sock, &mh, MSG_CMSG_CLOEXEC);
	if (n == -1)
		return rf_errno(e, "restore: from the new process");
	if ((c = CMSG_FIRSTHDR(&mh)) != NULL && c->cmsg_level == SOL_SOCKET &&
	    c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int))) {
		if (b->uffd != -1)
			close(b->uffd);
		memcpy(&b->uffd, CMSG_DATA(c), sizeof(int));
	}
	if (n != sizeof(*m))
		return rf_errf(e, RF_EX_SOFTWARE, "restore: the new process died before it was "
		    "ready");
	if (m->type == RST_FAIL)
		return msg_error(m, e);
	return 0;
}


/* At the SIGSEGV stop of the blob's last fetch: the image's CPU state, and let go. */
static int
finish(struct build *b, pid_t pid, uint64_t self, uint64_t self_len, int stopreq,
    struct rf_err *e)
{
	const struct rf_proc *p = b->p;
	struct user_regs_struct regs = p->regs;
	struct iovec iov = { p->xstate, p->xstate_len };
	siginfo_t si;
	uint64_t mask = p->sigblocked;
	int st, r, sig = 0, spin = 1;
	uint64_t t0 = mono_us();
	struct rst_msg m;

	for (;;) {
		r = waitpid(pid, &st, __WALL | (spin ? WNOHANG : 0));
		if (r == 0 && spin) {
			spin = mono_us() - t0 < SPIN_US;
			sched_yield();
			continue;
		}
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return rf_errno(e, "restore: waitpid");
		}
		if (!WIFSTOPPED(st)) {
			if (recv(b->sock, &m, sizeof(m), MSG_DONTWAIT) == sizeof(m) &&
			    m.type == RST_FAIL)
				return msg_error(&m, e);
			/* The blob's filter step can only tell by its exit status. */
			if (b->rs->o.fwd && WIFEXITED(st) && WEXITSTATUS(st) != 127)
				return rf_errf(e, rf_errno_code(WEXITSTATUS(st)), "restore: "
				    "installing the seccomp filter or dropping capabilities: %s",
				    strerror(WEXITSTATUS(st)));
			return rf_errf(e, RF_EX_SOFTWARE, "restore: the new process died (status "
			    "0x%x) while finishing", st);
		}
		if (WSTOPSIG(st) == SIGSEGV && (st >> 16) == 0)
			break;
		stopreq = 1;	/* SIGSTOP from someone else: honoured at the end */
		if (ptrace(PTRACE_CONT, pid, 0, 0) == -1)
			return rf_errno(e, "restore: PTRACE_CONT");
	}
	if (ptrace(PTRACE_GETSIGINFO, pid, 0, &si) == -1)
		return rf_errno(e, "restore: PTRACE_GETSIGINFO");
	if (si.si_code != SEGV_MAPERR || (uint64_t)si.si_addr < self ||
	    (uint64_t)si.si_addr >= self + self_len)
		return rf_errf(e, RF_EX_SOFTWARE, "restore: the restorer crashed (signal %d code "
		    "%d at %p; region 0x%" PRIx64 "+0x%" PRIx64 ")", si.si_signo, si.si_code,
		    si.si_addr, self, self_len);
	if (recv(b->sock, &m, sizeof(m), MSG_DONTWAIT) == sizeof(m) && m.type == RST_DONE)
		b->rs->exe_set = m.exe_set;
	/*
	 * A sleep interrupted by the dump would resume through restart_syscall,
	 * whose state did not travel: run the original call again instead.
	 */
	if ((long long)regs.orig_rax >= 0 && (long long)regs.rax == -ERESTART_RESTARTBLOCK)
		regs.rax = -ERESTARTNOINTR;
	/* The kernel checks what the image says: EIO, EINVAL are bad values. */
	if (ptrace(PTRACE_SETREGS, pid, 0, &regs) == -1)
		return errno == EIO || errno == EINVAL ? rf_errf(e, RF_EX_DATAERR, "image: "
		    "registers: refused by the kernel (%s)", strerror(errno)) :
		    rf_errno(e, "restore: PTRACE_SETREGS");
	if (p->xstate_len && ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, &iov) == -1)
		return errno == EIO || errno == EINVAL || errno == EFAULT ? rf_errf(e,
		    RF_EX_DATAERR, "image: CPU state: refused by the kernel (%s)",
		    strerror(errno)) : rf_errno(e, "restore: PTRACE_SETREGSET xstate");
	if (ptrace(PTRACE_SETSIGMASK, pid, sizeof(mask), &mask) == -1)
		return rf_errno(e, "restore: PTRACE_SETSIGMASK");
	if (b->rs->o.leave_stopped || b->rs->o.fwd || stopreq)
		sig = SIGSTOP;
	else if (p->sigpending & (1ull << (SIGSEGV - 1)))
		sig = SIGSEGV;
	b->rs->detach_sig = sig;
	return 0;
}

/* fork(), or clone3 for a given pid or for a child of our parent. */
static pid_t
spawn(const struct rf_restore_opts *o)
{
	struct clone_args a;
	pid_t tid = o->pid;

	if (o->pid <= 0 && !o->sibling)
		return fork();
	memset(&a, 0, sizeof(a));
	a.flags = o->sibling ? CLONE_PARENT : 0;
	/* With CLONE_PARENT the kernel takes ours and wants 0 here. */
	a.exit_signal = o->sibling ? 0 : SIGCHLD;
	if (tid > 0) {
		a.set_tid = (uintptr_t)&tid;
		a.set_tid_size = 1;
	}
	return syscall(SYS_clone3, &a, sizeof(a));
}

/*
 * Post-copy: only the mappings with pages still to come stay registered,
 * so that a fault elsewhere is an ordinary one.
 */
static int
lazy_keep(struct build *b, const struct rf_imgr *r, struct rf_err *e)
{
	const struct rf_proc *p = b->p;
	struct uffdio_range rg;
	size_t i, k = 0;

	for (i = 0; i < p->nvma; i++) {
		const struct rf_vma *v = &p->vmas[i];
		if ((v->flags & RF_VMA_SHARED) || v->npages == 0 || b->rs->vmafile[i] != -1)
			continue;	/* never registered */
		while (k < r->nlazy && r->lazy[k].addr + r->lazy[k].len <= v->start)
			k++;
		if (k < r->nlazy && r->lazy[k].addr < v->end)
			continue;
		rg.start = v->start;
		rg.len = v->end - v->start;
		if (ioctl(b->uffd, UFFDIO_UNREGISTER, &rg) == -1)
			return rf_errno(e, "restore: UFFDIO_UNREGISTER 0x%" PRIx64, v->start);
	}
	return 0;
}

/* A post-copy image where no userfaultfd can take it: say why. */
static void
lazy_refused(struct rf_restore *rs, struct rf_err *e)
{
	if (rs->o.lazy && !rs->lazy_full && strstr(e->msg, "page source") != NULL)
		rf_errf(e, RF_EX_UNAVAILABLE, "restore: a post-copy image, and no userfaultfd "
		    "that takes kernel faults here (it needs CAP_SYS_PTRACE or "
		    "vm.unprivileged_userfaultfd=1)");
}

int
rf_restore_build(struct rf_restore *rs, struct rf_imgr *r, struct rf_err *e)
{
	struct build b = { .rs = rs, .p = rs->p, .sock = -1, .csock = -1, .uffd = -1 };
	const struct rf_proc *p = rs->p;
	struct rf_pager *pg = NULL;
	struct rst_msg m;
	int sv[2], stopreq = 0, ret = -1;
	size_t i;
	pid_t pid;

	b.fd_lo = 3;
	for (i = 0; i < p->nfd; i++)
		if (p->fds[i].fd >= b.fd_lo)
			b.fd_lo = p->fds[i].fd + 1;
	for (i = 0; i < rs->o.nsupply; i++)
		if (rs->o.supply[i].fd >= b.fd_lo)
			b.fd_lo = rs->o.supply[i].fd + 1;
	b.want_exe = rs->want_exe;
	rs->uffd = -1;
	rs->lazy_full = 0;
	if (rs->o.lazy) {
		/* Can the child have a userfaultfd for kernel faults too, told of
		   unmaps, remaps and removes?  We are what it is until its
		   credentials change. */
		struct uffdio_api api = { .api = UFFD_API, .features = RF_LAZY_UFFD_FEATURES };
		int fd = syscall(SYS_userfaultfd, O_CLOEXEC);

		if (fd >= 0) {
			rs->lazy_full = ioctl(fd, UFFDIO_API, &api) == 0;
			close(fd);
		}
	}
	r->lazy_ok = rs->lazy_full;
	b.args_len = sizeof(struct rst_args) + p->nvma * sizeof(struct rst_vma);
	if (rs->o.fwd) {
		b.filter_off = b.args_len;
		b.args_len += RF_FWD_FILTER_MAX * sizeof(struct sock_filter);
		/* The lowest number free once the blob has closed its own. */
		for (rs->listener = 0;; rs->listener++) {
			for (i = 0; i < rs->o.nsupply; i++)
				if (rs->o.supply[i].fd == rs->listener)
					break;
			if (i == rs->o.nsupply)
				break;
		}
	}
	if ((b.args = calloc(1, b.args_len)) == NULL)
		return rf_errno(e, "restore");
	b.region_len = PG_UP(rf_restorer_blob_end - rf_restorer_blob) + PG_UP(b.args_len) +
	    RST_STACK_SIZE + rs->host_vdso_len;
	fill_args(&b);
	if (pick_region(&b, e) == -1)
		goto out;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		rf_errno(e, "restore: socketpair");
		goto out;
	}
	b.sock = sv[0];
	b.csock = sv[1];
	if ((pid = spawn(&rs->o)) == -1) {
		rf_errno(e, rs->o.pid > 0 ? "restore: clone3 pid %d" : "restore: fork",
		    (int)rs->o.pid);
		goto out;
	}
	if (pid == 0)
		child_main(&b);
	close(b.csock);
	b.csock = -1;
	if (ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_EXITKILL) == -1) {
		rf_errno(e, "restore: PTRACE_SEIZE");
		kill_child(pid);
		goto out;
	}
	/* The first records are read while the child builds its layout. */
	if (rf_pager_start(&pg, pid, r, p, rs->vmafile, e) == -1) {
		lazy_refused(rs, e);
		kill_child(pid);
		goto out;
	}
	if (get_msg(&b, pid, &m, &stopreq, e) == -1 || m.type != RST_READY) {
		if (m.type != RST_READY && m.type != RST_FAIL)
			rf_errf(e, RF_EX_SOFTWARE, "restore: unexpected message %u", m.type);
		kill_child(pid);
		goto out;
	}
	if (rf_pager_run(pg, b.uffd, e) == -1) {
		lazy_refused(rs, e);
		kill_child(pid);
		goto out;
	}
	if (r->nlazy > 0 && (b.uffd == -1 || lazy_keep(&b, r, e) == -1)) {
		if (b.uffd == -1)
			rf_errf(e, RF_EX_SOFTWARE, "restore: post-copy without a userfaultfd");
		kill_child(pid);
		goto out;
	}
	if (r->nlazy > 0) {
		rs->uffd = b.uffd;	/* the page source's from now on */
		b.uffd = -1;
	}
	if (b.uffd != -1) {
		close(b.uffd);	/* the blob closes its copy: the registrations go */
		b.uffd = -1;
	}
	{
		struct rst_msg go = { .type = RST_GO };
		if (send(b.sock, &go, sizeof(go), MSG_NOSIGNAL) != sizeof(go)) {
			rf_errno(e, "restore: to the new process");
			kill_child(pid);
			goto out;
		}
	}
	/* The child finishes on its own: rf_restore_finish waits for it. */
	rs->pid = pid;
	rs->sock = b.sock;
	b.sock = -1;
	rs->region = m.addr;
	rs->region_len = m.len;
	rs->stopreq = stopreq;
	ret = 0;
out:
	rf_pager_free(pg);
	if (b.uffd != -1)
		close(b.uffd);
	if (b.sock != -1)
		close(b.sock);
	if (b.csock != -1)
		close(b.csock);
	free(b.args);
	return ret;
}

int
rf_restore_finish(struct rf_restore *rs, struct rf_err *e)
{
	struct build b = { .rs = rs, .p = rs->p, .sock = rs->sock, .csock = -1, .uffd = -1 };
	int r;

	r = finish(&b, rs->pid, rs->region, rs->region_len, rs->stopreq, e);
	close(rs->sock);
	rs->sock = -1;
	if (r == -1) {
		kill_child(rs->pid);
		rs->pid = -1;
	}
	return r;
}

int
rf_restore_run(struct rf_restore *rs, struct rf_imgr *r, struct rf_err *e)
{
	if (rf_restore_build(rs, r, e) == -1)
		return -1;
	return rf_restore_finish(rs, e);
}

int
rf_restore_release(struct rf_restore *rs, struct rf_err *e)
{
	if (ptrace(PTRACE_DETACH, rs->pid, 0, rs->detach_sig) == -1) {
		rf_errno(e, "restore: PTRACE_DETACH");
		rf_restore_abort(rs);
		return -1;
	}
	return 0;
}

void
rf_restore_abort(struct rf_restore *rs)
{
	if (rs->pid > 0)
		kill_child(rs->pid);
	rs->pid = -1;
	if (rs->sock >= 0)
		close(rs->sock);
	rs->sock = -1;
}

int
rf_restore_drain(struct rf_imgr *r, struct rf_err *e)
{
	uint64_t addr;
	size_t len;
	char *buf;
	int got;

	if ((buf = malloc(RF_PAGES_MAX)) == NULL)
		return rf_errno(e, "restore");
	while ((got = rf_imgr_pages(r, &addr, buf, RF_PAGES_MAX, &len, e)) == 1)
		;
	free(buf);
	return got;
}
