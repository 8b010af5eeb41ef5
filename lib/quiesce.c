/* SPDX-License-Identifier: MIT */
/*
 * The quiesce: stop every sibling thread that can run user code at a safe
 * point, keep them stopped across fork, resume them.
 *
 * Why: for pages that may be DMA-pinned, fork copies memory eagerly while
 * the parent's page stays writable, so a sibling writing during the copy
 * gives the child a state that never existed.  A sibling that is not
 * running cannot write.
 *
 * How, in one round:
 *   1. List /proc/self/task (getdents64 into a static buffer: the driver
 *      runs after the atfork prepare handlers hold the allocators' locks,
 *      so it must not allocate).  Kernel-created workers (io_uring, vhost:
 *      PF_IO_WORKER / PF_USER_WORKER) block every signal and never run user
 *      code: they are skipped, never signalled.
 *   2. Send each thread one real-time signal (rt_tgsigqueueinfo, whose
 *      value is a request id: the handler records the highest it took).
 *      Never a second one before the first was taken (queued real-time
 *      signals count against RLIMIT_SIGPENDING, shared by all of the
 *      user's processes); EAGAIN means "not sent yet", ESRCH "gone".
 *   3. The handler (handler.c) parks the thread, or redirects a return so
 *      that the thread parks itself on leaving libc, or asks to be
 *      signalled again (safepoint.c).
 *   4. Wait, bounded, on a progress counter the handlers bump.  Threads
 *      that do not take the signal are checked in /proc: exited (gone or
 *      zombie) ones are dropped.
 *   5. When nothing is pending, list the threads again: one created during
 *      the round is signalled like the others, and the round ends only when
 *      a listing finds nobody new.
 * If no thread makes progress for a while although none of the pending
 * ones is runnable, a parked thread probably holds something a pending one
 * waits for (an application mutex, the loader lock inside a constructor):
 * release everyone, wait a little longer each time, start again.  After
 * CFORK_TIMEOUT_MS the caller gets what was stopped and decides (fork
 * anyway, or fail).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cfork.h"
#include "internal.h"

#define BACKOFF_NS (20u * 1000000u)      /* no progress for this long */
#define CHECK_NS (2u * 1000000u)         /* untaken signal: look in /proc */
#define RETRY_NS (100u * 1000u)          /* let an unsafe thread move on */
#define REDIRECT_NS (2u * 1000000u)      /* redirected, yet not parked */

struct round {
	uint32_t gen;
	bool full;
	unsigned fresh;
	bool listed;               /* the table is the last quiesce's */
	uint32_t stirs;            /* cf_restart_stirs() before the listing */
	unsigned claimed;          /* threads claimed asleep this round */
	bool objects_fresh;        /* cf_objects_refresh done */
	struct cfork_report *st;
};

static void insert_task(pid_t tid, void *arg)
{
	struct round *r = arg;
	bool fresh;
	if (tid == atomic_load_explicit(&cf_hot.driver, memory_order_relaxed))
		return;
	if (!cf_tasks_insert(tid, &fresh))
		r->full = true;
	else if (fresh)
		r->fresh++;
}

static unsigned verdict(struct cf_thread *t, uint32_t gen)
{
	uint32_t v = atomic_load_explicit(&t->verdict, memory_order_acquire);
	return v / 8u == gen % (UINT32_MAX / 8u + 1u) ? v % 8u : CF_V_NONE;
}

/* The /proc check: gone, zombie, or a kernel worker.  What it finds is
 * remembered across cforks (cf_tasks_remember), so that a thread's stat is
 * read once in its life, not at every fork. */
static void check_task(struct cf_thread *t)
{
	struct cf_task_info ti;
	pid_t tid = atomic_load_explicit(&t->tid, memory_order_relaxed);
	int r = cf_task_info(tid, &ti);
	t->classified = true;
	if (r == -ENOENT || r == -ESRCH || (r == 0 && (ti.state == 'Z' ||
						      ti.state == 'X'))) {
		t->fate = CF_FATE_GONE;
		/* A zombie leader (main called pthread_exit) stays listed
		 * for the life of the process; other tids may be reused. */
		if (r == 0 && tid == getpid())
			cf_tasks_remember(tid, CF_FATE_GONE);
	} else if (r == 0 &&
		   (ti.flags & (CF_PF_IO_WORKER | CF_PF_USER_WORKER))) {
		t->fate = CF_FATE_SKIPPED;
		cf_tasks_remember(tid, CF_FATE_SKIPPED);
	} else if (r == 0) {
		cf_tasks_remember(tid, CF_FATE_LIVE);
	}
}

/* glibc's helper thread for SIGEV_THREAD timers blocks every signal for
 * good and waits in sigtimedwait for its one timer signal (32).  It never
 * runs the program's code itself (each expiry starts a new thread, which
 * can be stopped), so it is skipped like a kernel worker. */
static bool timer_helper(pid_t tid)
{
	long nr;
	unsigned long a[6];
	if (cf_task_syscall(tid, &nr, a) < 0 || nr != SYS_rt_sigtimedwait ||
	    !cf_mem_readable(a[0], 8))
		return false;
	uint64_t set;
	memcpy(&set, (const void *)a[0], 8);
	return set == 1ull << (32 - 1);
}

/* Queued real-time signals count against one RLIMIT_SIGPENDING for all of
 * the user's processes, compared with the receiving process's limit: while
 * other processes hold the count at ours, no request can be queued (EAGAIN)
 * and the quiesce would wait for its bound.  The soft limit is then raised
 * to the hard one until the quiesce ends, before the fork (which the child
 * would inherit). */
static struct rlimit sigpending_saved;
static bool sigpending_raised;

static bool raise_sigpending(void)
{
	struct rlimit r;
	if (sigpending_raised || getrlimit(RLIMIT_SIGPENDING, &r) < 0 ||
	    r.rlim_cur >= r.rlim_max)
		return false;
	sigpending_saved = r;
	r.rlim_cur = r.rlim_max;
	sigpending_raised = setrlimit(RLIMIT_SIGPENDING, &r) == 0;
	return sigpending_raised;
}

static void restore_sigpending(void)
{
	if (sigpending_raised) {
		setrlimit(RLIMIT_SIGPENDING, &sigpending_saved);
		sigpending_raised = false;
	}
}

static int queue_request(struct cf_thread *t, uint64_t id)
{
	int e;
	do {
		e = cf_sigqueue(atomic_load_explicit(&cf_hot.request_pid,
						     memory_order_relaxed),
				cf_hot.uid,
				atomic_load_explicit(&t->tid,
						     memory_order_relaxed),
				cf_config()->signo, id);
	} while (e == -EAGAIN && raise_sigpending());
	return e;
}

static void send(struct cf_thread *t, struct round *r, uint64_t now)
{
	if (!t->classified) {
		int known = cf_tasks_recall(atomic_load_explicit(
			&t->tid, memory_order_relaxed));
		/* A remembered user thread is trusted; anything else is
		 * looked at again, as its tid may now be a new user
		 * thread's (io_uring workers come and go). */
		pid_t tid = atomic_load_explicit(&t->tid, memory_order_relaxed);
		t->classified = true;
		if (known == CF_FATE_LIVE)
			t->fate = CF_FATE_LIVE;
		else if (known == CF_FATE_TIMER && timer_helper(tid))
			t->fate = CF_FATE_TIMER;
		else
			check_task(t);
		if (t->fate != CF_FATE_LIVE)
			return;
	}
	/* The handler's walk needs the loaded objects as they are now; a
	 * quiesce that signals nobody (every sibling claimed asleep) does
	 * not look (dl_iterate_phdr takes the loader's lock, a store to a
	 * page the last fork made shared). */
	if (!r->objects_fresh) {
		cf_objects_refresh();
		r->objects_fresh = true;
	}
	uint64_t id = cf_request_tag | ++cf_hot.request_id;
	int e = queue_request(t, id);
	if (e == 0) {
		t->sent = id;
		t->sent_ns = now;
		r->st->signals++;
	} else if (e == -ESRCH) {
		t->fate = CF_FATE_GONE;
	}
}

struct tally {
	unsigned parked, hijacked, retry, pending;
};

/* One pass over the table: signal who needs it, count the rest. */
static struct tally pass(struct round *r, uint64_t now)
{
	struct tally tl = { 0 };
	r->claimed += cf_restart_claim(r->gen);
	size_t n = cf_tasks_count();
	for (size_t i = 0; i < n; i++) {
		struct cf_thread *t = cf_tasks_nth(i);
		if (!atomic_load_explicit(&t->tid, memory_order_acquire) ||
		    t->fate != CF_FATE_LIVE)
			continue;
		unsigned v = verdict(t, r->gen);
		if (v == CF_V_PARKED) {
			tl.parked++;
			continue;
		}
		tl.pending++;
		/* A redirected return may never fire: a siglongjmp out of
		 * libc skips it, and the next call from the same frame
		 * overwrites it.  Asked again, the handler finds it gone. */
		if (v == CF_V_HIJACKED) {
			tl.hijacked++;
			if (now - t->sent_ns <= REDIRECT_NS)
				continue;
		}
		tl.retry += v == CF_V_RETRY;
		uint64_t taken = atomic_load_explicit(&t->taken,
						      memory_order_acquire);
		if (taken >= t->sent) {
			if (v != CF_V_RETRY || now - t->sent_ns > RETRY_NS)
				send(t, r, now);
		} else if (now - t->sent_ns > CHECK_NS) {
			check_task(t);
			pid_t tid = atomic_load_explicit(&t->tid,
							 memory_order_relaxed);
			if (t->fate == CF_FATE_LIVE && timer_helper(tid)) {
				t->fate = CF_FATE_TIMER;
				cf_tasks_remember(tid, CF_FATE_TIMER);
			}
			t->sent_ns = now;
		}
		if (t->fate != CF_FATE_LIVE)
			tl.pending--;
	}
	return tl;
}

/* Is any pending thread runnable?  One that has not been scheduled yet is
 * not stuck, however long it has been (a busy machine). */
static bool pending_runnable(uint32_t gen)
{
	size_t n = cf_tasks_count();
	for (size_t i = 0; i < n; i++) {
		struct cf_thread *t = cf_tasks_nth(i);
		pid_t tid = atomic_load_explicit(&t->tid, memory_order_acquire);
		if (!tid || t->fate != CF_FATE_LIVE ||
		    verdict(t, gen) == CF_V_PARKED)
			continue;
		struct cf_task_info ti;
		if (cf_task_info(tid, &ti) == 0 && ti.state == 'R')
			return true;
	}
	return false;
}

enum outcome { DONE, BACKOFF, TIMEOUT, FULL, NOPROC };

/* Every thread stopped was claimed asleep, and no sleeper woke or fell
 * asleep since the listing began: only the driver ran, so the listing is
 * still true.  (glibc's timer helper makes threads without ever being
 * stopped.) */
static bool listing_still_true(const struct round *r, unsigned parked)
{
	if (parked != r->claimed || cf_restart_stirs() != r->stirs)
		return false;
	size_t n = cf_tasks_count();
	for (size_t i = 0; i < n; i++) {
		struct cf_thread *t = cf_tasks_nth(i);
		if (atomic_load_explicit(&t->tid, memory_order_acquire) &&
		    t->fate == CF_FATE_TIMER)
			return false;
	}
	return true;
}

/*
 * The next quiesce may skip the listing and keep this table when every
 * thread in it is a sleeper claimed asleep (no kernel worker, no timer
 * helper, nobody gone):
 *  - none of them can make or end a thread without first waking, which
 *    changes cf_restart_stirs(); and the driver is not in the table,
 *    whichever thread it is next time;
 *  - so while the stir count stays the same, the only threads that can
 *    have come or gone are ones made since, and an unchanged thread count
 *    means none of those is alive.
 * A program's handler without the trampoline, running on top of a
 * sleeper, breaks the first point (libcfork(7), NOTES).
 */
static void keep_listing(const struct round *r)
{
	size_t n = cf_tasks_count();
	for (size_t i = 0; i < n; i++) {
		struct cf_thread *t = cf_tasks_nth(i);
		if (atomic_load_explicit(&t->tid, memory_order_acquire) &&
		    (t->fate != CF_FATE_LIVE || verdict(t, r->gen) != CF_V_PARKED))
			return;
	}
	cf_hot.listing_nlink = r->listed ? cf_hot.listing_nlink : cf_tasks_nlink();
	cf_hot.listing_stirs = r->stirs;
	cf_hot.listing_valid = cf_hot.listing_nlink != 0;
}

static enum outcome run_round(struct round *r, uint64_t deadline)
{
	uint64_t last_progress = cf_now_ns();
	uint32_t seen_progress = atomic_load(&cf_hot.progress);
	bool scan = !r->listed;
	r->stirs = r->listed ? cf_hot.listing_stirs : cf_restart_stirs();
	for (;;) {
		if (scan) {
			r->fresh = 0;
			if (cf_tasks_scan(insert_task, r) < 0)
				return NOPROC;
			if (r->full)
				return FULL;
			scan = false;
		}
		uint32_t p = atomic_load(&cf_hot.progress);
		if (p != seen_progress) {
			seen_progress = p;
			last_progress = cf_now_ns();
		}
		uint64_t now = cf_now_ns();
		struct tally tl = pass(r, now);
		if (tl.pending == 0 && listing_still_true(r, tl.parked)) {
			r->st->parked = tl.parked;
			keep_listing(r);
			return DONE;
		}
		if (tl.pending == 0) {
			r->fresh = 0;
			if (cf_tasks_scan(insert_task, r) < 0)
				return NOPROC;
			if (r->full)
				return FULL;
			if (r->fresh == 0) {
				r->st->parked = tl.parked;
				return DONE;
			}
			continue;
		}
		if (now >= deadline)
			return TIMEOUT;
		/* Only a thread that took the signal and could not stop may
		 * be waiting for a parked one; one that blocks the signal, or
		 * sleeps uninterruptibly, gains nothing from a back-off. */
		if (tl.parked && tl.hijacked + tl.retry > 0 &&
		    now - last_progress > BACKOFF_NS) {
			if (!pending_runnable(r->gen))
				return BACKOFF;
			last_progress = now;
		}
		/* Each pending thread will make progress once at least
		 * (unless it never takes the signal: the timeout is for
		 * that, and for re-signalling those that asked for it). */
		uint64_t wait = tl.retry ? RETRY_NS : 1000000u;
		if (wait > deadline - now)
			wait = deadline - now;
		atomic_store_explicit(&cf_hot.driver_wake_at,
				      seen_progress + tl.pending,
				      memory_order_relaxed);
		atomic_store_explicit(&cf_hot.driver_waiting, 1,
				      memory_order_seq_cst);
		if (atomic_load_explicit(&cf_hot.progress, memory_order_seq_cst) ==
		    seen_progress)
			cf_futex_wait(&cf_hot.progress, seen_progress, wait);
		atomic_store_explicit(&cf_hot.driver_waiting, 0,
				      memory_order_relaxed);
	}
}

/* Lets every parked thread go and undoes redirected returns. */
static void release_all(uint32_t gen)
{
	atomic_store_explicit(&cf_hot.active, 0, memory_order_release);
	size_t n = cf_tasks_count();
	for (size_t i = 0; i < n; i++) {
		struct cf_thread *t = cf_tasks_nth(i);
		if (atomic_load_explicit(&t->tid, memory_order_acquire) &&
		    verdict(t, gen) == CF_V_HIJACKED)
			cf_hijack_undo(t);
	}
	atomic_fetch_add_explicit(&cf_hot.release_gen, 1, memory_order_seq_cst);
	if (atomic_exchange_explicit(&cf_hot.release_sleepers, 0,
				     memory_order_seq_cst))
		cf_futex_wake(&cf_hot.release_gen, INT_MAX);
}

/* A handler from an earlier quiesce may still be reading the table. */
static void wait_for_handlers(void)
{
	for (int i = 0; i < 20000 &&
	     atomic_load_explicit(&cf_hot.users, memory_order_acquire); i++)
		cf_nanosleep_ns(50000);
}

static void tally_final(struct cfork_report *st, uint32_t gen)
{
	size_t n = cf_tasks_count();
	st->parked = st->redirected = st->skipped = st->gone = 0;
	st->timer_helpers = 0;
	st->not_stopped = 0;
	for (size_t i = 0; i < n; i++) {
		struct cf_thread *t = cf_tasks_nth(i);
		if (!atomic_load_explicit(&t->tid, memory_order_acquire))
			continue;
		if (t->fate == CF_FATE_GONE)
			st->gone++;
		else if (t->fate == CF_FATE_SKIPPED)
			st->skipped++;
		else if (t->fate == CF_FATE_TIMER) {
			st->skipped++;
			st->timer_helpers++;
		}
		else if (verdict(t, gen) == CF_V_PARKED)
			st->parked++;
		else {
			st->not_stopped++;
			cf_report_straggler(t, verdict(t, gen));
		}
	}
}

int cf_quiesce_init(void)
{
	int e;
	if ((e = cf_objects_refresh()) < 0 || (e = cf_unwind_init()) < 0 ||
	    (e = cf_safepoint_init()) < 0 || (e = cf_restart_init()) < 0)
		return e;
	return cf_handler_install(cf_config()->signo);
}

static bool quiesce(struct cfork_report *st);

bool cf_quiesce(struct cfork_report *st)
{
	bool coherent = quiesce(st);
	restore_sigpending();
	return coherent;
}

static bool quiesce(struct cfork_report *st)
{
	memset(st, 0, sizeof *st);
	uint64_t t0 = cf_now_ns();
	uint64_t deadline = t0 + (uint64_t)cf_config()->timeout_ms * 1000000u;
	uint64_t pause_ns = 200000;
	uint32_t stub_parks = atomic_load(&cf_hot.stub_parks);
	atomic_store_explicit(&cf_hot.driver, cf_gettid(), memory_order_relaxed);
	cf_hot.uid = getuid();
	atomic_store_explicit(&cf_hot.request_pid, getpid(), memory_order_release);

	wait_for_handlers();
	cf_report_begin();
	/* See keep_listing. */
	bool listed = cf_hot.listing_valid &&
		      cf_restart_stirs() == cf_hot.listing_stirs &&
		      cf_tasks_nlink() == cf_hot.listing_nlink;
	cf_hot.listing_valid = false;
	if (!listed && cf_tasks_reset(cf_hot.last_count + 64) < 0) {
		st->not_coherent = "no memory for the thread table";
		return false;
	}
	for (;;) {
		struct round r = {
			.gen = atomic_load_explicit(&cf_hot.release_gen,
						    memory_order_acquire),
			.listed = listed,
			.st = st,
		};
		listed = false;
		st->rounds++;
		atomic_store_explicit(&cf_hot.active, 1, memory_order_release);
		enum outcome o = run_round(&r, deadline);
		if (o == DONE || o == TIMEOUT || o == NOPROC) {
			tally_final(st, r.gen);
			st->coherent = o == DONE;
			if (o == NOPROC)
				st->not_coherent =
					"/proc/self/task cannot be read";
			else if (o == TIMEOUT)
				st->not_coherent = "CFORK_TIMEOUT_MS reached";
			st->redirected = atomic_load(&cf_hot.stub_parks) - stub_parks;
			st->quiesce_ns = cf_now_ns() - t0;
			cf_hot.last_count = st->parked + st->not_stopped +
					    st->skipped;
			return st->coherent;
		}
		release_all(r.gen);
		if (o == FULL) {
			wait_for_handlers();
			if (cf_tasks_reset(cf_tasks_capacity()) < 0) {
				st->not_coherent = "no memory for the thread table";
				return false;
			}
			continue;
		}
		/* BACKOFF: whatever a parked thread held, it can now let go. */
		st->backoffs++;
		cf_nanosleep_ns(pause_ns);
		if (pause_ns < 5000000)
			pause_ns *= 2;
		if (cf_now_ns() >= deadline) {
			tally_final(st, atomic_load(&cf_hot.release_gen));
			st->not_coherent = "CFORK_TIMEOUT_MS reached";
			st->quiesce_ns = cf_now_ns() - t0;
			return false;
		}
	}
}

void cf_resume(void)
{
	release_all(atomic_load_explicit(&cf_hot.release_gen,
					 memory_order_acquire));
}

void cf_quiesce_child_reset(void)
{
	atomic_store(&cf_hot.active, 0);
	atomic_store(&cf_hot.users, 0);
}
