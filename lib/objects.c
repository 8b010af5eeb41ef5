/* SPDX-License-Identifier: MIT */
/*
 * The loaded objects, as the stack walk and the safe-point rule need them:
 * where each one's code and unwind table lie, which are libc and the
 * loader, and which libc functions are known to hold no internal lock.
 *
 * The snapshot is taken with dl_iterate_phdr outside any signal handler (at
 * start-up, and by the driver before it signals anyone when dlopen or
 * dlclose has happened since) and read by handlers without a lock.
 */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CF_MAX_OBJECTS 1024
#define CF_MAX_FNS 4096

static struct cf_object objects[CF_MAX_OBJECTS];
static size_t nobjects;
static unsigned long long seen_adds, seen_subs;
static _Atomic uint32_t generation;
static bool initialised;
static uintptr_t startup_text[CF_MAX_OBJECTS];
static size_t nstartup;

struct fn_range {
	uintptr_t lo, hi;
	unsigned class;
};
static struct fn_range fns[CF_MAX_FNS];
static size_t nfns;

/*
 * The allow-lists.  A name may be in several.
 *
 * ANYTIME: functions that never hold a libc-internal lock: plain system call
 * wrappers, and waits on objects the program owns (its mutexes, condition
 * variables, semaphores).  A thread whose outermost libc frame is one of
 * these can be parked at any instruction.
 *
 * BLOCKING: system call wrappers that block.  A thread stopped while blocked
 * in one of these (whatever libc function called it: fgets on a terminal,
 * getaddrinfo waiting for a reply, system() in waitpid) is not running and
 * cannot write memory; what it holds is at most a FILE lock, which fork
 * resets in the child.  DENY below removes the callers that can block
 * there while holding a lock that fork() itself must take.
 *
 * CALLBACK: functions that call back into the program without holding any
 * lock (the thread's start routine, main, qsort's comparison, a fork
 * handler).
 */
static const char *const anytime_blocking[] = {
	"read", "__read", "write", "__write", "readv", "writev", "pread",
	"pread64", "pwrite", "pwrite64", "preadv", "preadv64", "pwritev",
	"pwritev64", "preadv2", "pwritev2", "__read_nocancel",
	"__write_nocancel", "__pread64_nocancel", "recv", "recvfrom",
	"recvmsg", "recvmmsg", "send", "sendto", "sendmsg", "sendmmsg",
	"accept", "accept4", "connect", "poll", "__poll", "ppoll", "select",
	"pselect", "epoll_wait", "epoll_pwait", "epoll_pwait2", "nanosleep",
	"__nanosleep", "clock_nanosleep", "usleep", "sleep", "pause",
	"sigsuspend", "__sigsuspend", "sigwait", "sigwaitinfo", "sigtimedwait",
	"wait", "waitpid", "__waitpid", "wait3", "wait4", "waitid", "msgrcv",
	"msgsnd", "semop", "semtimedop", "flock", "lockf", "lockf64", "fcntl",
	"fcntl64", "__fcntl", "open", "open64", "__open", "__open64", "openat",
	"openat64", "__open_nocancel", "__open64_nocancel", "close", "__close",
	"__close_nocancel", "fsync", "fdatasync", "sync", "syncfs", "ioctl",
	"splice", "tee", "vmsplice", "sendfile", "sendfile64",
	"copy_file_range", "mq_receive", "mq_send", "mq_timedreceive",
	"mq_timedsend", "syscall", "thrd_sleep", "tcdrain",
	NULL,
};

static const char *const anytime_only[] = {
	"getpid", "gettid", "getppid", "sched_yield", "clock_gettime",
	"__clock_gettime", "gettimeofday", "time", "pthread_self",
	"pthread_mutex_lock", "__pthread_mutex_lock", "pthread_mutex_trylock",
	"pthread_mutex_timedlock", "pthread_mutex_clocklock",
	"pthread_mutex_unlock", "__pthread_mutex_unlock", "pthread_cond_wait",
	"pthread_cond_timedwait", "pthread_cond_clockwait",
	"pthread_cond_signal", "pthread_cond_broadcast",
	"pthread_rwlock_rdlock", "pthread_rwlock_wrlock",
	"pthread_rwlock_timedrdlock", "pthread_rwlock_timedwrlock",
	"pthread_rwlock_clockrdlock", "pthread_rwlock_clockwrlock",
	"pthread_rwlock_tryrdlock", "pthread_rwlock_trywrlock",
	"pthread_rwlock_unlock", "pthread_barrier_wait", "pthread_spin_lock",
	"pthread_spin_trylock", "pthread_spin_unlock", "sem_wait",
	"sem_timedwait", "sem_clockwait", "sem_trywait", "sem_post",
	"pthread_once", "__pthread_once", "call_once", "mtx_lock",
	"mtx_timedlock", "mtx_trylock", "mtx_unlock", "cnd_wait",
	"cnd_timedwait", "cnd_signal", "cnd_broadcast", "thrd_yield",
	NULL,
};

/* The signal API: system call wrappers and register moves, no lock.  The
 * wrappers in sigmask.c call them with a copy of the program's set on
 * their own stack, so the caller is this library and the call cannot be
 * redirected: a thread looping on swapcontext or pthread_sigmask takes
 * our signal as the system call returns, inside them, nearly every time. */
static const char *const anytime_signals[] = {
	"sigprocmask", "pthread_sigmask", "sigaction", "__sigaction",
	"sigaltstack", "sigpending", "signalfd", "getcontext", "setcontext",
	"swapcontext",
	NULL,
};

/* Computations that take no lock at all, which threads spend their time
 * in while they work (string and memory functions, character classes) or
 * pass through while they leave a signal handler (setjmp and longjmp).
 * Many are IFUNCs: the implementation the loader chose is classified. */
static const char *const anytime_pure[] = {
	"memcpy", "__memcpy_chk", "memmove", "__memmove_chk", "mempcpy",
	"__mempcpy", "__mempcpy_chk", "memset", "__memset_chk", "bzero",
	"explicit_bzero", "memcmp", "bcmp", "__memcmpeq", "memchr", "memrchr",
	"rawmemchr", "memmem", "strlen", "strnlen", "strcmp", "strncmp",
	"strcasecmp", "strncasecmp", "strchr", "strchrnul", "strrchr",
	"strstr", "strcasestr", "strcpy", "__strcpy_chk", "strncpy",
	"__strncpy_chk", "stpcpy", "__stpcpy_chk", "stpncpy", "strcat",
	"__strcat_chk", "strncat", "strspn", "strcspn", "strpbrk", "strsep",
	"strtok_r", "wmemset", "wmemcpy", "wmemmove", "wmemchr", "wmemcmp",
	"wcslen", "wcsnlen", "wcscmp", "wcsncmp", "wcschr", "wcsrchr",
	"wcscpy", "ffs", "ffsl", "ffsll", "abs", "labs", "llabs",
	"toupper", "tolower", "__ctype_b_loc", "__ctype_toupper_loc",
	"__ctype_tolower_loc", "__errno_location", "setjmp", "_setjmp",
	"__sigsetjmp", "longjmp", "_longjmp", "siglongjmp", "__longjmp_chk",
	NULL,
};

static const char *const callback[] = {
	"__libc_start_main", "fork", "__libc_fork", "qsort", "qsort_r",
	"bsearch", "lfind", "lsearch", "tsearch", "tfind", "tdelete",
	"twalk", "twalk_r", "tdestroy", "pthread_once", "__pthread_once",
	"call_once",
	NULL,
};

/* Callers that may block in a write while holding the stdio list lock,
 * which fork() takes after the quiesce: never parked while blocked. */
static const char *const deny_blocked[] = {
	"fflush", "_IO_fflush", "fflush_unlocked", "_IO_flush_all",
	"_IO_flush_all_linebuffered", "exit", "abort", "fcloseall",
	"_IO_cleanup", "quick_exit",
	NULL,
};

/* Each list and the class its names get. */
static const struct {
	const char *const *names;
	unsigned class;
} lists[] = {
	{ anytime_blocking, CF_FN_ANYTIME | CF_FN_BLOCKING },
	{ anytime_only, CF_FN_ANYTIME },
	{ anytime_signals, CF_FN_ANYTIME },
	{ anytime_pure, CF_FN_ANYTIME },
	{ callback, CF_FN_CALLBACK },
	{ deny_blocked, CF_FN_DENY },
};

static unsigned class_of_name(const char *name)
{
	unsigned c = 0;
	for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
		for (const char *const *p = lists[i].names; *p; p++)
			if (!strcmp(*p, name))
				c |= lists[i].class;
	return c;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static bool has_base(const char *path, const char *prefix)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	return !strncmp(base, prefix, strlen(prefix));
}

static uintptr_t dyn_ptr(uintptr_t base, ElfW(Addr) v)
{
	/* ld.so relocates most objects' dynamic sections in place, but not
	 * all (the vDSO's is read-only). */
	return v < base ? base + v : v;
}

/* Number of dynamic symbols, from the GNU hash table. */
static size_t gnu_hash_count(const uint32_t *h)
{
	uint32_t nbuckets = h[0], symoffset = h[1], bloom = h[2];
	const uint32_t *buckets = h + 4 + bloom * (sizeof(ElfW(Addr)) / 4);
	const uint32_t *chain = buckets + nbuckets;
	uint32_t last = 0;
	for (uint32_t i = 0; i < nbuckets; i++)
		if (buckets[i] > last)
			last = buckets[i];
	if (last < symoffset)
		return symoffset;
	while (!(chain[last - symoffset] & 1))
		last++;
	return last + 1;
}

static int fn_cmp(const void *a, const void *b)
{
	const struct fn_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* An object's dynamic symbol table, as its dynamic section gives it. */
struct dynsyms {
	const ElfW(Sym) *sym;
	const char *str;
	const ElfW(Half) *versym;    /* NULL when unversioned */
	size_t count;
};

static bool read_dynsyms(const struct dl_phdr_info *info, struct dynsyms *d)
{
	const ElfW(Dyn) *dyn = NULL;
	const uint32_t *gnu_hash = NULL;
	memset(d, 0, sizeof *d);
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			dyn = (const void *)(info->dlpi_addr +
					     info->dlpi_phdr[i].p_vaddr);
	for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
		uintptr_t v = dyn_ptr(info->dlpi_addr, dyn->d_un.d_ptr);
		if (dyn->d_tag == DT_SYMTAB)
			d->sym = (const void *)v;
		else if (dyn->d_tag == DT_STRTAB)
			d->str = (const void *)v;
		else if (dyn->d_tag == DT_GNU_HASH)
			gnu_hash = (const void *)v;
		else if (dyn->d_tag == DT_VERSYM)
			d->versym = (const void *)v;
	}
	if (!d->sym || !d->str || !gnu_hash)
		return false;
	d->count = gnu_hash_count(gnu_hash);
	return true;
}

/* The extent of the function at entry, from the FDE that the object's
 * .eh_frame_hdr table lists for it (libc's implementations of IFUNCs are
 * local symbols: no size in the dynamic symbol table).  0 if none. */
static size_t fde_extent(const struct cf_object *o, uintptr_t entry)
{
	const int32_t *t = (const int32_t *)o->eh_table;
	size_t lo = 0, hi = o->eh_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uintptr_t at = o->eh_hdr + (intptr_t)t[2 * mid];
		if (entry < at) {
			hi = mid;
		} else if (entry > at) {
			lo = mid + 1;
		} else {
			/* length, CIE pointer, pc_begin (pcrel sdata4, as the
			 * table's own check below confirms), pc_range. */
			uintptr_t fde = o->eh_hdr + (intptr_t)t[2 * mid + 1];
			int32_t begin;
			uint32_t len, range;
			memcpy(&len, (const void *)fde, 4);
			memcpy(&begin, (const void *)(fde + 8), 4);
			memcpy(&range, (const void *)(fde + 12), 4);
			return len != 0xffffffffu &&
			       fde + 8 + (intptr_t)begin == entry ? range : 0;
		}
	}
	return 0;
}

static void add_fn(uintptr_t lo, size_t size, unsigned c)
{
	/* Aliases (read, __read, and versions) share one range. */
	for (size_t j = 0; j < nfns; j++)
		if (fns[j].lo == lo) {
			fns[j].class |= c;
			return;
		}
	if (nfns < CF_MAX_FNS && size)
		fns[nfns++] = (struct fn_range){ lo, lo + size, c };
}

static void read_libc_symbols(struct dl_phdr_info *info,
			      const struct cf_object *o)
{
	struct dynsyms d;
	if (!read_dynsyms(info, &d))
		return;
	for (size_t i = 1; i < d.count; i++) {
		const ElfW(Sym) *s = &d.sym[i];
		unsigned type = ELF64_ST_TYPE(s->st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || !s->st_value)
			continue;
		unsigned c = class_of_name(d.str + s->st_name);
		if (!c)
			continue;
		uintptr_t lo = info->dlpi_addr + s->st_value;
		if (type == STT_FUNC) {
			add_fn(lo, s->st_size, c);
		} else if (o->eh_hdr) {
			/* The implementation the loader chose for this CPU:
			 * the resolver is called as ld.so calls it. */
			uintptr_t impl = ((uintptr_t (*)(void))lo)();
			add_fn(impl, fde_extent(o, impl), c);
		}
	}
	/* Insertion sort: qsort may call malloc, and this can run inside an
	 * allocator's own initialisation (its pthread_atfork call). */
	for (size_t i = 1; i < nfns; i++) {
		struct fn_range v = fns[i];
		size_t j = i;
		for (; j > 0 && fn_cmp(&fns[j - 1], &v) > 0; j--)
			fns[j] = fns[j - 1];
		fns[j] = v;
	}
}

struct sym_query {
	const char *name;
	void *addr;
};

/* The default version of a symbol of libc, found without dlsym (which may
 * allocate, and which the program's own definitions would shadow). */
static int find_sym(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct sym_query *q = arg;
	struct dynsyms d;
	if (!has_base(info->dlpi_name ? info->dlpi_name : "", "libc.so"))
		return 0;
	if (!read_dynsyms(info, &d))
		return 1;
	for (size_t i = 1; i < d.count; i++)
		if (d.sym[i].st_value &&
		    !strcmp(d.str + d.sym[i].st_name, q->name) &&
		    !(d.versym && (d.versym[i] & 0x8000)))
			q->addr = (void *)(info->dlpi_addr + d.sym[i].st_value);
	(void)size;
	return 1;
}

void *cf_libc_sym(const char *name)
{
	struct sym_query q = { name, NULL };
	dl_iterate_phdr(find_sym, &q);
	return q.addr;
}

/* Reads the header of .eh_frame_hdr.  Only the encodings every Linux
 * toolchain emits are accepted; other objects are walked without a table. */
static void read_eh_hdr(struct cf_object *o)
{
	const uint8_t *h = (const uint8_t *)o->eh_hdr;
	/* version 1; eh_frame_ptr pcrel|sdata4; fde_count udata4;
	 * table datarel|sdata4. */
	if (h[0] != 1 || h[1] != 0x1b || h[2] != 0x03 || h[3] != 0x3b) {
		o->eh_hdr = 0;
		return;
	}
	uint32_t count;
	memcpy(&count, h + 8, 4);
	o->eh_count = count;
	o->eh_table = o->eh_hdr + 12;
}

struct collect {
	struct cf_object *out;
	size_t n, max;
	bool want_symbols;
};

static int collect_one(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct collect *c = arg;
	if (c->n >= c->max)
		return 1;
	struct cf_object o = { .kind = CF_OBJ_OTHER };
	o.lo = UINTPTR_MAX;
	o.text_lo = UINTPTR_MAX;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		uintptr_t hi = lo + ph->p_memsz;
		if (ph->p_type == PT_LOAD) {
			if ((ph->p_flags & (PF_R | PF_W)) == PF_R &&
			    o.nro < CF_OBJ_RO_MAX) {
				o.ro[o.nro][0] = lo;
				o.ro[o.nro++][1] = hi;
			}
			if (lo < o.lo)
				o.lo = lo;
			if (hi > o.hi)
				o.hi = hi;
			if (ph->p_flags & PF_X) {
				if (lo < o.text_lo)
					o.text_lo = lo;
				if (hi > o.text_hi)
					o.text_hi = hi;
			}
		} else if (ph->p_type == PT_GNU_EH_FRAME) {
			o.eh_hdr = lo;
		}
	}
	if (o.text_lo == UINTPTR_MAX)
		return 0;
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	/* The sanitizers' runtimes hold locks of their own around what
	 * they intercept, and have no fork handlers: they count as libc,
	 * with their interceptors classified by the same lists. */
	if (has_base(name, "libc.so"))
		o.kind = CF_OBJ_LIBC;
	else if (has_base(name, "libasan.so") || has_base(name, "libtsan.so") ||
		 has_base(name, "libubsan.so") || has_base(name, "liblsan.so") ||
		 has_base(name, "libhwasan.so"))
		o.kind = CF_OBJ_SANITIZER;
	else if (has_base(name, "ld-linux") || has_base(name, "ld64.so") ||
		 ends_with(name, "/ld.so"))
		o.kind = CF_OBJ_LD;
	else if (has_base(name, "linux-vdso") || has_base(name, "linux-gate"))
		o.kind = CF_OBJ_VDSO;
	else if ((uintptr_t)&cf_objects_refresh >= o.text_lo &&
		 (uintptr_t)&cf_objects_refresh < o.text_hi)
		o.kind = CF_OBJ_SELF;
	if (o.eh_hdr)
		read_eh_hdr(&o);
	if ((o.kind == CF_OBJ_LIBC || o.kind == CF_OBJ_SANITIZER) &&
	    c->want_symbols)
		read_libc_symbols(info, &o);
	c->out[c->n++] = o;
	(void)size;
	return 0;
}

static int obj_cmp(const void *a, const void *b)
{
	const struct cf_object *x = a, *y = b;
	return x->text_lo < y->text_lo ? -1 : x->text_lo > y->text_lo;
}

/* Insertion sort: the driver may not call qsort while allocator locks are
 * held (glibc's qsort can allocate). */
static void sort_objects(struct cf_object *o, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct cf_object v = o[i];
		size_t j = i;
		for (; j > 0 && obj_cmp(&o[j - 1], &v) > 0; j--)
			o[j] = o[j - 1];
		o[j] = v;
	}
}

static int counts(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long long *ac = arg;
	ac[0] = info->dlpi_adds;
	ac[1] = info->dlpi_subs;
	(void)size;
	return 1;
}

int cf_objects_refresh(void)
{
	unsigned long long ac[2] = { 0, 0 };
	dl_iterate_phdr(counts, ac);
	if (initialised && ac[0] == seen_adds && ac[1] == seen_subs)
		return 0;
	struct collect c = { objects, 0, CF_MAX_OBJECTS, !initialised };
	dl_iterate_phdr(collect_one, &c);
	sort_objects(objects, c.n);
	/* Start-up objects are never unloaded; later ones may be. */
	for (size_t i = 0; i < c.n; i++) {
		if (!initialised)
			startup_text[nstartup++] = objects[i].text_lo;
		objects[i].permanent = false;
		for (size_t j = 0; j < nstartup; j++)
			if (startup_text[j] == objects[i].text_lo)
				objects[i].permanent = true;
	}
	nobjects = c.n;
	seen_adds = ac[0];
	seen_subs = ac[1];
	initialised = true;
	atomic_fetch_add_explicit(&generation, 1, memory_order_release);
	return 0;
}

uint32_t cf_objects_generation(void)
{
	return atomic_load_explicit(&generation, memory_order_acquire);
}

const struct cf_object *cf_objects_find(uintptr_t ip)
{
	size_t lo = 0, hi = nobjects;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ip < objects[mid].text_lo)
			hi = mid;
		else if (ip >= objects[mid].text_hi)
			lo = mid + 1;
		else
			return &objects[mid];
	}
	return NULL;
}

/* Objects do not overlap, so the order by text_lo is also the order of
 * their whole extents. */
const uintptr_t *cf_objects_readonly(uintptr_t addr, size_t len)
{
	size_t lo = 0, hi = nobjects;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct cf_object *o = &objects[mid];
		if (addr < o->lo) {
			hi = mid;
		} else if (addr >= o->hi) {
			lo = mid + 1;
		} else {
			if (!o->permanent)
				return NULL;
			for (unsigned i = 0; i < o->nro; i++)
				if (addr >= o->ro[i][0] &&
				    addr + len <= o->ro[i][1])
					return o->ro[i];
			return NULL;
		}
	}
	return NULL;
}

/* The allow-listed libc function whose range holds ip, or NULL. */
static const struct fn_range *fn_at(uintptr_t ip)
{
	size_t lo = 0, hi = nfns;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ip < fns[mid].lo)
			hi = mid;
		else if (ip >= fns[mid].hi)
			lo = mid + 1;
		else
			return &fns[mid];
	}
	return NULL;
}

unsigned cf_objects_fn_class(uintptr_t ip)
{
	const struct fn_range *f = fn_at(ip);
	return f ? f->class : 0;
}

unsigned cf_objects_entry_class(uintptr_t addr)
{
	const struct fn_range *f = fn_at(addr);
	return f && f->lo == addr ? f->class : 0;
}
