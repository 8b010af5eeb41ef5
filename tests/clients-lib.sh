# SPDX-License-Identifier: MIT
# Sourced by the make check-clients scripts, which set part (the name
# their lines start with) and summary_file first.

say() { printf '%s: %s\n' "$part" "$*"; }
skip() { say "SKIP: $*"; printf '%s: skipped (%s)\n' "$part" "$*" >>"$summary_file"; exit 77; }
fail() { say "FAIL: $*"; printf '%s: FAILED (%s)\n' "$part" "$*" >>"$summary_file"; exit 1; }

# Every part tests the cfork-run that CFORK_RUN names.
if [ -z "${CFORK_RUN:-}" ] || [ ! -x "$CFORK_RUN" ]; then
	echo "$(basename "$0"): CFORK_RUN must name the cfork-run to test" >&2
	exit 99
fi

# tools TOOL...: skips the part unless each is on PATH.
tools() {
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || skip "$tool not found"
	done
}

# need HAVE_FN PACKAGE...: unless HAVE_FN succeeds, installs Debian's
# PACKAGEs with apt-get (through sudo unless root; these targets are not
# in make check, so CI's package list does not carry them), and skips
# when they still are not there.
need() {
	have=$1
	shift
	"$have" && return 0
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	if [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; then
		skip "$* missing, and no sudo to install them"
	fi
	say "installing $*"
	timeout 600 $sudo apt-get update -q >/dev/null 2>&1
	timeout 600 $sudo env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1
	"$have" || skip "$* missing and apt-get install failed"
}

# The median of the numbers on standard input, one per line ("nan": none).
median() { sort -n | awk '{ v[NR] = $1 } END {
	if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2];
	else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# What CFORK_DEBUG's lines in $1 say of the cforks made: sets cforks,
# coherent, parked (median), quiesce_us (median), quiesce_max and
# stopped_ms (each quiesce and the fork after it, all together), prints
# them for $2 launches, and shows the lines of any other outcome.
cfork_stats() {
	cforks=$(grep -c 'libcfork: cfork: pid' "$1")
	coherent=$(grep 'libcfork: cfork: pid .*method quiesce' "$1" |
		grep -c ', coherent:')
	parked=$(sed -n 's/.*method quiesce.*parked \([0-9]*\) .*/\1/p' "$1" |
		median)
	quiesce_us=$(sed -n 's/.*method quiesce.* quiesce \([0-9]*\) us.*/\1/p' \
		"$1" | median)
	quiesce_max=$(sed -n 's/.*method quiesce.* quiesce \([0-9]*\) us.*/\1/p' \
		"$1" | sort -n | tail -n 1)
	stopped_ms=$(sed -n 's/.*method quiesce.* quiesce \([0-9]*\) us, fork \([0-9]*\) us.*/\1 \2/p' \
		"$1" | awk '{ t += $1 + $2 } END { printf "%d", t / 1000 }')
	quiesce_max=${quiesce_max:-0}
	say "cfork: $cforks forks through cfork for $2 launches, $coherent" \
		"coherent, median $parked threads parked; quiesce median" \
		"$quiesce_us us, max $quiesce_max us; threads stopped $stopped_ms ms in all"
	grep 'libcfork:' "$1" | grep -v 'method quiesce, coherent' | head -n 20
}
