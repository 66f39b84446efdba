/*
 * fwdrun - test launcher of the forwarding core: run PROG as if it were the
 * remote fork child of this process (lib/fwdlocal.c), wait for its stub as a
 * parent waits for a child, and exit with its status (128+signal if killed).
 *
 *	fwdrun [-ktv] [-p pidfile] [-s rf-stub] prog [arg...]
 *
 * -k: the proxy arms at the child's read of its control fd (as for a
 * restored child), not at its execve.  -t: loopback TCP between stub and proxy.  -v: say how the stub ended and
 * which of SIGUSR1/SIGUSR2 this process got.  -p: write "stub PID" and
 * "init PID" (pid 1 of the remote tree, outer numbering) to pidfile.
 */
#include <err.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "rf_fwd.h"

static volatile sig_atomic_t got[3];

static void
on_usr(int sig)
{
	got[sig == SIGUSR1 ? 1 : 2]++;
}

static void
usage(void)
{
	fprintf(stderr, "usage: fwdrun [-ktv] [-p pidfile] [-s rf-stub] prog [arg...]\n");
	exit(RF_EX_USAGE);
}

int
main(int argc, char *argv[])
{
	struct rf_fwdlocal l;
	struct rf_err e;
	char self[PATH_MAX], stub[PATH_MAX + 32];
	const char *stubpath = NULL, *pidfile = NULL;
	int ch, flags = 0, verbose = 0, st, tst = 0;
	ssize_t n;
	FILE *f;

	while ((ch = getopt(argc, argv, "+hkp:s:tv")) != -1) {
		switch (ch) {
		case 'k': flags |= RF_FWDLOCAL_CTL; break;
		case 'p': pidfile = optarg; break;
		case 's': stubpath = optarg; break;
		case 't': flags |= RF_FWDLOCAL_TCP; break;
		case 'v': verbose = 1; break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	if (stubpath == NULL) {
		if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) == -1)
			err(RF_EX_OSERR, "/proc/self/exe");
		self[n] = '\0';
		snprintf(stub, sizeof(stub), "%s/../bin/rf-stub", dirname(self));
		stubpath = stub;
	}
	signal(SIGUSR1, on_usr);
	signal(SIGUSR2, on_usr);
	memset(&e, 0, sizeof(e));
	if (rf_fwdlocal_spawn(argv, stubpath, flags, &l, &e) == -1)
		errx(e.code, "%s", e.msg);
	if (pidfile != NULL) {
		if ((f = fopen(pidfile, "w")) == NULL)
			err(RF_EX_OSERR, "%s", pidfile);
		fprintf(f, "stub %d\ninit %d\n", (int)l.stub, (int)l.init);
		if (fclose(f) == EOF)
			err(RF_EX_IOERR, "%s", pidfile);
	}
	while (waitpid(l.stub, &st, 0) == -1)
		if (errno != EINTR)
			err(RF_EX_OSERR, "waitpid stub");
	while (waitpid(l.tree, &tst, 0) == -1)
		if (errno != EINTR)
			err(RF_EX_OSERR, "waitpid tree");
	if (verbose) {
		if (WIFEXITED(st))
			fprintf(stderr, "fwdrun: exit %d\n", WEXITSTATUS(st));
		else
			fprintf(stderr, "fwdrun: signal %d\n", WTERMSIG(st));
		if (got[1])
			fprintf(stderr, "fwdrun: parent got SIGUSR1\n");
		if (got[2])
			fprintf(stderr, "fwdrun: parent got SIGUSR2\n");
		fprintf(stderr, "fwdrun: proxy %d\n",
		    WIFEXITED(tst) ? WEXITSTATUS(tst) : 128 + WTERMSIG(tst));
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
