/*
 * maps.c - may this process have a child on another host?  Not if it shares
 * memory (SPEC "Fork semantics" 9): a child there would silently lose the
 * sharing.  Read /proc/self/maps with plain system calls.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <string.h>
#include "rfork.h"
#include "rf_image.h"	/* RF_LAZY_MIN, rf-snap -l's threshold */

/*
 * glibc maps its iconv cache (gconv-modules.cache) MAP_SHARED read-only in
 * nearly every program: read-only shared mappings of system files are the
 * same files on every host and do not count.  Anything writable, System V
 * shm, shared anonymous memory and read-only mappings of other files do.
 */
static int
forbids(const char *perms, const char *path)
{
	if (perms[3] != 's')
		return 0;
	if (perms[1] == 'w' || strncmp(path, "/SYSV", 5) == 0)
		return 1;
	return strncmp(path, "/usr/", 5) != 0 && strncmp(path, "/lib", 4) != 0;
}

static unsigned long
hex(const char *s)
{
	unsigned long v = 0;

	for (;; s++) {
		if (*s >= '0' && *s <= '9')
			v = v * 16 + (*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			v = v * 16 + (*s - 'a' + 10);
		else
			return v;
	}
}

/*
 * "start-end perms offset dev inode   path": perms and path of one line.
 * Notes a private anonymous mapping big enough for post-copy, and one with
 * room below it (*prev: the end of the line before).
 */
static int
line_forbids(char *l, struct rfp_str *why, struct rfp_maps *m, unsigned long *prev)
{
	char *range = l, *perms, *path, *p, *dash;
	unsigned long start, end;
	int field;

	if ((p = strchr(l, ' ')) == NULL)
		return 0;
	*p++ = '\0';
	perms = p;
	if (strlen(perms) < 4)
		return 0;
	for (field = 0; field < 4 && (p = strchr(p, ' ')) != NULL; field++)
		while (*p == ' ')
			p++;
	path = p != NULL ? p : "";
	if ((dash = strchr(range, '-')) == NULL)
		return 0;
	start = hex(range);
	end = hex(dash + 1);
	if (perms[3] == 'p' && (*path == '\0' || strcmp(path, "[heap]") == 0 ||
	    strncmp(path, "[anon:", 6) == 0) && end - start >= RF_LAZY_MIN)
		m->big = 1;
	/* as rf-snap's maybe_growsdown picks them */
	if (perms[3] == 'p' && (*path == '\0' || strncmp(path, "[anon:", 6) == 0) &&
	    (*prev == 0 || *prev < start)) {
		/* more than gd holds: the snapshot asks the rest itself */
		if (m->ngd < RF_SELFREC_NGD) {
			m->gd[m->ngd].start = start;
			m->gd[m->ngd].len = end - start;
			m->gd[m->ngd++].prot = (perms[0] == 'r' ? PROT_READ : 0) |
			    (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
		}
	}
	*prev = end;
	if (!forbids(perms, path))
		return 0;
	why->n = 0;
	rfp_cat(why, "MAP_SHARED mapping at ");
	rfp_cat(why, range);
	if (*path != '\0') {
		rfp_cat(why, " ");
		rfp_cat(why, path);
	}
	return 1;
}

int
rfp_shared_mapping(struct rfp_str *why, struct rfp_maps *m)
{
	char buf[8192], *l, *nl;
	unsigned long prev = 0;
	size_t have = 0;
	ssize_t n;
	int fd, found = 0, skip = 0;

	m->big = 0;
	m->ngd = 0;
	if ((fd = rfp_open("/proc/self/maps", O_RDONLY)) == -1) {
		why->n = 0;
		rfp_cat(why, "cannot read /proc/self/maps");
		return -1;
	}
	while (!found && (n = rfp_read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		have += n;
		buf[have] = '\0';
		for (l = buf; !found && (nl = strchr(l, '\n')) != NULL; l = nl + 1) {
			*nl = '\0';
			if (!skip)
				found = line_forbids(l, why, m, &prev);
			skip = 0;
		}
		have -= l - buf;
		memmove(buf, l, have);
		/* A line longer than the buffer: judge it by its start. */
		if (have == sizeof(buf) - 1) {
			if (!skip)
				found = line_forbids(buf, why, m, &prev);
			have = 0;
			skip = 1;
		}
	}
	rfp_close(fd);
	if (n == -1 && !found) {
		why->n = 0;
		rfp_cat(why, "cannot read /proc/self/maps");
		return -1;
	}
	return found;
}
