//! Byte-for-byte parity of the two read models: one recorded history (several currencies, JPY and
//! KWD among them, every kind of event, an overdraft, a frozen and a closed account, several days,
//! unicode descriptions) is projected into the SQLite read model and into a fresh PostgreSQL one,
//! and every query the HTTP layer serves must answer both with the same status, content type and
//! body bytes: a client cannot tell which read model answered.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{App, test};
use chrono::{DateTime, TimeZone, Utc};
use ledger_application::memory::{InMemoryEventStore, InMemoryReadModel};
use ledger_application::ports::{
    Clock, EventFeed, Projection, ProjectionCheckpoints, ReadModelQuery, StoreError, UuidV7Ids,
};
use ledger_application::{
    CommandService, FeedProjector, FeedProjectorConfig, FreshnessWait, QueryService, RetryPolicy,
};
use ledger_http::HttpState;
use ledger_http::auth::Authentication;
use ledger_postgres::testkit::FreshDatabase;
use ledger_sqlite::SqliteDatabase;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// Pages walked at most per account, so a cursor that never ends cannot hang the test.
const PAGES_MAX: usize = 50;

/// How long a query waits for a `min_sequence` the read model never reaches: short, the answer is
/// known to be `503 read_model_behind`.
const BEHIND_WAIT: Duration = Duration::from_millis(100);

/// The clock of the history: set by the test before each command, so events land on chosen instants.
#[derive(Debug)]
struct SetClock(Mutex<DateTime<Utc>>);

impl SetClock {
    fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = at;
    }
}

impl Clock for SetClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

/// Day `day` of March 2026 at `h:m:s` and `micros` microseconds.
fn instant(day: u32, h: u32, m: u32, s: u32, micros: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, h, m, s)
        .single()
        .expect("a valid instant")
        + chrono::Duration::microseconds(i64::from(micros))
}

/// One command of the history: when it is sent, where, and with what body.
struct Step {
    at: DateTime<Utc>,
    path: &'static str,
    body: Value,
    /// The status the write side must answer; a refused command is part of the history too.
    status: u16,
}

fn step(at: DateTime<Utc>, path: &'static str, body: Value) -> Step {
    Step {
        at,
        path,
        body,
        status: 200,
    }
}

fn opened(at: DateTime<Utc>, body: Value) -> Step {
    Step {
        at,
        path: "/v1/accounts",
        body,
        status: 201,
    }
}

/// The history: four currencies (EUR and USD with 2 decimals, JPY with none, KWD with 3), deposits,
/// withdrawals, transfers both ways, an overdraft into a negative balance, a freeze with its reason,
/// an unfreeze, a close, a refused withdrawal, on four days with sub-second instants and two events
/// at one instant.
fn history() -> Vec<Step> {
    let mut steps = euro_history();
    steps.extend(yen_dinar_and_dollar_history());
    steps
}

/// Every opening, then the EUR accounts: an overdraft into the negative, transfers both ways, a
/// refusal.
fn euro_history() -> Vec<Step> {
    vec![
        opened(
            instant(2, 9, 0, 0, 1),
            json!({"account_id": "par-eur", "owner": "Zoë Ångström", "kind": "CHECKING",
                   "currency": "EUR", "overdraft_limit": "150.00"}),
        ),
        opened(
            instant(2, 9, 0, 0, 1),
            json!({"account_id": "par-eur-2", "owner": "Ōtomo Katsuhiro", "kind": "SAVINGS",
                   "currency": "EUR"}),
        ),
        opened(
            instant(2, 9, 5, 0, 0),
            json!({"account_id": "par-jpy", "owner": "山田 太郎", "kind": "CHECKING",
                   "currency": "JPY", "overdraft_limit": "5000"}),
        ),
        opened(
            instant(2, 9, 6, 0, 0),
            json!({"account_id": "par-jpy-2", "owner": "佐藤 花子", "kind": "SAVINGS",
                   "currency": "JPY"}),
        ),
        opened(
            instant(2, 9, 7, 0, 0),
            json!({"account_id": "par-kwd", "owner": "فاطمة", "kind": "CHECKING",
                   "currency": "KWD"}),
        ),
        opened(
            instant(2, 9, 8, 0, 0),
            json!({"account_id": "par-usd", "owner": "Bob", "kind": "CHECKING",
                   "currency": "USD"}),
        ),
        step(
            instant(2, 10, 0, 0, 123_456),
            "/v1/accounts/par-eur/deposits",
            json!({"amount": "100.00", "description": "Café ☕ — paie de mars"}),
        ),
        step(
            instant(2, 10, 0, 0, 123_456),
            "/v1/accounts/par-eur/deposits",
            json!({"amount": "0.5"}),
        ),
        step(
            instant(2, 23, 59, 59, 999_999),
            "/v1/transfers",
            json!({"source_account_id": "par-eur", "target_account_id": "par-eur-2",
                   "amount": "40", "description": "Miete 🏠 März"}),
        ),
        step(
            instant(3, 0, 0, 0, 0),
            "/v1/transfers",
            json!({"source_account_id": "par-eur-2", "target_account_id": "par-eur",
                   "amount": "15.25", "description": "zurück «danke»"}),
        ),
        step(
            instant(3, 8, 30, 0, 0),
            "/v1/accounts/par-eur/withdrawals",
            json!({"amount": "170.00", "description": "overdraft ✓"}),
        ),
        Step {
            at: instant(3, 8, 31, 0, 0),
            path: "/v1/accounts/par-eur/withdrawals",
            body: json!({"amount": "100.00"}),
            status: 422,
        },
    ]
}

/// The JPY, KWD and USD accounts: no decimals, three, a freeze and unfreeze, a close.
fn yen_dinar_and_dollar_history() -> Vec<Step> {
    vec![
        step(
            instant(3, 12, 0, 0, 0),
            "/v1/accounts/par-jpy/deposits",
            json!({"amount": "120000", "description": "給料 3月"}),
        ),
        step(
            instant(3, 12, 1, 0, 0),
            "/v1/transfers",
            json!({"source_account_id": "par-jpy", "target_account_id": "par-jpy-2",
                   "amount": "123456"}),
        ),
        step(
            instant(3, 12, 2, 0, 0),
            "/v1/transfers",
            json!({"source_account_id": "par-jpy-2", "target_account_id": "par-jpy",
                   "amount": "456"}),
        ),
        step(
            instant(3, 13, 0, 0, 0),
            "/v1/accounts/par-kwd/deposits",
            json!({"amount": "1.235", "description": "دفعة"}),
        ),
        step(
            instant(3, 13, 1, 0, 0),
            "/v1/accounts/par-kwd/withdrawals",
            json!({"amount": "0.005"}),
        ),
        step(
            instant(4, 7, 0, 0, 0),
            "/v1/accounts/par-kwd/freeze",
            json!({"reason": "vérification d’identité 🔍"}),
        ),
        step(
            instant(4, 7, 30, 0, 0),
            "/v1/accounts/par-kwd/unfreeze",
            json!({}),
        ),
        step(
            instant(4, 8, 0, 0, 0),
            "/v1/accounts/par-eur-2/freeze",
            json!({"reason": "court order"}),
        ),
        step(
            instant(6, 18, 0, 0, 0),
            "/v1/accounts/par-usd/deposits",
            json!({"amount": "10.00"}),
        ),
        step(
            instant(6, 18, 0, 1, 0),
            "/v1/accounts/par-usd/withdrawals",
            json!({"amount": "10"}),
        ),
        step(
            instant(6, 18, 0, 2, 0),
            "/v1/accounts/par-usd/close",
            json!({}),
        ),
    ]
}

/// Runs the history through the real HTTP command endpoints on an in-memory event store, and
/// returns the store: its recorded events are what both read models are fed.
async fn record_history() -> Arc<InMemoryEventStore> {
    let store = Arc::new(InMemoryEventStore::new());
    let clock = Arc::new(SetClock(Mutex::new(instant(1, 0, 0, 0, 0))));
    let commands = CommandService::new(
        store.clone(),
        clock.clone(),
        Arc::new(UuidV7Ids),
        RetryPolicy::default(),
    );
    let state = HttpState {
        commands: Arc::new(commands),
        // The write side's queries are not asked: the read models under test answer them.
        queries: Arc::new(QueryService::new(
            Arc::new(InMemoryReadModel::new()),
            FreshnessWait::default(),
        )),
        health_checks: Vec::new(),
        // Tests of what is served, not of who may ask: authentication off, as on loopback.
        authentication: Authentication::Disabled,
    };
    let app = test::init_service(App::new().configure(ledger_http::configure(state))).await;
    for (index, step) in history().into_iter().enumerate() {
        clock.set(step.at);
        let request = test::TestRequest::post()
            .uri(step.path)
            .insert_header(("Idempotency-Key", format!("parity-{index}")))
            .set_json(&step.body)
            .to_request();
        let response = test::call_service(&app, request).await;
        let status = response.status().as_u16();
        let body = test::read_body(response).await;
        assert_eq!(
            status,
            step.status,
            "command {index} {}: {}",
            step.path,
            String::from_utf8_lossy(&body)
        );
    }
    store
}

/// Projects every recorded event of `feed` into `projection`, as the embedded projector does.
async fn project(
    feed: Arc<dyn EventFeed>,
    projection: Arc<dyn Projection>,
    checkpoints: Arc<dyn ProjectionCheckpoints>,
) -> Result<usize, StoreError> {
    let projector = FeedProjector::new(
        "parity",
        feed,
        projection,
        checkpoints,
        Arc::new(ledger_application::ports::SystemClock),
        FeedProjectorConfig {
            // Small batches, so that batch boundaries fall inside the history.
            batch_size: 7,
            ..FeedProjectorConfig::default()
        },
        Arc::new(Notify::new()),
    );
    projector.catch_up().await
}

/// One answer as a client sees it: what was asked, the status, the content type and the body bytes.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    uri: String,
    status: u16,
    content_type: String,
    body: String,
}

/// Every query to put to both read models.
enum Probe {
    Get(String),
    /// `GET /transactions` page after page with `limit`, following each page's own `next_cursor`.
    WalkTransactions {
        account_id: &'static str,
        limit: usize,
        min_sequence: Option<u64>,
    },
}

const ACCOUNTS: [&str; 6] = [
    "par-eur",
    "par-eur-2",
    "par-jpy",
    "par-jpy-2",
    "par-kwd",
    "par-usd",
];

fn probes() -> Vec<Probe> {
    let mut probes = Vec::new();
    let as_of_instants = [
        // Before any account opened, and between the openings.
        "2026-03-01T00:00:00Z",
        "2026-03-02T09:00:00.000001Z",
        "2026-03-02T09:06:30Z",
        // Exactly at events' instants (two deposits share one), a microsecond before and after.
        "2026-03-02T10:00:00.123455Z",
        "2026-03-02T10:00:00.123456Z",
        "2026-03-02T10:00:00.123457Z",
        "2026-03-02T23:59:59.999999Z",
        "2026-03-03T00:00:00Z",
        "2026-03-03T08:30:00Z",
        "2026-03-03T12:01:00Z",
        "2026-03-03T13:00:30Z",
        // In another offset: the same instant as 2026-03-03T12:01:00Z.
        "2026-03-03T21:01:00%2B09:00",
        // After everything.
        "2026-03-10T00:00:00Z",
        "2030-01-01T00:00:00Z",
    ];
    let day_ranges = [
        ("2026-03-01", "2026-03-31"),
        ("2026-03-02", "2026-03-02"),
        ("2026-03-03", "2026-03-04"),
        ("2026-03-05", "2026-03-05"),
        ("2026-03-06", "2026-03-06"),
        ("2025-03-06", "2026-03-05"),
    ];
    for account_id in ACCOUNTS {
        probes.push(Probe::Get(format!("/v1/accounts/{account_id}")));
        // Answered at once (reached), and waited for in vain (beyond the last event).
        probes.push(Probe::Get(format!(
            "/v1/accounts/{account_id}?min_sequence=1"
        )));
        probes.push(Probe::Get(format!(
            "/v1/accounts/{account_id}?min_sequence=99"
        )));
        for limit in [1, 2, 3, 200] {
            probes.push(Probe::WalkTransactions {
                account_id,
                limit,
                min_sequence: None,
            });
        }
        probes.push(Probe::WalkTransactions {
            account_id,
            limit: 2,
            min_sequence: Some(2),
        });
        probes.push(Probe::Get(format!(
            "/v1/accounts/{account_id}/transactions?min_sequence=99"
        )));
        probes.push(Probe::Get(format!(
            "/v1/accounts/{account_id}/transactions?cursor=1000&limit=5"
        )));
        for as_of in as_of_instants {
            probes.push(Probe::Get(format!(
                "/v1/accounts/{account_id}/balance?as_of={as_of}"
            )));
        }
        probes.push(Probe::Get(format!(
            "/v1/accounts/{account_id}/balance?as_of=2026-03-10T00:00:00Z&min_sequence=1"
        )));
        probes.push(Probe::Get(format!(
            "/v1/accounts/{account_id}/balance?as_of=2026-03-10T00:00:00Z&min_sequence=99"
        )));
        for (from, to) in day_ranges {
            probes.push(Probe::Get(format!(
                "/v1/accounts/{account_id}/daily-balances?from={from}&to={to}"
            )));
        }
        probes.push(Probe::Get(format!(
            "/v1/accounts/{account_id}/daily-balances?from=2026-03-01&to=2026-03-31&min_sequence=2"
        )));
        probes.push(Probe::Get(format!(
            "/v1/accounts/{account_id}/daily-balances?from=2026-03-01&to=2026-03-31&min_sequence=99"
        )));
    }
    // An account neither model has.
    probes.push(Probe::Get("/v1/accounts/par-nobody".to_owned()));
    probes.push(Probe::Get(
        "/v1/accounts/par-nobody/transactions".to_owned(),
    ));
    probes.push(Probe::Get(
        "/v1/accounts/par-nobody/balance?as_of=2026-03-10T00:00:00Z".to_owned(),
    ));
    probes.push(Probe::Get(
        "/v1/accounts/par-nobody/daily-balances?from=2026-03-01&to=2026-03-31".to_owned(),
    ));
    probes.push(Probe::Get(
        "/v1/accounts/par-nobody?min_sequence=1".to_owned(),
    ));
    probes
}

/// `GET uri` on `app`, as an [`Answer`]. A macro, since the test service's type cannot be named.
macro_rules! get {
    ($app:expr, $uri:expr) => {{
        let uri: String = $uri;
        let response =
            test::call_service($app, test::TestRequest::get().uri(&uri).to_request()).await;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .unwrap_or_default();
        let body = String::from_utf8(test::read_body(response).await.to_vec()).expect("UTF-8 JSON");
        Answer {
            uri,
            status,
            content_type,
            body,
        }
    }};
}

/// Every probe's answers from the real HTTP query endpoints over `read_model`, in probe order.
async fn answers(read_model: Arc<dyn ReadModelQuery>) -> Vec<Answer> {
    let state = HttpState {
        // No command is sent here; the service needs a store all the same.
        commands: Arc::new(CommandService::new(
            Arc::new(InMemoryEventStore::new()),
            Arc::new(ledger_application::ports::SystemClock),
            Arc::new(UuidV7Ids),
            RetryPolicy::default(),
        )),
        queries: Arc::new(QueryService::new(
            read_model,
            FreshnessWait {
                timeout: BEHIND_WAIT,
                ..FreshnessWait::default()
            },
        )),
        health_checks: Vec::new(),
        // Tests of what is served, not of who may ask: authentication off, as on loopback.
        authentication: Authentication::Disabled,
    };
    let app = test::init_service(App::new().configure(ledger_http::configure(state))).await;
    let mut answers = Vec::new();
    for probe in probes() {
        match probe {
            Probe::Get(uri) => answers.push(get!(&app, uri)),
            Probe::WalkTransactions {
                account_id,
                limit,
                min_sequence,
            } => {
                let wait = min_sequence.map_or_else(String::new, |n| format!("&min_sequence={n}"));
                let mut cursor: Option<String> = None;
                for page in 0.. {
                    assert!(
                        page < PAGES_MAX,
                        "{account_id}: more than {PAGES_MAX} pages"
                    );
                    let after = cursor
                        .as_ref()
                        .map_or_else(String::new, |cursor| format!("&cursor={cursor}"));
                    let answer = get!(
                        &app,
                        format!(
                            "/v1/accounts/{account_id}/transactions?limit={limit}{after}{wait}"
                        )
                    );
                    let body: Value = serde_json::from_str(&answer.body).expect("a JSON body");
                    cursor = body["next_cursor"].as_str().map(str::to_owned);
                    answers.push(answer);
                    if cursor.is_none() {
                        break;
                    }
                }
            }
        }
    }
    answers
}

/// Fails naming every query whose answers differ, with both answers.
fn assert_same_answers(sqlite: &[Answer], postgres: &[Answer]) {
    let differences: Vec<String> = sqlite
        .iter()
        .zip(postgres)
        .filter(|(sqlite, postgres)| sqlite != postgres)
        .map(|(sqlite, postgres)| format!("SQLite:     {sqlite:?}\nPostgreSQL: {postgres:?}"))
        .collect();
    assert!(
        differences.is_empty(),
        "{} of {} answers differ:\n{}",
        differences.len(),
        sqlite.len(),
        differences.join("\n\n")
    );
    assert_eq!(
        sqlite.len(),
        postgres.len(),
        "the walks took different numbers of pages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_answers_the_same_bytes_on_sqlite_and_postgres() {
    let store = record_history().await;
    let feed: Arc<dyn EventFeed> = store;

    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = SqliteDatabase::open(&dir.path().join("parity.db"))
        .await
        .expect("open the SQLite read model");
    let postgres_database = FreshDatabase::create().await;
    let postgres = postgres_database.read_model().await;

    let projected_sqlite = project(
        Arc::clone(&feed),
        Arc::new(sqlite.read_model()),
        Arc::new(sqlite.checkpoints()),
    )
    .await
    .expect("project into SQLite");
    let projected_postgres = project(
        Arc::clone(&feed),
        Arc::new(postgres.clone()),
        Arc::new(postgres.checkpoints()),
    )
    .await
    .expect("project into PostgreSQL");
    assert_eq!(projected_sqlite, projected_postgres);
    assert_eq!(projected_sqlite, 26, "every recorded event was fed to both");

    let from_sqlite = answers(Arc::new(sqlite.read_model())).await;
    let from_postgres = answers(Arc::new(postgres.clone())).await;
    assert_same_answers(&from_sqlite, &from_postgres);

    // The comparison covered every kind of answer: not a suite of identical 404s.
    let statuses: std::collections::BTreeSet<u16> =
        from_sqlite.iter().map(|answer| answer.status).collect();
    assert_eq!(
        statuses,
        [200, 404, 503].into_iter().collect(),
        "{from_sqlite:#?}"
    );
    let bodies = from_sqlite
        .iter()
        .map(|answer| answer.body.as_str())
        .collect::<String>();
    for expected in [
        "\"balance\":\"-94.25\"",
        "\"balance\":\"1.230\"",
        "\"balance\":\"0\"",
        "\"status\":\"CLOSED\"",
        "\"frozen_reason\":\"court order\"",
        "Café ☕ — paie de mars",
        "\"next_cursor\":\"2\"",
        "read_model_behind",
        "did not exist at",
    ] {
        assert!(
            bodies.contains(expected),
            "no answer contains {expected}: {from_sqlite:#?}"
        );
    }

    postgres.close().await;
    sqlite.close().await.expect("close SQLite");
}
