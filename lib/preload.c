/* SPDX-License-Identifier: MIT */
/*
 * libcfork-preload.so: fork() becomes cfork() in a program that was never
 * built for it.  cfork-run(1) preloads it; libcfork-preload(8) is the
 * manual.
 *
 * What is wrapped, from a reading of glibc 2.36 for every caller of its
 * internal __fork / _Fork (calls inside libc do not go through the PLT, so
 * wrapping fork alone does not reach them):
 *   fork, __fork    the exported entry points themselves.
 *   daemon          misc/daemon.c forks internally: re-implemented here.
 *   forkpty         login/forkpty.c (libc since 2.34; the libutil.so.1
 *                   version is an alias of it): re-implemented here as
 *                   openpty + fork + login_tty.
 * Left alone, and why:
 *   _Fork           the async-signal-safe fork without atfork handlers;
 *                   programs call it from signal handlers or precisely to
 *                   avoid handlers and locks: a quiesce there would be
 *                   neither safe nor wanted.
 *   vfork, posix_spawn, system, popen, wordexp
 *                   clone(CLONE_VM|CLONE_VFORK) (vfork.S, spawni.c):
 *                   no memory is copied, so nothing can tear.
 *   _openchild      sunrpc, only used by key_call_keyenvoy, which is not
 *                   built on Linux (SO_PASSCRED exists).
 *   _IO_old_popen   libio/oldiopopen.c: a GLIBC_2.0 compat symbol, not
 *                   built for x86-64 (whose first ABI is 2.2.5).
 *   grantpt         the generic version forks a helper; Linux's does not.
 *   __libc_fork     GLIBC_PRIVATE: no caller outside libc.
 * A program that forks with a raw clone or syscall(SYS_fork) cannot be
 * reached by any preload.
 *
 * libcfork's own wrappers (pthread_atfork, pthread_sigmask, sigaction...)
 * work only when libcfork comes before libc in the symbol search order;
 * as a dependency of a preload it comes after the executable's own
 * dependencies.  So cfork-run preloads libcfork.so.0 itself, before this
 * object.  When that did not happen (this object preloaded alone), a
 * cfork could deadlock in an atfork handler registered with glibc behind
 * libcfork's back: the shim then warns once and forks with libc's fork.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <utmp.h>

#include "cfork.h"

#define EXPORT __attribute__((visibility("default")))

/* What the wrappers do, decided once. */
enum { UNDECIDED, USE_CFORK, USE_LIBC };
static _Atomic int how = UNDECIDED;
static pid_t (*_Atomic next_fork)(void);

static void say(const char *msg)
{
	/* One write(2): lines of processes that share stderr stay whole. */
	ssize_t r = write(STDERR_FILENO, msg, strlen(msg));
	(void)r;
}

/* The object a symbol found in the global scope belongs to. */
static const void *base_of(const char *name)
{
	Dl_info di;
	void *p = dlsym(RTLD_DEFAULT, name);
	if (!p || !dladdr(p, &di))
		return NULL;
	return di.dli_fbase;
}

/* Do the names libcfork wraps reach libcfork first?  One of each kind is
 * asked: the atfork registration and the signal mask. */
static bool libcfork_first(void)
{
	Dl_info self;
	if (!dladdr((void *)cfork, &self))
		return false;
	return base_of("__register_atfork") == self.dli_fbase &&
	       base_of("pthread_sigmask") == self.dli_fbase;
}

/* Idempotent, and cheap after the first call: a fork may come from
 * another library's constructor before ours has run. */
static int decide(void)
{
	int h = atomic_load_explicit(&how, memory_order_acquire);
	if (h != UNDECIDED)
		return h;
	pid_t (*f)(void) = (pid_t (*)(void))dlsym(RTLD_NEXT, "fork");
	atomic_store_explicit(&next_fork, f, memory_order_relaxed);
	int want = libcfork_first() ? USE_CFORK : USE_LIBC;
	int expect = UNDECIDED;
	if (atomic_compare_exchange_strong_explicit(&how, &expect, want,
						    memory_order_acq_rel,
						    memory_order_acquire) &&
	    want == USE_LIBC)
		say("libcfork-preload: libcfork.so.0 comes after libc in the "
		    "symbol search order (preload it first, or use cfork-run): "
		    "fork() stays libc's fork()\n");
	return atomic_load_explicit(&how, memory_order_acquire);
}

static pid_t libc_fork(void)
{
	pid_t (*f)(void) = atomic_load_explicit(&next_fork, memory_order_relaxed);
	if (!f) {
		errno = ENOSYS;
		return -1;
	}
	return f();
}

static pid_t shim_fork(void)
{
	if (decide() != USE_CFORK)
		return libc_fork();
	pid_t pid = cfork();
	/* cfork() refuses to run inside another fork's atfork handlers
	 * (EDEADLK, which fork() never gives); fork() allows it. */
	if (pid == -1 && errno == EDEADLK)
		return libc_fork();
	return pid;
}

EXPORT pid_t fork(void)
{
	return shim_fork();
}

EXPORT pid_t __fork(void) __attribute__((alias("fork"), nothrow));

/* daemon(3) as glibc 2.36 does it: the parent leaves with _exit(0); the
 * child starts a session, and /dev/null (which must be the real device,
 * else ENODEV) replaces stdin, stdout and stderr. */
EXPORT int daemon(int nochdir, int noclose)
{
	switch (shim_fork()) {
	case -1:
		return -1;
	case 0:
		break;
	default:
		_exit(0);
	}
	if (setsid() == -1)
		return -1;
	if (!nochdir && chdir("/") != 0) {
		/* ignored, as glibc ignores it */
	}
	if (noclose)
		return 0;
	int fd = open("/dev/null", O_RDWR);
	if (fd == -1)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
		close(fd);
		errno = ENODEV;
		return -1;
	}
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

/* forkpty(3): a new pseudo-terminal whose secondary side becomes the
 * child's controlling terminal and standard streams. */
EXPORT int forkpty(int *amaster, char *name, const struct termios *termp,
		   const struct winsize *winp)
{
	int master, slave;
	if (openpty(&master, &slave, name, termp, winp) == -1)
		return -1;
	pid_t pid = shim_fork();
	if (pid == -1) {
		int e = errno;
		close(master);
		close(slave);
		errno = e;
		return -1;
	}
	if (pid == 0) {
		close(master);
		if (login_tty(slave) != 0)
			_exit(1);
		return 0;
	}
	*amaster = master;
	close(slave);
	return pid;
}

/* ---- CFORK_SHIM_INHERIT=0: exec'd programs run without the shim ---- */

static bool same_file(const char *entry, const char *loaded)
{
	struct stat a, b;
	if (!loaded)
		return false;
	if (!strchr(entry, '/')) {
		/* A bare name is searched like a DT_NEEDED entry. */
		const char *slash = strrchr(loaded, '/');
		return strcmp(entry, slash ? slash + 1 : loaded) == 0;
	}
	return stat(entry, &a) == 0 && stat(loaded, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static const char *file_of(const void *addr)
{
	Dl_info di;
	return dladdr(addr, &di) ? di.dli_fname : NULL;
}

/* Drops from LD_PRELOAD every entry that names this object or libcfork;
 * the user's own entries stay, in their order. */
static void forget_preload(void)
{
	const char *cur = getenv("LD_PRELOAD");
	if (!cur)
		return;
	const char *self = file_of((void *)forget_preload);
	const char *lib = file_of((void *)cfork);
	size_t len = strlen(cur);
	char *copy = malloc(len + 1), *out = malloc(len + 1);
	if (!copy || !out) {
		free(copy);
		free(out);
		say("libcfork-preload: out of memory: LD_PRELOAD left as it "
		    "was\n");
		return;
	}
	memcpy(copy, cur, len + 1);
	size_t n = 0;
	char *save = NULL;
	/* The loader splits LD_PRELOAD at spaces and colons. */
	for (char *e = strtok_r(copy, " :", &save); e;
	     e = strtok_r(NULL, " :", &save)) {
		if (same_file(e, self) || same_file(e, lib))
			continue;
		if (n)
			out[n++] = ' ';
		size_t l = strlen(e);
		memcpy(out + n, e, l);
		n += l;
	}
	out[n] = '\0';
	if (n)
		setenv("LD_PRELOAD", out, 1);
	else
		unsetenv("LD_PRELOAD");
	free(copy);
	free(out);
}

__attribute__((constructor)) static void preload_init(void)
{
	const char *inherit = getenv("CFORK_SHIM_INHERIT");
	if (inherit && !strcmp(inherit, "0"))
		forget_preload();
	else if (inherit && *inherit && strcmp(inherit, "1") != 0)
		say("libcfork-preload: CFORK_SHIM_INHERIT is neither 0 nor 1: "
		    "LD_PRELOAD left as it was\n");
	decide();
}
