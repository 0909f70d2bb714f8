//! Where reading a shard starts and what is saved after a batch: the checkpoint rules, as pure
//! functions so that they can be tested without a stream.
//!
//! A checkpoint names the last record whose event was handed to the projector and handled (applied,
//! skipped as a duplicate, or dead-lettered). It is saved only after that, so a crash between the two
//! redelivers records, which the projector's sequence rule turns into skipped duplicates; it never
//! skips a record.

use ledger_application::ports::ShardCheckpoint;

/// Where a fresh shard iterator starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IteratorStart {
    /// Just after the last record handled.
    AfterSequenceNumber(String),
    /// At the oldest record the shard still holds: nothing of it was handled yet, or the records
    /// after the checkpoint were trimmed.
    TrimHorizon,
}

impl IteratorStart {
    pub fn after(position: Option<&str>) -> Self {
        match position {
            Some(sequence_number) => Self::AfterSequenceNumber(sequence_number.to_owned()),
            None => Self::TrimHorizon,
        }
    }
}

/// The checkpoint to save once every record of a batch was handled, or `None` when there is nothing
/// new to say (an empty batch from a shard still open: writing would only churn the database).
///
/// `position` is the shard's saved position before the batch, `last_handled` the sequence number of
/// the batch's last handled record, `shard_closed` whether the stream gave no next iterator: the
/// shard is closed and this batch was its end, so its children may be read.
pub fn checkpoint_after_batch(
    position: Option<&str>,
    last_handled: Option<&str>,
    shard_closed: bool,
) -> Option<ShardCheckpoint> {
    if last_handled.is_none() && !shard_closed {
        return None;
    }
    Some(ShardCheckpoint {
        // An empty last batch keeps the position it had, so the record remains a true statement.
        sequence_number: last_handled.or(position).map(str::to_owned),
        finished: shard_closed,
    })
}

#[cfg(test)]
mod tests {
    //! The checkpoint rules, case by case.

    use super::*;

    #[test]
    fn a_shard_never_read_starts_at_the_trim_horizon() {
        assert_eq!(IteratorStart::after(None), IteratorStart::TrimHorizon);
    }

    #[test]
    fn a_read_shard_resumes_after_its_checkpoint() {
        assert_eq!(
            IteratorStart::after(Some("000000000000000000042")),
            IteratorStart::AfterSequenceNumber("000000000000000000042".to_owned())
        );
    }

    #[test]
    fn a_batch_moves_the_checkpoint_to_its_last_record() {
        assert_eq!(
            checkpoint_after_batch(Some("100"), Some("250"), false),
            Some(ShardCheckpoint {
                sequence_number: Some("250".to_owned()),
                finished: false,
            })
        );
        assert_eq!(
            checkpoint_after_batch(None, Some("7"), false),
            Some(ShardCheckpoint {
                sequence_number: Some("7".to_owned()),
                finished: false,
            })
        );
    }

    #[test]
    fn an_empty_batch_of_an_open_shard_saves_nothing() {
        assert_eq!(checkpoint_after_batch(Some("100"), None, false), None);
        assert_eq!(checkpoint_after_batch(None, None, false), None);
    }

    #[test]
    fn the_last_batch_of_a_closed_shard_finishes_it() {
        assert_eq!(
            checkpoint_after_batch(Some("100"), Some("120"), true),
            Some(ShardCheckpoint {
                sequence_number: Some("120".to_owned()),
                finished: true,
            })
        );
    }

    #[test]
    fn an_empty_last_batch_finishes_the_shard_at_its_old_position() {
        assert_eq!(
            checkpoint_after_batch(Some("100"), None, true),
            Some(ShardCheckpoint {
                sequence_number: Some("100".to_owned()),
                finished: true,
            })
        );
        // A closed shard that never held a record is finished too, with no position.
        assert_eq!(
            checkpoint_after_batch(None, None, true),
            Some(ShardCheckpoint {
                sequence_number: None,
                finished: true,
            })
        );
    }
}
