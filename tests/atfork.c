/* SPDX-License-Identifier: MIT */
/*
 * pthread_atfork under libcfork behaves as under glibc's fork(), for cfork()
 * and for a plain fork() in a program linked with libcfork:
 *   - prepare handlers run newest first, parent and child handlers in
 *     registration order, each exactly once per fork;
 *   - handlers registered with glibc directly (libcfork does not own them)
 *     still run exactly once;
 *   - the handlers of a dlopen'ed object are dropped when it is dlclose'd
 *     (real modules, compiled here when a C compiler is at hand, plain and
 *     linked with libcfork; and always the same path driven by hand:
 *     __register_atfork with a DSO handle, then __cxa_finalize of that
 *     handle, which is what dlclose does);
 *   - cfork() from inside an atfork handler fails with EDEADLK, not a hang,
 *     also with CFORK_MODE=direct (this program run again with it);
 *   - the child's getpid() is the pid the parent got;
 *   - a fork that the kernel refuses (a seccomp filter makes clone fail)
 *     gives -1 with the kernel's errno, runs prepare and parent handlers
 *     once, and leaves the siblings running.
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cfork.h"
#include "run.h"
#include "seccomp.h"

/* The symbols libcfork exports under glibc's names. */
int __register_atfork(void (*prepare)(void), void (*parent)(void),
		      void (*child)(void), void *dso);
void __cxa_finalize(void *dso);

/* ---- the log: each handler appends two characters, what and whose ---- */

static char log_buf[512];
static size_t log_len;

static void log_tok(const char *tok)
{
	size_t n = strlen(tok);
	if (log_len + n < sizeof log_buf) {
		memcpy(log_buf + log_len, tok, n);
		log_len += n;
		log_buf[log_len] = '\0';
	}
}

static void log_reset(void)
{
	log_len = 0;
	log_buf[0] = '\0';
}

/* Sets A, B, C registered in that order through pthread_atfork (so with
 * libcfork); D registered with glibc's own __register_atfork; F with a
 * DSO handle of its own (test_registry). */
#define SET(x)                                                              \
	static void prep_##x(void) { log_tok("p" #x); }                     \
	static void par_##x(void) { log_tok("P" #x); }                      \
	static void chi_##x(void) { log_tok("C" #x); }
SET(A)
SET(B)
SET(C)
SET(D)
SET(F)

/* A's parent handler also clobbers errno: a failed fork must still report
 * the kernel's errno, as glibc's fork() does. */
static void par_A_clobber(void)
{
	par_A();
	errno = ENOENT;
}

/* Set E calls cfork() from its prepare and parent handlers when asked. */
static _Atomic bool nest;
static int nested_calls, nested_ok;
static void nested_cfork(void)
{
	if (!atomic_load(&nest))
		return;
	errno = 0;
	pid_t r = cfork();
	if (r == 0)
		_exit(42);              /* must not happen: a stray child */
	nested_calls++;
	nested_ok += r == -1 && errno == EDEADLK;
}

/* "pA", "PD" ... occurrences in s. */
static int count_tok(const char *s, const char *tok)
{
	int n = 0;
	for (; *s && s[1]; s += 2)
		n += s[0] == tok[0] && s[1] == tok[1];
	return n;
}

/* s without the tokens whose owner is who. */
static void strip(const char *s, char who, char *out)
{
	for (; *s && s[1]; s += 2)
		if (s[1] != who) {
			*out++ = s[0];
			*out++ = s[1];
		}
	*out = '\0';
}

/* What libcfork's own sets must log: prepare newest first, then the
 * parent's or child's handlers in registration order. */
static void expected(const char *sets, char side, char *out)
{
	size_t n = strlen(sets);
	for (size_t i = n; i-- > 0;) {
		*out++ = 'p';
		*out++ = sets[i];
	}
	for (size_t i = 0; i < n; i++) {
		*out++ = side;
		*out++ = sets[i];
	}
	*out = '\0';
}

/* Checks one side's log; returns true when right, else prints why. */
static bool log_right(const char *who, const char *log, const char *sets,
		      char side, bool exact_glibc)
{
	char want[128], got[512];
	expected(sets, side, want);
	strip(log, 'D', got);
	bool ok = !strcmp(got, want);
	/* D: exactly once, prepare before the other side's handler. */
	char dp[3] = { 'p', 'D', 0 }, ds[3] = { side, 'D', 0 };
	ok = ok && count_tok(log, dp) == 1 && count_tok(log, ds) == 1 &&
	     strstr(log, dp) < strstr(log, ds);
	char other = side == 'P' ? 'C' : 'P';
	for (const char *s = log; *s && s[1]; s += 2)
		ok = ok && s[0] != other;
	if (ok && exact_glibc) {
		/* A plain fork() is glibc's: libcfork's one registration with
		 * glibc is older than D's, so D's prepare runs first and its
		 * parent or child handler last. */
		char full[160];
		snprintf(full, sizeof full, "pD%s%cD", want, side);
		ok = !strcmp(log, full);
	}
	if (!ok)
		fprintf(stderr, "%s: handler log '%s', want '%s' plus pD and "
			"%cD once each%s\n", who, log, want, side,
			exact_glibc ? " in glibc's order" : "");
	return ok;
}

/* ---- one fork, checked from both sides ---- */

static void fork_checked(pid_t (*forker)(void), const char *name,
			 const char *sets)
{
	int fds[2];
	CHECK(pipe(fds) == 0);
	pid_t parent = getpid();
	bool exact = forker == fork;
	log_reset();
	pid_t pid = forker();
	int saved = errno;
	if (pid == 0) {
		/* The child reports its own view and exits with the result. */
		pid_t me = getpid();
		int bad = 0;
		bad |= !log_right(name, log_buf, sets, 'C', exact);
		bad |= (pid_t)syscall(SYS_gettid) != me;  /* single thread */
		bad |= getppid() != parent;
		if (write(fds[1], &me, sizeof me) != sizeof me)
			bad = 1;
		_exit(bad ? 1 : 0);
	}
	if (pid < 0)
		DIE("%s: %s", name, strerror(saved));
	close(fds[1]);
	pid_t reported = 0;
	CHECK(read(fds[0], &reported, sizeof reported) == sizeof reported);
	close(fds[0]);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fprintf(stderr, "%s: child status 0x%x\n", name, status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(reported == pid);
	CHECK(log_right(name, log_buf, sets, 'P', exact));
}

/* ---- a sibling, so that cfork() really has threads to stop ---- */

static _Atomic unsigned long ticks;
static _Atomic bool stop;

static void *ticker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		atomic_fetch_add(&ticks, 1);
		usleep(100);
	}
	return NULL;
}

static bool ticker_moves(void)
{
	unsigned long t = atomic_load(&ticks);
	for (int i = 0; i < 2000; i++) {
		if (atomic_load(&ticks) != t)
			return true;
		usleep(1000);
	}
	return false;
}

/* ---- cfork() inside a handler ---- */

static void test_nested(pid_t (*forker)(void), const char *name)
{
	nested_calls = nested_ok = 0;
	atomic_store(&nest, true);
	pid_t pid = forker();
	if (pid == 0)
		_exit(0);
	atomic_store(&nest, false);
	CHECK(pid > 0);
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* No other child: a nested cfork that succeeded would leave one. */
	CHECK(waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD);
	if (nested_calls != 2 || nested_ok != 2)
		fprintf(stderr, "%s: nested cfork: %d calls, %d gave "
			"EDEADLK\n", name, nested_calls, nested_ok);
	CHECK(nested_calls == 2 && nested_ok == 2);
}

/* The same in a copy of this program run with CFORK_MODE=direct (the mode
 * is read once, at load): a cfork() that forks directly must still see
 * that it is inside a fork's handlers. */
static void test_nested_direct(const char *self)
{
	extern char **environ;
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof *env);
	CHECK(env != NULL);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "CFORK_MODE=", 11))
			env[m++] = environ[i];
	env[m++] = "CFORK_MODE=direct";
	char *argv[] = { (char *)self, "--nested-only", NULL };
	pid_t pid;
	int e = posix_spawn(&pid, self, NULL, NULL, argv, env);
	free(env);
	if (e)
		DIE("posix_spawn %s: %s", self, strerror(e));
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
		fprintf(stderr, "CFORK_MODE=direct: cfork() inside an atfork "
			"handler hung\n");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static int nested_only(void)
{
	t_alarm(10);
	CHECK(pthread_atfork(nested_cfork, nested_cfork, NULL) == 0);
	test_nested(cfork, "cfork, CFORK_MODE=direct");
	test_nested(fork, "fork, CFORK_MODE=direct");
	return T_PASS;
}

/* ---- unloading ---- */

static void on_segv(int sig)
{
	(void)sig;
	static const char msg[] = "SIGSEGV: probably a fork handler of an "
				  "unloaded object was called\n";
	if (write(2, msg, sizeof msg - 1) < 0)
		_exit(1);
	_exit(1);
}

/* __register_atfork with a DSO handle, then __cxa_finalize of it: what a
 * module's registration and its dlclose come down to.  The handle lies
 * outside every loaded object: libcfork also drops handlers registered
 * through its own pthread_atfork by the object a real handle lies in. */
static void test_registry(void)
{
	char *fake_dso = malloc(1);
	CHECK(fake_dso != NULL);
	CHECK(__register_atfork(prep_F, par_F, chi_F, fake_dso) == 0);
	fork_checked(cfork, "cfork, F registered", "ABCF");
	__cxa_finalize(fake_dso);
	fork_checked(cfork, "cfork, F finalized", "ABC");
	fork_checked(fork, "fork, F finalized", "ABC");
	free(fake_dso);
}

/* The module: its handlers log "p", "P" or "C" followed by the letter it
 * was given. */
static const char module_src[] =
	"#include <pthread.h>\n"
	"static void (*logf)(const char *);\n"
	"static char tok[3][3] = { \"p\", \"P\", \"C\" };\n"
	"static void prep(void) { logf(tok[0]); }\n"
	"static void par(void) { logf(tok[1]); }\n"
	"static void chi(void) { logf(tok[2]); }\n"
	"int mod_register(void (*f)(const char *), char id)\n"
	"{\n"
	"	logf = f;\n"
	"	tok[0][1] = tok[1][1] = tok[2][1] = id;\n"
	"	return pthread_atfork(prep, par, chi);\n"
	"}\n";

/* Builds the module in a new directory, linked with extra (a library
 * path) when given; false when there is no working compiler. */
static bool build_module(char *dir, char *so, size_t len, const char *extra)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, len, "%s/cfork-atfork-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return false;
	char src[512], cmd[4096];
	snprintf(src, sizeof src, "%s/mod.c", dir);
	snprintf(so, len, "%s/mod.so", dir);
	FILE *f = fopen(src, "w");
	if (!f)
		return false;
	fputs(module_src, f);
	fclose(f);
	const char *cc = getenv("CC");
	snprintf(cmd, sizeof cmd, "%s -shared -fPIC -o '%s' '%s' %s%s%s "
		 ">/dev/null 2>&1", cc && *cc ? cc : "cc", so, src,
		 extra ? "'" : "", extra ? extra : "", extra ? "'" : "");
	int r = system(cmd);
	unlink(src);
	return r == 0 && access(so, R_OK) == 0;
}

/* A module registers handlers, is used, is unloaded; its handlers must
 * run while it is there and never after.  Built twice: as most plugins
 * are (its pthread_atfork is libc_nonshared's stub, which passes the
 * module's DSO handle to __register_atfork), and linked with libcfork, as
 * a plugin that itself calls cfork() is (its pthread_atfork reference may
 * then bind to whatever libcfork exports under that name). */
static bool test_module(const char *what, char id, const char *link_with)
{
	char dir[256], so[512];
	if (!build_module(dir, so, sizeof so, link_with)) {
		rmdir(dir);
		return false;
	}
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	unlink(so);
	rmdir(dir);
	if (!h)
		DIE("dlopen: %s", dlerror());
	int (*reg)(void (*)(const char *), char) =
		(int (*)(void (*)(const char *), char))dlsym(h, "mod_register");
	CHECK(reg != NULL);
	CHECK(reg(log_tok, id) == 0);
	char sets[8], name[128];
	snprintf(sets, sizeof sets, "ABC%c", id);
	snprintf(name, sizeof name, "cfork, %s loaded", what);
	fork_checked(cfork, name, sets);
	snprintf(name, sizeof name, "fork, %s loaded", what);
	fork_checked(fork, name, sets);

	CHECK(dlclose(h) == 0);
	/* Really gone, so its handlers' code is unmapped: a call into it
	 * would fault, and the handler below says so. */
	CHECK(dlopen(so, RTLD_NOW | RTLD_NOLOAD) == NULL);
	signal(SIGSEGV, on_segv);
	snprintf(name, sizeof name, "cfork, %s unloaded", what);
	fork_checked(cfork, name, "ABC");
	snprintf(name, sizeof name, "fork, %s unloaded", what);
	fork_checked(fork, name, "ABC");
	signal(SIGSEGV, SIG_DFL);
	return true;
}

static void test_modules(void)
{
	if (!test_module("plain module", 'M', NULL)) {
		fprintf(stderr, "note: no C compiler (set CC): the dlopen "
			"module part is skipped; the same path was checked "
			"through __cxa_finalize\n");
		return;
	}
	Dl_info info;
	CHECK(dladdr((void *)cfork, &info) && info.dli_fname);
	CHECK(test_module("module linked with libcfork", 'N',
			  info.dli_fname));
}

/* ---- a fork the kernel refuses ---- */

/* clone without CLONE_THREAD fails with EAGAIN (as at RLIMIT_NPROC);
 * threads (clone3 in glibc 2.36, or clone with CLONE_THREAD) still work. */
static int refuse_fork(void)
{
	struct sock_filter f[] = {
		T_SECCOMP_LOAD_NR,
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
	};
	return t_seccomp(f, sizeof f / sizeof f[0]);
}

/* In a helper process (the filter cannot be removed): its exit status is
 * the verdict, 77 when seccomp is not available. */
static int failing_forks(void)
{
	pthread_t t;
	atomic_store(&stop, false);
	CHECK(pthread_create(&t, NULL, ticker, NULL) == 0);
	CHECK(ticker_moves());
	int e = refuse_fork();
	if (e < 0) {
		fprintf(stderr, "note: seccomp unavailable (%s): the failing "
			"fork part is skipped\n", strerror(-e));
		return T_SKIP;
	}
	pid_t (*const forkers[])(void) = { cfork, fork, cfork };
	const char *const names[] = { "failing cfork", "failing fork",
				      "failing cfork again" };
	for (int i = 0; i < 3; i++) {
		log_reset();
		errno = 0;
		pid_t pid = forkers[i]();
		int saved = errno;
		if (pid == 0)
			_exit(0);
		if (pid > 0) {
			fprintf(stderr, "note: the filter did not stop %s "
				"(clone3?): part skipped\n", names[i]);
			waitpid(pid, NULL, 0);
			return T_SKIP;
		}
		if (saved != EAGAIN)
			fprintf(stderr, "%s: errno %d (%s), want EAGAIN\n",
				names[i], saved, strerror(saved));
		CHECK(saved == EAGAIN);
		/* glibc runs prepare and parent handlers for a failed fork;
		 * a plain fork() keeps glibc's exact order. */
		CHECK(log_right(names[i], log_buf, "ABC", 'P',
				forkers[i] == fork));
		/* The quiesce was undone: the sibling runs again. */
		CHECK(ticker_moves());
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	return T_PASS;
}

static void test_failure(void)
{
	pid_t pid = fork();   /* the helper, checked like any fork */
	CHECK(pid >= 0);
	if (pid == 0) {
		fflush(stderr);
		_exit(failing_forks());
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	if (!WIFEXITED(status))
		fprintf(stderr, "failing forks: helper status 0x%x\n", status);
	CHECK(WIFEXITED(status) && (WEXITSTATUS(status) == T_PASS ||
				    WEXITSTATUS(status) == T_SKIP));
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--nested-only"))
		return nested_only();
	t_alarm(120);
	const char *self = t_self();

	CHECK(pthread_atfork(prep_A, par_A_clobber, chi_A) == 0);
	CHECK(pthread_atfork(prep_B, par_B, chi_B) == 0);
	CHECK(pthread_atfork(prep_C, par_C, chi_C) == 0);
	/* E logs nothing; it only nests a cfork when asked. */
	CHECK(pthread_atfork(nested_cfork, nested_cfork, NULL) == 0);

	/* D goes to glibc's list, past libcfork. */
	void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	CHECK(libc != NULL);
	int (*glibc_register)(void (*)(void), void (*)(void), void (*)(void),
			      void *) =
		(int (*)(void (*)(void), void (*)(void), void (*)(void),
			 void *))dlvsym(libc, "__register_atfork",
					"GLIBC_2.3.2");
	CHECK(glibc_register != NULL);
	CHECK(glibc_register != __register_atfork);
	CHECK(glibc_register(prep_D, par_D, chi_D, NULL) == 0);

	pthread_t t;
	CHECK(pthread_create(&t, NULL, ticker, NULL) == 0);

	for (int i = 0; i < t_iters(20); i++) {
		fork_checked(cfork, "cfork", "ABC");
		fork_checked(fork, "fork", "ABC");
	}
	CHECK(ticker_moves());

	test_nested(cfork, "cfork");
	test_nested(fork, "fork");
	test_nested_direct(self);

	test_registry();
	test_modules();
	test_failure();

	atomic_store(&stop, true);
	pthread_join(t, NULL);
	return T_PASS;
}
