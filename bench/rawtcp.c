/*
 * bench/rawtcp - plain TCP between two test hosts, the baseline of
 * bench/rfork.sh on the same link: no cipher, no proxy, no stub.
 *
 *	rawtcp serve ADDR:PORT		in one host: echo ('p') or send ('b')
 *	rawtcp ping ADDR:PORT N		in the other: N 1-byte round trips
 *	rawtcp bulk ADDR:PORT MiB	MiB sent by the server, 64 KiB writes
 *
 * Output as bench/rforkrun's: "ping p50 p99 mean min" (us), "rawbulk MiB/s"
 * timed from the first byte read to the last.
 */
#include <arpa/inet.h>
#include <err.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include <bsd/string.h>
#include "bench.h"

#define CHUNK (64 << 10)

static void
parse(const char *s, struct sockaddr_in *a)
{
	char host[64], *colon;
	const char *errstr;

	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	if (strlcpy(host, s, sizeof(host)) >= sizeof(host) ||
	    (colon = strrchr(host, ':')) == NULL)
		errx(64, "%s: not ADDR:PORT", s);
	*colon = '\0';
	a->sin_port = htons(strtonum(colon + 1, 1, 65535, &errstr));
	if (errstr != NULL || inet_pton(AF_INET, host, &a->sin_addr) != 1)
		errx(64, "%s: not ADDR:PORT", s);
}

static void
nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int
readn(int fd, void *p, size_t n)
{
	ssize_t k;

	for (; n > 0; n -= k, p = (char *)p + k)
		if ((k = read(fd, p, n)) <= 0)
			return -1;
	return 0;
}

static void
serve(struct sockaddr_in *a)
{
	char *buf, c;
	uint64_t left;
	int l, fd, one = 1;
	ssize_t k;

	if ((buf = calloc(1, CHUNK)) == NULL)
		err(71, "malloc");
	if ((l = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(l, (struct sockaddr *)a, sizeof(*a)) == -1 || listen(l, 4) == -1)
		err(71, "listen");
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		if ((fd = accept(l, NULL, NULL)) == -1)
			err(71, "accept");
		nodelay(fd);
		if (readn(fd, &c, 1) == -1) {
			close(fd);
			continue;
		}
		if (c == 'p') {
			while (read(fd, &c, 1) == 1 && write(fd, &c, 1) == 1)
				;
		} else if (c == 'b' && readn(fd, &left, sizeof(left)) == 0) {
			for (; left > 0; left -= k)
				if ((k = write(fd, buf, left < CHUNK ? left : CHUNK)) <= 0)
					break;
		}
		close(fd);
	}
}

static int
dial(struct sockaddr_in *a)
{
	int fd, i;

	/* The server may still be starting in the other host. */
	for (i = 0; i < 200; i++) {
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
			err(71, "socket");
		if (connect(fd, (struct sockaddr *)a, sizeof(*a)) == 0) {
			nodelay(fd);
			return fd;
		}
		close(fd);
		usleep(10000);
	}
	err(69, "connect");
}

static void
ping(struct sockaddr_in *a, int n)
{
	double *lat, t0, sum = 0;
	char c = 'p';
	int fd, i;

	if ((lat = calloc(n, sizeof(*lat))) == NULL)
		err(71, "malloc");
	fd = dial(a);
	if (write(fd, &c, 1) != 1)
		err(71, "write");
	for (i = 0; i < n; i++) {
		t0 = now();
		if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1)
			errx(70, "ping: short");
		lat[i] = now() - t0;
		sum += lat[i];
	}
	close(fd);
	qsort(lat, n, sizeof(*lat), cmpd);
	printf("ping %.1f %.1f %.1f %.1f\n", lat[n / 2] * 1e6,
	    lat[(n * 99 + 99) / 100 - 1] * 1e6, sum / n * 1e6, lat[0] * 1e6);
}

static void
bulk(struct sockaddr_in *a, int mib)
{
	char *buf, req[9] = "b";
	uint64_t total = (uint64_t)mib << 20, left;
	double t0 = 0;
	ssize_t k;
	int fd;

	if ((buf = malloc(CHUNK)) == NULL)
		err(71, "malloc");
	memcpy(req + 1, &total, sizeof(total));
	fd = dial(a);
	if (write(fd, req, sizeof(req)) != sizeof(req))
		err(71, "write");
	for (left = total; left > 0; left -= k) {
		if ((k = read(fd, buf, CHUNK)) <= 0)
			errx(70, "bulk: short by %lu bytes", (unsigned long)left);
		if (t0 == 0)
			t0 = now();
	}
	printf("rawbulk %.1f\n", mib / (now() - t0));
	close(fd);
}

static void
usage(void)
{
	fprintf(stderr, "usage: rawtcp serve ADDR:PORT | ping ADDR:PORT N | bulk ADDR:PORT MiB\n");
	exit(64);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in a;
	const char *errstr;
	int n = 0;

	if (argc < 3)
		usage();
	parse(argv[2], &a);
	if (argc == 4) {
		n = strtonum(argv[3], 1, 10000000, &errstr);
		if (errstr != NULL)
			errx(64, "%s: %s", argv[3], errstr);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(argv[1], "serve") == 0 && argc == 3)
		serve(&a);
	else if (strcmp(argv[1], "ping") == 0 && argc == 4)
		ping(&a, n);
	else if (strcmp(argv[1], "bulk") == 0 && argc == 4)
		bulk(&a, n);
	else
		usage();
	return 0;
}
