#!/bin/sh
# Build the bundled sample enclave program, tui/sample/sample-enclave, from sample_enclave.c.
#
# Static, so it runs on any x86-64 Linux. The extra flags make the output as reproducible as the
# toolchain allows: no build-id note, no compiler ident string from our object, and no absolute
# source paths. The binary is committed; rebuild it only when the C source changes.
set -eu
cd "$(dirname "$0")/.."
: "${CC:=gcc}"
"$CC" -O2 -static \
    -fno-ident \
    -ffile-prefix-map="$PWD"=. \
    -frandom-seed=sample_enclave \
    -Wl,--build-id=none \
    -Wall -Wextra \
    -o tui/sample/sample-enclave tui/sample/sample_enclave.c
echo "built tui/sample/sample-enclave ($(wc -c < tui/sample/sample-enclave) bytes)"
