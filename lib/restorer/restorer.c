/*
 * restorer.c - the code that runs inside the process being rebuilt, after
 * the old address space is gone.  No libc: raw system calls only, no global
 * data, position independent (restorer.h describes the contract).
 *
 * Order matters: rseq off before its area is unmapped; the vdso block moved
 * before the image's mappings, which may lie where it was; the mappings
 * writable until rf-restore has written the pages; PR_SET_MM_MAP after the
 * rlimits (it checks RLIMIT_DATA against the new brk); the image's signal
 * handlers only once nothing of ours can be interrupted by them.
 */
#include "restorer.h"
#include <linux/ioctl.h>
#include <linux/userfaultfd.h>
#include "sys.h"

__asm__(
	".section .text.entry,\"ax\",@progbits\n"
	".globl rst_entry\n"
	".type rst_entry,@function\n"
	"rst_entry:\n"
	"	and $-16, %rsp\n"
	"	call rst_main\n"
	"	ud2\n"
	".previous\n");

/* The compiler may emit calls to these for struct copies and clears. */
void *
memset(void *d, int c, unsigned long n)
{
	void *ret = d;

	__asm__ volatile ("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return ret;
}

void *
memcpy(void *d, const void *s, unsigned long n)
{
	void *ret = d;

	__asm__ volatile ("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return ret;
}

static void
send_msg(struct rst_args *a, uint32_t type, uint32_t step, long err, uint32_t index,
    uint64_t addr, uint64_t len, uint32_t exe_set)
{
	struct rst_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.step = step;
	m.err = (int32_t)-err;
	m.index = index;
	m.addr = addr;
	m.len = len;
	m.exe_set = exe_set;
	sys3(__NR_write, a->sock, &m, sizeof(m));
}

__attribute__((noreturn)) static void
fail(struct rst_args *a, uint32_t step, long err, uint32_t index, uint64_t addr)
{
	send_msg(a, RST_FAIL, step, err, index, addr, 0, 0);
	for (;;)
		sys1(__NR_exit_group, 127);
}

static int
overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static void
unmap_old(struct rst_args *a)
{
	uint64_t keep[2][2] = { { a->self, a->self_len }, { a->vdso_from, a->vdso_len } };
	uint64_t t[2], at = 0;
	long r;
	int i, n = a->vdso_len ? 2 : 1;

	if (n == 2 && keep[1][0] < keep[0][0]) {
		t[0] = keep[0][0], t[1] = keep[0][1];
		keep[0][0] = keep[1][0], keep[0][1] = keep[1][1];
		keep[1][0] = t[0], keep[1][1] = t[1];
	}
	for (i = 0; i <= n; i++) {
		uint64_t end = i < n ? keep[i][0] : a->task_size;
		if (end > at && (r = sys2(__NR_munmap, at, end - at)) < 0)
			fail(a, RST_STEP_UNMAP, r, i, at);
		if (i < n)
			at = keep[i][0] + keep[i][1];
	}
}

/* Move [vvar][vvar_vclock][vdso] as one block: the vDSO finds vvar at a fixed offset. */
static void
move_vdso(struct rst_args *a)
{
	uint64_t from = a->vdso_from, off;
	long r;
	int i, pass;

	if (a->vdso_len == 0 || from == a->vdso_to)
		return;
	if (a->vdso_to == 0) {
		if ((r = sys2(__NR_munmap, from, a->vdso_len)) < 0)
			fail(a, RST_STEP_VDSO, r, 0, from);
		return;
	}
	for (pass = 0; pass < 2; pass++) {
		uint64_t to = a->vdso_to;
		if (pass == 0) {
			if (!overlaps(from, a->vdso_len, to, a->vdso_len))
				continue;
			to = a->bounce;
		}
		for (i = 0, off = 0; i < RST_NVDSO; off += a->vdso_part[i], i++) {
			if (a->vdso_part[i] == 0)
				continue;
			r = sys5(__NR_mremap, from + off, a->vdso_part[i], a->vdso_part[i],
			    R_MREMAP_MAYMOVE | R_MREMAP_FIXED, to + off);
			if (r < 0)
				fail(a, RST_STEP_VDSO, r, i, from + off);
		}
		from = to;
	}
}

static void
map_vmas(struct rst_args *a)
{
	uint64_t i;
	long r;

	for (i = 0; i < a->nvma; i++) {
		const struct rst_vma *v = &a->vma[i];
		uint32_t prot = v->prot | (v->how & RST_FILL ? R_PROT_WRITE : 0);
		long flags = R_MAP_FIXED | (v->how & RST_SHARED ? R_MAP_SHARED : R_MAP_PRIVATE);

		if (v->fd < 0)
			flags |= R_MAP_ANONYMOUS;
		if (v->how & RST_GROWSDOWN)
			flags |= R_MAP_GROWSDOWN;
		r = sys6(__NR_mmap, v->start, v->len, prot, flags, v->fd, v->pgoff);
		if (r < 0 || (uint64_t)r != v->start)
			fail(a, RST_STEP_MMAP, r < 0 ? r : -R_EINVAL, i, v->start);
	}
}

/*
 * Anonymous mappings to be filled are registered with a userfaultfd that
 * rf-restore gets with RST_READY: UFFDIO_COPY puts each page in place
 * without first zeroing a fresh one, about twice as fast as faulting it
 * in through process_vm_writev.  Without it, rf-restore falls back to that.
 */
static long
make_uffd(struct rst_args *a)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	uint64_t i;
	long fd;

	if (a->uffd_fd >= 0)
		fd = a->uffd_fd;	/* post-copy: ready, and it must be this one */
	else {
		fd = sys1(__NR_userfaultfd, R_O_CLOEXEC | R_O_NONBLOCK | UFFD_USER_MODE_ONLY);
		if (fd < 0)
			return -1;
		if (sys3(__NR_ioctl, fd, UFFDIO_API, &api) < 0)
			goto fail;
	}
	for (i = 0; i < a->nvma; i++) {
		const struct rst_vma *v = &a->vma[i];
		if (!(v->how & RST_FILL) || v->fd >= 0)
			continue;
		memset(&reg, 0, sizeof(reg));
		reg.range.start = v->start;
		reg.range.len = v->len;
		reg.mode = UFFDIO_REGISTER_MODE_MISSING;
		if (sys3(__NR_ioctl, fd, UFFDIO_REGISTER, &reg) < 0)
			goto fail;
	}
	return fd;
fail:
	sys1(__NR_close, fd);
	return -1;
}

/* RST_READY, with the userfaultfd attached if there is one. */
static void
send_ready(struct rst_args *a, long uffd)
{
	struct rst_msg m;
	struct { uint64_t base; uint64_t len; } iov;
	struct {
		uint64_t name; uint32_t namelen; uint32_t pad0;
		uint64_t iov; uint64_t iovlen;
		uint64_t control; uint64_t controllen;
		int32_t flags; int32_t pad1;
	} mh;
	struct { uint64_t len; int32_t level, type; int32_t fd; int32_t pad; } cm;

	memset(&m, 0, sizeof(m));
	m.type = RST_READY;
	m.addr = a->self;
	m.len = a->self_len;
	m.uffd = uffd >= 0;
	iov.base = (uint64_t)&m;
	iov.len = sizeof(m);
	memset(&mh, 0, sizeof(mh));
	mh.iov = (uint64_t)&iov;
	mh.iovlen = 1;
	if (uffd >= 0) {
		cm.len = 20;		/* CMSG_LEN(sizeof(int)) */
		cm.level = 1;		/* SOL_SOCKET */
		cm.type = 1;		/* SCM_RIGHTS */
		cm.fd = uffd;
		cm.pad = 0;
		mh.control = (uint64_t)&cm;
		mh.controllen = sizeof(cm);
	}
	sys3(__NR_sendmsg, a->sock, &mh, 0);
}

static void
wait_go(struct rst_args *a)
{
	struct rst_msg m;
	unsigned long got = 0;
	long r;

	while (got < sizeof(m)) {
		r = sys3(__NR_read, a->sock, (char *)&m + got, sizeof(m) - got);
		if (r == -R_EINTR)
			continue;
		if (r <= 0)
			fail(a, RST_STEP_WAIT, r < 0 ? r : -R_EPERM, 0, 0);
		got += r;
	}
	if (m.type != RST_GO)
		fail(a, RST_STEP_WAIT, -R_EINVAL, m.type, 0);
}

static long
drop_caps(void)
{
	struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 };
	uint32_t data[6] = { 0 };

	return sys2(__NR_capset, &hdr, data);
}

static void
finish_mm(struct rst_args *a, uint32_t *exe_set)
{
	uint64_t i;
	long r;

	for (i = 0; i < a->nvma; i++) {
		const struct rst_vma *v = &a->vma[i];
		if (!(v->how & RST_FILL) || (v->prot & R_PROT_WRITE))
			continue;
		if ((r = sys3(__NR_mprotect, v->start, v->len, v->prot)) < 0)
			fail(a, RST_STEP_MPROTECT, r, i, v->start);
	}
	for (i = 0; i < RST_NRLIMIT; i++)
		if ((r = sys4(__NR_prlimit64, 0, i, a->rlim[i], 0)) < 0)
			fail(a, RST_STEP_RLIMIT, r, i, 0);
	a->mm.auxv = (uint64_t)a->auxv;
	*exe_set = a->mm.exe_fd != (uint32_t)-1;
	r = sys5(__NR_prctl, R_PR_SET_MM, R_PR_SET_MM_MAP, &a->mm, sizeof(a->mm), 0);
	if (r < 0 && *exe_set) {
		/* Not allowed to change /proc/PID/exe: keep everything else. */
		a->mm.exe_fd = (uint32_t)-1;
		*exe_set = 0;
		r = sys5(__NR_prctl, R_PR_SET_MM, R_PR_SET_MM_MAP, &a->mm, sizeof(a->mm), 0);
	}
	if (r < 0)
		fail(a, RST_STEP_MM, r, 0, 0);
	if (a->drop_caps && !a->filter_len && (r = drop_caps()) < 0)
		fail(a, RST_STEP_CAPS, r, 0, 0);
}

static void
finish_signals(struct rst_args *a)
{
	struct { uint64_t sp; int32_t flags; int32_t pad; uint64_t size; } ss;
	long r, pid;
	int sig;

	for (sig = 1; sig <= RST_NSIG; sig++) {
		if (sig == R_SIGKILL || sig == R_SIGSTOP)
			continue;
		r = sys4(__NR_rt_sigaction, sig, &a->sigact[sig - 1], 0, 8);
		if (r < 0)
			fail(a, RST_STEP_SIGACTION, r, sig, 0);
	}
	ss.sp = a->ss_sp;
	ss.flags = a->ss_flags;
	ss.pad = 0;
	ss.size = a->ss_size;
	if ((r = sys2(__NR_sigaltstack, &ss, 0)) < 0)
		fail(a, RST_STEP_ALTSTACK, r, 0, ss.sp);
	if (a->rseq_ptr && (r = sys4(__NR_rseq, a->rseq_ptr, a->rseq_len, a->rseq_flags,
	    a->rseq_sig)) < 0)
		fail(a, RST_STEP_RSEQ, r, 0, a->rseq_ptr);
	/* Every signal is blocked here: they stay pending for the image's mask. */
	pid = sys0(__NR_getpid);
	for (sig = 1; sig <= RST_NSIG; sig++)
		if ((a->pending >> (sig - 1) & 1) && sig != R_SIGKILL && sig != R_SIGSTOP &&
		    sig != R_SIGSEGV && (r = sys2(__NR_kill, pid, sig)) < 0)
			fail(a, RST_STEP_PENDING, r, sig, 0);
}

/*
 * Last but the munmap: from here on most calls would wait for the proxy.
 * Capabilities kept for it (CAP_SYS_ADMIN: no no_new_privs) go right after.
 */
static void
install_filter(struct rst_args *a)
{
	struct { uint16_t len; uint16_t pad[3]; uint64_t filter; } prog;
	long r;

	prog.len = (uint16_t)a->filter_len;
	prog.pad[0] = prog.pad[1] = prog.pad[2] = 0;
	prog.filter = a->filter;
	r = sys3(__NR_seccomp, R_SECCOMP_SET_MODE_FILTER, a->filter_flags, &prog);
	/* Without CAP_SYS_ADMIN the kernel wants no_new_privs. */
	if (r == -R_EACCES && sys5(__NR_prctl, R_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
		r = sys3(__NR_seccomp, R_SECCOMP_SET_MODE_FILTER, a->filter_flags, &prog);
	if (r >= 0 && a->drop_caps)
		r = drop_caps();
	if (r < 0)
		for (;;)
			sys1(__NR_exit_group, -r);
}

__attribute__((used, noreturn)) void
rst_main(struct rst_args *a)
{
	uint64_t all = ~0ull, segv_only;
	uint32_t exe_set = 0;
	long r = 0, uffd;
	int i;

	if (a->magic != RST_MAGIC)
		fail(a, RST_STEP_NONE, -R_EINVAL, 0, 0);
	if ((r = sys4(__NR_rt_sigprocmask, R_SIG_SETMASK, &all, 0, 8)) < 0)
		fail(a, RST_STEP_BLOCK, r, 0, 0);
	if (a->rseq_old) {
		for (i = 0; i < 2; i++) {
			r = sys4(__NR_rseq, a->rseq_old, a->rseq_old_len[i], R_RSEQ_FLAG_UNREGISTER,
			    a->rseq_old_sig);
			if (r != -R_EINVAL)
				break;
		}
		if (r < 0)
			fail(a, RST_STEP_RSEQ_OFF, r, 0, a->rseq_old);
	}
	unmap_old(a);
	move_vdso(a);
	map_vmas(a);
	uffd = make_uffd(a);
	send_ready(a, uffd);
	wait_go(a);
	if (uffd >= 0)
		sys1(__NR_close, uffd);

	finish_mm(a, &exe_set);
	finish_signals(a);
	send_msg(a, RST_DONE, RST_STEP_NONE, 0, 0, 0, 0, exe_set);
	if ((r = sys3(__NR_close_range, a->fd_lo, ~0u, 0)) < 0)
		fail(a, RST_STEP_NONE, r, 0, 0);
	if (a->filter_len)
		install_filter(a);

	/*
	 * Last: unmap this region.  The instruction fetch after the syscall
	 * faults; rf-restore sees that SIGSEGV as a ptrace stop before it is
	 * delivered, loads the image's registers and discards it.  SIGSEGV
	 * must be unblocked for that, or the kernel would reset its handler.
	 */
	segv_only = ~(1ull << (R_SIGSEGV - 1));
	sys4(__NR_rt_sigprocmask, R_SIG_SETMASK, &segv_only, 0, 8);
	__asm__ volatile (
		"syscall\n\t"
		"ud2\n\t"
		: : "a"((long)__NR_munmap), "D"(a->self), "S"(a->self_len)
		: "rcx", "r11", "memory");
	__builtin_unreachable();
}
