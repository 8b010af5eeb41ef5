#!/bin/sh
# SPDX-License-Identifier: MIT
# Busy machine (b): several processes use cfork at the same time.  Their
# signals count against one RLIMIT_SIGPENDING (per user); it is lowered
# here (to 32 more than is queued already) so that a library that queues
# more than one signal per thread, or takes EAGAIN from tgkill for "thread
# gone", shows it.  First three
# coherence processes side by side, then coherence, stress and child-libc
# side by side: each must still pass on its own terms (0 torn, 0 hangs,
# 0 bad children).
. "${srcdir:-.}/tests/busy-lib.sh"

# The count is per user and machine-wide: the limit is set 32 above what is
# queued already, so that others' pending signals do not decide the test.
# prlimit (util-linux) changes this shell's limit, inherited by the tests;
# dash's ulimit has no -i.
queued=$(awk '/^SigQ:/ { split($2, q, "/"); print q[1] }' /proc/$$/status)
limit=$((${queued:-0} + 32))
if command -v prlimit >/dev/null 2>&1 &&
   prlimit --pid $$ --sigpending=$limit: 2>/dev/null; then
	echo "RLIMIT_SIGPENDING (soft) lowered to $limit" \
		"(${queued:-0} signals queued by this user already)"
else
	echo "RLIMIT_SIGPENDING left as it was (no prlimit)"
fi

spawn coherence-1 coherence "$(n 300)" "$(n 10)"
spawn coherence-2 coherence "$(n 300)" "$(n 10)"
spawn coherence-3 coherence "$(n 300)" "$(n 10)"
collect

spawn coherence coherence "$(n 300)" "$(n 10)"
spawn stress stress -n "$(n 200)"
spawn child-libc child-libc -n "$(n 100)" -p 5
collect
finish
