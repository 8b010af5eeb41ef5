/* SPDX-License-Identifier: MIT */
/*
 * The probe's helper: a tiny freestanding program (no libc) that libcfork
 * carries inside itself and runs in a process of its own (probe.c), so the
 * forks it makes copy a few pages of page tables however large the caller
 * is.  For each copy path (small pages, transparent huge pages, hugetlb
 * pages) it pins one page with io_uring, keeps a second one as a control,
 * forks, and counts the minor faults its first write to each page takes
 * afterwards.  A kernel that write-protects a pinned page before
 * copying it (the proposed fix) makes that write fault like the control's;
 * a kernel that copies it behind a writable mapping does not.
 *
 * It writes one struct cf_probe_raw to fd 1 and exits 0; what the counts
 * mean is decided in probe.c, where it can be tested and read.
 */
#include <linux/io_uring.h>
#include <linux/mman.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "probe-raw.h"
#include "syscall6.h"

#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#define HUGE_SIZE (2ul << 20)
#define SMALL_SIZE 4096ul

struct rusage_raw {          /* struct rusage as the kernel writes it */
	long utime[2], stime[2];
	long maxrss, ixrss, idrss, isrss, minflt, majflt, nswap, inblock;
	long oublock, msgsnd, msgrcv, nsignals, nvcsw, nivcsw;
};

#define sys(nr, a, b, c) cf_syscall6(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* Minor faults of this thread so far.  The buffer is static and was
 * written before any fork, but a fork write-protects it too: read twice,
 * so the fault of the kernel's own store into it lands before the count
 * that matters. */
static struct rusage_raw ru;
static long minflt(void)
{
	sys(SYS_getrusage, 1 /* RUSAGE_THREAD */, &ru, 0);
	sys(SYS_getrusage, 1, &ru, 0);
	return ru.minflt;
}

/* Faults of one write to p. */
static unsigned write_faults(volatile char *p)
{
	long before = minflt();
	*p = 1;
	return (unsigned)(minflt() - before);
}

/* Each path's two units: one pinned through a ring of its own, one not. */
/* Maps one unit of the path's kind and pins its first page, through a
 * ring of its own (a ring has one table of buffers).  A huge unit is
 * mapped at a huge-page boundary; a THP is then cut down to its first
 * page, which keeps the huge folio: that is the state fork itself leaves
 * a pinned THP in (it splits the huge mapping and copies page by page),
 * without 511 more copies.  Returns the pinned page, or NULL. */
static char *map_pinned(struct cf_probe_path_raw *out, int ring, int kind)
{
	size_t unit = kind == CF_PROBE_SMALL ? SMALL_SIZE : HUGE_SIZE;
	long flags = MAP_PRIVATE | MAP_ANONYMOUS;
	size_t len = unit;
	if (kind == CF_PROBE_HUGETLB)
		flags |= MAP_HUGETLB;
	if (kind == CF_PROBE_THP)
		len += HUGE_SIZE;    /* room to align to a huge page */
	long m = cf_syscall6(SYS_mmap, 0, (long)len, 3 /* PROT_READ|WRITE */, flags,
		      -1, 0);
	if (m < 0 && m > -4096) {
		out->stage = CF_PROBE_STAGE_MAP;
		out->error = (int)-m;
		return NULL;
	}
	char *page = (char *)m;
	if (kind == CF_PROBE_THP) {
		page = (char *)(((uintptr_t)page + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1));
		sys(SYS_madvise, page, HUGE_SIZE, MADV_HUGEPAGE);
	}

	/* One fault for the first write and none for the next page means a
	 * huge page backs the unit (a small page would fault again). */
	out->touch_faults = write_faults(page);
	if (kind != CF_PROBE_SMALL)
		out->touch_faults += write_faults(page + SMALL_SIZE);

	struct { void *base; size_t len; } iov = { page, SMALL_SIZE };
	if (kind == CF_PROBE_HUGETLB)
		iov.len = HUGE_SIZE;
	long r = cf_syscall6(SYS_io_uring_register, ring, IORING_REGISTER_BUFFERS,
		      (long)&iov, 1, 0, 0);
	if (r < 0) {
		out->stage = CF_PROBE_STAGE_PIN;
		out->error = (int)-r;
		return NULL;
	}
	if (kind == CF_PROBE_THP)
		sys(SYS_madvise, page + SMALL_SIZE, HUGE_SIZE - SMALL_SIZE,
		    MADV_DONTNEED);
	return page;
}

static struct cf_probe_raw result;

static void reap(long pid)
{
	int status;
	if (pid > 0)
		while (cf_syscall6(SYS_wait4, pid, (long)&status, 0, 0, 0, 0) == -4)
			;
}

/* Trials until the counts agree: two, or all of CF_PROBE_TRIALS when the
 * first two disagree (a stray fault must not decide). */
static bool settled(unsigned n)
{
	if (n < 2)
		return false;
	if (n >= CF_PROBE_TRIALS)
		return true;
	for (int k = 0; k < CF_PROBE_KINDS; k++) {
		const struct cf_probe_path_raw *p = &result.path[k];
		if (p->stage != CF_PROBE_STAGE_OK)
			continue;
		for (unsigned i = 1; i < n; i++)
			if (!p->pinned[i] != !p->pinned[0])
				return false;
	}
	for (unsigned i = 1; i < n; i++)
		if (!result.control[i] != !result.control[0])
			return false;
	return true;
}

__attribute__((used)) static void helper_main(void)
{
	result.magic = CF_PROBE_MAGIC;
	char *pinned[CF_PROBE_KINDS];
	bool any = false;
	/* The control: an unpinned small page, which every kernel makes
	 * fault on the first write after a fork (copy on write).  If it does
	 * not, the counts mean nothing. */
	long c = cf_syscall6(SYS_mmap, 0, SMALL_SIZE, 3, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	char *control = c < 0 && c > -4096 ? NULL : (char *)c;
	if (control)
		write_faults(control);
	for (int k = 0; control && k < CF_PROBE_KINDS; k++) {
		struct io_uring_params params;
		for (size_t i = 0; i < sizeof params; i++)
			((volatile char *)&params)[i] = 0;
		long ring = cf_syscall6(SYS_io_uring_setup, 1, (long)&params, 0, 0, 0, 0);
		if (ring < 0) {
			/* The rings and pages of the paths before may have
			 * used up RLIMIT_MEMLOCK (6.18 charges a ring to it
			 * as well as the pages it pins): those paths keep
			 * their counts, this one and the next are not
			 * probed. */
			for (int j = k; j < CF_PROBE_KINDS; j++) {
				result.path[j].stage = CF_PROBE_STAGE_RING;
				result.path[j].error = (int)-ring;
			}
			break;
		}
		pinned[k] = map_pinned(&result.path[k], (int)ring, k);
		any |= pinned[k] != NULL;
	}

	/* One fork per trial copies every path's pinned page.  Each child
	 * leaves at once and is reaped before the next fork (its copy of the
	 * hugetlb page must be free again), the last one after the answer is
	 * written: whether a child still lives does not change whether the
	 * parent's page was left write-protected. */
	long child = 0;
	unsigned n = 0;
	while (any && !settled(n)) {
		reap(child);
		long pid = cf_syscall6(SYS_clone, 17 /* SIGCHLD */, 0, 0, 0, 0, 0);
		if (pid == 0)
			sys(SYS_exit_group, 0, 0, 0);
		child = pid > 0 ? pid : 0;
		struct cf_probe_path_raw *huge = &result.path[CF_PROBE_HUGETLB];
		if (pid == -12 /* ENOMEM */ && huge->stage == CF_PROBE_STAGE_OK) {
			/* The child's copy of the pinned hugetlb page found
			 * no free page: go on without that path. */
			huge->stage = CF_PROBE_STAGE_FORK;
			huge->error = 12;
			sys(SYS_munmap, pinned[CF_PROBE_HUGETLB], HUGE_SIZE, 0);
			any = false;
			for (int k = 0; k < CF_PROBE_KINDS; k++)
				any |= result.path[k].stage == CF_PROBE_STAGE_OK;
			continue;
		}
		if (pid < 0) {
			for (int k = 0; k < CF_PROBE_KINDS; k++) {
				if (result.path[k].stage != CF_PROBE_STAGE_OK)
					continue;
				result.path[k].stage = CF_PROBE_STAGE_FORK;
				result.path[k].error = (int)-pid;
			}
			break;
		}
		for (int k = 0; k < CF_PROBE_KINDS; k++) {
			struct cf_probe_path_raw *p = &result.path[k];
			if (p->stage != CF_PROBE_STAGE_OK)
				continue;
			p->pinned[n] = write_faults(pinned[k]);
			p->trials = n + 1;
		}
		result.control[n] = write_faults(control);
		n++;
	}
	/* The answer first, then the last child. */
	const char *p = (const char *)&result;
	size_t left = sizeof result;
	while (left) {
		long w = sys(SYS_write, 1, p, left);
		if (w == -4)
			continue;
		if (w <= 0)
			break;
		p += w;
		left -= (size_t)w;
	}
	reap(child);
	sys(SYS_exit_group, 0, 0, 0);
}

/* The kernel enters with the stack pointer 16-byte aligned; a call
 * needs it 8 off. */
__asm__(".text\n"
	".globl _start\n"
	"_start:\n"
	"	xor %ebp, %ebp\n"
	"	and $-16, %rsp\n"
	"	call helper_main\n"
	"	hlt\n");
