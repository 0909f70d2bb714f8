#!/usr/bin/env bash
# The ledger's benchmark: builds the release binaries and runs `ledger-bench` with every workload
# (A-F, in-process and over HTTP against `ledger-api`, each on a throwaway SQLite file), printing one
# table per workload. SQLite only: no service to start. A measurement, not a test; run it on a quiet
# machine. Arguments go to ledger-bench, e.g.
#   ./scripts/bench.sh                                  # everything, 10 s a run
#   ./scripts/bench.sh --workloads A,F --mode http --seconds 20 --json figures.json
#   ./scripts/bench.sh --help
#   LEDGER_BENCH_AUTH=jwt ./scripts/bench.sh --mode http   # with bearer-token verification on
# LEDGER_BENCH_PROFILE=debug skips the release build (to try the script; its figures mean nothing).
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${LEDGER_BENCH_PROFILE:-release}"
case "$profile" in
  release) profile_flag=(--release) ;;
  debug) profile_flag=() ;;
  *) echo "bench: LEDGER_BENCH_PROFILE is release or debug, not '${profile}'" >&2; exit 2 ;;
esac

# One build of every binary the measurements run, in one cargo invocation: the same packages and
# targets each time, so that cargo unifies the same features and the scripts share one release build.
# ledger-bench finds ledger-api and ledger beside itself.
cargo build "${profile_flag[@]}" --locked -p ledger-bootstrap --bin ledger-api --bin ledger-projector \
  --bin ledger -p ledger-tests --example load --example seed -p ledger-bench --bin ledger-bench
target="${CARGO_TARGET_DIR:-target}/${profile}"

# LEDGER_BENCH_AUTH=jwt: the HTTP runs with bearer-token verification on, as deployed. The checked-in
# test keys (ledger_http::auth::testkit, a debug build of the test_token example, kept out of the
# release build measured) give ledger-api its LEDGER_AUTH_* and the bench an admin token, valid an hour.
case "${LEDGER_BENCH_AUTH:-off}" in
  off) ;;
  jwt)
    token_tool=(cargo run --quiet --locked -p ledger-bootstrap --example test_token --)
    while IFS= read -r setting; do export "${setting?}"; done < <("${token_tool[@]}" --env)
    LEDGER_BENCH_AUTHORIZATION="Bearer $("${token_tool[@]}" ledger:admin)"
    export LEDGER_BENCH_AUTHORIZATION
    ;;
  *) echo "bench: LEDGER_BENCH_AUTH is off or jwt, not '${LEDGER_BENCH_AUTH}'" >&2; exit 2 ;;
esac

RUST_LOG="${RUST_LOG:-warn}" "${target}/ledger-bench" --workloads A,B,C,D,E,F "$@"
