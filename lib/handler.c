/* SPDX-License-Identifier: MIT */
/*
 * The signal handler that stops a thread, and the C side of the return stub.
 *
 * The protocol with the driver (quiesce.c):
 *  - The driver publishes the table, sets cf_hot.active, then signals threads.
 *  - The handler reads cf_hot.release_gen before it looks at cf_hot.active, so that
 *    a release that happens in between is never missed.  It then records a
 *    verdict, tagged with that generation, in the thread's table entry:
 *    PARKED (and waits until cf_hot.release_gen moves on), HIJACKED (will park
 *    in cf_stub_arrive) or RETRY (signal me again later).  Verdicts from an
 *    older generation are ignored by the driver, so late and duplicate
 *    signals are harmless.
 *  - The driver releases everyone by clearing cf_hot.active, undoing hijacks
 *    that have not fired, and bumping cf_hot.release_gen (futex wake).
 *
 * Async-signal-safety: errno saved; system calls are raw; nothing
 * allocates or takes a lock, except libunwind's short internal pool lock
 * (held with every signal blocked, so never across a park or reentered:
 * the handler's mask blocks them all until the thread parks);
 * a parked thread waits with an untimed futex wait, because a timed one
 * that is interrupted would overwrite the thread's restart block.  A
 * signal with our number that we did not send goes to the program's own
 * handler (sigmask.c), as it would without libcfork.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

struct cf_hot cf_hot;
uint64_t cf_request_tag;

static int our_signo;

/* One hijack at most per thread: a new one is never installed while the
 * slot of the previous one still holds the stub's address. */
struct hijack_state {
	uintptr_t slot;
	uintptr_t ra;
	bool live;
};
static CF_TLS struct hijack_state hijack;

void cf_stub_arrive(uintptr_t *slot) CF_HIDDEN;

/* This thread's tid, asked of the kernel once per thread and process: a
 * fork gives the thread that makes it a new tid, in a new pid. */
static CF_TLS pid_t tid_cache, tid_cache_pid;

static pid_t self_tid(pid_t pid)
{
	if (tid_cache_pid != pid) {
		tid_cache = cf_gettid();
		tid_cache_pid = pid;
	}
	return tid_cache;
}

/* The driver is woken only when it sleeps, and only once every thread it
 * waits for has made progress: a wake-up per thread would cost it a
 * context switch and a pass over the table per thread. */
static void progress(void)
{
	uint32_t p = atomic_fetch_add_explicit(&cf_hot.progress, 1,
					       memory_order_seq_cst) + 1;
	if (atomic_load_explicit(&cf_hot.driver_waiting, memory_order_seq_cst) &&
	    (int32_t)(p - atomic_load_explicit(&cf_hot.driver_wake_at,
					       memory_order_relaxed)) >= 0)
		cf_futex_wake(&cf_hot.progress, 1);
}

static void set_verdict(struct cf_thread *t, uint32_t gen, unsigned v)
{
	atomic_store_explicit(&t->verdict, gen * 8u + v, memory_order_release);
}

/* The round this thread is parked in, plus one (0: not parked): a
 * program's handler that a signal runs on top of the park waits for the
 * release first (cf_park_hold). */
static CF_TLS uint32_t parked_in;

/* Waits until the release generation moves on from gen.  yield: a thread
 * the signal found running first waits by yielding, for a while, rather
 * than by sleeping.  A sleeping one, woken at the release, is placed ahead
 * of the thread that called cfork, which then loses the CPU before it
 * returns: with 8 spinning siblings on 2 CPUs, 85 of 200 cforks were
 * preempted so, for 12-15 ms each (1 of 200 with the yield).  A yielding
 * one never left the run queue, and goes on as soon as it sees the
 * release. */
#define YIELD_NS (20u * 1000000u)

static void wait_release(uint32_t gen, bool yield)
{
	uint32_t outer = parked_in;
	parked_in = gen + 1;
	for (uint64_t end = yield ? cf_now_ns() + YIELD_NS : 0;
	     atomic_load_explicit(&cf_hot.release_gen, memory_order_acquire) ==
		     gen && cf_now_ns() < end;)
		cf_raw_syscall6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
	/* A flag, not a count, so that a release with nobody asleep (every
	 * sibling claimed asleep) makes no wake-up call, and a program's
	 * handler that leaves this wait by longjmp leaves nothing to undo.
	 * seq_cst on both sides: either the driver sees the flag, or this
	 * thread sees the new generation. */
	while (atomic_load_explicit(&cf_hot.release_gen, memory_order_relaxed) ==
	       gen) {
		atomic_store_explicit(&cf_hot.release_sleepers, 1,
				      memory_order_seq_cst);
		if (atomic_load_explicit(&cf_hot.release_gen,
					 memory_order_seq_cst) != gen)
			break;
		cf_futex_wait(&cf_hot.release_gen, gen, 0);
	}
	atomic_thread_fence(memory_order_acquire);
	parked_in = outer;
}

void cf_wait_release(uint32_t gen)
{
	wait_release(gen, false);
}

bool cf_parked(void)
{
	uint32_t in = parked_in;
	return in && atomic_load_explicit(&cf_hot.release_gen,
					  memory_order_acquire) == in - 1;
}

void cf_park_hold(void)
{
	uint32_t in = parked_in;
	if (in)
		cf_wait_release(in - 1);
}

/* A parked thread lets in every signal the program lets in (mask: the
 * program's, plus ours), as the return stub's park does: a program's
 * handler then runs as it would without libcfork, once the trampoline
 * (sigmask.c) has waited for the release, and with the mask it would have
 * had, so one that leaves by longjmp leaves the thread as the program
 * expects.  The mask stays set: the caller returns to the kernel or sets
 * its own. */
static void park_wait(uint32_t gen, uint64_t mask, bool yield)
{
	/* Parked before the program's signals come in: the driver may have
	 * counted this thread already, so their handlers must find it parked
	 * and wait for the release (sigmask.c), not run into the fork. */
	uint32_t outer = parked_in;
	parked_in = gen + 1;
	mask |= 1ull << (our_signo - 1);
	cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8, 0,
			0);
	wait_release(gen, yield);
	parked_in = outer;
}

void cf_park_wait(uint32_t gen, uint64_t mask)
{
	park_wait(gen, mask, false);
}

/* Only a thread of the normal scheduling classes yields to the caller:
 * a real-time one would yield to nobody but its peers, and keep the
 * caller off its CPU for the whole bound. */
static bool may_yield(void)
{
	long policy = cf_raw_syscall6(SYS_sched_getscheduler, 0, 0, 0, 0, 0,
				      0);
	policy &= ~(long)SCHED_RESET_ON_FORK;
	return policy == SCHED_OTHER || policy == SCHED_BATCH ||
	       policy == SCHED_IDLE;
}

struct counted {
	struct cf_thread *t;
	uint32_t gen;
};

/* The driver may count the thread as parked from here on. */
static void count_parked(void *arg)
{
	const struct counted *c = arg;
	set_verdict(c->t, c->gen, CF_V_PARKED);
	atomic_fetch_sub_explicit(&cf_hot.users, 1, memory_order_release);
	progress();
}

/* Drops the table reference taken by the caller, then waits. */
static void park(struct cf_thread *t, uint32_t gen, const ucontext_t *uc)
{
	count_parked(&(struct counted){ t, gen });
	park_wait(gen, cf_program_mask(uc),
		  !cf_restart_in_call(uc) && may_yield());
}

static bool in_stub(uintptr_t ip)
{
	return ip >= (uintptr_t)cf_stub_begin && ip < (uintptr_t)cf_stub_end;
}

/* Takes back this thread's redirected return, if it is still in place;
 * returns whether it was.  (The driver does the same at every release.) */
static bool take_back_hijack(void)
{
	if (!hijack.live)
		return false;
	hijack.live = false;
	_Atomic uintptr_t *slot = (_Atomic uintptr_t *)hijack.slot;
	uintptr_t expect = (uintptr_t)cf_stub;
	return cf_mem_readable(hijack.slot, sizeof(uintptr_t)) &&
	       atomic_compare_exchange_strong(slot, &expect, hijack.ra);
}

static void record_hijack(struct cf_thread *t, uint32_t gen)
{
	t->ra = hijack.ra;
	/* After ra: the driver reads the slot, then ra (cf_hijack_undo). */
	atomic_store_explicit(&t->slot, hijack.slot, memory_order_release);
	set_verdict(t, gen, CF_V_HIJACKED);
}

/* The walk needs about 6 KiB of stack below the handler's frame
 * (libunwind's cursor and rule state).  A thread with less left (a small
 * thread stack nearly used up, or a program's handler running on a small
 * alternate stack) is not walked, since it would overflow into the guard
 * page and the kernel would kill the process: it is treated like one found
 * where it may not stop.  The main thread's stack grows on demand.  Built
 * with AddressSanitizer, whose frames are larger and whose interceptors
 * the walk calls, it needs four times as much. */
#ifdef __SANITIZE_ADDRESS__
#define WALK_STACK 24576u
#else
#define WALK_STACK 6144u
#endif
/* What a call continued in the handler needs (restart.c). */
#define CALL_STACK (WALK_STACK / 6)

/* Has the handler size bytes of stack below it? */
static bool room(const ucontext_t *uc, pid_t pid, uintptr_t size)
{
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	/* The kernel saved the thread's alternate stack in the context, with
	 * SS_ONSTACK when the interrupted code was running on it (as this
	 * handler then is). */
	if (uc->uc_stack.ss_flags & SS_ONSTACK)
		return sp - (uintptr_t)uc->uc_stack.ss_sp >= size;
	return self_tid(pid) == pid || cf_mem_readable(sp - size, size);
}

/* In a program built with AddressSanitizer, the stack below the
 * interrupted code may still carry the poison of frames that were left
 * without their epilogue (a jump, a cancellation): the handler's frames,
 * which lie there, would be reported as overflows.  Their room is cleared
 * first, as the sanitizer clears a stack before a longjmp. */
#define HANDLER_STACK (4 * WALK_STACK)

CF_NO_ASAN static void clear_poison(void)
{
#ifdef __SANITIZE_ADDRESS__
	uintptr_t top = (uintptr_t)__builtin_frame_address(0);
	__asan_unpoison_memory_region((void *)(top - HANDLER_STACK),
				      HANDLER_STACK);
#endif
}

CF_NO_ASAN static void handler(int sig, siginfo_t *si, void *ctx)
{
	int saved_errno = errno;
	ucontext_t *uc = ctx;
	bool go_on = false;           /* RETRY without a walk: see out_done */
	clear_poison();

	if (sig != our_signo)
		goto out_errno;
	/* The driver set cf_hot.request_pid to this process's pid before it
	 * sent anything. */
	pid_t pid = atomic_load_explicit(&cf_hot.request_pid, memory_order_acquire);
	if (si->si_code != SI_QUEUE || si->si_pid != pid ||
	    ((uint64_t)(uintptr_t)si->si_value.sival_ptr & CF_TAG_MASK) !=
		    cf_request_tag) {
		cf_sigmask_chain(sig, si, ctx);
		goto out_errno;
	}

	bool nested = cf_in_handler;
	cf_in_handler = true;
	atomic_fetch_add_explicit(&cf_hot.users, 1, memory_order_acquire);
	uint32_t gen = atomic_load_explicit(&cf_hot.release_gen,
					    memory_order_acquire);
	struct cf_thread *t = cf_tasks_find(self_tid(pid));
	if (!t)
		goto out_continue;
	/* Taken, even if too late for its round: the driver may send the
	 * next one.  Request ids only grow, so a stale one changes nothing. */
	uint64_t id = (uint64_t)(uintptr_t)si->si_value.sival_ptr;
	uint64_t old = atomic_load_explicit(&t->taken, memory_order_relaxed);
	while (id > old &&
	       !atomic_compare_exchange_weak_explicit(&t->taken, &old, id,
						      memory_order_release,
						      memory_order_relaxed))
		;
	if (!atomic_load_explicit(&cf_hot.active, memory_order_acquire)) {
		progress();
		goto out_continue;
	}

	/* Parked already in this round, where the program's signals are let
	 * in (after the stub, or at a jump), so ours too: a request sent
	 * before it parked has nothing to decide, and a verdict now would
	 * overwrite PARKED. */
	if (parked_in == gen + 1)
		goto out_done;
	if (in_stub((uintptr_t)uc->uc_mcontext.gregs[REG_RIP])) {
		cf_in_handler = nested;
		park(t, gen, uc);
		goto out_resumed;
	}
	/* Asked again while a redirect is still in place: it is taken back
	 * and the stack judged afresh.  The thread may have left that frame
	 * by a jump (siglongjmp out of a handler), leaving the slot in dead
	 * stack where nothing need ever overwrite it; waiting for it to fire
	 * would wait for the bound. */
	struct hijack_state before = hijack;
	bool had = take_back_hijack();
	struct cf_hijack hj = { .depth = 0 };
	enum cf_verdict v = CF_RETRY;
	bool walk = room(uc, pid, WALK_STACK);
	if (walk) {
		cf_all_blocked = true;
		v = cf_safepoint_judge(uc, self_tid(pid), &hj);
		cf_all_blocked = false;
	}
	if (v != CF_PARK) {
		t->depth = hj.depth;
		memcpy(t->stack, hj.stack, hj.depth * sizeof hj.stack[0]);
	}
	switch (v) {
	case CF_PARK:
		cf_in_handler = nested;
		/* A thread interrupted in an untimed futex wait parks by
		 * sleeping on in it, already claimed for this round: the
		 * release then has nothing to wake, and the program's wake-up
		 * finds it in its wait. */
		if (cf_restart_park_asleep(uc, gen, count_parked,
					   &(struct counted){ t, gen }))
			goto out_errno;
		park(t, gen, uc);
		goto out_resumed;
	case CF_HIJACK: {
		/* The same redirect again in the same round is no news: no
		 * progress (the driver backs off only without it). */
		bool again = had && before.slot == hj.slot &&
			     before.ra == hj.ra &&
			     atomic_load_explicit(&t->verdict,
						  memory_order_relaxed) ==
				     gen * 8u + CF_V_HIJACKED;
		/* The slot is in this thread's own stack and the thread is
		 * here, so nothing else reads it now. */
		hijack = (struct hijack_state){ hj.slot, hj.ra, true };
		*(uintptr_t *)hj.slot = (uintptr_t)cf_stub;
		record_hijack(t, gen);
		if (again)
			goto out_done;
		break;
	}
	case CF_RETRY:
		set_verdict(t, gen, CF_V_RETRY);
		go_on = !walk;
		break;
	}
	progress();
out_done:
	atomic_fetch_sub_explicit(&cf_hot.users, 1, memory_order_release);
	cf_in_handler = nested;
	/* Not walked, for want of stack: a call it slept in goes on (it
	 * needs far less), rather than end with EINTR. */
	if (go_on && room(uc, pid, CALL_STACK))
		cf_restart_unclaimed(uc);
	goto out_errno;
out_continue:
	atomic_fetch_sub_explicit(&cf_hot.users, 1, memory_order_release);
	cf_in_handler = nested;
out_resumed:
	/* Stopped where it may be, or not stopped at all: the call it was
	 * in goes on, as the program's (its signal wrappers apply again).
	 * Not after RETRY or HIJACK: that thread is in libc and must get on
	 * to where it can stop.  A thread resumed after a fork stores
	 * nothing it can avoid (not even a return address): the child may
	 * still share the page, and the store would cost a copy and a TLB
	 * flush on every CPU (cf_in_handler was restored before the park). */
	cf_restart_interrupted(uc);
out_errno:
	if (errno != saved_errno)
		errno = saved_errno;
}

/* A thread that was redirected leaves the libc call it was in, by its
 * return (the stub) or by a jump over it: it parks if the round is still
 * on.  The program's mask lets its signals in here, and a handler of its
 * that left by longjmp would leave the table reference taken: it is held
 * with every signal blocked, as in the signal handler.
 * A thread that blocks our signal by now (a raw system call: the wrappers
 * never block it) is where the program will not be stopped, as the signal
 * itself would not stop it there (a handler blocking every signal, from
 * its first lines): it goes on, to be asked again (RETRY) and to stop once
 * it lets the signal in. */
static void arrive(void)
{
	if (!atomic_load_explicit(&cf_hot.active, memory_order_acquire))
		return;
	uint64_t all = ~0ull, mask;
	cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all,
			(long)&mask, 8, 0, 0);
	atomic_fetch_add_explicit(&cf_hot.users, 1, memory_order_acquire);
	uint32_t gen = atomic_load_explicit(&cf_hot.release_gen,
					    memory_order_acquire);
	struct cf_thread *t = NULL;
	if (atomic_load_explicit(&cf_hot.active, memory_order_acquire))
		t = cf_tasks_find(self_tid(atomic_load_explicit(
			&cf_hot.request_pid, memory_order_relaxed)));
	uint32_t outer = parked_in;
	if (t && (mask & 1ull << (our_signo - 1))) {
		set_verdict(t, gen, CF_V_RETRY);
		progress();
		t = NULL;
	}
	if (t) {
		atomic_fetch_add_explicit(&cf_hot.stub_parks, 1,
					  memory_order_relaxed);
		count_parked(&(struct counted){ t, gen });
		parked_in = gen + 1;     /* before our signal can come in */
	} else {
		atomic_fetch_sub_explicit(&cf_hot.users, 1, memory_order_release);
	}
	cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8, 0,
			0);
	if (t)
		wait_release(gen, may_yield()); /* it was running the program */
	parked_in = outer;
}

void cf_stub_arrive(uintptr_t *slot)
{
	int saved_errno = errno;    /* the libc function may have set it */
	*slot = hijack.ra;
	hijack.live = false;
	arrive();
	errno = saved_errno;
}

void cf_hijack_drop(void)
{
	take_back_hijack();
}

/* Where glibc keeps a thread's cancellation bits in its descriptor, as it
 * tells debuggers (libthread_db reads the same field description), or 0. */
static size_t cancel_offset;
#define CANCELING_BIT 2
#define CANCELED_BIT 3

void cf_cancel_noted(uintptr_t thread)
{
	(void)thread;
	/* A redirect made before the request is undone at the release of
	 * its round: wait for it, if a round is on (this thread may be
	 * stopped meanwhile, as anywhere in the program). */
	uint32_t gen = atomic_load(&cf_hot.release_gen);
	while (atomic_load(&cf_hot.active) &&
	       atomic_load(&cf_hot.release_gen) == gen) {
		atomic_store(&cf_hot.release_sleepers, 1);
		if (atomic_load(&cf_hot.release_gen) != gen)
			break;
		cf_futex_wait(&cf_hot.release_gen, gen, 0);
	}
}

bool cf_cancel_requested(void)
{
	if (!cancel_offset)
		return false;
	int bits = *(volatile const int *)((char *)pthread_self() +
					   cancel_offset);
	return bits & (1 << CANCELING_BIT | 1 << CANCELED_BIT);
}

/*
 * longjmp over a redirected return.  A signal handler that leaves by
 * longjmp (a timer bounding a long call) skips the redirected return of
 * the libc call it interrupted: the thread would run on, to be asked again
 * later and perhaps found in libc again, under a handler again, for as
 * long as the quiesce may last.  The jump is where the thread leaves the
 * call, so the wrappers below park it there, as the stub would have: the
 * frames the jump leaves are abandoned by the program either way.  A jump
 * that stays inside the call (to a frame deeper than the redirected one)
 * changes nothing.  (They live here, beside the stub, so that a program
 * linked with libcfork.a gets them with it.)
 *
 * The target's stack pointer is read from the jump buffer, where glibc
 * keeps it mangled with the thread's pointer guard (PTR_MANGLE: xor with
 * the guard at %fs:0x30, then rotate left by 17 bits).
 */
static void jump_leaving(uintptr_t target_sp)
{
	/* The slot lies in the frame of the redirected call's caller: a jump
	 * to a frame above it (the stack grows down) leaves that call. */
	if (!hijack.live || target_sp <= hijack.slot || !take_back_hijack())
		return;
	int saved_errno = errno;
	arrive();
	errno = saved_errno;
}

#define JB_RSP 6

static uintptr_t target_sp(const struct __jmp_buf_tag *env)
{
	uintptr_t v = (uintptr_t)env->__jmpbuf[JB_RSP], guard;
	__asm__("mov %%fs:0x30, %0" : "=r"(guard));
	return ((v >> 17) | (v << (64 - 17))) ^ guard;
}

typedef void jump_fn(struct __jmp_buf_tag *, int);

/* libc's own; it does not return. */
static __attribute__((noreturn)) void jump(const char *name,
					   jump_fn **cache,
					   struct __jmp_buf_tag *env, int val)
{
	jump_fn *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
	if (!f) {
		f = (jump_fn *)cf_libc_sym(name);
		__atomic_store_n(cache, f, __ATOMIC_RELEASE);
	}
	jump_leaving(target_sp(env));
	f(env, val);
	__builtin_unreachable();
}

#define EXPORT __attribute__((visibility("default"), noreturn))

/* glibc's longjmp, _longjmp and siglongjmp are one function. */
static jump_fn *libc_siglongjmp, *libc_longjmp_chk;

EXPORT void siglongjmp(sigjmp_buf env, int val)
{
	jump("siglongjmp", &libc_siglongjmp, env, val);
}

EXPORT void longjmp(jmp_buf env, int val)
{
	jump("siglongjmp", &libc_siglongjmp, env, val);
}

void _longjmp(jmp_buf env, int val) __attribute__((noreturn));
EXPORT void _longjmp(jmp_buf env, int val)
{
	jump("siglongjmp", &libc_siglongjmp, env, val);
}

/* What _FORTIFY_SOURCE makes of longjmp: glibc checks that the jump does
 * not go down the stack. */
void __longjmp_chk(jmp_buf env, int val) __attribute__((noreturn));
EXPORT void __longjmp_chk(jmp_buf env, int val)
{
	jump("__longjmp_chk", &libc_longjmp_chk, env, val);
}

bool cf_hijack_undo(struct cf_thread *t)
{
	_Atomic uintptr_t *slot =
		(_Atomic uintptr_t *)atomic_load_explicit(&t->slot,
							 memory_order_acquire);
	uintptr_t expect = (uintptr_t)cf_stub;
	if (!slot || !cf_mem_readable((uintptr_t)slot, sizeof *slot))
		return false;
	return atomic_compare_exchange_strong(slot, &expect, t->ra);
}

int cf_handler_install(int signo)
{
	/* Our requests carry a tag in the top bits of their value, so that
	 * a sigqueue of the program's own with our number is passed on. */
	uint64_t seed = cf_now_ns() ^ ((uint64_t)getpid() << 32) ^
			(uint64_t)(uintptr_t)&seed;
	cf_request_tag = ((seed * 0x9e3779b97f4a7c15ull) & CF_TAG_MASK) |
			 (1ull << 48);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	/* Every signal is blocked while the handler holds the table and walks
	 * the stack, which also makes libunwind's masking around its locks
	 * free (cf_all_blocked); the program's are let in again once the
	 * thread parks (park_wait).  sigfillset leaves out glibc's internal
	 * signals: SIGSETXID (33) stays deliverable (setuid in another thread
	 * waits for every thread to take it, and its handler returns), but
	 * SIGCANCEL (32) is added, as an asynchronous cancellation would
	 * unwind the thread out of the handler with the table held. */
	sigfillset(&sa.sa_mask);
	sa.sa_mask.__val[0] |= 1ul << (32 - 1);
	/* { size in bits, count, offset } */
	const uint32_t *field = cf_libc_sym("_thread_db_pthread_cancelhandling");
	if (field && field[0] == 8 * sizeof(int) && field[1] == 1)
		cancel_offset = field[2];
	our_signo = signo;
	cf_wipe_on_fork(&cf_hot, sizeof cf_hot);
	return cf_sigmask_install(signo, &sa);
}
