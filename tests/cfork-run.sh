#!/bin/sh
# SPDX-License-Identifier: MIT
# cfork-run and libcfork-preload.so, from the outside:
#  - --help, --version (125 when they cannot be written), and each
#    error: a bad option (125), no such program or #! interpreter (127),
#    not executable, a static binary or one for another machine, a file
#    neither ELF nor #! (126, found without running it); a #! script
#    runs with its interpreter under the shim;
#  - LD_PRELOAD: appended to the user's entries, libcfork before the shim,
#    inherited by exec'd programs, or not with --no-inherit (the user's
#    entries stay); options become the library's environment variables;
#  - fork(), daemon() and forkpty() of a program that never linked
#    libcfork go through cfork(), with their usual semantics; vfork,
#    posix_spawn and system() do not, and still work; pthread_atfork
#    handlers run in fork()'s order; a program linked to libcfork shares
#    the shim's one libcfork; a set-user-ID program runs, without the
#    shim (when this runs as root, which can make one);
#  - cfork_setmode() in the program overrides --mode for fork();
#  - the shim preloaded alone warns once (the library, loaded after libc
#    then, leaves the warning to it) and leaves fork() alone;
#  - the shim exports exactly what it wraps.
# tests/shim-probe does the work inside each program.

builddir=$(cd "${top_builddir:-.}" && pwd) || exit 99
run=$builddir/tools/cfork-run
probe=$builddir/tests/shim-probe
linked=$builddir/tests/shim-probe-linked
shim=$builddir/.libs/libcfork-preload.so

fail=0
bad() {
	echo "FAIL: $*"
	fail=1
}
# expect WHAT PATTERN TEXT: TEXT must contain a line matching PATTERN.
expect() {
	if printf '%s\n' "$3" | grep -q -- "$2"; then
		echo "ok: $1"
	else
		bad "$1: no line matching '$2' in:"
		printf '%s\n' "$3" | sed 's/^/    /'
	fi
}
refuse() {
	if printf '%s\n' "$3" | grep -q -- "$2"; then
		bad "$1: a line matches '$2' in:"
		printf '%s\n' "$3" | sed 's/^/    /'
	else
		echo "ok: $1"
	fi
}
# status WHAT WANT GOT
status() {
	if [ "$3" = "$2" ]; then
		echo "ok: $1 (exit status $3)"
	else
		bad "$1: exit status $3, expected $2"
	fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cfork-run.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
# Under AddressSanitizer its runtime must be the first object loaded in
# every process that loads the (instrumented) libraries: it is preloaded
# for the whole test, ahead of cfork-run's entries, which shows the
# appending at work; leak reports of sh and other uninstrumented programs
# are not ours.  Otherwise the test module (tests/testmod.c) plays the
# user's own preload.
asan=$(ldd "$builddir/.libs/libcfork.so" 2>/dev/null |
	awk '/libasan/ { print $3; exit }')
user=$asan
if [ -n "$asan" ]; then
	LD_PRELOAD=$user
	export LD_PRELOAD
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
	export ASAN_OPTIONS
else
	user=${CFORK_TEST_MODULE:-}
	[ -f "$user" ] || user=$builddir/.libs/libcfork.so
fi

# ---- the command itself ---------------------------------------------------
out=$("$run" --help 2>&1)
status "--help" 0 $?
expect "--help names the options" '--no-inherit' "$out"
expect "--help gives the usage" '^Usage: cfork-run' "$out"
out=$("$run" --version 2>&1)
status "--version" 0 $?
expect "--version" '^cfork-run (libcfork) [0-9]' "$out"
expect "--version names the libraries" 'libcfork-preload.so' "$out"
if [ -c /dev/full ]; then
	for opt in --help -h --version; do
		out=$("$run" $opt 2>&1 >/dev/full)
		status "$opt >/dev/full" 125 $?
		expect "$opt >/dev/full: message" '^cfork-run: cannot write the' "$out"
	done
else
	echo "note: no /dev/full here: write errors not checked"
fi

out=$("$run" --frobnicate true 2>&1)
status "unknown option" 125 $?
expect "unknown option: message" "unknown option '--frobnicate'" "$out"
out=$("$run" --mode=fast true 2>&1)
status "bad --mode" 125 $?
expect "bad --mode: message" "is not auto, quiesce or direct" "$out"
out=$("$run" --timeout=0 true 2>&1)
status "bad --timeout" 125 $?
out=$("$run" --signal 12 true 2>&1)
status "bad --signal" 125 $?
out=$("$run" 2>&1)
status "no program" 125 $?
out=$("$run" cfork-no-such-program-here 2>&1)
status "no such program" 127 $?
expect "no such program: message" 'cfork-no-such-program-here: no such program' "$out"
out=$("$run" "$tmp/nothing/here" 2>&1)
status "no such path" 127 $?
printf 'not a program\n' >"$tmp/text"
out=$("$run" "$tmp/text" 2>&1)
status "not executable" 126 $?
expect "not executable: message" 'not executable' "$out"
out=$("$run" "$tmp" 2>&1)
status "a directory" 126 $?
# A shell would run a text file without #! as a script of its own, where
# no preload reaches: refused, with the way to run it.
chmod +x "$tmp/text"
out=$("$run" "$tmp/text" 2>&1)
status "neither ELF nor #!" 126 $?
expect "neither ELF nor #!: message" "neither an ELF program nor a #! script.*cfork-run sh $tmp/text" "$out"
printf '#!%s/nothing/here\necho ran\n' "$tmp" >"$tmp/orphan-script"
chmod +x "$tmp/orphan-script"
out=$("$run" "$tmp/orphan-script" 2>&1)
status "a #! interpreter that does not exist" 127 $?
expect "... message" "its interpreter $tmp/nothing/here (#! line) does not exist" "$out"
printf '#!%s\n' "$tmp/text" >"$tmp/text-script"
chmod +x "$tmp/text-script"
out=$("$run" "$tmp/text-script" 2>&1)
status "a #! interpreter neither ELF nor #!" 126 $?
printf '#!\necho ran\n' >"$tmp/empty-script"
chmod +x "$tmp/empty-script"
out=$("$run" "$tmp/empty-script" 2>&1)
status "a #! line with no interpreter" 126 $?
# A script whose interpreter exists: the preload reaches the interpreter.
printf '#!%s report\n' "$probe" >"$tmp/probe-script"
chmod +x "$tmp/probe-script"
out=$("$run" "$tmp/probe-script" 2>&1)
status "a #! script" 0 $?
expect "a #! script: its interpreter runs under the shim" '^shim yes$' "$out"
expect "... and its fork() is a coherent cfork()" '^fork: method quiesce coherent 1$' "$out"

# A static binary: built here when the compiler can (libc.a), never run.
printf 'int main(void) { return 0; }\n' >"$tmp/static.c"
if ${CC:-cc} -static -o "$tmp/static" "$tmp/static.c" 2>/dev/null; then
	out=$("$run" "$tmp/static" 2>&1)
	status "static binary" 126 $?
	expect "static binary: message" 'statically linked' "$out"
	printf '#!%s\n' "$tmp/static" >"$tmp/static-script"
	chmod +x "$tmp/static-script"
	out=$("$run" "$tmp/static-script" 2>&1)
	status "script with a static interpreter" 126 $?
else
	echo "note: no static binary could be built here: that check skipped"
fi

# Not x86-64: a copy of a real program marked 32-bit (ELF class 1).  dd
# runs without the preloads: its aligned_alloc(4096, 1) is an error to
# AddressSanitizer.
cp "$probe" "$tmp/foreign" && chmod +x "$tmp/foreign" &&
	printf '\001' | env -u LD_PRELOAD dd of="$tmp/foreign" bs=1 seek=4 \
		conv=notrunc 2>/dev/null || exit 99
out=$("$run" "$tmp/foreign" 2>&1)
status "not an x86-64 program" 126 $?
expect "not an x86-64 program: message" 'not an x86-64 64-bit program' "$out"

out=$("$run" sh -c 'exit 42' 2>&1)
status "the program's own status" 42 $?
out=$("$run" -- sh -c 'echo ran' 2>&1)
expect "-- ends the options" '^ran$' "$out"
out=$("$run" true 2>&1)
status "a program that never forks" 0 $?
[ -z "$out" ] && echo "ok: ... and prints nothing" ||
	bad "a program that never forks printed: $out"

# ---- LD_PRELOAD and the environment ---------------------------------------
lib=$builddir/.libs
out=$(LD_PRELOAD=$user "$run" "$probe" env 2>&1)
expect "LD_PRELOAD appended, libcfork first" \
	"^LD_PRELOAD=\[$user $lib/libcfork\.so\.[0-9]* $lib/libcfork-preload\.so\]$" "$out"
out=$(LD_PRELOAD=$user "$run" "$run" "$probe" env 2>&1)
expect "nested cfork-run adds nothing twice" \
	"^LD_PRELOAD=\[$user $lib/libcfork\.so\.[0-9]* $lib/libcfork-preload\.so\]$" "$out"
out=$(LD_PRELOAD=$user "$run" sh -c "'$probe' env" 2>&1)
expect "inherited by exec'd programs" "libcfork-preload\.so\]$" "$out"
out=$(LD_PRELOAD=$user "$run" sh -c "'$probe' report" 2>&1)
expect "... which run under the shim" '^fork: method quiesce coherent 1$' "$out"
out=$(LD_PRELOAD=$user "$run" --no-inherit "$probe" env 2>&1)
expect "--no-inherit: the shim removes its entries, the user's stay" \
	"^LD_PRELOAD=\[$user\]$" "$out"
out=$(LD_PRELOAD=$user "$run" --no-inherit "$probe" report 2>&1)
expect "--no-inherit: the program itself still runs under the shim" \
	'^fork: method quiesce coherent 1$' "$out"
out=$("$run" --no-inherit sh -c "'$probe' report" 2>&1)
expect "--no-inherit: exec'd programs run without it" \
	'^fork: method none coherent 0$' "$out"
out=$(CFORK_SHIM_INHERIT=maybe "$run" "$probe" env 2>&1)
expect "a bad CFORK_SHIM_INHERIT is reported" \
	'CFORK_SHIM_INHERIT is neither 0 nor 1' "$out"
out=$("$run" --mode=direct --timeout=250 --on-timeout=fail --signal=40 \
	--debug sh -c 'echo "$CFORK_MODE $CFORK_TIMEOUT_MS $CFORK_ON_TIMEOUT $CFORK_SIGNAL $CFORK_DEBUG"' 2>&1)
expect "options become the library's variables" '^direct 250 fail 40 1$' "$out"
out=$("$run" --mode direct "$probe" report 2>&1)
expect "--mode direct reaches the library" '^fork: method direct' "$out"
# cfork_setmode() overrides CFORK_MODE for the shim's fork() too.
out=$("$run" --mode direct "$probe" setmode quiesce 2>&1)
expect "cfork_setmode(QUIESCE) over --mode direct" '^setmode: method quiesce coherent 1$' "$out"
out=$("$run" --mode quiesce "$probe" setmode direct 2>&1)
expect "cfork_setmode(DIRECT) over --mode quiesce" '^setmode: method direct' "$out"

# ---- what is wrapped, and what is not --------------------------------------
out=$("$probe" report 2>&1)
expect "alone: no shim" '^shim no$' "$out"
expect "alone: fork() is libc's" '^fork: method none' "$out"
out=$("$run" "$probe" report 2>&1)
expect "under cfork-run: the shim is there" '^shim yes$' "$out"
expect "fork(): status kept" '^fork: status 3$' "$out"
expect "fork() is a coherent cfork()" '^fork: method quiesce coherent 1$' "$out"
expect "one libcfork" '^libcfork objects 1$' "$out"
refuse "libcfork preloaded ahead of libc: not late" 'libcfork: loaded after libc' "$out"
out=$("$run" "$linked" report 2>&1)
expect "a program linked to libcfork: still one libcfork" '^libcfork objects 1$' "$out"
expect "... and its fork() is a cfork()" '^fork: method quiesce coherent 1$' "$out"

plain=$("$probe" atfork 2>&1)
shimmed=$("$run" "$probe" atfork 2>&1)
expect "atfork order with fork()" '^parent: prepB prepA parentA parentB$' "$plain"
expect "atfork order, child" '^child: prepB prepA childA childB$' "$plain"
expect "atfork order under the shim" '^parent: prepB prepA parentA parentB$' "$shimmed"
expect "atfork order under the shim, child" '^child: prepB prepA childA childB$' "$shimmed"
expect "... through cfork()" '^atfork: method quiesce' "$shimmed"

out=$("$run" "$probe" vfork 2>&1)
expect "vfork works" '^vfork: status 7$' "$out"
expect "vfork is not a cfork" '^vfork: method none' "$out"
out=$("$run" "$probe" spawn 2>&1)
expect "posix_spawn works" '^spawn: status 6$' "$out"
expect "posix_spawn is not a cfork" '^spawn: method none' "$out"
expect "posix_spawn'd programs inherit the shim" 'spawned LD_PRELOAD=.*libcfork-preload\.so\]$' "$out"
out=$("$run" "$probe" system 2>&1)
expect "system works" '^system: status 5$' "$out"
expect "system is not a cfork" '^system: method none' "$out"

for how in "" "$run --debug"; do
	what=${how:+"under the shim"}
	what=${what:-alone}
	: >"$tmp/err"
	out=$($how "$probe" forkpty 2>>"$tmp/err")
	expect "forkpty $what: the child has the terminal" \
		'^pty child: tty 111, session leader yes, foreground yes$' "$out"
	expect "forkpty $what: status" '^forkpty: status 0$' "$out"
	out=$(cd "$tmp" && $how "$probe" daemon 0 0 2>>"$tmp/err")
	expect "daemon(0, 0) $what" \
		'^daemon: new process yes, session leader yes, cwd /, stdio /dev/null 111$' "$out"
	out=$(cd "$tmp" && $how "$probe" daemon 1 1 2>>"$tmp/err" </dev/null)
	expect "daemon(1, 1) $what" \
		"^daemon: new process yes, session leader yes, cwd $tmp, stdio /dev/null 100\$" "$out"
done
out=$(cat "$tmp/err")
# --debug: one line per cfork: forkpty, daemon, daemon.
n=$(printf '%s\n' "$out" | grep -c 'libcfork: cfork: pid .*method quiesce, coherent')
[ "$n" = 3 ] && echo "ok: forkpty and daemon went through cfork()" ||
	bad "forkpty and daemon: $n cforks reported, expected 3:
$out"

# ---- the shim alone: libcfork after libc ------------------------------------
out=$(LD_PRELOAD=${user:+$user }$lib/libcfork-preload.so "$probe" report 2>&1)
expect "shim alone: one warning" 'libcfork-preload: libcfork.so.0 comes after libc' "$out"
n=$(printf '%s\n' "$out" | grep -c 'libcfork-preload:')
[ "$n" = 1 ] && echo "ok: ... only once" || bad "shim alone: $n warnings"
refuse "shim alone: the library leaves the warning to the shim" 'libcfork: loaded after libc' "$out"
expect "shim alone: fork() stays libc's" '^fork: method none' "$out"
expect "shim alone: fork() works" '^fork: status 3$' "$out"

# ---- set-user-ID: the loader ignores LD_PRELOAD, cfork-run does not fail ----
if [ -n "$asan" ]; then
	echo "note: AddressSanitizer's leak checker cannot run set-user-ID: check skipped"
elif [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	chmod 755 "$tmp"
	cp "$probe" "$tmp/suid-probe" && chown nobody "$tmp/suid-probe" &&
		chmod 4755 "$tmp/suid-probe"
	out=$("$run" "$tmp/suid-probe" report 2>&1)
	rc=$?
	if printf '%s\n' "$out" | grep -q '^secure 1$'; then
		status "set-user-ID program" 0 $rc
		expect "set-user-ID program: runs without the shim" '^shim no$' "$out"
		expect "set-user-ID program: forks" '^fork: status 3$' "$out"
	else
		echo "note: no secure-execution mode here (nosuid mount?): set-user-ID check skipped"
	fi
else
	echo "note: not root: no set-user-ID program to try"
fi

# ---- the shim's exports -----------------------------------------------------
if command -v readelf >/dev/null 2>&1; then
	got=$(readelf --dyn-syms -W "$shim" |
		awk '$1 ~ /^[0-9]+:$/ && NF >= 8 && $7 != "UND" && $7 != "ABS" { print $8 }' |
		LC_ALL=C sort | tr '\n' ' ')
	if [ "$got" = "__fork daemon fork forkpty " ]; then
		echo "ok: the shim exports exactly: $got"
	else
		bad "the shim exports: $got (expected __fork daemon fork forkpty)"
	fi
else
	echo "note: no readelf: exports not checked"
fi

exit $fail
