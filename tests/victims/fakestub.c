/*
 * fakestub - stands in for rf-stub in tests/librfork.bats, where the remote
 * side is not there yet: writes its arguments, pid, parent and open fds
 * (with their close-on-exec flags) to $FAKE_DIR/stub, then exits 7.  Started
 * early (-K), it first waits for the answer as rf-stub does (victim.h) and
 * appends "stub" or "local" to $FAKE_DIR/early.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "victim.h"

int
main(int argc, char *argv[])
{
	char path[4096];
	struct dirent *d;
	FILE *f;
	DIR *dir;
	int i, fd;

	int v = stub_verdict(&argc, &argv);

	/* the early start and its answer, for the tests */
	snprintf(path, sizeof(path), "%s/early", getenv("FAKE_DIR") ? getenv("FAKE_DIR") : ".");
	if (v != 0 && (f = fopen(path, "a")) != NULL) {
		fprintf(f, "%s\n", v == 1 ? "stub" : "local");
		fclose(f);
	}
	if (v == -1)
		return 0;
	snprintf(path, sizeof(path), "%s/stub", getenv("FAKE_DIR") ? getenv("FAKE_DIR") : ".");
	if ((dir = opendir("/proc/self/fd")) == NULL)
		return 70;
	/* Listed before f is opened: f is not one of the child's fds. */
	char fds[4096] = "";
	size_t n = 0;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.' || (fd = atoi(d->d_name)) == dirfd(dir))
			continue;
		n += snprintf(fds + n, sizeof(fds) - n, " %d%s", fd,
		    fcntl(fd, F_GETFD) & FD_CLOEXEC ? "c" : "");
	}
	closedir(dir);
	if ((f = fopen(path, "w")) == NULL)
		return 70;
	fprintf(f, "args");
	for (i = 1; i < argc; i++)
		fprintf(f, " %s", argv[i]);
	fprintf(f, "\npid %d ppid %d\nfds%s\nenv LD_PRELOAD=%s\n", getpid(), getppid(), fds,
	    getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "");
	fclose(f);
	return 7;
}
