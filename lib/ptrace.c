/* ptrace.c - seize a stopped task, read its CPU state, run syscalls in it. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "rf_ptrace.h"
#include "rf_snap.h"

#define SYSCALL_STOP (SIGTRAP | 0x80)	/* with PTRACE_O_TRACESYSGOOD */

/* Wait for the next stop; a tracee that died is ESRCH. */
static int
wait_stop(struct rf_pt *t, int *st)
{
	pid_t r;

	do
		r = waitpid(t->pid, st, __WALL);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		return -1;
	if (!WIFSTOPPED(*st)) {
		t->attached = 0;
		errno = ESRCH;
		return -1;
	}
	return 0;
}

static int
is_event_stop(int st)
{
	return (unsigned)st >> 16 == PTRACE_EVENT_STOP;
}

int
rf_ptrace_seize(struct rf_pt *t, pid_t pid, int suspend_seccomp)
{
	long opts = PTRACE_O_TRACESYSGOOD;
	int st, saved;
	pid_t r;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	if (suspend_seccomp)
		opts |= PTRACE_O_SUSPEND_SECCOMP;
	if (ptrace(PTRACE_SEIZE, pid, 0, opts) == -1)
		return -1;
	t->attached = 1;
	/*
	 * A seized task that is in group stop traps by itself, and the seize
	 * returns once it has: take that stop.  Only a task continued
	 * meanwhile needs the interrupt (sent anyway, it would leave a second
	 * trap pending: one more stop on the way to the first injected
	 * syscall).  Such a trap is skipped in rf_ptrace_syscall.
	 */
	do
		r = waitpid(pid, &st, __WALL | WNOHANG);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		goto fail;
	if (r == 0 && (ptrace(PTRACE_INTERRUPT, pid, 0, 0) == -1 ||
	    wait_stop(t, &st) == -1))
		goto fail;
	if (r != 0 && !WIFSTOPPED(st)) {
		t->attached = 0;
		errno = ESRCH;
		goto fail;
	}
	if (is_event_stop(st)) {
		if (WSTOPSIG(st) != SIGTRAP)
			t->stopsig = WSTOPSIG(st);
	} else {
		/* a signal on its way to a running task: hand it on at detach */
		t->pending_sig = WSTOPSIG(st);
	}
	return 0;
fail:
	saved = errno;
	if (t->attached)
		ptrace(PTRACE_DETACH, pid, 0, 0);
	t->attached = 0;
	errno = saved;
	return -1;
}

int
rf_ptrace_getregs(struct rf_pt *t, struct user_regs_struct *r)
{
	return ptrace(PTRACE_GETREGS, t->pid, 0, r) == -1 ? -1 : 0;
}

int
rf_ptrace_xstate(struct rf_pt *t, void *buf, size_t cap, size_t *len)
{
	struct iovec iov = { buf, cap };

	if (ptrace(PTRACE_GETREGSET, t->pid, NT_X86_XSTATE, &iov) == -1)
		return -1;
	*len = iov.iov_len;
	return 0;
}

int
rf_ptrace_sigmask(struct rf_pt *t, uint64_t *mask)
{
	return ptrace(PTRACE_GETSIGMASK, t->pid, sizeof(*mask), mask) == -1 ?
	    -1 : 0;
}

int
rf_ptrace_rseq(struct rf_pt *t, struct rf_ptrace_rseq *c)
{
	memset(c, 0, sizeof(*c));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->pid, sizeof(*c), c) == -1) {
		/* kernels without rseq (or without this request): none */
		if (errno == EIO || errno == EINVAL) {
			memset(c, 0, sizeof(*c));
			return 0;
		}
		return -1;
	}
	return 0;
}

int
rf_ptrace_inject_begin(struct rf_pt *t)
{
	sigset_t ours;
	uint64_t all = ~(uint64_t)0;
	int saved;

	if (t->syscall_ip == 0) {
		errno = EINVAL;
		return -1;
	}
	sigemptyset(&ours);
	sigaddset(&ours, SIGINT);
	sigaddset(&ours, SIGTERM);
	sigaddset(&ours, SIGHUP);
	sigaddset(&ours, SIGQUIT);
	if (sigprocmask(SIG_BLOCK, &ours, &t->saved_ourmask) == -1)
		return -1;
	if (rf_ptrace_getregs(t, &t->saved_regs) == -1 ||
	    rf_ptrace_sigmask(t, &t->saved_sigmask) == -1)
		goto fail;
	if (ptrace(PTRACE_SETSIGMASK, t->pid, sizeof(all), &all) == -1)
		goto fail;
	t->injecting = 1;
	return 0;
fail:
	saved = errno;
	sigprocmask(SIG_SETMASK, &t->saved_ourmask, NULL);
	errno = saved;
	return -1;
}

int
rf_ptrace_syscall(struct rf_pt *t, long *ret, long nr, uint64_t a1,
    uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6)
{
	struct user_regs_struct r = t->saved_regs;
	int st, stops = 0;

	if (!t->injecting) {
		errno = EINVAL;
		return -1;
	}
	/* orig_rax = -1: no syscall restart on the way back to user mode */
	r.rip = t->syscall_ip;
	r.orig_rax = (uint64_t)-1;
	r.rax = nr;
	r.rdi = a1;
	r.rsi = a2;
	r.rdx = a3;
	r.r10 = a4;
	r.r8 = a5;
	r.r9 = a6;
	if (ptrace(PTRACE_SETREGS, t->pid, 0, &r) == -1)
		return -1;
	while (stops < 2) {	/* syscall entry, then exit */
		if (ptrace(PTRACE_SYSCALL, t->pid, 0, 0) == -1 ||
		    wait_stop(t, &st) == -1)
			return -1;
		if (WSTOPSIG(st) == SYSCALL_STOP)
			stops++;
		else if (!is_event_stop(st)) {
			/* only a fault could get past the blocked mask */
			t->pending_sig = WSTOPSIG(st);
			ptrace(PTRACE_SETREGS, t->pid, 0, &t->saved_regs);
			errno = EFAULT;
			return -1;
		}
		/* group-stop and interrupt traps: just go on */
	}
	if (ptrace(PTRACE_GETREGS, t->pid, 0, &r) == -1)
		return -1;
	*ret = (long)r.rax;
	return ptrace(PTRACE_SETREGS, t->pid, 0, &t->saved_regs) == -1 ? -1 : 0;
}

int
rf_ptrace_inject_end(struct rf_pt *t)
{
	int ret = 0, saved = 0;

	if (!t->injecting)
		return 0;
	if (ptrace(PTRACE_SETREGS, t->pid, 0, &t->saved_regs) == -1) {
		saved = errno;
		ret = -1;
	}
	if (ptrace(PTRACE_SETSIGMASK, t->pid, sizeof(t->saved_sigmask),
	    &t->saved_sigmask) == -1 && ret == 0) {
		saved = errno;
		ret = -1;
	}
	t->injecting = 0;
	sigprocmask(SIG_SETMASK, &t->saved_ourmask, NULL);
	errno = saved;
	return ret;
}

int
rf_ptrace_detach(struct rf_pt *t)
{
	int ret = 0, saved = 0;

	if (!t->attached)
		return 0;
	if (t->injecting && rf_ptrace_inject_end(t) == -1) {
		saved = errno;
		ret = -1;
	}
	if (ptrace(PTRACE_DETACH, t->pid, 0, t->pending_sig) == -1 && ret == 0) {
		saved = errno;
		ret = -1;
	}
	t->attached = 0;
	errno = saved;
	return ret;
}

/* process_vm_readv/writev, else /proc/PID/mem, which reaches more pages */
static int
mem_rw(pid_t pid, uint64_t addr, void *buf, size_t len, int write)
{
	struct iovec l = { buf, len }, r = { (void *)addr, len };
	char path[64];
	ssize_t n;
	int fd, saved;

	n = write ? process_vm_writev(pid, &l, 1, &r, 1, 0) :
	    process_vm_readv(pid, &l, 1, &r, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)rf_procfs_pid(pid));
	if ((fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC)) == -1)
		return -1;
	n = write ? pwrite(fd, buf, len, (off_t)addr) : pread(fd, buf, len, (off_t)addr);
	saved = errno;
	close(fd);
	if (n == (ssize_t)len)
		return 0;
	errno = n == -1 ? saved : EFAULT;
	return -1;
}

int
rf_ptrace_peek(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	return mem_rw(pid, addr, buf, len, 0);
}

int
rf_ptrace_poke(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	return mem_rw(pid, addr, (void *)buf, len, 1);
}
