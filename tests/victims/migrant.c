/*
 * migrant MIB STATUSFILE - victim for moves between hosts: fills MIB MiB
 * with a known pattern that does not compress (no zero pages, no runs: every
 * page travels at its full size, even in a compressed record), appends
 * "ready pid P host H" to STATUSFILE, then counts ticks.  On SIGUSR1 it
 * checks the whole pattern and its counter and appends
 * "ok pid P host H ticks T" or "BAD ..." (opened by path each time, so a
 * moved copy reports from wherever it runs).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t check;

static void
on_usr1(int sig)
{
	check = 1;
}

/* splitmix64 of the word's index: as random as LZ4 can tell, never 0. */
static unsigned char
pat(size_t i)
{
	uint64_t z = (uint64_t)(i >> 3) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (unsigned char)(z >> ((i & 7) * 8)) | 1;
}

static void
report(const char *path, const char *what, long ticks)
{
	char host[64], line[256];
	int fd, n;

	gethostname(host, sizeof(host));
	n = snprintf(line, sizeof(line), "%s pid %d host %s ticks %ld\n", what, getpid(),
	    host, ticks);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644)) == -1)
		return;
	write(fd, line, n);
	close(fd);
}

int
main(int argc, char *argv[])
{
	struct timespec ts = { 0, 20 * 1000000 };
	size_t len, i;
	unsigned char *m;
	long ticks = 0, shadow = 0;
	int bad;

	if (argc != 3) {
		fprintf(stderr, "usage: migrant mib statusfile\n");
		return 64;
	}
	/* Only what a plain daemon has: fds inherited from a test harness
	   would have to be reopened on the other host, maybe not allowed. */
	syscall(SYS_close_range, 3, ~0u, 0);
	len = (size_t)atol(argv[1]) << 20;
	if (len == 0)
		len = 4096;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 71;
	for (i = 0; i < len; i++)
		m[i] = pat(i);
	signal(SIGUSR1, on_usr1);
	report(argv[2], "ready", ticks);
	for (;;) {
		nanosleep(&ts, NULL);
		ticks++;
		shadow += 2;
		if (check) {
			check = 0;
			bad = shadow != 2 * ticks;
			for (i = 0; i < len && !bad; i += 512)
				bad = m[i] != pat(i);
			report(argv[2], bad ? "BAD" : "ok", ticks);
		}
	}
}
