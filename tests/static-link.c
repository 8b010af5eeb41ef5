/* SPDX-License-Identifier: MIT */
/*
 * Linked by tests/static.sh against an installed libcfork.a, glibc shared.
 * A sibling blocks every signal with pthread_sigmask and spins: cfork()
 * can park it only if the program's own copy of libcfork's wrappers is the
 * pthread_sigmask it called (libc's would block the quiesce signal, and
 * every quiesce would run into its bound).  Run with CFORK_MODE=quiesce,
 * so that a coherent kernel does not make cfork() fork directly.
 * Usage: static-link [CFORKS].
 */
#include <cfork.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "test.h"

static _Atomic int spinning;

static void *spin(void *arg)
{
	sigset_t all;
	(void)arg;
	sigfillset(&all);
	if (pthread_sigmask(SIG_BLOCK, &all, NULL) != 0)
		DIE("pthread_sigmask failed");
	atomic_store(&spinning, 1);
	for (;;)
		;
	return NULL;
}

int main(int argc, char **argv)
{
	t_alarm(120);
	int n = argc > 1 ? atoi(argv[1]) : 10;
	pthread_t t;
	CHECK(pthread_create(&t, NULL, spin, NULL) == 0);
	while (!atomic_load(&spinning))
		usleep(1000);
	for (int i = 0; i < n; i++) {
		struct cfork_report r;
		t_cfork_once(&r);
		CHECK(r.method == CFORK_METHOD_QUIESCE);
		CHECK(r.coherent == 1);
		CHECK(r.parked == 1);
	}
	printf("%d cforks: coherent, the sibling that blocks every signal "
	       "parked\n", n);
	return T_PASS;
}
