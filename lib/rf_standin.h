/*
 * rf_standin.h - the body of a grandchild's stand-in (docs/FORK.md
 * "Grandchildren"), shared by `rf-stub -W` and librfork (which runs it in
 * place if that exec fails).
 *
 * A remote child's local copy of its grandchild, kept at the grandchild's
 * pid as a child of the remote child, waits here for its proxy's word of
 * the grandchild's end (RF_FWD_STANDIN_SIG from pid proxy, SI_QUEUE, the
 * value RF_FWD_STANDIN << 32 | the wait status) and ends the same way, so
 * that the remote child's waits and SIGCHLD are the kernel's own.  The
 * proxy stops and continues it as the grandchild stops and goes on.
 * Anything else sent to it is let go.  It never returns.
 */
#ifndef RF_STANDIN_H
#define RF_STANDIN_H

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "rf_fwd.h"

static void __attribute__((noreturn, unused))
rf_standin(pid_t proxy)
{
	struct rlimit none = { 0, 0 };
	struct sigaction dfl;
	sigset_t all, one;
	siginfo_t si;
	uint64_t v;
	int sig, st;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL);
	for (;;) {
		if (sigwaitinfo(&all, &si) != RF_FWD_STANDIN_SIG || si.si_code != SI_QUEUE ||
		    si.si_pid != proxy)
			continue;
		v = (uint64_t)(uintptr_t)si.si_value.sival_ptr;
		if (v >> 32 != RF_FWD_STANDIN)
			continue;
		st = (int)(uint32_t)v;
		if (WIFEXITED(st))
			syscall(SYS_exit_group, WEXITSTATUS(st));
		/* its core, if it dumped one, is its own host's */
		setrlimit(RLIMIT_CORE, &none);
		sig = WIFSIGNALED(st) ? WTERMSIG(st) : SIGKILL;
		sigemptyset(&one);
		sigaddset(&one, sig);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		syscall(SYS_kill, syscall(SYS_getpid), sig);
		syscall(SYS_kill, syscall(SYS_getpid), SIGKILL);
	}
}

#endif
