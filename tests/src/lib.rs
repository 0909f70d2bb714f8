//! The end-to-end harness: starts the real ledger (the same `Application::build` as `ledger-api`) on
//! port 0 with a fresh SQLite file, and talks to it over real HTTP.

pub mod scenarios;
pub mod simulation;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ledger_application::ports::{EventFeed, EventStore};
use ledger_bootstrap::{Application, LedgerConfig};
use ledger_domain::{Account, AccountId};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// A running ledger on its own database file, removed when the harness is dropped.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub database_path: PathBuf,
    /// The embedded store's feed of every event; DynamoDB's feed is its stream.
    feed: Option<Arc<dyn EventFeed>>,
    store: Arc<dyn EventStore>,
    handle: actix_web::dev::ServerHandle,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The temporary folder of the database, removed when the harness is dropped.
    temp_dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("base_url", &self.base_url)
            .field("database_path", &self.database_path)
            .finish_non_exhaustive()
    }
}

/// A response: status, content type and JSON body (or `Null` when the body is empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl Reply {
    /// The problem `code` of an error reply.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

static KEYS: AtomicU64 = AtomicU64::new(0);

/// A fresh idempotency key, unique within the test process.
pub fn new_key() -> String {
    format!(
        "key-{}-{}",
        std::process::id(),
        KEYS.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestApp {
    /// Starts the ledger on a new database with the default configuration.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts the ledger on a new database, with extra `LEDGER_*` variables.
    pub async fn spawn_with(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ledger.db");
        let mut app = Self::start_on(path, vars).await;
        app.temp_dir = Some(dir);
        app
    }

    /// Starts the ledger with DynamoDB Local as its event store (tables of its own, created at start-up)
    /// and a fresh SQLite read model fed by the stream poller. Needs the DynamoDB Local that
    /// `scripts/test.sh` starts; without it the test fails, it is never skipped.
    pub async fn spawn_dynamodb(vars: &[(&str, &str)]) -> Self {
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            "AWS_ENDPOINT_URL is not set: the DynamoDB tests need DynamoDB Local; run ./scripts/test.sh"
        );
        let prefix = format!("e2e_{}_", uuid_like());
        // Given variables come first, so that a caller's own table prefix wins.
        let mut all: Vec<(&str, &str)> = vars.to_vec();
        all.extend_from_slice(&[
            ("LEDGER_EVENT_STORE", "dynamodb"),
            ("LEDGER_DYNAMODB_TABLE_PREFIX", prefix.as_str()),
            ("LEDGER_DYNAMODB_CREATE_TABLES", "true"),
        ]);
        Self::spawn_with(&all).await
    }

    /// Two ledger instances on one new SQLite database, as two processes sharing one event store: the
    /// in-process account locks of one cannot order the other's writes, so the store's own checks
    /// decide. The first instance keeps the temp dir.
    pub async fn spawn_pair() -> (Self, Self) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("shared.db");
        let mut first = Self::start_on(path.clone(), &[]).await;
        let second = Self::start_on(path, &[]).await;
        first.temp_dir = Some(dir);
        (first, second)
    }

    /// Two ledger instances on the same new DynamoDB tables (each with its own SQLite read model fed
    /// by its own stream poller), as two ECS tasks sharing the event store.
    pub async fn spawn_dynamodb_pair() -> (Self, Self) {
        let prefix = format!("e2e_{}_", uuid_like());
        let vars = [("LEDGER_DYNAMODB_TABLE_PREFIX", prefix.as_str())];
        let first = Self::spawn_dynamodb(&vars).await;
        let second = Self::spawn_dynamodb(&vars).await;
        (first, second)
    }

    /// Starts the ledger on an existing (or new) database file that the caller keeps.
    pub async fn start_on(database_path: PathBuf, vars: &[(&str, &str)]) -> Self {
        let path_text = database_path.display().to_string();
        let config = LedgerConfig::from_lookup(|name| match name {
            "LEDGER_HTTP_ADDR" => Some("127.0.0.1:0".to_owned()),
            "LEDGER_SQLITE_PATH" => Some(path_text.clone()),
            "LEDGER_HTTP_WORKERS" => Some("2".to_owned()),
            "LEDGER_SHUTDOWN_TIMEOUT_SECS" => Some("5".to_owned()),
            other => vars
                .iter()
                .find(|(key, _)| *key == other)
                .map(|(_, value)| (*value).to_owned()),
        })
        .expect("test configuration");
        let application = Application::build(&config).await.expect("ledger starts");
        let base_url = format!("http://127.0.0.1:{}", application.port());
        let feed = application.event_feed();
        let store = application.event_store();
        let handle = application.handle();
        let server = tokio::spawn(application.run_until_stopped());
        Self {
            base_url,
            client: reqwest::Client::builder()
                .timeout(Duration::from_mins(2))
                .build()
                .expect("http client"),
            database_path,
            feed,
            store,
            handle,
            server: Some(server),
            temp_dir: None,
        }
    }

    /// Stops the server gracefully and waits until the projector stored its checkpoint and the
    /// database is closed.
    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let raw = response.text().await.expect("response body");
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            headers,
            body,
            raw,
        }
    }

    /// POSTs a JSON command under an idempotency key.
    pub async fn command(&self, path: &str, key: &str, body: &Value) -> Reply {
        let response = self
            .client
            .post(self.url(path))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request sent");
        Self::reply(response).await
    }

    /// POSTs raw bytes with the given headers, for malformed-input tests.
    pub async fn post_raw(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
        let mut request = self.client.post(self.url(path)).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::reply(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        Self::reply(
            self.client
                .get(self.url(path))
                .send()
                .await
                .expect("request sent"),
        )
        .await
    }

    /// Opens an account with a client-chosen id and asserts success.
    pub async fn open(
        &self,
        account_id: &str,
        currency: &str,
        overdraft_limit: Option<&str>,
    ) -> Reply {
        let mut body = json!({"account_id": account_id, "owner": format!("Owner of {account_id}"),
            "kind": "CHECKING", "currency": currency});
        if let Some(limit) = overdraft_limit {
            body["overdraft_limit"] = json!(limit);
        }
        let reply = self.command("/v1/accounts", &new_key(), &body).await;
        assert_eq!(reply.status, 201, "open {account_id}: {}", reply.raw);
        reply
    }

    pub async fn deposit(&self, account_id: &str, amount: &str) -> Reply {
        self.command(
            &format!("/v1/accounts/{account_id}/deposits"),
            &new_key(),
            &json!({"amount": amount}),
        )
        .await
    }

    pub async fn withdraw(&self, account_id: &str, amount: &str) -> Reply {
        self.command(
            &format!("/v1/accounts/{account_id}/withdrawals"),
            &new_key(),
            &json!({"amount": amount}),
        )
        .await
    }

    pub async fn transfer(&self, source: &str, target: &str, amount: &str) -> Reply {
        self.command(
            "/v1/transfers",
            &new_key(),
            &json!({"source_account_id": source, "target_account_id": target, "amount": amount}),
        )
        .await
    }

    /// The account as the read model shows it once it has applied `min_sequence`.
    pub async fn account_at(&self, account_id: &str, min_sequence: u64) -> Reply {
        self.get(&format!(
            "/v1/accounts/{account_id}?min_sequence={min_sequence}"
        ))
        .await
    }

    /// How many events the event store holds, across all accounts (embedded store only).
    pub async fn event_count(&self) -> usize {
        let feed = self
            .feed
            .as_ref()
            .expect("event_count needs the embedded store's feed");
        let mut count = 0;
        let mut after = 0;
        loop {
            let page = feed.read_after(after, 1000).await.expect("feed");
            match page.last() {
                Some(last) => after = last.position,
                None => return count,
            }
            count += page.len();
        }
    }

    /// The account's state folded from the event store: the source of truth.
    pub async fn folded(&self, account_id: &str) -> Account {
        let id = AccountId::parse(account_id).expect("account id");
        let events = self.store.load(&id, 0).await.expect("load");
        Account::replay(&id, events.iter().map(|e| &e.event))
            .expect("a consistent history")
            .expect("an opened account")
    }
}

/// A name part unique across test processes and runs: process id, time and a counter.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}_{nanos}_{}",
        std::process::id(),
        KEYS.fetch_add(1, Ordering::Relaxed)
    )
}

/// Parses a decimal string field of a JSON body.
pub fn decimal(value: &Value) -> Decimal {
    Decimal::from_str(value.as_str().expect("a decimal string")).expect("a decimal")
}
