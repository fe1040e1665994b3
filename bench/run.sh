#!/usr/bin/env bash
# One command for the core benchmark: builds the release binary, then runs the harness with
# the upstream (nginx, one worker) measured directly, through nginx, HAProxy and Seawall with
# the default chain; then Seawall with an empty chain, and with the resilience policies on
# (each of those runs measures `direct` again as the noise check).
#   bench/install-tools.sh      # once, as root: nginx haproxy wrk h2load (Debian packages)
#   bench/run.sh                # REPS, DURATION, CONNS, LOADGEN as in proxy-bench.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/.."
cargo build --release -p seawall
RESULTS_DIR=${RESULTS_DIR:-${TMPDIR:-/tmp}/seawall-bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RESULTS_DIR"
# Two Seawall variants need two harness runs ("ours" is one target); direct, nginx and haproxy
# run in the first, and direct again in the second as the noise check between runs.
OURS_CMD="env SEAWALL_BENCH_CHAIN=default $HERE/seawall.sh" RESULTS_DIR="$RESULTS_DIR/default-chain" \
  "$HERE/proxy-bench.sh" direct nginx haproxy ours
OURS_CMD="env SEAWALL_BENCH_CHAIN=none $HERE/seawall.sh" RESULTS_DIR="$RESULTS_DIR/empty-chain" \
  "$HERE/proxy-bench.sh" direct ours
# The cost of the resilience policies on the hot path: default chain, policies on.
OURS_CMD="env SEAWALL_BENCH_POLICIES=on $HERE/seawall.sh" RESULTS_DIR="$RESULTS_DIR/policies-on" \
  "$HERE/proxy-bench.sh" direct ours
echo "results: $RESULTS_DIR"

# The target of the core issue: Seawall (default chain) at least nginx's req/s, p99 at most
# 1.2x nginx's. Print both ratios from the first run's summary table.
awk -F'|' '
  $2 ~ /nginx/ { nr = $4 + 0; np = $8 + 0 }
  $2 ~ /ours/  { or_ = $4 + 0; op = $8 + 0 }
  END { if (nr > 0 && np > 0)
          printf "seawall/nginx: req/s %.2f (target >= 1.00), p99 %.2f (target <= 1.20)\n", or_ / nr, op / np }
' "$RESULTS_DIR/default-chain/summary.md"
