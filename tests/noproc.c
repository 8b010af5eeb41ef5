/* SPDX-License-Identifier: MIT */
/*
 * Without /proc the threads cannot be listed: cfork must still return a
 * working child (no hang, no crash), and its report must say it is not
 * coherent and why; with CFORK_ON_TIMEOUT=fail it would fail instead, but
 * the default forks.  /proc is hidden in a private mount namespace, which
 * needs CAP_SYS_ADMIN: without it the test is skipped.
 */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mount.h>

#include "cfork.h"
#include "test.h"

int main(void)
{
	t_alarm(60);
	/* Before any thread: unshare(CLONE_NEWNS) refuses a threaded caller. */
	if (unshare(CLONE_NEWNS) < 0)
		SKIP("cannot make a mount namespace (%s): needs CAP_SYS_ADMIN",
		     strerror(errno));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    umount2("/proc", MNT_DETACH) < 0)
		SKIP("cannot hide /proc here: %s", strerror(errno));
	CHECK(access("/proc/self/task", R_OK) < 0);

	pthread_t t;
	CHECK(pthread_create(&t, NULL, t_sleeper, NULL) == 0);
	struct cfork_report r;
	t_cfork_once(&r);
	printf("without /proc: cfork returned a child; coherent %d (%s)\n",
	       r.coherent, r.not_coherent ? r.not_coherent : "-");
	CHECK(r.method == CFORK_METHOD_QUIESCE);
	CHECK(r.coherent == 0);
	CHECK(r.not_coherent && strstr(r.not_coherent, "/proc"));
	/* _exit: LeakSanitizer's exit-time check needs /proc too. */
	fflush(stdout);
	_exit(T_PASS);
}
