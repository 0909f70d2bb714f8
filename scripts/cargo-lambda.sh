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

cargo_lambda_install() {
  local marker="${CARGO_LAMBDA_VENV}/.ledger-complete" python="" candidate
  if [[ ! -f "$marker" ]]; then
    for candidate in "${LEDGER_CARGO_LAMBDA_PYTHON:-}" python3.11 python3; do
      if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
        python="$candidate"
        break
      fi
    done
    if [[ -z "$python" ]]; then
      echo "cargo-lambda: needs Python 3.9 or newer with venv and pip (set LEDGER_CARGO_LAMBDA_PYTHON)" >&2
      return 1
    fi
    echo "cargo-lambda: installing cargo-lambda ${CARGO_LAMBDA_VERSION} (ziglang ${ZIGLANG_VERSION}) into ${CARGO_LAMBDA_VENV}"
    rm -rf "$CARGO_LAMBDA_VENV"
    mkdir -p "$(dirname "$CARGO_LAMBDA_VENV")"
    "$python" -m venv "$CARGO_LAMBDA_VENV" &&
      "${CARGO_LAMBDA_VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-virtualenv "cargo-lambda==${CARGO_LAMBDA_VERSION}" "ziglang==${ZIGLANG_VERSION}" || {
      echo "cargo-lambda: could not install into ${CARGO_LAMBDA_VENV} (network? PyPI?)" >&2
      return 1
    }
    touch "$marker"
  fi
  export PATH="${CARGO_LAMBDA_VENV}/bin:${PATH}"
  if ! cargo lambda --version | grep -q "cargo-lambda ${CARGO_LAMBDA_VERSION}"; then
    echo "cargo-lambda: the venv ${CARGO_LAMBDA_VENV} does not run cargo-lambda ${CARGO_LAMBDA_VERSION}" >&2
    return 1
  fi
}
