#!/bin/sh
# SPDX-License-Identifier: MIT
# numpy on OpenBLAS's thread pool under the shim (make check-clients).
# Debian's python3.11 with python3-numpy, whose BLAS is forced to be
# OpenBLAS built with pthreads (libopenblas0-pthread), runs a threaded
# matmul and then a multiprocessing Pool of the fork context that maps a
# numpy function (a matmul and a sum) 20 rounds, first alone and then while
# a second Python thread does matmuls; once plainly and once under
# cfork-run.  Every result must equal the one the parent computed before
# the first fork, and nothing may hang (each round is bounded).  Under the
# shim every fork must be a coherent cfork (CFORK_DEBUG's lines, counted
# against the forks and the pool workers the program saw).  Prints the
# time of each phase both ways.
#
# OpenBLAS (0.3.21 here) registers a pthread_atfork() prepare handler,
# blas_thread_shutdown_(), that stops and joins its worker threads; they
# are started again by the next BLAS call.  It is not safe against a BLAS
# call in progress in another thread: the handler marks a busy worker for
# exit, the worker overwrites that mark when its job ends and goes to
# sleep, and the join waits for ever (seen here with plain fork() as with
# cfork(): the forking thread in pthread_join() under blas_thread_shutdown_,
# the worker in pthread_cond_wait(), the other thread waiting for the GIL
# or spinning in exec_blas_async_wait()).  So the second thread's matmuls
# exclude forks with a lock taken in an os.register_at_fork() hook, the
# way a program has to use this OpenBLAS.  As libcfork runs the prepare
# handlers before it stops any thread (as fork() runs them before the
# copy), the quiesce never meets a spinning OpenBLAS worker.
#
# Environment: CFORK_RUN (required) the cfork-run to test; CLIENTS_PYTHON
# (/usr/bin/python3.11); CLIENTS_ROUNDS (20) pool rounds per phase;
# CLIENTS_BLAS_THREADS (4) OpenBLAS threads, more than this machine's CPUs
# if need be (threadpoolctl asks OpenBLAS for them); CLIENTS_SUMMARY, a
# file the summary line is appended to.
set -u

py=${CLIENTS_PYTHON:-/usr/bin/python3.11}
rounds=${CLIENTS_ROUNDS:-20}
blas_threads=${CLIENTS_BLAS_THREADS:-4}
summary_file=${CLIENTS_SUMMARY:-/dev/null}
round_bound=300       # seconds one pool round may take
run_bound=1800        # seconds for one whole run

part=numpy
. "$(dirname "$0")/clients-lib.sh"
tools timeout awk sort

# Debian's numpy links libblas.so.3, which the alternatives system points at
# one BLAS or another; the threaded OpenBLAS's copy is put first in the
# search path instead of changing the machine's choice.
openblas_dir=/usr/lib/x86_64-linux-gnu/openblas-pthread
have_numpy() {
	[ -x "$py" ] && [ -e "$openblas_dir/libblas.so.3" ] &&
		"$py" -c 'import numpy, threadpoolctl' >/dev/null 2>&1
}
need have_numpy python3.11 python3-numpy libopenblas0-pthread \
	python3-threadpoolctl
LD_LIBRARY_PATH=$openblas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfork-numpy.XXXXXX") || fail "mktemp -d"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 2' HUP INT TERM

# The program.  It exits with 0 when every result was right, 1 when one
# was wrong, 77 when numpy's BLAS is not OpenBLAS with its own threads, and
# dumps every thread's Python stack and exits when a round hangs.
cat >"$tmp/pool.py" <<'EOF'
import faulthandler
import multiprocessing as mp
import os
import sys
import threading
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

rounds, blas_threads, bound = (int(a) for a in sys.argv[1:4])
workers_file = sys.argv[4]
size, tasks = 400, 4

def say(*args):
    print(*args, flush=True)

blas = [i for i in threadpool_info() if i['user_api'] == 'blas']
say('BLAS:', ', '.join('%s %s (%s) %s' % (i['internal_api'], i['version'],
    i['threading_layer'], i['filepath']) for i in blas))
if not any(i['internal_api'] == 'openblas' and
           i['threading_layer'] == 'pthreads' for i in blas):
    say('numpy does not use OpenBLAS with pthreads')
    sys.exit(77)
# OpenBLAS starts one thread less than the CPUs it may use; threadpoolctl
# asks it for more, so that a 2-CPU machine has more than one worker.
threadpool_limits(blas_threads)

def cpu_ticks(tids):
    ticks = 0
    for tid in tids:
        try:
            with open('/proc/self/task/%s/stat' % tid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks

# The threaded matmul: OpenBLAS's workers (every task but this one) must
# run, that is use CPU time, while it computes.
rng = np.random.default_rng(12)
big = rng.standard_normal((1500, 1500))
main_tid = str(threading.get_native_id())
others = [t for t in os.listdir('/proc/self/task') if t != main_tid]
before = cpu_ticks(others)
t0 = time.monotonic()
for _ in range(3):
    big @ big
secs = time.monotonic() - t0
others = [t for t in os.listdir('/proc/self/task') if t != main_tid]
ticks = cpu_ticks(others) - before
say('threaded matmul: %d threads beside the main one, %d ticks of CPU in '
    'them, %.2f s' % (len(others), ticks, secs))
if len(others) < blas_threads - 1 or ticks == 0:
    say('OpenBLAS ran no worker thread')
    sys.exit(77)

A = rng.standard_normal((size, size))
B = [rng.standard_normal((size, size)) for _ in range(tasks)]
expected = [float((A @ B[i]).sum()) for i in range(tasks)]
ref = A @ B[0]

def work(i):
    # In a pool worker: a threaded matmul (OpenBLAS starts its threads
    # again in the child) and a sum the parent compares.
    return float((A @ B[i]).sum()), os.getpid()

def record_worker():
    # One line per pool worker that started, written by the worker.
    fd = os.open(workers_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, b'%d\n' % os.getpid())
    os.close(fd)

# The second thread's matmuls and the forks exclude each other (see the
# script's header): OpenBLAS's own prepare handler hangs when a BLAS call
# is in progress.  The hook runs in the forking thread before fork().
blas_lock = threading.Lock()
forks = [0]
def after_in_parent():
    forks[0] += 1
    blas_lock.release()
os.register_at_fork(before=blas_lock.acquire, after_in_parent=after_in_parent,
                    after_in_child=blas_lock.release)

def pool_rounds(label):
    # One pool whose workers leave after two tasks: its handler thread
    # forks new ones while its other threads and this one run.
    wrong = 0
    t0 = time.monotonic()
    pool = mp.get_context('fork').Pool(2, initializer=record_worker,
                                       maxtasksperchild=2)
    for r in range(rounds):
        faulthandler.dump_traceback_later(bound, exit=True)
        res = pool.map_async(work, range(tasks), chunksize=1).get(bound)
        faulthandler.cancel_dump_traceback_later()
        got = [v for v, _ in res]
        if got != expected or any(p == os.getpid() for _, p in res):
            wrong += 1
            say('%s: round %d: %r, expected %r' % (label, r, got, expected))
    pool.close()
    faulthandler.dump_traceback_later(bound, exit=True)
    pool.join()
    faulthandler.cancel_dump_traceback_later()
    secs = time.monotonic() - t0
    say('%s: %d rounds, %d wrong, %.2f s' % (label, rounds, wrong, secs))
    return wrong, secs

wrong, secs1 = pool_rounds('pool')

stop = threading.Event()
side = {'n': 0, 'wrong': 0}
def matmuls():
    while not stop.is_set():
        with blas_lock:
            c = A @ B[0]
        side['n'] += 1
        if not np.array_equal(c, ref):
            side['wrong'] += 1
t = threading.Thread(target=matmuls)
t.start()
w, secs2 = pool_rounds('pool with a thread doing matmuls')
stop.set()
t.join()
wrong += w + side['wrong']
say('second thread: %d matmuls, %d wrong' % (side['n'], side['wrong']))
say('result: forks %d, wrong %d, phases %.2f s and %.2f s'
    % (forks[0], wrong, secs1, secs2))
sys.exit(1 if wrong else 0)
EOF

# One run in a directory of its own; $1 is plain or cfork.  Sets rc,
# forks, wrong, secs1, secs2 and workers.
run() {
	how=$1
	dir=$tmp/$how
	mkdir -p "$dir"
	set -- "$1" "$py" "$tmp/pool.py" "$rounds" "$blas_threads" \
		"$round_bound" "$dir/workers"
	if [ "$1" = cfork ]; then
		shift
		CFORK_DEBUG=1 timeout "$run_bound" "$CFORK_RUN" -- "$@" \
			>"$dir/out" 2>"$dir/err"
	else
		shift
		timeout "$run_bound" "$@" >"$dir/out" 2>"$dir/err"
	fi
	rc=$?
	sed "s/^/$part: $how: /" "$dir/out"
	grep -v '^libcfork: cfork: pid ' "$dir/err" | head -n 40
	set -- $(sed -n 's/^result: forks \([0-9]*\), wrong \([0-9]*\), phases \([0-9.]*\) s and \([0-9.]*\) s$/\1 \2 \3 \4/p' \
		"$dir/out")
	forks=${1:-?} wrong=${2:-?} secs1=${3:-?} secs2=${4:-?}
	workers=$(cat "$dir/workers" 2>/dev/null | wc -l)
	case $rc in
	0) ;;
	77) skip "$(tail -n 1 "$dir/out")" ;;
	124) fail "$how: the program did not end within $run_bound s" ;;
	*) fail "$how: the program exited with $rc (wrong results: $wrong)" ;;
	esac
}

run plain
plain_forks=$forks plain_workers=$workers plain_1=$secs1 plain_2=$secs2
run cfork
cfork_forks=$forks cfork_workers=$workers cfork_1=$secs1 cfork_2=$secs2

# Under the shim each fork is a cfork that CFORK_DEBUG reports on stderr;
# only the parent forks (pool workers do not).
log=$tmp/cfork/err
cforks=$(grep -c '^libcfork: cfork: pid ' "$log")
coherent=$(grep '^libcfork: cfork: pid .*method quiesce' "$log" |
	grep -c ', coherent:')
incoherent=$(grep -c 'NOT coherent' "$log")
parked=$(sed -n 's/.*method quiesce.*parked \([0-9]*\) .*/\1/p' "$log" |
	sort -n | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
quiesce_us=$(sed -n 's/.*method quiesce.* quiesce \([0-9]*\) us.*/\1/p' \
	"$log" | median)
quiesce_max=$(sed -n 's/.*method quiesce.* quiesce \([0-9]*\) us.*/\1/p' \
	"$log" | sort -n | tail -n 1)
fork_us=$(sed -n 's/.*method quiesce.* fork \([0-9]*\) us.*/\1/p' \
	"$log" | median)
say "cfork: $cforks cforks for $cfork_forks forks and $cfork_workers pool" \
	"workers, $coherent coherent, $incoherent NOT coherent; threads" \
	"parked: ${parked:-none}; quiesce median $quiesce_us us (max" \
	"${quiesce_max:-?}), libc's fork() inside cfork median $fork_us us"
grep '^libcfork: cfork: pid ' "$log" | grep -v ', coherent:' | head -n 10

line="pool workers $cfork_workers with the shim, $plain_workers without;"
line="$line cfork $coherent/$cfork_forks coherent for $cfork_workers workers,"
line="$line $incoherent NOT coherent; seconds (pool, pool + thread)"
line="$line $cfork_1 + $cfork_2 with, $plain_1 + $plain_2 without"
say "$line"
verdict=ok
# Every fork the program saw was a cfork, every pool worker was one of
# those forks (the parent makes no other), and all were coherent.
[ "$cforks" -eq "$cfork_forks" ] && [ "$cfork_forks" -eq "$cfork_workers" ] &&
	[ "$coherent" -eq "$cforks" ] && [ "$cforks" -gt 0 ] || verdict=FAILED
[ "$plain_forks" -eq "$plain_workers" ] || verdict=FAILED
printf 'numpy: %s: %s\n' "$verdict" "$line" >>"$summary_file"
[ $verdict = ok ]
