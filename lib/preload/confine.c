/*
 * confine.c - is this process confined in ways a remote child would not
 * keep?  A remote child is rebuilt by the server with the process's ids
 * and nothing of the kernel's confinement: no_new_privs, seccomp filters,
 * a capability set below what its uid gives, a smaller bounding set,
 * securebits.  Such a fork stays local and says why (SPEC 7: never more
 * privilege), as a shared mapping does (SPEC 9).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "rfork.h"

/* The lines of a status file that matter here. */
struct stat_caps {
	int nnp, filters, have;
	unsigned long long prm, eff, bnd;
	unsigned long euid;
};

static int
read_status(const char *path, struct stat_caps *c)
{
	char buf[4096], *l, *next, *e;
	ssize_t n;
	int fd;

	memset(c, 0, sizeof(*c));
	if ((fd = rfp_open(path, O_RDONLY)) == -1)
		return -1;
	n = rfp_read(fd, buf, sizeof(buf) - 1);
	rfp_close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (l = buf; l != NULL; l = next) {
		if ((next = strchr(l, '\n')) != NULL)
			*next++ = '\0';
		if (strncmp(l, "Uid:", 4) == 0) {
			strtoul(l + 4, &e, 10);
			c->euid = strtoul(e, NULL, 10);
			c->have |= 1;
		} else if (strncmp(l, "CapPrm:", 7) == 0) {
			c->prm = strtoull(l + 7, NULL, 16);
			c->have |= 2;
		} else if (strncmp(l, "CapEff:", 7) == 0) {
			c->eff = strtoull(l + 7, NULL, 16);
			c->have |= 4;
		} else if (strncmp(l, "CapBnd:", 7) == 0) {
			c->bnd = strtoull(l + 7, NULL, 16);
			c->have |= 8;
		} else if (strncmp(l, "NoNewPrivs:", 11) == 0)
			c->nnp = atoi(l + 11);
		else if (strncmp(l, "Seccomp_filters:", 16) == 0)
			c->filters = atoi(l + 16);
	}
	return c->have == 15 ? 0 : -1;
}

int
rfp_confined(struct rfp_str *why, int remote)
{
	struct stat_caps me, init;
	const char *what = NULL;

	if (read_status("/proc/self/status", &me) == -1)
		return 0;	/* nothing known: nothing to keep */
	/* a remote child has rfork's own filter: only more is the program's.
	   Its no_new_privs is the program's too, but where the server lacked
	   CAP_SYS_ADMIN (the filter then wants it): its forks stay here. */
	if (me.filters > (remote ? 1 : 0))
		what = "a seccomp filter of its own";
	else if (me.nnp)
		what = "no_new_privs";
	else if (prctl(PR_GET_SECUREBITS) > 0)
		what = "securebits";
	/* (a remote child's is its server's, and /proc here is its host's) */
	else if (!remote && read_status("/proc/1/status", &init) == 0 && me.bnd != init.bnd)
		what = "a capability bounding set smaller than this host's";
	else if (me.euid == 0 && (me.prm != me.bnd || me.eff != me.bnd))
		what = "capabilities dropped";
	if (what == NULL)
		return 0;
	why->n = 0;
	rfp_cat(why, "the process is confined (");
	rfp_cat(why, what);
	rfp_cat(why, "), which a remote child would not keep");
	return 1;
}
