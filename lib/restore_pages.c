/*
 * restore_pages.c - the page records of an image into the process being
 * rebuilt.  Anonymous memory goes in with UFFDIO_COPY on the child's
 * userfaultfd (a fresh page filled directly, no zeroing, no fault), the
 * rest (copy-on-write pages of file mappings, or everything without a
 * userfaultfd) with process_vm_writev.
 *
 * Reading and checking a record and copying it into the child cost about
 * the same, so for more than a little memory a second thread copies one
 * slot while this one reads the next.  Slots are reused from their start:
 * they stay hot, and first touch of memory is what costs on these machines.
 * The first slot is read while the child still builds its layout
 * (rf_pager_start), the rest once it is ready (rf_pager_run).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <linux/userfaultfd.h>
#include "rf_restore.h"

#define SLOT_FILL (1u << 20)		/* hand a slot over past this */
#define SLOT_CAP (SLOT_FILL + RF_PAGES_MAX)
#define SLOT_CHUNKS 512
#define NSLOT 2
#define THREAD_MIN (16u << 20)		/* fewer page bytes: no second thread */

struct chunk {
	uint64_t addr;
	size_t off, len;
	int anon;			/* by UFFDIO_COPY if there is a userfaultfd,
					   else process_vm_writev */
};

struct slot {
	char *buf;
	struct chunk c[SLOT_CHUNKS];
	int n;
	int full;
};

struct rf_pager {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct slot slot[NSLOT];
	int uffd;
	pid_t pid;
	int quit, failed;
	struct rf_err err;
	struct iovec l[IOV_MAX], rv[IOV_MAX];
	struct rf_imgr *r;
	const struct rf_proc *p;
	const int *vmafile;
	int got;			/* the stream's verdict on the first slot */
};

static int
uffd_copy(int uffd, uint64_t addr, const char *buf, size_t len, struct rf_err *e)
{
	struct uffdio_copy c;

	while (len > 0) {
		c = (struct uffdio_copy){ .dst = addr, .src = (uint64_t)buf, .len = len };
		if (ioctl(uffd, UFFDIO_COPY, &c) == -1 && errno != EAGAIN)
			return rf_errno(e, "restore: writing pages at 0x%" PRIx64, addr);
		if (c.copy <= 0) {
			if (c.copy == -EAGAIN)
				continue;
			errno = -c.copy;
			return rf_errno(e, "restore: writing pages at 0x%" PRIx64, addr);
		}
		addr += c.copy;
		buf += c.copy;
		len -= c.copy;
	}
	return 0;
}

static int
vm_write(pid_t pid, struct iovec *l, struct iovec *rv, int n, struct rf_err *e)
{
	ssize_t w;
	int i = 0;

	while (i < n) {
		w = process_vm_writev(pid, l + i, n - i, rv + i, n - i, 0);
		/* EFAULT: e.g. file pages beyond the end of the file (SIGBUS). */
		if (w <= 0)
			return rf_errf(e, w == 0 || errno == EFAULT ? RF_EX_DATAERR : RF_EX_OSERR,
			    "image: pages at 0x%" PRIx64 ": cannot be written in place (%s)",
			    (uint64_t)rv[i].iov_base, w == 0 ? "no progress" : strerror(errno));
		/* Partial: skip what went in and go on. */
		while (i < n && (size_t)w >= l[i].iov_len)
			w -= l[i++].iov_len;
		if (i < n && w > 0) {
			l[i].iov_base = (char *)l[i].iov_base + w;
			l[i].iov_len -= w;
			rv[i].iov_base = (char *)rv[i].iov_base + w;
			rv[i].iov_len -= w;
		}
	}
	return 0;
}

/* Everything a slot holds into the child. */
static int
put_slot(struct rf_pager *pg, struct slot *s, struct rf_err *e)
{
	int i, n = 0;

	for (i = 0; i < s->n; i++) {
		const struct chunk *c = &s->c[i];
		if (c->anon && pg->uffd != -1) {
			if (uffd_copy(pg->uffd, c->addr, s->buf + c->off, c->len, e) == -1)
				return -1;
			continue;
		}
		if (n > 0 && (char *)pg->l[n - 1].iov_base + pg->l[n - 1].iov_len ==
		    s->buf + c->off && (uint64_t)pg->rv[n - 1].iov_base +
		    pg->rv[n - 1].iov_len == c->addr) {
			pg->l[n - 1].iov_len += c->len;
			pg->rv[n - 1].iov_len += c->len;
			continue;
		}
		pg->l[n] = (struct iovec){ s->buf + c->off, c->len };
		pg->rv[n] = (struct iovec){ (void *)c->addr, c->len };
		n++;
	}
	return n > 0 ? vm_write(pg->pid, pg->l, pg->rv, n, e) : 0;
}

static void *
copier(void *arg)
{
	struct rf_pager *pg = arg;
	struct slot *s;
	struct rf_err e;
	int k = 0, r;

	for (;;) {
		s = &pg->slot[k];
		pthread_mutex_lock(&pg->mu);
		while (!s->full && !pg->quit)
			pthread_cond_wait(&pg->cv, &pg->mu);
		if (!s->full) {
			pthread_mutex_unlock(&pg->mu);
			return NULL;
		}
		r = pg->failed;
		pthread_mutex_unlock(&pg->mu);
		if (!r && put_slot(pg, s, &e) == -1) {
			pthread_mutex_lock(&pg->mu);
			pg->failed = 1;
			pg->err = e;
			pthread_mutex_unlock(&pg->mu);
		}
		pthread_mutex_lock(&pg->mu);
		s->full = 0;
		pthread_cond_broadcast(&pg->cv);
		pthread_mutex_unlock(&pg->mu);
		k = (k + 1) % NSLOT;
	}
}

/* Read records into s until it is worth handing over; the stream's verdict. */
static int
fill_slot(struct rf_pager *pg, struct slot *s, struct rf_err *e)
{
	const struct rf_proc *p = pg->p;
	uint64_t addr;
	size_t len, used = 0;
	ssize_t vi;
	int got = 1;

	s->n = 0;
	while (used < SLOT_FILL && s->n < SLOT_CHUNKS) {
		got = rf_imgr_pages(pg->r, &addr, s->buf + used, SLOT_CAP - used, &len, e);
		if (got != 1)
			break;
		vi = rf_proc_find_vma(p, addr);
		if (p->vmas[vi].flags & RF_VMA_SHARED)
			continue;	/* a shared mapping shows the file */
		s->c[s->n++] = (struct chunk){ addr, used, len, pg->vmafile[vi] == -1 };
		used += len;
	}
	return got;
}

static int
slot_alloc(struct slot *s, struct rf_err *e)
{
	s->buf = mmap(NULL, SLOT_CAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
	    MAP_NORESERVE, -1, 0);
	if (s->buf == MAP_FAILED) {
		s->buf = NULL;
		return rf_errno(e, "restore: buffer");
	}
	return 0;
}

int
rf_pager_start(struct rf_pager **pgp, pid_t pid, struct rf_imgr *r, const struct rf_proc *p,
    const int *vmafile, struct rf_err *e)
{
	struct rf_pager *pg;

	if ((*pgp = pg = calloc(1, sizeof(*pg))) == NULL)
		return rf_errno(e, "restore");
	pthread_mutex_init(&pg->mu, NULL);
	pthread_cond_init(&pg->cv, NULL);
	pg->uffd = -1;
	pg->pid = pid;
	pg->r = r;
	pg->p = p;
	pg->vmafile = vmafile;
	if (slot_alloc(&pg->slot[0], e) == -1)
		return -1;
	pg->got = fill_slot(pg, &pg->slot[0], e);
	return pg->got == -1 ? -1 : 0;
}

int
rf_pager_run(struct rf_pager *pg, int uffd, struct rf_err *e)
{
	struct slot *s = &pg->slot[0];
	pthread_t th;
	int k = 0, got = pg->got, threaded, failed;

	pg->uffd = uffd;
	threaded = got == 1 && rf_proc_page_bytes(pg->p) >= THREAD_MIN;
	if (threaded && slot_alloc(&pg->slot[1], e) == -1)
		return -1;
	threaded = threaded && pthread_create(&th, NULL, copier, pg) == 0;
	for (;;) {
		if (s->n > 0 && !threaded && put_slot(pg, s, e) == -1)
			return -1;
		if (s->n > 0 && threaded) {
			pthread_mutex_lock(&pg->mu);
			s->full = 1;
			pthread_cond_broadcast(&pg->cv);
			pthread_mutex_unlock(&pg->mu);
			k = (k + 1) % NSLOT;
		}
		if (got != 1)
			break;
		s = &pg->slot[k];
		if (threaded) {
			pthread_mutex_lock(&pg->mu);
			while (s->full && !pg->failed)
				pthread_cond_wait(&pg->cv, &pg->mu);
			failed = pg->failed;
			pthread_mutex_unlock(&pg->mu);
			if (failed)
				break;
		}
		got = fill_slot(pg, s, e);
	}
	if (threaded) {
		pthread_mutex_lock(&pg->mu);
		pg->quit = 1;
		pthread_cond_broadcast(&pg->cv);
		pthread_mutex_unlock(&pg->mu);
		pthread_join(th, NULL);
		if (pg->failed && got != -1) {
			*e = pg->err;
			got = -1;
		}
	}
	return got == -1 ? -1 : 0;
}

void
rf_pager_free(struct rf_pager *pg)
{
	int i;

	if (pg == NULL)
		return;
	for (i = 0; i < NSLOT; i++)
		if (pg->slot[i].buf != NULL)
			munmap(pg->slot[i].buf, SLOT_CAP);
	pthread_mutex_destroy(&pg->mu);
	pthread_cond_destroy(&pg->cv);
	free(pg);
}
