/*
 * fwdlocal.c - a remote fork child without a remote host: the stub and the
 * remote tree (pid namespace, proxy, child) both on this host, for tests
 * and benchmarks of the forwarding core before snapshots and transport are
 * wired in.  The child is a program exec'd under the proxy instead of a
 * restored image; everything after that is as on a remote host.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include "rf_fwd.h"

struct tree {
	char *const *argv;
	int conn;
	pid_t cpid;
	int flags;
};

static const char ctlmsg[] = "remote child";

/* The proxy, in the namespace with the parent's pid. */
static int
proxy_main(void *arg)
{
	struct tree *t = arg;
	struct rf_proxy_opts o;
	struct rf_fwd_io io;
	struct rf_err e;
	siginfo_t si;
	int lfd = -1, pidfd, st = 0;
	pid_t c;

	if ((c = rf_fwdns_child(t->cpid)) == -1)
		return errno == EEXIST ? RF_EX_TEMPFAIL : RF_EX_OSERR;
	if (c == 0) {
		/* Nothing of this host's: the home fds arrive at the exec.  The
		   listener is fd 0 then, taken by the proxy while this stops. */
		syscall(SYS_close_range, 0, ~0U, 0);
		if (rf_fwd_filter_install(getpid()) != 0)
			_exit(RF_EX_OSERR);
		raise(SIGSTOP);
		close(0);
		if (t->flags & RF_FWDLOCAL_CTL) {
			/* As the fork wrapper will: the answer comes from the proxy. */
			char buf[64];
			if (read(RF_FWDLOCAL_CTLFD, buf, sizeof(buf)) != sizeof(ctlmsg) ||
			    memcmp(buf, ctlmsg, sizeof(ctlmsg)) != 0)
				_exit(RF_EX_PROTOCOL);
		}
		execvp(t->argv[0], t->argv);
		dprintf(2, "%s: %s\n", t->argv[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	if (waitid(P_PID, c, &si, WSTOPPED | WEXITED) == -1 || si.si_code != CLD_STOPPED ||
	    (pidfd = syscall(SYS_pidfd_open, c, 0)) == -1 ||
	    (lfd = syscall(SYS_pidfd_getfd, pidfd, 0, 0)) == -1) {
		kill(c, SIGKILL);
		waitpid(c, NULL, 0);
		return RF_EX_OSERR;
	}
	close(pidfd);
	kill(c, SIGCONT);
	memset(&o, 0, sizeof(o));
	o.lfd = lfd;
	o.connfd = t->conn;
	o.child = c;
	o.ctlfd = t->flags & RF_FWDLOCAL_CTL ? RF_FWDLOCAL_CTLFD : -1;
	o.ctlmsg = ctlmsg;
	o.ctlmsglen = sizeof(ctlmsg);
	o.verbose = getenv("RF_FWD_VERBOSE") != NULL;
	rf_fwd_io_fd(&io, &t->conn);
	memset(&e, 0, sizeof(e));
	if (rf_proxy_serve(&io, &o, &st, &e) == -1) {
		if (o.verbose)
			dprintf(2, "%s\n", e.msg);
		return e.code ? e.code : RF_EX_SOFTWARE;
	}
	return 0;
}

/* Close every fd but two (and stderr, for the proxy's last words). */
static void
close_but(int keep, int keep2)
{
	struct dirent *d;
	DIR *dir;
	int fd, dfd;
	const char *err;

	if ((dir = opendir("/proc/self/fd")) == NULL)
		return;
	dfd = dirfd(dir);
	while ((d = readdir(dir)) != NULL) {
		fd = strtonum(d->d_name, 0, INT_MAX, &err);
		if (err == NULL && fd != dfd && fd != keep && fd != keep2 && fd != 2)
			close(fd);
	}
	closedir(dir);
}

/* The stub keeps every fd the caller has, close-on-exec ones included. */
static void
stub_exec(const char *stubpath, int conn)
{
	char cfd[16], *xs = NULL, *argv[6];
	struct dirent *d;
	DIR *dir;
	size_t len = 0;
	int fd, fl, argc = 0;
	const char *err;

	if ((dir = opendir("/proc/self/fd")) != NULL) {
		while ((d = readdir(dir)) != NULL) {
			fd = strtonum(d->d_name, 0, INT_MAX, &err);
			if (err != NULL || fd == dirfd(dir) || fd == conn)
				continue;
			if ((fl = fcntl(fd, F_GETFD)) == -1 || !(fl & FD_CLOEXEC))
				continue;
			fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
			if ((xs = realloc(xs, len + 16)) == NULL)
				_exit(RF_EX_OSERR);
			len += snprintf(xs + len, 16, "%s%d", len ? "," : "", fd);
		}
		closedir(dir);
	}
	fcntl(conn, F_SETFD, 0);
	snprintf(cfd, sizeof(cfd), "%d", conn);
	argv[argc++] = "rf-stub";
	if (xs != NULL) {
		argv[argc++] = "-x";
		argv[argc++] = xs;
	}
	argv[argc++] = "-c";
	argv[argc++] = cfd;
	argv[argc] = NULL;
	execv(stubpath, argv);
	dprintf(2, "rf-stub: %s: %s\n", stubpath, strerror(errno));
	_exit(RF_EX_OSERR);
}

int
rf_fwdlocal_tcp_pair(int sv[2])
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int l, one = 1;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) == -1 || listen(l, 1) == -1 ||
	    getsockname(l, (struct sockaddr *)&a, &len) == -1 ||
	    (sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		close(l);
		return -1;
	}
	if (connect(sv[0], (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    (sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) == -1) {
		close(sv[0]);
		close(l);
		return -1;
	}
	close(l);
	setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

int
rf_fwdlocal_spawn(char *const argv[], const char *stubpath, int flags,
    struct rf_fwdlocal *l, struct rf_err *e)
{
	struct tree t;
	int sv[2], rep[2], st, k;
	pid_t me = getpid(), init;

	memset(l, 0, sizeof(*l));
	if (flags & RF_FWDLOCAL_TCP ? rf_fwdlocal_tcp_pair(sv) :
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return rf_errno(e, "connection");
	if (pipe2(rep, O_CLOEXEC) == -1) {
		close(sv[0]);
		close(sv[1]);
		return rf_errno(e, "pipe");
	}
	if ((l->stub = fork()) == -1)
		goto fail;
	if (l->stub == 0) {
		close(sv[1]);
		close(rep[0]);
		close(rep[1]);
		stub_exec(stubpath, sv[0]);
	}
	if ((l->tree = fork()) == -1) {
		kill(l->stub, SIGKILL);
		waitpid(l->stub, NULL, 0);
		goto fail;
	}
	if (l->tree == 0) {
		close_but(sv[1], rep[1]);
		t.argv = argv;
		t.conn = sv[1];
		t.cpid = l->stub;
		t.flags = flags;
		k = 0;
		init = rf_fwdns_spawn(me, proxy_main, &t, &k);
		if (write(rep[1], &init, sizeof(init)) != sizeof(init) ||
		    write(rep[1], &k, sizeof(k)) != sizeof(k))
			_exit(RF_EX_OSERR);
		close(rep[1]);
		if (init == -1)
			_exit(RF_EX_OSERR);
		close(sv[1]);
		if (waitpid(init, &st, 0) == -1)
			_exit(RF_EX_OSERR);
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
	/* Only the stub and the proxy hold the connection: an end is an end. */
	close(sv[0]);
	close(sv[1]);
	close(rep[1]);
	k = read(rep[0], &l->init, sizeof(l->init));
	if (k == sizeof(l->init))
		k = read(rep[0], &l->userns, sizeof(l->userns));
	close(rep[0]);
	if (k != sizeof(int) || l->init <= 0) {
		kill(l->stub, SIGKILL);
		return rf_errf(e, RF_EX_OSERR, "remote tree: could not start it");
	}
	return 0;
fail:
	rf_errno(e, "fork");
	close(sv[0]);
	close(sv[1]);
	close(rep[0]);
	close(rep[1]);
	return -1;
}
