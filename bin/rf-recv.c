/*
 * rf-recv - accept one authenticated sender and write its image to stdout,
 * for pipelines: rf-recv -l :7078 | rf-restore.
 */
#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include <jansson.h>
#include "rf_net.h"

static void
usage(void)
{
	fprintf(stderr, "usage: rf-recv [-k key] [-l addr:port] [-t seconds]\n");
	exit(RF_EX_USAGE);
}

int
main(int argc, char *argv[])
{
	struct sockaddr_storage ss;
	struct rf_chan c;
	struct rf_key key;
	struct rf_err e;
	socklen_t sl;
	uint64_t bytes;
	char who[80], *kpath = NULL, *addr = "127.0.0.1";
	const char *errstr, *op;
	const uint8_t *d;
	size_t len;
	json_t *j;
	int ch, lfd, fd, r, type, timeout = RF_TIMEOUT_MS;

	while ((ch = getopt(argc, argv, "hk:l:t:")) != -1) {
		switch (ch) {
		case 'k':
			kpath = optarg;
			break;
		case 'l':
			addr = optarg;
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
	if (argc != 0)
		usage();
	signal(SIGPIPE, SIG_IGN);

	if (rf_key_load(kpath, &key, &e) == -1)
		errx(e.code, "%s", e.msg);
	if ((lfd = rf_listen(addr, &e)) == -1)
		errx(e.code, "listen: %s", e.msg);

	/* Peers that fail the handshake are turned away; we wait for one that passes. */
	for (;;) {
		sl = sizeof(ss);
		if ((fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			err(RF_EX_OSERR, "accept");
		}
		rf_addr_str((struct sockaddr *)&ss, who, sizeof(who));
		if (rf_sock_setup(fd, timeout) == -1)
			err(RF_EX_OSERR, "%s", who);
		if (rf_chan_server(&c, fd, &key, &e) == 0)
			break;
		warnx("%s: %s", who, e.msg);
		close(fd);
	}
	close(lfd);
	rf_key_wipe(&key);

	r = rf_chan_recv(&c, &type, &d, &len, &e);
	if (r != 1)
		errx(r == 0 ? RF_EX_PROTOCOL : e.code, "%s: %s", who,
		    r == 0 ? "closed without a request" : e.msg);
	if (type != RF_FR_REQ || (j = rf_json_frame(d, len, &e)) == NULL ||
	    (op = json_string_value(json_object_get(j, "op"))) == NULL ||
	    strcmp(op, "restore") != 0) {
		rf_chan_send_error(&c, RF_EX_PROTOCOL, "rf-recv takes images only");
		rf_chan_linger(&c, 2000);
		errx(RF_EX_PROTOCOL, "%s: not an image request", who);
	}
	json_decref(j);

	r = rf_xfer_recv(&c, STDOUT_FILENO, &bytes, &e);
	/* The image counts as delivered only once stdout took all of it. */
	if (r == 0 && close(STDOUT_FILENO) == -1) {
		rf_errno(&e, "stdout");
		r = -2;
	}
	if (r == -2) {
		rf_chan_send_error(&c, e.code, e.msg);
		rf_chan_linger(&c, 2000);
		errx(e.code, "%s", e.msg);
	}
	if (r == -1) {
		if (e.code != RF_EX_UNAVAILABLE) {
			rf_chan_send_error(&c, e.code, e.msg);
			rf_chan_linger(&c, 2000);
		}
		errx(e.code, "%s: %s", who, e.msg);
	}
	j = json_pack("{s:s, s:I}", "host", rf_hostname(), "bytes", (json_int_t)bytes);
	if (rf_chan_send_json(&c, RF_FR_REPLY, j, &e) == -1)
		errx(e.code, "%s: image delivered, reply lost: %s", who, e.msg);
	json_decref(j);
	rf_chan_linger(&c, timeout);
	rf_chan_close(&c);
	return RF_EX_OK;
}
