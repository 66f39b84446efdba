/*
 * chan.c - the authenticated channel: mutual challenge-response from the
 * pre-shared key, then length-framed AEAD (AES-256-GCM where the CPU has
 * it, else ChaCha20-Poly1305) with a counter nonce in each direction.
 * docs/PROTOCOL.md has the why; this is the how.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "rf_net.h"
#include "rf_fwd.h"

#define ABYTES 16		/* both AEADs' tag */
#define NONCE 32
#define MAC crypto_auth_hmacsha256_BYTES
#define CT_MAX (1 + RF_FRAME_MAX + ABYTES)

static const uint8_t magic[8] = { 'r', 'f', 'o', 'r', 'k', 0, 0, 2 };

enum { ST_OK = 0, ST_DENIED = 1 };

/* Ciphers, as bits of the client's offer and the server's choice. */
enum { CI_CHACHA = 1, CI_AESGCM = 2 };

/*
 * AES-256-GCM comes from OpenSSL: its VAES/AVX-512 code runs at about
 * 4.5 GB/s here, libsodium's at 1.9, and the cipher is what separates a
 * migration from a plain copy over the link (docs/PROTOCOL.md).
 */
struct rf_chan_keys {
	/* libsodium's AES-GCM until OpenSSL is ready (rf_chan_init_async): the
	   same cipher, so the peer cannot tell; aligned for its AES-NI code */
	crypto_aead_aes256gcm_state na_tx, na_rx;
	EVP_CIPHER_CTX *aes_tx, *aes_rx;		/* keyed once, IV per frame */
	uint8_t ktx[32], krx[32];
	uint64_t ntx, nrx;				/* frame counters: the nonces */
	int cipher;
	uint64_t moved;		/* frames of AES_SMALL or more, sealed and opened */
	/* read ahead (rf_chan_readahead): bytes at rxb + rxoff, rxlen long */
	int ahead;
	size_t rxoff, rxlen;
};

/*
 * OpenSSL's first AES-GCM set-up costs about 0.9 ms of CPU here (its
 * provider's tables), and rf-send and rf-stub are on a remote fork's path
 * on machines of two cores.  They ask for it (rf_chan_init_async) and
 * meanwhile seal and open with libsodium's AES-256-GCM: 2 GB/s against 4.5,
 * plenty for a handshake, a fork's image and forwarded calls.  Only once a
 * process has moved OSSL_AFTER bytes through its channels does a thread do
 * the set-up; OpenSSL takes over at the frame after it is ready.
 * 0: not asked; 3: asked, waiting for the bytes; 1: running; 2: ready.
 */
#define OSSL_AFTER (1UL << 20)
static _Atomic int ossl_state;
static _Atomic unsigned long ossl_bytes;
static int sodium_only;		/* rf_chan_aes_sodium: tests (-1: OpenSSL's at once) */

static void
ossl_setup(void)
{
	EVP_CIPHER_CTX *x;

	/* No openssl.cnf: we name the one cipher we use (saves ms per start);
	   no atexit: an early exit must not clean up under the thread. */
	if (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, NULL)
	    == 1 && (x = EVP_CIPHER_CTX_new()) != NULL) {
		EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, NULL, NULL);
		EVP_CIPHER_CTX_free(x);
	}
}

static void *
ossl_thread(void *arg)
{
	ossl_setup();
	ossl_state = 2;
	return arg;
}

/* Whether OpenSSL may be used now; a start without the thread does it here. */
static int
ossl_ready(void)
{
	if (sodium_only == 1)
		return 0;
	if (ossl_state == 0) {
		ossl_setup();
		ossl_state = 2;
	}
	return ossl_state == 2;
}

static int
offer(void)
{
	return CI_CHACHA | (crypto_aead_aes256gcm_is_available() ? CI_AESGCM : 0);
}

/* rf_readn, with the end of SO_RCVTIMEO said as what it is. */
static ssize_t
sock_read(int fd, void *buf, size_t n)
{
	ssize_t r = rf_readn(fd, buf, n);

	if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		errno = ETIMEDOUT;
	return r;
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

/* Transcript: magic || client nonce || server nonce || offer || choice. */
struct transcript {
	uint8_t magic[sizeof(magic)];
	uint8_t nc[NONCE], ns[NONCE];
	uint8_t offer, choice;
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

int
rf_chan_init(void)
{
	int from = 3;

	if (sodium_init() == -1)
		return -1;
	/* The first AES-GCM set-up is the slow one: do it here, before forks
	   (or wait for the thread doing it: it is detached). */
	atomic_compare_exchange_strong(&ossl_state, &from, 0);
	while (ossl_state == 1)
		nanosleep(&(struct timespec){ 0, 50000 }, NULL);
	ossl_ready();
	return 0;
}

/* The thread that sets OpenSSL up, once (from 3 or 0). */
static void
ossl_start(void)
{
	sigset_t all, old;
	pthread_t t;
	int from = 3;

	if (!atomic_compare_exchange_strong(&ossl_state, &from, 1))
		return;
	/* No signal for the thread: the program's handlers run on its main one. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&t, NULL, ossl_thread, NULL) != 0)
		ossl_state = 3;
	else
		pthread_detach(t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int
rf_chan_init_async(void)
{
	int from = 0;

	if (sodium_init() == -1)
		return -1;
	atomic_compare_exchange_strong(&ossl_state, &from, 3);
	return 0;
}

void
rf_chan_aes_sodium(int on)
{
	sodium_only = on;
}

static int
chan_alloc(struct rf_chan *c, int fd, struct rf_err *e)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	if (sodium_init() == -1)
		return rf_errf(e, RF_EX_SOFTWARE, "cannot initialise libsodium");
	c->txb = malloc(4 + CT_MAX);
	c->rxb = malloc(4 + CT_MAX);
	c->pt = malloc(1 + RF_FRAME_MAX);
	c->keys = aligned_alloc(64, (sizeof(*c->keys) + 63) & ~(size_t)63);
	if (c->txb == NULL || c->rxb == NULL || c->pt == NULL || c->keys == NULL) {
		free(c->txb);
		free(c->rxb);
		free(c->pt);
		free(c->keys);
		c->txb = c->rxb = c->pt = NULL;
		c->keys = NULL;
		return rf_errno(e, "malloc");
	}
	memset(c->keys, 0, sizeof(*c->keys));
	return 0;
}

static void
keys_free(struct rf_chan_keys *k)
{
	EVP_CIPHER_CTX_free(k->aes_tx);
	EVP_CIPHER_CTX_free(k->aes_rx);
	sodium_memzero(k, sizeof(*k));
}

static void
set_keys(struct rf_chan *c, int cipher, const uint8_t ktx[32], const uint8_t krx[32])
{
	struct rf_chan_keys *k = c->keys;

	k->cipher = cipher;
	memcpy(k->ktx, ktx, 32);
	memcpy(k->krx, krx, 32);
	if (cipher != CI_AESGCM)
		return;
	/* libsodium's first, and for small frames always; OpenSSL's once the
	   channel carries more (aes_which) */
	crypto_aead_aes256gcm_beforenm(&k->na_tx, ktx);
	crypto_aead_aes256gcm_beforenm(&k->na_rx, krx);
}

/* OpenSSL's contexts for the keys; once set, they are used. */
static int
aes_ossl(struct rf_chan_keys *k)
{
	if ((k->aes_tx = EVP_CIPHER_CTX_new()) == NULL ||
	    (k->aes_rx = EVP_CIPHER_CTX_new()) == NULL ||
	    EVP_EncryptInit_ex(k->aes_tx, EVP_aes_256_gcm(), NULL, k->ktx, NULL) != 1 ||
	    EVP_DecryptInit_ex(k->aes_rx, EVP_aes_256_gcm(), NULL, k->krx, NULL) != 1) {
		EVP_CIPHER_CTX_free(k->aes_tx);
		EVP_CIPHER_CTX_free(k->aes_rx);
		k->aes_tx = k->aes_rx = NULL;
		return -1;
	}
	return 0;
}

static void ossl_start(void);

/*
 * libsodium's until OpenSSL is ready and the channel has carried OSSL_AFTER
 * bytes, then OpenSSL's for good; but a small
 * frame (a forwarded call, an ack) always goes through libsodium, whose
 * set-up per frame is cheaper: 0.16 against 0.30 us for 40 bytes here, the
 * same at 512 bytes, OpenSSL's twice as fast from 2 KiB on.
 */
#define AES_SMALL 512
static int
aes_which(struct rf_chan_keys *k, size_t len)
{
	if (len < AES_SMALL)
		return 0;
	if (ossl_state == 3 && atomic_fetch_add(&ossl_bytes, len) + len >= OSSL_AFTER)
		ossl_start();
	if (k->aes_tx != NULL)
		return 1;
	/* A channel's own contexts wait for its own OSSL_AFTER bytes too: the
	   first set-up in a freshly forked process (each connection of
	   rf-server) costs 125-180 us, copying the pages of OpenSSL's tables
	   it writes; later ones 5-7 us. */
	if (((k->moved += len) < OSSL_AFTER && sodium_only != -1) || !ossl_ready())
		return 0;
	return aes_ossl(k) == -1 ? -1 : 1;
}

/*
 * AES-256-GCM of one frame, its type byte and then len payload bytes from
 * wherever they are (no copy of them next to it): to out, the 16-byte tag
 * after it.
 */
static int
aes_seal(EVP_CIPHER_CTX *x, uint8_t *out, uint8_t type, const uint8_t *in, size_t len,
    const uint8_t ad[4], const uint8_t nc[12])
{
	int n, m = 0;

	return EVP_EncryptInit_ex(x, NULL, NULL, NULL, nc) == 1 &&
	    EVP_EncryptUpdate(x, NULL, &n, ad, 4) == 1 &&
	    EVP_EncryptUpdate(x, out, &n, &type, 1) == 1 &&
	    (len == 0 || EVP_EncryptUpdate(x, out + n, &m, in, len) == 1) &&
	    EVP_EncryptFinal_ex(x, out + n + m, &n) == 1 &&
	    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, ABYTES, out + 1 + len) == 1 ? 0 : -1;
}

/* The other way: 0 if the tag is right, -1 if not. */
static int
aes_open(EVP_CIPHER_CTX *x, uint8_t *out, const uint8_t *in, size_t len,
    const uint8_t ad[4], const uint8_t nc[12])
{
	int n;

	return EVP_DecryptInit_ex(x, NULL, NULL, NULL, nc) == 1 &&
	    EVP_DecryptUpdate(x, NULL, &n, ad, 4) == 1 &&
	    EVP_DecryptUpdate(x, out, &n, in, len - ABYTES) == 1 &&
	    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, ABYTES,
		(void *)(in + len - ABYTES)) == 1 &&
	    EVP_DecryptFinal_ex(x, out + n, &n) == 1 ? 0 : -1;
}

static int
choose(int offered)
{
	offered &= offer();
	return offered & CI_AESGCM ? CI_AESGCM : offered & CI_CHACHA ? CI_CHACHA : 0;
}

static void
chan_free(struct rf_chan *c)
{
	free(c->txb);
	free(c->rxb);
	free(c->pt);
	if (c->keys != NULL)
		keys_free(c->keys);
	free(c->keys);
	c->txb = c->rxb = c->pt = NULL;
	c->keys = NULL;
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

/* What a handshake derives; wiped when it ends, either way. */
struct session {
	uint8_t kauth[32], kc2s[32], ks2c[32];
};

static int
handshake_end(struct rf_chan *c, struct session *k, int r)
{
	sodium_memzero(k, sizeof(*k));
	if (r == -1)
		chan_free(c);
	return r;
}

int
rf_chan_client(struct rf_chan *c, int fd, const struct rf_key *key, struct rf_err *e)
{
	struct transcript t;
	struct session k;
	uint8_t mac[MAC];
	uint8_t hello[sizeof(magic) + NONCE + 1], ans[1 + MAC];
	int r = -1;

	if (chan_alloc(c, fd, e) == -1)
		return -1;
	memset(&t, 0, sizeof(t));
	memcpy(t.magic, magic, sizeof(magic));
	randombytes_buf(t.nc, NONCE);
	t.offer = offer();
	memcpy(hello, magic, sizeof(magic));
	memcpy(hello + sizeof(magic), t.nc, NONCE);
	hello[sizeof(magic) + NONCE] = t.offer;
	if (write_all(fd, hello, sizeof(hello), "handshake", e) == -1 ||
	    read_exact(fd, hello, sizeof(magic), "handshake", e) == -1 ||
	    check_magic(hello, e) == -1 ||
	    read_exact(fd, hello + sizeof(magic), NONCE + 1, "handshake", e) == -1)
		goto out;
	memcpy(t.ns, hello + sizeof(magic), NONCE);
	t.choice = hello[sizeof(magic) + NONCE];
	if (t.choice != CI_AESGCM && t.choice != CI_CHACHA) {
		rf_errf(e, RF_EX_PROTOCOL, "handshake: no cipher in common");
		goto out;
	}
	derive(key, &t, k.kauth, k.kc2s, k.ks2c);
	prove(k.kauth, "client", &t, mac);
	if (write_all(fd, mac, MAC, "handshake", e) == -1 ||
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
	if (read_exact(fd, ans + 1, MAC, "handshake", e) == -1)
		goto out;
	prove(k.kauth, "server", &t, mac);
	if (sodium_memcmp(mac, ans + 1, MAC) != 0) {
		rf_errf(e, RF_EX_NOPERM, "authentication failed: the server does not "
		    "hold our key");
		goto out;
	}
	set_keys(c, t.choice, k.kc2s, k.ks2c);
	r = 0;
out:
	return handshake_end(c, &k, r);
}

int
rf_chan_server(struct rf_chan *c, int fd, const struct rf_key *key, struct rf_err *e)
{
	struct transcript t;
	struct session k;
	uint8_t mac[MAC];
	uint8_t hello[sizeof(magic) + NONCE + 1], ans[1 + MAC];
	int r = -1;

	if (chan_alloc(c, fd, e) == -1)
		return -1;
	memset(&t, 0, sizeof(t));
	if (read_exact(fd, hello, sizeof(magic), "handshake", e) == -1)
		goto out;
	if (check_magic(hello, e) == -1) {
		/* Tell an old client why, in the only words it understands. */
		memcpy(hello, magic, sizeof(magic));
		sock_write(fd, hello, sizeof(magic));
		goto out;
	}
	if (read_exact(fd, hello + sizeof(magic), NONCE + 1, "handshake", e) == -1)
		goto out;
	memcpy(t.magic, magic, sizeof(magic));
	memcpy(t.nc, hello + sizeof(magic), NONCE);
	t.offer = hello[sizeof(magic) + NONCE];
	t.choice = choose(t.offer);
	randombytes_buf(t.ns, NONCE);
	memcpy(hello + sizeof(magic), t.ns, NONCE);
	hello[sizeof(magic) + NONCE] = t.choice;
	if (write_all(fd, hello, sizeof(hello), "handshake", e) == -1)
		goto out;
	if (t.choice == 0) {
		rf_errf(e, RF_EX_PROTOCOL, "handshake: no cipher in common (offer %#x)",
		    t.offer);
		goto out;
	}
	if (read_exact(fd, mac, MAC, "handshake", e) == -1)
		goto out;
	derive(key, &t, k.kauth, k.kc2s, k.ks2c);
	prove(k.kauth, "client", &t, ans + 1);
	if (sodium_memcmp(mac, ans + 1, MAC) != 0) {
		ans[0] = ST_DENIED;
		sock_write(fd, ans, 1);
		rf_errf(e, RF_EX_NOPERM, "authentication failed: wrong key");
		goto out;
	}
	ans[0] = ST_OK;
	prove(k.kauth, "server", &t, ans + 1);
	if (write_all(fd, ans, sizeof(ans), "handshake", e) == -1)
		goto out;
	set_keys(c, t.choice, k.ks2c, k.kc2s);
	r = 0;
out:
	return handshake_end(c, &k, r);
}

/* 96-bit nonce: four zero bytes and the frame counter, big endian. */
static void
nonce(uint8_t n[12], uint64_t ctr)
{
	int i;

	memset(n, 0, 4);
	for (i = 0; i < 8; i++)
		n[4 + i] = ctr >> (56 - 8 * i);
}

/*
 * pt is wiped at close as far as it was ever written, not whole: most
 * channels carry small frames, and a wipe of the whole 1 MiB touched 256
 * fresh pages at each close (a fork's path closes several).
 */
static void
pt_used(struct rf_chan *c, size_t n)
{
	if (n > c->ptused)
		c->ptused = n;
}

void
rf_chan_warm(struct rf_chan *c, size_t n)
{
	if (n > RF_FRAME_MAX)
		n = RF_FRAME_MAX;
	memset(c->pt, 0, 1 + n);
	memset(c->txb, 0, 4 + 1 + n + ABYTES);
	pt_used(c, 1 + n);
}

void *
rf_chan_txbuf(struct rf_chan *c)
{
	return c->pt + 1;
}

int
rf_chan_send(struct rf_chan *c, int type, const void *buf, size_t len, struct rf_err *e)
{
	struct rf_chan_keys *k = c->keys;
	unsigned long long clen;
	uint32_t n = 1 + len + ABYTES;
	uint8_t nc[12];
	int w = 0;

	if (len > RF_FRAME_MAX)
		return rf_errf(e, RF_EX_SOFTWARE, "send: frame of %zu bytes", len);
	c->txb[0] = n >> 24;
	c->txb[1] = n >> 16;
	c->txb[2] = n >> 8;
	c->txb[3] = n;
	/* The length travels in clear but is bound to the frame as associated
	   data; the counter nonce binds its place in the stream. */
	nonce(nc, k->ntx++);
	if (k->cipher == CI_AESGCM && (w = aes_which(k, len)) == 1) {
		/* OpenSSL takes the payload where it is: a copy less of each */
		if (buf == c->pt + 1)
			pt_used(c, 1 + len);	/* built there: wiped at the close */
		if (aes_seal(k->aes_tx, c->txb + 4, type, buf, len, c->txb, nc) == -1)
			return rf_errf(e, RF_EX_SOFTWARE, "send: AES-GCM failed");
		clen = 1 + len + ABYTES;
		goto out;
	}
	c->pt[0] = type;
	if (buf != c->pt + 1 && len > 0)
		memcpy(c->pt + 1, buf, len);
	pt_used(c, 1 + len);
	if (k->cipher == CI_AESGCM) {
		switch (w) {
		case 0:
			crypto_aead_aes256gcm_encrypt_afternm(c->txb + 4, NULL, c->pt, 1 + len,
			    c->txb, 4, NULL, nc, &k->na_tx);
			break;
		default:
			return rf_errf(e, RF_EX_SOFTWARE, "send: cannot set up AES-256-GCM");
		}
		clen = 1 + len + ABYTES;
	} else
		crypto_aead_chacha20poly1305_ietf_encrypt(c->txb + 4, &clen, c->pt, 1 + len,
		    c->txb, 4, NULL, nc, k->ktx);
out:
	if (write_all(c->fd, c->txb, 4 + clen, "send", e) == -1)
		return -1;
	c->tx_bytes += len;
	return 0;
}

/* Frame in (length, ciphertext of n bytes) opened into out: 0, or -1 if forged. */
static int
open_frame(struct rf_chan *c, const uint8_t *in, uint32_t n, uint8_t *out,
    unsigned long long *plen)
{
	struct rf_chan_keys *k = c->keys;
	uint8_t nc[12];
	int bad;

	nonce(nc, k->nrx++);
	if (k->cipher == CI_AESGCM) {
		switch (aes_which(k, n)) {
		case 1:
			bad = aes_open(k->aes_rx, out, in + 4, n, in, nc);
			break;
		case 0:
			bad = crypto_aead_aes256gcm_decrypt_afternm(out, NULL, NULL, in + 4, n,
			    in, 4, nc, &k->na_rx);
			break;
		default:
			bad = -2;
		}
		*plen = n - ABYTES;
	} else
		bad = crypto_aead_chacha20poly1305_ietf_decrypt(out, plen, NULL, in + 4, n, in, 4,
		    nc, k->krx);
	return bad;
}

static uint32_t
frame_len(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3];
}

/* Read ahead: until want bytes are buffered.  0, 1 at the end, -1 (errno). */
static int
ahead_fill(struct rf_chan *c, size_t want)
{
	struct rf_chan_keys *k = c->keys;
	ssize_t r;

	if (k->rxoff + want > 4 + CT_MAX) {
		memmove(c->rxb, c->rxb + k->rxoff, k->rxlen);
		k->rxoff = 0;
	}
	while (k->rxlen < want) {
		r = read(c->fd, c->rxb + k->rxoff + k->rxlen, 4 + CT_MAX - k->rxoff - k->rxlen);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			errno = ETIMEDOUT;
		if (r <= 0)
			return r == 0 ? 1 : -1;
		k->rxlen += r;
	}
	return 0;
}

/*
 * A channel that reads ahead takes what the socket has, one read for a
 * frame and often for several, and returns every whole DATA frame it holds
 * as one: so nothing whole waits in its buffer, and a poll of the fd still
 * says truly whether more is to come.  Those after the first are opened
 * into pt behind it; one of another type stays for the next call.
 */
static void
ahead_more(struct rf_chan *c, size_t *len)
{
	struct rf_chan_keys *k = c->keys;
	unsigned long long plen;
	uint8_t *f, *to, save;
	uint32_t n;

	while (k->rxlen >= 4) {
		f = c->rxb + k->rxoff;
		n = frame_len(f);
		if (n > CT_MAX || n < 1 + ABYTES || k->rxlen < 4 + n ||
		    1 + *len + n - ABYTES - 1 > 1 + RF_FRAME_MAX)
			return;
		/* its type byte lands on our last byte, which is put back */
		to = c->pt + *len;
		pt_used(c, *len + n);
		save = *to;
		if (open_frame(c, f, n, to, &plen) != 0 || plen < 1 || *to != RF_FR_DATA) {
			*to = save;
			k->nrx--;	/* opened again, and judged, next time */
			return;
		}
		*to = save;
		*len += plen - 1;
		c->rx_bytes += plen - 1;
		k->rxoff += 4 + n;
		k->rxlen -= 4 + n;
	}
}

int
rf_chan_recv(struct rf_chan *c, int *type, const uint8_t **data, size_t *len,
    struct rf_err *e)
{
	struct rf_chan_keys *k = c->keys;
	unsigned long long plen;
	const uint8_t *f;
	ssize_t r;
	uint32_t n;
	int bad;

	if (k->ahead) {
		if ((r = ahead_fill(c, 4)) != 0) {
			if (r == 1 && k->rxlen == 0)
				return 0;
			if (r == 1)
				return rf_errf(e, RF_EX_PROTOCOL,
				    "receive: connection closed inside a frame");
			return errno == ECONNRESET ? lost(e, "receive") : rf_errno(e, "receive");
		}
	} else {
		r = sock_read(c->fd, c->rxb, 4);
		if (r == -1)
			return errno == ECONNRESET ? lost(e, "receive") : rf_errno(e, "receive");
		if (r == 0)
			return 0;
		if (r < 4)
			return rf_errf(e, RF_EX_PROTOCOL, "receive: connection closed inside a frame");
	}
	f = c->rxb + (k->ahead ? k->rxoff : 0);
	n = frame_len(f);
	if (n > CT_MAX || n < 1 + ABYTES)
		return rf_errf(e, RF_EX_PROTOCOL, "receive: frame length %u out of range "
		    "(%u to %u)", n, 1 + ABYTES, (unsigned)CT_MAX);
	if (k->ahead) {
		if ((r = ahead_fill(c, 4 + n)) != 0) {
			if (r == 1)
				return rf_errf(e, RF_EX_PROTOCOL,
				    "receive: connection closed inside a frame");
			return errno == ECONNRESET ? lost(e, "receive") : rf_errno(e, "receive");
		}
		f = c->rxb + k->rxoff;	/* moved to the front, maybe */
	} else if (read_exact(c->fd, c->rxb + 4, n, "receive", e) == -1) {
		if (e != NULL && e->code == RF_EX_PROTOCOL)
			rf_errf(e, RF_EX_PROTOCOL, "receive: connection closed inside a frame");
		return -1;
	}
	pt_used(c, n);
	bad = open_frame(c, f, n, c->pt, &plen);
	if (bad == -2)
		return rf_errf(e, RF_EX_SOFTWARE, "receive: cannot set up AES-256-GCM");
	if (bad != 0)
		return rf_errf(e, RF_EX_PROTOCOL, "receive: frame %llu fails authentication "
		    "(damaged or forged)", (unsigned long long)k->nrx - 1);
	if (plen < 1 || c->pt[0] < RF_FR_REQ || c->pt[0] >= RF_FR_NTYPES)
		return rf_errf(e, RF_EX_PROTOCOL, "receive: unknown frame type %u", c->pt[0]);
	*type = c->pt[0];
	*len = plen - 1;
	c->rx_bytes += plen - 1;
	if (k->ahead) {
		k->rxoff += 4 + n;
		k->rxlen -= 4 + n;
		if (k->rxlen == 0)
			k->rxoff = 0;
		if (*type == RF_FR_DATA)
			ahead_more(c, len);
	}
	*data = c->pt + 1;
	return 1;
}

/*
 * A channel that is a forwarded-call connection (rf_chan_fwd_io's
 * readahead) reads ahead from then on: a stream of DATA frames for the
 * rest of its life, never exported (what is read ahead would stay behind).
 */
void
rf_chan_readahead(struct rf_chan *c)
{
	c->keys->ahead = 1;
}

int
rf_chan_buffered(const struct rf_chan *c)
{
	const struct rf_chan_keys *k = c->keys;

	return k->ahead && k->rxlen >= 4 && k->rxlen >= 4 + frame_len(c->rxb + k->rxoff);
}

int
rf_chan_pending(struct rf_chan *c)
{
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	int r;

	if (rf_chan_buffered(c))
		return 1;
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

void
rf_chan_linger(struct rf_chan *c, int timeout_ms)
{
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	char junk[65536];
	long end = rf_now_ms() + timeout_ms, left;
	ssize_t r;

	shutdown(c->fd, SHUT_WR);
	while ((left = end - rf_now_ms()) > 0) {
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
	if (c->pt != NULL)
		sodium_memzero(c->pt, c->ptused);
	chan_free(c);
}

/*
 * A channel moves to another process (rf-server hands a stub's connection
 * to its proxy): the session keys and frame counters; the receiver rebuilds
 * the cipher contexts.  Frames are read exactly, so no bytes are left behind
 * (a channel that reads ahead, rf_chan_readahead, is never moved).
 */
void
rf_chan_export(const struct rf_chan *c, struct rf_chan_state *s)
{
	memcpy(s->ktx, c->keys->ktx, 32);
	memcpy(s->krx, c->keys->krx, 32);
	s->ntx = c->keys->ntx;
	s->nrx = c->keys->nrx;
	s->cipher = c->keys->cipher;
}

int
rf_chan_import(struct rf_chan *c, int fd, const struct rf_chan_state *s, struct rf_err *e)
{
	if (chan_alloc(c, fd, e) == -1)
		return -1;
	set_keys(c, s->cipher, s->ktx, s->krx);
	c->keys->ntx = s->ntx;
	c->keys->nrx = s->nrx;
	return 0;
}
