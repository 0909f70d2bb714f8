-- The event store: the write side's source of truth. Rows are only ever inserted.
-- STRICT tables refuse a value of the wrong type instead of silently converting it (no REAL money).

CREATE TABLE events (
    -- The feed position: AUTOINCREMENT never hands out a number twice, even after the largest row
    -- is gone, so a feed reader's checkpoint can never be overtaken by a reused position.
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      TEXT    NOT NULL,
    sequence        INTEGER NOT NULL CHECK (sequence >= 1),
    event_id        TEXT    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL,
    -- Optimistic locking: a second writer at the same version hits this and gets a conflict.
    UNIQUE (account_id, sequence)
) STRICT;

-- Events are immutable, whoever holds the file. (`INSERT OR REPLACE` deletes without firing DELETE
-- triggers unless `recursive_triggers` is on; the application never uses it.)
CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are immutable: UPDATE refused');
END;

CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are immutable: DELETE refused');
END;

-- One row per accepted command, written in the same transaction as its events.
CREATE TABLE idempotency (
    client_request_id TEXT NOT NULL PRIMARY KEY,
    -- SHA-256 (hex) of the canonical request: tells a retry from a reuse of the key.
    fingerprint       TEXT NOT NULL,
    -- JSON of the CommandOutcome that a retry gets back.
    outcome           TEXT NOT NULL,
    recorded_at       TEXT NOT NULL
) STRICT;
