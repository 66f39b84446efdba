/*
 * mmap.c - a file at home mapped by a remote child (docs/FORK.md "Files at
 * home"): a home number holds a placeholder, which the kernel will not map
 * (EACCES: the write end of a pipe; ENODEV had it been readable).  Then the proxy is asked (RF_FWD_IOC_MAPFD) for a sealed copy
 * of the file's range, as it is at home now, and that is mapped instead:
 * private mappings, and shared ones that are not writable.  A shared
 * writable mapping cannot span hosts: ENODEV stays, said on stderr.
 * Anywhere else (no proxy: EBADF) the kernel's answer stands.
 */
#include <errno.h>
#include <sys/mman.h>
#include "rf_fwd.h"
#include "rfork.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct rf_fwd_mapreq q;
	struct rfp_str why = { .n = 0 };
	long nfd;
	void *p;
	int err, kerr;

	p = (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED || (errno != EACCES && errno != ENODEV) || fd < 0 ||
	    (flags & MAP_ANONYMOUS))
		return p;
	kerr = errno;
	q = (struct rf_fwd_mapreq){ .fd = fd, .prot = prot, .flags = flags, .off = off,
	    .len = len };
	nfd = syscall(SYS_ioctl, RF_FWD_MAGIC_FD, RF_FWD_IOC_MAPFD, &q);
	if (nfd < 0) {
		err = errno;
		if (err == EXDEV) {
			rfp_cat(&why, "mmap of fd ");
			rfp_num(&why, (unsigned long)fd);
			rfp_log(why.s, ": a shared writable mapping of a file at home cannot span "
			    "hosts (ENODEV)", NULL);
		}
		/* EBADF: no proxy, or not a number of home: the kernel's answer */
		errno = err == EBADF ? kerr : err == EXDEV ? ENODEV : err;
		return MAP_FAILED;
	}
	p = (void *)syscall(SYS_mmap, addr, len, prot, flags, (int)nfd, off);
	err = errno;
	rfp_close(nfd);
	errno = err;
	return p;
}

EXPORT void *mmap64(void *, size_t, int, int, int, off_t) __attribute__((alias("mmap")));
