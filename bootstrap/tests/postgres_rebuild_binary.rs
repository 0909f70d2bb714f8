//! `ledger rebuild` as a process on the AWS-shaped stack: events in DynamoDB Local (read by the
//! consistent scan, not the stream), the read model in PostgreSQL, fed by a running
//! `ledger-projector`. A lost movement row is back, commands sent meanwhile all reach the new
//! model through the projector, no dead letter appears, and the fresh schema is gone afterwards.

mod aws_stack;
mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_stack::Stack;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};
use support::{run, stop_with_sigterm};

const ACCOUNTS: usize = 3;
const SEED_DEPOSITS: u64 = 3;

async fn sql_on(url: &str, sql: String) {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("statement");
    conn.close().await.expect("close");
}

async fn scalar_on(url: &str, sql: &'static str) -> i64 {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let value: i64 = sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .expect("query");
    conn.close().await.expect("close");
    value
}

async fn post(client: &reqwest::Client, url: String, key: String, body: serde_json::Value) {
    let response = client
        .post(url)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(response.status().is_success(), "{}", response.status());
}

/// The account's `last_sequence` and balance as the API answers them.
async fn account(client: &reqwest::Client, base_url: &str, id: &str) -> Option<(u64, String)> {
    let response = client
        .get(format!("{base_url}/v1/accounts/{id}"))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    Some((
        body["last_sequence"].as_u64()?,
        body["balance"].as_str()?.to_owned(),
    ))
}

/// Waits (bounded) until each account has `1 + deposits` events in the read model; returns their
/// balances.
async fn wait_for(
    client: &reqwest::Client,
    base_url: &str,
    accounts: &[String],
    deposits: &[u64],
) -> Vec<String> {
    let mut balances = Vec::new();
    for (id, count) in accounts.iter().zip(deposits) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some((sequence, balance)) = account(client, base_url, id).await
                && sequence == 1 + count
            {
                balances.push(balance);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never reached {}",
                1 + count
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    balances
}

/// Deposits of 1.00, round-robin, until `writing` turns false (at most 300): how many per account.
async fn keep_depositing(
    client: reqwest::Client,
    base_url: String,
    accounts: Vec<String>,
    writing: Arc<AtomicBool>,
) -> Vec<u64> {
    let mut written = vec![0_u64; accounts.len()];
    for round in 0..300_usize {
        if !writing.load(Ordering::SeqCst) && round > 3 {
            break;
        }
        let index = round % accounts.len();
        let id = &accounts[index];
        post(
            &client,
            format!("{base_url}/v1/accounts/{id}/deposits"),
            format!("during-{id}-{round}"),
            serde_json::json!({"amount": "1.00"}),
        )
        .await;
        written[index] += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    written
}

/// Opens the accounts and gives each `SEED_DEPOSITS` deposits of 1.00.
async fn open_and_seed(
    client: &reqwest::Client,
    base_url: &str,
    accounts: &[String],
    unique: &str,
) {
    for id in accounts {
        post(
            client,
            format!("{base_url}/v1/accounts"),
            format!("open-{id}-{unique}"),
            serde_json::json!({"account_id": id, "owner": "R", "kind": "CHECKING", "currency": "USD"}),
        )
        .await;
        for deposit in 0..SEED_DEPOSITS {
            post(
                client,
                format!("{base_url}/v1/accounts/{id}/deposits"),
                format!("seed-{id}-{deposit}-{unique}"),
                serde_json::json!({"amount": "1.00"}),
            )
            .await;
        }
    }
}

/// `ledger rebuild` with `vars`, run to completion off the runtime's threads.
async fn rebuild_process(vars: &[(&str, &str)]) -> std::process::Output {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run(env!("CARGO_BIN_EXE_ledger"), &["rebuild"], &vars)
    })
    .await
    .expect("the rebuild process")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_rebuild_replays_dynamodb_into_postgres_beside_a_running_projector() {
    // A fresh database and tables of its own, migrated and created by `ledger` as an operator would.
    let stack = Stack::create("pgrebuild").await;
    let vars = stack.vars();
    let url = stack.database.url.clone();
    let unique = stack.table_prefix.clone();
    let config = ledger_bootstrap::LedgerConfig::from_lookup(|name| match name {
        "LEDGER_HTTP_ADDR" => Some("127.0.0.1:0".to_owned()),
        "LEDGER_HTTP_WORKERS" => Some("1".to_owned()),
        other => vars
            .iter()
            .find(|(key, _)| *key == other)
            .map(|(_, value)| (*value).to_owned()),
    })
    .expect("config");
    let application = ledger_bootstrap::Application::build(&config)
        .await
        .expect("starts");
    let base_url = format!("http://127.0.0.1:{}", application.port());
    let handle = application.handle();
    let server = tokio::spawn(application.run_until_stopped());
    let mut projector = Command::new(env!("CARGO_BIN_EXE_ledger-projector"))
        .envs(vars.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("ledger-projector starts");

    let client = reqwest::Client::new();
    let accounts: Vec<String> = (0..ACCOUNTS).map(|i| format!("pgr-{i}")).collect();
    open_and_seed(&client, &base_url, &accounts, &unique).await;
    wait_for(&client, &base_url, &accounts, &[SEED_DEPOSITS; ACCOUNTS]).await;
    sql_on(
        &url,
        // A lost movement: later deposits do not bring it back, only the rebuild does.
        "DELETE FROM account_transactions WHERE account_id = 'pgr-0' AND sequence = 2".to_owned(),
    )
    .await;

    let writing = Arc::new(AtomicBool::new(true));
    let writer = tokio::spawn(keep_depositing(
        client.clone(),
        base_url.clone(),
        accounts.clone(),
        writing.clone(),
    ));
    let rebuilt = rebuild_process(&vars).await;
    writing.store(false, Ordering::SeqCst);
    let written = writer.await.expect("the writer");
    assert!(rebuilt.status.success(), "{rebuilt:?}");
    let said = String::from_utf8_lossy(&rebuilt.stdout);
    assert!(said.contains(&format!("{ACCOUNTS} account(s)")), "{said}");

    let deposits: Vec<u64> = written.iter().map(|w| SEED_DEPOSITS + w).collect();
    let balances = wait_for(&client, &base_url, &accounts, &deposits).await;
    for (balance, count) in balances.iter().zip(&deposits) {
        assert_eq!(
            *balance,
            format!("{count}.00"),
            "the corrupted balance is repaired"
        );
    }
    assert_eq!(
        scalar_on(&url, "SELECT count(*) FROM account_transactions").await,
        i64::try_from(deposits.iter().sum::<u64>()).expect("small"),
        "one row per movement: the lost one back, none doubled"
    );
    assert_eq!(
        scalar_on(&url, "SELECT count(*) FROM dead_letters").await,
        0
    );
    assert_eq!(
        scalar_on(
            &url,
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'ledger_rebuild'"
        )
        .await,
        0
    );

    stop_with_sigterm(&mut projector);
    handle.stop(true).await;
    server.await.expect("server task").expect("server stopped");
    drop(stack);
}
