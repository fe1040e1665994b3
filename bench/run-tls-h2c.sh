#!/usr/bin/env bash
# The connection-layer benchmark: the same harness as run.sh (bench/proxy-bench.sh: nginx
# upstream, wrk or h2load, CPU pinning, interleaved repetitions, median), in two setups, each
# for Seawall, nginx and HAProxy side by side:
#   1. tls-upstream    clients speak plain HTTP/1.1 (wrk); each proxy reaches the upstream
#                      over TLS: certificate verified against a throwaway CA, SNI localhost,
#                      keep-alive pool, TLS session reuse on (UPSTREAM_TLS=1).
#   2. h2c-downstream  clients speak HTTP/2 over cleartext, prior knowledge (h2load, CONNS
#                      connections x H2_STREAMS streams); each proxy reaches the upstream over
#                      plain HTTP/1.1 (LOADGEN=h2load).
# Usage:
#   bench/install-tools.sh        # once, as root: nginx haproxy wrk h2load (Debian packages)
#   bench/run-tls-h2c.sh          # REPS, DURATION, WARMUP, CONNS, H2_STREAMS as in proxy-bench.sh
#   SCENARIOS="h2c-downstream" bench/run-tls-h2c.sh     # only one of them
# Every run is bounded (each load generator by its duration and by `timeout`), and every
# process the harness starts is stopped by PID when it ends (see proxy-bench.sh).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE/.."
[[ ${SKIP_BUILD:-0} == 1 ]] || cargo build --release -p seawall
RESULTS_DIR=${RESULTS_DIR:-${TMPDIR:-/tmp}/seawall-bench/$(date +%Y%m%d-%H%M%S)-tls-h2c}
mkdir -p "$RESULTS_DIR"
# Seawall as in run.sh's first run: the default chain, policies off.
export OURS_CMD="env SEAWALL_BENCH_CHAIN=default $HERE/seawall.sh"
for scenario in ${SCENARIOS:-tls-upstream h2c-downstream}; do
  case $scenario in
    tls-upstream)
      UPSTREAM_TLS=1 LOADGEN=wrk RESULTS_DIR="$RESULTS_DIR/$scenario" \
        "$HERE/proxy-bench.sh" direct nginx haproxy ours ;;
    h2c-downstream)
      UPSTREAM_TLS=0 LOADGEN=h2load RESULTS_DIR="$RESULTS_DIR/$scenario" \
        "$HERE/proxy-bench.sh" direct nginx haproxy ours ;;
    *) echo "run-tls-h2c.sh: unknown scenario '$scenario' (tls-upstream, h2c-downstream)" >&2; exit 2 ;;
  esac
done
echo "results: $RESULTS_DIR"
for scenario in ${SCENARIOS:-tls-upstream h2c-downstream}; do
  echo "== $scenario"
  cat "$RESULTS_DIR/$scenario/summary.md"
  # Seawall against nginx in this setup (req/s ratio; p99 ratio where the load generator
  # reports one: h2load gives only the mean).
  awk -F'|' '
    $2 ~ /nginx/ { nr = $4 + 0; np = $8 + 0 }
    $2 ~ /ours/  { or_ = $4 + 0; op = $8 + 0 }
    END { if (nr > 0) printf "seawall/nginx: req/s %.2f", or_ / nr
          if (np > 0 && op > 0) printf ", p99 %.2f", op / np
          if (nr > 0) printf "\n" }' "$RESULTS_DIR/$scenario/summary.md"
done
