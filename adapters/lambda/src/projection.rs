//! The projection function: DynamoDB Streams records through the projector, partial batch failures.
//!
//! The event source mapping (ESM) of the events table's stream invokes [`ProjectionFunction`] with a
//! batch of records of one shard, in stream order, and runs one batch per shard at a time. Each
//! record becomes the Streams SDK's own `Record` (what GetRecords returns to the stream poller) and
//! is read by the poller's code, [`read_record`]: the same classification, the same decoder
//! (`ledger_dynamodb::items::decode_event`) and, for an image that does not decode, the same raw form
//! of the dead letter (the image as DynamoDB JSON). MODIFY and REMOVE records, INSERTs without an
//! image and records without a position are logged as errors and skipped, as the poller does.
//!
//! # The fast path and the fallback
//!
//! The batch first goes through [`project_entries`], as a poller's GetRecords page does: runs of
//! decodable events through `Projector::project_batch` (one read-model transaction where the
//! sequence rule allows), an undecodable image dead-lettered alone in its place. An undecodable image
//! is not a failure of the batch: it is a dead letter, the shard moves on, and its account's later
//! events are recorded as waiting behind it (the projector does that). Everything the projector can
//! decide on its own (duplicates, gaps, retries, dead letters) it decides there.
//!
//! What the projector cannot decide is an unavailable read model (a `StoreError`). Then the batch is
//! projected again, account by account: each account's records, in record order, through
//! [`project_entries`] (batched again), and for an account that fails, one by one until its first
//! record that fails. That record's `SequenceNumber` is reported in `batchItemFailures`, the account's
//! later records in the batch are not attempted, and every other account's records are still
//! projected. A failure that prevents everything (the database is gone) is one reported record per
//! account, never an `Err`: an `Err` fails the whole batch, which the ESM retries whole, as it would
//! after a timeout or a crash — still correct, by the same argument, only slower.
//!
//! # Why this is correct under the ESM's semantics
//!
//! With `ReportBatchItemFailures`, the ESM takes the lowest reported sequence number as the shard's
//! position and delivers the records from that one on again; the records before it are done.
//! - **Nothing is lost.** Every record before the lowest reported one was projected (applied, a
//!   duplicate, dead-lettered, or waiting behind a dead letter), or is the earlier record of an
//!   account that did not fail.
//! - **Nothing applies twice.** The records from the lowest reported one on that were applied come
//!   back as duplicates, and the sequence rule (apply only `last_sequence + 1`, in the read model's
//!   own conditional write) skips them.
//! - **No account's records apply out of order.** Of each account, what was applied is a prefix of
//!   its records in the batch: a failing account stops at its first failure, and its later records
//!   are not attempted, so none can land past a hole (a gap would not be applied anyway, but it would
//!   cost retries and a dead letter). Redelivery starts at or before that first failure, so the
//!   account resumes exactly there.
//! - **A failure holds back only its account.** The other accounts' records of the batch are applied
//!   in this invocation. What the shard cannot do is move past the lowest failure: while it lasts,
//!   every retry delivers the same window again (of the ESM's batch size), so the other accounts'
//!   newer records wait for it to clear. That is the price of the ESM keeping one position per shard;
//!   it is small because only an unavailable read model is reported: a poison event is the
//!   projector's, dead-lettered after bounded retries, and never pins the shard.
//!
//! Records the ESM gives up on (bounded `MaximumRetryAttempts` or `MaximumRecordAgeInSeconds`, with
//! an on-failure destination that receives their positions) are not lost from the ledger: they stay
//! in the event store, the account's next event arrives as a gap and is dead-lettered (visible,
//! readiness fails), and `ledger dead-letters retry` re-reads the account from the event store. So
//! bounding the retries trades an operator's redrive for a shard that is never pinned for long.
//!
//! There are no checkpoints (the ESM owns the position) and no projector lease (the ESM runs one
//! batch per shard at a time).

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record, StreamRecord};
use ledger_application::Projector;
use ledger_domain::AccountId;
use ledger_dynamodb::streams::{StreamEntry, project_entries, read_record};

/// The projection function: one [`Projector`] over the read model, built once per execution
/// environment, reused by every invocation.
#[derive(Debug)]
pub struct ProjectionFunction {
    projector: Projector,
}

/// What became of one invocation's batch, for the logs and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Stream records in the event.
    pub records: usize,
    /// Whether the fast path failed and the batch was projected again account by account.
    pub fell_back: bool,
    /// The sequence numbers reported as batch item failures: each failing account's first record.
    pub failed_sequence_numbers: Vec<String>,
}

impl BatchOutcome {
    /// The partial batch response the ESM reads.
    pub fn response(&self) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = self
            .failed_sequence_numbers
            .iter()
            .map(|sequence_number| {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence_number.clone());
                failure
            })
            .collect();
        response
    }
}

impl ProjectionFunction {
    pub fn new(projector: Projector) -> Self {
        Self { projector }
    }

    /// Projects one invocation's batch and answers which records the ESM must deliver again.
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        self.project(event).await.response()
    }

    /// [`ProjectionFunction::handle`], saying what it did. See the module documentation.
    pub async fn project(&self, event: Event) -> BatchOutcome {
        let origin = origin(&event);
        let records: Vec<Record> = event.records.into_iter().map(stream_record).collect();
        let mut outcome = BatchOutcome {
            records: records.len(),
            ..BatchOutcome::default()
        };
        if records.is_empty() {
            return outcome;
        }
        self.projector.note_work_found();
        let Err(error) = project_entries(&self.projector, read_all(&records, &origin)).await else {
            return outcome;
        };
        tracing::warn!(%error, records = records.len(), %origin,
            "the read model refused the batch; projecting it again account by account");
        outcome.fell_back = true;
        // Reading is a pure function of the records, so reading them again gives the same entries
        // (the fast path consumed the first ones; a skipped record is logged a second time).
        outcome.failed_sequence_numbers = self
            .project_account_by_account(read_all(&records, &origin))
            .await;
        outcome
    }

    /// Projects each account's entries on their own, in record order; returns the sequence number
    /// of each failing account's first record that failed. An undecodable image whose account
    /// cannot be read is an account of its own.
    async fn project_account_by_account(&self, entries: Vec<StreamEntry<'_>>) -> Vec<String> {
        let mut failed = Vec::new();
        for account_entries in by_account(entries) {
            // Cloned only on this path: the first failed attempt of the account needs them again.
            if project_entries(&self.projector, account_entries.clone())
                .await
                .is_ok()
            {
                continue;
            }
            // What was applied of it stays applied; going one by one finds the first record that
            // cannot be, and the records before it meet the sequence rule as duplicates.
            for entry in account_entries {
                let sequence_number = entry.sequence_number();
                let account_id = entry.account_id().cloned();
                if let Err(error) = project_entries(&self.projector, vec![entry]).await {
                    tracing::warn!(%error, account_id = ?account_id, sequence_number,
                        "record not projected; reported as a batch item failure, the account's \
                         later records wait for its redelivery");
                    // Every entry that reaches the projector has a position (read_record gives
                    // Event and Undecodable one); a failure without one could not be reported.
                    failed.extend(sequence_number.map(str::to_owned));
                    break;
                }
            }
        }
        failed
    }
}

/// Where the batch came from, for the logs and an undecodable image's error: its stream.
fn origin(event: &Event) -> String {
    event
        .records
        .first()
        .and_then(|record| record.event_source_arn.as_deref())
        .map_or_else(
            || "the Lambda's stream event".to_owned(),
            |arn| format!("stream {arn}"),
        )
}

/// Every record read, in order.
fn read_all<'a>(records: &'a [Record], origin: &str) -> Vec<StreamEntry<'a>> {
    records
        .iter()
        .map(|record| read_record(record, origin))
        .collect()
}

/// The entries grouped by account, each group in record order, groups in the order of their
/// account's first record. Skipped entries are left out: nothing is projected for them.
fn by_account(entries: Vec<StreamEntry<'_>>) -> Vec<Vec<StreamEntry<'_>>> {
    let mut groups: Vec<Vec<StreamEntry<'_>>> = Vec::new();
    let mut group_of: HashMap<AccountId, usize> = HashMap::new();
    for entry in entries {
        if matches!(entry, StreamEntry::Skipped { .. }) {
            continue;
        }
        let Some(account_id) = entry.account_id().cloned() else {
            groups.push(vec![entry]);
            continue;
        };
        if let Some(&index) = group_of.get(&account_id) {
            groups[index].push(entry);
        } else {
            group_of.insert(account_id, groups.len());
            groups.push(vec![entry]);
        }
    }
    groups
}

/// A Lambda stream record as the Streams SDK's `Record`: the event name, the position and the new
/// image, all that [`read_record`] reads. An absent `NewImage` arrives as an empty map and becomes no
/// image, which the poller's reading calls an INSERT without its image.
fn stream_record(record: EventRecord) -> Record {
    let change = record.change;
    let new_image: HashMap<String, AttributeValue> = change.new_image.into();
    let stream_record = StreamRecord::builder()
        .set_sequence_number(change.sequence_number)
        .set_new_image((!new_image.is_empty()).then_some(new_image))
        .build();
    Record::builder()
        .event_id(record.event_id)
        .event_name(OperationType::from(record.event_name.as_str()))
        .dynamodb(stream_record)
        .build()
}

#[cfg(test)]
mod tests {
    //! The conversion of Lambda records and the grouping; projection itself is tested against real
    //! PostgreSQL and DynamoDB Local in `tests/projection.rs`.

    use super::*;

    /// What a test record's `NewImage` holds.
    #[derive(Clone, Copy)]
    enum Image<'a> {
        /// No `NewImage` at all.
        Absent,
        /// An image that is no event and names no account.
        Anonymous,
        /// An image that is no event but names its account and sequence 1.
        Of(&'a str),
    }

    fn lambda_record(event_name: &str, sequence_number: &str, image: Image<'_>) -> EventRecord {
        let image = match image {
            Image::Absent => serde_json::json!({}),
            Image::Anonymous => serde_json::json!({ "payload": { "S": "?" } }),
            Image::Of(account_id) => serde_json::json!({
                "account_id": { "S": account_id },
                "sequence": { "N": "1" },
            }),
        };
        serde_json::from_value(serde_json::json!({
            "eventID": "1",
            "eventName": event_name,
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "SequenceNumber": sequence_number,
                "SizeBytes": 10,
                "StreamViewType": "NEW_IMAGE",
                "NewImage": image,
            },
        }))
        .expect("a Lambda stream record")
    }

    #[test]
    fn a_lambda_record_reads_like_a_get_records_record() {
        let record = stream_record(lambda_record("INSERT", "100", Image::Of("acc-1")));
        let entry = read_record(&record, "test");
        // The image holds no event, so it is undecodable, with its identity and its image.
        match entry {
            StreamEntry::Undecodable {
                sequence_number,
                undecodable,
            } => {
                assert_eq!(sequence_number, "100");
                assert_eq!(
                    undecodable.account_id.map(|id| id.to_string()).as_deref(),
                    Some("acc-1")
                );
                assert_eq!(undecodable.sequence, Some(1));
                assert_eq!(
                    undecodable.raw,
                    r#"{"account_id":{"S":"acc-1"},"sequence":{"N":"1"}}"#
                );
            }
            other => panic!("expected an undecodable entry, got {other:?}"),
        }
    }

    #[test]
    fn modifies_removes_and_imageless_inserts_are_skipped_with_their_position() {
        for (name, image) in [
            ("MODIFY", Image::Of("acc-1")),
            ("REMOVE", Image::Of("acc-1")),
            ("INSERT", Image::Absent),
        ] {
            let record = stream_record(lambda_record(name, "7", image));
            assert_eq!(
                read_record(&record, "test"),
                StreamEntry::Skipped {
                    sequence_number: Some("7")
                },
                "{name}"
            );
        }
    }

    #[test]
    fn entries_group_by_account_in_record_order() {
        let records: Vec<Record> = [
            ("1", Image::Of("acc-a")),
            ("2", Image::Of("acc-b")),
            ("3", Image::Anonymous),
            ("4", Image::Of("acc-a")),
            ("5", Image::Absent),
            ("6", Image::Anonymous),
        ]
        .into_iter()
        .map(|(sequence_number, image)| {
            stream_record(lambda_record("INSERT", sequence_number, image))
        })
        .collect();
        let groups = by_account(read_all(&records, "test"));
        let positions: Vec<Vec<&str>> = groups
            .iter()
            .map(|group| {
                group
                    .iter()
                    .filter_map(StreamEntry::sequence_number)
                    .collect()
            })
            .collect();
        // An image without an account is a group of its own; an INSERT without an image is skipped.
        assert_eq!(
            positions,
            vec![vec!["1", "4"], vec!["2"], vec!["3"], vec!["6"]]
        );
    }

    #[test]
    fn the_response_names_each_failed_record() {
        let outcome = BatchOutcome {
            records: 3,
            fell_back: true,
            failed_sequence_numbers: vec!["200".to_owned()],
        };
        assert_eq!(
            serde_json::to_value(outcome.response()).expect("serialize"),
            serde_json::json!({ "batchItemFailures": [{ "itemIdentifier": "200" }] })
        );
    }
}
