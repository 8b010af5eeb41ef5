#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Every manual page in man/ reads with man -l from the top of the source
# tree, as README tells users to read them before installing, and neither
# man --warnings (formatting for an 80-column terminal) nor groff -ww
# (every warning) complains.  A page that is only a .so link fails here: man -l resolves
# the link from the current directory, not from the page's.
#
# Exit: 0 pass, 1 fail, 77 skip (no man or groff).

script_dir=$(cd "$(dirname "$0")" && pwd)
srcdir_top=$(cd "${top_srcdir:-$script_dir/..}" && pwd) || exit 99

for tool in man groff; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "SKIP: no $tool here"
		exit 77
	}
done

cd "$srcdir_top" || exit 99
LC_ALL=C.UTF-8 MANWIDTH=80
export LC_ALL MANWIDTH
fail=0
n=0
for page in man/*.[1-8]; do
	[ -f "$page" ] || continue
	n=$((n + 1))
	out=$( {
		man --warnings -l "$page" 2>&1 >/dev/null
		groff -ww -z -man "$page" 2>&1
		! head -n 1 "$page" | grep -q '^\.so ' ||
			echo "a .so link, which man -l cannot follow from here"
	} )
	if [ -n "$out" ]; then
		echo "FAIL: $page:"
		printf '%s\n' "$out" | sed 's/^/    /'
		fail=1
	elif ! man -l "$page" 2>/dev/null | grep -q '^NAME'; then
		echo "FAIL: $page: no NAME section in man -l's output"
		fail=1
	else
		echo "ok: $page"
	fi
done
[ "$n" -gt 0 ] || {
	echo "no pages in $srcdir_top/man"
	exit 99
}
exit $fail
