#!/usr/bin/env bash
# The figures of `ledger verify` and `ledger rebuild` on a ledger of N events: seeds a fresh ledger
# in-process through the CommandService (the `seed` example: deposits and transfers over many
# accounts, concurrent writers), then times `ledger verify`, `ledger rebuild` and
# `ledger verify` again on it. A measurement, not a test.
#
#   ./scripts/rebuild-bench.sh sqlite   [events] [accounts] [writers]   # default 1000000 10000 8
#   ./scripts/rebuild-bench.sh dynamodb [events] [accounts] [writers]   # default 100000 2000 32
#
# sqlite: one embedded file in a temporary directory. dynamodb: DynamoDB Local and a throwaway
# PostgreSQL read model, both started here (scripts/dynamodb-local.sh, scripts/postgres-local.sh);
# LEDGER_BENCH_READ_MODEL=sqlite keeps the read model in an SQLite file instead.
# LEDGER_BENCH_PROFILE=debug skips the release build (to try the script; its figures mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "rebuild-bench: $*" >&2; exit 2; }

store="${1:-sqlite}"
case "$store" in
  sqlite) default_events=1000000 default_accounts=10000 default_writers=8 ;;
  dynamodb) default_events=100000 default_accounts=2000 default_writers=32 ;;
  *) fail "the first argument is sqlite or dynamodb, not '${store}'" ;;
esac
events="${2:-$default_events}"
accounts="${3:-$default_accounts}"
writers="${4:-$default_writers}"
for figure in "$events" "$accounts" "$writers"; do
  [[ "$figure" =~ ^[1-9][0-9]*$ ]] || fail "'${figure}' is not a positive whole number"
done
profile="${LEDGER_BENCH_PROFILE:-release}"
case "$profile" in
  release) profile_flag=(--release) ;;
  debug) profile_flag=() ;;
  *) fail "LEDGER_BENCH_PROFILE is release or debug, not '${profile}'" ;;
esac

# The same packages and targets as scripts/projection-lag.sh and scripts/bench.sh: one feature set, one build.
cargo build "${profile_flag[@]}" --locked -p ledger-bootstrap --bin ledger-api --bin ledger-projector \
  --bin ledger -p ledger-tests --example load --example seed -p ledger-bench --bin ledger-bench
target="${CARGO_TARGET_DIR:-target}/${profile}"

dir="$(mktemp -d)"
cleanup() {
  if [ "$store" = dynamodb ]; then
    dynamodb_local_stop || true
    [ -n "${DATABASE_URL:-}" ] && { postgres_local_stop || true; }
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

export RUST_LOG="${RUST_LOG:-warn}"
case "$store" in
  sqlite)
    export LEDGER_EVENT_STORE=sqlite LEDGER_READ_MODEL=sqlite LEDGER_SQLITE_PATH="${dir}/ledger.db"
    ;;
  dynamodb)
    # shellcheck source=scripts/dynamodb-local.sh
    source scripts/dynamodb-local.sh
    dynamodb_local_start
    export LEDGER_EVENT_STORE=dynamodb LEDGER_DYNAMODB_TABLE_PREFIX="bench_$$_"
    export LEDGER_SQLITE_PATH="${dir}/read-model.db"
    if [ "${LEDGER_BENCH_READ_MODEL:-postgres}" = postgres ]; then
      # shellcheck source=scripts/postgres-local.sh
      source scripts/postgres-local.sh
      postgres_local_start
      export LEDGER_READ_MODEL=postgres
    else
      export LEDGER_READ_MODEL=sqlite
    fi
    ;;
esac

echo "== seeding ${events} events over ${accounts} accounts on ${store} (read model: ${LEDGER_READ_MODEL}, ${profile} build)"
"${target}/examples/seed" "$events" "$accounts" "$writers"

# Seconds since the epoch with milliseconds, for elapsed times the commands do not print themselves.
now_ms() { date +%s%3N; }

echo "== ledger verify"
started="$(now_ms)"
set +e
"${target}/ledger" verify >"${dir}/verify.out"
verified=$?
set -e
verify_ms=$(( $(now_ms) - started ))
tail -n 1 "${dir}/verify.out"
[ "$verified" -eq 0 ] || { head -n 20 "${dir}/verify.out"; fail "ledger verify found differences on a freshly seeded ledger (exit ${verified})"; }

echo "== ledger rebuild"
started="$(now_ms)"
"${target}/ledger" rebuild
rebuild_ms=$(( $(now_ms) - started ))
echo "== ledger verify after the rebuild"
"${target}/ledger" verify | tail -n 1

seconds() { printf '%d.%03d s' $(( $1 / 1000 )) $(( $1 % 1000 )); }
echo
echo "figures: ${events} events, ${accounts} accounts, event store ${store}, read model ${LEDGER_READ_MODEL}"
echo "  ledger verify:  $(seconds "$verify_ms")"
echo "  ledger rebuild: $(seconds "$rebuild_ms")"
