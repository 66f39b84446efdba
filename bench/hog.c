/*
 * hog MIB - benchmark victim: touch MIB MiB of private anonymous memory with a
 * pattern that is never zero, stop itself, and after it is continued (as the
 * original or as a restored copy) check every page and exit 0, or 1 on a
 * mismatch.
 */
#include <err.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

int
main(int argc, char *argv[])
{
	size_t n, i;
	uint64_t *p;

	if (argc != 2)
		errx(64, "usage: hog MIB");
	n = (size_t)atol(argv[1]) << 20;
	p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		err(71, "mmap");
	for (i = 0; i < n / 8; i += 512)	/* one word per page is enough to touch it */
		p[i] = i + 1, p[i + 511] = ~i;
	raise(SIGSTOP);
	for (i = 0; i < n / 8; i += 512)
		if (p[i] != i + 1 || p[i + 511] != ~i)
			return 1;
	return 0;
}
