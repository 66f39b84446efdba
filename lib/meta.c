/*
 * meta.c - struct rf_proc <-> JSON metadata.
 *
 * Dump: sorted keys, so fixtures diff cleanly.  Addresses, masks and
 * register values are "0x..." strings (they do not all fit a JSON integer).
 * Load: strict.  Every object's key set must be exactly the documented one,
 * every value of the documented type and range; the first problem is
 * reported with its path ("metadata: vmas[3].prot: ...").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <bsd/string.h>
#include "rf_image.h"

#define META_ERR(e, ...) rf_errf((e), RF_EX_DATAERR, "image: metadata: " __VA_ARGS__)

static const char *const rlimit_names[RF_NRLIMIT] = {
	"cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile",
	"memlock", "as", "locks", "sigpending", "msgqueue", "nice", "rtprio",
	"rttime",
};

/* user_regs_struct in its declaration order. */
#define REGS(X) X(r15) X(r14) X(r13) X(r12) X(rbp) X(rbx) X(r11) X(r10) \
	X(r9) X(r8) X(rax) X(rcx) X(rdx) X(rsi) X(rdi) X(orig_rax) X(rip) \
	X(cs) X(eflags) X(rsp) X(ss) X(fs_base) X(gs_base) X(ds) X(es) X(fs) X(gs)

#define MMFIELDS(X) X(start_code) X(end_code) X(start_data) X(end_data) \
	X(start_brk) X(brk) X(start_stack) X(arg_start) X(arg_end) \
	X(env_start) X(env_end)

/* ---- dump ----
 *
 * Written straight into one buffer, keys in sorted order, in jansson's
 * layout (compact, or indented with ": "), which this module used before:
 * in a remote fork rf-snap dumps some 15 KB here, and jansson's tree of a
 * malloc per value, its key sorting and its growing output took 0.3 ms.
 * Strings are bytes on Linux (file names, comm), JSON's are Unicode: a
 * byte that does not begin valid UTF-8 is written \uDCXX (XX the byte, as
 * Python's surrogateescape), which no UTF-8 text can hold, and the loader
 * reads it back as that byte: every name round-trips.
 */

struct jw {
	char *s;
	size_t n, cap;
	int indent, depth, bad;
	unsigned char more[8];	/* per depth: a member or element came before */
};

static int utf8_len(const unsigned char *, const unsigned char *);

static char *
jw_room(struct jw *w, size_t len)
{
	size_t cap;
	char *ns;

	if (w->bad)
		return NULL;
	if (w->cap - w->n < len) {
		for (cap = w->cap ? w->cap : 1024; cap - w->n < len; cap *= 2)
			;
		if ((ns = realloc(w->s, cap)) == NULL) {
			w->bad = 1;
			return NULL;
		}
		w->s = ns;
		w->cap = cap;
	}
	return w->s + w->n;
}

static void
jw_put(struct jw *w, const char *s, size_t len)
{
	char *d;

	if ((d = jw_room(w, len)) == NULL)
		return;
	memcpy(d, s, len);
	w->n += len;
}

static void
jw_newline(struct jw *w, int depth)
{
	char *d;

	if (w->indent == 0 || (d = jw_room(w, 1 + (size_t)depth * w->indent)) == NULL)
		return;
	*d = '\n';
	memset(d + 1, ' ', (size_t)depth * w->indent);
	w->n += 1 + (size_t)depth * w->indent;
}

/* Before a member or element: the comma and the line break. */
static void
jw_next(struct jw *w)
{
	if (w->more[w->depth])
		jw_put(w, ",", 1);
	w->more[w->depth] = 1;
	jw_newline(w, w->depth);
}

static void
jw_open(struct jw *w, char c)
{
	jw_put(w, &c, 1);
	if (++w->depth >= (int)sizeof(w->more)) {
		w->bad = 1;
		return;
	}
	w->more[w->depth] = 0;
}

static void
jw_close(struct jw *w, char c)
{
	if (w->depth <= 0 || w->depth >= (int)sizeof(w->more)) {
		w->bad = 1;
		return;
	}
	if (w->more[w->depth--])
		jw_newline(w, w->depth);
	jw_put(w, &c, 1);
}

static void
jw_str(struct jw *w, const char *str)
{
	static const char hexd[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)str, *end;
	size_t len;
	char *d;
	int k;

	if (str == NULL) {
		w->bad = 1;
		return;
	}
	len = strlen(str);
	end = p + len;
	/* at worst \u00XX for each byte, and the quotes */
	if ((d = jw_room(w, len * 6 + 2)) == NULL)
		return;
	*d++ = '"';
	while (p < end) {
		if (*p >= 0x80) {
			if ((k = utf8_len(p, end)) == 0) {
				memcpy(d, "\\uDC", 4);
				d[4] = hexd[*p >> 4];
				d[5] = hexd[*p & 15];
				d += 6;
				p++;
				continue;
			}
			while (k-- > 0)
				*d++ = (char)*p++;
			continue;
		}
		if (*p >= 0x20 && *p != '"' && *p != '\\') {
			*d++ = (char)*p++;
			continue;
		}
		*d++ = '\\';
		switch (*p) {
		case '"': *d++ = '"'; break;
		case '\\': *d++ = '\\'; break;
		case '\b': *d++ = 'b'; break;
		case '\f': *d++ = 'f'; break;
		case '\n': *d++ = 'n'; break;
		case '\r': *d++ = 'r'; break;
		case '\t': *d++ = 't'; break;
		default:
			memcpy(d, "u00", 3);
			d[3] = hexd[*p >> 4];
			d[4] = hexd[*p & 15];
			d += 5;
		}
		p++;
	}
	*d++ = '"';
	w->n = d - w->s;
}

static void
jw_key(struct jw *w, const char *k)
{
	jw_next(w);
	jw_put(w, "\"", 1);
	jw_put(w, k, strlen(k));
	jw_put(w, w->indent ? "\": " : "\":", w->indent ? 3 : 2);
}

static void
jw_int(struct jw *w, int64_t v)
{
	char buf[24], *d = buf + sizeof(buf);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	do
		*--d = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--d = '-';
	jw_put(w, d, buf + sizeof(buf) - d);
}

static void
jw_hex(struct jw *w, uint64_t v)
{
	char buf[24], *d = buf + sizeof(buf);

	*--d = '"';
	do
		*--d = "0123456789abcdef"[v & 15];
	while ((v >>= 4) != 0);
	*--d = 'x';
	*--d = '0';
	*--d = '"';
	jw_put(w, d, buf + sizeof(buf) - d);
}

static void
jw_bool(struct jw *w, int b)
{
	jw_put(w, b ? "true" : "false", b ? 4 : 5);
}

static void
jw_str_or_null(struct jw *w, const char *s)
{
	if (s == NULL)
		jw_put(w, "null", 4);
	else
		jw_str(w, s);
}

static void
jw_rlim(struct jw *w, uint64_t v)
{
	if (v == UINT64_MAX)
		jw_put(w, "\"unlimited\"", 11);
	else
		jw_int(w, (int64_t)v);
}

/* Standard alphabet, padded: as sodium_bin2base64 ORIGINAL wrote it. */
static void
jw_base64(struct jw *w, const uint8_t *b, size_t len)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;
	uint32_t v;
	char *d;

	if ((d = jw_room(w, (len + 2) / 3 * 4 + 2)) == NULL)
		return;
	*d++ = '"';
	for (i = 0; i + 2 < len; i += 3) {
		v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
		*d++ = tab[v >> 18];
		*d++ = tab[v >> 12 & 63];
		*d++ = tab[v >> 6 & 63];
		*d++ = tab[v & 63];
	}
	if (i < len) {
		v = (uint32_t)b[i] << 16 | (i + 1 < len ? (uint32_t)b[i + 1] << 8 : 0);
		*d++ = tab[v >> 18];
		*d++ = tab[v >> 12 & 63];
		*d++ = i + 1 < len ? tab[v >> 6 & 63] : '=';
		*d++ = '=';
	}
	*d++ = '"';
	w->n = d - w->s;
}

static void
prot_string(int prot, char out[4])
{
	out[0] = prot & PROT_READ ? 'r' : '-';
	out[1] = prot & PROT_WRITE ? 'w' : '-';
	out[2] = prot & PROT_EXEC ? 'x' : '-';
	out[3] = '\0';
}

static void
dump_vma(struct jw *w, const struct rf_vma *v)
{
	char prot[4];

	prot_string(v->prot, prot);
	jw_open(w, '{');
	jw_key(w, "end");
	jw_hex(w, v->end);
	jw_key(w, "file");
	if (v->kind == RF_VMA_FILE) {
		jw_open(w, '{');
		jw_key(w, "dev");
		jw_int(w, (int64_t)v->file.dev);
		jw_key(w, "ino");
		jw_int(w, (int64_t)v->file.ino);
		jw_key(w, "mtime_nsec");
		jw_int(w, (int64_t)v->file.mtime_nsec);
		jw_key(w, "mtime_sec");
		jw_int(w, (int64_t)v->file.mtime_sec);
		jw_key(w, "path");
		jw_str_or_null(w, v->file.path);
		jw_key(w, "size");
		jw_int(w, (int64_t)v->file.size);
		jw_close(w, '}');
	} else
		jw_put(w, "null", 4);
	jw_key(w, "file_pages");
	jw_bool(w, v->flags & RF_VMA_FILE_PAGES);
	jw_key(w, "growsdown");
	jw_bool(w, v->flags & RF_VMA_GROWSDOWN);
	jw_key(w, "kind");
	jw_str(w, rf_vma_kind_name(v->kind));
	jw_key(w, "name");
	jw_str_or_null(w, v->name);
	jw_key(w, "offset");
	jw_int(w, (int64_t)v->pgoff);
	jw_key(w, "pages");
	jw_int(w, (int64_t)v->npages);
	jw_key(w, "prot");
	jw_str(w, prot);
	jw_key(w, "shared");
	jw_bool(w, v->flags & RF_VMA_SHARED);
	jw_key(w, "start");
	jw_hex(w, v->start);
	jw_close(w, '}');
}

static void
dump_fd(struct jw *w, const struct rf_fd *f)
{
	jw_open(w, '{');
	jw_key(w, "cloexec");
	jw_bool(w, f->fdflags);
	jw_key(w, "dev");
	jw_int(w, (int64_t)f->dev);
	jw_key(w, "fd");
	jw_int(w, f->fd);
	jw_key(w, "flags");
	jw_int(w, f->flags);
	jw_key(w, "ino");
	jw_int(w, (int64_t)f->ino);
	jw_key(w, "kind");
	jw_str(w, rf_fd_kind_name(f->kind));
	jw_key(w, "path");
	jw_str_or_null(w, f->path);
	jw_key(w, "pos");
	jw_int(w, (int64_t)f->pos);
	jw_key(w, "rdev");
	jw_int(w, (int64_t)f->rdev);
	jw_close(w, '}');
}

/* rlimit_names in sorted order */
static const unsigned char rlimit_sorted[RF_NRLIMIT] = {
	9, 4, 0, 2, 1, 10, 8, 12, 13, 7, 6, 5, 14, 15, 11, 3,
};

char *
rf_meta_dump(const struct rf_proc *p, int indent)
{
	struct jw w = { .indent = indent };
	const struct rf_sigaction *sa;
	size_t i;
	int k;

	/* one allocation for the usual process */
	if (jw_room(&w, 8192 + p->nvma * 320 + p->nfd * 200 + p->xstate_len * 4 / 3 +
	    (size_t)p->ngroups * 12) == NULL)
		return NULL;
	jw_open(&w, '{');
	jw_key(&w, "arch");
	jw_str(&w, "x86_64");
	jw_key(&w, "auxv");
	jw_open(&w, '[');
	for (i = 0; i < p->auxv_len; i++) {
		jw_next(&w);
		jw_hex(&w, p->auxv[i]);
	}
	jw_close(&w, ']');
	jw_key(&w, "comm");
	jw_str_or_null(&w, p->comm);
	jw_key(&w, "creds");
	jw_open(&w, '{');
	jw_key(&w, "gid");
	jw_open(&w, '[');
	for (k = 0; k < 4; k++) {
		jw_next(&w);
		jw_int(&w, p->gid[k]);
	}
	jw_close(&w, ']');
	jw_key(&w, "groups");
	jw_open(&w, '[');
	for (i = 0; i < p->ngroups; i++) {
		jw_next(&w);
		jw_int(&w, p->groups[i]);
	}
	jw_close(&w, ']');
	jw_key(&w, "uid");
	jw_open(&w, '[');
	for (k = 0; k < 4; k++) {
		jw_next(&w);
		jw_int(&w, p->uid[k]);
	}
	jw_close(&w, ']');
	jw_close(&w, '}');
	jw_key(&w, "cwd");
	jw_str_or_null(&w, p->cwd);
	jw_key(&w, "exe");
	jw_str_or_null(&w, p->exe);
	jw_key(&w, "fds");
	jw_open(&w, '[');
	for (i = 0; i < p->nfd; i++) {
		jw_next(&w);
		dump_fd(&w, &p->fds[i]);
	}
	jw_close(&w, ']');
	jw_key(&w, "host");
	jw_str_or_null(&w, p->host);
	jw_key(&w, "kernel");
	jw_str_or_null(&w, p->kernel);
	jw_key(&w, "mm");
	jw_open(&w, '{');
#define X(f) jw_key(&w, #f); jw_hex(&w, p->mm.f);
	X(arg_end) X(arg_start) X(brk) X(end_code) X(end_data) X(env_end)
	X(env_start) X(start_brk) X(start_code) X(start_data) X(start_stack)
#undef X
	jw_close(&w, '}');
	jw_key(&w, "nice");
	jw_int(&w, p->nice);
	jw_key(&w, "personality");
	jw_int(&w, (int64_t)p->personality);
	jw_key(&w, "pid");
	jw_int(&w, p->pid);
	jw_key(&w, "regs");
	jw_open(&w, '{');
#define X(f) jw_key(&w, #f); jw_hex(&w, p->regs.f);
	X(cs) X(ds) X(eflags) X(es) X(fs) X(fs_base) X(gs) X(gs_base) X(orig_rax)
	X(r10) X(r11) X(r12) X(r13) X(r14) X(r15) X(r8) X(r9) X(rax) X(rbp) X(rbx)
	X(rcx) X(rdi) X(rdx) X(rip) X(rsi) X(rsp) X(ss)
#undef X
	jw_close(&w, '}');
	jw_key(&w, "rlimits");
	jw_open(&w, '{');
	for (k = 0; k < RF_NRLIMIT; k++) {
		jw_key(&w, rlimit_names[rlimit_sorted[k]]);
		jw_open(&w, '[');
		jw_next(&w);
		jw_rlim(&w, p->rlim_cur[rlimit_sorted[k]]);
		jw_next(&w);
		jw_rlim(&w, p->rlim_max[rlimit_sorted[k]]);
		jw_close(&w, ']');
	}
	jw_close(&w, '}');
	jw_key(&w, "rseq");
	jw_open(&w, '{');
	jw_key(&w, "flags");
	jw_int(&w, p->rseq_flags);
	jw_key(&w, "len");
	jw_int(&w, p->rseq_len);
	jw_key(&w, "ptr");
	jw_hex(&w, p->rseq_ptr);
	jw_key(&w, "sig");
	jw_hex(&w, p->rseq_sig);
	jw_close(&w, '}');
	jw_key(&w, "signals");
	jw_open(&w, '{');
	jw_key(&w, "actions");
	jw_open(&w, '[');
	for (i = 0; i < RF_NSIG; i++) {
		sa = &p->sigact[i];
		if (sa->handler == 0 && sa->flags == 0 && sa->mask == 0 && sa->restorer == 0)
			continue;
		jw_next(&w);
		jw_open(&w, '{');
		jw_key(&w, "flags");
		jw_hex(&w, sa->flags);
		jw_key(&w, "handler");
		jw_hex(&w, sa->handler);
		jw_key(&w, "mask");
		jw_hex(&w, sa->mask);
		jw_key(&w, "restorer");
		jw_hex(&w, sa->restorer);
		jw_key(&w, "sig");
		jw_int(&w, (int64_t)i + 1);
		jw_close(&w, '}');
	}
	jw_close(&w, ']');
	jw_key(&w, "altstack");
	jw_open(&w, '{');
	jw_key(&w, "flags");
	jw_int(&w, p->altstack_flags);
	jw_key(&w, "size");
	jw_int(&w, (int64_t)p->altstack_size);
	jw_key(&w, "sp");
	jw_hex(&w, p->altstack_sp);
	jw_close(&w, '}');
	jw_key(&w, "blocked");
	jw_hex(&w, p->sigblocked);
	jw_key(&w, "pending");
	jw_hex(&w, p->sigpending);
	jw_close(&w, '}');
	jw_key(&w, "umask");
	jw_int(&w, (int)p->umask);
	jw_key(&w, "version");
	jw_int(&w, RF_META_VERSION);
	jw_key(&w, "vmas");
	jw_open(&w, '[');
	for (i = 0; i < p->nvma; i++) {
		jw_next(&w);
		dump_vma(&w, &p->vmas[i]);
	}
	jw_close(&w, ']');
	jw_key(&w, "xstate");
	jw_open(&w, '{');
	jw_key(&w, "data");
	jw_base64(&w, p->xstate, p->xstate_len);
	jw_key(&w, "size");
	jw_int(&w, (int64_t)p->xstate_len);
	jw_key(&w, "xfeatures");
	jw_hex(&w, p->xfeatures);
	jw_close(&w, '}');
	jw_close(&w, '}');
	jw_put(&w, "", 1);
	if (w.bad || w.depth != 0) {
		free(w.s);
		errno = ENOMEM;
		return NULL;
	}
	return w.s;
}

/* ---- load ----
 *
 * Not through jansson: a remote fork's server parses the metadata in a
 * freshly forked process, where jansson's tree (a malloc per value, a hash
 * table per object) wrote some 56 heap pages, each a copy-on-write fault,
 * and its byte-at-a-time lexer ran at 40 MB/s.  This parser makes one flat
 * array of values; strings point into the input unless they hold escapes.
 * The grammar is RFC 8259 as jansson takes it: an object or array at the
 * top, no NUL in strings, valid UTF-8, integers that fit 64 bits.
 * Duplicate keys are caught where the key sets are checked.
 */

enum { J_NULL, J_FALSE, J_TRUE, J_INT, J_REAL, J_STR, J_ARR, J_OBJ };

struct jv {			/* 16 bytes: fewer pages to fault in */
	uint32_t t : 3;
	uint32_t size : 29;	/* values in this subtree, itself included */
	uint32_t n;		/* string bytes, array elements, object members */
	union {
		const char *s;
		int64_t i;
	};
};

/* Members follow an object as key, value; elements follow an array. */
#define J_NEXT(x) ((x) + (x)->size)
#define J_FOREACH(a, i, x) for ((i) = 0, (x) = (a) + 1; (i) < (a)->n; (i)++, (x) = J_NEXT(x))

struct jp {
	const char *p, *end, *buf;
	struct jv *v;
	size_t nv, cap;
	char *sbuf;		/* unescaped strings */
	size_t slen;
	const char *err, *errat;
};

static int
jp_fail(struct jp *j, const char *at, const char *msg)
{
	j->err = msg;
	j->errat = at;
	return -1;
}

static ssize_t
jp_new(struct jp *j, int t)
{
	if (j->nv == j->cap) {
		size_t cap = j->cap * 2;
		struct jv *v;
		if (cap >= 1u << 29 || (v = realloc(j->v, cap * sizeof(*v))) == NULL)
			return jp_fail(j, j->p, "out of memory");
		j->v = v;
		j->cap = cap;
	}
	j->v[j->nv] = (struct jv){ .t = t, .size = 1 };
	return j->nv++;
}

static void
jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r'))
		j->p++;
}

/* Bytes in the UTF-8 sequence at p, 0 if it is not one (overlong, surrogate, > U+10FFFF). */
static int
utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0], cp;
	int n, i;

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0)
		n = 2, cp = c & 0x1f;
	else if (c < 0xf0)
		n = 3, cp = c & 0x0f;
	else if (c < 0xf5)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (end - p < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static int
hex4(const char *p, const char *end, unsigned *out)
{
	unsigned v = 0;
	int i;

	if (end - p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9') v |= c - '0';
		else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
		else return -1;
	}
	*out = v;
	return 0;
}

/* At the opening quote. */
static int
jp_string(struct jp *j)
{
	const unsigned char *p = (const unsigned char *)j->p + 1, *end = (const unsigned char *)j->end;
	const unsigned char *s = p;
	ssize_t k;
	char *o;
	int n;

	while (p < end && *p != '"' && *p != '\\' && *p >= 0x20) {
		if (*p < 0x80)
			p++;
		else if ((n = utf8_len(p, end)) == 0)
			return jp_fail(j, (const char *)p, "invalid UTF-8 in a string");
		else
			p += n;
	}
	if ((k = jp_new(j, J_STR)) == -1)
		return -1;
	if (p < end && *p == '"') {
		j->v[k].s = (const char *)s;
		j->v[k].n = p - s;
		j->p = (const char *)p + 1;
		return 0;
	}
	/* Escapes: the decoded string goes to sbuf, never longer than its source. */
	if (j->sbuf == NULL && (j->sbuf = malloc(j->end - j->buf)) == NULL)
		return jp_fail(j, (const char *)p, "out of memory");
	o = j->sbuf + j->slen;
	memcpy(o, s, p - s);
	o += p - s;
	for (;;) {
		unsigned cp, lo;
		if (p >= end)
			return jp_fail(j, (const char *)p, "premature end of input in a string");
		if (*p == '"')
			break;
		if (*p < 0x20)
			return jp_fail(j, (const char *)p, "control character in a string");
		if (*p != '\\') {
			if ((n = utf8_len(p, end)) == 0)
				return jp_fail(j, (const char *)p, "invalid UTF-8 in a string");
			memcpy(o, p, n);
			o += n;
			p += n;
			continue;
		}
		if (++p >= end)
			return jp_fail(j, (const char *)p, "premature end of input in a string");
		switch (*p++) {
		case '"': *o++ = '"'; continue;
		case '\\': *o++ = '\\'; continue;
		case '/': *o++ = '/'; continue;
		case 'b': *o++ = '\b'; continue;
		case 'f': *o++ = '\f'; continue;
		case 'n': *o++ = '\n'; continue;
		case 'r': *o++ = '\r'; continue;
		case 't': *o++ = '\t'; continue;
		case 'u': break;
		default: return jp_fail(j, (const char *)p - 1, "invalid escape");
		}
		if (hex4((const char *)p, j->end, &cp) == -1)
			return jp_fail(j, (const char *)p, "invalid \\u escape");
		p += 4;
		/* a byte that was not UTF-8 (the dump's surrogateescape) */
		if (cp >= 0xdc80 && cp <= 0xdcff) {
			*o++ = cp & 0xff;
			continue;
		}
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return jp_fail(j, (const char *)p, "invalid Unicode escape (lone low surrogate)");
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (end - p < 2 || p[0] != '\\' || p[1] != 'u' ||
			    hex4((const char *)p + 2, j->end, &lo) == -1 || lo < 0xdc00 || lo > 0xdfff)
				return jp_fail(j, (const char *)p, "invalid Unicode escape (lone high surrogate)");
			p += 6;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		if (cp == 0)
			return jp_fail(j, (const char *)p, "\\u0000 is not allowed");
		if (cp < 0x80) {
			*o++ = cp;
		} else if (cp < 0x800) {
			*o++ = 0xc0 | cp >> 6;
			*o++ = 0x80 | (cp & 0x3f);
		} else if (cp < 0x10000) {
			*o++ = 0xe0 | cp >> 12;
			*o++ = 0x80 | (cp >> 6 & 0x3f);
			*o++ = 0x80 | (cp & 0x3f);
		} else {
			*o++ = 0xf0 | cp >> 18;
			*o++ = 0x80 | (cp >> 12 & 0x3f);
			*o++ = 0x80 | (cp >> 6 & 0x3f);
			*o++ = 0x80 | (cp & 0x3f);
		}
	}
	j->v[k].s = j->sbuf + j->slen;
	j->v[k].n = o - (j->sbuf + j->slen);
	j->slen += j->v[k].n;
	j->p = (const char *)p + 1;
	return 0;
}

static int
jp_number(struct jp *j)
{
	const char *p = j->p, *end = j->end, *start = p;
	uint64_t u = 0, lim;
	int neg = 0, real = 0, big = 0;
	ssize_t k;

	if (p < end && *p == '-')
		neg = 1, p++;
	lim = neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX;
	if (p >= end || *p < '0' || *p > '9')
		return jp_fail(j, start, "invalid number");
	if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')
		return jp_fail(j, start, "invalid number (leading zero)");
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		unsigned d = *p - '0';
		if (u > (lim - d) / 10)
			big = 1;
		else
			u = u * 10 + d;
	}
	if (p < end && *p == '.') {
		real = 1;
		if (++p >= end || *p < '0' || *p > '9')
			return jp_fail(j, start, "invalid number");
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		real = 1;
		if (++p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return jp_fail(j, start, "invalid number");
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (big && !real)
		return jp_fail(j, start, neg ? "too big negative integer" : "too big integer");
	if ((k = jp_new(j, real ? J_REAL : J_INT)) == -1)
		return -1;
	j->v[k].i = neg ? (int64_t)(0 - u) : (int64_t)u;
	j->p = p;
	return 0;
}

static int
jp_value(struct jp *j, int depth)
{
	static const struct { const char *s; int t; } lit[] = {
		{ "null", J_NULL }, { "false", J_FALSE }, { "true", J_TRUE },
	};
	const char *at;
	ssize_t k;
	size_t i;
	uint32_t n = 0;

	jp_ws(j);
	at = j->p;
	if (at >= j->end)
		return jp_fail(j, at, "premature end of input");
	if (*at == '"')
		return jp_string(j);
	if (*at == '-' || (*at >= '0' && *at <= '9'))
		return jp_number(j);
	if (*at != '{' && *at != '[') {
		for (i = 0; i < sizeof(lit) / sizeof(lit[0]); i++) {
			const char *p = at, *l = lit[i].s;
			while (*l && p < j->end && *p == *l)
				p++, l++;
			if (*l == '\0') {
				j->p = p;
				return jp_new(j, lit[i].t) == -1 ? -1 : 0;
			}
		}
		return jp_fail(j, at, "invalid token");
	}
	if (depth >= 32)
		return jp_fail(j, at, "too deeply nested");
	if ((k = jp_new(j, *at == '{' ? J_OBJ : J_ARR)) == -1)
		return -1;
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == (*at == '{' ? '}' : ']')) {
		j->p++;
		return 0;
	}
	for (;;) {
		if (*at == '{') {
			jp_ws(j);
			if (j->p >= j->end || *j->p != '"')
				return jp_fail(j, j->p, "string or '}' expected");
			if (jp_string(j) == -1)
				return -1;
			jp_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return jp_fail(j, j->p, "':' expected");
			j->p++;
		}
		if (jp_value(j, depth + 1) == -1)
			return -1;
		n++;
		jp_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == (*at == '{' ? '}' : ']'))
			break;
		return jp_fail(j, j->p, *at == '{' ? "',' or '}' expected" : "',' or ']' expected");
	}
	j->p++;
	j->v[k].n = n;
	j->v[k].size = j->nv - k;
	return 0;
}

/* The values of buf, or NULL with the error in e. */
static struct jv *
jparse(const char *buf, size_t len, char **sbuf, struct rf_err *e)
{
	struct jp j = { .p = buf, .end = buf + len, .buf = buf };
	const char *q;
	int line = 1, col = 1;

	*sbuf = NULL;
	j.cap = len / 8 + 64;
	if ((j.v = malloc(j.cap * sizeof(*j.v))) == NULL) {
		rf_errno(e, "metadata");
		return NULL;
	}
	jp_ws(&j);
	if (j.p >= j.end || (*j.p != '{' && *j.p != '['))
		jp_fail(&j, j.p, "'[' or '{' expected");
	else if (jp_value(&j, 0) == 0) {
		jp_ws(&j);
		if (j.p == j.end) {
			*sbuf = j.sbuf;
			return j.v;
		}
		jp_fail(&j, j.p, "end of file expected");
	}
	for (q = buf; q < j.errat; q++)
		if (*q == '\n')
			line++, col = 1;
		else
			col++;
	META_ERR(e, "line %d column %d: %s", line, col, j.err);
	free(j.v);
	free(j.sbuf);
	return NULL;
}

/* Keys are short: a loop, not memcmp, whose code page a fresh fork would fault in. */
static int
jstr_is(const struct jv *v, const char *s)
{
	uint32_t i;

	if (v == NULL || v->t != J_STR)
		return 0;
	for (i = 0; i < v->n; i++)
		if (v->s[i] != s[i])
			return 0;
	return s[i] == '\0';
}

/* Member k of object o, or NULL. */
static const struct jv *
jget(const struct jv *o, const char *k)
{
	const struct jv *x;
	uint32_t i;

	if (o == NULL || o->t != J_OBJ)
		return NULL;
	J_FOREACH(o, i, x) {
		if (jstr_is(x, k))
			return x + 1;
		x++;
	}
	return NULL;
}

/* Element i of array a, or NULL. */
static const struct jv *
jat(const struct jv *a, uint32_t i)
{
	const struct jv *x;
	uint32_t n;

	if (a == NULL || a->t != J_ARR || i >= a->n)
		return NULL;
	for (n = 0, x = a + 1; n < i; n++)
		x = J_NEXT(x);
	return x;
}

#define J_IS(v, type) ((v) != NULL && (v)->t == (type))

struct ctx {
	struct rf_err *e;
	char path[128];
	const struct jv *obj;		/* the object check_keys passed last, */
	const char *const *keys;	/* its key list */
	const struct jv *val[64];	/* and the value of each key */
};

/* c->path = "name[i]", without printf: a fresh fork would fault in its code. */
static void
path_idx(struct ctx *c, const char *name, uint32_t i)
{
	char d[10];
	size_t l = strlcpy(c->path, name, sizeof(c->path) - 16);
	int n = 0;

	do
		d[n++] = '0' + i % 10;
	while (i /= 10);
	c->path[l++] = '[';
	while (n)
		c->path[l++] = d[--n];
	c->path[l++] = ']';
	c->path[l] = '\0';
}

/* Exactly these keys (NULL-terminated list, at most 64), each once. */
static int
check_keys(struct ctx *c, const struct jv *o, const char *const keys[])
{
	const struct jv *k;
	uint64_t seen = 0;
	uint32_t m;
	size_t i;

	c->obj = NULL;
	if (!J_IS(o, J_OBJ))
		return META_ERR(c->e, "%s: expected an object", c->path);
	J_FOREACH(o, m, k) {
		for (i = 0; keys[i]; i++)
			if (jstr_is(k, keys[i]))
				break;
		if (keys[i] == NULL)
			return META_ERR(c->e, "%s: unknown key \"%.*s\"", c->path,
			    (int)(k->n < 40 ? k->n : 40), k->s);
		if (seen & 1ull << i)
			return META_ERR(c->e, "%s: duplicate key \"%s\"", c->path, keys[i]);
		seen |= 1ull << i;
		c->val[i] = ++k;
	}
	for (i = 0; keys[i]; i++)
		if (!(seen & 1ull << i))
			return META_ERR(c->e, "%s: missing \"%s\"", c->path, keys[i]);
	c->obj = o;
	c->keys = keys;
	return 0;
}

/*
 * Member k of o, from what check_keys found when k is the very string of its
 * list (as the literals of one file are), else by a search.
 */
static const struct jv *
cget(struct ctx *c, const struct jv *o, const char *k)
{
	size_t i;

	if (o != NULL && o == c->obj)
		for (i = 0; c->keys[i]; i++)
			if (c->keys[i] == k)
				return c->val[i];
	return jget(o, k);
}

static int
parse_hex(const struct jv *v, uint64_t *out)
{
	uint64_t x = 0;
	uint32_t i;

	if (!J_IS(v, J_STR) || v->n < 3 || v->n > 18 || v->s[0] != '0' || v->s[1] != 'x')
		return -1;
	for (i = 2; i < v->n; i++) {
		char c = v->s[i];
		int d;
		if (c >= '0' && c <= '9') d = c - '0';
		else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
		else return -1;
		x = x << 4 | d;
	}
	*out = x;
	return 0;
}

static int
get_hex(struct ctx *c, const struct jv *o, const char *k, uint64_t *out)
{
	if (parse_hex(cget(c, o, k), out) == -1)
		return META_ERR(c->e, "%s.%s: expected a \"0x...\" hex string", c->path, k);
	return 0;
}

static int
get_int(struct ctx *c, const struct jv *o, const char *k, int64_t min, int64_t max, int64_t *out)
{
	const struct jv *v = cget(c, o, k);

	if (!J_IS(v, J_INT))
		return META_ERR(c->e, "%s.%s: expected an integer", c->path, k);
	*out = v->i;
	if (*out < min || *out > max)
		return META_ERR(c->e, "%s.%s: %" PRId64 " out of range", c->path, k, *out);
	return 0;
}

static int
get_bool(struct ctx *c, const struct jv *o, const char *k, int *out)
{
	const struct jv *v = cget(c, o, k);

	*out = 0;
	if (!J_IS(v, J_TRUE) && !J_IS(v, J_FALSE))
		return META_ERR(c->e, "%s.%s: expected true or false", c->path, k);
	*out = v->t == J_TRUE;
	return 0;
}

/* String (copied) or null (NULL) when nullable.  The parser let no NUL in. */
static int
get_str(struct ctx *c, const struct jv *o, const char *k, int nullable, char **out)
{
	const struct jv *v = cget(c, o, k);

	*out = NULL;
	if (nullable && J_IS(v, J_NULL))
		return 0;
	if (!J_IS(v, J_STR) || v->n > 4096)
		return META_ERR(c->e, "%s.%s: expected a string", c->path, k);
	if ((*out = malloc(v->n + 1)) == NULL)
		return rf_errno(c->e, "metadata");
	memcpy(*out, v->s, v->n);
	(*out)[v->n] = '\0';
	return 0;
}

/* A kind name (NUL-terminated in buf), or "" when it cannot be one. */
static const char *
kind_name(const struct jv *v, char buf[32])
{
	buf[0] = '\0';
	if (J_IS(v, J_STR) && v->n < 32) {
		memcpy(buf, v->s, v->n);
		buf[v->n] = '\0';
	}
	return buf;
}

#define GET_INT(c, o, k, lo, hi, dst) do {			\
		int64_t v_;					\
		if (get_int(c, o, k, lo, hi, &v_) == -1)	\
			return -1;				\
		(dst) = v_;					\
	} while (0)

static int
load_rlimits(struct ctx *c, const struct jv *o, struct rf_proc *p)
{
	const char *keys[RF_NRLIMIT + 1];
	size_t i, j;

	memcpy(keys, rlimit_names, sizeof(rlimit_names));
	keys[RF_NRLIMIT] = NULL;
	strlcpy(c->path, "rlimits", sizeof(c->path));
	if (check_keys(c, o, keys) == -1)
		return -1;
	for (i = 0; i < RF_NRLIMIT; i++) {
		const struct jv *pair = jget(o, rlimit_names[i]);
		uint64_t v[2];
		if (!J_IS(pair, J_ARR) || pair->n != 2)
			return META_ERR(c->e, "rlimits.%s: expected [cur, max]", rlimit_names[i]);
		for (j = 0; j < 2; j++) {
			const struct jv *x = jat(pair, j);
			if (jstr_is(x, "unlimited"))
				v[j] = UINT64_MAX;
			else if (J_IS(x, J_INT) && x->i >= 0)
				v[j] = x->i;
			else
				return META_ERR(c->e, "rlimits.%s: expected a count or \"unlimited\"",
				    rlimit_names[i]);
		}
		if (v[0] > v[1])
			return META_ERR(c->e, "rlimits.%s: soft limit above hard limit", rlimit_names[i]);
		p->rlim_cur[i] = v[0];
		p->rlim_max[i] = v[1];
	}
	return 0;
}

static int
is_id(const struct jv *x)
{
	return J_IS(x, J_INT) && x->i >= 0 && x->i <= UINT32_MAX - 1;
}

static int
load_id4(struct ctx *c, const struct jv *o, const char *k, uint32_t out[4])
{
	const struct jv *a = jget(o, k), *x;
	uint32_t i;

	if (!J_IS(a, J_ARR) || a->n != 4)
		return META_ERR(c->e, "creds.%s: expected [real, effective, saved, fs]", k);
	J_FOREACH(a, i, x) {
		if (!is_id(x))
			return META_ERR(c->e, "creds.%s[%u]: expected an id", k, i);
		out[i] = x->i;
	}
	return 0;
}

static int
load_creds(struct ctx *c, const struct jv *o, struct rf_proc *p)
{
	static const char *const keys[] = { "uid", "gid", "groups", NULL };
	const struct jv *g, *x;
	uint32_t i;

	strlcpy(c->path, "creds", sizeof(c->path));
	if (check_keys(c, o, keys) == -1 || load_id4(c, o, "uid", p->uid) == -1 ||
	    load_id4(c, o, "gid", p->gid) == -1)
		return -1;
	g = jget(o, "groups");
	if (!J_IS(g, J_ARR) || g->n > 65536)
		return META_ERR(c->e, "creds.groups: expected an array of ids");
	p->ngroups = g->n;
	if (p->ngroups && (p->groups = calloc(p->ngroups, sizeof(*p->groups))) == NULL)
		return rf_errno(c->e, "metadata");
	J_FOREACH(g, i, x) {
		if (!is_id(x))
			return META_ERR(c->e, "creds.groups[%u]: expected an id", i);
		p->groups[i] = x->i;
	}
	return 0;
}

static int
load_signals(struct ctx *c, const struct jv *o, struct rf_proc *p)
{
	static const char *const keys[] = { "blocked", "pending", "actions", "altstack", NULL };
	static const char *const akeys[] = { "sig", "handler", "flags", "restorer", "mask", NULL };
	static const char *const skeys[] = { "sp", "size", "flags", NULL };
	const struct jv *a, *x;
	uint32_t i;
	int sig;

	strlcpy(c->path, "signals", sizeof(c->path));
	if (check_keys(c, o, keys) == -1 || get_hex(c, o, "blocked", &p->sigblocked) == -1 ||
	    get_hex(c, o, "pending", &p->sigpending) == -1)
		return -1;
	x = jget(o, "altstack");
	strlcpy(c->path, "signals.altstack", sizeof(c->path));
	if (check_keys(c, x, skeys) == -1 || get_hex(c, x, "sp", &p->altstack_sp) == -1)
		return -1;
	GET_INT(c, x, "size", 0, INT64_MAX, p->altstack_size);
	GET_INT(c, x, "flags", 0, INT32_MAX, p->altstack_flags);
	a = jget(o, "actions");
	if (!J_IS(a, J_ARR) || a->n > RF_NSIG)
		return META_ERR(c->e, "signals.actions: expected an array of at most %d", RF_NSIG);
	J_FOREACH(a, i, x) {
		struct rf_sigaction *sa;
		path_idx(c, "signals.actions", i);
		if (check_keys(c, x, akeys) == -1)
			return -1;
		GET_INT(c, x, "sig", 1, RF_NSIG, sig);
		sa = &p->sigact[sig - 1];
		if (get_hex(c, x, "handler", &sa->handler) == -1 ||
		    get_hex(c, x, "flags", &sa->flags) == -1 ||
		    get_hex(c, x, "restorer", &sa->restorer) == -1 ||
		    get_hex(c, x, "mask", &sa->mask) == -1)
			return -1;
	}
	return 0;
}

static int
load_vma(struct ctx *c, const struct jv *o, struct rf_vma *v)
{
	static const char *const keys[] = { "start", "end", "prot", "shared", "growsdown",
	    "file_pages", "kind", "name", "file", "offset", "pages", NULL };
	static const char *const fkeys[] = { "path", "dev", "ino", "size", "mtime_sec",
	    "mtime_nsec", NULL };
	const struct jv *f, *pr;
	const char *prot;
	char kbuf[32];
	int b, k;

	if (check_keys(c, o, keys) == -1 || get_hex(c, o, "start", &v->start) == -1 ||
	    get_hex(c, o, "end", &v->end) == -1)
		return -1;
	pr = jget(o, "prot");
	prot = J_IS(pr, J_STR) ? pr->s : NULL;
	if (prot == NULL || pr->n != 3 || (prot[0] != 'r' && prot[0] != '-') ||
	    (prot[1] != 'w' && prot[1] != '-') || (prot[2] != 'x' && prot[2] != '-'))
		return META_ERR(c->e, "%s.prot: expected a string like \"r-x\"", c->path);
	v->prot = (prot[0] == 'r' ? PROT_READ : 0) | (prot[1] == 'w' ? PROT_WRITE : 0) |
	    (prot[2] == 'x' ? PROT_EXEC : 0);
	if (get_bool(c, o, "shared", &b) == -1)
		return -1;
	v->flags |= b ? RF_VMA_SHARED : 0;
	if (get_bool(c, o, "growsdown", &b) == -1)
		return -1;
	v->flags |= b ? RF_VMA_GROWSDOWN : 0;
	if (get_bool(c, o, "file_pages", &b) == -1)
		return -1;
	v->flags |= b ? RF_VMA_FILE_PAGES : 0;
	if ((k = rf_vma_kind_parse(kind_name(jget(o, "kind"), kbuf))) == -1)
		return META_ERR(c->e, "%s.kind: unknown kind", c->path);
	v->kind = k;
	if (get_str(c, o, "name", 1, &v->name) == -1)
		return -1;
	GET_INT(c, o, "offset", 0, INT64_MAX, v->pgoff);
	GET_INT(c, o, "pages", 0, INT64_MAX, v->npages);
	f = jget(o, "file");
	if (v->kind != RF_VMA_FILE) {
		if (!J_IS(f, J_NULL))
			return META_ERR(c->e, "%s.file: only a file mapping has a file", c->path);
		return 0;
	}
	strlcat(c->path, ".file", sizeof(c->path));
	if (check_keys(c, f, fkeys) == -1 || get_str(c, f, "path", 0, &v->file.path) == -1)
		return -1;
	GET_INT(c, f, "dev", 0, INT64_MAX, v->file.dev);
	GET_INT(c, f, "ino", 0, INT64_MAX, v->file.ino);
	GET_INT(c, f, "size", 0, INT64_MAX, v->file.size);
	GET_INT(c, f, "mtime_sec", INT64_MIN, INT64_MAX, v->file.mtime_sec);
	GET_INT(c, f, "mtime_nsec", 0, 999999999, v->file.mtime_nsec);
	return 0;
}

static int
load_fd(struct ctx *c, const struct jv *o, struct rf_fd *f)
{
	static const char *const keys[] = { "fd", "cloexec", "flags", "kind", "path", "pos",
	    "dev", "ino", "rdev", NULL };
	char kbuf[32];
	int k;

	if (check_keys(c, o, keys) == -1)
		return -1;
	GET_INT(c, o, "fd", 0, (1 << 20), f->fd);
	if (get_bool(c, o, "cloexec", &f->fdflags) == -1)
		return -1;
	GET_INT(c, o, "flags", 0, INT32_MAX, f->flags);
	if ((k = rf_fd_kind_parse(kind_name(jget(o, "kind"), kbuf))) == -1)
		return META_ERR(c->e, "%s.kind: unknown kind", c->path);
	f->kind = k;
	if (get_str(c, o, "path", 1, &f->path) == -1)
		return -1;
	GET_INT(c, o, "pos", 0, INT64_MAX, f->pos);
	GET_INT(c, o, "dev", 0, INT64_MAX, f->dev);
	GET_INT(c, o, "ino", 0, INT64_MAX, f->ino);
	GET_INT(c, o, "rdev", 0, INT64_MAX, f->rdev);
	return 0;
}

static int
b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z') return ch - 'A';
	if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9') return ch - '0' + 52;
	if (ch == '+') return 62;
	if (ch == '/') return 63;
	return -1;
}

/*
 * Exactly len bytes of padded base64 (RFC 4648 section 4), as strict as
 * sodium_base642bin: no whitespace, no stray bits.  That one is constant
 * time, and was an eighth of the whole parse.
 */
static int
b64_decode(uint8_t *out, size_t len, const char *s, size_t n)
{
	uint32_t acc = 0;
	size_t i, o = 0;
	int bits = 0, pad = 0, d;

	if (n % 4)
		return -1;
	while (n && s[n - 1] == '=' && pad < 2)
		n--, pad++;
	for (i = 0; i < n; i++) {
		if ((d = b64_value(s[i])) == -1)
			return -1;
		acc = acc << 6 | d;
		if ((bits += 6) >= 8) {
			bits -= 8;
			if (o == len)
				return -1;
			out[o++] = acc >> bits;
			acc &= (1u << bits) - 1;
		}
	}
	return acc == 0 && o == len ? 0 : -1;
}

static int
load_xstate(struct ctx *c, const struct jv *o, struct rf_proc *p)
{
	static const char *const keys[] = { "size", "xfeatures", "data", NULL };
	const struct jv *b64;

	strlcpy(c->path, "xstate", sizeof(c->path));
	if (check_keys(c, o, keys) == -1 || get_hex(c, o, "xfeatures", &p->xfeatures) == -1)
		return -1;
	GET_INT(c, o, "size", 0, RF_XSTATE_MAX, p->xstate_len);
	b64 = jget(o, "data");
	if (!J_IS(b64, J_STR))
		return META_ERR(c->e, "xstate.data: expected a base64 string");
	if (p->xstate_len && (p->xstate = malloc(p->xstate_len)) == NULL)
		return rf_errno(c->e, "metadata");
	if (b64_decode(p->xstate, p->xstate_len, b64->s, b64->n) == -1)
		return META_ERR(c->e, "xstate.data: not %zu bytes of base64", p->xstate_len);
	return 0;
}

/* Consistency of the whole: what the reader and rf-restore rely on. */
static int
check_layout(struct ctx *c, const struct rf_proc *p)
{
	size_t i;

	for (i = 0; i < p->nvma; i++) {
		const struct rf_vma *v = &p->vmas[i];
		if (v->start % RF_PAGE_SIZE || v->end % RF_PAGE_SIZE || v->start >= v->end ||
		    v->pgoff % RF_PAGE_SIZE)
			return META_ERR(c->e, "vmas[%zu]: range 0x%" PRIx64 "-0x%" PRIx64
			    " not page aligned or empty", i, v->start, v->end);
		if (v->end > 0x800000000000ull && v->kind != RF_VMA_VSYSCALL)
			return META_ERR(c->e, "vmas[%zu]: 0x%" PRIx64 " beyond user space", i, v->end);
		if (i > 0 && v->start < p->vmas[i - 1].end)
			return META_ERR(c->e, "vmas[%zu]: 0x%" PRIx64 " overlaps or precedes the "
			    "mapping before it", i, v->start);
		if (v->npages > (v->end - v->start) / RF_PAGE_SIZE)
			return META_ERR(c->e, "vmas[%zu]: %" PRIu64 " pages do not fit 0x%" PRIx64
			    "-0x%" PRIx64, i, v->npages, v->start, v->end);
		if (v->npages && (v->kind == RF_VMA_VDSO || v->kind == RF_VMA_VVAR ||
		    v->kind == RF_VMA_VVAR_VCLOCK || v->kind == RF_VMA_VSYSCALL))
			return META_ERR(c->e, "vmas[%zu]: a kernel mapping cannot carry pages", i);
	}
	return 0;
}

int
rf_meta_load(const char *buf, size_t len, struct rf_proc *p, struct rf_err *e)
{
	static const char *const keys[] = { "version", "arch", "pid", "comm", "host", "kernel",
	    "exe", "cwd", "umask", "nice", "personality", "rlimits", "creds", "signals", "rseq",
	    "mm", "auxv", "regs", "xstate", "vmas", "fds", NULL };
	static const char *const rkeys[] = { "ptr", "len", "sig", "flags", NULL };
	static const char *const mmkeys[] = {
#define X(f) #f,
	    MMFIELDS(X)
#undef X
	    NULL };
	static const char *const regkeys[] = {
#define X(f) #f,
	    REGS(X)
#undef X
	    NULL };
	struct ctx c = { .e = e };
	struct jv *root;
	const struct jv *o, *x;
	char *sbuf;
	uint64_t u;
	uint32_t i;
	int ret = -1;

	*p = (struct rf_proc){0};
	if ((root = jparse(buf, len, &sbuf, e)) == NULL)
		return -1;
	strlcpy(c.path, "top level", sizeof(c.path));
	o = jget(root, "version");
	if (J_IS(o, J_INT) && o->i != RF_META_VERSION) {
		META_ERR(e, "format version %" PRId64 ", this program reads %d", o->i,
		    RF_META_VERSION);
		goto out;
	}
	if (check_keys(&c, root, keys) == -1)
		goto out;
	if (!jstr_is(jget(root, "arch"), "x86_64")) {
		META_ERR(e, "arch: only x86_64 images are supported");
		goto out;
	}
	strlcpy(c.path, "", sizeof(c.path));
#define TRY(x) do { if ((x) == -1) goto out; } while (0)
#define INT(k, lo, hi, dst) do { int64_t v_; \
	TRY(get_int(&c, root, k, lo, hi, &v_)); (dst) = v_; } while (0)
	INT("version", 0, INT32_MAX, i);
	INT("pid", 1, INT32_MAX, p->pid);
	TRY(get_str(&c, root, "comm", 1, &p->comm));
	TRY(get_str(&c, root, "host", 1, &p->host));
	TRY(get_str(&c, root, "kernel", 1, &p->kernel));
	TRY(get_str(&c, root, "exe", 1, &p->exe));
	TRY(get_str(&c, root, "cwd", 1, &p->cwd));
	INT("umask", 0, 0777, p->umask);
	INT("nice", -20, 19, p->nice);
	INT("personality", 0, UINT32_MAX, p->personality);
	TRY(load_rlimits(&c, jget(root, "rlimits"), p));
	TRY(load_creds(&c, jget(root, "creds"), p));
	TRY(load_signals(&c, jget(root, "signals"), p));

	o = jget(root, "rseq");
	strlcpy(c.path, "rseq", sizeof(c.path));
	TRY(check_keys(&c, o, rkeys));
	TRY(get_hex(&c, o, "ptr", &p->rseq_ptr));
	TRY(get_hex(&c, o, "sig", &u));
	if (u > UINT32_MAX) {
		META_ERR(e, "rseq.sig: out of range");
		goto out;
	}
	p->rseq_sig = u;
	{ int64_t v_; TRY(get_int(&c, o, "len", 0, 4096, &v_)); p->rseq_len = v_;
	  TRY(get_int(&c, o, "flags", 0, UINT32_MAX, &v_)); p->rseq_flags = v_; }

	o = jget(root, "mm");
	strlcpy(c.path, "mm", sizeof(c.path));
	TRY(check_keys(&c, o, mmkeys));
#define X(f) TRY(get_hex(&c, o, #f, &p->mm.f));
	MMFIELDS(X)
#undef X

	o = jget(root, "regs");
	strlcpy(c.path, "regs", sizeof(c.path));
	TRY(check_keys(&c, o, regkeys));
#define X(f) TRY(get_hex(&c, o, #f, &u)); p->regs.f = u;
	REGS(X)
#undef X

	o = jget(root, "auxv");
	if (!J_IS(o, J_ARR) || o->n > RF_AUXV_MAX || o->n % 2) {
		META_ERR(e, "auxv: expected an even array of at most %d words", RF_AUXV_MAX);
		goto out;
	}
	J_FOREACH(o, i, x) {
		if (parse_hex(x, &p->auxv[i]) == -1) {
			META_ERR(e, "auxv[%u]: expected a \"0x...\" hex string", i);
			goto out;
		}
	}
	p->auxv_len = o->n;

	TRY(load_xstate(&c, jget(root, "xstate"), p));

	o = jget(root, "vmas");
	if (!J_IS(o, J_ARR) || o->n > 1000000) {
		META_ERR(e, "vmas: expected an array");
		goto out;
	}
	p->nvma = o->n;
	if (p->nvma && (p->vmas = calloc(p->nvma, sizeof(*p->vmas))) == NULL) {
		rf_errno(e, "metadata");
		goto out;
	}
	J_FOREACH(o, i, x) {
		path_idx(&c, "vmas", i);
		TRY(load_vma(&c, x, &p->vmas[i]));
	}

	o = jget(root, "fds");
	if (!J_IS(o, J_ARR) || o->n > (1 << 20)) {
		META_ERR(e, "fds: expected an array");
		goto out;
	}
	p->nfd = o->n;
	if (p->nfd && (p->fds = calloc(p->nfd, sizeof(*p->fds))) == NULL) {
		rf_errno(e, "metadata");
		goto out;
	}
	J_FOREACH(o, i, x) {
		path_idx(&c, "fds", i);
		TRY(load_fd(&c, x, &p->fds[i]));
		if (i > 0 && p->fds[i].fd <= p->fds[i - 1].fd) {
			META_ERR(e, "fds[%u]: fd %d out of order or repeated", i, p->fds[i].fd);
			goto out;
		}
	}
	TRY(check_layout(&c, p));
	ret = 0;
#undef TRY
#undef INT
out:
	free(root);
	free(sbuf);
	if (ret == -1)
		rf_proc_free(p);
	return ret;
}
