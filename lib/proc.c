/* proc.c - small queries on struct rf_proc. */
#include <stdlib.h>
#include <string.h>
#include "rf_image.h"

void
rf_proc_free(struct rf_proc *p)
{
	size_t i;

	free(p->comm);
	free(p->host);
	free(p->kernel);
	free(p->exe);
	free(p->cwd);
	free(p->groups);
	for (i = 0; i < p->nvma; i++) {
		free(p->vmas[i].name);
		free(p->vmas[i].file.path);
	}
	free(p->vmas);
	free(p->xstate);
	for (i = 0; i < p->nfd; i++)
		free(p->fds[i].path);
	free(p->fds);
	*p = (struct rf_proc){0};
}

uint64_t
rf_proc_page_bytes(const struct rf_proc *p)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < p->nvma; i++)
		n += p->vmas[i].npages;
	return n * RF_PAGE_SIZE;
}

ssize_t
rf_proc_find_vma(const struct rf_proc *p, uint64_t addr)
{
	size_t lo = 0, hi = p->nvma, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (addr < p->vmas[mid].start)
			hi = mid;
		else if (addr >= p->vmas[mid].end)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

static const char *const vma_kinds[] = {
	[RF_VMA_ANON] = "anon", [RF_VMA_FILE] = "file", [RF_VMA_HEAP] = "heap",
	[RF_VMA_STACK] = "stack", [RF_VMA_VVAR] = "vvar",
	[RF_VMA_VVAR_VCLOCK] = "vvar_vclock", [RF_VMA_VDSO] = "vdso",
	[RF_VMA_VSYSCALL] = "vsyscall",
};

static const char *const fd_kinds[] = {
	[RF_FD_FILE] = "file", [RF_FD_DIR] = "dir", [RF_FD_CHR] = "chr",
	[RF_FD_BLK] = "blk", [RF_FD_FIFO] = "fifo", [RF_FD_SOCKET] = "socket",
	[RF_FD_ANON] = "anon", [RF_FD_OTHER] = "other",
};

const char *
rf_vma_kind_name(enum rf_vma_kind k)
{
	return (unsigned)k < sizeof(vma_kinds) / sizeof(*vma_kinds) ? vma_kinds[k] : "?";
}

const char *
rf_fd_kind_name(enum rf_fd_kind k)
{
	return (unsigned)k < sizeof(fd_kinds) / sizeof(*fd_kinds) ? fd_kinds[k] : "?";
}

/* Inverse of the two above; -1 if unknown.  Used by meta.c. */
int
rf_vma_kind_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(vma_kinds) / sizeof(*vma_kinds); i++)
		if (vma_kinds[i] && strcmp(s, vma_kinds[i]) == 0)
			return i;
	return -1;
}

int
rf_fd_kind_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(fd_kinds) / sizeof(*fd_kinds); i++)
		if (fd_kinds[i] && strcmp(s, fd_kinds[i]) == 0)
			return i;
	return -1;
}
