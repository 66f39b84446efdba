/*
 * rf-agent - ship a program's fork children without starting rf-snap and
 * rf-send for each: librfork asks it over a unix socket (lib/rf_agent.h),
 * and a worker, ready beforehand with a proven connection to every host,
 * reads the stopped child and streams its image at once (docs/FORK.md,
 * "The agent").  rf-run starts one per program.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include <jansson.h>
#include "rf_agent.h"
#include "rf_net.h"
#include "rf_snap.h"

#define MAXHOSTS 16
#define MAXWORKERS 64
#define REDIAL_MS 1000		/* a host that would not take a connection, again after */
#define IDLE_MS 10000		/* a worker beyond the spares goes after this idle */

struct host {
	const char *name;
	struct rf_chan c;
	int up;			/* c is connected, proven and held */
	long next;		/* when to dial again (ms) */
	long since;		/* when c was made */
	int fails;		/* holds failed in a row: the next waits longer */
};

static struct rf_key key;
static struct host hosts[MAXHOSTS];
/* a held connection is a saving, not a need: a host that does not answer
   soon is left to the forks, which dial it as rf-send would */
static int nhosts, timeout_ms = 1000;

static void
usage(void)
{
	fprintf(stderr, "usage: rf-agent [-d] [-k key] [-n spares] [-t seconds] [-w pid]"
	    " -l name [host ...]\n");
	exit(RF_EX_USAGE);
}

/* A connection to h, proven, its request to come later ("hold"). */
static int
hold(struct host *h, int tmo_ms, struct rf_err *e)
{
	json_t *j;
	int fd, r;

	if ((fd = rf_dial(h->name, tmo_ms, e)) == -1)
		return -1;
	if (rf_chan_client(&h->c, fd, &key, e) == -1) {
		close(fd);
		return -1;
	}
	j = json_pack("{s:s}", "op", "hold");
	r = j != NULL ? rf_chan_send_json(&h->c, RF_FR_REQ, j, e) : rf_errno(e, "json");
	json_decref(j);
	if (r == -1) {
		rf_chan_close(&h->c);
		return -1;
	}
	rf_chan_warm(&h->c, RF_CHUNK);
	h->up = 1;
	h->since = rf_now_ms();
	h->fails = 0;
	return 0;
}

/* A hold failed: again after 1, 2, 4 ... 64 s (a dialing worker takes no fork). */
static void
later(struct host *h)
{
	h->next = rf_now_ms() + ((long)REDIAL_MS << (h->fails < 6 ? h->fails : 6));
	h->fails++;
}

static void
drop(struct host *h)
{
	if (h->up)
		rf_chan_close(&h->c);
	h->up = 0;
}

/* A held connection the server closed (it never speaks first) is no use. */
static int
alive(struct host *h)
{
	struct pollfd p = { h->up ? h->c.fd : -1, POLLIN, 0 };

	if (h->up && poll(&p, 1, 0) != 0)
		drop(h);
	return h->up;
}

/*
 * Fault in what a job runs and writes, here rather than on a fork's path:
 * each first touch of a page costs a fault, and fresh memory is slow on
 * some machines.
 */
static void
prefault(void)
{
	char line[512], perm[8], path[256];
	unsigned long a, b;
	FILE *f;

	if ((f = fopen("/proc/self/maps", "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		path[0] = '\0';
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &a, &b, perm, path) < 3)
			continue;
		if (path[0] == '/' && perm[0] == 'r')
			madvise((void *)a, b - a, perm[1] == 'w' && perm[3] == 'p' ?
			    MADV_POPULATE_WRITE : MADV_POPULATE_READ);
		else if (strcmp(path, "[heap]") == 0)
			madvise((void *)a, b - a, MADV_POPULATE_WRITE);
	}
	fclose(f);
}

/* The snapshot runs on its own thread while the main one sends. */
struct snapjob {
	pid_t pid;
	struct rf_snap_opt o;
	int out;		/* the image's pipe: closed when done */
	int tell;		/* the shipper: RF_AGENT_READ when S is let go */
	int ok;
	struct rf_err e;
	int go[2];		/* the job starts on a byte here */
	int done[2];		/* and a byte here says it ended */
	pthread_t th;
};

static void *
snapper(void *arg)
{
	struct snapjob *sj = arg;
	struct rf_proc p;
	char b;

	while (read(sj->go[0], &b, 1) == 1) {
		sj->ok = rf_snap_take(sj->pid, &sj->o, &p, sj->out, &sj->e) == 0;
		close(sj->out);
		sj->out = -1;
		b = RF_AGENT_READ;
		if (sj->ok)
			send(sj->tell, &b, 1, MSG_NOSIGNAL);
		rf_proc_free(&p);
		b = 0;
		if (write(sj->done[1], &b, 1) != 1)
			break;
	}
	return NULL;
}

static void
say(int fd, int what, const char *msg)
{
	char b[sizeof(((struct rf_err *)0)->msg) + 64];
	size_t n = 1;

	b[0] = what;
	if (msg != NULL) {
		n = strlcpy(b + 1, msg, sizeof(b) - 1) + 1;
		if (n > sizeof(b))
			n = sizeof(b);
	}
	send(fd, b, n, MSG_NOSIGNAL);
}

static void
sayf(int fd, const char *host, const char *msg)
{
	char b[sizeof(((struct rf_err *)0)->msg) + 300];

	if (host != NULL)
		snprintf(b, sizeof(b), "rf-agent: %s: %s", host, msg);
	else
		snprintf(b, sizeof(b), "rf-agent: %s", msg);
	say(fd, RF_AGENT_FAIL, b);
}

/* The request, with the hand socket; checked to come from our user here. */
static int
take_req(int cfd, struct rf_agent_req *rq, int *hand)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cm;
	struct iovec iov = { rq, sizeof(*rq) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
	    .msg_controllen = sizeof(cm.b) };
	struct cmsghdr *h;
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	ssize_t n;

	*hand = -1;
	if ((n = recvmsg(cfd, &mh, MSG_CMSG_CLOEXEC)) == -1)
		return -1;
	if ((h = CMSG_FIRSTHDR(&mh)) != NULL && h->cmsg_level == SOL_SOCKET &&
	    h->cmsg_type == SCM_RIGHTS && h->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(hand, CMSG_DATA(h), sizeof(int));
	if (n != sizeof(*rq) || *hand < 0 || rq->version != RF_AGENT_VERSION) {
		sayf(cfd, NULL, "a request of another version");
		return -1;
	}
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == -1 || cr.uid != geteuid()) {
		sayf(cfd, NULL, "a request from another user");
		return -1;
	}
	if (cr.pid != rq->self) {
		sayf(cfd, NULL, "a request from another pid namespace");
		return -1;
	}
	rq->host[sizeof(rq->host) - 1] = '\0';
	rq->fdkey[sizeof(rq->fdkey) - 1] = '\0';
	return 0;
}

/*
 * Whether the shipper says PREHAND before the reply comes (1), or the reply
 * comes first, or the shipper gives up (0: the usual end then follows).
 */
static int
prehand(int cfd, struct rf_chan *c, int ms)
{
	struct pollfd pf[2] = { { cfd, POLLIN, 0 }, { c->fd, POLLIN, 0 } };
	char b;
	int r;

	while ((r = poll(pf, 2, ms)) == -1 && errno == EINTR)
		;
	if (r <= 0 || pf[1].revents || !pf[0].revents)
		return 0;
	return recv(cfd, &b, 1, MSG_DONTWAIT) == 1 && b == RF_AGENT_PREHAND;
}

/*
 * One fork: what `rf-snap -z PID | rf-send -F K -p PPID -H HOST` does, on a
 * connection made beforehand when there is one.  Returns when done.
 */
static void
job(int cfd, struct snapjob *sj, struct rf_chan **used)
{
	struct rf_agent_req rq;
	static struct rf_chan fresh;
	struct rf_chan *c;
	struct rf_err e, e2;
	struct host *h = NULL;
	struct pollfd pf;
	json_t *j = NULL;
	char *s = NULL, b;
	int i, hand, r, peer, pfd[2] = { -1, -1 };

	if (take_req(cfd, &rq, &hand) == -1)
		goto out;
	say(cfd, RF_AGENT_OK, NULL);
	for (i = 0; i < nhosts && h == NULL; i++)
		if (strcmp(hosts[i].name, rq.host) == 0 && alive(&hosts[i]))
			h = &hosts[i];
	if (h != NULL)
		c = &h->c;
	else {
		/* not one of ours, or it was down: as rf-send would */
		int fd = rf_dial(rq.host, rq.timeout * 1000, &e);

		if (fd == -1 || rf_chan_client(&fresh, fd, &key, &e) == -1) {
			if (fd != -1)
				close(fd);
			sayf(cfd, rq.host, e.msg);
			goto out;
		}
		c = &fresh;
	}
	*used = c;
	/* this fork's time limits, as rf-send -t has them (held: the hold's) */
	if (c != &fresh && rf_sock_setup(c->fd, rq.timeout * 1000) == -1) {
		sayf(cfd, rq.host, strerror(errno));
		goto out;
	}
	/* the remote side starts on the request, S still on its way to its stop */
	if ((j = rf_xfer_forkreq(rq.kfd, rq.ppid, rq.host, rq.cpid,
	    rq.fdkey[0] != '\0' ? rq.fdkey : NULL)) == NULL ||
	    rf_chan_send_json(c, RF_FR_REQ, j, &e) == -1) {
		sayf(cfd, rq.host, j == NULL ? "out of memory" : e.msg);
		goto out;
	}
	json_decref(j);
	j = NULL;
	/* S has stopped, or the shipper gave up (it closed) */
	pf = (struct pollfd){ cfd, POLLIN, 0 };
	if (poll(&pf, 1, rq.timeout * 1000) != 1 || recv(cfd, &b, 1, 0) != 1 ||
	    b != RF_AGENT_GO)
		goto out;
	if (pipe2(pfd, O_CLOEXEC) == -1) {
		sayf(cfd, NULL, "pipe: out of file descriptors");
		goto out;
	}
	sj->pid = rq.pid;
	sj->o.keep_zero = 1;
	sj->o.go_on = 1;	/* the shipper continues S as soon as it hears */
	sj->o.lazy = rq.lazy != 0;
	sj->o.flags = rq.flags & RF_AGENT_FILTER_OK ? RF_SNAP_FILTER_OK : 0;
	sj->o.wait = 3;
	sj->o.selfrec = rq.selfrec;
	sj->o.selfgen = rq.selfgen;
	sj->o.sender = gettid();
	sj->out = pfd[1];
	sj->tell = cfd;
	b = 1;
	if (write(sj->go[1], &b, 1) != 1) {
		sayf(cfd, NULL, "the snapshot thread is gone");
		goto out;
	}
	pfd[1] = -1;		/* the snapshot thread's now: it closes it */
	r = rf_xfer_stream(c, pfd[0], &e);
	close(pfd[0]);		/* a snapshot still writing stops: EPIPE */
	pfd[0] = -1;
	if (read(sj->done[0], &b, 1) != 1) {
		sayf(cfd, NULL, "the snapshot thread is gone");
		goto out;
	}
	/* its reader gone (74), the snapshot only followed the send's failure */
	if (!sj->ok && sj->e.code != RF_EX_IOERR) {
		sayf(cfd, NULL, sj->e.msg);
		goto out;
	}
	/* a failed write may have a reason waiting: read it before giving up */
	if (r == -1 && rf_chan_pending(c) != 1) {
		sayf(cfd, rq.host, e.msg);
		goto out;
	}
	/*
	 * S is rf-stub already (PREHAND) and the reply still to come: the
	 * connection goes to it now, and the stub reads the reply itself, its
	 * HELLO sent before: no hop of the hand-over is left between the child
	 * built there and its first call (docs/FORK.md "The agent").
	 */
	if (r == 0 && prehand(cfd, c, rq.timeout * 1000)) {
		if (send(hand, "prehand\n", 8, MSG_NOSIGNAL) != 8) {
			sayf(cfd, NULL, "the hand socket is gone");
			goto out;
		}
		rf_xfer_hand(c, hand);
		say(cfd, RF_AGENT_DONE, NULL);
		goto out;
	}
	if ((j = rf_xfer_answer(c, &peer, &e2)) == NULL) {
		sayf(cfd, rq.host, r != -1 || peer ? e2.msg : e.msg);
		goto out;
	}
	if (!json_is_string(json_object_get(j, "token"))) {
		sayf(cfd, rq.host, "no token in the reply");
		goto out;
	}
	if ((s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		sayf(cfd, NULL, "cannot encode the reply");
		goto out;
	}
	/* as rf-send -H writes them: the line, then the connection */
	r = strlen(s);
	s[r] = '\n';
	if (send(hand, s, r + 1, MSG_NOSIGNAL) != r + 1) {
		sayf(cfd, NULL, "the hand socket is gone");
		goto out;
	}
	rf_xfer_hand(c, hand);
	say(cfd, RF_AGENT_DONE, NULL);
out:
	/* a worker takes many jobs: nothing of one stays */
	if (hand >= 0)
		close(hand);
	for (i = 0; i < 2; i++)
		if (pfd[i] >= 0)
			close(pfd[i]);
	free(s);
	json_decref(j);
}

/*
 * A worker: ready beforehand (faulted in, connected, its snapshot thread
 * waiting), it takes jobs one at a time, and makes a new connection to a
 * host once the last one went to a stub.  Its memory stays warm from one
 * fork to the next.  The first spares workers stay; more are made while
 * every one is busy, and go after IDLE_MS without a job.
 */
static int
worker(int lfd, int took, int master, int extra)
{
	static struct snapjob sj;
	struct pollfd pf[2 + MAXHOSTS];
	struct rf_chan *used;
	struct rf_err e;
	long now, wait, idle_since = rf_now_ms();
	int i, cfd, msg[2] = { getpid(), 0 };

	signal(SIGPIPE, SIG_IGN);
	/* one arena, from the heap: freed buffers are reused, still touched */
	mallopt(M_ARENA_MAX, 1);
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	if ((sj.o.buf = mmap(NULL, RF_SNAP_BUFSZ, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0)) == MAP_FAILED)
		sj.o.buf = NULL;
	if (pipe2(sj.go, O_CLOEXEC) == -1 || pipe2(sj.done, O_CLOEXEC) == -1 ||
	    pthread_create(&sj.th, NULL, snapper, &sj) != 0)
		return RF_EX_OSERR;
	for (i = 0; i < nhosts; i++)
		if (hold(&hosts[i], timeout_ms, &e) == -1)
			later(&hosts[i]);
	prefault();
	for (;;) {
		pf[0] = (struct pollfd){ lfd, POLLIN, 0 };
		pf[1] = (struct pollfd){ master, POLLIN, 0 };
		now = rf_now_ms();
		wait = extra ? idle_since + IDLE_MS - now : -1;
		if (extra && wait <= 0)
			return RF_EX_OK;
		for (i = 0; i < nhosts; i++) {
			if (!hosts[i].up && hosts[i].next <= now &&
			    hold(&hosts[i], timeout_ms, &e) == -1)
				later(&hosts[i]);
			if (!hosts[i].up && (wait == -1 || hosts[i].next - now < wait))
				wait = hosts[i].next - now;
			pf[2 + i] = (struct pollfd){ hosts[i].up ? hosts[i].c.fd : -1, POLLIN, 0 };
		}
		if (poll(pf, 2 + nhosts, wait < 0 ? -1 : wait) == -1 && errno != EINTR)
			return RF_EX_OSERR;
		if (pf[1].revents)
			return RF_EX_OK;	/* the master has gone or stops */
		for (i = 0; i < nhosts; i++)
			if (pf[2 + i].revents) {
				/* the server closed it: gone (again at once), or one
				   that does not hold (an answer, within a second:
				   again later, the forks dialing meanwhile) */
				now = rf_now_ms();
				hosts[i].next = now - hosts[i].since < REDIAL_MS ? now + 30 * REDIAL_MS :
				    now;
				drop(&hosts[i]);
			}
		if (!(pf[0].revents & POLLIN))
			continue;
		if ((cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
			continue;	/* another worker took it */
		msg[1] = 1;
		write(took, msg, sizeof(msg));
		used = NULL;
		job(cfd, &sj, &used);
		close(cfd);
		/* the connection is the stub's now, or failed: ours goes */
		for (i = 0; i < nhosts && used != NULL; i++)
			if (used == &hosts[i].c) {
				drop(&hosts[i]);
				hosts[i].next = rf_now_ms();
				used = NULL;
			}
		if (used != NULL)
			rf_chan_close(used);
		msg[1] = 0;
		write(took, msg, sizeof(msg));
		idle_since = rf_now_ms();
	}
}

static int
listen_on(const char *name)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	socklen_t len;
	size_t n = strlen(name);
	int fd;

	if (n == 0 || n >= sizeof(a.sun_path))
		errx(RF_EX_USAGE, "-l %s: not a socket name", name);
	memcpy(a.sun_path, name, n);
	if (name[0] == '@')
		a.sun_path[0] = '\0';	/* abstract */
	len = offsetof(struct sockaddr_un, sun_path) + n;
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		err(RF_EX_OSERR, "socket");
	if (bind(fd, (struct sockaddr *)&a, len) == -1)
		err(errno == EADDRINUSE ? RF_EX_TEMPFAIL : RF_EX_OSERR, "%s", name);
	if (listen(fd, 64) == -1)
		err(RF_EX_OSERR, "listen");
	return fd;
}

int
main(int argc, char *argv[])
{
	struct signalfd_siginfo si;
	struct pollfd pf[3];
	struct rf_err e;
	const char *name = NULL, *kpath = NULL, *errstr;
	struct { pid_t pid; int busy, jobs; } workers[MAXWORKERS];
	pid_t pid, wpid = 0;
	int ch, i, st, spares = 2, dflag = 0, lfd, sfd, wfd = -1, tk[2], ms[2], msg[2];
	int nidle = 0, nwork = 0, stopping = 0;
	long pause_until = 0;
	sigset_t mask;

	/* what we were started with is not ours to hold open (a pipe someone
	   reads to its end, a test harness's fd) */
	close_range(3, ~0U, 0);
	while ((ch = getopt(argc, argv, "dhk:l:n:t:w:")) != -1) {
		switch (ch) {
		case 'd':
			dflag = 1;
			break;
		case 'k':
			kpath = optarg;
			break;
		case 'l':
			name = optarg;
			break;
		case 'n':
			spares = strtonum(optarg, 1, 16, &errstr);
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-n %s: %s", optarg, errstr);
			break;
		case 't':
			timeout_ms = strtonum(optarg, 1, 86400, &errstr) * 1000;
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-t %s: %s", optarg, errstr);
			break;
		case 'w':
			wpid = strtonum(optarg, 1, INT32_MAX, &errstr);
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-w %s: %s", optarg, errstr);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (name == NULL || argc > MAXHOSTS)
		usage();
	for (i = 0; i < argc; i++)
		hosts[nhosts++].name = argv[i];

	if (rf_key_load(kpath, &key, &e) == -1)
		errx(e.code, "%s", e.msg);
	if (rf_chan_init() == -1)
		errx(RF_EX_SOFTWARE, "cannot initialise libsodium or OpenSSL");
	json_object_seed(0);
	if (wpid != 0 && (wfd = syscall(SYS_pidfd_open, wpid, 0)) == -1)
		err(RF_EX_NOINPUT, "-w %d", (int)wpid);
	lfd = listen_on(name);
	/* -d: listening now, so whoever started us may go on */
	if (dflag) {
		if ((pid = fork()) == -1)
			err(RF_EX_OSERR, "fork");
		if (pid > 0)
			_exit(RF_EX_OK);
		setsid();
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) == -1)
		err(RF_EX_OSERR, "signalfd");
	if (pipe2(tk, O_CLOEXEC | O_NONBLOCK) == -1 || pipe2(ms, O_CLOEXEC) == -1)
		err(RF_EX_OSERR, "pipe");

	for (;;) {
		/* spares ready, and one more whenever every worker is busy (after
		   a worker died young: not at once) */
		while (!stopping && (nwork < spares || nidle == 0) && nwork < MAXWORKERS &&
		    rf_now_ms() >= pause_until) {
			if ((pid = fork()) == -1)
				break;
			if (pid == 0) {
				sigprocmask(SIG_UNBLOCK, &mask, NULL);
				close(sfd);
				close(tk[0]);
				close(ms[1]);
				if (wfd >= 0)
					close(wfd);
				_exit(worker(lfd, tk[1], ms[0], nwork >= spares));
			}
			workers[nwork].pid = pid;
			workers[nwork].busy = 0;
			workers[nwork++].jobs = 0;
			nidle++;
		}
		if (stopping && nwork == 0)
			break;
		pf[0] = (struct pollfd){ sfd, POLLIN, 0 };
		pf[1] = (struct pollfd){ tk[0], POLLIN, 0 };
		pf[2] = (struct pollfd){ stopping ? -1 : wfd, POLLIN, 0 };
		if (poll(pf, 3, pause_until > rf_now_ms() ? 100 : -1) == -1 && errno != EINTR)
			err(RF_EX_OSERR, "poll");
		while (read(tk[0], msg, sizeof(msg)) == sizeof(msg))
			for (i = 0; i < nwork; i++)
				if (workers[i].pid == msg[0] && workers[i].busy != msg[1]) {
					workers[i].busy = msg[1];
					workers[i].jobs += msg[1];
					nidle += msg[1] ? -1 : 1;
				}
		if (pf[2].revents && !stopping)
			stopping = 1;	/* the program has ended */
		while (read(sfd, &si, sizeof(si)) == sizeof(si))
			if (si.ssi_signo != SIGCHLD)
				stopping = 1;
		if (stopping == 1) {
			/* idle workers see it and go; busy ones finish their fork */
			close(ms[1]);
			close(lfd);
			stopping = 2;
		}
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
			for (i = 0; i < nwork; i++)
				if (workers[i].pid == pid) {
					if (!workers[i].busy)
						nidle--;
					/* failed (at its start, say): do not loop on it */
					if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
						pause_until = rf_now_ms() + REDIAL_MS;
					workers[i] = workers[--nwork];
					break;
				}
	}
	rf_key_wipe(&key);
	if (name[0] != '@')
		unlink(name);
	return RF_EX_OK;
}
