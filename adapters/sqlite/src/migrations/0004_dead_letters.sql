-- Dead letters that an operator can act on: each has an id (`ledger dead-letters retry ID`), the raw
-- form of the event as it was stored, whether it waits behind another letter of its account, and
-- when it was resolved. An undecodable record may not say whose it is, so account and sequence are
-- nullable; `deduplication_key` (the application's: "event:ACCOUNT/SEQUENCE", or "raw:..." when
-- those are unknown) keeps one letter per event.
CREATE TABLE rm_dead_letters_v2 (
    -- AUTOINCREMENT: an id an operator once saw is never given to another letter.
    letter_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    deduplication_key TEXT    NOT NULL UNIQUE,
    account_id        TEXT,
    sequence          INTEGER,
    event_id          TEXT,
    event_type        TEXT,
    raw               TEXT    NOT NULL,
    reason            TEXT    NOT NULL,
    -- The letter_id of the account's dead letter this event waits behind; NULL for a dead letter.
    waiting_behind    INTEGER,
    recorded_at       TEXT    NOT NULL,
    resolved_at       TEXT
) STRICT;

-- Letters recorded before this migration keep their order; their raw form was not kept.
INSERT INTO rm_dead_letters_v2
    (deduplication_key, account_id, sequence, event_id, event_type, raw, reason, recorded_at)
SELECT 'event:' || account_id || '/' || sequence, account_id, sequence, event_id, event_type,
       '{"raw_form":"not kept before schema version 4"}', reason, recorded_at
FROM rm_dead_letters ORDER BY rowid;

DROP TABLE rm_dead_letters;
ALTER TABLE rm_dead_letters_v2 RENAME TO rm_dead_letters;

-- The projector asks, for an event past a gap, whether its account has an open letter.
CREATE INDEX rm_dead_letters_open_by_account
    ON rm_dead_letters (account_id, sequence) WHERE resolved_at IS NULL;
