/*
 * threadqa - a remote child's two threads, one waiting at home for the
 * parent's answer while the other, a moment later, writes the question the
 * parent waits for.  Prints "parent got question", "child got 7: answer",
 * "status 0".  Served one call at a time, the two would wait for each other.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int down[2], up[2];

static void *
asker(void *arg)
{
	usleep(200000);		/* the reader waits at home by now */
	if (write(up[1], "question\n", 9) != 9)
		_exit(3);
	return NULL;
}

int
main(void)
{
	char buf[64] = { 0 }, q[64] = { 0 };
	pthread_t t;
	ssize_t n;
	pid_t pid;
	int st;

	if (pipe(down) == -1 || pipe(up) == -1 || (pid = fork()) == -1)
		return 2;
	if (pid == 0) {
		if (pthread_create(&t, NULL, asker, NULL) != 0)
			_exit(2);
		n = read(down[0], buf, sizeof(buf) - 1);
		pthread_join(t, NULL);
		printf("child got %zd: %s", n, buf);
		fflush(stdout);
		_exit(0);
	}
	if (read(up[0], q, sizeof(q) - 1) <= 0)
		return 2;
	printf("parent got %s", q);
	fflush(stdout);
	if (write(down[1], "answer\n", 7) != 7 || waitpid(pid, &st, 0) != pid)
		return 2;
	printf("status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}
