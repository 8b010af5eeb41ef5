/* SPDX-License-Identifier: MIT */
/*
 * Sibling threads keep invariants over io_uring-registered (pinned) pages
 * while the main thread forks: a counter striped across 16 pages and a
 * single-producer ring with checksummed slots.  Plain fork() is measured
 * and printed (it tears on unfixed kernels); every cfork() child must see
 * a state that existed.  Usage: coherence [CFORKS [PLAIN_FORKS]].
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>

#include "cfork.h"
#include "pinned.h"
#include "test.h"

static struct pinned pin;
static _Atomic int stop;

static void *stripe_writer(void *arg)
{
	for (uint64_t c = 1; !atomic_load_explicit(&stop, memory_order_relaxed); c++)
		stripe_write(&pin, c);
	return NULL;
}

static void *ring_writer(void *arg)
{
	for (uint64_t s = 0; !atomic_load_explicit(&stop, memory_order_relaxed); s++)
		ring_write(&pin, s);
	return NULL;
}

/* Returns how many of n children saw a torn state. */
static int run(pid_t (*forker)(void), int n)
{
	int torn = 0;
	for (int i = 0; i < n; i++) {
		pinned_wait_for_writers(&pin);
		torn += pinned_fork_torn(&pin, forker, NULL);
		/* let the writers move on between forks */
		usleep(200);
	}
	return torn;
}

int main(int argc, char **argv)
{
	t_alarm(600);
	int ncfork = argc > 1 ? atoi(argv[1]) : t_iters(1000);
	int nplain = argc > 2 ? atoi(argv[2]) : t_iters(100);
	int e = pinned_setup(&pin);
	if (e < 0)
		SKIP("io_uring cannot pin memory here: %s", strerror(-e));

	pthread_t w[2];
	CHECK(pthread_create(&w[0], NULL, stripe_writer, NULL) == 0);
	CHECK(pthread_create(&w[1], NULL, ring_writer, NULL) == 0);
	usleep(10000);

	int plain_torn = run(fork, nplain);
	int cfork_torn = run(cfork, ncfork);
	printf("plain fork: %d of %d children torn\n", plain_torn, nplain);
	printf("cfork:      %d of %d children torn\n", cfork_torn, ncfork);

	atomic_store(&stop, 1);
	pthread_join(w[0], NULL);
	pthread_join(w[1], NULL);
	CHECK(cfork_torn == 0);
	return T_PASS;
}
