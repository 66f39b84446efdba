/*
 * forker - forks as a program under rf-run would, and checks what fork
 * semantics promise (tests/librfork.bats).  Prints "ok MODE" and exits 0,
 * or prints "BAD what" and exits 1.
 *
 *	basic N		N forks one after another: fork returns once in each
 *			process, the child's getpid is fork's answer and its
 *			getppid the parent, exit codes and one SIGCHLD (exited,
 *			never stopped or continued) per child
 *	threads		4 threads fork 3 times each, at once
 *	shared | sysv	fork with a MAP_SHARED / System V shm page: the child's
 *			write is seen by the parent (exit 11 if fork failed, EAGAIN)
 *	spawn		system, popen, posix_spawn, vfork
 *	ignored		SIGCHLD ignored: the child is reaped by the kernel
 *	Fork		the same checks as basic 1 through _Fork
 *	once		one fork, with a close-on-exec fd open, a SIGUSR1
 *			handler and SIGPIPE ignored: lists the open
 *			fds, the pid fork returned and the child's status; the
 *			child says "child ran" with its pid and exits 0
 *	kinds		once, with an fd of each kind open besides: a file
 *			at offset 100 (this program), a directory, a pipe, a
 *			socket pair, an eventfd, a fifo; and two anonymous
 *			mappings with room below them, one MAP_GROWSDOWN
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "victim.h"

extern char **environ;
pid_t _Fork(void);

static volatile sig_atomic_t exited, stopped;

static void
on_chld(int sig, siginfo_t *si, void *uc)
{
	if (si->si_code == CLD_EXITED)
		exited++;
	else if (si->si_code == CLD_STOPPED || si->si_code == CLD_CONTINUED)
		stopped++;
}

/* One fork with every check; code is the child's exit code. */
static void
one(pid_t (*f)(void), int code)
{
	pid_t me = getpid(), pid, rp, rpp;
	int p[2], st, n;
	char buf[128];
	FILE *in;

	if (pipe(p) == -1)
		bad("pipe: %s", strerror(errno));
	if ((pid = f()) == -1)
		bad("fork: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		n = snprintf(buf, sizeof(buf), "%d %d\n", getpid(), getppid());
		(void)!write(p[1], buf, n);
		_exit(code);
	}
	close(p[1]);
	/* Exactly one child wrote, exactly once. */
	in = fdopen(p[0], "r");
	n = 0;
	while (fgets(buf, sizeof(buf), in) != NULL) {
		if (sscanf(buf, "%d %d", &rp, &rpp) != 2)
			bad("child said '%s'", buf);
		if (rp != pid)
			bad("child's getpid %d, fork returned %d", rp, pid);
		if (rpp != me)
			bad("child's getppid %d, parent is %d", rpp, me);
		n++;
	}
	fclose(in);
	if (n != 1)
		bad("%d children reported for one fork", n);
	while ((rp = waitpid(pid, &st, 0)) == -1 && errno == EINTR)
		;
	if (rp != pid)
		bad("waitpid %d: %s", pid, strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != code)
		bad("child %d: status 0x%x, expected exit %d", pid, st, code);
	if (waitpid(-1, &st, WNOHANG) != -1 || errno != ECHILD)
		bad("another child to wait for after %d", pid);
}

static void
handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_chld;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
}

static void
basic(pid_t (*f)(void), int n)
{
	int i;

	handler();
	for (i = 0; i < n; i++)
		one(f, 3 + i % 50);
	if (exited != n || stopped != 0)
		bad("SIGCHLD: %d exited, %d stopped or continued, for %d children",
		    (int)exited, (int)stopped, n);
	/* The handler is the program's, as it set it. */
	struct sigaction sa;
	sigaction(SIGCHLD, NULL, &sa);
	if (sa.sa_sigaction != on_chld || (sa.sa_flags & SA_NOCLDSTOP))
		bad("SIGCHLD action changed");
}

static void *
thread(void *arg)
{
	pid_t pid;
	int i, st;

	for (i = 0; i < 3; i++) {
		if ((pid = fork()) == -1)
			bad("fork: %s", strerror(errno));
		if (pid == 0)
			_exit(20 + i);
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 20 + i)
			bad("thread child %d: status 0x%x", pid, st);
	}
	return arg;
}

static void
shared(int sysv)
{
	volatile int *page;
	pid_t pid;
	int id = -1, st;

	if (sysv) {
		if ((id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600)) == -1)
			bad("shmget: %s", strerror(errno));
		page = shmat(id, NULL, 0);
		shmctl(id, IPC_RMID, NULL);
		if (page == (void *)-1)
			bad("shmat: %s", strerror(errno));
	} else {
		page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED)
			bad("mmap: %s", strerror(errno));
	}
	*page = 1;
	if ((pid = fork()) == -1) {
		say("fork failed: %s\n", errno == EAGAIN ? "EAGAIN" : strerror(errno));
		exit(11);
	}
	if (pid == 0) {
		*page = 42;
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid || st != 0)
		bad("child: status 0x%x", st);
	if (*page != 42)
		bad("the child's write to shared memory is not seen (%d)", *page);
}

static void
spawn(void)
{
	char buf[16] = "";
	pid_t pid;
	FILE *f;
	int st;
	char *argv[] = { "sh", "-c", "exit 4", NULL };

	if ((st = system("exit 3")) != 3 << 8)
		bad("system: 0x%x", st);
	if ((f = popen("echo hi", "r")) == NULL || fgets(buf, sizeof(buf), f) == NULL ||
	    strcmp(buf, "hi\n") != 0 || pclose(f) != 0)
		bad("popen: '%s'", buf);
	if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) != 0 ||
	    waitpid(pid, &st, 0) != pid || st != 4 << 8)
		bad("posix_spawn: 0x%x", st);
	if ((pid = vfork()) == 0)
		_exit(5);
	if (pid == -1 || waitpid(pid, &st, 0) != pid || st != 5 << 8)
		bad("vfork: 0x%x", st);
}

/* "fds 0 1 2 3c": the open fds, c for close-on-exec. */
static void
list_fds(void)
{
	char line[4096] = "fds";
	size_t n = 3;
	int fd, fl;

	for (fd = 0; fd < 1024; fd++)
		if ((fl = fcntl(fd, F_GETFD)) != -1)
			n += snprintf(line + n, sizeof(line) - n, " %d%s", fd,
			    fl & FD_CLOEXEC ? "c" : "");
	say("%s\n", line);
}

static void
ignored(void)
{
	pid_t pid;
	int st;

	signal(SIGCHLD, SIG_IGN);
	if ((pid = fork()) == -1)
		bad("fork: %s", strerror(errno));
	if (pid == 0)
		_exit(0);
	/* Waits until the child is gone, then there is nothing to reap. */
	if (waitpid(pid, &st, 0) != -1 || errno != ECHILD)
		bad("waitpid with SIGCHLD ignored: %s", strerror(errno));
}

static void
on_usr1(int sig)
{
	(void)sig;
}

static void
once(void)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
	pid_t pid;
	int st;

	/* signal actions for the image to carry: a handler, an ignored one */
	sigaddset(&sa.sa_mask, SIGUSR2);
	if (sigaction(SIGUSR1, &sa, NULL) == -1 || signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		bad("sigaction: %s", strerror(errno));
	if (open("/dev/null", O_RDONLY | O_CLOEXEC) == -1)
		bad("open: %s", strerror(errno));
	list_fds();
	say("parent %d\n", getpid());
	if ((pid = fork()) == -1)
		bad("fork: %s", strerror(errno));
	if (pid == 0) {
		say("child ran pid %d ppid %d\n", getpid(), getppid());
		_exit(0);
	}
	say("forked %d\n", pid);
	if (waitpid(pid, &st, 0) != pid)
		bad("waitpid: %s", strerror(errno));
	if (WIFEXITED(st))
		say("child status exit %d\n", WEXITSTATUS(st));
	else
		say("child status signal %d\n", WTERMSIG(st));
}

/* 4 pages with 60 unmapped below them (mapped, then the rest let go) */
static void *
alone(int flags)
{
	char *a;

	if ((a = mmap(NULL, 64 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) ==
	    MAP_FAILED || munmap(a, 64 * 4096) == -1 ||
	    mmap(a + 60 * 4096, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
	    MAP_FIXED | flags, -1, 0) == MAP_FAILED)
		bad("mmap: %s", strerror(errno));
	return a + 60 * 4096;
}

static void
kinds(const char *self)
{
	char fifo[64];
	int fd, p[2], sv[2];

	/* say where, for the test to find them in the image */
	say("grows %p\n", alone(MAP_GROWSDOWN));
	say("lone %p\n", alone(0));
	if ((fd = open(self, O_RDONLY)) == -1 || lseek(fd, 100, SEEK_SET) != 100 ||
	    open("/", O_RDONLY | O_DIRECTORY) == -1 || pipe(p) == -1 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1 || eventfd(0, EFD_CLOEXEC) == -1)
		bad("kinds: %s", strerror(errno));
	snprintf(fifo, sizeof(fifo), "/tmp/forker-fifo.%d", (int)getpid());
	if (mkfifo(fifo, 0600) == -1 || open(fifo, O_RDWR) == -1 || unlink(fifo) == -1)
		bad("kinds: fifo: %s", strerror(errno));
	once();
}

int
main(int argc, char *argv[])
{
	pthread_t t[4];
	int i;

	if (argc < 2)
		bad("usage: forker mode [n]");
	if (strcmp(argv[1], "basic") == 0)
		basic(fork, argc > 2 ? atoi(argv[2]) : 1);
	else if (strcmp(argv[1], "Fork") == 0)
		basic(_Fork, 1);
	else if (strcmp(argv[1], "threads") == 0) {
		for (i = 0; i < 4; i++)
			pthread_create(&t[i], NULL, thread, NULL);
		for (i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
	} else if (strcmp(argv[1], "shared") == 0)
		shared(0);
	else if (strcmp(argv[1], "sysv") == 0)
		shared(1);
	else if (strcmp(argv[1], "spawn") == 0)
		spawn();
	else if (strcmp(argv[1], "ignored") == 0)
		ignored();
	else if (strcmp(argv[1], "once") == 0)
		once();
	else if (strcmp(argv[1], "kinds") == 0)
		kinds(argv[0]);
	else
		bad("unknown mode %s", argv[1]);
	say("ok %s\n", argv[1]);
	return 0;
}
