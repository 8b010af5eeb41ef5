/* SPDX-License-Identifier: MIT */
/*
 * A stack walk that takes no lock and allocates nothing, so that it can run
 * in a signal handler that interrupted any code at all.
 *
 * libunwind's local unwinder cannot be used there: it takes its own mutex
 * and then the loader's lock through dl_iterate_phdr, and a thread
 * interrupted inside dlclose holds the loader lock while it waits, in its
 * own handler, for that mutex.  Its generic interface lets us supply every
 * accessor instead: unwind tables are found in the snapshot objects.c took
 * before any thread was signalled, registers come from the signal context,
 * and memory is read only after the page is known to be readable.  The
 * caching policy is UNW_CACHE_NONE, as libunwind's caches take locks.  (Not
 * UNW_CACHE_PER_THREAD either: libunwind built without
 * --enable-per-thread-cache, as Debian's is, then uses the global cache
 * without its lock.)
 *
 * A thread that has not run since its last walk (an idle one, between two
 * cforks) would be walked again to the same frames: the walk is a function
 * of the registers and words it reads and of the objects snapshot.  So the
 * last walk of each thread is kept with those inputs (see "memo" below),
 * and when they are all as they were, its frames are handed over again
 * instead.
 */
#include "config.h"

#include <errno.h>
#include <libunwind.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

/* Exported by libunwind-x86_64 but not declared by its headers. */
extern int _Ux86_64_dwarf_search_unwind_table(unw_addr_space_t, unw_word_t,
					      unw_dyn_info_t *,
					      unw_proc_info_t *, int, void *);

static unw_addr_space_t as;

/* What is known to be readable during one walk: the read-only segment
 * read last (an unwind table is read a word at a time, a byte at a time
 * when instructions are decoded), and the stack pages checked. */
#define CF_PAGES 8
struct memo;
struct walk {
	const ucontext_t *uc;
	uintptr_t ro_lo, ro_hi;
	uintptr_t pages[CF_PAGES];
	unsigned npages, next;
	struct memo *rec;             /* the walk's inputs go there */
	bool unrecordable;            /* too many, or a read failed */
};

static void note_reg(struct walk *w, unw_regnum_t reg, uintptr_t val);
static void note_mem(struct walk *w, uintptr_t addr);

/* How a page is checked: rt_sigprocmask copies the new set from user
 * memory before it looks at how, so with an invalid how it reads one word
 * and changes nothing: EFAULT when the page cannot be read (unmapped, or
 * PROT_NONE like a guard page), EINVAL when it can.  It costs a tenth of
 * process_vm_readv, which needs the pid and pins the page.  The method is
 * tried on a page of each kind once (a sandbox that answers EINVAL
 * without reading would pass every page), and where it fails
 * process_vm_readv, then mincore, are used. */
enum { CHECK_SIGPROCMASK, CHECK_VM_READV, CHECK_MINCORE };
static _Atomic int check_method = CHECK_VM_READV;

static long read_check(uintptr_t page)
{
	return cf_raw_syscall6(SYS_rt_sigprocmask, -1, (long)page, 0, 8, 0, 0);
}

static void choose_check_method(void)
{
	void *p = (void *)cf_raw_syscall6(SYS_mmap, 0, 4096, PROT_NONE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((uintptr_t)p > -4096UL)
		return;
	uintptr_t here = (uintptr_t)&p & ~4095UL;
	if (read_check((uintptr_t)p) == -EFAULT && read_check(here) == -EINVAL)
		atomic_store_explicit(&check_method, CHECK_SIGPROCMASK,
				      memory_order_relaxed);
	cf_raw_syscall6(SYS_munmap, (long)p, 4096, 0, 0, 0, 0);
}

static bool page_readable(uintptr_t page)
{
	if (page == 0)          /* and a NULL set would read nothing */
		return false;
	int method = atomic_load_explicit(&check_method, memory_order_relaxed);
	if (method == CHECK_SIGPROCMASK) {
		long r = read_check(page);
		if (r == -EINVAL || r == -EFAULT)
			return r == -EINVAL;
		method = CHECK_VM_READV;
		atomic_store_explicit(&check_method, method,
				      memory_order_relaxed);
	}
	char byte;
	if (method == CHECK_VM_READV) {
		/* Unlike mincore, this sees PROT_NONE guard pages too. */
		struct iovec local = { &byte, 1 };
		struct iovec remote = { (void *)page, 1 };
		long n = syscall(SYS_process_vm_readv, getpid(), &local, 1UL,
				 &remote, 1UL, 0UL);
		if (n == 1)
			return true;
		if (errno == EFAULT || errno == ESRCH)
			return false;
		/* ENOSYS or EPERM: seccomp */
		atomic_store_explicit(&check_method, CHECK_MINCORE,
				      memory_order_relaxed);
	}
	unsigned char vec;
	return syscall(SYS_mincore, (void *)page, 4096UL, &vec) == 0;
}

/* The read-only segments of start-up objects never change: words read
 * there are not inputs of a walk worth keeping. */
static bool immutable(struct walk *w, uintptr_t addr, size_t len)
{
	if (addr >= w->ro_lo && addr + len <= w->ro_hi)
		return true;
	const uintptr_t *seg = cf_objects_readonly(addr, len);
	if (!seg)
		return false;
	w->ro_lo = seg[0];
	w->ro_hi = seg[1];
	return true;
}

static bool readable(struct walk *w, uintptr_t addr, size_t len)
{
	if (addr >= w->ro_lo && addr + len <= w->ro_hi)
		return true;
	const uintptr_t *seg = cf_objects_readonly(addr, len);
	if (seg) {
		w->ro_lo = seg[0];
		w->ro_hi = seg[1];
		return true;
	}
	for (uintptr_t p = addr & ~4095UL; p < addr + len; p += 4096) {
		bool hit = false;
		for (unsigned i = 0; i < w->npages; i++)
			if (w->pages[i] == p)
				hit = true;
		if (hit)
			continue;
		if (!page_readable(p))
			return false;
		w->pages[w->next] = p;
		w->next = (w->next + 1) % CF_PAGES;
		if (w->npages < CF_PAGES)
			w->npages++;
	}
	return true;
}

bool cf_mem_readable(uintptr_t addr, size_t len)
{
	struct walk w = { 0 };
	return readable(&w, addr, len);
}

CF_NO_ASAN uintptr_t cf_stack_word(uintptr_t addr)
{
	/* libunwind reads code too, at any alignment. */
	const struct __attribute__((packed, may_alias)) { uintptr_t w; } *p =
		(const void *)addr;
	return p->w;
}

static int access_mem(unw_addr_space_t a, unw_word_t addr, unw_word_t *val,
		      int write, void *arg)
{
	struct walk *w = arg;
	if (write || !readable(w, addr, sizeof *val)) {
		w->unrecordable = true;
		return -UNW_EINVAL;
	}
	*val = cf_stack_word(addr);
	if (!immutable(w, addr, sizeof *val))
		note_mem(w, addr);
	return 0;
}

/* libunwind's x86-64 register numbers in the order of ucontext's gregs. */
static int greg_of(unw_regnum_t reg)
{
	static const int map[] = {
		[UNW_X86_64_RAX] = REG_RAX, [UNW_X86_64_RDX] = REG_RDX,
		[UNW_X86_64_RCX] = REG_RCX, [UNW_X86_64_RBX] = REG_RBX,
		[UNW_X86_64_RSI] = REG_RSI, [UNW_X86_64_RDI] = REG_RDI,
		[UNW_X86_64_RBP] = REG_RBP, [UNW_X86_64_RSP] = REG_RSP,
		[UNW_X86_64_R8] = REG_R8,   [UNW_X86_64_R9] = REG_R9,
		[UNW_X86_64_R10] = REG_R10, [UNW_X86_64_R11] = REG_R11,
		[UNW_X86_64_R12] = REG_R12, [UNW_X86_64_R13] = REG_R13,
		[UNW_X86_64_R14] = REG_R14, [UNW_X86_64_R15] = REG_R15,
		[UNW_X86_64_RIP] = REG_RIP,
	};
	if (reg < 0 || reg > UNW_X86_64_RIP)
		return -1;
	return map[reg];
}

static int access_reg(unw_addr_space_t a, unw_regnum_t reg, unw_word_t *val,
		      int write, void *arg)
{
	struct walk *w = arg;
	int g = greg_of(reg);
	if (write || g < 0) {
		w->unrecordable = true;
		return -UNW_EBADREG;
	}
	*val = (unw_word_t)w->uc->uc_mcontext.gregs[g];
	note_reg(w, reg, *val);
	return 0;
}

static int access_fpreg(unw_addr_space_t a, unw_regnum_t reg,
			unw_fpreg_t *val, int write, void *arg)
{
	return -UNW_EBADREG;
}

static int find_proc_info(unw_addr_space_t a, unw_word_t ip,
			  unw_proc_info_t *pi, int need_unwind_info, void *arg)
{
	const struct cf_object *o = cf_objects_find(ip);
	if (!o || !o->eh_hdr)
		return -UNW_ENOINFO;
	if (!o->permanent) {
		/* Whether the table is still there is an input too. */
		if (!readable(arg, o->eh_hdr, 12)) {
			((struct walk *)arg)->unrecordable = true;
			return -UNW_ENOINFO;
		}
		note_mem(arg, o->eh_hdr);
		note_mem(arg, o->eh_hdr + 4);
	}
	unw_dyn_info_t di = {
		.start_ip = o->text_lo,
		.end_ip = o->text_hi,
		.format = UNW_INFO_FORMAT_REMOTE_TABLE,
		.u.rti = {
			.segbase = o->eh_hdr,
			.table_len = o->eh_count * 8 / sizeof(unw_word_t),
			.table_data = o->eh_table,
		},
	};
	return _Ux86_64_dwarf_search_unwind_table(a, ip, &di, pi,
						  need_unwind_info, arg);
}

static void put_unwind_info(unw_addr_space_t a, unw_proc_info_t *pi,
			    void *arg)
{
}

static int get_dyn_info_list_addr(unw_addr_space_t a, unw_word_t *addr,
				  void *arg)
{
	return -UNW_ENOINFO;
}

static int resume(unw_addr_space_t a, unw_cursor_t *c, void *arg)
{
	return -UNW_EINVAL;
}

static int get_proc_name(unw_addr_space_t a, unw_word_t addr, char *buf,
			 size_t len, unw_word_t *off, void *arg)
{
	return -UNW_ENOINFO;
}

static void count_task(pid_t tid, void *arg)
{
	(void)tid;
	(void)arg;
}

static unw_accessors_t accessors = {
	.find_proc_info = find_proc_info,
	.put_unwind_info = put_unwind_info,
	.get_dyn_info_list_addr = get_dyn_info_list_addr,
	.access_mem = access_mem,
	.access_reg = access_reg,
	.access_fpreg = access_fpreg,
	.resume = resume,
	.get_proc_name = get_proc_name,
};

/* libunwind initialises itself at the first call that needs it, this one
 * (not at unw_create_addr_space, which only allocates). */
static void set_policy(void)
{
	unw_set_caching_policy(as, UNW_CACHE_NONE);
}

/*
 * libunwind's initialisation opens a pipe that only its own local unwinder
 * uses (to check addresses), which this library never calls: every process
 * it is loaded into would hold two descriptors it did not open, and a
 * program that expects the lowest free one, or lists its own (CPython's
 * test_subprocess does), sees them.  With no descriptor free below
 * RLIMIT_NOFILE the pipe cannot be made and libunwind goes on without it
 * (its local unwinder would open it when first used).  The limit is the
 * whole process's, so this is done only while it has a single thread, and
 * around nothing else (an allocator initialising itself opens files).
 */
static void without_new_descriptors(void (*fn)(void))
{
	struct rlimit old, none;
	int lowest = 0;
	if (cf_tasks_scan(count_task, NULL) != 1 ||
	    getrlimit(RLIMIT_NOFILE, &old) < 0) {
		fn();
		return;
	}
	while ((rlim_t)lowest < old.rlim_cur && fcntl(lowest, F_GETFD) >= 0)
		lowest++;
	none = old;
	none.rlim_cur = (rlim_t)lowest;
	bool lowered = setrlimit(RLIMIT_NOFILE, &none) == 0;
	fn();
	if (lowered)
		setrlimit(RLIMIT_NOFILE, &old);
}

/*
 * The memo: each thread's last walk, with its inputs.  Given the same
 * registers (those libunwind asked for), the same words at the addresses
 * it read outside immutable memory, and the same objects snapshot,
 * libunwind (which keeps nothing between walks with UNW_CACHE_NONE) makes
 * the same reads in the same order and finds the same frames.  Only
 * complete walks whose reads all succeeded are kept.
 *
 * A slot is chosen by tid, so two threads may share one: it is a seqlock
 * (odd while written; a writer takes it with a compare-and-swap, a reader
 * checks that it did not change while read), and its contents are
 * checked against the thread's own state, never trusted for being its.
 * The frames are copied out before they are used.
 */
#define MEMO_SLOTS_LOG 10                 /* 1024 slots, 1.9 KiB each */
#define MEMO_REGS 17
#define MEMO_MEM 48                       /* an idle thread's walk: 4 */
#define MEMO_FRAMES 32
struct memo {
	_Atomic uint32_t seq;
	_Atomic uintptr_t tid, gen, result, nregs, nmem, nframes;
	_Atomic uintptr_t reg[MEMO_REGS][2];      /* register, value */
	_Atomic uintptr_t mem[MEMO_MEM][2];       /* address, word */
	_Atomic uintptr_t frame[MEMO_FRAMES][3];  /* ip, sp, flags */
};
static struct memo *memos;

#define PUT(field, v) atomic_store_explicit(&(field), (v), memory_order_relaxed)
#define GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

static struct memo *memo_slot(pid_t tid)
{
	return memos ? &memos[((uint32_t)tid * 2654435761u) >>
			      (32 - MEMO_SLOTS_LOG)] : NULL;
}

static void note_reg(struct walk *w, unw_regnum_t reg, uintptr_t val)
{
	struct memo *m = w->rec;
	if (!m || w->unrecordable)
		return;
	uintptr_t n = GET(m->nregs);
	for (uintptr_t i = 0; i < n; i++)
		if (GET(m->reg[i][0]) == (uintptr_t)reg)
			return;
	if (n == MEMO_REGS) {
		w->unrecordable = true;
		return;
	}
	PUT(m->reg[n][0], (uintptr_t)reg);
	PUT(m->reg[n][1], val);
	PUT(m->nregs, n + 1);
}

/* addr has been found readable. */
static void note_mem(struct walk *w, uintptr_t addr)
{
	struct memo *m = w->rec;
	if (!m || w->unrecordable)
		return;
	uintptr_t n = GET(m->nmem);
	for (uintptr_t i = 0; i < n; i++)
		if (GET(m->mem[i][0]) == addr)
			return;
	if (n == MEMO_MEM) {
		w->unrecordable = true;
		return;
	}
	uintptr_t word = cf_stack_word(addr);
	PUT(m->mem[n][0], addr);
	PUT(m->mem[n][1], word);
	PUT(m->nmem, n + 1);
}

static void note_frame(struct walk *w, const struct cf_frame *f)
{
	struct memo *m = w->rec;
	if (!m || w->unrecordable)
		return;
	uintptr_t n = GET(m->nframes);
	if (n == MEMO_FRAMES) {
		w->unrecordable = true;
		return;
	}
	PUT(m->frame[n][0], f->ip);
	PUT(m->frame[n][1], f->sp);
	PUT(m->frame[n][2], (uintptr_t)f->signal_frame |
			    (uintptr_t)f->exact_ip << 1);
	PUT(m->nframes, n + 1);
}

/* Takes tid's slot for writing, or returns NULL. */
static struct memo *memo_begin(pid_t tid)
{
	struct memo *m = memo_slot(tid);
	if (!m)
		return NULL;
	uint32_t s = atomic_load_explicit(&m->seq, memory_order_relaxed);
	if ((s & 1) || !atomic_compare_exchange_strong_explicit(
			       &m->seq, &s, s + 1, memory_order_relaxed,
			       memory_order_relaxed))
		return NULL;
	atomic_thread_fence(memory_order_release);
	PUT(m->tid, 0);
	PUT(m->nregs, 0);
	PUT(m->nmem, 0);
	PUT(m->nframes, 0);
	return m;
}

static void memo_end(struct walk *w, pid_t tid, uint32_t gen, int result)
{
	struct memo *m = w->rec;
	if (!m)
		return;
	if (!w->unrecordable) {
		PUT(m->gen, gen);
		PUT(m->result, (uintptr_t)(intptr_t)result);
		PUT(m->tid, (uintptr_t)tid);
	}
	atomic_store_explicit(&m->seq,
			      atomic_load_explicit(&m->seq,
						   memory_order_relaxed) + 1,
			      memory_order_release);
}

/* The kept walk of tid, if every input is as it was: its frames go to
 * out and its result to *result. */
static bool memo_find(pid_t tid, uint32_t gen, const ucontext_t *uc,
		      struct cf_frame out[MEMO_FRAMES], size_t *nout,
		      int *result)
{
	struct memo *m = memo_slot(tid);
	if (!m)
		return false;
	uint32_t s = atomic_load_explicit(&m->seq, memory_order_acquire);
	uintptr_t nregs = GET(m->nregs), nmem = GET(m->nmem);
	uintptr_t nframes = GET(m->nframes);
	if ((s & 1) || GET(m->tid) != (uintptr_t)tid || GET(m->gen) != gen ||
	    nregs > MEMO_REGS || nmem > MEMO_MEM || nframes > MEMO_FRAMES)
		return false;
	for (uintptr_t i = 0; i < nregs; i++) {
		int g = greg_of((unw_regnum_t)GET(m->reg[i][0]));
		if (g < 0 || (uintptr_t)uc->uc_mcontext.gregs[g] !=
				     GET(m->reg[i][1]))
			return false;
	}
	struct walk w = { .uc = uc };
	for (uintptr_t i = 0; i < nmem; i++) {
		uintptr_t addr = GET(m->mem[i][0]), word;
		if (!readable(&w, addr, sizeof word))
			return false;
		word = cf_stack_word(addr);
		if (word != GET(m->mem[i][1]))
			return false;
	}
	for (uintptr_t i = 0; i < nframes; i++) {
		uintptr_t flags = GET(m->frame[i][2]);
		out[i] = (struct cf_frame){
			.ip = GET(m->frame[i][0]),
			.sp = GET(m->frame[i][1]),
			.signal_frame = flags & 1,
			.exact_ip = (flags >> 1) & 1,
		};
	}
	*result = (int)(intptr_t)GET(m->result);
	*nout = nframes;
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&m->seq, memory_order_relaxed) == s;
}

/* Is ip a signal frame's return address, the restorer the kernel returns
 * to from a handler (glibc's __restore_rt, or a runtime's own): mov
 * $15,%rax; syscall (rt_sigreturn)?  libunwind's unw_is_signal_frame
 * answers for the frame after it, once it has stepped through. */
static bool at_sigreturn(struct walk *w, uintptr_t ip)
{
	static const unsigned char code[9] = {
		0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05,
	};
	return readable(w, ip, sizeof code) &&
	       memcmp((const void *)ip, code, sizeof code) == 0;
}

static int walk_frames(struct walk *w, cf_frame_fn *fn, void *arg)
{
	unw_cursor_t cur;
	struct cf_frame f = { .exact_ip = true };
	if (!as || unw_init_remote(&cur, as, w) < 0)
		return -1;
	for (int n = 0; n < CF_WALK_MAX; n++) {
		unw_word_t ip, sp;
		if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 ||
		    unw_get_reg(&cur, UNW_REG_SP, &sp) < 0)
			return -1;
		/* A return address outside every loaded object's code means
		 * the walk went astray (code without unwind information, or
		 * a bad rule): what it would find beyond is not a stack. */
		if (n > 0 && !cf_objects_find(f.exact_ip ? ip : ip - 1))
			return -1;
		f.ip = ip;
		f.sp = sp;
		f.signal_frame = at_sigreturn(w, ip);
		note_frame(w, &f);
		if (!fn(&f, arg)) {
			w->unrecordable = true;   /* not the whole walk */
			return 0;
		}
		/* The frame after a signal frame was interrupted, not called. */
		f.exact_ip = f.signal_frame;
		int r = unw_step(&cur);
		if (r == 0)
			return 1;
		if (r < 0)
			return -1;
	}
	return -1;
}

/* Apart from the walk, so that its copy of the frames does not add to the
 * stack a real walk takes. */
static __attribute__((noinline)) bool replay(pid_t tid, uint32_t gen,
					     const ucontext_t *uc,
					     cf_frame_fn *fn, void *arg,
					     int *r)
{
	struct cf_frame kept[MEMO_FRAMES];
	size_t n;
	if (!memo_find(tid, gen, uc, kept, &n, r))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!fn(&kept[i], arg)) {
			*r = 0;
			break;
		}
	return true;
}

int cf_walk(const ucontext_t *uc, pid_t tid, cf_frame_fn *fn, void *arg)
{
	uint32_t gen = cf_objects_generation();
	int r;
	if (tid > 0 && replay(tid, gen, uc, fn, arg, &r))
		return r;
	struct walk w = { .uc = uc, .rec = tid > 0 ? memo_begin(tid) : NULL };
	r = walk_frames(&w, fn, arg);
	memo_end(&w, tid, gen, r);
	return r;
}

int cf_unwind_init(void)
{
	if (as)
		return 0;
	choose_check_method();
	memos = cf_map(sizeof *memos << MEMO_SLOTS_LOG);
	as = unw_create_addr_space(&accessors, 0);
	if (!as)
		return -ENOMEM;
	without_new_descriptors(set_policy);
	return 0;
}
