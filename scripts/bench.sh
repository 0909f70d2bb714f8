#!/usr/bin/env bash
# The ledger's benchmark: builds the release binaries and runs `ledger-bench` with every workload
# (A-F, in-process and over HTTP against `ledger-api`, each on a throwaway SQLite file), printing one
# table per workload. SQLite only: no service to start. A measurement, not a test; run it on a quiet
# machine. Arguments go to ledger-bench, e.g.
#   ./scripts/bench.sh                                  # everything, 10 s a run
#   ./scripts/bench.sh --workloads A,F --mode http --seconds 20 --json figures.json
#   ./scripts/bench.sh --help
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

RUST_LOG="${RUST_LOG:-warn}" "${target}/ledger-bench" --workloads A,B,C,D,E,F "$@"
