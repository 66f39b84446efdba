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
 *   write  first writes 256 KiB of the mapping to stdout (a system call
 *          whose buffer is still on its way: the proxy reads it at home's
 *          request), then checks
 *   hold   reports ready, then waits on stdin before checking (the test
 *          kills things meanwhile)
 *   pause  does not fork: prints "ready" and waits on stdin, for rf-snap
 *          (the stripes make thousands of pagemap regions)
 * The parent prints "parent SUM", waits, and prints "status N".  Once
 * forked, the parent also scribbles over the mapping: the child must see
 * the memory as it was at the fork.
 */
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

int
main(int argc, char *argv[])
{
	size_t mib, npages, k, i, *order;
	uint64_t sum = 0, *m;
	const char *mode;
	int st;
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
	if ((pid = fork()) == -1)
		return 2;
	if (pid == 0) {
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
		if (strcmp(mode, "write") == 0) {
			size_t n = npages * PG < (256 << 10) ? npages * PG : (256 << 10);
			char *b = (char *)m + (npages * PG) / 2;

			n = n > (npages * PG) / 2 ? (npages * PG) / 2 : n;
			if (write(STDOUT_FILENO, b, n) != (ssize_t)n)
				_exit(3);
		}
		if (strcmp(mode, "hold") == 0) {
			char c;

			printf("child ready\n");
			fflush(stdout);
			if (read(STDIN_FILENO, &c, 1) < 0)
				_exit(4);
		}
		for (k = 0; k < npages; k++) {
			uint64_t s = 0;
			if (check(m + order[k] * (PG / 8), order[k], &s) == -1) {
				printf("child BAD %zu\n", order[k]);
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
	/* the child's memory is the fork's: ours changes now */
	for (k = 0; k < npages; k += 3)
		m[k * (PG / 8)] ^= 1;
	if (waitpid(pid, &st, 0) != pid)
		return 2;
	printf("status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}
