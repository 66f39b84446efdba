/*
 * stream.c - the image stream: file header, then records.
 *
 *   header  "RFORKIMG" | u32 version | u32 flags (0) | u64 hash(first 16 bytes)
 *   record  u32 magic "RFRC" | u32 type | u64 len | u64 arg | u64 data hash |
 *           u64 header hash (seeded with the record's index, so a record
 *           dropped, repeated or moved is caught) | len bytes of payload
 *
 * Records: META (JSON, first), PAGES (arg = address, in ascending order;
 * PAGESZ the same compressed: u64 length, then one LZ4 block),
 * LAZY (arg = address, payload u64 length: pages that exist but come later
 * from a page source, a post-copy fork; in the same order as PAGES),
 * END (payload: u64 page and lazy records, u64 pages).  Little endian throughout.
 * docs/FORMAT.md is the long form.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <stddef.h>
#include <sys/uio.h>
#include <unistd.h>
#include <lz4.h>
#include "rf_image.h"

#define IMG_MAGIC "RFORKIMG"
#define REC_MAGIC 0x43524652u	/* "RFRC" */

enum { REC_META = 1, REC_PAGES = 2, REC_END = 3, REC_LAZY = 4, REC_PAGESZ = 5 };

/* A compressed page record's payload at most: its length, then LZ4's bound. */
#define ZREC_MAX (8 + LZ4_COMPRESSBOUND(RF_PAGES_MAX))

struct filehdr {
	char magic[8];
	uint32_t version;
	uint32_t flags;
	uint64_t hash;
};

struct rechdr {
	uint32_t magic;
	uint32_t type;
	uint64_t len;
	uint64_t arg;
	uint64_t data_hash;
	uint64_t hdr_hash;
};

_Static_assert(sizeof(struct filehdr) == 24, "file header layout");
_Static_assert(sizeof(struct rechdr) == 40, "record header layout");

static const char *const rec_names[] = { "?", "metadata", "page", "end", "lazy",
	"compressed page" };

/* ---- writer ---- */

static int
put_record(struct rf_imgw *w, uint32_t type, uint64_t arg, const void *data, size_t len,
    struct rf_err *e)
{
	struct rechdr h = {
		.magic = REC_MAGIC, .type = type, .len = len, .arg = arg,
		.data_hash = rf_hash(data, len),
	};
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, len } };
	size_t total = sizeof(h) + len, done = 0;
	ssize_t r;

	h.hdr_hash = rf_hash_seed(&h, offsetof(struct rechdr, hdr_hash), w->nrec);
	while (done < total) {
		r = writev(w->fd, iov, 2);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return rf_errno(e, "image: write");
		}
		done += r;
		/* Advance the iovecs past what was written (rare short writes). */
		while (r > 0) {
			size_t k = iov[0].iov_len ? 0 : 1;
			size_t n = (size_t)r < iov[k].iov_len ? (size_t)r : iov[k].iov_len;
			iov[k].iov_base = (char *)iov[k].iov_base + n;
			iov[k].iov_len -= n;
			r -= n;
		}
	}
	w->nrec++;
	w->bytes += total;
	return 0;
}

int
rf_imgw_start(struct rf_imgw *w, int fd, const struct rf_proc *p, int raw, struct rf_err *e)
{
	/* without compressed records it is a version 1 image: older readers
	   take it (rf-snap -U, to a host not yet updated) */
	struct filehdr fh = { .version = raw ? 1 : RF_IMAGE_VERSION };
	char *json;
	int r;

	*w = (struct rf_imgw){ .fd = fd, .raw = raw };
	memcpy(fh.magic, IMG_MAGIC, 8);
	fh.hash = rf_hash(&fh, offsetof(struct filehdr, hash));
	if (rf_writen(fd, &fh, sizeof(fh)) == -1)
		return rf_errno(e, "image: write");
	w->bytes = sizeof(fh);
	if ((json = rf_meta_dump(p, 0)) == NULL)
		return rf_errno(e, "image: metadata");
	r = put_record(w, REC_META, 0, json, strlen(json), e);
	free(json);
	return r;
}

/*
 * Pages as a PAGESZ record when LZ4 takes an eighth off them at least: 1 if
 * so (or -1, e set, if writing failed), 0 to write them as they are.  A
 * process's memory is mostly zeros, pointers and small integers: a fork's
 * 230 KB of stack, TLS and library data become 20-40 KB, and sealing,
 * sending, receiving and opening them cost that much less on a fork's path.
 * The buffer is the thread's, kept: fresh memory is slow to touch.
 */
static int
compressed(struct rf_imgw *w, uint64_t addr, const void *data, size_t len, struct rf_err *e)
{
	static __thread uint8_t *zbuf;
	uint64_t raw = htole64(len);
	int n;

	if (zbuf == NULL && (zbuf = malloc(ZREC_MAX)) == NULL)
		return 0;
	n = LZ4_compress_default(data, (char *)zbuf + 8, (int)len, LZ4_COMPRESSBOUND(len));
	if (n <= 0 || 8 + (size_t)n > len - len / 8)
		return 0;
	memcpy(zbuf, &raw, 8);
	if (put_record(w, REC_PAGESZ, addr, zbuf, 8 + (size_t)n, e) == -1)
		return -1;
	w->npages += len / RF_PAGE_SIZE;
	return 1;
}

int
rf_imgw_pages(struct rf_imgw *w, uint64_t addr, const void *data, size_t len,
    struct rf_err *e)
{
	int z;

	if (addr % RF_PAGE_SIZE || len % RF_PAGE_SIZE || len == 0 || len > RF_PAGES_MAX)
		return rf_errf(e, RF_EX_SOFTWARE, "image: bad page record 0x%" PRIx64 "+%zu",
		    addr, len);
	if (!w->raw && (z = compressed(w, addr, data, len, e)) != 0)
		return z == 1 ? 0 : -1;
	if (put_record(w, REC_PAGES, addr, data, len, e) == -1)
		return -1;
	w->npages += len / RF_PAGE_SIZE;
	return 0;
}

int
rf_imgw_lazy(struct rf_imgw *w, uint64_t addr, uint64_t len, struct rf_err *e)
{
	uint64_t le = htole64(len);

	if (addr % RF_PAGE_SIZE || len % RF_PAGE_SIZE || len == 0)
		return rf_errf(e, RF_EX_SOFTWARE, "image: bad lazy record 0x%" PRIx64 "+%" PRIu64,
		    addr, len);
	if (put_record(w, REC_LAZY, addr, &le, sizeof(le), e) == -1)
		return -1;
	w->npages += len / RF_PAGE_SIZE;
	return 0;
}

int
rf_imgw_end(struct rf_imgw *w, struct rf_err *e)
{
	uint64_t end[2] = { w->nrec - 1, w->npages };

	return put_record(w, REC_END, 0, end, sizeof(end), e);
}

/* ---- reader ---- */

/* Up to n bytes: fewer only at the end of input. */
static ssize_t
readn(struct rf_imgr *r, void *buf, size_t n)
{
	size_t done = 0;
	ssize_t k;

	if (r->src == NULL)
		return rf_readn(r->fd, buf, n);
	while (done < n) {
		if ((k = r->src(r->srcctx, (char *)buf + done, n - done)) == -1)
			return -1;
		if (k == 0)
			break;
		done += k;
	}
	return done;
}

/* Read exactly n bytes; a short read is a truncated image. */
static int
get(struct rf_imgr *r, void *buf, size_t n, const char *what, struct rf_err *e)
{
	ssize_t got = readn(r, buf, n);

	if (got == -1)
		return rf_errno(e, "image: read");
	r->off += got;
	if ((size_t)got < n)
		return rf_errf(e, RF_EX_DATAERR, "image: truncated in %s (input ends at byte %"
		    PRIu64 ")", what, r->off);
	return 0;
}

static int
get_rechdr(struct rf_imgr *r, struct rechdr *h, struct rf_err *e)
{
	char what[64];

	snprintf(what, sizeof(what), "record %" PRIu64 " header", r->nrec);
	if (get(r, h, sizeof(*h), what, e) == -1)
		return -1;
	if (h->magic != REC_MAGIC ||
	    h->hdr_hash != rf_hash_seed(h, offsetof(struct rechdr, hdr_hash), r->nrec))
		return rf_errf(e, RF_EX_DATAERR, "image: record %" PRIu64 " at byte %" PRIu64
		    ": header checksum mismatch", r->nrec, r->off - sizeof(*h));
	if (h->type < REC_META || h->type > REC_PAGESZ ||
	    (h->type == REC_PAGESZ && r->version < 2))
		return rf_errf(e, RF_EX_DATAERR, "image: record %" PRIu64 ": unknown type %u",
		    r->nrec, h->type);
	return 0;
}

static int begin(struct rf_imgr *r, struct rf_proc *p, struct rf_err *e);

int
rf_imgr_start(struct rf_imgr *r, int fd, struct rf_proc *p, struct rf_err *e)
{
	*r = (struct rf_imgr){ .fd = fd };
	return begin(r, p, e);
}

int
rf_imgr_start_src(struct rf_imgr *r, ssize_t (*src)(void *, void *, size_t), void *ctx,
    struct rf_proc *p, struct rf_err *e)
{
	*r = (struct rf_imgr){ .fd = -1, .src = src, .srcctx = ctx };
	return begin(r, p, e);
}

static int
begin(struct rf_imgr *r, struct rf_proc *p, struct rf_err *e)
{
	struct filehdr fh;
	struct rechdr h;
	ssize_t got;
	char *json;

	got = readn(r, &fh, sizeof(fh));
	if (got == -1)
		return rf_errno(e, "image: read");
	if (got == 0)
		return rf_errf(e, RF_EX_NOINPUT, "image: empty input");
	r->off = got;
	if ((size_t)got < sizeof(fh))
		return rf_errf(e, RF_EX_DATAERR, "image: truncated in file header (%zd bytes)", got);
	if (memcmp(fh.magic, IMG_MAGIC, 8) != 0)
		return rf_errf(e, RF_EX_DATAERR, "image: not an rfork image (bad magic)");
	if (fh.hash != rf_hash(&fh, offsetof(struct filehdr, hash)) || fh.flags != 0)
		return rf_errf(e, RF_EX_DATAERR, "image: file header checksum mismatch");
	if (fh.version != RF_IMAGE_VERSION && fh.version != 1)
		return rf_errf(e, RF_EX_DATAERR, "image: format version %u, this program reads 1 "
		    "and %u", fh.version, RF_IMAGE_VERSION);
	r->version = fh.version;
	if (get_rechdr(r, &h, e) == -1)
		return -1;
	if (h.type != REC_META)
		return rf_errf(e, RF_EX_DATAERR, "image: first record is %s, not metadata",
		    rec_names[h.type]);
	if (h.len == 0 || h.len > RF_META_MAX)
		return rf_errf(e, RF_EX_DATAERR, "image: metadata length %" PRIu64 " out of range",
		    h.len);
	if ((json = malloc(h.len)) == NULL)
		return rf_errno(e, "image: metadata");
	if (get(r, json, h.len, "metadata", e) == -1) {
		free(json);
		return -1;
	}
	if (rf_hash(json, h.len) != h.data_hash) {
		free(json);
		return rf_errf(e, RF_EX_DATAERR, "image: metadata: checksum mismatch");
	}
	if (rf_meta_load(json, h.len, p, e) == -1) {
		free(json);
		return -1;
	}
	free(json);
	r->nrec = 1;
	r->p = p;
	if ((r->vma_pages = calloc(p->nvma + 1, sizeof(*r->vma_pages))) == NULL) {
		rf_proc_free(p);
		return rf_errno(e, "image");
	}
	return 0;
}

static int
finish(struct rf_imgr *r, const struct rechdr *h, struct rf_err *e)
{
	uint64_t end[2];
	size_t i;
	char extra;
	ssize_t got;

	if (h->len != sizeof(end))
		return rf_errf(e, RF_EX_DATAERR, "image: end record: bad length %" PRIu64, h->len);
	if (get(r, end, sizeof(end), "end record", e) == -1)
		return -1;
	if (rf_hash(end, sizeof(end)) != h->data_hash)
		return rf_errf(e, RF_EX_DATAERR, "image: end record: checksum mismatch");
	/* r->nrec counts the metadata and this end record too. */
	if (end[0] != r->nrec - 2 || end[1] != r->npages)
		return rf_errf(e, RF_EX_DATAERR, "image: end record counts %" PRIu64 " page records, %"
		    PRIu64 " pages; the stream had %" PRIu64 ", %" PRIu64, end[0], end[1],
		    r->nrec - 2, r->npages);
	for (i = 0; i < r->p->nvma; i++)
		if (r->vma_pages[i] != r->p->vmas[i].npages)
			return rf_errf(e, RF_EX_DATAERR, "image: mapping 0x%" PRIx64 "-0x%" PRIx64
			    ": %" PRIu64 " of its %" PRIu64 " pages in the stream",
			    r->p->vmas[i].start, r->p->vmas[i].end, r->vma_pages[i],
			    r->p->vmas[i].npages);
	got = readn(r, &extra, 1);
	if (got == -1)
		return rf_errno(e, "image: read");
	if (got == 1)
		return rf_errf(e, RF_EX_DATAERR, "image: data after the end record (byte %" PRIu64
		    ")", r->off);
	r->done = 1;
	return 0;
}

/* A LAZY record: its pages are noted, their data comes from a page source. */
static int
lazy(struct rf_imgr *r, const struct rechdr *h, uint64_t rec, struct rf_err *e)
{
	struct rf_range *nl;
	uint64_t len, n;
	ssize_t vi;

	if (!r->lazy_ok)
		return rf_errf(e, RF_EX_DATAERR, "image: record %" PRIu64 ": the pages at 0x%" PRIx64
		    " come later from a page source (a post-copy fork image): only rf-server's "
		    "fork restore can take it", rec, h->arg);
	if (h->len != sizeof(len))
		return rf_errf(e, RF_EX_DATAERR, "image: lazy record %" PRIu64 ": bad length %"
		    PRIu64, rec, h->len);
	if (get(r, &len, sizeof(len), "lazy record", e) == -1)
		return -1;
	if (rf_hash(&len, sizeof(len)) != h->data_hash)
		return rf_errf(e, RF_EX_DATAERR, "image: lazy record %" PRIu64 ": checksum mismatch",
		    rec);
	len = le64toh(len);
	n = len / RF_PAGE_SIZE;
	vi = rf_proc_find_vma(r->p, h->arg);
	if (len == 0 || len % RF_PAGE_SIZE || h->arg % RF_PAGE_SIZE || h->arg < r->next_addr ||
	    vi == -1 || h->arg + len > r->p->vmas[vi].end || h->arg + len < h->arg ||
	    (r->p->vmas[vi].flags & RF_VMA_SHARED) || r->p->vmas[vi].kind == RF_VMA_FILE)
		return rf_errf(e, RF_EX_DATAERR, "image: lazy record %" PRIu64 " at 0x%" PRIx64
		    ": outside its private anonymous mapping or out of order", rec, h->arg);
	if (r->vma_pages[vi] + n > r->p->vmas[vi].npages)
		return rf_errf(e, RF_EX_DATAERR, "image: lazy record %" PRIu64 " at 0x%" PRIx64
		    ": more pages than the metadata says", rec, h->arg);
	if (r->nlazy > 0 && r->lazy[r->nlazy - 1].addr + r->lazy[r->nlazy - 1].len == h->arg)
		r->lazy[r->nlazy - 1].len += len;
	else {
		if ((nl = reallocarray(r->lazy, r->nlazy + 1, sizeof(*nl))) == NULL)
			return rf_errno(e, "image");
		r->lazy = nl;
		r->lazy[r->nlazy++] = (struct rf_range){ h->arg, len };
	}
	r->vma_pages[vi] += n;
	r->npages += n;
	r->nlazypages += n;
	r->next_addr = h->arg + len;
	return 0;
}

/* Whether len bytes of pages at h->arg fit the mappings, in order. */
static int
place(struct rf_imgr *r, const struct rechdr *h, uint64_t len, uint64_t rec, const char *kind,
    struct rf_err *e)
{
	ssize_t vi = rf_proc_find_vma(r->p, h->arg);

	if (h->arg % RF_PAGE_SIZE || h->arg < r->next_addr || vi == -1 ||
	    h->arg + len > r->p->vmas[vi].end || h->arg + len < h->arg)
		return rf_errf(e, RF_EX_DATAERR, "image: %s record %" PRIu64 " at 0x%" PRIx64
		    ": outside its mappings or out of order", kind, rec, h->arg);
	if (r->vma_pages[vi] + len / RF_PAGE_SIZE > r->p->vmas[vi].npages)
		return rf_errf(e, RF_EX_DATAERR, "image: %s record %" PRIu64 " at 0x%" PRIx64
		    ": more pages than the metadata says", kind, rec, h->arg);
	return 0;
}

/* The pages of a record that passed place() and its checksum: count them. */
static int
took(struct rf_imgr *r, const struct rechdr *h, uint64_t n, uint64_t *addr, size_t *len)
{
	r->vma_pages[rf_proc_find_vma(r->p, h->arg)] += n / RF_PAGE_SIZE;
	r->npages += n / RF_PAGE_SIZE;
	r->next_addr = h->arg + n;
	*addr = h->arg;
	*len = n;
	return 1;
}

/*
 * A PAGESZ record: its checksum covers the payload as stored, so a damaged
 * one is refused before LZ4 reads it; LZ4's safe decoder never writes past
 * the length the record announces, and must fill exactly that.
 */
static int
unpack(struct rf_imgr *r, const struct rechdr *h, uint64_t rec, uint64_t *addr, void *buf,
    size_t cap, size_t *len, struct rf_err *e)
{
	uint64_t raw;
	char what[64];
	int n;

	if (h->len <= 8 || h->len > ZREC_MAX)
		return rf_errf(e, RF_EX_DATAERR, "image: compressed page record %" PRIu64
		    ": length %" PRIu64 " out of range", rec, h->len);
	if (r->zbuf == NULL && (r->zbuf = malloc(ZREC_MAX)) == NULL)
		return rf_errno(e, "image");
	snprintf(what, sizeof(what), "compressed page record %" PRIu64 " at 0x%" PRIx64, rec,
	    h->arg);
	if (get(r, r->zbuf, h->len, what, e) == -1)
		return -1;
	if (rf_hash(r->zbuf, h->len) != h->data_hash)
		return rf_errf(e, RF_EX_DATAERR, "image: %s: checksum mismatch", what);
	memcpy(&raw, r->zbuf, 8);
	raw = le64toh(raw);
	if (raw == 0 || raw % RF_PAGE_SIZE || raw > RF_PAGES_MAX || raw > cap)
		return rf_errf(e, RF_EX_DATAERR, "image: %s: length %" PRIu64 " out of range",
		    what, raw);
	if (place(r, h, raw, rec, "compressed page", e) == -1)
		return -1;
	n = LZ4_decompress_safe((const char *)r->zbuf + 8, buf, (int)(h->len - 8), (int)raw);
	if (n < 0 || (uint64_t)n != raw)
		return rf_errf(e, RF_EX_DATAERR, "image: %s: its LZ4 block does not give %" PRIu64
		    " bytes", what, raw);
	return took(r, h, raw, addr, len);
}

int
rf_imgr_pages(struct rf_imgr *r, uint64_t *addr, void *buf, size_t cap, size_t *len,
    struct rf_err *e)
{
	struct rechdr h;
	uint64_t rec;
	char what[64];

again:
	if (r->done)
		return 0;
	if (get_rechdr(r, &h, e) == -1)
		return -1;
	rec = r->nrec++;
	if (h.type == REC_END)
		return finish(r, &h, e) == -1 ? -1 : 0;
	if (h.type == REC_LAZY) {
		if (lazy(r, &h, rec, e) == -1)
			return -1;
		goto again;
	}
	if (h.type == REC_PAGESZ)
		return unpack(r, &h, rec, addr, buf, cap, len, e);
	if (h.type != REC_PAGES)
		return rf_errf(e, RF_EX_DATAERR, "image: record %" PRIu64 ": unexpected %s record",
		    rec, rec_names[h.type]);
	if (h.len == 0 || h.len % RF_PAGE_SIZE || h.len > RF_PAGES_MAX || h.len > cap)
		return rf_errf(e, RF_EX_DATAERR, "image: page record %" PRIu64 ": length %" PRIu64
		    " out of range", rec, h.len);
	if (place(r, &h, h.len, rec, "page", e) == -1)
		return -1;
	snprintf(what, sizeof(what), "page record %" PRIu64 " at 0x%" PRIx64, rec, h.arg);
	if (get(r, buf, h.len, what, e) == -1)
		return -1;
	if (rf_hash(buf, h.len) != h.data_hash)
		return rf_errf(e, RF_EX_DATAERR, "image: page record %" PRIu64 " at 0x%" PRIx64
		    ": checksum mismatch", rec, h.arg);
	return took(r, &h, h.len, addr, len);
}

void
rf_imgr_free(struct rf_imgr *r)
{
	free(r->vma_pages);
	r->vma_pages = NULL;
	free(r->lazy);
	r->lazy = NULL;
	r->nlazy = 0;
	free(r->zbuf);
	r->zbuf = NULL;
}
