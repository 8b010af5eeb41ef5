/* SPDX-License-Identifier: MIT */
/*
 * The report of the last cfork: what the API returns and what CFORK_DEBUG
 * prints.  The driver writes it while it holds the fork lock; readers copy
 * it under a lock of its own, so a report is never seen half-written.
 *
 * What readers see lives in memory the child gets zeroed
 * (MADV_WIPEONFORK): the parent writes it just after the fork, and a page
 * the fork shared with the child would cost it a fault and a copy there.
 * A child therefore starts with no report, and with that lock free.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfork.h"
#include "internal.h"

#define MAX_STRAGGLERS 64

struct published {
	_Atomic uint32_t lock;
	struct cfork_report last;
	size_t nstragglers;          /* in all, may exceed the array */
	struct cfork_straggler stragglers[MAX_STRAGGLERS];
};
static _Atomic(struct published *) published;
static struct published fallback;    /* if it cannot be mapped */

static struct published *pub(void)
{
	struct published *p = atomic_load_explicit(&published,
						   memory_order_acquire);
	if (p)
		return p;
	struct published *m = cf_map_wiped(sizeof *m);
	if (!m)
		m = &fallback;
	if (!atomic_compare_exchange_strong_explicit(&published, &p, m,
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		if (m != &fallback)
			cf_unmap(m, sizeof *m);
		return p;
	}
	return m;
}

/* The driver's copy, filled during a quiesce and published at the end. */
static struct cfork_straggler pending[MAX_STRAGGLERS];
static size_t npending;

void cf_report_begin(void)
{
	if (npending)            /* no store, so no fault, when already 0 */
		npending = 0;
}

static const char *why(const struct cf_thread *t, unsigned verdict)
{
	if (verdict == CF_V_HIJACKED)
		return "inside libc, has not yet returned to the program";
	if (verdict == CF_V_RETRY)
		return "took the signal only where it may not stop";
	if (atomic_load(&t->taken) < t->sent)
		return "has not taken the signal (blocked, or never scheduled)";
	return "has not been signalled again yet";
}

/* SigBlk in /proc/self/task/TID/status is a hexadecimal mask. */
static bool blocks_our_signal(pid_t tid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
	if (cf_read_file(path, buf, sizeof buf) <= 0)
		return false;
	const char *p = strstr(buf, "\nSigBlk:");
	if (!p)
		return false;
	unsigned long long mask = strtoull(p + 8, NULL, 16);
	return (mask >> (cf_config()->signo - 1)) & 1;
}

/* Reads what /proc says of a thread that did not stop (tid, name, state,
 * system call, wait channel) and what its handler last saw (the stack). */
void cf_report_straggler(const struct cf_thread *t, unsigned verdict)
{
	size_t i = npending++;
	if (i >= MAX_STRAGGLERS)
		return;
	struct cfork_straggler *s = &pending[i];
	char path[64], buf[128];
	struct cf_task_info ti = { .state = '?' };
	memset(s, 0, sizeof *s);
	s->tid = atomic_load_explicit(&t->tid, memory_order_relaxed);
	cf_task_info(s->tid, &ti);
	s->state = ti.state;
	memcpy(s->name, ti.name, sizeof s->name);
	s->syscall = -1;
	/* "NR args... sp pc" in a system call, "-1 sp pc" out of one,
	 * "running" while on a CPU: the last word is where it is. */
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)s->tid);
	if (cf_read_file(path, buf, sizeof buf) > 0 &&
	    ((buf[0] >= '0' && buf[0] <= '9') || buf[0] == '-')) {
		s->syscall = strtol(buf, NULL, 10);
		const char *pc = strrchr(buf, ' ');
		if (pc)
			s->pc = (uintptr_t)strtoull(pc + 1, NULL, 16);
	}
	snprintf(path, sizeof path, "/proc/self/task/%d/wchan", (int)s->tid);
	if (cf_read_file(path, buf, sizeof buf) > 0 && strcmp(buf, "0")) {
		size_t l = strcspn(buf, "\n");
		if (l >= sizeof s->wchan)
			l = sizeof s->wchan - 1;
		memcpy(s->wchan, buf, l);
	}
	s->why = blocks_our_signal(s->tid) ? "blocks the cfork signal"
					   : why(t, verdict);
	s->depth = t->depth < CFORK_STACK_MAX ? t->depth : CFORK_STACK_MAX;
	memcpy(s->stack, t->stack, s->depth * sizeof s->stack[0]);
}

static void log_report(const struct cfork_report *r, size_t n)
{
	if (r->method == CFORK_METHOD_DIRECT) {
		cf_log("cfork: pid %d, method direct (%s)", (int)r->pid,
		       r->not_coherent ? r->not_coherent : "coherent kernel");
		return;
	}
	/* The reason goes on the same line: one line per cfork, for a
	 * reader who greps for "cfork: pid". */
	const char *why = r->not_coherent ? r->not_coherent : "";
	cf_log("cfork: pid %d, method quiesce, %s%s%s%s: parked %u (%u by "
	       "return redirect), skipped %u (%u kernel workers, %u timer "
	       "helpers), gone %u, not stopped %u, rounds %u, back-offs %u, "
	       "signals %u, quiesce %lu us, fork %lu us",
	       (int)r->pid, r->coherent ? "coherent" : "NOT coherent",
	       *why ? " (" : "", why, *why ? ")" : "",
	       r->parked, r->redirected, r->skipped,
	       r->skipped - r->timer_helpers, r->timer_helpers, r->gone,
	       r->not_stopped, r->rounds, r->backoffs, r->signals,
	       (unsigned long)(r->quiesce_ns / 1000),
	       (unsigned long)(r->fork_ns / 1000));
	for (size_t i = 0; i < n && i < MAX_STRAGGLERS; i++) {
		const struct cfork_straggler *s = &pending[i];
		char st[CFORK_STACK_MAX * 19 + 1] = "";
		size_t len = 0;
		for (unsigned k = 0; k < s->depth; k++)
			len += (size_t)snprintf(st + len, sizeof st - len,
						" %#lx",
						(unsigned long)s->stack[k]);
		cf_log("not stopped: tid %d \"%s\" state %c, syscall %ld, "
		       "wchan %s, pc %#lx: %s; stack:%s", (int)s->tid, s->name,
		       s->state, s->syscall, s->wchan[0] ? s->wchan : "-",
		       (unsigned long)s->pc, s->why,
		       s->depth ? st : " (never walked)");
	}
}

void cf_report_finish(const struct cfork_report *r)
{
	size_t n = npending;
	struct published *p = pub();
	cf_lock(&p->lock);
	p->last = *r;
	p->nstragglers = n;
	memcpy(p->stragglers, pending,
	       (n < MAX_STRAGGLERS ? n : MAX_STRAGGLERS) * sizeof pending[0]);
	cf_unlock(&p->lock);
	if (cf_config()->debug)
		log_report(r, n);
}

__attribute__((visibility("default")))
int cfork_last_report(struct cfork_report *report, size_t size)
{
	if (!report) {
		errno = EINVAL;
		return -1;
	}
	struct published *p = pub();
	size_t have = sizeof p->last;
	cf_lock(&p->lock);
	memcpy(report, &p->last, size < have ? size : have);
	cf_unlock(&p->lock);
	if (size > have)
		memset((char *)report + have, 0, size - have);
	return 0;
}

__attribute__((visibility("default")))
size_t cfork_last_stragglers(struct cfork_straggler *s, size_t n,
			     size_t size)
{
	struct published *p = pub();
	cf_lock(&p->lock);
	size_t total = p->nstragglers;
	size_t copy = total < MAX_STRAGGLERS ? total : MAX_STRAGGLERS;
	if (copy > n)
		copy = n;
	size_t each = size < sizeof *s ? size : sizeof *s;
	for (size_t i = 0; s && i < copy; i++) {
		memcpy((char *)s + i * size, &p->stragglers[i], each);
		if (size > each)
			memset((char *)s + i * size + each, 0, size - each);
	}
	cf_unlock(&p->lock);
	return total;
}
