//! `EventStoreScan` on the `events` table: the accounts by a consistent `Scan` of the opening items,
//! an account's events by a consistent, bounded `Query`.
//!
//! The table has no index of accounts, and a global index would be only eventually consistent; a
//! `Scan` filtered on `sequence = 1` reads every item once but returns only one key per account.
//! DynamoDB applies the filter after `Limit`, so a page may hold fewer accounts than asked, even
//! none, while `LastEvaluatedKey` says that more follow: the port allows exactly that.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use ledger_application::RecordedEvent;
use ledger_application::ports::{AccountPage, EventStoreScan, ScanCursor, StoreError};
use ledger_domain::AccountId;

use crate::event_store::{
    DynamoError, DynamoEventStore, check_contiguous, log_capacity, request_error,
};
use crate::items::{self, ACCOUNT_ID, Item, SEQUENCE, decode_event};

/// Between the sequence and the account id in a cursor's text. The sequence is digits only, so the
/// first separator ends it, whatever characters an account id holds.
const CURSOR_SEPARATOR: char = ':';

/// A `LastEvaluatedKey` of the events table as cursor text: `<sequence>:<account_id>`. The key may
/// name any item (the last one the Scan read, not the last one it returned), so both parts count.
fn encode_cursor(key: &Item) -> Result<ScanCursor, StoreError> {
    let Some(AttributeValue::S(account_id)) = key.get(ACCOUNT_ID) else {
        return Err(StoreError::corrupt(format!(
            "a Scan's LastEvaluatedKey lacks {ACCOUNT_ID}"
        )));
    };
    let Some(AttributeValue::N(sequence)) = key.get(SEQUENCE) else {
        return Err(StoreError::corrupt(format!(
            "a Scan's LastEvaluatedKey lacks {SEQUENCE}"
        )));
    };
    Ok(ScanCursor::new(format!(
        "{sequence}{CURSOR_SEPARATOR}{account_id}"
    )))
}

/// The `ExclusiveStartKey` a cursor of [`encode_cursor`] stands for.
fn decode_cursor(cursor: &ScanCursor) -> Result<Item, StoreError> {
    let refused = || {
        StoreError::corrupt(format!(
            "scan cursor `{}` is not one the DynamoDB event store wrote",
            cursor.as_str()
        ))
    };
    let (sequence, account_id) = cursor
        .as_str()
        .split_once(CURSOR_SEPARATOR)
        .ok_or_else(refused)?;
    let sequence: u64 = sequence.parse().map_err(|_| refused())?;
    if account_id.is_empty() {
        return Err(refused());
    }
    Ok(HashMap::from([
        (ACCOUNT_ID.to_owned(), items::string(account_id)),
        (SEQUENCE.to_owned(), items::number(sequence)),
    ]))
}

/// A page size as DynamoDB's `Limit`: at least 1, at most what an `i32` holds.
fn dynamo_limit(limit: usize) -> i32 {
    i32::try_from(limit.max(1)).unwrap_or(i32::MAX)
}

#[async_trait]
impl EventStoreScan for DynamoEventStore {
    /// One `Scan` request per page: `Limit` bounds the items it reads, so a page costs at most
    /// `limit` items' worth of read capacity however few accounts it returns.
    async fn accounts_page(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<AccountPage, StoreError> {
        let table = &self.settings().tables.events;
        let start_key = cursor.map(decode_cursor).transpose()?;
        let output = self
            .client()
            .scan()
            .table_name(table)
            // Consistent like `load`: an account whose opening committed before the walk began is
            // seen, even one opened a moment ago.
            .consistent_read(true)
            .filter_expression("#s = :opening")
            .projection_expression("#a")
            .expression_attribute_names("#a", ACCOUNT_ID)
            .expression_attribute_names("#s", SEQUENCE)
            .expression_attribute_values(":opening", items::number(1))
            .limit(dynamo_limit(limit))
            .set_exclusive_start_key(start_key)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| request_error("Scan", table, &e))?;
        log_capacity("Scan", output.consumed_capacity());
        let accounts = output
            .items()
            .iter()
            .map(|item| match item.get(ACCOUNT_ID) {
                Some(AttributeValue::S(id)) => AccountId::parse(id)
                    .map_err(|e| StoreError::corrupt(format!("stored account id `{id}`: {e}"))),
                _ => Err(StoreError::corrupt(format!(
                    "an opening item of {table} lacks {ACCOUNT_ID}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = match output.last_evaluated_key() {
            Some(key) if !key.is_empty() => Some(encode_cursor(key)?),
            _ => None,
        };
        Ok(AccountPage { accounts, next })
    }

    /// A consistent `Query` with `Limit`; DynamoDB also ends a page at 1 MB, so the pages of one call
    /// are followed until `limit` events or the end of the stream (at most `load_pages_max` of them):
    /// fewer than `limit` must mean the tail is whole.
    async fn events_page(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let table = &self.settings().tables.events;
        let mut events: Vec<RecordedEvent> = Vec::with_capacity(limit.min(1_024));
        let mut start_key = None;
        for _ in 0..self.settings().load_pages_max {
            let remaining = limit.saturating_sub(events.len());
            if remaining == 0 {
                break;
            }
            let output = self
                .client()
                .query()
                .table_name(table)
                .key_condition_expression("#a = :a AND #s > :s")
                .expression_attribute_names("#a", ACCOUNT_ID)
                .expression_attribute_names("#s", SEQUENCE)
                .expression_attribute_values(":a", items::string(account_id.as_str()))
                .expression_attribute_values(":s", items::number(after_sequence))
                .consistent_read(true)
                .limit(dynamo_limit(remaining))
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
                    check_contiguous(account_id, after_sequence, &events)?;
                    return Ok(events);
                }
            }
        }
        if events.len() < limit {
            return Err(StoreError::unavailable(DynamoError::LoadTooLong {
                account_id: account_id.clone(),
                pages_max: self.settings().load_pages_max,
            }));
        }
        check_contiguous(account_id, after_sequence, &events)?;
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_through_its_text() {
        let key = items::event_key(&AccountId::parse("acc-7_x").expect("id"), 7);
        let cursor = encode_cursor(&key).expect("encode");
        assert_eq!(cursor.as_str(), "7:acc-7_x");
        let again = ScanCursor::new(cursor.as_str().to_owned());
        assert_eq!(decode_cursor(&again).expect("decode"), key);
    }

    #[test]
    fn a_cursor_this_store_did_not_write_is_refused() {
        for text in ["", "7", "x:acc-1", "7:", "-1:acc-1"] {
            assert!(decode_cursor(&ScanCursor::new(text)).is_err(), "{text:?}");
        }
    }

    #[test]
    fn a_page_size_is_a_positive_i32() {
        assert_eq!(dynamo_limit(0), 1);
        assert_eq!(dynamo_limit(25), 25);
        assert_eq!(dynamo_limit(usize::MAX), i32::MAX);
    }
}
