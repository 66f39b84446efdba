/*
 * rforktree - a remote child forks (SPEC "Fork semantics" 8): run under
 * rf-run, P forks C, C forks G, and each checks what fork promises.  Lines
 * on stdout (one write each):
 *
 *	parent PID on HOST
 *	child PID ppid PPID on HOST
 *	grand PID ppid PPID tid TID on HOST raise ok
 *	child-saw grand PID exit CODE sigchld N usr2-from-grand N
 *	parent-saw grand PID parent PPID (from /proc of the parent's host)
 *	forked PID exit CODE | killed SIG
 *	BAD what	(and exit 1)
 *
 * G's lines go through a pipe made by P before any fork: a home pipe, so
 * the bytes of all three processes meet at home.  G sends SIGUSR2 to its
 * parent (kill(getppid())), and C sends SIGTERM to G, which G catches
 * and exits with gcode.  Arguments: [gcode [ccode]].
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include "victim.h"

static volatile sig_atomic_t chld, usr2, term, usr1;

static void
on_sig(int sig)
{
	if (sig == SIGCHLD)
		chld++;
	else if (sig == SIGUSR2)
		usr2++;
	else if (sig == SIGTERM)
		term++;
	else if (sig == SIGUSR1)
		usr1++;
}

static const char *
host(void)
{
	static struct utsname u;

	uname(&u);
	return u.nodename;
}

/* The parent of pid on this host, from /proc; -1 if gone. */
static pid_t
ppid_of(pid_t pid)
{
	char path[64], b[512], *p;
	FILE *f;
	int pp = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(b, sizeof(b), f) != NULL && (p = strrchr(b, ')')) != NULL)
		sscanf(p + 2, "%*c %d", &pp);
	fclose(f);
	return pp;
}

static void __attribute__((noreturn))
grand(int gcode, int wr)
{
	sigset_t none;
	char buf[256];
	int n;

	/* raise() uses glibc's cached tid: it must be this process's. */
	if (raise(SIGUSR1) != 0 || usr1 != 1)
		bad("raise(SIGUSR1) in the grandchild did not arrive");
	n = snprintf(buf, sizeof(buf), "grand %d ppid %d tid %ld on %s raise ok\n", getpid(),
	    getppid(), (long)syscall(SYS_gettid), host());
	if (write(wr, buf, n) != n)
		bad("writing to the home pipe: %s", strerror(errno));
	if (kill(getppid(), SIGUSR2) == -1)
		bad("kill(getppid()): %s", strerror(errno));
	sigemptyset(&none);
	while (!term)
		sigsuspend(&none);
	_exit(gcode);
}

static void __attribute__((noreturn))
child(int gcode, int ccode, int rd, int wr)
{
	struct sigaction sa;
	sigset_t blk, old;
	char line[256];
	pid_t g, w, gp = 0, gpp = 0;
	int st, n, i;

	say("child %d ppid %d on %s\n", getpid(), getppid(), host());
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if ((g = fork()) == -1)
		bad("fork in the child: %s", strerror(errno));
	if (g == 0)
		grand(gcode, wr);
	/* G's line comes through the home pipe, and so does our reading. */
	n = 0;
	while (n < (int)sizeof(line) - 1) {
		if (read(rd, line + n, 1) != 1)
			bad("reading the grandchild's line: %s", strerror(errno));
		if (line[n++] == '\n')
			break;
	}
	line[n] = '\0';
	say("%s", line);
	if (sscanf(line, "grand %d ppid %d", &gp, &gpp) != 2)
		bad("grandchild said '%s'", line);
	if (gp != g)
		bad("fork returned %d, the grandchild's getpid is %d", g, gp);
	if (gpp != getpid())
		bad("grandchild's getppid %d, the child is %d", gpp, getpid());
	sigemptyset(&blk);
	sigaddset(&blk, SIGUSR2);
	sigprocmask(SIG_BLOCK, &blk, &old);
	for (i = 0; i < 500 && !usr2; i++) {
		struct timespec ts = { 0, 10000000 };
		sigprocmask(SIG_SETMASK, &old, NULL);
		nanosleep(&ts, NULL);
		sigprocmask(SIG_BLOCK, &blk, NULL);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (kill(g, SIGTERM) == -1)
		bad("kill(%d, SIGTERM): %s", g, strerror(errno));
	while ((w = waitpid(g, &st, 0)) == -1 && errno == EINTR)
		;
	if (w != g)
		bad("waitpid(%d): %d %s", g, w, strerror(errno));
	for (i = 0; i < 200 && chld == 0; i++)
		usleep(10000);
	say("child-saw grand %d exit %d sigchld %d usr2-from-grand %d\n", g,
	    WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st), (int)chld, (int)usr2);
	_exit(ccode);
}

int
main(int argc, char *argv[])
{
	int gcode = argc > 1 ? atoi(argv[1]) : 5, ccode = argc > 2 ? atoi(argv[2]) : 7;
	int p[2], st, n = 0;
	char line[256];
	pid_t c, w, gp, gpp;
	FILE *in;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (pipe(p) == -1)
		bad("pipe: %s", strerror(errno));
	say("parent %d on %s\n", getpid(), host());
	if ((c = fork()) == -1)
		bad("fork: %s", strerror(errno));
	if (c == 0) {
		child(gcode, ccode, p[0], p[1]);
	}
	/* The grandchild is ours to see too: its pid is real here, under c. */
	close(p[0]);
	(void)in;
	(void)line;
	(void)n;
	for (int i = 0; i < 300; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", c, c);
		if ((in = fopen(path, "r")) != NULL) {
			n = fscanf(in, "%d", &gp);
			fclose(in);
			if (n == 1 && (gpp = ppid_of(gp)) == c) {
				say("parent-saw grand %d parent %d\n", gp, gpp);
				break;
			}
		}
		usleep(10000);
	}
	while ((w = waitpid(c, &st, 0)) == -1 && errno == EINTR)
		;
	if (w != c)
		bad("waitpid: %s", strerror(errno));
	if (WIFEXITED(st))
		say("forked %d exit %d\n", c, WEXITSTATUS(st));
	else
		say("forked %d killed %d\n", c, WTERMSIG(st));
	return 0;
}
