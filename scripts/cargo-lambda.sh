#!/usr/bin/env bash
# cargo-lambda, pinned, from PyPI into a cache venv (never the repository): `cargo lambda build` packages
# the two Lambda functions (cross-compiling with the Zig toolchain that the `ziglang` wheel carries) and
# `cargo lambda watch`/`invoke` run them locally for the smoke test. Source it, then call
# `cargo_lambda_install`: it puts the venv's bin directory first on PATH, so `cargo lambda` is this one.
#
#   LEDGER_CARGO_LAMBDA_PYTHON  the Python (3.9 or newer) that builds the venv (default python3.11, python3)

CARGO_LAMBDA_VERSION=1.9.2
# cargo-lambda's own dependency, pinned as well so a fresh machine gets the toolchain we tested.
ZIGLANG_VERSION=0.17.1
CARGO_LAMBDA_VENV="${HOME}/.cache/ledger/cargo-lambda-${CARGO_LAMBDA_VERSION}-zig-${ZIGLANG_VERSION}"

# shellcheck source=scripts/python-venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/python-venv.sh"

cargo_lambda_install() {
  python_venv_install "$CARGO_LAMBDA_VENV" "cargo-lambda==${CARGO_LAMBDA_VERSION} ziglang==${ZIGLANG_VERSION}" 9 \
    "${LEDGER_CARGO_LAMBDA_PYTHON:-}" -- "cargo-lambda==${CARGO_LAMBDA_VERSION}" "ziglang==${ZIGLANG_VERSION}" ||
    return 1
  export PATH="${CARGO_LAMBDA_VENV}/bin:${PATH}"
  if ! cargo lambda --version | grep -q "cargo-lambda ${CARGO_LAMBDA_VERSION}"; then
    echo "cargo-lambda: the venv ${CARGO_LAMBDA_VENV} does not run cargo-lambda ${CARGO_LAMBDA_VERSION}" >&2
    return 1
  fi
}
