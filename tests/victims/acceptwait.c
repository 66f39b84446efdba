/*
 * acceptwait - a remote child's thread a waits at home in accept() on the
 * parent's listening socket; meanwhile thread b writes to the parent, and
 * the main thread reads the parent's answer to that and says it got it.
 * The parent connects only then.  Prints "parent got b", "parent got c
 * done", "child: a got a", "status 0".  An accept that held back the other
 * threads' calls would leave b's line, or the main thread's read, waiting
 * for a connection that comes only after them.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int ls, up[2], pc[2];
static char abuf[16];

static void *
acceptor(void *arg)
{
	int c = accept(ls, NULL, NULL);

	if (c == -1 || read(c, abuf, sizeof(abuf) - 1) <= 0)
		_exit(3);
	return NULL;
}

static void *
writer(void *arg)
{
	usleep(200000);		/* a waits at home by now */
	if (write(up[1], "b\n", 2) != 2)
		_exit(3);
	return NULL;
}

int
main(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char q[64] = { 0 }, cb[8] = { 0 };
	socklen_t len;
	pthread_t ta, tb;
	pid_t pid;
	int st, c;

	snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "rftest-acceptwait-%d", (int)getpid());
	len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sa.sun_path + 1);
	if ((ls = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    bind(ls, (struct sockaddr *)&sa, len) == -1 || listen(ls, 1) == -1 ||
	    pipe(up) == -1 || pipe(pc) == -1 || (pid = fork()) == -1)
		return 2;
	if (pid == 0) {
		if (pthread_create(&ta, NULL, acceptor, NULL) != 0 ||
		    pthread_create(&tb, NULL, writer, NULL) != 0)
			_exit(2);
		usleep(300000);	/* a and b are on their way */
		if (read(pc[0], cb, sizeof(cb) - 1) <= 0 || write(up[1], "c done\n", 7) != 7)
			_exit(3);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		printf("child: a got %s", abuf);
		fflush(stdout);
		_exit(0);
	}
	if (read(up[0], q, 2) != 2)
		return 2;
	printf("parent got %s", q);
	memset(q, 0, sizeof(q));
	if (write(pc[1], "c\n", 2) != 2 || read(up[0], q, sizeof(q) - 1) <= 0)
		return 2;
	printf("parent got %s", q);
	fflush(stdout);
	if ((c = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    connect(c, (struct sockaddr *)&sa, len) == -1 || write(c, "a\n", 2) != 2 ||
	    waitpid(pid, &st, 0) != pid)
		return 2;
	printf("status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}
