#!/usr/bin/env bash
# The chaos proxy's data plane with no toxics: loopback throughput and round trips, direct
# to an upstream and through `seawall chaos`, and memory per held connection. Bounded:
# about a minute; stops only the server it started.
#   BYTES=268435456  bulk transfer per repetition (3 repetitions each way)
#   ROUND_TRIPS=20000  64-byte echo round trips in a row
#   CONNS=2000       connections held open at once
# Usage: bench/chaos.sh    (builds the release binary and the load generator first)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml" -p seawall
cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml" -p seawall-chaos --example chaos_bench
ulimit -n 65536 2>/dev/null || true

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG="$(mktemp)"
RUST_LOG=warn "$TARGET/release/seawall" chaos --port "$PORT" >"$LOG" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -f "$LOG"; }
trap cleanup EXIT
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

echo "seawall chaos $(git -C "$ROOT" rev-parse --short HEAD), $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
timeout 300 "$TARGET/release/examples/chaos_bench" "127.0.0.1:$PORT" "$PID"
