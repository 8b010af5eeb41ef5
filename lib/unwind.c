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
 * caching policy is UNW_CACHE_NONE, as libunwind's caches take locks.
 */
#include "config.h"

#include <errno.h>
#include <libunwind.h>
#include <string.h>
#include <sys/mman.h>
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
struct walk {
	const ucontext_t *uc;
	uintptr_t ro_lo, ro_hi;
	uintptr_t pages[CF_PAGES];
	unsigned npages, next;
};

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

static int access_mem(unw_addr_space_t a, unw_word_t addr, unw_word_t *val,
		      int write, void *arg)
{
	struct walk *w = arg;
	if (write || !readable(w, addr, sizeof *val))
		return -UNW_EINVAL;
	memcpy(val, (const void *)addr, sizeof *val);
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
	if (write || g < 0)
		return -UNW_EBADREG;
	*val = (unw_word_t)w->uc->uc_mcontext.gregs[g];
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
	if (!o || !o->eh_hdr || (!o->permanent &&
				 !readable(arg, o->eh_hdr, 12)))
		return -UNW_ENOINFO;
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

int cf_unwind_init(void)
{
	static unw_accessors_t acc = {
		.find_proc_info = find_proc_info,
		.put_unwind_info = put_unwind_info,
		.get_dyn_info_list_addr = get_dyn_info_list_addr,
		.access_mem = access_mem,
		.access_reg = access_reg,
		.access_fpreg = access_fpreg,
		.resume = resume,
		.get_proc_name = get_proc_name,
	};
	if (as)
		return 0;
	choose_check_method();
	as = unw_create_addr_space(&acc, 0);
	if (!as)
		return -ENOMEM;
	unw_set_caching_policy(as, UNW_CACHE_NONE);
	return 0;
}

int cf_walk(const ucontext_t *uc, cf_frame_fn *fn, void *arg)
{
	struct walk w = { .uc = uc };
	unw_cursor_t cur;
	struct cf_frame f = { .exact_ip = true };
	if (!as || unw_init_remote(&cur, as, &w) < 0)
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
		f.signal_frame = unw_is_signal_frame(&cur) > 0;
		if (!fn(&f, arg))
			return 0;
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
