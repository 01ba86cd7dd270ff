#!/usr/bin/env bash
# Keeps the C module (Sources/CSpindle) compiling for arm64 Linux, which this x86-64 machine
# cannot build natively: clang checks CSpindle.c for aarch64-linux-gnu against Debian's cross
# glibc and kernel headers (libc6-dev-arm64-cross, installed here if missing; needs root). The
# liburing headers are architecture-independent, so the host's are reused, but only they: a
# directory holding links to liburing.h and liburing/ alone is put on the include path, never
# /usr/include itself (whose glibc headers are the host's). Syntax only, no object is written.
set -euo pipefail
cd "$(dirname "$0")/.."

sysroot=/usr/aarch64-linux-gnu
if [ ! -f "$sysroot/include/stdio.h" ] || [ ! -f "$sysroot/include/linux/io_uring.h" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "check-aarch64: $sysroot lacks the cross headers; as root run:" >&2
        echo "    apt-get update && apt-get install -y libc6-dev-arm64-cross" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libc6-dev-arm64-cross >/dev/null
fi
if [ ! -f /usr/include/liburing.h ]; then
    echo "check-aarch64: /usr/include/liburing.h missing (install liburing-dev)" >&2
    exit 1
fi
clang=${CLANG:-$(command -v clang || true)}
if [ -z "$clang" ]; then
    # The Swift toolchain ships one beside swift.
    clang="$(dirname "$(readlink -f "$(command -v swift)")")/clang"
fi

uring=$(mktemp -d)
trap 'rm -rf "$uring"' EXIT
ln -s /usr/include/liburing.h "$uring/liburing.h"
ln -s /usr/include/liburing "$uring/liburing"

"$clang" --target=aarch64-linux-gnu -fsyntax-only -Werror -Wall \
    -nostdinc -isystem "$("$clang" --target=aarch64-linux-gnu -print-resource-dir)/include" \
    -isystem "$sysroot/include" -isystem "$uring" \
    -I Sources/CSpindle/include Sources/CSpindle/CSpindle.c
echo "check-aarch64: Sources/CSpindle compiles for aarch64-linux-gnu"
