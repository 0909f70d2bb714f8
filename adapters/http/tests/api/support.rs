//! The test bench: the real HTTP adapter over the real in-memory stores, plus store ports that fail
//! in the ways a production store can, and helpers to send requests and read problems.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::App;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::test::{self, TestRequest};
use actix_web::web::Bytes;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ledger_application::memory::{InMemoryCheckpoints, InMemoryEventStore, InMemoryReadModel};
use ledger_application::ports::{
    AccountView, AppendError, AtomicAppend, DailyBalanceView, EventFeed, EventStore, HealthCheck,
    ReadModelQuery, StoreError, SystemClock, TransactionView, UuidV7Ids,
};
use ledger_application::{
    CommandService, FeedProjector, FeedProjectorConfig, FreshnessWait, IdempotencyRecord,
    QueryService, RecordedEvent, RetryPolicy, ScopedIdempotencyKey,
};
use ledger_domain::AccountId;
use ledger_http::auth::Authentication;
use ledger_http::{HttpState, configure};
use serde_json::Value;
use tokio::sync::Notify;

/// A secret no response body may ever contain: failing ports put it in their error messages.
pub const SECRET: &str = "db-password=hunter2 at 10.0.0.7:5432 table events row 17";

/// How long a query waits for `min_sequence` in these tests: short, so the "behind" case is quick.
pub const FRESHNESS_TIMEOUT: Duration = Duration::from_millis(50);

type ReplyFuture = Pin<Box<dyn Future<Output = Reply>>>;

/// The app under test, initialised as `App::new().configure(configure(state))` exactly as the
/// bootstrap mounts it. Its service type is erased behind a closure so helpers can take it.
pub struct TestApp {
    send: Box<dyn Fn(TestRequest) -> ReplyFuture>,
}

impl TestApp {
    pub async fn send(&self, request: TestRequest) -> Reply {
        (self.send)(request).await
    }
}

/// The whole ledger on in-memory stores, nothing mocked.
pub struct Ledger {
    pub store: Arc<InMemoryEventStore>,
    pub read_model: Arc<InMemoryReadModel>,
    projector: FeedProjector,
}

impl Ledger {
    pub fn new() -> Self {
        let store = Arc::new(InMemoryEventStore::new());
        let read_model = Arc::new(InMemoryReadModel::new());
        let projector = FeedProjector::new(
            "http-tests",
            Arc::clone(&store) as Arc<dyn EventFeed>,
            Arc::clone(&read_model) as _,
            Arc::new(InMemoryCheckpoints::new()),
            Arc::new(SystemClock),
            FeedProjectorConfig::default(),
            Arc::new(Notify::new()),
        );
        Self {
            store,
            read_model,
            projector,
        }
    }

    pub fn state(&self) -> HttpState {
        state(
            Arc::clone(&self.store) as _,
            Arc::clone(&self.read_model) as _,
            Vec::new(),
        )
    }

    pub async fn app(&self) -> TestApp {
        app(self.state()).await
    }

    /// Brings the read model up to date with every event written so far.
    pub async fn project(&self) {
        self.projector
            .catch_up()
            .await
            .expect("projection succeeds");
    }

    /// Every event of an account's stream.
    pub async fn events(&self, account_id: &str) -> Vec<RecordedEvent> {
        let account_id = AccountId::parse(account_id).expect("valid id");
        self.store.load(&account_id, 0).await.expect("load")
    }
}

pub fn state(
    store: Arc<dyn EventStore>,
    read_model: Arc<dyn ReadModelQuery>,
    health_checks: Vec<Arc<dyn HealthCheck>>,
) -> HttpState {
    HttpState {
        commands: Arc::new(CommandService::new(
            store,
            Arc::new(SystemClock),
            Arc::new(UuidV7Ids),
            RetryPolicy {
                attempts_max: 3,
                backoff_base: Duration::from_millis(1),
                backoff_max: Duration::from_millis(2),
            },
        )),
        queries: Arc::new(QueryService::new(
            read_model,
            FreshnessWait {
                timeout: FRESHNESS_TIMEOUT,
                poll_interval: Duration::from_millis(5),
            },
        )),
        health_checks,
        authentication: Authentication::Disabled,
    }
}

pub async fn app(state: HttpState) -> TestApp {
    let service = Rc::new(test::init_service(App::new().configure(configure(state))).await);
    TestApp {
        send: Box::new(move |request: TestRequest| -> ReplyFuture {
            let service = Rc::clone(&service);
            Box::pin(async move {
                let response = test::call_service(&*service, request.to_request()).await;
                let status = response.status();
                let headers = response.headers().clone();
                let body = test::read_body(response).await;
                Reply {
                    status,
                    headers,
                    body,
                }
            })
        }),
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Asserts a success status and returns the JSON body.
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        self.json()
    }

    /// Asserts a problem+json body with this status and code, and returns it.
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {code}, body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{code}"
        );
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status, "{body}");
        assert_eq!(body["type"], format!("urn:ledger:problem:{code}"), "{body}");
        assert!(
            body["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{body}"
        );
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
        let text = String::from_utf8_lossy(&self.body);
        assert!(!text.contains(SECRET), "a problem leaks internals: {text}");
        body
    }

    /// The fields named by a `validation_failed` problem, in order.
    pub fn invalid_fields(&self) -> Vec<String> {
        let body = self.problem(400, "validation_failed");
        body["errors"]
            .as_array()
            .expect("errors is a list")
            .iter()
            .map(|error| {
                assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
                error["field"].as_str().expect("field").to_owned()
            })
            .collect()
    }
}

/// A fresh idempotency key.
pub fn key() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("test-key-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A command with a fresh key and a JSON body.
pub fn command(path: &str, body: &Value) -> TestRequest {
    command_with_key(path, &key(), body)
}

pub fn command_with_key(path: &str, key: &str, body: &Value) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header(("Idempotency-Key", key))
        .set_json(body)
}

/// A command with a fresh key and a raw body of the given content type.
pub fn raw_command(path: &str, content_type: &str, body: impl Into<Bytes>) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header(("Idempotency-Key", key()))
        .insert_header(("Content-Type", content_type))
        .set_payload(body.into())
}

pub fn get(path: &str) -> TestRequest {
    TestRequest::get().uri(path)
}

/// Opens `id` in `currency` and returns the response body.
pub async fn open(app: &TestApp, id: &str, currency: &str) -> Value {
    open_with(
        app,
        &serde_json::json!({"account_id": id, "owner": "Ada Lovelace", "kind": "CHECKING", "currency": currency}),
    )
    .await
}

pub async fn open_with(app: &TestApp, body: &Value) -> Value {
    app.send(command("/v1/accounts", body)).await.ok(201)
}

pub async fn deposit(app: &TestApp, id: &str, amount: &str) -> Value {
    app.send(command(
        &format!("/v1/accounts/{id}/deposits"),
        &serde_json::json!({ "amount": amount }),
    ))
    .await
    .ok(200)
}

pub async fn freeze(app: &TestApp, id: &str) -> Value {
    app.send(command(
        &format!("/v1/accounts/{id}/freeze"),
        &serde_json::json!({ "reason": "suspected fraud" }),
    ))
    .await
    .ok(200)
}

/// An event store whose data cannot be decoded: every read fails as `Corrupt`.
#[derive(Debug)]
pub struct CorruptStore;

#[async_trait]
impl EventStore for CorruptStore {
    async fn load(&self, _: &AccountId, _: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        Err(StoreError::corrupt(SECRET))
    }

    async fn append(&self, _: AtomicAppend) -> Result<(), AppendError> {
        Err(AppendError::Store(StoreError::corrupt(SECRET)))
    }

    async fn idempotency_record(
        &self,
        _: &ScopedIdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(None)
    }
}

/// An event store that cannot be reached.
#[derive(Debug)]
pub struct UnreachableStore;

#[async_trait]
impl EventStore for UnreachableStore {
    async fn load(&self, _: &AccountId, _: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        Err(StoreError::unavailable(SECRET))
    }

    async fn append(&self, _: AtomicAppend) -> Result<(), AppendError> {
        Err(AppendError::Store(StoreError::unavailable(SECRET)))
    }

    async fn idempotency_record(
        &self,
        _: &ScopedIdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Err(StoreError::unavailable(SECRET))
    }
}

/// The in-memory store, except that every append loses the optimistic-concurrency race, as it
/// would under a writer that always gets there first.
#[derive(Debug, Default)]
pub struct ContendedStore {
    inner: InMemoryEventStore,
}

#[async_trait]
impl EventStore for ContendedStore {
    async fn load(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.load(account_id, after_sequence).await
    }

    async fn append(&self, append: AtomicAppend) -> Result<(), AppendError> {
        Err(AppendError::Conflict {
            account_id: append.streams()[0].account_id.clone(),
        })
    }

    async fn idempotency_record(
        &self,
        key: &ScopedIdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.idempotency_record(key).await
    }
}

/// A read model whose rows cannot be decoded.
#[derive(Debug)]
pub struct CorruptReadModel;

#[async_trait]
impl ReadModelQuery for CorruptReadModel {
    async fn account(&self, _: &AccountId) -> Result<Option<AccountView>, StoreError> {
        Err(StoreError::corrupt(SECRET))
    }

    async fn transactions(
        &self,
        _: &AccountId,
        _: u64,
        _: usize,
    ) -> Result<Vec<TransactionView>, StoreError> {
        Err(StoreError::corrupt(SECRET))
    }

    async fn last_transaction_at_or_before(
        &self,
        _: &AccountId,
        _: DateTime<Utc>,
    ) -> Result<Option<TransactionView>, StoreError> {
        Err(StoreError::corrupt(SECRET))
    }

    async fn daily_balances(
        &self,
        _: &AccountId,
        _: NaiveDate,
        _: NaiveDate,
        _: usize,
    ) -> Result<Vec<DailyBalanceView>, StoreError> {
        Err(StoreError::corrupt(SECRET))
    }
}

/// A readiness check with a fixed answer.
#[derive(Debug)]
pub struct FixedCheck {
    pub name: &'static str,
    pub healthy: bool,
}

#[async_trait]
impl HealthCheck for FixedCheck {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn check(&self) -> Result<(), StoreError> {
        if self.healthy {
            Ok(())
        } else {
            Err(StoreError::unavailable(SECRET))
        }
    }
}
