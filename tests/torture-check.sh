#!/bin/sh
# SPDX-License-Identifier: MIT
# The part of tests/torture that make check runs: four fixed seeds of the
# whole mix, 80 cforks each, then the mixes in which make torture found a
# library bug, each on the seed that found it (the fix's regression test):
#  - -k epoll,cforker: a sibling's cfork child's SIGCHLD ended a continued
#    epoll_pwait with EINTR (the main thread had every signal blocked);
#  - -k longjmp: a handler held while its thread counted as stopped was
#    skipped by another that jumped, and its signal lost;
#  - seed 669454916: an asynchronous cancellation out of libcfork's
#    handler left a count that every later quiesce waited for;
#  - -k coro,siglongjmp: jumps and coroutine switches out of handlers on
#    top of continued calls;
#  - seed 880045238: libcfork's signal found a thread in glibc's
#    cancellation handler and redirected its return, through which the
#    cancellation then unwound (a crash, 1 run in 11);
#  - seed 309611307: a program handler that came in while a parked thread
#    took a sleeper slot, and jumped out, left the slot marked asleep:
#    every later quiesce claimed the thread as parked while it ran (a
#    handler half done in the child, 1 run of 500 cforks in 4).
# A failure prints the seed and the command that replays it.
bindir=${top_builddir:-.}/tests
status=0
run() {
	"$bindir/torture" "$@" || status=1
}
for seed in 11 12 13 14; do
	run -s $seed -n 80
done
run -s 2 -n 150 -k epoll,cforker -t 2 -H 0 -W
run -s 2 -n 150 -k sigwait,cforker -t 2 -H 0 -W
run -s 3 -n 100 -k longjmp
run -s 669454916 -n 150
run -s 5 -n 100 -k coro,siglongjmp
run -s 880045238 -n 100
run -s 309611307 -n 500
exit $status
