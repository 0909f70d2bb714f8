#!/usr/bin/env bash
# The whole test suite, as README.md promises it: formatting, lints with warnings denied, and every
# test of every crate (unit, property, contract suites against each adapter, end-to-end over HTTP),
# with the real services the suites need (DynamoDB Local, PostgreSQL) started here and stopped after.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# shellcheck source=scripts/dynamodb-local.sh
source scripts/dynamodb-local.sh
# shellcheck source=scripts/postgres-local.sh
source scripts/postgres-local.sh
# shellcheck source=scripts/moto-local.sh
source scripts/moto-local.sh
# One trap for every service: a second `trap ... EXIT` would replace the first.
stop_services() {
  moto_local_stop
  postgres_local_stop
  dynamodb_local_stop
}
trap stop_services EXIT

step "DynamoDB Local"
dynamodb_local_start

step "PostgreSQL"
postgres_local_start

step "moto (Secrets Manager only: the database-credentials tests)"
moto_local_start

step "cargo test"
cargo test --workspace --all-targets --locked

step "Lambda smoke test (both functions under cargo lambda watch, invoked with cargo lambda invoke)"
./scripts/lambda-smoke.sh

step "Pulumi unit tests (mocks, no cloud)"
./scripts/pulumi-test.sh

step "Dockerfile lint (hadolint and the image's promises; no Docker engine, nothing built)"
./scripts/dockerfile-lint.sh

step "fuzz (schemathesis against a real ledger-api, from its own OpenAPI document)"
./scripts/fuzz.sh
