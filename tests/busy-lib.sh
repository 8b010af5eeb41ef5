# SPDX-License-Identifier: MIT
# Sourced by the busy-machine tests (busy-hog.sh, busy-concurrent.sh): runs
# the test programs, collects their exit codes and prints their output.
# Programs are looked up in $top_builddir/tests (the test harness sets it).

bindir=${top_builddir:-.}/tests
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfork-busy.XXXXXX") || exit 99
hog_pid=
failed=0
passed=0
skipped=0

cleanup() {
	if [ -n "$hog_pid" ]; then
		kill "$hog_pid" 2>/dev/null
		wait "$hog_pid" 2>/dev/null
		hog_pid=
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 99' HUP INT TERM

# n COUNT: COUNT, or a tenth of it under CFORK_TEST_QUICK (as t_iters).
n() {
	case ${CFORK_TEST_QUICK:-0} in
	''|0) echo "$1" ;;
	*) if [ "$1" -ge 10 ]; then echo $(($1 / 10)); else echo 1; fi ;;
	esac
}

# start_hog [THREADS]: spinning threads in another process, twice as many
# as there are cores by default, until the test ends.
start_hog() {
	"$bindir/hog" ${1:+-t "$1"} -s 1800 >"$tmp/hog.out" 2>&1 &
	hog_pid=$!
	i=0
	while [ ! -s "$tmp/hog.out" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	cat "$tmp/hog.out"
	kill -0 "$hog_pid" 2>/dev/null || { echo "hog did not start"; exit 99; }
}

# have PROG: true when the program was built (coherence needs liburing).
have() {
	[ -x "$bindir/$1" ]
}

# tally NAME STATUS: counts a result and says what it was.
tally() {
	case $2 in
	0) passed=$((passed + 1)); echo "== $1: PASS" ;;
	77) skipped=$((skipped + 1)); echo "== $1: SKIP" ;;
	*) failed=$((failed + 1)); echo "== $1: FAIL (exit status $2)" ;;
	esac
}

# run NAME PROG ARGS...: one program in the foreground.
run() {
	name=$1
	shift
	echo "== $name: $*"
	if ! have "$1"; then
		echo "$1 was not built (liburing missing?)"
		tally "$name" 77
		return
	fi
	prog=$1
	shift
	"$bindir/$prog" "$@"
	tally "$name" $?
}

# spawn NAME PROG ARGS...: one program in the background; collect waits.
spawned=
spawn() {
	name=$1
	shift
	if ! have "$1"; then
		echo "== $name: $1 was not built (liburing missing?)"
		tally "$name" 77
		return
	fi
	prog=$1
	shift
	echo "== $name: $prog $* (in the background)"
	( "$bindir/$prog" "$@" >"$tmp/$name.out" 2>&1; echo $? >"$tmp/$name.rc" ) &
	spawned="$spawned $name"
}

collect() {
	wait
	for name in $spawned; do
		echo "== $name output:"
		sed "s/^/  $name: /" "$tmp/$name.out"
		tally "$name" "$(cat "$tmp/$name.rc" 2>/dev/null || echo 99)"
	done
	spawned=
}

# finish: the exit status automake expects.
finish() {
	echo "busy: $passed passed, $failed failed, $skipped skipped"
	[ $failed -eq 0 ] || exit 1
	[ $passed -gt 0 ] || exit 77
	exit 0
}
