/*
 * rf-server - the per-host daemon: authenticates peers, takes their images
 * and starts the processes through rf-restore.  One child per connection;
 * the parent only accepts, reaps and stops.  A fork connection's child stays
 * as long as the remote child's tree, which dies with it.  docs/PROTOCOL.md.
 */
#include <err.h>
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <jansson.h>
#include <sys/uio.h>
#include <sys/un.h>
#include "rf_fwd.h"
#include "rf_image.h"
#include "rf_net.h"
#include "rf_lazy.h"
#include "rf_restore.h"

#define MAXPEERS 1024	/* connections at once: a remote child holds one for its life */
#define MAXIDLE 2	/* connection children kept free for the next connections */

static int timeout_ms = RF_TIMEOUT_MS;
static int allow_root;
static char restore_path[PATH_MAX];
static char peer[80];			/* in a connection child: who we talk to */
static volatile sig_atomic_t conn_fd = -1;
static pid_t mainpid;
static int back_fd = -1;		/* in a connection child: to the server, which
					   may give it the next connection (handler) */

static void
usage(void)
{
	fprintf(stderr, "usage: rf-server [-R] [-k key] [-l addr:port] [-t seconds]\n");
	exit(RF_EX_USAGE);
}

/* One event, one line, one write: lines of concurrent children never mix. */
static void __attribute__((format(printf, 1, 2)))
logx(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "rf-server: %s%s", peer, peer[0] ? ": " : "");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(line);
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

/* rf-restore beside our own binary, else from PATH. */
static void
find_restore(void)
{
	char self[PATH_MAX - 16], *slash;
	ssize_t n;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			snprintf(restore_path, sizeof(restore_path), "%s/rf-restore", self);
			if (access(restore_path, X_OK) == 0)
				return;
		}
	}
	strlcpy(restore_path, "rf-restore", sizeof(restore_path));
}

struct restore {
	pid_t pid, pg;
	int in, out, errfd;	/* its stdin, stdout, stderr (our ends) */
	int pidfd;
	char errmsg[512];	/* last line it wrote on stderr */
	size_t errlen;
};

static int
spawn_restore(struct restore *rs, struct rf_err *e)
{
	int pin[2], pout[2], perr[2];
	char *argv[4];
	int argc = 0;

	memset(rs, 0, sizeof(*rs));
	if (pipe2(pin, O_CLOEXEC) == -1 || pipe2(pout, O_CLOEXEC) == -1 ||
	    pipe2(perr, O_CLOEXEC) == -1)
		return rf_errno(e, "pipe");
	fcntl(pin[1], F_SETPIPE_SZ, 1 << 20);
	argv[argc++] = "rf-restore";
	argv[argc++] = "-S";
	if (geteuid() == 0 && !allow_root)
		argv[argc++] = "-U";
	argv[argc] = NULL;
	if ((rs->pid = fork()) == -1)
		return rf_errno(e, "fork");
	if (rs->pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		/* Its own group: on abort the whole group goes, half-built children too. */
		setpgid(0, 0);
		if (dup2(pin[0], 0) == -1 || dup2(pout[1], 1) == -1 || dup2(perr[1], 2) == -1)
			_exit(RF_EX_OSERR);
		execvp(restore_path, argv);
		dprintf(2, "rf-restore: %s: %s\n", restore_path, strerror(errno));
		_exit(RF_EX_UNAVAILABLE);
	}
	setpgid(rs->pid, rs->pid);
	rs->pg = rs->pid;
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	rs->in = pin[1];
	rs->out = pout[0];
	rs->errfd = perr[0];
	fcntl(rs->errfd, F_SETFL, O_NONBLOCK);
	rs->pidfd = syscall(SYS_pidfd_open, rs->pid, 0);
	return 0;
}

/* Keep the last line rf-restore wrote on stderr: the reason it failed. */
static void
drain_err(struct restore *rs)
{
	char buf[4096];
	ssize_t n, i;

	while ((n = read(rs->errfd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				rs->errlen = 0;
				continue;
			}
			if (rs->errlen == 0)
				rs->errmsg[0] = '\0';
			if (rs->errlen < sizeof(rs->errmsg) - 1) {
				rs->errmsg[rs->errlen++] = buf[i];
				rs->errmsg[rs->errlen] = '\0';
			}
		}
	}
}

/* Wait for rf-restore to exit, up to ms.  Returns its exit code or -1. */
static int
wait_restore(struct restore *rs, int ms)
{
	struct pollfd pfd = { rs->pidfd, POLLIN, 0 };
	int st;

	if (rs->pid <= 0)
		return -1;
	if (rs->pidfd >= 0)
		while (poll(&pfd, 1, ms) == -1 && errno == EINTR)
			;
	if (waitpid(rs->pid, &st, rs->pidfd >= 0 ? WNOHANG : 0) != rs->pid)
		return -1;
	rs->pid = 0;
	drain_err(rs);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Undo everything rf-restore started: nothing half-built may remain. */
static void
abort_restore(struct restore *rs)
{
	char buf[4096];
	const char *p;
	pid_t pg = rs->pg;
	ssize_t n;

	if (rs->in >= 0)
		close(rs->in);
	rs->in = -1;
	if (rs->pid > 0 && wait_restore(rs, 5000) == -1) {
		kill(-pg, SIGKILL);
		wait_restore(rs, 5000);
	}
	if (pg > 0)
		kill(-pg, SIGKILL);
	/* It may have finished a process in a session of its own. */
	fcntl(rs->out, F_SETFL, O_NONBLOCK);
	if ((n = read(rs->out, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		if ((p = strstr(buf, "\"pid\"")) != NULL && (p = strchr(p, ':')) != NULL &&
		    atoi(p + 1) > 0)
			kill(atoi(p + 1), SIGKILL);
	}
}

static void
close_restore(struct restore *rs)
{
	if (rs->in >= 0)
		close(rs->in);
	close(rs->out);
	close(rs->errfd);
	if (rs->pidfd >= 0)
		close(rs->pidfd);
}

/* rf-restore's one JSON line, within timeout_ms. */
static json_t *
read_answer(struct restore *rs)
{
	char buf[65536];
	size_t n = 0;
	ssize_t r;
	struct pollfd pfd = { rs->out, POLLIN, 0 };
	long end = rf_now_ms() + timeout_ms;
	json_t *j;

	while (n < sizeof(buf) - 1 && memchr(buf, '\n', n) == NULL) {
		if (end - rf_now_ms() <= 0 || poll(&pfd, 1, end - rf_now_ms()) <= 0)
			return NULL;
		if ((r = read(rs->out, buf + n, sizeof(buf) - 1 - n)) <= 0)
			break;
		n += r;
	}
	buf[n] = '\0';
	if ((j = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL)) == NULL)
		return NULL;
	if (!json_is_object(j) || !json_is_integer(json_object_get(j, "pid")) ||
	    json_integer_value(json_object_get(j, "pid")) <= 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static int
fail(struct rf_chan *c, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	logx("%s", msg);
	rf_chan_send_error(c, code, msg);
	rf_chan_linger(c, 2000);
	return code;
}

static int
do_restore(struct rf_chan *c)
{
	struct restore rs;
	struct rf_err e;
	uint64_t bytes;
	long t0 = rf_now_ms(), t1, t2;
	const uint8_t *d;
	size_t len;
	json_t *j;
	pid_t pid;
	int r, code, type;

	if (spawn_restore(&rs, &e) == -1)
		return fail(c, e.code, "restore: %s", e.msg);
	r = rf_xfer_recv(c, rs.in, &bytes, &e);
	if (r == -1) {
		abort_restore(&rs);
		close_restore(&rs);
		logx("aborted after %llu bytes: %s", (unsigned long long)bytes, e.msg);
		if (e.code != RF_EX_UNAVAILABLE) {
			rf_chan_send_error(c, e.code, e.msg);
			rf_chan_linger(c, 2000);
		}
		return e.code;
	}
	close(rs.in);
	rs.in = -1;
	t1 = rf_now_ms();
	j = r == 0 ? read_answer(&rs) : NULL;
	code = wait_restore(&rs, j != NULL ? timeout_ms : 5000);
	if (j == NULL || code != 0) {
		if (j != NULL)
			kill(json_integer_value(json_object_get(j, "pid")), SIGKILL);
		json_decref(j);
		abort_restore(&rs);
		close_restore(&rs);
		if (code == -1)
			return fail(c, RF_EX_TEMPFAIL, "restore did not finish within %d s",
			    timeout_ms / 1000);
		if (code == 0 || code > 128)
			return fail(c, RF_EX_SOFTWARE, "restore failed (%s %d): %s",
			    code ? "signal" : "exit", code ? code - 128 : 0,
			    rs.errmsg[0] ? rs.errmsg : "no pid in its answer");
		return fail(c, code, "restore failed (exit %d): %s", code,
		    rs.errmsg[0] ? rs.errmsg : "no reason given");
	}
	close_restore(&rs);
	pid = json_integer_value(json_object_get(j, "pid"));
	json_object_set_new(j, "host", json_string(rf_hostname()));
	json_object_set_new(j, "bytes", json_integer(bytes));
	json_object_set_new(j, "recv_ms", json_integer(t1 - t0));
	t2 = rf_now_ms();
	json_object_set_new(j, "restore_ms", json_integer(t2 - t1));

	/* Two phases: it runs only when the sender knows it exists. */
	if (rf_chan_send_json(c, RF_FR_READY, j, &e) == -1 ||
	    (r = rf_chan_recv(c, &type, &d, &len, &e)) != 1 || type != RF_FR_COMMIT) {
		kill(pid, SIGKILL);
		logx("pid %d killed: no commit from the sender (%s)", pid,
		    r == 0 ? "connection closed" : r == 1 ? "another frame" : e.msg);
		json_decref(j);
		return RF_EX_UNAVAILABLE;
	}
	if (kill(pid, SIGCONT) == -1) {
		json_decref(j);
		return fail(c, RF_EX_SOFTWARE, "pid %d vanished before it could run", pid);
	}
	json_object_set_new(j, "total_ms", json_integer(rf_now_ms() - t0));
	if (rf_chan_send_json(c, RF_FR_REPLY, j, &e) == -1)
		logx("pid %d runs, but the reply was lost: %s", pid, e.msg);
	else
		logx("pid %d runs: %llu bytes, %ld ms", pid, (unsigned long long)bytes,
		    rf_now_ms() - t0);
	json_decref(j);
	return 0;
}

/*
 * Remote fork (docs/FORK.md step 6, docs/PROTOCOL.md): on the request the
 * connection handler builds the tree with rf_fwdns_spawn; the proxy reads
 * the image from the connection and restores C in-process as it arrives,
 * sends the reply, says "ready" on a pipe, and waits for its stub: on the
 * fork's own connection (handed over by rf-send -H), or on an abstract unix
 * socket named by the token, where the dialing stub's connection handler
 * hands over its socket and channel keys (SCM_RIGHTS).
 */
#define TOKEN_LEN 32

static const char ctlmsg[] = "remote child";

struct forkw {
	struct rf_chan *c;	/* the image comes on it; the proxy reads it */
	long t0;
	int k, ready, lsock;
	int psock;		/* post-copy: the stub's page connection comes here */
	pid_t cpid, ppid;
	char token[TOKEN_LEN + 1];
	char host[RF_FWD_HOST_MAX];	/* the child's host as its home names it, or "" */
	struct rf_fd_supply *sup;	/* [0] the control socket, then "fds" */
	size_t nsup;
	int ph;			/* the placeholder, preset at these fds (preset_placeholders) */
	int *preset;
	size_t npreset;
};

/*
 * A remote child's fork that takes fds of this host along ("fds": KEY,
 * docs/FORK.md "Grandchildren"): its proxy serves them once on the abstract
 * socket rfork-fds-KEY.  Only a process of our own user may serve them.
 */
static int
take_fds(struct forkw *w, const char *key, char *why, size_t whylen)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(RF_FWD_FDS_BATCH * sizeof(int))]; } cb;
	int32_t pairs[2 * RF_FWD_FDS_BATCH];
	struct sockaddr_un a;
	struct ucred uc;
	socklen_t ul = sizeof(uc);
	struct rf_fd_supply *v;
	struct cmsghdr *cm;
	struct msghdr mh;
	struct iovec iov;
	ssize_t n;
	size_t i, k, nfd;
	int s, fd, l;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	l = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "rfork-fds-%s", key);
	if ((s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(s, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + 1 + l)
	    == -1) {
		snprintf(why, whylen, "no fds to take on this host: %s", strerror(errno));
		if (s >= 0)
			close(s);
		return -1;
	}
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == -1 || uc.uid != geteuid()) {
		snprintf(why, whylen, "the fds are served by another user");
		close(s);
		return -1;
	}
	for (;;) {
		memset(&mh, 0, sizeof(mh));
		iov.iov_base = pairs;
		iov.iov_len = sizeof(pairs);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cb.b;
		mh.msg_controllen = sizeof(cb.b);
		if ((n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC)) <= 0)
			break;
		nfd = 0;
		cm = CMSG_FIRSTHDR(&mh);
		if (cm != NULL && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			k = i;
			if ((size_t)n < (k + 1) * 2 * sizeof(int32_t) || pairs[2 * k] < 0 ||
			    pairs[2 * k] > (1 << 20) || pairs[2 * k] == w->k ||
			    w->nsup > RF_FWD_FDS_MAX ||
			    (v = reallocarray(w->sup, w->nsup + 1, sizeof(*v))) == NULL) {
				close(fd);
				continue;
			}
			w->sup = v;
			v[w->nsup++] = (struct rf_fd_supply){ pairs[2 * k], fd,
			    pairs[2 * k + 1] & FD_CLOEXEC };
		}
		if (mh.msg_flags & MSG_CTRUNC)
			break;
	}
	close(s);
	if (n < 0) {
		snprintf(why, whylen, "taking the fds: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Where a proxy waits for its stub's connections: kind "stub" or "pages". */
static void
stub_addr(struct sockaddr_un *a, socklen_t *len, const char *kind, const char *token)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	*len = offsetof(struct sockaddr_un, sun_path) + 1 +
	    snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "rfork-%s-%s", kind, token);
}

/*
 * A connection a handler passes on (do_stub): the token, the channel state
 * and the socket.  1 with *c set; 0 if it was not one for this token.
 */
static int
take_passed(int lsock, const char *token, struct rf_chan *c, struct rf_err *e)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cm;
	struct rf_chan_state st;
	char tok[TOKEN_LEN + 1];
	struct iovec iov[2] = { { tok, sizeof(tok) }, { &st, sizeof(st) } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = cm.b,
	    .msg_controllen = sizeof(cm.b) };
	struct cmsghdr *h;
	ssize_t n;
	int s, fd;

	if ((s = accept4(lsock, NULL, NULL, SOCK_CLOEXEC)) == -1)
		return 0;
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ 5, 0 },
	    sizeof(struct timeval));
	n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
	close(s);
	h = CMSG_FIRSTHDR(&mh);
	if (n != (ssize_t)(sizeof(tok) + sizeof(st)) || h == NULL || h->cmsg_type != SCM_RIGHTS)
		return 0;
	memcpy(&fd, CMSG_DATA(h), sizeof(fd));
	if (memcmp(tok, token, sizeof(tok)) != 0) {
		close(fd);
		return 0;
	}
	if (rf_sock_longlived(fd, timeout_ms) == -1 || rf_chan_import(c, fd, &st, e) == -1) {
		close(fd);
		sodium_memzero(&st, sizeof(st));
		return rf_errno(e, "stub connection");
	}
	sodium_memzero(&st, sizeof(st));
	return 1;
}

/* Post-copy (lib/lazy.c): the stub's page connection, through its handler. */
static int
take_pages(void *ctx, struct rf_chan *c, int ms, int stopfd, struct rf_err *e)
{
	struct forkw *w = ctx;
	struct pollfd pfd[2] = { { w->psock, POLLIN, 0 }, { stopfd, POLLIN, 0 } };
	long end = rf_now_ms() + ms;
	int r;

	for (;;) {
		if (end - rf_now_ms() <= 0)
			return rf_errf(e, RF_EX_TEMPFAIL, "post-copy: no page connection within %d s",
			    ms / 1000);
		if (poll(pfd, 2, end - rf_now_ms()) <= 0)
			continue;
		if (pfd[1].revents)
			return rf_errf(e, RF_EX_SOFTWARE, "post-copy: stopped");
		if (pfd[0].revents && (r = take_passed(w->psock, w->token, c, e)) != 0)
			break;
	}
	close(w->psock);
	w->psock = -1;
	return r == 1 ? 0 : -1;
}

static void
proxy_fail(struct forkw *w, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || n > (int)sizeof(msg) - 2)
		n = sizeof(msg) - 2;
	msg[n++] = '\n';
	(void)!write(w->ready, msg, n);
}

/*
 * The stub comes on the fork connection itself (rf-send -H handed it over
 * through librfork: its HELLO is the next frame), or dials and has its
 * handler pass its socket and channel here.  An end of the fork connection
 * is no stub: then only a dialing one can come.  -1 on timeout.
 */
static int
take_stub(struct forkw *w, struct rf_chan *c, struct rf_err *e)
{
	struct pollfd pfd[2] = { { w->lsock, POLLIN, 0 }, { w->c->fd, POLLIN, 0 } };
	long end = rf_now_ms() + timeout_ms;
	int r;

	for (;;) {
		if (end - rf_now_ms() <= 0)
			return rf_errf(e, RF_EX_TEMPFAIL, "no stub within %d s", timeout_ms / 1000);
		if (poll(pfd, pfd[1].fd >= 0 ? 2 : 1, end - rf_now_ms()) <= 0)
			continue;
		if (pfd[1].fd >= 0 && pfd[1].revents != 0) {
			char b;

			if (recv(pfd[1].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
				close(w->lsock);
				w->lsock = -1;
				*c = *w->c;
				if (rf_sock_longlived(c->fd, timeout_ms) == -1)
					return rf_errno(e, "stub connection");
				logx("stub connected on the fork's connection");
				return 0;
			}
			rf_chan_close(w->c);
			pfd[1].fd = -1;
		}
		if (pfd[0].revents == 0 || (r = take_passed(w->lsock, w->token, c, e)) == 0)
			continue;
		close(w->lsock);
		w->lsock = -1;
		if (pfd[1].fd >= 0)
			rf_chan_close(w->c);
		return r == 1 ? 0 : -1;
	}
}

/* rf_proxy_serve's wait for the stub: the connection, as its io. */
struct stubwait {
	struct forkw *w;
	struct rf_chan *c;
	struct rf_chan_io *ci;
	struct rf_fwd_io *io;
	int none;		/* no stub came: the proxy kills the child */
};

static int
stub_conn(void *arg, struct rf_err *e)
{
	struct stubwait *s = arg;

	if (take_stub(s->w, s->c, e) == -1) {
		logx("pid %d killed: %s", (int)s->w->cpid, e->msg);
		s->none = 1;
		return -1;
	}
	/*
	 * C goes on only now, woken from here: continued while the stub was
	 * still to come, it waited in the filter on the other CPU, and each
	 * placeholder (ADDFD, which C installs itself) cost a wake-up there,
	 * behind the fork's ending at home: 0.5 ms more in all.
	 */
	kill(s->w->cpid, SIGCONT);
	rf_chan_fwd_io(s->io, s->ci, s->c);
	return s->c->fd;
}

/*
 * The image as the proxy reads it: the DATA payloads of the fork connection,
 * read where they were decrypted, so C is rebuilt while the rest still
 * travels, with no copy kept anywhere.  The handler does not read the
 * connection meanwhile; it answers once the proxy is done.
 */
struct feed {
	struct rf_chan *c;
	const uint8_t *d;
	size_t len;
	uint64_t bytes;
	int end, failed;
	struct rf_err e;	/* why the stream failed */
};

static ssize_t
feed_read(void *ctx, void *buf, size_t n)
{
	struct feed *f = ctx;
	int type, r;

	while (f->len == 0) {
		if (f->end)
			return 0;
		if (f->failed) {
			errno = EIO;
			return -1;
		}
		r = rf_chan_recv(f->c, &type, &f->d, &f->len, &f->e);
		if (r == 1 && type == RF_FR_DATA) {
			f->bytes += f->len;
			continue;
		}
		f->len = 0;
		if (r == 1 && type == RF_FR_END) {
			f->end = 1;
			return 0;
		}
		if (r == 0)
			rf_errf(&f->e, RF_EX_PROTOCOL, "sender closed the connection after %llu "
			    "bytes, before the end of the image", (unsigned long long)f->bytes);
		else if (r == 1)
			rf_errf(&f->e, RF_EX_PROTOCOL, "unexpected frame type %d in the image", type);
		f->failed = 1;
	}
	if (n > f->len)
		n = f->len;
	memcpy(buf, f->d, n);
	f->d += n;
	f->len -= n;
	return n;
}

/*
 * A restore that failed: a broken stream says so; otherwise the rest of the
 * image is read and dropped, so the sender hears the reason, not a reset.
 */
static int
feed_fail(struct forkw *w, struct feed *f, struct rf_err *e)
{
	static char junk[1 << 16];

	if (f->failed) {
		proxy_fail(w, "aborted after %llu bytes: %s", (unsigned long long)f->bytes,
		    f->e.msg);
		return f->e.code ? f->e.code : RF_EX_IOERR;
	}
	while (feed_read(f, junk, sizeof(junk)) > 0)
		;
	proxy_fail(w, "restore: %s", e->msg[0] ? e->msg : strerror(errno));
	return e->code ? e->code : RF_EX_SOFTWARE;
}

/*
 * The placeholder at each of the image's fds (those its home will hold:
 * not the control socket, not fds of this host supplied), put there by the
 * restore with everything else, rather than one ADDFD each when the proxy
 * arms: each of those is a round trip to the child, and now and then a
 * wake-up on the other CPU (0.3-0.9 ms).  The stub's HELLO says the same
 * fds; the proxy adds what differs.  Without a pipe, the proxy does it all.
 */
static void
preset_placeholders(struct forkw *w, const struct rf_proc *p, struct rf_restore_opts *ro)
{
	struct rf_fd_supply *v;
	size_t i, k, n = w->nsup;
	int pp[2];

	if (pipe2(pp, O_CLOEXEC) == -1)
		return;
	close(pp[0]);
	if ((v = calloc(w->nsup + p->nfd, sizeof(*v))) == NULL ||
	    (w->preset = calloc(2 * p->nfd + 1, sizeof(int))) == NULL) {
		free(v);
		close(pp[1]);
		return;
	}
	memcpy(v, w->sup, w->nsup * sizeof(*v));
	for (i = 0; i < p->nfd; i++) {
		for (k = 0; k < w->nsup && w->sup[k].fd != p->fds[i].fd; k++)
			;
		if (k < w->nsup)
			continue;
		v[n++] = (struct rf_fd_supply){ p->fds[i].fd, pp[1], p->fds[i].fdflags & FD_CLOEXEC };
		w->preset[2 * w->npreset] = p->fds[i].fd;
		w->preset[2 * w->npreset++ + 1] = p->fds[i].fdflags & FD_CLOEXEC;
	}
	ro->supply = v;
	ro->nsupply = n;
	w->ph = pp[1];
}

static int
fork_proxy(void *arg)
{
	struct forkw *w = arg;
	struct rf_restore_opts ro;
	struct rf_restore rs;
	struct rf_proxy_opts o;
	struct rf_fwd_io io;
	struct rf_chan_io ci;
	struct stubwait sw;
	struct rf_chan c;
	struct rf_proc p = { 0 };
	struct rf_imgr r;
	struct rf_err e = { 0 };
	char msg[64];
	struct feed f = { 0 };
	struct rf_lazy *lz = NULL;
	siginfo_t si;
	json_t *j;
	size_t i;
	int ctl[2], lfd, pidfd, st, sr;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) == -1) {
		proxy_fail(w, "socketpair: %s", strerror(errno));
		return RF_EX_OSERR;
	}
	w->sup[0] = (struct rf_fd_supply){ w->k, ctl[1], 0 };
	memset(&ro, 0, sizeof(ro));
	ro.supply = w->sup;
	ro.nsupply = w->nsup;
	ro.fwd = 1;
	ro.no_root = geteuid() == 0 && !allow_root;
	ro.lazy = 1;
	conn_fd = -1;
	f.c = w->c;
	if (rf_imgr_start_src(&r, feed_read, &f, &p, &e) == -1)
		return feed_fail(w, &f, &e);
	/* A remote child's fork: the image is of its local copy, the pid the
	   new stub's at home (docs/FORK.md "Grandchildren"). */
	if (w->cpid == 0)
		w->cpid = p.pid;
	if (w->cpid < 2 || w->cpid == w->ppid) {
		rf_errf(&e, RF_EX_DATAERR, "pid %d cannot be a child of %d", (int)w->cpid,
		    (int)w->ppid);
		return feed_fail(w, &f, &e);
	}
	ro.pid = w->cpid;
	preset_placeholders(w, &p, &ro);
	if (rf_restore_check(&rs, &p, &ro, 1, &e) == -1 || rf_restore_build(&rs, &r, &e) == -1)
		return feed_fail(w, &f, &e);
	/*
	 * Post-copy: the missing pages come on the stub's page connection, to
	 * a thread started while C takes its last steps on the other CPU.
	 */
	if (rs.uffd >= 0 && rf_lazy_start(&lz, rs.uffd, w->cpid, r.lazy, r.nlazy, take_pages, w,
	    timeout_ms, &e) == -1) {
		close(rs.uffd);
		proxy_fail(w, "pid %d killed: %s", (int)w->cpid, e.msg);
		rf_restore_abort(&rs);
		return e.code ? e.code : RF_EX_OSERR;
	}
	if (rf_restore_finish(&rs, &e) == -1) {
		rf_lazy_free(lz);
		return feed_fail(w, &f, &e);
	}
	/* C holds the fds of this host it came with: a copy kept here would
	   keep a pipe open after C closed its end, its reader never at EOF. */
	for (i = 1; i < w->nsup; i++)
		close(w->sup[i].from);
	/*
	 * The child leads a process group of its own here: in the server's,
	 * whose members' parents are all inside it or outside the session, it
	 * would be orphaned, and the kernel would drop the SIGTSTP its stub
	 * passes on (docs/FORK.md "The stub", job control).
	 */
	setpgid(w->cpid, w->cpid);
	/* The filter's listener, taken while the child is still held. */
	if ((pidfd = syscall(SYS_pidfd_open, w->cpid, 0)) == -1 ||
	    (lfd = syscall(SYS_pidfd_getfd, pidfd, rs.listener, 0)) == -1) {
		proxy_fail(w, "pidfd_getfd: %s", strerror(errno));
		rf_restore_abort(&rs);
		rf_lazy_free(lz);
		return RF_EX_OSERR;
	}
	close(pidfd);
	if (rf_restore_release(&rs, &e) == -1) {
		proxy_fail(w, "restore: %s", e.msg[0] ? e.msg : strerror(errno));
		rf_lazy_free(lz);
		return e.code ? e.code : RF_EX_SOFTWARE;
	}
	close(ctl[1]);
	/* The child has meanwhile taken its SIGSTOP. */
	if (waitid(P_PID, w->cpid, &si, WSTOPPED | WEXITED) == -1 || si.si_code != CLD_STOPPED) {
		proxy_fail(w, "the restored child ended before it could run");
		rf_lazy_free(lz);
		return RF_EX_SOFTWARE;
	}
	/* The reply is ours to send: this copy of the channel read the image. */
	j = json_pack("{s:s,s:i,s:s,s:I,s:i,s:I}", "token", w->token, "pid", (int)w->cpid, "host",
	    rf_hostname(), "bytes", (json_int_t)f.bytes, "total_ms", (int)(rf_now_ms() - w->t0),
	    "lazy", (json_int_t)r.nlazypages);
	if (rf_chan_send_json(w->c, RF_FR_REPLY, j, &e) == -1) {
		proxy_fail(w, "pid %d killed: the reply was lost: %s", (int)w->cpid, e.msg);
		kill(w->cpid, SIGKILL);
		rf_lazy_free(lz);
		return RF_EX_UNAVAILABLE;
	}
	json_decref(j);
	dprintf(w->ready, "ready %d %llu\n", (int)w->cpid, (unsigned long long)f.bytes);
	close(w->ready);
	/* the proxy makes ready to arm, then waits for the stub (stub_conn) */
	sw = (struct stubwait){ w, &c, &ci, &io, 0 };
	memset(&o, 0, sizeof(o));
	o.lfd = lfd;
	o.connfd = -1;
	o.wait_conn = stub_conn;
	o.conn_arg = &sw;
	o.child = w->cpid;
	o.ctlfd = w->k;
	o.ph = w->ph;
	o.preset = w->preset;
	o.npreset = w->npreset;
	/* "remote child", and the number of the filter's listener in C, which
	   librfork closes: the proxy has its own (docs/PRELOAD.md) */
	snprintf(msg, sizeof(msg), "%s fd %d", ctlmsg, rs.listener);
	o.ctlmsg = msg;
	o.ctlmsglen = strlen(msg) + 1;
	o.verbose = getenv("RF_FWD_VERBOSE") != NULL;
	o.before_fork = rf_lazy_wait;
	o.host = w->host[0] != '\0' ? w->host : NULL;
	o.arg = lz;
	memset(&e, 0, sizeof(e));
	st = 0;
	sr = rf_proxy_serve(&io, &o, &st, &e);
	if (sw.none) {
		rf_lazy_free(lz);
		return e.code;
	}
	if (sr == -1)
		logx("pid %d: %s", (int)w->cpid, e.msg);
	rf_chan_close(&c);
	if (lz != NULL) {
		struct rf_err le = { 0 };

		struct rf_lazy_counts lc;

		if (rf_lazy_stop(lz, &le) == -1)
			logx("pid %d killed: %s", (int)w->cpid, le.msg);
		rf_lazy_counts(lz, &lc);
		logx("pid %d: post-copy: %llu pages: %llu came after it started, %llu it dropped "
		    "first; %llu faults, %llu asked again", (int)w->cpid,
		    (unsigned long long)lc.pages, (unsigned long long)lc.in,
		    (unsigned long long)lc.gone, (unsigned long long)lc.faults,
		    (unsigned long long)lc.again);
		rf_lazy_free(lz);
	}
	return sr == -1 ? (e.code ? e.code : RF_EX_SOFTWARE) : 0;
}

static int
do_fork(struct rf_chan *c, json_t *req)
{
	struct forkw w;
	struct sockaddr_un a;
	socklen_t alen;
	struct pollfd pfd;
	uint8_t rnd[TOKEN_LEN / 2];
	uint64_t bytes = 0;
	char buf[600], *end;
	long t0 = rf_now_ms();
	ssize_t n;
	size_t i, len = 0;
	pid_t init, ppid;
	int pp[2], userns, st, code;

	/*
	 * The remote tree dies with this handler (rf_fwdns_spawn), and this
	 * handler with the server: a server killed outright is a host gone, and
	 * the parents see their children killed by SIGKILL (SPEC 10).
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != mainpid)
		return RF_EX_UNAVAILABLE;
	memset(&w, 0, sizeof(w));
	w.k = json_integer_value(json_object_get(req, "k"));
	ppid = json_integer_value(json_object_get(req, "ppid"));
	if (!json_is_integer(json_object_get(req, "k")) || w.k < 0 || w.k > (1 << 20) ||
	    ppid < 2)
		return fail(c, RF_EX_PROTOCOL, "fork: bad \"k\" or \"ppid\"");
	w.ppid = ppid;
	if (json_is_string(json_object_get(req, "host")) &&
	    strlen(json_string_value(json_object_get(req, "host"))) < sizeof(w.host))
		strlcpy(w.host, json_string_value(json_object_get(req, "host")), sizeof(w.host));
	/* A remote child's fork names its pid; else it is the image's. */
	if (json_object_get(req, "pid") != NULL) {
		w.cpid = json_integer_value(json_object_get(req, "pid"));
		if (!json_is_integer(json_object_get(req, "pid")) || w.cpid < 2)
			return fail(c, RF_EX_DATAERR, "fork: bad \"pid\"");
	}
	if ((w.sup = calloc(1, sizeof(*w.sup))) == NULL)
		return fail(c, RF_EX_OSERR, "fork: %s", strerror(errno));
	w.nsup = 1;
	if (json_is_string(json_object_get(req, "fds"))) {
		const char *key = json_string_value(json_object_get(req, "fds"));
		if (strlen(key) != 32 || strspn(key, "0123456789abcdef") != 32)
			return fail(c, RF_EX_PROTOCOL, "fork: bad \"fds\"");
		if (take_fds(&w, key, buf, sizeof(buf)) == -1)
			return fail(c, RF_EX_UNAVAILABLE, "fork: %s", buf);
	}
	randombytes_buf(rnd, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(w.token + 2 * i, 3, "%02x", rnd[i]);
	stub_addr(&a, &alen, "stub", w.token);
	if ((w.lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(w.lsock, (struct sockaddr *)&a, alen) == -1 || listen(w.lsock, 4) == -1 ||
	    pipe2(pp, O_CLOEXEC) == -1)
		return fail(c, RF_EX_OSERR, "fork: socket: %s", strerror(errno));
	stub_addr(&a, &alen, "pages", w.token);
	if ((w.psock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(w.psock, (struct sockaddr *)&a, alen) == -1 || listen(w.psock, 4) == -1)
		return fail(c, RF_EX_OSERR, "fork: socket: %s", strerror(errno));
	w.ready = pp[1];
	w.c = c;
	w.t0 = t0;
	init = rf_fwdns_spawn(ppid, fork_proxy, &w, &userns);
	for (i = 1; i < w.nsup; i++)
		close(w.sup[i].from);	/* the proxy has its own */
	free(w.sup);
	if (init == -1)
		return fail(c, RF_EX_OSERR, "fork: pid namespace: %s", strerror(errno));
	close(pp[1]);
	close(w.lsock);
	close(w.psock);
	/* The proxy reads the image; each of its reads is bounded by -t. */
	pfd.fd = pp[0];
	pfd.events = POLLIN;
	while (len < sizeof(buf) - 1 && memchr(buf, '\n', len) == NULL &&
	    poll(&pfd, 1, -1) > 0 && (n = read(pp[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	buf[len] = '\0';
	if (strncmp(buf, "ready ", 6) != 0 || (w.cpid = strtol(buf + 6, &end, 10)) < 2 ||
	    *end != ' ' || (bytes = strtoull(end + 1, &end, 10), *end != '\n')) {
		/* The proxy said why and exits with its code: wait for that a moment. */
		while (poll(&pfd, 1, timeout_ms) > 0 && read(pp[0], buf + len, 1) > 0)
			;
		close(pp[0]);
		for (i = 0; i < 1000 && waitpid(init, &st, WNOHANG) == 0; i++)
			usleep(1000);
		if (i == 1000) {
			kill(init, SIGKILL);
			waitpid(init, &st, 0);
		}
		code = WIFEXITED(st) && WEXITSTATUS(st) ? WEXITSTATUS(st) : RF_EX_SOFTWARE;
		buf[strcspn(buf, "\n")] = '\0';
		return fail(c, code, "fork: %s", buf[0] ? buf : "the remote tree failed");
	}
	close(pp[0]);
	/* The proxy answered; the connection may go on as the stub's there. */
	logx("fork: pid %d (parent %d) waits for its stub%s: %llu bytes, %ld ms", (int)w.cpid,
	    (int)ppid, userns ? " (user namespace)" : "", (unsigned long long)bytes,
	    rf_now_ms() - t0);
	/*
	 * Only the socket now: the proxy's copy is the connection.  The rest
	 * of the channel goes when the tree has ended (our caller): wiping
	 * its 1 MiB buffer, which this copy hardly used, faults in 256 fresh
	 * pages, half a millisecond of CPU beside the hand-over to the stub.
	 */
	close(c->fd);
	c->fd = -1;
	conn_fd = -1;
	/* A graceful stop (SIGTERM) lets the child run on until the server's deadline. */
	while (waitpid(init, &st, 0) == -1)
		if (errno != EINTR)
			return RF_EX_OSERR;
	logx("fork: pid %d's tree ended (%s %d)", (int)w.cpid,
	    WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	return 0;
}

/* A stub presents its token: its socket and channel go to that proxy. */
static int
do_stub(struct rf_chan *c, json_t *req)
{
	const char *token = json_string_value(json_object_get(req, "token"));
	struct rf_chan_state st;
	struct sockaddr_un a;
	char tok[TOKEN_LEN + 1] = { 0 };
	struct iovec iov[2] = { { tok, sizeof(tok) }, { &st, sizeof(st) } };
	struct rf_err e;
	socklen_t alen;
	json_t *j;
	int s, r, pages;

	if (token == NULL || strlen(token) != TOKEN_LEN ||
	    strspn(token, "0123456789abcdef") != TOKEN_LEN)
		return fail(c, RF_EX_PROTOCOL, "stub: bad token");
	memcpy(tok, token, TOKEN_LEN);
	pages = json_is_true(json_object_get(req, "pages"));
	stub_addr(&a, &alen, pages ? "pages" : "stub", tok);
	if ((s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(s, (struct sockaddr *)&a, alen) == -1)
		return fail(c, RF_EX_NOINPUT, "stub: no child waits for this token");
	j = json_pack("{s:s}", "host", rf_hostname());
	r = rf_chan_send_json(c, RF_FR_REPLY, j, &e);
	json_decref(j);
	if (r == -1) {
		close(s);
		logx("stub: %s", e.msg);
		return RF_EX_UNAVAILABLE;
	}
	rf_chan_export(c, &st);
	/* From here the socket is the proxy's: a SIGTERM must not shut it down. */
	conn_fd = -1;
	r = rf_send_fd(s, iov, 2, c->fd) == 0;
	sodium_memzero(&st, sizeof(st));
	close(s);
	if (!r) {
		logx("stub: hand-over failed: %s", strerror(errno));
		return RF_EX_OSERR;
	}
	logx(pages ? "stub's page connection connected" : "stub connected");
	return 0;
}

static void
on_term(int sig)
{
	/* Unblocks whatever read or write the connection is in. */
	if (conn_fd >= 0)
		shutdown(conn_fd, SHUT_RDWR);
}

/* A connection child that will not be free again soon: the server stops
   waiting for it (it takes the next connection to a fresh one). */
static void
not_back(void)
{
	if (back_fd >= 0)
		close(back_fd);
	back_fd = -1;
}

/* *again: a stub's connection, handed to its proxy: this process may take
   another connection. */
static int
serve_conn(int fd, const struct rf_key *key, int *again)
{
	struct sigaction sa;
	struct rf_chan c;
	struct rf_err e;
	const uint8_t *d;
	const char *op;
	size_t len;
	json_t *j;
	sigset_t none;
	int r, type, held = 0;

	*again = 0;
	conn_fd = fd;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_CHILD_SUBREAPER, 0);

	if (rf_sock_setup(fd, timeout_ms) == -1 || rf_chan_server(&c, fd, key, &e) == -1) {
		logx("%s", e.msg);
		close(fd);
		return e.code;
	}
again:
	r = rf_chan_recv(&c, &type, &d, &len, &e);
	if (r != 1) {
		/* a held connection's client may go with nothing to ask (rf-agent) */
		if (r == 0 && !held)
			logx("closed without a request");
		else if (r != 0)
			logx("%s", e.msg);
		rf_chan_close(&c);
		return held ? RF_EX_OK : RF_EX_PROTOCOL;
	}
	if (type != RF_FR_REQ || (j = rf_json_frame(d, len, &e)) == NULL) {
		r = fail(&c, RF_EX_PROTOCOL, "expected a request");
		rf_chan_close(&c);
		return r;
	}
	op = json_string_value(json_object_get(j, "op"));
	/* "hold": proven now, the request comes later, with no time limit
	   meanwhile (keepalive finds a dead client); then the usual limits */
	if (op == NULL || strcmp(op, "stub") != 0)
		not_back();
	if (op != NULL && strcmp(op, "hold") == 0 && !held) {
		json_decref(j);
		held = 1;
		if (rf_sock_longlived(fd, timeout_ms) == -1) {
			rf_chan_close(&c);
			return RF_EX_OSERR;
		}
		goto again;
	}
	if (held && rf_sock_setup(fd, timeout_ms) == -1) {
		json_decref(j);
		rf_chan_close(&c);
		return RF_EX_OSERR;
	}
	if (op != NULL && strcmp(op, "restore") == 0)
		r = do_restore(&c);
	else if (op != NULL && strcmp(op, "fork") == 0)
		r = do_fork(&c, j);
	else if (op != NULL && strcmp(op, "stub") == 0) {
		r = do_stub(&c, j);
		*again = 1;
	} else
		r = fail(&c, RF_EX_PROTOCOL, "unknown request \"%s\"", op ? op : "?");
	json_decref(j);
	rf_chan_close(&c);
	return r;
}

/*
 * A connection child: this connection, then, while its connections are
 * stubs' (handed to their proxies in a moment), the next ones the server
 * passes it on back_fd, with the peer's name.  One process a remote fork
 * fewer, and warm: the stub's page connection takes a child that is free
 * again, and the next connection (rf-agent's new held one) takes it in
 * turn, where each was a fresh fork and its first touch of every buffer.
 */
static int
pass_conn(int s, int fd)
{
	struct iovec iov = { peer, sizeof(peer) };

	return rf_send_fd(s, &iov, 1, fd);
}

static int
take_conn(int s)
{
	int fd;

	if (rf_recv_fd(s, peer, sizeof(peer), &fd) != (ssize_t)sizeof(peer)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	peer[sizeof(peer) - 1] = '\0';
	return fd;
}

static int
handler(int fd, const struct rf_key *key)
{
	struct sigaction sa;
	int r, again;

	/* buffers stay where they were, warm, for the next connection */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	for (;;) {
		r = serve_conn(fd, key, &again);
		if (!again || back_fd < 0 || send(back_fd, "f", 1, MSG_NOSIGNAL) != 1)
			return r;
		/* free: a SIGTERM now (the server stopping) ends it; ps shows it */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGTERM, &sa, NULL);
		prctl(PR_SET_NAME, "rf-server-idle");
		peer[0] = '\0';
		if ((fd = take_conn(back_fd)) == -1)
			return RF_EX_OK;
		prctl(PR_SET_NAME, "rf-server");
	}
}

int
main(int argc, char *argv[])
{
	struct signalfd_siginfo si;
	struct sockaddr_storage ss;
	static struct pollfd pfd[2 + MAXPEERS];
	static int cfd[MAXPEERS];	/* each connection child's back_fd, or -1 */
	static int pfdconn[2 + MAXPEERS];
	struct { pid_t pid; int fd; } idle[MAXIDLE];	/* connection children free again */
	struct rf_key key;
	struct rf_err e;
	socklen_t sl;
	sigset_t mask;
	pid_t conns[MAXPEERS], pid;
	int nidle = 0, npfd, k, sp[2];
	char b;
	char where[80], *kpath = NULL, *addr = "127.0.0.1";
	const char *errstr;
	int ch, lfd, sfd, fd, st, i, nconn = 0, stopping = 0;
	long deadline;

	while ((ch = getopt(argc, argv, "hk:l:Rt:")) != -1) {
		switch (ch) {
		case 'k':
			kpath = optarg;
			break;
		case 'l':
			addr = optarg;
			break;
		case 'R':
			allow_root = 1;
			break;
		case 't':
			timeout_ms = strtonum(optarg, 1, 86400, &errstr) * 1000;
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-t %s: %s", optarg, errstr);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 0)
		usage();

	if (rf_key_load(kpath, &key, &e) == -1)
		errx(e.code, "%s", e.msg);
	find_restore();
	if (rf_chan_init() == -1)
		errx(RF_EX_SOFTWARE, "cannot initialise libsodium or OpenSSL");
	/* Here, not in each connection's handler or proxy: cpuid is slow in a
	   virtual machine, and jansson seeds its hashes from /dev/urandom. */
	rf_restore_cpu();
	json_object_seed(0);
	if ((lfd = rf_listen(addr, &e)) == -1)
		errx(e.code, "listen: %s", e.msg);
	/* Restored processes outlive rf-restore: they are ours to reap. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		err(RF_EX_OSERR, "PR_SET_CHILD_SUBREAPER");
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) == -1)
		err(RF_EX_OSERR, "signalfd");
	sl = sizeof(ss);
	getsockname(lfd, (struct sockaddr *)&ss, &sl);
	logx("listening on %s as %s (pid %d, %s)",
	    rf_addr_str((struct sockaddr *)&ss, where, sizeof(where)), rf_hostname(),
	    getpid(), geteuid() != 0 ? "restores only its own user's processes" :
	    allow_root ? "root images allowed" : "root images refused");

	deadline = 0;
	mainpid = getpid();
	for (;;) {
		pfd[0].fd = sfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = stopping ? -1 : lfd;
		pfd[1].events = POLLIN;
		npfd = 2;
		for (i = 0; i < nconn; i++)
			if (cfd[i] >= 0) {
				pfd[npfd].fd = cfd[i];
				pfd[npfd].events = POLLIN;
				pfdconn[npfd++] = conns[i];
			}
		if (stopping && nconn == 0 && nidle == 0)
			break;
		if (poll(pfd, npfd, stopping ? 500 : -1) == -1 && errno != EINTR)
			err(RF_EX_OSERR, "poll");
		if (stopping && rf_now_ms() > deadline) {
			if (stopping == 1 && nconn > 0)
				logx("%d connections left after %d s: killed, with their remote children",
				    nconn, timeout_ms / 1000);
			stopping = 2;
			for (i = 0; i < nconn; i++)
				kill(conns[i], SIGKILL);
		}
		while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo != SIGCHLD && !stopping) {
				stopping = 1;
				deadline = rf_now_ms() + timeout_ms;
				close(lfd);
				logx("stopping on signal %d: %d connections to end", si.ssi_signo,
				    nconn);
				for (i = 0; i < nconn; i++)
					kill(conns[i], SIGTERM);
				for (i = 0; i < nidle; i++) {
					close(idle[i].fd);
					idle[i].fd = -1;
					kill(idle[i].pid, SIGTERM);
				}
			}
		}
		/* a connection child free again ("f"), or one that will not be (end) */
		for (k = 2; k < npfd; k++) {
			if (pfd[k].revents == 0)
				continue;
			for (i = 0; i < nconn && conns[i] != pfdconn[k]; i++)
				;
			if (i == nconn || cfd[i] < 0)
				continue;
			if (read(cfd[i], &b, 1) == 1 && b == 'f' && !stopping && nidle < MAXIDLE) {
				idle[nidle].pid = conns[i];
				idle[nidle++].fd = cfd[i];
				conns[i] = conns[--nconn];
				cfd[i] = cfd[nconn];
				continue;
			}
			/* it goes on with a connection of its own, or ends (EOF on
			   take_conn) */
			close(cfd[i]);
			cfd[i] = -1;
		}
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (i = 0; i < nidle && idle[i].pid != pid; i++)
				;
			if (i < nidle) {
				if (idle[i].fd >= 0)
					close(idle[i].fd);
				idle[i] = idle[--nidle];
				continue;
			}
			for (i = 0; i < nconn && conns[i] != pid; i++)
				;
			if (i < nconn) {
				if (cfd[i] >= 0)
					close(cfd[i]);
				conns[i] = conns[--nconn];
				cfd[i] = cfd[nconn];
				if (WIFSIGNALED(st))
					logx("connection handler %d killed by signal %d", pid,
					    WTERMSIG(st));
				continue;
			}
			if (WIFEXITED(st))
				logx("pid %d exited with status %d", pid, WEXITSTATUS(st));
			else
				logx("pid %d killed by signal %d", pid, WTERMSIG(st));
		}
		if (stopping || !(pfd[1].revents & POLLIN))
			continue;
		sl = sizeof(ss);
		if ((fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC)) == -1) {
			if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
				logx("accept: %s", strerror(errno));
				/* EMFILE and the like last: do not spin on them. */
				usleep(100000);
			}
			continue;
		}
		rf_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
		if (nconn == MAXPEERS) {
			logx("refused: %d connections already", nconn);
			close(fd);
			peer[0] = '\0';
			continue;
		}
		/* to a connection child free again, if one is */
		while (fd >= 0 && nidle > 0) {
			nidle--;
			if (pass_conn(idle[nidle].fd, fd) == 0) {
				conns[nconn] = idle[nidle].pid;
				cfd[nconn++] = idle[nidle].fd;
				close(fd);
				fd = -1;
			} else {
				/* gone meanwhile: reaped as any other child */
				close(idle[nidle].fd);
			}
		}
		if (fd < 0) {
			peer[0] = '\0';
			continue;
		}
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1)
			sp[0] = sp[1] = -1;
		if ((pid = fork()) == -1) {
			logx("fork: %s", strerror(errno));
			close(fd);
			if (sp[0] >= 0) {
				close(sp[0]);
				close(sp[1]);
			}
		} else if (pid == 0) {
			/* A server killed outright takes its transfers with it. */
			if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != mainpid)
				_exit(RF_EX_UNAVAILABLE);
			close(lfd);
			close(sfd);
			/* the others' way back is not ours to hold open */
			for (i = 0; i < nconn; i++)
				if (cfd[i] >= 0)
					close(cfd[i]);
			for (i = 0; i < nidle; i++)
				close(idle[i].fd);
			if (sp[0] >= 0)
				close(sp[0]);
			back_fd = sp[1];
			_exit(handler(fd, &key));
		} else {
			conns[nconn] = pid;
			cfd[nconn++] = sp[0];
			if (sp[1] >= 0)
				close(sp[1]);
			close(fd);
		}
		peer[0] = '\0';
	}
	logx("stopped");
	rf_key_wipe(&key);
	return RF_EX_OK;
}
