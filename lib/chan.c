/*
 * chan.c - the authenticated channel: mutual challenge-response from the
 * pre-shared key, then length-framed secretstream (XChaCha20-Poly1305) in
 * each direction.  docs/PROTOCOL.md has the why; this is the how.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "rf_net.h"

#define SS_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define SS_HDRBYTES crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define NONCE 32
#define MAC crypto_auth_hmacsha256_BYTES
#define CT_MAX (1 + RF_FRAME_MAX + SS_ABYTES)

static const uint8_t magic[8] = { 'r', 'f', 'o', 'r', 'k', 0, 0, 1 };

enum { ST_OK = 0, ST_DENIED = 1 };

/* Read exactly n bytes.  Returns n, or less at end of input, or -1. */
static ssize_t
sock_read(int fd, void *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = read(fd, (char *)buf + got, n - got);
		if (r == 0)
			break;
		if (r == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				errno = ETIMEDOUT;	/* SO_RCVTIMEO ran out */
			return -1;
		}
		got += r;
	}
	return got;
}

static int
sock_write(int fd, const void *buf, size_t n)
{
	ssize_t r;

	while (n > 0) {
		r = send(fd, buf, n, MSG_NOSIGNAL);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				errno = ETIMEDOUT;
			return -1;
		}
		buf = (const char *)buf + r;
		n -= r;
	}
	return 0;
}

/* The peer vanished (crashed, killed, reset): the host is unavailable. */
static int
lost(struct rf_err *e, const char *what)
{
	if (errno != EPIPE && errno != ECONNRESET)
		return rf_errno(e, "%s", what);
	rf_errno(e, "%s: connection lost", what);
	if (e != NULL)
		e->code = RF_EX_UNAVAILABLE;
	return -1;
}

static int
read_exact(int fd, void *buf, size_t n, const char *what, struct rf_err *e)
{
	ssize_t r = sock_read(fd, buf, n);

	if (r == -1)
		return errno == ECONNRESET ? lost(e, what) : rf_errno(e, "%s", what);
	if ((size_t)r < n)
		return rf_errf(e, RF_EX_PROTOCOL, "%s: connection closed by peer", what);
	return 0;
}

static int
write_all(int fd, const void *buf, size_t n, const char *what, struct rf_err *e)
{
	if (sock_write(fd, buf, n) == -1)
		return lost(e, what);
	return 0;
}

/* Transcript: magic || client nonce || server nonce. */
struct transcript {
	uint8_t magic[sizeof(magic)];
	uint8_t nc[NONCE], ns[NONCE];
};

static void
derive(const struct rf_key *key, const struct transcript *t, uint8_t kauth[32],
    uint8_t kc2s[32], uint8_t ks2c[32])
{
	uint8_t ksess[32];
	crypto_generichash_state st;

	crypto_kdf_derive_from_key(kauth, 32, 1, "rforkaut", key->k);
	crypto_kdf_derive_from_key(ksess, 32, 2, "rforkses", key->k);
	/* Fresh per connection: both nonces go into each direction's key. */
	crypto_generichash_init(&st, ksess, 32, 32);
	crypto_generichash_update(&st, (const uint8_t *)"c2s", 3);
	crypto_generichash_update(&st, (const uint8_t *)t, sizeof(*t));
	crypto_generichash_final(&st, kc2s, 32);
	crypto_generichash_init(&st, ksess, 32, 32);
	crypto_generichash_update(&st, (const uint8_t *)"s2c", 3);
	crypto_generichash_update(&st, (const uint8_t *)t, sizeof(*t));
	crypto_generichash_final(&st, ks2c, 32);
	sodium_memzero(ksess, sizeof(ksess));
	sodium_memzero(&st, sizeof(st));
}

static void
prove(const uint8_t kauth[32], const char *role, const struct transcript *t, uint8_t mac[MAC])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, kauth, 32);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)role, strlen(role) + 1);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)t, sizeof(*t));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

static int
chan_alloc(struct rf_chan *c, int fd, struct rf_err *e)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	if (sodium_init() == -1)
		return rf_errf(e, RF_EX_SOFTWARE, "libsodium: cannot initialise");
	c->txb = malloc(4 + CT_MAX);
	c->rxb = malloc(4 + CT_MAX);
	c->pt = malloc(1 + RF_FRAME_MAX);
	if (c->txb == NULL || c->rxb == NULL || c->pt == NULL) {
		free(c->txb);
		free(c->rxb);
		free(c->pt);
		c->txb = c->rxb = c->pt = NULL;
		return rf_errno(e, "malloc");
	}
	return 0;
}

static void
chan_free(struct rf_chan *c)
{
	free(c->txb);
	free(c->rxb);
	free(c->pt);
	c->txb = c->rxb = c->pt = NULL;
}

static int
check_magic(const uint8_t *m, struct rf_err *e)
{
	if (memcmp(m, magic, 6) != 0)
		return rf_errf(e, RF_EX_PROTOCOL, "handshake: peer does not speak rfork");
	if (memcmp(m, magic, sizeof(magic)) != 0)
		return rf_errf(e, RF_EX_PROTOCOL, "handshake: protocol version %u, want %u",
		    m[6] << 8 | m[7], magic[6] << 8 | magic[7]);
	return 0;
}

int
rf_chan_client(struct rf_chan *c, int fd, const struct rf_key *key, struct rf_err *e)
{
	struct transcript t;
	uint8_t kauth[32], kc2s[32], ks2c[32], mac[MAC];
	uint8_t hello[sizeof(magic) + NONCE], msg[MAC + SS_HDRBYTES], ans[1 + MAC + SS_HDRBYTES];
	int r = -1;

	if (chan_alloc(c, fd, e) == -1)
		return -1;
	memcpy(t.magic, magic, sizeof(magic));
	randombytes_buf(t.nc, NONCE);
	memcpy(hello, magic, sizeof(magic));
	memcpy(hello + sizeof(magic), t.nc, NONCE);
	if (write_all(fd, hello, sizeof(hello), "handshake", e) == -1 ||
	    read_exact(fd, hello, sizeof(hello), "handshake", e) == -1 ||
	    check_magic(hello, e) == -1)
		goto out;
	memcpy(t.ns, hello + sizeof(magic), NONCE);
	derive(key, &t, kauth, kc2s, ks2c);
	prove(kauth, "client", &t, msg);
	crypto_secretstream_xchacha20poly1305_init_push(&c->tx, msg + MAC, kc2s);
	if (write_all(fd, msg, sizeof(msg), "handshake", e) == -1 ||
	    read_exact(fd, ans, 1, "handshake", e) == -1)
		goto out;
	if (ans[0] == ST_DENIED) {
		rf_errf(e, RF_EX_NOPERM, "authentication failed: the server does not "
		    "accept our key");
		goto out;
	}
	if (ans[0] != ST_OK) {
		rf_errf(e, RF_EX_PROTOCOL, "handshake: bad status %u", ans[0]);
		goto out;
	}
	if (read_exact(fd, ans + 1, sizeof(ans) - 1, "handshake", e) == -1)
		goto out;
	prove(kauth, "server", &t, mac);
	if (sodium_memcmp(mac, ans + 1, MAC) != 0) {
		rf_errf(e, RF_EX_NOPERM, "authentication failed: the server does not "
		    "hold our key");
		goto out;
	}
	if (crypto_secretstream_xchacha20poly1305_init_pull(&c->rx, ans + 1 + MAC, ks2c) != 0) {
		rf_errf(e, RF_EX_PROTOCOL, "handshake: bad stream header");
		goto out;
	}
	r = 0;
out:
	sodium_memzero(kauth, sizeof(kauth));
	sodium_memzero(kc2s, sizeof(kc2s));
	sodium_memzero(ks2c, sizeof(ks2c));
	if (r == -1)
		chan_free(c);
	return r;
}

int
rf_chan_server(struct rf_chan *c, int fd, const struct rf_key *key, struct rf_err *e)
{
	struct transcript t;
	uint8_t kauth[32], kc2s[32], ks2c[32], mac[MAC];
	uint8_t hello[sizeof(magic) + NONCE], msg[MAC + SS_HDRBYTES], ans[1 + MAC + SS_HDRBYTES];
	int r = -1;

	if (chan_alloc(c, fd, e) == -1)
		return -1;
	if (read_exact(fd, hello, sizeof(hello), "handshake", e) == -1)
		goto out;
	if (check_magic(hello, e) == -1) {
		/* Tell an old client why, in the only words it understands. */
		memcpy(hello, magic, sizeof(magic));
		sock_write(fd, hello, sizeof(magic));
		goto out;
	}
	memcpy(t.magic, magic, sizeof(magic));
	memcpy(t.nc, hello + sizeof(magic), NONCE);
	randombytes_buf(t.ns, NONCE);
	memcpy(hello + sizeof(magic), t.ns, NONCE);
	if (write_all(fd, hello, sizeof(hello), "handshake", e) == -1 ||
	    read_exact(fd, msg, sizeof(msg), "handshake", e) == -1)
		goto out;
	derive(key, &t, kauth, kc2s, ks2c);
	prove(kauth, "client", &t, mac);
	if (sodium_memcmp(mac, msg, MAC) != 0) {
		ans[0] = ST_DENIED;
		sock_write(fd, ans, 1);
		rf_errf(e, RF_EX_NOPERM, "authentication failed: wrong key");
		goto out;
	}
	if (crypto_secretstream_xchacha20poly1305_init_pull(&c->rx, msg + MAC, kc2s) != 0) {
		rf_errf(e, RF_EX_PROTOCOL, "handshake: bad stream header");
		goto out;
	}
	ans[0] = ST_OK;
	prove(kauth, "server", &t, ans + 1);
	crypto_secretstream_xchacha20poly1305_init_push(&c->tx, ans + 1 + MAC, ks2c);
	if (write_all(fd, ans, sizeof(ans), "handshake", e) == -1)
		goto out;
	r = 0;
out:
	sodium_memzero(kauth, sizeof(kauth));
	sodium_memzero(kc2s, sizeof(kc2s));
	sodium_memzero(ks2c, sizeof(ks2c));
	if (r == -1)
		chan_free(c);
	return r;
}

void *
rf_chan_txbuf(struct rf_chan *c)
{
	return c->pt + 1;
}

int
rf_chan_send(struct rf_chan *c, int type, const void *buf, size_t len, struct rf_err *e)
{
	unsigned long long clen;
	uint32_t n = 1 + len + SS_ABYTES;

	if (len > RF_FRAME_MAX)
		return rf_errf(e, RF_EX_SOFTWARE, "send: frame of %zu bytes", len);
	c->pt[0] = type;
	if (buf != c->pt + 1 && len > 0)
		memcpy(c->pt + 1, buf, len);
	c->txb[0] = n >> 24;
	c->txb[1] = n >> 16;
	c->txb[2] = n >> 8;
	c->txb[3] = n;
	/* The length travels in clear but is bound to the frame as associated data. */
	crypto_secretstream_xchacha20poly1305_push(&c->tx, c->txb + 4, &clen, c->pt, 1 + len,
	    c->txb, 4, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
	if (write_all(c->fd, c->txb, 4 + clen, "send", e) == -1)
		return -1;
	c->tx_bytes += len;
	return 0;
}

int
rf_chan_recv(struct rf_chan *c, int *type, const uint8_t **data, size_t *len,
    struct rf_err *e)
{
	unsigned long long plen;
	unsigned char tag;
	ssize_t r;
	uint32_t n;

	r = sock_read(c->fd, c->rxb, 4);
	if (r == -1)
		return errno == ECONNRESET ? lost(e, "receive") : rf_errno(e, "receive");
	if (r == 0)
		return 0;
	if (r < 4)
		return rf_errf(e, RF_EX_PROTOCOL, "receive: connection closed inside a frame");
	n = (uint32_t)c->rxb[0] << 24 | c->rxb[1] << 16 | c->rxb[2] << 8 | c->rxb[3];
	if (n > CT_MAX || n < 1 + SS_ABYTES)
		return rf_errf(e, RF_EX_PROTOCOL, "receive: frame length %u out of range "
		    "(%u to %u)", n, 1 + SS_ABYTES, (unsigned)CT_MAX);
	if (read_exact(c->fd, c->rxb + 4, n, "receive", e) == -1) {
		if (e != NULL && e->code == RF_EX_PROTOCOL)
			rf_errf(e, RF_EX_PROTOCOL, "receive: connection closed inside a frame");
		return -1;
	}
	if (crypto_secretstream_xchacha20poly1305_pull(&c->rx, c->pt, &plen, &tag,
	    c->rxb + 4, n, c->rxb, 4) != 0)
		return rf_errf(e, RF_EX_PROTOCOL, "receive: frame %llu fails authentication "
		    "(damaged or forged)", (unsigned long long)c->rx_bytes);
	if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE || plen < 1 ||
	    c->pt[0] < RF_FR_REQ || c->pt[0] >= RF_FR_NTYPES)
		return rf_errf(e, RF_EX_PROTOCOL, "receive: unknown frame type %u", c->pt[0]);
	*type = c->pt[0];
	*data = c->pt + 1;
	*len = plen - 1;
	c->rx_bytes += plen - 1;
	return 1;
}

int
rf_chan_pending(struct rf_chan *c)
{
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	int r;

	do
		r = poll(&pfd, 1, 0);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		return -1;
	return r > 0;
}

void
rf_chan_send_error(struct rf_chan *c, int code, const char *msg)
{
	json_t *j;
	char *s;

	j = json_pack("{s:i, s:s}", "code", code, "error", msg);
	if (j == NULL)
		return;
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	if (s == NULL)
		return;
	if (strlen(s) <= RF_FRAME_MAX)
		rf_chan_send(c, RF_FR_ERROR, s, strlen(s), NULL);
	free(s);
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
rf_chan_linger(struct rf_chan *c, int timeout_ms)
{
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	char junk[65536];
	long end = now_ms() + timeout_ms, left;
	ssize_t r;

	shutdown(c->fd, SHUT_WR);
	while ((left = end - now_ms()) > 0) {
		if (poll(&pfd, 1, left) <= 0)
			break;
		r = recv(c->fd, junk, sizeof(junk), MSG_DONTWAIT);
		if (r == 0 || (r == -1 && errno != EINTR && errno != EAGAIN))
			break;
	}
}

void
rf_chan_close(struct rf_chan *c)
{
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	sodium_memzero(&c->tx, sizeof(c->tx));
	sodium_memzero(&c->rx, sizeof(c->rx));
	if (c->pt != NULL)
		sodium_memzero(c->pt, 1 + RF_FRAME_MAX);
	chan_free(c);
}
