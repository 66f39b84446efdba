/*
 * rf_fwd.h - forwarded system calls of a remote fork child (docs/FORK.md).
 *
 * Three parties.  The child C runs on the remote host under a seccomp filter
 * whose home-bound system calls (fds, kill outside, wait, relative paths)
 * raise user notifications.  The proxy, C's parent there, receives them,
 * reads and writes C's memory, and sends each call as one request to the
 * stub.  The stub, at home, holds C's pid, parent and open files, performs
 * the call on the real fds and answers.  C's own fd table keeps a
 * placeholder (an O_PATH file) at every number that is home, so fds C opens
 * locally never take a home number.
 *
 * The wire (lib/fwd.c) is a byte stream reached through two callbacks, so
 * that the transport may wrap it (encryption): little-endian fixed headers,
 * every length bounded, one request and one reply per call, a few one-way
 * messages (BIND, DROP, EXIT, SIGNAL), and posted writes (RF_FWDF_POST):
 * a write the proxy answers at once, acknowledged later.
 */
#ifndef RF_FWD_H
#define RF_FWD_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "rf.h"

#define RF_FWD_VERSION 1
#define RF_FWD_IO_MAX (1u << 20)	/* data bytes of one request or reply */
#define RF_FWD_PATH_MAX 4096
#define RF_FWD_NFD_MAX 65536		/* fds in HELLO */

/*
 * Byte I/O: read and write behave like read(2) and write(2) (short counts
 * allowed).  Optional: urgent sends the out-of-band "cancel" that cuts short
 * the stub's call in progress (its SIGURG); pending says whether read has
 * bytes buffered that poll on the fd would not show.
 */
struct rf_fwd_io {
	void *ctx;
	ssize_t (*read)(void *ctx, void *buf, size_t n);
	ssize_t (*write)(void *ctx, const void *buf, size_t n);
	int (*urgent)(void *ctx);
	int (*pending)(void *ctx);
	/* when not NULL: from now on read ahead (an encrypted channel: one
	   read a frame or less; the connection is never handed on after) */
	void (*readahead)(void *ctx);
};

/* Callbacks over a socket (urgent: MSG_OOB) or pipe; ctx points at the int. */
void rf_fwd_io_fd(struct rf_fwd_io *io, int *fd);

/*
 * One header for every message, 40 bytes on the wire: op, flags (per op;
 * the sub-operation for FDOP/PATHOP/PROC), family, data length, four
 * arguments.  Family: the fd table of one process here (0, the child's;
 * its local descendants get their own, see FORK).  A reply repeats op; a[0] is the result (-errno on failure),
 * a[1] an auxiliary result (wait status), then dlen data bytes.
 */
struct rf_fwd_msg {
	uint8_t op, flags;
	uint16_t fam;
	uint32_t dlen;
	int64_t a[4];
};
#define RF_FWD_HDR 40

/* Message types.  Requests go proxy -> stub and get one reply. */
enum rf_fwd_op {
	RF_FWD_HELLO = 1,	/* stub -> proxy, first: version, pid, ppid, fds */
	RF_FWD_READ,		/* fd, count, off (RF_FWDF_POS) -> data */
	RF_FWD_WRITE,		/* fd, off (RF_FWDF_POS), -, msgflags; data -> count */
	RF_FWD_LSEEK,		/* fd, off, whence */
	RF_FWD_CLOSE,		/* fd */
	RF_FWD_OPEN,		/* dirfd, flags, mode; path -> handle */
	RF_FWD_BIND,		/* one-way: handle (or -1 - fd: dup of fd) at number */
	RF_FWD_DROP,		/* one-way: forget number (the child closed it) */
	RF_FWD_FCNTL,		/* fd, cmd, arg (integer commands) */
	RF_FWD_LOCK,		/* fd, cmd; struct flock -> struct flock */
	RF_FWD_FSTAT,		/* fd -> struct stat */
	RF_FWD_STATAT,		/* dirfd, flags; path -> struct stat */
	RF_FWD_STATX,		/* dirfd, flags, mask; path -> struct statx */
	RF_FWD_GETDENTS,	/* fd, count -> data */
	RF_FWD_IOCTL,		/* fd, req, arg, outlen; data in -> data out */
	RF_FWD_FDOP,		/* sub (RF_FDOP_*), fd, a, b: integer fd calls */
	RF_FWD_PATHOP,		/* sub (RF_PATHOP_*), dirfd, a, b; path(s) -> data */
	RF_FWD_KILL,		/* pid, sig, tid (tgkill when >= 0) */
	RF_FWD_WAIT,		/* pid, options -> ret, status */
	RF_FWD_PROC,		/* sub (RF_PROC_*), a, b: getpgid, setsid, ... */
	RF_FWD_POLL,		/* nfds, timeout_ms; pollfd[] -> pollfd[] */
	RF_FWD_EXEC,		/* one-way: the child exec'd; data: fds now closed */
	RF_FWD_EXIT,		/* one-way, proxy -> stub: wait status of the child */
	RF_FWD_SIGNAL,		/* one-way, stub -> proxy: sig sent to the stub */
	RF_FWD_SOCK,		/* sub (RF_SOCK_*), fd, a, b, c: sockets */
	RF_FWD_FORK,		/* one-way: new family a[0], a copy of this one */
	RF_FWD_FAMEND,		/* one-way: the family's processes are gone */
	RF_FWD_FORKSTUB,	/* data: cloexec numbers -> pid of a new stub, waiting */
	RF_FWD_STUBGO,		/* pid, a[1] 1: its grandchild has a stand-in;
				   data "HOST\0TOKEN\0" (none: abort) -> 0, or 1 if
				   the stand-in is taken (its news go as SIGNAL) */
	RF_FWD_STOP,		/* one-way, proxy -> stub: the child stopped, by sig */
	RF_FWD_EPOLL,		/* sub (RF_EPOLL_*), epfd, ...: a set made at home */
	RF_FWD_CREDS,		/* one-way, proxy -> stub: the family's uid, gid;
				   data: its groups (int32 each) */
	RF_FWD_NOPS
};

/* Header flags. */
#define RF_FWDF_POS 0x1		/* READ/WRITE at an offset (pread/pwrite) */
#define RF_FWDF_INTR 0x2	/* reply: a signal to the stub interrupted the call */
#define RF_FWDF_FDPATH 0x4	/* OPEN: reopen fd a[0] (/dev/fd/N), not a path */
#define RF_FWDF_TTOU 0x4	/* IOCTL: the child blocks or ignores SIGTTOU, so
				   a background one may change its terminal */
/*
 * Write-behind ("posted writes", docs/FORK.md "Posted writes").
 *   HELLO with POST      the stub allows them (RFORK_WRITE_BEHIND is not 0);
 *                        an fd whose HELLO flags have RF_FWD_HELLO_POSTOK
 *                        may be posted to from the start
 *   WRITE with POST      request with no reply: the stub performs it whole,
 *                        in order, then may acknowledge it
 *   WRITE reply w/ POST  the acknowledgement: a[0] 0 (or -errno: the write
 *                        failed at home, on number a[1]), a[2] what the
 *                        writes acknowledged counted (RF_FWD_POST_COST).  Successes may be summed into one
 *                        ack; a reply to any request also acknowledges
 *                        every posted write before it
 *   POSTOK               reply to a plain WRITE: that number may be posted
 *                        to (a pipe, FIFO or stream socket, blocking)
 *   REVOKE               on any reply, ack or SIGNAL: an fd reported postable
 *                        no longer is (O_NONBLOCK at home): post to none
 *                        until told again
 */
#define RF_FWDF_POST 0x8
#define RF_FWDF_POSTOK 0x10
#define RF_FWDF_REVOKE 0x20
/* HELLO: the stub serves EPOLL, an epoll set the child inherited (home) */
#define RF_FWDF_EPOLL 0x40
/* HELLO: the stub takes CREDS, and acts for each family as its ids say */
#define RF_FWDF_CREDS 0x80
#define RF_FWD_GROUPS_MAX 256	/* supplementary groups CREDS carries, at most */
#define RF_FWD_HELLO_POSTOK 0x10000	/* HELLO fd flags, beside FD_CLOEXEC */
/*
 * Bytes posted and not yet acknowledged, at most; past it a write is
 * synchronous.  Each write counts 256 more than its bytes (and acks count
 * them so), so that a stream of tiny writes is held to some 8000 calls
 * ahead of home.
 */
#define RF_FWD_POST_WINDOW (2u << 20)
#define RF_FWD_POST_COST(n) ((uint64_t)(n) + 256)

enum { RF_FDOP_FSYNC = 1, RF_FDOP_FDATASYNC, RF_FDOP_FTRUNCATE, RF_FDOP_FCHMOD,
	RF_FDOP_FCHOWN, RF_FDOP_FLOCK, RF_FDOP_FALLOCATE, RF_FDOP_FADVISE,
	RF_FDOP_FCHDIR, RF_FDOP_SHUTDOWN, RF_FDOP_NOPS };
enum { RF_PATHOP_ACCESS = 1, RF_PATHOP_READLINK, RF_PATHOP_UNLINK, RF_PATHOP_MKDIR,
	RF_PATHOP_RENAME, RF_PATHOP_CHMOD, RF_PATHOP_CHDIR, RF_PATHOP_GETCWD,
	RF_PATHOP_SYMLINK, RF_PATHOP_LINK, RF_PATHOP_TRUNCATE,
	RF_PATHOP_UTIMENS,	/* dirfd, flags, times given; path ("": the fd
				   itself), then 4 x int64 LE: atime s, ns, mtime s, ns */
	RF_PATHOP_CHOWN,	/* dirfd, uid, gid, flags; path */
	RF_PATHOP_STATFS,	/* dirfd; path ("": the fd itself) -> struct statfs */
	RF_PATHOP_MKNOD,	/* dirfd, mode, dev; path */
	RF_PATHOP_XATTR,	/* dirfd, RF_XATTR_* (| NOFOLLOW), size or flags; path ("":
				   the fd itself), name, value -> value or list */
	RF_PATHOP_NOPS };
enum { RF_XATTR_GET = 1, RF_XATTR_SET, RF_XATTR_LIST, RF_XATTR_REMOVE };
#define RF_XATTR_NOFOLLOW 0x100	/* the l*xattr calls */
#define RF_XATTR_MAX 65536	/* XATTR_SIZE_MAX, and a list's longest */
/*
 * An epoll set at home (made before the fork; parent and child share it, as
 * any inherited one), struct epoll_event as x86-64 has it (12 bytes):
 *   CTL   epfd, op, fd; data: the event (ADD, MOD) -> 0
 *   WAIT  epfd, timeout_ms, maxevents -> count; data: the events
 */
enum { RF_EPOLL_CTL = 1, RF_EPOLL_WAIT };
enum { RF_SOCK_ACCEPT = 1, RF_SOCK_GETSOCKNAME, RF_SOCK_GETPEERNAME, RF_SOCK_GETSOCKOPT,
	RF_SOCK_SETSOCKOPT, RF_SOCK_SENDMSG, RF_SOCK_RECVMSG, RF_SOCK_NOPS };
/*
 * fds over a home unix socket (SCM_RIGHTS):
 *   SENDMSG  fd, flags, n; data: n int32 home numbers, then the bytes -> count
 *   RECVMSG  fd, count, flags, most fds -> count; data: int32 n, int32
 *            msg_flags, n int32 handles (BIND them, as OPEN's), the bytes
 */
#define RF_SOCK_FDS_MAX 64
#define RF_FWD_OPT_MAX 256	/* socket option value, socket address */
enum { RF_PROC_GETPGID = 1, RF_PROC_SETPGID, RF_PROC_GETSID, RF_PROC_SETSID,
	RF_PROC_GETPRIO, RF_PROC_SETPRIO,	/* PRIO_PROCESS: a pid, a nice value */
	RF_PROC_PRLIMIT,	/* a pid, a resource, a[2] 1 if data (new struct
				   rlimit64) -> the old one as data */
	RF_PROC_NOPS };

/*
 * A remote child's own fork (SPEC 8, docs/FORK.md "Grandchildren"): its
 * librfork asks its proxy with an ioctl on a number no fd can have; without
 * a proxy the kernel says EBADF.  Only the child itself (its threads) may
 * ask: its local descendants have no home identity.
 *   PROBE     0: forks may go remote from here; arg, when not NULL, gets
 *             the child's host as its home names it (RF_FWD_HOST_MAX bytes,
 *             "" if unknown): a program the child exec'd knows it again
 *   FORKSTUB  the stub forks a new stub at home, which waits: pid = its pid
 *             (the grandchild's pid, real at home).  If fds of this host are
 *             open (nlocal, the lowest localfd), the proxy holds copies and
 *             serves them once on the abstract unix socket "rfork-fds-KEY"
 *             (fdkey): the grandchild must be born on this host, where the
 *             server takes them (rf-send -L KEY) and gives them to it
 *   STUBGO    pid: the new stub dials host with token; host "": it ends.
 *             standin RF_FWD_STANDIN: the local copy C forked has that pid
 *             (the proxy made it the namespace's next at FORKSTUB) and
 *             stays as the grandchild's stand-in; the answer is then 1 if
 *             proxy and stub took it so (rf_standin.h)
 *   MAPFD     struct rf_fwd_mapreq, from any process the proxy serves: the
 *             kernel refused to map a number (EACCES: its placeholder); if
 *             it is a regular file at home, a new fd (close-on-exec) of a
 *             sealed memfd of the file's size holding the range as read at
 *             home now, to be mapped instead and closed.  EBADF: not a home
 *             number (nor a proxy); ENODEV: not a regular file at home;
 *             EXDEV: shared and writable, which cannot span hosts; EACCES:
 *             not open for reading; ENOMEM: past RF_FWD_MAP_MAX bytes
 */
#define RF_FWD_MAGIC_FD (-0x7266)
#define RF_FWD_IOC_PROBE 0x72660001UL
#define RF_FWD_IOC_FORKSTUB 0x72660002UL
#define RF_FWD_IOC_STUBGO 0x72660003UL
#define RF_FWD_IOC_MAPFD 0x72660004UL
#define RF_FWD_MAP_MAX (1ULL << 30)	/* bytes of a home file one mapping copies */
struct rf_fwd_mapreq {
	int32_t fd, prot, flags, pad;
	int64_t off;
	uint64_t len;
};
#define RF_FWD_HOST_MAX 256
struct rf_fwd_forkreq {
	int32_t pid;
	int32_t localfd;
	int32_t nlocal;
	char fdkey[36];
	char host[256];
	char token[160];
	/* STUBGO: RF_FWD_STANDIN if the local copy's pid is the grandchild's
	   (it stays as its stand-in); the ioctl then answers 1 if taken so */
	int32_t standin;
};
#define RF_FWD_STANDIN 0x53544e44	/* "STND" */
/* The stand-in's last word (rt_sigqueueinfo from the proxy, SI_QUEUE):
   RF_FWD_STANDIN_SIG, the value RF_FWD_STANDIN << 32 | wait status */
#define RF_FWD_STANDIN_SIG SIGUSR1
/* pidfd_send_signal flags from librfork: the signal is for the process
   the pidfd names here, even a stand-in (the proxy sends it; without a
   proxy the kernel says EINVAL) */
#define RF_FWD_PIDFD_HERE 0x72660000U
#define RF_FWD_FDS_MAX 4096	/* local fds a grandchild may take along */
/* On the fds socket: messages of (number, fd flags) int32 pairs, the fds
   as SCM_RIGHTS, at most RF_FWD_FDS_BATCH each; then end of file. */
#define RF_FWD_FDS_BATCH 200

/* Appends pid to the growing array *v (*n used, *cap room); -1 if out of memory. */
int rf_fwd_pids_add(pid_t **v, size_t *n, size_t *cap, pid_t pid);

/*
 * The buffered connection both sides use (lib/fwd.c).  Send writes header and
 * data with as few callback calls as it can; recv_hdr returns 1, or 0 on a
 * clean end between messages; recv_data reads exactly n bytes.  A short or
 * malformed message is EPROTO.
 */
struct rf_fwd_conn {
	struct rf_fwd_io io;
	uint8_t *in, *out;
	size_t inoff, inlen;
	size_t hold;		/* bytes of held messages at out */
};

int rf_fwd_conn_init(struct rf_fwd_conn *c, const struct rf_fwd_io *io);
void rf_fwd_conn_free(struct rf_fwd_conn *c);
int rf_fwd_send(struct rf_fwd_conn *c, const struct rf_fwd_msg *m, const void *data);
/*
 * hold: as send, but the message may wait in the buffer for the next ones
 * (posted writes: a write and the call after it in one frame); it leaves
 * with the next send, with flush, or once 256 KiB wait.  The caller must
 * flush before it waits for anything.
 */
int rf_fwd_hold(struct rf_fwd_conn *c, const struct rf_fwd_msg *m, const void *data);
int rf_fwd_flush(struct rf_fwd_conn *c);
size_t rf_fwd_held(const struct rf_fwd_conn *c);
int rf_fwd_recv_hdr(struct rf_fwd_conn *c, struct rf_fwd_msg *m);
int rf_fwd_recv_data(struct rf_fwd_conn *c, void *buf, size_t n);
/* 1 if the call may wait for long at home (a signal must be able to cut it). */
int rf_fwd_op_blocks(int op);
/* Look for the next message a moment before sleeping (RFORK_SPIN_US): 1 if
   one of pf is ready, revents set as by poll; 0 if the time ran out. */
struct pollfd;
int rf_fwd_spin(struct pollfd *pf, unsigned long n);
int rf_fwd_spin_us(struct pollfd *pf, unsigned long n, long us);
/*
 * Where the next message's data may be built (RF_FWD_IO_MAX + two paths):
 * sent with data pointing there, header and data leave in one write.  Valid
 * until the next rf_fwd_send with data elsewhere.
 */
void *rf_fwd_outbuf(struct rf_fwd_conn *c);
/* Bytes already received and not yet consumed. */
size_t rf_fwd_pending(const struct rf_fwd_conn *c);
const char *rf_fwd_op_name(int op);

/*
 * ioctls that may be forwarded, with the size of their argument: what the
 * stub reads into and sends back.  Anything else on a home fd is ENOTTY.
 */
struct rf_fwd_ioctl {
	unsigned long req;
	uint16_t in, out;	/* bytes copied in and out; 0/0: integer argument */
};
const struct rf_fwd_ioctl *rf_fwd_ioctl_find(unsigned long req);

/*
 * The stub (bin/rf-stub.c): send HELLO listing every open fd except the
 * connection's own (cloexec: fds that are close-on-exec in the child), then
 * serve requests until EXIT or the connection ends.  Signals sent to the
 * calling process are passed on to the child meanwhile.
 */
struct rf_stub_opts {
	int connfd;		/* the connection's fd, left out of HELLO; -1: none */
	const int *cloexec;	/* fds to report as close-on-exec */
	size_t ncloexec;
	/*
	 * FORKSTUB: in the new stub, its fds already at the child's numbers and
	 * its cwd the family's, become a stub for host and token (exec rf-stub
	 * with cloexec as -x); returns only on failure.  NULL: FORKSTUB fails.
	 */
	void (*respawn)(void *arg, const char *host, const char *token, const int *cloexec,
	    size_t ncloexec);
	void *arg;
	/*
	 * Once HELLO has told the child's fds (every fd open then but connfd):
	 * fds opened from now on are the stub's own.  NULL: nothing.
	 */
	void (*after_hello)(void *arg);
	struct rf_stub_pre *pre;	/* rf_stub_prepare's, or NULL */
};

/*
 * A stub that waits before it serves (rf-stub -K): HELLO's fd table (every
 * fd open now but skipfd and the connection to come) and the cwd are taken
 * now, and every signal is caught and blocked as rf_stub_serve does, so
 * that it has only to send HELLO.  Fds opened after this are the stub's
 * own.  NULL on failure: rf_stub_serve does it all itself.
 */
struct rf_stub_pre *rf_stub_prepare(const struct rf_stub_opts *o, int skipfd);
/*
 * pid is a child of the stub's own (the page source, made by S before it
 * exec'd rf-stub): its SIGCHLD is not passed on to the child.  Its end does
 * raise one, even with no exit signal: the kernel sends SIGCHLD for a child
 * whose parent has exec'd since.
 */
void rf_stub_own_child(pid_t pid);
void rf_stub_pre_free(struct rf_stub_pre *pre);

enum rf_stub_end {
	RF_STUB_EXITED,		/* *status: the child's wait status */
	RF_STUB_LOST,		/* the connection ended without EXIT */
};

/* Returns RF_STUB_EXITED or RF_STUB_LOST, or -1 with e filled. */
int rf_stub_serve(const struct rf_fwd_io *io, const struct rf_stub_opts *o, int *status,
    struct rf_err *e);

/*
 * The child side, run in the child itself before it execs or resumes:
 * install the filter (no_new_privs unless CAP_SYS_ADMIN) with a listener and
 * return the listener fd, which the caller hands to the proxy.  self is the
 * child's own pid as it sees it: signals to itself stay native.
 */
int rf_fwd_filter_install(pid_t self);
/*
 * The same filter as classic BPF instructions (struct sock_filter), for a
 * caller that installs it by itself (the restorer blob, rf-restore -C):
 * returns the count, 0 if max is too small.  The flags to install it with:
 * SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV.
 */
#define RF_FWD_FILTER_MAX 256
#define RF_FWD_FILTER_FLAGS ((1u << 3) | (1u << 5))
struct sock_filter;
size_t rf_fwd_filter_prog(pid_t self, struct sock_filter *f, size_t max);

/*
 * The proxy: serve the child's notifications on listener lfd.  Before the
 * child is "armed" every notification continues natively; it arms at its
 * first execve, or its first read of ctlfd (>= 0), and at that moment gets a
 * placeholder at every home fd of HELLO.  A read of ctlfd is answered with
 * ctlmsg.  Returns when the child is gone, with *status its wait status (the
 * proxy must be its parent) after sending EXIT; a dropped connection kills
 * the child (SIGKILL) and returns -1 with e->code RF_EX_UNAVAILABLE.
 */
struct rf_proxy_opts {
	int lfd;		/* seccomp listener */
	int connfd;		/* the connection's fd, polled; -1: none */
	pid_t child;		/* pid of the child, as the proxy sees it */
	int ctlfd;		/* -1: arm at execve */
	const void *ctlmsg;
	size_t ctlmsglen;
	const char *const *local;	/* path prefixes opened locally; NULL: default */
	int verbose;		/* one line per forwarded call on stderr */
	/* the child's host as its home names it (RF_FWD_IOC_PROBE); NULL: unknown */
	const char *host;
	/*
	 * Called before a clone of the child that copies its memory (not
	 * CLONE_VM) goes on: post-copy (lib/lazy.c) makes it wait until the
	 * memory is all there.  NULL: nothing.
	 */
	void (*before_fork)(void *arg);
	void *arg;
	/*
	 * The stub is still to come: called once all else is ready to arm, it
	 * waits for it and returns the connection's fd, with the io passed to
	 * rf_proxy_serve set for it; -1 (e set): none came, and the child is
	 * killed.  NULL: connfd and io are there.
	 */
	int (*wait_conn)(void *arg, struct rf_err *e);
	void *conn_arg;
	/*
	 * The placeholder (the write end of a pipe whose read end is closed),
	 * made by the caller and already at the numbers preset[] (fd, cloexec
	 * pairs) in the child: arming passes them by (each ADDFD is a round
	 * trip to the child).  0 or less: the proxy makes its own; none preset.
	 */
	int ph;
	const int *preset;
	size_t npreset;
};

int rf_proxy_serve(const struct rf_fwd_io *io, const struct rf_proxy_opts *o, int *status,
    struct rf_err *e);

/* The default prefixes opened on the remote host (shared libraries, locale). */
extern const char *const rf_fwd_local_default[];
/* 1 if the absolute, normalized path is opened locally under the prefixes. */
int rf_fwd_path_local(const char *path, const char *const *local);

/*
 * The remote side's process tree (lib/fwdns.c): a new pid namespace whose
 * pid 1 is a small init, a proxy with pid ppid, and the child with pid cpid,
 * so that getpid/getppid/gettid in the child are native and right.  Falls back
 * to a new user namespace when not privileged.  fn runs in the proxy (it
 * must spawn the child with rf_fwdns_child); the call returns in the caller
 * with the init's pid, which exits with the proxy's status.  The init dies
 * with the caller (PR_SET_PDEATHSIG, which follows the calling thread: the
 * caller must be single-threaded).
 */
pid_t rf_fwdns_spawn(pid_t ppid, int (*fn)(void *), void *arg, int *userns);
/* In the proxy: clone the child with pid cpid; returns its pid, 0 in it. */
pid_t rf_fwdns_child(pid_t cpid);

/*
 * Both sides on this host (lib/fwdlocal.c), for tests and benchmarks: the
 * caller is the parent; it gets a stub (stubpath, exec'd with the caller's
 * fds) and a remote tree in a pid namespace whose child execs argv under the
 * proxy, joined by a socketpair.  Wait for l->stub as for a child; l->tree
 * (a helper that ends with the remote init) must be waited for too.
 */
struct rf_fwdlocal {
	pid_t stub;		/* the child as the caller sees it */
	pid_t tree;		/* helper: exits with the proxy's status */
	pid_t init;		/* pid 1 of the remote namespace (outer pid) */
	int userns;		/* 1 if a user namespace was needed */
};

#define RF_FWDLOCAL_TCP 0x1	/* loopback TCP instead of a socketpair */
#define RF_FWDLOCAL_CTL 0x2	/* arm at a read of the control fd, as a
				   restored child does, not at its execve */
#define RF_FWDLOCAL_CTLFD 1000	/* that fd (never open: the proxy answers) */

int rf_fwdlocal_spawn(char *const argv[], const char *stubpath, int flags,
    struct rf_fwdlocal *l, struct rf_err *e);
/* A connected loopback TCP pair (TCP_NODELAY, close-on-exec). */
int rf_fwdlocal_tcp_pair(int sv[2]);

#endif
