/*
 * rf_restore.h - rebuild a process from an image on this host (rf-restore).
 *
 * Order of calls:
 *	rf_imgr_start				(lib/stream.c: header and metadata)
 *	rf_restore_check			every check that needs no process
 *	rf_restore_run  or  rf_restore_drain	build it, or (-n) read the rest
 *	  (rf_restore_run is rf_restore_build, then rf_restore_finish)
 *	rf_restore_release  or  rf_restore_abort	let it run, or kill it
 *	rf_restore_free
 *
 * rf_restore_run forks the new process (or clones it with a given pid,
 * o.pid; as a child of our parent, o.sibling), lets the restorer blob
 * (lib/restorer/) rebuild its address space, writes the pages into it as
 * they arrive and gives it the image's registers; docs/ARCHITECTURE.md has
 * the sequence.  On any failure the half-built process is killed and reaped
 * before the call returns.  Nothing here prints: warnings are collected in
 * rs->warn for main() to show.
 */
#ifndef RF_RESTORE_H
#define RF_RESTORE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>
#include "rf_image.h"

/* -F N=M: the new process gets our fd `from` as its fd `fd` (close-on-exec
   if cloexec, when the image does not say). */
struct rf_fd_supply {
	int fd, from;
	int cloexec;
};

struct rf_restore_opts {
	int no_root;		/* -U: refuse an image with uid or gid 0 */
	int leave_stopped;	/* -S: the process is left in group stop */
	const struct rf_fd_supply *supply;
	size_t nsupply;
	/*
	 * Fork mode (-C, docs/FORK.md step 6): none of the image's fds but the
	 * supplied ones; the forwarding filter (rf_fwd_filter_prog) installed
	 * last, its listener at rs->listener; left in group stop for the proxy.
	 */
	int fwd;
	/* > 0: clone3 with set_tid, so the process gets this pid (-T). */
	pid_t pid;
	/* The process is the child of our parent, not ours (CLONE_PARENT, -T). */
	int sibling;
	/*
	 * Post-copy (rf-server's fork op): the image may have LAZY records.
	 * Their pages are left missing behind a userfaultfd that also catches
	 * kernel faults (made before the credentials change: it needs
	 * CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1), kept in rs->uffd
	 * for a page source (lib/lazy.c); the rest of the memory is unregistered.
	 */
	int lazy;
};
/* The post-copy userfaultfd is told of these (lib/lazy.c). */
#define RF_LAZY_UFFD_FEATURES ((1u << 2) | (1u << 3) | (1u << 6))	/* REMAP REMOVE UNMAP */

/* What happens to one of the image's fds. */
enum rf_fd_plan { RF_FDP_REOPEN, RF_FDP_SUPPLIED, RF_FDP_NULL, RF_FDP_NONE };

struct rf_restore_map {		/* one distinct mapped file */
	const char *path;
	int rdwr;		/* some MAP_SHARED writable mapping of it */
};

struct rf_restore {
	/* results */
	pid_t pid;
	int exe_set;		/* /proc/PID/exe is the image's exe */
	int detach_sig;
	int listener;		/* fork mode: the filter's listener fd in it */
	int uffd;		/* post-copy: the child's userfaultfd, or -1 */
	int lazy_full;		/* post-copy possible: it takes kernel faults */
	int *replaced;		/* fds replaced by /dev/null */
	size_t nreplaced;
	char **warn;		/* one line each, for stderr */
	size_t nwarn;

	/* the plan rf_restore_check makes for rf_restore_run */
	const struct rf_proc *p;
	struct rf_restore_opts o;
	enum rf_fd_plan *fdplan;	/* per image fd */
	int *vmafile;			/* per VMA: index into maps, -1 anonymous */
	struct rf_restore_map *maps;
	size_t nmaps;
	uint64_t rlim[RF_NRLIMIT][2];	/* what the process will get */
	int nice;
	int setcreds;			/* credentials differ from ours */
	int want_exe;			/* may set /proc/PID/exe (PR_SET_MM_MAP) */
	int keepcap;			/* hold CAP_CHECKPOINT_RESTORE for that */
	int keepadmin;			/* and CAP_SYS_ADMIN for the filter (-C) */
	int dropcaps;			/* a non-root image restored by a process with
					   capabilities but its uid (a user namespace's) */
	uint64_t host_vdso, host_vdso_len, host_vdso_part[3];
	uint64_t img_vdso;		/* 0: the image has no vdso block */
	uint64_t *busy;			/* our own mappings, start/end pairs */
	size_t nbusy;

	/* rf_restore_build to rf_restore_finish */
	int sock;			/* our end of the child's socket, or -1 */
	uint64_t region, region_len;	/* the blob's, where its last fetch faults */
	int stopreq;			/* a SIGSTOP came meanwhile */
};

/*
 * Check the metadata against itself and against this host: layout, the
 * vdso block, CPU features, credentials (run only), mapped files (same
 * device, inode, size and mtime), fds.  for_run = 0 checks what -n checks.
 * Data problems fill e with RF_EX_DATAERR, privilege ones with RF_EX_NOPERM.
 */
int rf_restore_check(struct rf_restore *rs, const struct rf_proc *p,
    const struct rf_restore_opts *o, int for_run, struct rf_err *e);
/*
 * Ask the CPU (cpuid) what rf_restore_check compares the image's CPU state
 * with, once for this process and those it forks: in a virtual machine each
 * cpuid is an exit to the host (12 us here).  rf_restore_check calls it too.
 */
void rf_restore_cpu(void);
/*
 * Build the process from the rest of the stream.  On success rs->pid is our
 * child, complete and held (ptrace) before its first instruction of the
 * image; every page record and the end record have been verified.
 */
int rf_restore_run(struct rf_restore *rs, struct rf_imgr *r, struct rf_err *e);
/*
 * The same in two halves.  Build returns once the whole stream is in the
 * process and it takes its last steps on its own (signals, limits, the
 * filter; rs->pid is set); finish waits for them and gives it the image's
 * registers.  Between them the caller may do work of its own (a server
 * starts its post-copy thread); rf_restore_abort undoes a build.  Each
 * kills and reaps the process when it fails.
 */
int rf_restore_build(struct rf_restore *rs, struct rf_imgr *r, struct rf_err *e);
int rf_restore_finish(struct rf_restore *rs, struct rf_err *e);
/* Let it run (or leave it in group stop, leave_stopped).  Kills it on failure. */
int rf_restore_release(struct rf_restore *rs, struct rf_err *e);
/* Kill and reap it instead (no one learnt its pid). */
void rf_restore_abort(struct rf_restore *rs);
/* Read and verify the rest of the stream without restoring (-n). */
int rf_restore_drain(struct rf_imgr *r, struct rf_err *e);
void rf_restore_free(struct rf_restore *rs);
/*
 * Internal (restore.c): the rest of the stream into process pid.  Start
 * reads the first records (up to 1 MiB of pages) while the process still
 * builds its layout; run puts them in, anonymous memory through its
 * userfaultfd (or -1), per VMA vmafile[i] >= 0 for a file mapping, and does
 * the rest of the stream; free releases the buffers (after a failure too).
 */
struct rf_pager;
int rf_pager_start(struct rf_pager **pg, pid_t pid, struct rf_imgr *r, const struct rf_proc *p,
    const int *vmafile, struct rf_err *e);
int rf_pager_run(struct rf_pager *pg, int uffd, struct rf_err *e);
void rf_pager_free(struct rf_pager *pg);
/* st is the same file as mapping v had at dump time (device, inode, size, mtime). */
int rf_restore_same_file(const struct rf_vma *v, const struct stat *st, struct rf_err *e);

#endif
