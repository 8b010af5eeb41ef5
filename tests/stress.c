/* SPDX-License-Identifier: MIT */
/*
 * No deadlock, healthy child.  Sibling threads loop on the calls that take
 * glibc's internal locks (malloc/realloc/free of mixed sizes up to 512 KiB,
 * stdio on a file and on open_memstream, NSS lookups, dlopen/dlclose of a
 * module whose constructor allocates, thread create/join/detach churn)
 * while the main thread calls cfork() again and again.  Checked: every
 * cfork returns (alarm), every child can malloc, use stdio, look up a user
 * and exit(0) within a bound (a child that does not is a hang: shown,
 * killed and counted), and every sibling still makes progress afterwards
 * (none was left parked or holding a lock).  Prints the counts and the
 * mean and maximum cfork latency; speed is not asserted.
 *
 * Usage: stress [-n CFORKS] [-m THREADS] [-k KINDS] [-w CHILD_WAIT_MS]
 *   -m THREADS  siblings do only malloc/realloc/free (replacement
 *               allocator runs): THREADS of them instead of the mix
 *   -k KINDS    the mix limited to these kinds, comma-separated (malloc,
 *               stdio, nss, dlopen, threads), for narrowing a failure down
 */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cfork.h"
#include "child.h"
#include "test.h"

#define MAX_SIBLINGS 32

enum kind { K_MALLOC, K_STDIO, K_NSS, K_DLOPEN, K_THREADS, K_KINDS };
static const char *const kind_name[K_KINDS] = {
	"malloc", "stdio", "nss", "dlopen", "threads",
};

struct sibling {
	pthread_t thread;
	enum kind kind;
	unsigned seed;
	_Atomic uint64_t ops;
};

static struct sibling sib[MAX_SIBLINGS];
static int nsib;
static _Atomic int stop;
static _Atomic int detached_live;
static const char *module;
static char tmpfile_path[256];

/*
 * Under AddressSanitizer the program's own malloc calls go straight into
 * the sanitizer's allocator, which (in GCC 12) has no fork handlers: a
 * sibling stopped inside it, where the library sees user code, leaves its
 * locks held in the child.  That is true of plain fork() as well and is
 * not the library's to fix, so the siblings' direct allocations are gated
 * by a lock that a fork prepare handler takes.  Allocations made inside
 * libc are not gated: a thread there stops only after leaving libc.
 */
#if defined(__SANITIZE_ADDRESS__)
static pthread_rwlock_t gate;
static void gate_prepare(void) { pthread_rwlock_wrlock(&gate); }
static void gate_release(void) { pthread_rwlock_unlock(&gate); }
static void gate_init(void)
{
	pthread_rwlockattr_t a;
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a,
		PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	CHECK(pthread_rwlock_init(&gate, &a) == 0);
	CHECK(pthread_atfork(gate_prepare, gate_release, gate_release) == 0);
	printf("AddressSanitizer build: the siblings' direct allocations are "
	       "gated around fork (see the comment in stress.c)\n");
}
#define GATE_IN() pthread_rwlock_rdlock(&gate)
#define GATE_OUT() pthread_rwlock_unlock(&gate)
#else
static void gate_init(void)
{
}
#define GATE_IN() ((void)0)
#define GATE_OUT() ((void)0)
#endif

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Mostly small blocks, some medium, a few large enough for mmap. */
static size_t pick_size(unsigned *s)
{
	unsigned r = rnd(s);
	switch (r % 16) {
	case 0:
		return 128 * 1024 + r % (384 * 1024 + 1);   /* up to 512 KiB */
	case 1:
	case 2:
		return 4096 + r % (60 * 1024);
	default:
		return 1 + r % 1024;
	}
}

static void do_malloc(struct sibling *me)
{
	enum { SLOTS = 64 };
	void *slot[SLOTS] = { 0 };
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned r = rnd(&me->seed);
		int i = (int)(r % SLOTS);
		size_t sz = pick_size(&me->seed);
		GATE_IN();
		switch ((r >> 8) % 8) {
		case 0:
		case 1:
			free(slot[i]);
			slot[i] = malloc(sz);
			break;
		case 2: {
			void *p = realloc(slot[i], sz);
			if (p)
				slot[i] = p;
			break;
		}
		case 3:
			free(slot[i]);
			slot[i] = calloc(1, sz);
			break;
		case 4:
			free(slot[i]);
			slot[i] = aligned_alloc(64, (sz + 63) & ~(size_t)63);
			break;
		case 5: {
			void *p = NULL;
			free(slot[i]);
			slot[i] = posix_memalign(&p, 4096, sz) ? NULL : p;
			break;
		}
		default:
			free(slot[i]);
			slot[i] = NULL;
			break;
		}
		GATE_OUT();
		if (slot[i])
			((volatile char *)slot[i])[0] = (char)r;
		atomic_fetch_add_explicit(&me->ops, 1, memory_order_relaxed);
	}
	GATE_IN();
	for (int i = 0; i < SLOTS; i++)
		free(slot[i]);
	GATE_OUT();
}

static void do_stdio(struct sibling *me)
{
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		FILE *f = fopen(tmpfile_path, "w");
		if (f) {
			for (int i = 0; i < 20; i++)
				fprintf(f, "line %d of %u\n", i, me->seed);
			fclose(f);
		}
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);
		if (m) {
			for (int i = 0; i < 50; i++)
				fprintf(m, "%d:%s ", i, "memstream");
			fclose(m);
		}
		GATE_IN();
		free(buf);
		GATE_OUT();
		atomic_fetch_add_explicit(&me->ops, 1, memory_order_relaxed);
	}
}

static void do_nss(struct sibling *me)
{
	char buf[4096];
	struct passwd pw, *res;
	uid_t uid = getuid();
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		getpwnam_r("root", &pw, buf, sizeof buf, &res);
		getpwuid_r(uid, &pw, buf, sizeof buf, &res);
		atomic_fetch_add_explicit(&me->ops, 1, memory_order_relaxed);
	}
}

static void do_dlopen(struct sibling *me)
{
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);
		if (h) {
			int (*fn)(void) =
				(int (*)(void))dlsym(h, "cfork_testmod_value");
			if (fn)
				(void)fn();
			dlclose(h);
		}
		atomic_fetch_add_explicit(&me->ops, 1, memory_order_relaxed);
	}
}

/* Its allocation is incidental; under AddressSanitizer it is left out
 * rather than gated, as a joiner would then wait for the gate too. */
static void *short_thread(void *arg)
{
#if !defined(__SANITIZE_ADDRESS__)
	volatile char *p = malloc(256);
	if (p)
		p[0] = 1;
	free((void *)p);
#endif
	return arg;
}

static void *detached_thread(void *arg)
{
	short_thread(arg);
	atomic_fetch_sub(&detached_live, 1);
	return NULL;
}

static void do_threads(struct sibling *me)
{
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		pthread_t t[4];
		int n = 0;
		for (int i = 0; i < 4; i++)
			if (pthread_create(&t[n], NULL, short_thread, NULL) == 0)
				n++;
		for (int i = 0; i < n; i++)
			pthread_join(t[i], NULL);
		if (atomic_load(&detached_live) < 8) {
			pthread_t d;
			atomic_fetch_add(&detached_live, 1);
			if (pthread_create(&d, NULL, detached_thread, NULL) == 0)
				pthread_detach(d);
			else
				atomic_fetch_sub(&detached_live, 1);
		}
		atomic_fetch_add_explicit(&me->ops, 1, memory_order_relaxed);
	}
}

static void *sibling_main(void *arg)
{
	struct sibling *me = arg;
	switch (me->kind) {
	case K_MALLOC: do_malloc(me); break;
	case K_STDIO: do_stdio(me); break;
	case K_NSS: do_nss(me); break;
	case K_DLOPEN: do_dlopen(me); break;
	case K_THREADS: do_threads(me); break;
	case K_KINDS: break;
	}
	return NULL;
}

/* What every child does: allocate, use stdio, look a user up, exit(). */
static void child(void)
{
	alarm(60);      /* the parent's bound is shorter: it reports first */
	char *a = malloc(1000), *b = malloc(300000);
	if (!a || !b)
		_exit(2);
	memset(a, 1, 1000);
	memset(b, 2, 300000);
	free(b);
	FILE *f = fopen("/dev/null", "w");
	if (!f)
		_exit(3);
	if (fprintf(f, "child %d %s\n", (int)getpid(), "ok") <= 0)
		_exit(4);
	if (fclose(f) != 0)
		_exit(5);
	char buf[4096];
	struct passwd pw, *res;
	if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) != 0)
		_exit(6);
	if (res)
		snprintf(a, 1000, "%s", pw.pw_name);
	free(a);
	exit(0);
}

/* After the forks: every sibling must still move on. */
static int stuck_siblings(void)
{
	uint64_t before[MAX_SIBLINGS];
	for (int i = 0; i < nsib; i++)
		before[i] = atomic_load(&sib[i].ops);
	uint64_t deadline = t_now_ns() + 20000000000ull;
	int stuck;
	do {
		t_sleep_ns(10000000);
		stuck = 0;
		for (int i = 0; i < nsib; i++)
			stuck += atomic_load(&sib[i].ops) == before[i];
	} while (stuck && t_now_ns() < deadline);
	for (int i = 0; i < nsib; i++)
		if (atomic_load(&sib[i].ops) == before[i])
			fprintf(stderr, "STUCK: %s sibling %d made no progress "
				"in 20 s\n", kind_name[sib[i].kind], i);
	return stuck;
}

static void add_sibling(enum kind k)
{
	if (nsib == MAX_SIBLINGS)
		DIE("too many siblings");
	sib[nsib].kind = k;
	sib[nsib].seed = 0x9e3779b9u * (unsigned)(nsib + 1);
	nsib++;
}

int main(int argc, char **argv)
{
	int nforks = t_iters(1000), malloc_only = 0, opt;
	const char *kinds = "malloc,malloc,stdio,nss,dlopen,threads";
	unsigned wait_ms = 10000;
	while ((opt = getopt(argc, argv, "n:m:k:w:")) != -1) {
		switch (opt) {
		case 'n': nforks = atoi(optarg); break;
		case 'm': malloc_only = atoi(optarg); break;
		case 'k': kinds = optarg; break;
		case 'w': wait_ms = (unsigned)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-n CFORKS] [-m THREADS] "
				"[-k KINDS] [-w CHILD_WAIT_MS]\n", argv[0]);
			return T_ERROR;
		}
	}
	/* Generous: a fork that does not come back is caught here. */
	t_alarm(120 + (unsigned)nforks / 2);
	t_child_init();
	gate_init();

	if (malloc_only) {
		for (int i = 0; i < malloc_only; i++)
			add_sibling(K_MALLOC);
	} else {
		module = t_module();
		if (!module)
			DIE("no shared object to dlopen (set CFORK_TEST_MODULE)");
		const char *tmp = getenv("TMPDIR");
		snprintf(tmpfile_path, sizeof tmpfile_path,
			 "%s/cfork-stress-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		int fd = mkstemp(tmpfile_path);
		if (fd < 0)
			DIE("mkstemp %s: %s", tmpfile_path, strerror(errno));
		close(fd);
		for (const char *k = kinds; *k;) {
			size_t len = strcspn(k, ",");
			int found = 0;
			for (int i = 0; i < K_KINDS; i++)
				if (strlen(kind_name[i]) == len &&
				    !strncmp(k, kind_name[i], len)) {
					add_sibling((enum kind)i);
					found = 1;
				}
			if (!found)
				DIE("unknown sibling kind in -k %s", kinds);
			k += len + (k[len] == ',');
		}
	}
	for (int i = 0; i < nsib; i++)
		CHECK(pthread_create(&sib[i].thread, NULL, sibling_main,
				     &sib[i]) == 0);
	t_sleep_ns(20000000);

	struct t_run r = t_cforks(nforks, child, wait_ms);
	int stuck = stuck_siblings();
	atomic_store(&stop, 1);
	for (int i = 0; i < nsib; i++)
		CHECK(pthread_join(sib[i].thread, NULL) == 0);
	while (atomic_load(&detached_live) > 0)
		t_sleep_ns(1000000);
	if (tmpfile_path[0])
		unlink(tmpfile_path);

	printf("siblings (%s):", malloc_only ? "malloc only" : "mix");
	for (int i = 0; i < nsib; i++)
		printf(" %s=%llu", kind_name[sib[i].kind],
		       (unsigned long long)atomic_load(&sib[i].ops));
	printf("\n");
	if (module)
		printf("dlopen target: %s\n", module);
	/* Which allocator served the siblings (a preloaded one, or libc). */
	Dl_info di;
	void *(*malloc_fn)(size_t) = malloc;
	if (dladdr((void *)malloc_fn, &di) && di.dli_fname)
		printf("malloc from: %s\n", di.dli_fname);
	printf("cfork: %d forks, %d hangs, %d bad children, %d stuck "
	       "siblings\n", nforks, r.hangs, r.bad, stuck);
	t_lat_print(&r.lat, "cfork");
	t_report_print(&r.rep);
	CHECK(r.hangs == 0);
	CHECK(r.bad == 0);
	CHECK(stuck == 0);
	return T_PASS;
}
