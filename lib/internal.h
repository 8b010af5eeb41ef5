/* SPDX-License-Identifier: MIT */
/*
 * Private declarations of libcfork, one place.  The path of one cfork, top to
 * bottom (nothing below calls anything above):
 *
 *   cfork.c     cfork(): direct fork or quiesce, chosen by config
 *   atfork.c    pthread_atfork registrations, so that the quiesce runs last
 *   config.c    environment variables, parsed once; cfork_setmode
 *   late.c      was libcfork loaded too late for its wrappers to work?
 *   probe.c     cfork_probe(): does this kernel tear?  (auto mode asks)
 *   probe-helper.c  the program probe.c runs to count faults after forks
 *   probe-blob.S    carries that program inside the library
 *   tearing.c   the probe's thorough mode: fork against a writer
 *   report.c    the report of the last cfork, and CFORK_DEBUG's output
 *   restart.c   after a park, the interrupted system call goes on
 *   quiesce.c   the driver: signal, wait, back off, resume, bound
 *   tasks.c     /proc/self/task and the table of threads of one quiesce
 *   sigmask.c   the signal API as the program sees it: ours stays ours
 *   handler.c   the signal handler, the return stub's C side and the
 *               longjmp wrappers: park
 *   safepoint.c the rule: may this stack be parked, and where else to stop
 *   unwind.c    a lock-free stack walk over a signal context
 *   objects.c   loaded objects: code ranges, unwind tables, libc's symbols
 *   stub.S      the parking stub a redirected return lands in
 *   sys.c       raw system calls and a futex lock
 *   syscall6.h  one raw system call, also for probe-helper.c
 */
#ifndef CFORK_INTERNAL_H
#define CFORK_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <ucontext.h>

#define CF_HIDDEN __attribute__((visibility("hidden")))
#define CF_TLS __thread __attribute__((tls_model("initial-exec")))
/* Code that AddressSanitizer must not check (the program's build may have
 * it): reads of any word of a thread's stack, its redzones included. */
#define CF_NO_ASAN __attribute__((no_sanitize_address))

/* ---- sys.c: raw system calls, usable in a signal handler ---- */
pid_t cf_gettid(void);
long cf_futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t timeout_ns);
long cf_futex_wake(_Atomic uint32_t *word, int n);
uint64_t cf_now_ns(void);
int cf_tgkill(pid_t tid, int sig);          /* 0 or -errno */
/* 0 or -errno; pid and uid: the caller's, which it knows. */
int cf_sigqueue(pid_t pid, uid_t uid, pid_t tid, int sig, uint64_t value);
int cf_open_ro(const char *path);           /* fd or -errno */
ssize_t cf_read_file(const char *path, char *buf, size_t len); /* NUL-ended */
void cf_close(int fd);
void cf_nanosleep_ns(uint64_t ns);
long cf_raw_syscall6(long nr, long a, long b, long c, long d, long e, long f);
void cf_lock(_Atomic uint32_t *l);
void cf_unlock(_Atomic uint32_t *l);
void *cf_map(size_t len);                   /* zeroed pages or NULL */
/* The same, zeroed again in a child (MADV_WIPEONFORK): for the driver's
 * own state, which a child starts afresh, so that the parent's writes to
 * it after a fork take no copy-on-write fault (about a microsecond each,
 * on every cfork). */
void *cf_map_wiped(size_t len);
/* Marks whole pages of anonymous memory so (a static page-aligned one). */
void cf_wipe_on_fork(void *p, size_t len);
void cf_unmap(void *p, size_t len);
/* Writes "libcfork: " + msg to stderr with one write(2). */
void cf_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- config.c ---- */
struct cf_config {
	int mode;                  /* CFORK_MODE: enum cfork_mode */
	unsigned timeout_ms;
	int on_timeout;            /* enum cfork_on_timeout */
	int signo;
	bool debug;
};
const struct cf_config *cf_config(void);
/* The mode in force: cfork_setmode()'s if the program called it (then
 * *by_program is true), else CFORK_MODE's. */
int cf_mode(bool *by_program);

/* ---- late.c ---- */
/* libcfork comes after libc in the symbol search order (dlopen, or a
 * library's dependency): its wrappers are bypassed. */
bool cf_loaded_late(void);
/* Says so on stderr (once: called from the one-time set-up). */
void cf_late_warn(void);

/* ---- probe.c, tearing.c ---- */
struct cfork_probe_path;
/* For CFORK_MODE=auto: why a direct fork is coherent now (a static
 * phrase), or NULL when the siblings must be stopped. */
const char *cf_probe_direct_ok(void);
/* Adds the tearing test's counts (and a tearing verdict) to *p. */
void cf_tearing_test(int path, struct cfork_probe_path *p);

/* ---- atfork.c ---- */
/* Registers our one glibc handler (idempotent); 0 or -errno. */
int cf_atfork_init(void);
/* Serialises forks that run our handlers; returns the number of
 * registrations whose handlers this fork runs. */
size_t cf_atfork_prepare(void);
void cf_atfork_parent(size_t n);
void cf_atfork_child(size_t n);
/* Set by cfork() around its call of libc's fork(), whose glibc handlers
 * then leave the work to cfork(). */
extern CF_TLS bool cf_in_cfork;
/* True when the calling thread is inside a fork's handlers. */
bool cf_atfork_owner(void);

/* ---- report.c ---- */
struct cfork_report;
struct cf_thread;
void cf_report_begin(void);
void cf_report_straggler(const struct cf_thread *t, unsigned verdict);
void cf_report_finish(const struct cfork_report *r);

/* ---- quiesce.c ---- */
int cf_quiesce_init(void);         /* 0 or -errno; once, before threads */
/* Fills the quiesce part of a report (counts, times, coherent and why
 * not) and returns coherent. */
bool cf_quiesce(struct cfork_report *st);
void cf_resume(void);
void cf_quiesce_child_reset(void);

/* ---- tasks.c: the threads of one quiesce, by tid ---- */
#define CF_STACK_KEEP 16
/* What the handler decided, tagged with the release generation it saw:
 * verdict = gen * 8 + CF_V_*. */
enum { CF_V_NONE, CF_V_PARKED, CF_V_HIJACKED, CF_V_RETRY };
/* What the driver found out (driver-only). */
enum {
	CF_FATE_LIVE, CF_FATE_GONE,
	CF_FATE_SKIPPED,        /* a kernel worker (io_uring, vhost) */
	CF_FATE_TIMER,          /* glibc's SIGEV_THREAD timer helper */
};
struct cf_thread {
	_Atomic int32_t tid;          /* 0: unused entry */
	_Atomic uint32_t verdict;     /* written by the handler */
	_Atomic uint64_t taken;       /* highest request id the handler took */
	_Atomic uintptr_t slot;       /* hijacked return address slot */
	uintptr_t ra;                 /* the return address it held */
	uint64_t sent;                /* id of the last request sent, 0: none */
	uint32_t fate;                /* CF_FATE_* */
	uint64_t sent_ns;             /* when the last one was sent */
	bool classified;              /* kernel-worker check done */
	uint32_t depth;               /* frames in stack, written by the */
	uintptr_t stack[CF_STACK_KEEP]; /* handler when it could not park */
};
int cf_tasks_reset(size_t want);  /* empties (and sizes) the table */
struct cf_thread *cf_tasks_find(pid_t tid);
struct cf_thread *cf_tasks_insert(pid_t tid, bool *fresh);
size_t cf_tasks_capacity(void);
size_t cf_tasks_count(void);               /* entries in use */
struct cf_thread *cf_tasks_nth(size_t i);  /* i < cf_tasks_count() */
/* Calls fn for every tid in /proc/self/task; returns count or -errno. */
int cf_tasks_scan(void (*fn)(pid_t tid, void *arg), void *arg);
/* /proc/self/task's link count, 2 plus the number of threads: one path
 * lookup, where a listing costs three system calls (4 against 10 us just
 * after a fork); 0 if it cannot be read. */
unsigned long cf_tasks_nlink(void);
struct cf_task_info {
	char state;                   /* R, S, D, Z, ... */
	unsigned long flags;          /* PF_* */
	char name[16];                /* comm */
};
int cf_task_info(pid_t tid, struct cf_task_info *ti);
/* The system call a blocked thread is in: 0, or -errno (-EAGAIN when it
 * is running). */
int cf_task_syscall(pid_t tid, long *nr, unsigned long args[6]);
/* What /proc said of a tid (CF_FATE_*), kept across quiesces; -1 if
 * unknown. */
void cf_tasks_remember(pid_t tid, int fate);
int cf_tasks_recall(pid_t tid);
#define CF_PF_IO_WORKER   0x00000010UL
#define CF_PF_USER_WORKER 0x00004000UL

/* ---- handler.c ---- */
int cf_handler_install(int signo);
/* What the driver and the handlers write at every cfork, alone on a page
 * that a child gets zeroed (MADV_WIPEONFORK, from cf_handler_install):
 * zero is how a child starts anyway, and the parent's writes after each
 * fork then take no copy-on-write fault (about a microsecond each). */
struct cf_hot {
	_Atomic uint32_t active;          /* a round is stopping threads */
	_Atomic uint32_t release_gen;     /* parked threads wait on it */
	_Atomic uint32_t release_sleepers; /* someone may sleep on it */
	_Atomic uint32_t progress;        /* bumped at each state change */
	_Atomic uint32_t users;           /* handlers touching the table */
	_Atomic uint32_t stub_parks;      /* threads parked by the stub */
	_Atomic uint32_t driver_waiting;  /* the driver sleeps on progress */
	_Atomic uint32_t driver_wake_at;  /* until it reaches this */
	_Atomic pid_t request_pid;        /* the pid requests come from */
	_Atomic pid_t driver;             /* the thread making the quiesce
					   * (it is not in the table) */
	uid_t uid;                        /* its uid, for sigqueue */
	uint64_t request_id;              /* grows across quiesces */
	size_t last_count;                /* threads at the last quiesce */
	size_t used;                      /* entries of the table in use */
	/* The last listing, when it held only sleepers claimed asleep: the
	 * stir count they were asleep since and /proc/self/task's link
	 * count (2 + threads); see quiesce.c. */
	bool listing_valid;
	uint32_t listing_stirs;
	unsigned long listing_nlink;
} __attribute__((aligned(4096)));
extern struct cf_hot cf_hot;
#define CF_TAG_MASK 0xffff000000000000ull
extern uint64_t cf_request_tag;           /* top bits of our request ids */
/* The program's signal mask in a signal context (the kernel's 64 bits). */
static inline uint64_t cf_program_mask(const ucontext_t *uc)
{
	uint64_t m;
	__builtin_memcpy(&m, &uc->uc_sigmask, sizeof m);
	return m;
}
/* Parked, in a signal handler: sets the thread's mask to mask (the
 * program's) plus our signal, then waits until the release generation
 * moves on from gen. */
void cf_park_wait(uint32_t gen, uint64_t mask);
/* Waits until the release generation moves on from gen, with the mask
 * the thread has. */
void cf_wait_release(uint32_t gen);
/* Before a program's handler (sigmask.c): if the signal came to a thread
 * parked in a round that is still on, wait until it is released. */
void cf_park_hold(void);
/* Is this thread parked in a round that is still on? */
bool cf_parked(void);
/* Takes back this thread's redirected return, if any (before glibc's
 * cancellation handler, which may unwind through it). */
void cf_hijack_drop(void);
/* pthread_cancel(thread) is about to be made: a round under way is waited
 * for (its redirects are undone when it ends), and after that the thread,
 * asked to cancel, is never redirected. */
void cf_cancel_noted(uintptr_t thread);
/* Was the calling thread asked to cancel (glibc's own bits)? */
bool cf_cancel_requested(void);
/* The driver undoes a hijack that has not fired (returns true if undone). */
bool cf_hijack_undo(struct cf_thread *t);

/* ---- sigmask.c ---- */
#include <signal.h>
/* Installs our handler with libc's own sigaction; 0 or -errno. */
int cf_sigmask_install(int signo, const struct sigaction *sa);
/* Set while the thread runs our handler: the wrappers then pass through. */
extern CF_TLS bool cf_in_handler;
/* Set while the handler walks a stack with every signal blocked: requests
 * that would leave every signal blocked are answered without a system
 * call (libunwind masks signals around each of its pool operations). */
extern CF_TLS bool cf_all_blocked;
/* Hands a signal with our number that we did not send to the program. */
void cf_sigmask_chain(int sig, siginfo_t *si, void *ctx);
/* How the program uses our signal number itself (a static phrase, said
 * once on stderr), or NULL. */
const char *cf_sigmask_shared(void);

/* ---- restart.c ---- */
int cf_restart_init(void);        /* 0 or -errno; once, before threads */
/* After a park: finish the system call our signal interrupted, so that the
 * thread sees its normal result instead of EINTR. */
void cf_restart_interrupted(ucontext_t *uc);
/* The same for a thread that may not be counted as stopped: the call goes
 * on with our signal blocked, unclaimable, and the thread is asked again
 * once it returns. */
void cf_restart_unclaimed(ucontext_t *uc);
/* Was the thread in a system call that slept when the signal came?  The
 * kernel shows -EINTR after the syscall instruction, or the instruction
 * again to restart the call. */
bool cf_restart_in_call(const ucontext_t *uc);
/* The park of a thread interrupted in an untimed futex wait: it sleeps on
 * in that wait, registered as claimed for round gen, after counted(arg).
 * Returns false, having done nothing, for any other thread. */
bool cf_restart_park_asleep(ucontext_t *uc, uint32_t gen,
			    void (*counted)(void *), void *arg);
/* Driver: counts threads asleep in a continued call as parked; returns
 * how many it counted now. */
unsigned cf_restart_claim(uint32_t gen);
/* Changes whenever a thread falls asleep in a continued call or wakes:
 * unchanged across a listing, with nobody signalled, means nobody but
 * the driver ran, so nobody made a thread. */
uint32_t cf_restart_stirs(void);
/* Around a program's handler (sigmask.c): a thread asleep in a continued
 * call first waits out a quiesce that claimed it, and is not claimable
 * until the handler returns.  hold returns the token unhold takes;
 * unhold, given one, leaves every signal blocked (the handler then
 * returns to the call, whose mask the kernel restores). */
void *cf_restart_hold(void);
void cf_restart_unhold(void *token);

/* ---- stub.S ---- */
void cf_stub(void);                       /* never called directly */
extern const char cf_stub_begin[], cf_stub_end[];

/* ---- safepoint.c ---- */
enum cf_verdict { CF_PARK, CF_HIJACK, CF_RETRY };
struct cf_hijack {
	uintptr_t slot;                       /* where the return address is */
	uintptr_t ra;                         /* what it holds */
	uint32_t depth;                       /* the walk, for diagnostics */
	uintptr_t stack[CF_STACK_KEEP];
};
int cf_safepoint_init(void);
enum cf_verdict cf_safepoint_judge(const ucontext_t *uc, pid_t tid,
				   struct cf_hijack *hj);

/* ---- unwind.c ---- */
struct cf_frame {
	uintptr_t ip;        /* exact for frame 0 and after a signal frame */
	uintptr_t sp;        /* this frame's stack pointer (caller's CFA) */
	bool signal_frame;   /* a kernel signal frame (the restorer) */
	bool exact_ip;       /* ip is not a return address */
};
#define CF_WALK_MAX 256
/* Calls fn for each frame, innermost first, until it returns false.
 * Returns 1 when the walk reached the outermost frame cleanly, 0 when fn
 * stopped it, -1 when it could go no further (or CF_WALK_MAX frames).
 * Frames are handed over one at a time: the handler's stack is small. */
typedef bool cf_frame_fn(const struct cf_frame *f, void *arg);
int cf_unwind_init(void);
/* tid: the calling thread's, whose last walk is kept (0: not kept). */
int cf_walk(const ucontext_t *uc, pid_t tid, cf_frame_fn *fn, void *arg);
bool cf_mem_readable(uintptr_t addr, size_t len);
/* The word at addr (any alignment), readable (cf_mem_readable): a
 * stack's, unchecked by AddressSanitizer, whose redzones and dead frames
 * the walk reads. */
uintptr_t cf_stack_word(uintptr_t addr);

/* ---- objects.c ---- */
enum cf_objkind {
	CF_OBJ_OTHER, CF_OBJ_LIBC, CF_OBJ_LD, CF_OBJ_VDSO, CF_OBJ_SELF,
	CF_OBJ_SANITIZER,             /* libasan and friends: judged as libc */
};
struct cf_object {
	uintptr_t text_lo, text_hi;   /* executable segment(s) */
	uintptr_t lo, hi;             /* all loaded segments */
	uintptr_t eh_hdr;             /* .eh_frame_hdr, 0 when absent */
	uintptr_t eh_table;           /* its binary search table */
	size_t eh_count;              /* entries in it */
	enum cf_objkind kind;
	bool permanent;               /* loaded at start-up: never unloaded */
#define CF_OBJ_RO_MAX 4
	uintptr_t ro[CF_OBJ_RO_MAX][2]; /* read-only segments [lo, hi) */
	unsigned nro;
};
int cf_objects_refresh(void);     /* re-reads if dlopen/dlclose happened */
uint32_t cf_objects_generation(void); /* changes at each re-read */
const struct cf_object *cf_objects_find(uintptr_t ip);
/* The read-only segment (code, unwind tables, constants) of an object
 * that is never unloaded in which [addr, addr + len) lies, as {lo, hi}:
 * readable without a check.  NULL if none. */
const uintptr_t *cf_objects_readonly(uintptr_t addr, size_t len);
/* Class bits of the libc function containing ip (0 when none). */
#define CF_FN_ANYTIME  1u   /* holds no libc-internal lock at any point */
#define CF_FN_BLOCKING 2u   /* a blocking system call wrapper */
#define CF_FN_CALLBACK 4u   /* holds no lock while it calls user code */
#define CF_FN_DENY     8u   /* may block holding a lock fork() takes */
unsigned cf_objects_fn_class(uintptr_t ip);
/* The class of the libc function that starts exactly at addr, else 0. */
unsigned cf_objects_entry_class(uintptr_t addr);
/* The address of libc's own definition of name (default version). */
void *cf_libc_sym(const char *name);

#endif /* CFORK_INTERNAL_H */
