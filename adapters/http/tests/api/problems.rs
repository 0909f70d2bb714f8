//! Every error code reachable through HTTP, with its status, `application/problem+json` and `code`.

use std::sync::Arc;

use actix_web::test::TestRequest;
use serde_json::json;

use crate::support::{
    ContendedStore, CorruptReadModel, CorruptStore, Ledger, UnreachableStore, app, command,
    deposit, freeze, get, open, open_with, raw_command, state,
};

#[actix_web::test]
async fn malformed_bodies_are_400_malformed_body() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;
    for body in [
        // Amounts are strings: a JSON number is refused, so no float ever reaches the ledger.
        r#"{"amount": 12.5}"#,
        r#"{"amount": 12}"#,
        r#"{"amount": 1e2}"#,
        // Typos are refused, not ignored.
        r#"{"amount": "1.00", "descripton": "typo"}"#,
        // Positional arrays are not objects.
        r#"["1.00"]"#,
        r#"{"amount": "1.00""#,
        r#"{"amount": "1.00", "amount": "2.00"}"#,
        "{}",
        r#"{"amount": null}"#,
        "",
    ] {
        let reply = app
            .send(raw_command(
                "/v1/accounts/acc-1/deposits",
                "application/json",
                body,
            ))
            .await;
        reply.problem(400, "malformed_body");
    }
    for body in [r#"{"reason": "x"}"#, "[]", "null", "{"] {
        app.send(raw_command(
            "/v1/accounts/acc-1/close",
            "application/json",
            body,
        ))
        .await
        .problem(400, "malformed_body");
    }
    assert_eq!(ledger.events("acc-1").await.len(), 1, "nothing was written");
}

#[actix_web::test]
async fn a_body_that_is_not_json_is_415() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;
    app.send(raw_command(
        "/v1/accounts/acc-1/deposits",
        "text/plain",
        r#"{"amount":"1.00"}"#,
    ))
    .await
    .problem(415, "unsupported_media_type");
    app.send(raw_command(
        "/v1/accounts/acc-1/close",
        "application/x-www-form-urlencoded",
        "a=b",
    ))
    .await
    .problem(415, "unsupported_media_type");
}

#[actix_web::test]
async fn a_body_over_16_kib_is_413() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;
    let padded = format!(
        r#"{{"amount": "1.00", "description": "{}"}}"#,
        "x".repeat(16 * 1024)
    );
    let body = app
        .send(raw_command(
            "/v1/accounts/acc-1/deposits",
            "application/json",
            padded.clone(),
        ))
        .await
        .problem(413, "payload_too_large");
    assert_eq!(body["limit_bytes"], 16 * 1024);
    app.send(raw_command(
        "/v1/accounts/acc-1/close",
        "application/json",
        padded,
    ))
    .await
    .problem(413, "payload_too_large");
    assert_eq!(ledger.events("acc-1").await.len(), 1);
}

#[actix_web::test]
async fn invalid_fields_are_400_validation_failed_naming_each() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    let fields = app
        .send(command(
            "/v1/accounts",
            &json!({"account_id": "no spaces", "owner": " ", "kind": "LOAN", "currency": "usd", "overdraft_limit": "-5"}),
        ))
        .await
        .invalid_fields();
    assert_eq!(
        fields,
        ["account_id", "owner", "kind", "currency", "overdraft_limit"]
    );

    open(&app, "acc-1", "USD").await;
    for (amount, description) in [
        ("abc", "ok"),
        ("0", "ok"),
        ("-1.00", "ok"),
        ("1e3", "ok"),
        ("1000000000000000.01", "ok"),
    ] {
        let fields = app
            .send(command(
                "/v1/accounts/acc-1/deposits",
                &json!({"amount": amount, "description": description}),
            ))
            .await
            .invalid_fields();
        assert_eq!(fields, ["amount"], "{amount}");
    }
    let fields = app
        .send(command(
            "/v1/accounts/acc-1/withdrawals",
            &json!({"amount": "1", "description": "x".repeat(501)}),
        ))
        .await
        .invalid_fields();
    assert_eq!(fields, ["description"]);

    let fields = app
        .send(command(
            "/v1/transfers",
            &json!({"source_account_id": "", "target_account_id": "b/c", "amount": "1"}),
        ))
        .await
        .invalid_fields();
    assert_eq!(fields, ["source_account_id", "target_account_id"]);

    let fields = app
        .send(command("/v1/accounts/acc-1/freeze", &json!({"reason": ""})))
        .await
        .invalid_fields();
    assert_eq!(fields, ["reason"]);

    // An id in the path that cannot exist is reported like a body field.
    let fields = app
        .send(command(
            "/v1/accounts/bad%20id/deposits",
            &json!({"amount": "1"}),
        ))
        .await
        .invalid_fields();
    assert_eq!(fields, ["account_id"]);
    assert_eq!(ledger.events("acc-1").await.len(), 1);
}

#[actix_web::test]
async fn unknown_accounts_are_404_account_not_found() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    let body = app
        .send(command(
            "/v1/accounts/ghost/deposits",
            &json!({"amount": "1"}),
        ))
        .await
        .problem(404, "account_not_found");
    assert_eq!(body["account_id"], "ghost");
    open(&app, "acc-1", "USD").await;
    app.send(command(
        "/v1/transfers",
        &json!({"source_account_id": "acc-1", "target_account_id": "ghost", "amount": "1"}),
    ))
    .await
    .problem(404, "account_not_found");
    app.send(get("/v1/accounts/ghost"))
        .await
        .problem(404, "account_not_found");
}

#[actix_web::test]
async fn opening_an_existing_account_is_409() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;
    let body = app
        .send(command(
            "/v1/accounts",
            &json!({"account_id": "acc-1", "owner": "Eve", "kind": "CHECKING", "currency": "USD"}),
        ))
        .await
        .problem(409, "account_already_exists");
    assert_eq!(body["account_id"], "acc-1");
}

#[actix_web::test]
async fn business_rule_rejections_are_422_with_their_values() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "usd-1", "USD").await;
    open(&app, "usd-2", "USD").await;
    open(&app, "eur-1", "EUR").await;
    deposit(&app, "usd-1", "10.00").await;

    let body = app
        .send(command(
            "/v1/accounts/usd-1/withdrawals",
            &json!({"amount": "25.00"}),
        ))
        .await
        .problem(422, "insufficient_funds");
    assert_eq!(body["available"], "10.00");
    assert_eq!(body["requested"], "25.00");
    assert_eq!(body["account_id"], "usd-1");

    let body = app
        .send(command(
            "/v1/accounts/usd-1/deposits",
            &json!({"amount": "1.234"}),
        ))
        .await
        .problem(422, "invalid_amount");
    assert_eq!(body["currency"], "USD");
    assert_eq!(body["minor_units"], 2);

    app.send(command(
        "/v1/accounts",
        &json!({"owner": "Ada", "kind": "CHECKING", "currency": "JPY", "overdraft_limit": "1.5"}),
    ))
    .await
    .problem(422, "invalid_overdraft_limit");

    let body = app
        .send(command(
            "/v1/transfers",
            &json!({"source_account_id": "usd-1", "target_account_id": "eur-1", "amount": "1.00"}),
        ))
        .await
        .problem(422, "currency_mismatch");
    assert_eq!(body["source_currency"], "USD");
    assert_eq!(body["target_currency"], "EUR");

    app.send(command(
        "/v1/transfers",
        &json!({"source_account_id": "usd-1", "target_account_id": "usd-1", "amount": "1.00"}),
    ))
    .await
    .problem(422, "same_account_transfer");

    let body = app
        .send(command("/v1/accounts/usd-1/close", &json!({})))
        .await
        .problem(422, "non_zero_balance");
    assert_eq!(body["balance"], "10.00");

    app.send(command("/v1/accounts/usd-2/unfreeze", &json!({})))
        .await
        .problem(422, "account_not_frozen");
    freeze(&app, "usd-2").await;
    app.send(command(
        "/v1/accounts/usd-2/freeze",
        &json!({"reason": "again"}),
    ))
    .await
    .problem(422, "account_already_frozen");
    app.send(command(
        "/v1/accounts/usd-2/deposits",
        &json!({"amount": "1"}),
    ))
    .await
    .problem(422, "account_frozen");
    app.send(command(
        "/v1/transfers",
        &json!({"source_account_id": "usd-1", "target_account_id": "usd-2", "amount": "1.00"}),
    ))
    .await
    .problem(422, "account_frozen");

    open(&app, "closed", "USD").await;
    app.send(command("/v1/accounts/closed/close", &json!({})))
        .await
        .ok(200);
    let body = app
        .send(command(
            "/v1/accounts/closed/deposits",
            &json!({"amount": "1"}),
        ))
        .await
        .problem(422, "account_closed");
    assert_eq!(body["account_id"], "closed");
}

#[actix_web::test]
async fn losing_every_concurrency_retry_is_409_with_retry_after() {
    let store = Arc::new(ContendedStore::default());
    let ledger = Ledger::new();
    let app = app(state(
        store,
        Arc::clone(&ledger.read_model) as _,
        Vec::new(),
    ))
    .await;
    let reply = app
        .send(command(
            "/v1/accounts",
            &json!({"owner": "Ada", "kind": "CHECKING", "currency": "USD"}),
        ))
        .await;
    reply.problem(409, "concurrency_conflict");
    assert_eq!(reply.header("retry-after"), Some("1"));
}

#[actix_web::test]
async fn an_unreachable_store_is_503_with_retry_after() {
    let ledger = Ledger::new();
    let app = app(state(
        Arc::new(UnreachableStore),
        Arc::clone(&ledger.read_model) as _,
        Vec::new(),
    ))
    .await;
    let reply = app
        .send(command(
            "/v1/accounts/acc-1/deposits",
            &json!({"amount": "1"}),
        ))
        .await;
    reply.problem(503, "service_unavailable");
    assert_eq!(reply.header("retry-after"), Some("1"));
}

#[actix_web::test]
async fn corrupt_storage_is_500_with_nothing_internal_in_the_body() {
    let app = app(state(
        Arc::new(CorruptStore),
        Arc::new(CorruptReadModel),
        Vec::new(),
    ))
    .await;
    for request in [
        command("/v1/accounts/acc-1/deposits", &json!({"amount": "1"})),
        command(
            "/v1/transfers",
            &json!({"source_account_id": "a", "target_account_id": "b", "amount": "1"}),
        ),
        get("/v1/accounts/acc-1"),
        get("/v1/accounts/acc-1/transactions"),
        get("/v1/accounts/acc-1/balance"),
        get("/v1/accounts/acc-1/daily-balances"),
    ] {
        let reply = app.send(request).await;
        // `problem` asserts the body holds none of the failing port's message.
        let body = reply.problem(500, "internal_error");
        let mut members: Vec<_> = body.as_object().expect("object").keys().cloned().collect();
        members.sort();
        assert_eq!(
            members,
            ["code", "detail", "status", "title", "type"],
            "{body}"
        );
    }
}

#[actix_web::test]
async fn unknown_paths_are_404_and_unserved_methods_405() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    for path in [
        "/",
        "/v2/accounts",
        "/v1/nothing",
        "/v1/accounts/acc-1/nope",
    ] {
        app.send(get(path)).await.problem(404, "not_found");
    }
    let reply = app.send(get("/v1/transfers")).await;
    reply.problem(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = app
        .send(TestRequest::delete().uri("/v1/accounts/acc-1"))
        .await;
    reply.problem(405, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET"));
}

#[actix_web::test]
async fn an_unknown_query_parameter_is_400_malformed_query() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open_with(
        &app,
        &json!({"account_id": "acc-1", "owner": "Ada", "kind": "CHECKING", "currency": "USD"}),
    )
    .await;
    ledger.project().await;
    for path in [
        "/v1/accounts/acc-1?min_seq=1",
        "/v1/accounts/acc-1/transactions?limt=5",
        "/v1/accounts/acc-1/transactions?limit=5&limit=6",
        "/v1/accounts/acc-1/balance?asof=2024-01-01T00:00:00Z",
    ] {
        app.send(get(path)).await.problem(400, "malformed_query");
    }
}
