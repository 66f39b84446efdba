/*
 * rforkhost - one fork, for tests/rfork.bats under rf-run: the parent says
 * its pid and host, the child its pid, parent and host (its stdout is the
 * parent's, through the stub when it runs remotely) and exits with CODE;
 * the parent says the pid fork returned and the status waitpid gave.
 *	rforkhost [CODE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

int
main(int argc, char *argv[])
{
	char host[256];
	int code = argc > 1 ? atoi(argv[1]) : 0, st;
	pid_t pid;

	gethostname(host, sizeof(host));
	printf("parent %d host %s\n", (int)getpid(), host);
	fflush(stdout);
	if ((pid = fork()) == -1) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		gethostname(host, sizeof(host));
		printf("child %d ppid %d host %s\n", (int)getpid(), (int)getppid(), host);
		exit(code);
	}
	if (waitpid(pid, &st, 0) != pid) {
		perror("waitpid");
		return 1;
	}
	printf("forked %d status %s %d\n", (int)pid, WIFEXITED(st) ? "exit" : "signal",
	    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return 0;
}
