/*
 * rf_lazy.h - post-copy memory for a remote fork (lib/lazy.c).
 */
#ifndef RF_LAZY_H
#define RF_LAZY_H

#include <stdint.h>
#include <sys/types.h>
#include "rf.h"
#include "rf_image.h"
#include "rf_net.h"

struct rf_lazy;

/*
 * Proxy side: a thread takes the page connection (get_conn, which waits at
 * most timeout_ms, and gives up at once when stopfd is readable) and fills
 * the child's lazy ranges (from the image, rf_imgr .lazy) through uffd,
 * which it owns from now on.  If it fails the child is killed.  Signals are
 * blocked in it.
 */
int rf_lazy_start(struct rf_lazy **l, int uffd, pid_t child, const struct rf_range *r,
    size_t nr, int (*get_conn)(void *ctx, struct rf_chan *c, int timeout_ms, int stopfd,
    struct rf_err *e), void *ctx, int timeout_ms, struct rf_err *e);
/* For the log: lazy pages, those put in, those the child dropped first
   (unmapped, MADV_DONTNEED), faults taken. */
struct rf_lazy_counts {
	uint64_t pages, in, gone, faults;
	uint64_t again;		/* pages asked for again (moved or unmapped meanwhile) */
};
void rf_lazy_counts(struct rf_lazy *l, struct rf_lazy_counts *c);
/*
 * Until every page is in, or the thread ended (rf_proxy_opts.before_fork:
 * a fork of the child copies its memory, which must be whole by then).
 */
void rf_lazy_wait(void *l);
/* Stop the thread; -1 with *e if it failed before every page was in. */
int rf_lazy_stop(struct rf_lazy *l, struct rf_err *e);
void rf_lazy_free(struct rf_lazy *l);

/*
 * Stub side: answer the proxy's requests from the page source src (a copy
 * of S, frozen) until it says END (0) or closes the connection (1), or
 * fails (-1).
 */
int rf_lazy_serve(struct rf_chan *c, pid_t src, struct rf_err *e);

#endif
