/* SPDX-License-Identifier: MIT */
/* Samples and their summaries (stats.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stats.h"

int series_init(struct series *s, const char *name, int cap)
{
	s->name = name;
	s->n = 0;
	s->cap = cap;
	s->ns = calloc((size_t)(cap > 0 ? cap : 1), sizeof *s->ns);
	return s->ns ? 0 : -1;
}

void series_add(struct series *s, uint64_t ns)
{
	if (s->n < s->cap)
		s->ns[s->n++] = ns;
}

void series_free(struct series *s)
{
	free(s->ns);
	s->ns = NULL;
	s->n = s->cap = 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p of them at or below. */
static double rank_us(const struct series *s, double p)
{
	int k = (int)(p * s->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return (double)s->ns[k - 1] / 1000.0;
}

struct summary series_summary(struct series *s)
{
	struct summary r = { .n = s->n };
	if (s->n == 0)
		return r;
	qsort(s->ns, (size_t)s->n, sizeof *s->ns, cmp_u64);
	if (s->n % 2)
		r.median_us = (double)s->ns[s->n / 2] / 1000.0;
	else
		r.median_us = ((double)s->ns[s->n / 2 - 1] +
			       (double)s->ns[s->n / 2]) / 2000.0;
	r.p90_us = rank_us(s, 0.9);
	r.max_us = (double)s->ns[s->n - 1] / 1000.0;
	return r;
}

void series_print_kv(FILE *f, struct series *s)
{
	struct summary m = series_summary(s);
	fprintf(f, " %s_median_us=%.1f %s_p90_us=%.1f %s_max_us=%.1f %s_n=%d",
		s->name, m.median_us, s->name, m.p90_us, s->name, m.max_us,
		s->name, m.n);
}

void series_print_header(FILE *f)
{
	fprintf(f, "%-16s %-10s %6s %11s %11s %11s\n", "case", "quantity",
		"n", "median_us", "p90_us", "max_us");
}

void series_print_row(FILE *f, const char *case_name, struct series *s)
{
	struct summary m = series_summary(s);
	fprintf(f, "%-16s %-10s %6d %11.1f %11.1f %11.1f\n", case_name,
		s->name, m.n, m.median_us, m.p90_us, m.max_us);
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000u),
			       (long)(ns % 1000000000u) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

bool bench_parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

bool bench_parse_list(const char *s, int lo, int hi, int *v, int max, int *n)
{
	char buf[256];
	if (strlen(s) >= sizeof buf)
		return false;
	strcpy(buf, s);
	*n = 0;
	for (char *save, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (*n == max || !bench_parse_int(tok, lo, hi, &v[*n]))
			return false;
		(*n)++;
	}
	return *n > 0;
}
