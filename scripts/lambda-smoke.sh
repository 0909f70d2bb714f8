#!/usr/bin/env bash
# Smoke test of the two Lambda functions as the Lambda runtime runs them, on 127.0.0.1 only:
# `cargo lambda watch` (cargo-lambda's Lambda Runtime API emulator, pinned by scripts/cargo-lambda.sh)
# runs the real binaries; `cargo lambda invoke` hands the projection function a DynamoDB Streams event
# (adapters/lambda/tests/events/dynamodb-stream.json: an account opened and a deposit) and then the
# query function an API Gateway HTTP API v2 request for that account; the emulator's function URL is
# asked the same over plain HTTP. Both answers must say what the projected events say.
#
# Needs DATABASE_URL naming a PostgreSQL server (the test command starts one); the functions get a
# fresh database of their own, migrated by `ledger migrate`, dropped at the end. Run alone:
#   bash -c 'source scripts/postgres-local.sh && postgres_local_start && trap postgres_local_stop EXIT && ./scripts/lambda-smoke.sh'
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { printf 'lambda-smoke: %s\n' "$*" >&2; exit 1; }

[[ -n "${DATABASE_URL:-}" ]] || fail "DATABASE_URL must name a PostgreSQL server (see the header of this script)"
command -v psql >/dev/null || fail "psql is required"

# shellcheck source=scripts/cargo-lambda.sh
source scripts/cargo-lambda.sh
# shellcheck source=scripts/local-service.sh
source scripts/local-service.sh
cargo_lambda_install

stream_event="adapters/lambda/tests/events/dynamodb-stream.json"
query_event="adapters/lambda/tests/events/apigw-v2-get.json"
account_id="acc-fixture"

work="$(mktemp -d)"
database="ledger_lambda_smoke_$$"
server_url="${DATABASE_URL%/*}"
smoke_url="${server_url}/${database}"
watch_pid=""
cleanup() {
  if [[ -n "$watch_pid" ]]; then
    kill -- "-${watch_pid}" 2>/dev/null || kill "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
  fi
  psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS ${database} WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "CREATE DATABASE ${database}" >/dev/null
# The query function always verifies bearer tokens: the checked-in TEST JWKS and a read token of the
# test key (the `test_token` example), never anything a deployment uses.
token_cmd=(cargo run --locked --quiet -p ledger-bootstrap --example test_token --)
auth_env="$("${token_cmd[@]}" --env)" || fail "the test_token example failed"
authorization="Bearer $("${token_cmd[@]}" ledger:read)"
# The functions' configuration, the same variables as every deployable's.
cat >"${work}/functions.env" <<ENV
DATABASE_URL=${smoke_url}
LEDGER_READ_MODEL=postgres
LEDGER_EVENT_STORE=dynamodb
RUST_LOG=info
${auth_env}
ENV
set -a
# shellcheck disable=SC1091
source "${work}/functions.env"
set +a
cargo run --locked --quiet -p ledger-bootstrap --bin ledger -- migrate >/dev/null ||
  fail "ledger migrate failed on ${database}"

port="$(local_service_free_port)"
echo "lambda-smoke: cargo lambda watch on 127.0.0.1:${port}"
set -m
cargo lambda watch --package ledger-bootstrap --ignore-changes --quiet \
  --invoke-address 127.0.0.1 --invoke-port "$port" --env-file "${work}/functions.env" \
  >"${work}/watch.log" 2>&1 &
watch_pid=$!
set +m
for _ in $(seq 1 300); do
  if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then break; fi
  kill -0 "$watch_pid" 2>/dev/null || { cat "${work}/watch.log" >&2; fail "cargo lambda watch exited"; }
  sleep 0.2
done
(exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null || { cat "${work}/watch.log" >&2; fail "the emulator never listened"; }

invoke() {
  local function="$1" payload="$2" out="$3"
  cargo lambda invoke "$function" --invoke-address 127.0.0.1 --invoke-port "$port" \
    --data-file "$payload" --output-format json >"$out" 2>"${out}.err" || {
    cat "${out}.err" "${work}/watch.log" >&2
    fail "cargo lambda invoke ${function} failed"
  }
}

# 1. The projection function folds the two records into PostgreSQL and reports no failure.
invoke ledger-projection-lambda "$stream_event" "${work}/projected.json"
python3 - "${work}/projected.json" <<'PY' || { cat "${work}/watch.log" >&2; fail "the projection function's answer is wrong"; }
import json, sys
answer = json.load(open(sys.argv[1]))
failures = answer.get("batchItemFailures")
assert failures == [], f"expected no batch item failures, got {answer!r}"
PY

# 2. The query function answers an API Gateway v2 request for the account from PostgreSQL.
python3 - "$query_event" "$account_id" "${work}/get-account.json" "$authorization" <<'PY'
import json, sys
event = json.load(open(sys.argv[1]))
account = sys.argv[2]
event["headers"]["authorization"] = sys.argv[4]
path = f"/v1/accounts/{account}"
event["rawPath"] = path
event["rawQueryString"] = "min_sequence=2"
event["requestContext"]["http"]["path"] = path
event["pathParameters"] = {"id": account}
json.dump(event, open(sys.argv[3], "w"))
PY
invoke ledger-query-lambda "${work}/get-account.json" "${work}/account.json"
check_account='
import json, sys
account = json.loads(sys.argv[2])
assert account["account_id"] == sys.argv[3], account
assert account["balance"] == "10.00", account
assert account["last_sequence"] == 2, account
'
python3 - "${work}/account.json" <<PY || { cat "${work}/watch.log" >&2; fail "the query function's answer is wrong"; }
import json, sys
answer = json.load(open(sys.argv[1]))
assert answer["statusCode"] == 200, answer
body = json.loads(answer["body"])
assert body["account_id"] == "${account_id}" and body["balance"] == "10.00" and body["last_sequence"] == 2, body
PY

# 3. The same over the emulator's function URL, as an HTTP client sees it.
body="$(curl -fsS -H "Authorization: ${authorization}" "http://127.0.0.1:${port}/lambda-url/ledger-query-lambda/v1/accounts/${account_id}")" ||
  { cat "${work}/watch.log" >&2; fail "the function URL did not answer 200"; }
python3 -c "$check_account" - "$body" "$account_id" || fail "the function URL's answer is wrong: ${body}"

echo "lambda-smoke: both functions answered through cargo lambda watch"
