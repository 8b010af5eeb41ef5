/* SPDX-License-Identifier: MIT */
/*
 * What the probe's helper (probe-helper.c, a program of its own) tells
 * probe.c through a pipe: raw counts, no judgement.
 */
#ifndef CFORK_PROBE_RAW_H
#define CFORK_PROBE_RAW_H

#include <stdint.h>

#define CF_PROBE_MAGIC 0x63666f726b707232ull   /* "cforkpr2" */
#define CF_PROBE_TRIALS 5       /* at most; 2 when they agree */

enum { CF_PROBE_SMALL, CF_PROBE_THP, CF_PROBE_HUGETLB, CF_PROBE_KINDS };

/* Where a path's probe stopped, with error the errno. */
enum {
	CF_PROBE_STAGE_OK,
	CF_PROBE_STAGE_RING,     /* io_uring_setup of the path's ring */
	CF_PROBE_STAGE_MAP,      /* mmap of the two units */
	CF_PROBE_STAGE_PIN,      /* IORING_REGISTER_BUFFERS */
	CF_PROBE_STAGE_FORK,
};

struct cf_probe_path_raw {
	int32_t stage, error;
	uint32_t touch_faults;   /* faults of the first writes to the two
				  * first pages of the pinned unit (1 when a
				  * huge page backs it) */
	uint32_t trials;         /* forks made */
	uint32_t pinned[CF_PROBE_TRIALS];  /* faults of the first write
					    * after each fork */
};

struct cf_probe_raw {
	uint64_t magic;
	uint32_t control[CF_PROBE_TRIALS]; /* the unpinned page's, likewise */
	struct cf_probe_path_raw path[CF_PROBE_KINDS];
};

#endif
