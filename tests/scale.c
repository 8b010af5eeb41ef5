/* SPDX-License-Identifier: MIT */
/*
 * cfork with a thousand idle threads (and more, given as an argument)
 * completes every time with all of them parked, and with threads that
 * set SIGEV_THREAD timers running (glibc's timer helper blocks every
 * signal for good: it must be skipped, not waited for), and with threads
 * whose names would fool a naive /proc/.../stat parser, and with a thread
 * blocked in pthread_join.
 * Usage: scale [THREADS [CFORKS]].
 */
#include "config.h"

#include <pthread.h>
#include <sys/wait.h>
#include <time.h>

#include "cfork.h"
#include "test.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int quit;

static void *idle(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (!quit)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *joiner(void *arg)
{
	CHECK(pthread_join(*(pthread_t *)arg, NULL) == 0);
	return NULL;
}

static void on_timer(union sigval v)
{
	(void)v;
}

int main(int argc, char **argv)
{
	t_alarm(300);
	int nthreads = argc > 1 ? atoi(argv[1]) : 1000;
	int n = argc > 2 ? atoi(argv[2]) : t_iters(20);

	timer_t timer;
	struct sigevent ev;
	memset(&ev, 0, sizeof ev);
	ev.sigev_notify = SIGEV_THREAD;
	ev.sigev_notify_function = on_timer;
	CHECK(timer_create(CLOCK_MONOTONIC, &ev, &timer) == 0);
	struct itimerspec its = { { 0, 20000000 }, { 0, 20000000 } };
	CHECK(timer_settime(timer, 0, &its, NULL) == 0);

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_t *t = calloc((size_t)nthreads, sizeof *t);
	CHECK(t != NULL);
	static const char *const names[] = { "a) R 1 (", ") Z 0 0 )", "x (y) z" };
	for (int i = 0; i < nthreads; i++) {
		CHECK(pthread_create(&t[i], &attr, idle, NULL) == 0);
		if (i < 3)
			CHECK(pthread_setname_np(t[i], names[i]) == 0);
	}
	pthread_t joinee, join_thread;
	CHECK(pthread_create(&joinee, &attr, idle, NULL) == 0);
	CHECK(pthread_create(&join_thread, &attr, joiner, &joinee) == 0);
	usleep(100000);

	double sum = 0, max = 0;
	for (int i = 0; i < n; i++) {
		struct cfork_report r;
		t_cfork_once(&r);
		CHECK(r.coherent == 1);
		CHECK(r.not_stopped == 0);
		CHECK(r.parked >= (unsigned)nthreads);
		CHECK(r.timer_helpers == 1);
		double ms = (double)r.quiesce_ns / 1e6;
		sum += ms;
		if (ms > max)
			max = ms;
	}
	printf("%d idle threads, a joiner and a SIGEV_THREAD timer: %d cforks, all "
	       "coherent; quiesce mean %.1f ms, max %.1f ms\n", nthreads, n,
	       sum / n, max);
	timer_delete(timer);
	pthread_mutex_lock(&mu);
	quit = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	pthread_join(join_thread, NULL);
	free(t);
	return T_PASS;
}
