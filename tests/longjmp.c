/* SPDX-License-Identifier: MIT */
/*
 * A sibling that leaves libc by siglongjmp is still stopped: it loops on
 * memfrob over a 16 KiB buffer (a libc function libcfork does not know to
 * hold no lock, so the signal mostly finds it where the handler redirects
 * its return instead of parking it), and a timer's signal handler jumps
 * out of it every 0.7 ms, as programs that bound a long call with alarm()
 * do, or returns (each half of the time, at random).  A redirected
 * return that a jump skips is simply overwritten by the next call from
 * the same frame; the thread must still be stopped at once, not after
 * CFORK_TIMEOUT_MS.  Every cfork must be coherent with the sibling parked.
 *
 * A second phase makes the calls shorter (4 KiB) and the timer fast
 * (every 20 us), so that the jumps also leave libcfork's own code: the
 * parking stub a redirected return lands in (when the handler that
 * interrupted a redirected call returns), and the park itself.  Nothing
 * that code keeps may be left behind by such a jump (a count of table
 * users once was, and every later cfork then waited for its bound).
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
/* Each call takes well under the timer's period, so that a redirected
 * return fires unless a jump comes first (a call that never returns
 * before the next jump keeps the thread inside libc for good, where it
 * may not stop). */
static char big[1 << 14];
static _Atomic size_t len = sizeof big;     /* what the sibling scans */
static timer_t timer;
/* The loop's results go here, so that its calls are made; at file scope,
 * where a value nobody reads draws no unused-variable warning from clang. */
static volatile size_t sink;

static void on_timer(int sig)
{
	static unsigned seed = 1;
	(void)sig;
	jumps++;
	/* Returns or jumps at random: the cforks' signals come in step with
	 * the timer's, so a fixed alternation could always jump. */
	seed = seed * 1103515245u + 12345u;
	if ((seed >> 16) & 1)
		return;
	siglongjmp(jump, 1);
}

static void *loop(void *arg)
{
	(void)arg;
	struct sigevent ev = { 0 };
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
	ev.sigev_signo = SIGUSR2;
	struct itimerspec every = { { 0, 700000 }, { 0, 700000 } };
	if (timer_create(CLOCK_MONOTONIC, &ev, &timer))
		DIE("timer_create: %s", strerror(errno));
	/* Armed only once there is somewhere to jump to: a jump into a
	 * buffer sigsetjmp is still filling crashed, or left SIGUSR2 blocked
	 * for good (1 run in 80 or so under CPU hogs). */
	if (!sigsetjmp(jump, 1)) {
		if (timer_settime(timer, 0, &every, NULL))
			DIE("timer_settime: %s", strerror(errno));
		sibling = ev._sigev_un._tid;
	}
	for (;;) {
		size_t n = len;
		memfrob(big, n);
		sink += (unsigned char)big[0];
	}
	return NULL;
}

int main(int argc, char **argv)
{
	t_alarm(240);
	int n = t_iters(argc > 1 ? atoi(argv[1]) : 100);
	struct sigaction sa = { .sa_handler = on_timer };
	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
	pthread_t t;
	CHECK(pthread_create(&t, NULL, loop, NULL) == 0);
	while (!sibling || jumps < 10)
		usleep(1000);

	int bad = 0;
	for (int i = 0; i < 2 * n; i++) {
		if (i == n) {
			struct itimerspec every = { { 0, 20000 }, { 0, 20000 } };
			len = 4096;
			CHECK(timer_settime(timer, 0, &every, NULL) == 0);
		}
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
	printf("%d cforks, %ld timer signals, bad cforks: %d\n", 2 * n,
	       (long)jumps, bad);
	CHECK(bad == 0);
	return T_PASS;
}
