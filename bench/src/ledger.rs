//! The ledger a workload drives, the same way in both modes: the real `CommandService` on a real
//! SQLite file in this process (wired as `ledger-api` wires embedded mode), or the release
//! `ledger-api` binary as a process of its own, driven over HTTP by a keep-alive pool. Every
//! command gets a fresh idempotency key; a failed command is a counted kind, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::ResponseError;
use ledger_application::ports::{Projection, ReadModelQuery, SystemClock, UuidV7Ids};
use ledger_application::{
    CommandContext, CommandOutcome, CommandRequest, CommandService, FeedProjector,
    FeedProjectorConfig, IdempotencyKey, RetryPolicy, SignallingEventStore,
};
use ledger_bootstrap::LedgerConfig;
use ledger_bootstrap::startup::EMBEDDED_PROJECTOR;
use ledger_domain::{AccountId, AccountKind, Amount, Currency, OwnerName};
use ledger_http::ApiError;
use ledger_sqlite::{SqliteDatabase, SqliteReadModel};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::lag::{LagSamples, TimedProjection};

/// Longest one command may take before the bench counts it as `timeout` (in-process) or the HTTP
/// client gives up on it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest `ledger-api` may take to answer `/health/ready` after it was started.
const READY_WITHIN: Duration = Duration::from_mins(1);
/// How long an idle pooled connection is kept for reuse.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two looks at the read model while waiting for a sequence to be projected.
const PROJECTED_POLL: Duration = Duration::from_millis(5);

/// Where one command landed: the account and sequence to wait for in the read model.
#[derive(Debug, Clone)]
pub struct Posted {
    pub account_id: String,
    pub sequence: u64,
}

/// Why a command or read did not succeed, as a countable kind: `409 concurrency_conflict`,
/// `503 outcome_unknown`, `transport`, `timeout`, ...
pub type FailureKind = String;

/// One command of a workload.
#[derive(Debug, Clone)]
pub enum Operation {
    Open {
        account_id: String,
    },
    Deposit {
        account_id: String,
        amount: Amount,
    },
    Transfer {
        source: String,
        target: String,
        amount: Amount,
    },
}

/// Which way the bench drives the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    InProcess,
    Http,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Self::InProcess => "in-process",
            Self::Http => "http",
        }
    }
}

/// A ledger under test with its own throwaway directory.
#[derive(Debug)]
pub enum Ledger {
    /// Boxed: the command service with its cache is far larger than an HTTP client.
    InProcess(Box<Embedded>),
    Http(HttpLedger),
}

/// Fresh idempotency keys: this run's id and a counter shared by every client.
#[derive(Debug)]
pub struct Keys {
    run: String,
    next: AtomicU64,
}

impl Keys {
    pub fn new() -> Self {
        Self {
            run: uuid::Uuid::now_v7().simple().to_string(),
            next: AtomicU64::new(0),
        }
    }

    pub fn fresh(&self) -> String {
        format!(
            "bench-{}-{}",
            self.run,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

impl Ledger {
    /// Starts a ledger on the SQLite file `path` (which may already hold events).
    pub async fn start(mode: Mode, path: &Path) -> Result<Self, String> {
        match mode {
            Mode::InProcess => Embedded::start(path)
                .await
                .map(|embedded| Self::InProcess(Box::new(embedded))),
            Mode::Http => HttpLedger::start(path).await.map(Self::Http),
        }
    }

    pub async fn execute(&self, operation: &Operation, key: &str) -> Result<Posted, FailureKind> {
        match self {
            Self::InProcess(embedded) => embedded.execute(operation, key).await,
            Self::Http(http) => http.execute(operation, key).await,
        }
    }

    /// Waits, until `within` has passed, for the read model to have applied `sequence` of
    /// `account_id`: in-process by looking at the read model, over HTTP by a `min_sequence` read
    /// (asked again after each `503 read_model_behind`).
    pub async fn projected(
        &self,
        account_id: &str,
        sequence: u64,
        within: Duration,
    ) -> Result<(), FailureKind> {
        match self {
            Self::InProcess(embedded) => embedded.projected(account_id, sequence, within).await,
            Self::Http(http) => http.projected(account_id, sequence, within).await,
        }
    }

    /// The lag of every event applied since the last call (in-process only: over HTTP the bench
    /// cannot see the projector, and samples `min_sequence` reads instead).
    pub fn take_lags(&self) -> Option<Vec<u64>> {
        match self {
            Self::InProcess(embedded) => Some(embedded.lags.take()),
            Self::Http(_) => None,
        }
    }

    /// Stops the projector (in-process) or the process (HTTP) and closes the database.
    pub async fn stop(self) {
        match self {
            Self::InProcess(embedded) => embedded.stop().await,
            Self::Http(http) => http.stop(),
        }
    }
}

/// What every workload's account is opened with.
fn open_request(account_id: AccountId) -> CommandRequest {
    CommandRequest::OpenAccount {
        account_id: Some(account_id),
        owner: OwnerName::parse("Bench").expect("a valid owner"),
        kind: AccountKind::Checking,
        currency: Currency::parse("USD").expect("USD is a currency"),
        overdraft_limit: None,
    }
}

/// The configuration `ledger-api` reads from this process's environment, with `LEDGER_SQLITE_PATH`
/// set to `path`: so `LEDGER_SQLITE_GROUP_COMMIT_MAX`, `LEDGER_STATE_CACHE_ACCOUNTS` and the like
/// tune the in-process ledger exactly as they tune the `ledger-api` child (which inherits them).
pub fn embedded_config(path: &Path) -> Result<LedgerConfig, String> {
    let path = path.display().to_string();
    LedgerConfig::from_lookup(|name| {
        // The bench measures embedded mode: a shell's DynamoDB or PostgreSQL settings stay out.
        match name {
            "LEDGER_SQLITE_PATH" => Some(path.clone()),
            "LEDGER_EVENT_STORE" | "LEDGER_READ_MODEL" => Some("sqlite".to_owned()),
            _ => std::env::var(name).ok(),
        }
    })
    .map_err(|e| e.to_string())
}

/// The command service and the feed projector on one SQLite file, in this process.
pub struct Embedded {
    database: SqliteDatabase,
    commands: CommandService,
    read_model: SqliteReadModel,
    lags: Arc<LagSamples>,
    stop_projector: watch::Sender<bool>,
    projector: JoinHandle<()>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").finish_non_exhaustive()
    }
}

impl Embedded {
    /// The wiring of `ledger_bootstrap::startup::embedded` (private there), with the read model
    /// behind the lag decorator: the database opened as `ledger-api` opens it (`synchronous=FULL`),
    /// the command service over the store that wakes the projector, its retry policy from the same
    /// configuration. Keep it in step with that function when it changes.
    async fn start(path: &Path) -> Result<Self, String> {
        let config = embedded_config(path)?;
        let database =
            SqliteDatabase::open_with_group_commit(&config.sqlite_path, config.sqlite_group_commit)
                .await
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let appended = Arc::new(Notify::new());
        let event_store = Arc::new(database.event_store());
        let commands = CommandService::new(
            Arc::new(SignallingEventStore::new(
                event_store.clone(),
                Arc::clone(&appended),
            )),
            Arc::new(SystemClock),
            Arc::new(UuidV7Ids),
            RetryPolicy {
                attempts_max: config.command_attempts_max,
                ..RetryPolicy::default()
            },
        )
        .with_state_cache(config.state_cache_accounts);
        let lags = Arc::new(LagSamples::default());
        let projection: Arc<dyn Projection> = Arc::new(TimedProjection::new(
            Arc::new(database.read_model()),
            Arc::clone(&lags),
        ));
        let projector = FeedProjector::new(
            EMBEDDED_PROJECTOR,
            event_store,
            projection,
            Arc::new(database.checkpoints()),
            Arc::new(SystemClock),
            FeedProjectorConfig::default(),
            appended,
        );
        let (stop_projector, stop) = watch::channel(false);
        let projector = tokio::spawn(async move { projector.run(stop).await });
        Ok(Self {
            read_model: database.read_model(),
            database,
            commands,
            lags,
            stop_projector,
            projector,
        })
    }

    async fn execute(&self, operation: &Operation, key: &str) -> Result<Posted, FailureKind> {
        let request = request_of(operation)?;
        let context = CommandContext {
            caller: ledger_application::Caller::anonymous(),
            idempotency_key: IdempotencyKey::parse(key).map_err(|_| "bad key".to_owned())?,
            correlation_id: key.to_owned(),
            traceparent: None,
        };
        let executed =
            tokio::time::timeout(COMMAND_TIMEOUT, self.commands.execute(&context, &request)).await;
        match executed {
            Err(_) => Err("timeout".to_owned()),
            Ok(Ok(outcome)) => Ok(posted(&outcome)),
            Ok(Err(error)) => {
                // The HTTP adapter's own mapping, so both modes name a failure alike.
                let error = ApiError::from(error);
                Err(format!("{} {}", error.status_code().as_u16(), error.code()))
            }
        }
    }

    async fn projected(
        &self,
        account_id: &str,
        sequence: u64,
        within: Duration,
    ) -> Result<(), FailureKind> {
        let account_id = AccountId::parse(account_id).map_err(|_| "bad account id".to_owned())?;
        let deadline = Instant::now() + within;
        loop {
            match self.read_model.account(&account_id).await {
                Ok(Some(view)) if view.last_sequence >= sequence => return Ok(()),
                Ok(_) => {}
                Err(error) => return Err(format!("read model: {error}")),
            }
            if Instant::now() >= deadline {
                return Err("read model behind".to_owned());
            }
            tokio::time::sleep(PROJECTED_POLL).await;
        }
    }

    async fn stop(self) {
        let _ = self.stop_projector.send(true);
        let _ = self.projector.await;
        let _ = self.database.close().await;
    }
}

fn request_of(operation: &Operation) -> Result<CommandRequest, FailureKind> {
    let id = |text: &str| AccountId::parse(text).map_err(|_| format!("bad account id {text}"));
    Ok(match operation {
        Operation::Open { account_id } => open_request(id(account_id)?),
        Operation::Deposit { account_id, amount } => CommandRequest::Deposit {
            account_id: id(account_id)?,
            amount: *amount,
            description: None,
        },
        Operation::Transfer {
            source,
            target,
            amount,
        } => CommandRequest::Transfer {
            source_account_id: id(source)?,
            target_account_id: id(target)?,
            amount: *amount,
            description: None,
        },
    })
}

fn posted(outcome: &CommandOutcome) -> Posted {
    let event = match outcome {
        CommandOutcome::AccountOpened { event }
        | CommandOutcome::MoneyPosted { event }
        | CommandOutcome::StatusChanged { event, .. } => event,
        CommandOutcome::Transferred { source, .. } => source,
    };
    Posted {
        account_id: event.account_id.to_string(),
        sequence: event.sequence,
    }
}

/// The release `ledger-api` as a process on its own port, and a keep-alive client pool.
#[derive(Debug)]
pub struct HttpLedger {
    process: ApiProcess,
    client: reqwest::Client,
    base: String,
}

/// The child process; killed when dropped, so a failed workload leaves nothing running.
#[derive(Debug)]
struct ApiProcess {
    child: Child,
    log: PathBuf,
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A binary built beside this one (`cargo build` puts every binary of the workspace in one directory).
pub fn sibling_binary(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let path = exe.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found beside {}: build it in the same cargo invocation (scripts/bench.sh does)",
            path.display(),
            exe.display()
        ))
    }
}

/// `LEDGER_BENCH_AUTHORIZATION` (`Bearer <token>`), sent with every request when set: the ledger-api
/// child inherits this process's `LEDGER_AUTH_*`, so `scripts/bench.sh` with `LEDGER_BENCH_AUTH=jwt`
/// measures the API with token verification on. Unset: no header, and the child on loopback serves
/// unauthenticated.
fn authorization_header() -> Result<reqwest::header::HeaderMap, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(value) = std::env::var("LEDGER_BENCH_AUTHORIZATION") {
        let mut value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| "LEDGER_BENCH_AUTHORIZATION is not a header value".to_owned())?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(headers)
}

/// A port nobody listens on now (the OS picks it; it stays free in practice until the API binds it).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("cannot pick a port: {e}"))
}

impl HttpLedger {
    async fn start(path: &Path) -> Result<Self, String> {
        let binary = sibling_binary("ledger-api")?;
        let port = free_port()?;
        let log = path.with_extension("api.log");
        let log_file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        let child = Command::new(&binary)
            .env("LEDGER_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("LEDGER_SQLITE_PATH", path)
            .env("LEDGER_EVENT_STORE", "sqlite")
            .env("LEDGER_READ_MODEL", "sqlite")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut process = ApiProcess { child, log };
        let client = reqwest::Client::builder()
            .default_headers(authorization_header()?)
            .pool_max_idle_per_host(256)
            // Below actix-web's keep-alive (5 s): a connection idle through a drain is dropped here
            // first, not reused after the server closed it (a `transport` failure of the bench's
            // own making).
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .timeout(COMMAND_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let ready = client.get(format!("{base}/health/ready")).send().await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                break;
            }
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(format!(
                    "ledger-api exited ({status}) before it was ready; its log: {}",
                    std::fs::read_to_string(&process.log).unwrap_or_default()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "ledger-api was not ready within {READY_WITHIN:?}; log in {}",
                    process.log.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            process,
            client,
            base,
        })
    }

    async fn execute(&self, operation: &Operation, key: &str) -> Result<Posted, FailureKind> {
        let (path, body) = match operation {
            Operation::Open { account_id } => (
                "/v1/accounts".to_owned(),
                json!({"account_id": account_id, "owner": "Bench", "kind": "CHECKING", "currency": "USD"}),
            ),
            Operation::Deposit { account_id, amount } => (
                format!("/v1/accounts/{account_id}/deposits"),
                json!({"amount": amount.value().to_string()}),
            ),
            Operation::Transfer {
                source,
                target,
                amount,
            } => (
                "/v1/transfers".to_owned(),
                json!({"source_account_id": source, "target_account_id": target,
                    "amount": amount.value().to_string()}),
            ),
        };
        let sent = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .map_err(|e| transport_kind(&e))?;
        let status = sent.status();
        let answer: Value = sent.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(problem_kind(status.as_u16(), &answer));
        }
        // A transfer answers with its two legs: the source's is the one to wait for.
        let leg = answer.get("source").unwrap_or(&answer);
        match (
            leg.get("account_id").and_then(Value::as_str),
            leg.get("sequence").and_then(Value::as_u64),
        ) {
            (Some(account_id), Some(sequence)) => Ok(Posted {
                account_id: account_id.to_owned(),
                sequence,
            }),
            _ => Err(format!("{} without a sequence", status.as_u16())),
        }
    }

    async fn projected(
        &self,
        account_id: &str,
        sequence: u64,
        within: Duration,
    ) -> Result<(), FailureKind> {
        let deadline = Instant::now() + within;
        let url = format!(
            "{}/v1/accounts/{account_id}?min_sequence={sequence}",
            self.base
        );
        loop {
            let read = self
                .client
                .get(&url)
                .send()
                .await
                .map_err(|e| transport_kind(&e))?;
            let status = read.status();
            if status.is_success() {
                return Ok(());
            }
            let answer: Value = read.json().await.unwrap_or(Value::Null);
            // 503 read_model_behind: the server waited its bounded wait; ask again (after a
            // pause, in case another 503 answered at once).
            if status.as_u16() != 503 || Instant::now() >= deadline {
                return Err(problem_kind(status.as_u16(), &answer));
            }
            tokio::time::sleep(PROJECTED_POLL).await;
        }
    }

    fn stop(self) {
        drop(self.process);
    }
}

fn transport_kind(error: &reqwest::Error) -> FailureKind {
    if error.is_timeout() {
        "timeout".to_owned()
    } else if error.is_connect() {
        "transport: connect".to_owned()
    } else if error.is_body() || error.is_decode() {
        "transport: body".to_owned()
    } else {
        "transport: request".to_owned()
    }
}

/// `status code` from a problem body, or the status alone.
fn problem_kind(status: u16, answer: &Value) -> FailureKind {
    match answer.get("code").and_then(Value::as_str) {
        Some(code) => format!("{status} {code}"),
        None => status.to_string(),
    }
}
