/* SPDX-License-Identifier: MIT */
/*
 * Was libcfork loaded too late?  Its wrappers (__register_atfork,
 * pthread_atfork, pthread_sigmask, sigaction, ...) are reached only by
 * objects that find libcfork before libc in the symbol search order: when
 * it is linked into the executable or preloaded.  Loaded with dlopen, or
 * only as the dependency of another library, it comes after libc, and
 * every reference binds to libc's definitions instead: prepare handlers
 * registered with glibc then run after the quiesce (and may wait for a
 * parked thread), and a thread that blocks every signal cannot be stopped.
 *
 * The test is the order itself, not the address dlsym(RTLD_DEFAULT, ...)
 * gives: an interposer ahead of both that chains with RTLD_NEXT
 * (AddressSanitizer's) hides our definitions from dlsym but still passes
 * calls on to them.  dl_iterate_phdr lists the objects loaded at start-up
 * in the order of the global search scope (breadth first: the executable,
 * the preloads, then their dependencies) and later ones after them.
 */
#include "config.h"

#include <link.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

struct scan {
	int n;                  /* objects seen */
	int self, libc;         /* their places, -1 until seen */
	bool shim;              /* libcfork-preload.so is loaded */
};

static bool base_is(const char *path, const char *prefix)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	return !strncmp(base, prefix, strlen(prefix));
}

static bool holds(const struct dl_phdr_info *info, uintptr_t addr)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && addr >= lo &&
		    addr - lo < ph->p_memsz)
			return true;
	}
	return false;
}

static int visit(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct scan *s = arg;
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	(void)size;
	/* libc as cf_libc_sym finds it: the first object of that name. */
	if (s->libc < 0 && base_is(name, "libc.so"))
		s->libc = s->n;
	if (s->self < 0 && holds(info, (uintptr_t)&cf_loaded_late))
		s->self = s->n;
	if (base_is(name, "libcfork-preload.so"))
		s->shim = true;
	s->n++;
	return 0;
}

/* -1 unknown, else the answer: the order never changes once we are
 * loaded, so one scan serves the life of the process (and its children). */
static _Atomic int late = -1;
static _Atomic bool shim;

bool cf_loaded_late(void)
{
	int v = atomic_load_explicit(&late, memory_order_acquire);
	if (v >= 0)
		return v;
	struct scan s = { .self = -1, .libc = -1 };
	dl_iterate_phdr(visit, &s);
	/* Not found (a libc by another name): nothing to say. */
	v = s.self >= 0 && s.libc >= 0 && s.libc < s.self;
	atomic_store_explicit(&shim, s.shim, memory_order_relaxed);
	atomic_store_explicit(&late, v, memory_order_release);
	return v;
}

/* The preload shim checks the same order (lib/preload.c) and, when
 * libcfork is late, says what that means for fork() itself: one line is
 * enough. */
void cf_late_warn(void)
{
	if (!cf_loaded_late() || atomic_load_explicit(&shim,
						     memory_order_relaxed))
		return;
	cf_log("loaded after libc in the symbol search order (by dlopen, or "
	       "as a library's dependency): its pthread_atfork and signal "
	       "mask wrappers are bypassed, so cfork() may wait for a "
	       "stopped thread or fail to stop one; link libcfork into the "
	       "program or preload it");
}
