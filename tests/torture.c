/* SPDX-License-Identifier: MIT */
/*
 * A randomized torture harness: finds what the tests written for one fix
 * do not.  From a seed it builds a random mix of sibling threads, each
 * looping on one or a few kinds of work (every kind of wait and sleep,
 * timed and untimed; spinning; malloc, stdio, dlopen, setenv and localtime
 * loops; thread churn; handlers that siglongjmp or longjmp out; cancelled
 * threads with cleanup handlers; handlers on an alternate signal stack;
 * coroutines on small stacks; signalfd readers; PI and robust mutexes; a
 * second thread calling cfork; threads that block every signal), a
 * signaller thread that sends program signals to them, a waker thread that
 * ends their untimed waits, a writer of io_uring-registered (pinned) pages,
 * and CPU hogs in a process of their own.  Then it calls cfork() many
 * times and checks, after each:
 *
 *  - the report: coherent, nothing left running (cfork_last_report);
 *  - the child: it saw a pinned state that existed (with liburing), no
 *    program handler half done, could use libc (malloc, stdio to a pipe,
 *    dlopen, setenv, localtime, fflush, exit) and exited 0 in time;
 *  - the siblings: no EINTR and no early return from any wait or sleep
 *    unless a program handler ran on that thread during the call (Linux
 *    gives EINTR then, SA_RESTART or not); sigsuspend and pause end only
 *    by a program handler (EINTR in two cases libcfork(7) documents is
 *    counted apart: a futex through syscall(2), and a call made while a
 *    continued call that a handler jumped out of still has its mark);
 *  - program signals: each queued (real-time) one handled exactly once and
 *    in order (its value is its sequence number), a standard one handled
 *    at least once after each send and never more often than sent;
 *    cancellation cleanup handlers run once per cancelled thread; every
 *    robust mutex owner death seen once;
 *  - progress: every sibling keeps going (waited for with a generous bound
 *    every 25 cforks, never timed);
 *  - at the end: every thread stops and is joined, no descriptor leaked.
 *
 * A failed check prints what failed, the seed, the cfork index and the
 * command that replays it, and exits 1 (-c: counts and goes on).  A hang
 * (no progress for -w seconds) is reported by a watchdog process, with
 * every thread's stack when gdb is installed.
 *
 * Usage: torture [-s SEED] [-n CFORKS] [-t THREADS] [-k KIND,...]
 *                [-x KIND,...] [-a stub,held,async|none] [-H HOGS] [-W]
 *                [-d] [-c] [-v] [-g] [-w SECONDS] [-l]
 *   -s  the seed (default: from the clock); "torture: seed S" comes first,
 *       and -s S with the same other options builds the same mix again
 *   -n  cforks by the main thread (200)
 *   -t  sibling threads of the mix (default: 4 to 12, from the seed)
 *   -k  only these kinds (-l lists them), to narrow a failing mix down;
 *   -x  not these (applied after -k)
 *   -a  what a handler's jump steers clear of (default "stub"): "stub",
 *       libcfork's return stub (a known bug: the jump leaks a count, and
 *       every later cfork waits a second and is not coherent); "held", a
 *       program handler libcfork's trampoline holds (it never runs);
 *       "async", no asynchronous cancellation (which can leave the stub
 *       as a jump does); "none".  Jumps that cross either are counted
 *       and printed, and so are cancellations through the stub.  A jump
 *       that would leave another handler's frame (its signal lost, with or
 *       without libcfork) is never made.
 *   -H  CPU hog threads in the hog process (default: 0 to 3, from the seed)
 *   -W  no pinned writer;  -d  add a deaf thread (blocks the cfork signal
 *       with a raw rt_sigprocmask): every cfork must then say not coherent,
 *       naming it; the program runs itself again with CFORK_TIMEOUT_MS=100
 *   -c  count violations and go on;  -v  print the mix
 *   -g  when libcfork's count of handlers in its table stays up for 0.5 s
 *       (every quiesce first waits for it), print every thread's stack
 *   -w  the watchdog's bound: no progress for this long is a hang (60)
 * The program runs itself again with CFORK_MODE=quiesce unless CFORK_MODE
 * is set.  make check runs a few fixed seeds (tests/torture-check.sh);
 * make torture many random ones (tests/torture.sh).
 */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>

#include "cfork.h"
#ifdef HAVE_URING
#include "pinned.h"
#endif
#include "child.h"
#include "symbol.h"
#include "test.h"

/* Options ---------------------------------------------------------------- */

static uint64_t seed;
static int ncforks = 200, nthreads = -1, nhogs = -1, watch_s = 60;
static bool deaf, cont, verbose, no_writer, mode_forced, gdb_stall;
static uint64_t kinds_allowed = ~0ull;
/* -a: the known library bugs a jump out of a handler steers clear of. */
enum { AVOID_STUB = 1, AVOID_HELD = 2, AVOID_ASYNC = 8 };
static unsigned avoid;
static _Atomic uint64_t jumps_stub, jumps_held, withheld_stub, withheld_held,
	withheld_frame, cancels_stub, cancels_handler;
static char replay[1024];

/* Random numbers: splitmix64, one state per user, all from the seed. */
static uint64_t mix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	return n ? mix64(s) % n : 0;
}

/* Clocks ----------------------------------------------------------------- */

static uint64_t ns_now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono(void)
{
	return ns_now(CLOCK_MONOTONIC);
}

static struct timespec ts_of(uint64_t ns)
{
	return (struct timespec){ (time_t)(ns / 1000000000u),
				  (long)(ns % 1000000000u) };
}

static uint64_t ns_of(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

/* A short nap whose result nobody checks (waiting for something else). */
static void nap_ns(uint64_t ns)
{
	struct timespec ts = ts_of(ns);
	nanosleep(&ts, NULL);
}

/* Kinds ------------------------------------------------------------------ */

struct sib;
typedef void op_fn(struct sib *);

enum {
	KF_ATTR = 1,      /* an attribute of the thread, not an operation */
	KF_ALONE = 2,     /* the thread does nothing else; one per run */
	KF_OPEN = 4,      /* needs the program's handled signals let in */
	KF_UNBLOCKS = 8,  /* lets some signal in: not with "fill" */
};

enum kind_id {
	K_COND, K_SEM, K_MUTEX, K_RWLOCK, K_BARRIER, K_JOIN, K_NANOSLEEP,
	K_CLOCKNANO, K_USLEEP, K_POLL, K_PPOLL, K_SELECT, K_PSELECT, K_EPOLL,
	K_READ, K_SIGSUSPEND, K_SIGWAIT, K_PAUSE, K_FUTEX, K_SPIN, K_MALLOC,
	K_STDIO, K_CHURN, K_SIGLONGJMP, K_LONGJMP, K_CANCEL, K_ALTSTACK,
	K_CORO, K_SIGNALFD, K_PI, K_ROBUST, K_CFORKER, K_DL, K_ENV, K_TZ,
	K_OPEN, K_FILL, NKINDS
};

static op_fn op_cond, op_sem, op_mutex, op_rwlock, op_barrier, op_join,
	op_nanosleep, op_clocknano, op_usleep, op_poll, op_ppoll, op_select,
	op_pselect, op_epoll, op_read, op_sigsuspend, op_sigwait, op_pause,
	op_futex, op_spin, op_malloc, op_stdio, op_churn, op_siglongjmp,
	op_longjmp, op_cancel, op_altstack, op_coro, op_signalfd, op_pi,
	op_robust, op_cforker, op_dl, op_env, op_tz;

static const struct kind {
	const char *name;
	op_fn *op;
	unsigned flags;
	const char *what;
} kinds[NKINDS] = {
	[K_COND] = { "cond", op_cond, 0, "pthread_cond_wait (woken), timedwait, clockwait" },
	[K_SEM] = { "sem", op_sem, 0, "sem_wait (posted), sem_timedwait, sem_clockwait, sem_trywait" },
	[K_MUTEX] = { "mutex", op_mutex, 0, "contended pthread_mutex_lock, timedlock, clocklock" },
	[K_RWLOCK] = { "rwlock", op_rwlock, 0, "contended rdlock/wrlock, timed" },
	[K_BARRIER] = { "barrier", op_barrier, 0, "pthread_barrier_wait with a late helper" },
	[K_JOIN] = { "join", op_join, 0, "pthread_join, pthread_timedjoin_np of a sleeping helper" },
	[K_NANOSLEEP] = { "nanosleep", op_nanosleep, 0, "nanosleep" },
	[K_CLOCKNANO] = { "clock_nanosleep", op_clocknano, 0, "clock_nanosleep, 3 clocks, absolute and relative" },
	[K_USLEEP] = { "usleep", op_usleep, 0, "usleep" },
	[K_POLL] = { "poll", op_poll, 0, "poll: timeout, dead pipe, woken pipe, zero" },
	[K_PPOLL] = { "ppoll", op_ppoll, 0, "ppoll with and without a timeout and a mask" },
	[K_SELECT] = { "select", op_select, 0, "select with and without a timeout" },
	[K_PSELECT] = { "pselect", op_pselect, 0, "pselect with and without a timeout and a mask" },
	[K_EPOLL] = { "epoll", op_epoll, 0, "epoll_wait, epoll_pwait, epoll_pwait2, timed and not" },
	[K_READ] = { "read", op_read, 0, "read on a pipe the waker writes" },
	[K_SIGSUSPEND] = { "sigsuspend", op_sigsuspend, 0, "sigsuspend until a program signal" },
	[K_SIGWAIT] = { "sigwait", op_sigwait, 0, "sigwait, sigwaitinfo, sigtimedwait" },
	[K_PAUSE] = { "pause", op_pause, KF_OPEN | KF_UNBLOCKS, "pause until a program signal" },
	[K_FUTEX] = { "futex", op_futex, 0, "raw futex waits: woken, relative, absolute" },
	[K_SPIN] = { "spin", op_spin, 0, "spinning in user code" },
	[K_MALLOC] = { "malloc", op_malloc, 0, "malloc/calloc/realloc/free loops" },
	[K_STDIO] = { "stdio", op_stdio, 0, "fprintf to open_memstream and fmemopen" },
	[K_CHURN] = { "churn", op_churn, 0, "create and join short-lived threads" },
	[K_SIGLONGJMP] = { "siglongjmp", op_siglongjmp, KF_UNBLOCKS, "a handler siglongjmps out of spin, strlen, sleeps" },
	[K_LONGJMP] = { "longjmp", op_longjmp, KF_UNBLOCKS, "a handler longjmps out (keeping its mask)" },
	[K_CANCEL] = { "cancel", op_cancel, 0, "pthread_cancel of a helper in a cancellable wait" },
	[K_ALTSTACK] = { "altstack", op_altstack, KF_UNBLOCKS, "a handler on a sigaltstack stays a while" },
	[K_CORO] = { "coro", op_coro, 0, "swapcontext between coroutines on 16-64 KiB stacks" },
	[K_SIGNALFD] = { "signalfd", op_signalfd, 0, "signalfd reads, blocking and polled" },
	[K_PI] = { "pi", op_pi, 0, "a shared PTHREAD_PRIO_INHERIT mutex" },
	[K_ROBUST] = { "robust", op_robust, 0, "a shared robust mutex whose owners sometimes die" },
	[K_CFORKER] = { "cforker", op_cforker, KF_ALONE, "a second thread calling cfork" },
	[K_DL] = { "dl", op_dl, 0, "dlopen/dlclose of a module" },
	[K_ENV] = { "env", op_env, 0, "setenv" },
	[K_TZ] = { "tz", op_tz, 0, "localtime_r, tzset, strftime" },
	[K_OPEN] = { "open", NULL, KF_ATTR | KF_OPEN | KF_UNBLOCKS, "the program's handled signals let in (EINTR counted)" },
	[K_FILL] = { "fill", NULL, KF_ATTR, "pthread_sigmask(sigfillset) for the thread's life" },
};

static int kind_by_name(const char *s, size_t len)
{
	for (int k = 0; k < NKINDS; k++)
		if (strlen(kinds[k].name) == len && !strncmp(kinds[k].name, s, len))
			return k;
	return -1;
}

/* Program signals -------------------------------------------------------- */

/* Slots: the three a handler counts (H), the one only sigwait and
 * signalfd take (B, blocked everywhere), the jumpers' (J) and the
 * alternate stack's (S).  The jumpers' timers use T (counted loosely: a
 * timer's expirations merge). */
enum { S_USR1, S_USR2, S_RTA, S_RTB, S_RTJ, S_RTS, NSLOT };
static int slot_sig[NSLOT], sig_rtt;
static const char *const slot_name[NSLOT] = {
	"SIGUSR1", "SIGUSR2", "SIGRTMIN+2", "SIGRTMIN+3", "SIGRTMIN+4",
	"SIGRTMIN+6",
};
static sigset_t prog_set;        /* all of them, T and SIGALRM too */
static sigset_t h_set;           /* the handled ones */

static bool slot_rt(int s)
{
	return s >= S_RTA;
}

static int slot_of(int sig)
{
	for (int s = 0; s < NSLOT; s++)
		if (slot_sig[s] == sig)
			return s;
	return -1;
}

/* The handlers' flags, from the seed. */
static bool h_restart, h_fill;
/* libcfork's signal, which it keeps out of handlers' masks: a handler that
 * blocks every signal blocks it itself, with a raw system call. */
static uint64_t cfork_sig_bit;
static uint64_t slack_ns;        /* what nanosleep's rem may exceed by */
static uint64_t h_spin_ns, alt_spin_ns;

/* Per-thread state ------------------------------------------------------- */

struct acct {
	_Atomic uint64_t sent;   /* sends made (incremented before each) */
	_Atomic uint64_t recv;   /* deliveries seen */
	_Atomic uint64_t upto;   /* standard ones: the highest "sent" a
				  * delivery saw at its start */
};

/* What the waker does for a thread's untimed wait. */
enum { R_NONE, R_COND, R_SEM, R_PIPE, R_FUTEX, R_MUTEX, R_RDLOCK, R_WRLOCK };
/* What the signaller sends to end a thread's signal wait. */
enum { SW_NONE, SW_H, SW_B };

enum role { ROLE_MIX, ROLE_WAKER, ROLE_SIGNALLER, ROLE_WRITER, ROLE_DEAF };

#define NCORO 3

struct forker;

struct counts {
	uint64_t ops, eintr_h, eintr_doc, eintr_left, jumps, cancels, churned, coro_switches,
		 sigwaited, owner_deaths;
};

struct sib {
	int idx;
	enum role role;
	pthread_t th;
	_Atomic pid_t tid;
	_Atomic int started, done;
	bool has[NKINDS];
	int kind[4], nkinds;
	bool open, fill, jumps, alt, cforker;
	char kstr[160];
	uint64_t rng;
	size_t stack_size;
	sigset_t mask;                     /* its normal mask */
	_Atomic(const char *) op;          /* what it does now */
	_Atomic uint64_t progress;
	_Atomic unsigned hruns;            /* program handlers run on it */
	volatile sig_atomic_t in_handler;
	volatile sig_atomic_t hdepth;      /* our handler bodies running */
	struct counts cnt;
	_Atomic uint64_t timer_hits;

	/* signals */
	pthread_mutex_t siglock;
	bool sigclosed;                    /* under siglock: send no more */
	struct acct acct[NSLOT];
	uint64_t snap[NSLOT];              /* at the last checkpoint */
	_Atomic int swait;                 /* SW_*: in a signal wait */
	uint64_t swait_due, swait_sent;

	/* untimed waits the waker ends */
	_Atomic int rq;
	uint64_t rq_due;
	_Atomic int held;
	bool rq_held;                      /* the waker's own */
	pthread_mutex_t m;
	pthread_cond_t c;
	int flag;
	pthread_mutex_t mt;
	pthread_cond_t ct;                 /* never signalled */
	clockid_t ct_clock;
	sem_t sem, semt;
	pthread_mutex_t cm;
	pthread_rwlock_t rw;
	int pipe[2], ep, epdead;
	_Atomic uint32_t fword;
	uint32_t fdead;
	int sfd;

	/* jumps */
	sigjmp_buf senv;
	jmp_buf env;
	volatile sig_atomic_t armed;
	bool jmp_plain;
	uintptr_t jmp_sp;                  /* the frame a jump goes back to */
	timer_t timer;
	bool has_timer;

	uintptr_t stk_lo, stk_hi;          /* its thread stack */

	/* The last handler runs, for the report of a lost signal. */
	struct hev {
		uint8_t sig, depth, armed, what;
		uint32_t value;
		uintptr_t ip, ret;
		uint64_t ns;
	} ev[32];
	unsigned nev;

	/* alternate stack, coroutines */
	void *altstack;
	size_t altsize;
	ucontext_t co_main, co[NCORO];
	void *co_stack[NCORO];
	size_t co_size[NCORO];
	int nco, co_cur;

	struct forker *forker;
	uint64_t run0, wait0;              /* schedstat before main's cfork */
};

static struct sib *sibs;
static int nsibs, nmix;             /* all of them; the mix comes first */
static __thread struct sib *me;
static pid_t mypid;

static _Atomic int stop_mix, stop_helpers;
static _Atomic int cur_cfork = -1;
static _Atomic int nviol;
static int deadpipe[2];              /* never written */
static const char *module;           /* for dlopen */

static pthread_mutex_t pi_m, robust_m;
static _Atomic uint64_t deaths_made, deaths_seen;

#ifdef HAVE_URING
static struct pinned pin;
#endif
static bool pin_ok;

/* Shared with the watchdog process. */
struct shared {
	_Atomic uint64_t beat;
	_Atomic int cfork;
	char phase[64];
};
static struct shared *shm;

static void beat(const char *phase)
{
	if (!shm)
		return;
	atomic_fetch_add_explicit(&shm->beat, 1, memory_order_relaxed);
	if (phase) {
		strncpy(shm->phase, phase, sizeof shm->phase - 1);
		atomic_store(&shm->cfork, atomic_load(&cur_cfork));
	}
}

/* Violations ------------------------------------------------------------- */

static void describe_thread(FILE *f, const struct sib *t)
{
	static const char *const roles[] = { "mix", "waker", "signaller",
					     "writer", "deaf" };
	const char *op = atomic_load(&t->op);
	fprintf(f, "thread %d (tid %d, %s%s%s) in %s", t->idx,
		(int)atomic_load(&t->tid), roles[t->role],
		t->role == ROLE_MIX ? ": " : "",
		t->role == ROLE_MIX ? t->kstr : "", op ? op : "-");
}

static uint64_t cforks_done(void);

static void fail_exit(void)
{
	fprintf(stderr, "torture: seed %" PRIu64 ": FAILED at cfork %d (%" PRIu64
		" cforks done); replay: %s\n", seed, atomic_load(&cur_cfork),
		cforks_done(), replay);
	fflush(stdout);
	_exit(T_FAIL);
}

/* One failed invariant: printed with the seed and the cfork index; the
 * run ends there unless -c.  t: the thread concerned, or NULL. */
static void __attribute__((format(printf, 2, 3)))
violation(const struct sib *t, const char *fmt, ...)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&lock);
	int n = atomic_fetch_add(&nviol, 1);
	if (n < 20) {
		char msg[1024];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		fprintf(stderr, "torture: VIOLATION: seed %" PRIu64 ", cfork %d: ",
			seed, atomic_load(&cur_cfork));
		if (t) {
			describe_thread(stderr, t);
			fputs(": ", stderr);
		}
		fprintf(stderr, "%s\n", msg);
		uint64_t js = atomic_load(&jumps_stub), jh = atomic_load(&jumps_held);
		if (js)
			fprintf(stderr, "  note: %" PRIu64 " jumps out of handlers "
				"so far crossed libcfork's return stub (a known "
				"bug: leaks cf_hot.users)\n", js);
		uint64_t cs = atomic_load(&cancels_stub);
		if (cs)
			fprintf(stderr, "  note: %" PRIu64 " cancellations so far "
				"unwound through libcfork's return stub (the "
				"known leak of cf_hot.users, by cancellation)\n",
				cs);
		uint64_t ch = atomic_load(&cancels_handler);
		if (ch)
			fprintf(stderr, "  note: %" PRIu64 " cancellations so far "
				"unwound through libcfork's signal handler (before "
				"it parks, that leaks cf_hot.users)\n", ch);
		if (jh)
			fprintf(stderr, "  note: %" PRIu64 " jumps out of handlers "
				"so far crossed a program handler held by "
				"libcfork's trampoline (it never runs)\n", jh);
	}
	if (!cont)
		fail_exit();
	pthread_mutex_unlock(&lock);
}

/* What handlers find goes through here: they may not print. */
enum { HV_NOSIB = 1, HV_UNSENT, HV_ORDER, HV_CODE, HV_RTB };
static const char *const hv_what[] = {
	"", "a program handler ran on a thread that was sent nothing",
	"a handler ran more often than its signal was sent",
	"a queued signal arrived out of order or twice (value, expected)",
	"a signal arrived with a wrong si_code or sender (code, pid)",
	"SIGRTMIN+3 reached a handler: it is blocked everywhere",
};
struct hv {
	_Atomic int code;
	int tidx, sig, from;
	long a, b;
};
enum { FROM_HANDLER, FROM_DRAIN, FROM_SIGWAIT, FROM_SIGNALFD };
static const char *const from_name[] = { "handler", "drain at exit",
					 "sigwait", "signalfd" };
static struct hv hvs[16];
static _Atomic int nhv;
static int hv_reported;

static void hviol(const struct sib *t, int code, int sig, int from, long a,
		  long b)
{
	int i = atomic_fetch_add(&nhv, 1);
	if (i >= 16)
		return;
	hvs[i].tidx = t ? t->idx : -1;
	hvs[i].sig = sig;
	hvs[i].from = from;
	hvs[i].a = a;
	hvs[i].b = b;
	atomic_store_explicit(&hvs[i].code, code, memory_order_release);
}

static void print_events(const struct sib *t)
{
	unsigned n = t->nev;
	fprintf(stderr, "  its last program handler runs (sig value depth armed "
		"jumped; interrupted at; return address there):\n");
	for (unsigned i = n > 32 ? n - 32 : 0; i < n; i++) {
		const struct hev *e = &t->ev[i % 32];
		char a[160], b[160];
		t_symbol(a, sizeof a, e->ip);
		t_symbol(b, sizeof b, e->ret);
		fprintf(stderr, "    %.3f ms: %d %u %u %u %s; %s; %s\n",
			(double)(e->ns % 100000000000u) / 1e6, e->sig, e->value,
			e->depth, e->armed,
			e->what ? (e->what > 1 ? "jumped(crossing)" : "jumped")
				: "-", a, b);
	}
}

static void check_hv(void)
{
	int n = atomic_load(&nhv);
	for (; hv_reported < n && hv_reported < 16; hv_reported++) {
		struct hv *h = &hvs[hv_reported];
		while (!atomic_load_explicit(&h->code, memory_order_acquire))
			sched_yield();
		if (h->tidx >= 0 && atomic_load(&h->code) == HV_ORDER)
			print_events(&sibs[h->tidx]);
		violation(h->tidx >= 0 ? &sibs[h->tidx] : NULL,
			  "signal %d, seen by %s: %s (%ld, %ld); main pid %d",
			  h->sig, from_name[h->from],
			  hv_what[atomic_load(&h->code)], h->a, h->b,
			  (int)mypid);
	}
}

/* Jumps that cross libcfork's code --------------------------------------- */

/* From libcfork's symbol table: its return stub (a thread there holds a
 * count that a jump out leaks: every later quiesce then waits a second
 * for it), and the two waits of its trampoline before a program handler
 * (a handler held there that a nested handler jumps over never runs). */
static uintptr_t stub_lo[2], stub_hi[2], held_ret[2];
static uintptr_t handler_lo, handler_hi;   /* libcfork's signal handler */
static uintptr_t restorer;       /* the return address of a signal frame */
/* libcfork's cf_hot (lib/internal.h): its fifth word counts the handlers
 * that use the thread table, which every quiesce first waits (up to a
 * second) to see at zero. */
static const _Atomic uint32_t *cf_hot_words;
static int cfork_signo;
static bool know_lib;

static void find_lib_symbols(void)
{
	Dl_info di;
	if (!dladdr((void *)cfork, &di) || !di.dli_fname)
		return;
	int fd = open(di.dli_fname, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	const unsigned char *f = mmap(NULL, (size_t)st.st_size, PROT_READ,
				      MAP_PRIVATE, fd, 0);
	close(fd);
	if (f == MAP_FAILED)
		return;
	uintptr_t base = (uintptr_t)di.dli_fbase;
	uintptr_t call_held = 0, call_held_size = 0, park_hold = 0,
		  restart_hold = 0;
	const Elf64_Ehdr *eh = (const void *)f;
	const Elf64_Shdr *sh = (const void *)(f + eh->e_shoff);
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_SYMTAB)
			continue;
		const Elf64_Sym *sym = (const void *)(f + sh[i].sh_offset);
		const char *str = (const char *)(f + sh[sh[i].sh_link].sh_offset);
		for (size_t k = 0; k < sh[i].sh_size / sizeof *sym; k++) {
			const char *n = str + sym[k].st_name;
			uintptr_t v = base + sym[k].st_value;
			if (!strcmp(n, "cf_stub_arrive")) {
				stub_lo[0] = v;
				stub_hi[0] = v + sym[k].st_size;
			} else if (!strcmp(n, "cf_stub_begin"))
				stub_lo[1] = v;
			else if (!strcmp(n, "cf_stub_end"))
				stub_hi[1] = v;
			else if (!strcmp(n, "call_held")) {
				call_held = v;
				call_held_size = sym[k].st_size;
			} else if (!strcmp(n, "cf_park_hold"))
				park_hold = v;
			else if (!strcmp(n, "cf_restart_hold"))
				restart_hold = v;
			else if (!strcmp(n, "handler") &&
				 ELF64_ST_TYPE(sym[k].st_info) == STT_FUNC) {
				handler_lo = v;
				handler_hi = v + sym[k].st_size;
			} else if (!strcmp(n, "cf_hot") && sym[k].st_size >= 20)
				cf_hot_words = (const _Atomic uint32_t *)v;
		}
	}
	munmap((void *)f, (size_t)st.st_size);
	/* The return addresses of call_held's two calls that wait. */
	const unsigned char *c = (const unsigned char *)call_held;
	for (uintptr_t i = 0; c && i + 5 <= call_held_size; i++) {
		int32_t rel;
		if (c[i] != 0xe8)
			continue;
		memcpy(&rel, c + i + 1, 4);
		uintptr_t to = (uintptr_t)(c + i + 5) + (uintptr_t)(intptr_t)rel;
		if (to == park_hold)
			held_ret[0] = (uintptr_t)(c + i + 5);
		else if (to == restart_hold)
			held_ret[1] = (uintptr_t)(c + i + 5);
	}
	/* Signal frames: what the kernel pushes as their return address. */
	struct { void *handler; unsigned long flags; void *restorer;
		 uint64_t mask; } k;
	if (syscall(SYS_rt_sigaction, slot_sig[S_USR1], NULL, &k, 8) == 0)
		restorer = (uintptr_t)k.restorer;
	know_lib = stub_lo[0] && stub_hi[1] && held_ret[0] && held_ret[1] &&
		   restorer;
}

static bool in_stub(uintptr_t a)
{
	return (a >= stub_lo[0] && a < stub_hi[0]) ||
	       (a >= stub_lo[1] && a < stub_hi[1]);
}

/* Where the stack that sp is on ends, or 0 if unknown. */
static uintptr_t stack_end(const struct sib *t, uintptr_t sp)
{
	if (t->altstack && sp >= (uintptr_t)t->altstack &&
	    sp < (uintptr_t)t->altstack + t->altsize)
		return (uintptr_t)t->altstack + t->altsize;
	for (int k = 0; k < t->nco; k++) {
		uintptr_t lo = (uintptr_t)t->co_stack[k] + 4096;
		if (sp >= lo && sp < lo + t->co_size[k])
			return lo + t->co_size[k];
	}
	if (sp >= t->stk_lo && sp < t->stk_hi)
		return t->stk_hi;
	return 0;
}

/* A word of a thread's stack, live or dead: not checked by AddressSanitizer,
 * which poisons the redzones and dead frames that these scans read. */
__attribute__((no_sanitize_address))
static uintptr_t peek(uintptr_t a)
{
	return *(const volatile uintptr_t *)a;
}

/* What a jump from a handler that interrupted ctx would cross: the stub
 * (AVOID_STUB), a program handler held by the trampoline (AVOID_HELD), or
 * any other signal frame of the program's (X_FRAME: a handler that has
 * not started or not finished, whose signal the jump would lose, as it
 * would without libcfork).  Read from the interrupted stack, up to the
 * jump's target: the return addresses on it. */
enum { X_FRAME = 4 };
static unsigned jump_crosses(const struct sib *t, const void *ctx,
			     int *held_sig)
{
	if (!know_lib)
		return 0;
	const ucontext_t *uc = ctx;
	uintptr_t ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP] & ~7ul;
	unsigned r = in_stub(ip) ? AVOID_STUB : 0;
	uintptr_t end = stack_end(t, sp);
	if (t->jmp_sp > sp && t->jmp_sp < end)
		end = t->jmp_sp;                /* up to the jump's target */
	if (end > sp + 65536)
		end = sp + 65536;
	bool held = false;
	bool first = true;              /* no signal frame seen yet */
	for (uintptr_t p = sp; p + 8 <= end; p += 8) {
		uintptr_t w = peek(p);
		if (in_stub(w))
			r |= AVOID_STUB;
		if (w == held_ret[0] || w == held_ret[1])
			held = true;
		/* The kernel's rt_sigframe: return address, ucontext (304
		 * bytes), then siginfo. */
		if (w != restorer || p + 320 > end)
			continue;
		int sig = (int)(uint32_t)peek(p + 312);
		/* The held handler's own frame is the next one up, and the
		 * first: a hold blocks every signal, so no frame (libcfork's
		 * handler parked on top of a program's that has not started,
		 * say) lies below one.  A word that looks like a hold's below
		 * a later frame was left by an earlier hold at that depth. */
		if (held && first && sig != cfork_signo) {
			r |= AVOID_HELD;
			*held_sig = sig;
		}
		first = false;
		if (sig != cfork_signo)
			r |= X_FRAME;
	}
	return r;
}

/* Signals: accounting, the handler --------------------------------------- */

/* A delivery of slot s to t, by its handler or a sigwait or signalfd:
 * checked against what was sent. */
static void account(struct sib *t, int s, int from, int code, pid_t pid,
		    uint64_t value, bool has_value)
{
	struct acct *a = &t->acct[s];
	uint64_t sent = atomic_load(&a->sent);
	uint64_t r = atomic_fetch_add(&a->recv, 1) + 1;
	if (r > sent)
		hviol(t, HV_UNSENT, slot_sig[s], from, (long)r, (long)sent);
	if (slot_rt(s)) {
		if (code != SI_QUEUE || pid != mypid)
			hviol(t, HV_CODE, slot_sig[s], from, code, pid);
		else if (has_value && value != r)
			hviol(t, HV_ORDER, slot_sig[s], from, (long)value, (long)r);
	} else {
		/* glibc's sigtimedwait and sigwaitinfo fold SI_TKILL into
		 * SI_USER (tkill is what raise uses). */
		if ((code != SI_TKILL &&
		     (code != SI_USER || from == FROM_HANDLER)) || pid != mypid)
			hviol(t, HV_CODE, slot_sig[s], from, code, pid);
		uint64_t u = atomic_load(&a->upto);
		while (u < sent &&
		       !atomic_compare_exchange_weak(&a->upto, &u, sent))
			;
	}
}

static void spin_for(uint64_t ns)
{
	for (uint64_t end = mono() + ns; mono() < end;)
		;
}

/* Every program signal of the mix comes here. */
static void on_signal(int sig, siginfo_t *si, void *ctx)
{
	int saved = errno;
	struct sib *t = me;
	int s = slot_of(sig);
	if (!t) {
		hviol(NULL, HV_NOSIB, sig, FROM_HANDLER, 0, 0);
		errno = saved;
		return;
	}
	/* Blocking every signal, this handler may not be stopped inside
	 * (the child checks that none is half done): libcfork keeps its own
	 * signal out of sa_mask, so the handler blocks it here. */
	if (h_fill)
		syscall(SYS_rt_sigprocmask, SIG_BLOCK, &cfork_sig_bit, NULL, 8);
	t->hdepth++;
	t->in_handler = 1;
	atomic_fetch_add(&t->hruns, 1);
	if (sig == sig_rtt)
		atomic_fetch_add(&t->timer_hits, 1);
	else if (s == S_RTB)
		hviol(t, HV_RTB, sig, FROM_HANDLER, 0, 0);
	else if (s >= 0)
		account(t, s, FROM_HANDLER, si->si_code, si->si_pid,
			(uint64_t)(uintptr_t)si->si_value.sival_ptr, true);
	uint64_t spin = s == S_RTS ? alt_spin_ns : h_spin_ns;
	if (spin)
		spin_for(spin);
	/* A jump out of a handler nested on another one's body would leave
	 * that one half done: only from the outermost. */
	const ucontext_t *uc = ctx;
	/* jump_crosses reads signal frames as the kernel lays them out */
	if ((uintptr_t)si - (uintptr_t)ctx != 304)
		know_lib = false;
	struct hev *e = &t->ev[t->nev++ % 32];
	*e = (struct hev){ (uint8_t)sig, (uint8_t)t->hdepth, (uint8_t)t->armed,
			   0, (uint32_t)(uintptr_t)si->si_value.sival_ptr,
			   (uintptr_t)uc->uc_mcontext.gregs[REG_RIP],
			   peek((uintptr_t)uc->uc_mcontext.gregs[REG_RSP]),
			   mono() };
	unsigned x = 0;
	bool jump = (s == S_RTJ || sig == sig_rtt) && t->armed &&
		    t->hdepth == 1;
	if (jump) {
		int held_sig = 0;
		x = jump_crosses(t, ctx, &held_sig);
		/* A jump over a held handler would lose its signal, which
		 * the accounting finds; the stack scan that says so may also
		 * read a stale word, so it only counts. */
		(void)held_sig;
		if (x & avoid & AVOID_STUB)
			atomic_fetch_add(&withheld_stub, 1);
		else if (x & avoid & AVOID_HELD)
			atomic_fetch_add(&withheld_held, 1);
		else if ((x & (X_FRAME | AVOID_HELD)) == X_FRAME)
			atomic_fetch_add(&withheld_frame, 1);
		else
			goto jump_out;
		jump = false;
	}
	if (jump) {
jump_out:
		e->what = 1 + (uint8_t)x;
		if (x & AVOID_STUB)
			atomic_fetch_add(&jumps_stub, 1);
		if (x & AVOID_HELD)
			atomic_fetch_add(&jumps_held, 1);
		t->armed = 0;
		t->in_handler = 0;
		t->hdepth--;
		errno = saved;
		if (t->jmp_plain)
			longjmp(t->env, 1);
		siglongjmp(t->senv, 1);
	}
	t->in_handler = t->hdepth > 1;
	t->hdepth--;
	errno = saved;
}

static void install_handlers(void)
{
	struct cfork_config cc;
	CHECK(cfork_getconfig(&cc, sizeof cc) == 0);
	cfork_sig_bit = 1ull << (cc.signo - 1);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_signal;
	if (h_fill)
		sigfillset(&sa.sa_mask);
	else
		sigemptyset(&sa.sa_mask);
	for (int s = 0; s < NSLOT; s++) {
		sa.sa_flags = SA_SIGINFO | (h_restart ? SA_RESTART : 0) |
			      (s == S_RTS ? SA_ONSTACK : 0);
		CHECK(sigaction(slot_sig[s], &sa, NULL) == 0);
	}
	sa.sa_flags = SA_SIGINFO | (h_restart ? SA_RESTART : 0);
	CHECK(sigaction(sig_rtt, &sa, NULL) == 0);
}

static bool handler_ran(const struct sib *t, unsigned h0)
{
	return atomic_load(&t->hruns) != h0;
}

/* Sends slot s to t, counted; false when t takes no more or has enough
 * queued already (queued signals count against RLIMIT_SIGPENDING). */
static bool send_sig(struct sib *t, int s, uint64_t *rng)
{
	bool sent = false;
	if (!atomic_load(&t->started))
		return false;
	pthread_mutex_lock(&t->siglock);
	struct acct *a = &t->acct[s];
	if (t->sigclosed ||
	    (slot_rt(s) && atomic_load(&a->sent) - atomic_load(&a->recv) >= 8))
		goto out;
	uint64_t seq = atomic_fetch_add(&a->sent, 1) + 1;
	int r;
	if (slot_rt(s)) {
		union sigval v = { .sival_ptr = (void *)(uintptr_t)seq };
		if (rnd(rng, 4) == 0) {
			siginfo_t si;
			memset(&si, 0, sizeof si);
			si.si_signo = slot_sig[s];
			si.si_code = SI_QUEUE;
			si.si_pid = mypid;
			si.si_uid = getuid();
			si.si_value = v;
			r = syscall(SYS_rt_tgsigqueueinfo, mypid,
				    atomic_load(&t->tid), slot_sig[s], &si)
				    ? errno : 0;
		} else
			r = pthread_sigqueue(t->th, slot_sig[s], v);
	} else if (rnd(rng, 2))
		r = pthread_kill(t->th, slot_sig[s]);
	else
		r = syscall(SYS_tgkill, mypid, atomic_load(&t->tid),
			    slot_sig[s]) ? errno : 0;
	if (r) {
		atomic_fetch_sub(&a->sent, 1);
		if (r != EAGAIN)
			violation(t, "sending %s failed: %s", slot_name[s],
				  strerror(r));
	} else
		sent = true;
out:
	pthread_mutex_unlock(&t->siglock);
	return sent;
}

/* The slots the signaller may send t at any time: each can be taken. */
static unsigned eligible(const struct sib *t)
{
	unsigned m = 0;
	if (t->role != ROLE_MIX || t->cforker)
		return 0;
	if (t->open || t->has[K_SIGSUSPEND])
		m |= 1u << S_USR1 | 1u << S_USR2 | 1u << S_RTA;
	if (t->has[K_SIGWAIT] || t->has[K_SIGNALFD])
		m |= 1u << S_RTB;
	if (t->jumps)
		m |= 1u << S_RTJ;
	if (t->alt)
		m |= 1u << S_RTS;
	return m;
}

/* A thread leaving: no more sends, then whatever is still pending is
 * taken with sigtimedwait and counted like a delivery. */
static void drain(struct sib *t)
{
	pthread_mutex_lock(&t->siglock);
	t->sigclosed = true;
	pthread_mutex_unlock(&t->siglock);
	pthread_sigmask(SIG_BLOCK, &prog_set, NULL);
	struct timespec zero = { 0, 0 };
	siginfo_t si;
	int sig;
	while ((sig = sigtimedwait(&prog_set, &si, &zero)) > 0) {
		int s = slot_of(sig);
		if (sig == sig_rtt)
			continue;
		if (s < 0) {
			violation(t, "drained signal %d, never sent", sig);
			continue;
		}
		account(t, s, FROM_DRAIN, si.si_code, si.si_pid,
			(uint64_t)(uintptr_t)si.si_value.sival_ptr, true);
	}
}

/* Checks of a sibling's calls -------------------------------------------- */

static void set_op(struct sib *t, const char *op)
{
	atomic_store_explicit(&t->op, op, memory_order_relaxed);
}

/* A timeout: 0 sometimes, mostly short, now and then long enough to span
 * several cforks. */
static uint64_t pick_timeout(struct sib *t)
{
	unsigned r = (unsigned)rnd(&t->rng, 100);
	if (r < 5)
		return 0;
	if (r < 55)
		return rnd(&t->rng, 3000000);
	if (r < 90)
		return 3000000 + rnd(&t->rng, 17000000);
	return 20000000 + rnd(&t->rng, 80000000);
}

/* How long an untimed wait lasts before the waker or signaller ends it:
 * some long enough for several cforks to claim the thread asleep. */
static uint64_t pick_due(struct sib *t)
{
	unsigned r = (unsigned)rnd(&t->rng, 100);
	if (r < 40)
		return rnd(&t->rng, 1000000);
	if (r < 75)
		return 1000000 + rnd(&t->rng, 9000000);
	if (r < 95)
		return 10000000 + rnd(&t->rng, 50000000);
	return 60000000 + rnd(&t->rng, 240000000);
}

/* libcfork continues no call of a thread whose earlier continued call was
 * left by a jump out of a handler, while that call's frame still holds
 * the mark it put there (libcfork(7), "System calls in progress": such a
 * call fails with EINTR).  The mark is lib/restart.c's mark_of(its own
 * address); is one left on this thread's stacks? */
static bool mark_left(const struct sib *t)
{
	uintptr_t lo[1 + NCORO], hi[1 + NCORO];
	int n = 0;
	if (t->stk_hi) {
		hi[n] = t->stk_hi;
		lo[n++] = t->stk_hi - 262144 > t->stk_lo ? t->stk_hi - 262144
							 : t->stk_lo + 4096;
	}
	for (int k = 0; k < t->nco; k++, n++) {
		lo[n] = (uintptr_t)t->co_stack[k] + 4096;
		hi[n] = lo[n] + t->co_size[k];
	}
	/* No call of the thread's is on now (a finished one clears its
	 * mark): any mark found, live frame or dead, was left. */
	for (int k = 0; k < n; k++)
		for (uintptr_t p = lo[k]; p + 8 <= hi[k]; p += 8)
			if (peek(p) ==
			    ((p * 0x9e3779b97f4a7c15ull) ^ 0x5bd1e995u))
				return true;
	return false;
}

/* An EINTR with no program handler run: a violation, unless it is the
 * documented case above (counted apart). */
static bool eintr_explained(struct sib *t)
{
	if (t->cnt.jumps && mark_left(t)) {
		t->cnt.eintr_left++;
		return true;
	}
	return false;
}

/* A call that waits until deadline (on clk) unless a program handler
 * interrupts it.  timed_out: it says it reached its timeout; err: its
 * error otherwise. */
static void check_timed(struct sib *t, const char *what, bool timed_out,
			int err, clockid_t clk, uint64_t deadline, unsigned h0)
{
	if (timed_out) {
		uint64_t n = ns_now(clk);
		if (n < deadline)
			violation(t, "%s returned %.3f ms before its deadline",
				  what, (double)(deadline - n) / 1e6);
		return;
	}
	if (err == EINTR) {
		if (handler_ran(t, h0))
			t->cnt.eintr_h++;
		else if (!eintr_explained(t))
			violation(t, "%s failed with EINTR, and no program "
				  "handler ran on the thread", what);
		return;
	}
	violation(t, "%s: unexpected result: %s", what, strerror(err));
}

/* An untimed call's EINTR: only after a program handler.  Returns true to
 * call again. */
static bool retry_eintr(struct sib *t, const char *what, int err,
			unsigned h0)
{
	if (err != EINTR) {
		violation(t, "%s: unexpected result: %s", what, strerror(err));
		return false;
	}
	if (handler_ran(t, h0))
		t->cnt.eintr_h++;
	else if (!eintr_explained(t))
		violation(t, "%s failed with EINTR, and no program handler "
			  "ran on the thread", what);
	return true;
}

/* Waits (a generous while at most) for something another thread does. */
static void wait_for(struct sib *t, _Atomic int *p, int v, const char *what)
{
	uint64_t end = mono() + 10000000000u;
	for (unsigned i = 0; atomic_load(p) != v; i++) {
		if (mono() > end) {
			violation(t, "%s did not come in 10 s", what);
			return;
		}
		if (i < 100)
			sched_yield();
		else
			nap_ns(100000);
	}
}

/* Asks the waker to end an untimed wait of kind k in due ns. */
static void request_in(struct sib *t, int k, uint64_t due)
{
	wait_for(t, &t->rq, R_NONE, "the waker's last service");
	t->rq_due = mono() + due;
	atomic_store_explicit(&t->rq, k, memory_order_release);
}

static void request(struct sib *t, int k)
{
	request_in(t, k, pick_due(t));
}

static struct timespec abs_in(clockid_t c, uint64_t rel, uint64_t *deadline)
{
	*deadline = ns_now(c) + rel;
	return ts_of(*deadline);
}

static const clockid_t clocks3[] = { CLOCK_MONOTONIC, CLOCK_REALTIME,
				     CLOCK_BOOTTIME };

/* The operations ---------------------------------------------------------- */

static void op_cond(struct sib *t)
{
	uint64_t dl;
	int r;
	switch (rnd(&t->rng, 3)) {
	case 0:
		set_op(t, "pthread_cond_wait");
		pthread_mutex_lock(&t->m);
		request(t, R_COND);
		while (!t->flag)
			pthread_cond_wait(&t->c, &t->m);
		t->flag = 0;
		pthread_mutex_unlock(&t->m);
		return;
	case 1: {
		set_op(t, "pthread_cond_timedwait");
		struct timespec ts = abs_in(t->ct_clock, pick_timeout(t), &dl);
		pthread_mutex_lock(&t->mt);
		unsigned h0 = atomic_load(&t->hruns);
		r = pthread_cond_timedwait(&t->ct, &t->mt, &ts);
		pthread_mutex_unlock(&t->mt);
		if (r == 0 && ns_now(t->ct_clock) < dl)
			violation(t, "pthread_cond_timedwait returned 0 before "
				  "its deadline; nobody signals it");
		else if (r != 0)
			check_timed(t, "pthread_cond_timedwait", r == ETIMEDOUT,
				    r, t->ct_clock, dl, h0);
		return;
	}
	default: {
		set_op(t, "pthread_cond_clockwait");
		clockid_t c = rnd(&t->rng, 2) ? CLOCK_MONOTONIC : CLOCK_REALTIME;
		struct timespec ts = abs_in(c, pick_timeout(t), &dl);
		pthread_mutex_lock(&t->mt);
		unsigned h0 = atomic_load(&t->hruns);
		r = pthread_cond_clockwait(&t->ct, &t->mt, c, &ts);
		pthread_mutex_unlock(&t->mt);
		if (r == 0 && ns_now(c) < dl)
			violation(t, "pthread_cond_clockwait returned 0 before "
				  "its deadline; nobody signals it");
		else if (r != 0)
			check_timed(t, "pthread_cond_clockwait", r == ETIMEDOUT,
				    r, c, dl, h0);
		return;
	}
	}
}

static void op_sem(struct sib *t)
{
	uint64_t dl;
	unsigned h0;
	int r;
	switch (rnd(&t->rng, 4)) {
	case 0:
		set_op(t, "sem_wait");
		request(t, R_SEM);
		for (;;) {
			h0 = atomic_load(&t->hruns);
			if (sem_wait(&t->sem) == 0 ||
			    !retry_eintr(t, "sem_wait", errno, h0))
				break;
		}
		return;
	case 1: {
		set_op(t, "sem_timedwait");
		struct timespec ts = abs_in(CLOCK_REALTIME, pick_timeout(t), &dl);
		h0 = atomic_load(&t->hruns);
		r = sem_timedwait(&t->semt, &ts);
		if (r == 0)
			violation(t, "sem_timedwait: got a semaphore nobody posts");
		else
			check_timed(t, "sem_timedwait", errno == ETIMEDOUT,
				    errno, CLOCK_REALTIME, dl, h0);
		return;
	}
	case 2: {
		set_op(t, "sem_clockwait");
		struct timespec ts = abs_in(CLOCK_MONOTONIC, pick_timeout(t), &dl);
		h0 = atomic_load(&t->hruns);
		r = sem_clockwait(&t->semt, CLOCK_MONOTONIC, &ts);
		if (r == 0)
			violation(t, "sem_clockwait: got a semaphore nobody posts");
		else
			check_timed(t, "sem_clockwait", errno == ETIMEDOUT,
				    errno, CLOCK_MONOTONIC, dl, h0);
		return;
	}
	default:
		set_op(t, "sem_trywait");
		if (sem_trywait(&t->semt) == 0 || errno != EAGAIN)
			violation(t, "sem_trywait: %s", strerror(errno));
		return;
	}
}

/* The waker holds t's lock until the due time; t waits for it, untimed or
 * past a deadline that comes first. */
static void op_mutex(struct sib *t)
{
	uint64_t dl;
	int v = (int)rnd(&t->rng, 3), r;
	/* Timed: the deadline is set first, and the waker lets go 3 ms
	 * after it. */
	uint64_t T = pick_timeout(t);
	clockid_t c = v == 1 ? CLOCK_REALTIME : CLOCK_MONOTONIC;
	struct timespec ts = abs_in(c, T, &dl);
	atomic_store(&t->held, 0);
	request_in(t, R_MUTEX, v ? T + 3000000 : pick_due(t));
	wait_for(t, &t->held, 1, "the waker's lock");
	if (v == 0) {
		set_op(t, "pthread_mutex_lock (contended)");
		r = pthread_mutex_lock(&t->cm);
		if (r)
			violation(t, "pthread_mutex_lock: %s", strerror(r));
		else
			pthread_mutex_unlock(&t->cm);
		return;
	}
	unsigned h0 = atomic_load(&t->hruns);
	set_op(t, v == 1 ? "pthread_mutex_timedlock" : "pthread_mutex_clocklock");
	r = v == 1 ? pthread_mutex_timedlock(&t->cm, &ts)
		   : pthread_mutex_clocklock(&t->cm, c, &ts);
	if (r == 0) {
		if (ns_now(c) < dl)
			violation(t, "%s took a lock the waker held, before "
				  "its deadline", atomic_load(&t->op));
		pthread_mutex_unlock(&t->cm);
	} else
		check_timed(t, atomic_load(&t->op), r == ETIMEDOUT, r, c, dl,
			    h0);
}

static void op_rwlock(struct sib *t)
{
	uint64_t dl;
	bool wr = rnd(&t->rng, 2);        /* this thread writes */
	bool timed = rnd(&t->rng, 2);
	int r;
	uint64_t T = pick_timeout(t);
	struct timespec ts = abs_in(CLOCK_REALTIME, T, &dl);
	atomic_store(&t->held, 0);
	request_in(t, wr ? R_RDLOCK : R_WRLOCK,
		   timed ? T + 3000000 : pick_due(t));
	wait_for(t, &t->held, 1, "the waker's rwlock");
	if (!timed) {
		set_op(t, wr ? "pthread_rwlock_wrlock" : "pthread_rwlock_rdlock");
		r = wr ? pthread_rwlock_wrlock(&t->rw)
		       : pthread_rwlock_rdlock(&t->rw);
		if (r)
			violation(t, "%s: %s", atomic_load(&t->op), strerror(r));
		else
			pthread_rwlock_unlock(&t->rw);
		return;
	}
	unsigned h0 = atomic_load(&t->hruns);
	set_op(t, wr ? "pthread_rwlock_timedwrlock"
		     : "pthread_rwlock_timedrdlock");
	r = wr ? pthread_rwlock_timedwrlock(&t->rw, &ts)
	       : pthread_rwlock_timedrdlock(&t->rw, &ts);
	if (r == 0) {
		if (ns_now(CLOCK_REALTIME) < dl)
			violation(t, "%s took a lock the waker held, before "
				  "its deadline", atomic_load(&t->op));
		pthread_rwlock_unlock(&t->rw);
	} else
		check_timed(t, atomic_load(&t->op), r == ETIMEDOUT, r,
			    CLOCK_REALTIME, dl, h0);
}

/* A helper that sleeps a while, then meets a barrier or just exits. */
struct late {
	struct sib *t;
	uint64_t ns;
	pthread_barrier_t *b;
};

static void *late_helper(void *arg)
{
	struct late *l = arg;
	struct timespec ts = ts_of(l->ns);
	while (nanosleep(&ts, &ts) != 0)
		if (errno != EINTR) {
			violation(l->t, "helper's nanosleep: %s", strerror(errno));
			break;
		} else
			violation(l->t, "helper's nanosleep failed with EINTR; "
				  "nobody sends it signals");
	if (l->b)
		pthread_barrier_wait(l->b);
	return (void *)0x5eed;
}

static void op_barrier(struct sib *t)
{
	set_op(t, "pthread_barrier_wait");
	pthread_barrier_t b;
	pthread_barrier_init(&b, NULL, 2);
	struct late l = { t, pick_due(t), &b };
	pthread_t h;
	int r = pthread_create(&h, NULL, late_helper, &l);
	if (r) {
		violation(t, "pthread_create: %s", strerror(r));
		return;
	}
	pthread_barrier_wait(&b);
	pthread_join(h, NULL);
	pthread_barrier_destroy(&b);
	t->cnt.churned++;
}

static void op_join(struct sib *t)
{
	struct late l = { t, pick_due(t), NULL };
	pthread_t h;
	void *ret = NULL;
	int r = pthread_create(&h, NULL, late_helper, &l);
	if (r) {
		violation(t, "pthread_create: %s", strerror(r));
		return;
	}
	t->cnt.churned++;
	if (rnd(&t->rng, 2)) {
		uint64_t dl;
		set_op(t, "pthread_timedjoin_np");
		struct timespec ts = abs_in(CLOCK_REALTIME, pick_timeout(t), &dl);
		unsigned h0 = atomic_load(&t->hruns);
		r = pthread_timedjoin_np(h, &ret, &ts);
		if (r == 0)
			goto joined;
		check_timed(t, "pthread_timedjoin_np", r == ETIMEDOUT, r,
			    CLOCK_REALTIME, dl, h0);
	}
	set_op(t, "pthread_join");
	r = pthread_join(h, &ret);
	if (r)
		violation(t, "pthread_join: %s", strerror(r));
joined:
	if (ret != (void *)0x5eed)
		violation(t, "joined helper returned %p", ret);
}

static void op_nanosleep(struct sib *t)
{
	set_op(t, "nanosleep");
	uint64_t T = pick_timeout(t);
	struct timespec ts = ts_of(T), rem = { 0, 0 };
	uint64_t dl = mono() + T;
	unsigned h0 = atomic_load(&t->hruns);
	int r = nanosleep(&ts, &rem);
	int e = errno;
	check_timed(t, "nanosleep", r == 0, e, CLOCK_MONOTONIC, dl, h0);
	if (r && e == EINTR && ns_of(&rem) > T + slack_ns)
		violation(t, "nanosleep: %.3f ms left of %.3f ms",
			  (double)ns_of(&rem) / 1e6, (double)T / 1e6);
}

static void op_clocknano(struct sib *t)
{
	clockid_t c = clocks3[rnd(&t->rng, 3)];
	bool abs = rnd(&t->rng, 2);
	uint64_t T = pick_timeout(t), dl;
	struct timespec ts, rem = { 0, 0 };
	if (abs)
		ts = abs_in(c, T, &dl);
	else {
		ts = ts_of(T);
		dl = ns_now(c) + T;
	}
	set_op(t, abs ? "clock_nanosleep (absolute)"
		      : "clock_nanosleep (relative)");
	unsigned h0 = atomic_load(&t->hruns);
	int r = clock_nanosleep(c, abs ? TIMER_ABSTIME : 0, &ts, &rem);
	check_timed(t, atomic_load(&t->op), r == 0, r, c, dl, h0);
	if (r == EINTR && !abs && ns_of(&rem) > T + slack_ns)
		violation(t, "clock_nanosleep: %.3f ms left of %.3f ms",
			  (double)ns_of(&rem) / 1e6, (double)T / 1e6);
}

static void op_usleep(struct sib *t)
{
	set_op(t, "usleep");
	useconds_t us = (useconds_t)(pick_timeout(t) / 1000);
	uint64_t dl = mono() + (uint64_t)us * 1000;
	unsigned h0 = atomic_load(&t->hruns);
	int r = usleep(us);
	check_timed(t, "usleep", r == 0, errno, CLOCK_MONOTONIC, dl, h0);
}

/* The byte the waker wrote, once a multiplexer said it is there. */
static void take_byte(struct sib *t, const char *what)
{
	char c;
	if (read(t->pipe[0], &c, 1) != 1)
		violation(t, "%s said readable, read: %s", what,
			  strerror(errno));
}

/* An untimed wait on the waker's pipe through call(), which returns the
 * multiplexer's result. */
static void wait_pipe(struct sib *t, const char *what,
		      int (*call)(struct sib *))
{
	set_op(t, what);
	request(t, R_PIPE);
	for (;;) {
		unsigned h0 = atomic_load(&t->hruns);
		int r = call(t);
		if (r == 1) {
			take_byte(t, what);
			return;
		}
		if (r == 0) {
			violation(t, "%s without a timeout returned 0", what);
			return;
		}
		if (!retry_eintr(t, what, errno, h0))
			return;
	}
}

static int poll_pipe(struct sib *t)
{
	struct pollfd p = { t->pipe[0], POLLIN, 0 };
	return poll(&p, 1, -1);
}

static int ppoll_pipe(struct sib *t)
{
	struct pollfd p = { t->pipe[0], POLLIN, 0 };
	return ppoll(&p, 1, NULL, rnd(&t->rng, 2) ? &t->mask : NULL);
}

static int select_pipe(struct sib *t)
{
	fd_set r;
	FD_ZERO(&r);
	FD_SET(t->pipe[0], &r);
	return select(t->pipe[0] + 1, &r, NULL, NULL, NULL);
}

static int pselect_pipe(struct sib *t)
{
	fd_set r;
	FD_ZERO(&r);
	FD_SET(t->pipe[0], &r);
	return pselect(t->pipe[0] + 1, &r, NULL, NULL, NULL,
		       rnd(&t->rng, 2) ? &t->mask : NULL);
}

static int epoll_pipe(struct sib *t)
{
	struct epoll_event ev;
	switch (rnd(&t->rng, 3)) {
	case 0: return epoll_wait(t->ep, &ev, 1, -1);
	case 1: return epoll_pwait(t->ep, &ev, 1, -1, &t->mask);
	default: return epoll_pwait2(t->ep, &ev, 1, NULL, NULL);
	}
}

/* A timed multiplexer on nothing, or on a pipe nobody writes: returns 0
 * at its timeout. */
static void timed_mux(struct sib *t, const char *what, int r, int e,
		      uint64_t dl, unsigned h0)
{
	if (r > 0)
		violation(t, "%s: %d descriptors ready on a dead pipe", what, r);
	else
		check_timed(t, what, r == 0, e, CLOCK_MONOTONIC, dl, h0);
}

static void op_poll(struct sib *t)
{
	int v = (int)rnd(&t->rng, 4);
	if (v == 3) {
		wait_pipe(t, "poll (no timeout)", poll_pipe);
		return;
	}
	int ms = v == 2 ? 0 : (int)(pick_timeout(t) / 1000000);
	struct pollfd p = { deadpipe[0], POLLIN, 0 };
	set_op(t, v == 0 ? "poll (timeout)" : v == 1 ? "poll (dead pipe)"
						    : "poll (zero)");
	uint64_t dl = mono() + (uint64_t)ms * 1000000;
	unsigned h0 = atomic_load(&t->hruns);
	int r = v == 0 ? poll(NULL, 0, ms) : poll(&p, 1, ms);
	timed_mux(t, atomic_load(&t->op), r, errno, dl, h0);
}

static void op_ppoll(struct sib *t)
{
	if (rnd(&t->rng, 3) == 0) {
		wait_pipe(t, "ppoll (no timeout)", ppoll_pipe);
		return;
	}
	set_op(t, "ppoll (timeout)");
	uint64_t T = pick_timeout(t), dl = mono() + T;
	struct timespec ts = ts_of(T);
	struct pollfd p = { deadpipe[0], POLLIN, 0 };
	const sigset_t *m = rnd(&t->rng, 2) ? &t->mask : NULL;
	unsigned h0 = atomic_load(&t->hruns);
	int r = ppoll(&p, 1, &ts, m);
	timed_mux(t, "ppoll", r, errno, dl, h0);
}

static void op_select(struct sib *t)
{
	if (rnd(&t->rng, 3) == 0) {
		wait_pipe(t, "select (no timeout)", select_pipe);
		return;
	}
	set_op(t, "select (timeout)");
	uint64_t T = pick_timeout(t) / 1000 * 1000, dl = mono() + T;
	struct timeval tv = { (time_t)(T / 1000000000u),
			      (suseconds_t)(T % 1000000000u / 1000) };
	fd_set r;
	FD_ZERO(&r);
	FD_SET(deadpipe[0], &r);
	unsigned h0 = atomic_load(&t->hruns);
	int n = rnd(&t->rng, 2) ? select(deadpipe[0] + 1, &r, NULL, NULL, &tv)
				: select(0, NULL, NULL, NULL, &tv);
	timed_mux(t, "select", n, errno, dl, h0);
}

static void op_pselect(struct sib *t)
{
	if (rnd(&t->rng, 3) == 0) {
		wait_pipe(t, "pselect (no timeout)", pselect_pipe);
		return;
	}
	set_op(t, "pselect (timeout)");
	uint64_t T = pick_timeout(t), dl = mono() + T;
	struct timespec ts = ts_of(T);
	fd_set r;
	FD_ZERO(&r);
	FD_SET(deadpipe[0], &r);
	const sigset_t *m = rnd(&t->rng, 2) ? &t->mask : NULL;
	unsigned h0 = atomic_load(&t->hruns);
	int n = pselect(deadpipe[0] + 1, &r, NULL, NULL, &ts, m);
	timed_mux(t, "pselect", n, errno, dl, h0);
}

static void op_epoll(struct sib *t)
{
	if (rnd(&t->rng, 3) == 0) {
		wait_pipe(t, "epoll (no timeout)", epoll_pipe);
		return;
	}
	uint64_t T = pick_timeout(t);
	int ms = (int)(T / 1000000), v = (int)rnd(&t->rng, 3), r;
	struct epoll_event ev;
	struct timespec ts = ts_of(T);
	set_op(t, v == 0 ? "epoll_wait" : v == 1 ? "epoll_pwait" : "epoll_pwait2");
	uint64_t dl = mono() + (v == 2 ? T : (uint64_t)ms * 1000000);
	unsigned h0 = atomic_load(&t->hruns);
	if (v == 0)
		r = epoll_wait(t->epdead, &ev, 1, ms);
	else if (v == 1)
		r = epoll_pwait(t->epdead, &ev, 1, ms, &t->mask);
	else
		r = epoll_pwait2(t->epdead, &ev, 1, &ts, NULL);
	timed_mux(t, atomic_load(&t->op), r, errno, dl, h0);
}

static void op_read(struct sib *t)
{
	set_op(t, "read (pipe)");
	request(t, R_PIPE);
	for (;;) {
		char c;
		unsigned h0 = atomic_load(&t->hruns);
		ssize_t n = read(t->pipe[0], &c, 1);
		if (n == 1)
			return;
		if (n == 0) {
			violation(t, "read: end of file on the waker's pipe");
			return;
		}
		if (!retry_eintr(t, "read", errno, h0))
			return;
	}
}

/* A signal wait the signaller ends (SW_H: a handled signal, SW_B: the
 * sigwait one). */
static void want_signal(struct sib *t, int w)
{
	t->swait_due = mono() + pick_due(t);
	atomic_store_explicit(&t->swait, w, memory_order_release);
}

static void op_sigsuspend(struct sib *t)
{
	set_op(t, "sigsuspend");
	sigset_t m = t->mask;
	for (int s = S_USR1; s <= S_RTA; s++)
		sigdelset(&m, slot_sig[s]);
	unsigned h0 = atomic_load(&t->hruns);
	want_signal(t, SW_H);
	int r = sigsuspend(&m);
	int e = errno;
	atomic_store(&t->swait, SW_NONE);
	if (r != -1 || e != EINTR)
		violation(t, "sigsuspend returned %d (%s)", r, strerror(e));
	else if (!handler_ran(t, h0) && !eintr_explained(t))
		violation(t, "sigsuspend ended with no program handler run");
}

static void op_pause(struct sib *t)
{
	set_op(t, "pause");
	unsigned h0 = atomic_load(&t->hruns);
	want_signal(t, SW_H);
	int r = pause();
	int e = errno;
	atomic_store(&t->swait, SW_NONE);
	if (r != -1 || e != EINTR)
		violation(t, "pause returned %d (%s)", r, strerror(e));
	else if (!handler_ran(t, h0) && !eintr_explained(t))
		violation(t, "pause ended with no program handler run");
}

static void took_rtb(struct sib *t, const siginfo_t *si, bool has_value)
{
	t->cnt.sigwaited++;
	account(t, S_RTB, FROM_SIGWAIT, si->si_code, si->si_pid,
		(uint64_t)(uintptr_t)si->si_value.sival_ptr, has_value);
}

static void op_sigwait(struct sib *t)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, slot_sig[S_RTB]);
	siginfo_t si;
	int v = (int)rnd(&t->rng, 3), r;
	if (v == 2) {
		set_op(t, "sigtimedwait");
		uint64_t T = pick_timeout(t), dl = mono() + T;
		struct timespec ts = ts_of(T);
		unsigned h0 = atomic_load(&t->hruns);
		r = sigtimedwait(&set, &si, &ts);
		if (r == slot_sig[S_RTB])
			took_rtb(t, &si, true);
		else if (r > 0)
			violation(t, "sigtimedwait returned signal %d", r);
		else
			check_timed(t, "sigtimedwait", errno == EAGAIN, errno,
				    CLOCK_MONOTONIC, dl, h0);
		return;
	}
	set_op(t, v ? "sigwaitinfo" : "sigwait");
	want_signal(t, SW_B);
	for (;;) {
		unsigned h0 = atomic_load(&t->hruns);
		int sig = 0;
		if (v == 0) {
			r = sigwait(&set, &sig);
			if (r == 0) {
				memset(&si, 0, sizeof si);
				si.si_code = SI_QUEUE;
				si.si_pid = mypid;
				r = sig;
			} else {
				errno = r;
				r = -1;
			}
		} else
			r = sigwaitinfo(&set, &si);
		if (r == slot_sig[S_RTB]) {
			took_rtb(t, &si, v != 0);
			break;
		}
		if (r > 0) {
			violation(t, "%s returned signal %d", atomic_load(&t->op), r);
			break;
		}
		if (!retry_eintr(t, atomic_load(&t->op), errno, h0))
			break;
	}
	atomic_store(&t->swait, SW_NONE);
}

static long futex(void *uaddr, int op, uint32_t val,
		  const struct timespec *ts, uint32_t bitset)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, bitset);
}

/* The same call made as libc's wrappers make theirs, with the number as
 * an immediate just before the syscall instruction: libcfork can tell
 * what it was and continue it.  Through syscall(2) the number comes in a
 * register, and a call interrupted there fails with EINTR (libcfork(7),
 * "EINTR remains in these cases"): counted, not a violation. */
static long futex_inline(void *uaddr, int op, uint32_t val,
			 const struct timespec *ts, uint32_t bitset)
{
	register long r10 __asm__("r10") = (long)ts;
	register long r8 __asm__("r8") = 0;
	register long r9 __asm__("r9") = (long)bitset;
	long ret;
	__asm__ volatile("mov $202, %%eax\n\tsyscall"
			 : "=a"(ret)
			 : "D"(uaddr), "S"((long)op), "d"((long)val),
			   "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

static void op_futex(struct sib *t)
{
	int v = (int)rnd(&t->rng, 4);
	bool raw = rnd(&t->rng, 2);
	long (*call)(void *, int, uint32_t, const struct timespec *,
		     uint32_t) = raw ? futex : futex_inline;
	if (v == 0) {
		set_op(t, raw ? "syscall(SYS_futex) wait (woken)"
			      : "futex wait (woken)");
		atomic_store(&t->fword, 0);
		request(t, R_FUTEX);
		while (atomic_load(&t->fword) == 0) {
			unsigned h0 = atomic_load(&t->hruns);
			if (call(&t->fword, FUTEX_WAIT_PRIVATE, 0, NULL, 0) &&
			    errno != EAGAIN &&
			    !retry_eintr(t, atomic_load(&t->op), errno, h0))
				break;
		}
		return;
	}
	static const char *const names[2][3] = {
		{ "futex wait (relative)", "futex wait_bitset (monotonic)",
		  "futex wait_bitset (realtime)" },
		{ "syscall(SYS_futex) wait (relative)",
		  "syscall(SYS_futex) wait_bitset (monotonic)",
		  "syscall(SYS_futex) wait_bitset (realtime)" },
	};
	uint64_t T = pick_timeout(t), dl;
	struct timespec ts;
	clockid_t c = CLOCK_MONOTONIC;
	int op = FUTEX_WAIT_PRIVATE;
	set_op(t, names[raw][v - 1]);
	if (v == 1) {
		ts = ts_of(T);
		dl = mono() + T;
	} else {
		c = v == 2 ? CLOCK_MONOTONIC : CLOCK_REALTIME;
		op = FUTEX_WAIT_BITSET_PRIVATE |
		     (v == 3 ? FUTEX_CLOCK_REALTIME : 0);
		ts = abs_in(c, T, &dl);
	}
	unsigned h0 = atomic_load(&t->hruns);
	long r = call(&t->fdead, op, 0, &ts, FUTEX_BITSET_MATCH_ANY);
	int e = errno;
	if (r == 0)
		violation(t, "%s returned 0; nobody wakes it",
			  atomic_load(&t->op));
	else if (raw && e == EINTR && !handler_ran(t, h0))
		t->cnt.eintr_doc++;
	else
		check_timed(t, atomic_load(&t->op), e == ETIMEDOUT, e, c, dl,
			    h0);
}

static void op_spin(struct sib *t)
{
	set_op(t, "spin");
	spin_for(rnd(&t->rng, 2000000));
}

static void op_malloc(struct sib *t)
{
	set_op(t, "malloc");
	void *p[32] = { 0 };
	int n = 10 + (int)rnd(&t->rng, 100);
	for (int k = 0; k < n; k++) {
		int j = (int)rnd(&t->rng, 32);
		size_t size = ((size_t)1 << rnd(&t->rng, 19)) + rnd(&t->rng, 64);
		if (p[j] && rnd(&t->rng, 4) == 0) {
			void *q = realloc(p[j], size);
			if (!q) {
				violation(t, "realloc(%zu) failed", size);
				continue;
			}
			p[j] = q;
			memset(q, 1, size < 64 ? size : 64);
		} else if (p[j]) {
			free(p[j]);
			p[j] = NULL;
		} else {
			p[j] = rnd(&t->rng, 4) ? malloc(size) : calloc(1, size);
			if (!p[j])
				violation(t, "malloc(%zu) failed", size);
			else
				memset(p[j], 2, size < 64 ? size : 64);
		}
	}
	for (int j = 0; j < 32; j++)
		free(p[j]);
}

static void op_stdio(struct sib *t)
{
	int n = 1 + (int)rnd(&t->rng, 200);
	if (rnd(&t->rng, 2)) {
		set_op(t, "open_memstream");
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		if (!f) {
			violation(t, "open_memstream: %s", strerror(errno));
			return;
		}
		for (int k = 0; k < n; k++)
			fprintf(f, "%d %s %.3f %p\n", k, "torture", k * 0.5,
				(void *)t);
		if (fclose(f) != 0 || len == 0)
			violation(t, "open_memstream: nothing written");
		free(buf);
		return;
	}
	set_op(t, "fmemopen");
	char b[8192];
	FILE *f = fmemopen(b, sizeof b, "w+");
	if (!f) {
		violation(t, "fmemopen: %s", strerror(errno));
		return;
	}
	for (int k = 0; k < n && k < 400; k++)
		fprintf(f, "%d\n", k + 7);
	rewind(f);
	int first = 0;
	if (fscanf(f, "%d", &first) != 1 || first != 7)
		violation(t, "fmemopen: read back %d", first);
	fclose(f);
}

struct churn_arg {
	struct sib *t;
	int v;
};

static void *churn_fn(void *arg)
{
	struct churn_arg *a = arg;
	switch (a->v) {
	case 0: {
		void *p = malloc(100 + (size_t)a->v * 1000);
		free(p);
		break;
	}
	case 1: {
		struct timespec ts = { 0, 200000 };
		if (nanosleep(&ts, NULL) != 0)
			violation(a->t, "a churned thread's nanosleep: %s",
				  strerror(errno));
		break;
	}
	case 2: {
		char b[64];
		snprintf(b, sizeof b, "%d", a->v);
		break;
	}
	default:
		break;
	}
	return a;
}

static void op_churn(struct sib *t)
{
	set_op(t, "thread churn");
	int n = 1 + (int)rnd(&t->rng, 4);
	pthread_t th[4];
	struct churn_arg a[4];
	int made = 0;
	for (int k = 0; k < n; k++) {
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, (size_t)(64 + rnd(&t->rng, 960)) << 10);
		a[k] = (struct churn_arg){ t, (int)rnd(&t->rng, 4) };
		int r = pthread_create(&th[k], &at, churn_fn, &a[k]);
		pthread_attr_destroy(&at);
		if (r) {
			violation(t, "pthread_create: %s", strerror(r));
			break;
		}
		made++;
	}
	for (int k = 0; k < made; k++) {
		void *ret;
		int r = pthread_join(th[k], &ret);
		if (r || ret != &a[k])
			violation(t, "pthread_join of a churned thread: %s",
				  strerror(r));
	}
	t->cnt.churned += (uint64_t)made;
}

/* Handlers that jump out ----------------------------------------------- */

static char scan_buf[1 << 16];

/* The region a handler may jump out of: async-signal-safe work only. */
static void jump_region(struct sib *t, int v)
{
	switch (v) {
	case 0:
		set_op(t, "jump region: spin");
		spin_for(rnd(&t->rng, 2000000));
		break;
	case 1: {
		set_op(t, "jump region: strlen/memchr");
		int n = 1 + (int)rnd(&t->rng, 200);
		size_t sum = 0;
		for (int k = 0; k < n; k++)
			sum += strlen(scan_buf) +
			       (memchr(scan_buf, 'z', sizeof scan_buf - 1) != NULL);
		__asm__ volatile("" : : "r"(sum));
		break;
	}
	case 2: {
		set_op(t, "jump region: nanosleep");
		uint64_t T = pick_timeout(t), dl = mono() + T;
		struct timespec ts = ts_of(T);
		unsigned h0 = atomic_load(&t->hruns);
		int r = nanosleep(&ts, NULL);
		check_timed(t, "nanosleep in a jump region", r == 0, errno,
			    CLOCK_MONOTONIC, dl, h0);
		break;
	}
	case 3: {
		set_op(t, "jump region: futex wait");
		uint64_t T = pick_timeout(t), dl = mono() + T;
		struct timespec ts = ts_of(T);
		unsigned h0 = atomic_load(&t->hruns);
		long r = futex_inline(&t->fdead, FUTEX_WAIT_PRIVATE, 0, &ts, 0);
		if (r == 0)
			violation(t, "futex wait returned 0; nobody wakes it");
		else
			check_timed(t, "futex wait in a jump region",
				    errno == ETIMEDOUT, errno, CLOCK_MONOTONIC,
				    dl, h0);
		break;
	}
	default: {
		set_op(t, "jump region: poll");
		int ms = (int)(pick_timeout(t) / 1000000);
		struct pollfd p = { deadpipe[0], POLLIN, 0 };
		uint64_t dl = mono() + (uint64_t)ms * 1000000;
		unsigned h0 = atomic_load(&t->hruns);
		int r = poll(&p, 1, ms);
		timed_mux(t, "poll in a jump region", r, errno, dl, h0);
		break;
	}
	}
}

static void op_siglongjmp(struct sib *t)
{
	volatile int v = (int)rnd(&t->rng, 5);
	t->jmp_plain = false;
	t->jmp_sp = (uintptr_t)__builtin_frame_address(0);
	if (sigsetjmp(t->senv, 1)) {
		t->cnt.jumps++;
		return;
	}
	t->armed = 1;
	jump_region(t, v);
	t->armed = 0;
}

static void op_longjmp(struct sib *t)
{
	volatile int v = (int)rnd(&t->rng, 5);
	t->jmp_plain = true;
	t->jmp_sp = (uintptr_t)__builtin_frame_address(0);
	if (setjmp(t->env)) {
		/* longjmp kept the handler's mask: back to the thread's. */
		pthread_sigmask(SIG_SETMASK, &t->mask, NULL);
		t->cnt.jumps++;
		return;
	}
	t->armed = 1;
	jump_region(t, v);
	t->armed = 0;
}

/* Cancellation --------------------------------------------------------- */

enum { CV_COND, CV_SEM, CV_SLEEP, CV_READ, CV_POLL, CV_PAUSE, CV_ASYNC,
       CV_TESTCANCEL, CV_SIGWAIT, NCV };
static const char *const cv_name[NCV] = {
	"pthread_cond_wait", "sem_wait", "nanosleep", "read", "poll", "pause",
	"asynchronous, spinning", "pthread_testcancel", "sigwait",
};

struct victim {
	int v;
	uintptr_t frame;                   /* victim_main's */
	_Atomic int ready, cleanups;
	pthread_mutex_t m;
	pthread_cond_t c;
	sem_t s;
};

static void victim_cleanup(void *arg)
{
	struct victim *h = arg;
	atomic_fetch_add(&h->cleanups, 1);
	/* Run by the unwinder, whose frames lie below those it unwinds:
	 * did the cancellation leave libcfork's return stub, or its signal
	 * handler (SIGCANCEL is the one signal that handler lets in), as a
	 * jump out would? */
	uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
	bool stub = false, handler = false;
	for (uintptr_t p = sp; know_lib && p + 8 <= h->frame &&
	     p < sp + 65536; p += 8) {
		uintptr_t w = peek(p);
		stub |= in_stub(w);
		handler |= w > handler_lo && w < handler_hi;
	}
	if (stub)
		atomic_fetch_add(&cancels_stub, 1);
	if (handler)
		atomic_fetch_add(&cancels_handler, 1);
	if (h->v == CV_COND)
		pthread_mutex_unlock(&h->m);
}

static void *victim_main(void *arg)
{
	struct victim *h = arg;
	h->frame = (uintptr_t)__builtin_frame_address(0);
	if (h->v == CV_COND)
		pthread_mutex_lock(&h->m);
	pthread_cleanup_push(victim_cleanup, h);
	atomic_store(&h->ready, 1);
	switch (h->v) {
	case CV_COND:
		for (;;)
			pthread_cond_wait(&h->c, &h->m);
	case CV_SEM:
		for (;;)
			sem_wait(&h->s);
	case CV_SLEEP:
		for (;;) {
			struct timespec ts = { 3600, 0 };
			nanosleep(&ts, NULL);
		}
	case CV_READ:
		for (;;) {
			char c;
			if (read(deadpipe[0], &c, 1) == 1)
				break;
		}
		break;
	case CV_POLL:
		for (;;) {
			struct pollfd p = { deadpipe[0], POLLIN, 0 };
			poll(&p, 1, -1);
		}
	case CV_PAUSE:
		for (;;)
			pause();
	case CV_ASYNC: {
		pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
		volatile unsigned long n = 0;
		for (;;)
			n++;
	}
	case CV_TESTCANCEL: {
		volatile unsigned long n = 0;
		for (;;) {
			for (int k = 0; k < 10000; k++)
				n++;
			pthread_testcancel();
		}
	}
	default: {
		sigset_t set;
		int sig;
		sigemptyset(&set);
		sigaddset(&set, SIGRTMIN + 7);    /* never sent */
		for (;;)
			sigwait(&set, &sig);
	}
	}
	pthread_cleanup_pop(0);
	return NULL;
}

static void op_cancel(struct sib *t)
{
	struct victim h;
	memset(&h, 0, sizeof h);
	h.v = (int)rnd(&t->rng, NCV);
	if (h.v == CV_ASYNC && (avoid & AVOID_ASYNC))
		h.v = CV_TESTCANCEL;
	pthread_mutex_init(&h.m, NULL);
	pthread_cond_init(&h.c, NULL);
	sem_init(&h.s, 0, 0);
	char what[96];
	snprintf(what, sizeof what, "cancel a thread in %s", cv_name[h.v]);
	set_op(t, cv_name[h.v]);
	pthread_t th;
	int r = pthread_create(&th, NULL, victim_main, &h);
	if (r) {
		violation(t, "pthread_create: %s", strerror(r));
		return;
	}
	wait_for(t, &h.ready, 1, "the victim's start");
	if (rnd(&t->rng, 4))
		nap_ns(rnd(&t->rng, 3000000));
	set_op(t, "pthread_cancel");
	r = pthread_cancel(th);
	if (r)
		violation(t, "%s: pthread_cancel: %s", what, strerror(r));
	set_op(t, "pthread_join (cancelled)");
	void *ret = NULL;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	r = pthread_timedjoin_np(th, &ret, &ts);
	if (r) {
		violation(t, "%s: not gone 10 s after pthread_cancel (%s)",
			  what, strerror(r));
		return;
	}
	if (ret != PTHREAD_CANCELED)
		violation(t, "%s: it returned %p, not PTHREAD_CANCELED", what,
			  ret);
	if (atomic_load(&h.cleanups) != 1)
		violation(t, "%s: its cleanup handler ran %d times", what,
			  atomic_load(&h.cleanups));
	pthread_mutex_destroy(&h.m);
	pthread_cond_destroy(&h.c);
	sem_destroy(&h.s);
	t->cnt.cancels++;
}

/* Alternate stacks, coroutines, signalfd ---------------------------------- */

/* The signaller sends SIGRTMIN+6, whose handler stays a while on the
 * alternate stack; meanwhile the thread spins or sleeps. */
static void op_altstack(struct sib *t)
{
	if (rnd(&t->rng, 2)) {
		set_op(t, "altstack: spin");
		spin_for(rnd(&t->rng, 2000000));
		return;
	}
	set_op(t, "altstack: nanosleep");
	uint64_t T = pick_timeout(t), dl = mono() + T;
	struct timespec ts = ts_of(T);
	unsigned h0 = atomic_load(&t->hruns);
	int r = nanosleep(&ts, NULL);
	check_timed(t, "nanosleep (altstack)", r == 0, errno, CLOCK_MONOTONIC,
		    dl, h0);
}

static void coro_body(unsigned lo, unsigned hi)
{
	struct sib *t = (struct sib *)(((uintptr_t)hi << 32) | lo);
	int k = t->co_cur;
	for (;;) {
		char b[256];
		snprintf(b, sizeof b, "%d %" PRIu64, k, t->cnt.coro_switches);
		__asm__ volatile("" : : "r"(b) : "memory");
		if (rnd(&t->rng, 64) == 0) {
			uint64_t T = rnd(&t->rng, 200000), dl = mono() + T;
			struct timespec ts = ts_of(T);
			unsigned h0 = atomic_load(&t->hruns);
			int r = nanosleep(&ts, NULL);
			check_timed(t, "nanosleep in a coroutine", r == 0,
				    errno, CLOCK_MONOTONIC, dl, h0);
		}
		t->cnt.coro_switches++;
		swapcontext(&t->co[k], &t->co_main);
	}
}

static void coro_make(struct sib *t, int k, size_t sz)
{
	char *m = mmap(NULL, sz + 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	CHECK(mprotect(m, 4096, PROT_NONE) == 0);       /* a guard page */
	t->co_stack[k] = m;
	t->co_size[k] = sz;
	CHECK(getcontext(&t->co[k]) == 0);
	t->co[k].uc_stack.ss_sp = m + 4096;
	t->co[k].uc_stack.ss_size = sz;
	t->co[k].uc_link = NULL;
	uintptr_t p = (uintptr_t)t;
	makecontext(&t->co[k], (void (*)(void))coro_body, 2, (unsigned)p,
		    (unsigned)(p >> 32));
}

static void coro_setup(struct sib *t)
{
	static const size_t sizes[] = { 16 << 10, 24 << 10, 32 << 10,
					64 << 10 };
	t->nco = 2 + (int)rnd(&t->rng, NCORO - 1);
	for (int k = 0; k < t->nco; k++)
		coro_make(t, k, sizes[rnd(&t->rng, 4)]);
}

static void op_coro(struct sib *t)
{
	set_op(t, "swapcontext");
	int n = 10 + (int)rnd(&t->rng, 500);
	for (int i = 0; i < n; i++) {
		t->co_cur = (int)rnd(&t->rng, (uint64_t)t->nco);
		if (swapcontext(&t->co_main, &t->co[t->co_cur]) != 0)
			violation(t, "swapcontext: %s", strerror(errno));
	}
}

static void take_sfd(struct sib *t)
{
	struct signalfd_siginfo si;
	ssize_t n = read(t->sfd, &si, sizeof si);
	if (n != (ssize_t)sizeof si) {
		violation(t, "signalfd read: %zd (%s)", n, strerror(errno));
		return;
	}
	if ((int)si.ssi_signo != slot_sig[S_RTB]) {
		violation(t, "signalfd gave signal %u", si.ssi_signo);
		return;
	}
	t->cnt.sigwaited++;
	account(t, S_RTB, FROM_SIGNALFD, si.ssi_code, (pid_t)si.ssi_pid,
		si.ssi_ptr, true);
}

static void op_signalfd(struct sib *t)
{
	struct pollfd p = { t->sfd, POLLIN, 0 };
	if (rnd(&t->rng, 2)) {
		set_op(t, "poll (signalfd)");
		int ms = (int)(pick_timeout(t) / 1000000);
		uint64_t dl = mono() + (uint64_t)ms * 1000000;
		unsigned h0 = atomic_load(&t->hruns);
		int r = poll(&p, 1, ms);
		if (r == 1)
			take_sfd(t);
		else
			check_timed(t, "poll (signalfd)", r == 0, errno,
				    CLOCK_MONOTONIC, dl, h0);
		return;
	}
	set_op(t, "read (signalfd)");
	want_signal(t, SW_B);
	for (;;) {
		unsigned h0 = atomic_load(&t->hruns);
		int r = poll(&p, 1, -1);
		if (r == 1) {
			take_sfd(t);
			break;
		}
		if (r == 0) {
			violation(t, "poll without a timeout returned 0");
			break;
		}
		if (!retry_eintr(t, "poll (signalfd)", errno, h0))
			break;
	}
	atomic_store(&t->swait, SW_NONE);
}

/* Shared mutexes ------------------------------------------------------- */

static void hold_a_while(struct sib *t)
{
	if (rnd(&t->rng, 2))
		spin_for(rnd(&t->rng, 200000));
	else
		nap_ns(rnd(&t->rng, 1000000));
}

static void op_pi(struct sib *t)
{
	int r;
	uint64_t dl = 0;
	if (rnd(&t->rng, 3) == 0) {
		set_op(t, "PI pthread_mutex_timedlock");
		struct timespec ts = abs_in(CLOCK_REALTIME, pick_timeout(t), &dl);
		unsigned h0 = atomic_load(&t->hruns);
		r = pthread_mutex_timedlock(&pi_m, &ts);
		if (r) {
			check_timed(t, "PI pthread_mutex_timedlock",
				    r == ETIMEDOUT, r, CLOCK_REALTIME, dl, h0);
			return;
		}
	} else {
		set_op(t, "PI pthread_mutex_lock");
		r = pthread_mutex_lock(&pi_m);
		if (r) {
			violation(t, "PI pthread_mutex_lock: %s", strerror(r));
			return;
		}
	}
	hold_a_while(t);
	pthread_mutex_unlock(&pi_m);
}

static int robust_lock(struct sib *t)
{
	int r = pthread_mutex_lock(&robust_m);
	if (r == EOWNERDEAD) {
		atomic_fetch_add(&deaths_seen, 1);
		r = pthread_mutex_consistent(&robust_m);
		if (r)
			violation(t, "pthread_mutex_consistent: %s", strerror(r));
	} else if (r)
		violation(t, "robust pthread_mutex_lock: %s", strerror(r));
	return r;
}

static void *robust_dier(void *arg)
{
	struct sib *t = arg;
	if (robust_lock(t) == 0)
		atomic_fetch_add(&deaths_made, 1);   /* and dies holding it */
	return NULL;
}

static void op_robust(struct sib *t)
{
	if (rnd(&t->rng, 20) == 0) {
		set_op(t, "robust: an owner dies");
		pthread_t th;
		int r = pthread_create(&th, NULL, robust_dier, t);
		if (r)
			violation(t, "pthread_create: %s", strerror(r));
		else
			pthread_join(th, NULL);
		t->cnt.owner_deaths++;
		return;
	}
	set_op(t, "robust pthread_mutex_lock");
	if (robust_lock(t) == 0) {
		hold_a_while(t);
		pthread_mutex_unlock(&robust_m);
	}
}

static void op_dl(struct sib *t)
{
	set_op(t, "dlopen");
	void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		violation(t, "dlopen(%s): %s", module, dlerror());
		return;
	}
	set_op(t, "dlclose");
	dlclose(h);
}

/* The names exist before any thread does: setenv then only replaces a
 * value, and a getenv elsewhere (tzset's) never sees the array move. */
#define NENV 4
static void op_env(struct sib *t)
{
	set_op(t, "setenv");
	char name[32], val[32];
	snprintf(name, sizeof name, "TORTURE_ENV_%d", (int)rnd(&t->rng, NENV));
	snprintf(val, sizeof val, "%" PRIu64, rnd(&t->rng, 1000000));
	if (setenv(name, val, 1) != 0)
		violation(t, "setenv: %s", strerror(errno));
}

static void op_tz(struct sib *t)
{
	set_op(t, "localtime_r");
	time_t now = time(NULL) + (time_t)rnd(&t->rng, 1000000);
	struct tm tm;
	char b[64];
	if (rnd(&t->rng, 8) == 0)
		tzset();
	if (!localtime_r(&now, &tm) || !strftime(b, sizeof b, "%c %Z", &tm))
		violation(t, "localtime_r/strftime failed");
	if (mktime(&tm) == (time_t)-1)
		violation(t, "mktime failed");
}

/* Helpers: waker, signaller, writer, deaf ------------------------------- */

/* A helper's own short sleep, checked like the siblings'. */
static void helper_nap(struct sib *w, uint64_t ns)
{
	uint64_t dl = mono() + ns;
	struct timespec ts = ts_of(ns);
	unsigned h0 = atomic_load(&w->hruns);
	int r = nanosleep(&ts, NULL);
	check_timed(w, "nanosleep", r == 0, errno, CLOCK_MONOTONIC, dl, h0);
}

static void serve(struct sib *t, int k, uint64_t now)
{
	char c = 'w';
	switch (k) {
	case R_MUTEX: case R_RDLOCK: case R_WRLOCK:
		if (!t->rq_held) {
			if (k == R_MUTEX)
				pthread_mutex_lock(&t->cm);
			else if (k == R_RDLOCK)
				pthread_rwlock_rdlock(&t->rw);
			else
				pthread_rwlock_wrlock(&t->rw);
			t->rq_held = true;
			atomic_store(&t->held, 1);
		} else if (now >= t->rq_due) {
			atomic_store(&t->rq, R_NONE);
			t->rq_held = false;
			if (k == R_MUTEX)
				pthread_mutex_unlock(&t->cm);
			else
				pthread_rwlock_unlock(&t->rw);
		}
		return;
	}
	if (now < t->rq_due)
		return;
	/* Cleared first: the thread, once woken, may ask again. */
	atomic_store(&t->rq, R_NONE);
	switch (k) {
	case R_COND:
		pthread_mutex_lock(&t->m);
		t->flag = 1;
		pthread_cond_signal(&t->c);
		pthread_mutex_unlock(&t->m);
		break;
	case R_SEM:
		sem_post(&t->sem);
		break;
	case R_PIPE:
		if (write(t->pipe[1], &c, 1) != 1)
			violation(t, "the waker's write: %s", strerror(errno));
		break;
	case R_FUTEX:
		atomic_store(&t->fword, 1);
		futex(&t->fword, FUTEX_WAKE_PRIVATE, 1, NULL, 0);
		break;
	}
}

static void waker_loop(struct sib *w)
{
	while (!atomic_load(&stop_helpers)) {
		set_op(w, "nanosleep");
		helper_nap(w, 50000 + rnd(&w->rng, 450000));
		set_op(w, "serving");
		uint64_t now = mono();
		for (int i = 0; i < nmix; i++) {
			int k = atomic_load_explicit(&sibs[i].rq,
						     memory_order_acquire);
			if (k != R_NONE)
				serve(&sibs[i], k, now);
		}
		atomic_fetch_add(&w->progress, 1);
	}
}

static void signaller_loop(struct sib *w)
{
	/* How busy, from the seed: a send every 0.2 to 2 ms on average. */
	uint64_t mean = 200000 + rnd(&w->rng, 1800000);
	while (!atomic_load(&stop_helpers)) {
		set_op(w, "nanosleep");
		helper_nap(w, rnd(&w->rng, 2 * mean));
		set_op(w, "sending");
		uint64_t now = mono();
		/* Signal waits that are due. */
		for (int i = 0; i < nmix; i++) {
			struct sib *t = &sibs[i];
			int sw = atomic_load_explicit(&t->swait,
						      memory_order_acquire);
			if (sw == SW_NONE || now < t->swait_due ||
			    now - t->swait_sent < 3000000)
				continue;
			int s = sw == SW_B ? S_RTB : (int)rnd(&w->rng, 3);
			send_sig(t, s, &w->rng);
			t->swait_sent = now;
		}
		/* And a burst to someone who can take it. */
		if (atomic_load(&stop_mix) || nmix == 0)
			goto next;
		struct sib *t = &sibs[rnd(&w->rng, (uint64_t)nmix)];
		unsigned m = eligible(t);
		if (!m)
			goto next;
		int s;
		do
			s = (int)rnd(&w->rng, NSLOT);
		while (!(m & 1u << s));
		for (int n = 1 + (int)rnd(&w->rng, 4); n > 0; n--)
			send_sig(t, s, &w->rng);
next:
		atomic_fetch_add(&w->progress, 1);
	}
}

static void writer_loop(struct sib *w)
{
	set_op(w, "writing pinned pages");
#ifdef HAVE_URING
	for (uint64_t c = 1; !atomic_load_explicit(&stop_helpers,
						   memory_order_relaxed); c++) {
		stripe_write(&pin, c);
		ring_write(&pin, c);
		if (!(c & 255))
			atomic_fetch_add(&w->progress, 1);
	}
#endif
}

static void deaf_loop(struct sib *w)
{
	uint64_t all = ~0ull;
	set_op(w, "deaf: spin and nanosleep");
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, NULL, 8);
	while (!atomic_load(&stop_helpers)) {
		spin_for(200000);
		helper_nap(w, 500000);
		atomic_fetch_add(&w->progress, 1);
	}
}

/* cfork and its child ---------------------------------------------------- */

/* One thread that calls cfork: the main thread, or a cforker sibling. */
struct forker {
	const char *name;
	struct sib *t;               /* NULL: the main thread */
	int pipe[2];                 /* the children say they are done */
	uint64_t rng;
	uint64_t cforks, overwritten, incoherent, quiesce_ns, quiesce_max,
		 parked, redirected, signals, claimed, backoffs;
	uint64_t acts[8];
};

enum { A_DLOPEN, A_SETENV, A_LOCALTIME, A_FFLUSH, A_EXIT, A_PRINTF, NACT };
static const char *const act_name[NACT] = {
	"dlopen", "setenv", "localtime", "fflush", "exit", "printf",
};
enum { CH_OK, CH_TORN = 3, CH_HANDLER, CH_MALLOC, CH_DLOPEN, CH_ENV,
       CH_TIME, CH_STDIO };
static const char *const ch_what[] = {
	[CH_TORN] = "saw a torn pinned state",
	[CH_HANDLER] = "saw a program handler half done",
	[CH_MALLOC] = "malloc failed",
	[CH_DLOPEN] = "dlopen failed",
	[CH_ENV] = "setenv/getenv failed",
	[CH_TIME] = "localtime_r failed",
	[CH_STDIO] = "fdopen/fprintf failed",
};

static _Noreturn void child_main(struct forker *f, int i, unsigned acts)
{
#ifdef HAVE_URING
	if (pin_ok && !(stripe_coherent(&pin) && ring_coherent(&pin)))
		_exit(CH_TORN);
#endif
	/* A handler whose mask blocks every signal cannot be stopped inside:
	 * none may be half done in the copy. */
	if (h_fill)
		for (int k = 0; k < nmix; k++)
			if (sibs[k].in_handler) {
				const struct sib *t = &sibs[k];
				dprintf(2, "torture: child: sibling %d (%s) "
					"in a handler, depth %d, doing %s; "
					"its last handler runs:\n", k,
					t->kstr, (int)t->hdepth,
					atomic_load(&t->op));
				for (unsigned e = t->nev > 4 ? t->nev - 4 : 0;
				     e < t->nev; e++) {
					const struct hev *h = &t->ev[e % 32];
					char ip[96], ret[96];
					t_symbol(ip, sizeof ip, h->ip);
					t_symbol(ret, sizeof ret, h->ret);
					dprintf(2, "  sig %d depth %d what %d "
						"ip %s ret %s at %llu ns\n",
						h->sig, h->depth, h->what, ip,
						ret, (unsigned long long)h->ns);
				}
				/* Code addresses on its stack, outermost
				 * first: its calls down to where it stopped,
				 * then stale words. */
				int shown = 0;
				for (uintptr_t a = t->stk_hi - 8; a >= t->stk_lo &&
				     shown < 80; a -= 8) {
					uintptr_t w = peek(a);
					Dl_info di;
					if (w < 65536 || !dladdr((void *)w, &di) ||
					    !di.dli_fname)
						continue;
					const char *base = strrchr(di.dli_fname, '/');
					base = base ? base + 1 : di.dli_fname;
					char sym[96];
					if (di.dli_sname)
						t_symbol(sym, sizeof sym, w);
					else
						snprintf(sym, sizeof sym, "%s+%#lx",
							 base, (unsigned long)(w -
							 (uintptr_t)di.dli_fbase));
					dprintf(2, "  stack top-%#lx: %s\n",
						(unsigned long)(t->stk_hi - a), sym);
					shown++;
				}
				_exit(CH_HANDLER);
			}
	void *p[12];
	for (int k = 0; k < 12; k++) {
		p[k] = malloc((size_t)16 << k);
		if (!p[k])
			_exit(CH_MALLOC);
		memset(p[k], k, 16);
	}
	for (int k = 0; k < 12; k++)
		free(p[k]);
	if (acts & 1u << A_DLOPEN) {
		void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);
		if (!h)
			_exit(CH_DLOPEN);
		dlclose(h);
	}
	if (acts & 1u << A_SETENV) {
		const char *v;
		if (setenv("TORTURE_CHILD", "yes", 1) ||
		    !(v = getenv("TORTURE_CHILD")) || strcmp(v, "yes"))
			_exit(CH_ENV);
	}
	if (acts & 1u << A_LOCALTIME) {
		time_t now = time(NULL);
		struct tm tm;
		char b[64];
		if (!localtime_r(&now, &tm) || !strftime(b, sizeof b, "%c", &tm))
			_exit(CH_TIME);
	}
	if (acts & 1u << A_FFLUSH)
		fflush(NULL);
	int fd = dup(f->pipe[1]);
	FILE *o = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!o || fprintf(o, "torture child %s %d %d\n", f->name, i,
			  (int)getpid()) < 0 || fclose(o) != 0)
		_exit(CH_STDIO);
	if (acts & 1u << A_EXIT)
		exit(0);
	_exit(0);
}

/* Time on a CPU and waiting for one, from /proc/self/task/TID/schedstat. */
static bool schedstat(pid_t tid, uint64_t *run, uint64_t *wait)
{
	char path[64], buf[128];
	snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	unsigned long long r, w;
	if (sscanf(buf, "%llu %llu", &r, &w) != 2)
		return false;
	*run = r;
	*wait = w;
	return true;
}

static void schedstat_all(void)
{
	for (int i = 0; i < nsibs; i++)
		if (!schedstat(atomic_load(&sibs[i].tid), &sibs[i].run0,
			       &sibs[i].wait0))
			sibs[i].run0 = sibs[i].wait0 = 0;
}

static struct sib *sib_by_tid(pid_t tid)
{
	for (int i = 0; i < nsibs; i++)
		if (atomic_load(&sibs[i].tid) == tid)
			return &sibs[i];
	return NULL;
}

/* The report and its stragglers, each with what the harness knows of it. */
static void print_report(const struct forker *f, const struct cfork_report *r)
{
	fprintf(stderr, "  %s's cfork: method %d coherent %d not_coherent \"%s\" "
		"pid %d error %d parked %u redirected %u skipped %u gone %u "
		"not_stopped %u rounds %u backoffs %u signals %u quiesce "
		"%.3f ms\n", f->name, r->method, r->coherent,
		r->not_coherent ? r->not_coherent : "", (int)r->pid, r->error,
		r->parked, r->redirected, r->skipped, r->gone, r->not_stopped,
		r->rounds, r->backoffs, r->signals, (double)r->quiesce_ns / 1e6);
	struct cfork_straggler s[16];
	size_t n = cfork_last_stragglers(s, 16, sizeof s[0]);
	for (size_t i = 0; i < n && i < 16; i++) {
		fprintf(stderr, "  straggler tid %d (%.16s) state %c syscall %ld "
			"wchan %.32s: %s\n", (int)s[i].tid, s[i].name,
			s[i].state, s[i].syscall, s[i].wchan,
			s[i].why ? s[i].why : "?");
		if (s[i].pc) {
			char b[160];
			t_symbol(b, sizeof b, s[i].pc);
			fprintf(stderr, "    at %s\n", b);
		}
		struct sib *t = sib_by_tid(s[i].tid);
		if (t) {
			fputs("    = ", stderr);
			describe_thread(stderr, t);
			fputc('\n', stderr);
		}
		uint64_t run, wait;
		if (schedstat(s[i].tid, &run, &wait)) {
			if (t && !f->t && t->run0)
				fprintf(stderr, "    during this cfork it ran %.1f ms "
					"and waited %.1f ms for a CPU\n",
					(double)(run - t->run0) / 1e6,
					(double)(wait - t->wait0) / 1e6);
			else
				fprintf(stderr, "    in its life it ran %.1f ms and "
					"waited %.1f ms for a CPU\n",
					(double)run / 1e6, (double)wait / 1e6);
		}
		for (unsigned k = 0; k < s[i].depth && k < CFORK_STACK_MAX; k++) {
			char b[160];
			t_symbol(b, sizeof b, s[i].stack[k]);
			fprintf(stderr, "    #%u %s\n", k, b);
		}
	}
}

static struct sib *deaf_sib;
static bool have_cforker;

static uint32_t users_before;


static uint32_t hot_users(void)
{
	return cf_hot_words ? atomic_load(&cf_hot_words[4]) : 0;
}

static void check_report(struct forker *f, pid_t pid,
			 const struct cfork_report *r)
{
	f->quiesce_ns += r->quiesce_ns;
	if (r->quiesce_ns > f->quiesce_max)
		f->quiesce_max = r->quiesce_ns;
	f->parked += r->parked;
	f->redirected += r->redirected;
	f->signals += r->signals;
	f->claimed += r->signals < r->parked;
	f->backoffs += r->backoffs;
	if (mode_forced && r->method != CFORK_METHOD_QUIESCE) {
		violation(f->t, "%s: cfork did not quiesce (method %d)",
			  f->name, r->method);
		return;
	}
	if (r->method != CFORK_METHOD_QUIESCE)
		return;
	if (deaf) {
		/* The deaf thread must be the reason, and named. */
		struct cfork_straggler s[64];
		size_t n = cfork_last_stragglers(s, 64, sizeof s[0]);
		bool named = false;
		for (size_t i = 0; i < n && i < 64; i++)
			named |= s[i].tid == atomic_load(&deaf_sib->tid) &&
				 s[i].why && !strcmp(s[i].why,
						     "blocks the cfork signal");
		f->incoherent += !r->coherent;
		if (r->coherent || !r->not_coherent ||
		    strcmp(r->not_coherent, "CFORK_TIMEOUT_MS reached") ||
		    !named) {
			violation(f->t, "%s: with a deaf thread, cfork %d must "
				  "say not coherent at the bound, naming it",
				  f->name, (int)pid);
			print_report(f, r);
		}
		return;
	}
	if (!r->coherent || r->not_coherent || r->not_stopped || r->error) {
		f->incoherent++;
		fprintf(stderr, "torture: seed %" PRIu64 ", cfork %d: NOT "
			"COHERENT:\n", seed, atomic_load(&cur_cfork));
		print_report(f, r);
		if (cf_hot_words) {
			uint32_t now = hot_users();
			nap_ns(200000000);
			fprintf(stderr, "  cf_hot.users (handlers using the table): "
				"%u just before this cfork, %u after it, %u 0.2 s "
				"later%s\n", users_before, now, hot_users(),
				hot_users() ? " (stuck: the quiesces that follow "
				"wait a second for it)" : "");
		}
		violation(f->t, "%s: cfork (child %d) not coherent: %s",
			  f->name, (int)pid,
			  r->not_coherent ? r->not_coherent : "?");
	}
}

/* One cfork, its report and its child, all checked. */
static void one_cfork(struct forker *f, int i)
{
	unsigned acts = 1u << A_PRINTF;
	for (int a = 0; a < A_PRINTF; a++)
		if (rnd(&f->rng, 4) == 0)
			acts |= 1u << a;
	if (!module)
		acts &= ~(1u << A_DLOPEN);
	if (!f->t)
		fflush(stdout);
	users_before = hot_users();
	if (!f->t)
		schedstat_all();
	pid_t pid = cfork();
	if (pid == 0)
		child_main(f, i, acts);
	if (pid < 0) {
		violation(f->t, "%s: cfork failed: %s", f->name, strerror(errno));
		return;
	}
	f->cforks++;
	for (int a = 0; a < NACT; a++)
		f->acts[a] += (acts >> a) & 1;
	struct cfork_report r = { .pid = 0 };
	if (cfork_last_report(&r, sizeof r) != 0)
		violation(f->t, "cfork_last_report: %s", strerror(errno));
	else if (r.pid != pid) {
		/* The report is the process's: a concurrent cfork's came
		 * after ours.  Its thread checks it. */
		if (!have_cforker)
			violation(f->t, "%s: the report is of cfork %d, not of "
				  "this one (%d)", f->name, (int)r.pid, (int)pid);
		f->overwritten++;
	} else
		check_report(f, pid, &r);

	/* The child: exits 0, promptly, having said so on the pipe. */
	uint64_t end = mono() + 10000000000u, napns = 20000;
	int st;
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			violation(f->t, "waitpid(%d): %s", (int)pid,
				  strerror(errno));
			return;
		}
		if (mono() > end) {
			violation(f->t, "%s: child %d of cfork %d still there "
				  "after 10 s", f->name, (int)pid, i);
			t_show_hang(pid, "torture", true);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return;
		}
		nap_ns(napns);
		if (napns < 2000000)
			napns *= 2;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		int c = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
		char rep[160] = "";
		if (r.pid == pid)
			snprintf(rep, sizeof rep, "; its quiesce: %u parked, "
				 "%u redirected, %u skipped, %u not stopped, "
				 "%u rounds, %u back-offs", r.parked,
				 r.redirected, r.skipped, r.not_stopped,
				 r.rounds, r.backoffs);
		violation(f->t, "%s: child %d of cfork %d %s %d%s%s (acts 0x%x)%s",
			  f->name, (int)pid, i,
			  WIFEXITED(st) ? "exited with" : "killed by signal",
			  WIFEXITED(st) ? c : WTERMSIG(st),
			  c > 0 && c <= CH_STDIO && ch_what[c] ? ": " : "",
			  c > 0 && c <= CH_STDIO && ch_what[c] ? ch_what[c] : "",
			  acts, rep);
		return;
	}
	char want[96], got[96];
	int wl = snprintf(want, sizeof want, "torture child %s %d %d\n",
			  f->name, i, (int)pid);
	ssize_t n = read(f->pipe[0], got, (size_t)wl);
	if (n != wl || memcmp(got, want, (size_t)wl)) {
		if (n < 0)
			n = 0;
		got[n] = '\0';
		violation(f->t, "%s: child %d wrote \"%.*s\", not \"%.*s\"",
			  f->name, (int)pid, (int)strcspn(got, "\n"), got,
			  wl - 1, want);
	}
}

static struct forker mainf = { .name = "main" }, sidef = { .name = "cforker" };

static uint64_t cforks_done(void)
{
	return mainf.cforks + sidef.cforks;
}

static void op_cforker(struct sib *t)
{
	set_op(t, "nanosleep");
	helper_nap(t, 1000000 + rnd(&t->rng, 19000000));
	set_op(t, "cfork");
	one_cfork(t->forker, (int)t->forker->cforks);
}

/* Threads ------------------------------------------------------------------ */

static void read_proc(pid_t pid, pid_t tid, const char *what, char *buf,
		      size_t len)
{
	char path[96];
	snprintf(path, sizeof path, "/proc/%d/task/%d/%s", (int)pid, (int)tid,
		 what);
	buf[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* What the kernel says of a thread: state, wait channel, system call. */
static void dump_task(FILE *f, pid_t pid, pid_t tid)
{
	char stat[512], wchan[64], sc[128], comm[32];
	read_proc(pid, tid, "stat", stat, sizeof stat);
	read_proc(pid, tid, "wchan", wchan, sizeof wchan);
	read_proc(pid, tid, "syscall", sc, sizeof sc);
	read_proc(pid, tid, "comm", comm, sizeof comm);
	const char *p = strrchr(stat, ')');
	fprintf(f, "    tid %d (%s) state %c wchan %s syscall %.40s\n", (int)tid,
		comm, p && p[1] ? p[2] : '?', wchan, sc);
}

static void mix_loop(struct sib *t)
{
	int ops[4], n = 0;
	for (int k = 0; k < t->nkinds; k++)
		if (kinds[t->kind[k]].op)
			ops[n++] = t->kind[k];
	while (!atomic_load(&stop_mix)) {
		int k = ops[rnd(&t->rng, (uint64_t)n)];
		kinds[k].op(t);
		set_op(t, "between operations");
		t->cnt.ops++;
		atomic_fetch_add(&t->progress, 1);
	}
	set_op(t, "leaving");
	if (t->has_timer)
		timer_delete(t->timer);
	drain(t);
}

static void *sib_main(void *arg)
{
	struct sib *t = arg;
	me = t;
	atomic_store(&t->tid, gettid());
	pthread_attr_t at;
	void *stk;
	size_t stksz;
	if (pthread_getattr_np(pthread_self(), &at) == 0) {
		if (pthread_attr_getstack(&at, &stk, &stksz) == 0) {
			t->stk_lo = (uintptr_t)stk;
			t->stk_hi = (uintptr_t)stk + stksz;
		}
		pthread_attr_destroy(&at);
	}
	sigset_t m;
	if (t->fill)
		sigfillset(&m);
	else {
		m = prog_set;
		if (t->open)
			for (int s = S_USR1; s <= S_RTA; s++)
				sigdelset(&m, slot_sig[s]);
		if (t->jumps) {
			sigdelset(&m, slot_sig[S_RTJ]);
			sigdelset(&m, sig_rtt);
		}
		if (t->alt)
			sigdelset(&m, slot_sig[S_RTS]);
	}
	CHECK(pthread_sigmask(SIG_SETMASK, &m, NULL) == 0);
	t->mask = m;
	if (t->alt) {
		stack_t ss = { .ss_sp = t->altstack, .ss_size = t->altsize };
		CHECK(sigaltstack(&ss, NULL) == 0);
	}
	if (t->has[K_SIGNALFD]) {
		sigset_t b;
		sigemptyset(&b);
		sigaddset(&b, slot_sig[S_RTB]);
		t->sfd = signalfd(-1, &b, SFD_CLOEXEC);
		CHECK(t->sfd >= 0);
	}
	if (t->has[K_CORO])
		coro_setup(t);
	if (t->has_timer) {
		struct sigevent ev;
		memset(&ev, 0, sizeof ev);
		ev.sigev_notify = SIGEV_THREAD_ID;
		ev.sigev_signo = sig_rtt;
		ev._sigev_un._tid = gettid();
		CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t->timer) == 0);
		uint64_t iv = 500000 + rnd(&t->rng, 4500000);
		struct itimerspec it = { ts_of(iv), ts_of(iv) };
		CHECK(timer_settime(t->timer, 0, &it, NULL) == 0);
	}
	atomic_store(&t->started, 1);
	switch (t->role) {
	case ROLE_MIX: mix_loop(t); break;
	case ROLE_WAKER: waker_loop(t); break;
	case ROLE_SIGNALLER: signaller_loop(t); break;
	case ROLE_WRITER: writer_loop(t); break;
	case ROLE_DEAF: deaf_loop(t); break;
	}
	set_op(t, "gone");
	atomic_store(&t->done, 1);
	return NULL;
}

static void init_sib(struct sib *t, int idx, enum role role)
{
	t->idx = idx;
	t->role = role;
	t->rng = seed * 0x2545f4914f6cdd1dull + (uint64_t)idx * 7919 + 1;
	t->sfd = -1;
	pthread_mutex_init(&t->siglock, NULL);
	pthread_mutex_init(&t->m, NULL);
	pthread_cond_init(&t->c, NULL);
	pthread_mutex_init(&t->mt, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	t->ct_clock = rnd(&t->rng, 2) ? CLOCK_MONOTONIC : CLOCK_REALTIME;
	pthread_condattr_setclock(&ca, t->ct_clock);
	pthread_cond_init(&t->ct, &ca);
	pthread_condattr_destroy(&ca);
	sem_init(&t->sem, 0, 0);
	sem_init(&t->semt, 0, 0);
	static const int types[] = { PTHREAD_MUTEX_NORMAL,
				     PTHREAD_MUTEX_ERRORCHECK,
				     PTHREAD_MUTEX_RECURSIVE,
				     PTHREAD_MUTEX_ADAPTIVE_NP };
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, types[rnd(&t->rng, 4)]);
	pthread_mutex_init(&t->cm, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, rnd(&t->rng, 2) ?
		PTHREAD_RWLOCK_PREFER_READER_NP :
		PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&t->rw, &ra);
	pthread_rwlockattr_destroy(&ra);
	CHECK(pipe2(t->pipe, O_CLOEXEC) == 0);
	t->ep = epoll_create1(EPOLL_CLOEXEC);
	t->epdead = epoll_create1(EPOLL_CLOEXEC);
	CHECK(t->ep >= 0 && t->epdead >= 0);
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.fd = t->pipe[0];
	CHECK(epoll_ctl(t->ep, EPOLL_CTL_ADD, t->pipe[0], &ev) == 0);
	ev.data.fd = deadpipe[0];
	CHECK(epoll_ctl(t->epdead, EPOLL_CTL_ADD, deadpipe[0], &ev) == 0);
	static const size_t stacks[] = { 128 << 10, 256 << 10, 1 << 20, 0 };
	t->stack_size = stacks[rnd(&t->rng, 4)];
}

static void fini_sib(struct sib *t)
{
	close(t->pipe[0]);
	close(t->pipe[1]);
	close(t->ep);
	close(t->epdead);
	if (t->sfd >= 0)
		close(t->sfd);
	for (int k = 0; k < t->nco; k++)
		munmap(t->co_stack[k], t->co_size[k] + 4096);
	if (t->altstack)
		munmap(t->altstack, t->altsize);
	sem_destroy(&t->sem);
	sem_destroy(&t->semt);
}

static void add_kind(struct sib *t, int k)
{
	t->has[k] = true;
	t->kind[t->nkinds++] = k;
}

/* The mix, from the seed: which threads do what, and how the handlers
 * are installed. */
static int build_mix(uint64_t *rng)
{
	int allowed[NKINDS], nallowed = 0, nops = 0;
	for (int k = 0; k < NKINDS; k++)
		if (kinds_allowed >> k & 1) {
			allowed[nallowed++] = k;
			nops += !(kinds[k].flags & KF_ATTR);
		}
	if (!nops)
		DIE("-k: no kind that does something");
	int drawn = 4 + (int)rnd(rng, 9);    /* even when -t is given */
	if (nthreads < 0)
		nthreads = drawn;
	for (int i = 0; i < nthreads; i++) {
		struct sib *t = &sibs[i];
		init_sib(t, i, ROLE_MIX);
		int want = 1 + (int)rnd(rng, 3), ops = 0;
		for (int tries = 0; tries < 200 && ops < want && t->nkinds < 4;
		     tries++) {
			int k = allowed[rnd(rng, (uint64_t)nallowed)];
			if (t->has[k])
				continue;
			if (kinds[k].flags & KF_ALONE) {
				if (have_cforker || t->nkinds)
					continue;
				add_kind(t, k);
				have_cforker = t->cforker = true;
				break;
			}
			add_kind(t, k);
			ops += !(kinds[k].flags & KF_ATTR);
		}
		/* A thread that blocks every signal lets none in. */
		if (t->has[K_FILL]) {
			int n = 0;
			for (int k = 0; k < t->nkinds; k++)
				if (!(kinds[t->kind[k]].flags & KF_UNBLOCKS))
					t->kind[n++] = t->kind[k];
				else
					t->has[t->kind[k]] = false;
			t->nkinds = n;
		}
		bool any = false;
		for (int k = 0; k < t->nkinds; k++)
			any |= kinds[t->kind[k]].op != NULL;
		if (!any) {
			/* attributes only: give it something to do */
			int k;
			do
				k = allowed[rnd(rng, (uint64_t)nallowed)];
			while ((kinds[k].flags & (KF_ATTR | KF_ALONE)) ||
			       (t->has[K_FILL] && kinds[k].flags & KF_UNBLOCKS));
			add_kind(t, k);
		}
		t->fill = t->has[K_FILL];
		t->open = !t->fill && (t->has[K_OPEN] || t->has[K_PAUSE]);
		t->jumps = t->has[K_SIGLONGJMP] || t->has[K_LONGJMP];
		t->has_timer = t->jumps && rnd(rng, 2);
		t->alt = t->has[K_ALTSTACK];
		if (t->alt) {
			t->altsize = (size_t)(32 + 32 * rnd(rng, 2)) << 10;
			t->altstack = mmap(NULL, t->altsize, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			CHECK(t->altstack != MAP_FAILED);
		}
		char *p = t->kstr;
		for (int k = 0; k < t->nkinds; k++)
			p += snprintf(p, (size_t)(t->kstr + sizeof t->kstr - p),
				      "%s%s", k ? "," : "", kinds[t->kind[k]].name);
	}
	return nthreads;
}

/* Progress and delivery, waited for with a generous bound -------------------- */

static uint64_t *last_progress;

static void checkpoint(void)
{
	beat("checkpoint");
	uint64_t end = mono() + 10000000000u;
	for (int i = 0; i < nsibs; i++) {
		struct sib *t = &sibs[i];
		while (atomic_load(&t->progress) <= last_progress[i]) {
			if (mono() > end) {
				dump_task(stderr, mypid, atomic_load(&t->tid));
				violation(t, "no progress in 10 s");
				break;
			}
			nap_ns(1000000);
			beat(NULL);
		}
		last_progress[i] = atomic_load(&t->progress);
	}
	/* What was sent before the last checkpoint has arrived by now: a
	 * queued signal as itself, a standard one at least merged into a
	 * delivery that began after its send. */
	for (int i = 0; i < nmix; i++) {
		struct sib *t = &sibs[i];
		for (int s = 0; s < NSLOT; s++) {
			struct acct *a = &t->acct[s];
			while ((slot_rt(s) ? atomic_load(&a->recv)
					   : atomic_load(&a->upto)) < t->snap[s]) {
				if (mono() > end) {
					dump_task(stderr, mypid,
						  atomic_load(&t->tid));
					violation(t, "%s sent (%" PRIu64 " of "
						  "them) not delivered in 10 s "
						  "(%" PRIu64 " delivered)",
						  slot_name[s], t->snap[s],
						  atomic_load(&a->recv));
					break;
				}
				nap_ns(1000000);
				beat(NULL);
			}
		}
		pthread_mutex_lock(&t->siglock);
		for (int s = 0; s < NSLOT; s++)
			t->snap[s] = atomic_load(&t->acct[s].sent);
		pthread_mutex_unlock(&t->siglock);
	}
	check_hv();
}

/* The watchdog, the hogs ---------------------------------------------------- */

static int wd_fd = -1;
static pid_t wd_pid, hog_pid;

static void gdb_stacks(pid_t parent)
{
	const char *ng = getenv("CFORK_TEST_NO_GDB");
	if ((ng && *ng && strcmp(ng, "0")) || access("/usr/bin/gdb", X_OK))
		return;
	char pidarg[16];
	snprintf(pidarg, sizeof pidarg, "%d", (int)parent);
	fflush(stderr);
	pid_t g = fork();
	if (g == 0) {
		dup2(2, 1);
		execl("/usr/bin/gdb", "gdb", "-q", "-batch", "-nx", "-p", pidarg,
		      "-ex", "thread apply all bt", (char *)NULL);
		_exit(127);
	}
	if (g > 0)
		waitpid(g, NULL, 0);
}

/* -g: libcfork's count of handlers using its table stays up: who? */
static void stall_report(pid_t parent, uint32_t users)
{
	fprintf(stderr, "torture: seed %" PRIu64 ": DIAGNOSIS: cf_hot.users has "
		"been %u for 0.5 s at cfork %d; threads:\n", seed, users,
		atomic_load(&shm->cfork));
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)parent);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			dump_task(stderr, parent, (pid_t)atoi(e->d_name));
	if (d)
		closedir(d);
	gdb_stacks(parent);
}

static void watchdog_report(pid_t parent)
{
	fprintf(stderr, "torture: seed %" PRIu64 ": HANG: no progress for %d s "
		"at cfork %d (%s); replay: %s\n", seed, watch_s,
		atomic_load(&shm->cfork), shm->phase, replay);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)parent);
	DIR *d = opendir(path);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			dump_task(stderr, parent, (pid_t)atoi(e->d_name));
	if (d)
		closedir(d);
	gdb_stacks(parent);
}

static void start_watchdog(void)
{
	shm = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(shm != MAP_FAILED);
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	pid_t parent = getpid();
	wd_pid = fork();
	CHECK(wd_pid >= 0);
	if (wd_pid == 0) {
		close(p[1]);
		prctl(PR_SET_NAME, "torture-watch");
		uint64_t last = ~0ull, since = mono(), held = 0;
		bool stalls = gdb_stall && cf_hot_words;
		int stall_reports = 0;
		for (;;) {
			struct pollfd q = { p[0], POLLIN, 0 };
			if (poll(&q, 1, stalls ? 1 : 1000) > 0)
				_exit(0);          /* the parent is done */
			uint32_t u = 0;
			struct iovec lo = { &u, sizeof u }, re = {
				(void *)&cf_hot_words[4], sizeof u };
			if (stalls && process_vm_readv(parent, &lo, 1, &re, 1, 0) ==
					      (ssize_t)sizeof u && u) {
				if (!held)
					held = mono();
				else if (mono() - held > 500000000u &&
					 stall_reports++ < 2) {
					stall_report(parent, u);
					held = 0;
				}
			} else
				held = 0;
			uint64_t b = atomic_load(&shm->beat);
			if (b != last) {
				last = b;
				since = mono();
			} else if (mono() - since >= (uint64_t)watch_s * 1000000000u) {
				watchdog_report(parent);
				kill(parent, SIGKILL);
				_exit(0);
			}
		}
	}
	close(p[0]);
	wd_fd = p[1];
}

static void *hog_spin(void *arg)
{
	volatile unsigned long n = 0;
	for (;;)
		n++;
	return arg;
}

static void start_hogs(int n)
{
	if (n <= 0)
		return;
	pid_t parent = getpid();
	hog_pid = fork();
	CHECK(hog_pid >= 0);
	if (hog_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		close(wd_fd);
		prctl(PR_SET_NAME, "torture-hog");
		for (int i = 0; i < n; i++) {
			pthread_t th;
			if (pthread_create(&th, NULL, hog_spin, NULL))
				_exit(1);
		}
		for (;;)
			pause();
	}
}

/* Descriptors --------------------------------------------------------------- */

static void list_fds(unsigned char *set, size_t n)
{
	memset(set, 0, n);
	DIR *d = opendir("/proc/self/fd");
	CHECK(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			int fd = atoi(e->d_name);
			if (fd >= 0 && (size_t)fd < n && fd != dirfd(d))
				set[fd] = 1;
		}
	closedir(d);
}

static int count_tasks(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	CHECK(d);
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Main ------------------------------------------------------------------------ */

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-s SEED] [-n CFORKS] [-t THREADS] "
		"[-k KIND,...] [-x KIND,...] [-a stub,held,async|none] [-H HOGS] [-W] "
		"[-d] [-c] [-v] [-g] [-w SECONDS] [-l]\n",
		argv0);
	exit(T_ERROR);
}

/* -k: only these kinds; -x: not these. */
static void parse_kinds(const char *arg, bool exclude)
{
	if (!exclude)
		kinds_allowed = 0;
	for (const char *p = arg; *p;) {
		size_t len = strcspn(p, ",");
		int k = kind_by_name(p, len);
		if (k < 0) {
			fprintf(stderr, "torture: unknown kind \"%.*s\" (-l "
				"lists them)\n", (int)len, p);
			exit(T_ERROR);
		}
		if (exclude)
			kinds_allowed &= ~(1ull << k);
		else
			kinds_allowed |= 1ull << k;
		p += len + (p[len] == ',');
	}
}

/* The library reads its environment when it is loaded: set what this run
 * needs and start again. */
static void ensure_env(char **argv)
{
	bool again = false;
	const char *m = getenv("CFORK_MODE");
	if (!m || !*m) {
		setenv("CFORK_MODE", "quiesce", 1);
		again = true;
	}
	const char *to = getenv("CFORK_TIMEOUT_MS");
	if (deaf && (!to || !*to)) {
		setenv("CFORK_TIMEOUT_MS", "100", 1);
		again = true;
	}
	if (again) {
		execv("/proc/self/exe", argv);
		DIE("execv /proc/self/exe: %s", strerror(errno));
	}
	mode_forced = !strcmp(getenv("CFORK_MODE"), "quiesce");
}

static struct sib *start_sib(int idx, enum role role)
{
	struct sib *t = &sibs[idx];
	if (role != ROLE_MIX)
		init_sib(t, idx, role);
	if (!t->kstr[0])
		snprintf(t->kstr, sizeof t->kstr, "-");
	pthread_attr_t at;
	pthread_attr_init(&at);
	if (t->stack_size)
		pthread_attr_setstacksize(&at, t->stack_size);
	int r = pthread_create(&t->th, &at, sib_main, t);
	pthread_attr_destroy(&at);
	if (r)
		DIE("pthread_create: %s", strerror(r));
	return t;
}

static void join_all(int from, int to, uint64_t end)
{
	for (int i = from; i < to; i++) {
		struct sib *t = &sibs[i];
		while (!atomic_load(&t->done) && mono() < end) {
			nap_ns(1000000);
			beat(NULL);
		}
		if (!atomic_load(&t->done)) {
			dump_task(stderr, mypid, atomic_load(&t->tid));
			violation(t, "still running 20 s after it was told to "
				  "stop");
			fail_exit();
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		int r = pthread_timedjoin_np(t->th, NULL, &ts);
		if (r) {
			violation(t, "pthread_join: %s", strerror(r));
			fail_exit();
		}
	}
}

static void print_forker(const struct forker *f)
{
	if (!f->cforks)
		return;
	printf("torture: seed %" PRIu64 ": %s: %" PRIu64 " cforks, quiesce "
	       "mean %.3f ms max %.3f ms, parked %" PRIu64 " (redirected %"
	       PRIu64 "), %" PRIu64 " with a sibling claimed asleep, %" PRIu64
	       " signals, %" PRIu64 " back-offs, %" PRIu64 " not coherent, %"
	       PRIu64 " reports overwritten by another cfork; children:",
	       seed, f->name, f->cforks, (double)f->quiesce_ns / 1e6 /
	       (double)(f->cforks - f->overwritten ? f->cforks - f->overwritten : 1),
	       (double)f->quiesce_max / 1e6, f->parked, f->redirected,
	       f->claimed, f->signals, f->backoffs, f->incoherent,
	       f->overwritten);
	for (int a = 0; a < NACT; a++)
		printf(" %s %" PRIu64, act_name[a], f->acts[a]);
	printf("\n");
}

int main(int argc, char **argv)
{
	bool have_seed = false;
	int opt;
	char *end;
	while ((opt = getopt(argc, argv, "s:n:t:k:x:a:H:Wdcvgw:l")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoull(optarg, &end, 0);
			if (*end)
				usage(argv[0]);
			have_seed = true;
			break;
		case 'n': ncforks = atoi(optarg); break;
		case 't': nthreads = atoi(optarg); break;
		case 'k': parse_kinds(optarg, false); break;
		case 'x': parse_kinds(optarg, true); break;
		case 'a':
			avoid = 0;
			if (strstr(optarg, "stub"))
				avoid |= AVOID_STUB;
			if (strstr(optarg, "held"))
				avoid |= AVOID_HELD;
			if (strstr(optarg, "async"))
				avoid |= AVOID_ASYNC;
			break;
		case 'H': nhogs = atoi(optarg); break;
		case 'W': no_writer = true; break;
		case 'd': deaf = true; break;
		case 'c': cont = true; break;
		case 'v': verbose = true; break;
		case 'g': gdb_stall = true; break;
		case 'w': watch_s = atoi(optarg); break;
		case 'l':
			for (int k = 0; k < NKINDS; k++)
				printf("%-16s %s\n", kinds[k].name, kinds[k].what);
			return T_PASS;
		default: usage(argv[0]);
		}
	}
	if (optind != argc || ncforks < 0 || nthreads > 64 || watch_s < 1)
		usage(argv[0]);
	if (!have_seed) {
		seed = ns_now(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 32);
		seed = mix64(&seed) % 1000000000u;
		/* the replay must get the same seed */
		char s[32];
		snprintf(s, sizeof s, "%" PRIu64, seed);
		char **av = calloc((size_t)argc + 3, sizeof *av);
		CHECK(av);
		av[0] = argv[0];
		av[1] = "-s";
		av[2] = s;
		for (int i = 1; i < argc; i++)
			av[i + 2] = argv[i];
		execv("/proc/self/exe", av);
		DIE("execv /proc/self/exe: %s", strerror(errno));
	}
	ensure_env(argv);
	t_child_init();
	mypid = getpid();
	{
		/* The replay: the library's variables, then the command. */
		static const char *const vars[] = { "CFORK_MODE",
			"CFORK_TIMEOUT_MS", "CFORK_ON_TIMEOUT", "CFORK_SIGNAL" };
		char *p = replay, *e = replay + sizeof replay - 64;
		for (size_t v = 0; v < sizeof vars / sizeof *vars; v++) {
			const char *val = getenv(vars[v]);
			if (val && *val && p < e)
				p += snprintf(p, (size_t)(e - p), "%s=%s ",
					      vars[v], val);
		}
		for (int i = 0; i < argc && p < e; i++)
			p += snprintf(p, (size_t)(e - p), "%s%s", i ? " " : "",
				      argv[i]);
	}
	static unsigned char fds0[4096], fds1[4096];
	list_fds(fds0, sizeof fds0);
	printf("torture: seed %" PRIu64 "\n", seed);
	t_alarm((unsigned)(300 + ncforks / 2 + (deaf ? ncforks / 4 : 0)));

	/* Signals: the program's numbers, never libcfork's. */
	slot_sig[S_USR1] = SIGUSR1;
	slot_sig[S_USR2] = SIGUSR2;
	slot_sig[S_RTA] = SIGRTMIN + 2;
	slot_sig[S_RTB] = SIGRTMIN + 3;
	slot_sig[S_RTJ] = SIGRTMIN + 4;
	slot_sig[S_RTS] = SIGRTMIN + 6;
	sig_rtt = SIGRTMIN + 5;
	const char *cs = getenv("CFORK_SIGNAL");
	int ours = cs && *cs ? atoi(cs) : SIGRTMAX - 6;
	cfork_signo = ours;
	for (int s = 0; s < NSLOT; s++)
		if (slot_sig[s] == ours || sig_rtt == ours || ours == SIGRTMIN + 7)
			DIE("CFORK_SIGNAL=%d is one of the harness's signals", ours);
	sigemptyset(&prog_set);
	sigemptyset(&h_set);
	for (int s = 0; s < NSLOT; s++)
		sigaddset(&prog_set, slot_sig[s]);
	for (int s = S_USR1; s <= S_RTA; s++)
		sigaddset(&h_set, slot_sig[s]);
	sigaddset(&prog_set, sig_rtt);
	sigaddset(&prog_set, SIGALRM);
	sigset_t mm = prog_set;
	sigdelset(&mm, SIGALRM);         /* the alarm is the main thread's */
	CHECK(pthread_sigmask(SIG_SETMASK, &mm, NULL) == 0);
	signal(SIGPIPE, SIG_IGN);
	/* The time left that nanosleep reports is to the timer's hard
	 * expiry, which is the deadline plus the timer slack. */
	slack_ns = (uint64_t)prctl(PR_GET_TIMERSLACK) + 1000;

	/* The mix. */
	uint64_t rng = seed ^ 0x746f727475726521ull;
	CHECK(pipe2(deadpipe, O_CLOEXEC) == 0);
	sibs = calloc(64 + 4, sizeof *sibs);
	last_progress = calloc(64 + 4, sizeof *last_progress);
	CHECK(sibs && last_progress);
	h_restart = rnd(&rng, 2);
	h_fill = rnd(&rng, 3) == 0;
	h_spin_ns = rnd(&rng, 2) ? rnd(&rng, 100000) : 0;
	alt_spin_ns = 50000 + rnd(&rng, 250000);
	int hogs = (int)rnd(&rng, 4);
	if (nhogs < 0)
		nhogs = hogs;
	nmix = build_mix(&rng);
	nsibs = nmix;
	install_handlers();
	find_lib_symbols();
	if (!know_lib)
		printf("torture: libcfork's symbols not found: jumps are not "
		       "checked for what they cross\n");
	else if (verbose)
		printf("torture: libcfork's stub %#lx-%#lx, %#lx-%#lx; "
		       "trampoline waits return to %#lx %#lx\n",
		       (unsigned long)stub_lo[0], (unsigned long)stub_hi[0],
		       (unsigned long)stub_lo[1], (unsigned long)stub_hi[1],
		       (unsigned long)held_ret[0], (unsigned long)held_ret[1]);
	module = t_module();
	for (int k = 0; k < NENV; k++) {
		char name[32];
		snprintf(name, sizeof name, "TORTURE_ENV_%d", k);
		setenv(name, "0", 1);
	}
	memset(scan_buf, 'a', sizeof scan_buf - 1);

	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	pthread_mutexattr_settype(&ma, rnd(&rng, 2) ? PTHREAD_MUTEX_ERRORCHECK
						     : PTHREAD_MUTEX_NORMAL);
	CHECK(pthread_mutex_init(&pi_m, &ma) == 0);
	pthread_mutexattr_destroy(&ma);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	if (rnd(&rng, 2))
		pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	CHECK(pthread_mutex_init(&robust_m, &ma) == 0);
	pthread_mutexattr_destroy(&ma);

	start_watchdog();
	start_hogs(nhogs);

#ifdef HAVE_URING
	if (!no_writer) {
		int e = pinned_setup(&pin);
		if (e < 0)
			printf("torture: io_uring cannot pin memory here (%s): "
			       "no pinned writer\n", strerror(-e));
		else
			pin_ok = true;
	}
#endif

	mainf.rng = rng ^ 0x6d61696e;
	CHECK(pipe2(mainf.pipe, O_CLOEXEC | O_NONBLOCK) == 0);
	sidef.rng = rng ^ 0x73696465;
	CHECK(pipe2(sidef.pipe, O_CLOEXEC | O_NONBLOCK) == 0);
	for (int i = 0; i < nmix; i++)
		if (sibs[i].cforker) {
			sibs[i].forker = &sidef;
			sidef.t = &sibs[i];
		}
	for (int i = 0; i < nmix; i++)
		start_sib(i, ROLE_MIX);
	start_sib(nsibs++, ROLE_WAKER);
	start_sib(nsibs++, ROLE_SIGNALLER);
	if (pin_ok)
		start_sib(nsibs++, ROLE_WRITER);
	if (deaf)
		deaf_sib = start_sib(nsibs++, ROLE_DEAF);
	for (int i = 0; i < nsibs; i++)
		while (!atomic_load(&sibs[i].started))
			nap_ns(1000000);

	char kindlist[512] = "";
	for (int k = 0, n = 0; k < NKINDS; k++) {
		bool used = false;
		for (int i = 0; i < nmix; i++)
			used |= sibs[i].has[k];
		if (used)
			n += snprintf(kindlist + n, sizeof kindlist - (size_t)n,
				      "%s%s", n ? "," : "", kinds[k].name);
	}
	printf("torture: seed %" PRIu64 ": %d threads (kinds %s), waker, "
	       "signaller%s%s, %d hogs; handlers%s%s, spin %" PRIu64 " us\n",
	       seed, nmix, kindlist, pin_ok ? ", pinned writer" : "",
	       deaf ? ", deaf thread" : "", nhogs,
	       h_restart ? " SA_RESTART" : "", h_fill ? " block all" : "",
	       h_spin_ns / 1000);
	if (verbose)
		for (int i = 0; i < nsibs; i++) {
			printf("  ");
			describe_thread(stdout, &sibs[i]);
			printf("%s%s%s%s\n", sibs[i].open ? " [open]" : "",
			       sibs[i].fill ? " [fill]" : "",
			       sibs[i].has_timer ? " [timer]" : "",
			       sibs[i].alt ? " [altstack]" : "");
		}
	nap_ns(20000000);

	for (int i = 0; i < ncforks; i++) {
		atomic_store(&cur_cfork, i);
		beat("cfork");
		one_cfork(&mainf, i);
		check_hv();
		if (i % 25 == 24)
			checkpoint();
		nap_ns(rnd(&rng, 4000000));
	}
	checkpoint();

	/* The end: everyone stops, is joined, and has had every signal. */
	beat("stopping the mix");
	atomic_store(&stop_mix, 1);
	join_all(0, nmix, mono() + 20000000000u);
	beat("stopping the helpers");
	atomic_store(&stop_helpers, 1);
	join_all(nmix, nsibs, mono() + 20000000000u);
	check_hv();
	if (hog_pid > 0) {
		kill(hog_pid, SIGKILL);
		waitpid(hog_pid, NULL, 0);
	}
	int tasks = count_tasks();
	if (tasks != 1)
		violation(NULL, "%d threads left after every one was joined",
			  tasks - 1);
	if (robust_lock(NULL) == 0)
		pthread_mutex_unlock(&robust_m);
	if (atomic_load(&deaths_seen) != atomic_load(&deaths_made))
		violation(NULL, "%" PRIu64 " robust mutex owners died, %" PRIu64
			  " EOWNERDEAD seen", atomic_load(&deaths_made),
			  atomic_load(&deaths_seen));
	struct counts tot = { 0 };
	uint64_t sent[NSLOT] = { 0 }, recv[NSLOT] = { 0 }, timer_hits = 0;
	for (int i = 0; i < nmix; i++) {
		struct sib *t = &sibs[i];
		for (int s = 0; s < NSLOT; s++) {
			uint64_t se = atomic_load(&t->acct[s].sent);
			uint64_t re = atomic_load(&t->acct[s].recv);
			uint64_t up = atomic_load(&t->acct[s].upto);
			sent[s] += se;
			recv[s] += re;
			if (slot_rt(s) ? re != se : re > se || up < se)
				violation(t, "%s: %" PRIu64 " sent, %" PRIu64
					  " delivered%s", slot_name[s], se, re,
					  slot_rt(s) ? "" : " (or one sent "
					  "after the last delivery began)");
		}
		tot.ops += t->cnt.ops;
		tot.eintr_h += t->cnt.eintr_h;
		tot.eintr_doc += t->cnt.eintr_doc;
		tot.eintr_left += t->cnt.eintr_left;
		tot.jumps += t->cnt.jumps;
		tot.cancels += t->cnt.cancels;
		tot.churned += t->cnt.churned;
		tot.coro_switches += t->cnt.coro_switches;
		tot.sigwaited += t->cnt.sigwaited;
		tot.owner_deaths += t->cnt.owner_deaths;
		timer_hits += atomic_load(&t->timer_hits);
	}
	for (int i = 0; i < nsibs; i++)
		fini_sib(&sibs[i]);
	close(deadpipe[0]);
	close(deadpipe[1]);
	close(mainf.pipe[0]);
	close(mainf.pipe[1]);
	close(sidef.pipe[0]);
	close(sidef.pipe[1]);
#ifdef HAVE_URING
	if (pin_ok) {
		io_uring_queue_exit(&pin.ring);
		munmap(pin.mem, pin.len);
	}
#endif
	close(wd_fd);
	waitpid(wd_pid, NULL, 0);
	list_fds(fds1, sizeof fds1);
	for (size_t fd = 0; fd < sizeof fds1; fd++)
		if (fds1[fd] != fds0[fd])
			violation(NULL, "descriptor %zu %s", fd, fds1[fd] ?
				  "left open" : "closed behind the program's back");

	print_forker(&mainf);
	print_forker(&sidef);
	printf("torture: seed %" PRIu64 ": siblings: %" PRIu64 " operations, %"
	       PRIu64 " EINTR after a program handler, %" PRIu64 " EINTR from "
	       "syscall(2) and %" PRIu64 " after a jump left a continued call "
	       "(both documented), %" PRIu64 " jumps out "
	       "of handlers, %" PRIu64 " cancellations, %" PRIu64 " threads "
	       "churned, %" PRIu64 " coroutine switches, %" PRIu64 " signals "
	       "taken by sigwait/signalfd, %" PRIu64 " timer signals, %" PRIu64
	       " robust owner deaths\n", seed, tot.ops, tot.eintr_h,
	       tot.eintr_doc, tot.eintr_left, tot.jumps,
	       tot.cancels, tot.churned, tot.coro_switches, tot.sigwaited,
	       timer_hits, tot.owner_deaths);
	printf("torture: seed %" PRIu64 ": jumps across libcfork's stub %" PRIu64
	       " (withheld %" PRIu64 "), across a held handler %" PRIu64
	       " (withheld %" PRIu64 "); withheld over another handler's "
	       "frame %" PRIu64 "; cancellations through the stub %" PRIu64
	       ", through libcfork's handler %" PRIu64 "\n", seed,
	       atomic_load(&jumps_stub), atomic_load(&withheld_stub),
	       atomic_load(&jumps_held), atomic_load(&withheld_held),
	       atomic_load(&withheld_frame), atomic_load(&cancels_stub),
	       atomic_load(&cancels_handler));
	printf("torture: seed %" PRIu64 ": signals sent/delivered:", seed);
	for (int s = 0; s < NSLOT; s++)
		printf(" %s %" PRIu64 "/%" PRIu64, slot_name[s], sent[s], recv[s]);
	printf("\n");
	printf("torture: seed %" PRIu64 ": %" PRIu64 " cforks, %d violations, "
	       "%d threads, kinds: %s\n", seed, mainf.cforks + sidef.cforks,
	       atomic_load(&nviol), nmix, kindlist);
	return atomic_load(&nviol) ? T_FAIL : T_PASS;
}
