/* SPDX-License-Identifier: MIT */
/*
 * The probe's thorough mode: the empirical tearing test.  A writer thread
 * stores an increasing counter into the first word of every 4 KiB page of
 * a pinned region, page after page, while this thread forks.  In every
 * state the parent ever had, the counters fall from the first page to the
 * last by at most one; a child that sees another pattern got pages copied
 * at different moments while the writer ran: a torn copy.
 *
 * A torn child is proof that the path tears, and overrides the fault
 * sign.  None in many forks the writer ran across is evidence only (THP
 * tore in 0 to 34 of 200 forks on one kernel that tears), so it changes
 * no verdict; the counts are in the result.
 */
#include "config.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cfork.h"
#include "internal.h"

#define PAGE 4096ul
#define HUGE (2ul << 20)
/* Forks until a child is torn (proof), or RACED forks the writer ran
 * across gave none, or MAX_FORKS in all (a writer that seldom runs). */
#define RACED 300u
#define MAX_FORKS 3000u
/* A child exits with this when torn, 0 when not. */
#define TORN_STATUS 3

struct region {
	char *map;               /* what to unmap */
	size_t map_len;
	char *base;              /* the pinned region */
	size_t len;
	_Atomic bool stop;
};

/* The writer's last completed pass lives in the pinned region too: a
 * store anywhere else would fault on the page fork has write-protected
 * and wait for the fork to end, and the writer would stop racing it. */
static _Atomic uint64_t *seq(struct region *r)
{
	return (_Atomic uint64_t *)(r->base + 64);
}

static _Atomic uint64_t *word(struct region *r, size_t page)
{
	return (_Atomic uint64_t *)(r->base + page * PAGE);
}

static void *writer(void *arg)
{
	struct region *r = arg;
	size_t pages = r->len / PAGE;
	for (uint64_t v = 1; !atomic_load_explicit(&r->stop, memory_order_relaxed); v++) {
		for (size_t i = 0; i < pages; i++)
			atomic_store_explicit(word(r, i), v, memory_order_release);
		atomic_store_explicit(seq(r), v, memory_order_relaxed);
	}
	return NULL;
}

/* In the child: only loads and a raw exit. */
static bool torn(struct region *r)
{
	size_t pages = r->len / PAGE;
	uint64_t first = atomic_load_explicit(word(r, 0), memory_order_relaxed);
	uint64_t prev = first;
	for (size_t i = 1; i < pages; i++) {
		uint64_t v = atomic_load_explicit(word(r, i), memory_order_relaxed);
		if (v > prev || first - v > 1)
			return true;
		prev = v;
	}
	return false;
}

static bool map_region(struct region *r, int path)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	r->len = path == CFORK_PATH_SMALL ? 16 * PAGE : HUGE;
	r->map_len = path == CFORK_PATH_THP ? 2 * HUGE : r->len;
	if (path == CFORK_PATH_HUGETLB)
		flags |= MAP_HUGETLB;
	void *m = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (m == MAP_FAILED)
		return false;
	r->map = m;
	r->base = m;
	if (path == CFORK_PATH_THP) {
		r->base = (char *)(((uintptr_t)m + HUGE - 1) & ~(HUGE - 1));
		madvise(r->base, HUGE, MADV_HUGEPAGE);
	}
	memset(r->base, 0, r->len);
	return true;
}

static int pin(struct region *r)
{
	struct io_uring_params params;
	memset(&params, 0, sizeof params);
	long ring = cf_raw_syscall6(SYS_io_uring_setup, 1, (long)&params, 0,
				    0, 0, 0);
	if (ring < 0)
		return -1;
	struct { void *base; size_t len; } iov = { r->base, r->len };
	if (cf_raw_syscall6(SYS_io_uring_register, ring,
			    IORING_REGISTER_BUFFERS, (long)&iov, 1, 0, 0) < 0) {
		close((int)ring);
		return -1;
	}
	return (int)ring;
}

/*
 * Forks with no exit signal (the program's SIGCHLD handler and its
 * waitpid(-1) never see these children) and no atfork handlers: the
 * child only reads the region and leaves.
 */
static void fork_against_writer(struct region *r, struct cfork_probe_path *p)
{
	while (!p->torn && p->raced < RACED && p->forks < MAX_FORKS) {
		uint64_t before = atomic_load_explicit(seq(r), memory_order_relaxed);
		long pid = cf_raw_syscall6(SYS_clone, 0, 0, 0, 0, 0, 0);
		if (pid == 0)
			cf_raw_syscall6(SYS_exit_group, torn(r) ? TORN_STATUS : 0,
					0, 0, 0, 0, 0);
		if (pid < 0)
			break;
		uint64_t after = atomic_load_explicit(seq(r), memory_order_relaxed);
		int status = 0;
		while (waitpid((pid_t)pid, &status, __WALL) < 0 && errno == EINTR)
			;
		p->forks++;
		p->raced += after != before;
		p->torn += WIFEXITED(status) && WEXITSTATUS(status) == TORN_STATUS;
	}
}

void cf_tearing_test(int path, struct cfork_probe_path *p)
{
	struct region r = { 0 };
	if (!map_region(&r, path))
		return;
	int ring = pin(&r);
	pthread_t t;
	if (ring >= 0 && pthread_create(&t, NULL, writer, &r) == 0) {
		/* Fork only once the writer runs. */
		for (unsigned spins = 0; spins < 1000000 &&
		     !atomic_load_explicit(seq(&r), memory_order_relaxed); spins++)
			sched_yield();
		fork_against_writer(&r, p);
		atomic_store_explicit(&r.stop, true, memory_order_relaxed);
		pthread_join(t, NULL);
	}
	if (ring >= 0)
		close(ring);
	munmap(r.map, r.map_len);

	if (p->torn) {
		p->verdict = CFORK_TEARS;
		p->reason = "children saw torn states in the tearing test";
	}
}
