/* SPDX-License-Identifier: MIT */
/*
 * The environment variables: a bad value gives one message on stderr that
 * names the variable, the default is used, and cfork() still works; good
 * values are obeyed silently.
 *
 * The variables are read once, when libcfork is loaded, so every case runs
 * this program again (posix_spawn, stdout and stderr captured) with its own
 * environment and every other CFORK_* variable removed.  The copy (--child)
 * first cforks a few times next to an idle sibling, each child must exit 0;
 * then, if asked, it starts a sibling that blocks the cfork signal (all
 * signals, or one, with rt_sigprocmask) and spins or sleeps, and cforks
 * once more, expecting a child or -1/EAGAIN.  The time that call took
 * tells which timeout was in force; whether it fails tells which mode,
 * signal and timeout policy were.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "cfork.h"
#include "run.h"

/* ---- the copy of the program that runs one case ---- */

static _Atomic bool stop;
static _Atomic bool ready;
static int block_signo;          /* 0: all signals */
static bool block_spin;
static _Atomic int prepares, parents;

static void count_prepare(void) { atomic_fetch_add(&prepares, 1); }
static void count_parent(void) { atomic_fetch_add(&parents, 1); }

static void *idle_sibling(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		usleep(1000);
	return NULL;
}

/* A sibling the cfork signal cannot reach: the quiesce can only time out
 * on it.  The mask is set with the system call itself, not
 * pthread_sigmask: a library may wrap the libc call to keep its own signal
 * deliverable (bdwgc does), and this sibling must really block it. */
static void *blocking_sibling(void *arg)
{
	(void)arg;
	sigset_t set;
	if (block_signo) {
		sigemptyset(&set);
		sigaddset(&set, block_signo);
	} else {
		sigfillset(&set);
	}
	if (syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, NULL, _NSIG / 8))
		DIE("rt_sigprocmask: %s", strerror(errno));
	atomic_store(&ready, true);
	volatile unsigned long spins = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if (block_spin)
			spins++;
		else
			usleep(1000);
	}
	return NULL;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* 0 when the child exited 0. */
static int reap(pid_t pid)
{
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* argv: --child FORKS BLOCK ACTIVITY EXPECT, where BLOCK is none, all,
 * default (SIGRTMAX - 6) or a signal number, ACTIVITY spin or sleep, and
 * EXPECT child or eagain.  Reports on stdout; stderr is the library's. */
static int child_main(char **argv)
{
	t_alarm(60);
	int forks = atoi(argv[2]);
	const char *block = argv[3], *expect = argv[5];
	block_spin = !strcmp(argv[4], "spin");
	CHECK(pthread_atfork(count_prepare, count_parent, NULL) == 0);

	pthread_t idle;
	CHECK(pthread_create(&idle, NULL, idle_sibling, NULL) == 0);
	for (int i = 0; i < forks; i++) {
		pid_t pid = cfork();
		if (pid == 0)
			_exit(0);
		if (pid < 0 || reap(pid) < 0) {
			printf("child: cfork %d of %d: %s\n", i + 1, forks,
			       pid < 0 ? strerror(errno) : "bad child");
			return T_FAIL;
		}
	}
	if (strcmp(block, "none")) {
		block_signo = !strcmp(block, "all") ? 0 :
			      !strcmp(block, "default") ? SIGRTMAX - 6 :
							  atoi(block);
		pthread_t blocker;
		CHECK(pthread_create(&blocker, NULL, blocking_sibling,
				     NULL) == 0);
		while (!atomic_load(&ready))
			usleep(100);
		usleep(5000);
		int64_t t0 = now_us();
		errno = 0;
		pid_t pid = cfork();
		int e = errno;
		int64_t t1 = now_us();
		if (pid == 0)
			_exit(0);
		printf("elapsed_us=%lld\n", (long long)(t1 - t0));
		if (!strcmp(expect, "eagain") && !(pid == -1 && e == EAGAIN)) {
			printf("child: cfork gave %d (%s), want -1/EAGAIN\n",
			       (int)pid, strerror(e));
			if (pid > 0)
				reap(pid);
			return T_FAIL;
		}
		if (!strcmp(expect, "child") && (pid <= 0 || reap(pid) < 0)) {
			printf("child: cfork gave %d (%s), want a child that "
			       "exits 0\n", (int)pid, strerror(e));
			return T_FAIL;
		}
		forks++;
		atomic_store(&stop, true);
		pthread_join(blocker, NULL);
	}
	atomic_store(&stop, true);
	pthread_join(idle, NULL);
	/* A failed cfork, like a failed fork, runs prepare and parent
	 * handlers once each. */
	if (atomic_load(&prepares) != forks || atomic_load(&parents) != forks) {
		printf("child: %d forks ran %d prepare and %d parent "
		       "handlers\n", forks, atomic_load(&prepares),
		       atomic_load(&parents));
		return T_FAIL;
	}
	return T_PASS;
}

/* ---- the driver ---- */

struct scenario {
	const char *vars[5];       /* NAME=VALUE, up to 4, NULL-ended */
	const char *block;         /* none, all, default, or a number */
	const char *activity;      /* spin, sleep */
	const char *expect;        /* child, eagain */
	const char *complains;     /* the variable the message names, or NULL */
	int min_ms, max_ms;        /* bounds on the blocked cfork's time */
	/* The timeout is so short that even an idle sibling may outlast it
	 * now and then: skip the first cforks, which must succeed. */
	bool tight;
};

static const char *self;

static void run_case(const struct scenario *c, struct t_output *o)
{
	char *argv[] = { (char *)self, "--child", c->tight ? "0" : "3",
			 (char *)c->block,
			 (char *)c->activity, (char *)c->expect, NULL };
	t_run(argv, c->vars, o);
}

/* CFORK_DEBUG=1 among the variables: its lines, not silence, are
 * expected. */
static bool debug_on(const struct scenario *c)
{
	for (int i = 0; i < 4 && c->vars[i]; i++)
		if (!strcmp(c->vars[i], "CFORK_DEBUG=1"))
			return true;
	return false;
}

/* CFORK_DEBUG's lines: one per cfork ("cfork: pid"), one per thread
 * that did not stop, nothing else.  The copy made 3 cforks (tight: none)
 * before the blocked one, which timed out; they may have too on a busy
 * machine. */
static const char *check_debug(const struct scenario *c, const char *err)
{
	int want = (c->tight ? 0 : 3) + 1;
	int lines = 0, cforks = 0, stragglers = 0, timeouts = 0;
	static char line[8192];
	for (const char *l = err; *l;) {
		size_t len = strcspn(l, "\n");
		memcpy(line, l, len);
		line[len] = '\0';
		l += len + (l[len] == '\n');
		lines++;
		cforks += !strncmp(line, "libcfork: cfork: pid ", 21);
		stragglers += !strncmp(line, "libcfork: not stopped: tid ", 27);
		timeouts += !!strstr(line, "NOT coherent (CFORK_TIMEOUT_MS "
				     "reached): ");
	}
	if (cforks != want)
		return "want one CFORK_DEBUG line per cfork";
	if (stragglers < 1 || lines != cforks + stragglers)
		return "want, besides, only one line per thread not stopped";
	if (timeouts < 1)
		return "want the timeout on the line of the cfork that hit it";
	return NULL;
}

static void describe(const struct scenario *c, FILE *f)
{
	for (int i = 0; i < 4 && c->vars[i]; i++)
		fprintf(f, "%.80s ", c->vars[i]);
	fprintf(f, "(sibling blocking %s, %s; expect %s)", c->block,
		c->activity, c->expect);
}

static bool check_case(const struct scenario *c)
{
	struct t_output o;
	run_case(c, &o);
	bool ok = WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0;
	const char *why = ok ? NULL : "the copy failed";
	/* One message, at load, naming the variable; none for good values. */
	int msgs = t_count(o.err, "libcfork:");
	bool debug = debug_on(c);
	if (ok && debug) {
		why = check_debug(c, o.err);
		ok = why == NULL;
	} else if (ok && c->complains &&
	    (msgs != 1 || !strstr(o.err, c->complains))) {
		ok = false;
		why = "want one libcfork: message naming the variable";
	}
	if (ok && !c->complains && !debug && msgs != 0) {
		ok = false;
		why = "want no message for a good value";
	}
	const char *el = strstr(o.out, "elapsed_us=");
	long long us = el ? atoll(el + 11) : -1;
	if (ok && strcmp(c->block, "none")) {
		if (us < 0) {
			ok = false;
			why = "no time reported";
		} else if (us < (long long)c->min_ms * 1000 ||
			   us > (long long)c->max_ms * 1000) {
			ok = false;
			why = "the blocked cfork took too long or too little";
		}
	}
	if (!ok) {
		fprintf(stderr, "FAIL: ");
		describe(c, stderr);
		fprintf(stderr, ": %s\n  status 0x%x, blocked cfork %lld us "
			"(bounds %d..%d ms)\n  stdout: %s\n  stderr: %s\n", why,
			o.status, us, c->min_ms, c->max_ms, o.out, o.err);
	}
	return ok;
}

#define Q "CFORK_MODE=quiesce"
#define FAIL "CFORK_ON_TIMEOUT=fail"

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "--child"))
		return child_main(argv);
	t_alarm(120);
	self = t_self();

	static char long_mode[8192] = "CFORK_MODE=";
	memset(long_mode + 11, 'x', sizeof long_mode - 12);
	static char other_signal[32], default_signal[32];
	/* Another real-time signal than the default, glibc's own excepted. */
	snprintf(other_signal, sizeof other_signal, "CFORK_SIGNAL=%d",
		 SIGRTMIN + 2);
	snprintf(default_signal, sizeof default_signal, "%d", SIGRTMAX - 6);

	const struct scenario cases[] = {
		/* Bad values: one message, the default, cfork works. */
		{ { "CFORK_MODE=bogus" }, "none", "sleep", "child",
		  "CFORK_MODE", 0, 0, false },
		{ { long_mode }, "none", "sleep", "child",
		  "CFORK_MODE", 0, 0, false },
		/* The default timeout (1 s) is what bounds the blocked
		 * cfork, not the bad value (0, a wrapped -5 or a huge one
		 * would end it at once or never). */
		{ { Q, FAIL, "CFORK_TIMEOUT_MS=abc" }, "all", "spin", "eagain",
		  "CFORK_TIMEOUT_MS", 900, 5000, false },
		{ { Q, FAIL, "CFORK_TIMEOUT_MS=0" }, "all", "spin", "eagain",
		  "CFORK_TIMEOUT_MS", 900, 5000, false },
		{ { Q, FAIL, "CFORK_TIMEOUT_MS=-5" }, "all", "sleep", "eagain",
		  "CFORK_TIMEOUT_MS", 900, 5000, false },
		{ { Q, FAIL, "CFORK_TIMEOUT_MS=99999999999" }, "all", "spin",
		  "eagain", "CFORK_TIMEOUT_MS", 900, 5000, false },
		/* The default policy forks anyway. */
		{ { Q, "CFORK_TIMEOUT_MS=1", "CFORK_ON_TIMEOUT=maybe" },
		  "all", "spin", "child",
		  "CFORK_ON_TIMEOUT", 0, 2000, false },
		/* The default signal is what a sibling must block to be
		 * out of reach. */
		{ { Q, FAIL, "CFORK_TIMEOUT_MS=200", "CFORK_SIGNAL=1" },
		  default_signal, "spin", "eagain",
		  "CFORK_SIGNAL", 150, 2000, false },
		{ { Q, FAIL, "CFORK_TIMEOUT_MS=200", "CFORK_SIGNAL=999" },
		  default_signal, "sleep", "eagain",
		  "CFORK_SIGNAL", 150, 2000, false },
		{ { Q, FAIL, "CFORK_TIMEOUT_MS=200", "CFORK_SIGNAL=x" },
		  default_signal, "spin", "eagain",
		  "CFORK_SIGNAL", 150, 2000, false },

		/* Good values, obeyed without a word. */
		{ { "CFORK_MODE=auto" }, "none", "sleep", "child",
		  NULL, 0, 0, false },
		{ { Q }, "none", "sleep", "child", NULL, 0, 0, false },
		/* direct never signals, so a sibling out of reach does not
		 * matter even with the strictest settings. */
		{ { "CFORK_MODE=direct", FAIL, "CFORK_TIMEOUT_MS=1" },
		  "all", "spin", "child", NULL, 0, 2000, true },
		/* The timeout, both policies, a spinning and a sleeping
		 * sibling: bounded, far below the 1 s default. */
		{ { Q, FAIL, "CFORK_TIMEOUT_MS=1" }, "all", "spin", "eagain",
		  NULL, 0, 500, true },
		{ { Q, FAIL, "CFORK_TIMEOUT_MS=1" }, "all", "sleep", "eagain",
		  NULL, 0, 500, true },
		{ { Q, "CFORK_ON_TIMEOUT=fork", "CFORK_TIMEOUT_MS=1" },
		  "all", "spin", "child", NULL, 0, 500, false },
		{ { Q, "CFORK_ON_TIMEOUT=fork", "CFORK_TIMEOUT_MS=1" },
		  "all", "sleep", "child", NULL, 0, 500, false },
		/* CFORK_SIGNAL moves the signal: blocking that one stops the
		 * quiesce, blocking the default one no longer does. */
		{ { Q, FAIL, "CFORK_TIMEOUT_MS=200", other_signal },
		  other_signal + 13, "spin", "eagain", NULL, 150, 2000, false },
		{ { Q, FAIL, "CFORK_TIMEOUT_MS=200", other_signal },
		  default_signal, "spin", "child", NULL, 0, 2000, false },
		/* CFORK_DEBUG after a timeout, both policies: the lines
		 * are checked, not the time (60 s is the copy's alarm),
		 * and only the cfork that must time out is made. */
		{ { Q, "CFORK_TIMEOUT_MS=200", "CFORK_DEBUG=1" },
		  "all", "sleep", "child", NULL, 0, 60000, true },
		{ { Q, FAIL, "CFORK_TIMEOUT_MS=200", "CFORK_DEBUG=1" },
		  "all", "spin", "eagain", NULL, 0, 60000, true },
	};

	int failed = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		failed += !check_case(&cases[i]);
	CHECK(failed == 0);
	return T_PASS;
}
