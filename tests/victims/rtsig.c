/*
 * rtsig - queued real-time signals and sigqueue's values across a remote
 * fork, both ways, run under rf-run: the parent sigqueue()s five SIGRTMIN,
 * values 1 to 5, to the child while the child has it blocked; the child
 * must get all five (real-time signals queue), each with its value and the
 * parent as sender, then sigqueue()s SIGRTMIN+1 with value 42 back.  One
 * line on stdout:
 *
 *	parent got 42 from child, child status 0
 *
 * (the child's status is 0 when it got all five, values and sender right;
 * 10 + how many it got otherwise)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got, sum, frompp;

static void
on_rt(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	got++;
	sum += si->si_value.sival_int;
	if (si->si_code == SI_QUEUE && si->si_pid == getppid())
		frompp++;
}

int
main(void)
{
	struct timespec ts = { 20, 0 };
	struct sigaction sa;
	sigset_t rt, back, none;
	siginfo_t si;
	union sigval v;
	pid_t pid;
	char c;
	int p[2], q[2], st, i;

	sigemptyset(&rt);
	sigaddset(&rt, SIGRTMIN);
	sigemptyset(&back);
	sigaddset(&back, SIGRTMIN + 1);
	sigprocmask(SIG_BLOCK, &rt, NULL);
	sigprocmask(SIG_BLOCK, &back, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_rt;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGRTMIN, &sa, NULL);
	if (pipe(p) == -1 || pipe(q) == -1)
		return 2;
	if ((pid = fork()) == -1)
		return 2;
	if (pid == 0) {
		alarm(20);
		if (write(p[1], "r", 1) != 1)
			_exit(2);
		/* the parent's five arrive (at home, then here) while blocked */
		if (read(q[0], &c, 1) != 1)
			_exit(2);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (i = 0; i < 200 && got < 5; i++)
			usleep(10000);
		usleep(100000);		/* and not more than five */
		v.sival_int = 42;
		if (sigqueue(getppid(), SIGRTMIN + 1, v) == -1)
			_exit(3);
		_exit(got == 5 && sum == 15 && frompp == 5 ? 0 : 10 + got);
	}
	if (read(p[0], &c, 1) != 1)
		return 2;
	for (i = 1; i <= 5; i++) {
		v.sival_int = i;
		if (sigqueue(pid, SIGRTMIN, v) == -1)
			return 2;
	}
	usleep(200000);
	if (write(q[1], "g", 1) != 1)
		return 2;
	memset(&si, 0, sizeof(si));
	if (sigtimedwait(&back, &si, &ts) != SIGRTMIN + 1)
		return 2;
	if (waitpid(pid, &st, 0) != pid)
		return 2;
	printf("parent got %d from %s, child status %d\n", si.si_value.sival_int,
	    si.si_pid == pid && si.si_code == SI_QUEUE ? "child" : "someone else",
	    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}
