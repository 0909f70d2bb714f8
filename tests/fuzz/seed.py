"""Seeds the fuzzed ledger with accounts of known ids and states, so that generated requests reach
the success paths (deposits, withdrawals, transfers and queries on accounts that exist), not only 404s.

The ids are the `seeded_accounts` dictionary of schemathesis.toml, which binds them to the path's `id`
and to the transfer's account ids part of the time; this script refuses to seed if the two lists
disagree, so the fuzzer never aims at accounts that were never opened.

Usage: python seed.py BASE_URL CONFIG_TOML
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
import urllib.error
import urllib.request

# id -> (currency, overdraft limit, opening deposit, final state). Several currencies so that transfers
# between seeded accounts meet both `currency_mismatch` and success; a frozen and a closed account so
# that commands meet `account_frozen` and `account_closed`; an overdraft so that withdrawals can go
# below zero.
SEEDED_ACCOUNTS: dict[str, tuple[str, str, str | None, str]] = {
    "fuzz-usd-1": ("USD", "100.00", "1000000.00", "OPEN"),
    "fuzz-usd-2": ("USD", "0", "500.00", "OPEN"),
    "fuzz-usd-3": ("USD", "0", "250000.00", "OPEN"),
    "fuzz-usd-empty": ("USD", "0", None, "OPEN"),
    "fuzz-eur-1": ("EUR", "0", "250.00", "OPEN"),
    "fuzz-jpy-1": ("JPY", "0", "100000", "OPEN"),
    "fuzz-kwd-1": ("KWD", "0", "10.125", "OPEN"),
    "fuzz-usd-frozen": ("USD", "0", "75.00", "FROZEN"),
    "fuzz-usd-closed": ("USD", "0", None, "CLOSED"),
}

REQUEST_TIMEOUT_SECONDS = 10

# The fuzzed ledger verifies bearer tokens (scripts/fuzz.sh configures the test JWKS and passes an
# admin token of the test key here); empty when it runs without authentication.
AUTHORIZATION = os.environ.get("LEDGER_FUZZ_AUTHORIZATION", "")


def auth_headers() -> dict[str, str]:
    return {"Authorization": AUTHORIZATION} if AUTHORIZATION else {}


def command(base_url: str, path: str, key: str, body: dict[str, str]) -> dict:
    request = urllib.request.Request(
        f"{base_url}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": key, **auth_headers()},
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise SystemExit(f"seeding failed: POST {path} answered {error.code}: {error.read()!r}") from error


def wait_for_read_model(base_url: str, account_id: str, sequence: int) -> None:
    """Waits (bounded, server side) until queries see the account's last event."""
    url = f"{base_url}/v1/accounts/{account_id}?min_sequence={sequence}"
    request = urllib.request.Request(url, headers=auth_headers())
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
        view = json.loads(response.read())
    if view["last_sequence"] < sequence:
        raise SystemExit(f"seeding failed: {account_id} is at {view['last_sequence']}, not {sequence}")


def seed(base_url: str) -> None:
    for account_id, (currency, overdraft_limit, deposit, state) in SEEDED_ACCOUNTS.items():
        opened = {
            "account_id": account_id,
            "owner": f"Fuzz {account_id}",
            "kind": "CHECKING",
            "currency": currency,
            "overdraft_limit": overdraft_limit,
        }
        sequence = command(base_url, "/v1/accounts", f"seed-open-{account_id}", opened)["sequence"]
        if deposit is not None:
            path = f"/v1/accounts/{account_id}/deposits"
            sequence = command(base_url, path, f"seed-deposit-{account_id}", {"amount": deposit})["sequence"]
        if state == "FROZEN":
            path = f"/v1/accounts/{account_id}/freeze"
            sequence = command(base_url, path, f"seed-freeze-{account_id}", {"reason": "fuzz seed"})["sequence"]
        if state == "CLOSED":
            path = f"/v1/accounts/{account_id}/close"
            sequence = command(base_url, path, f"seed-close-{account_id}", {})["sequence"]
        wait_for_read_model(base_url, account_id, sequence)


def configured_account_ids(config_path: str) -> list[str]:
    with open(config_path, "rb") as file:
        config = tomllib.load(file)
    return list(config["dictionaries"]["seeded_accounts"]["values"])


def main() -> None:
    base_url, config_path = sys.argv[1], sys.argv[2]
    configured = configured_account_ids(config_path)
    if sorted(configured) != sorted(SEEDED_ACCOUNTS):
        raise SystemExit(
            f"the seeded_accounts dictionary of {config_path} ({sorted(configured)}) is not the list "
            f"seed.py opens ({sorted(SEEDED_ACCOUNTS)})"
        )
    seed(base_url)
    print(f"seeded {len(SEEDED_ACCOUNTS)} accounts: {', '.join(SEEDED_ACCOUNTS)}")


if __name__ == "__main__":
    main()
