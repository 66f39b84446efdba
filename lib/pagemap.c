/* pagemap.c - which pages of a process are present or swapped out. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "rf_snap.h"

/* Linux 6.7 <linux/fs.h>; the headers here are older. */
struct rf_page_region {
	uint64_t start, end, categories;
};

struct rf_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct rf_pm_scan_arg)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)

/* /proc/PID/pagemap entries */
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61)

#define NREGION 256	/* 6 KB on the stack: a big heap buffer is slow to fault in */
#define NENTRY 32768

struct ranges {
	struct rf_pmrange *r;
	size_t n, cap;
};

static int
add(struct ranges *rs, uint64_t start, uint64_t end, unsigned cat)
{
	struct rf_pmrange *nr;

	/* ascending and disjoint, whatever a scan resumed too early says again */
	if (rs->n > 0 && start < rs->r[rs->n - 1].end)
		start = rs->r[rs->n - 1].end;
	if (start >= end)
		return 0;
	if (rs->n > 0 && rs->r[rs->n - 1].end == start && rs->r[rs->n - 1].cat == cat) {
		rs->r[rs->n - 1].end = end;
		return 0;
	}
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 256;
		if ((nr = reallocarray(rs->r, rs->cap, sizeof(*nr))) == NULL)
			return -1;
		rs->r = nr;
	}
	rs->r[rs->n++] = (struct rf_pmrange){ start, end, cat };
	return 0;
}

/*
 * One walk over [start, end): the kernel skips the holes between mappings.
 * file: say which pages are a file's (not anonymous), which costs the
 * kernel a look at each page's struct page: 5 to 6 times the walk without
 * it (a forked child with 256 MiB touched: 6.4-8.3 ms against 1.2-1.4).
 */
static int
scan(int fd, uint64_t start, uint64_t end, int file, struct ranges *rs)
{
	struct rf_page_region vec[NREGION];
	struct rf_pm_scan_arg a;
	unsigned cat;
	long n, i;

	/* zeroed: tools like valgrind do not know that the ioctl fills it */
	memset(vec, 0, sizeof(vec));
	while (start < end) {
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.start = start;
		a.end = end;
		a.vec = (uintptr_t)vec;
		a.vec_len = NREGION;
		a.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
		a.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO |
		    (file ? PAGE_IS_FILE : 0);
		if ((n = ioctl(fd, PAGEMAP_SCAN, &a)) == -1)
			return -1;
		for (i = 0; i < n; i++) {
			cat = (vec[i].categories & PAGE_IS_PRESENT ? RF_PM_PRESENT : 0) |
			    (vec[i].categories & PAGE_IS_SWAPPED ? RF_PM_SWAPPED : 0) |
			    (vec[i].categories & PAGE_IS_FILE ? RF_PM_FILE : 0) |
			    (vec[i].categories & PAGE_IS_PFNZERO ? RF_PM_ZERO : 0);
			if (add(rs, vec[i].start, vec[i].end, cat) == -1)
				return -1;
		}
		if (a.walk_end <= start) {
			errno = EPROTO;
			return -1;
		}
		/*
		 * Linux 6.18 was seen to report regions past walk_end (1657 of
		 * 4096, walk_end mid-way and the last region at the stack): going
		 * on from walk_end would give them again, out of order.
		 */
		start = a.walk_end;
		if (n > 0 && vec[n - 1].end > start)
			start = vec[n - 1].end;
	}
	return 0;
}

/* The same from the 64-bit pagemap entries, one mapping at a time. */
static int
read_entries(int fd, uint64_t start, uint64_t end, struct ranges *rs)
{
	uint64_t *ent, addr, want;
	size_t i, n;
	ssize_t r;
	unsigned cat;
	int saved;

	if ((ent = malloc(NENTRY * sizeof(*ent))) == NULL)
		return -1;
	for (addr = start; addr < end; addr += n * RF_PAGE_SIZE) {
		want = (end - addr) / RF_PAGE_SIZE;
		n = want < NENTRY ? want : NENTRY;
		r = pread(fd, ent, n * sizeof(*ent), addr / RF_PAGE_SIZE * sizeof(*ent));
		if (r == -1)
			goto fail;
		if (r == 0 || r % sizeof(*ent) != 0) {
			errno = EPROTO;
			goto fail;
		}
		n = r / sizeof(*ent);
		for (i = 0; i < n; i++) {
			if (!(ent[i] & (PM_PRESENT | PM_SWAPPED)))
				continue;
			cat = (ent[i] & PM_PRESENT ? RF_PM_PRESENT : 0) |
			    (ent[i] & PM_SWAPPED ? RF_PM_SWAPPED : 0) |
			    (ent[i] & PM_FILE ? RF_PM_FILE : 0);
			if (add(rs, addr + i * RF_PAGE_SIZE, addr + (i + 1) * RF_PAGE_SIZE,
			    cat) == -1)
				goto fail;
		}
	}
	free(ent);
	return 0;
fail:
	saved = errno;
	free(ent);
	errno = saved;
	return -1;
}

int
rf_pagemap_ranges(pid_t pid, const struct rf_vma *vmas, const char *want,
    size_t nvma, int force_read, struct rf_pmrange **out, size_t *np)
{
	struct ranges rs = { 0 };
	char path[64];
	size_t i, k, end, first = nvma, last = 0;
	int fd, saved, done, file;

	for (i = 0; i < nvma; i++) {
		if (!want[i])
			continue;
		if (first == nvma)
			first = i;
		last = i;
	}
	*out = NULL;
	*np = 0;
	if (first == nvma)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)rf_procfs_pid(pid));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			errno = ESRCH;
		return -1;
	}
	/*
	 * Walks over runs of mappings of one class: a file's, where a page may
	 * be the file's or a private copy, and the others, whose pages are
	 * anonymous (or the zero page) without asking.
	 */
	for (i = first; !force_read && i <= last; i = k) {
		file = vmas[i].kind == RF_VMA_FILE;
		for (k = i, end = i; k <= last && (!want[k] || (vmas[k].kind == RF_VMA_FILE) == file);
		    k++)
			if (want[k])
				end = k;
		if (scan(fd, vmas[i].start, vmas[end].end, file, &rs) == 0)
			continue;
		if (errno != ENOTTY && errno != EINVAL)
			goto fail;
		rs.n = 0;
		force_read = 1;		/* no PAGEMAP_SCAN here (before 6.7) */
	}
	done = !force_read;
	for (i = first; !done && i <= last; i++)
		if (want[i] && read_entries(fd, vmas[i].start, vmas[i].end, &rs) == -1)
			goto fail;
	close(fd);
	*out = rs.r;
	*np = rs.n;
	return 0;
fail:
	saved = errno;
	close(fd);
	free(rs.r);
	errno = saved;
	return -1;
}
