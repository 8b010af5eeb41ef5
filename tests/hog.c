/* SPDX-License-Identifier: MIT */
/*
 * Not a test: the CPU hog the busy-machine tests run next to the others.
 * Spins THREADS threads (default: twice the online CPUs) for SECONDS
 * (default 600), then exits; it also dies with the process that started
 * it.  Prints one line when it has started, so a script can wait for it.
 *
 * Usage: hog [-t THREADS] [-s SECONDS]
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/prctl.h>

#include "test.h"

static _Atomic unsigned long spins;

static void *spin(void *arg)
{
	volatile unsigned long local = 0;
	for (;;) {
		for (int i = 0; i < 1000000; i++)
			local++;
		atomic_fetch_add_explicit(&spins, 1, memory_order_relaxed);
	}
	return arg;
}

int main(int argc, char **argv)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int threads = ncpu > 0 ? (int)ncpu * 2 : 4, opt;
	unsigned seconds = 600;
	while ((opt = getopt(argc, argv, "t:s:")) != -1) {
		switch (opt) {
		case 't': threads = atoi(optarg); break;
		case 's': seconds = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-t THREADS] [-s SECONDS]\n",
				argv[0]);
			return T_ERROR;
		}
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return T_PASS;          /* the parent is already gone */
	for (int i = 0; i < threads; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, spin, NULL) != 0)
			DIE("pthread_create failed");
	}
	printf("hog: %d spinning threads for at most %u s\n", threads,
	       seconds);
	fflush(stdout);
	sleep(seconds);
	return T_PASS;
}
