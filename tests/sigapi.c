/* SPDX-License-Identifier: MIT */
/*
 * Every way the signal API can block libcfork's signal leaves the thread
 * stoppable, and a program that uses the number itself is told so once:
 *  - siblings that block it with sighold, that switch with setcontext and
 *    swapcontext to contexts whose mask blocks every signal, that block
 *    it with pthread_sigmask or set an action in a loop, that left a
 *    handler whose sa_mask blocks every signal by plain longjmp, that wait
 *    in sigpause (both flavours), sigwait or a signalfd read on a set that
 *    names it: 20 cforks, each coherent with all of them parked;
 *  - sigignore and siginterrupt on the number change what the program
 *    reads back, not the handler the kernel holds;
 *  - that program blocks and waits for the number on purpose: libcfork
 *    says so on stderr exactly once, the report names how, and a signal
 *    of that number sent by kill is lost instead of ending the process;
 *  - a program that merely blocks or waits for every signal (sigfillset)
 *    is told nothing.
 * Usage: sigapi (runs itself as "sigapi use" and "sigapi quiet").
 */
#define _GNU_SOURCE
#include "config.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>

#include "cfork.h"
#include "run.h"
#include "symbol.h"

#define OURS (SIGRTMAX - 6)             /* the default CFORK_SIGNAL */
#define MAX_THREADS 16

int __sigpause(int sig_or_mask, int is_sig);   /* glibc's, both flavours */

static _Atomic int started;
/* Who each sibling is, for the message when one does not stop. */
static _Atomic pid_t tids[MAX_THREADS];
static const char *roles[MAX_THREADS];

static void up(const char *role)
{
	int i = atomic_load(&started);
	while (!atomic_compare_exchange_weak(&started, &i, i + 1))
		;
	if (i < MAX_THREADS) {
		roles[i] = role;
		atomic_store(&tids[i], (pid_t)syscall(SYS_gettid));
	}
}

static const char *role_of(pid_t tid)
{
	for (int i = 0; i < MAX_THREADS; i++)
		if (atomic_load(&tids[i]) == tid)
			return roles[i];
	return "?";
}

static void spin(const char *role)
{
	up(role);
	for (;;)
		__asm__ volatile("" ::: "memory");
}

static void *holder(void *arg)
{
	(void)arg;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	CHECK(sighold(OURS) == 0);
#pragma GCC diagnostic pop
	sigset_t cur;
	CHECK(pthread_sigmask(SIG_SETMASK, NULL, &cur) == 0);
	CHECK(sigismember(&cur, OURS) == 1);     /* as the program set it */
	spin("holder");
	return NULL;
}

static void *setter(void *arg)
{
	(void)arg;
	ucontext_t uc;
	volatile int once = 0;
	CHECK(getcontext(&uc) == 0);
	if (!once) {
		once = 1;
		sigfillset(&uc.uc_sigmask);
		setcontext(&uc);
		DIE("setcontext returned");
	}
	spin("setter");
	return NULL;
}

static __thread ucontext_t co_main, co_side;

static void side(void)
{
	for (;;)
		CHECK(swapcontext(&co_side, &co_main) == 0);
}

static void *swapper(void *arg)
{
	(void)arg;
	static char stack[64 * 1024];
	CHECK(getcontext(&co_side) == 0);
	co_side.uc_stack.ss_sp = stack;
	co_side.uc_stack.ss_size = sizeof stack;
	sigfillset(&co_side.uc_sigmask);
	makecontext(&co_side, side, 0);
	up("swapper");
	for (;;) {
		CHECK(swapcontext(&co_main, &co_side) == 0);
		sigfillset(&co_main.uc_sigmask);
	}
	return NULL;
}

/* Nearly all its time in the system call: our signal lands as it
 * returns, inside libc's pthread_sigmask, called by libcfork's. */
static void *masker(void *arg)
{
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, OURS);
	up("masker");
	for (;;)
		CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
	return NULL;
}

static void *actor(void *arg)
{
	(void)arg;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	up("actor");
	for (;;)
		CHECK(sigaction(SIGURG, &sa, NULL) == 0);
	return NULL;
}

static jmp_buf plain_env;

static void plain_jump(int sig)
{
	(void)sig;
	longjmp(plain_env, 1);
}

static void *jumper(void *arg)
{
	(void)arg;
	if (!setjmp(plain_env))
		CHECK(raise(SIGUSR1) == 0);     /* its handler blocks all */
	spin("jumper");
	return NULL;
}

static void *pauser(void *arg)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, OURS);
	CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
	up("pauser");
	for (;;)
		__sigpause(arg ? SIGUSR2 : 0, arg != NULL);
	return NULL;
}

static void *waiter(void *arg)
{
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, OURS);
	sigaddset(&set, SIGUSR2);
	CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
	up("waiter");
	for (;;) {
		int sig;
		CHECK(sigwait(&set, &sig) == 0);
	}
	return NULL;
}

static void *fd_reader(void *arg)
{
	(void)arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, OURS);
	CHECK(pthread_sigmask(SIG_BLOCK, &set, NULL) == 0);
	int fd = signalfd(-1, &set, SFD_CLOEXEC);
	CHECK(fd >= 0);
	up("fd_reader");
	for (;;) {
		struct signalfd_siginfo si;
		if (read(fd, &si, sizeof si) == sizeof si)
			DIE("the signalfd read signal %u", si.ssi_signo);
	}
	return NULL;
}

/* Blocks, then waits for, every signal: no use of ours in particular. */
static void *all_blocker(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	CHECK(pthread_sigmask(SIG_BLOCK, &all, NULL) == 0);
	up("all_blocker");
	for (;;) {
		siginfo_t si;
		struct timespec t = { 0, 100000000 };
		sigtimedwait(&all, &si, &t);
	}
	return NULL;
}

/* Starts the threads and makes n cforks, each coherent with all parked;
 * returns the last report. */
static struct cfork_report run(void *(*const fns[])(void *),
			       void *const args[], int nthreads, int n)
{
	pthread_t th[MAX_THREADS];
	for (int i = 0; i < nthreads; i++)
		CHECK(pthread_create(&th[i], NULL, fns[i], args[i]) == 0);
	while (atomic_load(&started) < nthreads)
		usleep(1000);
	usleep(20000);
	struct cfork_report r;
	for (int i = 0; i < n; i++) {
		t_cfork_once(&r);
		if (!r.coherent || (int)r.parked != nthreads) {
			struct cfork_straggler s[MAX_THREADS];
			size_t ns = cfork_last_stragglers(s, MAX_THREADS,
							  sizeof s[0]);
			for (size_t k = 0; k < ns && k < MAX_THREADS; k++) {
				char b[160];
				t_symbol(b, sizeof b, s[k].pc);
				fprintf(stderr, "straggler %d (%s) state %c "
					"syscall %ld pc %s: %s\n",
					(int)s[k].tid, role_of(s[k].tid),
					s[k].state, s[k].syscall, b, s[k].why);
				for (unsigned d = 0; d < s[k].depth; d++) {
					t_symbol(b, sizeof b, s[k].stack[d]);
					fprintf(stderr, "  #%u %s\n", d, b);
				}
			}
			DIE("cfork %d: coherent %d, parked %u of %d", i,
			    r.coherent, r.parked, nthreads);
		}
	}
	return r;
}

/* sigignore and siginterrupt: read back as the program set them, while
 * the kernel keeps libcfork's handler with SA_RESTART. */
static void action_readback(void)
{
	struct { void *handler; unsigned long flags; void *restorer;
		 uint64_t mask; } k;
	struct sigaction sa;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	CHECK(sigignore(OURS) == 0);
	CHECK(sigaction(OURS, NULL, &sa) == 0);
	CHECK(sa.sa_handler == SIG_IGN);
	CHECK(siginterrupt(OURS, 1) == 0);
	CHECK(sigaction(OURS, NULL, &sa) == 0);
	CHECK(!(sa.sa_flags & SA_RESTART));
#pragma GCC diagnostic pop
	CHECK(syscall(SYS_rt_sigaction, OURS, NULL, &k, 8) == 0);
	CHECK(k.handler != (void *)SIG_IGN && k.handler != (void *)SIG_DFL);
	CHECK(k.flags & SA_RESTART);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	CHECK(sigaction(OURS, &sa, NULL) == 0);
}

static int use(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = plain_jump;
	sigfillset(&sa.sa_mask);
	CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
	void *(*const fns[])(void *) = {
		holder, setter, swapper, masker, actor, jumper, pauser,
		pauser, waiter, fd_reader,
	};
	void *const args[] = {
		NULL, NULL, NULL, NULL, NULL, NULL, NULL, (void *)1, NULL,
		NULL,
	};
	int n = (int)(sizeof fns / sizeof fns[0]);
	struct cfork_report r = run(fns, args, n, 20);
	CHECK(r.signal_shared != NULL);
	printf("use: 20 cforks, all coherent with %d siblings parked; "
	       "report: the program %s the signal\n", n, r.signal_shared);
	/* The program blocks the number, so one sent to it stays pending
	 * without libcfork: lost here, not fatal. */
	CHECK(kill(getpid(), OURS) == 0);
	usleep(100000);
	t_cfork_once(&r);
	CHECK(r.coherent && (int)r.parked == n);
	action_readback();
	return T_PASS;
}

static int quiet(void)
{
	void *(*const fns[])(void *) = { all_blocker, all_blocker };
	void *const args[] = { NULL, NULL };
	struct cfork_report r = run(fns, args, 2, 5);
	CHECK(r.signal_shared == NULL);
	printf("quiet: 5 cforks, all coherent, the signal not shared\n");
	return T_PASS;
}

/* Runs this program with mode (and libcfork's default settings) and
 * returns how many of the lines it wrote on stderr say that the program
 * uses the signal. */
static int lines_saying_shared(const char *self, const char *mode)
{
	static struct t_output o;
	char *argv[] = { (char *)self, (char *)mode, NULL };
	t_run(argv, NULL, &o);
	fputs(o.out, stdout);
	fputs(o.err, stderr);
	if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0)
		DIE("%s %s: status %#x", self, mode, o.status);
	return t_count(o.err, "which libcfork uses");
}

int main(int argc, char **argv)
{
	t_alarm(120);
	if (argc > 1 && !strcmp(argv[1], "use"))
		return use();
	if (argc > 1 && !strcmp(argv[1], "quiet"))
		return quiet();
	int said = lines_saying_shared(argv[0], "use");
	printf("use: %d line(s) on stderr say the program uses the signal\n",
	       said);
	CHECK(said == 1);
	said = lines_saying_shared(argv[0], "quiet");
	printf("quiet: %d line(s) on stderr\n", said);
	CHECK(said == 0);
	return T_PASS;
}
