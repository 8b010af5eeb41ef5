/* SPDX-License-Identifier: MIT */
/*
 * A program whose signal handler is on its hot path, as the JVM's is: its
 * interpreter has no null test before a field load and relies on the
 * SIGSEGV, whose handler moves the interrupted rip on to code that throws
 * the NullPointerException (an exception-heavy Java loop takes one signal
 * per iteration).  Under libcfork that handler runs behind the trampoline
 * (lib/sigmask.c), which
 *
 *   - makes no system call of its own there: libcfork's signal is let
 *     into the program's handler, and a thread's mask is otherwise only
 *     touched where the interrupted code was libcfork's own.  An earlier
 *     trampoline unblocked the signal at every signal, one rt_sigprocmask
 *     per null check for the JVM.  Counted with a seccomp filter on the
 *     faulting thread alone, which traps the signal system calls (the
 *     mask changed or read as pending, actions, alternate stacks, sends)
 *     into a SIGSYS handler installed with a raw rt_sigaction (no
 *     trampoline) that counts and returns 0;
 *   - leaves the quiesce signal deliverable inside the handler (the mask
 *     the kernel gave the handler, read with a raw system call);
 *   - reads back the program's action, through sigaction and through
 *     dlsym(RTLD_DEFAULT, "sigaction"), which is what the JVM's
 *     -Xcheck:jni compares with the handler it installed;
 *
 * and a sibling that takes faults in a loop is stopped by cfork like any
 * other: every fault handled, every child fine.  The cost of a fault with
 * and without the trampoline is printed, not checked.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>

#include "cfork.h"
#include "seccomp.h"
#include "test.h"

static int ours;                          /* the quiesce signal */
static _Atomic unsigned long faults;      /* handled by on_segv */
static _Atomic unsigned long deaf;        /* ... with ours blocked */
static _Atomic unsigned long trapped;     /* signal system calls */

/* The faulting load, "mov (%rax),%rax" with rax = 0: 3 bytes.  rdx holds
 * its address, so that the handler moves on only from there. */
static inline void fault(void)
{
	long v = 0, at;
	__asm__ volatile("lea 1f(%%rip), %1\n"
			 "1: movq (%0), %0"
			 : "+a"(v), "=&d"(at)
			 :
			 : "memory");
}

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	greg_t *g = uc->uc_mcontext.gregs;
	if (si->si_addr != NULL || g[REG_RIP] != g[REG_RDX]) {
		signal(sig, SIG_DFL);        /* a real crash: die of it */
		return;
	}
	uint64_t mask = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &mask, 8);
	if (mask & (1ull << (ours - 1)))
		atomic_fetch_add_explicit(&deaf, 1, memory_order_relaxed);
	g[REG_RIP] += 3;
	atomic_fetch_add_explicit(&faults, 1, memory_order_relaxed);
}

/* The kernel's sigaction for a raw rt_sigaction call; glibc does not
 * export the flag that says a restorer is given. */
#define K_SA_RESTORER 0x04000000ul

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static void on_sys(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RAX] = 0;
	atomic_fetch_add_explicit(&trapped, 1, memory_order_relaxed);
}

/* SIGSYS to on_sys without a trampoline: the restorer is glibc's, taken
 * from the action that sigaction installed for SIGSEGV. */
static void install_raw_sigsys(void)
{
	struct ksigaction segv, k;
	CHECK(syscall(SYS_rt_sigaction, SIGSEGV, NULL, &segv, 8) == 0);
	CHECK(segv.flags & K_SA_RESTORER);
	k = (struct ksigaction){ .handler = (void *)on_sys,
				 .flags = SA_SIGINFO | K_SA_RESTORER,
				 .restorer = segv.restorer,
				 .mask = 0 };
	CHECK(syscall(SYS_rt_sigaction, SIGSYS, &k, NULL, 8) == 0);
}

/* The signal system calls trap, on the calling thread only; reading the
 * mask (no new set) does not, so that the handler can check it.  The
 * thread's exit blocks its signals: a no-op once trapped, harmless there.
 * Any other call (the CPU clock, the exit) goes through. */
static int trap_signal_calls(void)
{
	struct sock_filter f[] = {
		T_SECCOMP_LOAD_NR,
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigprocmask, 7, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigpending, 5, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigaction, 4, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sigaltstack, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_tgkill, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_tkill, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
		/* rt_sigprocmask: traps when it has a set, either half of
		 * the pointer not zero. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[1]) + 4),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
	};
	return t_seccomp(f, sizeof f / sizeof f[0]);
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* n faults in a thread of its own, under the filter (the filter cannot
 * be removed, and the thread ends with it); returns the trapped
 * signal system calls, or -1 without seccomp.  *ns: CPU time per fault. */
struct counted {
	int n;
	long trapped;
	double ns;
};

static void *counted_faults(void *arg)
{
	struct counted *c = arg;
	int e = trap_signal_calls();
	if (e < 0) {
		fprintf(stderr, "note: seccomp unavailable (%s): system calls "
			"of the trampoline not counted\n", strerror(-e));
		c->trapped = -1;
	}
	unsigned long before = atomic_load(&trapped);
	uint64_t t0 = cpu_ns();
	for (int i = 0; i < c->n; i++)
		fault();
	c->ns = (double)(cpu_ns() - t0) / c->n;
	if (c->trapped == 0)
		c->trapped = (long)(atomic_load(&trapped) - before);
	return NULL;
}

static _Atomic bool stop;
static _Atomic unsigned long looped;

static void *faulting(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		fault();
		atomic_fetch_add_explicit(&looped, 1, memory_order_relaxed);
	}
	return NULL;
}

int main(void)
{
#ifdef __SANITIZE_ADDRESS__
	/* Its runtime makes signal system calls of its own (sigaltstack as
	 * a thread exits), which the count would trap. */
	SKIP("AddressSanitizer's runtime makes signal system calls itself");
#endif
	t_alarm(300);
	struct cfork_config cfg;
	CHECK(cfork_getconfig(&cfg, sizeof cfg) == 0);
	ours = cfg.signo;
	CHECK(cfork_setmode(CFORK_MODE_QUIESCE) == 0);

	/* As the JVM installs its handler: SA_SIGINFO | SA_RESTART, every
	 * signal blocked but the synchronous ones (SIGSYS too, which the
	 * count below traps into: blocked, it would kill the process). */
	struct sigaction sa, back;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask);
	sigdelset(&sa.sa_mask, SIGSEGV);
	sigdelset(&sa.sa_mask, SIGBUS);
	sigdelset(&sa.sa_mask, SIGSYS);
	CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
	install_raw_sigsys();

	/* -Xcheck:jni's view: handler and flags as installed, whichever
	 * sigaction is asked. */
	int (*dl_sigaction)(int, const struct sigaction *, struct sigaction *) =
		(int (*)(int, const struct sigaction *, struct sigaction *))
			dlsym(RTLD_DEFAULT, "sigaction");
	CHECK(dl_sigaction != NULL);
	for (int i = 0; i < 2; i++) {
		memset(&back, 0, sizeof back);
		CHECK((i ? dl_sigaction : sigaction)(SIGSEGV, NULL, &back) == 0);
		CHECK(back.sa_sigaction == on_segv);
		CHECK((back.sa_flags & (SA_SIGINFO | SA_RESTART | SA_ONSTACK |
					SA_NODEFER | SA_RESETHAND)) ==
		      (SA_SIGINFO | SA_RESTART));
		CHECK(sigismember(&back.sa_mask, SIGINT) == 1);
	}

	/* No system call of the trampoline's on the hot path. */
	struct counted c = { .n = t_iters(100000) };
	pthread_t t;
	CHECK(pthread_create(&t, NULL, counted_faults, &c) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(atomic_load(&faults) == (unsigned long)c.n);
	CHECK(atomic_load(&deaf) == 0);
	if (c.trapped >= 0) {
		if (c.trapped != 0)
			fprintf(stderr, "%ld signal system calls for %d "
				"faults\n", c.trapped, c.n);
		CHECK(c.trapped == 0);
	}
	/* Printed, not checked: the CPU time of a fault, handler included. */
	printf("%d faults: %.0f ns of CPU each, %ld signal system calls\n", c.n,
	       c.ns, c.trapped);

	/* A sibling faulting in a loop is stopped like any other. */
	atomic_store(&faults, 0);
	CHECK(pthread_create(&t, NULL, faulting, NULL) == 0);
	while (atomic_load(&looped) < 1000)
		sched_yield();
	int forks = t_iters(100), coherent = 0;
	for (int i = 0; i < forks; i++) {
		struct cfork_report r;
		pid_t pid = cfork();
		CHECK(pid >= 0);
		if (pid == 0)
			_exit(atomic_load(&faults) > 0 ? 0 : 3);
		int st;
		CHECK(waitpid(pid, &st, 0) == pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		CHECK(cfork_last_report(&r, sizeof r) == 0);
		CHECK(r.method == CFORK_METHOD_QUIESCE);
		coherent += r.coherent;
	}
	atomic_store(&stop, true);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(atomic_load(&faults) == atomic_load(&looped));
	CHECK(atomic_load(&deaf) == 0);
	for (int i = 0; i < 2; i++) {
		CHECK((i ? dl_sigaction : sigaction)(SIGSEGV, NULL, &back) == 0);
		CHECK(back.sa_sigaction == on_segv);
	}
	printf("%d cforks (%d coherent) while a sibling took %lu faults\n",
	       forks, coherent, atomic_load(&faults));
	return T_PASS;
}
