//! The DynamoDB Streams reader: follows the events table's stream into the application's projector,
//! every shard, parents before children, resuming from per-shard checkpoints kept beside the read
//! model. Used by `ledger-projector` and in-process alike; its reading of records (`read_record`,
//! `project_entries`) is also the projection Lambda's.

mod poller;
mod progress;
mod records;
mod shards;

pub use poller::{
    DEFAULT_ERROR_BACKOFF_FIRST_MS, DEFAULT_ERROR_BACKOFF_MAX_MS, DEFAULT_IDLE_BACKOFF_FIRST_MS,
    DEFAULT_IDLE_BACKOFF_MAX_MS, DEFAULT_LISTING_MAX_AGE_SECS, DEFAULT_LISTING_PAGES_MAX,
    DEFAULT_RECORDS_PER_REQUEST, DEFAULT_REQUEST_TIMEOUT_SECS,
    DEFAULT_REQUESTS_PER_SHARD_PER_ROUND, GET_RECORDS_LIMIT_MAX, PollReport, StreamPoller,
    StreamPollerConfig,
};
pub use records::{StreamEntry, project_entries, read_record};
