/* SPDX-License-Identifier: MIT */
/*
 * cf_stub: where a redirected ("hijacked") return lands.
 *
 * The signal handler found the thread inside libc, where it may hold a lock,
 * and replaced the return address of its outermost libc frame with this
 * address; the original is kept in the thread's TLS.  The libc function
 * returns here with its results in rax/rdx/xmm0/xmm1 and rsp 16-byte
 * aligned as at its call site.  The stub reserves the word the return
 * address came from, has cf_stub_arrive put the original back there (so
 * unwinders and debuggers see the true caller) and park the thread if a
 * quiesce is under way, then returns to the original caller.
 */
	.text
	.p2align 4
	.globl cf_stub_begin
	.hidden cf_stub_begin
	.globl cf_stub_end
	.hidden cf_stub_end
	.globl cf_stub
	.hidden cf_stub
	.type cf_stub, @function
cf_stub_begin:
	.cfi_startproc
	/* Unwinders look up a return address minus one: keep that inside
	 * this FDE. */
	nop
cf_stub:
	.cfi_def_cfa_offset 0
	sub	$8, %rsp		/* the slot the return address came from */
	.cfi_def_cfa_offset 8		/* return address at CFA-8: the slot */
	push	%rax
	.cfi_adjust_cfa_offset 8
	push	%rdx
	.cfi_adjust_cfa_offset 8
	sub	$40, %rsp
	.cfi_adjust_cfa_offset 40
	movdqu	%xmm0, 0(%rsp)
	movdqu	%xmm1, 16(%rsp)
	lea	56(%rsp), %rdi		/* &slot */
	call	cf_stub_arrive
	movdqu	0(%rsp), %xmm0
	movdqu	16(%rsp), %xmm1
	add	$40, %rsp
	.cfi_adjust_cfa_offset -40
	pop	%rdx
	.cfi_adjust_cfa_offset -8
	pop	%rax
	.cfi_adjust_cfa_offset -8
	ret
	.cfi_endproc
cf_stub_end:
	.size cf_stub, cf_stub_end - cf_stub

	.section .note.GNU-stack, "", @progbits
