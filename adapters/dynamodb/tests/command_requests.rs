//! The DynamoDB requests one command sends, counted on DynamoDB Local: the command service wired as
//! `ledger-api` wires it in DynamoDB mode (events, idempotency records and snapshots on DynamoDB),
//! with a request-counting interceptor on its client. The counts are asserted (they are behaviour,
//! not timings); run with `--nocapture` to print them as the table in
//! `BENCHMARKS.md` ("DynamoDB requests per command"), with the capacity DynamoDB reports for each request.

mod common;

use std::sync::Arc;

use ledger_application::ports::{SystemClock, UuidV7Ids};
use ledger_application::testkit::fixtures::{
    deposit_request as deposit, open_request as open, withdraw_request as withdraw,
};
use ledger_application::{
    CommandContext, CommandError, CommandRequest, CommandService, IdempotencyKey, RetryPolicy,
};
use ledger_domain::{AccountId, Amount, DomainError};
use ledger_dynamodb::{DynamoEventStore, DynamoSettings, DynamoSnapshotStore};

use common::RequestCounter;

/// The snapshot interval `ledger-api` uses by default (`LEDGER_SNAPSHOT_EVERY`): no command below
/// crosses it, so no snapshot `PutItem` is counted (one is added every 100th event of an account).
const SNAPSHOT_EVERY: u64 = 100;

fn id(text: &str) -> AccountId {
    AccountId::parse(text).expect("id")
}

fn money(text: &str) -> Amount {
    Amount::parse(text).expect("amount")
}

/// One measured command: what it is, and the requests it sent, by operation.
struct Row {
    command: &'static str,
    requests: Vec<common::SentRequest>,
}

impl Row {
    fn count(&self, operation: &str) -> usize {
        self.requests
            .iter()
            .filter(|request| request.operation == operation)
            .count()
    }

    /// `[GetItem, Query, TransactWriteItems, PutItem, total]`.
    fn counts(&self) -> [usize; 5] {
        [
            self.count("GetItem"),
            self.count("Query"),
            self.count("TransactWriteItems"),
            self.count("PutItem"),
            self.requests.len(),
        ]
    }
}

struct Measured {
    counter: RequestCounter,
    rows: Vec<Row>,
    keys: u32,
}

impl Measured {
    /// Runs `request` on `service` with a fresh key and records the requests it sent.
    async fn run(
        &mut self,
        command: &'static str,
        service: &CommandService,
        request: &CommandRequest,
    ) -> Result<(), CommandError> {
        self.keys += 1;
        let context = CommandContext {
            caller: ledger_application::Caller::anonymous(),
            idempotency_key: IdempotencyKey::parse(&format!("key-{}", self.keys)).expect("key"),
            correlation_id: "count".to_owned(),
            traceparent: None,
        };
        self.counter.reset();
        let result = service.execute(&context, request).await.map(|_| ());
        self.rows.push(Row {
            command,
            requests: self.counter.requests(),
        });
        result
    }

    /// Prints the table, with the test's table-name prefix cut from the capacity figures.
    fn print(&self, table_prefix: &str) {
        println!(
            "| command | GetItem | Query | TransactWriteItems | PutItem | requests | consumed capacity (as reported) |"
        );
        println!("|---|---|---|---|---|---|---|");
        for row in &self.rows {
            let [get, query, transact, put, total] = row.counts();
            let consumed: Vec<String> = row
                .requests
                .iter()
                .map(|request| {
                    format!(
                        "{} ({})",
                        request.operation,
                        request.consumed.join(", ").replace(table_prefix, "")
                    )
                })
                .collect();
            println!(
                "| {} | {get} | {query} | {transact} | {put} | {total} | {} |",
                row.command,
                consumed.join("; ")
            );
        }
    }

    fn row(&self, command: &str) -> &Row {
        self.rows
            .iter()
            .find(|row| row.command == command)
            .expect("measured")
    }
}

/// The requests each measured command must send: `[GetItem, Query, TransactWriteItems, PutItem,
/// total]`.
const EXPECTED_COUNTS: [(&str, [usize; 5]); 6] = [
    // Assumed not to exist: the append at sequence 1 would conflict if it did.
    ("open (new account)", [0, 0, 1, 0, 1]),
    // The snapshot and the events after it, then the append.
    (
        "deposit, cold (account not cached by this process)",
        [1, 1, 1, 0, 3],
    ),
    // Decided against the cached state; the append's conditions validate it.
    ("deposit, warm", [0, 0, 1, 0, 1]),
    ("transfer, warm (both accounts cached)", [0, 0, 1, 0, 1]),
    // A rejection is recorded without a version check: the tail after the cached version is
    // read first (empty here), so that only a rejection of the current state is recorded.
    (
        "withdrawal rejected (insufficient funds), warm",
        [0, 1, 1, 0, 2],
    ),
    // The refused append, the reload (snapshot + tail), the append again.
    (
        "deposit, stale cache (another process moved the account)",
        [1, 1, 2, 0, 4],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_command_sends_only_the_requests_its_decision_needs() {
    let (client, counter) = common::counted_client().await;
    let (tables, _drop_tables) = common::guarded_tables(&client).await;
    let table_prefix = tables
        .events
        .strip_suffix("ledger_events")
        .unwrap_or_default()
        .to_owned();
    let settings = DynamoSettings::with_tables(tables);
    let store = Arc::new(DynamoEventStore::new(client.clone(), settings.clone()));
    let snapshots = Arc::new(DynamoSnapshotStore::new(client, settings));
    // One `ledger-api` process each: a process's cache holds only what it has seen.
    let process = || {
        CommandService::new(
            store.clone(),
            Arc::new(SystemClock),
            Arc::new(UuidV7Ids),
            RetryPolicy::default(),
        )
        .with_snapshots(snapshots.clone(), SNAPSHOT_EVERY)
    };
    let first = process();
    let second = process();
    let mut measured = Measured {
        counter,
        rows: Vec::new(),
        keys: 0,
    };

    measured
        .run("open (new account)", &first, &open("acc-a"))
        .await
        .expect("opened");
    measured
        .run(
            "deposit, cold (account not cached by this process)",
            &second,
            &deposit("acc-a", "100.00"),
        )
        .await
        .expect("deposited");
    measured
        .run("deposit, warm", &second, &deposit("acc-a", "50.00"))
        .await
        .expect("deposited");
    // Not measured: open the transfer's target and let the second process see it.
    measured
        .run("setup: open acc-b", &second, &open("acc-b"))
        .await
        .expect("opened");
    measured
        .run(
            "transfer, warm (both accounts cached)",
            &second,
            &CommandRequest::Transfer {
                source_account_id: id("acc-a"),
                target_account_id: id("acc-b"),
                amount: money("30.00"),
                description: None,
            },
        )
        .await
        .expect("transferred");
    let rejected = measured
        .run(
            "withdrawal rejected (insufficient funds), warm",
            &second,
            &withdraw("acc-a", "1000.00"),
        )
        .await;
    assert!(
        matches!(
            rejected,
            Err(CommandError::Rejected(
                DomainError::InsufficientFunds { .. }
            ))
        ),
        "{rejected:?}"
    );
    measured
        .run(
            "deposit, stale cache (another process moved the account)",
            &first,
            &deposit("acc-a", "1.00"),
        )
        .await
        .expect("deposited after a reload");
    measured
        .rows
        .retain(|row| !row.command.starts_with("setup"));
    measured.print(&table_prefix);

    for (command, counts) in EXPECTED_COUNTS {
        assert_eq!(
            measured.row(command).counts(),
            counts,
            "{command}: [GetItem, Query, TransactWriteItems, PutItem, total]"
        );
    }
}
