/*
 * chanx KEYFILE: one channel between two processes here, the client sealing
 * and opening with OpenSSL's AES-256-GCM (every frame of 512 bytes or more:
 * not only after a channel's first MiB, as usual), the server with
 * libsodium's (as rf-send and rf-stub do while OpenSSL starts, and every
 * channel for its first MiB, lib/chan.c), switching to OpenSSL's halfway.  The client sends frames of many sizes, the server
 * echoes each; prints "ok N frames" if every one came back intact, or
 * "skip: ..." where the CPU has no AES instructions.
 */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sodium.h>
#include "rf_net.h"

static const size_t sizes[] = { 0, 1, 15, 16, 17, 255, 4096, 65535, 65536, RF_FRAME_MAX };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
#define ROUNDS 4

static void
fill(uint8_t *b, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 131 + seed * 7 + (i >> 8));
}

static int
server(int fd, const struct rf_key *key)
{
	struct rf_chan c;
	struct rf_err e;
	const uint8_t *d;
	size_t len, i;
	int type;

	rf_chan_aes_sodium(1);
	if (rf_chan_server(&c, fd, key, &e) == -1)
		errx(1, "server: %s", e.msg);
	for (i = 0; i < ROUNDS * NSIZES; i++) {
		if (i == ROUNDS * NSIZES / 2)
			rf_chan_aes_sodium(-1);	/* OpenSSL's from here on */
		if (rf_chan_recv(&c, &type, &d, &len, &e) != 1)
			errx(1, "server: frame %zu: %s", i, e.msg);
		if (rf_chan_send(&c, type, d, len, &e) == -1)
			errx(1, "server: echo %zu: %s", i, e.msg);
	}
	rf_chan_close(&c);
	return 0;
}

int
main(int argc, char *argv[])
{
	struct rf_chan c;
	struct rf_key key;
	struct rf_err e;
	const uint8_t *d;
	uint8_t *want;
	size_t len, i, n;
	pid_t pid;
	int sv[2], type, st;

	if (argc != 2)
		errx(64, "usage: chanx keyfile");
	if (rf_chan_init() == -1)
		errx(70, "rf_chan_init");
	if (!crypto_aead_aes256gcm_is_available()) {
		printf("skip: no AES-NI here\n");
		return 0;
	}
	if (rf_key_load(argv[1], &key, &e) == -1)
		errx(e.code, "%s", e.msg);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		err(71, "socketpair");
	if ((pid = fork()) == -1)
		err(71, "fork");
	if (pid == 0) {
		close(sv[0]);
		_exit(server(sv[1], &key));
	}
	close(sv[1]);
	rf_chan_aes_sodium(-1);
	if (rf_chan_client(&c, sv[0], &key, &e) == -1)
		errx(1, "client: %s", e.msg);
	if ((want = malloc(RF_FRAME_MAX)) == NULL)
		err(71, "malloc");
	for (i = 0; i < ROUNDS * NSIZES; i++) {
		n = sizes[i % NSIZES];
		fill(want, n, i);
		if (rf_chan_send(&c, RF_FR_DATA, want, n, &e) == -1)
			errx(1, "client: frame %zu: %s", i, e.msg);
		if (rf_chan_recv(&c, &type, &d, &len, &e) != 1)
			errx(1, "client: echo %zu: %s", i, e.msg);
		if (type != RF_FR_DATA || len != n || memcmp(d, want, n) != 0)
			errx(1, "client: echo %zu of %zu bytes differs", i, n);
	}
	rf_chan_close(&c);
	if (waitpid(pid, &st, 0) == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		errx(1, "the server side failed");
	printf("ok %zu frames\n", i);
	return 0;
}
