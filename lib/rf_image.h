/*
 * rf_image.h - the process image: what rf-snap captures and rf-restore
 * rebuilds (struct rf_proc), its JSON metadata, and the stream that carries
 * both.  docs/FORMAT.md describes the bytes; this header is the C side.
 */
#ifndef RF_IMAGE_H
#define RF_IMAGE_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>
#include "rf.h"

#define RF_IMAGE_VERSION 2	/* the stream's; it reads version 1 too */
#define RF_META_VERSION 1	/* the metadata's JSON */
#define RF_PAGE_SIZE 4096u
#define RF_NSIG 64		/* signals 1..64; index sig-1 */
#define RF_NRLIMIT 16		/* RLIM_NLIMITS on x86-64 */
#define RF_AUXV_MAX 128		/* words (pairs * 2) */

/* Limits the reader enforces before it allocates anything. */
#define RF_META_MAX (64u << 20)	/* JSON metadata record */
#define RF_PAGES_MAX (4u << 20)	/* payload of one page record */
#define RF_LAZY_MIN (1u << 20)	/* rf-snap -l: post-copy mappings this big */
#define RF_XSTATE_MAX 16384

enum rf_vma_kind {
	RF_VMA_ANON,		/* anonymous (private or shared) */
	RF_VMA_FILE,		/* mapping of a file */
	RF_VMA_HEAP,		/* [heap] */
	RF_VMA_STACK,		/* [stack] */
	RF_VMA_VVAR,		/* [vvar] */
	RF_VMA_VVAR_VCLOCK,	/* [vvar_vclock] */
	RF_VMA_VDSO,		/* [vdso] */
	RF_VMA_VSYSCALL,	/* [vsyscall]: fixed by the kernel, never mapped */
};

/* rf_vma.flags */
#define RF_VMA_SHARED 0x1	/* MAP_SHARED */
#define RF_VMA_GROWSDOWN 0x2	/* VM_GROWSDOWN (the main stack) */
#define RF_VMA_FILE_PAGES 0x4	/* file not usable at restore: every page is
				   in the stream, map anonymous instead */

struct rf_file_id {
	char *path;		/* as in /proc/PID/maps, " (deleted)" removed */
	uint64_t dev, ino, size;
	int64_t mtime_sec, mtime_nsec;
};

struct rf_vma {
	uint64_t start, end;	/* page aligned, end exclusive */
	int prot;		/* PROT_READ | PROT_WRITE | PROT_EXEC */
	unsigned flags;		/* RF_VMA_* */
	enum rf_vma_kind kind;
	char *name;		/* maps' name column ("[heap]", a path, "[anon:x]") or NULL */
	struct rf_file_id file;	/* kind == RF_VMA_FILE */
	uint64_t pgoff;		/* file offset in bytes */
	uint64_t npages;	/* how many of its pages the stream carries */
};

enum rf_fd_kind {
	RF_FD_FILE,		/* regular file */
	RF_FD_DIR,
	RF_FD_CHR,		/* character device: /dev/null, terminals, ... */
	RF_FD_BLK,
	RF_FD_FIFO,		/* pipe or named fifo */
	RF_FD_SOCKET,
	RF_FD_ANON,		/* anon_inode: eventfd, epoll, signalfd, ... */
	RF_FD_OTHER,
};

struct rf_fd {
	int fd;
	int fdflags;		/* FD_CLOEXEC */
	int flags;		/* O_* from fdinfo "flags" (octal there) */
	enum rf_fd_kind kind;
	char *path;		/* readlink of /proc/PID/fd/N ("pipe:[123]" for pipes) */
	uint64_t pos;		/* fdinfo "pos" */
	uint64_t dev, ino;	/* stat of the open file */
	uint64_t rdev;		/* character/block devices */
};

/* Kernel layout of struct sigaction for rt_sigaction (x86-64). */
struct rf_sigaction {
	uint64_t handler;	/* SIG_DFL 0, SIG_IGN 1, or an address */
	uint64_t flags;		/* SA_* including SA_RESTORER */
	uint64_t restorer;
	uint64_t mask;
};

/*
 * What only a fork's child S can tell about itself, which the kernel does
 * not show in /proc, and what /proc would tell but costs more to ask there
 * than S's own calls: written by S (librfork) into its own memory just
 * before it stops, magic last, and read there by the snapshot in place of
 * asking S with injected calls and reading /proc (rf-snap -c; docs/FORK.md
 * step 2).  gen is the fork's number as the parent counts them: a record
 * left by another fork, in memory the child inherited, does not match.
 * Each part of "have" is there whole or not at all; a part that is not
 * there is read from /proc as for any process.
 */
#define RF_SELFREC_MAGIC 0x3263657266666c73ULL	/* "slffrec2" */
#define RF_SELFREC_ATTRS 0x1	/* personality, rlim, cwd (paths[cwd]) */
#define RF_SELFREC_FDS 0x2	/* fd[0..nfd) */
#define RF_SELFREC_EXE 0x4	/* exe: /proc/self/exe at the first remote fork */
#define RF_SELFREC_AUXV 0x8	/* auxv: /proc/self/auxv at the first remote fork */
#define RF_SELFREC_GROWS 0x10	/* gd[0..ngd): S asked these mappings */
#define RF_SELFREC_NFD 64
#define RF_SELFREC_PATHS 6144
#define RF_SELFREC_NGD 16

struct rf_selfrec_fd {
	int32_t fd;
	int32_t flags;		/* F_GETFL, and O_CLOEXEC if the fd has FD_CLOEXEC:
				   fdinfo's "flags" */
	uint32_t mode;		/* fstat */
	uint32_t path;		/* offset of its readlink in paths */
	uint64_t pos;		/* lseek(fd, 0, SEEK_CUR) of files, dirs and
				   block devices; 0 for the rest */
	uint64_t dev, ino, rdev;
};

struct rf_selfrec {
	uint64_t magic;
	uint64_t gen;
	int32_t pid;		/* S's getpid() */
	int32_t pad;
	uint64_t brk;		/* brk(0) */
	struct {		/* sigaltstack(NULL, &ss), the kernel's stack_t */
		uint64_t sp;
		int32_t flags, pad;
		uint64_t size;
	} altstack;
	struct rf_sigaction sigact[RF_NSIG];	/* rt_sigaction(sig, NULL, &a, 8) */
	/* the rest: only as "have" says */
	uint32_t have;
	uint32_t nfd;
	uint64_t personality;	/* personality(0xffffffff) */
	uint64_t rlim[RF_NRLIMIT][2];	/* prlimit: cur, max */
	uint32_t cwd;		/* offset of getcwd's answer in paths */
	uint32_t npaths;	/* bytes of paths used */
	uint32_t ngd, pad2;
	struct {		/* a private anonymous mapping with room below it, as
				   the parent's maps showed it just before the fork:
				   mprotect(start, page, prot | PROT_GROWSDOWN) is 0
				   only for a VM_GROWSDOWN one (and changes nothing) */
		uint64_t start;
		int32_t prot;
		int32_t grows;
	} gd[RF_SELFREC_NGD];
	struct rf_selfrec_fd fd[RF_SELFREC_NFD];
	char paths[RF_SELFREC_PATHS];	/* NUL-terminated strings */
	/* written once, at the program's first remote fork, not by each */
	uint64_t auxv_len;	/* words */
	uint64_t auxv[RF_AUXV_MAX];
	char exe[PATH_MAX];
};

struct rf_mm {
	uint64_t start_code, end_code, start_data, end_data;
	uint64_t start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
};

struct rf_proc {
	/* what and where it was taken (informational, not restored) */
	int pid;
	char *comm;
	char *host;		/* uname nodename */
	char *kernel;		/* uname release */

	/* process attributes */
	char *exe;		/* /proc/PID/exe */
	char *cwd;
	unsigned umask;
	int nice;
	unsigned long personality;
	uint64_t rlim_cur[RF_NRLIMIT], rlim_max[RF_NRLIMIT];	/* RLIM_INFINITY = ~0 */
	uint32_t uid[4], gid[4];	/* real, effective, saved, filesystem */
	uint32_t *groups;
	size_t ngroups;

	/* signal state */
	uint64_t sigblocked;	/* bit sig-1 */
	uint64_t sigpending;	/* pending for the thread or process; re-raised */
	struct rf_sigaction sigact[RF_NSIG];
	uint64_t altstack_sp, altstack_size;
	int altstack_flags;	/* SS_DISABLE, SS_AUTODISARM; SS_ONSTACK never */

	/* rseq registration; rseq_ptr == 0 means none */
	uint64_t rseq_ptr;
	uint32_t rseq_len, rseq_sig, rseq_flags;

	/* memory */
	struct rf_mm mm;
	uint64_t auxv[RF_AUXV_MAX];
	size_t auxv_len;	/* words */
	struct rf_vma *vmas;	/* sorted by start, not overlapping */
	size_t nvma;

	/* CPU */
	struct user_regs_struct regs;	/* includes fs_base, gs_base */
	uint8_t *xstate;	/* NT_X86_XSTATE as PTRACE_GETREGSET gives it */
	size_t xstate_len;
	uint64_t xfeatures;	/* XSTATE_BV of the saved area's header */

	/* files */
	struct rf_fd *fds;	/* sorted by fd */
	size_t nfd;
};

void rf_proc_free(struct rf_proc *p);
/* Total page bytes the stream carries (sum of npages * RF_PAGE_SIZE). */
uint64_t rf_proc_page_bytes(const struct rf_proc *p);
/* Index of the VMA containing addr, or -1. */
ssize_t rf_proc_find_vma(const struct rf_proc *p, uint64_t addr);
const char *rf_vma_kind_name(enum rf_vma_kind k);
const char *rf_fd_kind_name(enum rf_fd_kind k);
int rf_vma_kind_parse(const char *s);	/* -1 if unknown */
int rf_fd_kind_parse(const char *s);

/*
 * Metadata <-> JSON (lib/meta.c).  Dump sorts keys.  Load is strict: unknown
 * keys, missing fields, wrong types, out-of-range values and an unsupported
 * "version" are errors (RF_EX_DATAERR) naming the field ("metadata: vmas[3].prot:
 * expected integer").
 */
char *rf_meta_dump(const struct rf_proc *p, int indent);	/* malloc'd, NULL+errno */
int rf_meta_load(const char *json, size_t len, struct rf_proc *p, struct rf_err *e);

/*
 * The stream (lib/stream.c).  Layout in docs/FORMAT.md:
 *   file header, META record (JSON), PAGES records in address order, END record.
 * Every record header and payload is checksummed.
 */
struct rf_imgw {
	int fd;
	int raw;		/* page records uncompressed (rf-snap -U) */
	uint64_t nrec, npages, bytes;
};

/* raw: page records as they are (no PAGESZ), in a version 1 image */
int rf_imgw_start(struct rf_imgw *w, int fd, const struct rf_proc *p, int raw,
    struct rf_err *e);
/* len is a multiple of RF_PAGE_SIZE, at most RF_PAGES_MAX; addr page aligned. */
int rf_imgw_pages(struct rf_imgw *w, uint64_t addr, const void *data, size_t len,
    struct rf_err *e);
/* Pages that exist but come later from a page source (a post-copy fork). */
int rf_imgw_lazy(struct rf_imgw *w, uint64_t addr, uint64_t len, struct rf_err *e);
int rf_imgw_end(struct rf_imgw *w, struct rf_err *e);

struct rf_range {
	uint64_t addr, len;
};

struct rf_imgr {
	int fd;
	ssize_t (*src)(void *ctx, void *buf, size_t n);	/* instead of fd */
	void *srcctx;
	const struct rf_proc *p;	/* set by rf_imgr_start */
	uint64_t off;			/* stream offset, for messages */
	uint64_t nrec, npages;
	uint64_t next_addr;		/* page records must ascend */
	uint64_t *vma_pages;		/* pages seen per VMA */
	int done;
	int lazy_ok;			/* LAZY records allowed (else an error) */
	uint32_t version;		/* the stream's format version */
	uint8_t *zbuf;			/* a compressed page record's payload */
	struct rf_range *lazy;		/* their ranges, ascending, merged */
	size_t nlazy;
	uint64_t nlazypages;
};

/*
 * Read the header and metadata into *p and check the metadata against itself
 * (VMAs sorted, aligned, not overlapping, npages fit, sizes sane).
 * Errors: RF_EX_NOINPUT for an empty stream, RF_EX_DATAERR otherwise
 * (RF_EX_IOERR for read errors).
 */
int rf_imgr_start(struct rf_imgr *r, int fd, struct rf_proc *p, struct rf_err *e);
/* The same, reading through src (as read(2): 0 at the end, -1 with errno). */
int rf_imgr_start_src(struct rf_imgr *r, ssize_t (*src)(void *ctx, void *buf, size_t n),
    void *ctx, struct rf_proc *p, struct rf_err *e);
/*
 * Next page record into buf (cap >= RF_PAGES_MAX).  Returns 1 and sets *addr
 * and *len; 0 after a valid END record followed by end of input (every VMA
 * got exactly its npages); -1 on error ("image: page record 12 at 0x7f..:
 * checksum mismatch").
 */
int rf_imgr_pages(struct rf_imgr *r, uint64_t *addr, void *buf, size_t cap, size_t *len,
    struct rf_err *e);
void rf_imgr_free(struct rf_imgr *r);

#endif
