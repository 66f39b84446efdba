/* net.c - TCP addresses and sockets for the transport. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <bsd/string.h>
#include <unistd.h>
#include "rf_net.h"

int
rf_addr_parse(const char *s, const char *defhost, struct sockaddr_storage *ss,
    socklen_t *len, struct rf_err *e)
{
	char host[256], port[16];
	const char *p, *colon;
	struct addrinfo hints, *res;
	size_t hl;
	long pn;
	char *end;
	int r;

	if (s[0] == '[') {
		if ((p = strchr(s, ']')) == NULL)
			return rf_errf(e, RF_EX_USAGE, "%s: missing ']'", s);
		hl = p - s - 1;
		if (hl >= sizeof(host))
			return rf_errf(e, RF_EX_USAGE, "%s: host name too long", s);
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		p++;
		if (*p != '\0' && *p != ':')
			return rf_errf(e, RF_EX_USAGE, "%s: junk after ']'", s);
		colon = *p == ':' ? p : NULL;
	} else {
		colon = strrchr(s, ':');
		if (colon != NULL && strchr(s, ':') != colon)
			return rf_errf(e, RF_EX_USAGE, "%s: IPv6 addresses need [brackets]", s);
		hl = colon ? (size_t)(colon - s) : strlen(s);
		if (hl >= sizeof(host))
			return rf_errf(e, RF_EX_USAGE, "%s: host name too long", s);
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (host[0] == '\0') {
		if (defhost == NULL)
			return rf_errf(e, RF_EX_USAGE, "%s: no host", s);
		strlcpy(host, defhost, sizeof(host));
	}
	pn = RF_PORT;
	if (colon != NULL) {
		errno = 0;
		pn = strtol(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || errno || pn < 1 || pn > 65535)
			return rf_errf(e, RF_EX_USAGE, "%s: bad port", s);
	}
	snprintf(port, sizeof(port), "%ld", pn);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0)
		return rf_errf(e, r == EAI_AGAIN ? RF_EX_TEMPFAIL : RF_EX_UNAVAILABLE,
		    "%s: %s", host, gai_strerror(r));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

char *
rf_addr_str(const struct sockaddr *sa, char *buf, size_t n)
{
	char a[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
		snprintf(buf, n, "%s:%u", a, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
		snprintf(buf, n, "[%s]:%u", a, ntohs(in6->sin6_port));
	} else
		snprintf(buf, n, "?");
	return buf;
}

int
rf_listen(const char *addr, struct rf_err *e)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	/* ":PORT" is every address, as with nc; no -l at all is loopback. */
	if (rf_addr_parse(addr, "0.0.0.0", &ss, &len, e) == -1)
		return -1;
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return rf_errno(e, "socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1 || listen(fd, 64) == -1) {
		rf_errno(e, "%s", addr);
		if (errno == EADDRINUSE)
			e->code = RF_EX_TEMPFAIL;
		close(fd);
		return -1;
	}
	return fd;
}

int
rf_sock_setup(int fd, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	int one = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1)
		return -1;
	/* Small frames (handshake, replies) must not wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	return 0;
}

int
rf_dial(const char *addr, int timeout_ms, struct rf_err *e)
{
	struct sockaddr_storage ss;
	struct pollfd pfd;
	socklen_t len, elen;
	int fd, fl, r, soerr;

	if (rf_addr_parse(addr, NULL, &ss, &len, e) == -1)
		return -1;
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
		return rf_errno(e, "socket");
	r = connect(fd, (struct sockaddr *)&ss, len);
	if (r == -1 && errno == EINPROGRESS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			r = poll(&pfd, 1, timeout_ms);
		while (r == -1 && errno == EINTR);
		if (r == 0) {
			errno = ETIMEDOUT;
			r = -1;
		} else if (r == 1) {
			elen = sizeof(soerr);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen);
			if (soerr != 0) {
				errno = soerr;
				r = -1;
			} else
				r = 0;
		}
	}
	if (r == -1) {
		rf_errno(e, "%s", addr);
		/* Any failure to reach the server means "host unavailable". */
		if (e != NULL && e->code != RF_EX_TEMPFAIL)
			e->code = RF_EX_UNAVAILABLE;
		close(fd);
		return -1;
	}
	fl = fcntl(fd, F_GETFL);
	if (fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1 || rf_sock_setup(fd, timeout_ms) == -1) {
		rf_errno(e, "%s", addr);
		close(fd);
		return -1;
	}
	return fd;
}

const char *
rf_hostname(void)
{
	static struct utsname u;

	if (u.nodename[0] == '\0' && uname(&u) == -1)
		strlcpy(u.nodename, "?", sizeof(u.nodename));
	return u.nodename;
}

int
rf_sock_longlived(int fd, int dead_ms)
{
	struct timeval none = { 0, 0 };
	int one = 1, idle = dead_ms / 4000, intvl, cnt;
	unsigned int ut = dead_ms;

	/* Probes start after a quarter of the time: an idle link is tested too. */
	idle = idle < 1 ? 1 : idle > 10 ? 10 : idle;
	intvl = idle;
	cnt = dead_ms / 1000 / intvl > 1 ? dead_ms / 1000 / intvl : 2;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof(none)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) == -1)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
	rf_sock_rpc(fd);
	return 0;
}

/*
 * A link of calls and replies, not a stream: no congestion control that
 * paces.  BBR (a common default) spreads each burst over time from a rate
 * it measured while the link was idle between calls, and a 64 KiB write's
 * round trip then waits on the pacer.  Cubic if we may, else reno; if
 * neither, the default stays (RFORK_TCP_CC overrides, "" keeps it).
 */
void
rf_sock_rpc(int fd)
{
	const char *cc = getenv("RFORK_TCP_CC");

	if (cc != NULL) {
		if (*cc != '\0')
			setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, strlen(cc));
		return;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, "cubic", 5) == -1)
		setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, "reno", 4);
}
