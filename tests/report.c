/* SPDX-License-Identifier: MIT */
/*
 * Where the report is seen: the parent sees the cfork it just made; a
 * child starts with no report at all (CFORK_METHOD_NONE, no stragglers),
 * since the report lives in memory a child gets zeroed, and sees its own
 * once it calls cfork() itself.
 */
#include "config.h"

#include <pthread.h>
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

int main(void)
{
	t_alarm(60);
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
	return T_PASS;
}
