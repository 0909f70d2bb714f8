#!/usr/bin/env bash
# moto's server as the Secrets Manager peer of the test suite (the database-credentials tests read a
# real GetSecretValue answer from it). moto is never the event store's peer: DynamoDB Local is. Pinned,
# installed into a cache venv (never into the repository), started on a free loopback port.
#
#   source scripts/moto-local.sh && moto_local_start   # exports AWS_ENDPOINT_URL_SECRETS_MANAGER
#   moto_local_stop
#
# Only the Secrets Manager endpoint is pointed at it (the SDK's service-specific endpoint variable),
# so the DynamoDB clients keep AWS_ENDPOINT_URL (DynamoDB Local). Fails loudly when it cannot: the
# suites that need it are never skipped.

# moto 5 serves every service from one Flask app; Secrets Manager needs no extra of its own.
MOTO_LOCAL_REQUIREMENTS=(moto==5.2.5 flask==3.1.3 flask-cors==6.0.5)
MOTO_LOCAL_VENV="${LEDGER_CACHE_DIR:-$HOME/.cache/ledger}/moto-5.2.5"
MOTO_LOCAL_START_TIMEOUT_SECS=60
# shellcheck source=scripts/local-service.sh
source "$(dirname "${BASH_SOURCE[0]}")/local-service.sh"

moto_local_fail() {
  echo "error: moto: $*" >&2
  echo "error: the Secrets Manager tests need it; see scripts/moto-local.sh" >&2
  return 1
}

moto_local_start() {
  # shellcheck source=scripts/python-venv.sh
  source "$(dirname "${BASH_SOURCE[0]}")/python-venv.sh"
  python_venv_install "$MOTO_LOCAL_VENV" "${MOTO_LOCAL_REQUIREMENTS[*]}" 9 "" -- "${MOTO_LOCAL_REQUIREMENTS[@]}" ||
    moto_local_fail "could not install ${MOTO_LOCAL_REQUIREMENTS[*]} into ${MOTO_LOCAL_VENV}" || return 1
  local port
  port="$(local_service_free_port)" || moto_local_fail "no free port" || return 1
  MOTO_LOCAL_LOG="$(mktemp -t moto-local.XXXXXX.log)"
  "${MOTO_LOCAL_VENV}/bin/moto_server" -H 127.0.0.1 -p "$port" >"$MOTO_LOCAL_LOG" 2>&1 &
  MOTO_LOCAL_PID=$!
  # Any credentials sign requests moto accepts; those DynamoDB Local was given are kept.
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-ledgerlocal}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-ledgerlocal}"
  export AWS_REGION="${AWS_REGION:-us-east-1}"
  export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:${port}"
  local_service_wait moto_local_fail "$MOTO_LOCAL_PID" "$MOTO_LOCAL_LOG" "$MOTO_LOCAL_START_TIMEOUT_SECS" \
    "$AWS_ENDPOINT_URL_SECRETS_MANAGER" -- \
    curl -s -o /dev/null "${AWS_ENDPOINT_URL_SECRETS_MANAGER}/moto-api/" || return 1
  echo "moto (Secrets Manager) listening on ${AWS_ENDPOINT_URL_SECRETS_MANAGER}"
}

moto_local_stop() {
  if [ -n "${MOTO_LOCAL_PID:-}" ]; then
    kill "$MOTO_LOCAL_PID" 2>/dev/null || true
    wait "$MOTO_LOCAL_PID" 2>/dev/null || true
    MOTO_LOCAL_PID=
  fi
  if [ -n "${MOTO_LOCAL_LOG:-}" ]; then
    rm -f "$MOTO_LOCAL_LOG"
    MOTO_LOCAL_LOG=
  fi
  return 0
}
