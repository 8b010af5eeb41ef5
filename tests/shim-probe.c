/* SPDX-License-Identifier: MIT */
/*
 * A program built for plain fork(), for tests/cfork-run.sh to run with and
 * without the shim.  It does not link libcfork (tests/shim-probe-linked
 * is the same program linked to it): whether it runs under the shim, and
 * how its last fork went, it learns by looking cfork_last_report up with
 * dlsym.  One command per run; each prints lines for the script to compare.
 *
 *   report          shim yes|no, secure 0|1, libcfork objects mapped,
 *                   then one fork() and its method
 *   setmode quiesce|direct
 *                   cfork_setmode() (looked up too), then one fork() and
 *                   its method
 *   env             LD_PRELOAD as this process sees it
 *   atfork          the order of two programs' worth of handlers around a
 *                   fork(), in the parent and in the child
 *   vfork | spawn | system
 *                   one of each, its exit status, and the method of the
 *                   last cfork (none: they must not quiesce)
 *   daemon NOCHDIR NOCLOSE
 *                   daemon(3); the daemon reports on fd 3's copy
 *   forkpty         forkpty(3); the child reports over the terminal
 */
#include "config.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <pty.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cfork.h"      /* the report's layout only: nothing is linked */
#include "test.h"

extern char **environ;

/* The last cfork's method: "none" without the shim or before any cfork. */
static const char *last_method(int *coherent)
{
	int (*rep)(struct cfork_report *, size_t) =
		(int (*)(struct cfork_report *, size_t))
		dlsym(RTLD_DEFAULT, "cfork_last_report");
	struct cfork_report r;
	*coherent = 0;
	if (!rep || rep(&r, sizeof r) != 0)
		return "none";
	*coherent = r.coherent;
	switch (r.method) {
	case CFORK_METHOD_DIRECT: return "direct";
	case CFORK_METHOD_QUIESCE: return "quiesce";
	default: return "none";
	}
}

static void print_method(const char *what)
{
	int coherent;
	const char *m = last_method(&coherent);
	printf("%s: method %s coherent %d\n", what, m, coherent);
}

/* Distinct libcfork.so files mapped: one libcfork per process. */
static int libcfork_objects(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	char line[4096], seen[8][512];
	int n = 0;
	while (fgets(line, sizeof line, f)) {
		char *path = strchr(line, '/');
		if (!path || !strstr(path, "/libcfork.so"))
			continue;
		path[strcspn(path, "\n")] = '\0';
		int dup = 0;
		for (int i = 0; i < n; i++)
			dup |= !strcmp(seen[i], path);
		if (!dup && n < 8)
			snprintf(seen[n++], sizeof seen[0], "%s", path);
	}
	fclose(f);
	return n;
}

static int wait_status(pid_t pid)
{
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int cmd_report(void)
{
	printf("shim %s\n", dlsym(RTLD_DEFAULT, "cfork_last_report") ?
	       "yes" : "no");
	printf("secure %lu\n", getauxval(AT_SECURE));
	printf("libcfork objects %d\n", libcfork_objects());
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(3);
	printf("fork: status %d\n", wait_status(pid));
	print_method("fork");
	return 0;
}

static int cmd_setmode(const char *mode)
{
	int (*setmode)(int) = (int (*)(int))dlsym(RTLD_DEFAULT,
						  "cfork_setmode");
	if (!setmode) {
		printf("setmode: no libcfork\n");
		return 0;
	}
	CHECK(setmode(!strcmp(mode, "direct") ? CFORK_MODE_DIRECT
					      : CFORK_MODE_QUIESCE) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(0);
	CHECK(wait_status(pid) == 0);
	print_method("setmode");
	return 0;
}

/* Two libraries' worth of handlers, registered A then B. */
static char order[64];
static void note(const char *s)
{
	strncat(order, s, sizeof order - strlen(order) - 1);
}
static void prep_a(void) { note(" prepA"); }
static void prep_b(void) { note(" prepB"); }
static void par_a(void) { note(" parentA"); }
static void par_b(void) { note(" parentB"); }
static void chi_a(void) { note(" childA"); }
static void chi_b(void) { note(" childB"); }

static int cmd_atfork(void)
{
	CHECK(pthread_atfork(prep_a, par_a, chi_a) == 0);
	CHECK(pthread_atfork(prep_b, par_b, chi_b) == 0);
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		printf("child:%s\n", order);
		fflush(stdout);
		_exit(0);
	}
	CHECK(wait_status(pid) == 0);
	printf("parent:%s\n", order);
	print_method("atfork");
	return 0;
}

static int cmd_vfork(void)
{
	pid_t pid = vfork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(7);
	printf("vfork: status %d\n", wait_status(pid));
	print_method("vfork");
	return 0;
}

/* The spawned shell prints its LD_PRELOAD: spawned programs inherit. */
static int cmd_spawn(void)
{
	char *argv[] = { "sh", "-c", "echo \"spawned LD_PRELOAD=[$LD_PRELOAD]\"; "
			 "exit 6", NULL };
	pid_t pid;
	fflush(stdout);
	CHECK(posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) == 0);
	printf("spawn: status %d\n", wait_status(pid));
	print_method("spawn");
	return 0;
}

static int cmd_system(void)
{
	fflush(stdout);
	int st = system("exit 5");
	CHECK(st != -1 && WIFEXITED(st));
	printf("system: status %d\n", WEXITSTATUS(st));
	print_method("system");
	return 0;
}

static int is_devnull(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
	       st.st_rdev == makedev(1, 3);
}

static int cmd_daemon(int nochdir, int noclose)
{
	/* Where the daemon reports, whatever daemon() does to 0, 1, 2. */
	int out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 10);
	CHECK(out >= 0);
	pid_t before = getpid();
	fflush(stdout);
	if (daemon(nochdir, noclose) != 0) {
		printf("daemon: failed: %s\n", strerror(errno));
		return 1;
	}
	char cwd[256];
	if (!getcwd(cwd, sizeof cwd))
		strcpy(cwd, "?");
	dprintf(out, "daemon: new process %s, session leader %s, cwd %s, "
		"stdio /dev/null %d%d%d\n",
		getpid() != before ? "yes" : "no",
		getsid(0) == getpid() ? "yes" : "no", cwd,
		is_devnull(0), is_devnull(1), is_devnull(2));
	return 0;
}

static int cmd_forkpty(void)
{
	int master;
	fflush(stdout);
	pid_t pid = forkpty(&master, NULL, NULL, NULL);
	CHECK(pid >= 0);
	if (pid == 0) {
		/* Our terminal is the pty: controlling, and ours alone. */
		printf("pty child: tty %d%d%d, session leader %s, foreground %s\n",
		       isatty(0), isatty(1), isatty(2),
		       getsid(0) == getpid() ? "yes" : "no",
		       tcgetpgrp(0) == getpgrp() ? "yes" : "no");
		fflush(stdout);
		_exit(0);
	}
	char buf[512];
	size_t n = 0;
	ssize_t r;
	/* EOF, or EIO once the child has closed its side. */
	while (n < sizeof buf - 1 &&
	       (r = read(master, buf + n, sizeof buf - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	printf("%s\n", buf);
	printf("forkpty: status %d\n", wait_status(pid));
	print_method("forkpty");
	close(master);
	return 0;
}

int main(int argc, char **argv)
{
	t_alarm(60);
	const char *cmd = argc > 1 ? argv[1] : "";
	if (!strcmp(cmd, "report"))
		return cmd_report();
	if (!strcmp(cmd, "env")) {
		const char *p = getenv("LD_PRELOAD");
		printf("LD_PRELOAD=[%s]\n", p ? p : "");
		return 0;
	}
	if (!strcmp(cmd, "setmode") && argc == 3)
		return cmd_setmode(argv[2]);
	if (!strcmp(cmd, "atfork"))
		return cmd_atfork();
	if (!strcmp(cmd, "vfork"))
		return cmd_vfork();
	if (!strcmp(cmd, "spawn"))
		return cmd_spawn();
	if (!strcmp(cmd, "system"))
		return cmd_system();
	if (!strcmp(cmd, "daemon") && argc == 4)
		return cmd_daemon(atoi(argv[2]), atoi(argv[3]));
	if (!strcmp(cmd, "forkpty"))
		return cmd_forkpty();
	fprintf(stderr, "usage: %s report|env|atfork|vfork|spawn|system|"
		"daemon NOCHDIR NOCLOSE|forkpty\n", argv[0]);
	return T_ERROR;
}
