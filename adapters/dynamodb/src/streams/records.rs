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
    fn a_record_without_a_sequence_number_is_unpositioned() {
        let odd = record(OperationType::Insert, None, true);
        assert_eq!(classify(&odd), StreamChange::Unpositioned);
    }
}
