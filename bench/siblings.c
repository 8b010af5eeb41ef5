/* SPDX-License-Identifier: MIT */
/* The sibling threads of a benchmark case (siblings.h). */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "siblings.h"

static _Atomic bool stop;
static _Atomic int started;
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;

/* The cheapest sibling there is: whatever it costs to stop it is the cost
 * of the mechanism itself.  It holds idle_lock until the wait releases
 * it, which is how sib_start knows it is inside the wait. */
static int woke;                   /* under idle_lock: sib_wake_idle */

static void *idle_sibling(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&idle_lock);
	atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		pthread_cond_wait(&idle_cond, &idle_lock);
		woke++;
	}
	pthread_mutex_unlock(&idle_lock);
	return NULL;
}

/* Always runnable and always in the program's own code: a signal finds
 * it at a safe point, but only once the scheduler runs it. */
static void *spin_sibling(void *arg)
{
	volatile uint64_t work = (uintptr_t)arg;
	atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		for (int i = 0; i < 1000; i++)
			work = work * 6364136223846793005ull + 1;
	return NULL;
}

/* Mixed sizes, a few blocks kept alive, so that the thread takes arena
 * locks and visits the tcache, bins and now and then mmap. */
static void *malloc_sibling(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 2654435761u + 1;
	void *keep[16] = { 0 };
	atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		size_t size = 16u << (seed >> 60 & 7);     /* 16 B .. 2 KiB */
		if ((seed >> 40 & 63) == 0)
			size = 200000;         /* above the mmap threshold */
		unsigned slot = (unsigned)(seed >> 32) % 16;
		free(keep[slot]);
		keep[slot] = malloc(size);
		if (keep[slot])
			memset(keep[slot], 1, 16);
	}
	for (int i = 0; i < 16; i++)
		free(keep[i]);
	return NULL;
}

/* fopen and fclose take stdio's list lock, fprintf the stream's lock, and
 * both allocate: locks that fork() itself takes. */
static void *stdio_sibling(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
	for (unsigned i = 0;
	     !atomic_load_explicit(&stop, memory_order_relaxed); i++) {
		FILE *f = fopen("/dev/null", "w");
		if (!f)
			continue;
		fprintf(f, "line %u of a benchmark %s\n", i, "sibling");
		fclose(f);
	}
	return NULL;
}

static void *nothing(void *arg)
{
	return arg;
}

/* The thread list keeps changing under whoever stops the threads. */
static void *churn_sibling(void *arg)
{
	(void)arg;
	atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		pthread_t t;
		if (pthread_create(&t, NULL, nothing, NULL) == 0)
			pthread_join(t, NULL);
	}
	return NULL;
}

static void *(*const body[])(void *) = {
	[SIB_IDLE] = idle_sibling,
	[SIB_SPIN] = spin_sibling,
	[SIB_MALLOC] = malloc_sibling,
	[SIB_STDIO] = stdio_sibling,
	[SIB_CHURN] = churn_sibling,
};

int sib_start(struct siblings *s, enum sib_kind kind, int n)
{
	if (s->count == 0) {
		atomic_store(&stop, false);
		atomic_store(&started, 0);
	}
	if (s->count + n > s->cap) {
		int cap = s->count + n;
		pthread_t *t = realloc(s->tids, (size_t)cap * sizeof *t);
		if (!t) {
			fprintf(stderr, "bench: no memory for %d threads\n", cap);
			return -1;
		}
		s->tids = t;
		s->cap = cap;
	}
	sib_create_fn *create = s->create ? s->create : pthread_create;
	for (int i = 0; i < n; i++) {
		int e = create(&s->tids[s->count], NULL, body[kind],
			       (void *)(uintptr_t)(s->count + 1));
		if (e) {
			fprintf(stderr, "bench: thread %d of %d: %s\n",
				s->count + 1, n, strerror(e));
			return -1;
		}
		s->count++;
	}
	/* Bounded: a thread that never starts is a broken machine, and a
	 * benchmark must say so rather than hang. */
	struct timespec ms = { 0, 1000000 };
	for (int i = 0; atomic_load(&started) < s->count; i++) {
		if (i == 60000) {
			fprintf(stderr, "bench: only %d of %d threads started "
				"in 60 s\n", atomic_load(&started), s->count);
			return -1;
		}
		nanosleep(&ms, NULL);
	}
	/* The last idle thread to start releases the lock in its wait. */
	pthread_mutex_lock(&idle_lock);
	pthread_mutex_unlock(&idle_lock);
	ms.tv_nsec = 20000000;
	nanosleep(&ms, NULL);
	return 0;
}

int sib_wake_idle(int n)
{
	pthread_mutex_lock(&idle_lock);
	woke = 0;
	pthread_cond_broadcast(&idle_cond);
	pthread_mutex_unlock(&idle_lock);
	/* Each one counts itself with the lock held, which it lets go of
	 * only inside its next wait: once all have counted and the lock is
	 * free, all are back in the wait. */
	struct timespec us = { 0, 20000 };
	for (int i = 0; i < 3000000; i++) {
		pthread_mutex_lock(&idle_lock);
		int done = woke >= n;
		pthread_mutex_unlock(&idle_lock);
		if (done)
			return 0;
		nanosleep(&us, NULL);
	}
	fprintf(stderr, "bench: idle threads did not wait again in 60 s\n");
	return -1;
}

void sib_stop(struct siblings *s)
{
	sib_join_fn *join = s->join ? s->join : pthread_join;
	pthread_mutex_lock(&idle_lock);
	atomic_store(&stop, true);
	pthread_cond_broadcast(&idle_cond);
	pthread_mutex_unlock(&idle_lock);
	for (int i = 0; i < s->count; i++)
		join(s->tids[i], NULL);
	free(s->tids);
	s->tids = NULL;
	s->count = s->cap = 0;
}
