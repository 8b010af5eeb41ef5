/* SPDX-License-Identifier: MIT */
/*
 * Siblings never see EINTR or an early return because of a cfork: 15
 * threads each loop on one sleeping call with a 50 ms timeout (or a wait
 * that only ends at its timeout) while the main thread cforks; every call
 * must return its normal result no sooner than its timeout.
 * Usage: eintr [CFORKS].
 */
#include "config.h"

#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>

#include "cfork.h"
#include "test.h"

#define NCALLS 15
#define CF_THREAD_LOCAL _Thread_local
#define TIMEOUT_NS 50000000L

static const char *const names[NCALLS] = {
	"nanosleep", "clock_nanosleep", "usleep", "poll", "ppoll", "select",
	"pselect", "epoll_wait", "epoll_pwait", "sem_timedwait",
	"sigtimedwait", "pthread_cond_timedwait", "poll(pipe)", "sleep",
	"sigsuspend",
};
static _Atomic int stop;
static _Atomic int calls[NCALLS], disturbed[NCALLS];
static int pipefd[2];

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static struct timespec abs_after(long ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ns;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	return ts;
}

static CF_THREAD_LOCAL int got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

/* One call; returns 0 when it ended normally at its timeout (or, for
 * sigsuspend, by the SIGUSR1 the main thread sends after 50 ms). */
static int one_call(int k, int ep, sem_t *sem, pthread_mutex_t *m,
		    pthread_cond_t *c)
{
	struct timespec rel = { 0, TIMEOUT_NS };
	struct timeval tv = { 0, TIMEOUT_NS / 1000 };
	struct epoll_event ev;
	struct timespec abs;
	sigset_t set;
	int r;
	switch (k) {
	case 0: return nanosleep(&rel, NULL);
	case 1: return clock_nanosleep(CLOCK_MONOTONIC, 0, &rel, NULL);
	case 2: return usleep(TIMEOUT_NS / 1000);
	case 3: return poll(NULL, 0, TIMEOUT_NS / 1000000);
	case 4: return ppoll(NULL, 0, &rel, NULL);
	case 5: return select(0, NULL, NULL, NULL, &tv);
	case 6: return pselect(0, NULL, NULL, NULL, &rel, NULL);
	case 7: return epoll_wait(ep, &ev, 1, TIMEOUT_NS / 1000000);
	case 8: return epoll_pwait(ep, &ev, 1, TIMEOUT_NS / 1000000, NULL);
	case 9:
		abs = abs_after(TIMEOUT_NS);
		r = sem_timedwait(sem, &abs);
		return r < 0 && errno == ETIMEDOUT ? 0 : -1;
	case 10:
		sigemptyset(&set);
		sigaddset(&set, SIGUSR2);
		r = sigtimedwait(&set, NULL, &rel);
		return r < 0 && errno == EAGAIN ? 0 : -1;
	case 11:
		abs = abs_after(TIMEOUT_NS);
		pthread_mutex_lock(m);
		r = pthread_cond_timedwait(c, m, &abs);
		pthread_mutex_unlock(m);
		return r == ETIMEDOUT ? 0 : -1;
	case 12: {
		struct pollfd p = { pipefd[0], POLLIN, 0 };
		return poll(&p, 1, TIMEOUT_NS / 1000000);
	}
	case 13:
		return sleep(1) == 0 ? 0 : -1;
	default:
		/* SIGUSR1 blocked except inside sigsuspend: only it may end
		 * it (cfork's signal must not). */
		sigfillset(&set);
		sigdelset(&set, SIGUSR1);
		got_usr1 = 0;
		r = sigsuspend(&set);
		return r == -1 && errno == EINTR && got_usr1 ? 0 : -1;
	}
}

static void *worker(void *arg)
{
	int k = (int)(long)arg;
	int ep = epoll_create1(0);
	sem_t sem;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t c = PTHREAD_COND_INITIALIZER;
	sem_init(&sem, 0, 0);
	double min = k == 13 ? 1.0 : (double)TIMEOUT_NS / 1e9;
	while (!atomic_load(&stop)) {
		double t0 = now();
		errno = 0;
		int r = one_call(k, ep, &sem, &m, &c);
		double el = now() - t0;
		atomic_fetch_add(&calls[k], 1);
		/* sigsuspend ends by SIGUSR1 only, whenever it comes. */
		if (r != 0 || (k != 14 && el < min * 0.999)) {
			if (atomic_fetch_add(&disturbed[k], 1) < 3)
				fprintf(stderr, "%s: result %d errno %d after "
					"%.4f s\n", names[k], r, errno, el);
		}
	}
	close(ep);
	return NULL;
}

int main(int argc, char **argv)
{
	t_alarm(600);
	int n = argc > 1 ? atoi(argv[1]) : t_iters(200);
	CHECK(pipe(pipefd) == 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	CHECK(pthread_sigmask(SIG_BLOCK, &block, NULL) == 0);

	pthread_t t[NCALLS];
	for (long i = 0; i < NCALLS; i++)
		CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0);
	usleep(20000);
	for (int i = 0; i < n; i++) {
		t_cfork_once(NULL);
		usleep(5000);
		/* end the current sigsuspend now and then */
		if (i % 10 == 9)
			pthread_kill(t[14], SIGUSR1);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 20; i++) {
		pthread_kill(t[14], SIGUSR1);
		usleep(10000);
	}
	int total = 0, bad = 0;
	for (int i = 0; i < NCALLS; i++) {
		pthread_join(t[i], NULL);
		printf("%-24s %5d calls, %d disturbed\n", names[i],
		       atomic_load(&calls[i]), atomic_load(&disturbed[i]));
		total += calls[i];
		bad += disturbed[i];
	}
	printf("%d cforks: %d calls, %d failed with EINTR or returned early\n",
	       n, total, bad);
	CHECK(bad == 0);
	return T_PASS;
}
