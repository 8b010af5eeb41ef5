/* SPDX-License-Identifier: MIT */
/*
 * Idle siblings are stopped once, then claimed asleep: a thread waiting in
 * pthread_cond_wait, sem_wait, pthread_join or a contended mutex takes the
 * signal at the first cfork only, and later cforks count it as parked
 * without waking it, nor list the threads again while nothing could have
 * made one.  It still wakes for what it waits for, a cancelled one still
 * runs its cleanup, and a thread made in between is still stopped.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>

#include "cfork.h"
#include "test.h"

#define CONDS 6

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int go;                     /* under lock */
static _Atomic int woke;
static sem_t sem;
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int cleaned;

static void *cond_waiter(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	while (!go)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	atomic_fetch_add(&woke, 1);
	return NULL;
}

static void *sem_waiter(void *arg)
{
	(void)arg;
	while (sem_wait(&sem) != 0)
		CHECK(errno == EINTR);
	atomic_fetch_add(&woke, 1);
	return NULL;
}

static void *lock_waiter(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&held);
	pthread_mutex_unlock(&held);
	atomic_fetch_add(&woke, 1);
	return NULL;
}

static void *joiner(void *arg)
{
	pthread_join(*(pthread_t *)arg, NULL);
	atomic_fetch_add(&woke, 1);
	return NULL;
}

static _Atomic int spin, spinning;

static void *spinner(void *arg)
{
	(void)arg;
	atomic_store(&spinning, 1);
	while (atomic_load_explicit(&spin, memory_order_relaxed))
		;
	return NULL;
}

static void unlock_on_cancel(void *arg)
{
	(void)arg;
	atomic_fetch_add(&cleaned, 1);
	pthread_mutex_unlock(&lock);
}

static void *cancellable(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	pthread_cleanup_push(unlock_on_cancel, NULL);
	for (;;)
		pthread_cond_wait(&cond, &lock);
	pthread_cleanup_pop(0);
	return NULL;
}

/* Waits, bounded, until /proc shows tid asleep (state S).  The bound is
 * generous (30 s): beside CPU hogs (make check-hogs) a thread just made
 * may wait seconds for the CPU, and this is the test's setup, not what
 * it measures. */
static void wait_asleep(pid_t tid)
{
	char path[64], buf[512], last = '?';
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	for (int i = 0; i < 30000; i++) {
		FILE *f = fopen(path, "r");
		if (f) {
			size_t n = fread(buf, 1, sizeof buf - 1, f);
			fclose(f);
			buf[n] = 0;
			char *p = strrchr(buf, ')');
			if (p && p[1] == ' ' && p[2] == 'S')
				return;
			if (p && p[1] == ' ')
				last = p[2];
		}
		usleep(1000);
	}
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	DIE("thread %d never went to sleep (state %c, in system call %s)",
	    (int)tid, last, n ? buf : "?");
}

static _Atomic pid_t tids[CONDS + 4];
static _Atomic int ntids;

static void *named(void *arg)
{
	void *(*fn)(void *) = ((void **)arg)[0];
	atomic_store(&tids[atomic_fetch_add(&ntids, 1)], gettid());
	return fn(((void **)arg)[1]);
}

static void *pairs[CONDS + 4][2];
static int npairs;

static void start(pthread_t *th, void *(*fn)(void *), void *arg)
{
	void **pair = pairs[npairs++];
	pair[0] = (void *)fn;
	pair[1] = arg;
	CHECK(pthread_create(th, NULL, named, pair) == 0);
}

int main(void)
{
	t_alarm(120);
	CHECK(sem_init(&sem, 0, 0) == 0);
	pthread_mutex_lock(&held);

	pthread_t th[CONDS + 4], victim;
	for (int i = 0; i < CONDS; i++)
		start(&th[i], cond_waiter, NULL);
	start(&th[CONDS], sem_waiter, NULL);
	start(&th[CONDS + 1], lock_waiter, NULL);
	start(&th[CONDS + 2], joiner, &th[0]);
	start(&th[CONDS + 3], cancellable, NULL);
	victim = th[CONDS + 3];
	const int n = CONDS + 4;
	while (atomic_load(&ntids) < n)
		usleep(1000);
	for (int i = 0; i < n; i++)
		wait_asleep(atomic_load(&tids[i]));

	/* The first cfork signals them; they go back to sleep inside the
	 * handler.  From then on none is signalled. */
	struct cfork_report r;
	t_cfork_once(&r);
	CHECK(r.coherent == 1);
	if (r.method == CFORK_METHOD_DIRECT)
		SKIP("CFORK_MODE=auto chose a direct fork on this kernel");
	CHECK(r.parked == (unsigned)n);
	usleep(20000);
	unsigned quiet = 0;
	const int rounds = t_iters(200);
	for (int i = 0; i < rounds; i++) {
		t_cfork_once(&r);
		CHECK(r.coherent == 1);
		CHECK(r.parked == (unsigned)n);
		CHECK(r.not_stopped == 0);
		quiet += r.signals == 0;
	}
	printf("claims: %u of %d cforks sent no signal to %d sleeping "
	       "siblings\n", quiet, rounds, n);
	CHECK(quiet == (unsigned)rounds);
	CHECK(atomic_load(&woke) == 0);

	/* A thread made between two cforks while every sibling sleeps (the
	 * next cfork may then skip listing the threads) is still found and
	 * stopped; once it is gone, the sleepers are claimed again. */
	atomic_store(&spin, 1);
	pthread_t sp;
	CHECK(pthread_create(&sp, NULL, spinner, NULL) == 0);
	while (!atomic_load(&spinning))
		usleep(100);
	t_cfork_once(&r);
	CHECK(r.coherent == 1);
	CHECK(r.parked == (unsigned)n + 1);
	CHECK(r.signals >= 1);
	atomic_store(&spin, 0);
	CHECK(pthread_join(sp, NULL) == 0);
	t_cfork_once(&r);
	CHECK(r.coherent == 1);
	CHECK(r.parked == (unsigned)n);
	t_cfork_once(&r);
	CHECK(r.parked == (unsigned)n);
	CHECK(r.signals == 0);

	/* A claimed sleeper that is cancelled runs its cleanup handler and
	 * leaves; the next cfork does not count it. */
	CHECK(pthread_cancel(victim) == 0);
	void *ret;
	CHECK(pthread_join(victim, &ret) == 0);
	CHECK(ret == PTHREAD_CANCELED);
	CHECK(atomic_load(&cleaned) == 1);
	t_cfork_once(&r);
	CHECK(r.coherent == 1);
	CHECK(r.parked == (unsigned)n - 1);

	/* They all still wake for what they wait for. */
	pthread_mutex_lock(&lock);
	go = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	CHECK(sem_post(&sem) == 0);
	pthread_mutex_unlock(&held);
	for (int i = 1; i < n - 1; i++)     /* th[0]: the joiner's */
		CHECK(pthread_join(th[i], NULL) == 0);
	CHECK(atomic_load(&woke) == n - 1);

	/* And a fork with nobody left stops nobody. */
	t_cfork_once(&r);
	CHECK(r.coherent == 1);
	CHECK(r.parked == 0);
	printf("claims: woken %d, cleanup ran %d\n", atomic_load(&woke),
	       atomic_load(&cleaned));
	return T_PASS;
}
