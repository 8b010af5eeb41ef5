/* SPDX-License-Identifier: MIT */
/*
 * A sibling with little stack left does not crash the process: it spins
 * with about 5 KiB between its stack pointer and its guard page, room for
 * the kernel's signal frame but not for the handler's stack walk.  It
 * cannot be stopped, so each cfork waits for its bound and forks anyway;
 * the children must work, the reports must name the sibling, and once
 * the sibling has its stack back it must be parked again.
 * Usage: smallstack [CFORKS].
 */
#include "config.h"

#include <alloca.h>
#include <pthread.h>
#include <stdatomic.h>

#include "cfork.h"
#include "test.h"

#define LEFT 5000

static _Atomic int phase;         /* 1: cramped, 2: roomy, 3: stop */

static __attribute__((noinline)) void spin(int until)
{
	while (phase < until)
		;
}

static __attribute__((noinline)) void cramped(char *lo)
{
	char here;
	size_t use = (size_t)(&here - lo) - LEFT;
	volatile char *p = alloca(use);
	p[0] = 1;
	spin(2);
}

static void *sibling(void *arg)
{
	(void)arg;
	pthread_attr_t attr;
	void *lo;
	size_t size;
	if (pthread_getattr_np(pthread_self(), &attr) ||
	    pthread_attr_getstack(&attr, &lo, &size))
		DIE("pthread_getattr_np failed");
	pthread_attr_destroy(&attr);
	phase = 1;
	cramped(lo);
	spin(3);
	return NULL;
}

int main(int argc, char **argv)
{
	t_alarm(120);
#ifdef __SANITIZE_ADDRESS__
	/* Its instrumented handler needs far more than the room left here. */
	SKIP("built with AddressSanitizer");
#endif
	int n = argc > 1 ? atoi(argv[1]) : 2;
	pthread_attr_t attr;
	pthread_t t;
	CHECK(pthread_attr_init(&attr) == 0);
	CHECK(pthread_attr_setstacksize(&attr, 64 * 1024) == 0);
	CHECK(pthread_create(&t, &attr, sibling, NULL) == 0);
	while (phase < 1)
		usleep(1000);
	usleep(10000);

	for (int i = 0; i < n; i++) {
		struct cfork_report r;
		t_cfork_once(&r);
		CHECK(r.not_stopped == 1);
		struct cfork_straggler s;
		CHECK(cfork_last_stragglers(&s, 1, sizeof s) == 1);
		printf("cramped: coherent %d, not stopped %u: %s\n",
		       r.coherent, r.not_stopped, s.why);
	}
	phase = 2;
	struct cfork_report r;
	t_cfork_once(&r);
	printf("roomy: coherent %d, parked %u\n", r.coherent, r.parked);
	CHECK(r.coherent && r.parked == 1);
	phase = 3;
	CHECK(pthread_join(t, NULL) == 0);
	return T_PASS;
}
