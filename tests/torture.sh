#!/bin/sh
# SPDX-License-Identifier: MIT
# make torture: tests/torture on many random seeds, one after the other.
# Prints each run's seed and outcome, then the totals
# ("torture: R runs, C cforks, V violations") and the seeds that failed,
# each with the command that replays it; exits 1 if any run failed.
# Usage: tests/torture.sh [-r RUNS] [-n CFORKS] [TORTURE_OPTION...]
# (defaults: 40 runs of 500 cforks; other options go to every run, e.g.
# -x cforker to leave a kind out).  Not part of make check: it takes
# several minutes.
runs=40
cforks=500
while [ $# -gt 1 ]; do
	case $1 in
	-r) runs=$2 ;;
	-n) cforks=$2 ;;
	*) break ;;
	esac
	shift 2
done
case $runs$cforks in
*[!0-9]*|'') echo "usage: $0 [-r RUNS] [-n CFORKS] [TORTURE_OPTION...]" >&2
	exit 2 ;;
esac
prog=${top_builddir:-.}/tests/torture
[ -x "$prog" ] || { echo "$0: $prog not built" >&2; exit 99; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfork-torture.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
trap 'exit 99' HUP INT TERM
total=0
violations=0
failed=
i=0
while [ $i -lt "$runs" ]; do
	i=$((i + 1))
	seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	seed=$((seed % 1000000000))
	"$prog" -s "$seed" -n "$cforks" "$@" >"$tmp/out" 2>&1
	st=$?
	done_line=$(grep -E '^torture: seed [0-9]+: [0-9]+ cforks, [0-9]+ violations' "$tmp/out" | tail -n 1)
	if [ -n "$done_line" ]; then
		n=$(echo "$done_line" | sed -E 's/.*: ([0-9]+) cforks, ([0-9]+) violations.*/\1/')
		v=$(echo "$done_line" | sed -E 's/.*: ([0-9]+) cforks, ([0-9]+) violations.*/\2/')
	else
		n=$(sed -nE 's/.*FAILED at cfork -?[0-9]+ \(([0-9]+) cforks done\).*/\1/p' "$tmp/out" | tail -n 1)
		v=$(grep -c 'VIOLATION' "$tmp/out")
		[ "$v" -gt 0 ] || v=1      # a crash, a hang, a failed setup
	fi
	total=$((total + ${n:-0}))
	if [ "$st" -eq 0 ]; then
		echo "torture: run $i/$runs: seed $seed: ${n:-0} cforks, 0 violations"
	else
		violations=$((violations + v))
		failed="$failed $seed"
		echo "torture: run $i/$runs: seed $seed: FAILED (exit $st):"
		grep -E 'VIOLATION|HANG|FAILED|NOT COHERENT|straggler|note:|CHECK failed|replay' "$tmp/out" | head -n 12 | sed 's/^/  /'
		cp "$tmp/out" "${TMPDIR:-/tmp}/cfork-torture-$seed.log" 2>/dev/null &&
			echo "  (whole output: ${TMPDIR:-/tmp}/cfork-torture-$seed.log)"
	fi
done
echo "torture: $runs runs, $total cforks, $violations violations"
if [ -n "$failed" ]; then
	echo "torture: failing seeds:$failed (replay: $prog -s SEED -n $cforks $*)"
	exit 1
fi
exit 0
