/* io.c - whole reads and writes, the image hash, a monotonic clock. */
#include <errno.h>
#include <time.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>
#include "rf.h"

ssize_t
rf_readn(int fd, void *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = read(fd, (char *)buf + got, n - got);
		if (r == 0)
			break;
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		got += r;
	}
	return got;
}

int
rf_writen(int fd, const void *buf, size_t n)
{
	ssize_t r;

	while (n > 0) {
		r = write(fd, buf, n);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf = (const char *)buf + r;
		n -= r;
	}
	return 0;
}

uint64_t
rf_hash(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

uint64_t
rf_hash_seed(const void *p, size_t n, uint64_t seed)
{
	return XXH3_64bits_withSeed(p, n, seed);
}

long
rf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
