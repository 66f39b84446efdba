/*
 * rf_net.h - moving images between hosts: key files (lib/key.c), TCP
 * addresses and sockets (lib/net.c), and the authenticated, encrypted
 * channel (lib/chan.c).  docs/PROTOCOL.md describes the bytes on the wire.
 */
#ifndef RF_NET_H
#define RF_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sodium.h>
#include "rf.h"

#define RF_KEY_MIN 32		/* bytes of key material a key file must hold */
#define RF_KEY_MAX 4096		/* larger files are not key files */
#define RF_FRAME_MAX (1u << 20)	/* payload bytes of one frame */
#define RF_CHUNK (256u << 10)	/* what senders put in one DATA frame */
#define RF_TIMEOUT_MS 30000	/* default: a peer silent this long is dropped */

struct rf_key {
	uint8_t k[32];		/* BLAKE2b of the key file; the file itself is not kept */
};

/* $RFORK_KEY, else ~/.config/rfork/key.  -1 and errno if neither can be named. */
int rf_key_path(char *buf, size_t n);
/*
 * Read a key file (path NULL: rf_key_path's).  Refused (RF_EX_NOPERM):
 * readable or writable by group or others, not a regular file, or fewer
 * than RF_KEY_MIN bytes.
 */
int rf_key_load(const char *path, struct rf_key *key, struct rf_err *e);
void rf_key_wipe(struct rf_key *key);

/*
 * "HOST", "HOST:PORT", ":PORT", "[V6ADDR]:PORT".  An empty host becomes
 * defhost, a missing port RF_PORT.  Resolves names.
 */
int rf_addr_parse(const char *s, const char *defhost, struct sockaddr_storage *ss,
    socklen_t *len, struct rf_err *e);
/* "1.2.3.4:5" or "[::1]:5" into buf; returns buf. */
char *rf_addr_str(const struct sockaddr *sa, char *buf, size_t n);
/* Bound, listening TCP socket (SO_REUSEADDR, CLOEXEC); ":PORT" binds every
   address.  Returns the fd. */
int rf_listen(const char *addr, struct rf_err *e);
/* Connected TCP socket to HOST[:PORT] within timeout_ms.  Refused or
 * unreachable: RF_EX_UNAVAILABLE. */
int rf_dial(const char *addr, int timeout_ms, struct rf_err *e);
/* Set send/receive timeouts and TCP options on a connected socket. */
int rf_sock_setup(int fd, int timeout_ms);

/* Frame types (the first plaintext byte of each frame). */
enum rf_frame {
	RF_FR_REQ = 1,		/* client: JSON {"op": ...} */
	RF_FR_DATA,		/* client: image bytes */
	RF_FR_END,		/* client: image complete; payload empty */
	RF_FR_READY,		/* server: JSON, process built and stopped */
	RF_FR_COMMIT,		/* client: let it run; payload empty */
	RF_FR_REPLY,		/* server: JSON, final answer */
	RF_FR_ERROR,		/* either: JSON {"code": N, "error": "..."} */
	RF_FR_NTYPES
};

struct rf_chan_keys;

struct rf_chan {
	int fd;
	struct rf_chan_keys *keys;	/* session keys and nonces (lib/chan.c) */
	uint8_t *txb, *rxb;	/* one frame: length, ciphertext */
	uint8_t *pt;		/* one frame's plaintext: type, payload */
	size_t ptused;		/* pt's bytes ever written: what close wipes */
	uint64_t tx_bytes, rx_bytes;	/* payload bytes so far */
};

/* Initialise the crypto libraries (once; before forking, to share it). */
int rf_chan_init(void);
/*
 * The same, with OpenSSL's slow first set-up on a thread (signals blocked):
 * channels meanwhile use libsodium's AES-256-GCM, the same cipher, and
 * OpenSSL's once it is ready.  For programs on a remote fork's path.
 */
int rf_chan_init_async(void);
/* Tests: seal and open AES-256-GCM with libsodium only (1), as usual (0),
   or with OpenSSL's from a channel's first frame of 512 bytes or more (-1). */
void rf_chan_aes_sodium(int on);

/*
 * Handshake on a connected socket (docs/PROTOCOL.md): both sides prove the
 * key, then every frame is encrypted and authenticated.  A wrong key is
 * RF_EX_NOPERM on both sides, a peer that is not rfork RF_EX_PROTOCOL, a
 * silent one a timeout (RF_EX_UNAVAILABLE).  The socket's timeouts
 * (rf_sock_setup) bound every read and write.
 */
int rf_chan_client(struct rf_chan *c, int fd, const struct rf_key *key, struct rf_err *e);
int rf_chan_server(struct rf_chan *c, int fd, const struct rf_key *key, struct rf_err *e);
/*
 * Where to put a payload to send it without a copy (RF_FRAME_MAX bytes);
 * rf_chan_send accepts any other buffer too.  The plaintext buffer is wiped
 * at rf_chan_close as far as frames sent or received ever filled it.
 */
void *rf_chan_txbuf(struct rf_chan *c);
/* Touch the buffers a send of n payload bytes uses, ahead of time: fresh
   memory is slow to touch on some machines (a long-lived sender, rf-agent). */
void rf_chan_warm(struct rf_chan *c, size_t n);
/* One frame; len <= RF_FRAME_MAX. */
int rf_chan_send(struct rf_chan *c, int type, const void *buf, size_t len, struct rf_err *e);
/*
 * Next frame.  Returns 1 with *type, *data (valid until the next call) and
 * *len set; 0 if the peer closed the connection between frames; -1 on error
 * (forged or damaged frame, oversized length: RF_EX_PROTOCOL).
 */
int rf_chan_recv(struct rf_chan *c, int *type, const uint8_t **data, size_t *len,
    struct rf_err *e);
/* A whole frame read ahead waits in the buffer (a poll of the fd misses it):
   after a frame of another type than DATA, those behind it (lib/chan.c). */
int rf_chan_buffered(const struct rf_chan *c);
/* 1 if a frame (or EOF) is waiting to be read, 0 if not, -1 on error. */
int rf_chan_pending(struct rf_chan *c);
/* Send an RF_FR_ERROR frame {"code": code, "error": msg}; errors ignored. */
void rf_chan_send_error(struct rf_chan *c, int code, const char *msg);
/*
 * Stop sending, then read and discard until the peer closes or timeout_ms
 * passes, so that a last frame is not lost to a reset.
 */
void rf_chan_linger(struct rf_chan *c, int timeout_ms);
/* Close the socket, free the buffers, wipe the session keys. */
void rf_chan_close(struct rf_chan *c);

/*
 * Images over a channel (lib/xfer.c).  rf_xfer_send streams infd as DATA
 * frames and ends with END; it returns 1 early, leaving the frame unread, if
 * the peer speaks first (an error).  progress(arg, bytes) after each frame.
 */
int rf_xfer_send(struct rf_chan *c, int infd, void (*progress)(void *, uint64_t), void *arg,
    struct rf_err *e);
/* The same, a frame of whatever infd has as soon as it has some: the peer
   starts on the image's first bytes (rf-agent, whose infd is its own pipe). */
int rf_xfer_stream(struct rf_chan *c, int infd, struct rf_err *e);
/*
 * DATA frames into outfd until END: 0.  -1 on a channel error, -2 if writing
 * outfd failed (the reader went away; errno set).  *bytes counts what was written.
 */
int rf_xfer_recv(struct rf_chan *c, int outfd, uint64_t *bytes, struct rf_err *e);

/* JSON frames.  The json_t type is jansson's. */
struct json_t;
/*
 * After the image: the server's answer.  READY is confirmed with COMMIT,
 * REPLY returned (the caller frees it).  NULL on error; *peer is 1 if the
 * error is the server's own (an ERROR frame, its code in e->code).
 */
struct json_t *rf_xfer_answer(struct rf_chan *c, int *peer, struct rf_err *e);
struct json_t *rf_json_frame(const uint8_t *d, size_t len, struct rf_err *e);
int rf_chan_send_json(struct rf_chan *c, int type, const struct json_t *j, struct rf_err *e);
/* Turn an RF_FR_ERROR frame's JSON into *e (code limited to the table); returns -1. */
int rf_json_error(const struct json_t *j, struct rf_err *e);

/*
 * A fork child's request (rf-send -F, rf-agent): its control fd k, its
 * parent's pid, the host as the child's home names it; the pid it is to
 * have (cpid, a remote child's fork) and the fds served under fdkey when
 * not 0 / NULL.  NULL if out of memory.
 */
struct json_t *rf_xfer_forkreq(int k, pid_t ppid, const char *host, pid_t cpid,
    const char *fdkey);

/* A channel handed to another process with its fd (SCM_RIGHTS). */
struct rf_chan_state {
	uint8_t ktx[32], krx[32];
	uint64_t ntx, nrx;
	int cipher;
};
void rf_chan_export(const struct rf_chan *c, struct rf_chan_state *s);
int rf_chan_import(struct rf_chan *c, int fd, const struct rf_chan_state *s, struct rf_err *e);
/* From now on read ahead: one read a frame or less (docs/FORK.md "Cost"). */
void rf_chan_readahead(struct rf_chan *c);
/* The channel's state and its socket to the unix socket fd, in one message: 0, or -1. */
int rf_xfer_hand(const struct rf_chan *c, int fd);

/*
 * A remote fork's stub connection (lib/xfer.c): the forwarding protocol's
 * bytes as DATA frames of the channel (struct rf_fwd_io of rf_fwd.h);
 * urgent is an out-of-band byte on the raw socket.
 */
struct rf_fwd_io;
struct rf_chan_io {
	struct rf_chan *c;
	const uint8_t *d;
	size_t off, len;
};
void rf_chan_fwd_io(struct rf_fwd_io *io, struct rf_chan_io *ci, struct rf_chan *c);
/*
 * A fork connection stays open while the child runs: no idle timeout, but
 * keepalive and TCP_USER_TIMEOUT so that a dead peer is noticed (dead_ms).
 */
int rf_sock_longlived(int fd, int dead_ms);
/* A link of small calls and replies: a congestion control that does not pace. */
void rf_sock_rpc(int fd);

/* uname nodename, for replies and logs. */
const char *rf_hostname(void);

#endif
