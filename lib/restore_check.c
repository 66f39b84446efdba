/*
 * restore_check.c - everything rf-restore checks before it creates a process:
 * the image against itself and against this host (vdso block, CPU features,
 * mapped files, credentials, fds, limits).  Fills the plan in struct
 * rf_restore that restore.c carries out.
 */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>
#include "rf_restore.h"

#define TASK_SIZE 0x7ffffffff000ull

static const char *const rlim_names[RF_NRLIMIT] = {
	"cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile",
	"memlock", "as", "locks", "sigpending", "msgqueue", "nice", "rtprio",
	"rttime",
};

static void
warnf(struct rf_restore *rs, const char *fmt, ...)
{
	char **w, *s;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	if (s == NULL)
		return;
	if ((w = reallocarray(rs->warn, rs->nwarn + 1, sizeof(*w))) == NULL) {
		free(s);
		return;
	}
	rs->warn = w;
	rs->warn[rs->nwarn++] = s;
}

/* Effective capability of this process. */
static int
have_cap(int cap)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) == -1)
		return 0;
	return d[cap / 32].effective >> (cap % 32) & 1;
}

/* Do we hold any capability at all (permitted)? */
static int
any_cap(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) == -1)
		return 1;
	return (d[0].permitted | d[1].permitted) != 0;
}

static const char *
vma_label(const struct rf_vma *v)
{
	if (v->kind == RF_VMA_FILE && v->file.path)
		return v->file.path;
	return v->name ? v->name : "anonymous";
}

/* "image: mapping 0x..-0x.. /path: " + the rest; RF_EX_DATAERR. */
__attribute__((format(printf, 3, 4))) static int
vma_err(struct rf_err *e, const struct rf_vma *v, const char *fmt, ...)
{
	char rest[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	return rf_errf(e, RF_EX_DATAERR, "image: mapping 0x%" PRIx64 "-0x%" PRIx64 " %s: %s",
	    v->start, v->end, vma_label(v), rest);
}

/* One line of /proc/self/maps: a busy range, and the vdso block's parts. */
static int
host_map(struct rf_restore *rs, size_t *cap, char *l, struct rf_err *e)
{
	unsigned long long s, t;
	uint64_t *b;
	char *q;
	int i, k;

	s = strtoull(l, &q, 16);
	if (*q != '-')
		return 0;
	t = strtoull(q + 1, &q, 16);
	/* perms, offset, dev, inode, then the name (if any) */
	for (i = 0; i < 5; i++) {
		while (*q == ' ')
			q++;
		if (i < 4)
			while (*q != ' ' && *q != '\0')
				q++;
	}
	if (s >= TASK_SIZE)
		return 0;
	if (rs->nbusy + 2 > *cap) {
		*cap = *cap ? 2 * *cap : 128;
		if ((b = reallocarray(rs->busy, *cap, sizeof(*b))) == NULL)
			return rf_errno(e, "restore");
		rs->busy = b;
	}
	rs->busy[rs->nbusy++] = s;
	rs->busy[rs->nbusy++] = t;
	k = strcmp(q, "[vvar]") == 0 ? 0 : strcmp(q, "[vvar_vclock]") == 0 ? 1 :
	    strcmp(q, "[vdso]") == 0 ? 2 : -1;
	if (k == -1)
		return 0;
	if (rs->host_vdso_len == 0)
		rs->host_vdso = s;
	if (rs->host_vdso + rs->host_vdso_len != s || rs->host_vdso_part[k])
		return rf_errf(e, RF_EX_SOFTWARE, "restore: this host's vdso block is not "
		    "[vvar][vvar_vclock][vdso] in one piece");
	rs->host_vdso_part[k] = t - s;
	rs->host_vdso_len += t - s;
	return 0;
}

/*
 * Our own layout: what the child starts with, and where our vdso block is.
 * Read with read(2) and taken apart by hand: stdio and sscanf cost a fresh
 * process (a server's proxy, once per remote fork) 0.08 ms more.  A line
 * longer than the buffer is cut: its range is all we need of it.
 */
static int
read_host_maps(struct rf_restore *rs, struct rf_err *e)
{
	char buf[4096 + 1], *l, *nl;
	size_t cap = 0, have = 0;
	ssize_t n;
	int fd, skip = 0, r = 0;

	if ((fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)) == -1)
		return rf_errno(e, "restore: /proc/self/maps");
	rs->nbusy = 0;
	for (;;) {
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			r = rf_errno(e, "restore: /proc/self/maps");
			break;
		}
		have += n;
		buf[have] = '\0';
		for (l = buf; r == 0 && (nl = memchr(l, '\n', buf + have - l)) != NULL; l = nl + 1) {
			*nl = '\0';
			if (!skip)
				r = host_map(rs, &cap, l, e);
			skip = 0;
		}
		have = buf + have - l;
		memmove(buf, l, have);
		if (r == -1 || (n == 0 && have == 0))
			break;
		if (n == 0 || have == sizeof(buf) - 1) {
			buf[have] = '\0';
			if (!skip)
				r = host_map(rs, &cap, buf, e);
			skip = n != 0;
			have = 0;
			if (r == -1 || n == 0)
				break;
		}
	}
	close(fd);
	rs->nbusy /= 2;
	return r;
}

static int
check_vdso(struct rf_restore *rs, const struct rf_proc *p, struct rf_err *e)
{
	uint64_t part[3] = { 0 }, at = 0;
	size_t i;
	int k, seen = 0;

	for (i = 0; i < p->nvma; i++) {
		const struct rf_vma *v = &p->vmas[i];
		k = v->kind == RF_VMA_VVAR ? 0 : v->kind == RF_VMA_VVAR_VCLOCK ? 1 :
		    v->kind == RF_VMA_VDSO ? 2 : -1;
		if (k == -1)
			continue;
		if (!seen)
			rs->img_vdso = at = v->start;
		if (v->start != at || part[k])
			return vma_err(e, v, "the vdso block is not in one piece");
		if (v->flags & RF_VMA_SHARED)
			return vma_err(e, v, "a kernel mapping cannot be shared");
		part[k] = v->end - v->start;
		at = v->end;
		seen = 1;
	}
	if (!seen)
		return 0;
	if (rs->host_vdso_len == 0)
		return rf_errf(e, RF_EX_DATAERR, "image: has a vdso; this host has none");
	if (memcmp(part, rs->host_vdso_part, sizeof(part)) != 0)
		return rf_errf(e, RF_EX_DATAERR, "image: vdso block of %" PRIu64 "+%" PRIu64 "+%"
		    PRIu64 " bytes; this kernel's is %" PRIu64 "+%" PRIu64 "+%" PRIu64,
		    part[0], part[1], part[2], rs->host_vdso_part[0], rs->host_vdso_part[1],
		    rs->host_vdso_part[2]);
	return 0;
}

/* This CPU's xsave area size and enabled state components, asked once. */
static unsigned cpu_xsize;
static uint64_t cpu_xcr0;

void
rf_restore_cpu(void)
{
	unsigned a, b, c, d, lo, hi;

	if (cpu_xsize != 0)
		return;
	__cpuid_count(0xd, 0, a, b, c, d);
	__asm__ ("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	cpu_xcr0 = (uint64_t)hi << 32 | lo;
	cpu_xsize = b;
}

static int
check_cpu(const struct rf_proc *p, struct rf_err *e)
{
	unsigned b;
	uint64_t xcr0, bv;

	if (p->regs.cs != 0x33 || p->regs.ss != 0x2b)
		return rf_errf(e, RF_EX_DATAERR, "image: registers: not a 64-bit process "
		    "(cs 0x%llx, ss 0x%llx)", p->regs.cs, p->regs.ss);
	if (p->regs.fs_base >= TASK_SIZE || p->regs.gs_base >= TASK_SIZE)
		return rf_errf(e, RF_EX_DATAERR, "image: registers: fs/gs base outside user "
		    "space");
	if (rf_proc_find_vma(p, p->regs.rip) == -1)
		return rf_errf(e, RF_EX_DATAERR, "image: registers: rip 0x%llx outside every "
		    "mapping", p->regs.rip);
	if (p->xstate_len == 0)
		return 0;
	rf_restore_cpu();
	b = cpu_xsize;
	xcr0 = cpu_xcr0;
	if (p->xstate_len != b)
		return rf_errf(e, RF_EX_DATAERR, "image: CPU state of %zu bytes; this CPU's is %u",
		    p->xstate_len, b);
	memcpy(&bv, p->xstate + 512, sizeof(bv));
	if ((bv | p->xfeatures) & ~xcr0)
		return rf_errf(e, RF_EX_DATAERR, "image: CPU state uses features 0x%" PRIx64
		    " this CPU lacks", (bv | p->xfeatures) & ~xcr0);
	return 0;
}

static int
is_shared_anon(const struct rf_vma *v)
{
	const char *path = v->file.path;

	if (!(v->flags & RF_VMA_SHARED))
		return 0;
	if (v->kind != RF_VMA_FILE)
		return 1;
	return path && (strcmp(path, "/dev/zero") == 0 || strncmp(path, "/SYSV", 5) == 0);
}

static int
add_map(struct rf_restore *rs, const struct rf_vma *v, struct rf_err *e)
{
	struct rf_restore_map *m;
	size_t i;

	for (i = 0; i < rs->nmaps; i++)
		if (strcmp(rs->maps[i].path, v->file.path) == 0)
			break;
	if (i == rs->nmaps) {
		if ((m = reallocarray(rs->maps, rs->nmaps + 1, sizeof(*m))) == NULL)
			return rf_errno(e, "restore");
		rs->maps = m;
		rs->maps[rs->nmaps++] = (struct rf_restore_map){ .path = v->file.path };
	}
	if ((v->flags & RF_VMA_SHARED) && (v->prot & PROT_WRITE))
		rs->maps[i].rdwr = 1;
	return i;
}

/* Same file as at dump time: device, inode, size, mtime.  Also used by restore.c. */
int
rf_restore_same_file(const struct rf_vma *v, const struct stat *st, struct rf_err *e)
{
	const struct rf_file_id *id = &v->file;

	if ((uint64_t)st->st_dev != id->dev || (uint64_t)st->st_ino != id->ino)
		return vma_err(e, v, "file changed (device/inode %" PRIu64 "/%" PRIu64
		    ", now %" PRIu64 "/%" PRIu64 ")", id->dev, id->ino, (uint64_t)st->st_dev,
		    (uint64_t)st->st_ino);
	if ((uint64_t)st->st_size != id->size)
		return vma_err(e, v, "file changed (size %" PRIu64 ", now %" PRIu64 ")",
		    id->size, (uint64_t)st->st_size);
	if (st->st_mtim.tv_sec != id->mtime_sec || st->st_mtim.tv_nsec != id->mtime_nsec)
		return vma_err(e, v, "file changed (modified since the dump)");
	return 0;
}

static int
check_vmas(struct rf_restore *rs, const struct rf_proc *p, struct rf_err *e)
{
	struct stat st;
	size_t i;
	int k;

	for (i = 0; i < p->nvma; i++) {
		const struct rf_vma *v = &p->vmas[i];
		rs->vmafile[i] = -1;
		if (v->kind == RF_VMA_VSYSCALL) {
			if (v->start < TASK_SIZE)
				return vma_err(e, v, "[vsyscall] inside user space");
			continue;
		}
		if (v->end > TASK_SIZE || v->start < 0x10000)
			return vma_err(e, v, "outside the addresses a process can map");
		if (is_shared_anon(v))
			return vma_err(e, v, "shared anonymous memory (MAP_SHARED or System V) "
			    "cannot be restored");
		if (v->kind != RF_VMA_FILE)
			continue;
		if (v->flags & RF_VMA_FILE_PAGES) {
			if (v->flags & RF_VMA_SHARED)
				return vma_err(e, v, "shared mapping of a file that could not be "
				    "verified at dump time");
			continue;
		}
		if (v->file.path == NULL || v->file.path[0] != '/')
			return vma_err(e, v, "file mapping without a path");
		if (stat(v->file.path, &st) == -1)
			return vma_err(e, v, "file vanished (%s)", strerror(errno));
		if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
			return vma_err(e, v, "not a regular file now");
		if (rf_restore_same_file(v, &st, e) == -1)
			return -1;
		if ((k = add_map(rs, v, e)) == -1)
			return -1;
		rs->vmafile[i] = k;
	}
	return 0;
}

static int
check_creds(struct rf_restore *rs, const struct rf_proc *p, struct rf_err *e)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	gid_t ours[256];
	int i, n, priv = have_cap(CAP_SETUID) && have_cap(CAP_SETGID);

	if (rs->o.no_root)
		for (i = 0; i < 4; i++)
			if (p->uid[i] == 0 || p->gid[i] == 0)
				return rf_errf(e, RF_EX_NOPERM, "image: process of %s 0 (root); "
				    "refused by -U", p->uid[i] == 0 ? "uid" : "gid");
	for (i = 0; i < 4; i++) {
		if (p->uid[i] != uid || p->uid[i] != getuid()) {
			if (!priv)
				return rf_errf(e, RF_EX_NOPERM, "image: process of uid %u; only "
				    "uid %u can be restored here", p->uid[i], (unsigned)uid);
			rs->setcreds = 1;
		}
		if (p->gid[i] != gid || p->gid[i] != getgid()) {
			if (!priv)
				return rf_errf(e, RF_EX_NOPERM, "image: process of gid %u; only "
				    "gid %u can be restored here", p->gid[i], (unsigned)gid);
			rs->setcreds = 1;
		}
	}
	if (priv && !rs->setcreds) {
		n = getgroups(256, ours);
		if (n < 0 || (size_t)n != p->ngroups ||
		    memcmp(ours, p->groups, n * sizeof(*ours)) != 0)
			rs->setcreds = 1;
	}
	/*
	 * Changing /proc/PID/exe needs CAP_CHECKPOINT_RESTORE at PR_SET_MM_MAP
	 * time.  A process of a non-root user keeps only that one capability
	 * until then (the blob drops it); with a root uid left among real,
	 * effective and saved, the kernel's own rules decide what it keeps.
	 */
	rs->want_exe = p->exe != NULL && have_cap(CAP_CHECKPOINT_RESTORE);
	/*
	 * Fork mode: CAP_SYS_ADMIN until the filter is in, which spares the
	 * child the no_new_privs the kernel otherwise demands (docs/FORK.md).
	 */
	rs->keepadmin = rs->o.fwd && have_cap(CAP_SYS_ADMIN);
	rs->keepcap = (rs->want_exe || rs->keepadmin) && rs->setcreds && p->uid[0] &&
	    p->uid[1] && p->uid[2];
	rs->keepadmin = rs->keepadmin && rs->keepcap;
	/*
	 * Never more privilege: a non-root image restored without a change of
	 * uid (in a user namespace of its uid, say, where we hold every
	 * capability) must not keep ours.  The blob drops them last.
	 */
	rs->dropcaps = !rs->setcreds && p->uid[0] && p->uid[1] && p->uid[2] && any_cap();
	return 0;
}

static int
supplied(const struct rf_restore_opts *o, int fd)
{
	size_t i;

	for (i = 0; i < o->nsupply; i++)
		if (o->supply[i].fd == fd)
			return 1;
	return 0;
}

static int
check_fds(struct rf_restore *rs, const struct rf_proc *p, struct rf_err *e)
{
	struct stat st;
	size_t i;
	int *r;

	for (i = 0; i < p->nfd; i++) {
		const struct rf_fd *f = &p->fds[i];
		if (i > 0 && f->fd <= p->fds[i - 1].fd)
			return rf_errf(e, RF_EX_DATAERR, "image: metadata: fds[%zu]: fd %d twice "
			    "or out of order", i, f->fd);
		if (supplied(&rs->o, f->fd)) {
			rs->fdplan[i] = RF_FDP_SUPPLIED;
			continue;
		}
		if (rs->o.fwd) {
			rs->fdplan[i] = RF_FDP_NONE;	/* it stays at home */
			continue;
		}
		if ((f->kind == RF_FD_FILE || f->kind == RF_FD_DIR) && f->path &&
		    f->path[0] == '/' && stat(f->path, &st) == 0 &&
		    (f->kind == RF_FD_FILE ? S_ISREG(st.st_mode) : S_ISDIR(st.st_mode))) {
			/* Reopened by path all the same: on another host it never matches. */
			if ((uint64_t)st.st_dev != f->dev || (uint64_t)st.st_ino != f->ino)
				warnf(rs, "fd %d %s: not the file it was at dump time (device/inode "
				    "%" PRIu64 "/%" PRIu64 ", now %" PRIu64 "/%" PRIu64 "); reopened "
				    "by path", f->fd, f->path, f->dev, f->ino, (uint64_t)st.st_dev,
				    (uint64_t)st.st_ino);
			rs->fdplan[i] = RF_FDP_REOPEN;
			continue;
		}
		if (f->kind == RF_FD_CHR && f->path && f->path[0] == '/' &&
		    stat(f->path, &st) == 0 && S_ISCHR(st.st_mode) &&
		    (uint64_t)st.st_rdev == f->rdev) {
			rs->fdplan[i] = RF_FDP_REOPEN;
			continue;
		}
		rs->fdplan[i] = RF_FDP_NULL;
		if ((r = reallocarray(rs->replaced, rs->nreplaced + 1, sizeof(*r))) == NULL)
			return rf_errno(e, "restore");
		rs->replaced = r;
		rs->replaced[rs->nreplaced++] = f->fd;
		warnf(rs, "fd %d (%s %s): %s, replaced by /dev/null (-F %d supplies one)",
		    f->fd, rf_fd_kind_name(f->kind), f->path ? f->path : "?",
		    f->kind == RF_FD_FILE || f->kind == RF_FD_DIR || f->kind == RF_FD_CHR ?
		    "gone" : "cannot be reopened", f->fd);
	}
	return 0;
}

/* Limits we cannot raise are lowered to ours, with a warning. */
static void
plan_limits(struct rf_restore *rs, const struct rf_proc *p)
{
	int raise = have_cap(CAP_SYS_RESOURCE) && !rs->setcreds;
	int nice_ok = have_cap(CAP_SYS_NICE) && !rs->setcreds;
	struct rlimit rl;
	int i, ours;

	for (i = 0; i < RF_NRLIMIT; i++) {
		rs->rlim[i][0] = p->rlim_cur[i];
		rs->rlim[i][1] = p->rlim_max[i];
		if (raise || getrlimit(i, &rl) == -1 || p->rlim_max[i] <= rl.rlim_max)
			continue;
		rs->rlim[i][1] = rl.rlim_max;
		if (rs->rlim[i][0] > rl.rlim_max)
			rs->rlim[i][0] = rl.rlim_max;
		warnf(rs, "rlimit %s: hard limit lowered to this process's (%llu)",
		    rlim_names[i], (unsigned long long)rl.rlim_max);
	}
	for (i = 0; i < RF_NRLIMIT; i++)
		if (rs->rlim[i][0] > rs->rlim[i][1])
			rs->rlim[i][0] = rs->rlim[i][1];
	errno = 0;
	ours = getpriority(PRIO_PROCESS, 0);
	rs->nice = p->nice;
	if (p->nice < ours && !nice_ok) {
		warnf(rs, "nice %d: not allowed here, keeping %d", p->nice, ours);
		rs->nice = ours;
	}
}

int
rf_restore_check(struct rf_restore *rs, const struct rf_proc *p,
    const struct rf_restore_opts *o, int for_run, struct rf_err *e)
{
	*rs = (struct rf_restore){ .p = p, .o = *o, .pid = -1, .sock = -1 };
	if ((p->personality & 0xff) != 0)
		return rf_errf(e, RF_EX_DATAERR, "image: personality 0x%lx is not Linux's",
		    p->personality);
	if (p->auxv_len > RF_AUXV_MAX || p->auxv_len % 2)
		return rf_errf(e, RF_EX_DATAERR, "image: metadata: auxv: odd length %zu",
		    p->auxv_len);
	if (p->rseq_ptr && (p->rseq_ptr % 32 || p->rseq_len < 32 ||
	    rf_proc_find_vma(p, p->rseq_ptr) == -1))
		return rf_errf(e, RF_EX_DATAERR, "image: rseq area 0x%" PRIx64 " (%u bytes) "
		    "invalid or unmapped", p->rseq_ptr, p->rseq_len);
	if ((rs->vmafile = calloc(p->nvma + 1, sizeof(*rs->vmafile))) == NULL ||
	    (rs->fdplan = calloc(p->nfd + 1, sizeof(*rs->fdplan))) == NULL)
		return rf_errno(e, "restore");
	if (read_host_maps(rs, e) == -1 || check_vdso(rs, p, e) == -1 ||
	    check_cpu(p, e) == -1 || check_vmas(rs, p, e) == -1)
		return -1;
	if (!for_run)
		return 0;
	if (check_creds(rs, p, e) == -1 || check_fds(rs, p, e) == -1)
		return -1;
	plan_limits(rs, p);
	return 0;
}

void
rf_restore_free(struct rf_restore *rs)
{
	size_t i;

	for (i = 0; i < rs->nwarn; i++)
		free(rs->warn[i]);
	free(rs->warn);
	free(rs->replaced);
	free(rs->fdplan);
	free(rs->vmafile);
	free(rs->maps);
	free(rs->busy);
	*rs = (struct rf_restore){ .pid = -1, .sock = -1 };
}
