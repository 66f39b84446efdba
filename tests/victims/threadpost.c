/*
 * threadpost [ROUNDS] - post-copy under threads that fork at once: 32 MiB
 * in four quarters, one a thread.  Each thread, ROUNDS times (default 3):
 * fills its quarter with a value of its own, forks, and at once fills it
 * with another; the child sums the quarter (its pages come after it
 * starts, from the page source) and sends the sum back on a pipe, which
 * must be the one from before the fork.  The other threads write their
 * quarters meanwhile, as the forks are taken.  Prints "child T.R host pid"
 * from each child, then "ok" or "BAD ...".
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "victim.h"

#define QUARTER (8u << 20)

static uint8_t *mem;
static int rounds = 3;

static uint64_t
sum(const uint8_t *p)
{
	uint64_t s = 0;
	size_t i;

	for (i = 0; i < QUARTER; i += 512)
		s = s * 31 + p[i] + p[i + 511];
	return s;
}

static void *
worker(void *arg)
{
	int t = (int)(intptr_t)arg, r, fd[2], st;
	uint8_t *q = mem + (size_t)t * QUARTER;
	char host[64];
	uint64_t want, got;
	pid_t pid;

	for (r = 0; r < rounds; r++) {
		memset(q, 16 * t + r + 1, QUARTER);
		want = sum(q);
		if (pipe(fd) == -1)
			bad("pipe");
		if ((pid = fork()) == -1)
			bad("fork");
		if (pid == 0) {
			gethostname(host, sizeof(host));
			got = sum(q);
			say("child %d.%d %s %d\n", t, r, host, (int)getpid());
			if (write(fd[1], &got, sizeof(got)) != sizeof(got))
				_exit(1);
			_exit(0);
		}
		memset(q, 0xee, QUARTER);	/* the parent's own copy now */
		close(fd[1]);
		if (read(fd[0], &got, sizeof(got)) != sizeof(got))
			bad("thread %d round %d: no sum", t, r);
		close(fd[0]);
		if (waitpid(pid, &st, 0) != pid || st != 0)
			bad("thread %d round %d: child status %#x", t, r, st);
		if (got != want)
			bad("thread %d round %d: the child saw its quarter changed", t, r);
	}
	return NULL;
}

int
main(int argc, char *argv[])
{
	pthread_t th[4];
	int t;

	if (argc > 1)
		rounds = atoi(argv[1]);
	if ((mem = malloc(4 * (size_t)QUARTER)) == NULL)
		bad("malloc");
	memset(mem, 0, 4 * (size_t)QUARTER);
	for (t = 0; t < 4; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) != 0)
			bad("pthread_create");
	for (t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	say("ok\n");
	return 0;
}
