#!/bin/sh
# SPDX-License-Identifier: MIT
# libcfork.a, as installed (./configure --enable-static):
#  - make install (staged with DESTDIR) installs libcfork.a and the shim
#    libcfork-preload.so, but no archive or .la of the shim;
#  - tests/static-link.c, linked as the README shows (libcfork.a and the
#    archives pkg-config --static names for it, glibc shared), needs no
#    libcfork.so, exports every interposer of lib/libcfork.map, and its
#    cfork()s park a sibling that blocks every signal;
#  - a fully static link (-static, glibc's libc.a) fails, saying why.
# Exit: 0 pass, 1 fail, 77 skip (no libcfork.a, pkg-config or readelf),
# 99 error (the staged install failed).  Without libc.a the -static part
# is left out with a note.

builddir=$(cd "${top_builddir:-.}" && pwd) || exit 99
srcdir=$(cd "${top_srcdir:-.}" && pwd) || exit 99
cc=${CC:-cc}
pkg_config=${PKG_CONFIG:-pkg-config}

if [ ! -f "$builddir/.libs/libcfork.a" ]; then
	echo "SKIP: libcfork.a is not built (./configure --enable-static)"
	exit 77
fi
for tool in "$pkg_config" readelf; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool is not available"
		exit 77
	fi
done

fail=0
bad() {
	echo "FAIL: $*"
	fail=1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfork-static.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
stage=$tmp/stage

if ! ${MAKE:-make} -C "$builddir" install DESTDIR="$stage" \
	>"$tmp/install.log" 2>&1; then
	sed 's/^/    /' "$tmp/install.log"
	echo "ERROR: make install DESTDIR=$stage failed"
	exit 99
fi

# The installed .pc names the configured directories: a copy names the
# staged ones instead.
pc=$(find "$stage" -name libcfork.pc | head -n 1)
if [ -z "$pc" ]; then
	bad "libcfork.pc is not installed"
	exit 1
fi
libdir=$stage$(PKG_CONFIG_PATH=${pc%/*} "$pkg_config" --variable=libdir libcfork)
incdir=$stage$(PKG_CONFIG_PATH=${pc%/*} "$pkg_config" --variable=includedir libcfork)
mkdir "$tmp/pc" && sed -e "s|^libdir=.*|libdir=$libdir|" \
	-e "s|^includedir=.*|includedir=$incdir|" "$pc" >"$tmp/pc/libcfork.pc"
PKG_CONFIG_PATH=$tmp/pc
export PKG_CONFIG_PATH

for f in libcfork.a libcfork-preload.so; do
	if [ -e "$libdir/$f" ]; then
		echo "ok: $f installed"
	else
		bad "$f is not installed in $libdir"
	fi
done
for f in libcfork-preload.a libcfork-preload.la; do
	if [ -e "$libdir/$f" ]; then
		bad "$f is installed in $libdir"
	else
		echo "ok: no $f"
	fi
done

# README's line.  -no-pie: Debian 12's libunwind archives cannot go into
# a position-independent executable.
prog=$tmp/static-link
cflags=$("$pkg_config" --cflags libcfork) &&
libs=$("$pkg_config" --static --libs libcfork) || exit 99
echo "link: $cc -no-pie static-link.c $cflags -Wl,-Bstatic $libs -Wl,-Bdynamic"
# shellcheck disable=SC2086 # the flags are words
if ! $cc -no-pie -I"$srcdir/tests" -o "$prog" "$srcdir/tests/static-link.c" \
	$cflags -Wl,-Bstatic $libs -Wl,-Bdynamic >"$tmp/link.log" 2>&1; then
	sed 's/^/    /' "$tmp/link.log"
	bad "linking libcfork.a with pkg-config --static's flags failed"
	exit 1
fi
echo "ok: linked with libcfork.a"

if readelf -d "$prog" | grep 'NEEDED' | grep -q 'libcfork'; then
	bad "the program needs libcfork.so:"
	readelf -d "$prog" | grep 'NEEDED' | sed 's/^/    /'
else
	echo "ok: no libcfork.so needed"
fi

# The interposers: the names of the GLIBC_* nodes of the version script.
# Exported from the program, they catch the references of the shared
# libraries it loads, as libcfork.so's do.
interposers=$(awk '/^GLIBC_/ { on = 1 } /^LIBCFORK_/ { on = 0 }
	on && /^[[:space:]]+[A-Za-z_][A-Za-z0-9_]*;/ {
		gsub(/[[:space:];]/, ""); print }' "$srcdir/lib/libcfork.map")
exported=$(readelf --dyn-syms -W "$prog" |
	awk '$1 ~ /^[0-9]+:$/ && NF >= 8 && $7 != "UND" {
		sub(/@.*/, "", $8); print $8 }')
missing=
for s in $interposers; do
	printf '%s\n' "$exported" | grep -qxF -- "$s" || missing="$missing $s"
done
if [ -z "$interposers" ]; then
	echo "ERROR: no interposer read from lib/libcfork.map"
	exit 99
elif [ -n "$missing" ]; then
	bad "the program does not export:$missing"
else
	echo "ok: the program exports the $(echo $interposers | wc -w) interposers"
fi

if CFORK_MODE=quiesce "$prog"; then
	echo "ok: cfork() in the program"
else
	bad "the program linked with libcfork.a (exit status $?)"
fi

# A fully static link: refused, with the reason, whenever libc.a lets
# a static program be built at all.
printf 'int main(void) { return 0; }\n' >"$tmp/hello.c"
if ! $cc -static -o "$tmp/hello" "$tmp/hello.c" >/dev/null 2>&1; then
	echo "note: no static program could be built here (no libc.a?):" \
	     "the -static refusal is not checked"
else
	# shellcheck disable=SC2086
	if $cc -static -I"$srcdir/tests" -o "$tmp/full" \
		"$srcdir/tests/static-link.c" $cflags $libs \
		>"$tmp/full.log" 2>&1; then
		bad "a -static link with libcfork.a succeeded"
	elif grep -q 'libcfork cannot be linked with -static' "$tmp/full.log"
	then
		echo "ok: -static refused:"
		grep 'libcfork cannot be linked' "$tmp/full.log" | sed 's/^/    /'
	else
		bad "a -static link failed without saying why:"
		sed 's/^/    /' "$tmp/full.log"
	fi
fi

exit $fail
