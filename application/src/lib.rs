//! Ledger application layer: the ports (traits the adapters implement) and the use cases that drive
//! the domain through them — command service, projector, query service.
//!
//! This crate names no AWS, SQL or HTTP type: everything outside the process is reached through a port.

pub mod account_locks;
pub mod caller;
pub mod codec;
pub mod command_service;
pub mod envelope;
pub mod idempotency;
pub mod instrumented_event_store;
pub mod memory;
pub mod metrics;
pub mod ports;
pub mod projector;
pub mod query_service;
pub mod read_model_rows;
pub mod rebuild;
pub mod signal;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod trace_context;
pub mod verify;

pub use caller::{ANONYMOUS_SUBJECT, Caller, InvalidCaller};
pub use command_service::{
    CommandContext, CommandError, CommandRequest, CommandService, RetryPolicy,
};
pub use envelope::{EventId, EventMetadata, RecordedEvent};
pub use idempotency::{
    CommandOutcome, IdempotencyKey, IdempotencyRecord, InvalidIdempotencyKey, PostedEvent,
    RecordedOutcome, RequestFingerprint,
};
pub use instrumented_event_store::InstrumentedEventStore;
pub use projector::{
    DeadLetterCheck, FeedProjector, FeedProjectorConfig, Handled, LeaseEnded, LeaseSchedule,
    Projected, ProjectionLagCheck, ProjectionProgress, ProjectionRetry, Projector, RedriveError,
    Redriven, acquire_lease, project_under_lease, project_while_held,
};
pub use query_service::{BalanceAsOf, FreshnessWait, QueryError, QueryService, TransactionPage};
pub use rebuild::{
    NoObserver, RebuildError, RebuildLimits, RebuildObserver, RebuildSummary, Rebuilder,
};
pub use signal::SignallingEventStore;
pub use verify::{Difference, DifferenceKind, Verifier, VerifyConfig, VerifyError, VerifySummary};
