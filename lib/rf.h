/*
 * rf.h - common definitions of the rfork internal library.
 *
 * Library rule: nothing in lib/ prints or exits.  Calls return -1 with errno
 * set for system errors, or fill a struct rf_err for data problems
 * ("image: page record 12: checksum mismatch") together with the exit code
 * main() should use.  Only main() in bin/ talks to the user.
 */
#ifndef RF_H
#define RF_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The one exit-code table (../shared/SPEC.md "Exit codes"). */
enum {
	RF_EX_OK = 0,
	RF_EX_NO = 1,		/* a checked "no" */
	RF_EX_USAGE = 64,
	RF_EX_DATAERR = 65,	/* bad image or metadata */
	RF_EX_NOINPUT = 66,	/* no such input or process */
	RF_EX_UNAVAILABLE = 69,	/* host unavailable */
	RF_EX_SOFTWARE = 70,	/* internal error */
	RF_EX_OSERR = 71,	/* system error */
	RF_EX_IOERR = 74,
	RF_EX_TEMPFAIL = 75,	/* temporary failure, safe to retry */
	RF_EX_PROTOCOL = 76,
	RF_EX_NOPERM = 77,	/* permission or authentication denied */
};

/* Fixed TCP port of rf-server (SPEC: "the port is fixed and documented"). */
#define RF_PORT 7077

/*
 * Error report for data problems.  code is one of RF_EX_*; msg is one line
 * without the program name, e.g. "image: pages 0x7f12..: checksum mismatch".
 */
struct rf_err {
	int code;
	char msg[512];
};

/* Fill e (if not NULL) and return -1.  printf-style. */
int rf_errf(struct rf_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, appending ": strerror(errno)" and picking the code from errno. */
int rf_errno(struct rf_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Map an errno to an exit code (ENOENT/ESRCH -> 66, EPERM/EACCES -> 77, ...). */
int rf_errno_code(int err);

/* I/O helpers: full reads and writes, retrying on EINTR and short counts. */
/* Returns bytes read (< n only at EOF), or -1. */
ssize_t rf_readn(int fd, void *buf, size_t n);
/* Returns 0, or -1 (errno set). */
int rf_writen(int fd, const void *buf, size_t n);
/*
 * One message on a unix socket with one fd along (SCM_RIGHTS): n bytes of
 * iov[0..niov), all of it or -1.  rf_recv_fd: the fd (close-on-exec), or
 * -1 if the message did not carry exactly one; 0 at the end.
 */
int rf_send_fd(int s, const struct iovec *iov, int niov, int fd);
ssize_t rf_recv_fd(int s, void *buf, size_t n, int *fd);
/* Milliseconds of CLOCK_MONOTONIC: for deadlines. */
long rf_now_ms(void);

/* Hash used everywhere in the image (XXH3, 64 bit). */
uint64_t rf_hash(const void *p, size_t n);
uint64_t rf_hash_seed(const void *p, size_t n, uint64_t seed);

#endif
