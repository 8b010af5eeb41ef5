/* SPDX-License-Identifier: MIT */
/* Shared by the tests: automake's exit codes, CHECK, a hang guard. */
#ifndef CFORK_TEST_H
#define CFORK_TEST_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T_PASS 0
#define T_FAIL 1
#define T_SKIP 77
#define T_ERROR 99

#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n",       \
				__FILE__, __LINE__, #cond);                \
			exit(T_FAIL);                                      \
		}                                                          \
	} while (0)

#define SKIP(...)                                                          \
	do {                                                               \
		fprintf(stderr, "SKIP: " __VA_ARGS__);                     \
		fputc('\n', stderr);                                       \
		exit(T_SKIP);                                              \
	} while (0)

#define DIE(...)                                                           \
	do {                                                               \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);            \
		fprintf(stderr, __VA_ARGS__);                              \
		fputc('\n', stderr);                                       \
		exit(T_ERROR);                                             \
	} while (0)

/* Every test arms this first: a hang is a failure, not a stalled CI. */
static inline void t_alarm(unsigned seconds)
{
	signal(SIGALRM, SIG_DFL);
	alarm(seconds);
}

/* A thread start that sleeps in pause() for good: a sibling to stop. */
static inline void *t_sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Iterations, scaled down by CFORK_TEST_QUICK for the sanitizer builds. */
static inline int t_iters(int n)
{
	const char *q = getenv("CFORK_TEST_QUICK");
	return q && *q && *q != '0' ? (n / 10 > 0 ? n / 10 : 1) : n;
}

#ifdef CFORK_H
#include <sys/wait.h>
/* One cfork whose child exits at once; the parent waits for the child
 * and, when r is not NULL, reads the report of that cfork. */
static inline void t_cfork_once(struct cfork_report *r)
{
	pid_t pid = cfork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(0);
	CHECK(waitpid(pid, NULL, 0) == pid);
	if (r)
		CHECK(cfork_last_report(r, sizeof *r) == 0);
}
#endif

#endif
