/* SPDX-License-Identifier: MIT */
/*
 * Samples of one measured quantity and what the benchmarks print of them:
 * median, 90th percentile, maximum and count, in microseconds.
 */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct series {
	const char *name;       /* key prefix: fork, cfork, qr, ... */
	uint64_t *ns;
	int n, cap;
};

/* 0, or -1 when there is no memory for cap samples. */
int series_init(struct series *s, const char *name, int cap);
void series_add(struct series *s, uint64_t ns);
void series_free(struct series *s);

struct summary {
	int n;
	double median_us, p90_us, max_us;
};
/* Sorts the samples. */
struct summary series_summary(struct series *s);

/* " name_median_us=... name_p90_us=... name_max_us=... name_n=..." */
void series_print_kv(FILE *f, struct series *s);
/* One table row: case, quantity, n, median, p90, max. */
void series_print_row(FILE *f, const char *case_name, struct series *s);
void series_print_header(FILE *f);

/* Command-line numbers: an int in [lo, hi], or "1,8,64" into at most
 * max of them (*n set); false on anything else. */
bool bench_parse_int(const char *s, int lo, int hi, int *out);
bool bench_parse_list(const char *s, int lo, int hi, int *v, int max,
		      int *n);

uint64_t bench_now_ns(void);
/* Sleeps ns nanoseconds (siblings woken by the last call settle). */
void bench_sleep_ns(uint64_t ns);

#endif /* BENCH_STATS_H */
