/*
 * fwd.c - the wire of forwarded system calls (docs/FORK.md "Wire"): the
 * buffered connection, message headers, the ioctl table and the path rule
 * shared by the proxy (fwdproxy.c) and the stub (fwdstub.c).
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "rf_fwd.h"

#define BUFSZ (64u << 10)
/* The largest message, header and data: it can be built in place (rf_fwd_outbuf). */
#define OUTSZ (RF_FWD_HDR + RF_FWD_IO_MAX + RF_FWD_PATH_MAX * 2)
/* Held messages (rf_fwd_hold) leave once this many bytes wait. */
#define HOLDMAX (256u << 10)

static ssize_t
fd_read(void *ctx, void *buf, size_t n)
{
	return read(*(int *)ctx, buf, n);
}

static ssize_t
fd_write(void *ctx, const void *buf, size_t n)
{
	return write(*(int *)ctx, buf, n);
}

static int
fd_urgent(void *ctx)
{
	return send(*(int *)ctx, "!", 1, MSG_OOB | MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? 0 : -1;
}

void
rf_fwd_io_fd(struct rf_fwd_io *io, int *fd)
{
	memset(io, 0, sizeof(*io));
	io->ctx = fd;
	io->read = fd_read;
	io->write = fd_write;
	io->urgent = fd_urgent;
}

int
rf_fwd_conn_init(struct rf_fwd_conn *c, const struct rf_fwd_io *io)
{
	memset(c, 0, sizeof(*c));
	c->io = *io;
	c->in = malloc(BUFSZ);
	c->out = malloc(HOLDMAX + OUTSZ);
	if (c->in == NULL || c->out == NULL) {
		rf_fwd_conn_free(c);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void
rf_fwd_conn_free(struct rf_fwd_conn *c)
{
	free(c->in);
	free(c->out);
	c->in = c->out = NULL;
}

static int
put(struct rf_fwd_conn *c, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t r;

	while (n > 0) {
		r = c->io.write(c->io.ctx, p, n);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EPIPE;
			return -1;
		}
		p += r;
		n -= r;
	}
	return 0;
}

static void
enc(uint8_t *b, const struct rf_fwd_msg *m)
{
	uint16_t fam = htole16(m->fam);
	uint32_t len = htole32(m->dlen);
	uint64_t v;
	int i;

	b[0] = m->op;
	b[1] = m->flags;
	memcpy(b + 2, &fam, 2);
	memcpy(b + 4, &len, 4);
	for (i = 0; i < 4; i++) {
		v = htole64((uint64_t)m->a[i]);
		memcpy(b + 8 + 8 * i, &v, 8);
	}
}

static void
dec(const uint8_t *b, struct rf_fwd_msg *m)
{
	uint16_t fam;
	uint32_t len;
	uint64_t v;
	int i;

	m->op = b[0];
	m->flags = b[1];
	memcpy(&fam, b + 2, 2);
	memcpy(&len, b + 4, 4);
	m->fam = le16toh(fam);
	m->dlen = le32toh(len);
	for (i = 0; i < 4; i++) {
		memcpy(&v, b + 8 + 8 * i, 8);
		m->a[i] = (int64_t)le64toh(v);
	}
}

int rf_fwd_flush(struct rf_fwd_conn *c);

/*
 * The message goes after those held (c->hold bytes at c->out); with hold it
 * stays there too, unless enough wait.  Built in place (data is
 * rf_fwd_outbuf): one write, one frame of the transport, no copy.
 */
static int
send1(struct rf_fwd_conn *c, const struct rf_fwd_msg *m, const void *data, int hold)
{
	uint8_t *b = c->out + c->hold;
	size_t n;

	if (data != b + RF_FWD_HDR && m->dlen > BUFSZ - RF_FWD_HDR) {
		/* large, from elsewhere: no copy, after what is held */
		if (rf_fwd_flush(c) == -1)
			return -1;
		enc(c->out, m);
		if (put(c, c->out, RF_FWD_HDR) == -1)
			return -1;
		return put(c, data, m->dlen);
	}
	enc(b, m);
	if (data != b + RF_FWD_HDR && m->dlen > 0)
		memcpy(b + RF_FWD_HDR, data, m->dlen);
	n = c->hold + RF_FWD_HDR + m->dlen;
	if (hold && n < HOLDMAX) {
		c->hold = n;
		return 0;
	}
	c->hold = 0;
	return put(c, c->out, n);
}

int
rf_fwd_hold(struct rf_fwd_conn *c, const struct rf_fwd_msg *m, const void *data)
{
	if (m->dlen > RF_FWD_IO_MAX + RF_FWD_PATH_MAX * 2) {
		errno = EMSGSIZE;
		return -1;
	}
	return send1(c, m, data, 1);
}

int
rf_fwd_flush(struct rf_fwd_conn *c)
{
	size_t n = c->hold;

	c->hold = 0;
	return n > 0 ? put(c, c->out, n) : 0;
}

size_t
rf_fwd_held(const struct rf_fwd_conn *c)
{
	return c->hold;
}

int
rf_fwd_send(struct rf_fwd_conn *c, const struct rf_fwd_msg *m, const void *data)
{
	if (m->dlen > RF_FWD_IO_MAX + RF_FWD_PATH_MAX * 2) {
		errno = EMSGSIZE;
		return -1;
	}
	return send1(c, m, data, 0);
}

static int
fill(struct rf_fwd_conn *c)
{
	ssize_t r;

	if (c->inoff > 0) {
		memmove(c->in, c->in + c->inoff, c->inlen);
		c->inoff = 0;
	}
	for (;;) {
		r = c->io.read(c->io.ctx, c->in + c->inlen, BUFSZ - c->inlen);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		c->inlen += r;
		return r > 0;
	}
}

int
rf_fwd_recv_hdr(struct rf_fwd_conn *c, struct rf_fwd_msg *m)
{
	int r;

	while (c->inlen < RF_FWD_HDR) {
		if ((r = fill(c)) == -1)
			return -1;
		if (r == 0) {
			if (c->inlen == 0)
				return 0;
			errno = EPROTO;
			return -1;
		}
	}
	dec(c->in + c->inoff, m);
	c->inoff += RF_FWD_HDR;
	c->inlen -= RF_FWD_HDR;
	if (m->op == 0 || m->op >= RF_FWD_NOPS ||
	    m->dlen > RF_FWD_IO_MAX + RF_FWD_PATH_MAX * 2) {
		errno = EPROTO;
		return -1;
	}
	return 1;
}

/* Up to n buffered bytes into p; returns how many. */
static size_t
take(struct rf_fwd_conn *c, char *p, size_t n)
{
	size_t k = n < c->inlen ? n : c->inlen;

	memcpy(p, c->in + c->inoff, k);
	c->inoff += k;
	c->inlen -= k;
	if (c->inlen == 0)
		c->inoff = 0;
	return k;
}

int
rf_fwd_recv_data(struct rf_fwd_conn *c, void *buf, size_t n)
{
	char *p = buf;
	size_t k;
	ssize_t r;

	k = take(c, p, n);
	p += k;
	n -= k;
	while (n > 0) {
		if (n < BUFSZ / 2) {
			if ((r = fill(c)) == -1)
				return -1;
			if (r == 0)
				break;
			k = take(c, p, n);
		} else {
			r = c->io.read(c->io.ctx, p, n);
			if (r == -1 && errno == EINTR)
				continue;
			if (r == -1)
				return -1;
			if (r == 0)
				break;
			k = r;
		}
		p += k;
		n -= k;
	}
	if (n > 0) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

void *
rf_fwd_outbuf(struct rf_fwd_conn *c)
{
	return c->out + c->hold + RF_FWD_HDR;
}

size_t
rf_fwd_pending(const struct rf_fwd_conn *c)
{
	return c->inlen;
}

int
rf_fwd_op_blocks(int op)
{
	switch (op) {
	case RF_FWD_LSEEK: case RF_FWD_CLOSE: case RF_FWD_FSTAT: case RF_FWD_STATAT:
	case RF_FWD_STATX: case RF_FWD_GETDENTS: case RF_FWD_KILL: case RF_FWD_PROC:
	case RF_FWD_FORKSTUB: case RF_FWD_STUBGO:
		return 0;
	case RF_FWD_SOCK:
		return 1;	/* accept waits; the others are quick either way */
	default:
		return 1;
	}
}

const char *
rf_fwd_op_name(int op)
{
	static const char *const names[RF_FWD_NOPS] = {
		[RF_FWD_HELLO] = "hello", [RF_FWD_READ] = "read",
		[RF_FWD_WRITE] = "write", [RF_FWD_LSEEK] = "lseek",
		[RF_FWD_CLOSE] = "close", [RF_FWD_OPEN] = "open",
		[RF_FWD_BIND] = "bind", [RF_FWD_DROP] = "drop",
		[RF_FWD_FCNTL] = "fcntl", [RF_FWD_LOCK] = "lock",
		[RF_FWD_FSTAT] = "fstat", [RF_FWD_STATAT] = "statat",
		[RF_FWD_STATX] = "statx", [RF_FWD_GETDENTS] = "getdents",
		[RF_FWD_IOCTL] = "ioctl", [RF_FWD_FDOP] = "fdop",
		[RF_FWD_PATHOP] = "pathop", [RF_FWD_KILL] = "kill",
		[RF_FWD_WAIT] = "wait", [RF_FWD_PROC] = "proc",
		[RF_FWD_FORKSTUB] = "forkstub", [RF_FWD_STUBGO] = "stubgo",
		[RF_FWD_POLL] = "poll", [RF_FWD_EXEC] = "exec",
		[RF_FWD_EXIT] = "exit", [RF_FWD_SIGNAL] = "signal",
		[RF_FWD_SOCK] = "sock", [RF_FWD_FORK] = "fork", [RF_FWD_FAMEND] = "famend",
		[RF_FWD_STOP] = "stop", [RF_FWD_EPOLL] = "epoll",
		[RF_FWD_CREDS] = "creds",
	};

	if (op <= 0 || op >= RF_FWD_NOPS || names[op] == NULL)
		return "?";
	return names[op];
}

/* Kernel sizes (not glibc's): struct termios 36, struct termios2 44. */
#define TCGETS2_ _IOC(_IOC_READ, 'T', 0x2A, 44)
#define TCSETS2_ _IOC(_IOC_WRITE, 'T', 0x2B, 44)
#define TCSETSW2_ _IOC(_IOC_WRITE, 'T', 0x2C, 44)
#define TCSETSF2_ _IOC(_IOC_WRITE, 'T', 0x2D, 44)
static const struct rf_fwd_ioctl ioctls[] = {
	{ TCGETS, 0, 36 }, { TCSETS, 36, 0 }, { TCSETSW, 36, 0 }, { TCSETSF, 36, 0 },
	{ TCGETS2_, 0, 44 }, { TCSETS2_, 44, 0 }, { TCSETSW2_, 44, 0 }, { TCSETSF2_, 44, 0 },
	{ TIOCGWINSZ, 0, 8 }, { TIOCSWINSZ, 8, 0 },
	{ FIONREAD, 0, 4 }, { TIOCOUTQ, 0, 4 }, { FIONBIO, 4, 0 }, { FIOASYNC, 4, 0 },
	{ TIOCGPGRP, 0, 4 }, { TIOCSPGRP, 4, 0 }, { TIOCGSID, 0, 4 },
	{ TIOCGPTN, 0, 4 }, { TIOCSPTLCK, 4, 0 }, { TIOCGPTLCK, 0, 4 },
	{ TCFLSH, 0, 0 }, { TCXONC, 0, 0 }, { TCSBRK, 0, 0 }, { TCSBRKP, 0, 0 },
	{ TIOCSCTTY, 0, 0 }, { TIOCNOTTY, 0, 0 },
};

const struct rf_fwd_ioctl *
rf_fwd_ioctl_find(unsigned long req)
{
	size_t i;

	for (i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++)
		if (ioctls[i].req == (req & 0xffffffffu))
			return &ioctls[i];
	return NULL;
}

/*
 * Opened on the remote host: what the program's own code and libraries are
 * made of there.  An entry ending in '/' is a directory and all under it, one
 * ending in '*' a plain prefix, anything else one exact path.
 */
const char *const rf_fwd_local_default[] = {
	"/usr/", "/lib/", "/lib64/", "/lib32/", "/libx32/", "/bin/", "/sbin/",
	"/etc/ld.so.*", "/etc/localtime", "/etc/locale.alias", "/etc/gai.conf",
	"/proc/", "/sys/", "/dev/null", "/dev/zero", "/dev/full", "/dev/random",
	"/dev/urandom",
	NULL
};

/* Lexical: "//", "/./" and "x/.." go; symlinks are not followed. */
static int
normalize(const char *path, char *out, size_t cap)
{
	size_t n = 0, k;
	const char *p = path, *e;

	if (*p != '/')
		return -1;
	while (*p != '\0') {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		for (e = p; *e != '\0' && *e != '/'; e++)
			;
		k = e - p;
		if (k == 1 && p[0] == '.') {
			;
		} else if (k == 2 && p[0] == '.' && p[1] == '.') {
			while (n > 0 && out[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
		} else {
			if (n + 1 + k + 1 > cap)
				return -1;
			out[n++] = '/';
			memcpy(out + n, p, k);
			n += k;
		}
		p = e;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return 0;
}

int
rf_fwd_path_local(const char *path, const char *const *local)
{
	char norm[RF_FWD_PATH_MAX];
	const char *const *l;
	size_t k;

	if (local == NULL)
		local = rf_fwd_local_default;
	if (normalize(path, norm, sizeof(norm)) == -1)
		return 0;
	for (l = local; *l != NULL; l++) {
		k = strlen(*l);
		if (k == 0)
			continue;
		if ((*l)[k - 1] == '*') {
			if (strncmp(norm, *l, k - 1) == 0)
				return 1;
		} else if ((*l)[k - 1] == '/') {
			if (strncmp(norm, *l, k - 1) == 0 &&
			    (norm[k - 1] == '\0' || norm[k - 1] == '/'))
				return 1;
		} else if (strcmp(norm, *l) == 0) {
			return 1;
		}
	}
	return 0;
}

/*
 * The next message often comes within microseconds (a reply, a child's next
 * write): look for it a little (RFORK_SPIN_US, 50 us; 0: not at all) before
 * sleeping, since waking on another CPU costs far more on these machines.
 * 1 if one of pf is ready; every revents is set, as by poll.
 */
int
rf_fwd_spin(struct pollfd *pf, unsigned long n)
{
	static long us = -1;
	const char *v;

	if (us < 0)
		us = (v = getenv("RFORK_SPIN_US")) != NULL ? atol(v) : 50;
	return rf_fwd_spin_us(pf, n, us);
}

int
rf_fwd_spin_us(struct pollfd *pf, unsigned long n, long us)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (poll(pf, n, 0) > 0)
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000000 + (t.tv_nsec - t0.tv_nsec) / 1000 >= us)
			return 0;
		sched_yield();
	}
}

int
rf_fwd_pids_add(pid_t **v, size_t *n, size_t *cap, pid_t pid)
{
	pid_t *nv;
	size_t c;

	if (*n == *cap) {
		c = *cap ? 2 * *cap : 8;
		if ((nv = realloc(*v, c * sizeof(*nv))) == NULL)
			return -1;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = pid;
	return 0;
}
