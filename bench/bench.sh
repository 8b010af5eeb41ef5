#!/bin/sh
# SPDX-License-Identifier: MIT
# make bench: runs every benchmark case, prints what each costs and
# whether it meets its goal, and plots time against sibling count.
#
# The environment (set by make bench) names the programs and where the
# results go: BENCH_FORKLAT, BENCH_GCSTOP (empty when configure found no
# bdw-gc), BENCH_OUT.  Every ratio compares medians measured in the same
# run, so that a busy machine slows both sides.
set -u

usage() {
	cat <<EOF
usage: bench.sh [-n reps] [-t counts] [-c cases] [-h]
  -n N  repetitions of a small case (default 200; forklat and gcstop
        run fewer with 256 or more siblings or GiBs of memory)
  -t L  idle sibling counts, comma-separated (default 0,1,8,64,256,1000)
  -c L  comma-separated subset of: idle, woken, busy, mem, libc, probe,
        direct, gc (default: all of them)
  -h    this help
Writes forklat.out, direct.out, gcstop.out, goals.txt, scaling.dat and
scaling.png in \$BENCH_OUT (default .).
EOF
}

n=200
counts=0,1,8,64,256,1000
cases=idle,woken,busy,mem,libc,probe,direct,gc
while getopts n:t:c:h opt; do
	case $opt in
	n) n=$OPTARG ;;
	t) counts=$OPTARG ;;
	c) cases=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -ne 0 ]; then
	usage >&2
	exit 2
fi
case $n in
''|*[!0-9]*|0) echo "bench.sh: -n wants a positive number" >&2; exit 2 ;;
esac
case $counts in
''|*[!0-9,]*|,*|*,|*,,*)
	echo "bench.sh: -t wants counts such as 0,8,64" >&2; exit 2 ;;
esac
has() {
	case ",$cases," in *",$1,"*) return 0 ;; esac
	return 1
}
for c in $(echo "$cases" | tr , ' '); do
	case $c in
	idle|woken|busy|mem|libc|probe|direct|gc) ;;
	*) echo "bench.sh: unknown case '$c'" >&2; usage >&2; exit 2 ;;
	esac
done

forklat=${BENCH_FORKLAT:-./bench/forklat}
gcstop=${BENCH_GCSTOP-}
out=${BENCH_OUT:-.}
mkdir -p "$out" || exit 1
rm -f "$out/forklat.out" "$out/direct.out" "$out/gcstop.out" \
	"$out/goals.txt" "$out/scaling.dat" "$out/scaling.png"
if [ ! -x "$forklat" ]; then
	echo "bench.sh: $forklat is not built (run make bench)" >&2
	exit 1
fi
status=0
start=$(date +%s)

# Runs a program with its output on the terminal and in a file; the
# program's exit status lands in $out/.rc (a pipe would lose it).
run() {
	file=$1
	shift
	{ "$@"; echo $? > "$out/.rc"; } | tee "$file"
	rc=$(cat "$out/.rc")
	rm -f "$out/.rc"
	if [ "$rc" -ne 0 ]; then
		echo "bench.sh: $* exited with $rc" >&2
		status=1
	fi
}

echo "== forklat: cfork() against fork() and glibc's setxid broadcast"
echo "   fork, cfork: the call until it returns in the parent; infork: the"
echo "   fork inside cfork; quiesce: stopping the siblings; qr: cfork -"
echo "   infork, i.e. quiesce + resume; resume: qr - quiesce; broadcast:"
echo "   setuid(getuid()), glibc signalling every thread and waiting for"
echo "   each; probe: cfork_probe().  Microseconds."
fcases=
for c in idle woken busy mem libc probe; do
	has $c && fcases=${fcases:+$fcases,}$c
done
if [ -n "$fcases" ]; then
	run "$out/forklat.out" env -u CFORK_MODE "$forklat" -c "$fcases" \
		-n "$n" -t "$counts"
fi
if has direct; then
	echo
	echo "== forklat, CFORK_MODE=direct: cfork() calling fork() directly"
	run "$out/direct.out" env CFORK_MODE=direct "$forklat" -c direct \
		-n "$n"
fi
if has gc; then
	echo
	echo "== gcstop: bdwgc's GC_stop_world_external + GC_start_world_external"
	echo "   gc: stop + start; gcstop, gcstart: each alone.  Microseconds."
	if [ -n "$gcstop" ] && [ -x "$gcstop" ]; then
		run "$out/gcstop.out" "$gcstop" -n "$n" -t "$counts"
	else
		echo "skipped: libgc-dev missing (sudo apt-get install -y" \
			"libgc-dev, then run configure again)"
	fi
fi

# ---- goals -----------------------------------------------------------
# Every key=value line of every program, merged by case name (forklat's
# and gcstop's keys do not overlap but for siblings and reps).
cat "$out/forklat.out" "$out/direct.out" "$out/gcstop.out" 2>/dev/null |
awk -v dat="$out/scaling.dat" '
function med(c, q) { return v[c, q "_median_us"] + 0 }
function have(c, q) { return (c, q "_median_us") in v }
function verdict(ok) { if (ok) { pass++; return "PASS" } miss++; return "MISS" }
# One goal: the ratio of two medians against its bound.
function ratio_goal(label, c1, q1, c2, q2, bound,   r) {
	if (!have(c1, q1) || !have(c2, q2) || med(c2, q2) <= 0) {
		printf "%-44s %s\n", label, "not measured"
		return
	}
	r = med(c1, q1) / med(c2, q2)
	printf "%-44s %9.1f %9.1f %7.3f <= %-5.2f %s\n", label, med(c1, q1),
	    med(c2, q2), r, bound, verdict(r <= bound)
}
function info(label, c1, q1, c2, q2) {
	if (have(c1, q1) && have(c2, q2) && med(c2, q2) > 0)
		printf "%-44s %9.1f %9.1f %7.3f    (no goal)\n", label,
		    med(c1, q1), med(c2, q2), med(c1, q1) / med(c2, q2)
}
# Least squares over the idle cases: us per thread, and the exponent k
# of (cost - cost with no sibling) ~ N^k over N >= 8, leaving out the
# counts whose excess over no sibling is within the spread of that case
# (p90 - median): log() of noise would decide k.
function fit(q, label, check,   i, x, y, n, sx, sy, sxx, sxy, b, k, y0,
    noise) {
	n = sx = sy = sxx = sxy = 0
	for (i = 1; i <= nidle; i++) {
		x = idle[i]
		if (x < 1 || !have("idle-" x, q))
			continue
		y = med("idle-" x, q)
		n++; sx += x; sy += y; sxx += x * x; sxy += x * y
	}
	if (n < 2 || n * sxx == sx * sx) {
		printf "%-44s %s\n", label, "not measured"
		return
	}
	b = (n * sxy - sx * sy) / (n * sxx - sx * sx)
	y0 = have("idle-0", q) ? med("idle-0", q) : 0
	noise = have("idle-0", q) ? v["idle-0", q "_p90_us"] - y0 : 0
	n = sx = sy = sxx = sxy = 0
	for (i = 1; i <= nidle; i++) {
		x = idle[i]
		if (x < 8 || !have("idle-" x, q) ||
		    med("idle-" x, q) <= y0 + noise)
			continue
		y = log(med("idle-" x, q) - y0); x = log(x)
		n++; sx += x; sy += y; sxx += x * x; sxy += x * y
	}
	if (n >= 2 && n * sxx != sx * sx) {
		k = (n * sxy - sx * sy) / (n * sxx - sx * sx)
		if (check)
			printf "%-44s %7.2f us/thread  k=%.2f <= 1.10 %s\n",
			    label, b, k, verdict(k <= 1.10)
		else
			printf "%-44s %7.2f us/thread  k=%.2f    (no goal)\n",
			    label, b, k
	} else
		printf "%-44s %7.2f us/thread  (too few counts for k)\n",
		    label, b
}
/^case=/ {
	c = ""
	for (i = 1; i <= NF; i++) {
		eq = index($i, "=")
		if (eq == 0)
			continue
		key = substr($i, 1, eq - 1); val = substr($i, eq + 1)
		if (key == "case") {
			c = val
			if (!(c in seen)) { seen[c] = 1; order[++ncase] = c }
			if (c ~ /^idle-[0-9]+$/ && !(c in isidle)) {
				isidle[c] = 1
				idle[++nidle] = substr(c, 6) + 0
			}
		} else if (c != "")
			v[c, key] = val
	}
}
END {
	# the counts in ascending order (a few: insertion sort)
	for (i = 2; i <= nidle; i++)
		for (j = i; j > 1 && idle[j] < idle[j - 1]; j--) {
			t = idle[j]; idle[j] = idle[j - 1]; idle[j - 1] = t
		}
	pass = miss = 0
	printf "%-44s %9s %9s %7s    %s\n", "goal (medians, us)", "ours",
	    "baseline", "ratio", "bound"
	for (i = 1; i <= nidle; i++) {
		x = idle[i]
		if (x < 1)
			continue
		ratio_goal(sprintf("quiesce+resume / glibc broadcast, idle-%d", x),
		    "idle-" x, "qr", "idle-" x, "broadcast", 0.5)
	}
	for (i = 1; i <= ncase; i++)
		if (order[i] ~ /^woken-/)
			info(sprintf("quiesce+resume / glibc broadcast, %s",
			    order[i]), order[i], "qr", order[i], "broadcast")
	for (i = 1; i <= ncase; i++)
		if (order[i] ~ /^busy-/)
			ratio_goal(sprintf("quiesce+resume / glibc broadcast, %s",
			    order[i]), order[i], "qr", order[i], "broadcast", 0.25)
	for (i = 1; i <= nidle; i++) {
		x = idle[i]
		if (x < 1 || !have("idle-" x, "gc"))
			continue
		ratio_goal(sprintf("quiesce+resume / bdwgc stop+start, idle-%d", x),
		    "idle-" x, "qr", "idle-" x, "gc", 1.0)
	}
	ratio_goal("cfork / fork, 1 GiB touched (4k), 8 idle", "mem-1g-4k",
	    "cfork", "mem-1g-4k", "fork", 1.05)
	for (i = 1; i <= ncase; i++)
		if (order[i] ~ /^mem-/ && order[i] != "mem-1g-4k")
			info(sprintf("cfork / fork, %s, 8 idle", order[i]),
			    order[i], "cfork", order[i], "fork")
	for (i = 1; i <= ncase; i++)
		if (order[i] ~ /^direct-/)
			ratio_goal(sprintf("cfork (CFORK_MODE=direct) / fork, %s",
			    order[i]), order[i], "cfork", order[i], "fork", 1.01)
	for (i = 1; i <= ncase; i++)
		if (order[i] ~ /^probe/)
			printf "%-44s %9.1f %9s %7s <= 2 ms %s\n",
			    sprintf("cfork_probe(), %s (max %.0f)", order[i],
			    v[order[i], "probe_max_us"]), med(order[i], "probe"),
			    "", "", verdict(med(order[i], "probe") <= 2000)
	info("cfork_probe() with 1 GiB touched / without", "probe-1g",
	    "probe", "probe", "probe")
	for (i = 1; i <= ncase; i++)
		if (order[i] ~ /^(malloc|stdio|churn|stress)-/)
			info(sprintf("cfork / fork, %s (libc siblings)", order[i]),
			    order[i], "cfork", order[i], "fork")
	print ""
	print "growth with idle siblings: least-squares slope, and k in"
	print "(cost - cost with none) ~ N^k over N >= 8 where that exceeds"
	print "the spread of the case with none; k <= 1.1 is linear"
	fit("qr", "quiesce+resume", 1)
	fit("broadcast", "glibc broadcast", 0)
	fit("gc", "bdwgc stop+start", 0)
	print ""
	printf "goals: %d PASS, %d MISS\n", pass, miss
	for (i = 1; i <= ncase; i++)
		if (v[order[i], "incoherent"] + 0 > 0)
			printf "note: %s had %d incoherent cforks\n", order[i],
			    v[order[i], "incoherent"]
	# the plot data: idle count and the medians, ? where not measured
	print "# siblings fork cfork qr broadcast gc (median us)" > dat
	for (i = 1; i <= nidle; i++) {
		x = idle[i]
		if (x < 1)
			continue
		line = x
		split("fork cfork qr broadcast gc", qs, " ")
		for (j = 1; j <= 5; j++)
			line = line " " (have("idle-" x, qs[j]) ? med("idle-" x, qs[j]) : "?")
		print line > dat
	}
}' > "$out/goals.txt"
echo
echo "== goals"
cat "$out/goals.txt"

# ---- the plot --------------------------------------------------------
echo
if ! command -v gnuplot >/dev/null 2>&1; then
	echo "plot skipped: gnuplot not found (sudo apt-get install -y gnuplot-nox)"
elif [ "$(grep -vc '^#' "$out/scaling.dat" 2>/dev/null)" -lt 2 ]; then
	echo "plot skipped: fewer than two idle sibling counts measured"
else
	term=png
	gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1 && term=pngcairo
	plots="'$out/scaling.dat' using 1:3 with linespoints title 'cfork (whole call)'"
	plots="$plots, '' using 1:4 with linespoints title 'cfork quiesce+resume'"
	plots="$plots, '' using 1:2 with linespoints title 'fork'"
	plots="$plots, '' using 1:5 with linespoints title 'glibc setxid broadcast'"
	if awk '!/^#/ && $6 != "?" { f = 1 } END { exit !f }' "$out/scaling.dat"; then
		plots="$plots, '' using 1:6 with linespoints title 'bdwgc stop+start'"
	fi
	if gnuplot <<EOF
set terminal $term size 900,600
set output '$out/scaling.png'
set title 'Time per call against idle sibling threads (medians)'
set xlabel 'idle sibling threads'
set ylabel 'microseconds'
set logscale xy
set grid
set key top left
set datafile missing '?'
plot $plots
EOF
	then
		echo "plot: $out/scaling.png"
	else
		echo "plot failed (gnuplot's message above)"
		status=1
	fi
fi
echo "bench.sh: $(($(date +%s) - start)) s"
exit $status
