/* SPDX-License-Identifier: MIT */
/*
 * longjmp over a redirected return.
 *
 * A thread found inside libc, where it may not stop, has the return of its
 * outermost libc call redirected to the parking stub.  A signal handler
 * that leaves by longjmp (a timer bounding a long call) skips that return:
 * the thread would run on, to be asked again later and perhaps found in
 * libc again, under a handler again, for as long as the quiesce may last.
 * The jump itself is where the thread leaves the call, so the wrappers
 * below park it there, as the stub would have: the frames the jump leaves
 * are abandoned by the program either way.  A jump that stays inside the
 * call (to a frame deeper than the redirected one) changes nothing.
 *
 * The target's stack pointer is read from the jump buffer, where glibc
 * keeps it mangled with the thread's pointer guard (PTR_MANGLE: xor with
 * the guard at %fs:0x30, then rotate left by 17 bits).
 */
#include "config.h"

#include <setjmp.h>

#include "internal.h"

#define JB_RSP 6

static uintptr_t target_sp(const struct __jmp_buf_tag *env)
{
	uintptr_t v = (uintptr_t)env->__jmpbuf[JB_RSP], guard;
	__asm__("mov %%fs:0x30, %0" : "=r"(guard));
	return ((v >> 17) | (v << (64 - 17))) ^ guard;
}

typedef void jump_fn(struct __jmp_buf_tag *, int);

/* libc's own; it does not return. */
static __attribute__((noreturn)) void jump(const char *name,
					   jump_fn **cache,
					   struct __jmp_buf_tag *env, int val)
{
	jump_fn *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
	if (!f) {
		f = (jump_fn *)cf_libc_sym(name);
		__atomic_store_n(cache, f, __ATOMIC_RELEASE);
	}
	cf_jump_leaving(target_sp(env));
	f(env, val);
	__builtin_unreachable();
}

#define EXPORT __attribute__((visibility("default"), noreturn))

/* glibc's longjmp, _longjmp and siglongjmp are one function. */
static jump_fn *libc_siglongjmp, *libc_longjmp_chk;

EXPORT void siglongjmp(sigjmp_buf env, int val)
{
	jump("siglongjmp", &libc_siglongjmp, env, val);
}

EXPORT void longjmp(jmp_buf env, int val)
{
	jump("siglongjmp", &libc_siglongjmp, env, val);
}

void _longjmp(jmp_buf env, int val) __attribute__((noreturn));
EXPORT void _longjmp(jmp_buf env, int val)
{
	jump("siglongjmp", &libc_siglongjmp, env, val);
}

/* What _FORTIFY_SOURCE makes of longjmp: glibc checks that the jump does
 * not go down the stack. */
void __longjmp_chk(jmp_buf env, int val) __attribute__((noreturn));
EXPORT void __longjmp_chk(jmp_buf env, int val)
{
	jump("__longjmp_chk", &libc_longjmp_chk, env, val);
}
