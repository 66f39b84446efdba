/*
 * rf-send - send the image on stdin to the rf-server on HOST; exit 0 once
 * the process runs there, printing the server's JSON reply.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include <sodium.h>
#include <jansson.h>
#include "rf_net.h"
#include "rf_image.h"

struct progress {
	uint64_t total;		/* 0: unknown */
	double start, last;
	int tty;
};

static void
usage(void)
{
	fprintf(stderr, "usage: rf-send [-P] [-F fd -p ppid [-c pid | -H] [-L key]] [-k key] [-t seconds] host[:port]\n");
	exit(RF_EX_USAGE);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *
human(double b, char *buf, size_t n)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;

	while (b >= 1024 && i < 4) {
		b /= 1024;
		i++;
	}
	snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
	return buf;
}

static void
show(void *arg, uint64_t bytes)
{
	struct progress *p = arg;
	char a[32], b[32], c[32], line[160];
	double t = now(), rate;
	int n;

	if (t - p->last < 0.5 && p->last != 0)
		return;
	p->last = t;
	rate = t > p->start ? bytes / (t - p->start) : 0;
	/* The metadata's total leaves out record headers: never show less. */
	if (p->total > 0 && bytes > p->total)
		p->total = bytes;
	if (p->total > 0)
		n = snprintf(line, sizeof(line), "rf-send: %s of %s, %s/s, ETA %.0fs",
		    human(bytes, a, sizeof(a)), human(p->total, b, sizeof(b)),
		    human(rate, c, sizeof(c)), rate > 0 ? (p->total - bytes) / rate : 0);
	else
		n = snprintf(line, sizeof(line), "rf-send: %s, %s/s",
		    human(bytes, a, sizeof(a)), human(rate, c, sizeof(c)));
	fprintf(stderr, p->tty ? "\r%-*s" : "%-*s\n", n, line);
}

/*
 * The total for -P: read the start of the image into memory and let the
 * image reader parse its metadata there.  The prefix is sent first.
 */
static size_t
peek_total(uint8_t *buf, size_t cap, uint64_t *total)
{
	struct rf_proc p;
	struct rf_imgr r;
	struct rf_err e;
	ssize_t n;
	int mfd;

	*total = 0;
	if ((n = rf_readn(STDIN_FILENO, buf, cap)) <= 0)
		return n == -1 ? (size_t)-1 : 0;
	if ((mfd = memfd_create("rf-send", MFD_CLOEXEC)) == -1)
		return n;
	memset(&p, 0, sizeof(p));
	memset(&r, 0, sizeof(r));
	if (rf_writen(mfd, buf, n) == 0 && lseek(mfd, 0, SEEK_SET) == 0 &&
	    rf_imgr_start(&r, mfd, &p, &e) == 0) {
		*total = r.off + rf_proc_page_bytes(&p);
		rf_imgr_free(&r);
	}
	rf_proc_free(&p);
	close(mfd);
	return n;
}

static int
stdout_is_unix(void)
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);

	return getsockname(STDOUT_FILENO, (struct sockaddr *)&a, &len) == 0 &&
	    a.ss_family == AF_UNIX;
}

int
main(int argc, char *argv[])
{
	struct rf_chan c;
	struct rf_key key;
	struct rf_err e, e2;
	struct progress prog;
	char *kpath = NULL, *s;
	const char *errstr, *host;
	json_t *j = NULL;
	size_t pre = 0;
	uint64_t reqlen;
	uint8_t *prefix = NULL;
	int ch, fd, r, sent_ok, peer, pflag = 0, timeout = RF_TIMEOUT_MS, ctlfd = -1, hflag = 0;
	pid_t ppid = 0, cpid = 0;
	const char *fdkey = NULL;

	/* OpenSSL's slow set-up runs beside the start, the dial and the handshake. */
	rf_chan_init_async();
	while ((ch = getopt(argc, argv, "c:F:hHk:L:p:Pt:")) != -1) {
		switch (ch) {
		case 'H':
			hflag = 1;
			break;
		case 'L':
			fdkey = optarg;
			if (strlen(fdkey) != 32 || strspn(fdkey, "0123456789abcdef") != 32)
				errx(RF_EX_USAGE, "-L %s: not 32 hex digits", optarg);
			break;
		case 'c':
			cpid = strtonum(optarg, 2, INT32_MAX, &errstr);
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-c %s: %s", optarg, errstr);
			break;
		case 'F':
			ctlfd = strtonum(optarg, 0, 1 << 20, &errstr);
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-F %s: %s", optarg, errstr);
			break;
		case 'p':
			ppid = strtonum(optarg, 2, INT32_MAX, &errstr);
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-p %s: %s", optarg, errstr);
			break;
		case 'k':
			kpath = optarg;
			break;
		case 'P':
			pflag = 1;
			break;
		case 't':
			timeout = strtonum(optarg, 1, 86400, &errstr) * 1000;
			if (errstr != NULL)
				errx(RF_EX_USAGE, "-t %s: %s", optarg, errstr);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1 || (ctlfd == -1) != (ppid == 0) ||
	    ((cpid != 0 || fdkey != NULL) && ctlfd == -1) || (hflag && (ctlfd == -1 || cpid != 0)))
		usage();
	if (hflag && !stdout_is_unix())
		errx(RF_EX_USAGE, "-H: standard output is not a unix socket");
	host = argv[0];
	signal(SIGPIPE, SIG_IGN);

	if (rf_key_load(kpath, &key, &e) == -1)
		errx(e.code, "%s", e.msg);

	memset(&prog, 0, sizeof(prog));
	if (pflag) {
		if ((prefix = malloc(RF_CHUNK)) == NULL)
			err(RF_EX_OSERR, "malloc");
		if ((pre = peek_total(prefix, RF_CHUNK, &prog.total)) == (size_t)-1)
			err(RF_EX_IOERR, "standard input");
		prog.tty = isatty(STDERR_FILENO);
	}

	if ((fd = rf_dial(host, timeout, &e)) == -1)
		errx(e.code, "%s", e.msg);
	if (rf_chan_client(&c, fd, &key, &e) == -1)
		errx(e.code, "%s: %s", host, e.msg);
	rf_key_wipe(&key);

	/* A fork child: its control fd and its parent's pid, which the image lacks. */
	if (ctlfd >= 0) {
		if ((j = rf_xfer_forkreq(ctlfd, ppid, host, cpid, fdkey)) == NULL)
			errx(RF_EX_OSERR, "out of memory");
	} else
		j = json_pack("{s:s}", "op", "restore");
	if (rf_chan_send_json(&c, RF_FR_REQ, j, &e) == -1)
		errx(e.code, "%s: %s", host, e.msg);
	json_decref(j);
	reqlen = c.tx_bytes;

	prog.start = prog.last = now();
	r = 0;
	if (pre > 0) {
		r = rf_chan_send(&c, RF_FR_DATA, prefix, pre, &e);
		if (r == 0)
			show(&prog, pre);
	}
	if (r == 0 && (pre == 0 || pre == RF_CHUNK))
		r = rf_xfer_send(&c, STDIN_FILENO, pflag ? show : NULL, &prog, &e);
	else if (r == 0)
		r = rf_chan_send(&c, RF_FR_END, NULL, 0, &e);
	if (pflag) {
		prog.last = 0;
		show(&prog, c.tx_bytes - reqlen);
		if (prog.tty)
			fputc('\n', stderr);
	}
	/* A failed write may have a reason waiting: read it before giving up. */
	sent_ok = r != -1;
	if (!sent_ok && rf_chan_pending(&c) != 1)
		errx(e.code, "%s: %s", host, e.msg);

	j = rf_xfer_answer(&c, &peer, &e2);
	if (j == NULL)
		errx(sent_ok || peer ? e2.code : e.code, "%s: %s", host,
		    sent_ok || peer ? e2.msg : e.msg);
	if (ctlfd >= 0 && !json_is_string(json_object_get(j, "token")))
		errx(RF_EX_PROTOCOL, "%s: no token in the reply", host);
	if ((s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		errx(RF_EX_SOFTWARE, "cannot encode the reply");
	if (printf("%s\n", s) < 0 || fflush(stdout) == EOF || ferror(stdout))
		err(RF_EX_IOERR, "stdout");
	free(s);
	/* The connection goes on as the stub's: no dial, no second handshake.
	   Then nothing is left to do, and the fork waits for our end. */
	if (hflag && rf_xfer_hand(&c, STDOUT_FILENO) == 0)
		_exit(RF_EX_OK);
	if (hflag)
		warn("-H: passing the connection (the stub will dial)");
	rf_chan_close(&c);
	json_decref(j);
	free(prefix);
	return RF_EX_OK;
}
