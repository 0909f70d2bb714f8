#!/usr/bin/env bash
# Fuzzes every endpoint of a real ledger-api from its own OpenAPI document with schemathesis: no 5xx,
# every response conforms to the document (status, content type, headers, body), and a rejected request
# writes nothing (tests/fuzz/hooks.py compares the SQLite event store before and after each call).
#
# It installs the pinned schemathesis into a cache venv (~/.cache/ledger, never the repository), builds
# and starts ledger-api on a throwaway embedded database with authentication on (the checked-in TEST
# JWKS of adapters/http/tests/fixtures/auth; an admin token of the test key from the `test_token`
# example goes with every request, and schemathesis's `ignored_auth` check sends requests without it),
# seeds accounts of known ids, fuzzes, and stops the server. Any failure exits non-zero. Run alone: ./scripts/fuzz.sh
#
#   LEDGER_FUZZ_SEED          hypothesis seed (default 20261201): the same seed replays the same inputs
#   LEDGER_FUZZ_MAX_EXAMPLES  examples per operation in the fuzzing phase (default 60)
#   LEDGER_FUZZ_PYTHON        the Python (3.11 or newer) that builds the venv (default python3.11, python3)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
seed="${LEDGER_FUZZ_SEED:-20261201}"
max_examples="${LEDGER_FUZZ_MAX_EXAMPLES:-60}"
venv="${HOME}/.cache/ledger/schemathesis-${SCHEMATHESIS_VERSION}"
requirements="tests/fuzz/requirements.txt"

fail() { printf 'fuzz: %s\n' "$*" >&2; exit 1; }

[[ "$seed" =~ ^[0-9]+$ ]] || fail "LEDGER_FUZZ_SEED must be a whole number, not '${seed}'"
[[ "$max_examples" =~ ^[1-9][0-9]*$ ]] || fail "LEDGER_FUZZ_MAX_EXAMPLES must be a positive whole number"
grep -qx "schemathesis==${SCHEMATHESIS_VERSION}" "$requirements" ||
  fail "${requirements} does not pin schemathesis==${SCHEMATHESIS_VERSION}"

# shellcheck source=scripts/python-venv.sh
source scripts/python-venv.sh
python_venv_install "$venv" "$(sha256sum "$requirements" | cut -d' ' -f1)" 11 "${LEDGER_FUZZ_PYTHON:-}" \
  -- -r "$requirements" || fail "the fuzz step needs schemathesis in ${venv} (set LEDGER_FUZZ_PYTHON)"
"${venv}/bin/schemathesis" --version | grep -q "${SCHEMATHESIS_VERSION}" ||
  fail "the venv ${venv} does not run schemathesis ${SCHEMATHESIS_VERSION}"

command -v cargo >/dev/null || fail "cargo is required (https://rustup.rs)"
# The same build as the test command's `cargo test` (which also builds ledger-api, for the process
# tests): right after it this is a no-op, where `cargo build -p ledger-bootstrap` would resolve other
# features and compile half the dependency tree again.
cargo test --workspace --all-targets --locked --no-run
binary="${CARGO_TARGET_DIR:-target}/debug/ledger-api"
[[ -x "$binary" ]] || fail "no ledger-api binary at ${binary}"
# TEST keys only: the ledger verifies tokens as it would in production, against the test JWKS.
# (`cargo test` builds examples with the test harness, so the runnable example is built here.)
token_cmd=(cargo run --locked --quiet -p ledger-bootstrap --example test_token --)
auth_env=()
while IFS= read -r line; do auth_env+=("$line"); done < <("${token_cmd[@]}" --env)
[[ "${#auth_env[@]}" -eq 3 ]] || fail "the test_token example did not print the test configuration"
token="$("${token_cmd[@]}" ledger:admin)" || fail "the test_token example failed"
authorization="Bearer ${token}"

dir="$(mktemp -d)"
database="${dir}/fuzz.db"
server_log="${dir}/ledger-api.log"
pid=""
stop_server() {
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap stop_server EXIT

# Port 0: the kernel picks a free port, which the server logs. A short read wait keeps the
# `min_sequence` requests the fuzzer sends (most name sequences no account has reached) fast.
env "${auth_env[@]}" LEDGER_HTTP_ADDR=127.0.0.1:0 LEDGER_SQLITE_PATH="$database" LEDGER_HTTP_WORKERS=2 \
  LEDGER_READ_WAIT_TIMEOUT_MS=100 RUST_LOG=info NO_COLOR=1 "$binary" >"$server_log" 2>&1 &
pid=$!

port=""
for _ in $(seq 1 300); do
  # Its log lines are JSON: `{..., "message":"ledger listening", ..., "port":40123, ...}`.
  port="$(sed -n '/"message":"ledger listening"/s/.*"port":\([0-9][0-9]*\).*/\1/p' "$server_log" | head -n1)"
  [[ -n "$port" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$server_log" >&2; fail "ledger-api exited during start-up"; }
  sleep 0.1
done
[[ -n "$port" ]] || { cat "$server_log" >&2; fail "ledger-api did not report its port within 30 s"; }
base_url="http://127.0.0.1:${port}"
curl -fsS --max-time 10 "${base_url}/health/ready" >/dev/null || fail "ledger-api at ${base_url} is not ready"

export PYTHONDONTWRITEBYTECODE=1
LEDGER_FUZZ_AUTHORIZATION="$authorization" \
  "${venv}/bin/python" tests/fuzz/seed.py "$base_url" tests/fuzz/schemathesis.toml

echo "fuzz: schemathesis ${SCHEMATHESIS_VERSION}, seed ${seed}, ${max_examples} examples per operation, ${base_url}"
status=0
# `/openapi.json` needs `ledger:read` like every query: fetched here with the token, then handed over
# as a file (the `--url` below still sends every request to the server).
schema="${dir}/openapi.json"
curl -fsS --max-time 10 -H "Authorization: ${authorization}" "${base_url}/openapi.json" -o "$schema" ||
  fail "GET /openapi.json with the test token failed"
LEDGER_FUZZ_TOKEN="$token" LEDGER_FUZZ_DATABASE="$database" PYTHONPATH=tests/fuzz SCHEMATHESIS_HOOKS=hooks \
  "${venv}/bin/schemathesis" --config-file tests/fuzz/schemathesis.toml run "$schema" \
  --url "$base_url" --seed "$seed" --max-examples "$max_examples" --generation-database none \
  --checks all --output-sanitize false --no-color || status=$?

if ! kill -0 "$pid" 2>/dev/null; then
  echo "fuzz: ledger-api died during the run; its log:" >&2
  cat "$server_log" >&2
  exit 1
fi
if grep -q "panicked" "$server_log"; then
  echo "fuzz: ledger-api panicked during the run:" >&2
  grep -B2 -A8 "panicked" "$server_log" >&2
  exit 1
fi
if [[ "$status" -ne 0 ]]; then
  echo "fuzz: schemathesis found failures (exit ${status}); replay with LEDGER_FUZZ_SEED=${seed}" >&2
  echo "fuzz: the last lines of the ledger-api log:" >&2
  tail -n 40 "$server_log" >&2
  exit "$status"
fi
echo "fuzz: no failures"
