/* SPDX-License-Identifier: MIT */
/*
 * cfork_probe(): does this kernel tear maybe-pinned pages on fork?
 *
 * The sign (facts in NOTES and vm/README): a kernel with the proposed fix
 * write-protects the parent's copy of a maybe-pinned page before copying
 * it, so the parent's first write after the fork takes a minor fault, as
 * it does on any unpinned page; an unfixed kernel leaves the page writable
 * and the write takes none.  probe-helper.c counts those faults in a small
 * process of its own (the forks then cost the same in a process of 1 GiB
 * as in one of 1 MiB), several times, with an unpinned control page each
 * time; here the counts become a verdict.
 *
 * The thorough test (tearing.c) forks against a writer thread and counts
 * torn children: proof when it sees one, evidence when it does not.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cfork.h"
#include "internal.h"
#include "probe-raw.h"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x1u
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x10u
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

/* The helper program, linked in by probe-blob.S. */
extern const char cf_probe_helper_elf[], cf_probe_helper_end[];

/* A helper that has not answered in this long is killed: it makes a few
 * forks of a tiny process, which take well under a millisecond. */
#define HELPER_TIMEOUT_MS 5000

#define SPAWN_STACK (64 * 1024)

struct spawn {
	int exe, out;            /* the helper's memfd, the pipe's write end */
	int error;               /* written by the helper's process when its
				  * exec fails */
	int pidfd;               /* the helper's, or -1 */
	pid_t helper;
	char *stack;             /* two stacks of SPAWN_STACK */
};

/* Code that runs on the spawn stacks is not instrumented by
 * AddressSanitizer: the redzones it would mark there outlive the stack
 * (unmapped behind its back) and poison whatever is mapped there next. */
#define ON_SPAWN_STACK __attribute__((no_sanitize("address")))

/* The helper's process, before its exec: only raw system calls (it shares
 * our memory and runs on a stack of its own). */
ON_SPAWN_STACK static int spawn_helper(void *arg)
{
	struct spawn *s = arg;
	char *argv[] = { (char *)"cfork-probe-helper", NULL };
	char *envp[] = { NULL };
	long r = cf_raw_syscall6(SYS_dup2, s->out, 1, 0, 0, 0, 0);
	if (r >= 0)
		r = cf_raw_syscall6(SYS_execveat, s->exe, (long)"", (long)argv,
				    (long)envp, AT_EMPTY_PATH, 0);
	s->error = (int)-r;
	cf_raw_syscall6(SYS_exit, 127, 0, 0, 0, 0, 0);
	return 127;
}

/* The middle process: starts the helper and leaves at once, so that the
 * helper is not our child.  An exec resets a process's exit signal to
 * SIGCHLD, so a helper of ours would reach the program's SIGCHLD handler
 * and its waitpid(-1); an orphan is reaped by init instead.  It shares our
 * file table, where the helper's pidfd lands (CLONE_PIDFD, Linux 5.2). */
ON_SPAWN_STACK static int spawn_middle(void *arg)
{
	struct spawn *s = arg;
	int flags = CLONE_VM | CLONE_VFORK;
	pid_t pid = clone(spawn_helper, s->stack + 2 * SPAWN_STACK,
			  flags | CLONE_PIDFD, s, &s->pidfd);
	if (pid < 0) {
		s->pidfd = -1;
		pid = clone(spawn_helper, s->stack + 2 * SPAWN_STACK, flags, s);
	}
	s->helper = pid;
	if (pid < 0)
		s->error = ECHILD;
	cf_raw_syscall6(SYS_exit, 0, 0, 0, 0, 0, 0);
	return 0;
}

static int helper_memfd(void)
{
	/* MFD_EXEC says we mean to execute it (kernels from 6.3 warn
	 * otherwise); older kernels reject the flag. */
	long fd = cf_raw_syscall6(SYS_memfd_create, (long)"cfork-probe",
				  MFD_CLOEXEC | MFD_EXEC, 0, 0, 0, 0);
	if (fd == -EINVAL)
		fd = cf_raw_syscall6(SYS_memfd_create, (long)"cfork-probe",
				     MFD_CLOEXEC, 0, 0, 0, 0);
	if (fd < 0)
		return (int)fd;
	const char *p = cf_probe_helper_elf;
	while (p < cf_probe_helper_end) {
		ssize_t w = write((int)fd, p, (size_t)(cf_probe_helper_end - p));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = w < 0 ? errno : EIO;
			close((int)fd);
			return -e;
		}
		p += w;
	}
	return (int)fd;
}

/* Reads the helper's answer, bounded by HELPER_TIMEOUT_MS. */
static int read_answer(int fd, struct cf_probe_raw *raw)
{
	size_t got = 0;
	uint64_t deadline = cf_now_ns() + HELPER_TIMEOUT_MS * 1000000ull;
	while (got < sizeof *raw) {
		uint64_t now = cf_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int n = poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			continue;
		ssize_t r = read(fd, (char *)raw + got, sizeof *raw - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EPIPE;
		got += (size_t)r;
	}
	return raw->magic == CF_PROBE_MAGIC ? 0 : -EPROTO;
}

/*
 * Runs the helper and reads its counts.  It is started like posix_spawn
 * starts a program (vfork semantics, every signal blocked until the
 * exec), through a middle process that has no exit signal: the program
 * sees no child come and go.
 */
static int run_helper(struct cf_probe_raw *raw, const char **why)
{
	int exe = helper_memfd();
	if (exe < 0) {
		*why = "cannot create the probe's helper (memfd_create)";
		return exe;
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		int e = errno;
		close(exe);
		*why = "cannot create a pipe for the probe's helper";
		return -e;
	}
	struct spawn s = { .exe = exe, .out = pfd[1], .pidfd = -1,
			   .helper = -1, .stack = cf_map(2 * SPAWN_STACK) };
	int ret = -ENOMEM;
	*why = "cannot start the probe's helper";
	if (s.stack) {
		sigset_t all, old;
		sigfillset(&all);
		cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&all,
				(long)&old, sizeof(long), 0, 0);
		int e = errno;
		pid_t mid = clone(spawn_middle, s.stack + SPAWN_STACK,
				  CLONE_VM | CLONE_VFORK | CLONE_FILES, &s);
		if (mid < 0)
			ret = -errno;
		errno = e;
		cf_raw_syscall6(SYS_rt_sigprocmask, SIG_SETMASK, (long)&old,
				0, sizeof(long), 0, 0);
		if (mid > 0)
			while (waitpid(mid, NULL, __WALL) < 0 && errno == EINTR)
				;
		cf_unmap(s.stack, 2 * SPAWN_STACK);
	}
	close(pfd[1]);
	if (s.helper > 0 && s.error) {
		ret = -s.error;
		*why = "cannot execute the probe's helper (memfd exec refused)";
	} else if (s.helper > 0) {
		ret = read_answer(pfd[0], raw);
		*why = ret == -ETIMEDOUT ? "the probe's helper did not answer"
					 : "the probe's helper failed";
		/* Its pidfd (when the kernel gave one) cannot name a
		 * process that reused the pid. */
		if (ret && s.pidfd >= 0)
			syscall(SYS_pidfd_send_signal, s.pidfd, SIGKILL, NULL, 0);
		else if (ret)
			kill(s.helper, SIGKILL);
	}
	if (s.pidfd >= 0)
		close(s.pidfd);
	close(pfd[0]);
	close(exe);
	return ret;
}

/* ---- The verdict from the counts ---- */

static unsigned count_faulted(const uint32_t *f, unsigned n)
{
	unsigned c = 0;
	for (unsigned i = 0; i < n; i++)
		c += f[i] > 0;
	return c;
}

static void ring_reason(int e, struct cfork_probe_path *p)
{
	p->verdict = CFORK_CANNOT_TELL;
	if (e == ENOSYS)
		p->reason = "io_uring is not available (kernel without it, "
			    "or seccomp)";
	else if (e == EPERM || e == EACCES)
		p->reason = "io_uring is not permitted "
			    "(kernel.io_uring_disabled, or seccomp)";
	else if (e == ENOMEM)
		p->reason = "cannot create an io_uring ring "
			    "(RLIMIT_MEMLOCK too low)";
	else
		p->reason = "io_uring_setup failed";
}

/*
 * A stray fault on the pinned page (seen once in several runs on a
 * kernel that tears) must not pass for the fix: the helper makes five
 * trials unless the first two agree, and one fault in five still reads as
 * tearing.  A control page that does not fault means the sign itself does
 * not work here.
 */
static void judge_path(const struct cf_probe_raw *raw, int kind,
		       struct cfork_probe_path *p)
{
	const struct cf_probe_path_raw *r = &raw->path[kind];
	p->trials = r->trials;
	p->pinned_faults = count_faulted(r->pinned, r->trials);
	p->control_faults = count_faulted(raw->control, r->trials);
	p->verdict = CFORK_CANNOT_TELL;
	if (r->stage == CF_PROBE_STAGE_RING) {
		ring_reason(r->error, p);
		return;
	}
	if (r->stage == CF_PROBE_STAGE_MAP) {
		if (kind == CF_PROBE_HUGETLB)
			p->reason = "no free hugetlb pages (vm.nr_hugepages)";
		else
			p->reason = "cannot map memory to probe";
		return;
	}
	if (kind != CF_PROBE_SMALL && r->touch_faults != 1) {
		p->reason = kind == CF_PROBE_THP
			? "no transparent huge page could be had to probe"
			: "the hugetlb page did not fault as one page";
		return;
	}
	if (r->stage == CF_PROBE_STAGE_PIN) {
		p->reason = r->error == ENOMEM
			? "cannot pin a page (RLIMIT_MEMLOCK too low)"
			: "io_uring cannot pin this memory";
		return;
	}
	if (r->stage == CF_PROBE_STAGE_FORK && kind == CF_PROBE_HUGETLB &&
	    r->error == ENOMEM) {
		p->reason = "too few free hugetlb pages (a fork needs a second "
			    "one for the child's copy)";
		return;
	}
	if (r->stage == CF_PROBE_STAGE_FORK || r->trials < 2) {
		p->reason = "the probe could not fork";
		return;
	}
	if (p->control_faults < r->trials) {
		p->reason = "an unpinned page did not fault after fork: "
			    "the sign does not work on this kernel";
		return;
	}
	if (p->pinned_faults == r->trials) {
		p->verdict = CFORK_COHERENT;
		p->reason = "fork write-protects the parent's pinned page "
			    "before copying it";
	} else if (p->pinned_faults * 5 <= r->trials) {
		p->verdict = CFORK_TEARS;
		p->reason = "fork copies a pinned page while the parent can "
			    "still write it";
	} else {
		p->reason = "the pinned page faulted in some forks only";
	}
}

/* ---- Which paths the system offers ---- */

static bool thp_enabled(void)
{
	char buf[128];
	if (cf_read_file("/sys/kernel/mm/transparent_hugepage/enabled", buf,
			 sizeof buf) <= 0)
		return true;         /* cannot tell: count it */
	return !strstr(buf, "[never]");
}

/* "HugePages_Total:      16" in /proc/meminfo, or -1. */
static long meminfo_value(const char *key)
{
	char buf[4096];
	if (cf_read_file("/proc/meminfo", buf, sizeof buf) <= 0)
		return -1;
	const char *p = strstr(buf, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* Hugetlb pages can be had when some are reserved, or when the kernel may
 * make surplus ones (vm.nr_overcommit_hugepages).  Without /proc, assume
 * they may be in use. */
static bool hugetlb_offered(void)
{
	char buf[32];
	if (meminfo_value("\nHugePages_Total:") != 0)
		return true;
	return cf_read_file("/proc/sys/vm/nr_overcommit_hugepages", buf,
			    sizeof buf) > 0 && strtol(buf, NULL, 10) != 0;
}

static void fill_in_use(struct cfork_probe_result *r)
{
	r->path[CFORK_PATH_SMALL].in_use = 1;
	r->path[CFORK_PATH_THP].in_use = thp_enabled();
	r->path[CFORK_PATH_HUGETLB].in_use = hugetlb_offered();
}

static int overall(const struct cfork_probe_result *r)
{
	int v = CFORK_COHERENT;
	for (int k = 0; k < CFORK_PATHS; k++) {
		if (!r->path[k].in_use)
			continue;
		if (r->path[k].verdict == CFORK_TEARS)
			return CFORK_TEARS;
		if (r->path[k].verdict != CFORK_COHERENT)
			v = CFORK_CANNOT_TELL;
	}
	return v;
}

static void probe_fast(struct cfork_probe_result *r)
{
	struct cf_probe_raw raw;
	memset(&raw, 0, sizeof raw);
	const char *why;
	int e = run_helper(&raw, &why);
	for (int k = 0; k < CFORK_PATHS; k++) {
		struct cfork_probe_path *p = &r->path[k];
		if (e) {
			p->verdict = CFORK_CANNOT_TELL;
			p->reason = why;
		} else {
			judge_path(&raw, k, p);
		}
	}
}

/* ---- The cache and the API ---- */

/* The cached fast answer.  No lock: a fork may happen while a thread
 * computes it, and its child must not wait for a thread that does not
 * exist there.  The process that claimed the computation is recorded by
 * pid; another thread meanwhile computes a copy of its own, and a child
 * finds its parent's claim stale and claims it again. */
static struct cfork_probe_result cache;
static _Atomic bool cached;
static _Atomic pid_t computing;

static void compute(struct cfork_probe_result *r, unsigned flags)
{
	uint64_t t0 = cf_now_ns();
	memset(r, 0, sizeof *r);
	probe_fast(r);
	if (flags & CFORK_PROBE_THOROUGH) {
		r->thorough = 1;
		for (int k = 0; k < CFORK_PATHS; k++)
			cf_tearing_test(k, &r->path[k]);
	}
	fill_in_use(r);
	r->verdict = overall(r);
	r->ns = cf_now_ns() - t0;
}

/* Fills *r with the fast answer, computing it when asked or not yet
 * cached; returns whether it came from the cache. */
static bool fast_answer(struct cfork_probe_result *r, bool fresh)
{
	if (!fresh && atomic_load_explicit(&cached, memory_order_acquire)) {
		*r = cache;
		return true;
	}
	compute(r, 0);
	pid_t me = getpid(), owner = 0;
	if (!atomic_compare_exchange_strong(&computing, &owner, me) &&
	    (owner == me ||
	     !atomic_compare_exchange_strong(&computing, &owner, me)))
		return false;        /* another thread publishes */
	cache = *r;
	atomic_store_explicit(&cached, true, memory_order_release);
	atomic_store_explicit(&computing, 0, memory_order_release);
	return false;
}

__attribute__((visibility("default")))
int cfork_probe(struct cfork_probe_result *result, size_t size,
		unsigned flags)
{
	if (!result || (flags & ~(CFORK_PROBE_THOROUGH | CFORK_PROBE_FRESH))) {
		errno = EINVAL;
		return -1;
	}
	struct cfork_probe_result r;
	if (flags & CFORK_PROBE_THOROUGH)
		compute(&r, flags);
	else
		r.cached = fast_answer(&r, flags & CFORK_PROBE_FRESH);
	/* The size contract of cfork_last_report() too: a caller built
	 * against a larger structure finds zeros in the fields it adds. */
	memcpy(result, &r, size < sizeof r ? size : sizeof r);
	if (size > sizeof r)
		memset((char *)result + sizeof r, 0, size - sizeof r);
	return r.verdict;
}

/* "HugetlbPages:       0 kB" in /proc/self/status; -1 if unreadable. */
static long hugetlb_mapped_kb(void)
{
	char buf[4096];
	if (cf_read_file("/proc/self/status", buf, sizeof buf) <= 0)
		return -1;
	const char *p = strstr(buf, "\nHugetlbPages:");
	return p ? strtol(p + 14, NULL, 10) : -1;
}

/*
 * CFORK_MODE=auto: fork directly when every path this process uses is
 * coherent.  Small pages always count; transparent huge pages when the
 * system has them on; hugetlb pages only while the process maps some
 * (read at every call: a process may map them at any time, and /proc/
 * self/status has the count without walking page tables).
 */
const char *cf_probe_direct_ok(void)
{
	struct cfork_probe_result r;
	fast_answer(&r, false);
	const struct cfork_probe_path *p = r.path;
	if (p[CFORK_PATH_SMALL].verdict != CFORK_COHERENT)
		return NULL;
	if (p[CFORK_PATH_THP].in_use &&
	    p[CFORK_PATH_THP].verdict != CFORK_COHERENT)
		return NULL;
	if (p[CFORK_PATH_HUGETLB].verdict != CFORK_COHERENT &&
	    hugetlb_mapped_kb() != 0)
		return NULL;
	return "the kernel copies pinned pages coherently";
}
