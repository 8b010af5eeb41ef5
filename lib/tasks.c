/* SPDX-License-Identifier: MIT */
/*
 * The threads of the process, from /proc/self/task, and the table the
 * driver and the handlers share during one quiesce.
 *
 * The table is an open-addressing hash on the tid in memory from mmap: the
 * driver inserts (the entry first, then the hash slot that leads to it,
 * with a release store) while handlers look up concurrently (acquire).
 * Nothing is ever deleted during a quiesce, so a lookup that finds a tid
 * finds a complete entry.  It is sized before a quiesce to at least twice
 * the thread count, so it never fills.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* A handler that took a late signal may still be reading a table the
 * driver has replaced, so a table is published as one pointer (with its
 * size inside) and an outgrown one is never unmapped: growth doubles, so
 * what is kept is at most the size of the current one.
 *
 * The hash holds entry numbers; the entries themselves are dense, in the
 * order they were inserted.  Every page of the table was write-protected
 * by the last fork, and the first write to each costs a fault: a quiesce
 * writes the index pages it probes and the few pages its entries fill,
 * rather than a page per thread. */
struct table {
	size_t capacity;                  /* index slots, a power of two */
	_Atomic int32_t *index;           /* entry number + 1; 0: free */
	struct cf_thread *entry;          /* capacity / 2 of them */
};
static _Atomic(struct table *) current;

static size_t slot_of(const struct table *t, pid_t tid)
{
	return ((uint32_t)tid * 2654435761u) & (t->capacity - 1);
}

static size_t table_size(size_t cap)
{
	return sizeof(struct table) + cap * sizeof(int32_t) +
	       cap / 2 * sizeof(struct cf_thread);
}

int cf_tasks_reset(size_t want)
{
	struct table *t = atomic_load(&current);
	size_t cap = 1024;
	while (cap < want * 2)
		cap *= 2;
	if (t && cap <= t->capacity) {
		/* Only what the entries in use touched was written.  Other
		 * slots of a probe may already be cleared: skip them. */
		for (size_t k = 0; k < cf_hot.used; k++) {
			pid_t tid = atomic_load_explicit(&t->entry[k].tid,
							 memory_order_relaxed);
			size_t i = slot_of(t, tid);
			for (size_t n = 0; n < t->capacity &&
			     atomic_load_explicit(&t->index[i],
						  memory_order_relaxed) !=
				     (int32_t)k + 1;
			     n++)
				i = (i + 1) & (t->capacity - 1);
			atomic_store_explicit(&t->index[i], 0,
					      memory_order_relaxed);
		}
		memset(t->entry, 0, cf_hot.used * sizeof t->entry[0]);
		cf_hot.used = 0;
		return 0;
	}
	cf_hot.used = 0;
	struct table *n = cf_map_wiped(table_size(cap));
	if (!n)
		return -ENOMEM;
	n->capacity = cap;
	n->index = (_Atomic int32_t *)(n + 1);
	n->entry = (struct cf_thread *)(n->index + cap);
	atomic_store_explicit(&current, n, memory_order_release);
	return 0;
}

size_t cf_tasks_capacity(void)
{
	struct table *t = atomic_load(&current);
	return t ? t->capacity : 0;
}

size_t cf_tasks_count(void)
{
	return cf_hot.used;
}

struct cf_thread *cf_tasks_nth(size_t i)
{
	return &atomic_load_explicit(&current, memory_order_relaxed)->entry[i];
}

struct cf_thread *cf_tasks_find(pid_t tid)
{
	struct table *t = atomic_load_explicit(&current, memory_order_acquire);
	if (!t || tid <= 0)
		return NULL;
	for (size_t i = slot_of(t, tid), n = 0; n < t->capacity;
	     i = (i + 1) & (t->capacity - 1), n++) {
		int32_t x = atomic_load_explicit(&t->index[i],
						 memory_order_acquire);
		if (x == 0)
			return NULL;
		if ((size_t)x > t->capacity / 2)
			continue;         /* never written so; be safe */
		struct cf_thread *e = &t->entry[x - 1];
		if (atomic_load_explicit(&e->tid, memory_order_relaxed) == tid)
			return e;
	}
	return NULL;
}

/* Driver only.  Returns NULL when the table is half full: the caller backs
 * off, grows it and starts again.  The entry is complete (its tid set)
 * before the index slot that leads to it is published. */
struct cf_thread *cf_tasks_insert(pid_t tid, bool *fresh)
{
	struct table *tab = atomic_load(&current);
	struct cf_thread *t = cf_tasks_find(tid);
	*fresh = false;
	if (t)
		return t;
	if ((cf_hot.used + 1) * 2 > tab->capacity)
		return NULL;
	size_t i = slot_of(tab, tid);
	while (atomic_load_explicit(&tab->index[i], memory_order_relaxed))
		i = (i + 1) & (tab->capacity - 1);
	t = &tab->entry[cf_hot.used];
	atomic_store_explicit(&t->tid, tid, memory_order_relaxed);
	atomic_store_explicit(&tab->index[i], (int32_t)(cf_hot.used + 1),
			      memory_order_release);
	cf_hot.used++;
	*fresh = true;
	return t;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* getdents64 into a buffer of our own: opendir would allocate, and the
 * driver runs while allocator locks are held by the atfork prepare
 * handlers. */
#define SCAN_BUF 16384
int cf_tasks_scan(void (*fn)(pid_t tid, void *arg), void *arg)
{
	static char *buf;
	if (!buf && !(buf = cf_map_wiped(SCAN_BUF)))
		return -ENOMEM;
	long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/task",
			  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int count = 0;
	for (;;) {
		long n = syscall(SYS_getdents64, fd, buf, SCAN_BUF);
		if (n < 0) {
			int e = errno;
			cf_close((int)fd);
			return -e;
		}
		if (n == 0)
			break;
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (void *)(buf + off);
			off += d->d_reclen;
			pid_t tid = 0;
			const char *c = d->d_name;
			if (*c < '1' || *c > '9')
				continue;
			for (; *c >= '0' && *c <= '9'; c++)
				tid = tid * 10 + (*c - '0');
			fn(tid, arg);
			count++;
		}
	}
	cf_close((int)fd);
	return count;
}

/* Fields after the name are parsed from the last ')': a thread may name
 * itself "a) R 1 (". */
unsigned long cf_tasks_nlink(void)
{
	struct stat st;
	return stat("/proc/self/task", &st) == 0 ? st.st_nlink : 0;
}

int cf_task_info(pid_t tid, struct cf_task_info *ti)
{
	char path[48], buf[1024];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	ssize_t n = cf_read_file(path, buf, sizeof buf);
	if (n < 0)
		return (int)n;
	char *p = strrchr(buf, ')');
	char *open = strchr(buf, '(');
	if (!p || !open || p[1] != ' ')
		return -EINVAL;
	size_t len = (size_t)(p - open - 1);
	if (len >= sizeof ti->name)
		len = sizeof ti->name - 1;
	memcpy(ti->name, open + 1, len);
	ti->name[len] = '\0';
	p += 2;
	ti->state = *p;
	/* state ppid pgrp session tty_nr tpgid flags: flags is the 7th. */
	for (int field = 1; field < 7; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EINVAL;
		p++;
	}
	ti->flags = strtoul(p, NULL, 10);
	return 0;
}

/*
 * The classification cache: tid -> fate, so that /proc/self/task/TID/stat
 * is read once per thread rather than at every cfork.  A tid reused by a
 * kernel worker before the cache forgets it costs one signal that is never
 * taken; the driver then reads stat, finds the worker and remembers that.
 * When the cache fills, it is emptied.
 */
#define KNOWN_CAP 8192u
struct known {
	int32_t tid;
	int32_t fate;
};
static struct known *known;
static size_t nknown;

static size_t known_slot(pid_t tid)
{
	return ((uint32_t)tid * 2654435761u) & (KNOWN_CAP - 1);
}

void cf_tasks_remember(pid_t tid, int fate)
{
	if (!known && !(known = cf_map(KNOWN_CAP * sizeof *known)))
		return;
	if (nknown * 2 >= KNOWN_CAP) {
		memset(known, 0, KNOWN_CAP * sizeof *known);
		nknown = 0;
	}
	size_t i = known_slot(tid);
	while (known[i].tid && known[i].tid != tid)
		i = (i + 1) & (KNOWN_CAP - 1);
	if (!known[i].tid)
		nknown++;
	known[i] = (struct known){ tid, fate };
}

int cf_tasks_recall(pid_t tid)
{
	if (!known)
		return -1;
	for (size_t i = known_slot(tid); known[i].tid;
	     i = (i + 1) & (KNOWN_CAP - 1))
		if (known[i].tid == tid)
			return known[i].fate;
	return -1;
}

/* /proc/self/task/TID/syscall: "nr arg1 ... arg6 sp pc" while the thread
 * is in a system call, "running" or "-1 ..." otherwise. */
int cf_task_syscall(pid_t tid, long *nr, unsigned long args[6])
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
	ssize_t n = cf_read_file(path, buf, sizeof buf);
	if (n <= 0)
		return n < 0 ? (int)n : -ENOENT;
	if (buf[0] < '0' || buf[0] > '9')
		return -EAGAIN;
	char *p = buf;
	*nr = strtol(p, &p, 10);
	for (int i = 0; i < 6; i++)
		args[i] = strtoul(p, &p, 16);
	return 0;
}
