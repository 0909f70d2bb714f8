//! The end-of-run checks: every promise the ledger makes, checked against the event store itself,
//! the read model and the journal of what every client was told.

use std::collections::{BTreeMap, BTreeSet};

use ledger_application::ports::{
    EventFeed, EventStore, FeedEvent, Projection, ProjectionCheckpoints, ReadModelChange,
    ReadModelQuery, ReadModelUpdate, TransactionView,
};
use ledger_application::{
    Caller, CommandOutcome, CommandRequest, EventId, IdempotencyKey, PostedEvent, RecordedEvent,
    RecordedOutcome, ScopedIdempotencyKey,
};
use ledger_domain::{Account, AccountEvent, AccountId, Amount, EntryType};
use rust_decimal::Decimal;

use super::world::{Answer, PROJECTOR_NAME, SentRequest, World};

/// A broken promise, with what to look for in the trace (a key or an account id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub subject: String,
    pub message: String,
}

impl Violation {
    fn new(subject: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            message: message.into(),
        }
    }
}

/// Every event in the store, in commit order, read page by page from the store's own feed.
pub async fn all_events(world: &World) -> Vec<RecordedEvent> {
    const PAGE: usize = 1_000;
    let mut events = Vec::new();
    let mut after = 0;
    // Bounded: a page is never empty before the end, so this ends after len / PAGE + 1 pages.
    loop {
        let page = world
            .raw_store
            .read_after(after, PAGE)
            .await
            .expect("the in-memory feed never fails");
        let Some(last) = page.last() else {
            return events;
        };
        after = last.position;
        // The in-memory feed stores typed events: every entry decodes.
        events.extend(page.iter().filter_map(FeedEvent::event).cloned());
    }
}

/// The events grouped by stream, in commit order.
pub fn streams(events: &[RecordedEvent]) -> BTreeMap<AccountId, Vec<RecordedEvent>> {
    let mut streams: BTreeMap<AccountId, Vec<RecordedEvent>> = BTreeMap::new();
    for event in events {
        streams
            .entry(event.account_id.clone())
            .or_default()
            .push(event.clone());
    }
    streams
}

/// Runs every check; an empty list means the run kept every promise.
pub async fn check(world: &World) -> Vec<Violation> {
    let events = all_events(world).await;
    let streams = streams(&events);
    let mut violations = Vec::new();
    let folds = check_streams(world, &streams, &mut violations).await;
    check_read_model(world, &streams, &folds, &mut violations).await;
    check_idempotency(world, &events, &mut violations).await;
    check_money(world, &folds, &mut violations);
    check_observations(world, &streams, &mut violations);
    check_projector(world, events.len(), &mut violations).await;
    violations
}

/// Every stream runs 1..n without a hole, time never runs backwards in it, the store's load agrees
/// with its feed, and the aggregate accepts the history. Returns each account's fold.
async fn check_streams(
    world: &World,
    streams: &BTreeMap<AccountId, Vec<RecordedEvent>>,
    violations: &mut Vec<Violation>,
) -> BTreeMap<AccountId, Account> {
    let mut folds = BTreeMap::new();
    for (account_id, stream) in streams {
        let sequences: Vec<u64> = stream.iter().map(|event| event.sequence).collect();
        let expected: Vec<u64> = (1..=stream.len() as u64).collect();
        if sequences != expected {
            violations.push(Violation::new(
                account_id.as_str(),
                format!(
                    "stream {account_id} has sequences {sequences:?}, not 1..={}",
                    stream.len()
                ),
            ));
        }
        for pair in stream.windows(2) {
            if pair[1].recorded_at() < pair[0].recorded_at() {
                violations.push(Violation::new(
                    account_id.as_str(),
                    format!(
                        "stream {account_id}: event {} was recorded at {}, before event {} at {}",
                        pair[1].sequence,
                        pair[1].recorded_at(),
                        pair[0].sequence,
                        pair[0].recorded_at()
                    ),
                ));
            }
        }
        let loaded = world
            .raw_store
            .load(account_id, 0)
            .await
            .expect("the in-memory store never fails");
        if &loaded != stream {
            violations.push(Violation::new(
                account_id.as_str(),
                format!("stream {account_id}: load returns other events than the feed holds"),
            ));
        }
        match Account::replay(account_id, stream.iter().map(|event| &event.event)) {
            Ok(Some(account)) => {
                folds.insert(account_id.clone(), account);
            }
            Ok(None) => {}
            Err(error) => violations.push(Violation::new(
                account_id.as_str(),
                format!("stream {account_id} is a history the aggregate refuses: {error}"),
            )),
        }
    }
    folds
}

/// The movement rows the read model must hold for a stream, in sequence order.
fn expected_transactions(stream: &[RecordedEvent]) -> Vec<TransactionView> {
    stream
        .iter()
        .filter_map(|event| match ReadModelUpdate::from_event(event).change {
            ReadModelChange::Moved(row) => Some(row),
            ReadModelChange::Opened { .. } | ReadModelChange::StatusChanged { .. } => None,
        })
        .collect()
}

/// The read model equals the fold of the event store, account by account.
async fn check_read_model(
    world: &World,
    streams: &BTreeMap<AccountId, Vec<RecordedEvent>>,
    folds: &BTreeMap<AccountId, Account>,
    violations: &mut Vec<Violation>,
) {
    for (account_id, fold) in folds {
        let subject = account_id.as_str();
        let Some(view) = world
            .read_model
            .account(account_id)
            .await
            .expect("the in-memory read model never fails")
        else {
            violations.push(Violation::new(
                subject,
                format!("account {account_id} is in the event store but not in the read model"),
            ));
            continue;
        };
        let (expected, actual) = (
            (
                fold.version(),
                fold.balance(),
                fold.status(),
                fold.currency(),
                fold.overdraft_limit(),
                fold.owner().clone(),
                fold.kind(),
            ),
            (
                view.last_sequence,
                view.balance,
                view.status,
                view.currency,
                view.overdraft_limit,
                view.owner.clone(),
                view.kind,
            ),
        );
        if expected != actual {
            violations.push(Violation::new(
                subject,
                format!(
                    "account {account_id}: the read model shows {actual:?}, the event store folds to {expected:?}"
                ),
            ));
        }
        let rows = world
            .read_model
            .transactions(account_id, 0, usize::MAX)
            .await
            .expect("the in-memory read model never fails");
        let expected_rows = expected_transactions(&streams[account_id]);
        if rows != expected_rows {
            violations.push(Violation::new(
                subject,
                format!(
                    "account {account_id}: the read model lists {} movements, the event store {} (or they differ)",
                    rows.len(),
                    expected_rows.len()
                ),
            ));
        }
    }
}

/// Where an outcome says its events landed.
fn posted(outcome: &CommandOutcome) -> Vec<&PostedEvent> {
    match outcome {
        CommandOutcome::AccountOpened { event }
        | CommandOutcome::MoneyPosted { event }
        | CommandOutcome::StatusChanged { event, .. } => vec![event],
        CommandOutcome::Transferred { source, target, .. } => vec![source, target],
    }
}

/// Whether `event` moved `amount` on `account_id` as an entry of `entry_type`.
fn moves(
    event: &RecordedEvent,
    account_id: &AccountId,
    entry_type: EntryType,
    amount: Amount,
) -> bool {
    event.account_id == *account_id
        && event
            .event
            .movement()
            .is_some_and(|m| m.entry_type == entry_type && m.amount == amount)
}

/// Whether `events` are what `request` asks for: the right kind, on the right accounts, with the
/// right amounts.
fn events_carry_out(request: &CommandRequest, events: &[&RecordedEvent]) -> bool {
    let status_change = |event: &RecordedEvent, account_id: &AccountId| {
        let expected = match request {
            CommandRequest::Freeze { .. } => matches!(event.event, AccountEvent::AccountFrozen(_)),
            CommandRequest::Unfreeze { .. } => {
                matches!(event.event, AccountEvent::AccountUnfrozen(_))
            }
            _ => matches!(event.event, AccountEvent::AccountClosed(_)),
        };
        expected && event.account_id == *account_id
    };
    match (request, events) {
        (CommandRequest::OpenAccount { account_id, .. }, [event]) => {
            matches!(event.event, AccountEvent::AccountOpened(_))
                && account_id.as_ref().is_none_or(|id| event.account_id == *id)
        }
        (
            CommandRequest::Deposit {
                account_id, amount, ..
            },
            [event],
        ) => moves(event, account_id, EntryType::Deposit, *amount),
        (
            CommandRequest::Withdraw {
                account_id, amount, ..
            },
            [event],
        ) => moves(event, account_id, EntryType::Withdrawal, *amount),
        (
            CommandRequest::Transfer {
                source_account_id,
                target_account_id,
                amount,
                ..
            },
            [first, second],
        ) => {
            let pair = [*first, *second];
            pair.iter()
                .any(|e| moves(e, source_account_id, EntryType::TransferOut, *amount))
                && pair
                    .iter()
                    .any(|e| moves(e, target_account_id, EntryType::TransferIn, *amount))
        }
        (
            CommandRequest::Freeze { account_id, .. }
            | CommandRequest::Unfreeze { account_id }
            | CommandRequest::Close { account_id },
            [event],
        ) => status_change(event, account_id),
        _ => false,
    }
}

/// The distinct definitive answers of one request, in the order they were first given.
fn definitive_answers(sent: &SentRequest) -> Vec<&Answer> {
    let mut distinct: Vec<&Answer> = Vec::new();
    for answer in sent.answers.iter().filter(|answer| answer.is_definitive()) {
        if !distinct.contains(&answer) {
            distinct.push(answer);
        }
    }
    distinct
}

/// Each key had exactly one effect, the one its answer reports; every definitive answer under it
/// was the same; a different request under a used key was refused; no acknowledged write is missing.
async fn check_idempotency(
    world: &World,
    events: &[RecordedEvent],
    violations: &mut Vec<Violation>,
) {
    let mut events_by_key: BTreeMap<&str, Vec<&RecordedEvent>> = BTreeMap::new();
    for event in events {
        events_by_key
            .entry(event.metadata.client_request_id.as_str())
            .or_default()
            .push(event);
    }
    let journal = world
        .journal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .keys
        .clone();
    for (key, requests) in &journal {
        let written = events_by_key.remove(key.as_str()).unwrap_or_default();
        let mut carried_out: Option<(&SentRequest, &CommandOutcome)> = None;
        for sent in requests {
            let answers = definitive_answers(sent);
            match answers.as_slice() {
                [] => violations.push(Violation::new(
                    key,
                    format!(
                        "key {key}: {:?} never got a definitive answer",
                        sent.request
                    ),
                )),
                [_] => {}
                several => violations.push(Violation::new(
                    key,
                    format!("key {key}: one request got different answers: {several:?}"),
                )),
            }
            for answer in &answers {
                match answer {
                    Answer::Done(outcome) if sent.reuses_key => violations.push(Violation::new(
                        key,
                        format!("key {key}: a different request under the used key was carried out: {outcome:?}"),
                    )),
                    Answer::Done(outcome) => carried_out = Some((sent, outcome)),
                    Answer::Broken(error) => violations.push(Violation::new(
                        key,
                        format!("key {key}: broken answer: {error}"),
                    )),
                    Answer::Rejected(rejection) if !sent.reuses_key => {
                        // A rejection is an outcome too: recorded, so every retry gets it again.
                        let recorded = RecordedOutcome::Rejected {
                            rejected: rejection.clone(),
                        };
                        check_recorded(world, key, &recorded, violations).await;
                    }
                    Answer::Rejected(_) | Answer::KeyReused => {}
                    Answer::ConcurrencyConflict
                    | Answer::StoreUnavailable
                    | Answer::OutcomeUnknown
                    | Answer::Cancelled => {
                        unreachable!("only definitive answers are listed")
                    }
                }
            }
        }
        match carried_out {
            Some((sent, outcome)) => {
                check_carried_out(world, key, sent, outcome, &written, violations).await;
            }
            None if !written.is_empty() => violations.push(Violation::new(
                key,
                format!(
                    "key {key}: the client was never told of success, yet it wrote {} event(s): {:?}",
                    written.len(),
                    written.iter().map(|e| (e.account_id.as_str(), e.sequence)).collect::<Vec<_>>()
                ),
            )),
            None => {}
        }
    }
    for (key, written) in events_by_key {
        violations.push(Violation::new(
            key,
            format!(
                "{} event(s) under key {key}, which no client sent",
                written.len()
            ),
        ));
    }
}

/// The events under an acknowledged key are exactly those its outcome reported, they carry out its
/// request, and the stored record holds the same outcome.
async fn check_carried_out(
    world: &World,
    key: &str,
    sent: &SentRequest,
    outcome: &CommandOutcome,
    written: &[&RecordedEvent],
    violations: &mut Vec<Violation>,
) {
    let reported: BTreeSet<(&str, u64, EventId)> = posted(outcome)
        .into_iter()
        .map(|p| (p.account_id.as_str(), p.sequence, p.event_id))
        .collect();
    let stored: BTreeSet<(&str, u64, EventId)> = written
        .iter()
        .map(|e| (e.account_id.as_str(), e.sequence, e.event_id))
        .collect();
    if reported != stored || stored.len() != written.len() {
        violations.push(Violation::new(
            key,
            format!("key {key}: the answer reported {reported:?}, the store holds {stored:?}"),
        ));
        return;
    }
    if !events_carry_out(&sent.request, written) {
        violations.push(Violation::new(
            key,
            format!(
                "key {key}: the stored events do not carry out {:?}",
                sent.request
            ),
        ));
    }
    let balances_match = posted(outcome).into_iter().all(|p| {
        written.iter().any(|e| {
            e.account_id == p.account_id
                && e.sequence == p.sequence
                && e.event.movement().map(|m| m.balance_after) == p.balance_after
        })
    });
    if !balances_match {
        violations.push(Violation::new(
            key,
            format!("key {key}: the answer's balance_after differs from the stored event's"),
        ));
    }
    let recorded = RecordedOutcome::Accepted(outcome.clone());
    check_recorded(world, key, &recorded, violations).await;
}

/// The record under `key` holds what its client was told.
async fn check_recorded(
    world: &World,
    key: &str,
    told: &RecordedOutcome,
    violations: &mut Vec<Violation>,
) {
    let idempotency_key = ScopedIdempotencyKey::new(
        &Caller::anonymous(),
        &IdempotencyKey::parse(key).expect("a journal key"),
    );
    let record = world
        .raw_store
        .idempotency_record(&idempotency_key)
        .await
        .expect("the in-memory store never fails");
    if record.as_ref().map(|r| &r.outcome) != Some(told) {
        violations.push(Violation::new(
            key,
            format!("key {key}: the stored record holds {record:?}, the client was told {told:?}"),
        ));
    }
}

/// Money is conserved: the balances the store folds to add up, per currency, to the deposits minus
/// the withdrawals that clients were told succeeded; transfers move money without making any.
fn check_money(
    world: &World,
    folds: &BTreeMap<AccountId, Account>,
    violations: &mut Vec<Violation>,
) {
    let mut held: BTreeMap<String, Decimal> = BTreeMap::new();
    for account in folds.values() {
        *held
            .entry(account.currency().code().to_owned())
            .or_default() += account.balance().value();
    }
    let mut acknowledged: BTreeMap<String, Decimal> = BTreeMap::new();
    let journal = world
        .journal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .keys
        .clone();
    for requests in journal.values() {
        for sent in requests {
            if !sent.answers.iter().any(|a| matches!(a, Answer::Done(_))) {
                continue;
            }
            let (account_id, signed) = match &sent.request {
                CommandRequest::Deposit {
                    account_id, amount, ..
                } => (account_id, amount.value()),
                CommandRequest::Withdraw {
                    account_id, amount, ..
                } => (account_id, -amount.value()),
                _ => continue,
            };
            let currency = folds
                .get(account_id)
                .map_or_else(|| "unknown".to_owned(), |a| a.currency().code().to_owned());
            *acknowledged.entry(currency).or_default() += signed;
        }
    }
    held.retain(|_, total| !total.is_zero());
    acknowledged.retain(|_, total| !total.is_zero());
    if held != acknowledged {
        violations.push(Violation::new(
            "money",
            format!(
                "money is not conserved: accounts hold {held:?}, acknowledged deposits minus withdrawals are {acknowledged:?}"
            ),
        ));
    }
}

/// Whatever a query showed was the state after some prefix of the account's history.
fn check_observations(
    world: &World,
    streams: &BTreeMap<AccountId, Vec<RecordedEvent>>,
    violations: &mut Vec<Violation>,
) {
    let observations = world
        .observations
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for view in &observations.accounts {
        let account_id = &view.account_id;
        let prefix = streams
            .get(account_id)
            .map(|stream| {
                let end = usize::try_from(view.last_sequence)
                    .unwrap_or(usize::MAX)
                    .min(stream.len());
                &stream[..end]
            })
            .unwrap_or_default();
        let fold = Account::replay(account_id, prefix.iter().map(|e| &e.event))
            .ok()
            .flatten();
        let consistent = fold.is_some_and(|account| {
            account.version() == view.last_sequence
                && account.balance() == view.balance
                && account.status() == view.status
        });
        if !consistent {
            violations.push(Violation::new(
                account_id.as_str(),
                format!(
                    "a query showed {account_id} at sequence {} with balance {} and status {:?}, which no prefix of its history gives",
                    view.last_sequence, view.balance, view.status
                ),
            ));
        }
    }
    for (account_id, row) in &observations.transactions {
        let expected = streams.get(account_id).and_then(|stream| {
            let index = usize::try_from(row.sequence).ok()?.checked_sub(1)?;
            expected_transactions(stream.get(index..=index)?)
                .into_iter()
                .next()
        });
        if expected.as_ref() != Some(row) {
            violations.push(Violation::new(
                account_id.as_str(),
                format!(
                    "a query listed movement {} of {account_id} as {row:?}, the event store holds {expected:?}",
                    row.sequence
                ),
            ));
        }
    }
}

/// Nothing was dead-lettered (no event in a simulation is poison, and no account's order was
/// broken), and the projector stored a checkpoint at the end of the feed when it stopped.
async fn check_projector(world: &World, event_count: usize, violations: &mut Vec<Violation>) {
    let letters = world
        .read_model
        .dead_letters(10)
        .await
        .expect("the in-memory read model never fails");
    for stored in letters {
        let letter = stored.letter;
        let account = letter
            .account_id
            .as_ref()
            .map_or("an unknown account", AccountId::as_str);
        violations.push(Violation::new(
            account,
            format!(
                "event {account}/{:?} was dead-lettered: {}",
                letter.sequence, letter.reason
            ),
        ));
    }
    let checkpoint = world
        .checkpoints
        .feed_checkpoint(PROJECTOR_NAME)
        .await
        .expect("the in-memory checkpoints never fail");
    if event_count > 0 && checkpoint != Some(event_count as u64) {
        violations.push(Violation::new(
            "projector",
            format!(
                "the projector stopped with checkpoint {checkpoint:?}, not at the feed's end {event_count}"
            ),
        ));
    }
}
