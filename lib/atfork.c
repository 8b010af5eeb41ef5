/* SPDX-License-Identifier: MIT */
/*
 * pthread_atfork registrations, kept here so that the quiesce runs after
 * every prepare handler.
 *
 * glibc runs prepare handlers newest first and takes its own locks after
 * them.  A prepare handler that runs after the quiesce waits for locks a
 * parked thread may hold (jemalloc's and tcmalloc's do), so the quiesce
 * must come after all of them; but allocators register from their own
 * initialisation, before any constructor of ours could.  So libcfork
 * defines __register_atfork (what pthread_atfork in libc_nonshared.a calls
 * through the PLT) and pthread_atfork (libc's older exported entry) under
 * glibc's version names: every registration made by an object that sees
 * libcfork first in the symbol search order comes here, whenever it is
 * made, and our code works before our constructor has run.
 *
 * cfork() runs these handlers itself around its quiesce, in glibc's order.
 * A plain fork() runs them through our one registration with glibc, made
 * at the first registration or at load, which is therefore older than any
 * other and lets the ones glibc holds directly run first.
 *
 * __cxa_finalize is wrapped to drop the handlers of an object being
 * unloaded, as glibc does for its own list.  Handlers registered with glibc
 * directly (by objects loaded before libcfork, or when libcfork itself is
 * loaded with dlopen) still run inside fork(), after a cfork's quiesce.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

struct entry {
	void (*prepare)(void);
	void (*parent)(void);
	void (*child)(void);
	const void *dso;           /* the caller's __dso_handle, or NULL */
	const void *object;        /* pthread_atfork: the caller's link map */
};

static struct entry *entries;          /* from mmap: see cf_map */
static size_t nentries, capentries;
/* The locks, alone on a page that a child gets zeroed (MADV_WIPEONFORK,
 * from cf_atfork_init): zero is the reset the child needs anyway, and the
 * parent's unlock after each fork then takes no copy-on-write fault. */
static struct {
	_Atomic uint32_t reg_lock;     /* entries, nentries */
	_Atomic uint32_t fork_lock;    /* one fork's handlers at a time */
	_Atomic pid_t fork_owner;
	unsigned fork_depth;           /* nested forks of the owner */
	char pad[4096 - 16];
} locks __attribute__((aligned(4096)));
static _Atomic int registered;

CF_TLS bool cf_in_cfork;
static CF_TLS size_t plain_fork_n;     /* a plain fork's snapshot */

static void tramp_prepare(void);
static void tramp_parent(void);
static void tramp_child(void);

extern void *__dso_handle;
int __register_atfork(void (*prepare)(void), void (*parent)(void),
		      void (*child)(void), void *dso);
void __cxa_finalize(void *dso);

int cf_atfork_init(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong(&registered, &expect, 1))
		return 0;
	int (*real)(void (*)(void), void (*)(void), void (*)(void), void *) =
		(int (*)(void (*)(void), void (*)(void), void (*)(void),
			 void *))cf_libc_sym("__register_atfork");
	if (!real) {
		atomic_store(&registered, 0);
		return -ENOSYS;
	}
	int e = real(tramp_prepare, tramp_parent, tramp_child, &__dso_handle);
	cf_wipe_on_fork(&locks, sizeof locks);
	return e ? -e : 0;
}

bool cf_atfork_owner(void)
{
	pid_t owner = atomic_load_explicit(&locks.fork_owner,
					   memory_order_relaxed);
	return owner != 0 && owner == cf_gettid();
}

size_t cf_atfork_prepare(void)
{
	/* A handler may itself fork (glibc lets it): the lock is
	 * recursive for its owner. */
	if (cf_atfork_owner())
		locks.fork_depth++;
	else
		cf_lock(&locks.fork_lock);
	atomic_store_explicit(&locks.fork_owner, cf_gettid(),
			      memory_order_relaxed);
	cf_lock(&locks.reg_lock);
	size_t n = nentries;
	cf_unlock(&locks.reg_lock);
	/* Newest first; the lock is dropped around each call, as a handler
	 * may register another. */
	for (size_t i = n; i-- > 0;) {
		cf_lock(&locks.reg_lock);
		void (*f)(void) = entries[i].prepare;
		cf_unlock(&locks.reg_lock);
		if (f)
			f();
	}
	return n;
}

void cf_atfork_parent(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cf_lock(&locks.reg_lock);
		void (*f)(void) = entries[i].parent;
		cf_unlock(&locks.reg_lock);
		if (f)
			f();
	}
	if (locks.fork_depth) {
		locks.fork_depth--;
		return;
	}
	atomic_store_explicit(&locks.fork_owner, 0, memory_order_relaxed);
	cf_unlock(&locks.fork_lock);
}

/* The child has one thread: locks held by others are simply reset. */
void cf_atfork_child(size_t n)
{
	atomic_store(&locks.reg_lock, 0);
	atomic_store(&locks.fork_lock, 0);
	atomic_store(&locks.fork_owner, 0);
	locks.fork_depth = 0;
	for (size_t i = 0; i < n; i++)
		if (entries[i].child)
			entries[i].child();
}

static void tramp_prepare(void)
{
	if (!cf_in_cfork)
		plain_fork_n = cf_atfork_prepare();
}

static void tramp_parent(void)
{
	if (!cf_in_cfork)
		cf_atfork_parent(plain_fork_n);
}

static void tramp_child(void)
{
	if (!cf_in_cfork)
		cf_atfork_child(plain_fork_n);
}

static int append(const struct entry *e)
{
	if (nentries == capentries) {
		size_t cap = capentries ? capentries * 2 : 256;
		struct entry *p = cf_map(cap * sizeof *p);
		if (!p)
			return ENOMEM;
		if (entries)
			memcpy(p, entries, nentries * sizeof *p);
		/* The old array is not unmapped: a fork may be reading it
		 * between two locked sections. */
		entries = p;
		capentries = cap;
	}
	entries[nentries++] = *e;
	return 0;
}

/* The object an address lies in (_dl_find_object takes no lock), or the
 * address itself when it lies in none. */
static const void *object_of(const void *addr)
{
	struct dl_find_object fo;
	if (addr && _dl_find_object((void *)addr, &fo) == 0)
		return fo.dlfo_link_map;
	return addr;
}

static int add(void (*prepare)(void), void (*parent)(void),
	       void (*child)(void), const void *dso, const void *object)
{
	int e = -cf_atfork_init();
	if (e)
		return e;
	struct entry en = { prepare, parent, child, dso, object };
	cf_lock(&locks.reg_lock);
	e = append(&en);
	cf_unlock(&locks.reg_lock);
	return e;
}

/* A fully static link (-static, glibc's libc.a) cannot work: libcfork
 * finds libc's functions in libc.so.6's dynamic symbol table, and its
 * unwinder walks the objects the dynamic loader lists.  The link fails
 * anyway, as libc.a's fork.o pulls in its own __register_atfork beside
 * ours ("multiple definition"); this warning, which the linker prints
 * when something references glibc's static-only __run_prefork_handlers
 * (libc.a's fork() does, libc.so.6 exports no such name), says why. */
__asm__(".section .gnu.warning.__run_prefork_handlers\n\t"
	".string \"libcfork cannot be linked with -static (glibc's libc.a): "
	"it needs libc.so.6 and the dynamic loader; link glibc dynamically "
	"(see cfork(3), NOTES)\"\n\t"
	".previous");

/* dso is the caller's __dso_handle, which __cxa_finalize will be given
 * when the caller is unloaded. */
__attribute__((visibility("default")))
int __register_atfork(void (*prepare)(void), void (*parent)(void),
		      void (*child)(void), void *dso)
{
	return add(prepare, parent, child, dso, NULL);
}

/* glibc 2.34 and later have pthread_atfork only as a compatibility
 * symbol, and new code gets it from libc_nonshared.a; but binaries that
 * reference it without a version (tcmalloc does, weakly) find only a
 * default version, so ours is one.  A program or plugin linked against
 * libcfork binds to it too, and has no __dso_handle to give: the caller's
 * own object is found from the return address instead. */
__attribute__((visibility("default")))
int pthread_atfork(void (*prepare)(void), void (*parent)(void),
		   void (*child)(void))
{
	return add(prepare, parent, child, NULL,
		   object_of(__builtin_return_address(0)));
}

/* Handlers of an unloaded object are cleared, not removed, so that a fork
 * walking the array by index between two locked sections stays in step. */
__attribute__((visibility("default")))
void __cxa_finalize(void *dso)
{
	static void (*real)(void *);
	if (dso) {
		const void *object = object_of(dso);
		cf_lock(&locks.reg_lock);
		for (size_t i = 0; i < nentries; i++)
			if (entries[i].dso == dso ||
			    (!entries[i].dso && entries[i].object == object))
				entries[i] = (struct entry){ 0 };
		cf_unlock(&locks.reg_lock);
	}
	if (!real)
		real = (void (*)(void *))cf_libc_sym("__cxa_finalize");
	if (real)
		real(dso);
}
