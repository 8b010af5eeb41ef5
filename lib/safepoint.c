/* SPDX-License-Identifier: MIT */
/*
 * The safe-point rule: may this thread be parked where it was interrupted?
 *
 * A thread parked while holding a lock that fork() takes (malloc's arenas,
 * the stdio list, NSS) deadlocks the fork; one parked holding a lock the
 * child needs and glibc does not reset (the loader's, setenv's, the time
 * zone's, popen's, exit's) hangs the child.  Only libc and the dynamic
 * loader hold those, so the rule looks at the runs of consecutive libc and
 * loader frames in the whole stack (a signal frame ends a run; the vDSO
 * joins one and holds nothing):
 *
 *  - The innermost run, when the thread is executing in libc right now, is
 *    safe when the function the program called is on the ANYTIME list
 *    (system call wrappers, waits on the program's own mutexes, condition
 *    variables and semaphores): its outermost frame, or the function the
 *    program's call instruction names (sem_wait tail-calls a function with
 *    no exported name, so its own frame is gone), or when no DENY caller is in the
 *    run and the thread is asleep: in a system call of a BLOCKING wrapper
 *    (fgets on a terminal, getaddrinfo, system's waitpid), or in a sleep,
 *    timed wait or multiplexer our signal interrupted (sem_timedwait and
 *    pselect reach theirs through functions without an exported name),
 *    or blocked waiting for a thread to exit (pthread_join, which takes a
 *    lock only once it wakes).
 *  - A run below user code (libc called back into the program) is safe
 *    when all its functions are ANYTIME ones (an interceptor calling
 *    through), when it is a sanitizer's interceptor calling through (at
 *    most two frames of the runtime alone), or when it is at most two
 *    frames and its outermost function calls back without holding a lock
 *    (CALLBACK: main's and a thread's start, qsort's comparison, fork
 *    handlers); the length limit rejects deeper chains such as exit ->
 *    _dl_fini -> a destructor, which hold the loader lock.
 *  - The outermost run of a thread (clone -> start_thread) is safe below
 *    user code, never on its own: a thread there is starting or exiting.
 *  - Everything else is unsafe.  If no run is unsafe the thread parks.
 *    Otherwise the return address of the outermost unsafe run's outermost
 *    frame is redirected to cf_stub, so the thread parks itself the moment
 *    it returns to the program; where that is impossible (no caller seen,
 *    a CET shadow stack) the driver signals it again later.
 *
 * Frames in other objects, including this library, count as the program's.
 * A walk that stops early (no unwind information, depth limit) is judged on
 * the frames it saw.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static bool shadow_stack;

int cf_safepoint_init(void)
{
	/* A redirected return faults under a CET shadow stack, whose copy of
	 * the return address would no longer match (ARCH_SHSTK_STATUS). */
	unsigned long features = 0;
	if (syscall(SYS_arch_prctl, 0x5005, &features) == 0 && (features & 1))
		shadow_stack = true;
	return 0;
}

enum frame_kind { FK_USER, FK_LIBC, FK_VDSO, FK_SANITIZER };

static uintptr_t lookup_ip(const struct cf_frame *f)
{
	return f->exact_ip ? f->ip : f->ip - 1;
}

static enum frame_kind kind_of(const struct cf_frame *f)
{
	if (f->signal_frame)
		return FK_USER;
	const struct cf_object *o = cf_objects_find(lookup_ip(f));
	if (!o)
		return FK_USER;
	if (o->kind == CF_OBJ_LIBC || o->kind == CF_OBJ_LD)
		return FK_LIBC;
	if (o->kind == CF_OBJ_SANITIZER)
		return FK_SANITIZER;
	return o->kind == CF_OBJ_VDSO ? FK_VDSO : FK_USER;
}

static unsigned class_of(const struct cf_frame *f)
{
	if (kind_of(f) == FK_VDSO)
		return CF_FN_ANYTIME | CF_FN_CALLBACK;
	return cf_objects_fn_class(lookup_ip(f));
}

/* With SA_RESTART the kernel has already rewound an interrupted,
 * restartable call: rip points at the syscall instruction and rax holds
 * its number again.  (A thread about to make that call looks the same,
 * and is as harmless.)  Futex waits are left out: libc's own lock waits
 * are futex waits of this kind. */
static bool at_restartable_syscall(const ucontext_t *uc)
{
	uintptr_t ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	long ax = (long)uc->uc_mcontext.gregs[REG_RAX];
	const unsigned char *p = (const unsigned char *)ip;
	return cf_mem_readable(ip, 2) && p[0] == 0x0f && p[1] == 0x05 &&
	       ax >= 0 && ax != SYS_futex;
}

/* pthread_join waits with a futex on the joined thread's tid word (the
 * kernel clears it when that thread exits), expecting the tid: libc's
 * locks hold 0, 1 or 2, never a thread's ID.  The joiner holds no lock
 * while it waits there (pthread_join reaches the wait through a function
 * with no exported name, so the allow-lists cannot see it).  The thread
 * joined may be the one making the cfork, which the table leaves out. */
static bool join_wait(const ucontext_t *uc)
{
	const greg_t *g = uc->uc_mcontext.gregs;
	uintptr_t ip = (uintptr_t)g[REG_RIP];
	const unsigned char *p = (const unsigned char *)ip;
	int op = (int)g[REG_RSI] & 0x7f;
	pid_t tid = (pid_t)g[REG_RDX];
	return g[REG_RAX] == SYS_futex && cf_mem_readable(ip, 2) &&
	       p[0] == 0x0f && p[1] == 0x05 &&
	       (op == 0 /* FUTEX_WAIT */ || op == 9 /* FUTEX_WAIT_BITSET */) &&
	       tid > 2 && (cf_tasks_find(tid) != NULL ||
			    tid == atomic_load_explicit(&cf_hot.driver,
						 memory_order_relaxed));
}

/* A call that will fail with EINTR unless restart.c continues it left rip
 * after the syscall instruction and -EINTR in rax.  Those are sleeps,
 * timed waits and multiplexers (nanosleep, futex waits with a timeout,
 * poll, select, epoll_wait, pause, sigsuspend, sigtimedwait): libc never
 * makes them while it holds one of its locks, and the thread is asleep. */
static bool in_interrupted_sleep(const ucontext_t *uc)
{
	uintptr_t ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	long ax = (long)uc->uc_mcontext.gregs[REG_RAX];
	const unsigned char *p = (const unsigned char *)(ip - 2);
	return ax == -EINTR && cf_mem_readable(ip - 2, 2) && p[0] == 0x0f &&
	       p[1] == 0x05;
}

/* Does a call instruction end just before ra?  e8 rel32, or ff /2 in its
 * 2 to 7 byte forms.  A word on the stack that merely looks like a return
 * address is never overwritten. */
static bool after_call(uintptr_t ra)
{
	if (!cf_mem_readable(ra - 7, 7))
		return false;
	const unsigned char *p = (const unsigned char *)ra;
	if (p[-5] == 0xe8)
		return true;
	for (int len = 2; len <= 7; len++)
		if (p[-len] == 0xff && ((p[-len + 1] >> 3) & 7) == 2)
			return true;
	return false;
}

static bool read_word(uintptr_t addr, uintptr_t *out)
{
	if (!cf_mem_readable(addr, sizeof *out))
		return false;
	*out = cf_stack_word(addr);
	return true;
}

/* Where a PLT entry at t jumps: endbr64 and bnd prefixes, then
 * jmp *disp32(%rip), through the GOT slot the loader has filled. */
static uintptr_t through_plt(uintptr_t t)
{
	if (!cf_mem_readable(t, 16))
		return t;
	const unsigned char *p = (const unsigned char *)t;
	size_t i = 0;
	if (p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa)
		i = 4;
	if (p[i] == 0xf2)
		i++;
	if (p[i] != 0xff || p[i + 1] != 0x25)
		return t;
	int32_t disp;
	memcpy(&disp, p + i + 2, sizeof disp);
	uintptr_t slot = t + i + 6 + (uintptr_t)(intptr_t)disp, f;
	return read_word(slot, &f) ? f : t;
}

/* The class of the libc function the program's call before ra went to:
 * a direct call (to the function or its PLT entry) or a call through
 * the GOT (-fno-plt).  The target must be a function's first byte, so a
 * call decoded wrongly (the bytes of a register call that happen to look
 * like e8) names nothing.  0 when the call cannot be read. */
static unsigned called_class(uintptr_t ra)
{
	if (!cf_mem_readable(ra - 6, 6))
		return 0;
	const unsigned char *p = (const unsigned char *)ra;
	int32_t rel;
	uintptr_t target;
	if (p[-6] == 0xff && p[-5] == 0x15) {
		memcpy(&rel, p - 4, sizeof rel);
		if (!read_word(ra + (uintptr_t)(intptr_t)rel, &target))
			return 0;
	} else if (p[-5] == 0xe8) {
		memcpy(&rel, p - 4, sizeof rel);
		target = through_plt(ra + (uintptr_t)(intptr_t)rel);
	} else {
		return 0;
	}
	return cf_objects_entry_class(target);
}

/* The rule is applied while the walk goes on, one frame at a time, so
 * that the handler keeps no array of frames on a thread's stack. */
struct judge {
	const ucontext_t *uc;
	int frames;
	/* the run of libc frames being read */
	bool in_run, top, deny, all_anytime, all_sanitizer;
	int len;
	unsigned inner_class;
	struct cf_frame outer;
	/* the outermost unsafe run so far */
	bool unsafe, hijackable;
	struct cf_hijack hj;
	/* the innermost frames, for the diagnostic */
	uint32_t depth;
	uintptr_t stack[CF_STACK_KEEP];
};

/* caller: the program's frame the run returns to, or NULL. */
static bool run_safe(const struct judge *j, const struct cf_frame *caller,
		     bool bottom)
{
	unsigned outer_class = class_of(&j->outer);
	if (j->top)
		return !bottom &&
		       ((outer_class & CF_FN_ANYTIME) ||
			(caller && !caller->exact_ip &&
			 (called_class(caller->ip) & CF_FN_ANYTIME)) ||
			(!j->deny && in_interrupted_sleep(j->uc)) ||
			(!j->deny && (j->inner_class & CF_FN_BLOCKING) &&
			 at_restartable_syscall(j->uc)) ||
			join_wait(j->uc));
	if (bottom)
		return j->len <= 2;
	/* Below the program's code, the run was interrupted by a signal
	 * whose handler is the program's, or called back into the program.
	 * Either is safe inside a function the program called that holds no
	 * lock at any point (siglongjmp out of a handler, interrupted by the
	 * next signal), in a run of ANYTIME functions (a sanitizer's
	 * interceptor of ppoll calling libcfork's, which calls libc's), or in
	 * a short run whose outermost function calls back holding nothing. */
	return (outer_class & CF_FN_ANYTIME) ||
	       (caller && !caller->exact_ip &&
		(called_class(caller->ip) & CF_FN_ANYTIME)) ||
	       (j->len <= 2 && (outer_class & CF_FN_CALLBACK)) ||
	       j->all_anytime || (j->all_sanitizer && j->len <= 2);
}

/* The caller's stack pointer is the run's outermost frame's CFA; on
 * x86-64 the return address sits just below it. */
/* Never a return into libcfork itself (glibc's cancellation handler,
 * called by the trampoline): its own code decides where it stops, and an
 * unwind that starts there (a cancellation) could not step through the
 * stub.  Nor in a thread asked to cancel: its cancellation may unwind
 * from any cancellation point inside the call. */
static bool hijack_at(const struct cf_frame *caller, struct cf_hijack *hj)
{
	uintptr_t slot = caller->sp - sizeof(uintptr_t);
	const struct cf_object *o = cf_objects_find(caller->ip);
	if (shadow_stack || caller->exact_ip || !o || o->kind == CF_OBJ_SELF ||
	    cf_cancel_requested() ||
	    !cf_mem_readable(slot, sizeof(uintptr_t)) ||
	    cf_stack_word(slot) != caller->ip || !after_call(caller->ip))
		return false;
	hj->slot = slot;
	hj->ra = caller->ip;
	return true;
}

/* caller: the first frame of the program's after the run, or NULL. */
static void end_run(struct judge *j, const struct cf_frame *caller,
		    bool bottom)
{
	j->in_run = false;
	if (run_safe(j, caller, bottom))
		return;
	j->unsafe = true;
	struct cf_hijack h;
	j->hijackable = !bottom && caller && hijack_at(caller, &h);
	if (j->hijackable) {
		j->hj.slot = h.slot;
		j->hj.ra = h.ra;
	}
}

static bool on_frame(const struct cf_frame *f, void *arg)
{
	struct judge *j = arg;
	bool libc = kind_of(f) != FK_USER;
	if (j->depth < CF_STACK_KEEP)
		j->stack[j->depth++] = f->ip;
	if (libc) {
		unsigned c = class_of(f);
		if (!j->in_run) {
			j->in_run = true;
			j->top = j->frames == 0;
			j->deny = false;
			j->all_anytime = true;
			j->all_sanitizer = true;
			j->len = 0;
			j->inner_class = c;
		}
		j->len++;
		j->deny |= (c & CF_FN_DENY) != 0;
		j->all_anytime &= (c & CF_FN_ANYTIME) != 0;
		j->all_sanitizer &= kind_of(f) == FK_SANITIZER;
		j->outer = *f;
	} else if (j->in_run) {
		end_run(j, f, false);
	}
	j->frames++;
	return true;
}

enum cf_verdict cf_safepoint_judge(const ucontext_t *uc, pid_t tid,
				   struct cf_hijack *hj)
{
	struct judge j = { .uc = uc };
	int r = cf_walk(uc, tid, on_frame, &j);
	if (j.frames == 0) {
		/* Not even the first frame: judge the interrupted pc alone. */
		struct cf_frame f0 = {
			.ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP],
			.exact_ip = true };
		on_frame(&f0, &j);
	}
	if (j.in_run)
		end_run(&j, NULL, r == 1);
	if (!j.unsafe)
		return CF_PARK;
	*hj = j.hj;
	hj->depth = j.depth;
	memcpy(hj->stack, j.stack, j.depth * sizeof j.stack[0]);
	return j.hijackable ? CF_HIJACK : CF_RETRY;
}
