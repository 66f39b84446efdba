/*
 * epollinherit - an epoll set made before the fork, used by the child (a
 * remote one: the set stays at home, with its stub) as one shares it on a
 * host: the child waits on it for the parent's pipe, adds a second pipe of
 * the parent's, waits for that; an fd of its own cannot join (EOPNOTSUPP
 * remote, fine local: "eventfd joins" then).  The parent, after the child,
 * sees the child's registration in the set they share.  Prints "child:
 * first 1 1111", "child: second 1 2222", "child: eventfd ...", "parent:
 * shared 1 2222", "status 0".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

int
main(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x1111 }, got;
	int ep, p1[2], p2[2], up[2], r, efd, st;
	char c;
	pid_t pid;

	if (pipe(p1) == -1 || pipe(p2) == -1 || pipe(up) == -1 ||
	    (ep = epoll_create1(0)) == -1 || epoll_ctl(ep, EPOLL_CTL_ADD, p1[0], &ev) == -1 ||
	    (pid = fork()) == -1)
		return 2;
	if (pid == 0) {
		memset(&got, 0, sizeof(got));
		r = epoll_wait(ep, &got, 1, 10000);
		printf("child: first %d %llx\n", r, (unsigned long long)got.data.u64);
		if (read(p1[0], &c, 1) != 1)
			_exit(3);
		ev.data.u64 = 0x2222;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, p2[0], &ev) == -1)
			printf("child: add: %s\n", strerror(errno));
		if (write(up[1], "1", 1) != 1)
			_exit(3);
		memset(&got, 0, sizeof(got));
		r = epoll_wait(ep, &got, 1, 10000);
		printf("child: second %d %llx\n", r, (unsigned long long)got.data.u64);
		if (read(p2[0], &c, 1) != 1)
			_exit(3);
		efd = eventfd(0, 0);
		ev.data.u64 = 0x3333;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == -1)
			printf("child: eventfd: %s\n", strerror(errno));
		else
			printf("child: eventfd joins\n");
		fflush(stdout);
		_exit(0);
	}
	if (write(p1[1], "x", 1) != 1 || read(up[0], &c, 1) != 1 || write(p2[1], "y", 1) != 1 ||
	    waitpid(pid, &st, 0) != pid)
		return 2;
	/* the set is one: the child's registration is the parent's too */
	if (write(p2[1], "z", 1) != 1)
		return 2;
	memset(&got, 0, sizeof(got));
	r = epoll_wait(ep, &got, 1, 1000);
	printf("parent: shared %d %llx\n", r, (unsigned long long)got.data.u64);
	printf("status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}
