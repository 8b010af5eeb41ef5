/* SPDX-License-Identifier: MIT */
/*
 * cfork.h - fork() that hands the child a coherent snapshot of memory.
 *
 * This header is the whole public interface of libcfork; libcfork(7) is the
 * overview and each function has its own manual page.
 */
#ifndef CFORK_H
#define CFORK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Like fork(2): the child's pid in the parent, 0 in the child, -1 with errno
 * on failure; pthread_atfork(3) handlers run as they do for fork().  In
 * addition every sibling thread that can run user code is stopped at a safe
 * point before the kernel copies memory and resumed afterwards, so the child
 * sees a state that existed in the parent (unless the mode, below, says to
 * fork directly).  See cfork(3).
 */
pid_t cfork(void);

/*
 * How cfork() forks.  AUTO (the default): directly on a kernel that
 * cfork_probe() finds coherent, else QUIESCE: stop the siblings.  DIRECT:
 * always directly, as fork() does.  See cfork_setmode(3).
 */
enum cfork_mode {
	CFORK_MODE_AUTO = 0,
	CFORK_MODE_QUIESCE = 1,
	CFORK_MODE_DIRECT = 2
};

/*
 * Sets the mode of every later cfork() of the process (fork() too, under
 * the preload shim), overriding CFORK_MODE.  Returns 0, or -1 with errno
 * EINVAL (not an enum cfork_mode).  Async-signal-safe.
 */
int cfork_setmode(int mode);

/* The configuration in force: cfork_getconfig(3). */
enum cfork_on_timeout {
	CFORK_ON_TIMEOUT_FORK = 0,  /* fork with the stragglers running */
	CFORK_ON_TIMEOUT_FAIL = 1   /* resume them all, fail with EAGAIN */
};

struct cfork_config {
	int mode;                  /* enum cfork_mode: cfork_setmode()'s,
				    * else CFORK_MODE's */
	int effective;             /* what the next cfork() does:
				    * CFORK_MODE_QUIESCE or CFORK_MODE_DIRECT */
	int signo;                 /* the signal that stops threads */
	unsigned timeout_ms;       /* the bound on one quiesce */
	int on_timeout;            /* enum cfork_on_timeout */
	int late;                  /* 1: loaded after libc (dlopen, or a
				    * library's dependency), so that its
				    * atfork and signal wrappers are
				    * bypassed; see cfork(3), NOTES */
	const char *why_direct;    /* when effective is DIRECT, why (a static
				    * English phrase), else NULL */
};

/*
 * Copies the configuration in force into *config (at most size bytes;
 * bytes past the structure, up to size, are zeroed).  In auto mode, asks
 * the kernel probe (about a millisecond, once).  Returns 0, or -1 with
 * errno EINVAL (config is NULL).
 */
int cfork_getconfig(struct cfork_config *config, size_t size);

/* How the last cfork() of the process went: cfork_last_report(3). */
enum cfork_method {
	CFORK_METHOD_NONE = 0,     /* no cfork() yet */
	CFORK_METHOD_DIRECT = 1,   /* fork() called directly */
	CFORK_METHOD_QUIESCE = 2   /* siblings stopped around fork() */
};

struct cfork_report {
	int method;                /* enum cfork_method */
	int coherent;              /* 1: no sibling ran user code during the
				    * copy (all stopped, or a coherent kernel) */
	pid_t pid;                 /* what cfork() returned */
	int error;                 /* its errno when pid is -1, else 0 */
	unsigned parked;           /* siblings stopped at a safe point */
	unsigned redirected;       /* of those, stopped by a redirected return */
	unsigned skipped;          /* never waited for: kernel workers (never
				    * signalled) and timer helpers (below) */
	unsigned gone;             /* exited during the quiesce */
	unsigned not_stopped;      /* still running at the bound */
	unsigned rounds;           /* attempts, including back-offs */
	unsigned backoffs;         /* times everyone was released to retry */
	unsigned signals;          /* signals sent */
	uint64_t quiesce_ns;       /* time to stop the siblings */
	uint64_t fork_ns;          /* time in fork() itself */
	unsigned timer_helpers;    /* of the skipped, glibc's SIGEV_THREAD
				    * timer helpers (they block every signal);
				    * the rest are kernel workers */
	const char *not_coherent;  /* when coherent is 0, why (a static
				    * English phrase), else NULL */
	const char *signal_shared; /* when the program uses CFORK_SIGNAL
				    * itself, how ("blocks", "waits for",
				    * ...), else NULL */
};

/* A thread the last quiesce did not stop: cfork_last_report(3). */
#define CFORK_STACK_MAX 16
struct cfork_straggler {
	pid_t tid;
	char name[16];             /* its comm */
	char state;                /* from /proc: R, S, D, ... */
	long syscall;              /* the system call it is in, -1 if none */
	char wchan[32];            /* where the kernel has it wait, or "" */
	const char *why;           /* a static English phrase */
	unsigned depth;            /* frames in stack[] (0: never walked) */
	uintptr_t stack[CFORK_STACK_MAX]; /* innermost first, when it last
				    * took the signal */
	uintptr_t pc;              /* where it was when the quiesce ended
				    * (from /proc), 0 if running or unknown */
};

/*
 * Copies the report of the last cfork() into *report: at most size bytes,
 * so a program built against an older, smaller struct keeps working, and
 * zeros from the end of the library's struct up to size.  Returns 0, or
 * -1 with errno EINVAL (report is NULL).
 */
int cfork_last_report(struct cfork_report *report, size_t size);

/*
 * Copies up to n stragglers of the last cfork() into s (elements size
 * bytes apart, each filled as cfork_last_report() fills *report) and
 * returns how many there were in all (which may exceed n).
 */
size_t cfork_last_stragglers(struct cfork_straggler *s, size_t n,
			     size_t size);

/*
 * The kernel feature probe: cfork_probe(3).  Does fork() on this kernel
 * give the child a coherent copy of pages that may be pinned for DMA?
 * Answered per copy path, by a deterministic sign (after a fork, the
 * parent's first write to a pinned page faults only on a kernel that
 * write-protected it before copying it); CFORK_PROBE_THOROUGH adds an
 * empirical tearing test.
 */
enum cfork_path {
	CFORK_PATH_SMALL = 0,      /* 4 KiB pages */
	CFORK_PATH_THP = 1,        /* transparent huge pages */
	CFORK_PATH_HUGETLB = 2,    /* hugetlbfs / MAP_HUGETLB pages */
	CFORK_PATHS = 3
};

enum cfork_verdict {
	CFORK_CANNOT_TELL = 0,     /* reason says why */
	CFORK_COHERENT = 1,
	CFORK_TEARS = 2
};

#define CFORK_PROBE_THOROUGH 0x1u  /* also fork against a writer thread */
#define CFORK_PROBE_FRESH 0x2u     /* do not use the cached answer */

struct cfork_probe_path {
	int verdict;               /* enum cfork_verdict */
	int in_use;                /* the system offers this path: small
				    * pages always, THP unless disabled,
				    * hugetlb when pages are reserved or
				    * may be had as surplus */
	const char *reason;        /* a static English phrase */
	unsigned trials;           /* forks of the fault sign */
	unsigned pinned_faults;    /* of those, how many times the first
				    * write to the pinned page faulted */
	unsigned control_faults;   /* ... and to the unpinned one */
	unsigned forks;            /* thorough: forks against the writer */
	unsigned raced;            /* of those, forks the writer ran across */
	unsigned torn;             /* children that saw a torn state */
};

struct cfork_probe_result {
	int verdict;               /* over the paths in use: coherent when all
				    * are, tears when one tears */
	int thorough;              /* the tearing test ran */
	int cached;                /* this answer was computed earlier */
	uint64_t ns;               /* what computing it took */
	struct cfork_probe_path path[CFORK_PATHS];
};

/*
 * Fills *result (at most size bytes, zeros past the library's struct, as
 * cfork_last_report() does) and returns its verdict, or -1 with errno
 * EINVAL (result is NULL or flags unknown).  The answer without
 * CFORK_PROBE_THOROUGH is cached for the life of the process (and its
 * children); CFORK_PROBE_FRESH computes it again.
 */
int cfork_probe(struct cfork_probe_result *result, size_t size,
		unsigned flags);

#ifdef __cplusplus
}
#endif

#endif /* CFORK_H */
