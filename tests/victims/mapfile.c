/*
 * mapfile - mmap of files at home, for tests/rfork.bats under rf-run: the
 * parent makes two files in DIR (one of them then unlinked, so that only
 * its fd reaches it) and forks; the child maps them in every way and says
 * "ok NAME" or "FAIL NAME ..." for each; the parent checks that the
 * child's private writes left the file alone.  Lines as rforkhost's.
 *	mapfile DIR
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "forkreport.h"

#define PG 4096
#define SIZE (3 * PG + 100)

static int bad;

static unsigned char
pat(int which, size_t i)
{
	return (unsigned char)(which * 31 + i * 7 + i / PG);
}

static void
make(const char *path, int which)
{
	unsigned char b[SIZE];
	size_t i;
	int fd;

	for (i = 0; i < SIZE; i++)
		b[i] = pat(which, i);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, b, SIZE) != SIZE || close(fd) == -1) {
		perror(path);
		exit(2);
	}
}

static void
say(int ok, const char *name, const char *how)
{
	printf("%s %s%s%s\n", ok ? "ok" : "FAIL", name, ok ? "" : " ", ok ? "" : how);
	bad |= !ok;
}

/* the len bytes at m are the file's from off (zeros past its end) */
static int
same(const unsigned char *m, int which, size_t off, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (m[i] != (off + i < SIZE ? pat(which, off + i) : 0))
			return 0;
	return 1;
}

static const char *
kind(int fd)
{
	static char l[64];
	char p[64];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, l, sizeof(l) - 1);
	l[n > 0 ? n : 0] = '\0';
	return strncmp(l, "pipe:", 5) == 0 ? "placeholder" : "file";
}

static void
child(int a, int b, int w)
{
	unsigned char *m, *s;
	int r;

	printf("fd %s\n", kind(a));
	m = mmap(NULL, SIZE, PROT_READ, MAP_PRIVATE, a, 0);
	say(m != MAP_FAILED && same(m, 1, 0, SIZE), "private", strerror(errno));
	/* shared, read-only, at an offset, of a file no path reaches */
	s = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, b, PG);
	say(s != MAP_FAILED && same(s, 2, PG, 2 * PG), "shared-read", strerror(errno));
	r = s != MAP_FAILED ? mprotect(s, 2 * PG, PROT_READ | PROT_WRITE) : 0;
	say(r == -1 && (errno == EACCES || errno == EPERM), "shared-read-stays", "mprotect");
	/* private and written: the copy changes, the file does not */
	m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, b, 0);
	if (m != MAP_FAILED)
		memset(m, 0xaa, 100);
	say(m != MAP_FAILED && m[99] == 0xaa && same(m + 100, 2, 100, SIZE - 100), "private-write",
	    strerror(errno));
	m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
	say(m == MAP_FAILED && errno == ENODEV, "shared-write-refused", "mapped");
	m = mmap(NULL, PG, PROT_READ, MAP_PRIVATE, w, 0);
	say(m == MAP_FAILED && errno == EACCES, "write-only-refused", strerror(errno));
	/* opened by the child itself (at home: a relative path), mapped past its end */
	if ((a = open("a.dat", O_RDONLY)) == -1)
		say(0, "relative", strerror(errno));
	m = mmap(NULL, 4 * PG, PROT_READ, MAP_PRIVATE, a, 0);
	say(m != MAP_FAILED && same(m, 1, 0, 4 * PG), "relative", strerror(errno));
	printf("fd %s\n", kind(a));
	fflush(stdout);
	_exit(bad);
}

int
main(int argc, char *argv[])
{
	unsigned char c[SIZE];
	int a, b, w;
	pid_t pid;

	if (argc != 2 || chdir(argv[1]) == -1) {
		fprintf(stderr, "usage: mapfile DIR\n");
		return 2;
	}
	make("a.dat", 1);
	make("gone.dat", 2);
	if ((a = open("a.dat", O_RDONLY)) == -1 || (b = open("gone.dat", O_RDWR)) == -1 ||
	    (w = open("a.dat", O_WRONLY)) == -1 || unlink("gone.dat") == -1) {
		perror("open");
		return 2;
	}
	if ((pid = report_fork()) == -1)
		return 1;
	if (pid == 0)
		child(a, b, w);
	if (report_forked(pid) == -1)
		return 1;
	say(pread(b, c, SIZE, 0) == SIZE && same(c, 2, 0, SIZE), "file-unchanged", "changed");
	return bad;
}
