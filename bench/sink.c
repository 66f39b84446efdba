/*
 * sink BYTES - benchmark baseline: read stdin into fresh anonymous memory
 * (as a restore must), up to BYTES, with large reads; print the byte count.
 */
#include <err.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int
main(int argc, char *argv[])
{
	size_t n, got = 0;
	ssize_t r;
	char *p;

	if (argc != 2)
		errx(64, "usage: sink bytes");
	n = strtoull(argv[1], NULL, 10);
	p = mmap(NULL, n + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		err(71, "mmap");
	fcntl(0, F_SETPIPE_SZ, 1 << 20);
	while (got < n && (r = read(0, p + got, n - got < (1 << 20) ? n - got : 1 << 20)) > 0)
		got += r;
	printf("%zu\n", got);
	return got == n ? 0 : 74;
}
