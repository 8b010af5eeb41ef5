/* SPDX-License-Identifier: MIT */
/*
 * cfork.h - fork() that hands the child a coherent snapshot of memory.
 *
 * This header is the whole public interface of libcfork; libcfork(7) is the
 * overview and each function has its own manual page.
 */
#ifndef CFORK_H
#define CFORK_H

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Like fork(2): the child's pid in the parent, 0 in the child, -1 with errno
 * on failure; pthread_atfork(3) handlers run as they do for fork().  In
 * addition every sibling thread that can run user code is stopped at a safe
 * point before the kernel copies memory and resumed afterwards, so the child
 * sees a state that existed in the parent.  See cfork(3).
 */
pid_t cfork(void);

#ifdef __cplusplus
}
#endif

#endif /* CFORK_H */
