-- When the projector wrote each money movement: `projected_at - occurred_at` is the projection lag
-- of that event (its `recorded_at` in the event store to its row here), which the lag benchmark
-- (`scripts/projection-lag.sh`) and an operator can read with plain SQL. `clock_timestamp()`, not
-- `now()`: the moment of the insert, not the start of its transaction. Not part of any query's answer.
ALTER TABLE account_transactions
    ADD COLUMN projected_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp();
