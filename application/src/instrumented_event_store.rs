//! `InstrumentedEventStore`: an event-store decorator that wraps every call of the `EventStore` port
//! in a client span (`event_store.<operation>`) and records its latency in
//! `ledger.event_store.duration`, whatever store is configured underneath.
//!
//! It forwards every method unchanged (the port's contract suite runs over it), so it can wrap any
//! store, and the command service, which only knows the port, is traced without knowing it.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use ledger_domain::AccountId;
use tracing::Instrument;

use crate::envelope::RecordedEvent;
use crate::idempotency::{IdempotencyRecord, ScopedIdempotencyKey};
use crate::metrics;
use crate::ports::{AppendError, AtomicAppend, EventStore, StoreError};

/// The most account ids one span names in `ledger.account_ids`; an append of more streams names
/// these and how many more there are, so an attribute stays small whatever the append.
const SPAN_ACCOUNT_IDS_MAX: usize = 8;

pub struct InstrumentedEventStore {
    inner: Arc<dyn EventStore>,
}

impl std::fmt::Debug for InstrumentedEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstrumentedEventStore")
            .finish_non_exhaustive()
    }
}

impl InstrumentedEventStore {
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        Self { inner }
    }
}

/// Runs one call of the store inside `span`, then marks the span and records the latency by
/// whether the store failed (`failed`): a refusal the port defines (a conflict, a recorded key) is
/// the store's answer, not its failure, and is recorded on the span as `ledger.event_store.refusal`.
async fn traced<T, E: StoreCallError>(
    operation: &'static str,
    span: tracing::Span,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = Instant::now();
    let result = call.instrument(span.clone()).await;
    let failed = match &result {
        Ok(_) => false,
        Err(error) => {
            if let Some(refusal) = error.refusal() {
                span.record("ledger.event_store.refusal", refusal);
                false
            } else {
                span.record("otel.status_code", "error");
                span.record("error.type", error.error_type());
                true
            }
        }
    };
    metrics::record_event_store_call(operation, !failed, started.elapsed());
    result
}

/// What the telemetry says of an event-store error.
trait StoreCallError {
    /// The refusal's name if the error is one of the port's answers, `None` if the store failed.
    fn refusal(&self) -> Option<&'static str>;
    /// The failure's kind (OpenTelemetry's `error.type`).
    fn error_type(&self) -> &'static str;
}

impl StoreCallError for StoreError {
    fn refusal(&self) -> Option<&'static str> {
        None
    }

    fn error_type(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Corrupt { .. } => "corrupt",
        }
    }
}

impl StoreCallError for AppendError {
    fn refusal(&self) -> Option<&'static str> {
        match self {
            AppendError::Conflict { .. } => Some("conflict"),
            AppendError::DuplicateRequest { .. } => Some("duplicate_request"),
            AppendError::MissingPredecessor { .. } => Some("missing_predecessor"),
            AppendError::TimeRegression { .. } => Some("time_regression"),
            AppendError::TooLarge { .. } => Some("too_large"),
            AppendError::Store(_) | AppendError::OutcomeUnknown(_) => None,
        }
    }

    fn error_type(&self) -> &'static str {
        match self {
            AppendError::Store(error) => error.error_type(),
            AppendError::OutcomeUnknown(_) => "outcome_unknown",
            _ => "refused",
        }
    }
}

/// `ids` as a comma list of at most [`SPAN_ACCOUNT_IDS_MAX`], with how many were left out.
fn account_id_list<'a>(ids: impl ExactSizeIterator<Item = &'a AccountId>) -> String {
    let total = ids.len();
    let mut list = String::new();
    for (index, id) in ids.take(SPAN_ACCOUNT_IDS_MAX).enumerate() {
        if index > 0 {
            list.push(',');
        }
        list.push_str(id.as_str());
    }
    if total > SPAN_ACCOUNT_IDS_MAX {
        // Writing to a String cannot fail.
        let _ = write!(list, ",(+{} more)", total - SPAN_ACCOUNT_IDS_MAX);
    }
    list
}

#[async_trait]
impl EventStore for InstrumentedEventStore {
    async fn load(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let span = tracing::info_span!(
            "event_store.load",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
            ledger.event_store.operation = "load",
            ledger.account_ids = account_id.as_str(),
            ledger.after_sequence = after_sequence,
        );
        traced("load", span, self.inner.load(account_id, after_sequence)).await
    }

    async fn append(&self, append: AtomicAppend) -> Result<(), AppendError> {
        let span = tracing::info_span!(
            "event_store.append",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
            ledger.event_store.operation = "append",
            ledger.account_ids = account_id_list(append.streams().iter().map(|s| &s.account_id)),
            ledger.events = append.events().count(),
            ledger.event_store.refusal = tracing::field::Empty,
        );
        traced("append", span, self.inner.append(append)).await
    }

    async fn idempotency_record(
        &self,
        key: &ScopedIdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let span = tracing::info_span!(
            "event_store.read_idempotency",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
            ledger.event_store.operation = "read_idempotency",
        );
        traced("read_idempotency", span, self.inner.idempotency_record(key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::fixtures::account;

    #[test]
    fn the_account_id_list_is_bounded() {
        let few = [account("acc-a"), account("acc-b")];
        assert_eq!(account_id_list(few.iter()), "acc-a,acc-b");
        let many: Vec<AccountId> = (0..10).map(|n| account(&format!("acc-{n}"))).collect();
        assert_eq!(
            account_id_list(many.iter()),
            "acc-0,acc-1,acc-2,acc-3,acc-4,acc-5,acc-6,acc-7,(+2 more)"
        );
    }
}
