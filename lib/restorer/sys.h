/*
 * sys.h - raw system calls for the restorer blob (no libc there).
 * Each returns the kernel's value: >= 0, or -errno.
 */
#ifndef RF_RESTORER_SYS_H
#define RF_RESTORER_SYS_H

#include <stdint.h>
#include <asm/unistd.h>

static inline long
sys6(long nr, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;

	__asm__ volatile ("syscall"
	    : "=a"(ret)
	    : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
	    : "rcx", "r11", "memory");
	return ret;
}

#define sys0(n) sys6((n), 0, 0, 0, 0, 0, 0)
#define sys1(n, a) sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys5(n, a, b, c, d, e) \
	sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* Constants the blob needs, from the kernel ABI (no libc headers here). */
#define R_O_NONBLOCK 04000
#define R_O_CLOEXEC 02000000
#define R_PROT_READ 0x1
#define R_PROT_WRITE 0x2
#define R_MAP_SHARED 0x01
#define R_MAP_PRIVATE 0x02
#define R_MAP_FIXED 0x10
#define R_MAP_ANONYMOUS 0x20
#define R_MAP_GROWSDOWN 0x0100
#define R_MAP_NORESERVE 0x4000
#define R_MREMAP_MAYMOVE 1
#define R_MREMAP_FIXED 2
#define R_PR_SET_MM 35
#define R_PR_SET_MM_MAP 14
#define R_RSEQ_FLAG_UNREGISTER 1
#define R_SIG_BLOCK 0
#define R_SIG_SETMASK 2
#define R_SIGKILL 9
#define R_SIGSEGV 11
#define R_SIGSTOP 19
#define R_EINVAL 22
#define R_EPERM 1
#define R_EINTR 4
#define R_EAGAIN 11
#define R_EACCES 13
#define R_SECCOMP_SET_MODE_FILTER 1
#define R_PR_SET_NO_NEW_PRIVS 38

#endif
