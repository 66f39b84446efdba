/*
 * rforkhost - one fork, for tests/rfork.bats under rf-run: the parent says
 * its pid and host, the child its pid, parent and host (its stdout is the
 * parent's, through the stub when it runs remotely) and exits with CODE;
 * the parent says the pid fork returned and the status waitpid gave.
 *	rforkhost [CODE]
 */
#include <stdio.h>
#include <stdlib.h>
#include "forkreport.h"

int
main(int argc, char *argv[])
{
	int code = argc > 1 ? atoi(argv[1]) : 0;
	pid_t pid;

	if ((pid = report_fork()) == -1)
		return 1;
	if (pid == 0)
		exit(code);
	return report_forked(pid) == -1;
}
