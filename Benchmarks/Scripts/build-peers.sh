#!/usr/bin/env bash
# Builds spindle-bench's Tokio and Go peers (Benchmarks/Peers/) into OUT (default
# Benchmarks/.build-peers-bin, gitignored): spindle-peer-tokio from Debian's packaged crates,
# offline (apt-get install -y librust-tokio-dev librust-hyper-dev librust-libc-dev, and cargo),
# spindle-peer-go from Go's standard library with GOPROXY=off (apt-get install -y golang-go).
# A peer whose tools are missing is skipped with one line on stdout; so is one whose build
# fails or takes over PEERS_BUILD_TIMEOUT seconds (default 600). Always exits 0: spindle-bench
# runs the peers whose binary exists.
#
#   Benchmarks/Scripts/build-peers.sh [OUT]
set -u
peers="$(cd "$(dirname "$0")/../Peers" && pwd)"
out="${1:-$(dirname "$peers")/.build-peers-bin}"
limit="${PEERS_BUILD_TIMEOUT:-600}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

cargo=$(command -v cargo || { [ -x "$HOME/.cargo/bin/cargo" ] && echo "$HOME/.cargo/bin/cargo"; } || true)
registry=/usr/share/cargo/registry
if [ -z "$cargo" ]; then
    echo "skipped Tokio peers: cargo not found"
elif ! ls -d "$registry"/tokio-1.* "$registry"/hyper-0.14.* >/dev/null 2>&1; then
    echo "skipped Tokio peers: no tokio 1.x and hyper 0.14 in $registry (apt-get install -y librust-tokio-dev librust-hyper-dev librust-libc-dev)"
elif (cd "$peers/tokio" && timeout "$limit" "$cargo" build --release --offline -q \
        --target-dir "$out/tokio-target") >"$out/tokio-build.log" 2>&1; then
    ln -sf "$out/tokio-target/release/spindle-peer-tokio" "$out/spindle-peer-tokio"
else
    rm -f "$out/spindle-peer-tokio"
    echo "skipped Tokio peers: cargo build failed (see $out/tokio-build.log)"
fi

if ! command -v go >/dev/null; then
    echo "skipped Go peers: go not found"
elif (cd "$peers/go" && GOCACHE="$out/gocache" GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local \
        timeout "$limit" go build -o "$out/spindle-peer-go" .) >"$out/go-build.log" 2>&1; then
    :
else
    rm -f "$out/spindle-peer-go"
    echo "skipped Go peers: go build failed (see $out/go-build.log)"
fi
