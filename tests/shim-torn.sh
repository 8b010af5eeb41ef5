#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/shim-torn (plain fork(), no libcfork, one writer blocking every
# signal with pthread_sigmask) tears pinned memory when run alone, and
# never under cfork-run, where every fork is a coherent cfork that parked
# both writers.  Skipped (77) when io_uring cannot pin memory, or when
# plain fork() tore nothing (a kernel that copies coherently shows
# nothing to fix).

builddir=${top_builddir:-.}
probe=$builddir/tests/shim-torn
run=$builddir/tools/cfork-run
# Plain forks are cheap, and how many tear depends on the machine's load:
# as many as it takes to see some, even in quick runs.
plain=200
shimmed=500
case ${CFORK_TEST_QUICK:-0} in ''|0) ;; *) shimmed=50 ;; esac

# Under AddressSanitizer its runtime must be the first object loaded:
# preloading it ahead of cfork-run's entries keeps it first (and leak
# reports of cfork-run's uninstrumented helpers are not ours).
asan=$(ldd "$builddir/.libs/libcfork.so" 2>/dev/null |
	awk '/libasan/ { print $3; exit }')
if [ -n "$asan" ]; then
	LD_PRELOAD=$asan${LD_PRELOAD:+ $LD_PRELOAD}
	export LD_PRELOAD
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
	export ASAN_OPTIONS
fi

# Prints the value after a key in the probe's line.
field() {
	printf '%s\n' "$1" | awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'
}

out=$("$probe" "$plain")
rc=$?
[ $rc -eq 0 ] || exit $rc
echo "alone:         $out"
if [ "$(field "$out" cforks)" != 0 ]; then
	echo "FAIL: without the shim the probe found libcfork's report"
	exit 1
fi
if [ "$(field "$out" torn)" = 0 ]; then
	echo "SKIP: plain fork() tore no child here: nothing for the shim to fix"
	exit 77
fi

out=$("$run" "$probe" "$shimmed")
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: under cfork-run the probe exited with $rc"; exit 1; }
echo "under cfork-run: $out"
fail=0
[ "$(field "$out" torn)" = 0 ] || { echo "FAIL: torn children under the shim"; fail=1; }
[ "$(field "$out" cforks)" = "$shimmed" ] ||
	{ echo "FAIL: not every fork() went through cfork()"; fail=1; }
[ "$(field "$out" coherent)" = "$shimmed" ] ||
	{ echo "FAIL: not every cfork() was coherent"; fail=1; }
[ "$(field "$out" parked-min)" -ge 2 ] ||
	{ echo "FAIL: a writer was not parked (the one blocking every signal?)"; fail=1; }
exit $fail
