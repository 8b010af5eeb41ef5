/* SPDX-License-Identifier: MIT */
/*
 * cfork-probe: does this kernel give a forked child a coherent copy of
 * pages that may be pinned for DMA?  A thin front end to cfork_probe(3)
 * for scripts and people; cfork-probe(1) documents it.
 */
#include "config.h"

#include <cfork.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

/* Exit statuses (cfork-probe(1)). */
enum { EXIT_COHERENT = 0, EXIT_TEARS = 1, EXIT_CANNOT_TELL = 2 };

static const char *const path_names[CFORK_PATHS] = {
	[CFORK_PATH_SMALL] = "small",
	[CFORK_PATH_THP] = "thp",
	[CFORK_PATH_HUGETLB] = "hugetlb",
};
static const char *const path_titles[CFORK_PATHS] = {
	[CFORK_PATH_SMALL] = "small pages",
	[CFORK_PATH_THP] = "transparent huge pages",
	[CFORK_PATH_HUGETLB] = "hugetlb pages",
};

static const char *verdict_name(int v)
{
	return v == CFORK_COHERENT ? "coherent"
	     : v == CFORK_TEARS ? "tears" : "cannot tell";
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: cfork-probe [--json] [--thorough]\n"
		"Tell whether fork() on this kernel gives the child a coherent copy of\n"
		"memory that may be pinned for DMA, for small, transparent huge and\n"
		"hugetlb pages.\n"
		"\n"
		"  --json       print the result as one JSON object\n"
		"  --thorough   also fork against a writer thread and count torn\n"
		"               children (up to a few seconds)\n"
		"  -h, --help   print this help and exit\n"
		"  --version    print the version and exit\n"
		"\n"
		"Exit status: 0 coherent on every path in use, 1 tears on a path in\n"
		"use, 2 cannot tell (the output says why) or error.\n");
}

/* Reasons are plain phrases; quotes and backslashes are escaped anyway. */
static void json_string(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static void print_json(const struct cfork_probe_result *r,
		       const struct utsname *u)
{
	printf("{\"kernel\":");
	json_string(u->release);
	printf(",\"verdict\":");
	json_string(verdict_name(r->verdict));
	printf(",\"thorough\":%s,\"ns\":%llu,\"paths\":{",
	       r->thorough ? "true" : "false", (unsigned long long)r->ns);
	for (int k = 0; k < CFORK_PATHS; k++) {
		const struct cfork_probe_path *p = &r->path[k];
		printf("%s\"%s\":{\"verdict\":", k ? "," : "", path_names[k]);
		json_string(verdict_name(p->verdict));
		printf(",\"in_use\":%s,\"reason\":", p->in_use ? "true" : "false");
		json_string(p->reason);
		printf(",\"trials\":%u,\"pinned_faults\":%u,\"control_faults\":%u",
		       p->trials, p->pinned_faults, p->control_faults);
		if (r->thorough)
			printf(",\"forks\":%u,\"raced\":%u,\"torn\":%u",
			       p->forks, p->raced, p->torn);
		printf("}");
	}
	printf("}}\n");
}

static void print_text(const struct cfork_probe_result *r,
		       const struct utsname *u)
{
	printf("kernel %s %s\n", u->release, u->machine);
	for (int k = 0; k < CFORK_PATHS; k++) {
		const struct cfork_probe_path *p = &r->path[k];
		printf("  %-23s %-11s %s", path_titles[k],
		       verdict_name(p->verdict), p->reason ? p->reason : "");
		if (p->trials)
			printf(" (pinned page faulted in %u of %u forks, "
			       "control in %u)", p->pinned_faults, p->trials,
			       p->control_faults);
		if (!p->in_use)
			printf(" [not in use]");
		printf("\n");
		if (r->thorough && p->forks)
			printf("  %-23s %-11s %u of %u children torn "
			       "(the writer ran across %u forks)\n", "",
			       "", p->torn, p->forks, p->raced);
	}
	/* Auto mode counts hugetlb only in processes that map such pages
	 * (cfork_probe(3)). */
	const struct cfork_probe_path *p = r->path;
	int direct = p[CFORK_PATH_SMALL].verdict == CFORK_COHERENT &&
		     (!p[CFORK_PATH_THP].in_use ||
		      p[CFORK_PATH_THP].verdict == CFORK_COHERENT);
	printf("verdict: %s", verdict_name(r->verdict));
	if (r->verdict == CFORK_COHERENT)
		printf(" (cfork() in auto mode forks directly)\n");
	else if (direct)
		printf(" (cfork() in auto mode forks directly in processes that "
		       "map no hugetlb pages, and stops sibling threads in "
		       "the others)\n");
	else
		printf(" (cfork() in auto mode stops sibling threads)\n");
	printf("probe took %.2f ms\n", (double)r->ns / 1e6);
}

/* What was printed must have reached standard output: a full disk or a
 * closed pipe is an error (status 2), not a silent success. */
static int flushed(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("cfork-probe: write error");
		return EXIT_CANNOT_TELL;
	}
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "thorough", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int json = 0, c;
	unsigned flags = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 't':
			flags |= CFORK_PROBE_THOROUGH;
			break;
		case 'h':
			usage(stdout);
			return flushed(0);
		case 'V':
			printf("cfork-probe (%s) %s\n", PACKAGE_NAME,
			       PACKAGE_VERSION);
			return flushed(0);
		default:
			usage(stderr);
			return EXIT_CANNOT_TELL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cfork-probe: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return EXIT_CANNOT_TELL;
	}

	struct utsname u;
	if (uname(&u) < 0)
		memset(&u, 0, sizeof u);
	struct cfork_probe_result r;
	if (cfork_probe(&r, sizeof r, flags) < 0) {
		perror("cfork-probe: cfork_probe");
		return EXIT_CANNOT_TELL;
	}
	if (json)
		print_json(&r, &u);
	else
		print_text(&r, &u);
	return flushed(r.verdict == CFORK_COHERENT ? EXIT_COHERENT
		       : r.verdict == CFORK_TEARS ? EXIT_TEARS
		       : EXIT_CANNOT_TELL);
}
