/*
 * restorer.h - the contract between rf-restore (lib/restore.c) and the
 * restorer blob (lib/restorer/restorer.c) that runs inside the process being
 * rebuilt.  Freestanding: fixed-size integers only, no pointers that need
 * relocating (addresses are plain integers in the blob's own address space).
 *
 * The blob's region, chosen free both in the old layout and in the image's:
 *
 *   [ blob code | struct rst_args + rst_vma[nvma] | stack | vdso bounce area ]
 *
 * Entry: jump to offset 0 with %rdi = address of struct rst_args and %rsp at
 * the top of the stack area.  The blob talks to rf-restore over args->sock
 * (SOCK_SEQPACKET), one struct rst_msg each: RST_READY once every mapping
 * exists, with a userfaultfd for the anonymous ones attached if it could make
 * one; RST_FAIL with the failing step and errno, after which it exits.  After
 * rf-restore has written the pages and answered RST_GO, the blob finishes,
 * sends RST_DONE and unmaps its own region with its last system call; the
 * fetch that follows faults, and rf-restore, tracing it, takes over at that
 * SIGSEGV stop (registers, xstate, mask) and discards the signal.
 * In fork mode (filter_len > 0) the filter goes in between RST_DONE and
 * that last munmap.
 */
#ifndef RF_RESTORER_H
#define RF_RESTORER_H

#include <stdint.h>

#define RST_MAGIC 0x72666f726b727374ull	/* "tsrkrofr" */
#define RST_STACK_SIZE (64u << 10)
#define RST_NSIG 64
#define RST_NRLIMIT 16
#define RST_AUXV_MAX 128
#define RST_NVDSO 3		/* [vvar] [vvar_vclock] [vdso] */

/* rst_vma.how */
#define RST_FILL 0x1		/* mapped writable first: pages come from rf-restore */
#define RST_SHARED 0x2		/* MAP_SHARED */
#define RST_GROWSDOWN 0x4	/* MAP_GROWSDOWN */

struct rst_vma {
	uint64_t start, len, pgoff;
	int32_t fd;		/* -1: anonymous */
	uint32_t prot;		/* final PROT_* */
	uint32_t how;		/* RST_* */
	uint32_t pad;
};

/* Same layout as the kernel's struct prctl_mm_map (PR_SET_MM_MAP). */
struct rst_mm_map {
	uint64_t start_code, end_code, start_data, end_data;
	uint64_t start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv;		/* pointer, filled in by the blob */
	uint32_t auxv_size;	/* bytes */
	uint32_t exe_fd;	/* (uint32_t)-1: leave /proc/PID/exe */
};

/* Kernel struct sigaction for rt_sigaction on x86-64. */
struct rst_sigaction {
	uint64_t handler, flags, restorer, mask;
};

enum rst_step {
	RST_STEP_NONE,
	RST_STEP_BLOCK,		/* rt_sigprocmask */
	RST_STEP_RSEQ_OFF,	/* unregister the inherited rseq area */
	RST_STEP_UNMAP,		/* munmap of the old layout */
	RST_STEP_VDSO,		/* mremap of the vdso block */
	RST_STEP_MMAP,		/* index: the mapping */
	RST_STEP_WAIT,		/* reading rf-restore's go */
	RST_STEP_MPROTECT,
	RST_STEP_RLIMIT,	/* index: the resource */
	RST_STEP_MM,		/* PR_SET_MM_MAP */
	RST_STEP_SIGACTION,	/* index: the signal */
	RST_STEP_ALTSTACK,
	RST_STEP_RSEQ,
	RST_STEP_PENDING,	/* index: the signal */
	RST_STEP_CAPS,		/* dropping the capability kept for PR_SET_MM_MAP */
	RST_STEP_CHILD,		/* not the blob: the child before it (lib/restore.c) */
	RST_STEP_FILTER,	/* seccomp: reported by the exit status (errno) */
};

enum { RST_READY = 1, RST_FAIL = 2, RST_GO = 3, RST_DONE = 4 };

struct rst_msg {
	uint32_t type;		/* RST_READY, RST_FAIL, RST_GO, RST_DONE */
	uint32_t step;		/* enum rst_step */
	int32_t err;		/* errno; for RST_STEP_CHILD the exit code */
	uint32_t index;
	uint64_t addr, len;	/* RST_READY: the blob's region */
	uint32_t exe_set;	/* RST_DONE: /proc/PID/exe was set */
	uint32_t uffd;		/* RST_READY: a userfaultfd is attached (SCM_RIGHTS) */
	char text[400];		/* RST_STEP_CHILD: the whole message */
};

struct rst_args {
	uint64_t magic;
	uint64_t self, self_len;	/* the whole region, unmapped at the end */
	uint64_t bounce;		/* vdso bounce area inside the region */
	uint64_t task_size;

	/* The [vvar] [vvar_vclock] [vdso] block: where it is, where it goes. */
	uint64_t vdso_from, vdso_to, vdso_len;
	uint64_t vdso_part[RST_NVDSO];	/* lengths, in address order; 0: absent */

	int32_t sock;
	int32_t fd_lo;			/* fds >= fd_lo are the restorer's own */
	int32_t uffd_fd;		/* post-copy: a userfaultfd made before the
					   credentials changed (kernel faults too);
					   -1: make one, user faults only */
	int32_t pad0;

	/* glibc's rseq registration inherited from rf-restore */
	uint64_t rseq_old;
	uint32_t rseq_old_len[2], rseq_old_sig;

	/* the image's */
	uint64_t rseq_ptr;
	uint32_t rseq_len, rseq_flags, rseq_sig;
	uint32_t drop_caps;		/* capset to nothing after PR_SET_MM_MAP */

	uint64_t rlim[RST_NRLIMIT][2];
	struct rst_mm_map mm;
	uint64_t auxv[RST_AUXV_MAX];
	struct rst_sigaction sigact[RST_NSIG];	/* index sig-1 */
	uint64_t ss_sp, ss_size;
	int32_t ss_flags;
	uint32_t pad;
	uint64_t pending;			/* re-raised, bit sig-1 */

	/*
	 * Fork mode: a seccomp filter (classic BPF, filter_len instructions
	 * at address filter) installed after every fd of ours is closed, so
	 * its listener takes the lowest free number.  Nothing can be reported
	 * after it (writes would wait for the listener): a failure is the
	 * exit status, the errno.
	 */
	uint64_t filter;
	uint32_t filter_len, filter_flags;

	uint64_t nvma;
	struct rst_vma vma[];
};

#endif
