/* SPDX-License-Identifier: MIT */
/*
 * cfork(): fork(2) plus a coherent child.
 *
 * Order, and why:
 *   1. The atfork prepare handlers registered with us (atfork.c), newest
 *      first: they take their libraries' locks while every thread still
 *      runs, so no handler waits for a parked thread.
 *   2. The quiesce (quiesce.c): every sibling that can run user code is
 *      stopped at a safe point, where it holds none of libc's locks.
 *   3. libc's fork(): glibc takes its own locks (malloc, stdio, NSS), which
 *      no parked thread holds, and the kernel copies memory while no
 *      sibling writes.
 *   4. Parent: siblings resumed, then parent handlers in registration
 *      order.  Child: our state reset (it has one thread), child handlers.
 * If the quiesce reaches CFORK_TIMEOUT_MS, cfork forks anyway with the
 * stragglers running (CFORK_ON_TIMEOUT=fork, the default) or undoes steps
 * 2 and 1 and fails with EAGAIN (CFORK_ON_TIMEOUT=fail).
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cfork.h"
#include "internal.h"

static pid_t (*libc_fork)(void);
static int init_error;
static _Atomic int initialised;

/* Once, before main where possible: installing the handler and reading
 * the objects' tables is cheapest before threads exist. */
__attribute__((constructor(102))) static void cf_init(void)
{
	/* A load first: after a fork this page is write-protected, and a
	 * store at every cfork would cost the parent a fault. */
	if (atomic_load_explicit(&initialised, memory_order_acquire) ||
	    atomic_exchange(&initialised, 1))
		return;
	/* libc's own fork, never a wrapper of it (the preload shim's). */
	libc_fork = (pid_t (*)(void))cf_libc_sym("fork");
	int e = cf_atfork_init();
	if (!e)
		e = cf_quiesce_init();
	if (!libc_fork && !e)
		e = -ENOSYS;
	init_error = e;
	if (e && cf_config()->debug)
		cf_log("cannot set up the quiesce (errno %d): cfork will fork "
		       "directly", -e);
	cf_late_warn();
}

/* The quiesce has filled its part of r; this adds the fork's. */
static void report(struct cfork_report *r, int method, pid_t pid, int error,
		   uint64_t fork_ns)
{
	r->method = method;
	r->pid = pid;
	r->error = pid < 0 ? error : 0;
	r->fork_ns = fork_ns;
	r->signal_shared = cf_sigmask_shared();
	cf_report_finish(r);
}

/* why: the reason a direct fork is not coherent, or NULL when it is. */
static pid_t direct(const char *why)
{
	cf_report_begin();        /* no straggler of an earlier quiesce */
	uint64_t t0 = cf_now_ns();
	pid_t pid = libc_fork ? libc_fork() : fork();
	if (pid != 0) {
		int e = errno;
		struct cfork_report r = { .coherent = !why, .not_coherent = why };
		report(&r, CFORK_METHOD_DIRECT, pid, e, cf_now_ns() - t0);
		if (errno != e)   /* errno's page: a store would fault */
			errno = e;
	}
	return pid;
}

/* The one choice of cfork() and cfork_getconfig(): why a fork in this
 * mode is direct (a static phrase), or NULL when it quiesces; *coherent
 * tells whether a direct child is coherent all the same. */
static const char *why_direct(int mode, bool by_program, bool *coherent)
{
	*coherent = false;
	if (mode == CFORK_MODE_DIRECT)
		return by_program ? "cfork_setmode(CFORK_MODE_DIRECT)"
				  : "CFORK_MODE=direct";
	const char *why;
	if (mode == CFORK_MODE_AUTO && (why = cf_probe_direct_ok())) {
		*coherent = true;
		return why;
	}
	if (init_error)
		return "the quiesce could not be set up";
	return NULL;
}

__attribute__((visibility("default")))
pid_t cfork(void)
{
	cf_init();
	const struct cf_config *cfg = cf_config();
	if (cf_atfork_owner()) {
		/* Called from an atfork handler of a fork in progress. */
		errno = EDEADLK;
		return -1;
	}
	bool by_program, coherent_kernel;
	int mode = cf_mode(&by_program);
	const char *why = why_direct(mode, by_program, &coherent_kernel);
	if (why)
		return direct(coherent_kernel ? NULL : why);

	size_t n = cf_atfork_prepare();
	struct cfork_report st = { 0 };
	bool coherent = cf_quiesce(&st);
	if (!coherent && cfg->on_timeout == CFORK_ON_TIMEOUT_FAIL) {
		cf_resume();
		cf_atfork_parent(n);
		report(&st, CFORK_METHOD_QUIESCE, -1, EAGAIN, 0);
		errno = EAGAIN;
		return -1;
	}

	uint64_t t0 = cf_now_ns();
	cf_in_cfork = true;
	pid_t pid = libc_fork();
	int saved_errno = errno;
	cf_in_cfork = false;
	if (pid == 0) {
		cf_quiesce_child_reset();
		cf_atfork_child(n);
		return 0;
	}
	uint64_t fork_ns = cf_now_ns() - t0;
	cf_resume();
	cf_atfork_parent(n);
	report(&st, CFORK_METHOD_QUIESCE, pid, saved_errno, fork_ns);
	errno = saved_errno;
	return pid;
}

__attribute__((visibility("default")))
int cfork_getconfig(struct cfork_config *config, size_t size)
{
	if (!config) {
		errno = EINVAL;
		return -1;
	}
	cf_init();
	const struct cf_config *cfg = cf_config();
	bool by_program, coherent;
	struct cfork_config c = {
		.mode = cf_mode(&by_program),
		.signo = cfg->signo,
		.timeout_ms = cfg->timeout_ms,
		.on_timeout = cfg->on_timeout,
		.late = cf_loaded_late(),
	};
	c.why_direct = why_direct(c.mode, by_program, &coherent);
	c.effective = c.why_direct ? CFORK_MODE_DIRECT : CFORK_MODE_QUIESCE;
	memcpy(config, &c, size < sizeof c ? size : sizeof c);
	if (size > sizeof c)
		memset((char *)config + sizeof c, 0, size - sizeof c);
	return 0;
}
