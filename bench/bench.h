/* bench.h - what every benchmark here needs: a clock, and sorting for percentiles. */
#ifndef RF_BENCH_H
#define RF_BENCH_H

#include <time.h>

/* Seconds, monotonic. */
static inline double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

/* qsort order of doubles. */
static inline int
cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#endif
