/* SPDX-License-Identifier: MIT */
/*
 * Threads that block every signal cannot defeat cfork, and the program
 * still reads back the masks and handlers it set:
 *  - a writer that blocks all signals with pthread_sigmask keeps writing
 *    pinned pages: 0 torn children in 200 cforks;
 *  - a thread that blocks them with a raw rt_sigprocmask cannot be
 *    stopped: every cfork still returns, within the bound, and the report
 *    names that thread ("blocks the cfork signal");
 *  - sigaction and pthread_sigmask on the cfork signal's number give back
 *    what the program set, and a signal of that number sent by someone
 *    else reaches the program's handler.
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cfork.h"
#include "pinned.h"
#include "test.h"

static struct pinned pin;
static _Atomic int stop;
static _Atomic pid_t raw_tid;

static void *masked_writer(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	CHECK(pthread_sigmask(SIG_BLOCK, &all, NULL) == 0);
	for (uint64_t c = 1; !atomic_load_explicit(&stop, memory_order_relaxed); c++) {
		stripe_write(&pin, c);
		ring_write(&pin, c);
	}
	return NULL;
}

static void *raw_blocker(void *arg)
{
	(void)arg;
	uint64_t all = ~0ull;
	CHECK(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, NULL, 8) == 0);
	atomic_store(&raw_tid, (pid_t)syscall(SYS_gettid));
	while (!atomic_load(&stop))
		usleep(20000);
	return NULL;
}

static int torn_children(int n)
{
	int torn = 0;
	for (int i = 0; i < n; i++) {
		torn += pinned_fork_torn(&pin, cfork, NULL);
	}
	return torn;
}

static volatile sig_atomic_t got;
static void on_sig(int sig)
{
	got = sig;
}

static void readback(void)
{
	int sig = SIGRTMAX - 6;        /* the default CFORK_SIGNAL */
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sig;
	CHECK(sigaction(sig, &sa, &old) == 0);
	CHECK(old.sa_handler == SIG_DFL);
	CHECK(sigaction(sig, NULL, &old) == 0);
	CHECK(old.sa_handler == on_sig);

	sigset_t set, cur;
	sigemptyset(&set);
	sigaddset(&set, sig);
	CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
	CHECK(pthread_sigmask(SIG_SETMASK, NULL, &cur) == 0);
	CHECK(sigismember(&cur, sig) == 1);
	CHECK(sigprocmask(SIG_UNBLOCK, &set, &cur) == 0);
	CHECK(sigismember(&cur, sig) == 1);
	CHECK(sigprocmask(SIG_SETMASK, NULL, &cur) == 0);
	CHECK(sigismember(&cur, sig) == 0);

	CHECK(kill(getpid(), sig) == 0);
	for (int i = 0; i < 1000 && !got; i++)
		usleep(1000);
	CHECK(got == sig);
	sa.sa_handler = SIG_DFL;
	CHECK(sigaction(sig, &sa, NULL) == 0);
}

int main(int argc, char **argv)
{
	t_alarm(300);
	int n = argc > 1 ? atoi(argv[1]) : t_iters(200);
	readback();

	int e = pinned_setup(&pin);
	if (e < 0)
		SKIP("io_uring cannot pin memory here: %s", strerror(-e));
	pthread_t w, r;
	CHECK(pthread_create(&w, NULL, masked_writer, NULL) == 0);
	usleep(10000);
	int torn = torn_children(n);
	printf("writer blocking every signal: %d of %d cfork children torn\n",
	       torn, n);
	CHECK(torn == 0);

	/* The raw blocker: bounded, and named in the report. */
	CHECK(pthread_create(&r, NULL, raw_blocker, NULL) == 0);
	while (!atomic_load(&raw_tid))
		usleep(1000);
	struct cfork_report rep;
	t_cfork_once(&rep);
	struct cfork_straggler s[8];
	size_t ns = cfork_last_stragglers(s, 8, sizeof s[0]);
	printf("raw rt_sigprocmask blocker: cfork returned after %.1f ms, "
	       "coherent %d, not stopped %u\n", (double)rep.quiesce_ns / 1e6,
	       rep.coherent, rep.not_stopped);
	for (size_t i = 0; i < ns && i < 8; i++)
		printf("straggler %d (raw blocker %d): state %c, syscall %ld, "
		       "%s, %u frames\n", (int)s[i].tid, (int)raw_tid,
		       s[i].state, s[i].syscall, s[i].why, s[i].depth);
	CHECK(!rep.coherent && rep.not_stopped == 1 && ns == 1);
	CHECK(s[0].tid == atomic_load(&raw_tid));
	CHECK(strstr(s[0].why, "blocks") != NULL);
	/* Caught in its sleep (the same read of /proc gives the system
	 * call and the address): where it sleeps is in libc. */
	Dl_info di;
	printf("straggler pc %#lx\n", (unsigned long)s[0].pc);
	if (s[0].syscall >= 0)
		CHECK(s[0].pc && dladdr((void *)s[0].pc, &di) &&
		      strstr(di.dli_fname, "libc"));
	printf("straggler: tid %d \"%s\": %s\n", (int)s[0].tid, s[0].name,
	       s[0].why);

	atomic_store(&stop, 1);
	pthread_join(w, NULL);
	pthread_join(r, NULL);
	return T_PASS;
}
