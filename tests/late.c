/* SPDX-License-Identifier: MIT */
/*
 * libcfork loaded after libc in the symbol search order says so: one line
 * on stderr, however many cforks follow, and cfork_getconfig() reports
 * late = 1; cfork() still gives working children.
 *
 * Two programs from this source: tests/late does not link libcfork and
 * dlopen()s it (CFORK_TEST_LIBCFORK, the build tree's libcfork.so);
 * tests/late-linked links it after libc (its DT_NEEDED entries list
 * libc.so.6 first), as a program gets it through another library.  Each
 * runs itself again (--child) with stderr captured and no CFORK_ variable,
 * so that the count of lines is the library's alone.  tests/mode checks
 * that a program linked the usual way gets no line and late = 0.
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/wait.h>

#include "cfork.h"      /* the layouts; the functions come from dlsym */
#include "run.h"

#define FORKS 3

static int child_main(void)
{
	t_alarm(60);
	const char *path = getenv("CFORK_TEST_LIBCFORK");
	if (!path || !*path)
		DIE("CFORK_TEST_LIBCFORK is not set (make check sets it)");
	/* In tests/late-linked this finds the copy already loaded. */
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		DIE("dlopen %s: %s", path, dlerror());
	pid_t (*fork_fn)(void) = (pid_t (*)(void))dlsym(h, "cfork");
	int (*getconfig)(struct cfork_config *, size_t) =
		(int (*)(struct cfork_config *, size_t))dlsym(h,
							      "cfork_getconfig");
	if (!fork_fn || !getconfig)
		DIE("dlsym: %s", dlerror());

	pthread_t t;
	CHECK(pthread_create(&t, NULL, t_sleeper, NULL) == 0);
	struct cfork_config c;
	for (int i = 0; i < FORKS; i++) {
		pid_t pid = fork_fn();
		CHECK(pid >= 0);
		if (pid == 0)
			_exit(0);
		int status;
		CHECK(waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		CHECK(getconfig(&c, sizeof c) == 0);
		CHECK(c.late == 1);
	}
	printf("late %d\n", c.late);
	return T_PASS;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--child"))
		return child_main();
	t_alarm(120);
	char *self = t_self();
	static struct t_output o;

	char *args[] = { self, "--child", NULL };
	t_run(args, NULL, &o);
	fprintf(stderr, "the copy's stderr:\n%s", o.err);
	int status = WIFEXITED(o.status) ? WEXITSTATUS(o.status) : T_ERROR;
	if (status != T_PASS)
		return status;
	/* AddressSanitizer's or other lines may come too: count ours. */
	CHECK(t_count(o.err, "libcfork:") == 1);
	CHECK(t_count(o.err, "libcfork: loaded after libc") == 1);
	return T_PASS;
}
