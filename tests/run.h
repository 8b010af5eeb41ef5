/* SPDX-License-Identifier: MIT */
/* Runs a program (usually the test itself again) with libcfork's
 * environment variables chosen, and catches what it writes. */
#ifndef CFORK_TEST_RUN_H
#define CFORK_TEST_RUN_H

#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>

#include "test.h"

/* This program's path, found once (a test may change directory later):
 * what a test runs again as its own child. */
static inline char *t_self(void)
{
	static char self[4096];
	if (!self[0]) {
		ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
		CHECK(len > 0);
		self[len] = '\0';
	}
	return self;
}

struct t_output {
	int status;                 /* as waitpid gives it */
	char out[4096], err[8192];  /* what it wrote, NUL-ended, cut short */
	size_t nout, nerr;
};

static inline void t_drain(int *fd, char *buf, size_t cap, size_t *len)
{
	char tmp[1024];
	ssize_t n = read(*fd, tmp, sizeof tmp);
	if (n <= 0) {
		close(*fd);
		*fd = -1;
		return;
	}
	size_t k = (size_t)n;
	if (k > cap - 1 - *len)
		k = cap - 1 - *len;
	memcpy(buf + *len, tmp, k);
	*len += k;
	buf[*len] = '\0';
}

/* Runs argv[0] with argv, in an environment without the CFORK_ variables
 * (CFORK_TEST_ ones stay) but with vars (a NULL-ended list of
 * "NAME=VALUE", may be NULL), and fills *o. */
static inline void t_run(char *const argv[], const char *const vars[],
			 struct t_output *o)
{
	extern char **environ;
	size_t n = 0, nv = 0;
	while (environ[n])
		n++;
	while (vars && vars[nv])
		nv++;
	char **env = calloc(n + nv + 1, sizeof *env);
	CHECK(env != NULL);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "CFORK_", 6) ||
		    !strncmp(environ[i], "CFORK_TEST_", 11))
			env[m++] = environ[i];
	for (size_t i = 0; i < nv; i++)
		env[m++] = (char *)vars[i];

	int po[2], pe[2];
	CHECK(pipe(po) == 0 && pipe(pe) == 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawn_file_actions_addclose(&fa, po[0]);
	posix_spawn_file_actions_addclose(&fa, pe[0]);
	pid_t pid;
	int e = posix_spawn(&pid, argv[0], &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(po[1]);
	close(pe[1]);
	if (e)
		DIE("posix_spawn %s: %s", argv[0], strerror(e));

	memset(o, 0, sizeof *o);
	int fo = po[0], fe = pe[0];
	while (fo >= 0 || fe >= 0) {
		struct pollfd p[2] = { { fo, POLLIN, 0 }, { fe, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			DIE("poll: %s", strerror(errno));
		if (fo >= 0 && p[0].revents)
			t_drain(&fo, o->out, sizeof o->out, &o->nout);
		if (fe >= 0 && p[1].revents)
			t_drain(&fe, o->err, sizeof o->err, &o->nerr);
	}
	CHECK(waitpid(pid, &o->status, 0) == pid);
}

/* How many times what occurs in s. */
static inline int t_count(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

#endif
