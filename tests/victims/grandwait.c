/*
 * grandwait - what a remote child sees of its own children's ends (SPEC
 * "Fork semantics" 6 and 8): run under rf-run, P forks C, and C forks
 * four grandchildren, one after the other, each remote too.  C checks the
 * SIGCHLD of each (by signalfd, then by an SA_SIGINFO handler) for the
 * code, pid and status the kernel gives of a child that ends on its host,
 * and its waits (by pid, for any child, stops and continues).  Lines on
 * stdout (one write each):
 *
 *	child PID on HOST
 *	grand N PID on HOST
 *	sigchld N code CODE pid PID status STATUS
 *	wait N PID exit CODE | killed SIG | stopped SIG | continued
 *	no-children ECHILD
 *	BAD what	(and exit 1)
 *
 * Grandchild 1 exits 7; 2 is killed by C's SIGTERM; 3 exits 3, seen by
 * the handler and wait(-1); 4 is stopped, continued and killed.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "victim.h"

static volatile sig_atomic_t h_code, h_pid, h_status, h_n;

static void
on_chld(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	h_code = si->si_code;
	h_pid = si->si_pid;
	h_status = si->si_status;
	h_n++;
}

static const char *
host(void)
{
	static struct utsname u;

	uname(&u);
	return u.nodename;
}

static void
nap(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static pid_t
grand(int n, int code)
{
	pid_t g;
	sigset_t none;

	if ((g = fork()) == -1)
		bad("fork %d: %s", n, strerror(errno));
	if (g > 0)
		return g;
	say("grand %d %d on %s\n", n, getpid(), host());
	if (code >= 0) {
		nap(200);
		_exit(code);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (;;)
		pause();
}

/* The next SIGCHLD from the signalfd, within 20 s. */
static void
sigfd_next(int sfd, int n, int code, pid_t pid, int status)
{
	struct signalfd_siginfo ssi;
	struct pollfd pf = { .fd = sfd, .events = POLLIN };

	if (poll(&pf, 1, 20000) != 1 || read(sfd, &ssi, sizeof(ssi)) != sizeof(ssi))
		bad("no SIGCHLD for grandchild %d", n);
	say("sigchld %d code %d pid %d status %d\n", n, ssi.ssi_code, (int)ssi.ssi_pid,
	    ssi.ssi_status);
	if ((int)ssi.ssi_code != code || (pid_t)ssi.ssi_pid != pid || ssi.ssi_status != status)
		bad("SIGCHLD of grandchild %d: code %d pid %d status %d, not %d %d %d", n,
		    ssi.ssi_code, (int)ssi.ssi_pid, ssi.ssi_status, code, (int)pid, status);
}

/* Waits as wait4(pid, options) and says what it saw; pid -1: any child. */
static void
waited(int n, pid_t want, pid_t pid, int options)
{
	pid_t w;
	int st = 0;

	while ((w = waitpid(pid, &st, options)) == -1 && errno == EINTR)
		;
	if (w != want)
		bad("wait for grandchild %d (%d): %d %s", n, (int)want, (int)w, strerror(errno));
	if (WIFEXITED(st))
		say("wait %d %d exit %d\n", n, (int)w, WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		say("wait %d %d killed %d\n", n, (int)w, WTERMSIG(st));
	else if (WIFSTOPPED(st))
		say("wait %d %d stopped %d\n", n, (int)w, WSTOPSIG(st));
	else if (WIFCONTINUED(st))
		say("wait %d %d continued\n", n, (int)w);
}

static void __attribute__((noreturn))
child(void)
{
	struct sigaction sa;
	sigset_t chld, none;
	pid_t g;
	int sfd, st, i;

	say("child %d on %s\n", getpid(), host());
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	if ((sfd = signalfd(-1, &chld, SFD_CLOEXEC)) == -1)
		bad("signalfd: %s", strerror(errno));

	/* 1: exits 7 */
	g = grand(1, 7);
	sigfd_next(sfd, 1, CLD_EXITED, g, 7);
	waited(1, g, g, 0);

	/* 2: killed by our SIGTERM */
	g = grand(2, -1);
	nap(200);
	if (kill(g, SIGTERM) == -1)
		bad("kill(%d, SIGTERM): %s", (int)g, strerror(errno));
	sigfd_next(sfd, 2, CLD_KILLED, g, SIGTERM);
	waited(2, g, g, 0);

	/* 3: exits 3, seen by a handler and a wait for any child */
	close(sfd);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_chld;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
	g = grand(3, 3);
	sigemptyset(&none);
	for (i = 0; i < 200 && h_n == 0; i++) {
		struct timespec ts = { 0, 100000000 };
		sigset_t old;
		sigprocmask(SIG_SETMASK, &none, &old);
		nanosleep(&ts, NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	if (h_n == 0)
		bad("no SIGCHLD for grandchild 3");
	say("sigchld 3 code %d pid %d status %d\n", (int)h_code, (int)h_pid, (int)h_status);
	if (h_code != CLD_EXITED || h_pid != g || h_status != 3)
		bad("SIGCHLD of grandchild 3: code %d pid %d status %d", (int)h_code,
		    (int)h_pid, (int)h_status);
	waited(3, g, -1, 0);

	/* 4: stopped, continued, killed; the stops by waitpid */
	sa.sa_handler = SIG_DFL;
	sa.sa_flags = 0;
	sigaction(SIGCHLD, &sa, NULL);
	g = grand(4, -1);
	nap(200);
	kill(g, SIGSTOP);
	waited(4, g, g, WUNTRACED);
	kill(g, SIGCONT);
	waited(4, g, g, WCONTINUED);
	kill(g, SIGKILL);
	waited(4, g, g, 0);

	/* nothing left over: no stand-in, no child */
	if (wait(&st) != -1 || errno != ECHILD)
		bad("a wait with no children left: %s", strerror(errno));
	say("no-children ECHILD\n");
	_exit(0);
}

int
main(void)
{
	pid_t c;
	int st;

	setvbuf(stdout, NULL, _IONBF, 0);
	if ((c = fork()) == -1)
		bad("fork: %s", strerror(errno));
	if (c == 0)
		child();
	if (waitpid(c, &st, 0) != c)
		bad("waitpid: %s", strerror(errno));
	say("forked %d %s %d\n", (int)c, WIFEXITED(st) ? "exit" : "killed",
	    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
