/* SPDX-License-Identifier: MIT */
/*
 * torn-demo: the problem cfork() solves, and the cure, in one run.
 *
 * A writer thread keeps storing a counter into 16 pages, page 0 first, so
 * any state the process ever had reads "c c c ... c" or "c ... c c-1 ...
 * c-1".  The pages are registered with io_uring as fixed buffers, which
 * pins them; fork(2) then copies them eagerly, page by page, while the
 * parent's mappings stay writable, so the writer keeps writing during the
 * copy and a child can see page 0 from one moment and page 15 from a later
 * one: a state that never existed (a "torn" child).  The program forks N
 * times with fork() and N times with cfork(), each child checks the pages,
 * and it prints how many children were torn for each.  On a kernel that
 * write-protects pinned pages before copying them, fork() is coherent too.
 *
 * Build:  cc torn-demo.c $(pkg-config --cflags --libs libcfork liburing) -lpthread
 * Run:    ./a.out [N]         (N forks of each kind, default 200)
 *
 * Exit status: 0 when some fork() child was torn and no cfork() child
 * was; 1 when a cfork() child was torn (or on an error); 77 when this
 * machine shows nothing: io_uring cannot pin memory here, or no fork()
 * child was torn (a kernel that copies pinned pages coherently, or a
 * writer that never ran during a copy), each said in one line.
 */
/* MADV_NOHUGEPAGE and sched_yield's header need more than strict C. */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cfork.h>

#define PAGES 16
#define PAGE_BYTES 4096

static unsigned char *mem;
static _Atomic bool stop;

static _Atomic uint64_t *page_word(int k)
{
	return (_Atomic uint64_t *)(mem + (size_t)k * PAGE_BYTES);
}

/* Release stores in page order: whatever prefix of one pass a reader sees,
 * it sees every earlier store too, so only a copy taken while the writer
 * runs can produce any other pattern. */
static void *writer(void *arg)
{
	(void)arg;
	for (uint64_t c = 1; !atomic_load_explicit(&stop, memory_order_relaxed);
	     c++)
		for (int k = 0; k < PAGES; k++)
			atomic_store_explicit(page_word(k), c,
					      memory_order_release);
	return NULL;
}

/* In the child: pages 0..m-1 hold c, pages m..15 hold c-1, for one m. */
static bool coherent(void)
{
	uint64_t first = atomic_load(page_word(0));
	bool dropped = false;
	for (int k = 1; k < PAGES; k++) {
		uint64_t v = atomic_load(page_word(k));
		if (v == first && !dropped)
			continue;
		if (first > 0 && v == first - 1) {
			dropped = true;
			continue;
		}
		return false;
	}
	return true;
}

/* Forks n times with the given call; returns how many children were torn,
 * or -1 if a fork failed. */
static int run(pid_t (*forker)(void), const char *name, int n)
{
	int torn = 0;
	for (int i = 0; i < n; i++) {
		/* Fork only while the writer is seen running: on a busy
		 * machine it may be off the CPU, and then even fork() copies
		 * a quiet state.  (Yielding lets it in on a single CPU.) */
		uint64_t seen = atomic_load(page_word(PAGES - 1));
		while (atomic_load(page_word(PAGES - 1)) == seen)
			sched_yield();
		pid_t pid = forker();
		if (pid < 0) {
			fprintf(stderr, "%s: %s\n", name, strerror(errno));
			return -1;
		}
		if (pid == 0)
			_exit(coherent() ? 0 : 1);
		int status;
		if (waitpid(pid, &status, 0) != pid) {
			perror("waitpid");
			return -1;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			torn++;
	}
	return torn;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200;
	if (n <= 0) {
		fprintf(stderr, "usage: %s [N]   (N > 0 forks of each kind)\n",
			argv[0]);
		return 2;
	}

	/* Small pages only: a transparent huge page takes another copy path
	 * in the kernel, which this demo does not mean to show. */
	size_t len = (size_t)PAGES * PAGE_BYTES;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	madvise(mem, len, MADV_NOHUGEPAGE);
	memset(mem, 0, len);

	/* Registering the pages as fixed buffers pins them (FOLL_LONGTERM),
	 * which is what makes fork copy them instead of sharing them. */
	struct io_uring ring;
	int e = io_uring_queue_init(4, &ring, 0);
	if (e == 0) {
		struct iovec iov = { mem, len };
		e = io_uring_register_buffers(&ring, &iov, 1);
		if (e < 0)
			io_uring_queue_exit(&ring);
	}
	if (e < 0) {
		fprintf(stderr, "io_uring cannot pin memory here (%s): "
			"nothing to show\n", strerror(-e));
		return 77;
	}

	pthread_t w;
	e = pthread_create(&w, NULL, writer, NULL);
	if (e) {
		fprintf(stderr, "pthread_create: %s\n", strerror(e));
		return 1;
	}

	int plain = run(fork, "fork", n);
	int coh = plain < 0 ? -1 : run(cfork, "cfork", n);

	atomic_store(&stop, true);
	pthread_join(w, NULL);
	io_uring_queue_exit(&ring);
	if (plain < 0 || coh < 0)
		return 1;

	printf("fork():  %d of %d children torn\n", plain, n);
	printf("cfork(): %d of %d children torn\n", coh, n);
	if (coh > 0)
		return 1;
	if (plain == 0) {
		/* A demonstration of nothing is not a pass: say so. */
		printf("fork() tore no child in %d: this kernel or machine "
		       "shows nothing to fix\n", n);
		return 77;
	}
	return 0;
}
