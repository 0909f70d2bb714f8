//! Seeds a ledger with a given number of events for `scripts/rebuild-bench.sh`: accounts opened and
//! funded, then deposits and transfers among them, written in-process through the application's
//! `CommandService` by concurrent workers, and projected into the read model. A tool, not a test.
//!
//! `cargo run --release -p ledger-tests --example seed -- <events> [accounts] [concurrency]`
//!
//! The stores come from the usual configuration (`LEDGER_EVENT_STORE`, `LEDGER_SQLITE_PATH`,
//! `LEDGER_DYNAMODB_TABLE_PREFIX`, `LEDGER_READ_MODEL`, `DATABASE_URL`). The read model is filled
//! the way the topology fills it where that is one process: on SQLite by the embedded feed
//! projector; on DynamoDB, where the stream's consumer is another process, by projecting each
//! account's events read back through the consistent scan (the DynamoDB tables are created if
//! missing).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt, stream};
use ledger_application::ports::{EventStoreScan, Projection, ScanCursor, SystemClock, UuidV7Ids};
use ledger_application::{
    CommandContext, CommandRequest, CommandService, FeedProjector, FeedProjectorConfig,
    IdempotencyKey, ProjectionRetry, Projector, RetryPolicy,
};
use ledger_bootstrap::LedgerConfig;
use ledger_bootstrap::admin::event_source;
use ledger_bootstrap::config::EventStoreKind;
use ledger_bootstrap::startup::{ReadSide, dynamo_tables};
use ledger_domain::{AccountId, AccountKind, Amount, Currency, OwnerName};

/// What every account is funded with before the traffic: far more than the transfers can take out.
const FUNDING: &str = "1000000.00";
/// The most pages of accounts the projection walk takes.
const ACCOUNT_PAGES_MAX: u64 = 10_000_000;
const PAGE: usize = 1_000;
/// The most pages of events one account's projection reads.
const EVENT_PAGES_MAX: u64 = 1_000_000;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let parse = |arg: Option<String>, default: u64| {
        arg.map_or(Ok(default), |text| {
            text.parse::<u64>()
                .map_err(|_| format!("`{text}` is not a whole number"))
        })
    };
    let figures = (|| {
        let events = parse(args.next(), 20_000)?;
        let accounts = parse(args.next(), 1_000)?.max(2);
        let concurrency = parse(args.next(), 16)?.max(1);
        Ok::<_, String>((events, accounts, concurrency))
    })();
    let result = match figures {
        Ok((events, accounts, concurrency)) => seed(events, accounts, concurrency).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("seed: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn seed(events: u64, accounts: u64, concurrency: u64) -> Result<(), String> {
    let config = LedgerConfig::from_env().map_err(|e| e.to_string())?;
    let read_side = ReadSide::open(&config).await.map_err(|e| e.to_string())?;
    if let ReadSide::Postgres(read_model) = &read_side {
        read_model.migrate().await.map_err(|e| e.to_string())?;
    }
    if config.event_store == EventStoreKind::Dynamodb {
        let client = ledger_dynamodb::config::dynamodb_client().await;
        ledger_dynamodb::tables::create_tables(&client, &dynamo_tables(&config.dynamodb))
            .await
            .map_err(|e| e.to_string())?;
    }
    let source = event_source(&config, &read_side).await?;
    let commands = Arc::new(CommandService::new(
        Arc::clone(&source.store),
        Arc::new(SystemClock),
        Arc::new(UuidV7Ids),
        RetryPolicy {
            attempts_max: 20,
            ..RetryPolicy::default()
        },
    ));
    let started = Instant::now();
    let written = write(&commands, events, accounts, concurrency).await?;
    let writing = started.elapsed();
    println!(
        "seeded {written} event(s) over {accounts} account(s) in {writing:.2?} ({} events/s, {concurrency} writers)",
        per_second(written, writing)
    );
    let started = Instant::now();
    let projected = match (config.event_store, &read_side) {
        (EventStoreKind::Sqlite, ReadSide::Sqlite(database)) => {
            let projector = FeedProjector::new(
                "seed-example",
                Arc::new(database.event_store()),
                Arc::new(database.read_model()) as Arc<dyn Projection>,
                read_side.checkpoints(),
                Arc::new(SystemClock),
                FeedProjectorConfig::default(),
                Arc::new(tokio::sync::Notify::new()),
            );
            projector.catch_up().await.map_err(|e| e.to_string())? as u64
        }
        _ => project_from_scan(source.scan.as_ref(), read_side.projection(), concurrency).await?,
    };
    let projecting = started.elapsed();
    println!(
        "projected {projected} event(s) in {projecting:.2?} ({} events/s)",
        per_second(projected, projecting)
    );
    read_side.close().await.map_err(|e| e.to_string())
}

fn per_second(count: u64, elapsed: Duration) -> u128 {
    u128::from(count) * 1_000 / elapsed.as_millis().max(1)
}

fn account(index: u64) -> AccountId {
    AccountId::parse(&format!("seed-{index:07}")).expect("a valid id")
}

fn context(key: &str) -> CommandContext {
    CommandContext {
        caller: ledger_application::Caller::anonymous(),
        idempotency_key: IdempotencyKey::parse(key).expect("a valid key"),
        correlation_id: key.to_owned(),
        traceparent: None,
    }
}

/// Opens and funds `accounts` accounts (two events each), then deposits (one event) and transfers
/// (two) among them until `events` events are written. Returns how many were.
async fn write(
    commands: &Arc<CommandService>,
    events: u64,
    accounts: u64,
    concurrency: u64,
) -> Result<u64, String> {
    let run = uuid::Uuid::now_v7().simple().to_string();
    let usd = Currency::parse("USD").expect("USD");
    let funding = Amount::parse(FUNDING).expect("an amount");
    let opened = stream::iter(0..accounts)
        .map(|index| {
            let run = &run;
            async move {
                let id = account(index);
                let open = CommandRequest::OpenAccount {
                    account_id: Some(id.clone()),
                    owner: OwnerName::parse("Seed").expect("an owner"),
                    kind: AccountKind::Checking,
                    currency: usd,
                    overdraft_limit: None,
                };
                let fund = CommandRequest::Deposit {
                    account_id: id,
                    amount: funding,
                    description: None,
                };
                commands
                    .execute(&context(&format!("{run}-open-{index}")), &open)
                    .await
                    .map_err(|e| format!("open seed-{index:07}: {e}"))?;
                commands
                    .execute(&context(&format!("{run}-fund-{index}")), &fund)
                    .await
                    .map_err(|e| format!("fund seed-{index:07}: {e}"))?;
                Ok::<u64, String>(2)
            }
        })
        .buffer_unordered(usize::try_from(concurrency).unwrap_or(1))
        .try_fold(0, |sum, written| async move { Ok(sum + written) })
        .await?;
    // The traffic: each worker claims the events of its next command from one shared budget.
    let budget = Arc::new(AtomicU64::new(events.saturating_sub(opened)));
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (commands, budget, run) = (Arc::clone(commands), Arc::clone(&budget), run.clone());
        workers.spawn(async move {
            let mut written = 0_u64;
            for command in 0_u64.. {
                let transfer = fastrand::u8(0..3) > 0;
                let cost = if transfer { 2 } else { 1 };
                let claimed = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(cost).or((left > 0).then_some(0))
                });
                let Ok(left) = claimed else { break };
                // The last event of the budget goes to a deposit: one event, not two.
                let transfer = transfer && left >= 2;
                let source = fastrand::u64(0..accounts);
                let request = if transfer {
                    let target = (source + fastrand::u64(1..accounts)) % accounts;
                    CommandRequest::Transfer {
                        source_account_id: account(source),
                        target_account_id: account(target),
                        amount: Amount::parse("1.00").expect("an amount"),
                        description: None,
                    }
                } else {
                    CommandRequest::Deposit {
                        account_id: account(source),
                        amount: Amount::parse("2.50").expect("an amount"),
                        description: None,
                    }
                };
                commands
                    .execute(&context(&format!("{run}-{worker}-{command}")), &request)
                    .await
                    .map_err(|e| format!("worker {worker} command {command}: {e}"))?;
                written += if transfer { 2 } else { 1 };
            }
            Ok::<u64, String>(written)
        });
    }
    let mut written = opened;
    while let Some(joined) = workers.join_next().await {
        written += joined.map_err(|e| e.to_string())??;
    }
    Ok(written)
}

/// Every event of every account, read back through the scan and projected in sequence order,
/// `concurrency` accounts at a time.
async fn project_from_scan(
    scan: &dyn EventStoreScan,
    projection: Arc<dyn Projection>,
    concurrency: u64,
) -> Result<u64, String> {
    let projector = Projector::new(
        projection,
        Arc::new(SystemClock),
        ProjectionRetry::default(),
    );
    let mut cursor: Option<ScanCursor> = None;
    let mut projected = 0;
    for _ in 0..ACCOUNT_PAGES_MAX {
        let page = scan
            .accounts_page(cursor.as_ref(), PAGE)
            .await
            .map_err(|e| e.to_string())?;
        projected += stream::iter(page.accounts)
            .map(|account_id| {
                let projector = &projector;
                async move {
                    let mut after = 0;
                    let mut count = 0_u64;
                    for _ in 0..EVENT_PAGES_MAX {
                        let events = scan
                            .events_page(&account_id, after, PAGE)
                            .await
                            .map_err(|e| e.to_string())?;
                        for event in &events {
                            projector.project(event).await.map_err(|e| e.to_string())?;
                            after = event.sequence;
                            count += 1;
                        }
                        if events.len() < PAGE {
                            return Ok::<u64, String>(count);
                        }
                    }
                    Err(format!(
                        "{account_id} has more than {EVENT_PAGES_MAX} pages of events"
                    ))
                }
            })
            .buffer_unordered(usize::try_from(concurrency).unwrap_or(1))
            .try_fold(0, |sum, count| async move { Ok(sum + count) })
            .await?;
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(projected),
        }
    }
    Err(format!("more than {ACCOUNT_PAGES_MAX} pages of accounts"))
}
