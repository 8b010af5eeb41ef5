/* SPDX-License-Identifier: MIT */
/*
 * Pinned memory for the coherence tests: pages registered as io_uring
 * fixed buffers, which fork copies eagerly (the case that tears), and the
 * writers and checks that detect a torn child.
 */
#ifndef CFORK_PINNED_H
#define CFORK_PINNED_H

#include <liburing.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#define PIN_PAGES 16
#define PAGE 4096
#define RING_SLOTS 64
#define SLOT_WORDS 60

struct pinned {
	struct io_uring ring;
	unsigned char *mem;             /* PIN_PAGES + ring pages */
	size_t len;
};

/* A counter striped over PIN_PAGES pages: the writer stores c into page 0,
 * then 1, ... 15.  Any state that existed reads c...c (c-1)...(c-1). */
static inline _Atomic uint64_t *stripe(struct pinned *p, int page)
{
	return (_Atomic uint64_t *)(p->mem + (size_t)page * PAGE);
}

/* A single-producer ring on the following pages: slot payload, then a
 * checksum, then the head index published with a release store. */
struct slot {
	uint64_t seq;
	uint64_t words[SLOT_WORDS];
	uint64_t sum;
};
struct ringbuf {
	_Atomic uint64_t head;
	struct slot slots[RING_SLOTS];
};
static inline struct ringbuf *ringbuf(struct pinned *p)
{
	return (struct ringbuf *)(p->mem + (size_t)PIN_PAGES * PAGE);
}

static inline uint64_t slot_sum(const struct slot *s)
{
	uint64_t h = s->seq * 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < SLOT_WORDS; i++)
		h = (h ^ s->words[i]) * 0x100000001b3ull;
	return h;
}

/* Returns 0, or a negative errno; -EPERM/-ENOSYS etc. mean "cannot pin". */
static inline int pinned_setup(struct pinned *p)
{
	p->len = (size_t)PIN_PAGES * PAGE + sizeof(struct ringbuf);
	p->len = (p->len + PAGE - 1) / PAGE * PAGE;
	p->mem = mmap(NULL, p->len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->mem == MAP_FAILED)
		return -errno;
	/* Small pages only: THP would take another copy path. */
	madvise(p->mem, p->len, MADV_NOHUGEPAGE);
	memset(p->mem, 0, p->len);
	int e = io_uring_queue_init(4, &p->ring, 0);
	if (e < 0)
		return e;
	struct iovec iov = { p->mem, p->len };
	e = io_uring_register_buffers(&p->ring, &iov, 1);
	if (e < 0) {
		io_uring_queue_exit(&p->ring);
		return e;
	}
	return 0;
}

/* One writer step for each structure. */
static inline void stripe_write(struct pinned *p, uint64_t c)
{
	for (int k = 0; k < PIN_PAGES; k++)
		atomic_store_explicit(stripe(p, k), c, memory_order_release);
}

static inline void ring_write(struct pinned *p, uint64_t seq)
{
	struct ringbuf *r = ringbuf(p);
	struct slot *s = &r->slots[seq % RING_SLOTS];
	s->seq = seq;
	for (int i = 0; i < SLOT_WORDS; i++)
		s->words[i] = seq * 31 + (uint64_t)i;
	s->sum = slot_sum(s);
	atomic_store_explicit(&r->head, seq + 1, memory_order_release);
}

/* The child's checks: true when the snapshot is a state the parent had. */
static inline bool stripe_coherent(struct pinned *p)
{
	uint64_t first = atomic_load(stripe(p, 0));
	bool dropped = false;
	for (int k = 1; k < PIN_PAGES; k++) {
		uint64_t v = atomic_load(stripe(p, k));
		if (v == first && !dropped)
			continue;
		if (v + 1 == first && first > 0) {
			dropped = true;
			continue;
		}
		if (v == first - 1 && dropped)
			continue;
		return false;
	}
	return true;
}

static inline bool ring_coherent(struct pinned *p)
{
	struct ringbuf *r = ringbuf(p);
	uint64_t head = atomic_load(&r->head);
	uint64_t lo = head > RING_SLOTS ? head - RING_SLOTS : 0;
	/* The slot after head may be mid-write; all published ones must be
	 * whole.  The oldest is excluded: the writer may be overwriting it. */
	for (uint64_t seq = lo + 1; seq < head; seq++) {
		const struct slot *s = &r->slots[seq % RING_SLOTS];
		if (s->seq != seq || s->sum != slot_sum(s))
			return false;
	}
	return true;
}

/* On a busy machine the writers may not be running at all when the fork
 * comes, and a fork can only tear what is being written: waits (a while at
 * most) until both the stripe and the ring have been seen to move. */
static inline void pinned_wait_for_writers(struct pinned *p)
{
	uint64_t s0 = atomic_load(stripe(p, 0));
	uint64_t r0 = atomic_load(&ringbuf(p)->head);
	for (int i = 0; i < 10000; i++) {
		if (atomic_load(stripe(p, 0)) != s0 &&
		    atomic_load(&ringbuf(p)->head) != r0)
			return;
		sched_yield();
	}
}

/* One fork by forker whose child checks both structures and leaves;
 * returns whether the child was torn (its pid in *child). */
static inline bool pinned_fork_torn(struct pinned *p, pid_t (*forker)(void),
				    pid_t *child)
{
	pid_t pid = forker();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(stripe_coherent(p) && ring_coherent(p) ? 0 : 1);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
	if (child)
		*child = pid;
	return WEXITSTATUS(st) != 0;
}

#endif
