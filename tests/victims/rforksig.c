/*
 * rforksig - what a remote child must keep of its signals (SPEC "Fork
 * semantics" 2, 5, 6), run under rf-run: the parent sets a handler on an
 * alternate stack, an ignored signal and a blocked one, and a handler for
 * SIGCONT, then forks; the child checks each, raises (glibc's cached tid),
 * sees that no SIGCONT came to it (the fork's machinery stops and continues
 * its copies, and none of that is the program's), and ends by abort().
 * Lines on stdout, one write each:
 *
 *	child PID on HOST: handler ok, onstack ok, ignored ok, mask ok, tid ok, cont ok
 *	parent: child PID killed by 6 (SIGCHLD n)
 *	BAD what	(and exit 1)
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include "victim.h"

#define ALTSZ (64 << 10)

static char altstack[ALTSZ];
static volatile sig_atomic_t got, onstack, chld, cont;

static void
on_usr1(int sig, siginfo_t *si, void *uc)
{
	char here;

	(void)sig;
	(void)uc;
	got++;
	onstack = &here >= altstack && &here < altstack + ALTSZ;
	/* raise() sends with the cached tid: it must name this process */
	if (si->si_pid != getpid())
		got = -100;
}

static void
on_chld(int sig)
{
	(void)sig;
	chld++;
}

static void
on_cont(int sig)
{
	(void)sig;
	cont++;
}

int
main(void)
{
	struct sigaction sa, old;
	struct utsname u;
	stack_t ss;
	sigset_t set, cur;
	pid_t pid, w;
	int st, i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_chld;
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = on_cont;
	sigaction(SIGCONT, &sa, NULL);
	ss.ss_sp = altstack;
	ss.ss_size = ALTSZ;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) == -1)
		bad("sigaltstack: %s", strerror(errno));
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if ((pid = fork()) == -1)
		bad("fork: %s", strerror(errno));
	if (pid == 0) {
		uname(&u);
		if (sigaction(SIGUSR1, NULL, &old) == -1 || old.sa_sigaction != on_usr1 ||
		    !(old.sa_flags & SA_ONSTACK) || !(old.sa_flags & SA_SIGINFO))
			bad("SIGUSR1's action changed");
		if (sigaltstack(NULL, &ss) == -1 || ss.ss_sp != altstack || ss.ss_size != ALTSZ)
			bad("alternate stack changed");
		if (sigaction(SIGUSR2, NULL, &old) == -1 || old.sa_handler != SIG_IGN)
			bad("SIGUSR2 no longer ignored");
		sigprocmask(SIG_BLOCK, NULL, &cur);
		if (!sigismember(&cur, SIGHUP) || sigismember(&cur, SIGUSR1))
			bad("mask changed");
		if (syscall(SYS_gettid) != getpid())
			bad("gettid %ld, getpid %d", (long)syscall(SYS_gettid), getpid());
		if (raise(SIGUSR1) != 0 || got != 1)
			bad("raise(SIGUSR1): handler ran %d times", (int)got);
		if (!onstack)
			bad("the handler did not run on the alternate stack");
		raise(SIGUSR2);	/* ignored: nothing happens */
		/* one passed on by the stub would come a moment later */
		usleep(200000);
		if (cont != 0)
			bad("SIGCONT's handler ran %d times", (int)cont);
		say("child %d on %s: handler ok, onstack ok, ignored ok, mask ok, tid ok, cont ok\n",
		    getpid(), u.nodename);
		abort();
	}
	while ((w = waitpid(pid, &st, 0)) == -1 && errno == EINTR)
		;
	if (w != pid)
		bad("waitpid: %s", strerror(errno));
	for (i = 0; i < 200 && chld == 0; i++)
		usleep(10000);
	if (WIFSIGNALED(st))
		say("parent: child %d killed by %d (SIGCHLD %d)\n", pid, WTERMSIG(st), (int)chld);
	else
		say("parent: child %d exited %d (SIGCHLD %d)\n", pid, WEXITSTATUS(st), (int)chld);
	return 0;
}
