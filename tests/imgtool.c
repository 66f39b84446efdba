/*
 * imgtool - test helper: take an image apart and put it back together with
 * valid checksums, so tests can feed rf-restore images that are well formed
 * but wrong in one chosen way (a newer version, a colliding layout, ...).
 *
 *   imgtool meta < IMG            print the metadata record's raw JSON
 *   imgtool remeta JSON < IMG     same image, metadata replaced by file JSON
 *   imgtool version N < IMG       same image, file header says version N
 *   imgtool types < IMG           each record's type, one a line
 *   imgtool zlen DELTA < IMG      same image, the first compressed page
 *                                 record of 2 pages or more announcing
 *                                 DELTA bytes more (or less)
 *
 * The metadata is not parsed on the way (the replacement may be invalid on
 * purpose); page records are copied with their checksums recomputed.
 */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>
#include "rf.h"

struct rechdr {
	uint32_t magic, type;
	uint64_t len, arg, data_hash, hdr_hash;
};

static void
put(uint64_t idx, uint32_t type, uint64_t arg, const void *p, size_t len)
{
	struct rechdr h = { 0x43524652u, type, len, arg, rf_hash(p, len), 0 };

	h.hdr_hash = rf_hash_seed(&h, 32, idx);
	if (rf_writen(1, &h, sizeof(h)) == -1 || rf_writen(1, p, len) == -1)
		err(74, "write");
}

int
main(int argc, char *argv[])
{
	unsigned char fh[24];
	struct rechdr h;
	char *buf, *meta = NULL;
	size_t mlen = 0;
	uint64_t idx = 0;
	int zdone = 0;
	FILE *f;

	if (argc < 2)
		errx(64, "usage: imgtool meta | remeta JSON | version N | types | zlen DELTA  < IMG");
	if (rf_readn(0, fh, sizeof(fh)) != sizeof(fh))
		errx(65, "short header");
	if (strcmp(argv[1], "version") == 0 && argc == 3) {
		uint32_t v = atoi(argv[2]);
		memcpy(fh + 8, &v, 4);
		uint64_t hh = rf_hash(fh, 16);
		memcpy(fh + 16, &hh, 8);
	}
	if (strcmp(argv[1], "remeta") == 0 && argc == 3) {
		if ((f = fopen(argv[2], "r")) == NULL)
			err(66, "%s", argv[2]);
		meta = malloc(64 << 20);
		mlen = fread(meta, 1, 64 << 20, f);
		fclose(f);
	}
	if (strcmp(argv[1], "meta") != 0 && strcmp(argv[1], "types") != 0 &&
	    rf_writen(1, fh, sizeof(fh)) == -1)
		err(74, "write");
	for (;;) {
		ssize_t n = rf_readn(0, &h, sizeof(h));
		if (n == 0)
			break;
		if (n != sizeof(h) || h.len > (64u << 20))
			errx(65, "bad record");
		buf = malloc(h.len ? h.len : 1);
		if (rf_readn(0, buf, h.len) != (ssize_t)h.len)
			errx(65, "short record");
		if (strcmp(argv[1], "meta") == 0) {
			rf_writen(1, buf, h.len);
			return 0;
		}
		if (strcmp(argv[1], "types") == 0) {
			printf("%u\n", h.type);
			free(buf);
			continue;
		}
		if (strcmp(argv[1], "zlen") == 0 && argc == 3 && h.type == 5 && h.len >= 8 &&
		    !zdone) {
			uint64_t raw;
			memcpy(&raw, buf, 8);
			if (raw >= 8192) {	/* so that 4096 less is a length still */
				raw += strtoll(argv[2], NULL, 0);
				memcpy(buf, &raw, 8);
				zdone = 1;
			}
		}
		if (h.type == 1 && meta)
			put(idx, h.type, h.arg, meta, mlen);
		else
			put(idx, h.type, h.arg, buf, h.len);
		free(buf);
		idx++;
	}
	return 0;
}
