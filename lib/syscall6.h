/* SPDX-License-Identifier: MIT */
/*
 * One raw x86-64 system call, no libc: shared by sys.c and by the probe's
 * freestanding helper (probe-helper.c), which has no libc to call.
 * Returns the kernel's own value (a negative errno on failure).
 */
#ifndef CFORK_SYSCALL6_H
#define CFORK_SYSCALL6_H

static inline long cf_syscall6(long nr, long a, long b, long c, long d,
			       long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
			   "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#endif
