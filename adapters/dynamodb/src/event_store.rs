//! `DynamoEventStore`: the `EventStore` port on the `events` and `idempotency` tables.
//!
//! An append is ONE `TransactWriteItems`: the idempotency record's `Put` first, conditioned on
//! `attribute_not_exists(client_request_id)`, then one `Put` per event conditioned on
//! `attribute_not_exists(account_id)`, then per stream with a predecessor a `ConditionCheck` that
//! event `expected_version` exists and was recorded no later than the new events (no holes, time runs
//! forward). DynamoDB's conditions, not a read before the write, decide conflicts and duplicates, so
//! the decision and the write are one atomic step across processes; the transaction's cancellation
//! reasons say which item failed, which decides duplicate vs. conflict vs. missing predecessor.
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
    AttributeValue, CancellationReason, ConditionCheck, ConsumedCapacity, Put,
    ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use ledger_application::codec;
use ledger_application::ports::{AppendError, AtomicAppend, EventStore, HealthCheck, StoreError};
use ledger_application::{IdempotencyRecord, RecordedEvent, ScopedIdempotencyKey};
use ledger_domain::AccountId;

use crate::config::DynamoSettings;
use crate::items::{
    self, ACCOUNT_ID, CLIENT_REQUEST_ID, RECORDED_AT, SEQUENCE, decode_event,
    decode_idempotency_record,
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

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// One strongly consistent Query page of `account_id`'s events after `after_sequence` (at most
    /// `limit` items, or DynamoDB's 1 MB), decoded, with the key to continue from if more follow.
    pub(crate) async fn query_page(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        limit: Option<i32>,
        start_key: Option<items::Item>,
    ) -> Result<(Vec<RecordedEvent>, Option<items::Item>), StoreError> {
        let table = &self.settings.tables.events;
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
            .set_limit(limit)
            .set_exclusive_start_key(start_key)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| request_error("Query", table, &e))?;
        log_capacity("Query", output.consumed_capacity());
        let events = output
            .items()
            .iter()
            .map(decode_event)
            .collect::<Result<Vec<_>, _>>()?;
        let next = output.last_evaluated_key.filter(|key| !key.is_empty());
        Ok((events, next))
    }

    /// The append's actions: the idempotency record first (so that index 0 of the cancellation
    /// reasons is always the key), then every event in stream and sequence order, then one
    /// predecessor check per stream that has one; with the role and the stream of each action.
    fn transaction(
        &self,
        append: &AtomicAppend,
    ) -> Result<(Vec<TransactWriteItem>, Vec<ActionOf>), AppendError> {
        let tables = &self.settings.tables;
        let mut actions = Vec::with_capacity(append.action_count());
        let mut roles = Vec::with_capacity(append.action_count());
        actions.push(conditional_put(
            &tables.idempotency,
            items::idempotency_item(
                append.idempotency(),
                self.settings.idempotency_ttl,
                chrono::Utc::now(),
            )?,
            CLIENT_REQUEST_ID,
        )?);
        roles.push(ActionOf {
            role: Role::Record,
            account_id: None,
            expected_version: 0,
        });
        for event in append.events() {
            let encoded = codec::encode(event)?;
            actions.push(conditional_put(
                &tables.events,
                items::event_item(&encoded),
                ACCOUNT_ID,
            )?);
            roles.push(ActionOf {
                role: Role::Event,
                account_id: Some(event.account_id.clone()),
                expected_version: 0,
            });
        }
        for stream in append.predecessor_checks() {
            actions.push(predecessor_check(&tables.events, stream)?);
            roles.push(ActionOf {
                role: Role::Predecessor,
                account_id: Some(stream.account_id.clone()),
                expected_version: stream.expected_version,
            });
        }
        Ok((actions, roles))
    }
}

/// A `ConditionCheck` that the stream's event `expected_version` exists and was recorded no later
/// than the earliest of the events appended after it. Timestamps compare as stored strings: the fixed
/// width UTC format sorts as time does. On failure the old item comes back (if there is one), which
/// tells a regression (item present) from a hole (item absent).
fn predecessor_check(
    table: &str,
    stream: &ledger_application::ports::StreamAppend,
) -> Result<TransactWriteItem, StoreError> {
    let earliest = stream
        .events
        .iter()
        .map(RecordedEvent::recorded_at)
        .min()
        .ok_or_else(|| StoreError::corrupt("a stream append without events reached the store"))?;
    let check = ConditionCheck::builder()
        .table_name(table)
        .key(ACCOUNT_ID, AttributeValue::S(stream.account_id.to_string()))
        .key(SEQUENCE, items::number(stream.expected_version))
        .condition_expression("attribute_exists(#pk) AND #ra <= :ra")
        .expression_attribute_names("#pk", ACCOUNT_ID)
        .expression_attribute_names("#ra", RECORDED_AT)
        .expression_attribute_values(":ra", AttributeValue::S(codec::format_timestamp(earliest)))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(|e| {
            StoreError::corrupt(format!("cannot build a ConditionCheck on {table}: {e}"))
        })?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
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

/// One action of an append's transaction: what it does, on which stream, after which version.
#[derive(Debug, Clone)]
struct ActionOf {
    role: Role,
    account_id: Option<AccountId>,
    /// For a predecessor check: the sequence it checks.
    expected_version: u64,
}

/// What one action of an append's transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The idempotency record's conditional `Put` (always action 0).
    Record,
    /// An event's conditional `Put`.
    Event,
    /// The check that a stream's predecessor event exists and is not recorded later.
    Predecessor,
}

/// One cancellation reason as the classification needs it: its code, and whether DynamoDB returned
/// the item (it does for a failed `ConditionCheck` asking for `ALL_OLD` when the item exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reason<'a> {
    pub code: Option<&'a str>,
    pub item_returned: bool,
}

/// What a cancelled transaction means for the append, decided from its cancellation reasons alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancellation {
    /// The idempotency record (action 0) exists: the request was already carried out.
    DuplicateRequest,
    /// The event at `action` exists: another writer appended at this sequence first.
    Conflict { action: usize },
    /// The predecessor checked at `action` does not exist: the append would leave a hole.
    MissingPredecessor { action: usize },
    /// The predecessor checked at `action` was recorded after the new events.
    TimeRegression { action: usize },
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

/// Maps the reasons of a `TransactionCanceledException` (one per action, code `None` or `"None"`
/// for an action that passed) to what the append must answer. The precedence follows the port:
///
/// 1. the record's condition failed: `DuplicateRequest`, even if another failed too, because the
///    request has already been carried out;
/// 2. the record is contended: retry, since whether the key is taken decides the answer and is not
///    known yet;
/// 3. an event's condition failed: `Conflict` on that event's stream;
/// 4. a predecessor check failed: `MissingPredecessor` or `TimeRegression`;
/// 5. an action is contended: retry; 6. throttled: retry after a pause; 7. anything else: `Failed`.
pub(crate) fn classify_cancellation(reasons: &[Reason<'_>], roles: &[Role]) -> Cancellation {
    if reasons.len() != roles.len() || roles.first() != Some(&Role::Record) {
        // DynamoDB reports one reason per action, in order; without that, no index can be trusted.
        return Cancellation::Failed;
    }
    let failed = |wanted: Role| {
        reasons.iter().zip(roles).position(|(reason, role)| {
            *role == wanted && reason.code == Some(CONDITIONAL_CHECK_FAILED)
        })
    };
    match reasons[0].code {
        Some(CONDITIONAL_CHECK_FAILED) => return Cancellation::DuplicateRequest,
        Some(TRANSACTION_CONFLICT) => return Cancellation::Contended { action: 0 },
        _ => {}
    }
    if let Some(action) = failed(Role::Event) {
        return Cancellation::Conflict { action };
    }
    if let Some(action) = failed(Role::Predecessor) {
        return if reasons[action].item_returned {
            Cancellation::TimeRegression { action }
        } else {
            Cancellation::MissingPredecessor { action }
        };
    }
    if let Some(action) = reasons
        .iter()
        .position(|reason| reason.code == Some(TRANSACTION_CONFLICT))
    {
        return Cancellation::Contended { action };
    }
    if reasons
        .iter()
        .any(|reason| reason.code.is_some_and(|code| THROTTLED.contains(&code)))
    {
        return Cancellation::Throttled;
    }
    Cancellation::Failed
}

/// Whether a failed request may have reached DynamoDB and committed: anything but a refusal that
/// DynamoDB answered (a service error), or a request that could not even be built. A timeout, a
/// dropped connection or an unreadable response leaves the transaction's fate unknown, and so does
/// DynamoDB's own 500 and `TransactionInProgressException` (another send with the same token runs).
fn outcome_may_be_unknown<R>(error: &SdkError<TransactWriteItemsError, R>) -> bool {
    match error {
        SdkError::ConstructionFailure(_) => false,
        SdkError::ServiceError(service) => matches!(
            service.err(),
            TransactWriteItemsError::InternalServerError(_)
                | TransactWriteItemsError::TransactionInProgressException(_)
        ),
        _ => true,
    }
}

/// A `Conflict` on `account_id`; with no stream to name (a rejection's record-only append, whose
/// record stayed contended) a plain cancellation, after which nothing was written either.
fn conflict_on(account_id: Option<AccountId>, reasons: &[CancellationReason]) -> AppendError {
    match account_id {
        Some(account_id) => AppendError::Conflict { account_id },
        None => StoreError::unavailable(DynamoError::Cancelled {
            reasons: describe_reasons(reasons),
        })
        .into(),
    }
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
pub(crate) fn check_contiguous(
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
        let page_size = self.settings.load_page_size.map(|size| size.max(1));
        let mut events = Vec::new();
        let mut start_key = None;
        for page in 1..=self.settings.load_pages_max {
            let (page_events, last_key) = self
                .query_page(account_id, after_sequence, page_size, start_key.take())
                .await?;
            events.extend(page_events);
            if last_key.is_none() {
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
            start_key = last_key;
        }
        Err(StoreError::unavailable(DynamoError::LoadTooLong {
            account_id: account_id.clone(),
            pages_max: self.settings.load_pages_max,
        }))
    }

    async fn append(&self, append: AtomicAppend) -> Result<(), AppendError> {
        // Refused before anything is sent: DynamoDB would refuse it too, but as a validation error.
        append.check_size()?;
        let (actions, roles) = self.transaction(&append)?;
        let key = &append.idempotency().key;
        let action_roles: Vec<Role> = roles.iter().map(|action| action.role).collect();
        // The stream named by a conflict at `action`; the first stream when the record itself is
        // contended. A rejection's record-only append has none.
        let first_account = roles.iter().find_map(|action| action.account_id.clone());
        let account_of = |action: usize| {
            roles
                .get(action)
                .and_then(|action| action.account_id.clone())
                .or_else(|| first_account.clone())
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
                let failure = request_error("TransactWriteItems", &tables, &error);
                return Err(if outcome_may_be_unknown(&error) {
                    AppendError::outcome_unknown(failure)
                } else {
                    failure.into()
                });
            };
            let codes: Vec<Reason<'_>> = reasons
                .iter()
                .map(|reason| Reason {
                    code: reason.code(),
                    item_returned: reason.item().is_some_and(|item| !item.is_empty()),
                })
                .collect();
            let verdict = classify_cancellation(&codes, &action_roles);
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
                    return Err(conflict_on(first_account, reasons));
                }
                // A lost race, or an event still contended after every attempt: to the caller both
                // are a conflict, which it answers by reloading and deciding again (or with 409 and
                // Retry-After).
                Cancellation::Conflict { action } | Cancellation::Contended { action } => {
                    return Err(conflict_on(account_of(action), reasons));
                }
                Cancellation::MissingPredecessor { action } => {
                    let account_id = account_of(action)
                        .ok_or_else(|| StoreError::corrupt("a predecessor check out of place"))?;
                    return Err(AppendError::MissingPredecessor {
                        account_id,
                        expected_version: roles[action].expected_version,
                    });
                }
                Cancellation::TimeRegression { action } => {
                    let account_id = account_of(action)
                        .ok_or_else(|| StoreError::corrupt("a predecessor check out of place"))?;
                    return Err(AppendError::TimeRegression { account_id });
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
        key: &ScopedIdempotencyKey,
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

    /// Classifies `codes` for a transaction of the record and `actions - 1` events.
    fn classify(codes: &[Option<&str>], actions: usize) -> Cancellation {
        let roles: Vec<Role> = (0..actions)
            .map(|action| {
                if action == 0 {
                    Role::Record
                } else {
                    Role::Event
                }
            })
            .collect();
        let reasons: Vec<Reason<'_>> = codes
            .iter()
            .map(|&code| Reason {
                code,
                item_returned: false,
            })
            .collect();
        classify_cancellation(&reasons, &roles)
    }

    #[test]
    fn a_failed_predecessor_check_is_a_hole_or_a_regression_after_any_conflict() {
        let roles = [Role::Record, Role::Event, Role::Predecessor];
        let reason = |code, item_returned| Reason {
            code,
            item_returned,
        };
        assert_eq!(
            classify_cancellation(
                &[
                    reason(PASSED, false),
                    reason(PASSED, false),
                    reason(CCF, false)
                ],
                &roles
            ),
            Cancellation::MissingPredecessor { action: 2 }
        );
        assert_eq!(
            classify_cancellation(
                &[
                    reason(PASSED, false),
                    reason(PASSED, false),
                    reason(CCF, true)
                ],
                &roles
            ),
            Cancellation::TimeRegression { action: 2 },
            "the predecessor exists, so its timestamp failed the condition"
        );
        assert_eq!(
            classify_cancellation(
                &[
                    reason(PASSED, false),
                    reason(CCF, false),
                    reason(CCF, false)
                ],
                &roles
            ),
            Cancellation::Conflict { action: 1 },
            "a taken sequence is a conflict: reloading heals it"
        );
        assert_eq!(
            classify_cancellation(
                &[
                    reason(CCF, false),
                    reason(PASSED, false),
                    reason(CCF, false)
                ],
                &roles
            ),
            Cancellation::DuplicateRequest
        );
    }

    #[test]
    fn a_failed_record_condition_is_a_duplicate_request() {
        assert_eq!(classify(&[CCF, PASSED], 2), Cancellation::DuplicateRequest);
        assert_eq!(
            classify(&[CCF, None, CCF], 3),
            Cancellation::DuplicateRequest,
            "the duplicate takes precedence over a conflict"
        );
        assert_eq!(
            classify(&[CCF, CONFLICT], 2),
            Cancellation::DuplicateRequest
        );
    }

    #[test]
    fn a_failed_event_condition_is_a_conflict_on_that_event() {
        assert_eq!(
            classify(&[PASSED, CCF], 2),
            Cancellation::Conflict { action: 1 }
        );
        assert_eq!(
            classify(&[None, None, CCF, CCF], 4),
            Cancellation::Conflict { action: 2 },
            "the first failed event names the stream"
        );
        assert_eq!(
            classify(&[PASSED, CONFLICT, CCF], 3),
            Cancellation::Conflict { action: 2 },
            "a certain conflict beats a contended event"
        );
    }

    #[test]
    fn contention_is_retried_and_a_contended_record_before_any_conflict() {
        assert_eq!(
            classify(&[PASSED, CONFLICT], 2),
            Cancellation::Contended { action: 1 }
        );
        assert_eq!(
            classify(&[CONFLICT, CCF], 2),
            Cancellation::Contended { action: 0 },
            "whether the key is taken decides the answer, and it is not known yet"
        );
    }

    #[test]
    fn throttling_is_retried() {
        for code in THROTTLED {
            assert_eq!(classify(&[PASSED, Some(code)], 2), Cancellation::Throttled);
        }
    }

    #[test]
    fn anything_else_fails() {
        assert_eq!(
            classify(&[PASSED, Some("ValidationError")], 2),
            Cancellation::Failed
        );
        assert_eq!(
            classify(&[PASSED, Some("ItemCollectionSizeLimitExceeded")], 2),
            Cancellation::Failed
        );
        assert_eq!(classify(&[PASSED, PASSED], 2), Cancellation::Failed);
        assert_eq!(
            classify(&[CCF], 2),
            Cancellation::Failed,
            "reasons that do not match the actions cannot be attributed"
        );
        assert_eq!(classify(&[], 0), Cancellation::Failed);
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
