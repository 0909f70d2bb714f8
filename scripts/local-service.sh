#!/usr/bin/env bash
# What the scripts that start a throwaway service for the test suite share (DynamoDB Local, moto,
# PostgreSQL, the Lambda smoke test's `cargo lambda watch`): a free loopback port, and a bounded wait
# until a process just started answers. Sourced, never run.

# A port free on 127.0.0.1 now (the kernel picks it).
local_service_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# local_service_wait FAIL PID LOG TIMEOUT_SECS WHERE -- PROBE...
# Runs PROBE every 0.1 s until it succeeds. If process PID exits first, or TIMEOUT_SECS pass, prints
# LOG and fails through the caller's FAIL function (which names the service and what needs it).
local_service_wait() {
  local fail="$1" pid="$2" log="$3" timeout_secs="$4" where="$5"
  shift 5
  [ "${1:-}" = "--" ] && shift
  local waited=0
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$log" >&2
      "$fail" "the process exited during start-up" || return 1
    fi
    if [ "$waited" -ge $((timeout_secs * 10)) ]; then
      cat "$log" >&2
      "$fail" "not answering on ${where} after ${timeout_secs}s" || return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}
