#!/bin/sh
# SPDX-License-Identifier: MIT
# Generates ./configure from a git checkout (release tarballs ship it).
set -e
cd "$(dirname "$0")"
autoreconf -fi
