/* SPDX-License-Identifier: MIT */
/*
 * Where the report is seen: the parent sees the cfork it just made; a
 * child starts with no report at all (CFORK_METHOD_NONE, no stragglers),
 * since the report lives in memory a child gets zeroed, and sees its own
 * once it calls cfork() itself.
 *
 * And the size contract of cfork_last_report() and cfork_last_stragglers()
 * (cfork_probe()'s too, in tests/probe): at most size bytes of the
 * library's structure are copied, and the bytes from its end up to size
 * are zeroed.  The stragglers' part runs in a copy of this program
 * (--straggler) with a short CFORK_TIMEOUT_MS and a sibling that blocks
 * every signal, so that there is one.
 */
#include "config.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cfork.h"
#include "test.h"

/* In the child: exit status 0 when all is as documented. */
static int child(void)
{
	struct cfork_report r;
	if (cfork_last_report(&r, sizeof r) != 0 ||
	    r.method != CFORK_METHOD_NONE ||
	    cfork_last_stragglers(NULL, 0, sizeof(struct cfork_straggler)))
		return 1;
	pid_t pid = cfork();
	if (pid < 0)
		return 2;
	if (pid == 0)
		_exit(0);
	if (waitpid(pid, NULL, 0) != pid)
		return 3;
	if (cfork_last_report(&r, sizeof r) != 0 || r.pid != pid ||
	    r.method == CFORK_METHOD_NONE)
		return 4;
	return 0;
}

static void check_report_sizes(void)
{
	struct cfork_report r;
	unsigned char buf[sizeof r + 16] __attribute__((aligned(16)));
	CHECK(cfork_last_report(&r, sizeof r) == 0);
	memset(buf, 0xa5, sizeof buf);
	CHECK(cfork_last_report((struct cfork_report *)buf, sizeof buf) == 0);
	CHECK(memcmp(buf, &r, sizeof r) == 0);
	for (size_t i = sizeof r; i < sizeof buf; i++)
		CHECK(buf[i] == 0);
	memset(buf, 0xa5, sizeof buf);
	CHECK(cfork_last_report((struct cfork_report *)buf, sizeof(int)) == 0);
	CHECK(memcmp(buf, &r, sizeof(int)) == 0);
	for (size_t i = sizeof(int); i < sizeof buf; i++)
		CHECK(buf[i] == 0xa5);
}

static sem_t deaf_ready;
static _Atomic pid_t deaf_tid;

/* A sibling libcfork cannot stop: it blocks every signal with the system
 * call itself, which the library's wrappers never see. */
static void *deaf(void *arg)
{
	sigset_t all;
	sigfillset(&all);
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, NULL, _NSIG / 8);
	atomic_store(&deaf_tid, (pid_t)syscall(SYS_gettid));
	sem_post(&deaf_ready);
	for (;;)
		pause();
	return arg;
}

#define BIG (sizeof(struct cfork_straggler) + 16)

static int straggler_main(void)
{
	t_alarm(60);
	pthread_t t;
	CHECK(sem_init(&deaf_ready, 0, 0) == 0);
	CHECK(pthread_create(&t, NULL, deaf, NULL) == 0);
	while (sem_wait(&deaf_ready) != 0)
		;
	struct cfork_report r;
	t_cfork_once(&r);
	CHECK(r.method == CFORK_METHOD_QUIESCE && r.not_stopped == 1);
	struct cfork_straggler one;
	CHECK(cfork_last_stragglers(&one, 1, sizeof one) == 1);
	CHECK(one.tid == atomic_load(&deaf_tid));

	/* Larger elements: each zeroed past the library's structure; the
	 * second, for which there is no straggler, left alone. */
	static unsigned char buf[2 * BIG] __attribute__((aligned(16)));
	memset(buf, 0xa5, sizeof buf);
	CHECK(cfork_last_stragglers((struct cfork_straggler *)buf, 2, BIG) == 1);
	CHECK(memcmp(buf, &one, sizeof one) == 0);
	for (size_t i = sizeof one; i < BIG; i++)
		CHECK(buf[i] == 0);
	for (size_t i = BIG; i < sizeof buf; i++)
		CHECK(buf[i] == 0xa5);
	/* Smaller ones: that much of each, nothing more. */
	memset(buf, 0xa5, sizeof buf);
	CHECK(cfork_last_stragglers((struct cfork_straggler *)buf, 2,
				    sizeof(pid_t)) == 1);
	CHECK(memcmp(buf, &one.tid, sizeof(pid_t)) == 0);
	for (size_t i = sizeof(pid_t); i < sizeof buf; i++)
		CHECK(buf[i] == 0xa5);
	printf("stragglers: copied and zeroed as documented\n");
	return T_PASS;
}

/* Runs the stragglers' part in a copy of this program, whose library
 * reads a short bound at load. */
static void check_straggler_sizes(void)
{
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char *argv[] = { "report", "--straggler", NULL };
		setenv("CFORK_MODE", "quiesce", 1);
		setenv("CFORK_TIMEOUT_MS", "100", 1);
		setenv("CFORK_ON_TIMEOUT", "fork", 1);
		execv("/proc/self/exe", argv);
		_exit(T_ERROR);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == T_PASS);
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--straggler"))
		return straggler_main();
	t_alarm(60);
	check_straggler_sizes();     /* while single-threaded: it forks */
	struct cfork_report r;
	CHECK(cfork_last_report(&r, sizeof r) == 0);
	CHECK(r.method == CFORK_METHOD_NONE);

	pthread_t t;
	CHECK(pthread_create(&t, NULL, t_sleeper, NULL) == 0);
	for (int i = 0; i < t_iters(20); i++) {
		pid_t pid = cfork();
		CHECK(pid >= 0);
		if (pid == 0)
			_exit(child());
		int status;
		CHECK(waitpid(pid, &status, 0) == pid);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "child %d: status %#x (exit 1: it "
				"saw a report; 2-4: its own cfork failed)\n",
				i, status);
			return T_FAIL;
		}
		CHECK(cfork_last_report(&r, sizeof r) == 0);
		CHECK(r.pid == pid);
		CHECK(r.method == CFORK_METHOD_QUIESCE);
		CHECK(r.coherent == 1 && r.parked == 1);
	}
	printf("%d cforks: each parent saw its report, each child none "
	       "until its own cfork\n", t_iters(20));
	check_report_sizes();
	return T_PASS;
}
