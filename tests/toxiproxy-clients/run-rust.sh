#!/usr/bin/env bash
# Runs the integration tests that ship inside the `toxiproxy_rust` crate (version 0.1.6),
# unmodified, against `seawall chaos` on 127.0.0.1:8474 (the address and the ports
# 2000/2001 are hard-coded in those tests, so they run one at a time).
#
# The crate is fetched with cargo into a throwaway project under /tmp and tested from a
# copy there, outside the workspace, with the dependency versions pinned by
# rust/Cargo.lock beside this script; its build goes to a target dir of its own under
# ours so that later runs reuse it. Only the server this script starts is stopped.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VERSION=0.1.6
API_PORT=8474

echo "== toxiproxy_rust $VERSION against seawall chaos"
# Its HTTP client (reqwest 0.11 with native TLS) links OpenSSL.
if ! pkg-config --exists openssl 2>/dev/null; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libssl-dev pkg-config
fi
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p seawall

if (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null; then
  echo "error: something already listens on 127.0.0.1:$API_PORT; stop it first" >&2
  exit 1
fi

WORK="$(mktemp -d /tmp/seawall-toxiproxy-rust.XXXXXX)"
PID=""
cleanup() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# A project that depends on the crate, so that cargo fetches and unpacks it.
mkdir -p "$WORK/fetch/src"
cat >"$WORK/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-toxiproxy-rust"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
toxiproxy_rust = "=$VERSION"
TOML
: >"$WORK/fetch/src/lib.rs"
(cd "$WORK/fetch" && cargo fetch --quiet)
MANIFEST="$(cd "$WORK/fetch" && cargo metadata --format-version 1 \
  | grep -o "\"manifest_path\":\"[^\"]*toxiproxy_rust-$VERSION/Cargo.toml\"" \
  | head -n 1 | cut -d'"' -f4)"
if [ -z "$MANIFEST" ]; then
  echo "error: cargo did not unpack toxiproxy_rust $VERSION" >&2
  exit 1
fi
cp -r "$(dirname "$MANIFEST")" "$WORK/toxiproxy_rust"
cp "$ROOT/tests/toxiproxy-clients/rust/Cargo.lock" "$WORK/toxiproxy_rust/Cargo.lock"

# Build the suite first (unbounded by the run's timeout: a cold build takes minutes).
(cd "$WORK/toxiproxy_rust" \
  && CARGO_TARGET_DIR="$TARGET/toxiproxy-rust" timeout 1200 cargo test --locked --no-run --quiet)

RUST_LOG="${RUST_LOG:-info}" "$TARGET/debug/seawall" chaos --host 127.0.0.1 --port "$API_PORT" >"$WORK/chaos.log" 2>&1 &
PID=$!
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null && break
  sleep 0.1
done

# One retry: the suite races itself. `test_proxy_apply_with_latency_with_real_request`
# binds its upstream (port 2000) on a thread it does not wait for; on a loaded machine the
# proxied connection can come first, find nothing there and be closed (as Toxiproxy also
# does), and the test then waits for that connection forever. The timeout bounds that
# wait; the log of a failed attempt is printed before the retry.
status=1
for attempt in 1 2; do
  status=0
  (cd "$WORK/toxiproxy_rust" \
    && CARGO_TARGET_DIR="$TARGET/toxiproxy-rust" timeout "${CLIENT_TIMEOUT:-180}" \
      cargo test --locked -- --test-threads=1) || status=$?
  [ "$status" -eq 0 ] && break
  echo "== attempt $attempt failed ($status); seawall chaos log:"
  cat "$WORK/chaos.log"
done
exit "$status"
