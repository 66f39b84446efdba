/*
 * rfork_victim SOCK STUB: the parent P of a remote fork done by hand
 * (tests/rfork.bats, docs/FORK.md steps 2-7).  P forks S, which stops
 * itself just before reading its control pipe K, as the fork wrapper will.
 * On SIGUSR1, P writes "stub" to K and continues S, which dials SOCK and
 * execs the rf-stub at STUB.  The remote copy of S gets "remote child" from
 * the same read (the proxy answers it), prints its pid and parent's pid on
 * stdout (a home fd) and exits 42.  P prints "pids P S K" first on stderr and
 * "status N" (waitpid) at the end on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void
child(int k, const char *sock, const char *stub)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char buf[64], cfd[16];
	ssize_t n;
	int c;

	raise(SIGSTOP);
	n = read(k, buf, sizeof(buf) - 1);
	if (n <= 0)
		_exit(90);
	buf[n] = '\0';
	if (strcmp(buf, "remote child") == 0) {
		close(k);
		printf("child pid %d ppid %d\n", (int)getpid(), (int)getppid());
		exit(42);
	}
	if (strcmp(buf, "stub") != 0)
		_exit(91);
	strncpy(a.sun_path, sock, sizeof(a.sun_path) - 1);
	if ((c = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)) == -1) {
		perror("stub connect");
		_exit(92);
	}
	snprintf(cfd, sizeof(cfd), "%d", c);
	execl(stub, "rf-stub", "-c", cfd, (char *)NULL);
	perror(stub);
	_exit(93);
}

int
main(int argc, char *argv[])
{
	int k[2], st, sig;
	sigset_t set;
	pid_t s;

	if (argc != 3)
		return 64;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (pipe2(k, O_CLOEXEC) == -1)
		return 71;
	fflush(stdout);
	if ((s = fork()) == -1)
		return 71;
	if (s == 0) {
		close(k[1]);
		child(k[0], argv[1], argv[2]);
	}
	close(k[0]);
	fprintf(stderr, "pids %d %d %d\n", (int)getpid(), (int)s, k[0]);
	if (sigwait(&set, &sig) != 0)
		return 71;
	if (write(k[1], "stub", 4) != 4 || kill(s, SIGCONT) == -1)
		return 71;
	while (waitpid(s, &st, 0) == -1)
		if (errno != EINTR)
			return 71;
	printf("status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}
