/* SPDX-License-Identifier: MIT */
/*
 * gcstop: the Boehm-Demers-Weiser collector's stop-the-world for the same
 * idle siblings forklat stops (blocked in pthread_cond_wait), as the peer
 * baseline of cfork's quiesce + resume: GC_stop_world_external() signals
 * every registered thread and waits until each has acknowledged;
 * GC_start_world_external() lets them go.  The threads are created with
 * GC_pthread_create, so that bdwgc knows them.  A separate program: bdwgc
 * in forklat's process would add its own threads and signal handlers to
 * what cfork stops.
 *
 * Quantities, in microseconds per call:
 *   gc       stop + start
 *   gcstop   GC_stop_world_external()
 *   gcstart  GC_start_world_external()
 *
 * Usage: gcstop [-n reps] [-t counts] [-h]
 */
#include "config.h"

#define GC_THREADS
#include <gc/gc.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "siblings.h"
#include "stats.h"

#define DEFAULT_N 200
#define MAX_COUNTS 16

static char current[32];

static void on_alarm(int sig)
{
	(void)sig;
	static const char a[] = "gcstop: case ";
	static const char b[] = " is taking too long (a hang?)\n";
	if (write(2, a, sizeof a - 1) < 0 ||
	    write(2, current, strlen(current)) < 0 ||
	    write(2, b, sizeof b - 1) < 0)
		_exit(1);
	_exit(1);
}

/* As forklat: fewer repetitions where one call takes long. */
static int reps_for(int n, int siblings)
{
	int r = siblings >= 1000 ? n / 8 : siblings >= 256 ? n / 4 : n;
	return r < 10 ? 10 : r;
}

static int measure(int siblings, int reps, FILE *kv)
{
	struct siblings sib = { .create = GC_pthread_create,
				.join = GC_pthread_join };
	struct series both, stop, start;
	snprintf(current, sizeof current, "idle-%d", siblings);
	if ((series_init(&both, "gc", reps) | series_init(&stop, "gcstop", reps) |
	     series_init(&start, "gcstart", reps)) < 0) {
		fprintf(stderr, "gcstop: no memory for %d samples\n", reps);
		return -1;
	}
	alarm(120 + (unsigned)reps);
	if (sib_start(&sib, SIB_IDLE, siblings) < 0) {
		sib_stop(&sib);
		return -1;
	}
	uint64_t settle = 20000 + 2000 * (uint64_t)siblings;
	for (int i = 0; i < 3 + reps; i++) {
		uint64_t t0 = bench_now_ns();
		GC_stop_world_external();
		uint64_t t1 = bench_now_ns();
		GC_start_world_external();
		uint64_t t2 = bench_now_ns();
		if (i >= 3) {         /* the first ones warm up */
			series_add(&both, t2 - t0);
			series_add(&stop, t1 - t0);
			series_add(&start, t2 - t1);
		}
		bench_sleep_ns(settle);
	}
	sib_stop(&sib);
	alarm(0);
	series_print_row(stdout, current, &both);
	series_print_row(stdout, current, &stop);
	series_print_row(stdout, current, &start);
	fprintf(kv, "case=%s siblings=%d reps=%d", current, siblings, reps);
	series_print_kv(kv, &both);
	series_print_kv(kv, &stop);
	series_print_kv(kv, &start);
	fprintf(kv, "\n");
	series_free(&both);
	series_free(&stop);
	series_free(&start);
	return 0;
}


static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [-n reps] [-t counts] [-h]\n"
		"  -n N  repetitions with few siblings (default %d; fewer\n"
		"        with 256 or more)\n"
		"  -t L  idle sibling counts (default 0,1,8,64,256,1000)\n"
		"  -h    this help\n"
		"Times bdwgc's GC_stop_world_external() and\n"
		"GC_start_world_external() with idle sibling threads: the\n"
		"median, 90th percentile and maximum in microseconds of gc\n"
		"(stop + start), gcstop and gcstart, as a table and as one\n"
		"key=value line per case.\n", prog, DEFAULT_N);
}

int main(int argc, char **argv)
{
	int n = DEFAULT_N, opt;
	int counts[MAX_COUNTS] = { 0, 1, 8, 64, 256, 1000 }, ncounts = 6;
	while ((opt = getopt(argc, argv, "n:t:h")) != -1) {
		switch (opt) {
		case 'n':
			if (!bench_parse_int(optarg, 1, 10000000, &n)) {
				fprintf(stderr, "gcstop: -n wants a positive "
					"number\n");
				return 2;
			}
			break;
		case 't':
			if (!bench_parse_list(optarg, 0, 10000, counts,
					      MAX_COUNTS, &ncounts)) {
				fprintf(stderr, "gcstop: -t wants up to %d "
					"counts from 0 to 10000, comma-"
					"separated\n", MAX_COUNTS);
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
	/* No parallel marker threads: only the siblings are stopped. */
	GC_set_markers_count(1);
	GC_INIT();

	char *lines = NULL;
	size_t len = 0;
	FILE *kv = open_memstream(&lines, &len);
	if (!kv) {
		fprintf(stderr, "gcstop: no memory\n");
		return 1;
	}
	signal(SIGALRM, on_alarm);
	setvbuf(stdout, NULL, _IOLBF, 0);
	series_print_header(stdout);
	for (int i = 0; i < ncounts; i++)
		if (measure(counts[i], reps_for(n, counts[i]), kv) < 0) {
			fprintf(stderr, "gcstop: cannot run case idle-%d\n",
				counts[i]);
			return 1;
		}
	fclose(kv);
	printf("\n%s", lines ? lines : "");
	free(lines);
	return 0;
}
