#!/bin/sh
# SPDX-License-Identifier: MIT
#
# libcfork.so exports exactly its public API, and the manual names it.
#
# Exported (defined) dynamic symbols must be exactly:
#   - every function declared in include/cfork.h, with as default version
#     the node that $nodes below gives it (the ABI history of
#     lib/libcfork.map: a function added to the header needs a line
#     there, and a released one never moves);
#   - the deliberate interposers named in $interposers below, each with
#     exactly the versions libc.so.6 gives that name, default or not
#     (pthread_sigmask@GLIBC_2.2.5 and pthread_cancel@GLIBC_2.2.5 too,
#     which vanished in a clang build when made with the symver
#     attribute, that clang ignores): an
#     interposer must catch every reference libc would have bound, and
#     must not become the default where libc has none -- with one
#     deliberate exception: pthread_atfork, compat-only in glibc 2.34+, is
#     exported as the default version, because references without a
#     version (tcmalloc's weak one) bind only to a default; libcfork finds
#     the registering object from the caller's address instead of a DSO
#     handle (lib/atfork.c);
#   - the version nodes themselves.
# Anything else is a leak from a missing "static" or visibility attribute,
# and would become ABI the day it ships.
#
# Each LIBCFORK_* node after the first must inherit the one before it.
#
# Then every function declared in include/cfork.h must be named in man/:
# a page of its own (man/NAME.3) or the NAME section of one.
#
# Usage: tests/symbols.sh [path/to/libcfork.so]
# Under make check, automake's environment gives top_builddir and
# top_srcdir; run by hand, paths are found relative to this script.
# Exit: 0 pass, 1 fail, 77 skip (no readelf/nm), 99 error (nothing built).

script_dir=$(cd "$(dirname "$0")" && pwd)
srcdir_top=${top_srcdir:-$script_dir/..}
builddir_top=${top_builddir:-.}

fail=0
say() { printf '%s\n' "$*" >&2; }

# ---- find the library -------------------------------------------------
lib=$1
if [ -z "$lib" ]; then
	for cand in "$builddir_top/.libs/libcfork.so" \
		    "$script_dir/../.libs/libcfork.so" \
		    "./.libs/libcfork.so"; do
		if [ -f "$cand" ]; then
			lib=$cand
			break
		fi
	done
fi
if [ -z "$lib" ] || [ ! -f "$lib" ]; then
	say "ERROR: libcfork.so not found (build it first, or pass its path)"
	exit 99
fi

# ---- the public functions: declared in include/cfork.h ----------------
header=$srcdir_top/include/cfork.h
mandir=$srcdir_top/man
if [ ! -f "$header" ]; then
	say "ERROR: $header not found"
	exit 99
fi
# Comments and directives dropped, the rest read as one text and cut at
# ";": a declaration whose first "(" is not "(*" (a function pointer) is a
# function, named by the identifier before that "(".
functions=$(awk '
	/^[[:space:]]*#/ { next }
	{ text = text " " $0 }
	END {
		while ((i = index(text, "/*")) > 0) {
			rest = substr(text, i + 2)
			j = index(rest, "*/")
			tail = j ? substr(rest, j + 2) : ""
			text = substr(text, 1, i - 1) " " tail
		}
		n = split(text, decl, ";")
		for (k = 1; k <= n; k++) {
			d = decl[k]
			if (d ~ /typedef/) continue
			p = index(d, "(")
			if (!p) continue
			after = substr(d, p + 1)
			sub(/^[[:space:]]*/, "", after)
			if (substr(after, 1, 1) == "*") continue
			before = substr(d, 1, p - 1)
			sub(/[[:space:]]*$/, "", before)
			if (match(before, /[A-Za-z_][A-Za-z0-9_]*$/))
				print substr(before, RSTART, RLENGTH)
		}
	}' "$header" | LC_ALL=C sort -u)
if [ -z "$functions" ]; then
	say "FAIL: no function found in $header"
	exit 1
fi

# ---- list the defined dynamic symbols as NAME@@VERSION -------------------
# readelf prints versions on every binutils; nm only since 2.35, and only
# with --with-symbol-versions on some of them.
list_readelf() {
	# Num: Value Size Type Bind Vis Ndx Name; keep the defined ones.
	# Version nodes are ABS objects named like the version: dropped.
	"$READELF_BIN" --dyn-syms -W "$1" | awk '
		$1 ~ /^[0-9]+:$/ && NF >= 8 && $7 != "UND" {
			if ($7 == "ABS" && $8 !~ /@/) next
			print $8
		}'
}
list_nm() {
	$NM_BIN -D --defined-only --with-symbol-versions "$1" 2>/dev/null |
		awk 'NF >= 3 && $2 != "A" { print $3 }'
}

READELF_BIN=${READELF:-readelf}
NM_BIN=${NM:-nm}
if command -v "$READELF_BIN" >/dev/null 2>&1; then
	list_syms=list_readelf
elif command -v "${NM_BIN%% *}" >/dev/null 2>&1; then
	list_syms=list_nm
else
	say "SKIP: neither readelf nor nm is available"
	exit 77
fi
exported=$($list_syms "$lib")
if [ -z "$exported" ]; then
	say "ERROR: no dynamic symbols read from $lib"
	exit 99
fi

# The node each public function was added in, oldest first.
nodes='cfork LIBCFORK_0.1
cfork_last_report LIBCFORK_0.1
cfork_last_stragglers LIBCFORK_0.1
cfork_probe LIBCFORK_0.1
cfork_getconfig LIBCFORK_0.2
cfork_setmode LIBCFORK_0.2'
node_of() {
	printf '%s\n' "$nodes" | awk -v fn="$1" '$1 == fn { print $2 }'
}

# The glibc-named wrappers, by name.  Adding one is a decision: add it
# here too.
interposers='__cxa_finalize
__register_atfork
pthread_atfork'
# lib/handler.c: a longjmp over a redirected return parks the thread.
interposers="$interposers
__longjmp_chk
_longjmp
longjmp
siglongjmp"
# lib/sigmask.c: the signal API, so that the quiesce signal stays
# deliverable and ours, and handlers wait while their thread is stopped.
interposers="$interposers
__sigaction
__sigsuspend
__sysv_signal
bsd_signal
epoll_pwait
epoll_pwait2
ppoll
pselect
pthread_attr_setsigmask_np
pthread_sigmask
setcontext
sigaction
sighold
sigignore
siginterrupt
signal
signalfd
sigprocmask
sigrelse
sigset
sigsuspend
sigtimedwait
sigwait
sigwaitinfo
ssignal
swapcontext
sysv_signal
pthread_cancel"

in_list() {
	printf '%s\n' "$2" | grep -qxF -- "$1"
}

# libc's own versions of a name, one NAME@VER or NAME@@VER a line.
libc=$(ldd "$lib" 2>/dev/null | awk '$1 ~ /^libc\.so\./ { print $3; exit }')
for cand in "$libc" /lib/x86_64-linux-gnu/libc.so.6 /lib64/libc.so.6; do
	if [ -n "$cand" ] && [ -f "$cand" ]; then
		libc=$cand
		break
	fi
	libc=
done
libc_syms=
if [ -n "$libc" ]; then
	libc_syms=$($list_syms "$libc" | LC_ALL=C sort -u)
fi
if [ -z "$libc_syms" ]; then
	echo "note: libc.so.6 not read: interposer versions checked loosely"
else
	libc_syms=$(printf '%s\n' "$libc_syms" |
		sed 's/^pthread_atfork@GLIBC_2\.2\.5$/pthread_atfork@@GLIBC_2.2.5/')
fi

exported=$(printf '%s\n' "$exported" | LC_ALL=C sort -u)

# Is this exported NAME@VERSION allowed?
allowed() {
	name=${1%%@*}
	if in_list "$name" "$interposers"; then
		[ -z "$libc_syms" ] && return 0
		in_list "$1" "$libc_syms"
		return
	fi
	in_list "$name" "$functions" || return 1
	node=$(node_of "$name")
	case $1 in
	*@@*) [ -n "$node" ] && [ "$1" = "$name@@$node" ] ;;
	*@LIBCFORK_*) return 0 ;;  # a superseded version stays in place
	*) return 1 ;;
	esac
}

# Explain a refused interposer version.
libc_has() {
	printf '%s\n' "$libc_syms" | grep -- "^$1@" | tr '\n' ' ' |
		sed 's/ $//'
}

extra=$(printf '%s\n' "$exported" | while IFS= read -r s; do
	allowed "$s" && continue
	name=${s%%@*}
	if in_list "$name" "$interposers"; then
		printf '%s   (libc.so.6 has: %s)\n' "$s" \
			"$(libc_has "$name")"
	else
		printf '%s\n' "$s"
	fi
done)
missing=$(
	for fn in $interposers; do
		if [ -z "$libc_syms" ]; then
			printf '%s\n' "$exported" | grep -q -- "^$fn@" ||
				printf '%s@...   (interposer)\n' "$fn"
			continue
		fi
		want=$(printf '%s\n' "$libc_syms" | grep -- "^$fn@")
		printf '%s\n' "$want" | while IFS= read -r w; do
			[ -n "$w" ] || continue
			printf '%s\n' "$exported" | grep -qxF -- "$w" ||
				printf '%s   (interposer)\n' "$w"
		done
	done
	for fn in $functions; do
		node=$(node_of "$fn")
		if [ -z "$node" ]; then
			printf '%s@@?   (include/cfork.h; no node for it in tests/symbols.sh)\n' "$fn"
			continue
		fi
		printf '%s\n' "$exported" | grep -qxF -- "$fn@@$node" ||
			printf '%s   (include/cfork.h)\n' "$fn@@$node"
	done
)
if [ -n "$extra" ]; then
	say "FAIL: $lib exports symbols outside the public API,"
	say "or an interposer with a version libc does not give it:"
	printf '%s\n' "$extra" | sed 's/^/  /' >&2
	fail=1
fi
if [ -n "$missing" ]; then
	say "FAIL: $lib does not export:"
	printf '%s\n' "$missing" | sed 's/^/  /' >&2
	fail=1
fi
[ "$fail" = 0 ] && echo "exports: exactly the public API ($lib)"

# ---- each node inherits the one before it ---------------------------------
# readelf -V: "Name: LIBCFORK_0.2" then "Parent 1: LIBCFORK_0.1".
if [ "$list_syms" = list_readelf ]; then
	order=$(printf '%s\n' "$nodes" | awk '!seen[$2]++ { print $2 }')
	parents=$("$READELF_BIN" -V -W "$lib" | awk '
		/Name: LIBCFORK_/ { node = $NF; next }
		/Parent 1:/ && node { print node, $NF }
		{ node = "" }')
	prev=
	for n in $order; do
		if [ -n "$prev" ] &&
		   ! printf '%s\n' "$parents" | grep -qxF -- "$n $prev"; then
			say "FAIL: version node $n does not inherit $prev"
			fail=1
		fi
		prev=$n
	done
	[ "$fail" = 0 ] && echo "nodes: each inherits the one before it"
fi

# ---- every public function is in the manual ------------------------------
if [ ! -d "$mandir" ] || [ -z "$(ls "$mandir" 2>/dev/null)" ]; then
	echo "note: $mandir is absent or empty: manual check skipped"
else
	for fn in $functions; do
		# A page of its own, or the name in some page's NAME section
		# (the line after .SH NAME, possibly with \- and font escapes).
		if ls "$mandir/$fn".[0-9]* >/dev/null 2>&1; then
			continue
		fi
		if awk -v fn="$fn" '
			/^\.SH/ {
				in_name = ($0 ~ /^\.SH +"?NAME"?[[:space:]]*$/)
				next
			}
			in_name {
				line = $0
				gsub(/\\f[BIRP]/, "", line)
				gsub(/\\-/, "-", line)
				n = split(line, w, /[^A-Za-z0-9_]+/)
				for (i = 1; i <= n; i++)
					if (w[i] == fn)
						found = 1
			}
			END { exit !found }
		' "$mandir"/*.[0-9]* 2>/dev/null; then
			continue
		fi
		say "FAIL: $fn (include/cfork.h) is not named in $mandir"
		fail=1
	done
	[ "$fail" = 0 ] && echo "manual: names every function of cfork.h"
fi

exit $fail
