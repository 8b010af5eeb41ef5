/* SPDX-License-Identifier: MIT */
/*
 * The shim's reason to exist: a program built with plain fork() and no
 * libcfork, whose sibling threads keep invariants over io_uring-pinned
 * pages (tests/pinned.h) while the main thread forks.  One writer blocks
 * every signal with pthread_sigmask, as worker threads often do: under
 * the shim it must be stopped all the same, which works only when
 * libcfork's wrappers come before libc (cfork-run's arrangement).
 *
 * Usage: shim-torn FORKS.  Prints one line for tests/shim-torn.sh:
 *   forks N torn T cforks Q coherent C parked-min P
 * where Q counts forks whose cfork_last_report (looked up with dlsym,
 * absent without the shim) says quiesce, C those also coherent, and P is
 * the fewest siblings parked in one of them.  Exit 77 when io_uring
 * cannot pin memory here.
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>

#include "cfork.h"      /* the report's layout only: nothing is linked */
#include "pinned.h"
#include "test.h"

static struct pinned pin;
static _Atomic int stop;

static void *stripe_writer(void *arg)
{
	(void)arg;
	for (uint64_t c = 1; !atomic_load_explicit(&stop, memory_order_relaxed); c++)
		stripe_write(&pin, c);
	return NULL;
}

static void *masked_ring_writer(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	CHECK(pthread_sigmask(SIG_BLOCK, &all, NULL) == 0);
	for (uint64_t s = 0; !atomic_load_explicit(&stop, memory_order_relaxed); s++)
		ring_write(&pin, s);
	return NULL;
}

int main(int argc, char **argv)
{
	t_alarm(600);
	int n = argc > 1 ? atoi(argv[1]) : 100;
	CHECK(n > 0);
	int e = pinned_setup(&pin);
	if (e < 0)
		SKIP("io_uring cannot pin memory here: %s", strerror(-e));
	int (*report)(struct cfork_report *, size_t) =
		(int (*)(struct cfork_report *, size_t))
		dlsym(RTLD_DEFAULT, "cfork_last_report");

	pthread_t w[2];
	CHECK(pthread_create(&w[0], NULL, stripe_writer, NULL) == 0);
	CHECK(pthread_create(&w[1], NULL, masked_ring_writer, NULL) == 0);

	int torn = 0, cforks = 0, coherent = 0;
	unsigned parked_min = ~0u;
	for (int i = 0; i < n; i++) {
		pinned_wait_for_writers(&pin);
		pid_t pid;
		torn += pinned_fork_torn(&pin, fork, &pid);
		struct cfork_report r;
		if (report && report(&r, sizeof r) == 0 &&
		    r.method == CFORK_METHOD_QUIESCE && r.pid == pid) {
			cforks++;
			coherent += r.coherent;
			if (r.parked < parked_min)
				parked_min = r.parked;
		}
		usleep(200);
	}
	atomic_store(&stop, 1);
	pthread_join(w[0], NULL);
	pthread_join(w[1], NULL);
	printf("forks %d torn %d cforks %d coherent %d parked-min %u\n", n,
	       torn, cforks, coherent, cforks ? parked_min : 0);
	return T_PASS;
}
