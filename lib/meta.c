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
#include <jansson.h>
#include <sodium.h>
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

/* ---- dump ---- */

static json_t *
hex(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	return json_string(buf);
}

static json_t *
str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *
rlim_value(uint64_t v)
{
	return v == UINT64_MAX ? json_string("unlimited") : json_integer((json_int_t)v);
}

static void
prot_string(int prot, char out[4])
{
	out[0] = prot & PROT_READ ? 'r' : '-';
	out[1] = prot & PROT_WRITE ? 'w' : '-';
	out[2] = prot & PROT_EXEC ? 'x' : '-';
	out[3] = '\0';
}

static json_t *
dump_vma(const struct rf_vma *v)
{
	char prot[4];
	json_t *file = json_null();

	prot_string(v->prot, prot);
	if (v->kind == RF_VMA_FILE)
		file = json_pack("{s:s?, s:I, s:I, s:I, s:I, s:I}",
		    "path", v->file.path, "dev", (json_int_t)v->file.dev,
		    "ino", (json_int_t)v->file.ino, "size", (json_int_t)v->file.size,
		    "mtime_sec", (json_int_t)v->file.mtime_sec,
		    "mtime_nsec", (json_int_t)v->file.mtime_nsec);
	return json_pack("{s:o, s:o, s:s, s:b, s:b, s:b, s:s, s:o, s:o, s:I, s:I}",
	    "start", hex(v->start), "end", hex(v->end), "prot", prot,
	    "shared", !!(v->flags & RF_VMA_SHARED),
	    "growsdown", !!(v->flags & RF_VMA_GROWSDOWN),
	    "file_pages", !!(v->flags & RF_VMA_FILE_PAGES),
	    "kind", rf_vma_kind_name(v->kind), "name", str_or_null(v->name),
	    "file", file, "offset", (json_int_t)v->pgoff, "pages", (json_int_t)v->npages);
}

static json_t *
dump_fd(const struct rf_fd *f)
{
	return json_pack("{s:i, s:b, s:i, s:s, s:o, s:I, s:I, s:I, s:I}",
	    "fd", f->fd, "cloexec", !!f->fdflags, "flags", f->flags,
	    "kind", rf_fd_kind_name(f->kind), "path", str_or_null(f->path),
	    "pos", (json_int_t)f->pos, "dev", (json_int_t)f->dev,
	    "ino", (json_int_t)f->ino, "rdev", (json_int_t)f->rdev);
}

static json_t *
dump_xstate(const struct rf_proc *p)
{
	size_t blen = sodium_base64_ENCODED_LEN(p->xstate_len, sodium_base64_VARIANT_ORIGINAL);
	char *b = malloc(blen);
	json_t *j;

	if (b == NULL)
		return NULL;
	sodium_bin2base64(b, blen, p->xstate, p->xstate_len, sodium_base64_VARIANT_ORIGINAL);
	j = json_pack("{s:I, s:o, s:s}", "size", (json_int_t)p->xstate_len,
	    "xfeatures", hex(p->xfeatures), "data", b);
	free(b);
	return j;
}

char *
rf_meta_dump(const struct rf_proc *p, int indent)
{
	json_t *root, *a, *o;
	char *s;
	size_t i;
	int ok = 1;

	root = json_pack("{s:i, s:s, s:i, s:s?, s:s?, s:s?, s:s?, s:s?, s:i, s:i, s:I}",
	    "version", RF_IMAGE_VERSION, "arch", "x86_64", "pid", p->pid,
	    "comm", p->comm, "host", p->host, "kernel", p->kernel, "exe", p->exe,
	    "cwd", p->cwd, "umask", (int)p->umask, "nice", p->nice,
	    "personality", (json_int_t)p->personality);
	if (root == NULL)
		return NULL;

	o = json_object();
	for (i = 0; i < RF_NRLIMIT; i++)
		ok &= !json_object_set_new(o, rlimit_names[i], json_pack("[o, o]",
		    rlim_value(p->rlim_cur[i]), rlim_value(p->rlim_max[i])));
	ok &= !json_object_set_new(root, "rlimits", o);

	a = json_array();
	for (i = 0; i < p->ngroups; i++)
		ok &= !json_array_append_new(a, json_integer(p->groups[i]));
	ok &= !json_object_set_new(root, "creds", json_pack("{s:[I,I,I,I], s:[I,I,I,I], s:o}",
	    "uid", (json_int_t)p->uid[0], (json_int_t)p->uid[1], (json_int_t)p->uid[2],
	    (json_int_t)p->uid[3], "gid", (json_int_t)p->gid[0], (json_int_t)p->gid[1],
	    (json_int_t)p->gid[2], (json_int_t)p->gid[3], "groups", a));

	a = json_array();
	for (i = 0; i < RF_NSIG; i++) {
		const struct rf_sigaction *sa = &p->sigact[i];
		if (sa->handler == 0 && sa->flags == 0 && sa->mask == 0 && sa->restorer == 0)
			continue;
		ok &= !json_array_append_new(a, json_pack("{s:i, s:o, s:o, s:o, s:o}",
		    "sig", (int)i + 1, "handler", hex(sa->handler), "flags", hex(sa->flags),
		    "restorer", hex(sa->restorer), "mask", hex(sa->mask)));
	}
	ok &= !json_object_set_new(root, "signals", json_pack(
	    "{s:o, s:o, s:o, s:{s:o, s:I, s:i}}",
	    "blocked", hex(p->sigblocked), "pending", hex(p->sigpending), "actions", a,
	    "altstack", "sp", hex(p->altstack_sp), "size", (json_int_t)p->altstack_size,
	    "flags", p->altstack_flags));

	ok &= !json_object_set_new(root, "rseq", json_pack("{s:o, s:I, s:o, s:I}",
	    "ptr", hex(p->rseq_ptr), "len", (json_int_t)p->rseq_len,
	    "sig", hex(p->rseq_sig), "flags", (json_int_t)p->rseq_flags));

	o = json_object();
#define X(f) ok &= !json_object_set_new(o, #f, hex(p->mm.f));
	MMFIELDS(X)
#undef X
	ok &= !json_object_set_new(root, "mm", o);

	a = json_array();
	for (i = 0; i < p->auxv_len; i++)
		ok &= !json_array_append_new(a, hex(p->auxv[i]));
	ok &= !json_object_set_new(root, "auxv", a);

	o = json_object();
#define X(f) ok &= !json_object_set_new(o, #f, hex(p->regs.f));
	REGS(X)
#undef X
	ok &= !json_object_set_new(root, "regs", o);
	ok &= !json_object_set_new(root, "xstate", dump_xstate(p));

	a = json_array();
	for (i = 0; i < p->nvma; i++)
		ok &= !json_array_append_new(a, dump_vma(&p->vmas[i]));
	ok &= !json_object_set_new(root, "vmas", a);

	a = json_array();
	for (i = 0; i < p->nfd; i++)
		ok &= !json_array_append_new(a, dump_fd(&p->fds[i]));
	ok &= !json_object_set_new(root, "fds", a);

	s = ok ? json_dumps(root, JSON_SORT_KEYS | JSON_INDENT(indent) |
	    (indent ? 0 : JSON_COMPACT)) : NULL;
	json_decref(root);
	if (s == NULL)
		errno = ENOMEM;
	return s;
}

/* ---- load ---- */

struct ctx {
	struct rf_err *e;
	char path[128];
};

/* Exactly these keys (NULL-terminated list). */
static int
check_keys(struct ctx *c, json_t *o, const char *const keys[])
{
	const char *k;
	json_t *v;
	size_t i, n = 0;

	if (!json_is_object(o))
		return META_ERR(c->e, "%s: expected an object", c->path);
	json_object_foreach(o, k, v) {
		for (i = 0; keys[i]; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (keys[i] == NULL)
			return META_ERR(c->e, "%s: unknown key \"%.40s\"", c->path, k);
		n++;
	}
	for (i = 0; keys[i]; i++)
		if (json_object_get(o, keys[i]) == NULL)
			return META_ERR(c->e, "%s: missing \"%s\"", c->path, keys[i]);
	return 0;
}

static int
parse_hex(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (s[0] != '0' || s[1] != 'x' || s[2] == '\0' || strlen(s) > 18)
		return -1;
	for (i = 2; s[i]; i++) {
		int d;
		if (s[i] >= '0' && s[i] <= '9') d = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f') d = s[i] - 'a' + 10;
		else return -1;
		v = v << 4 | d;
	}
	*out = v;
	return 0;
}

static int
get_hex(struct ctx *c, json_t *o, const char *k, uint64_t *out)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_string(v) || parse_hex(json_string_value(v), out) == -1)
		return META_ERR(c->e, "%s.%s: expected a \"0x...\" hex string", c->path, k);
	return 0;
}

static int
get_int(struct ctx *c, json_t *o, const char *k, int64_t min, int64_t max, int64_t *out)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_integer(v))
		return META_ERR(c->e, "%s.%s: expected an integer", c->path, k);
	*out = json_integer_value(v);
	if (*out < min || *out > max)
		return META_ERR(c->e, "%s.%s: %" PRId64 " out of range", c->path, k, *out);
	return 0;
}

static int
get_bool(struct ctx *c, json_t *o, const char *k, int *out)
{
	json_t *v = json_object_get(o, k);

	*out = 0;
	if (!json_is_boolean(v))
		return META_ERR(c->e, "%s.%s: expected true or false", c->path, k);
	*out = json_is_true(v);
	return 0;
}

/* String (copied) or null (NULL) when nullable. */
static int
get_str(struct ctx *c, json_t *o, const char *k, int nullable, char **out)
{
	json_t *v = json_object_get(o, k);

	*out = NULL;
	if (nullable && json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) > 4096 ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return META_ERR(c->e, "%s.%s: expected a string", c->path, k);
	if ((*out = strdup(json_string_value(v))) == NULL)
		return rf_errno(c->e, "metadata");
	return 0;
}

#define GET_INT(c, o, k, lo, hi, dst) do {			\
		int64_t v_;					\
		if (get_int(c, o, k, lo, hi, &v_) == -1)	\
			return -1;				\
		(dst) = v_;					\
	} while (0)

static int
load_rlimits(struct ctx *c, json_t *o, struct rf_proc *p)
{
	const char *keys[RF_NRLIMIT + 1];
	size_t i, j;

	memcpy(keys, rlimit_names, sizeof(rlimit_names));
	keys[RF_NRLIMIT] = NULL;
	strlcpy(c->path, "rlimits", sizeof(c->path));
	if (check_keys(c, o, keys) == -1)
		return -1;
	for (i = 0; i < RF_NRLIMIT; i++) {
		json_t *pair = json_object_get(o, rlimit_names[i]);
		uint64_t v[2];
		if (!json_is_array(pair) || json_array_size(pair) != 2)
			return META_ERR(c->e, "rlimits.%s: expected [cur, max]", rlimit_names[i]);
		for (j = 0; j < 2; j++) {
			json_t *x = json_array_get(pair, j);
			if (json_is_string(x) && strcmp(json_string_value(x), "unlimited") == 0)
				v[j] = UINT64_MAX;
			else if (json_is_integer(x) && json_integer_value(x) >= 0)
				v[j] = json_integer_value(x);
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
load_id4(struct ctx *c, json_t *o, const char *k, uint32_t out[4])
{
	json_t *a = json_object_get(o, k);
	size_t i;

	if (!json_is_array(a) || json_array_size(a) != 4)
		return META_ERR(c->e, "creds.%s: expected [real, effective, saved, fs]", k);
	for (i = 0; i < 4; i++) {
		json_t *x = json_array_get(a, i);
		if (!json_is_integer(x) || json_integer_value(x) < 0 ||
		    json_integer_value(x) > UINT32_MAX - 1)
			return META_ERR(c->e, "creds.%s[%zu]: expected an id", k, i);
		out[i] = json_integer_value(x);
	}
	return 0;
}

static int
load_creds(struct ctx *c, json_t *o, struct rf_proc *p)
{
	static const char *const keys[] = { "uid", "gid", "groups", NULL };
	json_t *g;
	size_t i;

	strlcpy(c->path, "creds", sizeof(c->path));
	if (check_keys(c, o, keys) == -1 || load_id4(c, o, "uid", p->uid) == -1 ||
	    load_id4(c, o, "gid", p->gid) == -1)
		return -1;
	g = json_object_get(o, "groups");
	if (!json_is_array(g) || json_array_size(g) > 65536)
		return META_ERR(c->e, "creds.groups: expected an array of ids");
	p->ngroups = json_array_size(g);
	if (p->ngroups && (p->groups = calloc(p->ngroups, sizeof(*p->groups))) == NULL)
		return rf_errno(c->e, "metadata");
	for (i = 0; i < p->ngroups; i++) {
		json_t *x = json_array_get(g, i);
		if (!json_is_integer(x) || json_integer_value(x) < 0 ||
		    json_integer_value(x) > UINT32_MAX - 1)
			return META_ERR(c->e, "creds.groups[%zu]: expected an id", i);
		p->groups[i] = json_integer_value(x);
	}
	return 0;
}

static int
load_signals(struct ctx *c, json_t *o, struct rf_proc *p)
{
	static const char *const keys[] = { "blocked", "pending", "actions", "altstack", NULL };
	static const char *const akeys[] = { "sig", "handler", "flags", "restorer", "mask", NULL };
	static const char *const skeys[] = { "sp", "size", "flags", NULL };
	json_t *a, *x;
	size_t i;
	int sig;

	strlcpy(c->path, "signals", sizeof(c->path));
	if (check_keys(c, o, keys) == -1 || get_hex(c, o, "blocked", &p->sigblocked) == -1 ||
	    get_hex(c, o, "pending", &p->sigpending) == -1)
		return -1;
	x = json_object_get(o, "altstack");
	strlcpy(c->path, "signals.altstack", sizeof(c->path));
	if (check_keys(c, x, skeys) == -1 || get_hex(c, x, "sp", &p->altstack_sp) == -1)
		return -1;
	GET_INT(c, x, "size", 0, INT64_MAX, p->altstack_size);
	GET_INT(c, x, "flags", 0, INT32_MAX, p->altstack_flags);
	a = json_object_get(o, "actions");
	if (!json_is_array(a) || json_array_size(a) > RF_NSIG)
		return META_ERR(c->e, "signals.actions: expected an array of at most %d", RF_NSIG);
	json_array_foreach(a, i, x) {
		struct rf_sigaction *sa;
		snprintf(c->path, sizeof(c->path), "signals.actions[%zu]", i);
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
load_vma(struct ctx *c, json_t *o, struct rf_vma *v)
{
	static const char *const keys[] = { "start", "end", "prot", "shared", "growsdown",
	    "file_pages", "kind", "name", "file", "offset", "pages", NULL };
	static const char *const fkeys[] = { "path", "dev", "ino", "size", "mtime_sec",
	    "mtime_nsec", NULL };
	const char *prot, *kind;
	json_t *f;
	int b, k;

	if (check_keys(c, o, keys) == -1 || get_hex(c, o, "start", &v->start) == -1 ||
	    get_hex(c, o, "end", &v->end) == -1)
		return -1;
	prot = json_string_value(json_object_get(o, "prot"));
	if (prot == NULL || strlen(prot) != 3 || (prot[0] != 'r' && prot[0] != '-') ||
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
	kind = json_string_value(json_object_get(o, "kind"));
	if (kind == NULL || (k = rf_vma_kind_parse(kind)) == -1)
		return META_ERR(c->e, "%s.kind: unknown kind", c->path);
	v->kind = k;
	if (get_str(c, o, "name", 1, &v->name) == -1)
		return -1;
	GET_INT(c, o, "offset", 0, INT64_MAX, v->pgoff);
	GET_INT(c, o, "pages", 0, INT64_MAX, v->npages);
	f = json_object_get(o, "file");
	if (v->kind != RF_VMA_FILE) {
		if (!json_is_null(f))
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
load_fd(struct ctx *c, json_t *o, struct rf_fd *f)
{
	static const char *const keys[] = { "fd", "cloexec", "flags", "kind", "path", "pos",
	    "dev", "ino", "rdev", NULL };
	const char *kind;
	int k;

	if (check_keys(c, o, keys) == -1)
		return -1;
	GET_INT(c, o, "fd", 0, (1 << 20), f->fd);
	if (get_bool(c, o, "cloexec", &f->fdflags) == -1)
		return -1;
	GET_INT(c, o, "flags", 0, INT32_MAX, f->flags);
	kind = json_string_value(json_object_get(o, "kind"));
	if (kind == NULL || (k = rf_fd_kind_parse(kind)) == -1)
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
load_xstate(struct ctx *c, json_t *o, struct rf_proc *p)
{
	static const char *const keys[] = { "size", "xfeatures", "data", NULL };
	const char *b64;
	size_t n;

	strlcpy(c->path, "xstate", sizeof(c->path));
	if (check_keys(c, o, keys) == -1 || get_hex(c, o, "xfeatures", &p->xfeatures) == -1)
		return -1;
	GET_INT(c, o, "size", 0, RF_XSTATE_MAX, p->xstate_len);
	b64 = json_string_value(json_object_get(o, "data"));
	if (b64 == NULL)
		return META_ERR(c->e, "xstate.data: expected a base64 string");
	if (p->xstate_len && (p->xstate = malloc(p->xstate_len)) == NULL)
		return rf_errno(c->e, "metadata");
	if (sodium_base642bin(p->xstate, p->xstate_len, b64, strlen(b64), NULL, &n, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || n != p->xstate_len)
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
	json_error_t je;
	json_t *root, *o, *x;
	const char *arch;
	uint64_t u;
	size_t i;
	int ret = -1;

	*p = (struct rf_proc){0};
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		return META_ERR(e, "line %d column %d: %s", je.line, je.column, je.text);
	strlcpy(c.path, "top level", sizeof(c.path));
	o = json_object_get(root, "version");
	if (json_is_integer(o) && json_integer_value(o) != RF_IMAGE_VERSION) {
		META_ERR(e, "format version %" JSON_INTEGER_FORMAT ", this program reads %d",
		    json_integer_value(o), RF_IMAGE_VERSION);
		goto out;
	}
	if (check_keys(&c, root, keys) == -1)
		goto out;
	arch = json_string_value(json_object_get(root, "arch"));
	if (arch == NULL || strcmp(arch, "x86_64") != 0) {
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
	TRY(load_rlimits(&c, json_object_get(root, "rlimits"), p));
	TRY(load_creds(&c, json_object_get(root, "creds"), p));
	TRY(load_signals(&c, json_object_get(root, "signals"), p));

	o = json_object_get(root, "rseq");
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

	o = json_object_get(root, "mm");
	strlcpy(c.path, "mm", sizeof(c.path));
	TRY(check_keys(&c, o, mmkeys));
#define X(f) TRY(get_hex(&c, o, #f, &p->mm.f));
	MMFIELDS(X)
#undef X

	o = json_object_get(root, "regs");
	strlcpy(c.path, "regs", sizeof(c.path));
	TRY(check_keys(&c, o, regkeys));
#define X(f) TRY(get_hex(&c, o, #f, &u)); p->regs.f = u;
	REGS(X)
#undef X

	o = json_object_get(root, "auxv");
	if (!json_is_array(o) || json_array_size(o) > RF_AUXV_MAX || json_array_size(o) % 2) {
		META_ERR(e, "auxv: expected an even array of at most %d words", RF_AUXV_MAX);
		goto out;
	}
	json_array_foreach(o, i, x) {
		if (!json_is_string(x) || parse_hex(json_string_value(x), &p->auxv[i]) == -1) {
			META_ERR(e, "auxv[%zu]: expected a \"0x...\" hex string", i);
			goto out;
		}
	}
	p->auxv_len = json_array_size(o);

	TRY(load_xstate(&c, json_object_get(root, "xstate"), p));

	o = json_object_get(root, "vmas");
	if (!json_is_array(o) || json_array_size(o) > 1000000) {
		META_ERR(e, "vmas: expected an array");
		goto out;
	}
	p->nvma = json_array_size(o);
	if (p->nvma && (p->vmas = calloc(p->nvma, sizeof(*p->vmas))) == NULL) {
		rf_errno(e, "metadata");
		goto out;
	}
	json_array_foreach(o, i, x) {
		snprintf(c.path, sizeof(c.path), "vmas[%zu]", i);
		TRY(load_vma(&c, x, &p->vmas[i]));
	}

	o = json_object_get(root, "fds");
	if (!json_is_array(o) || json_array_size(o) > (1 << 20)) {
		META_ERR(e, "fds: expected an array");
		goto out;
	}
	p->nfd = json_array_size(o);
	if (p->nfd && (p->fds = calloc(p->nfd, sizeof(*p->fds))) == NULL) {
		rf_errno(e, "metadata");
		goto out;
	}
	json_array_foreach(o, i, x) {
		snprintf(c.path, sizeof(c.path), "fds[%zu]", i);
		TRY(load_fd(&c, x, &p->fds[i]));
		if (i > 0 && p->fds[i].fd <= p->fds[i - 1].fd) {
			META_ERR(e, "fds[%zu]: fd %d out of order or repeated", i, p->fds[i].fd);
			goto out;
		}
	}
	TRY(check_layout(&c, p));
	ret = 0;
#undef TRY
#undef INT
out:
	json_decref(root);
	if (ret == -1)
		rf_proc_free(p);
	return ret;
}
