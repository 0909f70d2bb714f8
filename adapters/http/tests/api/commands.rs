//! The command endpoints: success bodies, idempotency, and the headers a command carries.

use actix_web::test::TestRequest;
use serde_json::json;
use uuid::Uuid;

use crate::support::{
    Ledger, command, command_with_key, deposit, freeze, key, open, open_with, raw_command,
};

fn assert_event_id(value: &serde_json::Value) {
    let text = value.as_str().expect("event_id is a string");
    assert!(Uuid::parse_str(text).is_ok(), "{text}");
}

#[actix_web::test]
async fn open_answers_201_with_location_and_the_first_event() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    let reply = app
        .send(command(
            "/v1/accounts",
            &json!({"account_id": "acc-1", "owner": "Ada", "kind": "SAVINGS", "currency": "EUR", "overdraft_limit": "50.00"}),
        ))
        .await;
    let body = reply.ok(201);
    assert_eq!(reply.header("location"), Some("/v1/accounts/acc-1"));
    assert_eq!(body["account_id"], "acc-1");
    assert_eq!(body["sequence"], 1);
    assert_event_id(&body["event_id"]);
    assert_eq!(
        body.as_object().map(serde_json::Map::len),
        Some(3),
        "exactly account_id, sequence, event_id: {body}"
    );
    assert_eq!(ledger.events("acc-1").await.len(), 1);
}

#[actix_web::test]
async fn open_without_an_id_generates_one() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    let reply = app
        .send(command(
            "/v1/accounts",
            &json!({"owner": "Ada", "kind": "CHECKING", "currency": "USD"}),
        ))
        .await;
    let body = reply.ok(201);
    let id = body["account_id"].as_str().expect("generated id");
    assert!(id.starts_with("acc_"), "{id}");
    assert_eq!(
        reply.header("location"),
        Some(format!("/v1/accounts/{id}").as_str())
    );
}

#[actix_web::test]
async fn deposits_and_withdrawals_answer_with_the_balance_after() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;

    let body = app
        .send(command(
            "/v1/accounts/acc-1/deposits",
            &json!({"amount": "100.5", "description": "salary"}),
        ))
        .await
        .ok(200);
    assert_eq!(body["account_id"], "acc-1");
    assert_eq!(body["sequence"], 2);
    assert_eq!(
        body["balance_after"], "100.50",
        "written in the currency's minor units"
    );
    assert_event_id(&body["event_id"]);

    let body = app
        .send(command(
            "/v1/accounts/acc-1/withdrawals",
            &json!({"amount": "0.50"}),
        ))
        .await
        .ok(200);
    assert_eq!(body["sequence"], 3);
    assert_eq!(body["balance_after"], "100.00");
    let mut keys: Vec<_> = body.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["account_id", "balance_after", "event_id", "sequence"]
    );
}

#[actix_web::test]
async fn a_transfer_answers_with_both_legs() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "alice", "USD").await;
    open(&app, "bob", "USD").await;
    deposit(&app, "alice", "30.00").await;

    let body = app
        .send(command(
            "/v1/transfers",
            &json!({"source_account_id": "alice", "target_account_id": "bob", "amount": "12.25", "description": "rent"}),
        ))
        .await
        .ok(200);
    assert!(
        body["transfer_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("trf_")),
        "{body}"
    );
    assert_eq!(body["source"]["account_id"], "alice");
    assert_eq!(body["source"]["sequence"], 3);
    assert_eq!(body["source"]["balance_after"], "17.75");
    assert_event_id(&body["source"]["event_id"]);
    assert_eq!(body["target"]["account_id"], "bob");
    assert_eq!(body["target"]["sequence"], 2);
    assert_eq!(body["target"]["balance_after"], "12.25");
    assert_event_id(&body["target"]["event_id"]);
}

#[actix_web::test]
async fn freeze_unfreeze_and_close_answer_with_the_new_status() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;

    let body = freeze(&app, "acc-1").await;
    assert_eq!(body["status"], "FROZEN");
    assert_eq!(body["sequence"], 2);
    assert_event_id(&body["event_id"]);

    // Unfreeze with no body at all, not even a content type.
    let reply = app
        .send(
            TestRequest::post()
                .uri("/v1/accounts/acc-1/unfreeze")
                .insert_header(("Idempotency-Key", key())),
        )
        .await;
    let body = reply.ok(200);
    assert_eq!(body["status"], "OPEN");
    assert_eq!(body["sequence"], 3);

    // Close with `{}`.
    let body = app
        .send(command("/v1/accounts/acc-1/close", &json!({})))
        .await
        .ok(200);
    assert_eq!(body["status"], "CLOSED");
    assert_eq!(body["account_id"], "acc-1");
    assert_eq!(body["sequence"], 4);
}

#[actix_web::test]
async fn the_same_key_and_body_replays_the_original_answer_byte_for_byte() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    let open_body =
        json!({"account_id": "acc-1", "owner": "Ada", "kind": "CHECKING", "currency": "USD"});
    let first = app
        .send(command_with_key("/v1/accounts", "open-1", &open_body))
        .await;
    let again = app
        .send(command_with_key("/v1/accounts", "open-1", &open_body))
        .await;
    assert_eq!(first.status.as_u16(), 201);
    assert_eq!(again.status, first.status);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("location"), first.header("location"));

    let deposit_body = json!({"amount": "10.00"});
    let first = app
        .send(command_with_key(
            "/v1/accounts/acc-1/deposits",
            "dep-1",
            &deposit_body,
        ))
        .await;
    // A later movement must not change what the replay reports.
    deposit(&app, "acc-1", "5.00").await;
    let again = app
        .send(command_with_key(
            "/v1/accounts/acc-1/deposits",
            "dep-1",
            &deposit_body,
        ))
        .await;
    assert_eq!(first.status.as_u16(), 200);
    assert_eq!(again.status, first.status);
    assert_eq!(again.body, first.body);
    assert_eq!(first.json()["balance_after"], "10.00");

    assert_eq!(
        ledger.events("acc-1").await.len(),
        3,
        "open, one deposit under dep-1, and the other deposit"
    );
}

#[actix_web::test]
async fn the_same_key_with_another_body_is_refused() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;
    app.send(command_with_key(
        "/v1/accounts/acc-1/deposits",
        "dep-1",
        &json!({"amount": "10.00"}),
    ))
    .await
    .ok(200);
    app.send(command_with_key(
        "/v1/accounts/acc-1/deposits",
        "dep-1",
        &json!({"amount": "11.00"}),
    ))
    .await
    .problem(409, "idempotency_key_reused");
    app.send(command_with_key(
        "/v1/accounts/acc-1/withdrawals",
        "dep-1",
        &json!({"amount": "10.00"}),
    ))
    .await
    .problem(409, "idempotency_key_reused");
    assert_eq!(ledger.events("acc-1").await.len(), 2);
}

#[actix_web::test]
async fn a_command_without_an_idempotency_key_is_refused_and_writes_nothing() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    let reply = app
        .send(TestRequest::post().uri("/v1/accounts").set_json(
            json!({"account_id": "acc-1", "owner": "Ada", "kind": "CHECKING", "currency": "USD"}),
        ))
        .await;
    reply.problem(400, "missing_idempotency_key");
    assert!(
        reply.header("x-correlation-id").is_some(),
        "errors carry the correlation id too"
    );
    assert!(ledger.events("acc-1").await.is_empty());

    // Checked before the body: a bad body without a key is still reported as the missing key.
    app.send(
        TestRequest::post()
            .uri("/v1/accounts/acc-1/deposits")
            .insert_header(("Content-Type", "application/json"))
            .set_payload("not json"),
    )
    .await
    .problem(400, "missing_idempotency_key");
}

#[actix_web::test]
async fn an_invalid_idempotency_key_is_refused() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    let body =
        json!({"account_id": "acc-1", "owner": "Ada", "kind": "CHECKING", "currency": "USD"});
    for bad in ["", "has space", &"k".repeat(129)] {
        app.send(command_with_key("/v1/accounts", bad, &body))
            .await
            .problem(400, "invalid_idempotency_key");
    }
    let twice = TestRequest::post()
        .uri("/v1/accounts")
        .append_header(("Idempotency-Key", "k1"))
        .append_header(("Idempotency-Key", "k2"))
        .set_json(&body);
    app.send(twice)
        .await
        .problem(400, "invalid_idempotency_key");
    assert!(ledger.events("acc-1").await.is_empty());
}

#[actix_web::test]
async fn correlation_and_trace_context_reach_the_events_and_the_response() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let reply = app
        .send(
            command(
                "/v1/accounts",
                &json!({"account_id": "acc-1", "owner": "Ada", "kind": "CHECKING", "currency": "USD"}),
            )
            .insert_header(("X-Correlation-Id", "corr-42"))
            .insert_header(("traceparent", traceparent)),
        )
        .await;
    reply.ok(201);
    assert_eq!(reply.header("x-correlation-id"), Some("corr-42"));
    let events = ledger.events("acc-1").await;
    assert_eq!(events[0].metadata.correlation_id, "corr-42");
    assert_eq!(events[0].metadata.traceparent.as_deref(), Some(traceparent));

    // A malformed traceparent is dropped; a missing correlation id is generated and echoed.
    let reply = app
        .send(
            command("/v1/accounts/acc-1/deposits", &json!({"amount": "1"}))
                .insert_header(("traceparent", "00-nothex-01")),
        )
        .await;
    reply.ok(200);
    let generated = reply.header("x-correlation-id").expect("echoed");
    assert!(Uuid::parse_str(generated).is_ok(), "{generated}");
    let events = ledger.events("acc-1").await;
    assert_eq!(events[1].metadata.correlation_id, generated);
    assert_eq!(events[1].metadata.traceparent, None);
}

#[actix_web::test]
async fn amounts_keep_their_exact_decimal_value() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open_with(
        &app,
        &json!({"account_id": "kwd", "owner": "Ada", "kind": "CHECKING", "currency": "KWD"}),
    )
    .await;
    // 0.1 + 0.2 is 0.3 here, as it never is in binary floating point.
    deposit(&app, "kwd", "0.1").await;
    let body = deposit(&app, "kwd", "0.2").await;
    assert_eq!(body["balance_after"], "0.300");
    let body = deposit(&app, "kwd", "999999999999999.999").await;
    assert_eq!(body["balance_after"], "1000000000000000.299");
}

#[actix_web::test]
async fn json_may_name_a_charset_and_a_blank_body_counts_as_empty() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;
    app.send(raw_command(
        "/v1/accounts/acc-1/deposits",
        "application/json; charset=utf-8",
        r#"{"amount":"1.00"}"#,
    ))
    .await
    .ok(200);
    app.send(raw_command(
        "/v1/accounts/acc-1/close",
        "application/json",
        "  ",
    ))
    .await
    .problem(422, "non_zero_balance");
}
