//! `/health/ready` of the service as `ledger-api` builds it, over real HTTP: it checks what is in use.
//! Embedded: a poison row makes it not ready (`dead_letters`) while other accounts keep projecting.
//! DynamoDB: the event store check reaches DynamoDB (a missing table makes it not ready).

use std::time::{Duration, Instant};

use ledger_bootstrap::{Application, LedgerConfig};
use serde_json::{Value, json};

/// How long a test waits for the running projector to reach a state: a bound, never a timing.
const WAIT_MAX: Duration = Duration::from_secs(15);

struct Running {
    base_url: String,
    handle: actix_web::dev::ServerHandle,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    client: reqwest::Client,
}

impl Running {
    async fn start(vars: &[(&str, String)]) -> Self {
        let config = LedgerConfig::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
                .or_else(|| match name {
                    "LEDGER_HTTP_ADDR" => Some("127.0.0.1:0".to_owned()),
                    "LEDGER_HTTP_WORKERS" => Some("1".to_owned()),
                    _ => None,
                })
        })
        .expect("config");
        let application = Application::build(&config).await.expect("starts");
        let base_url = format!("http://127.0.0.1:{}", application.port());
        let handle = application.handle();
        let server = tokio::spawn(application.run_until_stopped());
        Self {
            base_url,
            handle,
            server,
            client: reqwest::Client::new(),
        }
    }

    async fn ready(&self) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}/health/ready", self.base_url))
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    /// Polls readiness until it answers `status`, or the bound runs out.
    async fn ready_becomes(&self, status: u16) -> (u16, Value) {
        let deadline = Instant::now() + WAIT_MAX;
        loop {
            let answer = self.ready().await;
            if answer.0 == status || Instant::now() > deadline {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("a JSON body")
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        self.server
            .await
            .expect("server task")
            .expect("server stopped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_readiness_fails_on_a_dead_letter_while_other_accounts_project() {
    use sqlx::Connection;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db");
    let running = Running::start(&[("LEDGER_SQLITE_PATH", path.display().to_string())]).await;
    let (status, body) = running.ready_becomes(200).await;
    assert_eq!((status, &body), (200, &json!({"status": "ok"})));

    for id in ["acc-r", "acc-s"] {
        running
            .post(
                "/v1/accounts",
                &format!("open-{id}"),
                json!({"account_id": id, "owner": "R", "kind": "CHECKING", "currency": "USD"}),
            )
            .await;
    }
    // A row this build cannot decode, behind the application's back.
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .busy_timeout(Duration::from_secs(5));
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("a connection of its own");
    sqlx::query(
        "INSERT INTO events (account_id, sequence, event_id, event_type, schema_version, payload, \
         metadata, recorded_at) VALUES ('acc-r', 2, '0190f5c2-7d7e-7a4c-9b7e-1c2d3e4f5a6b', \
         'MoneyDeposited', 1, '{not json', '{}', '2026-03-01T09:00:00.000000Z')",
    )
    .execute(&mut conn)
    .await
    .expect("the poison row");
    conn.close().await.expect("close");

    let (status, body) = running.ready_becomes(503).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "not_ready");
    assert_eq!(body["failing_checks"], json!(["dead_letters"]), "{body}");

    // Every other account keeps flowing: a deposit on acc-s is projected and served.
    let deposit = running
        .post(
            "/v1/accounts/acc-s/deposits",
            "dep-s",
            json!({"amount": "4.00"}),
        )
        .await;
    let sequence = deposit["sequence"].as_u64().expect("sequence");
    let account: Value = running
        .client
        .get(format!(
            "{}/v1/accounts/acc-s?min_sequence={sequence}",
            running.base_url
        ))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("body");
    assert_eq!(account["balance"], "4.00", "{account}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_readiness_reaches_dynamodb() {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: this test needs DynamoDB Local; run ./scripts/test.sh"
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let prefix = format!("ready_{}_{nanos}_", std::process::id());
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = dir.path().join("read-model.db").display().to_string();
    let base = [
        ("LEDGER_EVENT_STORE", "dynamodb".to_owned()),
        ("LEDGER_DYNAMODB_TABLE_PREFIX", prefix.clone()),
        ("LEDGER_DYNAMODB_CREATE_TABLES", "true".to_owned()),
        ("LEDGER_SQLITE_PATH", sqlite.clone()),
    ];
    let running = Running::start(&base).await;
    let (status, body) = running.ready_becomes(200).await;
    assert_eq!(status, 200, "{body}");
    running.stop().await;

    // The same service pointed at an idempotency table that does not exist: DynamoDB answers, and
    // readiness says the event store is not usable.
    let mut vars = base.to_vec();
    vars.push((
        "LEDGER_DYNAMODB_IDEMPOTENCY_TABLE",
        format!("{prefix}missing_idempotency"),
    ));
    vars.retain(|(name, _)| *name != "LEDGER_DYNAMODB_CREATE_TABLES");
    let running = Running::start(&vars).await;
    let (status, body) = running.ready_becomes(503).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing_checks"], json!(["event_store"]), "{body}");
    running.stop().await;
}
