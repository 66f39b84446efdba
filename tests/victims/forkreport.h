/* forkreport.h - the lines of a one-fork victim that tests/rfork.bats reads
 * (ran_there): "parent PID host H", "child PID ppid P host H" and, once
 * the parent has waited, "forked PID status exit|signal N". */
#ifndef RF_FORKREPORT_H
#define RF_FORKREPORT_H

#include <stdio.h>
#include <unistd.h>
#include <sys/wait.h>

static void
report_parent(void)
{
	char host[256];

	gethostname(host, sizeof(host));
	printf("parent %d host %s\n", (int)getpid(), host);
	fflush(stdout);
}

static void
report_child(void)
{
	char host[256];

	gethostname(host, sizeof(host));
	printf("child %d ppid %d host %s\n", (int)getpid(), (int)getppid(), host);
}

/* The parent's line, fork, and the child's line in the child: fork's answer. */
static pid_t
report_fork(void)
{
	pid_t pid;

	report_parent();
	if ((pid = fork()) == -1)
		perror("fork");
	else if (pid == 0)
		report_child();
	return pid;
}

/* Waits for pid and says how it ended: its wait status, or -1. */
static int
report_forked(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid) {
		perror("waitpid");
		return -1;
	}
	printf("forked %d status %s %d\n", (int)pid, WIFEXITED(st) ? "exit" : "signal",
	    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return st;
}

#endif
