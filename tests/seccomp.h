/* SPDX-License-Identifier: MIT */
/* The tests' seccomp filters: the same first instructions, and the
 * install on the calling thread (a filter cannot be removed, so tests put
 * it in a thread or a child of their own). */
#ifndef CFORK_TEST_SECCOMP_H
#define CFORK_TEST_SECCOMP_H

#include <errno.h>
#include <stddef.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>

/* Any architecture but x86-64 goes through; then the call number is
 * loaded for the filter's own tests. */
#define T_SECCOMP_LOAD_NR                                                  \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS,                                 \
		 offsetof(struct seccomp_data, arch)),                     \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),      \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),                      \
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))

/* Installs the n instructions at f on this thread: 0 or -errno. */
static inline int t_seccomp(struct sock_filter *f, unsigned short n)
{
	struct sock_fprog prog = { .len = n, .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return -errno;
	return 0;
}

#endif
