//! `DynamoEventStore`: the `EventStore` port on the `events` and `idempotency` tables.
//!
//! An append is ONE `TransactWriteItems`: the idempotency record's `Put` first, conditioned on
//! `attribute_not_exists(client_request_id)`, then one `Put` per event conditioned on
//! `attribute_not_exists(account_id)`. DynamoDB's conditions, not a read before the write, decide
//! conflicts and duplicates, so the decision and the write are one atomic step across processes; the
//! transaction's cancellation reasons say which item failed, which decides duplicate vs. conflict.
//!
//! A load is a strongly consistent Query of `account_id = :a AND sequence > :s`, followed page by page
//! to the end (with an explicit bound on the number of pages).
//!
//! What DynamoDB cannot check cheaply: that an `event_id` is unique across all events (that would need
//! one more item per event, or a global index that is only eventually consistent). The port's ids are
//! fresh UUIDv7s from the id source, so a reused id would be a bug in the id source, not a race; the
//! SQLite store's unique index stays the place where such a bug shows up in tests.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConsumedCapacity, Put, ReturnConsumedCapacity,
    TransactWriteItem,
};
use ledger_application::codec;
use ledger_application::ports::{AppendError, AtomicAppend, EventStore, HealthCheck, StoreError};
use ledger_application::{IdempotencyKey, IdempotencyRecord, RecordedEvent};
use ledger_domain::AccountId;

use crate::config::DynamoSettings;
use crate::items::{
    self, ACCOUNT_ID, CLIENT_REQUEST_ID, SEQUENCE, decode_event, decode_idempotency_record,
};

/// Why a DynamoDB request failed: the source of the adapters' `StoreError::Unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    /// The SDK returned an error (after its own bounded retries).
    #[error("DynamoDB {operation} on {table} failed: {detail}")]
    Request {
        operation: &'static str,
        table: String,
        /// The SDK error with its whole chain of causes, which its `Display` alone leaves out.
        detail: String,
    },
    /// A load needed more Query pages than `DynamoSettings::load_pages_max` allows.
    #[error("loading account {account_id} needs more than {pages_max} Query pages")]
    LoadTooLong {
        account_id: AccountId,
        pages_max: u32,
    },
    /// DynamoDB cancelled the transaction for a reason that says nothing about the request.
    #[error("DynamoDB cancelled the append transaction: {reasons}")]
    Cancelled { reasons: String },
    /// Every attempt of an append was throttled.
    #[error("the append transaction was throttled on all {attempts} attempts")]
    Throttled { attempts: u32 },
    /// A table is not set up the way this adapter needs (see `tables::create_tables`).
    #[error("table {table} is misconfigured: {detail}")]
    Misconfigured { table: String, detail: String },
}

/// `StoreError::Unavailable` for a failed SDK call.
pub(crate) fn request_error<E, R>(
    operation: &'static str,
    table: &str,
    error: &SdkError<E, R>,
) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::unavailable(DynamoError::Request {
        operation,
        table: table.to_owned(),
        detail: DisplayErrorContext(error).to_string(),
    })
}

/// Records the capacity a request consumed: the figure that DynamoDB bills and throttles on.
/// One item by key, read strongly consistently (the ports ask for `load`'s consistency), with its
/// consumed capacity logged.
pub(crate) async fn get_item_consistent(
    client: &Client,
    table: &str,
    key: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Result<
    Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
    StoreError,
> {
    let output = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .await
        .map_err(|e| request_error("GetItem", table, &e))?;
    log_capacity("GetItem", output.consumed_capacity());
    Ok(output.item)
}

pub(crate) fn log_capacity<'a>(
    operation: &'static str,
    capacity: impl IntoIterator<Item = &'a ConsumedCapacity>,
) {
    for consumed in capacity {
        tracing::debug!(
            operation,
            table = consumed.table_name().unwrap_or("?"),
            capacity_units = ?consumed.capacity_units(),
            read_capacity_units = ?consumed.read_capacity_units(),
            write_capacity_units = ?consumed.write_capacity_units(),
            "DynamoDB consumed capacity"
        );
    }
}

/// The event store on DynamoDB. Cheap to clone: clones share the client's connection pool.
#[derive(Debug, Clone)]
pub struct DynamoEventStore {
    client: Client,
    settings: Arc<DynamoSettings>,
}

impl DynamoEventStore {
    pub fn new(client: Client, settings: DynamoSettings) -> Self {
        Self {
            client,
            settings: Arc::new(settings),
        }
    }

    pub fn settings(&self) -> &DynamoSettings {
        &self.settings
    }

    /// The append's actions: the idempotency record first, then every event in stream and sequence
    /// order. The record goes first so that index 0 of the cancellation reasons is always the key.
    fn transaction(
        &self,
        append: &AtomicAppend,
    ) -> Result<(Vec<TransactWriteItem>, Vec<AccountId>), AppendError> {
        let tables = &self.settings.tables;
        let mut actions = Vec::with_capacity(append.action_count());
        actions.push(conditional_put(
            &tables.idempotency,
            items::idempotency_item(
                append.idempotency(),
                self.settings.idempotency_ttl,
                chrono::Utc::now(),
            )?,
            CLIENT_REQUEST_ID,
        )?);
        let mut accounts = Vec::with_capacity(append.action_count());
        for event in append.events() {
            let encoded = codec::encode(event)?;
            actions.push(conditional_put(
                &tables.events,
                items::event_item(&encoded),
                ACCOUNT_ID,
            )?);
            accounts.push(event.account_id.clone());
        }
        Ok((actions, accounts))
    }
}

/// A `Put` of `item` that fails if an item with its key exists (`attribute_not_exists` on the
/// partition key is DynamoDB's idiom for "no item with this primary key").
fn conditional_put(
    table: &str,
    item: items::Item,
    partition_key: &str,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#pk)")
        .expression_attribute_names("#pk", partition_key)
        .build()
        .map_err(|e| StoreError::corrupt(format!("cannot build a Put on {table}: {e}")))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// What a cancelled transaction means for the append, decided from its cancellation reasons alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancellation {
    /// The idempotency record (action 0) exists: the request was already carried out.
    DuplicateRequest,
    /// The event at `action` (>= 1) exists: another writer appended at this sequence first.
    Conflict { action: usize },
    /// Another transaction held the item at `action` (0 = the record): try again, it may commit now.
    Contended { action: usize },
    /// DynamoDB had no capacity for an item: try again after a pause.
    Throttled,
    /// Anything else (a validation error, an item collection too large, reasons that do not match
    /// the actions): not the request's fault, and not cured by trying again at once.
    Failed,
}

const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";
const TRANSACTION_CONFLICT: &str = "TransactionConflict";
const THROTTLED: [&str; 3] = [
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

/// Maps the codes of a `TransactionCanceledException` (one per action, `None` or `"None"` for an
/// action that passed) to what the append must answer. The precedence follows the port:
///
/// 1. the record's condition failed: `DuplicateRequest`, even if an event's failed too, because the
///    request has already been carried out;
/// 2. the record is contended: retry, since whether the key is taken decides the answer and is not
///    known yet;
/// 3. an event's condition failed: `Conflict` on that event's stream;
/// 4. an event is contended: retry; 5. throttled: retry after a pause; 6. anything else: `Failed`.
pub(crate) fn classify_cancellation(codes: &[Option<&str>], actions: usize) -> Cancellation {
    if codes.len() != actions {
        // DynamoDB reports one reason per action, in order; without that, no index can be trusted.
        return Cancellation::Failed;
    }
    let first_with = |wanted: &str| codes.iter().position(|code| *code == Some(wanted));
    match codes.first().copied().flatten() {
        Some(CONDITIONAL_CHECK_FAILED) => return Cancellation::DuplicateRequest,
        Some(TRANSACTION_CONFLICT) => return Cancellation::Contended { action: 0 },
        _ => {}
    }
    if let Some(action) = first_with(CONDITIONAL_CHECK_FAILED) {
        return Cancellation::Conflict { action };
    }
    if let Some(action) = first_with(TRANSACTION_CONFLICT) {
        return Cancellation::Contended { action };
    }
    if codes
        .iter()
        .any(|code| code.is_some_and(|code| THROTTLED.contains(&code)))
    {
        return Cancellation::Throttled;
    }
    Cancellation::Failed
}

/// The cancellation reasons, one per action, if `error` is a `TransactionCanceledException`.
fn cancellation_reasons<R>(
    error: &SdkError<TransactWriteItemsError, R>,
) -> Option<&[CancellationReason]> {
    match error.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(cancelled) => {
            Some(cancelled.cancellation_reasons())
        }
        _ => None,
    }
}

/// The reasons as text for an error report: code and message of every action that did not pass.
fn describe_reasons(reasons: &[CancellationReason]) -> String {
    let failed: Vec<String> = reasons
        .iter()
        .enumerate()
        .filter(|(_, reason)| !matches!(reason.code(), None | Some("None")))
        .map(|(action, reason)| {
            format!(
                "action {action}: {} ({})",
                reason.code().unwrap_or("?"),
                reason.message().unwrap_or("no message")
            )
        })
        .collect();
    if failed.is_empty() {
        format!("{} reasons, none failed", reasons.len())
    } else {
        failed.join("; ")
    }
}

/// The pause before retry `attempt + 1`: exponential with "equal jitter" (half fixed, half random),
/// so that racing writers spread out but none retries at once into the same contention.
fn backoff(attempt: u32) -> Duration {
    const BASE_MS: u64 = 20;
    const CAP_MS: u64 = 1_000;
    let ceiling = BASE_MS
        .saturating_mul(1_u64 << attempt.saturating_sub(1).min(10))
        .min(CAP_MS);
    let half = ceiling / 2;
    Duration::from_millis(half + fastrand::u64(0..=half))
}

/// Sequences must run `after + 1, after + 2, ...` with no gap: a load hands the aggregate a history to
/// fold, and a hole in it means an item went missing behind the application's back.
fn check_contiguous(
    account_id: &AccountId,
    after_sequence: u64,
    events: &[RecordedEvent],
) -> Result<(), StoreError> {
    let gap = events
        .iter()
        .zip(after_sequence.saturating_add(1)..)
        .find(|(event, expected)| event.sequence != *expected);
    match gap {
        Some((event, expected)) => Err(StoreError::corrupt(format!(
            "stream {account_id} holds sequence {} where {expected} was expected",
            event.sequence
        ))),
        None => Ok(()),
    }
}

#[async_trait]
impl EventStore for DynamoEventStore {
    async fn load(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let table = &self.settings.tables.events;
        let page_size = self.settings.load_page_size.map(|size| size.max(1));
        let mut events = Vec::new();
        let mut start_key = None;
        for page in 1..=self.settings.load_pages_max {
            let output = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("#a = :a AND #s > :s")
                .expression_attribute_names("#a", ACCOUNT_ID)
                .expression_attribute_names("#s", SEQUENCE)
                .expression_attribute_values(":a", AttributeValue::S(account_id.to_string()))
                .expression_attribute_values(":s", items::number(after_sequence))
                // Read-your-writes: an eventually consistent read could miss an acknowledged append,
                // and the aggregate would decide on a stale version (caught, but as a conflict).
                .consistent_read(true)
                .set_limit(page_size)
                .set_exclusive_start_key(start_key.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| request_error("Query", table, &e))?;
            log_capacity("Query", output.consumed_capacity());
            for item in output.items() {
                events.push(decode_event(item)?);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => {
                    tracing::debug!(
                        %account_id,
                        after_sequence,
                        pages = page,
                        events = events.len(),
                        "loaded"
                    );
                    check_contiguous(account_id, after_sequence, &events)?;
                    return Ok(events);
                }
            }
        }
        Err(StoreError::unavailable(DynamoError::LoadTooLong {
            account_id: account_id.clone(),
            pages_max: self.settings.load_pages_max,
        }))
    }

    async fn append(&self, append: AtomicAppend) -> Result<(), AppendError> {
        // Refused before anything is sent: DynamoDB would refuse it too, but as a validation error.
        append.check_size()?;
        let (actions, accounts) = self.transaction(&append)?;
        let key = &append.idempotency().key;
        // The stream named when the record itself is contended: an append has at least one event.
        let first_account = accounts.first().cloned().ok_or_else(|| {
            StoreError::corrupt("an atomic append without events reached the store")
        })?;
        let account_of = |action: usize| {
            action
                .checked_sub(1)
                .and_then(|event| accounts.get(event))
                .cloned()
                .unwrap_or_else(|| first_account.clone())
        };
        let attempts = self.settings.transaction_conflict_attempts_max.max(1);
        let tables = format!(
            "{} and {}",
            self.settings.tables.events, self.settings.tables.idempotency
        );
        let mut attempt = 1;
        loop {
            // A fresh send per attempt gets a fresh ClientRequestToken; the SDK's own retries of one
            // send reuse its token, so a retry after a lost response of a committed transaction
            // succeeds without writing twice instead of failing its conditions.
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(actions.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let error = match result {
                Ok(output) => {
                    log_capacity("TransactWriteItems", output.consumed_capacity());
                    return Ok(());
                }
                Err(error) => error,
            };
            let Some(reasons) = cancellation_reasons(&error) else {
                return Err(request_error("TransactWriteItems", &tables, &error).into());
            };
            let codes: Vec<_> = reasons.iter().map(CancellationReason::code).collect();
            let verdict = classify_cancellation(&codes, actions.len());
            tracing::debug!(?codes, ?verdict, attempt, "append transaction cancelled");
            match verdict {
                Cancellation::DuplicateRequest => {
                    return Err(AppendError::DuplicateRequest { key: key.clone() });
                }
                Cancellation::Contended { .. } | Cancellation::Throttled if attempt < attempts => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                // The record itself stayed contended: another request with this key was in flight
                // on every attempt. If it has committed since, this request was carried out and the
                // caller must hear so (the duplicate takes precedence); otherwise it is a conflict.
                Cancellation::Contended { action: 0 } => {
                    if self.idempotency_record(key).await?.is_some() {
                        return Err(AppendError::DuplicateRequest { key: key.clone() });
                    }
                    return Err(AppendError::Conflict {
                        account_id: first_account,
                    });
                }
                // A lost race, or an event still contended after every attempt: to the caller both
                // are a conflict, which it answers by reloading and deciding again (or with 409 and
                // Retry-After).
                Cancellation::Conflict { action } | Cancellation::Contended { action } => {
                    return Err(AppendError::Conflict {
                        account_id: account_of(action),
                    });
                }
                Cancellation::Throttled => {
                    return Err(StoreError::unavailable(DynamoError::Throttled { attempts }).into());
                }
                Cancellation::Failed => {
                    return Err(StoreError::unavailable(DynamoError::Cancelled {
                        reasons: describe_reasons(reasons),
                    })
                    .into());
                }
            }
        }
    }

    async fn idempotency_record(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let table = &self.settings.tables.idempotency;
        // A record past its `expires_at` that TTL has not deleted yet is still returned and still
        // honoured: expiry only ever makes a key forgettable, never forgotten early.
        let Some(item) =
            get_item_consistent(&self.client, table, items::idempotency_key(key)).await?
        else {
            return Ok(None);
        };
        let record = decode_idempotency_record(&item)?;
        if record.key != *key {
            return Err(StoreError::corrupt(format!(
                "idempotency record read for key {key} is stored under {}",
                record.key
            )));
        }
        Ok(Some(record))
    }
}

#[async_trait]
impl HealthCheck for DynamoEventStore {
    fn name(&self) -> &'static str {
        "event_store"
    }

    /// One cheap read of a key no client can send (a space is not a visible character): proves the
    /// endpoint, the credentials and the table, and costs half a read unit.
    async fn check(&self) -> Result<(), StoreError> {
        let table = &self.settings.tables.idempotency;
        self.client
            .get_item()
            .table_name(table)
            .key(CLIENT_REQUEST_ID, AttributeValue::S(" ".to_owned()))
            .send()
            .await
            .map_err(|e| request_error("GetItem", table, &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CCF: Option<&str> = Some(CONDITIONAL_CHECK_FAILED);
    const CONFLICT: Option<&str> = Some(TRANSACTION_CONFLICT);
    const PASSED: Option<&str> = Some("None");

    #[test]
    fn a_failed_record_condition_is_a_duplicate_request() {
        assert_eq!(
            classify_cancellation(&[CCF, PASSED], 2),
            Cancellation::DuplicateRequest
        );
        assert_eq!(
            classify_cancellation(&[CCF, None, CCF], 3),
            Cancellation::DuplicateRequest,
            "the duplicate takes precedence over a conflict"
        );
        assert_eq!(
            classify_cancellation(&[CCF, CONFLICT], 2),
            Cancellation::DuplicateRequest
        );
    }

    #[test]
    fn a_failed_event_condition_is_a_conflict_on_that_event() {
        assert_eq!(
            classify_cancellation(&[PASSED, CCF], 2),
            Cancellation::Conflict { action: 1 }
        );
        assert_eq!(
            classify_cancellation(&[None, None, CCF, CCF], 4),
            Cancellation::Conflict { action: 2 },
            "the first failed event names the stream"
        );
        assert_eq!(
            classify_cancellation(&[PASSED, CONFLICT, CCF], 3),
            Cancellation::Conflict { action: 2 },
            "a certain conflict beats a contended event"
        );
    }

    #[test]
    fn contention_is_retried_and_a_contended_record_before_any_conflict() {
        assert_eq!(
            classify_cancellation(&[PASSED, CONFLICT], 2),
            Cancellation::Contended { action: 1 }
        );
        assert_eq!(
            classify_cancellation(&[CONFLICT, CCF], 2),
            Cancellation::Contended { action: 0 },
            "whether the key is taken decides the answer, and it is not known yet"
        );
    }

    #[test]
    fn throttling_is_retried() {
        for code in THROTTLED {
            assert_eq!(
                classify_cancellation(&[PASSED, Some(code)], 2),
                Cancellation::Throttled
            );
        }
    }

    #[test]
    fn anything_else_fails() {
        assert_eq!(
            classify_cancellation(&[PASSED, Some("ValidationError")], 2),
            Cancellation::Failed
        );
        assert_eq!(
            classify_cancellation(&[PASSED, Some("ItemCollectionSizeLimitExceeded")], 2),
            Cancellation::Failed
        );
        assert_eq!(
            classify_cancellation(&[PASSED, PASSED], 2),
            Cancellation::Failed
        );
        assert_eq!(
            classify_cancellation(&[CCF], 2),
            Cancellation::Failed,
            "reasons that do not match the actions cannot be attributed"
        );
        assert_eq!(classify_cancellation(&[], 0), Cancellation::Failed);
    }

    #[test]
    fn a_failure_report_names_the_failed_actions_with_their_messages() {
        let reason = |code: &str, message: Option<&str>| {
            CancellationReason::builder()
                .code(code)
                .set_message(message.map(str::to_owned))
                .build()
        };
        let reasons = [
            reason("None", None),
            reason(
                "ValidationError",
                Some("Item size has exceeded the maximum"),
            ),
        ];
        assert_eq!(
            describe_reasons(&reasons),
            "action 1: ValidationError (Item size has exceeded the maximum)"
        );
        assert_eq!(describe_reasons(&reasons[..1]), "1 reasons, none failed");
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 0..40 {
            let pause = backoff(attempt);
            assert!(pause <= Duration::from_secs(1), "{attempt}: {pause:?}");
        }
        assert!(backoff(1) >= Duration::from_millis(10));
        assert!(backoff(1) <= Duration::from_millis(20));
        assert!(backoff(3) >= Duration::from_millis(40));
    }

    #[test]
    fn a_gap_in_a_stream_is_corrupt() {
        use ledger_application::testkit::fixtures::{account, at, deposited_event, recorded};
        let event = |sequence| {
            recorded(
                "acc-1",
                sequence,
                deposited_event("1.00", "1.00"),
                at(1, 9, 0),
            )
        };
        let id = account("acc-1");
        assert!(check_contiguous(&id, 2, &[event(3), event(4)]).is_ok());
        assert!(check_contiguous(&id, 2, &[]).is_ok());
        assert!(check_contiguous(&id, 2, &[event(4)]).is_err());
        assert!(check_contiguous(&id, 0, &[event(1), event(3)]).is_err());
    }
}
