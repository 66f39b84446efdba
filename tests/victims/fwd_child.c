/*
 * fwd_child - a child for the forwarding core tests (tests/fwd.bats): runs
 * its arguments as a list of small commands, each one a system call or two
 * whose effect the test checks at home.  "say" output goes through write(1).
 *
 *	write STR | ewrite STR | printf STR | read N | readfd FD N | seek FD OFF
 *	create PATH STR | cat PATH | open PATH | dup2 A B | close FD | cloexec FD
 *	getfd FD | pids | exit N | raise SIG | abort | sleep SEC | killparent SIG
 *	handler SIG | rhandler SIG | waitread | stat PATH | isatty FD | cwd
 *	chdir DIR | ls DIR | bulk N | poll FD MS | block SIG | alarm SEC
 *	exec PROG [ARG...]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "victim.h"

static void
on_sig(int sig)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "got %d\n", sig);

	if (write(1, buf, n) != n)
		_exit(98);
}

static void
catch(int sig, int restart)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(sig, &sa, NULL);
}

static int
cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char *argv[])
{
	char buf[65536], *names[256];
	struct stat st;
	struct pollfd pf;
	struct dirent *d;
	DIR *dir;
	ssize_t r;
	int i, fd, n, k;
	char *x;

	for (i = 1; i < argc; i++) {
		const char *c = argv[i];
#define ARG (i + 1 < argc ? argv[++i] : (say("missing argument to %s\n", c), exit(2), ""))
		if (strcmp(c, "write") == 0) {
			x = ARG;
			if (write(1, x, strlen(x)) != (ssize_t)strlen(x))
				return 3;
		} else if (strcmp(c, "ewrite") == 0) {
			x = ARG;
			if (write(2, x, strlen(x)) != (ssize_t)strlen(x))
				return 3;
		} else if (strcmp(c, "printf") == 0) {
			printf("%s", ARG);
		} else if (strcmp(c, "read") == 0 || strcmp(c, "readfd") == 0) {
			fd = c[4] ? atoi(ARG) : 0;
			n = atoi(ARG);
			r = read(fd, buf, n);
			if (r < 0) {
				say("read: %s\n", strerror(errno));
				return 4;
			}
			say("read %zd: %.*s\n", r, (int)r, buf);
		} else if (strcmp(c, "seek") == 0) {
			fd = atoi(ARG);
			if (lseek(fd, atol(ARG), SEEK_SET) == -1) {
				say("seek: %s\n", strerror(errno));
				return 4;
			}
		} else if (strcmp(c, "create") == 0) {
			x = ARG;
			if ((fd = open(x, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1) {
				say("create %s: %s\n", x, strerror(errno));
				return 4;
			}
			x = ARG;
			if (write(fd, x, strlen(x)) != (ssize_t)strlen(x) || close(fd) == -1)
				return 4;
		} else if (strcmp(c, "cat") == 0) {
			x = ARG;
			if ((fd = open(x, O_RDONLY)) == -1) {
				say("cat %s: %s\n", x, strerror(errno));
				return 4;
			}
			while ((r = read(fd, buf, sizeof(buf))) > 0)
				if (write(1, buf, r) != r)
					return 4;
			close(fd);
		} else if (strcmp(c, "open") == 0) {
			x = ARG;
			fd = open(x, O_RDONLY);
			say("open %s: %d\n", x, fd);
		} else if (strcmp(c, "dup2") == 0) {
			fd = atoi(ARG);
			n = atoi(ARG);
			if (dup2(fd, n) != n) {
				say("dup2: %s\n", strerror(errno));
				return 4;
			}
		} else if (strcmp(c, "close") == 0) {
			fd = atoi(ARG);
			if (close(fd) == -1)
				return 4;
		} else if (strcmp(c, "cloexec") == 0) {
			fd = atoi(ARG);
			fcntl(fd, F_SETFD, FD_CLOEXEC);
		} else if (strcmp(c, "getfd") == 0) {
			fd = atoi(ARG);
			say("getfd %d: %d\n", fd, fcntl(fd, F_GETFD));
		} else if (strcmp(c, "pids") == 0) {
			say("pid %d ppid %d tid %d\n", (int)getpid(), (int)getppid(),
			    (int)syscall(SYS_gettid));
		} else if (strcmp(c, "exit") == 0) {
			exit(atoi(ARG));
		} else if (strcmp(c, "raise") == 0) {
			raise(atoi(ARG));
		} else if (strcmp(c, "abort") == 0) {
			abort();
		} else if (strcmp(c, "sleep") == 0) {
			struct timespec ts = { atoi(ARG), 0 };
			while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
				;
		} else if (strcmp(c, "killparent") == 0) {
			if (kill(getppid(), atoi(ARG)) == -1) {
				say("kill: %s\n", strerror(errno));
				return 4;
			}
		} else if (strcmp(c, "handler") == 0 || strcmp(c, "rhandler") == 0) {
			catch(atoi(ARG), c[0] == 'r');
		} else if (strcmp(c, "waitread") == 0) {
			r = read(0, buf, 1);
			say("waitread %zd %s\n", r, r < 0 ? strerror(errno) : "");
		} else if (strcmp(c, "stat") == 0) {
			x = ARG;
			if (stat(x, &st) == -1)
				say("stat %s: %s\n", x, strerror(errno));
			else
				say("stat %s: %lld\n", x, (long long)st.st_size);
		} else if (strcmp(c, "isatty") == 0) {
			fd = atoi(ARG);
			say("isatty %d: %d\n", fd, isatty(fd));
		} else if (strcmp(c, "cwd") == 0) {
			say("cwd %s\n", getcwd(buf, sizeof(buf)) ? buf : strerror(errno));
		} else if (strcmp(c, "chdir") == 0) {
			x = ARG;
			if (chdir(x) == -1)
				say("chdir %s: %s\n", x, strerror(errno));
		} else if (strcmp(c, "ls") == 0) {
			x = ARG;
			if ((dir = opendir(x)) == NULL) {
				say("ls %s: %s\n", x, strerror(errno));
				return 4;
			}
			for (k = 0; k < 256 && (d = readdir(dir)) != NULL; )
				if (d->d_name[0] != '.')
					names[k++] = strdup(d->d_name);
			closedir(dir);
			qsort(names, k, sizeof(names[0]), cmp);
			for (n = 0; n < k; n++)
				say("%s\n", names[n]);
		} else if (strcmp(c, "bulk") == 0) {
			n = atoi(ARG);
			memset(buf, 'x', sizeof(buf));
			while (n > 0) {
				k = n > (int)sizeof(buf) ? (int)sizeof(buf) : n;
				if ((r = write(1, buf, k)) <= 0)
					return 4;
				n -= r;
			}
		} else if (strcmp(c, "poll") == 0) {
			pf.fd = atoi(ARG);
			pf.events = POLLIN;
			n = atoi(ARG);
			r = poll(&pf, 1, n);
			say("poll %zd %#x\n", r, r > 0 ? pf.revents : 0);
		} else if (strcmp(c, "block") == 0) {
			sigset_t set;
			sigemptyset(&set);
			sigaddset(&set, atoi(ARG));
			sigprocmask(SIG_BLOCK, &set, NULL);
		} else if (strcmp(c, "alarm") == 0) {
			alarm(atoi(ARG));
		} else if (strcmp(c, "exec") == 0) {
			if (i + 1 >= argc)
				return 2;
			execvp(argv[i + 1], argv + i + 1);
			say("exec %s: %s\n", argv[i + 1], strerror(errno));
			return 127;
		} else {
			say("unknown command %s\n", c);
			return 2;
		}
	}
	return 0;
}
