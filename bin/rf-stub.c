/*
 * rf-stub - hold a remote fork child's pid, parent and open files at home,
 * perform its forwarded system calls, and end as it ends.  Started by the
 * toolkit (docs/FORK.md), not by hand.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <jansson.h>
#include <sodium.h>
#include "rf_fwd.h"
#include "rf_standin.h"
#include "rf_net.h"
#include "rf_lazy.h"

static void
usage(void)
{
	fprintf(stderr, "usage: rf-stub [-h] [-x fd[,fd...]] -c fd\n"
	    "       rf-stub [-h] [-k key] [-x fd[,fd...]] -C fd:statefd\n"
	    "       rf-stub [-h] [-k key] [-x fd[,fd...]] [-s pid] [-C fd:statefd] host[:port] "
	    "token\n"
	    "       rf-stub [-h] [-k key] [-x fd[,fd...]] [-s pid] -K fd\n"
	    "       rf-stub -W pid\n");
	exit(RF_EX_USAGE);
}

static size_t
parse_fds(char *s, int **out)
{
	const char *errstr;
	char *t;
	size_t n = 0;
	int *v = NULL;

	while ((t = strsep(&s, ",")) != NULL) {
		if (*t == '\0')
			continue;
		if ((v = reallocarray(v, n + 1, sizeof(*v))) == NULL)
			err(RF_EX_OSERR, NULL);
		v[n++] = strtonum(t, 0, INT_MAX, &errstr);
		if (errstr != NULL)
			errx(RF_EX_USAGE, "-x %s: %s", t, errstr);
	}
	*out = v;
	return n;
}

/*
 * A remote child forked (docs/FORK.md "Grandchildren"): this is a new stub,
 * forked from its stub, with the grandchild's fds at their numbers.  Start
 * over as rf-stub dialing host: a fresh process image, the same key.
 */
static void
respawn(void *arg, const char *host, const char *token, const int *cloexec, size_t n)
{
	const char *kpath = arg;
	char *argv[10], *list = NULL, num[16], self[PATH_MAX];
	size_t i, len = 0;
	ssize_t sl;
	int k = 0;

	if (n > 0 && (list = calloc(n, sizeof(num))) == NULL)
		return;
	for (i = 0; i < n; i++)
		len += snprintf(list + len, n * sizeof(num) - len, "%s%d", i ? "," : "",
		    cloexec[i]);
	argv[k++] = "rf-stub";
	if (kpath != NULL) {
		argv[k++] = "-k";
		argv[k++] = (char *)kpath;
	}
	if (n > 0) {
		argv[k++] = "-x";
		argv[k++] = list;
	}
	argv[k++] = "--";
	argv[k++] = (char *)host;
	argv[k++] = (char *)token;
	argv[k] = NULL;
	/* by its path, not /proc/self/exe: ps and /proc/PID/comm say rf-stub */
	if ((sl = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[sl] = '\0';
		execv(self, argv);
	}
	execv("/proc/self/exe", argv);
	free(list);
}

/*
 * -C: the fork's own connection, handed over by rf-send -H through librfork,
 * its channel's keys and counters in the file statefd (read, then closed).
 */
static int
take_chan(struct rf_chan *c, int fd, int sfd, struct rf_err *e)
{
	struct rf_chan_state st;
	ssize_t n;
	int r;

	n = pread(sfd, &st, sizeof(st), 0);
	close(sfd);
	if (n != (ssize_t)sizeof(st)) {
		sodium_memzero(&st, sizeof(st));
		return rf_errf(e, RF_EX_USAGE, "-C: no channel state in fd %d", sfd);
	}
	r = rf_chan_import(c, fd, &st, e);
	sodium_memzero(&st, sizeof(st));
	return r;
}

/*
 * -K fd: started before the answer (librfork's early stub, docs/FORK.md
 * step 4).  A line on fd gives it: "hand HOST TOKEN[ lazy]" (the fork's
 * connection and its channel's state follow once we say "g"), "stub HOST
 * TOKEN[ lazy]" (say "g", then dial), "prehand HOST" (rf-agent's: the
 * connection follows, the reply still to come on it: prehanded), or
 * "local" (the child stays at home after all: say "l" and end unseen).
 * 1 hand, 2 stub, 3 prehand, 0 local or nothing.
 */
static int
verdict(int kfd, char *host, char *token, size_t cap, int *lazy, int *conn,
    struct rf_chan_state *st)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cm;
	struct iovec iov = { st, sizeof(*st) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
	    .msg_controllen = sizeof(cm.b) };
	struct pollfd pfd = { .fd = kfd, .events = POLLIN };
	struct cmsghdr *h;
	char line[2 * 512 + 16], *t, *l;
	size_t n = 0;
	ssize_t r;

	/* the line only: what follows it ("hand": the connection) is not ours yet */
	for (;;) {
		if ((r = recv(kfd, line, sizeof(line) - 1, MSG_PEEK)) == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		if ((t = memchr(line, '\n', r)) != NULL || r == sizeof(line) - 1)
			break;
		if (poll(&pfd, 1, -1) == -1 && errno != EINTR)
			return 0;
	}
	if (t == NULL || recv(kfd, line, t - line + 1, 0) != t - line + 1)
		return 0;
	n = t - line;
	line[n] = '\0';
	if (strncmp(line, "prehand ", 8) == 0) {
		if (strlcpy(host, line + 8, cap) >= cap)
			return 0;
		*token = '\0';
		*lazy = 0;
		goto conn;
	}
	if (strncmp(line, "hand ", 5) != 0 && strncmp(line, "stub ", 5) != 0) {
		(void)!write(kfd, "l", 1);
		return 0;
	}
	*lazy = n > 5 && strcmp(line + n - 5, " lazy") == 0;
	if (*lazy)
		line[n - 5] = '\0';
	if ((t = strchr(line + 5, ' ')) == NULL || strlen(line + 5) >= cap ||
	    strlen(t + 1) >= cap)
		return 0;
	*t = '\0';
	strlcpy(host, line + 5, cap);
	strlcpy(token, t + 1, cap);
	if ((l = strchr(token, ' ')) != NULL)
		*l = '\0';
	if (write(kfd, "g", 1) != 1)
		return 0;
	if (line[0] == 's')
		return 2;
conn:
	*conn = -1;
	if (poll(&pfd, 1, 2000) != 1 || (r = recvmsg(kfd, &mh, MSG_CMSG_CLOEXEC)) !=
	    (ssize_t)sizeof(*st))
		return 0;
	h = CMSG_FIRSTHDR(&mh);
	if (h != NULL && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
	    h->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(conn, CMSG_DATA(h), sizeof(int));
	return *conn < 0 ? 0 : line[0] == 'p' ? 3 : 1;
}

/*
 * Dial host, prove the key, present the token (for the page connection
 * with pages): the connection is the child's.  *peer: the server said no.
 */
static int
dial_stub(struct rf_chan *c, const char *host, const char *token, const char *kpath,
    int pages, int *peer, struct rf_err *e)
{
	struct rf_key key;
	json_t *j;
	int fd, r;

	*peer = 0;
	if (rf_key_load(kpath, &key, e) == -1)
		return -1;
	fd = rf_dial(host, RF_TIMEOUT_MS, e);
	r = fd == -1 ? -1 : rf_chan_client(c, fd, &key, e);
	rf_key_wipe(&key);
	if (r == -1) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	j = pages ? json_pack("{s:s,s:s,s:b}", "op", "stub", "token", token, "pages", 1) :
	    json_pack("{s:s,s:s}", "op", "stub", "token", token);
	r = rf_chan_send_json(c, RF_FR_REQ, j, e);
	json_decref(j);
	if (r == -1 || (j = rf_xfer_answer(c, peer, e)) == NULL) {
		rf_chan_close(c);
		return -1;
	}
	json_decref(j);
	return 0;
}

/*
 * Post-copy (-s, docs/FORK.md "Post-copy"): a thread dials a second
 * connection, the page connection, and serves the pages the remote child
 * still lacks from the page source, which keeps S's memory as it was read.
 * When all are there (or the child is gone) the source is killed and
 * reaped.  If it fails, the proxy, lacking the pages, kills the child; this
 * stub then dies of it.
 */
struct pages {
	pid_t src;
	const char *host, *token, *kpath;
};

static struct pages pg;
static atomic_int ending;	/* the child has ended: the source is killed */

static void *
pages_thread(void *arg)
{
	struct pages *pg = arg;
	struct rf_chan c;
	struct rf_err e = { 0 };
	int peer, ok = 0;

	if (dial_stub(&c, pg->host, pg->token, pg->kpath, 1, &peer, &e) == 0) {
		ok = rf_lazy_serve(&c, pg->src, &e) >= 0;
		rf_chan_close(&c);
	}
	/* No proxy waits for it (66): the child has ended, or its proxy killed
	   it and logs why; this stub then ends as the child did. */
	if (!ok && !atomic_load(&ending) && !(peer && e.code == RF_EX_NOINPUT))
		warnx("pid %d: %s%s", (int)getpid(), strncmp(e.msg, "post-copy", 9) ? "post-copy: " :
		    "", e.msg);
	kill(pg->src, SIGKILL);
	while (waitpid(pg->src, NULL, __WALL) == -1 && errno == EINTR)
		;
	return NULL;
}

/* After HELLO (rf_stub_opts.after_hello): its socket is not the child's. */
static void
start_pages(void *kpath)
{
	pthread_t th;
	sigset_t all, old;

	if (pg.src <= 0)
		return;
	pg.kpath = kpath;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&th, NULL, pages_thread, &pg) != 0) {
		warn("pid %d: post-copy", (int)getpid());
		kill(pg.src, SIGKILL);
	} else
		pthread_detach(th);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/*
 * "prehand" (verdict 3): HELLO has gone; now the reply, which rf-agent left
 * to us.  Its line goes back on K to the shipper, which ends the fork with
 * it; if the child does not run there, "-WHY" goes instead and this stub
 * ends unseen (the shipper makes the local child).  Then the usual: the
 * connection long-lived, and the page source served or ended.
 */
static struct {
	int k, dead;
	struct rf_chan *c;
	char host[512], token[512];
} ph = { -1, 0, NULL, "", "" };

static void
prehanded(void *kpath)
{
	struct rf_err e = { 0 };
	json_t *j;
	const char *t;
	char *line = NULL;
	size_t n;
	int peer, lazy;

	if ((j = rf_xfer_answer(ph.c, &peer, &e)) == NULL ||
	    (t = json_string_value(json_object_get(j, "token"))) == NULL ||
	    strlcpy(ph.token, t, sizeof(ph.token)) >= sizeof(ph.token) ||
	    (line = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		dprintf(ph.k, "-%s: %s\n", ph.host, j == NULL ? e.msg : "no token in the reply");
		_exit(0);
	}
	lazy = json_integer_value(json_object_get(j, "lazy")) > 0;
	json_decref(j);
	n = strlen(line);
	line[n] = '\n';
	(void)!write(ph.k, line, n + 1);
	free(line);
	close(ph.k);
	if (rf_sock_longlived(ph.c->fd, ph.dead) == -1)
		err(RF_EX_OSERR, "connection");
	if (pg.src > 0 && !lazy) {
		kill(pg.src, SIGKILL);
		waitpid(pg.src, NULL, __WALL);
		pg.src = 0;
	}
	pg.host = ph.host;
	pg.token = ph.token;
	start_pages(kpath);
}

/* Die as the child died, so that the parent's waitpid says the same. */
static void
die_like(int status)
{
	struct rlimit no = { 0, 0 };
	sigset_t set;
	int sig;

	if (WIFEXITED(status))
		exit(WEXITSTATUS(status));
	sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
	/* The child's core, if any, was dumped where it ran. */
	setrlimit(RLIMIT_CORE, &no);
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	exit(128 + sig);
}

/* The remote child cannot be reached: say why, and die of SIGKILL. */
static void __attribute__((noreturn, format(printf, 1, 2)))
lost(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarnx(fmt, ap);
	va_end(ap);
	die_like(SIGKILL);
	exit(RF_EX_SOFTWARE);
}

int
main(int argc, char *argv[])
{
	struct rf_stub_opts o;
	struct rf_fwd_io io;
	struct rf_err e;
	struct rf_chan c;
	struct rf_chan_io ci;
	const char *errstr;
	struct rf_chan_state st;
	char *kpath = NULL, *env, vhost[512], vtoken[512], *vargv[3] = { NULL, NULL, NULL };
	long long t;
	int ch, conn = -1, status = 0, r, peer, dead, sfd = -1, kfd = -1, v = 0, lazy = 0;

	setprogname("rf-stub");
	if (argc == 3 && strcmp(argv[1], "-W") == 0) {
		/* a grandchild's stand-in (rf_standin.h) */
		pid_t proxy = strtonum(argv[2], 2, INT_MAX, &errstr);
		if (errstr != NULL)
			errx(RF_EX_USAGE, "-W %s: %s", argv[2], errstr);
		rf_standin(proxy);
	}
	memset(&o, 0, sizeof(o));
	/* OpenSSL's slow set-up runs beside the start, the dial and the handshake. */
	rf_chan_init_async();
	while ((ch = getopt(argc, argv, "c:C:hk:K:s:x:")) != -1) {
		switch (ch) {
		case 'K':
			kfd = strtonum(optarg, 0, INT_MAX, &errstr);
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-K %s: %s", optarg, errstr);
			break;
		case 's':
			pg.src = strtonum(optarg, 1, INT_MAX, &errstr);
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-s %s: %s", optarg, errstr);
			break;
		case 'C':
			if (sscanf(optarg, "%d:%d", &conn, &sfd) != 2 || conn < 0 || sfd < 0)
				errx(RF_EX_USAGE, "-C %s: not fd:statefd", optarg);
			break;
		case 'c':
			conn = strtonum(optarg, 0, INT_MAX, &errstr);
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-c %s: %s", optarg, errstr);
			break;
		case 'k':
			/* absolute: a new stub (respawn) starts in the child's cwd */
			if ((kpath = realpath(optarg, NULL)) == NULL)
				kpath = optarg;
			break;
		case 'x':
			o.ncloexec = parse_fds(optarg, (int **)&o.cloexec);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (kfd >= 0 ? argc != 0 || conn >= 0 : conn >= 0 ?
	    argc != (pg.src > 0 ? 2 : 0) || (kpath != NULL && sfd < 0) ||
	    (pg.src > 0 && sfd < 0) : argc != 2)
		usage();
	/* the page source is ours: its end is no news for the child */
	if (pg.src > 0)
		rf_stub_own_child(pg.src);
	if (kfd >= 0) {
		/* HELLO's fds and the signals now, while the answer is awaited */
		o.pre = rf_stub_prepare(&o, kfd);
		v = verdict(kfd, vhost, vtoken, sizeof(vhost), &lazy, &conn, &st);
		if (v == 3)
			ph.k = kfd;	/* for the reply's line (prehanded) */
		else
			close(kfd);
		/* without pages to follow, or without a child: no source (for
		   "prehand", the reply says) */
		if ((v == 0 || (!lazy && v != 3)) && pg.src > 0) {
			kill(pg.src, SIGKILL);
			waitpid(pg.src, NULL, __WALL);
			pg.src = 0;
		}
		if (v == 0) {
			sodium_memzero(&st, sizeof(st));
			rf_stub_pre_free(o.pre);
			return 0;
		}
		vargv[0] = vhost;
		vargv[1] = vtoken;
		argv = vargv;
	}
	memset(&e, 0, sizeof(e));
	/* librfork's setting (rf-run(1)) says how soon a dead host must show. */
	dead = RF_TIMEOUT_MS;
	if ((env = getenv("RFORK_TIMEOUT")) != NULL &&
	    (t = strtonum(env, 1, 86400, &errstr)) > 0 && errstr == NULL)
		dead = t * 1000;
	if (v == 1 || v == 3 || sfd >= 0) {
		if (o.pre == NULL)	/* else caught, and blocked */
			signal(SIGPIPE, SIG_IGN);
		r = v == 1 || v == 3 ? rf_chan_import(&c, conn, &st, &e) :
		    take_chan(&c, conn, sfd, &e);
		sodium_memzero(&st, sizeof(st));
		if (r == -1)
			lost("%s", e.msg);
		/* "prehand": the fork's limits until the reply (prehanded) */
		if (v != 3 && rf_sock_longlived(conn, dead) == -1)
			err(RF_EX_OSERR, "-C %d", conn);
		rf_chan_fwd_io(&io, &ci, &c);
	} else if (conn >= 0) {
		if (fcntl(conn, F_GETFD) == -1)
			err(RF_EX_USAGE, "-c %d", conn);
		rf_fwd_io_fd(&io, &conn);
	} else {
		if (o.pre == NULL)
			signal(SIGPIPE, SIG_IGN);
		/* The child runs there, or will never run: a stub that cannot
		   reach it has lost it, and dies as a lost child does. */
		if (dial_stub(&c, argv[0], argv[1], kpath, 0, &peer, &e) == -1)
			lost("%s: %s", argv[0], e.msg);
		conn = c.fd;
		if (rf_sock_longlived(conn, dead) == -1)
			err(RF_EX_OSERR, "%s", argv[0]);
		rf_chan_fwd_io(&io, &ci, &c);
	}
	if (v == 3) {
		ph.c = &c;
		ph.dead = dead;
		strlcpy(ph.host, vhost, sizeof(ph.host));
		o.after_hello = prehanded;
	} else if (pg.src > 0) {
		pg.host = argv[0];
		pg.token = argv[1];
		o.after_hello = start_pages;
	}
	o.connfd = conn;
	o.respawn = respawn;
	o.arg = kpath;
	r = rf_stub_serve(&io, &o, &status, &e);
	/* the page source goes with us, reaped, not left to init */
	if (pg.src > 0) {
		atomic_store(&ending, 1);
		kill(pg.src, SIGKILL);
		waitpid(pg.src, NULL, __WALL);
	}
	if (r == RF_STUB_EXITED)
		die_like(status);
	/* The remote host or the link is gone, and with it the child. */
	if (r == -1)
		warnx("%s", e.msg);
	else
		warnx("pid %d: connection to the remote child lost", (int)getpid());
	die_like(SIGKILL);
	return RF_EX_SOFTWARE;
}
