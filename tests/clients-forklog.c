/* SPDX-License-Identifier: MIT */
/*
 * make check-clients: counts the forks of every process of a client run,
 * and which of them went through cfork(), without a line on stderr (where
 * CFORK_DEBUG's would break the tests that compare a child's output).
 * Preloaded ahead of cfork-run's entries, in the runs with and without the
 * shim alike, it appends one line per event to the file CLIENTS_FORKLOG
 * names:
 *
 *   fork PID LOADED               an atfork parent handler ran in PID:
 *                                 a fork through libc's handlers, with
 *                                 or without the shim; LOADED is 1 when
 *                                 libcfork is in the process (0 in
 *                                 cfork-run's own shell, for example)
 *   cfork PID METHOD COHERENT PARKED QUIESCE_US FORK_US
 *                                 the shim's fork() called cfork(), which
 *                                 this object interposes to read the
 *                                 report of that very call
 *
 * Lines are written with one write() to an O_APPEND descriptor, so the
 * processes of a run share the file without tearing a line.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfork.h"

#define EXPORT __attribute__((visibility("default")))

static const char *log_path;
static int libcfork_loaded;

static void put(const char *line, int len)
{
	if (!log_path || len <= 0)
		return;
	int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		      0644);
	if (fd < 0)
		return;
	/* A short write only loses a count, which the comparison shows. */
	if (write(fd, line, (size_t)len) < 0)
		len = 0;
	close(fd);
}

/* Runs inside fork() and cfork() in the parent, after the copy:
 * snprintf with an integer format takes no lock. */
static void parent(void)
{
	char line[64];
	put(line, snprintf(line, sizeof line, "fork %d %d\n", (int)getpid(),
			   libcfork_loaded));
}

__attribute__((constructor)) static void init(void)
{
	const char *p = getenv("CLIENTS_FORKLOG");
	if (!p || !*p)
		return;
	/* The environment may change later; the path must not. */
	log_path = strdup(p);
	/* Every preloaded object is loaded before any constructor runs. */
	libcfork_loaded = dlsym(RTLD_DEFAULT, "cfork_last_report") != NULL;
	pthread_atfork(NULL, parent, NULL);
}

/* The shim's reference to cfork (LIBCFORK_0.1, the version the script
 * gives this one) binds here, as this object comes first in the search
 * order. */
typedef pid_t fork_fn(void);
typedef int report_fn(struct cfork_report *, size_t);
static _Atomic(fork_fn *) next_cfork;
static _Atomic(report_fn *) last_report;

EXPORT pid_t cfork(void)
{
	/* Looked up at the first call: two threads doing it at once store
	 * the same values. */
	fork_fn *next = atomic_load_explicit(&next_cfork, memory_order_acquire);
	if (!next) {
		atomic_store_explicit(&last_report, (report_fn *)
				      dlsym(RTLD_DEFAULT, "cfork_last_report"),
				      memory_order_relaxed);
		next = (fork_fn *)dlsym(RTLD_NEXT, "cfork");
		if (!next) {
			errno = ENOSYS;
			return -1;
		}
		atomic_store_explicit(&next_cfork, next, memory_order_release);
	}
	pid_t pid = next();
	if (pid == 0)
		return 0;
	int e = errno;
	report_fn *last = atomic_load_explicit(&last_report,
					       memory_order_relaxed);
	struct cfork_report r;
	if (last && last(&r, sizeof r) == 0) {
		char line[160];
		put(line, snprintf(line, sizeof line,
				   "cfork %d %s %d %u %llu %llu\n",
				   (int)getpid(),
				   r.method == CFORK_METHOD_QUIESCE ? "quiesce"
				   : r.method == CFORK_METHOD_DIRECT ? "direct"
				   : "none",
				   r.coherent, r.parked,
				   (unsigned long long)(r.quiesce_ns / 1000),
				   (unsigned long long)(r.fork_ns / 1000)));
	}
	errno = e;
	return pid;
}
