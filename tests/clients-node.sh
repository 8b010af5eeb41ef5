#!/bin/sh
# SPDX-License-Identifier: MIT
# Node.js under the shim (make check-clients).  tests/clients-node.js runs
# two worker_threads on CPU work and keeps libuv's thread pool busy with
# crypto.pbkdf2 and fs.readFile while the main thread makes 200
# child_process.execFile launches, each checked; once plainly and once
# under cfork-run.  libuv's uv_spawn forks with fork() on Linux (libuv
# 1.44 of Debian 12's libuv1, and 1.46 as built into Node 20), so under
# the shim every launch must be a coherent cfork (CFORK_DEBUG's lines):
# first a plain run under strace counts how the children are made (clones
# like fork()'s, without CLONE_VM or CLONE_VFORK), and were they not, this
# script would say so and expect no cfork at all.  Timings are printed,
# not checked.
#
# Environment: CFORK_RUN (required) the cfork-run to test; CLIENTS_NODE
# (node or nodejs on PATH; Debian's nodejs is installed when there is
# neither) a node to use; CLIENTS_LAUNCHES (200) launches per run;
# CLIENTS_SUMMARY, a file the summary line is appended to.
set -u

launches=${CLIENTS_LAUNCHES:-200}
summary_file=${CLIENTS_SUMMARY:-/dev/null}
run_bound=1200        # seconds for one run

part=node
. "$(dirname "$0")/clients-lib.sh"
tools timeout awk sort

# A node already installed (NodeSource's 20, say, with libuv built in) is
# used as it is, not replaced: only where there is none is Debian 12's
# nodejs installed (18, whose libnode108 is linked with Debian's libuv1).
if [ -n "${CLIENTS_NODE:-}" ]; then
	node=$CLIENTS_NODE
	command -v "$node" >/dev/null 2>&1 || skip "$node not found"
else
	have_node() {
		node=$(command -v node || command -v nodejs) 2>/dev/null
	}
	need have_node nodejs
fi
script=$(dirname "$0")/clients-node.js
versions=$("$node" -p 'process.version + ", libuv " + process.versions.uv +
	(process.config.variables.node_shared_libuv ? " (shared)" : " (built in)")') ||
	fail "$node does not run"
say "$node: $versions"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfork-node.XXXXXX") || fail "mktemp -d"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 2' HUP INT TERM

value() {
	sed -n 's/^RESULT //p' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# How libuv makes a child here, over a whole plain run under strace (the
# same launches, neither timed nor counted below): fork() is a clone with
# SIGCHLD and without CLONE_VM; vfork() and posix_spawn() add
# CLONE_VM|CLONE_VFORK; threads are CLONE_VM|CLONE_THREAD.  A call split
# by another thread's output has its flags in its first half ("<unfinished
# ...>"), which is the line counted.  Without strace, fork() is assumed,
# and the count of cforks below tells.
forks=yes
if command -v strace >/dev/null 2>&1; then
	timeout -s KILL $run_bound strace -f -qq \
		-e trace=clone,clone3,fork,vfork -o "$tmp/strace" \
		"$node" "$script" "$launches" >"$tmp/strace.out" 2>&1
	src=$?
	calls=$(grep -v 'resumed>' "$tmp/strace" |
		grep -E '(clone|clone3|fork|vfork)\(' || true)
	st_threads=$(printf '%s\n' "$calls" | grep -c 'CLONE_THREAD')
	st_vforks=$(printf '%s\n' "$calls" | grep -v 'CLONE_THREAD' |
		grep -c -E 'CLONE_VFORK|vfork\(')
	st_forks=$(printf '%s\n' "$calls" | grep -E 'clone3?\(|fork\(' |
		grep -v -E 'CLONE_VM|CLONE_THREAD|vfork\(' | grep -c .)
	st_ok=$(value ok "$tmp/strace.out")
	say "plain under strace -f -e trace=clone,clone3,fork,vfork: exit $src," \
		"${st_ok:-0}/$launches launches ok; $st_forks fork() clones" \
		"(SIGCHLD, no CLONE_VM), $st_vforks vfork-like, $st_threads threads"
	grep -v 'resumed>' "$tmp/strace" | grep -v CLONE_THREAD |
		grep -E '(clone|clone3|fork|vfork)\(' | head -n 1 |
		sed "s/^/$part: first: /"
	if [ "$st_vforks" -gt 0 ] && [ "$st_forks" -eq 0 ]; then
		forks=no
	elif [ "$st_forks" -lt "$launches" ]; then
		forks=unknown
	fi
fi

# One run; $1 is plain or cfork.  Sets rc and secs.
run() {
	dir=$tmp/$1
	mkdir "$dir"
	begin=$(date +%s)
	if [ "$1" = cfork ]; then
		CFORK_DEBUG=1 timeout -s KILL $run_bound "$CFORK_RUN" -- \
			"$node" "$script" "$launches" >"$dir/out" 2>"$dir/err"
	else
		timeout -s KILL $run_bound "$node" "$script" "$launches" \
			>"$dir/out" 2>"$dir/err"
	fi
	rc=$?
	secs=$(($(date +%s) - begin))
	grep '^FAIL\|^ERROR' "$dir/out"
	say "$1: exit $rc, $(sed -n 's/^RESULT //p' "$dir/out"), $secs s"
	[ $rc -eq 0 ] || tail -n 20 "$dir/err"
}

run plain
plain_rc=$rc
plain_ok=$(value ok "$tmp/plain/out")
plain_ms=$(value launch_ms "$tmp/plain/out")
run cfork
cfork_rc=$rc
cfork_ok=$(value ok "$tmp/cfork/out")
cfork_ms=$(value launch_ms "$tmp/cfork/out")

cfork_stats "$tmp/cfork/err" "$launches"

ratio=$(awk -v a="$cfork_ms" -v b="$plain_ms" \
	'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }')
line="$versions, fork() in uv_spawn: $forks"
[ -n "${st_forks:-}" ] &&
	line="$line (strace: $st_forks fork clones, $st_vforks vfork-like)"
line="$line;"
line="$line launches ok $cfork_ok/$launches with the shim, $plain_ok/$launches without;"
line="$line cfork $cforks forks ($coherent coherent, median $parked parked,"
line="$line quiesce median $quiesce_us us max $quiesce_max us, stopped $stopped_ms ms in all) for $launches launches;"
line="$line launches $cfork_ms ms with, $plain_ms ms without: ratio $ratio"
say "$line"

# Every launch a coherent cfork where libuv forks; none where it does not
# (the shim then has nothing to do, and nothing may break).
case $forks in
no) want=0 ;;
*) want=$launches ;;
esac
verdict=ok
[ "$plain_rc" -eq 0 ] && [ "$cfork_rc" -eq 0 ] || verdict=FAILED
[ "${plain_ok:-0}" -eq "$launches" ] && [ "${cfork_ok:-0}" -eq "$launches" ] ||
	verdict=FAILED
[ "$cforks" -eq "$want" ] && [ "$coherent" -eq "$want" ] || verdict=FAILED
printf 'node: %s: %s\n' "$verdict" "$line" >>"$summary_file"
[ $verdict = ok ]
