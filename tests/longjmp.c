/* SPDX-License-Identifier: MIT */
/*
 * A sibling that leaves libc by siglongjmp is still stopped: it loops on
 * strlen and memchr over a large buffer (so the signal mostly finds it
 * inside libc, where the handler redirects its return instead of parking
 * it), and a timer's signal handler jumps out of them every 0.7 ms, as
 * programs that bound a long call with alarm() do.  A redirected return
 * that the jump skips is simply overwritten by the next call from the same
 * frame; the thread must still be stopped at once, not after
 * CFORK_TIMEOUT_MS.  Every cfork must be coherent with the sibling parked.
 * Usage: longjmp [CFORKS].
 */
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>

#include "cfork.h"
#include "test.h"

static sigjmp_buf jump;
static _Atomic long jumps;
static _Atomic pid_t sibling;
static char big[1 << 20];
/* The loop's results go here, so that its calls are made; at file scope,
 * where a value nobody reads draws no unused-variable warning from clang. */
static volatile size_t sink;

static void on_timer(int sig)
{
	(void)sig;
	jumps++;
	siglongjmp(jump, 1);
}

static void *loop(void *arg)
{
	(void)arg;
	struct sigevent ev = { 0 };
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	ev.sigev_signo = SIGUSR2;
	timer_t timer;
	struct itimerspec every = { { 0, 700000 }, { 0, 700000 } };
	if (timer_create(CLOCK_MONOTONIC, &ev, &timer) ||
	    timer_settime(timer, 0, &every, NULL))
		DIE("timer: %s", strerror(errno));
	sibling = ev._sigev_un._tid;
	sigsetjmp(jump, 1);
	for (;;)
		sink += strlen(big) + (memchr(big, 'b', sizeof big) != NULL);
	return NULL;
}

int main(int argc, char **argv)
{
	t_alarm(240);
	int n = t_iters(argc > 1 ? atoi(argv[1]) : 100);
	memset(big, 'a', sizeof big - 1);
	struct sigaction sa = { .sa_handler = on_timer };
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, loop, NULL) == 0);
	while (!sibling || jumps < 10)
		usleep(1000);

	int bad = 0;
	for (int i = 0; i < n; i++) {
		struct cfork_report r;
		t_cfork_once(&r);
		if (!r.coherent || r.parked != 1) {
			bad++;
			struct cfork_straggler s;
			if (cfork_last_stragglers(&s, 1, sizeof s))
				fprintf(stderr, "cfork %d: %s (%s)\n", i,
					r.not_coherent ? r.not_coherent : "?",
					s.why);
		}
	}
	printf("%d cforks, %ld jumps out of libc, bad cforks: %d\n", n,
	       (long)jumps, bad);
	CHECK(bad == 0);
	return T_PASS;
}
