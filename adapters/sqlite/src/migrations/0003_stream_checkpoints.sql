-- Per-shard positions of the DynamoDB Streams reader, next to the read model it feeds, so that a
-- restart resumes exactly where the projected data ends. Sequence numbers are decimal strings that
-- can exceed 64 bits, so they are stored as text.
CREATE TABLE rm_stream_checkpoints (
    stream          TEXT NOT NULL,
    shard_id        TEXT NOT NULL,
    sequence_number TEXT,
    finished        INTEGER NOT NULL CHECK (finished IN (0, 1)),
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (stream, shard_id)
) STRICT;
