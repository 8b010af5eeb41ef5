#!/bin/sh
# SPDX-License-Identifier: MIT
# Busy machine (a): while another process keeps every core busy (a hog
# spinning twice as many threads as there are cores), cfork children are
# still coherent (coherence), cfork neither deadlocks nor hands out a sick
# child (stress), and children can use what glibc leaves locked
# (child-libc).  Fewer iterations than the plain runs; speed is not
# asserted, only the counts.
. "${srcdir:-.}/tests/busy-lib.sh"

start_hog
run coherence coherence "$(n 300)" "$(n 20)"
run stress stress -n "$(n 200)"
run child-libc child-libc -n "$(n 100)" -p 5
finish
