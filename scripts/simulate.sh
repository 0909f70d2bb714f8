#!/usr/bin/env bash
# Long runs of the deterministic simulation (tests/src/simulation) in a release build, one seed per
# core at a time: SEEDS seeds of OPS operations each, from FIRST_SEED on (default: a fresh seed,
# printed). A failing seed prints the command that replays it exactly.
#   ./scripts/simulate.sh [SEEDS] [OPS] [FIRST_SEED]     e.g. ./scripts/simulate.sh 200 5000  (10^6 operations)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p ledger-tests --example simulate
target="${CARGO_TARGET_DIR:-target}"
exec "${target}/release/examples/simulate" "$@"
