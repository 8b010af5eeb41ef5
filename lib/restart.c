/* SPDX-License-Identifier: MIT */
/*
 * No EINTR for siblings: a thread our signal interrupted in a system call
 * finishes that call, after its park, as if no signal had come.
 *
 * With SA_RESTART the kernel restarts most calls by itself.  The others
 * come back to the handler's context with rax = -EINTR just after the
 * syscall instruction:
 *  - Calls with a restart block (nanosleep, clock_nanosleep, poll with a
 *    timeout, futex waits with a relative timeout, hence sleep, usleep,
 *    sem_timedwait): restart_syscall, made from inside the handler before
 *    it returns (rt_sigreturn would reset the block), continues them to
 *    their original deadline.  It is also its own check: after another
 *    handler has run and returned, the block says "no restart" and
 *    restart_syscall gives -EINTR, which is then the right answer.
 *  - Calls without one (pause, sigsuspend, select, pselect, ppoll, poll
 *    without a timeout, epoll_wait and epoll_pwait, sigtimedwait,
 *    msgrcv/msgsnd/semop, socket calls with a timeout): the call is made
 *    again with the registers of the interrupted context.  Its number is
 *    read from the instruction before the syscall (mov $nr,%eax, or xor
 *    %eax,%eax for read).  select, pselect and ppoll then end at their
 *    original deadline (the kernel wrote the time left back); epoll_wait,
 *    sigtimedwait, semtimedop and socket timeouts take their timeout by
 *    value or do not update it, so they end late by the time already
 *    waited, never early.
 * And one call the kernel would restart by itself: an untimed futex wait
 * (pthread_cond_wait, sem_wait, pthread_join, a contended lock), which is
 * where idle threads spend their lives.  The handler finds the thread
 * about to make it again (rip on the syscall instruction, rax = SYS_futex)
 * and makes it itself.  That costs nothing now and saves every later
 * cfork a signal, a wake-up and a context switch for that thread.
 *
 * A thread that sleeps in such a call sleeps inside our handler, where our
 * signal is blocked: it registers as a sleeper, and a driver that finds it
 * asleep claims it as parked instead of signalling it; if it wakes while
 * claimed, it parks before it returns to the program.  A program's handler
 * that runs on top of the call does the same before it starts
 * (cf_restart_hold, from sigmask.c's trampoline), and the thread is not
 * claimable while that handler runs.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include "internal.h"

/* System calls that may simply be made again after -EINTR: they had not
 * done anything yet (a call that had transferred data returns its count,
 * not -EINTR). */
static bool reissuable(long nr)
{
	switch (nr) {
	case SYS_read: case SYS_write: case SYS_readv: case SYS_writev:
	case SYS_poll: case SYS_select: case SYS_pause: case SYS_clock_nanosleep:
	case SYS_rt_sigtimedwait: case SYS_rt_sigsuspend:
	case SYS_epoll_wait: case SYS_pselect6: case SYS_ppoll:
	case SYS_epoll_pwait: case SYS_epoll_pwait2:
	case SYS_msgsnd: case SYS_msgrcv: case SYS_semop: case SYS_semtimedop:
	case SYS_accept: case SYS_accept4: case SYS_sendto: case SYS_recvfrom:
	case SYS_sendmsg: case SYS_recvmsg: case SYS_wait4: case SYS_waitid:
	case SYS_io_getevents: case SYS_mq_timedsend: case SYS_mq_timedreceive:
		return true;
	default:
		return false;
	}
}

/* Calls that left a restart block for restart_syscall: relative sleeps
 * and timed waits.  Absolute clock_nanosleep and poll without a timeout
 * have none and are made again instead.  (restart_syscall is never tried
 * blindly: a block left over from a call the kernel restarted by itself,
 * after SIGSTOP say, would run the wrong call.) */
static bool has_restart_block(long nr, const long a[6])
{
	switch (nr) {
	case SYS_nanosleep:
	case SYS_futex:
		return true;
	case SYS_clock_nanosleep:
		return !(a[1] & TIMER_ABSTIME);
	case SYS_poll:
		return (int)a[2] >= 0;
	default:
		return false;
	}
}

/* Length of one instruction that moves something into a register other
 * than eax, or to memory, in the few forms compilers put between loading
 * the call number and the syscall (mov reg/mem to reg, mov reg to r/m,
 * mov $imm to a register); 0 for anything else. */
static unsigned skip_mov(const unsigned char *q)
{
	unsigned rex = (q[0] & 0xf0) == 0x40 ? q[0] : 0;
	const unsigned char *o = q + (rex != 0);
	unsigned pre = rex != 0;
	if (o[0] == 0x8b || o[0] == 0x89) {
		unsigned mod = o[1] >> 6, reg = (o[1] >> 3) & 7, rm = o[1] & 7;
		if (o[0] == 0x8b && reg == 0 && !(rex & 4))
			return 0;                    /* into eax */
		if (o[0] == 0x89 && mod == 3 && rm == 0 && !(rex & 1))
			return 0;                    /* into eax */
		unsigned len = 2;
		if (mod != 3 && rm == 4)
			len += 1;                    /* SIB */
		if (mod == 1)
			len += 1;
		else if (mod == 2 || (mod == 0 && rm == 5))
			len += 4;
		else if (mod == 0 && rm == 4 && (o[2] & 7) == 5)
			len += 4;
		return pre + len;
	}
	if (o[0] >= 0xb8 && o[0] <= 0xbf && (o[0] != 0xb8 || (rex & 1)))
		return pre + 1 + ((rex & 8) ? 8 : 4);
	return 0;
}

/* The call number of the syscall instruction ending at ip: the last
 * "mov $nr,%eax" (b8 imm32) or "xor %eax,%eax" (31 c0, for read) within
 * a few bytes, followed only by moves that leave eax alone; -1 if none. */
static long decode_nr(uintptr_t ip)
{
	enum { WINDOW = 24 };
	if (!cf_mem_readable(ip - WINDOW - 2, WINDOW + 2))
		return -1;
	const unsigned char *end = (const unsigned char *)ip - 2;
	for (unsigned back = 2; back <= WINDOW; back++) {
		const unsigned char *q = end - back;
		long nr;
		unsigned len;
		if (q[0] == 0xb8 && back >= 5 && (q[-1] & 0xf0) != 0x40) {
			int32_t imm;
			__builtin_memcpy(&imm, q + 1, 4);
			nr = imm;
			len = 5;
		} else if (q[0] == 0x31 && q[1] == 0xc0 &&
			   (q[-1] & 0xf0) != 0x40) {
			nr = 0;
			len = 2;
		} else {
			continue;
		}
		for (q += len; q < end;) {
			unsigned l = skip_mov(q);
			if (!l)
				break;
			q += l;
		}
		if (q == end)
			return nr;
	}
	return -1;
}

/* Sleepers: threads inside a continued call.  state: 0 awake, 1 asleep,
 * or gen * 4 + 2 once a driver has counted it as parked for round gen
 * (a later round claims it again). */
#define MAX_SLEEPERS 16384
struct sleeper {
	_Atomic int32_t tid;
	_Atomic uint32_t state;
};
static struct sleeper *sleepers;        /* MAX_SLEEPERS, mapped once */
static _Atomic uint32_t high;           /* slots ever used */
/* This thread's slot while it is in a continued call; the slot it used
 * last, where it looks first.  A first search starts from 0, which keeps
 * the slots in use packed at the front, where the driver reads them. */
static CF_TLS struct sleeper *mine;
static CF_TLS uintptr_t mine_mark;      /* where, in the call's frame */
static CF_TLS uint32_t last_slot;
/* Bumped whenever a sleeper falls asleep or wakes (cf_restart_stirs). */
static _Atomic uint32_t stirs;

uint32_t cf_restart_stirs(void)
{
	return atomic_load_explicit(&stirs, memory_order_seq_cst);
}

int cf_restart_init(void)
{
	/* A child has no sleepers: its copy is wiped. */
	sleepers = cf_map_wiped(MAX_SLEEPERS * sizeof *sleepers);
	return sleepers ? 0 : -ENOMEM;
}

/* What a continued call's frame holds while the call is on: its own
 * address, mixed, so that other data left there by chance will not do. */
static uintptr_t mark_of(uintptr_t where)
{
	return where * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995u;
}

/* A word of this thread's stack that may lie in a frame that is gone (a
 * jump out of a handler): checked first, as an alternate signal stack may
 * have been unmapped since, and not instrumented, as ASan poisons what is
 * left of a dead frame; 0 if it cannot be read. */
static uintptr_t stack_word(uintptr_t where)
{
	return cf_mem_readable(where, sizeof(uintptr_t)) ? cf_stack_word(where)
							 : 0;
}

/* state: 1 (asleep), or already claimed for a round (gen * 4 + 2). */
static struct sleeper *sleep_begin(volatile uintptr_t *mark, uint32_t state)
{
	/* Our signal is blocked in a continued call and in a handler on top
	 * of it, unless that handler unblocks it: a call nested so is not
	 * continued.  A registration whose frame no longer holds its mark
	 * was left by a jump out of a handler, and is taken back. */
	if (mine && mine_mark > (uintptr_t)mark &&
	    stack_word(mine_mark) == mark_of(mine_mark))
		return NULL;
	pid_t tid = cf_gettid();
	if (!sleepers)
		return NULL;
	for (uint32_t k = 0; k < MAX_SLEEPERS; k++) {
		uint32_t i = (last_slot + k) % MAX_SLEEPERS;
		int32_t seen = 0;
		/* A slot with this tid was left by this thread (it jumped
		 * out of a handler on top of its call) or by an exited
		 * thread whose tid it now has: either way it is ours. */
		if (atomic_load_explicit(&sleepers[i].tid,
					 memory_order_relaxed) != tid &&
		    !atomic_compare_exchange_strong(&sleepers[i].tid, &seen,
						    tid))
			continue;
		atomic_store(&sleepers[i].state, state);
		atomic_fetch_add(&stirs, 1);
		uint32_t h = atomic_load(&high);
		while (h < i + 1 &&
		       !atomic_compare_exchange_weak(&high, &h, i + 1))
			;
		last_slot = i;
		mine = &sleepers[i];
		*mark = mark_of((uintptr_t)mark);
		mine_mark = (uintptr_t)mark;
		return mine;
	}
	return NULL;       /* full: the thread is simply not claimable */
}

/* mask: the program's, to park with. */
static void sleep_end(struct sleeper *s, uint64_t mask)
{
	mine = NULL;
	uint32_t was = atomic_exchange(&s->state, 0);
	atomic_fetch_add(&stirs, 1);
	if (was >= 2) {
		/* Claimed while asleep: if that round is still on, this
		 * thread counts as parked in it and stays stopped. */
		cf_park_wait(was / 4, mask);
	}
	atomic_store_explicit(&s->tid, 0, memory_order_release);
}

/* Program handlers run on top of this thread's continued calls. */
static CF_TLS uint32_t handlers_run;

void *cf_restart_hold(void)
{
	struct sleeper *s = mine;
	if (!s)
		return NULL;
	handlers_run++;
	/* 0: an outer handler holds it already, or the call is over. */
	uint32_t was = atomic_exchange(&s->state, 0);
	if (was == 0)
		return NULL;
	atomic_fetch_add(&stirs, 1);
	/* Claimed: wait out that round, with the mask the program's handler
	 * was given. */
	if (was >= 2)
		cf_wait_release(was / 4);
	return s;
}

void cf_restart_unhold(void *token)
{
	if (!token)
		return;
	/* Marked asleep again with every signal blocked, as everywhere a
	 * slot changes: no other handler of the program runs on the way back
	 * to the call (it would run claimable, and one that jumped out would
	 * leave the mark behind).  The kernel restores the call's mask. */
	uint64_t all = ~0ull;
	cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, 8, 0, 0);
	/* A handler that jumped out and came back in another call leaves
	 * the slot awake: never claimable while it runs the program. */
	if (token == mine)
		atomic_store(&mine->state, 1);
}

unsigned cf_restart_claim(uint32_t gen)
{
	unsigned claimed = 0;
	uint32_t n = atomic_load_explicit(&high, memory_order_acquire);
	for (uint32_t i = 0; i < n; i++) {
		struct sleeper *s = &sleepers[i];
		pid_t tid = atomic_load_explicit(&s->tid, memory_order_acquire);
		struct cf_thread *t = tid ? cf_tasks_find(tid) : NULL;
		/* Asleep, or claimed by an earlier round: claim for this one.
		 * 0 means it woke, and will take the signal like the rest.
		 * A thread leaves its call without sleep_end only from a
		 * handler on top of it, which the trampoline (sigmask.c) set
		 * awake first: a slot left behind is never asleep, so a new
		 * thread that gets the same tid is not claimed by mistake. */
		uint32_t st = atomic_load(&s->state);
		if (!t || st == 0 || st == gen * 4u + 2u)
			continue;
		if (!atomic_compare_exchange_strong(&s->state, &st,
						    gen * 4u + 2u))
			continue;
		atomic_store_explicit(&t->verdict, gen * 8u + CF_V_PARKED,
				      memory_order_release);
		claimed++;
	}
	return claimed;
}

/* A call made again from inside the handler must not let our signal in:
 * the next quiesce would interrupt it there and end it with EINTR.  Calls
 * that install a temporary signal mask get a copy of it that blocks ours
 * (the kernel's sigset is 8 bytes on x86-64). */
struct masks {
	uint64_t set;
	struct { const uint64_t *ss; size_t len; } pselect_arg;
};

static long with_ours(const void *user, uint64_t *copy)
{
	if (!user || !cf_mem_readable((uintptr_t)user, 8))
		return (long)user;
	__builtin_memcpy(copy, user, 8);
	*copy |= 1ull << (cf_config()->signo - 1);
	return (long)copy;
}

static void block_ours(long nr, long a[6], struct masks *m)
{
	switch (nr) {
	case SYS_rt_sigsuspend:
		a[0] = with_ours((const void *)a[0], &m->set);
		break;
	case SYS_ppoll:
		a[3] = with_ours((const void *)a[3], &m->set);
		break;
	case SYS_epoll_pwait:
	case SYS_epoll_pwait2:
		a[4] = with_ours((const void *)a[4], &m->set);
		break;
	case SYS_pselect6:
		if (a[5] && cf_mem_readable((uintptr_t)a[5],
					    sizeof m->pselect_arg)) {
			__builtin_memcpy(&m->pselect_arg, (const void *)a[5],
					 sizeof m->pselect_arg);
			m->pselect_arg.ss = (const uint64_t *)with_ours(
				m->pselect_arg.ss, &m->set);
			a[5] = (long)&m->pselect_arg;
		}
		break;
	}
}

/* Is the instruction at ip + before a syscall? */
static bool at_syscall(uintptr_t ip, int before)
{
	const unsigned char *p = (const unsigned char *)ip + before;
	return cf_mem_readable(ip + before, 2) && p[0] == 0x0f && p[1] == 0x05;
}

/* An untimed futex wait that the kernel is about to restart (or that the
 * thread was about to make when the signal came: the same thing). */
static bool futex_wait_again(const greg_t *g)
{
	unsigned cmd = (unsigned)g[REG_RSI] & FUTEX_CMD_MASK;
	return g[REG_RAX] == SYS_futex && g[REG_R10] == 0 &&
	       (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET);
}

bool cf_restart_in_call(const ucontext_t *uc)
{
	const greg_t *g = uc->uc_mcontext.gregs;
	uintptr_t ip = (uintptr_t)g[REG_RIP];
	return g[REG_RAX] == -EINTR ? at_syscall(ip, -2) : at_syscall(ip, 0);
}

/* Continues the call uc was interrupted in, registered as a sleeper in
 * state; counted(arg), if given, once it is registered.  Returns whether
 * it did (nothing is done otherwise). */
static bool continue_call(ucontext_t *uc, uint32_t state,
			  void (*counted)(void *), void *arg)
{
	greg_t *g = uc->uc_mcontext.gregs;
	uintptr_t ip = (uintptr_t)g[REG_RIP];
	long nr;
	bool block, again = false;
	if (g[REG_RAX] == -EINTR) {
		if (!at_syscall(ip, -2))
			return false;
		nr = decode_nr(ip);
	} else if (futex_wait_again(g) && at_syscall(ip, 0)) {
		nr = SYS_futex;
		again = true;
	} else {
		return false;
	}
	long a[6] = { g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10],
		      g[REG_R8], g[REG_R9] };
	block = !again && has_restart_block(nr, a);
	if (!block && !again && !reissuable(nr))
		return false;
	/* The call goes on with the program's own signal mask (its
	 * signals end it as they would have), plus ours. */
	uint64_t mask, handler_mask, all = ~0ull;
	__builtin_memcpy(&mask, &uc->uc_sigmask, 8);
	mask |= 1ull << (cf_config()->signo - 1);
	/* The slot is taken and given back with every signal blocked: after
	 * a park the handler runs with the program's mask, and a program's
	 * handler that came in halfway (the slot marked asleep, this thread
	 * not yet pointing at it) and left by a jump would leave a slot that
	 * every later round claims as parked while the thread runs on. */
	cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all,
			(long)&handler_mask, 8, 0, 0);
	volatile uintptr_t mark = 0;
	struct sleeper *s = state ? sleep_begin(&mark, state) : NULL;
	/* With every slot taken, the thread could be neither counted asleep
	 * nor signalled while it sleeps here: the call is left to the
	 * program (the kernel makes a futex wait again by itself; the others
	 * fail with EINTR). */
	if (!s && state) {
		cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK,
				(long)&handler_mask, 0, 8, 0, 0);
		return false;
	}
	if (counted)
		counted(arg);
	cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8, 0,
			0);
	long r;
	if (block) {
		r = cf_raw_syscall6(SYS_restart_syscall, 0, 0, 0, 0, 0, 0);
	} else {
		/* A signal that ran no handler of the program (one it
		 * ignores, queued because a thread of ours had every signal
		 * blocked; glibc's SIGSETXID) ends epoll_wait and
		 * sigtimedwait with EINTR all the same: the call is made
		 * again, as the kernel restarts the others. */
		struct masks m;
		block_ours(nr, a, &m);
		uint32_t before = handlers_run;
		do
			r = cf_raw_syscall6(nr, a[0], a[1], a[2], a[3], a[4],
					    a[5]);
		while (r == -EINTR && handlers_run == before);
	}
	cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all, 0, 8, 0,
			0);
	if (s)
		sleep_end(s, cf_program_mask(uc));
	mark = 0;
	cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&handler_mask,
			0, 8, 0, 0);
	g[REG_RAX] = r;
	if (again)
		g[REG_RIP] = (greg_t)(ip + 2);
	return true;
}

void cf_restart_interrupted(ucontext_t *uc)
{
	continue_call(uc, 1, NULL, NULL);
}

void cf_restart_unclaimed(ucontext_t *uc)
{
	continue_call(uc, 0, NULL, NULL);
}

bool cf_restart_park_asleep(ucontext_t *uc, uint32_t gen,
			    void (*counted)(void *), void *arg)
{
	if (!futex_wait_again(uc->uc_mcontext.gregs))
		return false;
	return continue_call(uc, gen * 4u + 2u, counted, arg);
}
