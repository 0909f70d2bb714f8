#!/usr/bin/env bash
# Builds the deployment zips of the two Lambda functions for AWS Lambda on Graviton (arm64,
# `provided.al2023`): `cargo lambda build --release --arm64 --output-format zip`, with the pinned
# cargo-lambda of scripts/cargo-lambda.sh. A release cross-build: a script of its own, not part of the
# test command. Output: target/lambda/<function>/bootstrap.zip (under $CARGO_TARGET_DIR when set), the
# paths printed at the end; infra/pulumi deploys them.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/cargo-lambda.sh
source scripts/cargo-lambda.sh
cargo_lambda_install

command -v rustup >/dev/null && rustup target add aarch64-unknown-linux-gnu >/dev/null

target_dir="${CARGO_TARGET_DIR:-target}"
cargo lambda build --release --arm64 --locked --output-format zip \
  --package ledger-bootstrap \
  --bin ledger-query-lambda --bin ledger-projection-lambda

for function in ledger-query-lambda ledger-projection-lambda; do
  zip="${target_dir}/lambda/${function}/bootstrap.zip"
  [[ -s "$zip" ]] || { echo "build-lambdas: ${zip} was not produced" >&2; exit 1; }
  printf '%s\t%s bytes\n' "$zip" "$(stat -c %s "$zip")"
done
