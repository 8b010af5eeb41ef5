/* SPDX-License-Identifier: MIT */
/*
 * Queued real-time signals count against one RLIMIT_SIGPENDING for all of
 * a user's processes.  Another process of the same user keeps that count
 * at this process's soft limit (it queues signals it blocks, topping up
 * whenever one is freed), so that no request can be queued: 20 cforks
 * with four spinning siblings must still all be coherent (libcfork raises
 * the soft limit to the hard one for the quiesce), and the limit must
 * read as it was after each.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "cfork.h"
#include "test.h"

#define SIBLINGS 4
#define FILLER_SIG (SIGRTMIN + 1)

static _Atomic int stop, spinning;

static void *spin(void *arg)
{
	(void)arg;
	atomic_fetch_add(&spinning, 1);
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		;
	return NULL;
}

static long user_queued(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long q = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "SigQ: %ld/", &q) == 1)
			break;
	if (f)
		fclose(f);
	return q;
}

/* Holds the user's count at the limit: queues until EAGAIN, again and
 * again, until killed. */
static void filler(int ready_fd)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, FILLER_SIG);
	sigprocmask(SIG_BLOCK, &set, NULL);
	union sigval v = { 0 };
	bool said = false;
	for (;;) {
		while (sigqueue(getpid(), FILLER_SIG, v) == 0)
			;
		if (!said && errno == EAGAIN) {
			said = write(ready_fd, "x", 1) == 1;
		}
		usleep(200);
	}
}

int main(void)
{
	t_alarm(120);
	long q = user_queued();
	if (q < 0)
		SKIP("no SigQ line in /proc/self/status");
	struct rlimit r, after;
	CHECK(getrlimit(RLIMIT_SIGPENDING, &r) == 0);
	if (r.rlim_max != RLIM_INFINITY && r.rlim_max < (rlim_t)q + 64)
		SKIP("RLIMIT_SIGPENDING's hard limit (%lu) leaves no room",
		     (unsigned long)r.rlim_max);
	r.rlim_cur = (rlim_t)q + 4;
	CHECK(setrlimit(RLIMIT_SIGPENDING, &r) == 0);

	int p[2];
	CHECK(pipe(p) == 0);
	pid_t fill = fork();
	CHECK(fill >= 0);
	if (fill == 0) {
		close(p[0]);
		filler(p[1]);
	}
	close(p[1]);
	char c;
	CHECK(read(p[0], &c, 1) == 1);

	pthread_t th[SIBLINGS];
	for (int i = 0; i < SIBLINGS; i++)
		CHECK(pthread_create(&th[i], NULL, spin, NULL) == 0);
	while (atomic_load(&spinning) < SIBLINGS)
		usleep(1000);
	int bad = 0;
	for (int i = 0; i < 20; i++) {
		struct cfork_report rep;
		t_cfork_once(&rep);
		bad += !rep.coherent || rep.parked != SIBLINGS;
		CHECK(getrlimit(RLIMIT_SIGPENDING, &after) == 0);
		CHECK(after.rlim_cur == r.rlim_cur);
	}
	printf("user's queued signals held at the soft limit (%lu): 20 "
	       "cforks, %d not coherent\n", (unsigned long)r.rlim_cur, bad);
	kill(fill, SIGKILL);
	waitpid(fill, NULL, 0);
	atomic_store(&stop, 1);
	for (int i = 0; i < SIBLINGS; i++)
		pthread_join(th[i], NULL);
	CHECK(bad == 0);
	return T_PASS;
}
