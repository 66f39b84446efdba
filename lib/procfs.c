/* procfs.c - what /proc tells about a process. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <bsd/string.h>
#include "rf_snap.h"

#define DELETED " (deleted)"

/* ENOENT on /proc/PID/... means the process is gone. */
static int
gone(int err)
{
	return err == ENOENT ? ESRCH : err;
}

/*
 * The pid as /proc numbers it.  A caller in a pid namespace may see the
 * host's /proc (a remote child's fork, docs/FORK.md "Grandchildren"): its
 * pidfd's fdinfo, read through that /proc, says.  The last answer is kept.
 */
pid_t
rf_procfs_pid(pid_t pid)
{
	static pid_t last_in, last_out;
	char path[64], buf[512], *p;
	ssize_t n;
	int pfd, fd;
	pid_t out = pid;

	if (pid == last_in && last_in != 0)
		return last_out;
	if ((pfd = syscall(SYS_pidfd_open, pid, 0)) == -1)
		return pid;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pfd);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		if ((n = read(fd, buf, sizeof(buf) - 1)) > 0) {
			buf[n] = '\0';
			if ((p = strstr(buf, "\nPid:")) != NULL && (out = atoi(p + 5)) <= 0)
				out = pid;
		}
		close(fd);
	}
	close(pfd);
	last_in = pid;
	last_out = out;
	return out;
}

static int
open_pid(pid_t pid, const char *name, int flags)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)rf_procfs_pid(pid), name);
	if ((fd = open(path, flags | O_CLOEXEC)) == -1)
		errno = gone(errno);
	return fd;
}

char *
rf_procfs_read(pid_t pid, const char *name, size_t *lenp)
{
	size_t cap = 4096, len = 0;
	char *buf = NULL, *nb;
	ssize_t r;
	int fd, saved;

	if ((fd = open_pid(pid, name, O_RDONLY)) == -1)
		return NULL;
	for (;;) {
		if (cap - len < 4096 || buf == NULL) {
			if (buf != NULL)
				cap *= 2;
			if ((nb = realloc(buf, cap + 1)) == NULL)
				goto fail;
			buf = nb;
		}
		r = read(fd, buf + len, cap - len);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			errno = gone(errno);
			goto fail;
		}
		if (r == 0)
			break;
		len += r;
	}
	close(fd);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return NULL;
}

/*
 * A small file whole into buf (NUL-terminated), without malloc: these are
 * made whole at the first read, so a read that returns less than asked is
 * the end.  One that fills buf is EPROTO (E2BIG for auxv, as before).
 */
static ssize_t
read_small(pid_t pid, const char *name, char *buf, size_t cap)
{
	ssize_t n;
	size_t len = 0;
	int fd, saved;

	if ((fd = open_pid(pid, name, O_RDONLY)) == -1)
		return -1;
	for (;;) {
		n = read(fd, buf + len, cap - 1 - len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			saved = gone(errno);
			close(fd);
			errno = saved;
			return -1;
		}
		len += n;
		if (n == 0 || len < cap - 1)
			break;
		/* full: more than such a file holds */
		close(fd);
		errno = strcmp(name, "auxv") == 0 ? E2BIG : EPROTO;
		return -1;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

int
rf_procfs_stat(pid_t pid, struct rf_pstat *st)
{
	unsigned long long f[53] = { 0 };
	char buf[2048], *open, *close, *s, *end;
	size_t n;
	int i;

	memset(st, 0, sizeof(*st));
	if (read_small(pid, "stat", buf, sizeof(buf)) == -1)
		return -1;
	/* comm may hold spaces and parentheses: it ends at the last ')' */
	if ((open = strchr(buf, '(')) == NULL || (close = strrchr(buf, ')')) == NULL ||
	    close < open || close[1] != ' ') {
		errno = EPROTO;
		return -1;
	}
	n = close - open - 1;
	if (n >= sizeof(st->comm))
		n = sizeof(st->comm) - 1;
	memcpy(st->comm, open + 1, n);
	st->comm[n] = '\0';
	st->state = close[2];
	s = close + 3;
	for (i = 4; i < 53 && *s != '\0'; i++) {
		f[i] = strtoull(s, &end, 10);	/* "-5" (nice) wraps, cast back below */
		if (end == s)
			break;
		s = end;
	}
	if (i < 52) {
		errno = EPROTO;
		return -1;
	}
	st->flags = f[9];
	st->nice = (long)f[19];
	st->nthreads = (long)f[20];
	st->mm.start_code = f[26];
	st->mm.end_code = f[27];
	st->mm.start_stack = f[28];
	st->mm.start_data = f[45];
	st->mm.end_data = f[46];
	st->mm.start_brk = f[47];
	st->mm.arg_start = f[48];
	st->mm.arg_end = f[49];
	st->mm.env_start = f[50];
	st->mm.env_end = f[51];
	return 0;
}

static int
parse_ids(const char *s, uint32_t *ids, size_t n)
{
	char *end;
	size_t i;

	for (i = 0; i < n; i++) {
		ids[i] = (uint32_t)strtoul(s, &end, 10);
		if (end == s)
			return -1;
		s = end;
	}
	return 0;
}

int
rf_procfs_status(pid_t pid, struct rf_pstatus *st)
{
	char *buf, *line, *next, *v, *end;
	uint32_t *g;
	unsigned long x;
	int seen = 0;

	memset(st, 0, sizeof(*st));
	if ((buf = rf_procfs_read(pid, "status", NULL)) == NULL)
		return -1;
	for (line = buf; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((v = strchr(line, ':')) == NULL)
			continue;
		*v++ = '\0';
		while (*v == '\t' || *v == ' ')
			v++;
		if (strcmp(line, "Umask") == 0) {
			st->umask = strtoul(v, NULL, 8);
		} else if (strcmp(line, "Uid") == 0) {
			if (parse_ids(v, st->uid, 4) == -1)
				goto bad;
			seen |= 1;
		} else if (strcmp(line, "Gid") == 0) {
			if (parse_ids(v, st->gid, 4) == -1)
				goto bad;
			seen |= 2;
		} else if (strcmp(line, "Groups") == 0) {
			for (;;) {
				x = strtoul(v, &end, 10);
				if (end == v)
					break;
				v = end;
				g = reallocarray(st->groups, st->ngroups + 1, sizeof(*g));
				if (g == NULL)
					goto fail;
				st->groups = g;
				st->groups[st->ngroups++] = (uint32_t)x;
			}
		} else if (strcmp(line, "SigPnd") == 0) {
			st->sigpnd = strtoull(v, NULL, 16);
		} else if (strcmp(line, "ShdPnd") == 0) {
			st->shdpnd = strtoull(v, NULL, 16);
		} else if (strcmp(line, "SigBlk") == 0) {
			st->sigblk = strtoull(v, NULL, 16);
		} else if (strcmp(line, "SigIgn") == 0) {
			st->sigign = strtoull(v, NULL, 16);
		} else if (strcmp(line, "SigCgt") == 0) {
			st->sigcgt = strtoull(v, NULL, 16);
			seen |= 4;
		} else if (strcmp(line, "TracerPid") == 0) {
			st->tracer = (pid_t)strtol(v, NULL, 10);
		} else if (strcmp(line, "Seccomp") == 0) {
			st->seccomp = (int)strtol(v, NULL, 10);
		}
	}
	free(buf);
	if (seen != 7) {
		errno = EPROTO;
		goto fail2;
	}
	return 0;
bad:
	errno = EPROTO;
fail:
	free(buf);
fail2:
	free(st->groups);
	st->groups = NULL;
	st->ngroups = 0;
	return -1;
}

int
rf_procfs_limits(pid_t pid, uint64_t cur[RF_NRLIMIT], uint64_t max[RF_NRLIMIT])
{
	char buf[4096], *line, *next, soft[32], hard[32];
	int i = -1;	/* the first line holds the column titles */

	if (read_small(pid, "limits", buf, sizeof(buf)) == -1)
		return -1;
	for (line = buf; line != NULL && *line != '\0' && i < RF_NRLIMIT; line = next, i++) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (i < 0)
			continue;
		/* "%-25s %-20s %-20s %-10s": the values start in column 26 */
		if (strlen(line) < 27 || sscanf(line + 26, "%31s %31s", soft, hard) != 2)
			break;
		cur[i] = strcmp(soft, "unlimited") == 0 ? UINT64_MAX : strtoull(soft, NULL, 10);
		max[i] = strcmp(hard, "unlimited") == 0 ? UINT64_MAX : strtoull(hard, NULL, 10);
	}
	if (i != RF_NRLIMIT) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

int
rf_procfs_auxv(pid_t pid, uint64_t *auxv, size_t cap, size_t *n)
{
	char buf[RF_AUXV_MAX * 8 + 16];
	ssize_t len;

	if ((len = read_small(pid, "auxv", buf, sizeof(buf))) == -1)
		return -1;
	if (len % 16 != 0 || (size_t)len / 8 > cap) {
		errno = E2BIG;
		return -1;
	}
	memcpy(auxv, buf, len);
	*n = len / 8;
	return 0;
}

int
rf_procfs_personality(pid_t pid, unsigned long *pers)
{
	char buf[64], *end;

	if (read_small(pid, "personality", buf, sizeof(buf)) == -1)
		return -1;
	*pers = strtoul(buf, &end, 16);
	if (end == buf) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

char *
rf_procfs_link(pid_t pid, const char *name)
{
	char path[64], buf[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)rf_procfs_pid(pid), name);
	if ((n = readlink(path, buf, sizeof(buf) - 1)) == -1) {
		errno = gone(errno);
		return NULL;
	}
	buf[n] = '\0';
	return strdup(buf);
}

enum rf_fd_kind
rf_procfs_fd_kind(const char *path, mode_t mode)
{
	if (strncmp(path, "anon_inode:", 11) == 0)
		return RF_FD_ANON;
	switch (mode & S_IFMT) {
	case S_IFREG: return RF_FD_FILE;
	case S_IFDIR: return RF_FD_DIR;
	case S_IFCHR: return RF_FD_CHR;
	case S_IFBLK: return RF_FD_BLK;
	case S_IFIFO: return RF_FD_FIFO;
	case S_IFSOCK: return RF_FD_SOCKET;
	default: return RF_FD_OTHER;
	}
}

/* pos and flags from /proc/PID/fdinfo/N: its first lines, one read */
static int
fd_info(int infofd, const char *name, struct rf_fd *f)
{
	char buf[512], *line, *next;
	ssize_t n;
	int fd, seen = 0, saved;

	if ((fd = openat(infofd, name, O_RDONLY | O_CLOEXEC)) == -1) {
		errno = gone(errno);
		return -1;
	}
	while ((n = read(fd, buf, sizeof(buf) - 1)) == -1 && errno == EINTR)
		;
	saved = errno;
	close(fd);
	if (n == -1) {
		errno = gone(saved);
		return -1;
	}
	buf[n] = '\0';
	for (line = buf; line != NULL && *line != '\0' && seen != 3; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (strncmp(line, "pos:", 4) == 0) {
			f->pos = strtoull(line + 4, NULL, 10);
			seen |= 1;
		} else if (strncmp(line, "flags:", 6) == 0) {
			f->flags = (int)strtoul(line + 6, NULL, 8);
			seen |= 2;
		}
	}
	if (seen != 3) {
		errno = EPROTO;
		return -1;
	}
	f->fdflags = f->flags & O_CLOEXEC ? FD_CLOEXEC : 0;
	return 0;
}

static int
fd_cmp(const void *a, const void *b)
{
	const struct rf_fd *x = a, *y = b;

	return (x->fd > y->fd) - (x->fd < y->fd);
}

int
rf_procfs_fds(pid_t pid, struct rf_fd **fdsp, size_t *np)
{
	struct rf_fd *fds = NULL, *nf, *f;
	size_t n = 0, cap = 0, i;
	struct dirent *d;
	struct stat sb;
	char buf[PATH_MAX], *end;
	ssize_t len;
	long fd;
	DIR *dir;
	int dfd, infofd, saved;

	/* names looked up from the two directories, not as whole paths */
	if ((infofd = open_pid(pid, "fdinfo", O_RDONLY | O_DIRECTORY)) == -1)
		return -1;
	if ((dfd = open_pid(pid, "fd", O_RDONLY | O_DIRECTORY)) == -1) {
		saved = errno;
		close(infofd);
		errno = saved;
		return -1;
	}
	if ((dir = fdopendir(dfd)) == NULL) {
		saved = errno;
		close(dfd);
		close(infofd);
		errno = saved;
		return -1;
	}
	while ((errno = 0, d = readdir(dir)) != NULL) {
		fd = strtol(d->d_name, &end, 10);
		if (end == d->d_name || *end != '\0')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nf = reallocarray(fds, cap, sizeof(*fds))) == NULL)
				goto fail;
			fds = nf;
		}
		f = &fds[n];
		memset(f, 0, sizeof(*f));
		f->fd = (int)fd;
		if ((len = readlinkat(dfd, d->d_name, buf, sizeof(buf) - 1)) == -1) {
			if ((errno = gone(errno)) == ESRCH)	/* closed meanwhile (shared table) */
				continue;
			goto fail;
		}
		buf[len] = '\0';
		if ((f->path = strdup(buf)) == NULL)
			goto fail;
		n++;
		if (fstatat(dfd, d->d_name, &sb, 0) == -1) {
			errno = gone(errno);
			goto fail;
		}
		f->kind = rf_procfs_fd_kind(f->path, sb.st_mode);
		f->dev = sb.st_dev;
		f->ino = sb.st_ino;
		f->rdev = sb.st_rdev;
		if (fd_info(infofd, d->d_name, f) == -1)
			goto fail;
	}
	if (errno != 0)
		goto fail;
	closedir(dir);
	close(infofd);
	qsort(fds, n, sizeof(*fds), fd_cmp);
	*fdsp = fds;
	*np = n;
	return 0;
fail:
	saved = errno;
	closedir(dir);
	close(infofd);
	for (i = 0; i < n; i++)
		free(fds[i].path);
	free(fds);
	errno = saved;
	return -1;
}

static const struct {
	const char *name;
	enum rf_vma_kind kind;
} specials[] = {
	{ "[heap]", RF_VMA_HEAP },
	{ "[stack]", RF_VMA_STACK },
	{ "[vvar]", RF_VMA_VVAR },
	{ "[vvar_vclock]", RF_VMA_VVAR_VCLOCK },
	{ "[vdso]", RF_VMA_VDSO },
	{ "[vsyscall]", RF_VMA_VSYSCALL },
};

/*
 * Mappings of kernel objects that are no file: their memory cannot be read
 * (secretmem) or means nothing without the object (aio rings, io_uring,
 * perf buffers: "anon_inode:[...]").
 */
static int
cannot_rebuild(const char *name)
{
	return name[0] != '/' || strcmp(name, "/secretmem" DELETED) == 0 ||
	    strncmp(name, "/[aio]", 6) == 0;
}

/* The identity of a mapped file, or RF_VMA_FILE_PAGES if the path no longer
   leads to the file that is mapped. */
static int
file_identity(struct rf_vma *v, dev_t dev, ino_t ino, const struct rf_vma *prev)
{
	const char *name = v->name;
	size_t n = strlen(name);
	struct stat sb;
	int deleted = 0;

	if (n > strlen(DELETED) && strcmp(name + n - strlen(DELETED), DELETED) == 0) {
		n -= strlen(DELETED);
		deleted = 1;
	}
	if ((v->file.path = strndup(name, n)) == NULL)
		return -1;
	v->file.dev = dev;
	v->file.ino = ino;
	if (prev != NULL && prev->kind == RF_VMA_FILE && prev->file.dev == dev &&
	    prev->file.ino == ino && strcmp(prev->name, name) == 0) {
		v->file = (struct rf_file_id){ v->file.path, prev->file.dev,
		    prev->file.ino, prev->file.size, prev->file.mtime_sec,
		    prev->file.mtime_nsec };
		v->flags |= prev->flags & RF_VMA_FILE_PAGES;
		return 0;
	}
	if (deleted || stat(v->file.path, &sb) == -1 || sb.st_dev != dev ||
	    sb.st_ino != ino) {
		v->flags |= RF_VMA_FILE_PAGES;
		return 0;
	}
	v->file.size = sb.st_size;
	v->file.mtime_sec = sb.st_mtim.tv_sec;
	v->file.mtime_nsec = sb.st_mtim.tv_nsec;
	return 0;
}

/* The columns of a maps line into v, *name set to the name column ("" if
   none); 0 if it is not one. */
static int
parse_vma(struct rf_vma *v, char *line, dev_t *dev, ino_t *ino, char **name)
{
	unsigned long long start, end, off, inode;
	unsigned maj, min;
	char perms[5], *s;
	int pos = 0;

	if (!isxdigit((unsigned char)line[0]) ||
	    sscanf(line, "%llx-%llx %4s %llx %x:%x %llu%n", &start, &end, perms,
	    &off, &maj, &min, &inode, &pos) != 7 || pos == 0)
		return 0;
	memset(v, 0, sizeof(*v));
	v->start = start;
	v->end = end;
	v->pgoff = off;
	v->prot = (perms[0] == 'r' ? PROT_READ : 0) |
	    (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
	if (perms[3] == 's')
		v->flags |= RF_VMA_SHARED;
	*dev = makedev(maj, min);
	*ino = inode;
	line += pos;
	line += strspn(line, " ");
	for (s = strchr(line, '\0'); s > line && s[-1] == ' '; s--)
		s[-1] = '\0';
	*name = line;
	return 1;
}

int
rf_procfs_vmas(pid_t pid, struct rf_vma **vmasp, size_t *np, struct rf_err *e)
{
	struct rf_vma *vmas = NULL, *nv, *v;
	size_t n = 0, cap = 0, i, k;
	char *buf, *line, *next, *name;
	dev_t dev;
	ino_t ino;

	if ((buf = rf_procfs_read(pid, "maps", NULL)) == NULL)
		return rf_errno(e, "pid %d: maps", (int)pid);
	for (line = buf; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nv = reallocarray(vmas, cap, sizeof(*vmas))) == NULL)
				goto fail;
			vmas = nv;
		}
		if (!parse_vma(&vmas[n], line, &dev, &ino, &name))
			continue;
		v = &vmas[n++];
		v->kind = RF_VMA_ANON;
		if (*name == '\0')
			continue;
		if ((v->name = strdup(name)) == NULL)
			goto fail;
		if (name[0] == '[') {
			for (k = 0; k < sizeof(specials) / sizeof(*specials); k++)
				if (strcmp(name, specials[k].name) == 0)
					break;
			if (k < sizeof(specials) / sizeof(*specials)) {
				v->kind = specials[k].kind;
				/* the stack set up at exec: VM_GROWSDOWN on x86 */
				if (v->kind == RF_VMA_STACK)
					v->flags |= RF_VMA_GROWSDOWN;
			} else if (strncmp(name, "[anon:", 6) != 0 &&
			    strncmp(name, "[anon_shmem:", 12) != 0) {
				rf_errf(e, RF_EX_NO, "pid %d: mapping %#" PRIx64 "-%#" PRIx64
				    " %s: special mapping that cannot be rebuilt",
				    (int)pid, v->start, v->end, name);
				goto fail_e;
			}
		} else if (cannot_rebuild(name)) {
			rf_errf(e, RF_EX_NO, "pid %d: mapping %#" PRIx64 "-%#" PRIx64
			    " %s: kernel object that cannot be rebuilt",
			    (int)pid, v->start, v->end, name);
			goto fail_e;
		} else if (v->flags & RF_VMA_SHARED &&
		    strcmp(name, "/dev/zero" DELETED) == 0) {
			/* MAP_SHARED | MAP_ANONYMOUS shows up as this shmem file */
			v->kind = RF_VMA_ANON;
		} else {
			v->kind = RF_VMA_FILE;
			if (file_identity(v, dev, ino, n > 1 ? &vmas[n - 2] : NULL) == -1)
				goto fail;
		}
	}
	free(buf);
	*vmasp = vmas;
	*np = n;
	return 0;
fail:
	rf_errno(e, "pid %d: maps", (int)pid);
fail_e:
	free(buf);
	for (i = 0; i < n; i++) {
		free(vmas[i].name);
		free(vmas[i].file.path);
	}
	free(vmas);
	return -1;
}
