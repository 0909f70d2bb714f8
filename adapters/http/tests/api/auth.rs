//! Authentication and authorisation through the real actix app and the real verifier over the
//! checked-in test keys: every scope on every route class, every way a token is refused, the
//! challenges, the caller recorded with the events, JWKS from a file and from a loopback URL with a
//! key rotation, and no token or key in any log line.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::test::TestRequest;
use ledger_http::auth::testkit::{self, TestKey};
use ledger_http::auth::{
    Access, Authentication, JwksSource, JwtVerifier, KeyRefreshPolicy, Scope, TokenRejection,
    authorise,
};
use serde_json::{Value, json};

use crate::support::{Ledger, Reply, TestApp, app, command, get};

const ACCOUNT: &str = "acc-auth-1";

/// The ledger with authentication on, one open account with money in it.
async fn secured() -> (Ledger, TestApp) {
    let ledger = Ledger::new();
    let mut state = ledger.state();
    state.authentication = Authentication::Jwt(testkit::verifier().await);
    let app = app(state).await;
    let admin = testkit::bearer("ledger:admin");
    let opened = app
        .send(with(
            command(
                "/v1/accounts",
                &json!({"account_id": ACCOUNT, "owner": "Ada", "kind": "CHECKING", "currency": "USD"}),
            ),
            &admin,
        ))
        .await;
    assert_eq!(opened.status.as_u16(), 201, "{:?}", opened.body);
    ledger.project().await;
    (ledger, app)
}

fn with(request: TestRequest, authorization: &str) -> TestRequest {
    request.insert_header(("Authorization", authorization))
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A route class: its name, a request to it, and the scope it needs (`None`: health, none).
type RouteClass = (&'static str, fn() -> TestRequest, Option<Scope>);

/// One request of each route class.
fn route_classes() -> Vec<RouteClass> {
    vec![
        (
            "account query",
            || get(&format!("/v1/accounts/{ACCOUNT}")),
            Some(Scope::Read),
        ),
        (
            "transactions query",
            || get(&format!("/v1/accounts/{ACCOUNT}/transactions")),
            Some(Scope::Read),
        ),
        ("openapi", || get("/openapi.json"), Some(Scope::Read)),
        (
            "deposit",
            || {
                command(
                    &format!("/v1/accounts/{ACCOUNT}/deposits"),
                    &json!({"amount": "1.00"}),
                )
            },
            Some(Scope::Write),
        ),
        (
            "open",
            || {
                command(
                    "/v1/accounts",
                    &json!({"owner": "Bob", "kind": "SAVINGS", "currency": "EUR"}),
                )
            },
            Some(Scope::Write),
        ),
        (
            "close (refused by the domain: money in it)",
            || command(&format!("/v1/accounts/{ACCOUNT}/close"), &json!({})),
            Some(Scope::Write),
        ),
        (
            "unfreeze (refused by the domain: not frozen)",
            || command(&format!("/v1/accounts/{ACCOUNT}/unfreeze"), &json!({})),
            Some(Scope::Admin),
        ),
        (
            "freeze of an unknown account",
            || {
                command(
                    "/v1/accounts/acc-nobody/freeze",
                    &json!({"reason": "audit"}),
                )
            },
            Some(Scope::Admin),
        ),
        ("liveness", || get("/health/live"), None),
        ("readiness", || get("/health/ready"), None),
    ]
}

fn assert_let_in(reply: &Reply, what: &str) {
    let status = reply.status.as_u16();
    assert!(
        status != 401 && status != 403,
        "{what}: {status} {}",
        String::from_utf8_lossy(&reply.body)
    );
}

fn assert_unauthenticated(reply: &Reply, token_given: bool, what: &str) -> Value {
    let problem = reply.problem(401, "unauthenticated");
    let expected = if token_given {
        r#"Bearer realm="ledger", error="invalid_token""#
    } else {
        r#"Bearer realm="ledger""#
    };
    assert_eq!(reply.header("www-authenticate"), Some(expected), "{what}");
    problem
}

fn assert_insufficient(reply: &Reply, needed: Scope, what: &str) {
    let problem = reply.problem(403, "insufficient_scope");
    assert_eq!(problem["required_scope"], needed.as_str(), "{what}");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(
            format!(
                r#"Bearer realm="ledger", error="insufficient_scope", scope="{}""#,
                needed.as_str()
            )
            .as_str()
        ),
        "{what}"
    );
}

#[actix_web::test]
async fn every_scope_with_either_algorithm_reaches_what_it_grants_and_nothing_else() {
    let (_ledger, app) = secured().await;
    for key in [TestKey::Rsa, TestKey::Ec] {
        for granted in ["ledger:read", "ledger:write", "ledger:admin"] {
            let authorization = bearer(&testkit::token(key, &testkit::claims("u-1", granted)));
            for (what, request, needed) in route_classes() {
                let reply = app.send(with(request(), &authorization)).await;
                let what = format!("{what} with {granted} ({key:?})");
                let allowed = match needed {
                    None => true,
                    Some(needed) => match granted {
                        "ledger:admin" => true,
                        "ledger:write" => needed == Scope::Write,
                        _ => needed == Scope::Read,
                    },
                };
                match needed {
                    Some(needed) if !allowed => assert_insufficient(&reply, needed, &what),
                    _ => assert_let_in(&reply, &what),
                }
            }
        }
    }
}

#[actix_web::test]
async fn scopes_are_read_from_scope_or_scp_as_a_list_or_a_string() {
    let (_ledger, app) = secured().await;
    let mut claims = testkit::claims("u-1", "openid profile");
    let request = || get(&format!("/v1/accounts/{ACCOUNT}"));
    let reply = app
        .send(with(
            request(),
            &bearer(&testkit::token(TestKey::Rsa, &claims)),
        ))
        .await;
    assert_insufficient(&reply, Scope::Read, "no ledger scope");
    for scp in [
        json!(["openid", "ledger:read"]),
        json!("openid ledger:read"),
    ] {
        claims["scp"] = scp;
        let reply = app
            .send(with(
                request(),
                &bearer(&testkit::token(TestKey::Ec, &claims)),
            ))
            .await;
        reply.ok(200);
    }
}

#[actix_web::test]
async fn health_needs_no_token_and_ignores_a_bad_one() {
    let (_ledger, app) = secured().await;
    for path in ["/health/live", "/health/ready"] {
        app.send(get(path)).await.ok(200);
        app.send(with(get(path), "Bearer garbage")).await.ok(200);
    }
}

/// Tokens the verifier must refuse, each with why.
fn refused_tokens() -> Vec<(&'static str, String)> {
    let now = testkit::now_seconds();
    let claims = || testkit::claims("u-1", "ledger:admin");
    let changed = |member: &str, value: Value| {
        let mut changed = claims();
        changed[member] = value;
        changed
    };
    let mut without_sub = claims();
    without_sub.as_object_mut().expect("claims").remove("sub");
    let mut without_exp = claims();
    without_exp.as_object_mut().expect("claims").remove("exp");
    vec![
        ("garbage", "garbage".to_owned()),
        ("two parts", "abc.def".to_owned()),
        (
            "alg none",
            testkit::token_with_header(
                &json!({"alg": "none", "kid": "test-rsa-1"}),
                &claims(),
                b"",
            ),
        ),
        (
            "alg none without a signature part",
            testkit::token_with_header(&json!({"alg": "none"}), &claims(), b"")
                .trim_end_matches('.')
                .to_owned(),
        ),
        (
            "HS256 with the public key as the secret",
            testkit::hs256_with_public_key_as_secret(&claims()),
        ),
        (
            "RS256 header on the EC key",
            testkit::token_with_header(
                &json!({"alg": "RS256", "kid": "test-ec-1"}),
                &claims(),
                b"not a signature",
            ),
        ),
        (
            "a key id no set has",
            testkit::token(TestKey::RsaRotated, &claims()),
        ),
        (
            "a forged signature",
            testkit::token(TestKey::RsaImpostor, &claims()),
        ),
        (
            "expired beyond the leeway",
            testkit::token(TestKey::Rsa, &changed("exp", json!(now - 60))),
        ),
        (
            "not valid yet",
            testkit::token(TestKey::Rsa, &changed("nbf", json!(now + 120))),
        ),
        (
            "issued in the future",
            testkit::token(TestKey::Ec, &changed("iat", json!(now + 120))),
        ),
        (
            "another issuer",
            testkit::token(TestKey::Rsa, &changed("iss", json!("https://evil.test/"))),
        ),
        (
            "another audience",
            testkit::token(TestKey::Rsa, &changed("aud", json!("other-api"))),
        ),
        ("no subject", testkit::token(TestKey::Rsa, &without_sub)),
        ("no expiry", testkit::token(TestKey::Ec, &without_exp)),
        (
            "a subject with a newline",
            testkit::token(TestKey::Rsa, &changed("sub", json!("a\nb"))),
        ),
    ]
}

#[actix_web::test]
async fn every_bad_token_and_header_is_401_and_the_answer_never_repeats_the_token() {
    let (ledger, app) = secured().await;
    let deposit = || {
        command(
            &format!("/v1/accounts/{ACCOUNT}/deposits"),
            &json!({"amount": "5"}),
        )
    };
    assert_unauthenticated(&app.send(deposit()).await, false, "no header");
    assert_unauthenticated(
        &app.send(get(&format!("/v1/accounts/{ACCOUNT}"))).await,
        false,
        "no header on a query",
    );
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", "Bearer a b"] {
        assert_unauthenticated(&app.send(with(deposit(), header)).await, true, header);
    }
    for (why, token) in refused_tokens() {
        let reply = app.send(with(deposit(), &bearer(&token))).await;
        let problem = assert_unauthenticated(&reply, true, why);
        let body = String::from_utf8_lossy(&reply.body);
        for part in token.split('.').filter(|part| part.len() > 3) {
            assert!(
                !body.contains(part),
                "{why}: the answer repeats the token: {body}"
            );
        }
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|detail| detail.starts_with("the bearer token was refused")),
            "{why}: {problem}"
        );
    }
    // Not one of them wrote anything: the account still has only its opening event.
    assert_eq!(ledger.events(ACCOUNT).await.len(), 1);
}

#[actix_web::test]
async fn an_unknown_path_or_a_wrong_method_needs_a_token_before_it_is_told_so() {
    let (_ledger, app) = secured().await;
    assert_unauthenticated(&app.send(get("/v1/nothing")).await, false, "unknown path");
    assert_unauthenticated(&app.send(get("/nothing")).await, false, "unknown path");
    let read = testkit::bearer("ledger:read");
    app.send(with(get("/v1/nothing"), &read))
        .await
        .problem(404, "not_found");
    let wrong_method = TestRequest::delete().uri(&format!("/v1/accounts/{ACCOUNT}"));
    assert_unauthenticated(&app.send(wrong_method).await, false, "wrong method");
    let wrong_method = TestRequest::delete().uri(&format!("/v1/accounts/{ACCOUNT}"));
    app.send(with(wrong_method, &read))
        .await
        .problem(405, "method_not_allowed");
}

#[actix_web::test]
async fn clock_skew_within_the_leeway_is_accepted() {
    let (_ledger, app) = secured().await;
    let now = testkit::now_seconds();
    let mut claims = testkit::claims("u-1", "ledger:read");
    claims["exp"] = json!(now - 10);
    claims["nbf"] = json!(now + 10);
    claims["iat"] = json!(now + 10);
    app.send(with(
        get(&format!("/v1/accounts/{ACCOUNT}")),
        &bearer(&testkit::token(TestKey::Rsa, &claims)),
    ))
    .await
    .ok(200);
}

#[actix_web::test]
async fn each_event_records_the_subject_of_the_token_that_wrote_it() {
    let (ledger, app) = secured().await;
    let token = testkit::token(
        TestKey::Ec,
        &testkit::claims("alice@example.test", "ledger:write"),
    );
    app.send(with(
        command(
            &format!("/v1/accounts/{ACCOUNT}/deposits"),
            &json!({"amount": "7.00"}),
        ),
        &bearer(&token),
    ))
    .await
    .ok(200);
    let events = ledger.events(ACCOUNT).await;
    assert_eq!(events[0].metadata.caller.subject(), testkit::TEST_SUBJECT);
    assert_eq!(events[1].metadata.caller.subject(), "alice@example.test");
}

#[actix_web::test]
async fn without_authentication_every_command_is_the_anonymous_callers() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    crate::support::open(&app, "acc-anon", "USD").await;
    let events = ledger.events("acc-anon").await;
    assert_eq!(events[0].metadata.caller.subject(), "anonymous");
}

/// A JWKS server on loopback: answers every GET with the current document and counts requests.
struct JwksServer {
    url: String,
    document: Arc<Mutex<(u16, String)>>,
    requests: Arc<AtomicUsize>,
}

impl JwksServer {
    fn start(document: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let url = format!(
            "http://{}/jwks.json",
            listener.local_addr().expect("address")
        );
        let document = Arc::new(Mutex::new((200, document.to_owned())));
        let requests = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (Arc::clone(&document), Arc::clone(&requests));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                // The request head, up to its blank line (bounded).
                for _ in 0..100 {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let (status, body) = served.lock().expect("document lock").clone();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            url,
            document,
            requests,
        }
    }

    fn serve(&self, status: u16, document: &str) {
        *self.document.lock().expect("document lock") = (status, document.to_owned());
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    async fn verifier(&self, policy: KeyRefreshPolicy) -> Arc<JwtVerifier> {
        Arc::new(
            JwtVerifier::load(
                JwksSource::url(&self.url).expect("loopback http"),
                testkit::settings(),
                policy,
            )
            .await
            .expect("the JWKS loads"),
        )
    }
}

async fn verify(verifier: &Arc<JwtVerifier>, key: TestKey) -> Result<String, TokenRejection> {
    verifier
        .verify(&testkit::token(key, &testkit::claims("u-1", "ledger:read")))
        .await
        .map(|principal| principal.subject().to_owned())
}

#[tokio::test]
async fn keys_from_a_url_are_fetched_again_for_an_unknown_kid_after_a_rotation() {
    let server = JwksServer::start(testkit::JWKS);
    let verifier = server
        .verifier(KeyRefreshPolicy {
            unknown_kid_interval: Duration::ZERO,
            max_age: Duration::from_hours(1),
        })
        .await;
    assert_eq!(server.requests(), 1, "fetched once at start");
    assert!(verify(&verifier, TestKey::Rsa).await.is_ok());
    assert_eq!(server.requests(), 1, "a known kid fetches nothing");

    server.serve(200, testkit::JWKS_ROTATED);
    assert_eq!(
        verify(&verifier, TestKey::RsaRotated).await,
        Ok("u-1".to_owned())
    );
    assert_eq!(
        server.requests(),
        2,
        "the unknown kid fetched the rotated set"
    );
    assert_eq!(
        verify(&verifier, TestKey::Rsa).await,
        Err(TokenRejection::UnknownKey),
        "the withdrawn key is gone"
    );

    // A failed refresh keeps the keys there were.
    server.serve(500, "{}");
    assert_eq!(
        verify(&verifier, TestKey::Rsa).await,
        Err(TokenRejection::UnknownKey)
    );
    assert!(server.requests() >= 3);
    assert!(verify(&verifier, TestKey::RsaRotated).await.is_ok());
    assert!(verify(&verifier, TestKey::Ec).await.is_ok());
}

/// A request dropped while its unknown `kid` refetches the keys (its client went away) must not
/// leave the refresh marked in flight: the next unknown `kid` still fetches.
#[tokio::test]
async fn a_refetch_abandoned_midway_does_not_stop_later_ones() {
    let server = JwksServer::start(testkit::JWKS);
    let verifier = server
        .verifier(KeyRefreshPolicy {
            unknown_kid_interval: Duration::ZERO,
            max_age: Duration::from_hours(1),
        })
        .await;
    server.serve(200, testkit::JWKS_ROTATED);
    // Polled once: it starts the fetch and is dropped while the fetch waits on the network.
    let abandoned =
        tokio::time::timeout(Duration::ZERO, verify(&verifier, TestKey::RsaRotated)).await;
    assert!(abandoned.is_err(), "dropped before its fetch answered");
    assert_eq!(
        verify(&verifier, TestKey::RsaRotated).await,
        Ok("u-1".to_owned()),
        "the next unknown kid fetched the rotated set"
    );
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let server = JwksServer::start(testkit::JWKS);
    let verifier = server.verifier(KeyRefreshPolicy::default()).await;
    for _ in 0..5 {
        assert_eq!(
            verify(&verifier, TestKey::RsaRotated).await,
            Err(TokenRejection::UnknownKey)
        );
    }
    assert_eq!(server.requests(), 1, "within 60 s of the last fetch, none");
}

#[tokio::test]
async fn a_key_server_that_cannot_answer_fails_the_load() {
    let server = JwksServer::start("{\"keys\": []}");
    let error = JwtVerifier::load(
        JwksSource::url(&server.url).expect("loopback http"),
        testkit::settings(),
        KeyRefreshPolicy::default(),
    )
    .await
    .expect_err("no usable key");
    assert!(
        error.to_string().contains("no usable signing key"),
        "{error}"
    );
    server.serve(503, "unavailable");
    let error = JwtVerifier::load(
        JwksSource::url(&server.url).expect("loopback http"),
        testkit::settings(),
        KeyRefreshPolicy::default(),
    )
    .await
    .expect_err("503");
    assert!(error.to_string().contains("503"), "{error}");
    let refused = JwtVerifier::load(
        JwksSource::url("http://127.0.0.1:1/jwks.json").expect("loopback http"),
        testkit::settings(),
        KeyRefreshPolicy::default(),
    )
    .await
    .expect_err("nothing listens on port 1");
    assert!(
        refused.to_string().contains("could not connect"),
        "{refused}"
    );
}

#[tokio::test]
async fn public_access_and_disabled_authentication_let_anyone_in_as_anonymous() {
    let verifier = testkit::verifier().await;
    let principal = authorise(
        &Authentication::Jwt(verifier),
        [b"Bearer x".as_slice()],
        Access::Public,
    )
    .await
    .expect("public");
    assert_eq!(principal.subject(), "anonymous");
    let principal = authorise(
        &Authentication::Disabled,
        std::iter::empty(),
        Access::Scope(Scope::Admin),
    )
    .await
    .expect("authentication off");
    assert_eq!(principal.subject(), "anonymous");
}

/// A `MakeWriter` into one shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'writer> tracing_subscriber::fmt::MakeWriter<'writer> for Captured {
    type Writer = Self;

    fn make_writer(&'writer self) -> Self {
        self.clone()
    }
}

#[actix_web::test]
async fn no_log_line_holds_a_token_or_key_while_the_subject_may_appear() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .finish();
    let capturing = tracing::subscriber::set_default(subscriber);
    // Other tests of this binary run at once on threads with no subscriber: a callsite one of them
    // reached first may have cached "no interest"; recompute it now that this subscriber exists.
    tracing::callsite::rebuild_interest_cache();

    let (_ledger, app) = secured().await;
    let now = testkit::now_seconds();
    let mut expired = testkit::claims("log-subject-1", "ledger:write");
    expired["exp"] = json!(now - 3600);
    let tokens = [
        testkit::token(
            TestKey::Rsa,
            &testkit::claims("log-subject-1", "ledger:write"),
        ),
        testkit::token(
            TestKey::Ec,
            &testkit::claims("log-subject-1", "ledger:read"),
        ),
        testkit::token(TestKey::Rsa, &expired),
        testkit::token(
            TestKey::RsaImpostor,
            &testkit::claims("log-subject-1", "ledger:admin"),
        ),
        testkit::hs256_with_public_key_as_secret(&testkit::claims("log-subject-1", "ledger:admin")),
    ];
    for token in &tokens {
        let authorization = bearer(token);
        app.send(with(
            command(
                &format!("/v1/accounts/{ACCOUNT}/deposits"),
                &json!({"amount": "1"}),
            ),
            &authorization,
        ))
        .await;
        app.send(with(
            get(&format!("/v1/accounts/{ACCOUNT}")),
            &authorization,
        ))
        .await;
    }
    drop(capturing);

    let logs = String::from_utf8(captured.0.lock().expect("log lock").clone()).expect("UTF-8 logs");
    assert!(
        logs.contains("request not authorised"),
        "refusals are logged: {logs}"
    );
    assert!(
        logs.contains("log-subject-1"),
        "the subject may appear: {logs}"
    );
    for token in &tokens {
        for part in token.split('.') {
            assert!(!logs.contains(part), "a token part was logged: {part}");
        }
    }
    // Key material: the public key the HS256 attack used, and the JWKS's moduli and points.
    let public_pem_body: String = testkit::RSA_1_PUBLIC_PEM
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    assert!(
        !logs.contains(&public_pem_body[..40]),
        "key material was logged"
    );
    let jwks: Value = serde_json::from_str(testkit::JWKS).expect("JSON");
    for key in jwks["keys"].as_array().expect("keys") {
        for member in ["n", "x", "y"] {
            if let Some(value) = key[member].as_str() {
                assert!(
                    !logs.contains(&value[..24]),
                    "JWKS member {member} was logged"
                );
            }
        }
    }
}
