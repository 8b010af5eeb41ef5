/* SPDX-License-Identifier: MIT */
/*
 * Raw system calls.  Everything here is async-signal-safe: the signal
 * handler and the driver (which runs after allocator locks are taken, so it
 * must not allocate either) use only these.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "syscall6.h"

pid_t cf_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* A timed futex wait must not be used where a restart block matters (the
 * handler): there timeout_ns is 0, which means "no timeout". */
long cf_futex_wait(_Atomic uint32_t *word, uint32_t val, uint64_t timeout_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(timeout_ns / 1000000000u),
		.tv_nsec = (long)(timeout_ns % 1000000000u),
	};
	return syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val,
		       timeout_ns ? &ts : NULL, NULL, 0);
}

long cf_futex_wake(_Atomic uint32_t *word, int n)
{
	return syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

uint64_t cf_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int cf_tgkill(pid_t tid, int sig)
{
	long r = syscall(SYS_tgkill, getpid(), tid, sig);
	return r == 0 ? 0 : -errno;
}

/* rt_tgsigqueueinfo: like tgkill, but the signal carries a value, which
 * tells the handler which request it answers. */
int cf_sigqueue(pid_t pid, uid_t uid, pid_t tid, int sig, uint64_t value)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = sig;
	si.si_code = SI_QUEUE;
	si.si_pid = pid;
	si.si_uid = uid;
	si.si_value.sival_ptr = (void *)(uintptr_t)value;
	long r = syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, &si);
	return r == 0 ? 0 : -errno;
}

int cf_open_ro(const char *path)
{
	long fd = syscall(SYS_openat, AT_FDCWD, path,
			  O_RDONLY | O_CLOEXEC, 0);
	return fd >= 0 ? (int)fd : -errno;
}

void cf_close(int fd)
{
	syscall(SYS_close, fd);
}

ssize_t cf_read_file(const char *path, char *buf, size_t len)
{
	int fd = cf_open_ro(path);
	if (fd < 0)
		return fd;
	size_t got = 0;
	while (got + 1 < len) {
		long n = syscall(SYS_read, fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	cf_close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

void cf_nanosleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };
	syscall(SYS_nanosleep, &ts, NULL);
}

void *cf_map(size_t len)
{
	void *p = (void *)syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void cf_wipe_on_fork(void *p, size_t len)
{
	/* Without it (before Linux 4.14) the pages are only copied. */
	syscall(SYS_madvise, p, len, MADV_WIPEONFORK);
}

void *cf_map_wiped(size_t len)
{
	void *p = cf_map(len);
	if (p)
		cf_wipe_on_fork(p, len);
	return p;
}

void cf_unmap(void *p, size_t len)
{
	if (p)
		syscall(SYS_munmap, p, len);
}

/* vsnprintf does not allocate for these formats (%s %d %u %lu %x %c %p). */
void cf_log(const char *fmt, ...)
{
	char buf[512];
	int saved = errno;
	int n = snprintf(buf, sizeof buf, "libcfork: ");
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	syscall(SYS_write, 2, buf, (size_t)n);
	errno = saved;
}

/* A plain futex lock (0 free, 1 held, 2 held with waiters).  Ours, not
 * libc's, so a thread waiting in it is at a safe point. */
void cf_lock(_Atomic uint32_t *l)
{
	uint32_t c = 0;
	if (atomic_compare_exchange_strong_explicit(l, &c, 1,
						    memory_order_acquire,
						    memory_order_relaxed))
		return;
	if (c != 2)
		c = atomic_exchange_explicit(l, 2, memory_order_acquire);
	while (c != 0) {
		cf_futex_wait(l, 2, 0);
		c = atomic_exchange_explicit(l, 2, memory_order_acquire);
	}
}

void cf_unlock(_Atomic uint32_t *l)
{
	if (atomic_exchange_explicit(l, 0, memory_order_release) == 2)
		cf_futex_wake(l, 1);
}

/* The kernel's own return value (a negative errno on failure), which the
 * handler stores back into an interrupted context. */
long cf_raw_syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
	return cf_syscall6(nr, a, b, c, d, e, f);
}
