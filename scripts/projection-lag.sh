#!/usr/bin/env bash
# Projection lag into PostgreSQL under sustained load, on the AWS-shaped stack run locally: DynamoDB
# Local (event store and stream), one ledger-projector, PostgreSQL (read model), one ledger-api; the
# load example drives it for the given time; then the script waits for the projector to catch up and
# prints p50/p90/p99/max of `projected_at - occurred_at` (an event's `recorded_at` in the event store
# to its row in PostgreSQL) over the money movements of the run. A measurement, not a test.
#   ./scripts/projection-lag.sh [concurrency] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency="${1:-16}"
seconds="${2:-60}"
port="${LEDGER_BENCH_PORT:-18081}"
target="${CARGO_TARGET_DIR:-target}"

# One build of every binary the measurements run, in one cargo invocation: the same packages and
# targets each time, so that cargo unifies the same features and the scripts share one release build.
cargo build --release --locked -p ledger-bootstrap --bin ledger-api --bin ledger-projector --bin ledger \
  -p ledger-tests --example load --example seed -p ledger-bench --bin ledger-bench

# shellcheck source=scripts/dynamodb-local.sh
source scripts/dynamodb-local.sh
# shellcheck source=scripts/postgres-local.sh
source scripts/postgres-local.sh
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  postgres_local_stop
  dynamodb_local_stop
}
trap cleanup EXIT
dynamodb_local_start
postgres_local_start

export LEDGER_EVENT_STORE=dynamodb LEDGER_READ_MODEL=postgres RUST_LOG=warn
"${target}/release/ledger" create-tables
"${target}/release/ledger" migrate
"${target}/release/ledger-projector" &
pids+=("$!")
LEDGER_HTTP_ADDR="127.0.0.1:${port}" "${target}/release/ledger-api" &
pids+=("$!")
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:${port}/health/live" >/dev/null 2>&1 && break
  sleep 0.1
done

psql_at() { "${POSTGRES_LOCAL_BIN}/psql" "$DATABASE_URL" -XAtq -c "$1"; }
"${target}/release/examples/load" "http://127.0.0.1:${port}" "$concurrency" "$seconds"

# Wait (bounded) until the row count has not grown for 5 s in a row: the projector has drained the
# stream. One quiet second is not enough (its idle back-off reaches 1 s), and rows projected late
# are the ones with the largest lag: stopping early would flatter the p99.
previous=-1
quiet=0
for _ in $(seq 1 180); do
  rows="$(psql_at "SELECT count(*) FROM account_transactions")"
  if [ "$rows" = "$previous" ]; then quiet=$((quiet + 1)); else quiet=0; fi
  [ "$quiet" -ge 5 ] && break
  previous="$rows"
  sleep 1
done
[ "$quiet" -ge 5 ] || { echo "projection-lag: the projector did not drain within 180 s" >&2; exit 1; }
echo
echo "projection lag into PostgreSQL (recorded_at -> row written), ${rows} money movements:"
psql_at "SELECT format('p50 %s ms, p90 %s ms, p99 %s ms, max %s ms', \
    round(1000 * extract(epoch FROM percentile_disc(0.50) WITHIN GROUP (ORDER BY projected_at - occurred_at))), \
    round(1000 * extract(epoch FROM percentile_disc(0.90) WITHIN GROUP (ORDER BY projected_at - occurred_at))), \
    round(1000 * extract(epoch FROM percentile_disc(0.99) WITHIN GROUP (ORDER BY projected_at - occurred_at))), \
    round(1000 * extract(epoch FROM max(projected_at - occurred_at)))) FROM account_transactions"
