//! Unknown outcomes on DynamoDB Local, for real: the transaction reaches DynamoDB and commits, and its
//! answer is lost on the way back (an interceptor fails the response after it was received). The
//! command service must then learn the outcome from the idempotency record — never decide afresh, and
//! never say that nothing was written.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsOutput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
};
use ledger_application::ports::{EventStore, SystemClock, UuidV7Ids};
use ledger_application::{
    CommandContext, CommandError, CommandOutcome, CommandRequest, CommandService, IdempotencyKey,
    RetryPolicy,
};
use ledger_domain::{AccountId, AccountKind, Amount, Currency, OwnerName};
use ledger_dynamodb::config::dynamodb_config_builder;
use ledger_dynamodb::{DynamoEventStore, DynamoSettings};

/// Faults switched on and off by the test: losing the answers of committed transactions, and failing
/// reads of single items (the idempotency record) before they are sent.
#[derive(Debug, Clone, Default)]
struct Faults {
    lose_transaction_answers: Arc<AtomicBool>,
    fail_item_reads: Arc<AtomicBool>,
    answers_lost: Arc<AtomicUsize>,
}

impl Faults {
    fn strike(&self, lose_transaction_answers: bool, fail_item_reads: bool) {
        self.lose_transaction_answers
            .store(lose_transaction_answers, Ordering::SeqCst);
        self.fail_item_reads
            .store(fail_item_reads, Ordering::SeqCst);
    }
}

impl Intercept for Faults {
    fn name(&self) -> &'static str {
        "Faults"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let is_item_read = context.input().downcast_ref::<GetItemInput>().is_some();
        if is_item_read && self.fail_item_reads.load(Ordering::SeqCst) {
            return Err("injected: GetItem refused before sending".into());
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let committed = context
            .output_or_error()
            .is_ok_and(|output| output.downcast_ref::<TransactWriteItemsOutput>().is_some());
        if committed && self.lose_transaction_answers.load(Ordering::SeqCst) {
            self.answers_lost.fetch_add(1, Ordering::SeqCst);
            return Err("injected: the answer of a committed transaction was lost".into());
        }
        Ok(())
    }
}

struct World {
    service: CommandService,
    store: Arc<DynamoEventStore>,
    faults: Faults,
    _tables: common::DropTables,
}

async fn world() -> World {
    common::require_dynamodb_local();
    let faults = Faults::default();
    let client = Client::from_conf(
        dynamodb_config_builder()
            .await
            .interceptor(faults.clone())
            .build(),
    );
    let (tables, guard) = common::guarded_tables(&client).await;
    let store = Arc::new(DynamoEventStore::new(
        client,
        DynamoSettings::with_tables(tables),
    ));
    let service = CommandService::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(UuidV7Ids),
        RetryPolicy::default(),
    );
    World {
        service,
        store,
        faults,
        _tables: guard,
    }
}

fn context(key: &str) -> CommandContext {
    CommandContext {
        caller: ledger_application::Caller::anonymous(),
        idempotency_key: IdempotencyKey::parse(key).expect("key"),
        correlation_id: format!("corr-{key}"),
        traceparent: None,
    }
}

fn account() -> AccountId {
    AccountId::parse("acc-unknown").expect("id")
}

fn money(request: &str) -> Amount {
    Amount::parse(request).expect("amount")
}

/// Opens the account and deposits 100.00, with no faults.
async fn open_with_100(world: &World) {
    let open = CommandRequest::OpenAccount {
        account_id: Some(account()),
        owner: OwnerName::parse("Ada").expect("owner"),
        kind: AccountKind::Checking,
        currency: Currency::parse("USD").expect("USD"),
        overdraft_limit: None,
    };
    world
        .service
        .execute(&context("open"), &open)
        .await
        .expect("open");
    let deposit = CommandRequest::Deposit {
        account_id: account(),
        amount: money("100.00"),
        description: None,
    };
    world
        .service
        .execute(&context("deposit"), &deposit)
        .await
        .expect("deposit");
}

fn withdraw_80() -> CommandRequest {
    CommandRequest::Withdraw {
        account_id: account(),
        amount: money("80.00"),
        description: None,
    }
}

fn balance_after(outcome: &CommandOutcome) -> String {
    let CommandOutcome::MoneyPosted { event } = outcome else {
        panic!("a withdrawal posts money: {outcome:?}");
    };
    event.balance_after.expect("a movement").to_string()
}

async fn event_count(world: &World) -> usize {
    world.store.load(&account(), 0).await.expect("load").len()
}

/// A withdrawal that fits only once commits, and its answer is lost: deciding again would refuse it
/// for lack of funds; the record says it succeeded, and that is the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_append_whose_answer_was_lost_is_answered_from_its_record() {
    let world = world().await;
    open_with_100(&world).await;
    world.faults.strike(true, false);
    let outcome = world
        .service
        .execute(&context("withdraw"), &withdraw_80())
        .await
        .expect("the record resolves the unknown outcome");
    world.faults.strike(false, false);
    assert!(
        world.faults.answers_lost.load(Ordering::SeqCst) >= 1,
        "the fault must have struck"
    );
    assert_eq!(balance_after(&outcome), "20.00");
    assert_eq!(event_count(&world).await, 3, "exactly one withdrawal");
}

/// The answer is lost and the record cannot be read either: the client hears that the outcome is
/// unknown, and a retry with the same key later gets the original result, with nothing written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_outcome_that_cannot_be_resolved_is_said_and_a_retry_learns_it() {
    let world = world().await;
    open_with_100(&world).await;
    world.faults.strike(true, true);
    let error = world
        .service
        .execute(&context("withdraw"), &withdraw_80())
        .await
        .expect_err("nothing can tell");
    assert!(
        matches!(error, CommandError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    world.faults.strike(false, false);
    assert_eq!(event_count(&world).await, 3, "it had committed");
    let retried = world
        .service
        .execute(&context("withdraw"), &withdraw_80())
        .await
        .expect("the retry answers from the record");
    assert_eq!(balance_after(&retried), "20.00");
    assert_eq!(event_count(&world).await, 3, "and wrote nothing more");
}
