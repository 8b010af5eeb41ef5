/* SPDX-License-Identifier: MIT */
/*
 * Shared by the "healthy child" tests: a bounded wait for a child (a child
 * that does not exit in time is a hang: it is shown, killed and counted),
 * a tally of cfork latencies and of the library's own reports, and the
 * dlopen target.  Call t_child_init() first, before any thread exists.
 */
#ifndef CFORK_CHILD_H
#define CFORK_CHILD_H

#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

#include "cfork.h"
#include "test.h"

/* Read once, before threads start: a sibling may be calling setenv. */
static bool t_no_gdb;
static pid_t t_main_pid;

static inline void t_child_init(void)
{
	const char *v = getenv("CFORK_TEST_NO_GDB");
	t_no_gdb = v && *v && strcmp(v, "0") != 0;
	t_main_pid = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
}

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer checks for leaks at exit.  In a forked child the sibling
 * threads are gone, and whatever only their stacks pointed to looks
 * leaked; the check would also take the sanitizer allocator's locks.  So
 * it runs in the test's own process, never in its children. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return t_main_pid && getpid() != t_main_pid;
}
#endif

static inline uint64_t t_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void t_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u),
			       (long)(ns % 1000000000u) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Prints where a hung child sits: its kernel wait channel and, when gdb is
 * installed, every thread's stack (at most twice per test, and never when
 * CFORK_TEST_NO_GDB is set).  gdb gets an environment of its own: the
 * process's may be changing under a sibling's setenv. */
static inline void t_show_hang(pid_t pid, const char *what, bool stacks)
{
	static int shown;
	char path[64], buf[256];
	fprintf(stderr, "HANG: %s child %d did not exit in time\n", what,
		(int)pid);
	snprintf(path, sizeof path, "/proc/%d/wchan", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			fprintf(stderr, "  wchan: %s\n", buf);
		}
	}
	if (!stacks || t_no_gdb || shown >= 2 ||
	    access("/usr/bin/gdb", X_OK) != 0)
		return;
	shown++;
	char pidarg[16];
	snprintf(pidarg, sizeof pidarg, "%d", (int)pid);
	char *argv[] = { "gdb", "-q", "-batch", "-nx", "-p", pidarg,
			 "-ex", "thread apply all bt", NULL };
	char *envp[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, 2, 1);
	fflush(NULL);
	pid_t g;
	if (posix_spawn(&g, "/usr/bin/gdb", &fa, NULL, argv, envp) == 0) {
		int st;
		while (waitpid(g, &st, 0) < 0 && errno == EINTR)
			;
	}
	posix_spawn_file_actions_destroy(&fa);
}

enum { T_CHILD_OK, T_CHILD_BAD, T_CHILD_HANG };

/* Waits at most timeout_ms for pid.  OK: exited with status 0.  BAD: any
 * other status (printed).  HANG: still there at the deadline; shown (with
 * its stacks if asked), killed with SIGKILL and reaped. */
static inline int t_wait_child(pid_t pid, unsigned timeout_ms,
			       const char *what, bool stacks)
{
	uint64_t deadline = t_now_ns() + (uint64_t)timeout_ms * 1000000u;
	uint64_t nap = 20000;
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			DIE("waitpid(%d): %s", (int)pid, strerror(errno));
		if (t_now_ns() >= deadline) {
			t_show_hang(pid, what, stacks);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return T_CHILD_HANG;
		}
		t_sleep_ns(nap);
		if (nap < 2000000)
			nap *= 2;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return T_CHILD_OK;
	if (WIFEXITED(status))
		fprintf(stderr, "BAD: %s child %d exited with status %d\n",
			what, (int)pid, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		fprintf(stderr, "BAD: %s child %d killed by signal %d (%s)\n",
			what, (int)pid, WTERMSIG(status),
			strsignal(WTERMSIG(status)));
	return T_CHILD_BAD;
}

/* Latency of the fork calls, in nanoseconds. */
struct t_lat {
	uint64_t n, sum, max;
};

static inline void t_lat_add(struct t_lat *l, uint64_t ns)
{
	l->n++;
	l->sum += ns;
	if (ns > l->max)
		l->max = ns;
}

static inline void t_lat_print(const struct t_lat *l, const char *what)
{
	printf("%s latency: mean %.3f ms, max %.3f ms over %llu calls\n", what,
	       l->n ? (double)l->sum / (double)l->n / 1e6 : 0.0,
	       (double)l->max / 1e6, (unsigned long long)l->n);
}

/* The library's own account of each cfork (cfork_last_report): a cfork
 * that was not coherent forked with a sibling still running, which is not
 * what these tests check (the coherence tests do) but is counted, printed
 * and, for the first few, explained thread by thread. */
struct t_reports {
	unsigned quiesce, direct, incoherent, backoffs;
	unsigned long long parked, redirected;
};

static inline void t_report_add(struct t_reports *t)
{
	struct cfork_report r;
	if (cfork_last_report(&r, sizeof r) != 0)
		return;
	t->quiesce += r.method == CFORK_METHOD_QUIESCE;
	t->direct += r.method == CFORK_METHOD_DIRECT;
	t->backoffs += r.backoffs;
	t->parked += r.parked;
	t->redirected += r.redirected;
	if (r.coherent)
		return;
	if (t->incoherent++ >= 3)
		return;
	fprintf(stderr, "NOT COHERENT: cfork pid %d: parked %u, not stopped "
		"%u, rounds %u, back-offs %u, quiesce %.1f ms\n", (int)r.pid,
		r.parked, r.not_stopped, r.rounds, r.backoffs,
		(double)r.quiesce_ns / 1e6);
	struct cfork_straggler s[8];
	size_t n = cfork_last_stragglers(s, 8, sizeof s[0]);
	for (size_t i = 0; i < n && i < 8; i++)
		fprintf(stderr, "  straggler tid %d (%.16s) state %c syscall "
			"%ld wchan %.32s: %s\n", (int)s[i].tid, s[i].name,
			s[i].state, s[i].syscall, s[i].wchan,
			s[i].why ? s[i].why : "?");
}

static inline void t_report_print(const struct t_reports *t)
{
	printf("library reports: %u quiesced, %u direct, %u NOT coherent "
	       "(not asserted here), %u back-offs, %llu threads parked (%llu "
	       "by a redirected return)\n", t->quiesce, t->direct,
	       t->incoherent, t->backoffs, t->parked, t->redirected);
}

/* n cforks, each child running child() (which must exit), each waited
 * for with a bound: hangs, bad exits, latency and the library's reports. */
struct t_run {
	int hangs, bad;
	struct t_lat lat;
	struct t_reports rep;
};

static inline struct t_run t_cforks(int n, void (*child)(void),
				    unsigned wait_ms)
{
	struct t_run r = { 0 };
	for (int i = 0; i < n; i++) {
		fflush(NULL);
		uint64_t t0 = t_now_ns();
		pid_t pid = cfork();
		if (pid == 0)
			child();
		uint64_t t1 = t_now_ns();
		if (pid < 0)
			DIE("cfork: %s", strerror(errno));
		t_lat_add(&r.lat, t1 - t0);
		t_report_add(&r.rep);
		switch (t_wait_child(pid, wait_ms, "cfork", true)) {
		case T_CHILD_HANG: r.hangs++; break;
		case T_CHILD_BAD: r.bad++; break;
		}
	}
	return r;
}

/* The shared object the dlopen loops load: the test module built with the
 * tests (CFORK_TEST_MODULE, set by the test harness), else a small library
 * every Debian system has and that the test does not already use.  It must
 * not be loaded yet, or dlopen/dlclose would only count references. */
static inline const char *t_module(void)
{
	static const char *const fallback[] = {
		"libutil.so.1", "libanl.so.1", "libz.so.1", NULL,
	};
	const char *env = getenv("CFORK_TEST_MODULE");
	if (env && *env) {
		void *h = dlopen(env, RTLD_NOW | RTLD_LOCAL);
		if (h) {
			dlclose(h);
			return env;
		}
		fprintf(stderr, "CFORK_TEST_MODULE=%s: %s; trying others\n",
			env, dlerror());
	}
	for (int i = 0; fallback[i]; i++) {
		void *h = dlopen(fallback[i], RTLD_NOW | RTLD_NOLOAD);
		if (h) {
			dlclose(h);
			continue;        /* already loaded: useless */
		}
		h = dlopen(fallback[i], RTLD_NOW | RTLD_LOCAL);
		if (h) {
			dlclose(h);
			return fallback[i];
		}
	}
	return NULL;
}

#endif
