//! End to end on the AWS-shaped stack, every part its own process: two `ledger-api` processes on the
//! same DynamoDB Local tables, one `ledger-projector`, one fresh PostgreSQL read model. Commands
//! through one API are read through the other; 300 concurrent transfers among a handful of accounts,
//! split between the two APIs, run while the projector is killed with SIGKILL and started again; money
//! is conserved in the event store and in the read model, which holds one row per movement.
//!
//! It lives in `bootstrap/tests`, not `tests/tests`: cargo hands the paths of freshly built binaries
//! (`CARGO_BIN_EXE_*`) only to the tests of their own package.

mod aws_stack;
mod support;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use aws_stack::{ApiProcess, Stack};
use ledger_application::ports::EventStore;
use ledger_domain::{Account, AccountId};
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::Row;
use support::run;

const ACCOUNTS: [&str; 8] = [
    "aws-1", "aws-2", "aws-3", "aws-4", "aws-5", "aws-6", "aws-7", "aws-8",
];
const OPENING_DEPOSIT: &str = "1000.00";
const TRANSFERS: usize = 300;
/// After how many answered transfers the projector is killed: load is still flowing then.
const KILL_AFTER: usize = 100;
/// Attempts per transfer under one idempotency key: a hot account across two processes may answer
/// `409 concurrency_conflict` after the service's own retries; the client tries again, same key, a
/// few times, then leaves it refused (nothing written, which conservation must also survive).
const ATTEMPTS_PER_TRANSFER: usize = 3;
const CONVERGE_WITHIN: Duration = Duration::from_secs(30);
/// Requests on the wire at once, across both APIs. All 300 transfers are issued together, but a
/// queue of hundreds at two debug-built processes on two shared cores only measures waiting: past
/// a point requests outlive any client timeout, and an abandoned request may still commit after the
/// store was folded.
const IN_FLIGHT_MAX: usize = 24;
/// The most the load may take to reach `KILL_AFTER` answers.
const LOAD_WITHIN: Duration = Duration::from_mins(1);

/// Adds one to its counter when dropped: when the task holding it ends, however it ends.
struct CountOnDrop(Arc<AtomicUsize>);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apis_one_projector_killed_mid_stream_conserve_money_in_store_and_read_model() {
    let stack = Stack::create("aws_shaped").await;
    let writer = Arc::new(stack.spawn_api("ledger-api A"));
    let reader = Arc::new(stack.spawn_api("ledger-api B"));
    let mut projector = stack.spawn_projector("ledger-projector");
    projector.wait_for_line("projector lease acquired", Duration::from_secs(30));

    // Commands through one API, queries through the other.
    for account in ACCOUNTS {
        writer.open(account).await;
        let sequence = writer.deposit(account, OPENING_DEPOSIT).await;
        let view = reader.account_at(account, sequence, CONVERGE_WITHIN).await;
        assert_eq!(view["balance"], OPENING_DEPOSIT, "{view}");
    }

    // 300 transfers at once, alternately through each API, among eight accounts so they contend.
    let answered = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let load_started = Instant::now();
    let transfers: Vec<_> = (0..TRANSFERS)
        .map(|index| {
            let api = Arc::clone(if index % 2 == 0 { &writer } else { &reader });
            let answered = Arc::clone(&answered);
            let in_flight = Arc::clone(&in_flight);
            tokio::spawn(async move {
                // Counted also when the transfer panics, so that the wait below cannot hang on it.
                let _answered = CountOnDrop(answered);
                let _permit = in_flight.acquire_owned().await.expect("never closed");
                transfer(&api, index).await
            })
        })
        .collect();

    // SIGKILL mid-stream: no checkpoint stored, no lease released; a new process takes over.
    let load_deadline = Instant::now() + LOAD_WITHIN;
    while answered.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < load_deadline,
            "only {} transfers answered within {LOAD_WITHIN:?}; ledger-api A said:\n{}",
            answered.load(Ordering::SeqCst),
            writer.process.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    projector.kill_with_sigkill();
    assert!(
        answered.load(Ordering::SeqCst) < TRANSFERS,
        "the load was over before the projector was killed"
    );
    let mut projector = stack.spawn_projector("restarted ledger-projector");
    projector.wait_for_line("projector lease acquired", Duration::from_secs(30));

    let mut accepted = 0;
    for transfer in transfers {
        if transfer.await.expect("transfer task") {
            accepted += 1;
        }
    }
    println!(
        "{accepted} of {TRANSFERS} transfers accepted in {:?}",
        load_started.elapsed()
    );
    assert!(
        accepted > TRANSFERS / 2,
        "most transfers go through: {accepted}"
    );
    // Under load the holder's confirmations kept succeeding: the lease did not flap.
    assert_eq!(
        projector.count("projector lease lost"),
        0,
        "{}",
        projector.log()
    );

    // The store: every account folded from DynamoDB; nothing created or lost.
    let folded = fold_from_the_event_store(&stack).await;
    let total: Decimal = folded.iter().map(|account| account.balance().value()).sum();
    assert_eq!(
        total,
        decimal(OPENING_DEPOSIT) * Decimal::from(ACCOUNTS.len()),
        "{folded:?}"
    );

    // The read model, through the API that did not write most of it, converges on the store.
    for account in &folded {
        let view = reader
            .account_at(account.id().as_str(), account.version(), CONVERGE_WITHIN)
            .await;
        assert_eq!(
            decimal_of(&view["balance"]),
            account.balance().value(),
            "{view}"
        );
        assert_eq!(view["last_sequence"], account.version(), "{view}");
    }
    verify_read_model_against_the_event_store(&stack, &folded).await;
    for api in [&writer, &reader] {
        let (status, body) = api.get("/health/ready").await;
        assert_eq!(status, 200, "no dead letter, every dependency up: {body}");
    }

    projector.stop_with_sigterm();
    drop((writer, reader));
    drop(stack);
}

/// Transfer `index`: 1.00 to 3.00 from one account to the next but `index % 4`, so every pair meets.
/// Retried under its key while the answer is a conflict, an unknown outcome or a transport error; whether it moved money
/// (`true`) or was refused.
async fn transfer(api: &ApiProcess, index: usize) -> bool {
    let source = ACCOUNTS[index % ACCOUNTS.len()];
    let target = ACCOUNTS[(index + 1 + index % 4) % ACCOUNTS.len()];
    let body = json!({"source_account_id": source, "target_account_id": target,
        "amount": format!("{}.00", 1 + index % 3)});
    let key = format!("aws-shaped-transfer-{index}");
    for _ in 0..ATTEMPTS_PER_TRANSFER {
        match api.try_command_with_key("/v1/transfers", &key, &body).await {
            Ok((200, _)) => return true,
            Ok((409 | 503, answer)) => assert!(
                [
                    "concurrency_conflict",
                    "outcome_unknown",
                    "store_unavailable"
                ]
                .contains(&answer["code"].as_str().unwrap_or("")),
                "{answer}"
            ),
            Ok((other, answer)) => panic!("transfer {index}: unexpected {other}: {answer}"),
            // Under 300 requests at once a connection may fail; whether the transfer ran is
            // unknown, and the same key makes asking again safe.
            Err(error) => eprintln!("transfer {index}: {error:?}; retrying under its key"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Every account's state folded from the DynamoDB event store: the source of truth.
async fn fold_from_the_event_store(stack: &Stack) -> Vec<Account> {
    let vars = stack.vars();
    let config = ledger_bootstrap::LedgerConfig::from_lookup(|name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    })
    .expect("the stack's configuration");
    let clients = ledger_dynamodb::config::clients().await;
    let store = ledger_dynamodb::event_store::DynamoEventStore::new(
        clients.dynamodb,
        ledger_dynamodb::config::DynamoSettings::with_tables(
            ledger_bootstrap::startup::dynamo_tables(&config.dynamodb),
        ),
    );
    let mut folded = Vec::new();
    for account in ACCOUNTS {
        let id = AccountId::parse(account).expect("an account id");
        let events = store.load(&id, 0).await.expect("load from DynamoDB");
        folded.push(
            Account::replay(&id, events.iter().map(|event| &event.event))
                .expect("a consistent history")
                .expect("an opened account"),
        );
    }
    folded
}

/// The read model checked against the folded store after the projector's crash and restart: `ledger
/// verify` as an operator runs it (every account folded from the event store by the consistent scan
/// and compared) must pass; and, as a check of that check, the SQL itself: no movement recorded
/// twice, one row per movement event, balances as folded, money conserved.
async fn verify_read_model_against_the_event_store(stack: &Stack, folded: &[Account]) {
    let verified = run(env!("CARGO_BIN_EXE_ledger"), &["verify"], &stack.vars());
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "ledger verify after the projector's SIGKILL and restart: {said}\n{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(
        said.contains(&format!("verified {} account(s)", ACCOUNTS.len()))
            && said.contains("the read model agrees with the event store"),
        "{said}"
    );
    let mut connection = stack.database.connect().await;
    let duplicates = sqlx::query(
        "SELECT account_id, sequence, count(*) FROM account_transactions \
         GROUP BY account_id, sequence HAVING count(*) > 1",
    )
    .fetch_all(&mut connection)
    .await
    .expect("look for duplicate rows");
    assert!(
        duplicates.is_empty(),
        "{} duplicated movements",
        duplicates.len()
    );
    for account in folded {
        let row = sqlx::query(
            "SELECT balance::text AS balance, last_sequence, \
             (SELECT count(*) FROM account_transactions t WHERE t.account_id = a.account_id) AS rows \
             FROM accounts a WHERE account_id = $1",
        )
        .bind(account.id().as_str())
        .fetch_one(&mut connection)
        .await
        .expect("the account's row");
        let balance: String = row.get("balance");
        let last_sequence: i64 = row.get("last_sequence");
        let rows: i64 = row.get("rows");
        assert_eq!(
            decimal(&balance),
            account.balance().value(),
            "{}",
            account.id()
        );
        assert_eq!(u64::try_from(last_sequence).ok(), Some(account.version()));
        // Every event but the opening moves money, and each movement is one row.
        assert_eq!(
            u64::try_from(rows).ok(),
            Some(account.version() - 1),
            "{}",
            account.id()
        );
    }
    let total: String = sqlx::query_scalar("SELECT sum(balance)::text FROM accounts")
        .fetch_one(&mut connection)
        .await
        .expect("sum of balances");
    assert_eq!(
        decimal(&total),
        decimal(OPENING_DEPOSIT) * Decimal::from(ACCOUNTS.len())
    );
}

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).expect("a decimal")
}

fn decimal_of(value: &serde_json::Value) -> Decimal {
    decimal(value.as_str().expect("a decimal string"))
}
