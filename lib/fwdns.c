/*
 * fwdns.c - the remote child's process tree: a new pid namespace in which the
 * proxy has the origin parent's pid and the child the stub's, so that
 * getpid, getppid, gettid and raise in the child are native system calls
 * with the right answers (docs/FORK.md "Pids").
 *
 *	caller ── init (pid 1 in the namespace) ── proxy (ppid) ── child (cpid)
 *
 * clone3's set_tid needs CAP_CHECKPOINT_RESTORE over the namespace: root has
 * it; anyone else gets it in a new user namespace that maps only their own
 * uid and gid.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "rf_fwd.h"

static pid_t
clone3_tid(uint64_t flags, pid_t tid)
{
	struct clone_args a;

	memset(&a, 0, sizeof(a));
	a.flags = flags;
	a.exit_signal = SIGCHLD;
	if (tid > 0) {
		a.set_tid = (uintptr_t)&tid;
		a.set_tid_size = 1;
	}
	return syscall(SYS_clone3, &a, sizeof(a));
}

static int
write_file(const char *path, const char *s)
{
	int fd, r;

	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
		return -1;
	r = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return r;
}

static int
map_ids(pid_t pid, uid_t uid, gid_t gid)
{
	char path[64], buf[64];

	snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
	if (write_file(path, "deny") == -1 && errno != ENOENT)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	snprintf(buf, sizeof(buf), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if (write_file(path, buf) == -1)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	snprintf(buf, sizeof(buf), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	return write_file(path, buf);
}

/*
 * In the new init: die with the caller (a server's connection handler), so
 * that killing the caller ends the whole namespace.  The socket shows whether
 * the caller died before PR_SET_PDEATHSIG took: a dying process closes its
 * files before its children are told, so a peer still there means the signal
 * will come.  In a new user namespace, then wait for the id maps.
 */
static void
init_arm(int s, int userns)
{
	struct pollfd pfd = { s, POLLIN, 0 };
	char c;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || poll(&pfd, 1, 0) != 0 ||
	    write(s, "a", 1) != 1)
		_exit(71);
	if (userns && read(s, &c, 1) != 1)
		_exit(71);
	close(s);
}

/* pid 1: start the proxy, reap everything, end with the proxy's status. */
static void
init_main(int s, int userns, pid_t ppid, int (*fn)(void *), void *arg)
{
	pid_t proxy, p;
	int st, ret = 70;

	init_arm(s, userns);
	if ((proxy = clone3_tid(0, ppid)) == -1)
		_exit(errno == EEXIST ? 75 : 71);
	if (proxy == 0)
		_exit(fn(arg));
	/* init holds nothing: a pipe or socket ends when the proxy closes it. */
	close_range(0, ~0U, 0);
	for (;;) {
		p = wait(&st);
		if (p == -1 && errno == EINTR)
			continue;
		if (p == -1)
			break;
		if (p == proxy) {
			ret = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			/* The namespace ends with its init: nothing is left behind. */
			break;
		}
	}
	_exit(ret);
}

/* The caller's half of init_arm: init's id maps, then its go-ahead. */
static int
arm_init(int s, pid_t init, int userns)
{
	char c;

	if (read(s, &c, 1) != 1) {
		errno = ECHILD;
		return -1;
	}
	if (userns && (map_ids(init, getuid(), getgid()) == -1 || write(s, "g", 1) != 1))
		return -1;
	return 0;
}

pid_t
rf_fwdns_spawn(pid_t ppid, int (*fn)(void *), void *arg, int *userns)
{
	pid_t init;
	int sp[2], saved;

	if (ppid <= 1) {
		errno = EINVAL;
		return -1;
	}
	*userns = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1)
		return -1;
	init = clone3_tid(CLONE_NEWPID, 1);
	if (init == -1 && (errno == EPERM || errno == EACCES)) {
		*userns = 1;
		init = clone3_tid(CLONE_NEWUSER | CLONE_NEWPID, 1);
	}
	if (init == 0) {
		close(sp[0]);
		init_main(sp[1], *userns, ppid, fn, arg);
	}
	saved = errno;
	close(sp[1]);
	if (init > 0 && arm_init(sp[0], init, *userns) == -1) {
		saved = errno;
		kill(init, SIGKILL);
		waitpid(init, NULL, 0);
		init = -1;
	}
	close(sp[0]);
	if (init == -1)
		*userns = 0;
	errno = saved;
	return init;
}

pid_t
rf_fwdns_child(pid_t cpid)
{
	pid_t parent = getpid(), pid;

	if (cpid <= 1 || cpid == parent) {
		errno = EINVAL;
		return -1;
	}
	pid = clone3_tid(0, cpid);
	if (pid == 0) {
		/* Dies with the proxy, whatever happens to the connection. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(137);
	}
	return pid;
}
