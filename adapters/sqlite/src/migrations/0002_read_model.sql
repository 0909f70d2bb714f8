-- The read model: flat tables the projector fills from the events, so that no query adds up history.
-- Money is TEXT holding a plain decimal string; timestamps are fixed-width UTC text, so comparing text
-- compares time.

CREATE TABLE rm_accounts (
    account_id      TEXT    NOT NULL PRIMARY KEY,
    owner           TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    currency        TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    balance         TEXT    NOT NULL,
    overdraft_limit TEXT    NOT NULL,
    frozen_reason   TEXT,
    -- The sequence of the last event applied: the projector applies only the next one.
    last_sequence   INTEGER NOT NULL,
    opened_at       TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
) STRICT;

CREATE TABLE rm_account_transactions (
    account_id              TEXT    NOT NULL,
    sequence                INTEGER NOT NULL,
    event_id                TEXT    NOT NULL,
    entry_type              TEXT    NOT NULL,
    amount                  TEXT    NOT NULL,
    balance_after           TEXT    NOT NULL,
    transfer_id             TEXT,
    counterparty_account_id TEXT,
    description             TEXT,
    occurred_at             TEXT    NOT NULL,
    PRIMARY KEY (account_id, sequence)
) STRICT, WITHOUT ROWID;

-- For the balance as of an instant.
CREATE INDEX rm_account_transactions_by_time
    ON rm_account_transactions (account_id, occurred_at);

CREATE TABLE rm_daily_balances (
    account_id      TEXT    NOT NULL,
    -- YYYY-MM-DD, the UTC date of the movements.
    day             TEXT    NOT NULL,
    closing_balance TEXT    NOT NULL,
    last_sequence   INTEGER NOT NULL,
    PRIMARY KEY (account_id, day)
) STRICT, WITHOUT ROWID;

CREATE TABLE rm_checkpoints (
    reader     TEXT    NOT NULL PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
) STRICT;

-- A rowid table on purpose: the rowid keeps the order in which letters were recorded.
CREATE TABLE rm_dead_letters (
    account_id  TEXT    NOT NULL,
    sequence    INTEGER NOT NULL,
    event_id    TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    recorded_at TEXT    NOT NULL,
    PRIMARY KEY (account_id, sequence)
) STRICT;
