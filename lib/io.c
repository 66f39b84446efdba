/* io.c - whole reads and writes, an fd passed along, the image hash, a
   monotonic clock. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>
#include "rf.h"

ssize_t
rf_readn(int fd, void *buf, size_t n)
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
			return -1;
		}
		got += r;
	}
	return got;
}

int
rf_send_fd(int s, const struct iovec *iov, int niov, int fd)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cm;
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = niov,
	    .msg_control = cm.b, .msg_controllen = sizeof(cm.b) };
	size_t want = 0;
	ssize_t r;
	int i;

	for (i = 0; i < niov; i++)
		want += iov[i].iov_len;
	memset(&cm, 0, sizeof(cm));
	cm.h.cmsg_level = SOL_SOCKET;
	cm.h.cmsg_type = SCM_RIGHTS;
	cm.h.cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(&cm.h), &fd, sizeof(int));
	while ((r = sendmsg(s, &mh, MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	return r == (ssize_t)want ? 0 : -1;
}

ssize_t
rf_recv_fd(int s, void *buf, size_t n, int *fd)
{
	union { struct cmsghdr h; char b[CMSG_SPACE(sizeof(int))]; } cm;
	struct iovec iov = { buf, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
	    .msg_controllen = sizeof(cm.b) };
	struct cmsghdr *c;
	ssize_t r;

	*fd = -1;
	while ((r = recvmsg(s, &mh, MSG_CMSG_CLOEXEC)) == -1 && errno == EINTR)
		;
	if (r > 0 && (c = CMSG_FIRSTHDR(&mh)) != NULL && c->cmsg_level == SOL_SOCKET &&
	    c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(fd, CMSG_DATA(c), sizeof(int));
	return r;
}

int
rf_writen(int fd, const void *buf, size_t n)
{
	ssize_t r;

	while (n > 0) {
		r = write(fd, buf, n);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf = (const char *)buf + r;
		n -= r;
	}
	return 0;
}

uint64_t
rf_hash(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

uint64_t
rf_hash_seed(const void *p, size_t n, uint64_t seed)
{
	return XXH3_64bits_withSeed(p, n, seed);
}

long
rf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
