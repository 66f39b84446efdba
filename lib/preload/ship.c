/*
 * ship.c - P's side of a remote fork: run rf-snap S | rf-send -F K -p P HOST
 * and read rf-send's answer (docs/FORK.md, step 3).
 *
 * The helpers must not be children of the program: it would get SIGCHLD for
 * them, and its waitpid(-1, ...) could reap them (a shell's SIGCHLD handler
 * does).  So a shipper runs the pipeline: clone(2)d with no exit signal,
 * sharing our memory, never exec'ing (an exec would make its exit signal
 * SIGCHLD again), seen only by waitpid with __WALL.  The helpers are its
 * children.  Like vfork, the caller waits until it is done.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include "rfork.h"
#include "rf_agent.h"

#define STACK (64 << 10)
#define SHIPSTACK (256 << 10)
#define OUTMAX 4096

extern char **environ;

static int
tool_in(const char *dir, size_t dlen, const char *name, char *out)
{
	size_t nl = strlen(name);

	if (dlen == 0 || dlen + 1 + nl >= PATH_MAX)
		return 0;
	memcpy(out, dir, dlen);
	out[dlen] = '/';
	memcpy(out + dlen + 1, name, nl + 1);
	return access(out, X_OK) == 0;
}

/* The first directory with an rf-snap must hold rf-send and rf-stub too. */
static int
tools_in(const char *dir, size_t dlen, struct rfp_str *why)
{
	if (!tool_in(dir, dlen, "rf-snap", rfp_cfg.snap))
		return 0;
	if (tool_in(dir, dlen, "rf-send", rfp_cfg.send) &&
	    tool_in(dir, dlen, "rf-stub", rfp_cfg.stub))
		return 1;
	why->n = 0;
	rfp_catn(why, dir, dlen);
	rfp_cat(why, ": rf-snap without rf-send or rf-stub");
	return -1;
}

int
rfp_find_tools(struct rfp_str *why)
{
	struct rfp_str d;
	const char *path, *colon;
	int r = 0;

	if (rfp_cfg.tools != 0)
		goto out;
	why->n = 0;
	if (rfp_cfg.bindir[0] != '\0') {
		if ((r = tools_in(rfp_cfg.bindir, strlen(rfp_cfg.bindir), why)) == 0) {
			rfp_cat(why, "RFORK_BINDIR=");
			rfp_cat(why, rfp_cfg.bindir);
			rfp_cat(why, ": no rf-snap there");
			r = -1;
		}
		goto set;
	}
	/* Built: build/lib and build/bin.  Installed: PREFIX/lib/rfork and PREFIX/bin. */
	if (rfp_cfg.libdir[0] != '\0') {
		d.n = 0;
		rfp_cat(&d, rfp_cfg.libdir);
		rfp_cat(&d, "/../bin");
		if ((r = tools_in(d.s, d.n, why)) != 0)
			goto set;
		d.n = 0;
		rfp_cat(&d, rfp_cfg.libdir);
		rfp_cat(&d, "/../../bin");
		if ((r = tools_in(d.s, d.n, why)) != 0)
			goto set;
	}
	if ((path = getenv("PATH")) != NULL) {
		for (; r == 0 && *path != '\0'; path = *colon ? colon + 1 : colon) {
			if ((colon = strchr(path, ':')) == NULL)
				colon = path + strlen(path);
			r = tools_in(path, colon - path, why);
		}
	}
	if (r == 0)
		rfp_cat(why, "rf-snap not found (set RFORK_BINDIR)");
set:
	rfp_cfg.tools = r == 1 ? 1 : -1;
	if (r != 1) {
		/* Kept for the later forks' lines. */
		memcpy(rfp_cfg.snap, why->s, why->n + 1);
		return -1;
	}
out:
	if (rfp_cfg.tools == 1)
		return 0;
	why->n = 0;
	rfp_cat(why, rfp_cfg.snap);
	return -1;
}

static int
is_us(const char *s, size_t n)
{
	const char *base = s;
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == '/')
			base = s + i + 1;
	return (size_t)(s + n - base) == 11 && memcmp(base, "librfork.so", 11) == 0;
}

char **
rfp_env(size_t *size)
{
	char **env, **e, *p, *w;
	const char *pre = NULL, *s, *t;
	size_t n = 0, prelen = 0;

	for (e = environ; e != NULL && *e != NULL; e++, n++)
		if (strncmp(*e, "LD_PRELOAD=", 11) == 0)
			pre = *e + 11;
	if (pre != NULL)
		prelen = strlen(pre);
	*size = (n + 1) * sizeof(char *) + 12 + prelen + 1;
	env = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (env == MAP_FAILED)
		return NULL;
	p = (char *)(env + n + 1);
	n = 0;
	for (e = environ; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, "LD_PRELOAD=", 11) != 0) {
			env[n++] = *e;
			continue;
		}
		if (*e + 11 != pre)
			continue;
		/* LD_PRELOAD minus us; separators are spaces or colons. */
		memcpy(p, "LD_PRELOAD=", 11);
		w = p + 11;
		for (s = pre; *s != '\0'; s = *t ? t + 1 : t) {
			t = s + strcspn(s, ": ");
			if (t == s || is_us(s, t - s))
				continue;
			if (w != p + 11)
				*w++ = ':';
			memcpy(w, s, t - s);
			w += t - s;
		}
		*w = '\0';
		if (w != p + 11)
			env[n++] = p;
	}
	env[n] = NULL;
	return env;
}

void
rfp_env_free(char **env, size_t size)
{
	if (env != NULL)
		munmap(env, size);
}

struct spawn {
	const char *path;
	char *const *argv, *const *envp;
	int fd[3];
};

/*
 * The child shares our memory until it execs (CLONE_VM | CLONE_VFORK), as
 * in posix_spawn: it touches nothing but its arguments.  Every signal is
 * blocked when it starts, so no handler of the program runs here.
 */
static int
spawn_child(void *arg)
{
	struct spawn *sp = arg;
	struct sigaction dfl;
	sigset_t none;
	int i, t[3];

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (i = 1; i < NSIG; i++)
		if (i != SIGKILL && i != SIGSTOP)
			sigaction(i, &dfl, NULL);
	/* The helpers end with the fork that runs them. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (i = 0; i < 3; i++)
		if ((t[i] = fcntl(sp->fd[i], F_DUPFD_CLOEXEC, 3)) == -1)
			_exit(127);
	for (i = 0; i < 3; i++)
		if (dup2(t[i], i) == -1)
			_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(sp->path, sp->argv, sp->envp);
	_exit(127);
}

/* fn(arg) in a process sharing our memory; returns once it exec'd or exited. */
static pid_t
vclone(int (*fn)(void *), void *arg, size_t size, int sig)
{
	void *stack;
	pid_t pid;

	stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return -1;
	pid = clone(fn, (char *)stack + size, CLONE_VM | CLONE_VFORK | sig, arg);
	munmap(stack, size);
	return pid;
}

static pid_t
spawn(struct spawn *sp)
{
	return vclone(spawn_child, sp, STACK, SIGCHLD);
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The last non-empty line of the helpers' stderr. */
static void
last_line(const char *b, size_t n, struct rfp_str *why)
{
	size_t end, start;

	while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == ' '))
		n--;
	end = n;
	start = end;
	while (start > 0 && b[start - 1] != '\n')
		start--;
	why->n = 0;
	rfp_catn(why, b + start, end - start);
}

/* "token": "..." in rf-send's JSON reply. */
static int
find_token(const char *r, char *token)
{
	const char *p = strstr(r, "\"token\"");
	size_t n = 0;

	if (p == NULL)
		return -1;
	p += 7;
	p += strspn(p, " \t");
	if (*p++ != ':')
		return -1;
	p += strspn(p, " \t");
	if (*p++ != '"')
		return -1;
	while (n < RFP_TOKEN - 1 && p[n] != '"' && p[n] != '\0') {
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-",
		    p[n]) == NULL)
			return -1;
		n++;
	}
	if (n == 0 || p[n] != '"')
		return -1;
	memcpy(token, p, n);
	token[n] = '\0';
	return 0;
}

/* "lazy": N in the reply, N > 0: pages come after the child starts. */
static int
find_lazy(const char *r)
{
	const char *p = strstr(r, "\"lazy\"");

	if (p == NULL)
		return 0;
	p += 6;
	p += strspn(p, " \t");
	if (*p++ != ':')
		return 0;
	p += strspn(p, " \t");
	return *p >= '1' && *p <= '9';
}

/* Exit status as "exit N" or "signal N". */
static void
status_str(struct rfp_str *why, const char *who, int st)
{
	why->n = 0;
	rfp_cat(why, who);
	if (WIFEXITED(st)) {
		rfp_cat(why, " exited ");
		rfp_num(why, WEXITSTATUS(st));
	} else {
		rfp_cat(why, " killed by signal ");
		rfp_num(why, WTERMSIG(st));
	}
}

/* Output of a helper: the first OUTMAX-1 bytes are kept. */
struct sink {
	int fd;
	char b[OUTMAX];
	size_t n;
};

static void
drain(struct sink *k, short revents)
{
	char junk[512];
	ssize_t n;

	if (revents == 0)
		return;
	if (k->n < sizeof(k->b) - 1)
		n = read(k->fd, k->b + k->n, sizeof(k->b) - 1 - k->n);
	else
		n = read(k->fd, junk, sizeof(junk));
	if (n <= 0) {
		rfp_close(k->fd);
		k->fd = -1;
	} else if (k->n < sizeof(k->b) - 1)
		k->n += n;
	k->b[k->n] = '\0';
}

/* The -H socket's reply line, as far as it has come (no wait). */
static void
take_reply(int fd, struct sink *k)
{
	ssize_t n = recv(fd, k->b, sizeof(k->b) - 1, MSG_DONTWAIT);

	k->n = n > 0 ? n : 0;
	k->b[k->n] = '\0';
}

/* Why the pipeline failed, in the words of the helper that knows. */
static void
failure(struct sink *snaperr, int sst, struct sink *senderr, int est, struct rfp_str *why)
{
	int snapfailed = !WIFEXITED(sst) || WEXITSTATUS(sst) != 0;

	/* An empty or bad image is rf-snap's failure; otherwise rf-snap
	   only lost its reader when rf-send gave up. */
	if (snapfailed && (!WIFEXITED(est) || WEXITSTATUS(est) == 65 ||
	    WEXITSTATUS(est) == 66)) {
		if (snaperr->n > 0)
			last_line(snaperr->b, snaperr->n, why);
		else
			status_str(why, "rf-snap", sst);
	} else if (senderr->n > 0)
		last_line(senderr->b, senderr->n, why);
	else
		status_str(why, "rf-send", est);
}

struct job {
	pid_t pid, ppid, cpid;
	int kfd;
	int *lazy;		/* in: rf-snap -l; out: pages come later; NULL: no */
	const char *host, *fdkey;
	char *token;
	struct rfp_str *why;
	int r;
	int hand[2];		/* rf-send -H: our end, rf-send's stdout; -1: no -H */
	/* -H: called as soon as the reply and the connection are in, while
	   rf-send and rf-snap still end (rfp_ship_hand) */
	void (*early)(void *arg, const char *token, int lazy, struct rfp_hand *hand);
	void *early_arg;
	int handed;		/* early was called: the child is remote, whatever follows */
	/* -H: called once rf-snap has read S and ended well while rf-send
	   still runs: S may start its stub before the answer (rfp_ship_hand);
	   1 if it did */
	int (*pre)(void *arg);
	/* -H: S is still to stop; 0 once it has, -1 if it did not */
	int (*stopped)(void *arg);
	/* rf-agent: the connection to the stub before the reply, which the
	   stub reads and passes back (rfp_ship_hand) */
	int (*prehand)(void *arg, struct rfp_hand *hand, char *line, size_t cap);
	uint64_t gen;		/* S wrote rfp_selfrec for this fork; 0: no */
};

/*
 * The child runs there: S became its stub already (handed), or the reply
 * holds its token.  0, with *j->lazy from the reply; -1 if not.
 */
static int
runs_there(struct job *j, const char *reply, char *token)
{
	if (!j->handed && find_token(reply, token) != 0)
		return -1;
	if (j->lazy != NULL)
		*j->lazy = *j->lazy && find_lazy(reply);
	return 0;
}

/* rf-send -H's second message: the connection and the channel's state. */
static int
take_hand(int fd, struct rfp_hand *hand)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cm;
	struct iovec iov = { hand->state, sizeof(hand->state) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
	    .msg_controllen = sizeof(cm.b) };
	struct cmsghdr *h;
	ssize_t n;

	hand->conn = -1;
	if ((n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) == -1)
		return -1;	/* EAGAIN: not yet */
	h = CMSG_FIRSTHDR(&mh);
	if (n > 0 && h != NULL && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
	    h->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&hand->conn, CMSG_DATA(h), sizeof(int));
	if (n <= 0 || hand->conn < 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		rfp_close(hand->conn);
		hand->conn = -1;
		errno = EPROTO;
		return -1;
	}
	hand->len = n;
	return 0;
}

/*
 * -H, early: rf-send's connection, which follows its reply, to S at once.
 * Not there yet: *hfd stays for the next poll.
 */
static void
early_hand(struct job *j, const char *token, const char *reply, struct rfp_hand *hand,
    int *hfd)
{
	if (take_hand(j->hand[0], hand) == -1) {
		if (errno != EAGAIN)
			*hfd = -1;	/* P's rfp_hand_take finds nothing either */
		return;
	}
	*hfd = -1;
	j->early(j->early_arg, token, j->lazy != NULL && *j->lazy && find_lazy(reply),
	    hand);
	j->handed = 1;
	rfp_close(hand->conn);
	hand->conn = -1;
	memset(hand->state, 0, sizeof(hand->state));
}

/*
 * rf-agent handed the connection over before the reply ("prehand"): to the
 * stub, which sends HELLO, reads the reply and passes its line back.  1 with
 * the line in reply (the child runs there: S is its stub, whatever
 * follows), or -1 with why (the stub has ended, unseen: a local child).
 */
static int
pre_hand(struct job *j, struct sink *reply, char *token, struct rfp_hand *hand,
    struct rfp_str *why)
{
	struct pollfd pfd = { .fd = j->hand[0], .events = POLLIN };
	int r;

	why->n = 0;
	/* the connection follows the line at once */
	if (poll(&pfd, 1, 1000L * rfp_cfg.timeout) != 1 || take_hand(j->hand[0], hand) == -1) {
		rfp_cat(why, "rf-agent: the connection did not follow");
		return -1;
	}
	r = j->prehand(j->early_arg, hand, reply->b, sizeof(reply->b));
	rfp_close(hand->conn);
	hand->conn = -1;
	memset(hand->state, 0, sizeof(hand->state));
	reply->n = r == 0 ? strlen(reply->b) : 0;
	if (r == 0 && find_token(reply->b, token) == 0) {
		j->handed = 1;
		return 1;
	}
	rfp_cat(why, r == 0 && reply->b[0] == '-' ? reply->b + 1 : "its stub did not say");
	return -1;
}

static int
agent_connect(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t n = strlen(rfp_cfg.agent);
	int fd;

	if (n >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, rfp_cfg.agent, n);
	if (a.sun_path[0] == '@')
		a.sun_path[0] = '\0';	/* abstract */
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path) + n) ==
	    -1) {
		rfp_close(fd);
		return -1;
	}
	return fd;
}

/* One message from the agent: its first byte, the rest (a reason) in why. */
static int
agent_said(int fd, struct rfp_str *why)
{
	char b[RFP_WHY + 1];
	ssize_t n;
	int reset = 0;

	/* An agent that ended its job with our PREHAND unread (it had its
	   answer already) resets the socket: the kernel reports that first,
	   once, and what the agent said before it comes after. */
	while ((n = recv(fd, b, sizeof(b) - 1, 0)) == -1 &&
	    (errno == EINTR || (errno == ECONNRESET && !reset++)))
		;
	if (n <= 0)
		return -1;
	if (n > 1) {
		why->n = 0;
		rfp_catn(why, b + 1, n - 1);
	}
	return b[0];
}

/*
 * The same as the pipeline below, by rf-agent (rf-run's): no rf-snap or
 * rf-send to start, a connection made and proven beforehand.  -2 when there
 * is no agent to take it (gone, another pid namespace): the pipeline then.
 */
static int
ship_agent(struct job *j, char *token, struct rfp_str *why)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cm;
	struct rf_agent_req rq;
	struct iovec iov = { &rq, sizeof(rq) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
	    .msg_controllen = sizeof(cm.b) };
	struct rfp_hand hand = { .fd = -1, .conn = -1 };
	struct pollfd pfd[2];
	struct sink reply = { .n = 0 };
	long deadline, left;
	int fd, hfd = -1, replied = 0, done = 0, r = -1, w, pre = 0;
	size_t l;

	memset(&rq, 0, sizeof(rq));
	rq.version = RF_AGENT_VERSION;
	rq.self = syscall(SYS_getpid);
	rq.pid = j->pid;
	rq.ppid = j->ppid;
	rq.cpid = j->cpid;
	rq.kfd = j->kfd;
	rq.lazy = j->lazy != NULL && *j->lazy;
	rq.flags = j->cpid > 0 ? RF_AGENT_FILTER_OK : 0;
	rq.timeout = rfp_cfg.timeout;
	if (j->gen != 0) {
		rq.selfrec = (uintptr_t)&rfp_selfrec;
		rq.selfgen = j->gen;
	}
	if ((l = strlen(j->host)) >= sizeof(rq.host))
		return -2;
	memcpy(rq.host, j->host, l);
	if (j->fdkey != NULL && strlen(j->fdkey) < sizeof(rq.fdkey))
		memcpy(rq.fdkey, j->fdkey, strlen(j->fdkey));
	memset(&cm, 0, sizeof(cm));
	cm.h.cmsg_level = SOL_SOCKET;
	cm.h.cmsg_type = SCM_RIGHTS;
	cm.h.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&cm.h), &j->hand[1], sizeof(int));
	if ((fd = agent_connect()) == -1)
		return -2;
	pfd[0] = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != sizeof(rq) ||
	    poll(pfd, 1, 1000L * rfp_cfg.timeout) != 1 || agent_said(fd, why) != RF_AGENT_OK) {
		rfp_close(fd);
		why->n = 0;
		return -2;
	}
	if (j->stopped != NULL && j->stopped(j->early_arg) == -1) {
		rfp_close(fd);	/* the agent gives up too */
		why->n = 0;
		return -1;
	}
	w = RF_AGENT_GO;
	if (send(fd, &w, 1, MSG_NOSIGNAL) != 1) {
		rfp_close(fd);
		rfp_cat(why, "rf-agent: gone");
		return -1;
	}
	if (j->early != NULL)
		hfd = j->hand[0];
	deadline = now_ms() + 4000L * rfp_cfg.timeout;
	while (!done) {
		if ((left = deadline - now_ms()) <= 0) {
			why->n = 0;
			rfp_cat(why, "rf-agent: no answer within ");
			rfp_num(why, 4 * rfp_cfg.timeout);
			rfp_cat(why, " s");
			break;
		}
		pfd[0] = (struct pollfd){ .fd = fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = hfd, .events = POLLIN };
		if (poll(pfd, 2, left) == -1 && errno != EINTR)
			break;
		/* the agent first: its READ was sent before the reply came */
		switch (pfd[0].revents & (POLLIN | POLLHUP | POLLERR) ? agent_said(fd, why) : 0) {
		case 0:
			break;
		case RF_AGENT_READ:
			/* S is its stub now: it may have the connection before the
			   reply, and read that itself */
			w = RF_AGENT_PREHAND;
			if (j->pre != NULL && j->pre(j->early_arg) == 1 && j->prehand != NULL &&
			    hfd >= 0)
				(void)send(fd, &w, 1, MSG_NOSIGNAL);
			break;
		case RF_AGENT_DONE:
			done = 1;
			break;
		case RF_AGENT_FAIL:
			done = -1;
			break;
		default:
			why->n = 0;
			rfp_cat(why, "rf-agent: gone");
			done = -1;
		}
		if (pfd[1].revents & POLLIN) {
			if (!replied) {
				take_reply(hfd, &reply);
				replied = 1;
				if (strcmp(reply.b, "prehand\n") == 0) {
					if ((pre = pre_hand(j, &reply, token, &hand, why)) == -1)
						done = -1;
					hfd = -1;
				} else if (find_token(reply.b, token) != 0)
					hfd = -1;
			}
			if (hfd >= 0)
				early_hand(j, token, reply.b, &hand, &hfd);
		}
	}
	rfp_close(fd);
	if (pre == -1)
		return -1;
	/* done: the reply and the connection are there */
	if (done == 1 && hfd >= 0 && replied)
		early_hand(j, token, reply.b, &hand, &hfd);
	if (j->handed || done == 1) {
		if (!j->handed && !replied)
			take_reply(j->hand[0], &reply);
		if ((r = runs_there(j, reply.b, token)) == -1) {
			why->n = 0;
			rfp_cat(why, "rf-agent: no token in the reply");
		}
	}
	return r;
}

static int
ship(struct job *j, char *token, struct rfp_str *why)
{
	struct rfp_str pidstr = { .n = 0 }, tstr = { .n = 0 }, kstr = { .n = 0 };
	struct rfp_str ppidstr = { .n = 0 }, cpidstr = { .n = 0 }, recstr = { .n = 0 };
	struct spawn snap, send;
	struct pollfd pfd[5];
	struct rfp_hand hand = { .fd = -1, .conn = -1 };
	int hfd = -1, replied = 0, snapfd = -1;
	struct sink k[3];	/* rf-send's stdout, rf-send's and rf-snap's stderr */
	char **env, *sargv[16], *snargv[8];
	size_t envsize;
	pid_t snappid = -1, sendpid = -1;
	long deadline, left;
	int pipe1[2] = { -1, -1 }, p[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
	int null = -1, sst = 0, est = 0, i = 0, r = -1, late = 0, sendlate = 0;

	/* the connection's hand-over is the agent's way (rfp_ship_hand) */
	if (rfp_cfg.agent[0] != '\0' && j->hand[1] >= 0 &&
	    (r = ship_agent(j, token, why)) != -2)
		return r;
	r = -1;
	rfp_num(&pidstr, j->pid);
	rfp_num(&ppidstr, j->ppid);
	rfp_num(&kstr, j->kfd);
	rfp_num(&tstr, rfp_cfg.timeout);
	i = 0;
	snargv[i++] = "rf-snap";
	/* the image streams from its first page (a fork: time over size) */
	snargv[i++] = j->cpid > 0 ? "-zu" : j->lazy != NULL && *j->lazy ? "-zl" : "-z";
	/* started beside S's stop (stopped, below): it waits for it */
	if (j->stopped != NULL) {
		snargv[i++] = "-w";
		snargv[i++] = "3";
	}
	/* S's own record of what only it can tell: no injected calls */
	if (j->gen != 0) {
		rfp_num(&recstr, (uintptr_t)&rfp_selfrec);
		rfp_cat(&recstr, ":");
		rfp_num(&recstr, j->gen);
		snargv[i++] = "-c";
		snargv[i++] = recstr.s;
	}
	snargv[i++] = pidstr.s;
	snargv[i] = NULL;
	i = 0;
	sargv[i++] = "rf-send";
	sargv[i++] = "-F";
	sargv[i++] = kstr.s;
	sargv[i++] = "-p";
	sargv[i++] = ppidstr.s;
	if (j->cpid > 0) {
		rfp_num(&cpidstr, j->cpid);
		sargv[i++] = "-c";
		sargv[i++] = cpidstr.s;
	}
	if (j->fdkey != NULL) {
		sargv[i++] = "-L";
		sargv[i++] = (char *)j->fdkey;
	}
	if (j->hand[1] >= 0)
		sargv[i++] = "-H";
	sargv[i++] = "-t";
	sargv[i++] = tstr.s;
	if (rfp_cfg.key[0] != '\0') {
		sargv[i++] = "-k";
		sargv[i++] = rfp_cfg.key;
	}
	sargv[i++] = "--";
	sargv[i++] = (char *)j->host;
	sargv[i] = NULL;

	why->n = 0;
	if ((env = rfp_env(&envsize)) == NULL) {
		rfp_cat(why, "mmap failed");
		return -1;
	}
	for (i = 0; i < 3; i++)
		k[i].n = 0;
	if (pipe2(pipe1, O_CLOEXEC) == -1 || pipe2(p[0], O_CLOEXEC) == -1 ||
	    pipe2(p[1], O_CLOEXEC) == -1 || pipe2(p[2], O_CLOEXEC) == -1 ||
	    (null = rfp_open("/dev/null", O_RDONLY)) == -1) {
		rfp_cat(why, "pipe: ");
		rfp_cat(why, strerrordesc_np(errno));
		goto out;
	}
	snap = (struct spawn){ rfp_cfg.snap, snargv, env, { null, pipe1[1], p[2][1] } };
	send = (struct spawn){ rfp_cfg.send, sargv, env,
	    { pipe1[0], j->hand[1] >= 0 ? j->hand[1] : p[0][1], p[1][1] } };
	/* Both start at once, S still on its way to its stop: rf-send's
	   start, dial and key proof, and rf-snap's start (it waits for the
	   stop: -w) need not wait for it; the remote side starts on the
	   request.  S must stop for good (stopped) or neither goes on. */
	if ((sendpid = spawn(&send)) == -1 || (snappid = spawn(&snap)) == -1) {
		rfp_cat(why, "clone: ");
		rfp_cat(why, strerrordesc_np(errno));
		sendlate = sendpid > 0;
		goto out;
	}
	/* -H: rf-snap's end, the moment S may become its stub (pre), seen at
	   once: its stderr closes a moment before it can be reaped */
	if (j->pre != NULL)
		snapfd = syscall(SYS_pidfd_open, snappid, 0);
	if (j->stopped != NULL && j->stopped(j->early_arg) == -1) {
		sendlate = 1;	/* S is continued and told "local": no word */
		goto out;
	}
	for (i = 0; i < 3; i++) {
		rfp_close(p[i][1]);
		p[i][1] = -1;
		k[i].fd = p[i][0];
		p[i][0] = -1;
	}
	/* -H: the reply waits on our socket, read once rf-send is done, and the
	   connection after it, which only P takes (rfp_hand_take). */
	if (j->hand[1] >= 0) {
		rfp_close(k[0].fd);
		k[0].fd = -1;
		if (j->early != NULL)
			hfd = j->hand[0];	/* or as soon as they come: early */
	}
	rfp_close(pipe1[0]);
	rfp_close(pipe1[1]);
	pipe1[0] = pipe1[1] = -1;

	/* rf-send bounds every wait by -t; this only catches a hung helper. */
	deadline = now_ms() + 4000L * rfp_cfg.timeout;
	while (k[0].fd >= 0 || k[1].fd >= 0 || k[2].fd >= 0) {
		if ((left = deadline - now_ms()) <= 0) {
			late = 1;
			break;
		}
		for (i = 0; i < 3; i++)
			pfd[i] = (struct pollfd){ .fd = k[i].fd, .events = POLLIN };
		pfd[3] = (struct pollfd){ .fd = hfd, .events = POLLIN };
		pfd[4] = (struct pollfd){ .fd = snapfd, .events = POLLIN };
		/* without a pidfd: rf-snap's stderr closes as it exits, a
		   moment before it is reapable: look again soon */
		if (j->pre != NULL && snapfd < 0 && k[2].fd < 0 && k[1].fd >= 0 &&
		    snappid > 0 && left > 1)
			left = 1;
		if (poll(pfd, 5, left) == -1 && errno != EINTR)
			break;
		for (i = 0; i < 3; i++)
			drain(&k[i], pfd[i].revents);
		/* rf-snap is done with S (it ended, well) */
		if (j->pre != NULL && k[1].fd >= 0 && snappid > 0 &&
		    (snapfd >= 0 ? pfd[4].revents != 0 : k[2].fd < 0) &&
		    waitpid(snappid, &sst, __WALL | WNOHANG) == snappid) {
			snappid = -1;
			rfp_close(snapfd);
			snapfd = -1;
			if (WIFEXITED(sst) && WEXITSTATUS(sst) == 0)
				j->pre(j->early_arg);
		}
		if (hfd < 0 || !(pfd[3].revents & POLLIN))
			continue;
		/* -H, early: the reply, then the connection; the child runs
		   there now, so S may become its stub before rf-send has ended */
		if (!replied) {
			take_reply(hfd, &k[0]);
			replied = 1;
			if (find_token(k[0].b, token) != 0) {
				hfd = -1;	/* left to the end, which says why */
				continue;
			}
		}
		/* the connection follows the reply at once: mostly there now */
		early_hand(j, token, k[0].b, &hand, &hfd);
	}
	/* rf-send has ended: what it sent is there */
	if (hfd >= 0 && replied && !late)
		early_hand(j, token, k[0].b, &hand, &hfd);
	for (i = 0; i < 3; i++) {
		rfp_close(k[i].fd);
		k[i].b[k[i].n] = '\0';
	}
	if (late) {
		if (snappid > 0)
			kill(snappid, SIGKILL);
		kill(sendpid, SIGKILL);
	}
	while (snappid > 0 && waitpid(snappid, &sst, __WALL) == -1 && errno == EINTR)
		;
	while (waitpid(sendpid, &est, __WALL) == -1 && errno == EINTR)
		;
	snappid = -1;
	if (late) {
		rfp_cat(why, "rf-snap | rf-send: no answer within ");
		rfp_num(why, 4 * rfp_cfg.timeout);
		rfp_cat(why, " s");
	} else if (j->handed) {
		r = runs_there(j, k[0].b, token);	/* S is the remote child's stub */
	} else if (WIFEXITED(est) && WEXITSTATUS(est) == 0) {
		if (j->hand[1] >= 0 && !replied)
			take_reply(j->hand[0], &k[0]);
		/* rf-send's word decides: the child runs there, whatever rf-snap said. */
		if ((r = runs_there(j, k[0].b, token)) == -1)
			rfp_cat(why, "rf-send: no token in the reply");
	} else
		failure(&k[2], sst, &k[1], est, why);
out:
	rfp_close(snapfd);
	if (snappid > 0) {
		kill(snappid, SIGKILL);
		waitpid(snappid, NULL, __WALL);
	}
	if (sendlate) {
		kill(sendpid, SIGKILL);
		waitpid(sendpid, NULL, __WALL);
	}
	rfp_close(null);
	for (i = 0; i < 2; i++) {
		rfp_close(pipe1[i]);
		rfp_close(p[0][i]);
		rfp_close(p[1][i]);
		rfp_close(p[2][i]);
	}
	rfp_env_free(env, envsize);
	return r;
}

/*
 * The shipper has its own copy of the program's signal actions; every
 * signal stays blocked (no handler of the program may run in it) and its
 * children must be waitable whatever the program did with SIGCHLD.
 */
static int
shipper(void *arg)
{
	struct job *j = arg;
	struct sigaction dfl;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &dfl, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	j->r = ship(j, j->token, j->why);
	_exit(0);
}

static int
run_job(struct job *j)
{
	pid_t sp;

	j->why->n = 0;
	if ((sp = vclone(shipper, j, SHIPSTACK, 0)) == -1) {
		rfp_cat(j->why, "clone: ");
		rfp_cat(j->why, strerrordesc_np(errno));
		return -1;
	}
	while (waitpid(sp, NULL, __WALL) == -1 && errno == EINTR)
		;
	if (j->r == -1 && j->why->n == 0)
		rfp_cat(j->why, "the shipper died");
	return j->r;
}

int
rfp_ship(pid_t pid, pid_t ppid, pid_t cpid, int kfd, const char *host, const char *fdkey,
    char *token, struct rfp_str *why)
{
	struct job j = { pid, ppid, cpid, kfd, NULL, host, fdkey, token, why, -1, { -1, -1 },
	    NULL, NULL, 0, NULL, NULL, NULL, 0 };

	return run_job(&j);
}

int
rfp_ship_hand(pid_t pid, pid_t ppid, int kfd, const char *host, char *token,
    struct rfp_hand *hand, int *lazy, struct rfp_str *why,
    void (*early)(void *arg, const char *token, int lazy, struct rfp_hand *hand),
    void *early_arg, int *handed, int (*pre)(void *arg), int (*stopped)(void *arg),
    int (*prehand)(void *arg, struct rfp_hand *hand, char *line, size_t cap), uint64_t gen)
{
	struct job j = { pid, ppid, 0, kfd, lazy, host, NULL, token, why, -1, { -1, -1 },
	    early, early_arg, 0, pre, stopped, prehand, gen };
	int r;

	hand->fd = hand->conn = -1;
	hand->len = 0;
	/* Made here, before the shipper: our end stays ours when it is gone. */
	*handed = 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, j.hand) == -1) {
		if (lazy != NULL)
			*lazy = 0;
		if (stopped != NULL && stopped(early_arg) == -1) {
			why->n = 0;
			return -1;
		}
		return rfp_ship(pid, ppid, 0, kfd, host, NULL, token, why);
	}
	r = run_job(&j);
	rfp_close(j.hand[1]);
	*handed = j.handed;
	if (r == 0 && !j.handed)
		hand->fd = j.hand[0];
	else
		rfp_close(j.hand[0]);
	return r;
}

int
rfp_hand_take(struct rfp_hand *hand)
{
	if (hand->fd < 0)
		return -1;
	if (take_hand(hand->fd, hand) == -1) {
		rfp_hand_free(hand);
		return -1;
	}
	return 0;
}

void
rfp_hand_free(struct rfp_hand *hand)
{
	rfp_close(hand->fd);
	rfp_close(hand->conn);
	hand->fd = hand->conn = -1;
	memset(hand->state, 0, sizeof(hand->state));
	hand->len = 0;
}
