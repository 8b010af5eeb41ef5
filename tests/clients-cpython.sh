#!/bin/sh
# SPDX-License-Identifier: MIT
# CPython's own tests of fork, threads, signals and child processes under
# the shim (make check-clients).  Debian's python3.11 runs the modules
# listed below from libpython3.11-testsuite once plainly and once under
# cfork-run (whose preload every process it starts inherits), with the
# network resource (test_socketserver's servers listen on 127.0.0.1 only).
# A test that fails under the shim but not without it, and again when run
# alone under the shim, fails this script; one that fails in both runs is
# the machine's, and is listed.  Both runs preload tests/clients-forklog.c
# (built here with cc), which logs every fork of every process to a file
# and, under the shim, every cfork() with its report: each fork of a
# process that has libcfork must be a coherent cfork.  Prints the counts
# and times of both runs.
#
# Environment: CFORK_RUN (required) the cfork-run to test; CC (cc) to
# build the fork log; CLIENTS_PYTHON
# (/usr/bin/python3.11); CLIENTS_JOBS (0: regrtest's own choice) for -j;
# CLIENTS_TESTS to run other test modules; CLIENTS_SUMMARY, a file the
# summary line is appended to.
set -u

py=${CLIENTS_PYTHON:-/usr/bin/python3.11}
jobs=${CLIENTS_JOBS:-0}
tests=${CLIENTS_TESTS:-test_fork1 test_threading test_os test_subprocess \
test_multiprocessing_fork test_concurrent_futures test_logging \
test_socketserver test_pty test_posix test_asyncio.test_subprocess \
test_multiprocessing_forkserver test_signal test_faulthandler \
test_tracemalloc}
resources=network
summary_file=${CLIENTS_SUMMARY:-/dev/null}
run_bound=3000        # seconds for one whole regrtest run
test_bound=1200       # seconds for one test module (regrtest --timeout)

part=cpython
. "$(dirname "$0")/clients-lib.sh"
tools timeout
cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 || skip "$cc not found (it builds the fork log)"

# Debian's interpreter and its test suite, installed here when missing.
have_suite() {
	[ -x "$py" ] && "$py" -c 'import test.support, test.test_fork1' \
		>/dev/null 2>&1
}
need have_suite python3.11 libpython3.11-testsuite

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfork-cpython.XXXXXX") || fail "mktemp -d"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 2' HUP INT TERM

# The fork log's cfork carries the version the shim refers to, so that the
# shim's call binds to it.
here=$(dirname "$0")
echo 'LIBCFORK_0.1 { global: cfork; local: *; };' >"$tmp/forklog.map"
"$cc" -std=gnu11 -Wall -Wextra -O2 -shared -fPIC -fvisibility=hidden \
	-I"$here/../include" -Wl,--version-script="$tmp/forklog.map" \
	-o "$tmp/forklog.so" "$here/clients-forklog.c" -ldl ||
	fail "cannot build tests/clients-forklog.c"

# The interpreter's os.fork() must reach cfork() under cfork-run: a fork
# with one other thread alive (asleep in time.sleep) must report that
# thread parked.  $1 is the other thread's loop.
probe() {
	CFORK_DEBUG=1 timeout 60 "$CFORK_RUN" -- "$py" -c "
import os, threading, time
done = threading.Event()
def other():
    $1
t = threading.Thread(target=other)
t.start()
time.sleep(0.1)
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
done.set()
t.join()
" 2>&1 | sed -n 's/^libcfork: cfork: pid [0-9]*, method //p'
}
report=$(probe 'while not done.is_set(): time.sleep(0.001)')
case $report in
"quiesce, coherent: parked 1 "*) ;;
*) fail "os.fork() under cfork-run did not go through cfork(): $report" ;;
esac
say "os.fork() with a thread in time.sleep: $report"
# A thread blocked in an untimed sem_wait (every Python lock, Event.wait(),
# Thread.join() without a timeout) is parked too, asleep where it waits.
report=$(probe 'done.wait()')
case $report in
"quiesce, coherent: parked 1 "*) ;;
*) fail "os.fork() with a thread in Event.wait() did not park it: $report" ;;
esac
say "os.fork() with a thread in Event.wait(): $report"

# Passed, failed and skipped test cases of a JUnit file, and the failed ids
# one a line in $2.  A module that reported nothing (a crashed or killed
# worker) counts as one failure named after it.
junit_summary() {
	"$py" - "$1" "$2" "$tests" <<-'EOF'
	import sys, xml.etree.ElementTree as ET
	path, out, modules = sys.argv[1], sys.argv[2], sys.argv[3].split()
	failed, seen, total, skipped = [], set(), 0, 0
	try:
	    cases = ET.parse(path).getroot().iter('testcase')
	except (OSError, ET.ParseError):
	    cases = []
	for case in cases:
	    name = case.get('name', '?')
	    total += 1
	    seen.update(m for m in modules if name.startswith('test.' + m + '.'))
	    kinds = {child.tag for child in case}
	    if kinds & {'failure', 'error'}:
	        failed.append(name)
	    elif 'skipped' in kinds:
	        skipped += 1
	failed += [m + ' (no result)' for m in modules if m not in seen]
	with open(out, 'w') as f:
	    f.writelines(n + '\n' for n in sorted(failed))
	print(f'{total} tests, {total - len(failed) - skipped} passed, '
	      f'{len(failed)} failed, {skipped} skipped')
	EOF
}

# One regrtest run in a directory of its own; $1 is plain or cfork.
regrtest() {
	dir=$tmp/$1
	mkdir -p "$dir"
	set -- "$1" "$py" -m test -j"$jobs" --timeout "$test_bound" \
		-u "$resources" --junit-xml "$dir/junit.xml" $tests
	start=$(date +%s)
	: >"$dir/forklog"
	LD_PRELOAD=$tmp/forklog.so${LD_PRELOAD:+:$LD_PRELOAD}
	CLIENTS_FORKLOG=$dir/forklog
	export LD_PRELOAD CLIENTS_FORKLOG
	if [ "$1" = cfork ]; then
		shift
		(cd "$dir" && TMPDIR=$dir timeout "$run_bound" "$CFORK_RUN" -- \
			"$@" >"$dir/out" 2>&1)
	else
		shift
		(cd "$dir" && TMPDIR=$dir timeout "$run_bound" "$@" \
			>"$dir/out" 2>&1)
	fi
	rc=$?
	secs=$(($(date +%s) - start))
	unset CLIENTS_FORKLOG
	LD_PRELOAD=${LD_PRELOAD#"$tmp/forklog.so"}
	LD_PRELOAD=${LD_PRELOAD#:}
	[ -n "$LD_PRELOAD" ] || unset LD_PRELOAD
}

# The counts of a fork log (see tests/clients-forklog.c): forks in
# processes with libcfork, forks in processes without it, cforks, coherent
# ones, and the medians of their quiesce and fork times in microseconds.
forklog_counts() {
	awk '$1 == "fork" { f[$3]++ }
	     $1 == "cfork" { c++; coh += $4 == 1 }
	     END { printf "%d %d %d %d ", f[1], f[0], c, coh }' "$1"
	awk '$1 == "cfork" { print $6 }' "$1" | median | tr '\n' ' '
	awk '$1 == "cfork" { print $7 }' "$1" | median
}

regrtest plain
plain_rc=$rc plain_secs=$secs
plain_sum=$(junit_summary "$tmp/plain/junit.xml" "$tmp/plain/failed")
say "without the shim: $plain_sum, regrtest exit $plain_rc, $plain_secs s"
regrtest cfork
cfork_rc=$rc cfork_secs=$secs
cfork_sum=$(junit_summary "$tmp/cfork/junit.xml" "$tmp/cfork/failed")
say "under cfork-run:  $cfork_sum, regrtest exit $cfork_rc, $cfork_secs s"
set -- $(forklog_counts "$tmp/plain/forklog")
plain_forks=$(($1 + $2))
set -- $(forklog_counts "$tmp/cfork/forklog")
cfork_forks=$1 other_forks=$2 cforks=$3 coherent=$4 quiesce_us=$5 fork_us=$6
say "forks: $plain_forks without the shim; with it $cfork_forks in" \
	"processes with libcfork ($other_forks in others: cfork-run's" \
	"shell), $cforks through cfork(), $coherent coherent; medians:" \
	"quiesce $quiesce_us us, libc's fork() inside cfork $fork_us us"

both=$(comm -12 "$tmp/plain/failed" "$tmp/cfork/failed")
only=$(comm -13 "$tmp/plain/failed" "$tmp/cfork/failed")
[ -z "$both" ] || say "failing in both runs (the machine, not libcfork):" \
	$both

# A test that failed only under the shim runs again, alone, under it: one
# that passes then was disturbed by the load of the parallel run.
regressions= flaky=
for id in $only; do
	case $id in
	*"(no result)"*)
		regressions="$regressions $id"
		continue ;;
	esac
	# The module of the list that the id is in (test_asyncio.test_x's
	# ids have three dotted parts before the class).
	module=
	for m in $tests; do
		case $id in "test.$m."*) module=$m ;; esac
	done
	if (cd "$tmp/cfork" && TMPDIR=$tmp/cfork timeout "$test_bound" \
		"$CFORK_RUN" -- "$py" -m test -v --timeout "$test_bound" \
		-u "$resources" "${module:-$(echo "$id" | cut -d. -f2)}" \
		-m "$id" >"$tmp/rerun.out" 2>&1) &&
		grep -q '^Ran 1 test' "$tmp/rerun.out"; then
		flaky="$flaky $id"
	else
		regressions="$regressions $id"
		say "fails again under the shim: $id"
		sed -n '/^\(FAIL\|ERROR\):/,/^---*$/p; /^Traceback/,/^[A-Za-z]*Error/p' \
			"$tmp/rerun.out" | head -n 40
	fi
done
[ -z "$flaky" ] || say "failed once under the shim, passed alone:" $flaky
if [ -n "$only" ]; then
	say "output of the run under the shim:"
	grep -v '^0:' "$tmp/cfork/out" | head -n 60
fi

nregress=$(echo $regressions | wc -w)
line="without the shim $plain_sum ($plain_secs s);"
line="$line under cfork-run $cfork_sum ($cfork_secs s);"
line="$line $nregress failing only under the shim"
[ $nregress -eq 0 ] || line="$line:$regressions"
line="$line; forks $plain_forks without, $cfork_forks with,"
line="$line cfork $coherent/$cforks coherent"
say "$line"
verdict=ok
[ $nregress -eq 0 ] || verdict=FAILED
# Every fork of a process with libcfork went through cfork(), coherent.
[ "$cforks" -gt 0 ] && [ "$cforks" -eq "$cfork_forks" ] &&
	[ "$coherent" -eq "$cforks" ] || verdict=FAILED
printf 'cpython: %s: %s\n' "$verdict" "$line" >>"$summary_file"
[ $verdict = ok ]
