/*
 * netpeer - test helper: a client that passes the handshake and then
 * misbehaves on purpose, to see rf-server and rf-recv refuse it.
 *
 *   netpeer -k KEY ADDR hugelen    frame length field 0xfffffff0
 *   netpeer -k KEY ADDR forged     a frame of random bytes
 *   netpeer -k KEY ADDR op NAME    request an unknown operation
 *   netpeer -k KEY ADDR stall      send stdin's first 64 KiB, then nothing
 *   netpeer -k KEY ADDR nocommit   send stdin, print READY, close without COMMIT
 *
 * Prints the peer's ERROR or READY frame (JSON) if one comes, and exits with
 * the error's code (0 if none came).
 */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "rf_net.h"

static int
answer(struct rf_chan *c)
{
	struct rf_err e;
	const uint8_t *d;
	size_t len;
	json_t *j;
	int type;

	if (rf_chan_recv(c, &type, &d, &len, &e) != 1)
		return 0;
	printf("%.*s\n", (int)len, (const char *)d);
	fflush(stdout);
	if (type != RF_FR_ERROR || (j = rf_json_frame(d, len, &e)) == NULL)
		return 0;
	rf_json_error(j, &e);
	return e.code;
}

int
main(int argc, char *argv[])
{
	struct rf_chan c;
	struct rf_key key;
	struct rf_err e;
	uint8_t junk[4096];
	const char *mode, *op = "restore";
	char req[128];
	ssize_t n;
	int fd;

	if (argc < 5 || strcmp(argv[1], "-k") != 0)
		errx(64, "usage: netpeer -k key addr mode [arg]");
	mode = argv[4];
	if (strcmp(mode, "op") == 0 && argc == 6)
		op = argv[5];
	if (rf_key_load(argv[2], &key, &e) == -1)
		errx(e.code, "%s", e.msg);
	if ((fd = rf_dial(argv[3], 10000, &e)) == -1)
		errx(e.code, "%s", e.msg);
	if (rf_chan_client(&c, fd, &key, &e) == -1)
		errx(e.code, "%s", e.msg);
	snprintf(req, sizeof(req), "{\"op\":\"%s\"}", op);
	if (rf_chan_send(&c, RF_FR_REQ, req, strlen(req), &e) == -1)
		errx(e.code, "%s", e.msg);
	if (strcmp(mode, "hugelen") == 0) {
		memset(junk, 0x41, sizeof(junk));
		junk[0] = 0xff, junk[1] = 0xff, junk[2] = 0xff, junk[3] = 0xf0;
		rf_writen(fd, junk, sizeof(junk));
	} else if (strcmp(mode, "forged") == 0) {
		randombytes_buf(junk, sizeof(junk));
		junk[0] = 0, junk[1] = 0, junk[2] = 0x0f, junk[3] = 0xfc;
		rf_writen(fd, junk, sizeof(junk));
	} else if (strcmp(mode, "stall") == 0) {
		n = rf_readn(0, junk, sizeof(junk));
		if (n > 0)
			rf_chan_send(&c, RF_FR_DATA, junk, n, &e);
	} else if (strcmp(mode, "nocommit") == 0) {
		if (rf_xfer_send(&c, 0, NULL, NULL, &e) == -1)
			errx(e.code, "%s", e.msg);
		return answer(&c);	/* and close without COMMIT */
	} else if (strcmp(mode, "op") != 0)
		errx(64, "%s: unknown mode", mode);
	return answer(&c);
}
