#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs test programs again and again while two CPU hogs (yes >/dev/null,
# twice) compete for the cores, and counts the runs that failed.
# Usage: tests/under-hogs.sh [-n RUNS] TEST...   (TEST: a program of tests/)
# make check-hogs runs it on the tests the quiesce's hard cases live in.
# Prints one line per test ("NAME: F of N runs failed") and the first
# lines of each failure; exits 1 if any run failed.
runs=200
while getopts n: opt; do
	case $opt in
	n) runs=$OPTARG ;;
	*) echo "usage: $0 [-n RUNS] TEST..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || { echo "usage: $0 [-n RUNS] TEST..." >&2; exit 2; }
bindir=${top_builddir:-.}/tests
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfork-hogs.XXXXXX") || exit 99
hogs=
cleanup() {
	[ -n "$hogs" ] && kill $hogs 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' HUP INT TERM
for i in 1 2; do
	yes >/dev/null &
	hogs="$hogs $!"
done
status=0
for t in "$@"; do
	failed=0
	i=0
	while [ $i -lt "$runs" ]; do
		i=$((i + 1))
		if ! "$bindir/$t" >"$tmp/out" 2>&1; then
			failed=$((failed + 1))
			[ $failed -le 3 ] && { echo "-- $t run $i:"; tail -n 20 "$tmp/out"; }
		fi
	done
	echo "$t: $failed of $runs runs failed"
	[ $failed -eq 0 ] || status=1
done
exit $status
