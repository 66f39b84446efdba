/* xfer.c - an image over a channel: DATA frames then END, and JSON frames. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <jansson.h>
#include <sodium.h>
#include "rf_fwd.h"
#include "rf_net.h"

/* What a pipe holds, as soon as it holds something (up to n). */
static ssize_t
read_some(int fd, uint8_t *buf, size_t n)
{
	ssize_t got;

	while ((got = read(fd, buf, n)) == -1 && errno == EINTR)
		;
	return got;
}

static int
xfer(struct rf_chan *c, int infd, int eager, void (*progress)(void *, uint64_t), void *arg,
    struct rf_err *e)
{
	uint8_t *buf = rf_chan_txbuf(c);
	uint64_t total = 0;
	ssize_t n;
	int p;

	/* Pipes from rf-snap: fewer, larger reads (fails harmlessly on files). */
	fcntl(infd, F_SETPIPE_SZ, 1 << 20);
	for (;;) {
		if ((p = rf_chan_pending(c)) != 0)
			return p == -1 ? rf_errno(e, "poll") : 1;
		n = eager ? read_some(infd, buf, RF_CHUNK) : rf_readn(infd, buf, RF_CHUNK);
		if (n == -1)
			return rf_errno(e, "standard input");
		if (n == 0)
			break;
		if (rf_chan_send(c, RF_FR_DATA, buf, n, e) == -1)
			return -1;
		total += n;
		if (progress != NULL)
			progress(arg, total);
		if (!eager && (size_t)n < RF_CHUNK)
			break;
	}
	if (rf_chan_send(c, RF_FR_END, NULL, 0, e) == -1)
		return -1;
	return 0;
}

int
rf_xfer_send(struct rf_chan *c, int infd, void (*progress)(void *, uint64_t), void *arg,
    struct rf_err *e)
{
	return xfer(c, infd, 0, progress, arg, e);
}

int
rf_xfer_stream(struct rf_chan *c, int infd, struct rf_err *e)
{
	return xfer(c, infd, 1, NULL, NULL, e);
}

json_t *
rf_xfer_forkreq(int k, pid_t ppid, const char *host, pid_t cpid, const char *fdkey)
{
	json_t *j;

	/* host: the child's host as its home names it, for a program it execs */
	j = json_pack("{s:s,s:i,s:i,s:s}", "op", "fork", "k", k, "ppid", (int)ppid,
	    "host", host);
	if (j != NULL && cpid != 0)
		json_object_set_new(j, "pid", json_integer(cpid));
	if (j != NULL && fdkey != NULL)
		json_object_set_new(j, "fds", json_string(fdkey));
	return j;
}

int
rf_xfer_hand(const struct rf_chan *c, int fd)
{
	struct rf_chan_state st;
	struct iovec iov = { &st, sizeof(st) };
	int r;

	rf_chan_export(c, &st);
	r = rf_send_fd(fd, &iov, 1, c->fd);
	sodium_memzero(&st, sizeof(st));
	return r;
}

int
rf_xfer_recv(struct rf_chan *c, int outfd, uint64_t *bytes, struct rf_err *e)
{
	const uint8_t *d;
	size_t len;
	int type, r;

	*bytes = 0;
	for (;;) {
		r = rf_chan_recv(c, &type, &d, &len, e);
		if (r == -1)
			return -1;
		if (r == 0)
			return rf_errf(e, RF_EX_PROTOCOL, "sender closed the connection after "
			    "%llu bytes, before the end of the image", (unsigned long long)*bytes);
		if (type == RF_FR_END)
			return 0;
		if (type != RF_FR_DATA)
			return rf_errf(e, RF_EX_PROTOCOL, "unexpected frame type %d in the image",
			    type);
		if (rf_writen(outfd, d, len) == -1) {
			rf_errno(e, "output");
			return -2;
		}
		*bytes += len;
	}
}

json_t *
rf_json_frame(const uint8_t *d, size_t len, struct rf_err *e)
{
	json_error_t je;
	json_t *j;

	j = json_loadb((const char *)d, len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL)
		return rf_errf(e, RF_EX_PROTOCOL, "bad JSON from peer: %s", je.text), NULL;
	if (!json_is_object(j)) {
		json_decref(j);
		return rf_errf(e, RF_EX_PROTOCOL, "bad JSON from peer: not an object"), NULL;
	}
	return j;
}

int
rf_chan_send_json(struct rf_chan *c, int type, const json_t *j, struct rf_err *e)
{
	char *s;
	int r;

	if ((s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		return rf_errf(e, RF_EX_SOFTWARE, "cannot encode JSON");
	r = rf_chan_send(c, type, s, strlen(s), e);
	free(s);
	return r;
}

int
rf_json_error(const json_t *j, struct rf_err *e)
{
	json_int_t code = RF_EX_SOFTWARE;
	const char *msg = "unknown error";
	json_t *v;

	if ((v = json_object_get(j, "code")) != NULL && json_is_integer(v))
		code = json_integer_value(v);
	if ((v = json_object_get(j, "error")) != NULL && json_is_string(v))
		msg = json_string_value(v);
	/* Only codes of the table leave the program, whatever the peer says. */
	switch (code) {
	case RF_EX_NO: case RF_EX_DATAERR: case RF_EX_NOINPUT: case RF_EX_UNAVAILABLE:
	case RF_EX_SOFTWARE: case RF_EX_OSERR: case RF_EX_IOERR: case RF_EX_TEMPFAIL:
	case RF_EX_PROTOCOL: case RF_EX_NOPERM:
		break;
	default:
		code = RF_EX_SOFTWARE;
	}
	return rf_errf(e, code, "%s", msg);
}

json_t *
rf_xfer_answer(struct rf_chan *c, int *peer, struct rf_err *e)
{
	const uint8_t *d;
	size_t len;
	json_t *j;
	int type, r, committed = 0;

	*peer = 0;
	for (;;) {
		if ((r = rf_chan_recv(c, &type, &d, &len, e)) != 1) {
			if (r == 0)
				rf_errf(e, RF_EX_PROTOCOL, "connection closed before a reply");
			return NULL;
		}
		if ((j = rf_json_frame(d, len, e)) == NULL)
			return NULL;
		if (type == RF_FR_ERROR) {
			*peer = 1;
			rf_json_error(j, e);
			json_decref(j);
			return NULL;
		}
		if (type == RF_FR_REPLY)
			return j;
		json_decref(j);
		if (type != RF_FR_READY || committed)
			return rf_errf(e, RF_EX_PROTOCOL, "unexpected frame type %d", type), NULL;
		/* Built and stopped there: now let it run. */
		if (rf_chan_send(c, RF_FR_COMMIT, NULL, 0, e) == -1)
			return NULL;
		committed = 1;
	}
}

static ssize_t
cio_read(void *ctx, void *buf, size_t n)
{
	struct rf_chan_io *ci = ctx;
	struct rf_err e;
	int type;

	while (ci->off == ci->len) {
		switch (rf_chan_recv(ci->c, &type, &ci->d, &ci->len, &e)) {
		case 0:
			ci->len = 0;
			return 0;
		case 1:
			ci->off = 0;
			if (type != RF_FR_DATA) {
				ci->len = 0;
				errno = EPROTO;
				return -1;
			}
			break;
		default:
			ci->len = ci->off = 0;
			if (errno == 0)
				errno = EPROTO;
			return -1;
		}
	}
	if (n > ci->len - ci->off)
		n = ci->len - ci->off;
	memcpy(buf, ci->d + ci->off, n);
	ci->off += n;
	return n;
}

static ssize_t
cio_write(void *ctx, const void *buf, size_t n)
{
	struct rf_chan_io *ci = ctx;
	struct rf_err e;

	if (n > RF_FRAME_MAX)
		n = RF_FRAME_MAX;
	if (rf_chan_send(ci->c, RF_FR_DATA, buf, n, &e) == -1) {
		if (errno == 0)
			errno = EPIPE;
		return -1;
	}
	return n;
}

static int
cio_urgent(void *ctx)
{
	struct rf_chan_io *ci = ctx;

	return send(ci->c->fd, "!", 1, MSG_OOB | MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? 0 : -1;
}

static int
cio_pending(void *ctx)
{
	struct rf_chan_io *ci = ctx;

	return ci->off < ci->len || rf_chan_buffered(ci->c);
}

static void
cio_readahead(void *ctx)
{
	rf_chan_readahead(((struct rf_chan_io *)ctx)->c);
}

void
rf_chan_fwd_io(struct rf_fwd_io *io, struct rf_chan_io *ci, struct rf_chan *c)
{
	memset(ci, 0, sizeof(*ci));
	ci->c = c;
	io->ctx = ci;
	io->read = cio_read;
	io->write = cio_write;
	io->urgent = cio_urgent;
	io->pending = cio_pending;
	io->readahead = cio_readahead;
}
