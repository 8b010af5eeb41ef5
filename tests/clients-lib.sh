# SPDX-License-Identifier: MIT
# Sourced by the make check-clients scripts, which set part (the name
# their lines start with) and summary_file first.

say() { printf '%s: %s\n' "$part" "$*"; }
skip() { say "SKIP: $*"; printf '%s: skipped (%s)\n' "$part" "$*" >>"$summary_file"; exit 77; }
fail() { say "FAIL: $*"; printf '%s: FAILED (%s)\n' "$part" "$*" >>"$summary_file"; exit 1; }

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
