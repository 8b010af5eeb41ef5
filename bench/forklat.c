/* SPDX-License-Identifier: MIT */
/*
 * forklat: what one cfork() costs, against baselines timed in the same run
 * with the same sibling threads, so that the ratios hold on a noisy
 * machine: fork() itself, and glibc's own all-thread signal broadcast
 * (setuid(getuid()) in a process with threads: glibc signals every thread
 * with SIGSETXID and waits until each has run its handler).
 *
 * Quantities, in microseconds per call, timed in the calling thread:
 *   fork       fork() until it returns in the parent
 *   cfork      cfork() until it returns in the parent
 *   infork     the fork() inside that cfork() (report fork_ns)
 *   quiesce    stopping the siblings (report quiesce_ns)
 *   qr         cfork - infork: what cfork adds to a fork, i.e. quiesce
 *              plus resume (plus the atfork bookkeeping, which is small)
 *   resume     qr - quiesce: releasing the siblings
 *   broadcast  setuid(getuid())
 *   probe      cfork_probe()
 *
 * Cases (-c, comma-separated):
 *   idle    0, 1, 8, 64, 256 and 1000 siblings blocked in a futex wait
 *           (pthread_cond_wait), or the counts -t gives
 *   woken   the same counts (but 0) of idle siblings, woken before each
 *           call and back in their wait when it starts, as a pool between
 *           two jobs: cfork() cannot count them asleep from the last one
 *   busy    8 siblings spinning in user code (or -b of them)
 *   mem     1 and 4 GiB (or -g) of touched private memory, small pages
 *           and transparent huge pages, with 8 idle siblings; a size that
 *           does not fit in MemAvailable is skipped with a message
 *   direct  8 idle siblings, cfork() in CFORK_MODE=direct against fork();
 *           libcfork reads CFORK_MODE when it is loaded, so this case
 *           runs only when the environment already says so
 *   probe   cfork_probe(), alone and with 1 GiB of touched memory
 *   libc    siblings that live in libc: malloc, stdio, thread churn
 *           (2 of each kind alone, then all of them together)
 *   all     everything but direct (the default)
 *
 * -o keeps only some of the calls (fork, cfork, broadcast), so that a
 * profiler sees one of them: perf record -g forklat -c idle -t 64 -o cfork.
 *
 * Each repetition times every quantity of its case once, in an order that
 * rotates, so that no call always follows the same other call; the child
 * calls _exit(0) at once and is reaped before the next call, and the
 * siblings get a moment to settle after each call.  The program prints a
 * table as the cases finish, then one key=value line per case.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cfork.h>

#include "siblings.h"
#include "stats.h"

#define DEFAULT_N 200
#define MAX_COUNTS 16
#define MAX_CASES 64
#define GIB (1024ul * 1024 * 1024)
#define HUGE_SIZE (2ul * 1024 * 1024)
#define MEM_SIBLINGS 8
#define LIBC_SIBLINGS 2

enum op { OP_FORK, OP_CFORK, OP_BROADCAST, OP_PROBE, NOPS };

struct bcase {
	char name[32];
	enum sib_kind kinds[3];       /* the stress case runs three kinds */
	int nkinds;
	int per_kind;                 /* siblings of each kind */
	int gib;                      /* touched private memory */
	bool thp;
	bool direct;                  /* expects CFORK_MODE=direct */
	bool wake;                    /* idle siblings woken before each call */
	int reps;
	unsigned ops;                 /* 1u << OP_* */
};

struct run {
	struct series fork, cfork, infork, quiesce, qr, resume, broadcast,
		probe;
	int incoherent, wrong_method, failures, backoffs;
	long thp_kib;
};

static const char *current_case;

/* A hang is the one result a benchmark must not hide behind a stalled
 * terminal: say which case it was. */
static void on_alarm(int sig)
{
	(void)sig;
	static const char a[] = "forklat: case ";
	static const char b[] = " is taking too long (a hang?)\n";
	const char *c = current_case ? current_case : "?";
	if (write(2, a, sizeof a - 1) < 0 || write(2, c, strlen(c)) < 0 ||
	    write(2, b, sizeof b - 1) < 0)
		_exit(1);
	_exit(1);
}

/* ---- one call of each kind ---- */

/* Times fork() or cfork() in the parent; -1 (with a message) when it
 * failed. */
static int64_t time_fork(pid_t (*forker)(void), const char *name)
{
	uint64_t t0 = bench_now_ns();
	pid_t pid = forker();
	uint64_t t1 = bench_now_ns();
	if (pid == 0)
		_exit(0);
	if (pid < 0) {
		fprintf(stderr, "forklat: %s: %s\n", name, strerror(errno));
		return -1;
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return (int64_t)(t1 - t0);
}

static void op_fork(struct run *r)
{
	int64_t t = time_fork(fork, "fork");
	if (t < 0)
		r->failures++;
	else
		series_add(&r->fork, (uint64_t)t);
}

static void op_cfork(const struct bcase *c, struct run *r)
{
	int64_t t = time_fork(cfork, "cfork");
	if (t < 0) {
		r->failures++;
		return;
	}
	struct cfork_report rep;
	cfork_last_report(&rep, sizeof rep);
	int want = c->direct ? CFORK_METHOD_DIRECT : CFORK_METHOD_QUIESCE;
	if (rep.method != want)
		r->wrong_method++;
	if (!c->direct && !rep.coherent)
		r->incoherent++;
	r->backoffs += (int)rep.backoffs;
	series_add(&r->cfork, (uint64_t)t);
	if (c->direct)
		return;
	uint64_t qr = (uint64_t)t > rep.fork_ns ? (uint64_t)t - rep.fork_ns : 0;
	series_add(&r->infork, rep.fork_ns);
	series_add(&r->quiesce, rep.quiesce_ns);
	series_add(&r->qr, qr);
	series_add(&r->resume, qr > rep.quiesce_ns ? qr - rep.quiesce_ns : 0);
}

static void op_broadcast(struct run *r)
{
	uint64_t t0 = bench_now_ns();
	int e = setuid(getuid());
	uint64_t t1 = bench_now_ns();
	if (e) {
		fprintf(stderr, "forklat: setuid: %s\n", strerror(errno));
		r->failures++;
		return;
	}
	series_add(&r->broadcast, t1 - t0);
}

/* The probe's own answer, computed afresh each time (the cached one
 * costs nothing). */
static void op_probe(struct run *r)
{
	struct cfork_probe_result res;
	uint64_t t0 = bench_now_ns();
	int e = cfork_probe(&res, sizeof res, CFORK_PROBE_FRESH);
	uint64_t t1 = bench_now_ns();
	if (e < 0) {
		r->failures++;
		return;
	}
	series_add(&r->probe, t1 - t0);
}

/* ---- memory ---- */

static long meminfo_kib(const char *path, const char *key)
{
	FILE *f = fopen(path, "r");
	char line[256];
	long v = -1;
	size_t len = strlen(key);
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, len) && line[len] == ':') {
			v = strtol(line + len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static bool thp_available(void)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char line[128] = "";
	if (!f)
		return false;
	if (!fgets(line, sizeof line, f))
		line[0] = 0;
	fclose(f);
	return line[0] && !strstr(line, "[never]");
}

struct region {
	void *base;
	size_t len;
};

/* Maps and writes every page of gib GiB, in huge pages when asked (the
 * start aligned so that every 2 MiB of it can be one). */
static int touch_memory(struct region *m, int gib, bool thp)
{
	size_t want = (size_t)gib * GIB;
	m->len = want + HUGE_SIZE;
	m->base = mmap(NULL, m->len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->base == MAP_FAILED) {
		fprintf(stderr, "forklat: mmap %d GiB: %s\n", gib,
			strerror(errno));
		m->base = NULL;
		return -1;
	}
	char *p = (char *)(((uintptr_t)m->base + HUGE_SIZE - 1) &
			   ~(HUGE_SIZE - 1));
	if (madvise(p, want, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) < 0)
		fprintf(stderr, "forklat: madvise: %s\n", strerror(errno));
	for (size_t off = 0; off < want; off += 4096)
		p[off] = (char)(off >> 12 | 1);
	return 0;
}

static void drop_memory(struct region *m)
{
	if (m->base)
		munmap(m->base, m->len);
	m->base = NULL;
}

/* ---- a case ---- */

static int run_init(struct run *r, int reps)
{
	memset(r, 0, sizeof *r);
	return series_init(&r->fork, "fork", reps) |
	       series_init(&r->cfork, "cfork", reps) |
	       series_init(&r->infork, "infork", reps) |
	       series_init(&r->quiesce, "quiesce", reps) |
	       series_init(&r->qr, "qr", reps) |
	       series_init(&r->resume, "resume", reps) |
	       series_init(&r->broadcast, "broadcast", reps) |
	       series_init(&r->probe, "probe", reps);
}

static void run_free(struct run *r)
{
	series_free(&r->fork);
	series_free(&r->cfork);
	series_free(&r->infork);
	series_free(&r->quiesce);
	series_free(&r->qr);
	series_free(&r->resume);
	series_free(&r->broadcast);
	series_free(&r->probe);
}

static struct series *all_series(struct run *r, int i)
{
	struct series *s[] = { &r->fork, &r->cfork, &r->infork, &r->quiesce,
			       &r->qr, &r->resume, &r->broadcast, &r->probe };
	return i < (int)(sizeof s / sizeof *s) ? s[i] : NULL;
}

static char *kv_lines;           /* printed once every case is done */
static size_t kv_len;
static FILE *kv;

/* Returns 0, 1 when a call failed or gave the wrong kind of cfork, or -1
 * when the case could not run at all. */
static int measure(const struct bcase *c)
{
	struct siblings sib = { 0 };
	struct region mem = { 0 };
	struct run r;
	int siblings = c->per_kind * c->nkinds;
	current_case = c->name;

	if (c->gib) {
		long avail = meminfo_kib("/proc/meminfo", "MemAvailable");
		long need = (long)c->gib * 1024 * 1024 + 512 * 1024;
		if (avail >= 0 && avail < need) {
			printf("%-16s skipped: needs %ld MiB, MemAvailable is "
			       "%ld MiB\n", c->name, need / 1024, avail / 1024);
			fprintf(kv, "case=%s skipped=memory\n", c->name);
			return 0;
		}
		if (c->thp && !thp_available()) {
			printf("%-16s skipped: transparent huge pages are "
			       "disabled\n", c->name);
			fprintf(kv, "case=%s skipped=thp\n", c->name);
			return 0;
		}
	}
	if (run_init(&r, c->reps) < 0) {
		fprintf(stderr, "forklat: no memory for %d samples\n", c->reps);
		run_free(&r);
		return -1;
	}
	/* Generous: the slowest call measured here is a fraction of that. */
	alarm(120 + (unsigned)c->reps + (unsigned)c->gib * 30);
	for (int k = 0; k < c->nkinds; k++)
		if (sib_start(&sib, c->kinds[k], c->per_kind) < 0) {
			sib_stop(&sib);
			run_free(&r);
			return -1;
		}
	if (c->gib && touch_memory(&mem, c->gib, c->thp) < 0) {
		sib_stop(&sib);
		run_free(&r);
		return -1;
	}
	if (c->thp)
		r.thp_kib = meminfo_kib("/proc/self/smaps_rollup",
					"AnonHugePages");

	enum op ops[NOPS];
	int nops = 0;
	for (int o = 0; o < NOPS; o++)
		if (c->ops & 1u << o)
			ops[nops++] = (enum op)o;
	/* Woken siblings run on their way back to sleep: give them the CPU
	 * between calls, so that each call starts from the same quiet. */
	uint64_t settle = 20000 + 2000 * (uint64_t)siblings;
	/* The first calls set up what the library caches (loaded objects,
	 * the thread table's size): not what this benchmark is about. */
	for (int i = 0; i < 3; i++) {
		if (c->ops & 1u << OP_CFORK)
			time_fork(cfork, "cfork");
	}
	for (int i = 0; i < c->reps; i++)
		for (int j = 0; j < nops; j++) {
			if (c->wake && sib_wake_idle(c->per_kind) < 0) {
				r.failures++;
				break;
			}
			switch (ops[(i + j) % nops]) {
			case OP_FORK:
				op_fork(&r);
				break;
			case OP_CFORK:
				op_cfork(c, &r);
				break;
			case OP_BROADCAST:
				op_broadcast(&r);
				break;
			case OP_PROBE:
				op_probe(&r);
				break;
			case NOPS:
				break;
			}
			bench_sleep_ns(settle);
		}
	drop_memory(&mem);
	sib_stop(&sib);
	alarm(0);

	for (int i = 0; all_series(&r, i); i++)
		if (all_series(&r, i)->n)
			series_print_row(stdout, c->name, all_series(&r, i));
	fflush(stdout);
	fprintf(kv, "case=%s siblings=%d reps=%d", c->name, siblings, c->reps);
	if (c->gib)
		fprintf(kv, " mem_gib=%d pages=%s", c->gib,
			c->thp ? "thp" : "4k");
	for (int i = 0; all_series(&r, i); i++)
		if (all_series(&r, i)->n)
			series_print_kv(kv, all_series(&r, i));
	if (c->thp)
		fprintf(kv, " thp_mib=%ld", r.thp_kib / 1024);
	fprintf(kv, " incoherent=%d backoffs=%d wrong_method=%d failures=%d\n",
		r.incoherent, r.backoffs, r.wrong_method, r.failures);
	if (r.wrong_method)
		fprintf(stderr, "forklat: %s: %d cforks were not of the "
			"expected kind (%s)\n", c->name, r.wrong_method,
			c->direct ? "CFORK_MODE=direct not in effect?"
				  : "CFORK_MODE=direct in the environment?");
	run_free(&r);
	return r.failures || r.wrong_method ? 1 : 0;
}

/* ---- the plan ---- */

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [-c cases] [-n reps] [-t counts] [-b busy] "
		"[-g sizes] [-o calls] [-h]\n"
		"  -c C  comma-separated: idle, woken, busy, mem, direct, "
		"probe, libc, all\n"
		"        (default all: every case but direct)\n"
		"  -n N  repetitions of a small case (default %d); cases with\n"
		"        256 or more siblings or with GiBs of memory run fewer\n"
		"  -t L  idle and woken sibling counts (default "
		"0,1,8,64,256,1000)\n"
		"  -b N  spinning siblings of the busy case (default 8)\n"
		"  -g L  GiB of touched memory for mem (default 1,4)\n"
		"  -o L  only these calls: fork, cfork, broadcast (for a\n"
		"        profiler; default all that the case times)\n"
		"  -h    this help\n"
		"direct needs CFORK_MODE=direct in the environment (libcfork\n"
		"reads it when it is loaded): CFORK_MODE=direct %s -c direct\n"
		"Prints, per case and quantity, the median, 90th percentile\n"
		"and maximum in microseconds, then one key=value line per case.\n"
		"fork, cfork: the call until it returns in the parent; infork:\n"
		"the fork inside cfork; quiesce: stopping the siblings; qr:\n"
		"cfork - infork (quiesce + resume); resume: qr - quiesce;\n"
		"broadcast: glibc's setuid(getuid()), which signals every\n"
		"thread and waits for each; probe: cfork_probe().\n",
		prog, DEFAULT_N, prog);
}


static bool has_case(const char *list, const char *name)
{
	size_t len = strlen(name);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == len && !strncmp(p, name, len))
			return true;
		p += l + (e != NULL);
	}
	return false;
}

/* -o: the calls to keep, as 1u << OP_*. */
static bool parse_calls(const char *list, unsigned *ops)
{
	*ops = 0;
	if (has_case(list, "fork"))
		*ops |= 1u << OP_FORK;
	if (has_case(list, "cfork"))
		*ops |= 1u << OP_CFORK;
	if (has_case(list, "broadcast"))
		*ops |= 1u << OP_BROADCAST;
	unsigned n = 0;
	for (const char *p = list; *p; p++)
		n += *p == ',';
	return *ops && (unsigned)__builtin_popcount(*ops) == n + 1;
}

static bool known_cases(const char *list)
{
	static const char *const names[] = { "idle", "woken", "busy", "mem",
					     "direct", "probe", "libc", "all" };
	char buf[256];
	if (!*list || strlen(list) >= sizeof buf)
		return false;
	strcpy(buf, list);
	for (char *save, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		bool ok = false;
		for (size_t i = 0; i < sizeof names / sizeof *names; i++)
			ok |= !strcmp(tok, names[i]);
		if (!ok)
			return false;
	}
	return true;
}

/* Fewer repetitions where one call takes long, so that make bench ends in
 * minutes; never fewer than 10 (the 90th percentile needs some). */
static int reps_for(int n, int siblings, int gib)
{
	int r = n;
	if (siblings >= 1000)
		r = n / 8;
	else if (siblings >= 256)
		r = n / 4;
	if (gib)
		r = n / (2 * gib);
	return r < 10 ? 10 : r;
}

static struct bcase *add(struct bcase *plan, int *np, const char *fmt,
			 int arg)
{
	struct bcase *c = &plan[(*np)++];
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, fmt, arg);
	c->nkinds = 1;
	c->ops = 1u << OP_FORK | 1u << OP_CFORK | 1u << OP_BROADCAST;
	return c;
}

int main(int argc, char **argv)
{
	int n = DEFAULT_N, busy = 8, opt;
	int counts[MAX_COUNTS] = { 0, 1, 8, 64, 256, 1000 }, ncounts = 6;
	int sizes[MAX_COUNTS] = { 1, 4 }, nsizes = 2;
	const char *which = "all";
	unsigned only = ~0u;
	while ((opt = getopt(argc, argv, "c:n:t:b:g:o:h")) != -1) {
		switch (opt) {
		case 'c':
			which = optarg;
			if (!known_cases(which)) {
				fprintf(stderr, "forklat: unknown case in "
					"'%s'\n", which);
				usage(stderr, argv[0]);
				return 2;
			}
			break;
		case 'n':
			if (!bench_parse_int(optarg, 1, 10000000, &n)) {
				fprintf(stderr, "forklat: -n wants a positive "
					"number\n");
				return 2;
			}
			break;
		case 't':
			if (!bench_parse_list(optarg, 0, 10000, counts,
					      MAX_COUNTS, &ncounts)) {
				fprintf(stderr, "forklat: -t wants up to %d "
					"counts from 0 to 10000, comma-"
					"separated\n", MAX_COUNTS);
				return 2;
			}
			break;
		case 'b':
			if (!bench_parse_int(optarg, 1, 10000, &busy)) {
				fprintf(stderr, "forklat: -b wants 1 to "
					"10000\n");
				return 2;
			}
			break;
		case 'g':
			if (!bench_parse_list(optarg, 1, 1024, sizes,
					      MAX_COUNTS, &nsizes)) {
				fprintf(stderr, "forklat: -g wants up to %d "
					"sizes from 1 to 1024 GiB, comma-"
					"separated\n", MAX_COUNTS);
				return 2;
			}
			break;
		case 'o':
			if (!parse_calls(optarg, &only)) {
				fprintf(stderr, "forklat: -o wants fork, cfork "
					"or broadcast, comma-separated\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr, argv[0]);
		return 2;
	}
	bool all = has_case(which, "all");
	const char *mode = getenv("CFORK_MODE");
	bool direct_env = mode && !strcmp(mode, "direct");
	if (has_case(which, "direct") && !direct_env) {
		fprintf(stderr, "forklat: case direct needs CFORK_MODE=direct "
			"in the environment (libcfork reads it when it is "
			"loaded): CFORK_MODE=direct %s -c direct\n", argv[0]);
		return 2;
	}
	if (direct_env && (all || strcmp(which, "direct"))) {
		fprintf(stderr, "forklat: CFORK_MODE=direct makes every cfork "
			"direct: run only -c direct with it\n");
		return 2;
	}

	static struct bcase plan[MAX_CASES];
	int np = 0;
	struct bcase *c;
	if (all || has_case(which, "idle"))
		for (int i = 0; i < ncounts; i++) {
			c = add(plan, &np, "idle-%d", counts[i]);
			c->per_kind = counts[i];
			c->reps = reps_for(n, counts[i], 0);
		}
	if (all || has_case(which, "woken"))
		for (int i = 0; i < ncounts; i++) {
			if (counts[i] < 1)
				continue;
			c = add(plan, &np, "woken-%d", counts[i]);
			c->per_kind = counts[i];
			c->wake = true;
			c->reps = reps_for(n, counts[i], 0);
		}
	if (all || has_case(which, "busy")) {
		c = add(plan, &np, "busy-%d", busy);
		c->kinds[0] = SIB_SPIN;
		c->per_kind = busy;
		c->reps = reps_for(n, busy, 0);
	}
	if (all || has_case(which, "mem"))
		for (int i = 0; i < nsizes; i++)
			for (int thp = 0; thp < 2; thp++) {
				c = add(plan, &np, thp ? "mem-%dg-thp" :
					"mem-%dg-4k", sizes[i]);
				c->per_kind = MEM_SIBLINGS;
				c->gib = sizes[i];
				c->thp = thp;
				c->ops &= ~(1u << OP_BROADCAST);
				c->reps = reps_for(n, MEM_SIBLINGS, sizes[i]);
			}
	if (has_case(which, "direct")) {
		c = add(plan, &np, "direct-%d", MEM_SIBLINGS);
		c->per_kind = MEM_SIBLINGS;
		c->direct = true;
		c->ops &= ~(1u << OP_BROADCAST);
		/* A 1 % effect: many cheap calls, for a steady median. */
		c->reps = 8 * n;
	}
	if (all || has_case(which, "libc")) {
		static const enum sib_kind k[] = { SIB_MALLOC, SIB_STDIO,
						   SIB_CHURN };
		static const char *const name[] = { "malloc-%d", "stdio-%d",
						    "churn-%d" };
		for (int i = 0; i < 3; i++) {
			c = add(plan, &np, name[i], LIBC_SIBLINGS);
			c->kinds[0] = k[i];
			c->per_kind = LIBC_SIBLINGS;
			c->reps = reps_for(n, LIBC_SIBLINGS, 0);
		}
		c = add(plan, &np, "stress-%d", 3 * LIBC_SIBLINGS);
		memcpy(c->kinds, k, sizeof k);
		c->nkinds = 3;
		c->per_kind = LIBC_SIBLINGS;
		c->reps = reps_for(n, 3 * LIBC_SIBLINGS, 0);
	}
	bool want_probe = all || has_case(which, "probe");
	if (want_probe) {
		/* Its cost must not grow with the caller's memory. */
		c = add(plan, &np, "probe", 0);
		c->ops = 1u << OP_PROBE;
		c->reps = n;
		c = add(plan, &np, "probe-1g", 0);
		c->ops = 1u << OP_PROBE;
		c->gib = 1;
		c->reps = n;
	}

	for (int i = 0; i < np; i++)
		if (plan[i].ops != 1u << OP_PROBE)
			plan[i].ops &= only | 1u << OP_PROBE;

	kv = open_memstream(&kv_lines, &kv_len);
	if (!kv) {
		fprintf(stderr, "forklat: no memory\n");
		return 1;
	}
	signal(SIGALRM, on_alarm);
	setvbuf(stdout, NULL, _IOLBF, 0);
	series_print_header(stdout);
	int status = 0;
	for (int i = 0; i < np; i++) {
		int e = measure(&plan[i]);
		if (e < 0) {
			fprintf(stderr, "forklat: cannot run case %s\n",
				plan[i].name);
			return 1;
		}
		status |= e;
	}
	fclose(kv);
	printf("\n%s", kv_lines ? kv_lines : "");
	free(kv_lines);
	return status;
}
