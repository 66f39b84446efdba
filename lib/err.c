/* err.c - error reports for data problems (struct rf_err). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "rf.h"

int
rf_errno_code(int err)
{
	switch (err) {
	case ENOENT: case ESRCH: case ENOTDIR:
		return RF_EX_NOINPUT;
	case EPERM: case EACCES:
		return RF_EX_NOPERM;
	case EIO: case ENOSPC: case EPIPE: case EDQUOT: case EFBIG: case EROFS:
		return RF_EX_IOERR;
	case EAGAIN: case EINTR: case ENOMEM:
		return RF_EX_TEMPFAIL;
	case ECONNREFUSED: case EHOSTUNREACH: case ENETUNREACH: case ETIMEDOUT:
	case EHOSTDOWN: case ENETDOWN:
		return RF_EX_UNAVAILABLE;
	case EBADMSG: case EPROTO: case ECONNRESET:
		return RF_EX_PROTOCOL;
	default:
		return RF_EX_OSERR;
	}
}

int
rf_errf(struct rf_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e != NULL) {
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return -1;
}

int
rf_errno(struct rf_err *e, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;
	size_t n;

	if (e != NULL) {
		e->code = rf_errno_code(saved);
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
		n = strlen(e->msg);
		snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(saved));
	}
	errno = saved;
	return -1;
}
