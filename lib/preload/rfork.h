/*
 * rfork.h - librfork.so, the preload library of rf-run (docs/FORK.md, steps
 * 1-5): the fork wrapper, the shared-memory check, and the helpers it runs.
 *
 * Everything here may run in a process that forked from a signal handler or
 * from a multithreaded parent: no stdio, no malloc (mmap where memory is
 * needed), system calls through syscall(2) so that a program's own read or
 * write cannot stand in for libc's.
 */
#ifndef RFORK_PRELOAD_H
#define RFORK_PRELOAD_H

#include <limits.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#include "rf_image.h"

#define RFP_HOSTS 4096		/* RFORK_HOSTS, the whole list */
#define RFP_HOST 256		/* one HOST[:PORT] */
#define RFP_TOKEN 129		/* rf-send's token, with its NUL */
#define RFP_WHY 320		/* the reason in a log line */

#define rfp_read(fd, b, n)	syscall(SYS_read, (fd), (b), (n))
#define rfp_write(fd, b, n)	syscall(SYS_write, (fd), (b), (n))
#define rfp_close(fd)		syscall(SYS_close, (fd))
#define rfp_open(p, fl)		syscall(SYS_openat, AT_FDCWD, (p), (fl) | O_CLOEXEC, 0)

enum rfp_policy { RFP_ALL, RFP_NONE, RFP_EVERY, RFP_FIRST, RFP_BAD };

/* What the environment said when the library was loaded. */
struct rfp_cfg {
	enum rfp_policy policy;
	unsigned long n;		/* of every:N, first:N */
	int strict;			/* RFORK_STRICT=1 */
	int timeout;			/* RFORK_TIMEOUT, seconds */
	int postcopy;			/* RFORK_POSTCOPY, not 0 */
	int early;			/* RFORK_EARLY_STUB, not 0 */
	int selfrec;			/* RFORK_SELFREC, not 0: S records itself */
	char policy_str[64];
	char hosts[RFP_HOSTS];
	int nhosts;
	char key[PATH_MAX];		/* RFORK_KEY, "" if unset */
	char bindir[PATH_MAX];		/* RFORK_BINDIR, "" if unset */
	char libdir[PATH_MAX];		/* where librfork.so was loaded from */
	char agent[108];		/* RFORK_AGENT: rf-agent's socket, "" if none */
	/* Resolved at the first remote fork. */
	int tools;			/* 0 not yet, 1 found, -1 missing */
	char snap[PATH_MAX], send[PATH_MAX], stub[PATH_MAX];
};

extern struct rfp_cfg rfp_cfg;

/* A message built on the stack; no stdio. */
struct rfp_str {
	char s[RFP_WHY];
	size_t n;
};
void rfp_cat(struct rfp_str *b, const char *s);
void rfp_catn(struct rfp_str *b, const char *s, size_t n);
void rfp_num(struct rfp_str *b, unsigned long v);
/* One line on stderr in one write: "rfork: pid N: " and the strings. */
void rfp_log(const char *s, ...) __attribute__((sentinel));

/* What the maps say about a fork: the caller's own, as threads fork at once. */
struct rfp_maps {
	int big;	/* a private anonymous mapping of RF_LAZY_MIN or more, whose
			   pages could come after the child starts (post-copy) */
	unsigned ngd;
	struct { uint64_t start, len; int prot; } gd[RF_SELFREC_NGD];
			/* private anonymous mappings with room below them: may
			   grow down (S asks, struct rf_selfrec) */
};

/* 1 if a mapping forbids a remote child (*why says which), 0 if none, -1 if
 * the maps could not be read (*why says so); *m as they were. */
int rfp_shared_mapping(struct rfp_str *why, struct rfp_maps *m);
/* 1 (why says how) if the process is confined in a way a remote child would
   not keep (confine.c); remote: this is a remote child already. */
int rfp_confined(struct rfp_str *why, int remote);

/* Find rf-snap, rf-send, rf-stub (rfp_cfg.snap...): 0, or -1 with *why. */
int rfp_find_tools(struct rfp_str *why);

/*
 * The environment for our helpers: environ without librfork.so in
 * LD_PRELOAD.  An mmap'd block; free it with rfp_env_free.
 */
char **rfp_env(size_t *size);
void rfp_env_free(char **env, size_t size);

/*
 * Run rf-snap PID | rf-send -F KFD -p PPID [-c CPID] HOST: the stopped child
 * PID of PPID, whose control socket is fd KFD, is to be a remote child on
 * HOST, with pid CPID if not 0 (a remote child's fork), taking along the fds
 * served under FDKEY if not NULL (rf-send -L).  0 with the token for
 * its rf-stub, or -1 with *why (the helpers' last line of stderr, or what
 * failed).
 */
int rfp_ship(pid_t pid, pid_t ppid, pid_t cpid, int kfd, const char *host,
    const char *fdkey, char *token, struct rfp_str *why);
/*
 * rf-send -H: after its reply, rf-send passed on its connection and the
 * channel's state (opaque here) for the stub, so that it need not dial.
 * rfp_ship leaves them on fd (a SEQPACKET socket of ours) when hand is not
 * NULL; rfp_hand_take gets them: 0, or -1 if none came.
 */
#define RFP_STATE 256
struct rfp_hand {
	int fd;			/* ours: where rf-send left them; -1: none */
	int conn;		/* the connection, once taken */
	size_t len;
	char state[RFP_STATE];
};
/* *lazy: in, ask for post-copy (rf-snap -l); out, 1 if the reply says pages
   come after the child starts (its stub must serve them). */
int rfp_ship_hand(pid_t pid, pid_t ppid, int kfd, const char *host, char *token,
    struct rfp_hand *hand, int *lazy, struct rfp_str *why,
    void (*early)(void *arg, const char *token, int lazy, struct rfp_hand *hand),
    void *early_arg, int *handed, int (*pre)(void *arg), int (*stopped)(void *arg),
    int (*prehand)(void *arg, struct rfp_hand *hand, char *line, size_t cap), uint64_t gen);
/*
 * What S writes of itself before it stops (fork.c), for the snapshot to
 * read instead of asking S by injected calls: gen, not 0, is the fork's
 * number in it (rf-snap -c, rf_agent_req.selfrec).
 */
extern struct rf_selfrec rfp_selfrec;
/*
 * early, when not NULL, is called from the shipper (sharing our memory, with
 * its own fd table: hand->conn is its) as soon as rf-send has passed the
 * reply and the connection, before rf-send and rf-snap have ended: S can
 * become the stub meanwhile.  *handed is then 1, and the shipper's result is
 * success whatever follows (S is gone); hand is left empty.  pre, when not
 * NULL, is called from the shipper too, once rf-snap has ended well while
 * rf-send still runs (S's memory is read): S may start its stub early; it
 * returns 1 if S is its stub now.  prehand, when not NULL, is called from
 * the shipper when rf-agent hands the connection over before the reply
 * (RF_AGENT_PREHAND): it passes it to the stub and puts the reply line the
 * stub read into line (a token in it: the child runs there); -1 if none.
 * stopped, when not NULL, is called once rf-send has started, to wait for
 * S to stop before rf-snap starts; -1 ends the shipping (-1, *why empty).
 */
int rfp_hand_take(struct rfp_hand *hand);
void rfp_hand_free(struct rfp_hand *hand);

#endif
