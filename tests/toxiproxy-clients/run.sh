#!/usr/bin/env bash
# Runs off-the-shelf Toxiproxy clients, unmodified, against `seawall chaos`:
#   - the PyPI package toxiproxy-python (python_contract.py),
#   - the npm package toxiproxy-node-client (node_contract.mjs, with `node --test`),
#   - the Chaos Toolkit extension chaostoolkit-toxiproxy (one experiment, checked by
#     check_journal.py),
#   - the integration tests shipped inside the crates.io crate toxiproxy_rust 0.1.6
#     (run-rust.sh; they hard-code 127.0.0.1:8474 and ports 2000/2001).
# Versions are pinned so a new release of a client cannot turn CI red overnight.
#
# Usage: tests/toxiproxy-clients/run.sh [python|node|chaostoolkit|rust ...]   (default: all)
# Needs python3 (with venv), node and npm, and network access to PyPI, npm and crates.io.
# Uses port 8474 (the suites' default); SEAWALL=path/to/seawall skips the build.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(python node chaostoolkit rust)

export CHAOS_PORT=8474
if [ -z "${SEAWALL:-}" ]; then
  cargo build -p seawall --quiet
  SEAWALL="${CARGO_TARGET_DIR:-$root/target}/debug/seawall"
fi
work="$(mktemp -d /tmp/seawall-toxiproxy-clients.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

server=""
start_server() {
  [ -n "$server" ] && return 0
  "$SEAWALL" chaos --host 127.0.0.1 --port "$CHAOS_PORT" --seed 7 >"$work/chaos.log" 2>&1 &
  server=$!
  pids+=("$server")
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$CHAOS_PORT/version" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "seawall chaos did not start on 127.0.0.1:$CHAOS_PORT:"; cat "$work/chaos.log"; exit 1
}
# run-rust.sh starts a server of its own on the same port.
stop_server() {
  [ -z "$server" ] && return 0
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
}

python_env() {
  if [ ! -x "$work/venv/bin/python" ]; then
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install --quiet --disable-pip-version-check \
      toxiproxy-python==0.1.1 future requests chaostoolkit==1.19.0 chaostoolkit-toxiproxy==0.3.1
  fi
}

failed=0
for suite in "${suites[@]}"; do
  echo "== toxiproxy clients: $suite"
  case "$suite" in
    python)
      start_server
      python_env
      "$work/venv/bin/python" "$here/python_contract.py" || failed=1
      ;;
    node)
      start_server
      npm install --silent --no-audit --no-fund --prefix "$work/node" toxiproxy-node-client@4.1.0 >/dev/null
      NODE_PATH="$work/node/node_modules" node --test --test-concurrency=1 "$here/node_contract.mjs" || failed=1
      ;;
    chaostoolkit)
      start_server
      python_env
      "$work/venv/bin/python" "$here/echo.py" serve "$work/echo.port" &
      pids+=($!)
      for _ in $(seq 1 50); do [ -s "$work/echo.port" ] && break; sleep 0.1; done
      ECHO_PORT="$(cat "$work/echo.port")"
      export ECHO_PORT
      (cd "$here" && PATH="$work/venv/bin:$PATH" chaos --no-version-check --log-file "$work/chaostoolkit.log" \
          run --journal-path "$work/journal.json" chaostoolkit-experiment.json) || true
      "$work/venv/bin/python" "$here/check_journal.py" "$work/journal.json" "$CHAOS_PORT" || {
        failed=1; tail -40 "$work/chaostoolkit.log"; }
      ;;
    rust)
      stop_server
      if [ -f "$here/run-rust.sh" ]; then
        SEAWALL="$SEAWALL" bash "$here/run-rust.sh" || failed=1
      else
        echo "run-rust.sh missing"; failed=1
      fi
      ;;
    *) echo "unknown suite $suite (python, node, chaostoolkit, rust)"; exit 2 ;;
  esac
done
if [ "$failed" -ne 0 ]; then
  echo "== toxiproxy clients: FAILED"
  [ -f "$work/chaos.log" ] && { echo "-- seawall chaos log (last 50 lines)"; tail -50 "$work/chaos.log"; }
  exit 1
fi
echo "== toxiproxy clients: all passed"
