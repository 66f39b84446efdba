/*
 * rf_snap.h - reading a process from /proc (lib/procfs.c), finding the pages
 * it needs carried (lib/pagemap.c), and taking it whole into a struct rf_proc
 * and an image stream (lib/snap.c).
 */
#ifndef RF_SNAP_H
#define RF_SNAP_H

#include <stdint.h>
#include <sys/types.h>
#include "rf_image.h"
#include "rf_ptrace.h"

/* procfs.c: calls return 0, or -1 with errno (ESRCH once the pid is gone). */

#define RF_PF_KTHREAD 0x00200000	/* stat "flags": a kernel thread */

struct rf_pstat {
	char state;		/* R S D T t Z X ... */
	char comm[64];
	unsigned long flags;	/* PF_* */
	long nice;
	long nthreads;
	struct rf_mm mm;	/* all but brk, which only the task can tell */
};

struct rf_pstatus {
	unsigned umask;
	uint32_t uid[4], gid[4];
	uint32_t *groups;	/* malloc'd */
	size_t ngroups;
	uint64_t sigpnd, shdpnd, sigblk, sigign, sigcgt;
	pid_t tracer;
	int seccomp;		/* 0 off, 1 strict, 2 filter */
};

/* The pid as /proc numbers it (not the caller's if it is in a pid namespace). */
pid_t rf_procfs_pid(pid_t pid);
int rf_procfs_stat(pid_t pid, struct rf_pstat *st);
int rf_procfs_status(pid_t pid, struct rf_pstatus *st);
/* /proc/PID/limits: needs no privilege, unlike prlimit(2) on another uid. */
int rf_procfs_limits(pid_t pid, uint64_t cur[RF_NRLIMIT], uint64_t max[RF_NRLIMIT]);
int rf_procfs_auxv(pid_t pid, uint64_t *auxv, size_t cap, size_t *n);
int rf_procfs_personality(pid_t pid, unsigned long *pers);
/* readlink of /proc/PID/NAME ("exe", "cwd", "fd/3"), malloc'd, or NULL. */
char *rf_procfs_link(pid_t pid, const char *name);
int rf_procfs_fds(pid_t pid, struct rf_fd **fds, size_t *n);
/* An fd's kind from its readlink and st_mode. */
enum rf_fd_kind rf_procfs_fd_kind(const char *path, mode_t mode);
/*
 * Every mapping from /proc/PID/maps: kind, protection, file identity checked
 * against the path (RF_VMA_FILE_PAGES if it is gone or another file now),
 * VM_GROWSDOWN for the stack ([stack]; other mappings' only the task can
 * tell: rf_snap_collect asks it).  npages is left 0.  A special mapping we
 * cannot rebuild is an error with code RF_EX_NO.  Not smaps: it walks every
 * page table entry (4.4 ms for 256 MiB here, against 30 us for maps).
 */
int rf_procfs_vmas(pid_t pid, struct rf_vma **vmas, size_t *n, struct rf_err *e);
/* Whole contents of a small /proc file, NUL terminated, malloc'd. */
char *rf_procfs_read(pid_t pid, const char *name, size_t *len);

/* pagemap.c */

/* rf_pmrange.cat */
#define RF_PM_PRESENT 0x1
#define RF_PM_SWAPPED 0x2
#define RF_PM_FILE 0x4		/* page cache or shmem, not an anonymous page */
#define RF_PM_ZERO 0x8		/* the shared zero page */

struct rf_pmrange {
	uint64_t start, end;
	unsigned cat;
};

/*
 * The present or swapped pages of the mappings with want[i] set (and perhaps
 * of others lying between them), in ascending order, neighbours with the
 * same categories merged, ranges not cut at mapping boundaries.  PAGEMAP_SCAN (Linux 6.7) where the kernel has it, else the
 * pagemap entries (force_read picks the latter).  *out is malloc'd.
 */
int rf_pagemap_ranges(pid_t pid, const struct rf_vma *vmas, const char *want,
    size_t nvma, int force_read, struct rf_pmrange **out, size_t *n);

/* snap.c */

/* A run of pages to carry, inside one mapping. */
struct rf_snap_run {
	uint64_t addr, npages;
	size_t vma;
	int lazy;		/* post-copy: goes as a LAZY record */
};

struct rf_snap {
	pid_t pid;
	struct rf_pt pt;
	int memfd;		/* /proc/PID/mem: pages without PROT_READ */
	int pmfd;		/* /proc/PID/pagemap, once read_target asks */
	int force_pagemap_read;	/* test the fallback for kernels before 6.7 */
	int raw;		/* page records uncompressed (rf-snap -U) */
	int go_on;		/* detach without waiting for the stop again */
	int keep_zero;		/* carry anonymous pages that read as zeros: the
				   stream then starts without reading ahead */
	struct rf_snap_run *runs;
	size_t nrun;
	uint8_t *buf;		/* reused for every read of the target */
	uint8_t *warm;		/* the caller's, RF_SNAP_BUFSZ, used as buf */
	size_t buflen;
	int cached;		/* buf already holds every run's pages, in order */
	uint64_t ninject;	/* syscalls run in the target */
	uint64_t lazy_min;	/* post-copy: the pages of private anonymous
				   mappings this big or bigger go as LAZY
				   records, but those near the stack pointer
				   and the thread pointer; 0: none */
	uint64_t selfrec, selfgen;	/* rf_snap_opt's */
	struct rf_selfrec *rec;	/* that record, read and checked; or NULL */
	struct rf_pstat st;	/* attach's look at the stopped task */
	struct rf_pstatus ps;	/* (ps.groups: taken by rf_snap_collect) */
};

#define RF_SNAP_BUFSZ (1u << 20)	/* the read buffer's size at most */

/* Send SIGSTOP and wait until the process is in group stop. */
int rf_snap_stop(pid_t pid, struct rf_err *e);
/* Wait up to seconds for pid to be stopped (by anyone); RF_EX_TEMPFAIL if not. */
int rf_snap_wait(pid_t pid, int seconds, struct rf_err *e);
/*
 * Check the process can be taken (exists, ours, stopped, one thread, not a
 * zombie or kernel thread) and seize it.  Errors name the pid with the exit
 * code to use: 66 gone, 77 not permitted, 1 running/threaded/zombie.
 * A process under seccomp is seized with its filter suspended (which needs
 * CAP_SYS_ADMIN and a tracer not under seccomp itself), unless flags has
 * RF_SNAP_FILTER_OK: its filter lets the injected calls through (rt_sigaction,
 * sigaltstack, brk), as rfork's own does.
 */
#define RF_SNAP_FILTER_OK 0x1
int rf_snap_attach(struct rf_snap *s, pid_t pid, int flags, struct rf_err *e);
/* Everything into *p, including each mapping's npages. */
int rf_snap_collect(struct rf_snap *s, struct rf_proc *p, struct rf_err *e);

/* The image: header, metadata, the pages of every run, end. */
int rf_snap_write(struct rf_snap *s, const struct rf_proc *p, int fd, struct rf_err *e);
/*
 * Let the process go, back into its group stop, and wait until it is there;
 * frees s.  Safe to call after any failure.
 */
int rf_snap_detach(struct rf_snap *s, struct rf_err *e);

/*
 * The whole dump of one process, as rf-snap does it: wait up to o->wait
 * seconds for its stop (or stop it: o->stop), seize, collect everything into
 * *p (the caller frees it), write the image to fd unless fd is -1, let it go.
 * o->buf, when not NULL, is RF_SNAP_BUFSZ bytes of the caller's memory read
 * into (touched already: fresh memory is slow to touch on some machines).
 */
struct rf_snap_opt {
	int wait, stop, flags, keep_zero, lazy, pagemap_read;
	int raw;		/* page records uncompressed */
	int go_on;		/* its owner continues it at once: no wait, after
				   the detach, for it to be back in its stop */
	uint8_t *buf;
	/* a fork's child's own record (struct rf_selfrec) at this address
	   for fork selfgen: read instead of injected calls if it matches */
	uint64_t selfrec, selfgen;
	/* a thread of ours that takes the image as it comes: kept off the
	   CPU the snapshot runs on (colocate), 0 for none */
	pid_t sender;
};
int rf_snap_take(pid_t pid, const struct rf_snap_opt *o, struct rf_proc *p, int fd,
    struct rf_err *e);

#endif
