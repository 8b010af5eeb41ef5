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
 *   sigaction, signal, bsd_signal  for our number, the program's action is
 *                                  recorded and returned, not installed;
 *                                  the handler passes on signals that are
 *                                  not ours to it
 *   sigsuspend, ppoll, pselect,    ours is taken out of the temporary mask
 *   epoll_pwait, epoll_pwait2,
 *   pthread_attr_setsigmask_np
 *   sigwait, sigwaitinfo,          ours is taken out of the set waited for
 *   sigtimedwait
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
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>

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

int cf_sigmask_install(int signo, const struct sigaction *sa)
{
	resolve();
	if (!real.sigaction)
		return -ENOSYS;
	if (real.sigaction(signo, sa, NULL) < 0)
		return -errno;
	atomic_store(&ours, signo);
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
 * built before that reference the old one. */
int cf_pthread_sigmask_225(int how, const sigset_t *set, sigset_t *old);
EXPORT __attribute__((symver("pthread_sigmask@GLIBC_2.2.5")))
int cf_pthread_sigmask_225(int how, const sigset_t *set, sigset_t *old)
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
		return real.sigaction(sig, act, old);
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

/* BSD semantics, as glibc's signal(): restart, block the signal itself. */
EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sig > 0 && sig < NSIG)
		sigaddset(&sa.sa_mask, sig);
	if (sigaction(sig, &sa, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

sighandler_t bsd_signal(int sig, sighandler_t handler);
EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler)
{
	return signal(sig, handler);
}

/* A signal with our number that libcfork did not send goes to the
 * program's action, as if libcfork were not there.  (It runs with the
 * handler's mask rather than the program's sa_mask.) */
void cf_sigmask_chain(int sig, siginfo_t *si, void *ctx)
{
	void *fn = atomic_load(&app_fn);
	int flags = atomic_load(&app_flags);
	if (fn == (void *)SIG_IGN)
		return;
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
	if (flags & SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))fn)(sig, si, ctx);
	else
		((void (*)(int))fn)(sig);
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

EXPORT int sigwait(const sigset_t *set, int *sig)
{
	sigset_t copy;
	resolve();
	return real.sigwait(strip(set, &copy), sig);
}

EXPORT int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	sigset_t copy;
	resolve();
	return real.sigwaitinfo(strip(set, &copy), info);
}

EXPORT int sigtimedwait(const sigset_t *set, siginfo_t *info,
			const struct timespec *timeout)
{
	sigset_t copy;
	resolve();
	return real.sigtimedwait(strip(set, &copy), info, timeout);
}
