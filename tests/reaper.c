/*
 * reaper [-t seconds] cmd [arg...] - run a command as a child subreaper:
 * orphans of the test suite are reaped here at once instead of waiting for
 * PID 1 (slow on these machines).  With -t, everything still running after
 * that long (the command and whatever it left) is killed: a hung test must
 * not eat CI's time.  Exits with the command's status (128+signal if it was
 * killed), 124 if the time ran out.
 */
#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bsd/stdlib.h>

static volatile sig_atomic_t late;

static void
on_alarm(int sig)
{
	(void)sig;
	late = 1;
}

/* SIGKILL to pid's descendants, deepest first, then to pid. */
static void
kill_tree(pid_t pid, int self)
{
	char path[320];
	struct dirent *d;
	DIR *dir;
	FILE *f;
	long kid;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((dir = opendir(path)) != NULL) {
		while ((d = readdir(dir)) != NULL) {
			if (d->d_name[0] < '0' || d->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%s/children", (int)pid,
			    d->d_name);
			if ((f = fopen(path, "r")) == NULL)
				continue;
			while (fscanf(f, "%ld", &kid) == 1)
				kill_tree((pid_t)kid, 0);
			fclose(f);
		}
		closedir(dir);
	}
	if (!self)
		kill(pid, SIGKILL);
}

int
main(int argc, char *argv[])
{
	struct sigaction sa;
	const char *errstr;
	pid_t cmd, p;
	int st, ret = 70, secs = 0;

	if (argc > 2 && argv[1][0] == '-' && argv[1][1] == 't' && argv[1][2] == '\0') {
		secs = strtonum(argv[2], 1, 86400, &errstr);
		if (errstr != NULL)
			errx(64, "-t %s: %s", argv[2], errstr);
		argc -= 2;
		argv += 2;
	}
	if (argc < 2)
		errx(64, "usage: reaper [-t seconds] cmd [arg...]");
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
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;	/* wait() must see EINTR */
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	if (secs > 0)
		alarm(secs);
	for (;;) {
		p = wait(&st);
		if (p == -1 && errno == EINTR && late) {
			warnx("still running after %d s: killing what is left", secs);
			kill_tree(getpid(), 1);
			ret = 124;
			cmd = 0;
			continue;
		}
		if (p == -1)
			break;
		if (p == cmd)
			ret = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	return ret;
}
