/*
 * reaper - run a command as a child subreaper: orphans of the test suite are
 * reaped here at once instead of waiting for PID 1 (slow on these machines).
 * Exits with the command's status (128+signal if it was killed).
 */
#include <err.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int
main(int argc, char *argv[])
{
	pid_t cmd, p;
	int st, ret = 70;

	if (argc < 2)
		errx(64, "usage: reaper cmd [arg...]");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		err(71, "PR_SET_CHILD_SUBREAPER");
	if ((cmd = fork()) == -1)
		err(71, "fork");
	if (cmd == 0) {
		execvp(argv[1], argv + 1);
		err(127, "%s", argv[1]);
	}
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	for (;;) {
		p = wait(&st);
		if (p == -1)
			break;
		if (p == cmd)
			ret = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	return ret;
}
