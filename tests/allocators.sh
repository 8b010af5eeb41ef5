#!/bin/sh
# SPDX-License-Identifier: MIT
# Replacement allocators: with Debian's jemalloc (libjemalloc2) and tcmalloc
# (libtcmalloc-minimal4) preloaded, six siblings loop on malloc/realloc/free
# while the main thread cforks 100 times: 0 hangs, 0 bad children, no
# sibling left stuck.  The allocators register fork handlers before
# libcfork's constructor runs; those must still run before the quiesce.
# An allocator that is not installed is skipped (with a message); the test
# is skipped when neither is, or under AddressSanitizer (which must be the
# first object loaded, so nothing else can be preloaded).

bindir=${top_builddir:-.}/tests
libdir=/usr/lib/x86_64-linux-gnu
forks=100
case ${CFORK_TEST_QUICK:-0} in ''|0) ;; *) forks=20 ;; esac

if ldd "$bindir/stress" 2>/dev/null | grep -q libasan; then
	echo "SKIP: tests are built with AddressSanitizer, which cannot run"
	echo "      under another preloaded allocator"
	exit 77
fi

out=$(mktemp "${TMPDIR:-/tmp}/cfork-alloc.XXXXXX") || exit 99
trap 'rm -f "$out"' EXIT
passed=0
failed=0
for lib in libjemalloc.so.2 libtcmalloc_minimal.so.4; do
	if [ ! -e "$libdir/$lib" ]; then
		echo "== $lib: SKIP, not installed ($libdir/$lib; Debian"
		echo "   packages libjemalloc2, libtcmalloc-minimal4)"
		continue
	fi
	echo "== $lib: stress -m 6 -n $forks with LD_PRELOAD=$libdir/$lib"
	LD_PRELOAD=$libdir/$lib "$bindir/stress" -m 6 -n "$forks" \
		>"$out" 2>&1
	rc=$?
	cat "$out"
	if [ $rc -eq 0 ] && ! grep -q "^malloc from: .*$lib" "$out"; then
		echo "the preload had no effect: malloc is not $lib's"
		rc=1
	fi
	if [ $rc -eq 0 ]; then
		echo "== $lib: PASS"
		passed=$((passed + 1))
	else
		echo "== $lib: FAIL (exit status $rc)"
		failed=$((failed + 1))
	fi
done
echo "allocators: $passed passed, $failed failed"
[ $failed -eq 0 ] || exit 1
[ $passed -gt 0 ] || { echo "SKIP: no replacement allocator installed"; exit 77; }
exit 0
