#!/bin/sh
# SPDX-License-Identifier: MIT
# Redis under the shim (make check-clients).  Debian's redis-server with
# four I/O threads, loaded with random writes by redis-benchmark, makes 20
# BGSAVEs once plainly and once under cfork-run, and that three times over,
# the two kinds of run taking turns so that a change in the machine's load
# falls on both.  Every save must succeed and every dump must pass
# redis-check-rdb; under the shim every fork must be a coherent cfork
# (CFORK_DEBUG's lines).  Prints latest_fork_usec, median of the 20 saves
# of each run, the median of those medians with and without the shim, and
# their ratio; and where a cfork's time went (CFORK_DEBUG's quiesce and
# fork times).  No time is asserted: the machine's load decides them.
#
# Environment: CFORK_RUN (required) the cfork-run to test;
# CLIENTS_SAVES (20) saves per run; CLIENTS_REDIS_RUNS (3) runs each way;
# CLIENTS_KEYS (200000) keys loaded before the first save;
# CLIENTS_SUMMARY, a file the summary line is appended to.
set -u

saves=${CLIENTS_SAVES:-20}
runs=${CLIENTS_REDIS_RUNS:-3}
keys=${CLIENTS_KEYS:-200000}
summary_file=${CLIENTS_SUMMARY:-/dev/null}
save_bound=120        # seconds one BGSAVE may take
start_bound=100       # tenths of a second for the server to answer

part=redis
. "$(dirname "$0")/clients-lib.sh"
tools timeout awk sort od

# Debian's packages, installed here when missing (the target is not part of
# make check, so CI's package list does not carry them).
have_redis() {
	for tool in redis-server redis-cli redis-benchmark redis-check-rdb; do
		command -v $tool >/dev/null 2>&1 || return 1
	done
}
need have_redis redis-server redis-tools

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfork-redis.XXXXXX") || fail "mktemp -d"
server=
bench=
stop_pid() {
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
cleanup() {
	stop_pid "$bench"
	stop_pid "$server"
	bench= server=
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 2' HUP INT TERM

port=
cli() { timeout 10 redis-cli -h 127.0.0.1 -p "$port" "$@"; }
# One field of INFO, e.g. info persistence rdb_bgsave_in_progress.
info() { cli info "$1" | tr -d '\r' | awk -F: -v k="$2" '$1 == k { print $2 }'; }

# Starts redis-server in $dir, on a free port, under cfork-run when $1
# is cfork; a port already taken makes it exit at once, so another is tried.
start_server() {
	mkdir -p "$dir"
	attempt=0
	while [ $attempt -lt 20 ]; do
		attempt=$((attempt + 1))
		port=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
		cat >"$dir/redis.conf" <<-EOF
		bind 127.0.0.1
		port $port
		protected-mode yes
		daemonize no
		dir $dir
		logfile $dir/redis.log
		dbfilename dump.rdb
		save ""
		appendonly no
		io-threads 4
		io-threads-do-reads yes
		enable-debug-command local
		EOF
		if [ "$1" = cfork ]; then
			CFORK_DEBUG=1 "$CFORK_RUN" -- redis-server \
				"$dir/redis.conf" >"$dir/stdout" 2>"$dir/stderr" &
		else
			redis-server "$dir/redis.conf" \
				>"$dir/stdout" 2>"$dir/stderr" &
		fi
		server=$!
		i=0
		while [ $i -lt $start_bound ]; do
			kill -0 $server 2>/dev/null || break
			[ "$(cli ping 2>/dev/null)" = PONG ] && return 0
			sleep 0.1
			i=$((i + 1))
		done
		if kill -0 $server 2>/dev/null; then
			fail "$1: redis-server did not answer within $((start_bound / 10)) s"
		fi
		wait $server 2>/dev/null
		server=
		grep -q "Address already in use" "$dir/redis.log" "$dir/stderr" \
			2>/dev/null || { cat "$dir/redis.log" "$dir/stderr"; \
			fail "$1: redis-server did not start"; }
	done
	fail "$1: no free port found in 20 attempts"
}

# Waits for the save in progress (if any) to end.
wait_save() {
	i=0
	while [ $i -lt $((save_bound * 10)) ]; do
		[ "$(info persistence rdb_bgsave_in_progress)" = 0 ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# One run: server, data, load, $saves BGSAVEs; $1 is plain or cfork, $2
# the run's number.  Leaves $tmp/$1-$2/forks (latest_fork_usec per save)
# and sets ok (saves with status ok) and rdb_ok (dumps redis-check-rdb
# took).
run() {
	begin=$(date +%s)
	dir=$tmp/$1-$2
	start_server "$1"
	out=$(cli debug populate "$keys" key 64) ||
		fail "$1: DEBUG POPULATE failed: $out"
	# Random writes on a 100,000-key space, 50 clients, 16 deep pipelines
	# (enough pending replies per loop for Redis to wake its I/O threads),
	# 200,000 of each command in turn until killed.
	timeout 3600 redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -P 16 \
		-r 100000 -d 64 -n 200000 -t set,lpush,incr -l -q \
		>"$dir/bench.out" 2>&1 &
	bench=$!
	sleep 1
	kill -0 $bench 2>/dev/null || { cat "$dir/bench.out"; \
		fail "$1: redis-benchmark exited at once"; }
	threads=$(cat /proc/$server/task/*/comm 2>/dev/null | sort | uniq -c |
		awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
	say "$1: threads: $threads"
	: >"$dir/forks"
	ok=0 rdb_ok=0 n=0
	while [ $n -lt "$saves" ]; do
		n=$((n + 1))
		wait_save || fail "$1: a save still runs after ${save_bound} s"
		reply=$(cli bgsave | tr -d '\r')
		case $reply in
		"Background saving started") ;;
		*) fail "$1: save $n: BGSAVE answered: $reply" ;;
		esac
		wait_save || fail "$1: save $n not done after ${save_bound} s"
		status=$(info persistence rdb_last_bgsave_status)
		usec=$(info stats latest_fork_usec)
		[ "$status" = ok ] && ok=$((ok + 1))
		echo "$usec" >>"$dir/forks"
		# Checked before the next save renames a new dump over it.
		if timeout 120 redis-check-rdb "$dir/dump.rdb" \
			>"$dir/check.out" 2>&1 &&
			grep -q "RDB looks OK" "$dir/check.out"; then
			rdb_ok=$((rdb_ok + 1))
			check=ok
		else
			check=BAD
			cp "$dir/dump.rdb" "$dir/bad-$n.rdb"
			tail -n 5 "$dir/check.out"
		fi
		say "$1: save $n: status $status, fork $usec us, rdb $check"
	done
	reads=$(info stats io_threaded_reads_processed)
	writes=$(info stats io_threaded_writes_processed)
	forks=$(info stats total_forks)
	keys_now=$(cli dbsize)
	stop_pid "$bench"
	bench=
	say "$1: $ok/$saves saves ok, $rdb_ok/$saves dumps ok," \
		"$forks forks, $keys_now keys, I/O threads handled" \
		"$reads reads and $writes writes, $(($(date +%s) - begin)) s"
	[ "${reads:-0}" -gt 0 ] && [ "${writes:-0}" -gt 0 ] ||
		fail "$1: the I/O threads never ran (reads $reads, writes $writes)"
	cli shutdown nosave >/dev/null 2>&1
	stop_pid "$server"
	server=
}

ratio() { awk -v a="$1" -v b="$2" \
	'BEGIN { if (b > 0) printf "%.2f", a / b; else print "nan" }'; }
# A median of one field of the CFORK_DEBUG lines in file $2: "quiesce" or
# "fork" (microseconds), or "parked".
cfork_field() {
	case $1 in
	parked) re='.*method quiesce.*parked \([0-9]*\) .*' ;;
	*) re=".*method quiesce.* $1 \\([0-9]*\\) us.*" ;;
	esac
	sed -n "s/$re/\\1/p" "$2" | median
}
# The part of each save's latest_fork_usec that is neither the quiesce nor
# libc's fork() (the prepare handlers, the resume, the shim's call), for
# the saves of run $1, one a line: the Nth CFORK_DEBUG line is the Nth
# save's.
rest_us() {
	sed -n 's/.*method quiesce.* quiesce \([0-9]*\) us, fork \([0-9]*\) us.*/\1 \2/p' \
		"$tmp/cfork-$1/stderr" | paste -d ' ' "$tmp/cfork-$1/forks" - |
		awk 'NF == 3 { print $1 - $2 - $3 }'
}

: >"$tmp/plain-medians"
: >"$tmp/cfork-medians"
: >"$tmp/rest"
plain_ok=0 plain_rdb=0 cfork_ok=0 cfork_rdb=0 quiesced=0 coherent=0
r=0
while [ $r -lt "$runs" ]; do
	r=$((r + 1))
	run plain $r
	plain_ok=$((plain_ok + ok)) plain_rdb=$((plain_rdb + rdb_ok))
	p_med=$(median <"$tmp/plain-$r/forks")
	echo "$p_med" >>"$tmp/plain-medians"
	run cfork $r
	cfork_ok=$((cfork_ok + ok)) cfork_rdb=$((cfork_rdb + rdb_ok))
	c_med=$(median <"$tmp/cfork-$r/forks")
	echo "$c_med" >>"$tmp/cfork-medians"

	# Under the shim each fork is a cfork that CFORK_DEBUG reports on
	# stderr, with the time of its quiesce and of libc's fork() in it;
	# latest_fork_usec is all of cfork() (and the little around it that
	# Redis times), so the rest is the resume and the prepare handlers.
	log=$tmp/cfork-$r/stderr
	q=$(grep -c 'libcfork: cfork: pid .*method quiesce' "$log")
	c=$(grep 'libcfork: cfork: pid .*method quiesce' "$log" |
		grep -c ', coherent:')
	quiesced=$((quiesced + q)) coherent=$((coherent + c))
	grep 'libcfork:' "$log" | grep -v 'method quiesce, coherent' |
		head -n 20
	say "run $r: latest_fork_usec median $c_med with, $p_med without" \
		"(ratio $(ratio "$c_med" "$p_med")); cfork: $q forks through" \
		"cfork, $c coherent, median $(cfork_field parked "$log")" \
		"threads parked; medians: quiesce $(cfork_field quiesce "$log")" \
		"us, libc's fork() inside cfork $(cfork_field fork "$log") us," \
		"the rest $(rest_us $r | median) us"
	rest_us $r >>"$tmp/rest"
done

cat "$tmp"/cfork-*/stderr >"$tmp/all-cfork"
parked=$(cfork_field parked "$tmp/all-cfork")
quiesce_us=$(cfork_field quiesce "$tmp/all-cfork")
fork_us=$(cfork_field fork "$tmp/all-cfork")
plain_med=$(median <"$tmp/plain-medians")
cfork_med=$(median <"$tmp/cfork-medians")
total=$((runs * saves))
say "cfork over all runs: medians: quiesce $quiesce_us us, libc's fork()" \
	"inside cfork $fork_us us, the rest $(median <"$tmp/rest") us;" \
	"latest_fork_usec medians per run:" \
	"$(tr '\n' ' ' <"$tmp/cfork-medians")with," \
	"$(tr '\n' ' ' <"$tmp/plain-medians")without"
line="saves ok $cfork_ok/$total with the shim, $plain_ok/$total without;"
line="$line redis-check-rdb ok $((cfork_rdb + plain_rdb))/$((2 * total));"
line="$line cfork $coherent/$total coherent (median $parked parked);"
line="$line latest_fork_usec median of $runs medians $cfork_med with,"
line="$line $plain_med without: ratio $(ratio "$cfork_med" "$plain_med")"
say "$line"

verdict=ok
[ "$cfork_ok" -eq "$total" ] && [ "$plain_ok" -eq "$total" ] || verdict=FAILED
[ "$cfork_rdb" -eq "$total" ] && [ "$plain_rdb" -eq "$total" ] || verdict=FAILED
[ "$quiesced" -eq "$total" ] && [ "$coherent" -eq "$total" ] || verdict=FAILED
printf 'redis: %s: %s\n' "$verdict" "$line" >>"$summary_file"
[ $verdict = ok ]
