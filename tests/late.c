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
#include <spawn.h>
#include <sys/wait.h>

#include "cfork.h"      /* the layouts; the functions come from dlsym */
#include "test.h"

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

/* Runs this program with --child; returns its exit status, and what it
 * wrote on stderr in err. */
static int run_child(const char *self, char *err, size_t cap)
{
	extern char **environ;
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 1, sizeof *env);
	CHECK(env != NULL);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "CFORK_", 6) ||
		    !strncmp(environ[i], "CFORK_TEST_", 11))
			env[m++] = environ[i];

	int pe[2];
	CHECK(pipe(pe) == 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawn_file_actions_addclose(&fa, pe[0]);
	char *argv[] = { (char *)self, "--child", NULL };
	pid_t pid;
	int e = posix_spawn(&pid, self, &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(pe[1]);
	if (e)
		DIE("posix_spawn %s: %s", self, strerror(e));
	size_t len = 0;
	ssize_t r;
	while ((r = read(pe[0], err + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	err[len] = '\0';
	close(pe[0]);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : T_ERROR;
}

static int count(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--child"))
		return child_main();
	t_alarm(120);
	static char self[4096], err[16384];
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK(len > 0);
	self[len] = '\0';

	int status = run_child(self, err, sizeof err);
	fprintf(stderr, "the copy's stderr:\n%s", err);
	if (status != T_PASS)
		return status;
	/* AddressSanitizer's or other lines may come too: count ours. */
	CHECK(count(err, "libcfork:") == 1);
	CHECK(count(err, "libcfork: loaded after libc") == 1);
	return T_PASS;
}
