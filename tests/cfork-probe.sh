#!/bin/sh
# SPDX-License-Identifier: MIT
# The cfork-probe command from the outside: -h and --help print the same
# help, --version the version, an unknown option is an error (2), and
# output that cannot be written (/dev/full) is an error with a message on
# stderr, for --help, --version and the report (text and JSON) alike,
# never a silent 0.  What the probe answers is tests/probe's business.

builddir=$(cd "${top_builddir:-.}" && pwd) || exit 99
probe=$builddir/tools/cfork-probe

fail=0
bad() {
	echo "FAIL: $*"
	fail=1
}
# check WHAT WANT GOT
check() {
	if [ "$3" = "$2" ]; then
		echo "ok: $1"
	else
		bad "$1: got '$3', expected '$2'"
	fi
}

long=$("$probe" --help 2>&1)
check "--help: status" 0 $?
short=$("$probe" -h 2>&1)
check "-h: status" 0 $?
check "-h prints the help of --help" "$long" "$short"
case $long in
Usage:\ cfork-probe*) echo "ok: --help gives the usage" ;;
*) bad "--help: $long" ;;
esac
out=$("$probe" --version 2>&1)
check "--version: status" 0 $?
case $out in
"cfork-probe (libcfork) "[0-9]*) echo "ok: --version" ;;
*) bad "--version: $out" ;;
esac
out=$("$probe" --frobnicate 2>&1)
check "unknown option: status" 2 $?

if [ ! -c /dev/full ]; then
	echo "note: no /dev/full here: write errors not checked"
	exit $fail
fi
for args in --help -h --version "" --json; do
	err=$("$probe" $args 2>&1 >/dev/full)
	check "cfork-probe $args >/dev/full: status" 2 $?
	case $err in
	*"cfork-probe: write error: "*) echo "ok: ... and says so" ;;
	*) bad "cfork-probe $args >/dev/full: stderr: $err" ;;
	esac
done
exit $fail
