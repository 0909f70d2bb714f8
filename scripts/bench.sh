#!/usr/bin/env bash
# Throughput of ledger-api under concurrent load: builds release binaries, starts the service on a
# throwaway database, drives it with the load example and prints the figures. A measurement, not a test.
#   ./scripts/bench.sh [concurrency] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency="${1:-32}"
seconds="${2:-10}"
port="${LEDGER_BENCH_PORT:-18080}"
dir="$(mktemp -d)"
# One build of every binary the measurements run, in one cargo invocation: the same packages and
# targets each time, so that cargo unifies the same features and the scripts share one release build.
cargo build --release --locked -p ledger-bootstrap --bin ledger-api --bin ledger-projector --bin ledger \
  -p ledger-tests --example load --example seed
target="${CARGO_TARGET_DIR:-target}"
LEDGER_HTTP_ADDR="127.0.0.1:${port}" LEDGER_SQLITE_PATH="${dir}/bench.db" RUST_LOG=warn \
  "${target}/release/ledger-api" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:${port}/health/ready" >/dev/null 2>&1 && break
  sleep 0.1
done
"${target}/release/examples/load" "http://127.0.0.1:${port}" "$concurrency" "$seconds"
