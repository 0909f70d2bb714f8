//! Two command services on one event store, each with a state cache of its own (two `ledger-api`
//! processes): whatever one instance's cache misses of the other's writes, money is never lost or
//! created, an overdraft never happens, and a rejection is recorded only if the current state
//! rejects it.

use std::sync::Arc;

use ledger_domain::{Account, AccountId, Amount, Balance, DomainError};

use crate::command_service::{
    CommandContext, CommandError, CommandRequest, CommandService, RetryPolicy,
};
use crate::idempotency::{CommandOutcome, IdempotencyKey, PostedEvent, RecordedOutcome};
use crate::ports::{EventStore, SystemClock, UuidV7Ids};
use crate::testkit::EventStoreSubject;
use crate::testkit::fixtures::{
    deposit_request as deposit, open_request as open, withdraw_request as withdraw,
};

/// Rounds of the withdrawal race: each on an account of its own, for varied interleavings.
const RACE_ROUNDS: u32 = 12;

fn instance(store: &Arc<dyn EventStore>) -> CommandService {
    CommandService::new(
        Arc::clone(store),
        Arc::new(SystemClock),
        Arc::new(UuidV7Ids),
        RetryPolicy::default(),
    )
}

fn id(text: &str) -> AccountId {
    AccountId::parse(text).expect("id")
}

fn money(text: &str) -> Amount {
    Amount::parse(text).expect("amount")
}

fn context(key: &str) -> CommandContext {
    CommandContext {
        caller: crate::Caller::anonymous(),
        idempotency_key: IdempotencyKey::parse(key).expect("key"),
        correlation_id: format!("corr-{key}"),
        traceparent: None,
    }
}

/// The account as its stored events say, read past every cache.
async fn stored_account(store: &dyn EventStore, account: &str) -> Account {
    let events = store.load(&id(account), 0).await.expect("load");
    Account::replay(&id(account), events.iter().map(|recorded| &recorded.event))
        .expect("a valid history")
        .expect("opened")
}

fn balance_after(outcome: &CommandOutcome) -> Balance {
    match outcome {
        CommandOutcome::MoneyPosted {
            event:
                PostedEvent {
                    balance_after: Some(balance),
                    ..
                },
        } => *balance,
        other => panic!("expected a money movement, got {other:?}"),
    }
}

/// Both instances hold the account in their caches, one of them stale; then each withdraws 80.00 of
/// 110.00 and deposits 5.00, all at once. Exactly one withdrawal succeeds, the other is refused for
/// insufficient funds, and the stored balance is what the successful commands add up to.
pub async fn a_withdrawal_that_fits_once_succeeds_once_across_two_instances(
    subject: EventStoreSubject,
) {
    let first = Arc::new(instance(&subject.store));
    let second = Arc::new(instance(&subject.store));
    for round in 0..RACE_ROUNDS {
        let account = format!("acc-race-{round}");
        let key = |what: &str| context(&format!("{what}-{round}"));
        first
            .execute(&key("open"), &open(&account))
            .await
            .expect("opened");
        first
            .execute(&key("seed"), &deposit(&account, "100.00"))
            .await
            .expect("deposited");
        // The second instance loads and caches the account; the first's cache is now one behind.
        second
            .execute(&key("top-up"), &deposit(&account, "10.00"))
            .await
            .expect("deposited");

        // Four tasks at once, on the runtime's worker threads: two per instance.
        let spawn = |service: &Arc<CommandService>, what: &str, request: CommandRequest| {
            let service = Arc::clone(service);
            let context = key(what);
            tokio::spawn(async move { service.execute(&context, &request).await })
        };
        let tasks = [
            spawn(&first, "withdraw-1", withdraw(&account, "80.00")),
            spawn(&second, "withdraw-2", withdraw(&account, "80.00")),
            spawn(&first, "deposit-1", deposit(&account, "5.00")),
            spawn(&second, "deposit-2", deposit(&account, "5.00")),
        ];
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await.expect("the command task"));
        }
        let [
            first_withdrawal,
            second_withdrawal,
            first_deposit,
            second_deposit,
        ]: [_; 4] = results.try_into().expect("four results");
        first_deposit.expect("a deposit always fits");
        second_deposit.expect("a deposit always fits");
        let withdrawals = [first_withdrawal, second_withdrawal];
        let succeeded = withdrawals.iter().filter(|result| result.is_ok()).count();
        assert_eq!(succeeded, 1, "round {round}: {withdrawals:?}");
        assert!(
            withdrawals.iter().any(|result| matches!(
                result,
                Err(CommandError::Rejected(
                    DomainError::InsufficientFunds { .. }
                ))
            )),
            "round {round}: the other is refused for insufficient funds: {withdrawals:?}"
        );
        let stored = stored_account(subject.store.as_ref(), &account).await;
        assert_eq!(
            stored.balance(),
            Balance::parse("40.00").expect("balance"),
            "round {round}: 100 + 10 - 80 + 5 + 5"
        );
        assert_eq!(
            stored.version(),
            6,
            "round {round}: open, 3 deposits + 2, 1 withdrawal"
        );
    }
}

/// The first instance caches the account at balance 0; the second deposits 100.00. A withdrawal of
/// 50.00 through the first would be refused by its cache, but the store's state accepts it: it
/// succeeds, and no rejection is recorded under its key.
pub async fn a_stale_cache_never_records_a_rejection_the_current_state_accepts(
    subject: EventStoreSubject,
) {
    let first = instance(&subject.store);
    let second = instance(&subject.store);
    first
        .execute(&context("open"), &open("acc-stale"))
        .await
        .expect("opened");
    second
        .execute(&context("deposit"), &deposit("acc-stale", "100.00"))
        .await
        .expect("deposited");

    let withdrawal = withdraw("acc-stale", "50.00");
    let outcome = first
        .execute(&context("withdraw"), &withdrawal)
        .await
        .expect("the current state holds 100.00");
    assert_eq!(
        balance_after(&outcome),
        Balance::parse("50.00").expect("balance")
    );
    let record = subject
        .store
        .idempotency_record(&IdempotencyKey::parse("withdraw").expect("key"))
        .await
        .expect("read")
        .expect("recorded");
    assert!(
        matches!(record.outcome, RecordedOutcome::Accepted(_)),
        "{:?}",
        record.outcome
    );

    // And a transfer out of an account whose balance only the other instance knows about.
    second
        .execute(&context("open-target"), &open("acc-target"))
        .await
        .expect("opened");
    second
        .execute(&context("deposit-2"), &deposit("acc-stale", "25.00"))
        .await
        .expect("deposited");
    let transfer = CommandRequest::Transfer {
        source_account_id: id("acc-stale"),
        target_account_id: id("acc-target"),
        amount: money("75.00"),
        description: None,
    };
    first
        .execute(&context("transfer"), &transfer)
        .await
        .expect("the current state holds 75.00");
    let stored = stored_account(subject.store.as_ref(), "acc-stale").await;
    assert!(stored.balance().is_zero(), "{stored:?}");
}

/// The second instance has never seen an account the first opened: opening it again is refused as
/// already existing (and writes no event), though the second assumed it missing without reading.
pub async fn opening_an_account_another_instance_opened_is_refused(subject: EventStoreSubject) {
    let first = instance(&subject.store);
    let second = instance(&subject.store);
    first
        .execute(&context("open-1"), &open("acc-twice"))
        .await
        .expect("opened");
    let again = second.execute(&context("open-2"), &open("acc-twice")).await;
    assert!(
        matches!(
            again,
            Err(CommandError::Rejected(
                DomainError::AccountAlreadyExists { .. }
            ))
        ),
        "{again:?}"
    );
    assert_eq!(
        stored_account(subject.store.as_ref(), "acc-twice")
            .await
            .version(),
        1
    );
}
