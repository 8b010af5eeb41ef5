/* SPDX-License-Identifier: MIT */
/*
 * forklat: the time one cfork() takes against one fork(), measured in the
 * same run, with sibling threads that are idle or busy.
 *
 * Cases (-c):
 *   idle    siblings blocked in pthread_cond_wait (1, 8 and 64 of them, or
 *           -t of them): the cost of stopping threads that do nothing.
 *   malloc  siblings in a malloc/free loop (they live inside libc, where a
 *           signal rarely finds them at a safe point);
 *   stdio   siblings in an fopen/fprintf/fclose loop (stdio's list lock);
 *   churn   siblings creating and joining threads (the thread list keeps
 *           changing under the quiesce);
 *   stress  all three kinds at once, -t of each;
 *   all     every case above (the default).
 *
 * Every repetition times one fork() and one cfork(), in alternating order
 * so that neither always runs right after the other; the clock covers only
 * the call that creates the child, until it returns in the parent.  The
 * child calls _exit(0) at once and the parent reaps it before the next
 * call.  For each case the program prints the median and the maximum in
 * microseconds and the ratio of the medians (cfork/fork), as a table and
 * as one key=value line per case for scripts.
 *
 * Usage: forklat [-t threads] [-n repetitions] [-c case] [-h]
 * Build: cc forklat.c $(pkg-config --cflags --libs libcfork) -lpthread
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cfork.h>

#define WARMUP 5
#define DEFAULT_N 200
#define DEFAULT_STRESS_THREADS 2
#define MAX_THREADS 4096

enum kind { IDLE, MALLOC, STDIO, CHURN, STRESS };
static const char *const kind_name[] = { "idle", "malloc", "stdio", "churn",
					 "stress" };

struct result {
	char name[32];
	int threads;            /* siblings started by the benchmark */
	int n;                  /* repetitions that succeeded for both calls */
	int failures;           /* calls that returned -1 */
	double fork_med, fork_max, cfork_med, cfork_max;
};

/* ---- siblings ---- */

static _Atomic bool stop;
static _Atomic int started;
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;

/* Blocked in a futex wait for the whole case: the cheapest sibling there
 * is, so the difference from fork() is the cost of the quiesce itself. */
static void *idle_sibling(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&idle_lock);
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&stop))
		pthread_cond_wait(&idle_cond, &idle_lock);
	pthread_mutex_unlock(&idle_lock);
	return NULL;
}

/* Mixed sizes, a few blocks kept alive, so that the thread takes arena
 * locks and visits the tcache, bins and occasionally mmap. */
static void *malloc_sibling(void *arg)
{
	uintptr_t seed = (uintptr_t)arg * 2654435761u + 1;
	void *keep[16] = { 0 };
	atomic_fetch_add(&started, 1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		size_t size = 16u << (seed >> 60 & 7);     /* 16 B .. 2 KiB */
		if ((seed >> 40 & 63) == 0)
			size = 200000;         /* above the mmap threshold */
		unsigned slot = (unsigned)(seed >> 32) % 16;
		free(keep[slot]);
		keep[slot] = malloc(size);
		if (keep[slot])
			memset(keep[slot], 1, 16);
	}
	for (int i = 0; i < 16; i++)
		free(keep[i]);
	return NULL;
}

/* fopen and fclose take stdio's list lock, fprintf the stream's lock, and
 * both allocate: the locks glibc's fork() itself takes. */
static void *stdio_sibling(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	for (unsigned i = 0; !atomic_load_explicit(&stop, memory_order_relaxed);
	     i++) {
		FILE *f = fopen("/dev/null", "w");
		if (!f)
			continue;
		fprintf(f, "line %u of a benchmark %s\n", i, "sibling");
		fclose(f);
	}
	return NULL;
}

static void *nothing(void *arg)
{
	return arg;
}

/* Threads appear and exit all the time: the quiesce must find the new
 * ones and not wait for the dead ones. */
static void *churn_sibling(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		pthread_t t;
		if (pthread_create(&t, NULL, nothing, NULL) == 0)
			pthread_join(t, NULL);
	}
	return NULL;
}

struct siblings {
	pthread_t *tids;
	int count;
};

static int start_kind(struct siblings *s, void *(*fn)(void *), int count)
{
	for (int i = 0; i < count; i++) {
		int e = pthread_create(&s->tids[s->count], NULL, fn,
				       (void *)(uintptr_t)(s->count + 1));
		if (e) {
			fprintf(stderr, "forklat: pthread_create: %s\n",
				strerror(e));
			return -1;
		}
		s->count++;
	}
	return 0;
}

static int start_siblings(struct siblings *s, enum kind k, int threads)
{
	atomic_store(&stop, false);
	atomic_store(&started, 0);
	s->count = 0;
	s->tids = calloc((size_t)threads * 3, sizeof *s->tids);
	if (!s->tids)
		return -1;
	int e = 0;
	switch (k) {
	case IDLE:
		e = start_kind(s, idle_sibling, threads);
		break;
	case MALLOC:
		e = start_kind(s, malloc_sibling, threads);
		break;
	case STDIO:
		e = start_kind(s, stdio_sibling, threads);
		break;
	case CHURN:
		e = start_kind(s, churn_sibling, threads);
		break;
	case STRESS:
		if (!(e = start_kind(s, malloc_sibling, threads)) &&
		    !(e = start_kind(s, stdio_sibling, threads)))
			e = start_kind(s, churn_sibling, threads);
		break;
	}
	/* Measure only once every sibling is where the case says it is
	 * (idle ones inside pthread_cond_wait: they hold the mutex until
	 * then, so taking it here waits for the last one). */
	while (atomic_load(&started) < s->count)
		usleep(1000);
	pthread_mutex_lock(&idle_lock);
	pthread_mutex_unlock(&idle_lock);
	usleep(20000);
	return e;
}

static void stop_siblings(struct siblings *s)
{
	pthread_mutex_lock(&idle_lock);
	atomic_store(&stop, true);
	pthread_cond_broadcast(&idle_cond);
	pthread_mutex_unlock(&idle_lock);
	for (int i = 0; i < s->count; i++)
		pthread_join(s->tids[i], NULL);
	free(s->tids);
	s->tids = NULL;
}

/* ---- measuring ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Times one call in the parent; returns the nanoseconds, or -1 (with a
 * message) when the call failed. */
static int64_t time_one(pid_t (*forker)(void), const char *name)
{
	uint64_t t0 = now_ns();
	pid_t pid = forker();
	uint64_t t1 = now_ns();
	if (pid == 0)
		_exit(0);
	if (pid < 0) {
		fprintf(stderr, "forklat: %s: %s\n", name, strerror(errno));
		return -1;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return (int64_t)(t1 - t0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static double median_us(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_u64);
	if (n % 2)
		return (double)v[n / 2] / 1000.0;
	return ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2000.0;
}

static const char *current_case;

/* A hang is the one result a benchmark must not hide behind a stalled
 * terminal: say which case it was. */
static void on_alarm(int sig)
{
	(void)sig;
	char msg[128];
	int len = snprintf(msg, sizeof msg,
			   "forklat: case %s is taking too long (a hang?)\n",
			   current_case ? current_case : "?");
	if (len > 0 && write(2, msg, (size_t)len) < 0)
		_exit(1);
	_exit(1);
}

static int measure(enum kind k, int threads, int n, struct result *r)
{
	struct siblings s = { 0 };
	memset(r, 0, sizeof *r);
	snprintf(r->name, sizeof r->name, "%s-%d", kind_name[k], threads);
	r->threads = k == STRESS ? threads * 3 : threads;
	current_case = r->name;
	/* Generous: the slowest cfork measured under stress is tens of ms. */
	alarm(60 + (unsigned)(n / 10));

	uint64_t *tf = calloc((size_t)n, sizeof *tf);
	uint64_t *tc = calloc((size_t)n, sizeof *tc);
	if (!tf || !tc || start_siblings(&s, k, threads) < 0) {
		stop_siblings(&s);
		free(tf);
		free(tc);
		return -1;
	}
	/* The first cfork sets up what it caches (the loaded objects, the
	 * thread table size); not what this benchmark is about. */
	for (int i = 0; i < WARMUP; i++) {
		time_one(fork, "fork");
		time_one(cfork, "cfork");
	}
	int m = 0;
	for (int i = 0; i < n; i++) {
		int64_t a, b;
		if (i % 2) {
			a = time_one(fork, "fork");
			b = time_one(cfork, "cfork");
		} else {
			b = time_one(cfork, "cfork");
			a = time_one(fork, "fork");
		}
		r->failures += (a < 0) + (b < 0);
		if (a < 0 || b < 0)
			continue;
		tf[m] = (uint64_t)a;
		tc[m] = (uint64_t)b;
		m++;
	}
	stop_siblings(&s);
	alarm(0);

	r->n = m;
	if (m > 0) {
		r->fork_med = median_us(tf, m);
		r->cfork_med = median_us(tc, m);
		r->fork_max = (double)tf[m - 1] / 1000.0;   /* sorted */
		r->cfork_max = (double)tc[m - 1] / 1000.0;
	}
	free(tf);
	free(tc);
	fprintf(stderr, "forklat: %s done\n", r->name);
	return 0;
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [-t threads] [-n repetitions] [-c case] [-h]\n"
		"  -t N  sibling threads: idle cases run with N instead of\n"
		"        1, 8 and 64; busy cases with N of each kind\n"
		"        (default %d)\n"
		"  -n N  timed forks and cforks per case (default %d)\n"
		"  -c C  idle, malloc, stdio, churn, stress (all three kinds)\n"
		"        or all (default)\n"
		"  -h    this help\n"
		"Prints median and max microseconds of fork() and cfork()\n"
		"and the ratio of the medians, as a table and as key=value\n"
		"lines.\n",
		prog, DEFAULT_STRESS_THREADS, DEFAULT_N);
}

static bool parse_count(const char *s, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

int main(int argc, char **argv)
{
	int threads = 0, n = DEFAULT_N, opt;
	const char *which = "all";
	while ((opt = getopt(argc, argv, "t:n:c:h")) != -1) {
		switch (opt) {
		case 't':
			if (!parse_count(optarg, 1, MAX_THREADS, &threads)) {
				fprintf(stderr, "forklat: -t wants 1 to %d\n",
					MAX_THREADS);
				return 2;
			}
			break;
		case 'n':
			if (!parse_count(optarg, 1, 10000000, &n)) {
				fprintf(stderr, "forklat: -n wants a positive "
					"number\n");
				return 2;
			}
			break;
		case 'c':
			which = optarg;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr, argv[0]);
		return 2;
	}

	struct plan { enum kind k; int threads; } plan[8];
	int nplan = 0;
	bool all = !strcmp(which, "all");
	if (all || !strcmp(which, "idle")) {
		if (threads) {
			plan[nplan++] = (struct plan){ IDLE, threads };
		} else {
			plan[nplan++] = (struct plan){ IDLE, 1 };
			plan[nplan++] = (struct plan){ IDLE, 8 };
			plan[nplan++] = (struct plan){ IDLE, 64 };
		}
	}
	int busy = threads ? threads : DEFAULT_STRESS_THREADS;
	for (enum kind k = MALLOC; k <= STRESS; k++)
		if (all || !strcmp(which, kind_name[k]))
			plan[nplan++] = (struct plan){ k, busy };
	if (nplan == 0) {
		fprintf(stderr, "forklat: unknown case '%s'\n", which);
		usage(stderr, argv[0]);
		return 2;
	}

	signal(SIGALRM, on_alarm);
	struct result res[8];
	int done = 0, failures = 0;
	for (int i = 0; i < nplan; i++) {
		if (measure(plan[i].k, plan[i].threads, n, &res[done]) < 0) {
			fprintf(stderr, "forklat: cannot run case %s-%d\n",
				kind_name[plan[i].k], plan[i].threads);
			return 1;
		}
		failures += res[done].failures;
		done++;
	}

	printf("%-11s %7s %7s %10s %10s %10s %10s %7s\n", "case",
	       "threads", "n", "fork_med", "fork_max", "cfork_med",
	       "cfork_max", "ratio");
	printf("%-11s %7s %7s %10s %10s %10s %10s %7s\n", "", "", "", "us",
	       "us", "us", "us", "median");
	for (int i = 0; i < done; i++) {
		const struct result *r = &res[i];
		printf("%-11s %7d %7d %10.1f %10.1f %10.1f %10.1f %7.2f\n",
		       r->name, r->threads, r->n, r->fork_med, r->fork_max,
		       r->cfork_med, r->cfork_max,
		       r->fork_med > 0 ? r->cfork_med / r->fork_med : 0.0);
	}
	printf("\n");
	for (int i = 0; i < done; i++) {
		const struct result *r = &res[i];
		printf("case=%s threads=%d n=%d fork_median_us=%.1f "
		       "fork_max_us=%.1f cfork_median_us=%.1f "
		       "cfork_max_us=%.1f ratio=%.3f failures=%d\n",
		       r->name, r->threads, r->n, r->fork_med, r->fork_max,
		       r->cfork_med, r->cfork_max,
		       r->fork_med > 0 ? r->cfork_med / r->fork_med : 0.0,
		       r->failures);
	}
	return failures ? 1 : 0;
}
