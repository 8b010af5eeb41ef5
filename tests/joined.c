/* SPDX-License-Identifier: MIT */
/*
 * cfork from a thread that another thread is joining: main starts a worker
 * and waits for it in pthread_join, the worker makes the cforks.  The
 * joiner sleeps on the worker's thread ID word, holding no lock, so it
 * must be parked at once (a joiner that could not be stopped would cost
 * every cfork CFORK_TIMEOUT_MS and leave the child incoherent).
 * Usage: joined [CFORKS].
 */
#include "config.h"

#include <pthread.h>

#include "cfork.h"
#include "test.h"

static int n;

static void *worker(void *arg)
{
	(void)arg;
	long bad = 0;
	for (int i = 0; i < n; i++) {
		struct cfork_report r;
		t_cfork_once(&r);
		if (!r.coherent || r.parked != 1) {
			fprintf(stderr, "cfork %d: coherent %d, parked %u, not "
				"stopped %u\n", i, r.coherent, r.parked,
				r.not_stopped);
			bad++;
		}
	}
	return (void *)bad;
}

int main(int argc, char **argv)
{
	t_alarm(120);
	n = t_iters(argc > 1 ? atoi(argv[1]) : 20);
	pthread_t t;
	void *bad;
	CHECK(pthread_create(&t, NULL, worker, NULL) == 0);
	CHECK(pthread_join(t, &bad) == 0);
	printf("%d cforks from a joined thread, bad cforks: %ld\n", n,
	       (long)bad);
	CHECK(bad == NULL);
	return T_PASS;
}
