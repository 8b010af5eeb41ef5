/* SPDX-License-Identifier: MIT */
/*
 * The sibling threads a benchmark case runs beside the thread that forks
 * (or stops the world), shared by forklat (libcfork, glibc) and gcstop
 * (bdwgc), so that every mechanism is timed against the same kind of
 * thread.
 */
#ifndef BENCH_SIBLINGS_H
#define BENCH_SIBLINGS_H

#include <pthread.h>

enum sib_kind {
	SIB_IDLE,     /* blocked in pthread_cond_wait (a futex wait) */
	SIB_SPIN,     /* spinning in user code, never entering libc */
	SIB_MALLOC,   /* malloc/free loop: lives inside libc */
	SIB_STDIO,    /* fopen/fprintf/fclose loop: stdio's locks */
	SIB_CHURN,    /* creates and joins threads all the time */
};

/* bdwgc wants its threads created through its own wrappers. */
typedef int sib_create_fn(pthread_t *, const pthread_attr_t *,
			  void *(*)(void *), void *);
typedef int sib_join_fn(pthread_t, void **);

struct siblings {
	pthread_t *tids;
	int count, cap;
	sib_create_fn *create;        /* pthread_create unless set */
	sib_join_fn *join;            /* pthread_join unless set */
};

/* Adds n threads of one kind and returns once every thread of the set is
 * where its kind says (idle ones inside their wait); 0, or -1 with a
 * message on stderr. */
int sib_start(struct siblings *s, enum sib_kind kind, int n);
/* Wakes the n idle threads and returns once they are all back in their
 * wait, as threads of a pool between two jobs; 0, or -1 with a message. */
int sib_wake_idle(int n);
/* Stops and joins every thread of the set. */
void sib_stop(struct siblings *s);

#endif /* BENCH_SIBLINGS_H */
