/*
 * rf-stub - hold a remote fork child's pid, parent and open files at home,
 * perform its forwarded system calls, and end as it ends.  Started by the
 * toolkit (docs/FORK.md), not by hand.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include "rf_fwd.h"

static void
usage(void)
{
	fprintf(stderr, "usage: rf-stub [-h] [-x fd[,fd...]] -c fd\n");
	exit(RF_EX_USAGE);
}

static size_t
parse_fds(char *s, int **out)
{
	const char *errstr;
	char *t;
	size_t n = 0;
	int *v = NULL;

	while ((t = strsep(&s, ",")) != NULL) {
		if (*t == '\0')
			continue;
		if ((v = reallocarray(v, n + 1, sizeof(*v))) == NULL)
			err(RF_EX_OSERR, NULL);
		v[n++] = strtonum(t, 0, INT_MAX, &errstr);
		if (errstr != NULL)
			errx(RF_EX_USAGE, "-x %s: %s", t, errstr);
	}
	*out = v;
	return n;
}

/* Die as the child died, so that the parent's waitpid says the same. */
static void
die_like(int status)
{
	struct rlimit no = { 0, 0 };
	sigset_t set;
	int sig;

	if (WIFEXITED(status))
		exit(WEXITSTATUS(status));
	sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
	/* The child's core, if any, was dumped where it ran. */
	setrlimit(RLIMIT_CORE, &no);
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	exit(128 + sig);
}

int
main(int argc, char *argv[])
{
	struct rf_stub_opts o;
	struct rf_fwd_io io;
	struct rf_err e;
	const char *errstr;
	int ch, conn = -1, status = 0, r;

	setprogname("rf-stub");
	memset(&o, 0, sizeof(o));
	while ((ch = getopt(argc, argv, "c:hx:")) != -1) {
		switch (ch) {
		case 'c':
			conn = strtonum(optarg, 0, INT_MAX, &errstr);
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-c %s: %s", optarg, errstr);
			break;
		case 'x':
			o.ncloexec = parse_fds(optarg, (int **)&o.cloexec);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 0 || conn < 0)
		usage();
	if (fcntl(conn, F_GETFD) == -1)
		err(RF_EX_USAGE, "-c %d", conn);
	o.connfd = conn;
	rf_fwd_io_fd(&io, &conn);
	memset(&e, 0, sizeof(e));
	r = rf_stub_serve(&io, &o, &status, &e);
	if (r == RF_STUB_EXITED)
		die_like(status);
	/* The remote host or the link is gone, and with it the child. */
	if (r == -1)
		warnx("%s", e.msg);
	else
		warnx("pid %d: connection to the remote child lost", (int)getpid());
	die_like(SIGKILL);
	return RF_EX_SOFTWARE;
}
