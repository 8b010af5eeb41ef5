/* SPDX-License-Identifier: MIT */
/* The probe's helper program (probe-helper.c, built by make as
 * lib/probe-helper before this file is assembled), carried as data so the
 * library needs no file at a path of its own to run it. */
	.section .rodata.cf_probe_helper, "a"
	.balign 16
	.globl cf_probe_helper_elf
	.hidden cf_probe_helper_elf
cf_probe_helper_elf:
	.incbin "lib/probe-helper"
	.globl cf_probe_helper_end
	.hidden cf_probe_helper_end
cf_probe_helper_end:
	.section .note.GNU-stack, "", @progbits
