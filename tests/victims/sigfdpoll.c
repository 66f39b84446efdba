/*
 * sigfdpoll - a child waits in one poll on a pipe and a signalfd; the
 * parent sends it SIGUSR1.  For tests/rfork.bats under rf-run: the pipe is
 * home, the signalfd the child's own, so the proxy polls them apart and
 * must look at the child's pending signals for the signalfd.  The child
 * says which fd was ready and the signal it read; lines as rforkhost's.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include "forkreport.h"

int
main(void)
{
	struct signalfd_siginfo si;
	struct pollfd pf[2];
	int p[2], sfd, r;
	sigset_t set;
	pid_t pid;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (pipe(p) == -1 || sigprocmask(SIG_BLOCK, &set, NULL) == -1) {
		perror("pipe");
		return 2;
	}
	if ((pid = report_fork()) == -1)
		return 1;
	if (pid == 0) {
		if ((sfd = signalfd(-1, &set, SFD_CLOEXEC)) == -1) {
			perror("signalfd");
			_exit(2);
		}
		printf("waiting\n");
		fflush(stdout);
		pf[0] = (struct pollfd){ p[0], POLLIN, 0 };
		pf[1] = (struct pollfd){ sfd, POLLIN, 0 };
		r = poll(pf, 2, 20000);
		printf("poll %d pipe %d signalfd %d\n", r, pf[0].revents != 0, pf[1].revents != 0);
		if (r > 0 && (pf[1].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si))
			printf("signal %u\n", si.ssi_signo);
		fflush(stdout);
		_exit(0);
	}
	close(p[1]);	/* the child holds the write end: only the signal can wake it */
	sleep(1);
	kill(pid, SIGUSR1);
	return report_forked(pid) == -1;
}
