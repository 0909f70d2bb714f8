-- The read model on PostgreSQL: flat tables the projector fills from the events, so that no query adds
-- up history. Money is NUMERIC without a declared scale, so every value keeps exactly the digits and
-- decimal places it was written with ("10.00" reads back as "10.00"); instants are TIMESTAMPTZ
-- (microseconds, the precision of the application's timestamps).

CREATE TABLE accounts (
    account_id      TEXT        NOT NULL PRIMARY KEY,
    owner           TEXT        NOT NULL,
    kind            TEXT        NOT NULL,
    currency        TEXT        NOT NULL,
    status          TEXT        NOT NULL,
    balance         NUMERIC     NOT NULL,
    overdraft_limit NUMERIC     NOT NULL,
    frozen_reason   TEXT,
    -- The sequence of the last event applied: the projector applies only the next one.
    last_sequence   BIGINT      NOT NULL CHECK (last_sequence >= 1),
    opened_at       TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE account_transactions (
    account_id              TEXT        NOT NULL,
    sequence                BIGINT      NOT NULL CHECK (sequence >= 1),
    event_id                TEXT        NOT NULL,
    entry_type              TEXT        NOT NULL,
    amount                  NUMERIC     NOT NULL CHECK (amount > 0),
    balance_after           NUMERIC     NOT NULL,
    transfer_id             TEXT,
    counterparty_account_id TEXT,
    description             TEXT,
    occurred_at             TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, sequence)
);

-- The balance as of an instant: one descent of this index, in the order of the look-up
-- (`occurred_at DESC, sequence DESC`), with no sort.
CREATE INDEX account_transactions_by_time
    ON account_transactions (account_id, occurred_at DESC, sequence DESC);

CREATE TABLE daily_balances (
    account_id      TEXT    NOT NULL,
    -- The UTC date of the movements.
    day             DATE    NOT NULL,
    closing_balance NUMERIC NOT NULL,
    last_sequence   BIGINT  NOT NULL,
    PRIMARY KEY (account_id, day)
);

-- Positions of the feed readers (the projector's checkpoint).
CREATE TABLE projection_checkpoints (
    reader     TEXT        NOT NULL PRIMARY KEY,
    position   BIGINT      NOT NULL CHECK (position >= 0),
    updated_at TIMESTAMPTZ NOT NULL
);

-- Per-shard positions of the DynamoDB Streams reader. Sequence numbers are decimal strings that can
-- exceed 64 bits, so they are stored as text.
CREATE TABLE stream_checkpoints (
    stream          TEXT        NOT NULL,
    shard_id        TEXT        NOT NULL,
    sequence_number TEXT,
    finished        BOOLEAN     NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (stream, shard_id)
);

-- Dead letters an operator can act on (`ledger dead-letters retry ID`). An undecodable record may not
-- say whose it is, so account and sequence are nullable; `deduplication_key` (the application's:
-- "event:ACCOUNT/SEQUENCE", or "raw:..." when those are unknown) keeps one letter per event.
CREATE TABLE dead_letters (
    -- An identity column never hands out an id twice: an id an operator once saw stays that letter's.
    letter_id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deduplication_key TEXT        NOT NULL UNIQUE,
    account_id        TEXT,
    sequence          BIGINT,
    event_id          TEXT,
    event_type        TEXT,
    raw               TEXT        NOT NULL,
    reason            TEXT        NOT NULL,
    -- The letter_id of the account's dead letter this event waits behind; NULL for a dead letter.
    waiting_behind    BIGINT,
    recorded_at       TIMESTAMPTZ NOT NULL,
    resolved_at       TIMESTAMPTZ
);

-- The projector asks, for an event past a gap, whether its account has an open letter.
CREATE INDEX dead_letters_open_by_account
    ON dead_letters (account_id, sequence) WHERE resolved_at IS NULL;
