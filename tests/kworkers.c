/* SPDX-License-Identifier: MIT */
/*
 * io_uring's kernel workers (iou-wrk-*) live in the thread group but can
 * never take a signal: cfork must skip them, not wait for them.  Reads
 * forced async (IOSQE_ASYNC) on empty pipes keep workers blocked for the
 * whole test; every cfork must then be coherent with the workers counted
 * as skipped and nothing left running.
 */
#include "config.h"

#include <dirent.h>
#include <liburing.h>
#include <sys/wait.h>

#include "cfork.h"
#include "test.h"

#define NREADS 4

static int count_workers(void)
{
	DIR *d = opendir("/proc/self/task");
	CHECK(d != NULL);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[300], name[64] = "";
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f && fgets(name, sizeof name, f))
			n += strncmp(name, "iou-", 4) == 0;
		if (f)
			fclose(f);
	}
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	t_alarm(120);
	int n = argc > 1 ? atoi(argv[1]) : t_iters(100);
	struct io_uring ring;
	int e = io_uring_queue_init(8, &ring, 0);
	if (e < 0)
		SKIP("io_uring unavailable: %s", strerror(-e));
	int fds[NREADS][2];
	char buf[NREADS][16];
	for (int i = 0; i < NREADS; i++) {
		CHECK(pipe(fds[i]) == 0);
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		io_uring_prep_read(sqe, fds[i][0], buf[i], sizeof buf[i], 0);
		sqe->flags |= IOSQE_ASYNC;
	}
	CHECK(io_uring_submit(&ring) == NREADS);
	int workers = 0;
	for (int i = 0; i < 200 && workers == 0; i++) {
		usleep(5000);
		workers = count_workers();
	}
	if (workers == 0)
		SKIP("this kernel started no io_uring worker thread");

	unsigned skipped_min = ~0u;
	for (int i = 0; i < n; i++) {
		struct cfork_report r;
		t_cfork_once(&r);
		CHECK(r.method == CFORK_METHOD_QUIESCE);
		CHECK(r.coherent == 1);
		CHECK(r.not_stopped == 0);
		CHECK(r.skipped >= 1);
		if (r.skipped < skipped_min)
			skipped_min = r.skipped;
	}
	printf("%d io_uring workers; %d cforks, all coherent, at least %u "
	       "workers skipped each time\n", workers, n, skipped_min);
	for (int i = 0; i < NREADS; i++)
		CHECK(write(fds[i][1], "x", 1) == 1);
	io_uring_queue_exit(&ring);
	return T_PASS;
}
