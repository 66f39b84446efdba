/*
 * pollwait - a remote child's thread a waits at home in poll() (or, with
 * "epoll", epoll_wait on a set the child makes; with "epollhome", on one
 * the parent made before the fork) on a pipe from the parent, with no
 * end; a moment later thread b writes to the parent, which
 * answers a only once it has b's line.  Prints "parent got b", "child: a
 * ready 1, read a", "status 0".  A poll at home that held back the other
 * threads' calls would leave b's line waiting for the answer it brings.
 * A poll cut short for b goes again with what is left of its time: a 300
 * ms poll that nothing readies, cut short for b's write after 200 ms,
 * returns 0 after 250-450 ms, not 500 ("child: timeout ok").
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int pa[2], up[2], ep = -1;

static void *
writer(void *arg)
{
	usleep(200000);		/* a waits at home by now */
	if (write(up[1], "b\n", 2) != 2)
		_exit(3);
	return NULL;
}

static long
ms_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* a's wait: 1 if pa is readable */
static int
wait_a(int ms)
{
	struct pollfd pf = { pa[0], POLLIN, 0 };
	struct epoll_event ev;

	if (ep >= 0)
		return epoll_wait(ep, &ev, 1, ms);
	return poll(&pf, 1, ms);
}

int
main(int argc, char *argv[])
{
	struct epoll_event ev = { .events = EPOLLIN };
	char q[16] = { 0 }, a[16] = { 0 };
	pthread_t t;
	long t0;
	pid_t pid;
	int st, r, late;

	if (pipe(pa) == -1 || pipe(up) == -1)
		return 2;
	ev.data.fd = pa[0];
	if (argc > 1 && strcmp(argv[1], "epollhome") == 0 && ((ep = epoll_create1(0)) == -1 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, pa[0], &ev) == -1))
		return 2;
	if ((pid = fork()) == -1)
		return 2;
	if (pid == 0) {
		if (argc > 1 && strcmp(argv[1], "epoll") == 0 && ((ep = epoll_create1(0)) == -1 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, pa[0], &ev) == -1))
			_exit(2);
		if (pthread_create(&t, NULL, writer, NULL) != 0)
			_exit(2);
		r = wait_a(-1);
		if (read(pa[0], a, sizeof(a) - 1) <= 0)
			_exit(3);
		pthread_join(t, NULL);
		printf("child: a ready %d, read %s", r, a);
		/* a poll cut short for b must keep its time limit */
		if (pthread_create(&t, NULL, writer, NULL) != 0)
			_exit(2);
		t0 = ms_now();
		r = wait_a(300);
		late = ms_now() - t0;
		pthread_join(t, NULL);
		printf("child: timeout %s\n", r == 0 && late >= 250 && late <= 450 ? "ok" : "wrong");
		if (r != 0 || late < 250 || late > 450)
			printf("child: ready %d after %d ms\n", r, late);
		fflush(stdout);
		_exit(0);
	}
	if (read(up[0], q, 2) != 2)
		return 2;
	printf("parent got %s", q);
	fflush(stdout);
	if (write(pa[1], "a\n", 2) != 2 || read(up[0], q, 2) != 2 || waitpid(pid, &st, 0) != pid)
		return 2;
	printf("status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}
