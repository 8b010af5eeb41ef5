/* SPDX-License-Identifier: MIT */
/*
 * Threads cancelled while cforks go on: four cancellers each start a
 * thread and cancel it after up to 300 us, again and again, while the
 * main thread makes 400 cforks.  Half of the victims spin inside memfrob
 * with asynchronous cancellation (libcfork redirects their return, and
 * the cancellation may come while libcfork's handler runs in them), half
 * sleep in read on an empty pipe with deferred cancellation (a call that
 * libcfork continues in its handler).  The process must not crash (the
 * unwinder could not step through a redirected return), every cfork must
 * be coherent (a cancellation out of the handler once left a count every
 * later quiesce waited for), and every victim's cleanup handler runs once.
 */
#define _GNU_SOURCE
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "cfork.h"
#include "test.h"

#define CANCELLERS 4

static _Atomic int stop;
static _Atomic long started, cleaned;
static int pipe_fd[2];
static char buf[4096];

static void cleanup(void *arg)
{
	(void)arg;
	atomic_fetch_add(&cleaned, 1);
}

/* A victim counts itself, then tells its own canceller (arg): with a
 * shared count only, a canceller could take another's start for its
 * victim's and cancel it before it counted itself. */
static void begin(void *arg)
{
	atomic_fetch_add(&started, 1);
	atomic_store((_Atomic int *)arg, 1);
}

static void *spinner(void *arg)
{
	pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
	pthread_cleanup_push(cleanup, NULL);
	begin(arg);
	for (;;)
		memfrob(buf, sizeof buf);
	pthread_cleanup_pop(0);
	return NULL;
}

static void *reader(void *arg)
{
	char c;
	pthread_cleanup_push(cleanup, NULL);
	begin(arg);
	for (;;)
		if (read(pipe_fd[0], &c, 1) < 0)
			DIE("read: %s", strerror(errno));
	pthread_cleanup_pop(0);
	return NULL;
}

static void *canceller(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (long k = 0; !atomic_load(&stop); k++) {
		pthread_t t;
		_Atomic int up = 0;
		CHECK(pthread_create(&t, NULL, k % 2 ? reader : spinner,
				     (void *)&up) == 0);
		while (!atomic_load(&up))
			sched_yield();
		struct timespec ts = { 0, (long)(rand_r(&seed) % 300) * 1000 };
		nanosleep(&ts, NULL);
		CHECK(pthread_cancel(t) == 0);
		void *res;
		CHECK(pthread_join(t, &res) == 0);
		CHECK(res == PTHREAD_CANCELED);
	}
	return NULL;
}

int main(void)
{
	t_alarm(300);
	CHECK(pipe(pipe_fd) == 0);
	pthread_t c[CANCELLERS];
	for (int i = 0; i < CANCELLERS; i++)
		CHECK(pthread_create(&c[i], NULL, canceller,
				     (void *)(uintptr_t)(i + 1)) == 0);
	int n = t_iters(400), bad = 0;
	for (int i = 0; i < n; i++) {
		struct cfork_report r;
		t_cfork_once(&r);
		if (!r.coherent && bad++ < 3)
			fprintf(stderr, "cfork %d: %s\n", i, r.not_coherent);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < CANCELLERS; i++)
		CHECK(pthread_join(c[i], NULL) == 0);
	printf("%d cforks, %d not coherent; %ld threads cancelled, %ld "
	       "cleanups\n", n, bad, atomic_load(&started),
	       atomic_load(&cleaned));
	CHECK(bad == 0);
	CHECK(atomic_load(&cleaned) == atomic_load(&started));
	return T_PASS;
}
