//! What one stream record is to a projector (the stream poller and the projection Lambda alike): an
//! appended event to project, an image that cannot be decoded (dead-lettered with its image), or
//! something the events table can never legitimately produce (logged and skipped); and the one way a
//! batch of them is handed to the `Projector`.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record};
use ledger_application::ports::{StoreError, UndecodableEvent};
use ledger_application::{Projected, Projector, RecordedEvent};
use ledger_domain::AccountId;

use crate::items::decode_event;

/// One stream record, read: what the projector is handed for it.
// Nearly every record is an event: boxing it to shrink the rare undecodable one would cost an
// allocation per record, for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEntry<'a> {
    /// An INSERT whose image decodes: the event to project.
    Event {
        sequence_number: &'a str,
        event: RecordedEvent,
    },
    /// An INSERT whose image does not decode: to be dead-lettered with its image, so that the shard
    /// moves on and the account's later events wait behind it.
    Undecodable {
        sequence_number: &'a str,
        undecodable: UndecodableEvent,
    },
    /// A record that is not an appended event (a MODIFY or REMOVE, an INSERT without its image, a
    /// record without a position): logged as an error and skipped.
    Skipped { sequence_number: Option<&'a str> },
}

impl<'a> StreamEntry<'a> {
    /// The record's position in its shard, if it has one.
    pub fn sequence_number(&self) -> Option<&'a str> {
        match self {
            Self::Event {
                sequence_number, ..
            }
            | Self::Undecodable {
                sequence_number, ..
            } => Some(sequence_number),
            Self::Skipped { sequence_number } => *sequence_number,
        }
    }

    /// The account the record belongs to, as far as it can be read (`None` for a skipped record
    /// and for an undecodable image whose account attribute cannot be read).
    pub fn account_id(&self) -> Option<&AccountId> {
        match self {
            Self::Event { event, .. } => Some(&event.account_id),
            Self::Undecodable { undecodable, .. } => undecodable.account_id.as_ref(),
            Self::Skipped { .. } => None,
        }
    }
}

/// Reads one stream record: classifies it and decodes an INSERT's image through
/// [`decode_event`], the same decoder as every Query result. `origin` names where the record came
/// from (a shard, a stream) for the logs and for an undecodable image's error. A skipped record is
/// logged here, as an error: events are immutable, so it means the table was changed behind the
/// application's back.
pub fn read_record<'a>(record: &'a Record, origin: &str) -> StreamEntry<'a> {
    match classify(record) {
        StreamChange::Insert {
            sequence_number,
            image,
        } => match decode_event(image) {
            Ok(event) => StreamEntry::Event {
                sequence_number,
                event,
            },
            Err(error) => {
                let (account_id, sequence) = image_identity(image);
                StreamEntry::Undecodable {
                    sequence_number,
                    undecodable: UndecodableEvent {
                        account_id,
                        sequence,
                        raw: image_json(image),
                        error: format!("stream record {sequence_number} of {origin}: {error}"),
                    },
                }
            }
        },
        StreamChange::Unexpected {
            sequence_number,
            what,
        } => {
            tracing::error!(
                origin,
                sequence_number,
                "{what} in the events table's stream: events are immutable; skipped"
            );
            StreamEntry::Skipped {
                sequence_number: Some(sequence_number),
            }
        }
        StreamChange::Unpositioned => {
            tracing::error!(origin, "stream record without a sequence number; skipped");
            StreamEntry::Skipped {
                sequence_number: None,
            }
        }
    }
}

/// Hands `entries` (taken, so that their events are not copied) to the projector in stream order, with the outcome of each event and undecodable
/// entry (skipped ones have none), in that order: the decodable events between two undecodable ones
/// as one run through the projector's batched path (one read-model transaction where the sequence
/// rule allows), an undecodable one alone, in its place, dead-lettered with its image (stalling the
/// shard would stall every account in it for one bad item). A projector error (the read model is
/// unavailable) is returned at once: what was projected before it stays projected, and delivering
/// the entries again only meets duplicates.
pub async fn project_entries(
    projector: &Projector,
    entries: Vec<StreamEntry<'_>>,
) -> Result<Vec<Projected>, StoreError> {
    let mut projected = Vec::with_capacity(entries.len());
    let mut run: Vec<RecordedEvent> = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry {
            StreamEntry::Event { event, .. } => run.push(event),
            StreamEntry::Undecodable { undecodable, .. } => {
                projected.extend(projector.project_batch(&run).await?);
                run.clear();
                projected.push(projector.project_undecodable(&undecodable).await?);
            }
            StreamEntry::Skipped { .. } => {}
        }
    }
    projected.extend(projector.project_batch(&run).await?);
    Ok(projected)
}

/// One stream record, classified.
#[derive(Debug, Clone, Copy, PartialEq)]
enum StreamChange<'a> {
    /// An appended event: its item as written.
    Insert {
        sequence_number: &'a str,
        image: &'a HashMap<String, AttributeValue>,
    },
    /// A record the poller skips (logging an error) but may checkpoint past: a MODIFY or REMOVE
    /// (events are never updated or deleted by the application, so someone changed the table behind
    /// its back), or an INSERT without a new image (the stream does not carry images).
    Unexpected {
        sequence_number: &'a str,
        what: &'static str,
    },
    /// A record without a sequence number: it cannot be checkpointed past, only skipped.
    Unpositioned,
}

/// A stream record's image as DynamoDB's own JSON form (`{"account_id": {"S": "acc-1"}, ...}`),
/// attributes in name order so that the same image always reads the same: the raw form a dead letter
/// keeps of an event that could not be decoded. Binary values, which the events table never holds,
/// are written as hex under `B_hex`.
fn image_json(image: &HashMap<String, AttributeValue>) -> String {
    serde_json::Value::Object(attributes_json(image)).to_string()
}

/// A map of attributes as JSON, in name order.
fn attributes_json(
    attributes: &HashMap<String, AttributeValue>,
) -> serde_json::Map<String, serde_json::Value> {
    attributes
        .iter()
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .map(|(name, value)| (name.clone(), attribute_json(value)))
        .collect()
}

fn attribute_json(value: &AttributeValue) -> serde_json::Value {
    use serde_json::json;
    let hex = |bytes: &[u8]| {
        bytes.iter().fold(String::new(), |mut text, byte| {
            use std::fmt::Write as _;
            let _ = write!(text, "{byte:02x}");
            text
        })
    };
    match value {
        AttributeValue::S(text) => json!({ "S": text }),
        AttributeValue::N(number) => json!({ "N": number }),
        AttributeValue::B(blob) => json!({ "B_hex": hex(blob.as_ref()) }),
        AttributeValue::Ss(texts) => json!({ "SS": texts }),
        AttributeValue::Ns(numbers) => json!({ "NS": numbers }),
        AttributeValue::Bs(blobs) => {
            json!({ "BS_hex": blobs.iter().map(|b| hex(b.as_ref())).collect::<Vec<_>>() })
        }
        AttributeValue::M(map) => json!({ "M": attributes_json(map) }),
        AttributeValue::L(list) => {
            json!({ "L": list.iter().map(attribute_json).collect::<Vec<_>>() })
        }
        AttributeValue::Null(is_null) => json!({ "NULL": is_null }),
        AttributeValue::Bool(flag) => json!({ "BOOL": flag }),
        _ => json!({ "unknown": format!("{value:?}") }),
    }
}

/// What can be read of an undecodable image's identity: its account and sequence attributes.
fn image_identity(
    image: &HashMap<String, AttributeValue>,
) -> (Option<ledger_domain::AccountId>, Option<u64>) {
    let account_id = match image.get(crate::items::ACCOUNT_ID) {
        Some(AttributeValue::S(text)) => ledger_domain::AccountId::parse(text).ok(),
        _ => None,
    };
    let sequence = match image.get(crate::items::SEQUENCE) {
        Some(AttributeValue::N(number)) => number.parse().ok(),
        _ => None,
    };
    (account_id, sequence)
}

fn classify(record: &Record) -> StreamChange<'_> {
    let Some(sequence_number) = record
        .dynamodb()
        .and_then(|change| change.sequence_number())
    else {
        return StreamChange::Unpositioned;
    };
    let unexpected = |what| StreamChange::Unexpected {
        sequence_number,
        what,
    };
    match record.event_name() {
        Some(OperationType::Insert) => match record.dynamodb().and_then(|c| c.new_image()) {
            Some(image) => StreamChange::Insert {
                sequence_number,
                image,
            },
            None => unexpected("an INSERT without a new image"),
        },
        Some(OperationType::Modify) => unexpected("a MODIFY of an event"),
        Some(OperationType::Remove) => unexpected("a REMOVE of an event"),
        _ => unexpected("a record of an unknown kind"),
    }
}

#[cfg(test)]
mod tests {
    //! Classification of hand-built records, shaped as DynamoDB Streams delivers them.

    use aws_sdk_dynamodbstreams::types::StreamRecord;

    use super::*;

    fn record(event_name: OperationType, sequence_number: Option<&str>, image: bool) -> Record {
        let mut change =
            StreamRecord::builder().set_sequence_number(sequence_number.map(Into::into));
        if image {
            change = change.new_image("account_id", AttributeValue::S("acc-1".to_owned()));
        }
        Record::builder()
            .event_name(event_name)
            .dynamodb(change.build())
            .build()
    }

    #[test]
    fn an_insert_with_its_image_is_an_event() {
        let insert = record(OperationType::Insert, Some("11"), true);
        match classify(&insert) {
            StreamChange::Insert {
                sequence_number,
                image,
            } => {
                assert_eq!(sequence_number, "11");
                assert!(image.contains_key("account_id"));
            }
            other => panic!("expected an insert, got {other:?}"),
        }
    }

    #[test]
    fn modifies_and_removes_are_unexpected_but_positioned() {
        for name in [OperationType::Modify, OperationType::Remove] {
            let change = record(name, Some("12"), true);
            assert!(matches!(
                classify(&change),
                StreamChange::Unexpected {
                    sequence_number: "12",
                    ..
                }
            ));
        }
    }

    #[test]
    fn an_insert_without_an_image_is_unexpected() {
        let keys_only = record(OperationType::Insert, Some("13"), false);
        assert_eq!(
            classify(&keys_only),
            StreamChange::Unexpected {
                sequence_number: "13",
                what: "an INSERT without a new image",
            }
        );
    }

    #[test]
    fn an_image_reads_as_sorted_dynamodb_json_with_its_identity() {
        let image: HashMap<String, AttributeValue> = [
            ("sequence", AttributeValue::N("7".to_owned())),
            ("account_id", AttributeValue::S("acc-1".to_owned())),
            ("payload", AttributeValue::Bool(true)),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        assert_eq!(
            image_json(&image),
            r#"{"account_id":{"S":"acc-1"},"payload":{"BOOL":true},"sequence":{"N":"7"}}"#
        );
        let (account_id, sequence) = image_identity(&image);
        assert_eq!(account_id.map(|a| a.to_string()).as_deref(), Some("acc-1"));
        assert_eq!(sequence, Some(7));
    }

    #[test]
    fn a_record_without_a_sequence_number_is_unpositioned() {
        let odd = record(OperationType::Insert, None, true);
        assert_eq!(classify(&odd), StreamChange::Unpositioned);
    }
}
