//! Every error code of design §6, reached over real HTTP; each is problem+json and writes nothing.

use ledger_tests::{Reply, TestApp, new_key};
use serde_json::json;

/// Asserts a problem+json reply with this status and code, and that no event was written by it.
async fn assert_problem(
    app: &TestApp,
    events_before: usize,
    reply: &Reply,
    status: u16,
    code: &str,
) {
    assert_eq!(
        reply.status, status,
        "expected {status} {code}, got {}",
        reply.raw
    );
    assert!(
        reply.content_type.starts_with("application/problem+json"),
        "content type of {code}: {}",
        reply.content_type
    );
    assert_eq!(reply.code(), code, "{}", reply.raw);
    assert_eq!(reply.body["status"], status);
    assert!(reply.body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(
        app.event_count().await,
        events_before,
        "{code} must write nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_400_and_write_nothing() {
    let app = TestApp::spawn().await;
    app.open("usd-1", "USD", None).await;
    let before = app.event_count().await;
    let deposits = "/v1/accounts/usd-1/deposits";
    let json_headers = |key: &'static str| {
        vec![
            ("content-type", "application/json"),
            ("Idempotency-Key", key),
        ]
    };

    let reply = app
        .post_raw(
            deposits,
            &json_headers("k-malformed"),
            b"{\"amount\": ".to_vec(),
        )
        .await;
    assert_problem(&app, before, &reply, 400, "malformed_body").await;

    // A JSON number is refused: amounts are strings, so a float can never sneak in.
    let reply = app
        .command(deposits, &new_key(), &json!({"amount": 12.5}))
        .await;
    assert_problem(&app, before, &reply, 400, "malformed_body").await;

    let reply = app
        .command(
            deposits,
            &new_key(),
            &json!({"amount": "12.5", "amuont": "1"}),
        )
        .await;
    assert_problem(&app, before, &reply, 400, "malformed_body").await;

    for bad_amount in ["-5.00", "0", "1e3", "abc", "", "10000000000000000"] {
        let reply = app
            .command(deposits, &new_key(), &json!({"amount": bad_amount}))
            .await;
        assert_problem(&app, before, &reply, 400, "validation_failed").await;
        assert!(
            reply.body["errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty()),
            "{}",
            reply.raw
        );
    }

    let reply = app
        .command(
            "/v1/accounts",
            &new_key(),
            &json!({"owner": "", "kind": "CHECKING", "currency": "USD"}),
        )
        .await;
    assert_problem(&app, before, &reply, 400, "validation_failed").await;
    let reply = app
        .command(
            "/v1/accounts",
            &new_key(),
            &json!({"owner": "X", "kind": "LOAN", "currency": "USD"}),
        )
        .await;
    assert_problem(&app, before, &reply, 400, "validation_failed").await;
    let reply = app
        .command(
            "/v1/accounts",
            &new_key(),
            &json!({"owner": "X", "kind": "CHECKING", "currency": "XYZ"}),
        )
        .await;
    assert_problem(&app, before, &reply, 400, "validation_failed").await;
    let reply = app
        .command("/v1/accounts", &new_key(), &json!({"account_id": "has space", "owner": "X", "kind": "CHECKING", "currency": "USD"}))
        .await;
    assert_problem(&app, before, &reply, 400, "validation_failed").await;

    let reply = app
        .post_raw(
            deposits,
            &[("content-type", "application/json")],
            br#"{"amount":"1.00"}"#.to_vec(),
        )
        .await;
    assert_problem(&app, before, &reply, 400, "missing_idempotency_key").await;

    let long_key = "k".repeat(129);
    let reply = app
        .command(deposits, &long_key, &json!({"amount": "1.00"}))
        .await;
    assert_problem(&app, before, &reply, 400, "invalid_idempotency_key").await;

    let huge = format!(
        "{{\"amount\":\"1.00\",\"description\":\"{}\"}}",
        "x".repeat(20_000)
    );
    let reply = app
        .post_raw(deposits, &json_headers("k-huge"), huge.into_bytes())
        .await;
    assert_problem(&app, before, &reply, 413, "payload_too_large").await;

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_are_400() {
    let app = TestApp::spawn().await;
    app.open("usd-1", "USD", None).await;
    let before = app.event_count().await;
    let reply = app.get("/v1/accounts/usd-1/transactions?limit=abc").await;
    assert_problem(&app, before, &reply, 400, "validation_failed").await;
    let reply = app.get("/v1/accounts/usd-1/balance?as_of=yesterday").await;
    assert_problem(&app, before, &reply, 400, "validation_failed").await;
    let reply = app
        .get("/v1/accounts/usd-1/daily-balances?from=2026-01-10&to=2026-01-01")
        .await;
    assert_problem(&app, before, &reply, 400, "validation_failed").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_things_are_404() {
    let app = TestApp::spawn().await;
    let before = app.event_count().await;
    let reply = app.deposit("ghost", "1.00").await;
    assert_problem(&app, before, &reply, 404, "account_not_found").await;
    let reply = app.transfer("ghost", "other-ghost", "1.00").await;
    assert_problem(&app, before, &reply, 404, "account_not_found").await;
    let reply = app.get("/v1/accounts/ghost").await;
    assert_problem(&app, before, &reply, 404, "account_not_found").await;
    let reply = app.get("/v1/accounts/ghost/transactions").await;
    assert_problem(&app, before, &reply, 404, "account_not_found").await;
    let reply = app.get("/v1/no-such-route").await;
    assert_problem(&app, before, &reply, 404, "not_found").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_409() {
    let app = TestApp::spawn().await;
    app.open("dup", "USD", None).await;
    let before = app.event_count().await;
    let reply = app
        .command(
            "/v1/accounts",
            &new_key(),
            &json!({"account_id": "dup", "owner": "X", "kind": "CHECKING", "currency": "USD"}),
        )
        .await;
    assert_problem(&app, before, &reply, 409, "account_already_exists").await;

    let key = new_key();
    let first = app
        .command(
            "/v1/accounts/dup/deposits",
            &key,
            &json!({"amount": "10.00"}),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.raw);
    let before = app.event_count().await;
    let reused = app
        .command(
            "/v1/accounts/dup/deposits",
            &key,
            &json!({"amount": "11.00"}),
        )
        .await;
    assert_problem(&app, before, &reused, 409, "idempotency_key_reused").await;
    app.stop().await;
}

/// Two ledger instances on one database (as two ECS tasks share one event store), one attempt per
/// command: their writers race for the same account, and the losers hear `409 concurrency_conflict`
/// with `Retry-After` — with nothing written for them. (Within one instance commands on an account
/// queue instead of racing, so two instances are what it takes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_races_without_retries_are_409_concurrency_conflict() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shared.db");
    let single_attempt = [("LEDGER_COMMAND_ATTEMPTS_MAX", "1")];
    let first = std::sync::Arc::new(TestApp::start_on(path.clone(), &single_attempt).await);
    let second = std::sync::Arc::new(TestApp::start_on(path, &single_attempt).await);
    first.open("hot", "USD", None).await;
    let mut conflict = None;
    let mut accepted = 0_u64;
    for _round in 0..50 {
        let mut tasks = tokio::task::JoinSet::new();
        for writer in 0..16 {
            let app = std::sync::Arc::clone(if writer % 2 == 0 { &first } else { &second });
            tasks.spawn(async move { app.deposit("hot", "1.00").await });
        }
        while let Some(reply) = tasks.join_next().await {
            let reply = reply.expect("task");
            match reply.status {
                200 => accepted += 1,
                409 => conflict = Some(reply),
                _ => panic!("unexpected reply: {}", reply.raw),
            }
        }
        if conflict.is_some() {
            break;
        }
    }
    let conflict = conflict.expect("two instances with one attempt each must collide");
    assert_eq!(conflict.code(), "concurrency_conflict");
    assert!(
        conflict
            .content_type
            .starts_with("application/problem+json")
    );
    assert!(
        conflict.headers.get("retry-after").is_some(),
        "409 concurrency_conflict carries Retry-After"
    );
    // Every 200 wrote one event; no 409 wrote anything.
    let folded = first.folded("hot").await;
    assert_eq!(folded.version(), 1 + accepted);
    assert_eq!(
        folded.balance().value(),
        rust_decimal::Decimal::from(accepted)
    );
    assert_eq!(first.event_count().await as u64, 1 + accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_rule_rejections_are_422_and_write_nothing() {
    let app = TestApp::spawn().await;
    app.open("a", "USD", Some("10.00")).await;
    app.open("b", "USD", None).await;
    app.open("eur", "EUR", None).await;
    app.open("frozen", "USD", None).await;
    app.open("closed", "USD", None).await;
    assert_eq!(app.deposit("a", "100.00").await.status, 200);
    let freeze = app
        .command(
            "/v1/accounts/frozen/freeze",
            &new_key(),
            &json!({"reason": "audit"}),
        )
        .await;
    assert_eq!(freeze.status, 200, "{}", freeze.raw);
    let close = app
        .command("/v1/accounts/closed/close", &new_key(), &json!({}))
        .await;
    assert_eq!(close.status, 200, "{}", close.raw);
    let before = app.event_count().await;

    let reply = app.withdraw("a", "110.01").await;
    assert_problem(&app, before, &reply, 422, "insufficient_funds").await;
    assert_eq!(reply.body["available"], "110.00");
    assert_eq!(reply.body["requested"], "110.01");
    let reply = app.transfer("b", "a", "0.01").await;
    assert_problem(&app, before, &reply, 422, "insufficient_funds").await;

    let reply = app.deposit("frozen", "1.00").await;
    assert_problem(&app, before, &reply, 422, "account_frozen").await;
    let reply = app.transfer("a", "frozen", "1.00").await;
    assert_problem(&app, before, &reply, 422, "account_frozen").await;
    let reply = app
        .command(
            "/v1/accounts/frozen/freeze",
            &new_key(),
            &json!({"reason": "again"}),
        )
        .await;
    assert_problem(&app, before, &reply, 422, "account_already_frozen").await;
    let reply = app
        .command("/v1/accounts/a/unfreeze", &new_key(), &json!({}))
        .await;
    assert_problem(&app, before, &reply, 422, "account_not_frozen").await;

    let reply = app.withdraw("closed", "1.00").await;
    assert_problem(&app, before, &reply, 422, "account_closed").await;

    let reply = app.transfer("a", "eur", "1.00").await;
    assert_problem(&app, before, &reply, 422, "currency_mismatch").await;

    let reply = app
        .command("/v1/accounts/a/close", &new_key(), &json!({}))
        .await;
    assert_problem(&app, before, &reply, 422, "non_zero_balance").await;
    assert_eq!(reply.body["balance"], "100.00");

    let reply = app.deposit("a", "1.005").await;
    assert_problem(&app, before, &reply, 422, "invalid_amount").await;

    let reply = app.transfer("a", "a", "1.00").await;
    assert_problem(&app, before, &reply, 422, "same_account_transfer").await;

    let reply = app
        .command(
            "/v1/accounts",
            &new_key(),
            &json!({"owner": "Y", "kind": "CHECKING", "currency": "JPY", "overdraft_limit": "0.5"}),
        )
        .await;
    assert_problem(&app, before, &reply, 422, "invalid_overdraft_limit").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_that_cannot_catch_up_in_time_is_503_with_retry_after() {
    let app = TestApp::spawn_with(&[("LEDGER_READ_WAIT_TIMEOUT_MS", "200")]).await;
    app.open("slow", "USD", None).await;
    let reply = app.get("/v1/accounts/slow?min_sequence=99").await;
    assert_problem(&app, 1, &reply, 503, "read_model_behind").await;
    assert!(reply.headers.get("retry-after").is_some());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_openapi_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/health/live").await.status, 200);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.raw);
    let spec = app.get("/openapi.json").await;
    assert_eq!(spec.status, 200);
    let paths = spec.body["paths"].as_object().expect("paths");
    for path in [
        "/v1/accounts",
        "/v1/accounts/{id}",
        "/v1/accounts/{id}/deposits",
        "/v1/accounts/{id}/withdrawals",
        "/v1/transfers",
        "/v1/accounts/{id}/freeze",
        "/v1/accounts/{id}/unfreeze",
        "/v1/accounts/{id}/close",
        "/v1/accounts/{id}/transactions",
        "/v1/accounts/{id}/balance",
        "/v1/accounts/{id}/daily-balances",
    ] {
        assert!(
            paths.contains_key(path),
            "openapi.json lacks {path}: {:?}",
            paths.keys()
        );
    }
    app.stop().await;
}
