/*
 * tworeaders - a remote child's threads: a and b each wait at home for
 * input on a pipe of its own; c, a moment later, writes to the parent; and
 * the process gets a signal (SA_RESTART) while a and b wait.  The parent
 * answers b once it has c's line and the signal is sent, and a only once b
 * has said it got its answer.  Prints "parent got c", "parent got b done",
 * "child: a got 2: a", "child: b got 2: b", "child: 1 signal", "status 0".
 * With one wait for input at home at a time, a's read would hold back b's,
 * whose answer is waiting: neither would end.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int pa[2], pb[2], up[2];
static char bbuf[16];
static ssize_t bn;
static volatile sig_atomic_t got;

static void
on_usr1(int sig)
{
	got++;
}

static void *
reader_b(void *arg)
{
	usleep(200000);		/* a waits at home by now */
	bn = read(pb[0], bbuf, sizeof(bbuf) - 1);
	if (write(up[1], "b done\n", 7) != 7)
		_exit(3);
	return NULL;
}

static void *
writer_c(void *arg)
{
	usleep(400000);		/* a and b wait at home by now */
	if (write(up[1], "c\n", 2) != 2)
		_exit(3);
	return NULL;
}

int
main(void)
{
	char abuf[16] = { 0 }, q[64] = { 0 };
	struct sigaction sa;
	pthread_t tb, tc;
	ssize_t n;
	pid_t pid;
	int st;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGUSR1, &sa, NULL) == -1 || pipe(pa) == -1 || pipe(pb) == -1 ||
	    pipe(up) == -1 || (pid = fork()) == -1)
		return 2;
	if (pid == 0) {
		if (pthread_create(&tb, NULL, reader_b, NULL) != 0 ||
		    pthread_create(&tc, NULL, writer_c, NULL) != 0)
			_exit(2);
		n = read(pa[0], abuf, sizeof(abuf) - 1);
		pthread_join(tb, NULL);
		pthread_join(tc, NULL);
		printf("child: a got %zd: %s", n, abuf);
		printf("child: b got %zd: %s", bn, bbuf);
		printf("child: %d signal\n", (int)got);
		fflush(stdout);
		_exit(0);
	}
	if (read(up[0], q, 2) != 2)
		return 2;
	printf("parent got %s", q);
	fflush(stdout);
	/* a and b still wait; then b's answer, and a's only after b said so */
	if (kill(pid, SIGUSR1) == -1)
		return 2;
	usleep(100000);
	memset(q, 0, sizeof(q));
	if (write(pb[1], "b\n", 2) != 2 || read(up[0], q, sizeof(q) - 1) <= 0)
		return 2;
	printf("parent got %s", q);
	fflush(stdout);
	if (write(pa[1], "a\n", 2) != 2 || waitpid(pid, &st, 0) != pid)
		return 2;
	printf("status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}
