/*
 * rf_ptrace.h - the ptrace layer (x86-64), shaped like CRIU's compel: seize a
 * stopped task, read its CPU state, run syscalls inside it, let it go exactly
 * as it was.  Order of calls:
 *
 *	rf_ptrace_seize
 *	rf_ptrace_getregs, _xstate, _sigmask, _rseq	(any order)
 *	rf_ptrace_inject_begin				(needs t->syscall_ip)
 *	rf_ptrace_syscall ...
 *	rf_ptrace_inject_end				(always, if begin succeeded)
 *	rf_ptrace_detach
 *
 * Every call returns 0, or -1 with errno set; nothing here prints or exits.
 */
#ifndef RF_PTRACE_H
#define RF_PTRACE_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

struct rf_ptrace_rseq {
	uint64_t ptr;		/* rseq area in the tracee, 0 if none */
	uint32_t len, sig, flags, pad;
};

struct rf_pt {
	pid_t pid;
	int attached;
	int stopsig;		/* signal of the group stop found at seize,
				   0 if the task was not in a group stop */
	int pending_sig;	/* a signal caught on its way in: handed back
				   to the task at detach */
	uint64_t syscall_ip;	/* a `syscall` instruction in the tracee */

	/* rf_ptrace_inject_begin saves these; rf_ptrace_inject_end puts them back */
	int injecting;
	struct user_regs_struct saved_regs;
	uint64_t saved_sigmask;
	sigset_t saved_ourmask;
};

/*
 * PTRACE_SEIZE then PTRACE_INTERRUPT and wait for the trap.  A task in group
 * stop (state T) reports t->stopsig != 0; PTRACE_DETACH puts it back into that
 * group stop.  suspend_seccomp asks for PTRACE_O_SUSPEND_SECCOMP (needs
 * CAP_SYS_ADMIN).  Fails with ESRCH (gone), EPERM (not ours / traced).
 */
int rf_ptrace_seize(struct rf_pt *t, pid_t pid, int suspend_seccomp);
int rf_ptrace_getregs(struct rf_pt *t, struct user_regs_struct *r);
/* NT_X86_XSTATE into buf (cap bytes); *len is set to what the kernel gave. */
int rf_ptrace_xstate(struct rf_pt *t, void *buf, size_t cap, size_t *len);
int rf_ptrace_sigmask(struct rf_pt *t, uint64_t *mask);
/* c->ptr == 0 if the kernel has no rseq or none is registered. */
int rf_ptrace_rseq(struct rf_pt *t, struct rf_ptrace_rseq *c);

/*
 * Prepare to run syscalls in the tracee: save its registers and signal mask,
 * block every signal in it (so that nothing is dequeued, hence lost, while it
 * runs our syscalls) and block SIGINT, SIGTERM and SIGHUP in ourselves (dying
 * halfway would leave the tracee with our registers).
 */
int rf_ptrace_inject_begin(struct rf_pt *t);
/*
 * Run syscall nr with up to six arguments at t->syscall_ip and put the
 * registers back.  *ret is the raw return value (-errno on failure).  The
 * call itself fails only if the tracee could not be driven (ESRCH if it died).
 */
int rf_ptrace_syscall(struct rf_pt *t, long *ret, long nr, uint64_t a1,
    uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6);
/* Restore registers and signal mask, unblock our signals. */
int rf_ptrace_inject_end(struct rf_pt *t);

/* Leave the tracee; a task found in group stop goes back into it. */
int rf_ptrace_detach(struct rf_pt *t);

/*
 * Memory of the tracee: process_vm_readv/writev, falling back to
 * /proc/PID/mem (which also reaches pages without PROT_READ/PROT_WRITE).
 * Whole transfers or -1 (EFAULT for an address that cannot be read).
 */
int rf_ptrace_peek(pid_t pid, uint64_t addr, void *buf, size_t len);
int rf_ptrace_poke(pid_t pid, uint64_t addr, const void *buf, size_t len);

#endif
