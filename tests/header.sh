#!/bin/sh
# SPDX-License-Identifier: MIT
# The installed header, include/cfork.h, compiles alone (first and only
# include of a translation unit) without a warning in every language mode
# a user may build with: C89, C99 and C11 with -pedantic, and C++98 and
# C++11 (the C++ part is left out, with a note, when no C++ compiler is
# found).  The C compiler is make check's $CC; the C++ one $CXX, or g++.
#
# Exit: 0 pass, 1 fail, 99 error.

script_dir=$(cd "$(dirname "$0")" && pwd)
srcdir_top=$(cd "${top_srcdir:-$script_dir/..}" && pwd) || exit 99
[ -f "$srcdir_top/include/cfork.h" ] || exit 99
cc=${CC:-cc}
cxx=${CXX:-g++}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfork-header.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
printf '#include <cfork.h>\n' >"$tmp/alone.c"
cp "$tmp/alone.c" "$tmp/alone.cc"

fail=0
# try COMPILER FILE MODE: -fsyntax-only, every warning an error.
try() {
	if out=$($1 $3 -pedantic -Wall -Wextra -Werror -fsyntax-only \
		-I"$srcdir_top/include" "$2" 2>&1); then
		echo "ok: cfork.h alone, $3"
	else
		echo "FAIL: cfork.h alone, $3 ($1):"
		printf '%s\n' "$out" | sed 's/^/    /'
		fail=1
	fi
}

for std in c89 c99 c11; do
	try "$cc" "$tmp/alone.c" "-std=$std"
done
if command -v "${cxx%% *}" >/dev/null 2>&1; then
	for std in c++98 c++11; do
		try "$cxx" "$tmp/alone.cc" "-std=$std"
	done
else
	echo "note: no C++ compiler ($cxx): C++ modes not checked"
fi
exit $fail
