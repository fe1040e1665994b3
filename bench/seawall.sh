#!/usr/bin/env bash
# Starts Seawall for bench/proxy-bench.sh (target "ours"): renders bench/seawall-bench.yaml
# with the harness's LISTEN_ADDR / UPSTREAM_ADDR and execs the release binary.
#   SEAWALL_BIN            binary (default: target/release/seawall)
#   SEAWALL_BENCH_CHAIN    "default" (request_id, access_log, debug) or "none"
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN=${SEAWALL_BIN:-$HERE/../target/release/seawall}
case ${SEAWALL_BENCH_CHAIN:-default} in
  default) CHAIN='[request_id, access_log, debug]' ;;
  none) CHAIN='[]' ;;
  *) echo "seawall.sh: SEAWALL_BENCH_CHAIN must be default or none" >&2; exit 2 ;;
esac
CFG="$(mktemp -d)/seawall-bench.yaml"
sed -e "s/@LISTEN_ADDR@/${LISTEN_ADDR:?}/" -e "s/@UPSTREAM_ADDR@/${UPSTREAM_ADDR:?}/" -e "s/@CHAIN@/$CHAIN/" \
  "$HERE/seawall-bench.yaml" >"$CFG"
# The access log goes to stdout; the harness sends it to its run log, as nginx would write its own.
exec "$BIN" run --config "$CFG" --no-watch
