//! What the tests of the AWS-shaped stack as processes share (DynamoDB Local, PostgreSQL, `ledger-api`
//! and `ledger-projector` processes): a fresh PostgreSQL database of their own on the server of
//! `DATABASE_URL` (which `scripts/test.sh` starts), tables of their own in DynamoDB Local, the
//! variables the binaries take for both, and `ledger-api` processes driven over HTTP.
#![allow(
    dead_code,
    reason = "every test crate of the AWS-shaped stack compiles this module and uses a part of it"
)]

use std::time::{Duration, Instant};

use ledger_postgres::testkit::server_url;
use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::support::{LoggedProcess, listening_port, run};

/// `postgres://user@host:port/db` as `postgres://user:{password}@host:port/{database}`. The local
/// server trusts loopback, so the password is ignored by it; it is there to be looked for in output.
fn url_for(database: &str, password: &str) -> String {
    let server = server_url();
    let (scheme, rest) = server.split_once("://").expect("a URL with a scheme");
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    let (user, host) = authority.split_once('@').expect("a user in DATABASE_URL");
    let user = user.split_once(':').map_or(user, |(user, _)| user);
    format!("{scheme}://{user}:{password}@{host}/{database}")
}

/// The one fresh-database helper (`ledger_postgres::testkit`), not migrated (the tests run `ledger
/// migrate`), with the URL the binaries are given: it carries a password, to be looked for in output.
pub struct FreshDatabase {
    database: ledger_postgres::testkit::FreshDatabase,
    pub name: String,
    /// Its URL with a password the server ignores, to be looked for in output.
    pub url: String,
}

impl FreshDatabase {
    pub async fn create() -> Self {
        let database = ledger_postgres::testkit::FreshDatabase::create().await;
        let name = database.name.clone();
        let url = url_for(&name, "not-for-logs");
        Self {
            database,
            name,
            url,
        }
    }

    /// A connection of the test's own, to check what the binaries wrote.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect_with(&self.database.options)
            .await
            .expect("connect to the test database")
    }
}

/// One test's stack: its database and its DynamoDB table prefix, migrated and created by the `ledger`
/// admin tool as an operator would.
pub struct Stack {
    pub database: FreshDatabase,
    pub table_prefix: String,
}

impl Stack {
    pub async fn create(purpose: &str) -> Self {
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            "AWS_ENDPOINT_URL is not set: these tests need DynamoDB Local; run ./scripts/test.sh"
        );
        let database = FreshDatabase::create().await;
        let table_prefix = format!("{purpose}_{}_", uuid::Uuid::now_v7().simple());
        let stack = Self {
            database,
            table_prefix,
        };
        for admin in ["migrate", "create-tables"] {
            let output = run(env!("CARGO_BIN_EXE_ledger"), &[admin], &stack.vars());
            assert!(output.status.success(), "ledger {admin}: {output:?}");
        }
        stack
    }

    /// What every binary of the stack is started with.
    pub fn vars(&self) -> Vec<(&str, &str)> {
        vec![
            ("LEDGER_EVENT_STORE", "dynamodb"),
            ("LEDGER_READ_MODEL", "postgres"),
            ("DATABASE_URL", self.database.url.as_str()),
            ("LEDGER_DYNAMODB_TABLE_PREFIX", self.table_prefix.as_str()),
        ]
    }

    pub fn spawn_projector(&self, name: &str) -> LoggedProcess {
        self.spawn_projector_with(name, &[])
    }

    /// A `ledger-projector` with `extra` variables too (telemetry's, say).
    pub fn spawn_projector_with(&self, name: &str, extra: &[(&str, &str)]) -> LoggedProcess {
        let mut vars = self.vars();
        vars.extend_from_slice(extra);
        LoggedProcess::spawn(name, env!("CARGO_BIN_EXE_ledger-projector"), &vars)
    }

    /// A `ledger-api` process on port 0, once it said which port it listens on.
    pub fn spawn_api(&self, name: &str) -> ApiProcess {
        self.spawn_api_with(name, &[])
    }

    /// A `ledger-api` process with `extra` variables too, once it said which port it listens on.
    pub fn spawn_api_with(&self, name: &str, extra: &[(&str, &str)]) -> ApiProcess {
        let mut vars = self.vars();
        vars.extend_from_slice(extra);
        ApiProcess::spawn(name, &vars)
    }
}

/// A running `ledger-api` and a client for it.
pub struct ApiProcess {
    pub process: LoggedProcess,
    pub base_url: String,
    client: reqwest::Client,
}

impl ApiProcess {
    /// A `ledger-api` process with `vars` on port 0, once it said which port it listens on.
    pub fn spawn(name: &str, vars: &[(&str, &str)]) -> Self {
        let mut vars = vars.to_vec();
        vars.extend([
            ("LEDGER_HTTP_ADDR", "127.0.0.1:0"),
            ("LEDGER_HTTP_WORKERS", "2"),
            ("LEDGER_READ_WAIT_TIMEOUT_MS", "500"),
        ]);
        let mut process = LoggedProcess::spawn(name, env!("CARGO_BIN_EXE_ledger-api"), &vars);
        let listening = process.wait_for_line("ledger listening", Duration::from_secs(30));
        let port = listening_port(&listening);
        Self {
            process,
            base_url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                // Below actix's keep-alive (5 s), so the client never sends on a connection the
                // server is closing.
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// POSTs a command under a fresh idempotency key; the status and the JSON body.
    pub async fn command(&self, path: &str, body: &Value) -> (u16, Value) {
        self.command_with_key(path, &uuid::Uuid::now_v7().to_string(), body)
            .await
    }

    /// POSTs a command under `key` (a retry passes the key of its first attempt).
    pub async fn command_with_key(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        self.try_command_with_key(path, key, body)
            .await
            .unwrap_or_else(|error| panic!("POST {path} to {}: {error:?}", self.process.name))
    }

    /// POSTs a command under `key`; a transport error is returned, for the caller to retry under the
    /// same key (the command may or may not have been executed: its key makes the retry safe).
    pub async fn try_command_with_key(
        &self,
        path: &str,
        key: &str,
        body: &Value,
    ) -> Result<(u16, Value), reqwest::Error> {
        self.try_command_with_headers(path, &[("Idempotency-Key", key)], body)
            .await
    }

    /// POSTs a command with these headers (its `Idempotency-Key` among them, a `traceparent`, ...).
    pub async fn try_command_with_headers(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Result<(u16, Value), reqwest::Error> {
        let mut request = self.client.post(format!("{}{path}", self.base_url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.json(body).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    pub async fn open(&self, account_id: &str) {
        let (status, body) = self
            .command(
                "/v1/accounts",
                &json!({"account_id": account_id, "owner": "Lease", "kind": "CHECKING",
                    "currency": "USD"}),
            )
            .await;
        assert_eq!(status, 201, "open {account_id}: {body}");
    }

    /// Deposits `amount`; the sequence of the deposit.
    pub async fn deposit(&self, account_id: &str, amount: &str) -> u64 {
        let (status, body) = self
            .command(
                &format!("/v1/accounts/{account_id}/deposits"),
                &json!({"amount": amount}),
            )
            .await;
        assert_eq!(status, 200, "deposit into {account_id}: {body}");
        body["sequence"].as_u64().expect("a sequence")
    }

    /// The status of `GET path` and its JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path} from {}: {error}", self.process.name));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The account once the read model has applied `min_sequence`, asked again (each ask waits up
    /// to the API's read wait) until `within` has passed.
    pub async fn account_at(&self, account_id: &str, min_sequence: u64, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        let url = format!(
            "{}/v1/accounts/{account_id}?min_sequence={min_sequence}",
            self.base_url
        );
        loop {
            let response = self.client.get(&url).send().await.expect("query");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            match status {
                200 => return body,
                503 => assert_eq!(body["code"], "read_model_behind", "{body}"),
                other => panic!("unexpected {other}: {body}"),
            }
            assert!(
                Instant::now() < deadline,
                "{account_id} did not reach sequence {min_sequence} in the read model within \
                 {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
