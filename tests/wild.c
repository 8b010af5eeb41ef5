/* SPDX-License-Identifier: MIT */
/*
 * A stack walk that goes astray must read nothing it cannot read.  Three
 * siblings sit in a read() on an empty pipe, made from code of their own
 * in an anonymous page (no object, no unwind information), so the walker
 * falls back on the frame pointer, which each sets to a word it may not
 * read: one on a PROT_NONE page, one unmapped, and one at the end of a
 * readable page whose next word (the return address) is on a PROT_NONE
 * page.  Every cfork must park all three and return a child; a read that
 * the page check let through would kill the process with SIGSEGV.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include "cfork.h"
#include "test.h"

#define PAGE 4096

static unsigned char *code;
static int pipe_fd[2];

struct wild {
	uintptr_t rbp;
	char buf[8];
	pthread_t thread;
};

static void *wild_main(void *arg)
{
	struct wild *w = arg;
	/* read(fd, buf, 1) in a loop, from the anonymous page, with rbp
	 * pointing where it must not be read.  It never comes back. */
	__asm__ volatile("mov %%rax, %%rbp\n\t"
			 "jmp *%%rcx"
			 :
			 : "a"(w->rbp), "c"(code), "D"((long)pipe_fd[0]),
			   "S"(w->buf), "d"(1L)
			 : "memory");
	return NULL;
}

int main(void)
{
	t_alarm(60);
	CHECK(pipe(pipe_fd) == 0);

	/* loop: xor %eax,%eax (SYS_read); syscall; jmp loop */
	static const unsigned char loop[] = { 0x31, 0xc0, 0x0f, 0x05,
					      0xeb, 0xfa };
	code = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(code != MAP_FAILED);
	memcpy(code, loop, sizeof loop);
	if (mprotect(code, PAGE, PROT_READ | PROT_EXEC) < 0)
		SKIP("cannot make an anonymous page executable: %s",
		     strerror(errno));

	/* readable | PROT_NONE | unmapped */
	unsigned char *m = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	CHECK(mprotect(m + PAGE, PAGE, PROT_NONE) == 0);
	CHECK(munmap(m + 2 * PAGE, PAGE) == 0);
	struct wild w[3] = {
		{ .rbp = (uintptr_t)(m + PAGE + 64) },
		{ .rbp = (uintptr_t)(m + 2 * PAGE + 64) },
		{ .rbp = (uintptr_t)(m + PAGE - 8) },
	};
	for (int i = 0; i < 3; i++)
		CHECK(pthread_create(&w[i].thread, NULL, wild_main, &w[i]) == 0);

	usleep(10000);          /* into the loop, most likely */
	int n = t_iters(50);
	for (int i = 0; i < n; i++) {
		struct cfork_report r;
		t_cfork_once(&r);
		CHECK(r.method == CFORK_METHOD_QUIESCE);
		CHECK(r.coherent == 1);
		CHECK(r.parked == 3);
	}
	printf("%d cforks with 3 siblings whose frame pointers lead to "
	       "memory they cannot read: all parked, no fault\n", n);
	fflush(stdout);
	_exit(T_PASS);
}
