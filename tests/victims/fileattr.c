/*
 * fileattr - times, owners and file system facts of files at home, set and
 * read by the child, for tests/rfork.bats under rf-run (as root).  The
 * child's home cwd is DIR/sub (fchdir of a home fd), its own cwd stays DIR:
 * a relative name reaches DIR/sub/NAME at home, DIR/NAME on its own host.
 * Each of DIR/NAME and DIR/sub/NAME exists; the parent then says which of
 * them changed ("ok NAME" when only the one at home did).  One file is
 * reached by an fd only (unlinked).  Extended attributes (user.rf): the
 * child sets x1's, reads and lists x2's, removes x3's and reads the
 * unlinked file's by its fd.
 *	fileattr DIR
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utime.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include "forkreport.h"

static const char *names[] = { "t1", "t2", "t3", "o1", "o2", "o3" };
static int bad;

static void
say(int ok, const char *name, const char *how)
{
	printf("%s %s%s%s\n", ok ? "ok" : "FAIL", name, ok ? "" : " ", ok ? "" : how);
	bad |= !ok;
}

static void
make(const char *path)
{
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1 || close(fd) == -1) {
		perror(path);
		exit(2);
	}
}

/* home got it, this host's copy did not: by mtime (t*) or owner (o*) */
static void
check(const char *name)
{
	struct stat h, l;
	char hp[64];
	int th, tl;

	snprintf(hp, sizeof(hp), "sub/%s", name);
	if (lstat(hp, &h) == -1 || lstat(name, &l) == -1) {
		say(0, name, strerror(errno));
		return;
	}
	if (name[0] == 't') {
		th = h.st_mtime == 1000000000 + (name[1] - '0');
		tl = l.st_mtime == 1000000000 + (name[1] - '0');
	} else {
		th = h.st_uid == 1230 + (uid_t)(name[1] - '0') && h.st_gid == 4560 + (gid_t)(name[1] - '0');
		tl = l.st_uid == h.st_uid;
	}
	say(th && !tl, name, th ? "changed here too" : "unchanged at home");
}

static void
child(int dir, int gone)
{
	struct timespec ts[2] = { { 1000000001, 0 }, { 1000000001, 0 } };
	struct timeval tv[2] = { { 1000000002, 0 }, { 1000000002, 0 } };
	struct utimbuf ub = { 1000000003, 1000000003 };
	struct statfs sf;
	int r = 0;

	if (fchdir(dir) == -1) {
		perror("fchdir");
		_exit(2);
	}
	r |= utimensat(AT_FDCWD, "t1", ts, 0);
	r |= utimes("t2", tv);
	r |= utime("t3", &ub);
	r |= chown("o1", 1231, 4561);
	r |= lchown("o2", 1232, 4562);		/* a symlink: itself */
	r |= fchownat(AT_FDCWD, "o3", 1233, 4563, 0);
	r |= mkfifo("n1", 0600);
	if (r != 0)
		printf("FAIL calls %s\n", strerror(errno));
	{
		char v[64], l[256];
		ssize_t k;

		say(setxattr("x1", "user.rf", "set at home", 11, 0) == 0, "setxattr", strerror(errno));
		k = getxattr("x2", "user.rf", v, sizeof(v) - 1);
		v[k > 0 ? k : 0] = '\0';
		printf("getxattr %s\n", v);
		k = listxattr("x2", l, sizeof(l));
		say(k > 0 && memmem(l, k, "user.rf", 8) != NULL, "listxattr", strerror(errno));
		say(getxattr("x2", "user.rf", NULL, 0) == 7, "getxattr-size", strerror(errno));
		say(removexattr("x3", "user.rf") == 0, "removexattr", strerror(errno));
		k = fgetxattr(gone, "user.rf", v, sizeof(v) - 1);
		v[k > 0 ? k : 0] = '\0';
		printf("fgetxattr %s\n", v);
		say(fsetxattr(gone, "user.rf2", "fd", 2, 0) == 0, "fsetxattr", strerror(errno));
	}
	/* by the fd alone */
	ts[0].tv_sec = ts[1].tv_sec = 1000000009;
	say(futimens(gone, ts) == 0, "futimens", strerror(errno));
	say(fchownat(gone, "", 1239, 4569, AT_EMPTY_PATH) == 0, "fchownat-fd", strerror(errno));
	if (fstatfs(gone, &sf) == 0)
		printf("fstatfs %lx\n", (unsigned long)sf.f_type);
	if (statfs(".", &sf) == 0)
		printf("statfs %lx\n", (unsigned long)sf.f_type);
	fflush(stdout);
	_exit(bad);
}

int
main(int argc, char *argv[])
{
	struct statfs sf;
	struct stat st;
	int dir, gone;
	size_t i;
	pid_t pid;

	if (argc != 2 || chdir(argv[1]) == -1 || (mkdir("sub", 0755) == -1 && errno != EEXIST)) {
		fprintf(stderr, "usage: fileattr DIR\n");
		return 2;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char p[64];

		snprintf(p, sizeof(p), "sub/%s", names[i]);
		unlink(p);
		unlink(names[i]);
		if (strcmp(names[i], "o2") == 0) {
			make("target");
			if (symlink("target", p) == -1 || symlink("target", names[i]) == -1) {
				perror("symlink");
				return 2;
			}
		} else {
			make(p);
			make(names[i]);
		}
	}
	unlink("n1");
	unlink("sub/n1");
	for (i = 1; i <= 3; i++) {
		char p[64];

		snprintf(p, sizeof(p), "sub/x%zu", i);
		make(p);
		make(p + 4);
		if (setxattr(p, "user.rf", "at home", 7, 0) == -1 ||
		    setxattr(p + 4, "user.rf", "here", 4, 0) == -1) {
			perror("setxattr");
			return 2;
		}
	}
	removexattr("sub/x1", "user.rf");
	removexattr("x1", "user.rf");
	make("gone");
	if ((dir = open("sub", O_RDONLY | O_DIRECTORY)) == -1 ||
	    (gone = open("gone", O_RDWR)) == -1 || unlink("gone") == -1 ||
	    fsetxattr(gone, "user.rf", "by fd", 5, 0) == -1) {
		perror("open");
		return 2;
	}
	if ((pid = report_fork()) == -1)
		return 1;
	if (pid == 0)
		child(dir, gone);
	if (report_forked(pid) == -1)
		return 1;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		check(names[i]);
	{
		char v[64];
		ssize_t k = getxattr("sub/x1", "user.rf", v, sizeof(v));

		say(k == 11 && memcmp(v, "set at home", 11) == 0 &&
		    getxattr("x1", "user.rf", v, sizeof(v)) == -1, "x1", "not (only) at home");
		say(getxattr("sub/x3", "user.rf", v, sizeof(v)) == -1 &&
		    getxattr("x3", "user.rf", v, sizeof(v)) == 4, "x3", "not (only) at home");
		say(fgetxattr(gone, "user.rf2", v, sizeof(v)) == 2, "fd-xattr", "unset");
	}
	say(lstat("sub/n1", &st) == 0 && S_ISFIFO(st.st_mode) && lstat("n1", &st) == -1, "n1",
	    "not (only) at home");
	say(fstat(gone, &st) == 0 && st.st_mtime == 1000000009 && st.st_uid == 1239 &&
	    st.st_gid == 4569, "fd-changed", "unchanged");
	if (fstatfs(gone, &sf) == 0)
		printf("here %lx\n", (unsigned long)sf.f_type);
	return bad;
}
