"""Schemathesis hooks and checks of the fuzz step (scripts/fuzz.sh): a rejected request writes nothing.

Around every call the `events` and `idempotency` tables of the ledger's SQLite file are read (read only,
beside the server's WAL writer) before the request and right after its response, and the check
`rejected_requests_write_nothing` compares them:

- any non-2xx answer leaves the event store as it was: same number of events, same highest global
  position;
- a 4xx that never reaches the command service (malformed body, failed validation, missing or invalid
  key, 405, 413, 415, an unknown route) leaves the idempotency records as they were too — business
  rejections (404 `account_not_found`, 409, 422) may record their outcome under the key, never an event;
- a query writes nothing at all, and a 2xx command writes either nothing (a replay) or exactly its own
  events (one, or two for a transfer) together with exactly one idempotency record.

The server runs with one fuzzing worker in front of it (`--workers 1`), so nothing else writes between
the two reads.

Two more hooks steer generated requests towards the success paths. One makes generated
`Idempotency-Key`s unique most of the time: hypothesis likes to repeat short strings, and a repeated key
answers `409 idempotency_key_reused` instead of running the command. One call in ten keeps the
generated key, so replays and reuses are still exercised. The other gives every other transfer between
one seeded account and itself a second, distinct account.

A class check, `every_operation_reaches_success`, fails the run if an operation never answered 2xx, and
prints how every operation answered. `filter_failure` excuses exactly two documented answers.
"""

from __future__ import annotations

import collections
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import schemathesis
from seed import SEEDED_ACCOUNTS

DATABASE_PATH = os.environ["LEDGER_FUZZ_DATABASE"]

# How many calls may wait for their check at once. One worker checks each response right after its
# call; the bound only keeps a missed check from growing the map without end.
PENDING_CALLS_MAX = 256

# The statuses and codes of answers given before the command service is reached.
STATUSES_BEFORE_THE_COMMAND_SERVICE = {400, 405, 413, 415}
CODES_BEFORE_THE_COMMAND_SERVICE = {"not_found"}

# Every tenth call keeps its generated Idempotency-Key; the others get a fresh one.
KEEP_GENERATED_KEY_EVERY = 10
VALID_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")


@dataclass(frozen=True)
class StoreSnapshot:
    event_count: int
    max_global_position: int
    idempotency_count: int


def _connect() -> sqlite3.Connection:
    # `mode=ro`: the fuzzer must never be the one that writes. Autocommit, so each snapshot's explicit
    # transaction sees the latest committed state.
    connection = sqlite3.connect(
        f"file:{DATABASE_PATH}?mode=ro", uri=True, timeout=10, isolation_level=None, check_same_thread=False
    )
    connection.execute("PRAGMA query_only = ON")
    return connection


_connection = _connect()


def store_snapshot() -> StoreSnapshot:
    """The two tables, read in one read transaction so that they agree with each other."""
    _connection.execute("BEGIN")
    try:
        event_count, max_global_position = _connection.execute(
            "SELECT COUNT(*), COALESCE(MAX(global_position), 0) FROM events"
        ).fetchone()
        (idempotency_count,) = _connection.execute("SELECT COUNT(*) FROM idempotency").fetchone()
    finally:
        _connection.execute("COMMIT")
    return StoreSnapshot(event_count, max_global_position, idempotency_count)


# id(case) -> snapshot before its call; id(response) -> (response, before, after).
_before_by_case: collections.OrderedDict[int, StoreSnapshot] = collections.OrderedDict()
_around_by_response: collections.OrderedDict[int, tuple[object, StoreSnapshot, StoreSnapshot]] = (
    collections.OrderedDict()
)
_calls = 0


def _remember(table: collections.OrderedDict, key: int, value: object) -> None:
    table[key] = value
    while len(table) > PENDING_CALLS_MAX:
        table.popitem(last=False)


def _unique_idempotency_key(case) -> None:
    global _calls
    _calls += 1
    headers = case.headers
    if not headers:
        return
    name = next((name for name in headers if name.lower() == "idempotency-key"), None)
    if name is None or not isinstance(headers[name], str) or not VALID_IDEMPOTENCY_KEY.match(headers[name]):
        # A missing or invalid key is what a negative case is testing: leave it alone.
        return
    if _calls % KEEP_GENERATED_KEY_EVERY != 0:
        headers[name] = f"fuzz-{_calls}-{headers[name]}"[:128]


def _partner_of(account_id: str) -> str:
    """Another seeded account, of the same currency when there is one (so the transfer can succeed)."""
    currency = SEEDED_ACCOUNTS[account_id][0]
    same_currency = [other for other, (other_currency, *_) in SEEDED_ACCOUNTS.items() if other_currency == currency]
    if len(same_currency) > 1:
        return same_currency[(same_currency.index(account_id) + 1) % len(same_currency)]
    return next(other for other in SEEDED_ACCOUNTS if other != account_id)


def _distinct_transfer_accounts(case) -> None:
    """Hypothesis draws the same dictionary entry for both sides of a transfer far more often than
    chance would (it prefers the simplest choice), which only ever meets `same_account_transfer`.
    Every other such call gets a partner account instead, so that transfers also succeed."""
    body = case.body
    if not isinstance(body, dict) or not case.path.endswith("/v1/transfers"):
        return
    source = body.get("source_account_id")
    same_seeded_account = (
        isinstance(source, str) and source in SEEDED_ACCOUNTS and body.get("target_account_id") == source
    )
    if same_seeded_account and _calls % 2 == 0:
        body["target_account_id"] = _partner_of(source)


@schemathesis.hook
def before_call(context, case, kwargs):
    _unique_idempotency_key(case)
    _distinct_transfer_accounts(case)
    _remember(_before_by_case, id(case), store_snapshot())


@schemathesis.hook
def after_call(context, case, response):
    before = _before_by_case.pop(id(case), None)
    if before is not None:
        _remember(_around_by_response, id(response), (response, before, store_snapshot()))


def _json_body(response) -> object:
    try:
        return json.loads(response.content)
    except (ValueError, TypeError):
        return None


def _problem_code(response) -> str | None:
    body = _json_body(response)
    return body.get("code") if isinstance(body, dict) else None


def _events_a_success_writes(method: str, path: str) -> set[int]:
    if method != "POST":
        return {0}
    # A replay under the same key writes nothing; a first answer writes its own events.
    return {0, 2} if path.rstrip("/").endswith("/v1/transfers") else {0, 1}


@schemathesis.check
def rejected_requests_write_nothing(ctx, response, case):
    """A rejected request leaves the event store (and, before the service, the key records) as it was."""
    entry = _around_by_response.pop(id(response), None)
    if entry is None or entry[0] is not response:
        raise AssertionError(
            "no store snapshot was taken around this call: the fuzz hooks did not see it, so whether it "
            "wrote anything cannot be checked"
        )
    _, before, after = entry
    method = response.request.method.upper()
    path = urlsplit(response.request.url).path
    status = response.status_code
    events_written = after.event_count - before.event_count
    records_written = after.idempotency_count - before.idempotency_count
    if after.max_global_position - before.max_global_position != events_written:
        raise AssertionError(
            f"{method} {path} -> {status}: {events_written} event(s) counted but the highest global "
            f"position moved from {before.max_global_position} to {after.max_global_position}"
        )
    if not 200 <= status < 300:
        if events_written != 0:
            raise AssertionError(
                f"{method} {path} was rejected with {status} ({_problem_code(response)}) but wrote "
                f"{events_written} event(s): {before} -> {after}"
            )
        code = _problem_code(response)
        if status in STATUSES_BEFORE_THE_COMMAND_SERVICE or code in CODES_BEFORE_THE_COMMAND_SERVICE:
            if records_written != 0:
                raise AssertionError(
                    f"{method} {path} was refused with {status} ({code}) before reaching the command "
                    f"service but wrote {records_written} idempotency record(s): {before} -> {after}"
                )
        return True
    allowed = _events_a_success_writes(method, path)
    if events_written not in allowed:
        raise AssertionError(
            f"{method} {path} -> {status} wrote {events_written} event(s); expected one of {sorted(allowed)}"
        )
    if method != "POST" and records_written != 0:
        raise AssertionError(f"the query {method} {path} wrote {records_written} idempotency record(s)")
    if method == "POST" and records_written != (1 if events_written else 0):
        # The record is written in the same atomic append as the events, and a replay writes neither.
        raise AssertionError(
            f"{method} {path} -> {status} wrote {events_written} event(s) but {records_written} idempotency "
            f"record(s): {before} -> {after}"
        )
    return True


@schemathesis.check
class every_operation_reaches_success:  # noqa: N801 - schemathesis names a check after its class
    """Fails the run if an operation never answered 2xx: the fuzzer would only be testing refusals.

    The seeded accounts and the dictionaries of schemathesis.toml are what make success reachable;
    this proves they still do. It also prints how each operation answered, for the log.
    """

    def __init__(self):
        # operation -> Counter of a bare status (answers without a problem code) or "status code".
        # Counts are for the log only; the verdict asks whether a 2xx was seen at all, so a response
        # seen twice (schemathesis shrinking or replaying) cannot change it.
        self.statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def after_response(self, ctx, response, case):
        code = _problem_code(response)
        answer = response.status_code if code is None else f"{response.status_code} {code}"
        self.statuses[case.operation.label][answer] += 1
        return True

    def after_run(self, ctx):
        print("\nfuzz: answers per operation (status and problem code: count)")
        for label in sorted(self.statuses):
            answers = sorted(self.statuses[label].items(), key=lambda item: str(item[0]))
            counts = ", ".join(f"{status}: {count}" for status, count in answers)
            print(f"  {label}: {counts}")
        problems = {answer for counts in self.statuses.values() for answer in counts if isinstance(answer, str)}
        codes = sorted({problem.split(" ", 1)[1] for problem in problems})
        print(f"fuzz: problem codes seen: {', '.join(codes)}")
        never = sorted(
            label
            for label in self.statuses
            if not any(isinstance(status, int) and 200 <= status < 300 for status in self.statuses[label])
        )
        if never:
            raise AssertionError("these operations never answered 2xx: " + ", ".join(never))


def _min_sequence(response) -> int | None:
    values = parse_qs(urlsplit(response.request.url).query).get("min_sequence")
    if not values:
        return None
    try:
        return int(values[-1])
    except ValueError:
        return None


# The verdicts a documented answer may be excused from: "that was a server error" and "that valid
# request should have been accepted".
EXCUSABLE_CHECKS = {"not_a_server_error", "positive_data_acceptance"}


def _is_truthful_read_model_behind(response) -> bool:
    """`GET ...?min_sequence=N` for an N the account's read model has not reached.

    The query waits (bounded) and then answers `503 read_model_behind` with `Retry-After`: that is the
    contract (design §5, the OpenAPI document), not a server error, and random sequences are almost
    never reached. Only a truthful answer counts: it names the `min_sequence` asked for and a
    `last_sequence` below it.
    """
    if response.status_code != 503 or response.request.method.upper() != "GET":
        return False
    body = _json_body(response)
    asked = _min_sequence(response)
    return (
        isinstance(body, dict)
        and body.get("code") == "read_model_behind"
        and asked is not None
        and body.get("min_sequence") == asked
        and isinstance(body.get("last_sequence"), int)
        and body["last_sequence"] < asked
        and "retry-after" in response.headers
    )


def _is_daily_balance_range_refusal(response) -> bool:
    """`GET .../daily-balances` refused because `from..to` spans more than 366 days or runs backwards.

    A rule between two parameters (and, with `to` left out, today's date) that JSON Schema cannot
    state, so schema-valid dates can break it. Only that exact refusal counts: a 400
    `validation_failed` whose every error is about `from` and the range.
    """
    if response.status_code != 400 or not urlsplit(response.request.url).path.endswith("/daily-balances"):
        return False
    body = _json_body(response)
    if not isinstance(body, dict):
        return False
    errors = body.get("errors")
    return (
        body.get("code") == "validation_failed"
        and isinstance(errors, list)
        and len(errors) > 0
        and all(
            isinstance(error, dict)
            and error.get("field") == "from"
            and ("more than the 366" in str(error.get("message")) or "must not be after" in str(error.get("message")))
            for error in errors
        )
    )


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Keeps every failure except the verdicts of [`EXCUSABLE_CHECKS`] on two documented answers."""
    checks = set(getattr(failure, "checks", ()))
    if response is None or not checks or not checks <= EXCUSABLE_CHECKS:
        return True
    return not (_is_truthful_read_model_behind(response) or _is_daily_balance_range_refusal(response))
