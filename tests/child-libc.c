/* SPDX-License-Identifier: MIT */
/*
 * Beyond glibc: locks that glibc's fork() does not reset in the child.
 * Siblings loop on dlopen/dlclose (the loader's lock), setenv/unsetenv
 * (the environment lock), tzset + localtime_r (the time zone lock) and
 * popen/pclose (popen's list lock).  Every child calls dlopen, setenv,
 * tzset + localtime_r and popen("true")/pclose, then exit() (not _exit:
 * exit handlers and the loader's destructors run too).  With plain fork()
 * children hang; how many is measured and printed, never asserted.  With
 * cfork() every child must exit(0) within a bound: 0 hangs, 0 bad.
 *
 * Usage: child-libc [-n CFORKS] [-p PLAIN_FORKS] [-w CHILD_WAIT_MS]
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "cfork.h"
#include "child.h"
#include "test.h"

enum kind { K_DLOPEN, K_SETENV, K_TZ, K_POPEN, K_KINDS };
static const char *const kind_name[K_KINDS] = {
	"dlopen", "setenv", "localtime", "popen",
};

static _Atomic int stop;
static _Atomic uint64_t ops[K_KINDS];
static const char *module;

/* setenv and unsetenv may move the environment while another thread reads
 * it (tzset's getenv("TZ"), popen's exec): POSIX leaves that undefined and
 * it does crash.  The program serialises the two itself, as it must; the
 * lock is the program's own, so a thread waiting for it can be stopped.
 * glibc's internal locks are still taken and held in every sibling. */
static pthread_rwlock_t env_lock;

static void *sibling(void *arg)
{
	enum kind k = (enum kind)(intptr_t)arg;
	unsigned n = 0;
	char name[32];
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		switch (k) {
		case K_DLOPEN: {
			void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);
			if (h)
				dlclose(h);
			break;
		}
		case K_SETENV:
			snprintf(name, sizeof name, "CFORK_TEST_VAR%u", n % 16);
			pthread_rwlock_wrlock(&env_lock);
			setenv(name, "some value", 1);
			unsetenv(name);
			pthread_rwlock_unlock(&env_lock);
			break;
		case K_TZ: {
			struct tm tm;
			time_t t = time(NULL) + n;
			pthread_rwlock_rdlock(&env_lock);
			tzset();
			pthread_rwlock_unlock(&env_lock);
			localtime_r(&t, &tm);
			break;
		}
		case K_POPEN: {
			pthread_rwlock_rdlock(&env_lock);
			FILE *p = popen("true", "r");
			pthread_rwlock_unlock(&env_lock);
			if (p)
				pclose(p);
			break;
		}
		case K_KINDS:
			break;
		}
		n++;
		atomic_fetch_add_explicit(&ops[k], 1, memory_order_relaxed);
	}
	return NULL;
}

static void child(void)
{
	alarm(60);      /* the parent's bound is shorter: it reports first */
	void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		_exit(2);
	dlclose(h);
	if (setenv("CFORK_CHILD_VAR", "1", 1) != 0)
		_exit(3);
	struct tm tm;
	time_t t = time(NULL);
	tzset();
	if (!localtime_r(&t, &tm))
		_exit(4);
	FILE *p = popen("true", "r");
	if (!p)
		_exit(5);
	if (pclose(p) != 0)
		_exit(6);
	exit(0);
}

/* Plain fork: children are started a few milliseconds apart and waited
 * for together, so that hung ones cost one bound, not one each. */
static struct t_run run_plain(int n, unsigned wait_ms)
{
	struct t_run r = { 0 };
	pid_t pids[64];
	if (n > 64)
		n = 64;
	for (int i = 0; i < n; i++) {
		fflush(NULL);
		uint64_t t0 = t_now_ns();
		pid_t pid = fork();
		if (pid == 0)
			child();
		CHECK(pid > 0);
		t_lat_add(&r.lat, t_now_ns() - t0);
		pids[i] = pid;
		t_sleep_ns(5000000);
	}
	uint64_t start = t_now_ns();
	for (int i = 0; i < n; i++) {
		uint64_t spent = (t_now_ns() - start) / 1000000u;
		unsigned left = spent >= wait_ms ? 1 : wait_ms - (unsigned)spent;
		switch (t_wait_child(pids[i], left, "plain fork", false)) {
		case T_CHILD_HANG: r.hangs++; break;
		case T_CHILD_BAD: r.bad++; break;
		}
	}
	return r;
}

int main(int argc, char **argv)
{
	int ncfork = t_iters(500), nplain = 20, opt;
	unsigned wait_ms = 10000;
	while ((opt = getopt(argc, argv, "n:p:w:")) != -1) {
		switch (opt) {
		case 'n': ncfork = atoi(optarg); break;
		case 'p': nplain = atoi(optarg); break;
		case 'w': wait_ms = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-n CFORKS] [-p PLAIN_FORKS] "
				"[-w CHILD_WAIT_MS]\n", argv[0]);
			return T_ERROR;
		}
	}
	t_alarm(180 + (unsigned)ncfork / 2);
	t_child_init();
	CHECK(pthread_rwlock_init(&env_lock, NULL) == 0);
	module = t_module();
	if (!module)
		DIE("no shared object to dlopen (set CFORK_TEST_MODULE)");
	if (access("/bin/sh", X_OK) != 0)
		SKIP("popen needs /bin/sh");

	pthread_t th[K_KINDS];
	for (int k = 0; k < K_KINDS; k++)
		CHECK(pthread_create(&th[k], NULL, sibling,
				     (void *)(intptr_t)k) == 0);
	t_sleep_ns(20000000);

	/* A healthy child takes milliseconds; plain fork's hung ones would
	 * wait forever, so their bound is short. */
	struct t_run plain = run_plain(nplain, 2000);
	struct t_run cf = t_cforks(ncfork, child, wait_ms);

	uint64_t before[K_KINDS];
	for (int k = 0; k < K_KINDS; k++)
		before[k] = atomic_load(&ops[k]);
	uint64_t deadline = t_now_ns() + 20000000000ull;
	int stuck;
	do {
		t_sleep_ns(10000000);
		stuck = 0;
		for (int k = 0; k < K_KINDS; k++)
			stuck += atomic_load(&ops[k]) == before[k];
	} while (stuck && t_now_ns() < deadline);
	atomic_store(&stop, 1);
	for (int k = 0; k < K_KINDS; k++)
		CHECK(pthread_join(th[k], NULL) == 0);

	printf("siblings:");
	for (int k = 0; k < K_KINDS; k++)
		printf(" %s=%llu", kind_name[k],
		       (unsigned long long)atomic_load(&ops[k]));
	printf("\ndlopen target: %s\n", module);
	printf("plain fork: %d of %d children hung, %d bad (measured, not "
	       "asserted)\n", plain.hangs, nplain > 64 ? 64 : nplain,
	       plain.bad);
	printf("cfork:      %d of %d children hung, %d bad, %d stuck "
	       "siblings\n", cf.hangs, ncfork, cf.bad, stuck);
	t_lat_print(&plain.lat, "plain fork");
	t_lat_print(&cf.lat, "cfork");
	t_report_print(&cf.rep);
	CHECK(cf.hangs == 0);
	CHECK(cf.bad == 0);
	CHECK(stuck == 0);
	return T_PASS;
}
