#!/bin/sh
# SPDX-License-Identifier: MIT
# The part of tests/torture that make check runs: four fixed seeds, 80
# cforks each (320 in all, 10 to 25 s), each mix checked as make torture
# checks its random ones.  A failure prints the seed and the command that
# replays it.
# The seeds' mixes leave out "cforker" (a second thread calling cfork)
# until siblings of a cforking thread stop getting EINTR from its
# children's SIGCHLD (see README, Tests).
bindir=${top_builddir:-.}/tests
status=0
for seed in 11 12 13 14; do
	"$bindir/torture" -s $seed -n 80 -x cforker || status=1
done
exit $status
