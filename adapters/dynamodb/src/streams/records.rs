//! What one stream record is to the poller: an appended event to project, or something the events
//! table can never legitimately produce.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record};

/// One stream record, classified.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StreamChange<'a> {
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
pub fn image_json(image: &HashMap<String, AttributeValue>) -> String {
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
pub fn image_identity(
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

pub fn classify(record: &Record) -> StreamChange<'_> {
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
