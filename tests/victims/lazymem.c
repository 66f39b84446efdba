/*
 * lazymem - post-copy memory checked from inside a remote child.
 * Usage: lazymem MIB MODE
 *
 * Maps MIB MiB of private anonymous memory and fills it with a pattern
 * (every 5th page left untouched: zero), then forks.  The child checks every
 * page, in the order MODE says, and reports "child ok SUM" or "child BAD
 * ADDR" on stdout, then exits 0 or 1:
 *   seq    in address order
 *   back   from the end down
 *   rand   in a shuffled order
 *   write  first writes 256 KiB from the middle of the mapping into a
 *          pipe (a system call whose buffer is still on its way: the proxy
 *          reads it from the child), then checks; the parent checks what it
 *          read and says "parent read ok" (or BAD)
 *   hold   reports ready, then waits on stdin before checking (the test
 *          kills things meanwhile)
 *   pause  does not fork: prints "ready" and waits on stdin, for rf-snap
 *          (the stripes make thousands of pagemap regions)
 *   remap  moves the mapping (mremap) first, then checks it where it went
 *   dontneed  drops the first half (MADV_DONTNEED), which must read as
 *          zeros, then checks the second half
 *   unmap  unmaps the first half and maps fresh memory there (zeros)
 *   fork   forks; its child checks and reports, and it reports that status
 *   exec   execs /bin/true at once, its pages still on their way
 *   exit   exits at once (0), before its stub has even dialed for the pages
 *   threads  4 threads check a quarter of the pages each, at once
 * The parent prints "parent SUM", "forked PID", waits, and prints "status N".  Once
 * forked, the parent also scribbles over the mapping: the child must see
 * the memory as it was at the fork.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "victim.h"

#define PG 4096

static uint64_t
word(size_t page, size_t i)
{
	return (page * 0x9e3779b97f4a7c15ull) ^ (i * 0xff51afd7ed558ccdull) ^ 0x5a5a;
}

static int
untouched(size_t page)
{
	return page % 5 == 3;
}

/* Check one page; its words into *sum.  0 ok, -1 wrong. */
static int
check(const uint64_t *p, size_t page, uint64_t *sum)
{
	size_t i;

	for (i = 0; i < PG / 8; i++) {
		uint64_t want = untouched(page) ? 0 : word(page, i);
		if (p[i] != want)
			return -1;
		*sum += p[i] * (i + 1);
	}
	return 0;
}

/* write: where and how much, page aligned */
static size_t
half_off(size_t npages)
{
	return (npages / 2) * PG;
}

static size_t
wlen(size_t npages)
{
	return npages / 2 < 64 ? (npages / 2) * PG : 64 * PG;
}

struct quarter {
	const uint64_t *m;
	size_t from, to;
	int bad;
};

static void *
check_quarter(void *arg)
{
	struct quarter *q = arg;
	uint64_t s = 0;
	size_t k;

	for (k = q->from; k < q->to; k++)
		if (check(q->m + k * (PG / 8), k, &s) == -1)
			q->bad = 1;
	return NULL;
}

int
main(int argc, char *argv[])
{
	size_t mib, npages, k, i, *order;
	uint64_t sum = 0, *m;
	const char *mode;
	int st, wp[2];
	pid_t pid;

	if (argc != 3)
		return 2;
	mib = strtoul(argv[1], NULL, 10);
	mode = argv[2];
	npages = mib * 256;
	m = mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 2;
	for (k = 0; k < npages; k++)
		if (!untouched(k))
			for (i = 0; i < PG / 8; i++)
				m[k * (PG / 8) + i] = word(k, i);
	for (k = 0; k < npages; k++)
		check(m + k * (PG / 8), k, &sum);
	printf("parent %llu\n", (unsigned long long)sum);
	fflush(stdout);
	if (strcmp(mode, "pause") == 0) {
		char c;

		printf("ready\n");
		fflush(stdout);
		return read(STDIN_FILENO, &c, 1) < 0;
	}
	if (pipe(wp) == -1)
		return 2;
	if ((pid = fork()) == -1)
		return 2;
	if (pid == 0) {
		if (strcmp(mode, "exit") == 0)
			_exit(0);
		close(wp[0]);
		sum = 0;
		if ((order = malloc(npages * sizeof(*order))) == NULL)
			_exit(2);
		for (k = 0; k < npages; k++)
			order[k] = strcmp(mode, "back") == 0 ? npages - 1 - k : k;
		if (strcmp(mode, "rand") == 0) {
			srand(7);
			for (k = npages - 1; k > 0; k--) {
				size_t j = (size_t)rand() % (k + 1), t = order[k];
				order[k] = order[j];
				order[j] = t;
			}
		}
		if (strcmp(mode, "write") == 0 &&
		    write(wp[1], (char *)m + half_off(npages), wlen(npages)) != (ssize_t)wlen(npages))
			_exit(3);
		close(wp[1]);
		if (strcmp(mode, "hold") == 0) {
			char c;

			printf("child ready\n");
			fflush(stdout);
			if (read(STDIN_FILENO, &c, 1) < 0)
				_exit(4);
		}
		if (strcmp(mode, "exec") == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(5);
		}
		if (strcmp(mode, "remap") == 0) {
			/* to a place of its own: reserve, then move over it */
			void *to = mmap(NULL, npages * PG, PROT_NONE, MAP_PRIVATE |
			    MAP_ANONYMOUS, -1, 0);
			if (to == MAP_FAILED || (m = mremap(m, npages * PG, npages * PG,
			    MREMAP_MAYMOVE | MREMAP_FIXED, to)) == MAP_FAILED)
				_exit(6);
		}
		if (strcmp(mode, "dontneed") == 0 || strcmp(mode, "unmap") == 0) {
			size_t half = npages / 2;
			if (strcmp(mode, "dontneed") == 0 ?
			    madvise(m, half * PG, MADV_DONTNEED) == -1 :
			    munmap(m, half * PG) == -1 || mmap(m, half * PG, PROT_READ |
			    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != m)
				_exit(6);
			for (k = 0; k < half * (PG / 8); k++)
				if (m[k] != 0) {
					printf("child BAD %zu (not zero)\n", k / (PG / 8));
					fflush(stdout);
					_exit(1);
				}
			for (k = half; k < npages; k++)
				check(m + k * (PG / 8), k, &sum);
			printf("child ok half\n");
			fflush(stdout);
			_exit(0);
		}
		if (strcmp(mode, "threads") == 0) {
			struct quarter q[4];
			pthread_t th[4];
			int t, bad = 0;

			for (t = 0; t < 4; t++) {
				q[t] = (struct quarter){ m, npages * t / 4, npages * (t + 1) / 4, 0 };
				if (pthread_create(&th[t], NULL, check_quarter, &q[t]) != 0)
					_exit(9);
			}
			for (t = 0; t < 4; t++) {
				pthread_join(th[t], NULL);
				bad |= q[t].bad;
			}
			if (bad) {
				printf("child BAD (a thread)\n");
				fflush(stdout);
				_exit(1);
			}
		}
		if (strcmp(mode, "fork") == 0) {
			pid_t g = fork();

			if (g == -1)
				_exit(7);
			if (g > 0) {
				if (waitpid(g, &st, 0) != g)
					_exit(8);
				printf("grandchild status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) :
				    128 + WTERMSIG(st));
				fflush(stdout);
				_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
			}
		}
		for (k = 0; k < npages; k++) {
			uint64_t s = 0;
			if (check(m + order[k] * (PG / 8), order[k], &s) == -1) {
				printf("child BAD %zu (word 0: %#llx, want %#llx)\n", order[k],
				    (unsigned long long)m[order[k] * (PG / 8)],
				    (unsigned long long)(untouched(order[k]) ? 0 : word(order[k], 0)));
				fflush(stdout);
				_exit(1);
			}
		}
		/* the same sum as the parent's, in address order */
		for (k = 0; k < npages; k++)
			check(m + k * (PG / 8), k, &sum);
		printf("child ok %llu\n", (unsigned long long)sum);
		fflush(stdout);
		_exit(0);
	}
	close(wp[1]);
	printf("forked %d\n", (int)pid);
	fflush(stdout);
	/* the child's memory is the fork's: ours changes now */
	for (k = 0; k < npages; k += 3)
		m[k * (PG / 8)] ^= 1;
	if (strcmp(mode, "write") == 0) {
		size_t n = wlen(npages), got = 0, first = half_off(npages) / PG;
		uint64_t *b = malloc(n);
		ssize_t r;

		while (b != NULL && got < n && (r = read(wp[0], (char *)b + got, n - got)) > 0)
			got += r;
		for (k = 0; b != NULL && got == n && k < n / 8; k++)
			if (b[k] != (untouched(first + k / (PG / 8)) ? 0 :
			    word(first + k / (PG / 8), k % (PG / 8))))
				break;
		printf("parent read %s\n", b != NULL && got == n && k == n / 8 ? "ok" : "BAD");
		fflush(stdout);
	}
	if (waitpid(pid, &st, 0) != pid)
		return 2;
	printf("status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}
