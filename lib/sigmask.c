/* SPDX-License-Identifier: MIT */
/*
 * The program's view of libcfork's signal.
 *
 * Thread pools often block every signal (sigfillset + pthread_sigmask), and
 * a program may install a handler for any signal number: either would keep
 * a sibling from ever taking the quiesce signal.  As bdwgc and DMTCP do,
 * libcfork wraps the signal API so that the quiesce signal stays unblocked
 * and its handler ours, while the program reads back exactly what it set:
 *
 *   pthread_sigmask, sigprocmask   ours is taken out of what is blocked;
 *                                  the old mask shows it as the program
 *                                  last set it in this thread
 *   sigaction, signal,             for our number, the program's action is
 *   bsd_signal, ssignal,           recorded and returned, not installed;
 *   sysv_signal, sigset            the handler passes on signals that are
 *                                  not ours to it.  For the others the
 *                                  program's handler is recorded and a
 *                                  trampoline installed in its place, with
 *                                  the program's flags and mask; the old
 *                                  action reads back as the program's
 *   sigsuspend, ppoll, pselect,    ours is taken out of the temporary mask
 *   epoll_pwait, epoll_pwait2,
 *   pthread_attr_setsigmask_np
 *   sigwait, sigwaitinfo,          ours is taken out of the set waited for
 *   sigtimedwait, signalfd         (a signalfd would take our requests)
 *   sighold, sigrelse, sigignore,  through the wrappers above (glibc's call
 *   siginterrupt                   libc's own sigprocmask and sigaction)
 *   setcontext, swapcontext        ours is taken out of a copy of the
 *                                  context's mask
 *
 * So libcfork's signal is never blocked on the program's behalf: not by a
 * thread's mask, a handler's mask, a context's or a wait's.  A program
 * that uses the number itself (blocks it alone, waits for it, handles or
 * ignores it, or is sent one) is told once on stderr, and the report says
 * so (cf_sigmask_shared): a signal of that number that it blocks or waits
 * for is lost, as it can be neither kept pending nor handed to its wait.
 *
 * These definitions take precedence over libc's because libcfork comes
 * before libc in the symbol search order of every object loaded with it
 * (it is a dependency of the program, or preloaded); they carry glibc's
 * version names so that versioned references bind to them too.  libc's
 * internal calls (posix_spawn's and pthread_create's brief all-signal
 * blocks, a thread's exit path) are not affected: the driver waits for
 * those.  A thread that blocks the signal with a raw rt_sigprocmask system
 * call cannot be stopped; the quiesce reaches its bound and the report
 * says "blocks the cfork signal".
 *
 * Why the trampoline: a thread counted as stopped may still take a
 * signal, when it is parked (every signal the program lets in is) or
 * asleep in a continued call (restart.c, which keeps the program's mask).
 * The program's handler must not run during the copy: the trampoline
 * waits for the release first.  Handlers installed before libcfork was
 * (by an earlier constructor) are wrapped when it installs its own; ones
 * installed by a raw rt_sigaction system call are not.
 *
 *   pthread_cancel                 glibc's cancellation handler (which
 *                                  runs cleanup handlers, program code)
 *                                  gets the same trampoline before the
 *                                  first cancellation is sent
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "internal.h"

struct real {
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	int (*pthread_sigmask)(int, const sigset_t *, sigset_t *);
	int (*sigprocmask)(int, const sigset_t *, sigset_t *);
	int (*sigsuspend)(const sigset_t *);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *,
		     const sigset_t *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *,
		       const struct timespec *, const sigset_t *);
	int (*epoll_pwait)(int, struct epoll_event *, int, int,
			   const sigset_t *);
	int (*epoll_pwait2)(int, struct epoll_event *, int,
			    const struct timespec *, const sigset_t *);
	int (*attr_setsigmask)(pthread_attr_t *, const sigset_t *);
	int (*sigwait)(const sigset_t *, int *);
	int (*sigwaitinfo)(const sigset_t *, siginfo_t *);
	int (*sigtimedwait)(const sigset_t *, siginfo_t *,
			    const struct timespec *);
	int (*pthread_cancel)(pthread_t);
	int (*setcontext)(const ucontext_t *);
	int (*swapcontext)(ucontext_t *, const ucontext_t *);
	int (*signalfd)(int, const sigset_t *, int);
};
static struct real real;
static _Atomic int resolved;

#define RESOLVE(f) real.f = (__typeof__(real.f))cf_libc_sym(#f)

/* Before our constructor a wrapper may already be called (another
 * library's constructor): the pointers are filled on first use. */
static void resolve(void)
{
	if (atomic_load_explicit(&resolved, memory_order_acquire))
		return;
	RESOLVE(sigaction);
	RESOLVE(pthread_sigmask);
	RESOLVE(sigprocmask);
	RESOLVE(sigsuspend);
	RESOLVE(ppoll);
	RESOLVE(pselect);
	RESOLVE(epoll_pwait);
	RESOLVE(epoll_pwait2);
	RESOLVE(sigwait);
	RESOLVE(sigwaitinfo);
	RESOLVE(sigtimedwait);
	RESOLVE(pthread_cancel);
	RESOLVE(setcontext);
	RESOLVE(swapcontext);
	RESOLVE(signalfd);
	real.attr_setsigmask = (__typeof__(real.attr_setsigmask))cf_libc_sym(
		"pthread_attr_setsigmask_np");
	atomic_store_explicit(&resolved, 1, memory_order_release);
}

/* 0 until the handler is installed: until then everything passes through. */
static _Atomic int ours;

/* Does the program believe this thread blocks our signal? */
static CF_TLS bool app_blocks;

/* The program's action for our signal number.  Written under a lock,
 * read by the handler without one: the function pointer is one word. */
static _Atomic uint32_t action_lock;
static struct sigaction app_action;          /* zero: SIG_DFL */
static _Atomic(void *) app_fn;
static _Atomic int app_flags;

/* The program's handlers of the other signals, called by trampoline, and
 * whether their masks block ours (installed without it, read back with). */
static _Atomic(void *) app_handler[_NSIG];
static _Atomic int app_handler_flags[_NSIG];
static _Atomic bool app_handler_blocks_ours[_NSIG];

/* How the program uses our signal number itself, first seen: a static
 * phrase, NULL while it does not. */
static _Atomic(const char *) shared_use;
static _Atomic bool shared_said;
/* It waits for it (sigwait, signalfd): one sent to it is expected to stay
 * pending, not to take its default action. */
static _Atomic bool app_waits;

/* Says once on stderr that the program uses our number.  In a signal
 * handler the line is left to the next cfork (cf_sigmask_shared). */
static void shared(const char *how, bool in_handler)
{
	const char *none = NULL;
	atomic_compare_exchange_strong(&shared_use, &none, how);
	if (!in_handler && !atomic_exchange(&shared_said, true))
		cf_log("the program %s signal %d, which libcfork uses to stop "
		       "threads: set CFORK_SIGNAL to a real-time signal it "
		       "does not use (a signal %d that it blocks or waits for "
		       "is lost)", atomic_load(&shared_use),
		       atomic_load(&ours), atomic_load(&ours));
}

const char *cf_sigmask_shared(void)
{
	const char *how = atomic_load(&shared_use);
	if (how)
		shared(how, false);
	return how;
}

/* Does set name our signal on purpose: with it, but without every other
 * real-time signal (sigfillset, which thread pools use, is no use of it)? */
static bool names_ours(const sigset_t *set)
{
	int s = atomic_load_explicit(&ours, memory_order_relaxed);
	if (!set || !s || sigismember(set, s) != 1)
		return false;
	for (int n = SIGRTMIN; n <= SIGRTMAX; n++)
		if (sigismember(set, n) != 1)
			return true;
	return false;
}

static bool is_handler(void *fn)
{
	return fn != (void *)SIG_DFL && fn != (void *)SIG_IGN;
}

/* Runs a handler once its thread may run the program's code: after the
 * release, when it counts as stopped.  The kernel passes all three
 * arguments whatever the flags, so a one-argument handler may be called
 * this way too. */
static void call_held(void *fn, int sig, siginfo_t *si, void *ctx)
{
	int saved_errno = errno;   /* the waits may set it */
	int o = atomic_load_explicit(&ours, memory_order_relaxed);
	uint64_t one = o ? 1ull << (o - 1) : 0;
	void *token = NULL;
	/* Inside libcfork's code (a park, a continued call: our signal is
	 * blocked there), or parked after the stub or a jump, the handler
	 * may have to wait for the release.  Nothing runs on top of the wait:
	 * a handler that jumped out of it would skip this one, held before
	 * it began, and its signal would be lost.  Signals that came during
	 * the wait are blocked in this handler, as if they had come just
	 * after it: the program's order. */
	if ((cf_program_mask(ctx) & one) || cf_parked()) {
		uint64_t all = ~0ull, mask, pending = 0;
		cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all,
				(long)&mask, 8, 0, 0);
		cf_park_hold();
		token = cf_restart_hold();
		cf_raw_syscall6(SYS_rt_sigpending, (long)&pending, 8, 0, 0, 0,
				0);
		/* Our signal is let in, as everywhere in the program.  (A
		 * handler that leaves with longjmp keeps the mask it ran
		 * with.) */
		mask = (mask | pending) & ~one;
		cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask,
				0, 8, 0, 0);
	}
	if (errno != saved_errno)
		errno = saved_errno;
	((void (*)(int, siginfo_t *, void *))fn)(sig, si, ctx);
	cf_restart_unhold(token);
}

static void trampoline(int sig, siginfo_t *si, void *ctx)
{
	void *fn = atomic_load_explicit(&app_handler[sig],
					memory_order_acquire);
	if (fn && is_handler(fn))
		call_held(fn, sig, si, ctx);
}

/* Installs act for sig != ours, with the trampoline in place of a
 * handler; *old reads back the program's own. */
static int wrap_action(int sig, const struct sigaction *act,
		       struct sigaction *old)
{
	void *prev = NULL;
	int prev_flags = 0;
	bool prev_blocks = false;
	int r;
	if (act && is_handler((void *)act->sa_handler) && sig > 0 &&
	    sig < _NSIG) {
		struct sigaction k = *act;
		k.sa_sigaction = trampoline;
		k.sa_flags |= SA_SIGINFO;
		int o = atomic_load(&ours);
		if (o)
			sigdelset(&k.sa_mask, o);
		/* Recorded first: a delivery right after the install must
		 * find it. */
		prev = atomic_exchange(&app_handler[sig],
				       (void *)act->sa_handler);
		prev_flags = atomic_exchange(&app_handler_flags[sig],
					     act->sa_flags);
		prev_blocks = atomic_exchange(&app_handler_blocks_ours[sig],
					      o && sigismember(&act->sa_mask,
							       o) == 1);
		if (names_ours(&act->sa_mask))
			shared("blocks, in a handler's mask,", false);
		r = real.sigaction(sig, &k, old);
		if (r < 0) {
			atomic_store(&app_handler[sig], prev);
			atomic_store(&app_handler_flags[sig], prev_flags);
			atomic_store(&app_handler_blocks_ours[sig], prev_blocks);
			return r;
		}
	} else {
		r = real.sigaction(sig, act, old);
		if (r < 0 || sig <= 0 || sig >= _NSIG)
			return r;
		prev = atomic_load(&app_handler[sig]);
		prev_flags = atomic_load(&app_handler_flags[sig]);
		prev_blocks = atomic_load(&app_handler_blocks_ours[sig]);
	}
	if (old && old->sa_sigaction == trampoline) {
		old->sa_handler = (sighandler_t)prev;
		old->sa_flags = prev_flags;
		if (prev_blocks)
			sigaddset(&old->sa_mask, atomic_load(&ours));
	}
	return r;
}

int cf_sigmask_install(int signo, const struct sigaction *sa)
{
	resolve();
	if (!real.sigaction)
		return -ENOSYS;
	if (real.sigaction(signo, sa, NULL) < 0)
		return -errno;
	atomic_store(&ours, signo);
	/* Wrap the handlers installed before us (sigaction refuses the
	 * numbers it keeps for itself, and SIGKILL and SIGSTOP). */
	for (int sig = 1; sig < _NSIG; sig++) {
		struct sigaction cur;
		if (sig == signo || real.sigaction(sig, NULL, &cur) < 0 ||
		    cur.sa_sigaction == trampoline ||
		    !is_handler((void *)cur.sa_handler))
			continue;
		wrap_action(sig, &cur, NULL);
	}
	return 0;
}

/* A copy of set without our signal, or set itself when it lacks it. */
static const sigset_t *strip(const sigset_t *set, sigset_t *copy)
{
	int s = atomic_load_explicit(&ours, memory_order_relaxed);
	if (!set || !s || sigismember(set, s) != 1)
		return set;
	*copy = *set;
	sigdelset(copy, s);
	return copy;
}

/* Set while this thread runs our handler: libunwind, called from it,
 * masks every signal around its own locks through these very functions,
 * and must get what it asks for (unblocking ours there would let the
 * handler run again inside itself, on a lock its outer run holds). */
CF_TLS bool cf_in_handler;

CF_TLS bool cf_all_blocked;

/* Does set block every signal that can be blocked?  Not SIGKILL and
 * SIGSTOP, which the kernel never blocks, nor glibc's SIGCANCEL and
 * SIGSETXID, which its sigfillset and pthread_sigmask leave out.  The
 * kernel's set is the first 64 bits of glibc's, signal n at bit n - 1. */
static bool blocks_all(const sigset_t *set)
{
	const uint64_t never = 1ull << (SIGKILL - 1) | 1ull << (SIGSTOP - 1) |
			       1ull << (32 - 1) | 1ull << (33 - 1);
	uint64_t bits;
	memcpy(&bits, set, sizeof bits);
	return (bits | never) == ~0ull;
}

/* The shared part of pthread_sigmask and sigprocmask. */
static int mask(int (*fn)(int, const sigset_t *, sigset_t *), int how,
		const sigset_t *set, sigset_t *old)
{
	if (cf_all_blocked && set &&
	    (how == SIG_BLOCK || (how == SIG_SETMASK && blocks_all(set)))) {
		if (old)
			sigfillset(old);
		return 0;
	}
	if (cf_in_handler)
		return fn(how, set, old);
	int s = atomic_load_explicit(&ours, memory_order_relaxed);
	bool was = app_blocks, now = was;
	sigset_t copy;
	if (set && s) {
		bool member = sigismember(set, s) == 1;
		if (how != SIG_UNBLOCK && names_ours(set))
			shared("blocks", false);
		if (how == SIG_SETMASK)
			now = member;
		else if (how == SIG_BLOCK && member)
			now = true;
		else if (how == SIG_UNBLOCK && member)
			now = false;
		if (how != SIG_UNBLOCK)
			set = strip(set, &copy);
	}
	int r = fn(how, set, old);
	if (r == 0 && s) {
		if (old) {
			if (was)
				sigaddset(old, s);
			else
				sigdelset(old, s);
		}
		app_blocks = now;
	}
	return r;
}

#define EXPORT __attribute__((visibility("default")))

EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	resolve();
	return mask(real.pthread_sigmask, how, set, old);
}

/* glibc 2.32 moved pthread_sigmask into libc under a new version; programs
 * built before that reference the old one.  A .symver directive, not the
 * symver attribute, which clang ignores (and the version with it). */
int cf_pthread_sigmask_225(int how, const sigset_t *set, sigset_t *old);
__asm__(".symver cf_pthread_sigmask_225, pthread_sigmask@GLIBC_2.2.5");
EXPORT int cf_pthread_sigmask_225(int how, const sigset_t *set, sigset_t *old)
{
	return pthread_sigmask(how, set, old);
}

EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	resolve();
	return mask(real.sigprocmask, how, set, old);
}

EXPORT int sigaction(int sig, const struct sigaction *act,
		     struct sigaction *old)
{
	resolve();
	if (sig != atomic_load(&ours) || !sig)
		return wrap_action(sig, act, old);
	if (act && act->sa_handler != SIG_DFL)
		shared(act->sa_handler == SIG_IGN ? "ignores" : "handles",
		       false);
	cf_lock(&action_lock);
	if (old)
		*old = app_action;
	if (act) {
		app_action = *act;
		atomic_store(&app_flags, act->sa_flags);
		atomic_store(&app_fn, act->sa_flags & SA_SIGINFO
				 ? (void *)act->sa_sigaction
				 : (void *)act->sa_handler);
	}
	cf_unlock(&action_lock);
	return 0;
}

int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);
EXPORT int __sigaction(int sig, const struct sigaction *act,
		       struct sigaction *old)
{
	return sigaction(sig, act, old);
}

/* The one-call installers: handler with flags, and the signal itself
 * blocked in it unless SA_NODEFER; the previous handler, or SIG_ERR. */
static sighandler_t install(int sig, sighandler_t handler, int flags)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	if (!(flags & SA_NODEFER) && sig > 0 && sig < NSIG)
		sigaddset(&sa.sa_mask, sig);
	if (sigaction(sig, &sa, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

/* BSD semantics, as glibc's signal(): restart, block the signal itself. */
EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	return install(sig, handler, SA_RESTART);
}

sighandler_t bsd_signal(int sig, sighandler_t handler);
EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler)
{
	return signal(sig, handler);
}

sighandler_t ssignal(int sig, sighandler_t handler);
EXPORT sighandler_t ssignal(int sig, sighandler_t handler)
{
	return signal(sig, handler);
}

/* System V semantics, as glibc's sysv_signal(): reset to the default when
 * delivered, no restart, the signal itself not blocked in the handler. */
EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler)
{
	return install(sig, handler, SA_RESETHAND | SA_NODEFER);
}

sighandler_t __sysv_signal(int sig, sighandler_t handler);
EXPORT sighandler_t __sysv_signal(int sig, sighandler_t handler)
{
	return sysv_signal(sig, handler);
}

/* POSIX's sigset(): SIG_HOLD blocks the signal; anything else installs
 * the disposition and unblocks it.  Returns SIG_HOLD when the signal was
 * blocked, else the previous disposition. */
EXPORT sighandler_t sigset(int sig, sighandler_t disp)
{
	sigset_t one, old;
	struct sigaction prev;
	sigemptyset(&one);
	if (sigaddset(&one, sig) < 0)
		return SIG_ERR;
	if (disp == SIG_HOLD) {
		if (sigaction(sig, NULL, &prev) < 0 ||
		    sigprocmask(SIG_BLOCK, &one, &old) < 0)
			return SIG_ERR;
	} else {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = disp;
		sigemptyset(&sa.sa_mask);
		if (sigaction(sig, &sa, &prev) < 0 ||
		    sigprocmask(SIG_UNBLOCK, &one, &old) < 0)
			return SIG_ERR;
	}
	return sigismember(&old, sig) == 1 ? SIG_HOLD : prev.sa_handler;
}

/* A signal with our number that libcfork did not send goes to the
 * program's action, as if libcfork were not there: its handler runs with
 * the mask the kernel would have given it (the interrupted code's, its
 * sa_mask, the signal itself unless SA_NODEFER; ours let in, as
 * everywhere).  One that this thread blocks, or that the program waits
 * for, would have stayed pending: it is lost, and the program told. */
void cf_sigmask_chain(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	cf_lock(&action_lock);
	struct sigaction act = app_action;
	if (act.sa_flags & SA_RESETHAND) {
		memset(&app_action, 0, sizeof app_action);
		atomic_store(&app_fn, NULL);
		atomic_store(&app_flags, 0);
	}
	cf_unlock(&action_lock);
	void *fn = act.sa_flags & SA_SIGINFO ? (void *)act.sa_sigaction
					     : (void *)act.sa_handler;
	if (fn == (void *)SIG_IGN)
		return;
	if (app_blocks || atomic_load(&app_waits)) {
		shared("was sent", true);
		return;
	}
	if (fn == (void *)SIG_DFL || !fn) {
		/* The default action of a real-time signal ends the
		 * process: give it back and let it be delivered again. */
		struct sigaction dfl;
		memset(&dfl, 0, sizeof dfl);
		dfl.sa_handler = SIG_DFL;
		real.sigaction(sig, &dfl, NULL);
		cf_tgkill(cf_gettid(), sig);
		return;
	}
	uint64_t mask = cf_program_mask(uc), add;
	memcpy(&add, &act.sa_mask, sizeof add);
	mask |= add;
	if (!(act.sa_flags & SA_NODEFER))
		mask |= 1ull << (sig - 1);
	mask &= ~(1ull << (sig - 1));           /* ours: never blocked */
	cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, 8, 0,
			0);
	if (act.sa_flags & SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))fn)(sig, si, ctx);
	else
		((void (*)(int))fn)(sig);
}

/* glibc's cancellation signal, and the handler glibc installs for it at
 * the first pthread_cancel (with its internal sigaction, so never through
 * ours): it is replaced once, by the kernel's own call, keeping glibc's
 * flags, mask and restorer. */
#define SIGCANCEL_NO 32
struct kernel_sigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};
static void *glibc_cancel_handler;
static _Atomic int cancel_state;          /* 0, 1: wrapping, 2: wrapped */

/* A cancelled thread does not come back from glibc's handler: it leaves
 * its continued call awake, as the claims need. */
static void cancel_trampoline(int sig, siginfo_t *si, void *ctx)
{
	/* The unwinder cannot step through the stub: a return redirected in
	 * this thread is taken back before a cancellation may unwind it. */
	cf_hijack_drop();
	call_held(glibc_cancel_handler, sig, si, ctx);
}

/* Alive, and deaf to cancellation, until its cancellation is made. */
static void *cancel_me(void *arg)
{
	sem_t *sems = arg;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	sem_post(&sems[0]);
	while (sem_wait(&sems[1]) != 0)
		;
	return NULL;
}

/* glibc installs its handler only at a cancellation: make one on a
 * throwaway thread that ignores it, then put the trampoline in front. */
static void wrap_cancellation(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong(&cancel_state, &expect, 1)) {
		while (atomic_load(&cancel_state) == 1)
			cf_nanosleep_ns(10000);
		return;
	}
	/* The program's signals are kept from the throwaway thread (it
	 * inherits this mask), ours is not: both threads stay stoppable.
	 * The cancellation loads libgcc_s, which waits for the loader lock;
	 * a sibling parked inside dlopen may hold it until the quiesce backs
	 * off, which a thread deaf to our signal would keep waiting for the
	 * bound (torture seed 990013431). */
	sigset_t all, old;
	sigfillset(&all);
	int o = atomic_load(&ours);
	if (o)
		sigdelset(&all, o);
	real.pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_t th;
	sem_t sems[2];
	sem_init(&sems[0], 0, 0);
	sem_init(&sems[1], 0, 0);
	if (pthread_create(&th, NULL, cancel_me, sems) == 0) {
		while (sem_wait(&sems[0]) != 0)
			;
		real.pthread_cancel(th);
		sem_post(&sems[1]);
		pthread_join(th, NULL);
	}
	real.pthread_sigmask(SIG_SETMASK, &old, NULL);
	struct kernel_sigaction k;
	bool wrapped = false;
	if (cf_raw_syscall6(SYS_rt_sigaction, SIGCANCEL_NO, 0, (long)&k, 8, 0,
			    0) == 0 &&
	    k.handler != (void *)SIG_DFL && k.handler != (void *)SIG_IGN) {
		if (k.handler != (void *)cancel_trampoline) {
			glibc_cancel_handler = k.handler;
			k.handler = (void *)cancel_trampoline;
			cf_raw_syscall6(SYS_rt_sigaction, SIGCANCEL_NO,
					(long)&k, 0, 8, 0, 0);
		}
		wrapped = true;
	}
	/* No thread could be made (a limit): this cancellation goes out
	 * unwrapped, and the next one tries again. */
	atomic_store(&cancel_state, wrapped ? 2 : 0);
}

EXPORT int pthread_cancel(pthread_t th)
{
	resolve();
	if (atomic_load_explicit(&cancel_state, memory_order_acquire) != 2)
		wrap_cancellation();
	cf_cancel_noted((uintptr_t)th);
	return real.pthread_cancel(th);
}

/* glibc 2.34 moved pthread_cancel into libc under a new version. */
int cf_pthread_cancel_225(pthread_t th);
__asm__(".symver cf_pthread_cancel_225, pthread_cancel@GLIBC_2.2.5");
EXPORT int cf_pthread_cancel_225(pthread_t th)
{
	return pthread_cancel(th);
}

EXPORT int sigsuspend(const sigset_t *set)
{
	sigset_t copy;
	resolve();
	return real.sigsuspend(strip(set, &copy));
}

int __sigsuspend(const sigset_t *set);
EXPORT int __sigsuspend(const sigset_t *set)
{
	return sigsuspend(set);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t,
		 const sigset_t *set)
{
	sigset_t copy;
	resolve();
	return real.ppoll(fds, n, t, strip(set, &copy));
}

EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e,
		   const struct timespec *t, const sigset_t *set)
{
	sigset_t copy;
	resolve();
	return real.pselect(n, r, w, e, t, strip(set, &copy));
}

EXPORT int epoll_pwait(int fd, struct epoll_event *ev, int max, int timeout,
		       const sigset_t *set)
{
	sigset_t copy;
	resolve();
	return real.epoll_pwait(fd, ev, max, timeout, strip(set, &copy));
}

EXPORT int epoll_pwait2(int fd, struct epoll_event *ev, int max,
			const struct timespec *timeout, const sigset_t *set)
{
	sigset_t copy;
	resolve();
	if (!real.epoll_pwait2) {
		errno = ENOSYS;
		return -1;
	}
	return real.epoll_pwait2(fd, ev, max, timeout, strip(set, &copy));
}

EXPORT int pthread_attr_setsigmask_np(pthread_attr_t *attr,
				      const sigset_t *set)
{
	sigset_t copy;
	resolve();
	return real.attr_setsigmask(attr, strip(set, &copy));
}

/* A set the program waits on: without ours, and noted if it names it. */
static const sigset_t *wait_set(const sigset_t *set, sigset_t *copy)
{
	if (names_ours(set)) {
		atomic_store(&app_waits, true);
		shared("waits for", false);
	}
	return strip(set, copy);
}

EXPORT int sigwait(const sigset_t *set, int *sig)
{
	sigset_t copy;
	resolve();
	return real.sigwait(wait_set(set, &copy), sig);
}

EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	sigset_t copy;
	resolve();
	return real.sigwaitinfo(wait_set(set, &copy), info);
}

EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info,
			const struct timespec *timeout)
{
	sigset_t copy;
	resolve();
	return real.sigtimedwait(wait_set(set, &copy), info, timeout);
}

/* A signalfd reads signals pending for its reader, ours included: a
 * thread asleep in its read would take our requests instead of our
 * handler. */
EXPORT int signalfd(int fd, const sigset_t *set, int flags)
{
	sigset_t copy;
	resolve();
	return real.signalfd(fd, wait_set(set, &copy), flags);
}

/* System V's one-signal calls, which glibc makes with its own
 * sigprocmask and sigaction. */
static int one_signal(int sig, sigset_t *set)
{
	sigemptyset(set);
	return sigaddset(set, sig);
}

EXPORT int sighold(int sig)
{
	sigset_t set;
	if (one_signal(sig, &set) < 0)
		return -1;
	return sigprocmask(SIG_BLOCK, &set, NULL);
}

EXPORT int sigrelse(int sig)
{
	sigset_t set;
	if (one_signal(sig, &set) < 0)
		return -1;
	return sigprocmask(SIG_UNBLOCK, &set, NULL);
}

EXPORT int sigignore(int sig)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	return sigaction(sig, &sa, NULL);
}

EXPORT int siginterrupt(int sig, int interrupt)
{
	struct sigaction sa;
	if (sigaction(sig, NULL, &sa) < 0)
		return -1;
	if (interrupt)
		sa.sa_flags &= ~SA_RESTART;
	else
		sa.sa_flags |= SA_RESTART;
	return sigaction(sig, &sa, NULL);
}

/* glibc's setcontext and swapcontext set the context's mask with the
 * system call: they get a copy without ours.  (The copy's FPU state
 * pointer still points into the program's context, which is where glibc
 * reads it from.) */
static const ucontext_t *context_without_ours(const ucontext_t *uc,
					      ucontext_t *copy)
{
	int s = atomic_load_explicit(&ours, memory_order_relaxed);
	if (!uc || !s)
		return uc;
	bool member = sigismember(&uc->uc_sigmask, s) == 1;
	if (names_ours(&uc->uc_sigmask))
		shared("blocks, in a context's mask,", false);
	app_blocks = member;
	if (!member)
		return uc;
	*copy = *uc;
	sigdelset(&copy->uc_sigmask, s);
	return copy;
}

EXPORT int setcontext(const ucontext_t *uc)
{
	ucontext_t copy;
	resolve();
	return real.setcontext(context_without_ours(uc, &copy));
}

EXPORT int swapcontext(ucontext_t *save, const ucontext_t *uc)
{
	ucontext_t copy;
	resolve();
	/* Not a tail call: the copy must outlive the switch.  Resumed, the
	 * thread returns through this frame, on its own stack. */
	int r = real.swapcontext(save, context_without_ours(uc, &copy));
	__asm__ volatile("" ::: "memory");
	return r;
}
