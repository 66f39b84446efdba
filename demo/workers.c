/*
 * workers - the program `make demo` runs under rf-run: an ordinary program
 * that knows nothing of rfork.  It fills an array, forks N workers, each sums
 * its slice of the array and writes one line back on its own pipe; the parent
 * reads the pipes, waits for every worker and checks what it got.
 *	workers [N]
 * Under rf-run -H h2,h3 the workers are born on h2 and h3 in turn: they
 * still find the array (memory came with them), their pipe leads home, and
 * the pid fork() returned is real here (it belongs to the worker's rf-stub),
 * so waitpid() works.  Exit 0 if every check held, 1 if not.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#define NUMBERS	1000000		/* 1..NUMBERS, about 4 MiB */
#define MAXWORK	16

struct worker {
	pid_t	pid;		/* what fork() returned */
	int	fd;		/* read end of its pipe */
	char	line[256];	/* what it wrote */
};

static uint32_t numbers[NUMBERS];

/* In the worker: sum a slice, say where and who we are, and go. */
static void
work(int fd, int k, int n)
{
	struct utsname u;
	uint64_t sum = 0;
	size_t i, lo = (size_t)NUMBERS * k / n, hi = (size_t)NUMBERS * (k + 1) / n;
	char line[256];
	int len;

	for (i = lo; i < hi; i++)
		sum += numbers[i];
	uname(&u);
	len = snprintf(line, sizeof(line), "%s %d %d %zu %zu %llu\n", u.nodename,
	    (int)getpid(), (int)getppid(), lo + 1, hi, (unsigned long long)sum);
	if (write(fd, line, len) != len)
		_exit(1);
	_exit(0);
}

/* What pid is on this host: "rf-stub" for a worker born elsewhere. */
static void
comm(pid_t pid, char *out, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((f = fopen(path, "r")) == NULL || fgets(out, size, f) == NULL)
		snprintf(out, size, "?");
	out[strcspn(out, "\n")] = '\0';
	if (f != NULL)
		fclose(f);
}

int
main(int argc, char *argv[])
{
	struct worker w[MAXWORK];
	struct utsname u;
	char here[80];
	uint64_t total = 0, expect = (uint64_t)NUMBERS * (NUMBERS + 1) / 2;
	int n = argc > 1 ? atoi(argv[1]) : 4, bad = 0, k, p[2], st;
	ssize_t r;
	size_t got;

	if (argc > 2 || n < 1 || n > MAXWORK) {
		fprintf(stderr, "usage: workers [1..%d]\n", MAXWORK);
		return 64;
	}
	for (k = 0; k < NUMBERS; k++)
		numbers[k] = k + 1;
	uname(&u);
	printf("parent: pid %d on %s; %d workers sum 1..%d\n", (int)getpid(),
	    u.nodename, n, NUMBERS);
	fflush(stdout);	/* before fork(), as always: workers get a copy of the buffer */

	for (k = 0; k < n; k++) {
		if (pipe(p) == -1 || (w[k].pid = fork()) == -1) {
			perror("workers: pipe or fork");
			return 1;
		}
		if (w[k].pid == 0) {
			close(p[0]);
			work(p[1], k, n);
		}
		close(p[1]);
		w[k].fd = p[0];
	}

	/* Each pipe to its end: EOF comes when its worker has exited. */
	for (k = 0; k < n; k++) {
		got = 0;
		while (got < sizeof(w[k].line) - 1 &&
		    (r = read(w[k].fd, w[k].line + got, sizeof(w[k].line) - 1 - got)) != 0) {
			if (r == -1 && errno == EINTR)
				continue;
			if (r == -1)
				break;
			got += r;
		}
		w[k].line[got] = '\0';
		close(w[k].fd);
	}

	snprintf(here, sizeof(here), "on %s", u.nodename);
	printf("%-6s %-10s %-8s %-8s %-16s %-14s %-8s %-12s %s\n", "worker", "host",
	    "getpid", "getppid", "numbers", "sum", "fork()", here, "waitpid()");
	for (k = 0; k < n; k++) {
		char host[65], what[32], range[32], status[32];
		int pid = 0, ppid = 0, ok;
		size_t lo = 0, hi = 0;
		unsigned long long sum = 0;

		comm(w[k].pid, what, sizeof(what));
		if (waitpid(w[k].pid, &st, 0) != w[k].pid) {
			perror("workers: waitpid");
			return 1;
		}
		if (WIFEXITED(st))
			snprintf(status, sizeof(status), "exit %d", WEXITSTATUS(st));
		else
			snprintf(status, sizeof(status), "signal %d", WTERMSIG(st));
		ok = sscanf(w[k].line, "%64s %d %d %zu %zu %llu", host, &pid, &ppid,
		    &lo, &hi, &sum) == 6;
		if (!ok)
			snprintf(host, sizeof(host), "(no answer)");
		snprintf(range, sizeof(range), "%zu..%zu", lo, hi);
		printf("%-6d %-10s %-8d %-8d %-16s %-14llu %-8d %-12s %s\n", k, host, pid,
		    ppid, range, sum, (int)w[k].pid, what, status);
		if (!ok || pid != w[k].pid || ppid != getpid() ||
		    !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			printf("  worker %d: BAD (its pid must be what fork() returned, "
			    "its ppid %d, its status exit 0)\n", k, (int)getpid());
			bad = 1;
		}
		total += sum;
	}
	printf("total %llu, expected %llu (1+...+%d): %s\n",
	    (unsigned long long)total, (unsigned long long)expect, NUMBERS,
	    total == expect && !bad ? "ok" : "WRONG");
	return total == expect && !bad ? 0 : 1;
}
