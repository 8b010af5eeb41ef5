#!/bin/sh
# SPDX-License-Identifier: MIT
# OpenJDK under the shim (make check-clients).  Debian's OpenJDK 17 runs
# tests/ForkClient.java (compiled here with javac): busy threads that spin
# and allocate, and a pool that launches 200 processes with
# -Djdk.lang.Process.launchMechanism=FORK, so that libjava calls fork();
# every exit status and output is checked.  Once plainly and once under
# cfork-run, with a flight recording (its sampler suspends threads with
# the JVM's SIGUSR2), a jcmd Thread.print and a SIGQUIT thread dump taken
# from the running JVM; under the shim every launch must be a coherent
# cfork (CFORK_DEBUG's lines).  Then the JVM's own signal handlers, which
# run behind libcfork's trampoline under the shim, are timed: a loop of
# implicit null checks (each a SIGSEGV in interpreted code), five times
# each way, alternately.  Last, a short run each way with -Xcheck:jni,
# which compares the JVM's signal handlers with what sigaction reads back:
# a warning about a handler that appears only under the shim fails.
# Timings are printed, not checked.
#
# Environment: CFORK_RUN (required) the cfork-run to test;
# CLIENTS_LAUNCHES (200) processes per run; CLIENTS_NPE (100000) null
# checks per timing run; CLIENTS_JAVA_HOME (the java on PATH) a JDK to
# use instead; CLIENTS_SUMMARY, a file the summary line is appended to.
set -u

launches=${CLIENTS_LAUNCHES:-200}
npes=${CLIENTS_NPE:-100000}
summary_file=${CLIENTS_SUMMARY:-/dev/null}
run_bound=1200        # seconds for one JVM run
start_bound=600       # tenths of a second for the launches to start

part=jvm
. "$(dirname "$0")/clients-lib.sh"

if [ -z "${CFORK_RUN:-}" ] || [ ! -x "$CFORK_RUN" ]; then
	echo "clients-jvm.sh: CFORK_RUN must name the cfork-run to test" >&2
	exit 99
fi
for tool in timeout awk sort; do
	command -v $tool >/dev/null 2>&1 || skip "$tool not found"
done

bin=
[ -n "${CLIENTS_JAVA_HOME:-}" ] && bin=$CLIENTS_JAVA_HOME/bin/
have_jdk() {
	for tool in java javac jcmd jfr; do
		[ -n "$bin" ] && { [ -x "$bin$tool" ] || return 1; continue; }
		command -v $tool >/dev/null 2>&1 || return 1
	done
}
need have_jdk openjdk-17-jdk-headless
say "$("${bin}java" -version 2>&1 | sed -n 2p)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfork-jvm.XXXXXX") || fail "mktemp -d"
jvm=
cleanup() {
	if [ -n "$jvm" ]; then
		kill "$jvm" 2>/dev/null     # timeout kills the JVM
		wait "$jvm" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 2' HUP INT TERM

mkdir "$tmp/classes"
"${bin}javac" -d "$tmp/classes" "$(dirname "$0")/ForkClient.java" \
	>"$tmp/javac.out" 2>&1 || { cat "$tmp/javac.out"; fail "javac failed"; }

# FORK: libjava's launch calls fork() (the default, POSIX_SPAWN, runs
# jspawnhelper through posix_spawn, which the shim leaves alone).  The null
# check loop stays interpreted (see ForkClient.npeLoop).
jopts="-Xmx256m -Djdk.lang.Process.launchMechanism=FORK"
jopts="$jopts -XX:CompileCommand=quiet"
jopts="$jopts -XX:CompileCommand=exclude,ForkClient::npeLoop"

# start OUT ERR MODE ARGS...: starts the JVM in the background, under
# cfork-run (with CFORK_DEBUG) when MODE is cfork, killed after run_bound
# seconds (a hang fails the run).
start() {
	so=$1 se=$2 how=$3
	shift 3
	if [ "$how" = cfork ]; then
		timeout -s KILL $run_bound env CFORK_DEBUG=1 "$CFORK_RUN" -- \
			"${bin}java" "$@" >"$so" 2>"$se" &
	else
		timeout -s KILL $run_bound "${bin}java" "$@" >"$so" 2>"$se" &
	fi
	jvm=$!
}
# finish: waits for that JVM; sets rc.
finish() {
	wait $jvm
	rc=$?
	jvm=
}

# value KEY FILE: KEY's value in the RESULT line of FILE.
value() {
	sed -n 's/^RESULT //p' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}
median() { sort -n | awk '{ v[NR] = $1 } END {
	if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2];
	else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" \
	'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }

# One run with the launches; $1 is plain or cfork.  While the pool
# launches, jcmd prints the threads and SIGQUIT makes the JVM print them;
# the JVM then waits at its gate until both are seen.  Sets rc, secs,
# dumps (jcmd and SIGQUIT dumps seen, 0 to 2) and samples (the
# recording's jdk.ExecutionSample events).
run() {
	dir=$tmp/$1
	mkdir "$dir"
	begin=$(date +%s)
	start "$dir/out" "$dir/err" "$1" $jopts \
		-XX:StartFlightRecording=filename="$dir/rec.jfr",settings=profile \
		-cp "$tmp/classes" ForkClient --launches "$launches" \
		--npe 20000 --gate "$dir/gate"
	i=0
	while ! grep -q '^forking pid=' "$dir/out" 2>/dev/null; do
		kill -0 $jvm 2>/dev/null || break
		[ $i -lt $start_bound ] || break
		sleep 0.1
		i=$((i + 1))
	done
	pid=$(sed -n 's/^forking pid=//p' "$dir/out")
	dumps=0
	if [ -n "$pid" ]; then
		if timeout 120 "${bin}jcmd" "$pid" Thread.print \
			>"$dir/jcmd.out" 2>&1 &&
			grep -q '^"busy-0"' "$dir/jcmd.out"; then
			dumps=$((dumps + 1))
		else
			say "$1: jcmd Thread.print failed:"
			tail -n 5 "$dir/jcmd.out"
		fi
		kill -QUIT "$pid"
		i=0
		while ! grep -q '^Full thread dump' "$dir/out" &&
			[ $i -lt 600 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		grep -q '^Full thread dump' "$dir/out" && dumps=$((dumps + 1)) ||
			say "$1: no thread dump after SIGQUIT"
	else
		say "$1: the launches did not start"
		cat "$dir/out" "$dir/err" | tail -n 20
	fi
	: >"$dir/gate"
	finish
	secs=$(($(date +%s) - begin))
	samples=$("${bin}jfr" summary "$dir/rec.jfr" 2>/dev/null |
		awk '$1 == "jdk.ExecutionSample" { print $2 }')
	samples=${samples:-0}
	grep '^FAIL' "$dir/out"
	say "$1: exit $rc, $(sed -n 's/^RESULT //p' "$dir/out"), JFR" \
		"samples $samples, thread dumps $dumps/2, $secs s"
}

run plain
plain_rc=$rc plain_dumps=$dumps plain_samples=$samples plain_secs=$secs
plain_ok=$(value ok "$tmp/plain/out")
plain_ms=$(value launch_ms "$tmp/plain/out")
run cfork
cfork_rc=$rc cfork_dumps=$dumps cfork_samples=$samples cfork_secs=$secs
cfork_ok=$(value ok "$tmp/cfork/out")
cfork_ms=$(value launch_ms "$tmp/cfork/out")

# Under the shim each fork is a cfork that CFORK_DEBUG reports on stderr.
log=$tmp/cfork/err
cforks=$(grep -c 'libcfork: cfork: pid' "$log")
coherent=$(grep 'libcfork: cfork: pid .*method quiesce' "$log" |
	grep -c ', coherent:')
parked=$(sed -n 's/.*method quiesce.*parked \([0-9]*\) .*/\1/p' "$log" |
	median)
quiesce_us=$(sed -n 's/.*method quiesce.* quiesce \([0-9]*\) us.*/\1/p' \
	"$log" | median)
quiesce_max=$(sed -n 's/.*method quiesce.* quiesce \([0-9]*\) us.*/\1/p' \
	"$log" | sort -n | tail -n 1)
say "cfork: $cforks forks through cfork for $launches launches, $coherent" \
	"coherent, median $parked threads parked; quiesce median" \
	"$quiesce_us us, max $quiesce_max us"
grep 'libcfork:' "$log" | grep -v 'method quiesce, coherent' | head -n 20

# That the loop is a loop of signals: strace counts the SIGSEGVs of 2000
# null checks (under the shim, where every one must reach the JVM's
# handler through the trampoline for the loop to catch them all).
if command -v strace >/dev/null 2>&1; then
	timeout 600 strace -f -qq -e trace=none -e signal=SIGSEGV \
		-o "$tmp/segv" env CFORK_DEBUG=1 "$CFORK_RUN" -- "${bin}java" \
		$jopts -cp "$tmp/classes" ForkClient --launches 0 --busy 0 \
		--npe 2000 >"$tmp/segv.out" 2>&1
	say "2000 null checks under the shim and strace: exit $?," \
		"$(grep -c -- '--- SIGSEGV' "$tmp/segv") SIGSEGVs," \
		"$(value caught "$tmp/segv.out") NullPointerExceptions caught"
fi

# The JVM's SIGSEGV handler behind the trampoline: the null-check loop
# alone (no launches, no busy threads, so no collections), alternately
# without and with the shim, five times each: medians.
: >"$tmp/npe-plain" && : >"$tmp/npe-cfork"
npe_bad=0
for round in 1 2 3 4 5; do
	for mode in plain cfork; do
		start "$tmp/npe.out" "$tmp/npe.err" "$mode" $jopts \
			-cp "$tmp/classes" ForkClient --launches 0 --busy 0 --npe "$npes"
		finish
		[ $rc -eq 0 ] || npe_bad=$((npe_bad + 1))
		[ "$(value caught "$tmp/npe.out")" = "$npes" ] ||
			npe_bad=$((npe_bad + 1))
		value npe_ms "$tmp/npe.out" >>"$tmp/npe-$mode"
	done
done
npe_plain=$(median <"$tmp/npe-plain")
npe_cfork=$(median <"$tmp/npe-cfork")
say "null checks (SIGSEGV): $npes in $npe_cfork ms with the shim," \
	"$npe_plain ms without (medians of 5; with: $(tr '\n' ' ' <"$tmp/npe-cfork")" \
	"without: $(tr '\n' ' ' <"$tmp/npe-plain")), ratio $(ratio "$npe_cfork" "$npe_plain")"

# -Xcheck:jni: the JVM compares its handlers with what sigaction reads back.
for mode in plain cfork; do
	start "$tmp/xcheck-$mode" "$tmp/xcheck-$mode.err" "$mode" -Xcheck:jni \
		$jopts -cp "$tmp/classes" ForkClient --launches 50 --npe 5000
	finish
	cat "$tmp/xcheck-$mode.err" >>"$tmp/xcheck-$mode"
	echo "exit $rc" >>"$tmp/xcheck-$mode"
done
xwarn() { grep -v '^libcfork:' "$1" | grep -ci 'handler\|signal'; }
xcheck_plain=$(xwarn "$tmp/xcheck-plain")
xcheck_cfork=$(xwarn "$tmp/xcheck-cfork")
for mode in plain cfork; do
	grep -v '^libcfork:' "$tmp/xcheck-$mode" | grep -i 'handler\|signal' |
		head -n 10 | sed "s/^/$mode: /"
	grep -q '^exit 0$' "$tmp/xcheck-$mode" ||
		{ say "-Xcheck:jni run $mode failed:"; tail -n 5 "$tmp/xcheck-$mode"; }
done
xcheck_ok=1
grep -q '^exit 0$' "$tmp/xcheck-plain" && grep -q '^exit 0$' "$tmp/xcheck-cfork" ||
	xcheck_ok=0

line="launches ok $cfork_ok/$launches with the shim, $plain_ok/$launches without;"
line="$line cfork $cforks forks ($coherent coherent, median $parked parked,"
line="$line quiesce median $quiesce_us us max $quiesce_max us) for $launches launches;"
line="$line launches $cfork_ms ms with, $plain_ms ms without;"
line="$line $npes null-check SIGSEGVs $npe_cfork ms with, $npe_plain ms without:"
line="$line ratio $(ratio "$npe_cfork" "$npe_plain");"
line="$line JFR samples (SIGUSR2) $cfork_samples in $cfork_secs s with,"
line="$line $plain_samples in $plain_secs s without;"
line="$line thread dumps (jcmd, SIGQUIT) $cfork_dumps/2 with, $plain_dumps/2 without;"
line="$line -Xcheck:jni signal warnings $xcheck_cfork with, $xcheck_plain without"
say "$line"

verdict=ok
[ "$plain_rc" -eq 0 ] && [ "$cfork_rc" -eq 0 ] || verdict=FAILED
[ "${plain_ok:-0}" -eq "$launches" ] && [ "${cfork_ok:-0}" -eq "$launches" ] ||
	verdict=FAILED
[ "$cforks" -eq "$launches" ] && [ "$coherent" -eq "$launches" ] || verdict=FAILED
[ "$plain_dumps" -eq 2 ] && [ "$cfork_dumps" -eq 2 ] || verdict=FAILED
[ "$plain_samples" -gt 0 ] && [ "$cfork_samples" -gt 0 ] || verdict=FAILED
[ "$npe_bad" -eq 0 ] || verdict=FAILED
[ "$xcheck_ok" -eq 1 ] && [ "$xcheck_cfork" -le "$xcheck_plain" ] || verdict=FAILED
printf 'jvm: %s: %s\n' "$verdict" "$line" >>"$summary_file"
[ $verdict = ok ]
