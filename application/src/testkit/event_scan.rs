//! The contract of `EventStoreScan`: every account exactly once across the pages of a walk, a cursor
//! that survives as text, and bounded, ordered, whole pages of one account's events.

use std::collections::BTreeSet;

use ledger_domain::AccountId;

use crate::envelope::RecordedEvent;
use crate::ports::{EventStore, EventStoreScan, ScanCursor};
use crate::testkit::EventScanSubject;
use crate::testkit::fixtures::{
    account, at, deposited_event, opened_event, recorded, single_append,
};

/// The most pages a walk in these cases may take: far above what any case needs, so that a cursor
/// that never ends fails the case instead of hanging it.
const WALK_PAGES_MAX: usize = 10_000;

/// Opens `account_id` and deposits 1.00 `deposits` times, in one append (so seeding stays fast on
/// DynamoDB Local); returns the stream as appended.
async fn seed_stream(
    store: &dyn EventStore,
    account_id: &str,
    deposits: u64,
) -> Vec<RecordedEvent> {
    let mut events = vec![recorded(account_id, 1, opened_event(), at(1, 9, 0))];
    for deposit in 1..=deposits {
        let balance_after = format!("{deposit}.00");
        events.push(recorded(
            account_id,
            deposit + 1,
            deposited_event("1.00", &balance_after),
            at(1, 10, u32::try_from(deposit).expect("a small fixture")),
        ));
    }
    store
        .append(single_append(
            &format!("scan-seed-{account_id}"),
            0,
            events.clone(),
        ))
        .await
        .expect("seed a stream");
    events
}

/// Walks every page with `limit`, each cursor turned into text and back as a resumed walk would, and
/// returns the accounts in the order the pages gave them.
async fn walk(scan: &dyn EventStoreScan, limit: usize) -> Vec<AccountId> {
    let mut accounts = Vec::new();
    let mut cursor: Option<ScanCursor> = None;
    for _ in 0..WALK_PAGES_MAX {
        let page = scan
            .accounts_page(cursor.as_ref(), limit)
            .await
            .expect("a page of accounts");
        assert!(
            page.accounts.len() <= limit,
            "a page holds at most `limit` accounts: {} > {limit}",
            page.accounts.len()
        );
        accounts.extend(page.accounts);
        match page.next {
            Some(next) => cursor = Some(ScanCursor::new(next.as_str().to_owned())),
            None => return accounts,
        }
    }
    panic!("the walk did not end within {WALK_PAGES_MAX} pages");
}

/// Every event of `account_id` after `after_sequence`, read in pages of `limit`, each page checked.
async fn events_in_pages(
    scan: &dyn EventStoreScan,
    account_id: &AccountId,
    limit: usize,
) -> Vec<RecordedEvent> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    for _ in 0..WALK_PAGES_MAX {
        let after = events.last().map_or(0, |event| event.sequence);
        let page = scan
            .events_page(account_id, after, limit)
            .await
            .expect("a page of events");
        assert!(page.len() <= limit, "{} events > limit {limit}", page.len());
        let whole = page.len() < limit;
        events.extend(page);
        if whole {
            return events;
        }
    }
    panic!("the events did not end within {WALK_PAGES_MAX} pages");
}

fn sorted(accounts: &[AccountId]) -> Vec<AccountId> {
    let mut accounts = accounts.to_vec();
    accounts.sort();
    accounts
}

pub async fn an_empty_store_has_no_account(subject: EventScanSubject) {
    assert_eq!(
        walk(subject.scan.as_ref(), 3).await,
        Vec::<AccountId>::new()
    );
    let page = subject
        .scan
        .events_page(&account("acc-none"), 0, 10)
        .await
        .expect("events of an unknown account");
    assert!(page.is_empty(), "an unknown account has no events");
}

pub async fn every_account_comes_exactly_once_across_small_pages(subject: EventScanSubject) {
    let ids: Vec<String> = (0..11).map(|n| format!("acc-scan-{n:02}")).collect();
    for (index, id) in ids.iter().enumerate() {
        // Streams of different lengths: a store that lists events, not accounts, shows duplicates.
        seed_stream(subject.store.as_ref(), id, (index % 4) as u64).await;
    }
    let expected: Vec<AccountId> = ids.iter().map(|id| account(id)).collect();
    for limit in [1, 2, 5, 100] {
        let seen = walk(subject.scan.as_ref(), limit).await;
        let unique: BTreeSet<&AccountId> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "limit {limit}: an account came twice: {seen:?}"
        );
        assert_eq!(sorted(&seen), expected, "limit {limit}");
    }
}

pub async fn accounts_with_many_events_come_once(subject: EventScanSubject) {
    seed_stream(subject.store.as_ref(), "acc-long-a", 60).await;
    seed_stream(subject.store.as_ref(), "acc-short", 0).await;
    seed_stream(subject.store.as_ref(), "acc-long-b", 45).await;
    let seen = walk(subject.scan.as_ref(), 3).await;
    assert_eq!(
        sorted(&seen),
        vec![
            account("acc-long-a"),
            account("acc-long-b"),
            account("acc-short")
        ]
    );
}

pub async fn a_cursor_resumes_a_walk_from_its_text(subject: EventScanSubject) {
    let ids: Vec<String> = (0..6).map(|n| format!("acc-resume-{n}")).collect();
    for id in &ids {
        seed_stream(subject.store.as_ref(), id, 2).await;
    }
    // The first walk stops after its first page that named an account, as an interrupted rebuild
    // would, and keeps only the cursor's text.
    let mut before = Vec::new();
    let mut stored_text = None;
    let mut cursor: Option<ScanCursor> = None;
    for _ in 0..WALK_PAGES_MAX {
        let page = subject
            .scan
            .accounts_page(cursor.as_ref(), 2)
            .await
            .expect("a page");
        before.extend(page.accounts);
        let Some(next) = page.next else { break };
        if !before.is_empty() {
            stored_text = Some(next.as_str().to_owned());
            break;
        }
        cursor = Some(next);
    }
    let stored_text = stored_text.expect("six accounts in pages of two need more than one page");
    // A second walk, in a new "process", starts from the text alone.
    let mut after = Vec::new();
    let mut cursor = Some(ScanCursor::new(stored_text));
    for _ in 0..WALK_PAGES_MAX {
        let page = subject
            .scan
            .accounts_page(cursor.as_ref(), 2)
            .await
            .expect("a resumed page");
        after.extend(page.accounts);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut all = before.clone();
    all.extend(after.iter().cloned());
    let unique: BTreeSet<&AccountId> = all.iter().collect();
    assert_eq!(
        unique.len(),
        all.len(),
        "resuming repeated an account: {before:?} then {after:?}"
    );
    assert_eq!(
        sorted(&all),
        ids.iter().map(|id| account(id)).collect::<Vec<_>>()
    );
}

pub async fn events_pages_are_bounded_ordered_and_whole(subject: EventScanSubject) {
    let appended = seed_stream(subject.store.as_ref(), "acc-paged", 24).await;
    seed_stream(subject.store.as_ref(), "acc-other", 3).await;
    let id = account("acc-paged");
    for limit in [1, 4, 5, 25, 1_000] {
        assert_eq!(
            events_in_pages(subject.scan.as_ref(), &id, limit).await,
            appended,
            "pages of {limit} put together are the stream"
        );
    }
    let tail = subject
        .scan
        .events_page(&id, 20, 100)
        .await
        .expect("the tail");
    assert_eq!(
        tail,
        appended[20..].to_vec(),
        "after a sequence: only the events above it"
    );
    let page = subject
        .scan
        .events_page(&id, 3, 4)
        .await
        .expect("a middle page");
    assert_eq!(
        page.iter().map(|event| event.sequence).collect::<Vec<_>>(),
        vec![4, 5, 6, 7]
    );
    assert!(
        subject
            .scan
            .events_page(&id, 25, 10)
            .await
            .expect("past the end")
            .is_empty(),
        "nothing after the last event"
    );
}
