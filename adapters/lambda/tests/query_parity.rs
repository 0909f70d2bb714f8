//! The query Lambda answers exactly as the actix service: a recorded history is projected into a
//! fresh PostgreSQL read model, and every query and every error case is sent to both — to actix
//! through `ledger_http::configure`, to the Lambda handler as real API Gateway HTTP API (v2) event
//! JSON deserialised and converted as `lambda_http`'s runtime does — comparing status, headers and
//! body bytes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, test};
use chrono::{DateTime, TimeZone, Utc};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request};
use ledger_application::memory::{InMemoryCheckpoints, InMemoryEventStore, InMemoryReadModel};
use ledger_application::ports::{Clock, EventFeed, HealthCheck, SystemClock, UuidV7Ids};
use ledger_application::{
    CommandService, DeadLetterCheck, FeedProjector, FeedProjectorConfig, FreshnessWait,
    QueryService, RetryPolicy,
};
use ledger_http::HttpState;
use ledger_http::auth::testkit::{self, TestKey};
use ledger_http::auth::{Authentication, JwtVerifier};
use ledger_lambda::query::{QueryFunctionState, handle_query_request};
use ledger_postgres::PostgresReadModel;
use ledger_postgres::testkit::FreshDatabase;
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The checked-in event, shaped verbatim as API Gateway sends it; every other request is derived
/// from it by substituting the method, `rawPath` and `rawQueryString`.
const GET_EVENT: &str = include_str!("events/apigw-v2-get.json");

/// The client's correlation id in the checked-in event.
const FIXTURE_CORRELATION_ID: &str = "parity-correlation-7";

/// How long a query waits for a `min_sequence` the model never reaches: short, the answer is known.
const BEHIND_WAIT: Duration = Duration::from_millis(100);

/// Pages walked at most, so that a cursor that never ends cannot hang the test.
const PAGES_MAX: usize = 20;

/// The clock of the history, set before each command so that events land on chosen instants.
#[derive(Debug)]
struct SetClock(Mutex<DateTime<Utc>>);

impl Clock for SetClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

fn march(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0)
        .single()
        .expect("a valid instant")
}

/// Opens, deposits, an overdraft, transfers both ways, a refusal, a freeze, a close; EUR and JPY.
fn history() -> Vec<(DateTime<Utc>, &'static str, Value)> {
    vec![
        (
            march(2, 9, 0),
            "/v1/accounts",
            json!({"account_id": "par-eur", "owner": "Zoë Ångström", "kind": "CHECKING",
                   "currency": "EUR", "overdraft_limit": "150.00"}),
        ),
        (
            march(2, 9, 1),
            "/v1/accounts",
            json!({"account_id": "par-eur-2", "owner": "Bob", "kind": "SAVINGS", "currency": "EUR"}),
        ),
        (
            march(2, 9, 2),
            "/v1/accounts",
            json!({"account_id": "par-jpy", "owner": "山田 太郎", "kind": "CHECKING", "currency": "JPY"}),
        ),
        (
            march(2, 10, 0),
            "/v1/accounts/par-eur/deposits",
            json!({"amount": "100.00", "description": "Café ☕"}),
        ),
        (
            march(2, 23, 59),
            "/v1/transfers",
            json!({"source_account_id": "par-eur", "target_account_id": "par-eur-2", "amount": "40"}),
        ),
        (
            march(3, 8, 30),
            "/v1/accounts/par-eur/withdrawals",
            json!({"amount": "170.00"}),
        ),
        (
            march(3, 9, 0),
            "/v1/transfers",
            json!({"source_account_id": "par-eur-2", "target_account_id": "par-eur", "amount": "15.25"}),
        ),
        (
            march(3, 12, 0),
            "/v1/accounts/par-jpy/deposits",
            json!({"amount": "120000"}),
        ),
        (
            march(4, 7, 0),
            "/v1/accounts/par-eur-2/freeze",
            json!({"reason": "court order"}),
        ),
        (
            march(4, 8, 0),
            "/v1/accounts/par-jpy/withdrawals",
            json!({"amount": "120000"}),
        ),
        (march(4, 9, 0), "/v1/accounts/par-jpy/close", json!({})),
    ]
}

/// Runs the history through the real command endpoints on an in-memory event store.
async fn record_history() -> Arc<InMemoryEventStore> {
    let store = Arc::new(InMemoryEventStore::new());
    let clock = Arc::new(SetClock(Mutex::new(march(1, 0, 0))));
    let state = HttpState {
        commands: Arc::new(CommandService::new(
            store.clone(),
            clock.clone(),
            Arc::new(UuidV7Ids),
            RetryPolicy::default(),
        )),
        queries: Arc::new(QueryService::new(
            Arc::new(InMemoryReadModel::new()),
            FreshnessWait::default(),
        )),
        health_checks: Vec::new(),
        // Tests of what is served, not of who may ask: authentication off, as on loopback.
        authentication: Authentication::Disabled,
    };
    let app = test::init_service(App::new().configure(ledger_http::configure(state))).await;
    for (index, (at, path, body)) in history().into_iter().enumerate() {
        *clock.0.lock().expect("clock lock") = at;
        let request = test::TestRequest::post()
            .uri(path)
            .insert_header(("Idempotency-Key", format!("lambda-parity-{index}")))
            .set_json(&body)
            .to_request();
        let response = test::call_service(&app, request).await;
        let status = response.status();
        let body = test::read_body(response).await;
        assert!(
            status.is_success(),
            "command {index} {path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    store
}

/// One request: method, path (percent-encoded as sent) and raw query string, whether the client
/// sends its own correlation id, and its `Authorization` header (a read token unless said).
#[derive(Debug, Clone)]
struct Probe {
    method: &'static str,
    path: String,
    query: String,
    with_correlation_id: bool,
    authorization: Option<String>,
}

fn get(path: &str, query: &str) -> Probe {
    Probe {
        method: "GET",
        path: path.to_owned(),
        query: query.to_owned(),
        with_correlation_id: true,
        authorization: Some(testkit::bearer("ledger:read")),
    }
}

/// `probe` with `authorization` as its header (`None`: no header).
fn with_authorization(probe: Probe, authorization: Option<String>) -> Probe {
    Probe {
        authorization,
        ..probe
    }
}

/// `method` on `path` with an admin token, which every route lets through to its method check.
fn call(method: &'static str, path: &str) -> Probe {
    Probe {
        method,
        authorization: Some(testkit::bearer("ledger:admin")),
        ..get(path, "")
    }
}

/// The event API Gateway would send for `probe`: the checked-in one with method, paths and query
/// string substituted (and the route key of a catch-all route, with no path parameters, since
/// the handler routes by the raw path itself).
fn event_for(probe: &Probe) -> Value {
    let mut event: Value = serde_json::from_str(GET_EVENT).expect("the fixture is JSON");
    if probe.path != "/v1/accounts/par-eur" || probe.method != "GET" {
        event["routeKey"] = json!("$default");
        event["requestContext"]["routeKey"] = json!("$default");
        event
            .as_object_mut()
            .expect("an object")
            .remove("pathParameters");
    }
    event["rawPath"] = json!(probe.path);
    event["rawQueryString"] = json!(probe.query);
    event["requestContext"]["http"]["method"] = json!(probe.method);
    event["requestContext"]["http"]["path"] = json!(probe.path);
    if !probe.with_correlation_id {
        event["headers"]
            .as_object_mut()
            .expect("headers")
            .remove("x-correlation-id");
    }
    if let Some(authorization) = &probe.authorization {
        event["headers"]["authorization"] = json!(authorization);
    }
    event
}

/// What a client sees: status, every response header (a minted correlation id as `<minted>`,
/// after checking it is a UUID) and the body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn answer_of<'a>(
    status: u16,
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    body: &[u8],
    probe: &Probe,
) -> Answer {
    let mut headers: Vec<(String, String)> = headers
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value).into_owned();
            let value = if name == "x-correlation-id" && !probe.with_correlation_id {
                assert!(uuid::Uuid::parse_str(&value).is_ok(), "minted: {value}");
                "<minted>".to_owned()
            } else {
                value
            };
            (name.to_owned(), value)
        })
        .collect();
    headers.sort();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).expect("a UTF-8 body"),
    }
}

async fn lambda_answer(state: &QueryFunctionState, probe: &Probe) -> Answer {
    // As the runtime does: the invocation's JSON into `LambdaRequest`, then into `http::Request`.
    let event = serde_json::to_string(&event_for(probe)).expect("serialise the event");
    let lambda_request: LambdaRequest =
        serde_json::from_str(&event).expect("an API Gateway v2 request");
    let request = Request::from(lambda_request);
    let response = handle_query_request(state, request).await;
    let body = match response.body() {
        Body::Text(text) => text.as_bytes().to_vec(),
        other => panic!("a JSON answer is text, not {other:?}"),
    };
    answer_of(
        response.status().as_u16(),
        response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
        &body,
        probe,
    )
}

/// `probe` on the actix app, with the event's own headers. A macro: the service type has no name.
macro_rules! actix_answer {
    ($app:expr, $probe:expr) => {{
        let probe: &Probe = $probe;
        let event = event_for(probe);
        let uri = if probe.query.is_empty() {
            probe.path.clone()
        } else {
            format!("{}?{}", probe.path, probe.query)
        };
        let mut request = test::TestRequest::default()
            .method(probe.method.parse().expect("a method"))
            .uri(&uri);
        for (name, value) in event["headers"].as_object().expect("headers") {
            request = request.insert_header((name.as_str(), value.as_str().expect("a text value")));
        }
        let response = test::call_service($app, request.to_request()).await;
        let status = response.status().as_u16();
        let headers: Vec<(String, Vec<u8>)> = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        let body = test::read_body(response).await;
        answer_of(
            status,
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_slice())),
            &body,
            probe,
        )
    }};
}

const ACCOUNTS: [&str; 3] = ["par-eur", "par-eur-2", "par-jpy"];

/// Every query with its parameters, and every error case a query can meet.
fn probes() -> Vec<Probe> {
    let mut probes: Vec<Probe> = ACCOUNTS.into_iter().flat_map(account_probes).collect();
    probes.extend(route_probes());
    probes.extend(token_probes());
    probes
}

/// Every way a caller can be refused (and let in), on a query, an operation, health, an unknown
/// path and a wrong method: the `401`/`403` answers must be the same bytes from both.
fn token_probes() -> Vec<Probe> {
    let claims = |scope: &str| testkit::claims("parity-subject", scope);
    let now = testkit::now_seconds();
    let mut expired = claims("ledger:read");
    expired["exp"] = json!(now - 120);
    let mut wrong_issuer = claims("ledger:read");
    wrong_issuer["iss"] = json!("https://someone-else.test/");
    let mut wrong_audience = claims("ledger:read");
    wrong_audience["aud"] = json!("another-api");
    let bearer = |token: String| Some(format!("Bearer {token}"));
    let authorizations = [
        None,
        Some("Basic dXNlcjpwYXNz".to_owned()),
        Some("Bearer".to_owned()),
        Some("Bearer not-a-jwt".to_owned()),
        bearer(testkit::token(TestKey::Ec, &claims("ledger:read"))),
        bearer(testkit::token(TestKey::Rsa, &claims("ledger:write"))),
        bearer(testkit::token(TestKey::Ec, &claims("ledger:admin"))),
        bearer(testkit::token(TestKey::Rsa, &expired)),
        bearer(testkit::token(TestKey::RsaImpostor, &claims("ledger:read"))),
        bearer(testkit::token(TestKey::RsaRotated, &claims("ledger:read"))),
        bearer(testkit::token(TestKey::Rsa, &wrong_issuer)),
        bearer(testkit::token(TestKey::Rsa, &wrong_audience)),
        bearer(testkit::hs256_with_public_key_as_secret(&claims(
            "ledger:read",
        ))),
        bearer(testkit::token_with_header(
            &json!({"alg": "none", "typ": "JWT", "kid": "test-rsa-1"}),
            &claims("ledger:read"),
            b"",
        )),
    ];
    let targets = [
        get("/v1/accounts/par-eur", ""),
        get("/v1/accounts/par-eur/balance", "as_of=2026-03-03T08:30:00Z"),
        get("/openapi.json", ""),
        get("/health/ready", ""),
        get("/v1/nothing", ""),
        call("DELETE", "/v1/accounts/par-eur"),
    ];
    targets
        .iter()
        .flat_map(|target| {
            authorizations
                .iter()
                .map(|authorization| with_authorization(target.clone(), authorization.clone()))
        })
        .collect()
}

/// Every query of one account: answered, waited for in vain, and refused for its parameters.
fn account_probes(account: &str) -> Vec<Probe> {
    let mut probes = Vec::new();
    let base = format!("/v1/accounts/{account}");
    for query in ["", "min_sequence=1", "min_sequence=0", "min_sequence=99"] {
        probes.push(get(&base, query));
    }
    let transactions = format!("{base}/transactions");
    for query in [
        "",
        "limit=200",
        "cursor=1000&limit=5",
        "min_sequence=99",
        "limit=0",
        "limit=ten&cursor=x&min_sequence=-1",
        "cursor=18446744073709551615",
        "limt=5",
        "limit=5&limit=6",
    ] {
        probes.push(get(&transactions, query));
    }
    let balance = format!("{base}/balance");
    for query in [
        "as_of=2026-03-01T00:00:00Z",
        "as_of=2026-03-02T10:00:00Z",
        "as_of=2026-03-03T08:30:00Z",
        "as_of=2026-03-03T17:30:00%2B09:00",
        "as_of=2030-01-01T00:00:00Z&min_sequence=2",
        "as_of=2030-01-01T00:00:00Z&min_sequence=99",
        "as_of=yesterday",
        "as_of=2026-03-03T17:30:00+09:00",
        "asof=2026-03-01T00:00:00Z",
    ] {
        probes.push(get(&balance, query));
    }
    let daily = format!("{base}/daily-balances");
    for query in [
        "from=2026-03-01&to=2026-03-31",
        "from=2026-03-03&to=2026-03-03",
        "from=2026-03-05&to=2026-03-04",
        "from=2024-01-01&to=2026-03-31",
        "from=2026-3-1&to=2026-03-31",
        "to=2026-03-04&min_sequence=99",
        "to=2026-03-04&from=2026-03-01&min_sequence=2",
    ] {
        probes.push(get(&daily, query));
    }
    probes
}

/// Unknown accounts and ids, unknown routes, wrong methods, operations, no correlation id.
fn route_probes() -> Vec<Probe> {
    let mut probes = Vec::new();
    // An account the model does not hold, and ids that are not ids.
    for path in [
        "/v1/accounts/par-nobody",
        "/v1/accounts/par-nobody/transactions",
        "/v1/accounts/par-nobody/daily-balances",
        "/v1/accounts/bad%20id",
        "/v1/accounts/%E2%82%AC",
        "/v1/accounts/par%2Deur",
        "/v1/accounts/par%2Feur",
    ] {
        probes.push(get(path, ""));
    }
    probes.push(get(
        "/v1/accounts/par-nobody/balance",
        "as_of=2026-03-10T00:00:00Z",
    ));
    probes.push(get("/v1/accounts/par-nobody", "min_sequence=1"));
    // Unknown routes.
    for path in [
        "/",
        "/v1",
        "/v1/",
        "/v2/accounts",
        "/v1/nothing",
        "/v1/accounts/par-eur/nope",
        "/v1/accounts/par-eur/",
        "/health",
        "/health/live/now",
    ] {
        probes.push(get(path, ""));
    }
    // Known routes, wrong methods: 405 with the one method the resource serves in `Allow`.
    for (method, path) in [
        ("DELETE", "/v1/accounts/par-eur"),
        ("HEAD", "/v1/accounts/par-eur"),
        ("POST", "/v1/accounts/par-eur/balance"),
        ("PUT", "/v1/accounts/par-eur/transactions"),
        ("PATCH", "/v1/accounts/par-eur/daily-balances"),
        ("POST", "/health/live"),
        ("DELETE", "/health/ready"),
        ("POST", "/openapi.json"),
        ("GET", "/v1/transfers"),
        ("GET", "/v1/accounts/par-eur/deposits"),
        ("DELETE", "/v1/accounts"),
        ("POST", "/v1/nothing"),
    ] {
        probes.push(call(method, path));
    }
    // Operations, and requests without a correlation id (the answer mints one in /v1).
    for path in ["/health/live", "/health/ready", "/openapi.json"] {
        probes.push(get(path, ""));
    }
    for probe in [
        get("/v1/accounts/par-eur", ""),
        get("/v1/nothing", ""),
        get("/health/live", ""),
    ] {
        probes.push(Probe {
            with_correlation_id: false,
            ..probe
        });
    }
    probes
}

/// Both adapters over one query service, one set of readiness checks and one token verifier.
fn states(
    queries: &Arc<QueryService>,
    health_checks: &[Arc<dyn HealthCheck>],
    verifier: &Arc<JwtVerifier>,
) -> (HttpState, QueryFunctionState) {
    let http = HttpState {
        // No command reaches the actix app here; the service needs a store all the same.
        commands: Arc::new(CommandService::new(
            Arc::new(InMemoryEventStore::new()),
            Arc::new(SystemClock),
            Arc::new(UuidV7Ids),
            RetryPolicy::default(),
        )),
        queries: Arc::clone(queries),
        health_checks: health_checks.to_vec(),
        authentication: Authentication::Jwt(Arc::clone(verifier)),
    };
    let lambda = QueryFunctionState::new(
        Arc::clone(queries),
        health_checks.to_vec(),
        Arc::clone(verifier),
    );
    (http, lambda)
}

fn read_model_checks(read_model: &PostgresReadModel) -> Vec<Arc<dyn HealthCheck>> {
    vec![
        Arc::new(read_model.clone()),
        Arc::new(DeadLetterCheck::new(Arc::new(read_model.clone()))),
    ]
}

/// Fails naming every probe whose answers differ.
fn assert_same(probes: &[Probe], actix: &[Answer], lambda: &[Answer]) {
    let differences: Vec<String> = probes
        .iter()
        .zip(actix.iter().zip(lambda))
        .filter(|(_, (actix, lambda))| actix != lambda)
        .map(|(probe, (actix, lambda))| {
            format!("{probe:?}\n  actix:  {actix:?}\n  lambda: {lambda:?}")
        })
        .collect();
    assert!(
        differences.is_empty(),
        "{} of {} answers differ:\n{}",
        differences.len(),
        actix.len(),
        differences.join("\n")
    );
    assert_eq!(actix.len(), lambda.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_and_every_error_answers_the_same_bytes_from_actix_and_the_lambda() {
    let store = record_history().await;
    let database = FreshDatabase::create().await;
    let read_model = database.read_model().await;
    let projected = FeedProjector::new(
        "lambda-parity",
        store as Arc<dyn EventFeed>,
        Arc::new(read_model.clone()),
        Arc::new(InMemoryCheckpoints::new()),
        Arc::new(SystemClock),
        FeedProjectorConfig::default(),
        Arc::new(Notify::new()),
    )
    .catch_up()
    .await
    .expect("project into PostgreSQL");
    assert_eq!(projected, 13, "every recorded event was projected");

    let queries = Arc::new(QueryService::new(
        Arc::new(read_model.clone()),
        FreshnessWait {
            timeout: BEHIND_WAIT,
            ..FreshnessWait::default()
        },
    ));
    let verifier = testkit::verifier().await;
    let (http, lambda) = states(&queries, &read_model_checks(&read_model), &verifier);
    let app = test::init_service(App::new().configure(ledger_http::configure(http))).await;

    let mut probes = probes();
    let (mut from_actix, mut from_lambda) = (Vec::new(), Vec::new());
    for probe in &probes {
        from_actix.push(actix_answer!(&app, probe));
        from_lambda.push(lambda_answer(&lambda, probe).await);
    }
    // Every page of every account's transactions, following the cursor the answers give.
    for account in ACCOUNTS {
        let mut cursor: Option<String> = None;
        for page in 0.. {
            assert!(page < PAGES_MAX, "{account}: more than {PAGES_MAX} pages");
            let query = cursor
                .as_ref()
                .map_or_else(|| "limit=2".to_owned(), |c| format!("limit=2&cursor={c}"));
            let probe = get(&format!("/v1/accounts/{account}/transactions"), &query);
            let actix = actix_answer!(&app, &probe);
            let body: Value = serde_json::from_str(&actix.body).expect("a JSON page");
            cursor = body["next_cursor"].as_str().map(str::to_owned);
            from_actix.push(actix);
            from_lambda.push(lambda_answer(&lambda, &probe).await);
            probes.push(probe);
            if cursor.is_none() {
                break;
            }
        }
    }
    assert_same(&probes, &from_actix, &from_lambda);

    // The comparison covered every kind of answer, not a suite of identical 404s.
    let statuses: BTreeSet<u16> = from_actix.iter().map(|answer| answer.status).collect();
    assert_eq!(
        statuses,
        BTreeSet::from([200, 400, 401, 403, 404, 405, 503])
    );
    let everything = format!("{from_actix:?}");
    for expected in [
        "\\\"balance\\\":\\\"-94.75\\\"",
        "\\\"status\\\":\\\"CLOSED\\\"",
        "\\\"frozen_reason\\\":\\\"court order\\\"",
        "Café ☕",
        "\\\"next_cursor\\\":\\\"",
        "read_model_behind",
        "malformed_query",
        "validation_failed",
        "account_not_found",
        "method_not_allowed",
        "(\"retry-after\", \"1\")",
        "(\"allow\", \"GET\")",
        "(\"allow\", \"POST\")",
        "(\"x-correlation-id\", \"parity-correlation-7\")",
        "(\"x-correlation-id\", \"<minted>\")",
        "\\\"openapi\\\"",
        "unauthenticated",
        "insufficient_scope",
        "(\"www-authenticate\", \"Bearer realm=\\\"ledger\\\"\")",
        "(\"www-authenticate\", \"Bearer realm=\\\"ledger\\\", error=\\\"invalid_token\\\"\")",
        "(\"www-authenticate\", \"Bearer realm=\\\"ledger\\\", error=\\\"insufficient_scope\\\", scope=\\\"ledger:read\\\"\")",
    ] {
        assert!(
            everything.contains(expected),
            "no answer contains {expected}"
        );
    }

    // Readiness failing: the read model's pool closed under both adapters alike.
    let closed = database.read_model().await;
    closed.close().await;
    let (http, lambda) = states(&queries, &read_model_checks(&closed), &verifier);
    let app = test::init_service(App::new().configure(ledger_http::configure(http))).await;
    let probe = get("/health/ready", "");
    let actix = actix_answer!(&app, &probe);
    assert_eq!(actix.status, 503, "{actix:?}");
    assert!(actix.body.contains("not_ready"), "{actix:?}");
    assert_eq!(actix, lambda_answer(&lambda, &probe).await);

    read_model.close().await;
}

#[tokio::test]
async fn a_command_sent_to_the_query_function_is_refused_saying_nothing_was_written() {
    let queries = Arc::new(QueryService::new(
        Arc::new(InMemoryReadModel::new()),
        FreshnessWait::default(),
    ));
    let state = QueryFunctionState::new(queries, Vec::new(), testkit::verifier().await);
    for path in [
        "/v1/accounts",
        "/v1/accounts/par-eur/deposits",
        "/v1/accounts/par-eur/withdrawals",
        "/v1/accounts/par-eur/freeze",
        "/v1/accounts/par-eur/unfreeze",
        "/v1/accounts/par-eur/close",
        "/v1/transfers",
    ] {
        let probe = with_authorization(call("POST", path), Some(testkit::bearer("ledger:admin")));
        let answer = lambda_answer(&state, &probe).await;
        assert_eq!(answer.status, 421, "{path}: {answer:?}");
        let body: Value = serde_json::from_str(&answer.body).expect("a problem");
        assert_eq!(body["code"], "misdirected_request");
        assert_eq!(body["type"], "urn:ledger:problem:misdirected_request");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("nothing was written")),
            "{body}"
        );
        assert!(
            answer.headers.contains(&(
                "content-type".to_owned(),
                "application/problem+json".to_owned()
            )),
            "{answer:?}"
        );
        assert!(
            answer.headers.contains(&(
                "x-correlation-id".to_owned(),
                FIXTURE_CORRELATION_ID.to_owned()
            )),
            "{answer:?}"
        );
    }
}

#[tokio::test]
async fn a_named_stage_serves_the_same_routes_as_the_default_one() {
    let queries = Arc::new(QueryService::new(
        Arc::new(InMemoryReadModel::new()),
        FreshnessWait::default(),
    ));
    let state = QueryFunctionState::new(queries, Vec::new(), testkit::verifier().await);
    let mut event = event_for(&get("/prod/v1/accounts/par-nobody", ""));
    event["requestContext"]["stage"] = json!("prod");
    let request = Request::from(
        serde_json::from_value::<LambdaRequest>(event).expect("an API Gateway v2 request"),
    );
    let response = handle_query_request(&state, request).await;
    let Body::Text(body) = response.body() else {
        panic!("a JSON answer is text");
    };
    let body: Value = serde_json::from_str(body).expect("a problem");
    // The account route answered (the account is unknown), not the 404 of an unknown path.
    assert_eq!(body["code"], "account_not_found", "{body}");
}
