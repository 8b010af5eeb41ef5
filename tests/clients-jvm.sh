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
# run behind libcfork's trampoline under the shim: strace counts the
# SIGSEGVs and rt_sigprocmask calls of 2000 implicit null checks each way
# (the trampoline may add no call per signal), and a loop of null checks
# is timed five times each way, alternately.  Last, a short run each way
# with -Xcheck:jni, which compares the JVM's signal handlers with what
# sigaction reads back: a warning about a handler that appears only under
# the shim fails; and the same with a handler really replaced (a preloaded
# library built here), where the warning must come both ways.  Timings are
# printed, not checked.
#
# Environment: CFORK_RUN (required) the cfork-run to test;
# CLIENTS_LAUNCHES (200) processes per run; CLIENTS_NPE (100000) null
# checks per timing run; CLIENTS_JAVA_HOME (the java on PATH) a JDK to
# use instead; CC (cc) builds the control's library; CLIENTS_SUMMARY, a
# file the summary line is appended to.
set -u

launches=${CLIENTS_LAUNCHES:-200}
npes=${CLIENTS_NPE:-100000}
summary_file=${CLIENTS_SUMMARY:-/dev/null}
run_bound=1200        # seconds for one JVM run
start_bound=600       # tenths of a second for the launches to start

part=jvm
. "$(dirname "$0")/clients-lib.sh"
tools timeout awk sort

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
# seconds (a hang fails the run); start_env is put in its environment.
start_env=
start() {
	so=$1 se=$2 how=$3
	shift 3
	if [ "$how" = cfork ]; then
		timeout -s KILL $run_bound env $start_env CFORK_DEBUG=1 \
			"$CFORK_RUN" -- "${bin}java" "$@" >"$so" 2>"$se" &
	else
		timeout -s KILL $run_bound env $start_env "${bin}java" "$@" \
			>"$so" 2>"$se" &
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
cfork_stats "$tmp/cfork/err" "$launches"

# That the loop is a loop of signals, and what each costs in system
# calls: strace counts the SIGSEGVs and rt_sigprocmask calls of 2000 null
# checks with and without the shim.  The JVM's handler makes one
# rt_sigprocmask of its own per signal (it unblocks the error signals);
# the trampoline must add none, so the two counts may differ only by what
# libcfork does at start-up, far fewer than the checks.
st_bad=0
# straced MODE: prints the exit status, SIGSEGVs, rt_sigprocmask calls
# and exceptions caught of 2000 null checks under strace.
straced() {
	if [ "$1" = cfork ]; then
		set -- env CFORK_DEBUG=1 "$CFORK_RUN" -- "${bin}java"
	else
		set -- "${bin}java"
	fi
	timeout 600 strace -f -qq -e trace=rt_sigprocmask -e signal=SIGSEGV \
		-o "$tmp/strace" "$@" $jopts -cp "$tmp/classes" ForkClient \
		--launches 0 --busy 0 --npe 2000 >"$tmp/strace.out" 2>&1
	c=$?
	echo "$c $(grep -c -- '--- SIGSEGV' "$tmp/strace")" \
		"$(grep -c 'rt_sigprocmask(' "$tmp/strace")" \
		"$(value caught "$tmp/strace.out" | grep . || echo 0)"
}
if command -v strace >/dev/null 2>&1; then
	set -- $(straced plain) $(straced cfork)
	[ "$1" -eq 0 ] && [ "$5" -eq 0 ] || st_bad=1
	segv_plain=$2 mask_plain=$3 caught_plain=$4
	segv_cfork=$6 mask_cfork=$7 caught_cfork=$8
	say "2000 null checks under strace: SIGSEGVs $segv_cfork with the shim," \
		"$segv_plain without; rt_sigprocmask calls $mask_cfork with," \
		"$mask_plain without; NullPointerExceptions caught $caught_cfork" \
		"with, $caught_plain without"
	[ "$caught_cfork" = 2000 ] && [ "$caught_plain" = 2000 ] &&
		[ "$segv_cfork" -ge 2000 ] &&
		[ $((mask_cfork - mask_plain)) -lt 1000 ] || st_bad=1
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

# The control: that the check runs, and is heard, within such a run.  A
# preloaded library replaces the JVM's SIGXFSZ handler with SIG_IGN once
# the JVM has installed it (a raw rt_sigaction, which libcfork does not
# see either: it then reads back the kernel's action): -Xcheck:jni must
# warn of that one handler, both ways, and list the others as they were.
xcontrol=skipped
cc=${CC:-cc}
cat >"$tmp/replace.c" <<'EOF_C'
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The kernel's struct sigaction on x86-64. */
struct ksa {
	void *handler;
	unsigned long flags;
	void *restorer;
	unsigned long mask;
};

static void *replace(void *arg)
{
	(void)arg;
	for (int i = 0; i < 6000; i++) {   /* a minute, in 10 ms steps */
		struct ksa k;
		memset(&k, 0, sizeof k);
		if (syscall(SYS_rt_sigaction, SIGXFSZ, NULL, &k, 8) == 0 &&
		    k.handler != (void *)SIG_DFL) {
			struct ksa ign = { (void *)SIG_IGN, 0, NULL, 0 };
			syscall(SYS_rt_sigaction, SIGXFSZ, &ign, NULL, 8);
			return NULL;
		}
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

__attribute__((constructor)) static void start_replace(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, replace, NULL) == 0)
		pthread_detach(t);
}
EOF_C
if "$cc" -shared -fPIC -pthread -o "$tmp/replace.so" "$tmp/replace.c" \
	>"$tmp/cc.out" 2>&1; then
	xcontrol=ok
	for mode in plain cfork; do
		start_env="LD_PRELOAD=$tmp/replace.so"
		start "$tmp/xctl-$mode" "$tmp/xctl-$mode.err" "$mode" \
			-Xcheck:jni $jopts -cp "$tmp/classes" ForkClient \
			--launches 50 --npe 5000
		finish
		start_env=
		cat "$tmp/xctl-$mode.err" >>"$tmp/xctl-$mode"
		w=$(grep -c 'SIGXFSZ handler modified' "$tmp/xctl-$mode")
		m=$(grep -c 'Handler was modified' "$tmp/xctl-$mode")
		say "-Xcheck:jni control $mode: exit $rc, \"SIGXFSZ handler" \
			"modified\" $w, handlers listed as modified $m"
		[ $rc -eq 0 ] && [ "$w" -ge 1 ] && [ "$m" -eq 1 ] ||
			xcontrol=FAILED
	done
else
	say "-Xcheck:jni control left out: $cc cannot build a library"
	cat "$tmp/cc.out"
fi
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
line="$line quiesce median $quiesce_us us max $quiesce_max us, stopped $stopped_ms ms in all) for $launches launches;"
line="$line launches $cfork_ms ms with, $plain_ms ms without;"
line="$line $npes null-check SIGSEGVs $npe_cfork ms with, $npe_plain ms without:"
line="$line ratio $(ratio "$npe_cfork" "$npe_plain");"
[ -n "${mask_cfork:-}" ] &&
	line="$line rt_sigprocmask for 2000 null checks $mask_cfork with, $mask_plain without;"
line="$line JFR samples (SIGUSR2) $cfork_samples in $cfork_secs s with,"
line="$line $plain_samples in $plain_secs s without;"
line="$line thread dumps (jcmd, SIGQUIT) $cfork_dumps/2 with, $plain_dumps/2 without;"
line="$line -Xcheck:jni signal warnings $xcheck_cfork with, $xcheck_plain without"
line="$line (control, a handler replaced: $xcontrol)"
say "$line"

verdict=ok
[ "$plain_rc" -eq 0 ] && [ "$cfork_rc" -eq 0 ] || verdict=FAILED
[ "${plain_ok:-0}" -eq "$launches" ] && [ "${cfork_ok:-0}" -eq "$launches" ] ||
	verdict=FAILED
[ "$cforks" -eq "$launches" ] && [ "$coherent" -eq "$launches" ] || verdict=FAILED
[ "$plain_dumps" -eq 2 ] && [ "$cfork_dumps" -eq 2 ] || verdict=FAILED
[ "$plain_samples" -gt 0 ] && [ "$cfork_samples" -gt 0 ] || verdict=FAILED
[ "$npe_bad" -eq 0 ] || verdict=FAILED
[ "$st_bad" -eq 0 ] || verdict=FAILED
[ "$xcheck_ok" -eq 1 ] && [ "$xcheck_cfork" -le "$xcheck_plain" ] || verdict=FAILED
[ "$xcontrol" != FAILED ] || verdict=FAILED
printf 'jvm: %s: %s\n' "$verdict" "$line" >>"$summary_file"
[ $verdict = ok ]
