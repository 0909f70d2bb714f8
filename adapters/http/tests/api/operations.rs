//! Health and the OpenAPI document.

use std::sync::Arc;

use ledger_http::dto::SEQUENCE_MAX;
use ledger_http::openapi::{
    ACCOUNT_ID_PATTERN, AMOUNT_PATTERN, CURRENCY_CODES, FREE_TEXT_PATTERN, IDEMPOTENCY_KEY_PATTERN,
    OVERDRAFT_LIMIT_PATTERN,
};
use serde_json::json;

use crate::support::{FixedCheck, Ledger, app, get, state};

#[actix_web::test]
async fn liveness_checks_nothing_but_the_process() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    let body = app.send(get("/health/live")).await.ok(200);
    assert_eq!(body, json!({"status": "ok"}));
}

#[actix_web::test]
async fn readiness_asks_every_check_and_names_the_failing_ones() {
    let ledger = Ledger::new();
    let healthy = app(state(
        Arc::clone(&ledger.store) as _,
        Arc::clone(&ledger.read_model) as _,
        vec![
            Arc::new(FixedCheck {
                name: "event_store",
                healthy: true,
            }),
            Arc::new(FixedCheck {
                name: "read_model",
                healthy: true,
            }),
        ],
    ))
    .await;
    let body = healthy.send(get("/health/ready")).await.ok(200);
    assert_eq!(body, json!({"status": "ok"}));

    let failing = app(state(
        Arc::clone(&ledger.store) as _,
        Arc::clone(&ledger.read_model) as _,
        vec![
            Arc::new(FixedCheck {
                name: "event_store",
                healthy: true,
            }),
            Arc::new(FixedCheck {
                name: "read_model",
                healthy: false,
            }),
        ],
    ))
    .await;
    let body = failing
        .send(get("/health/ready"))
        .await
        .problem(503, "not_ready");
    assert_eq!(body["failing_checks"], json!(["read_model"]));
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("read_model")),
        "{body}"
    );
}

/// The projector's checks as the bootstrap mounts them: an open dead letter and a lag beyond the
/// bound each make the service not ready, named in `failing_checks`; the reason stays in the logs.
#[actix_web::test]
async fn readiness_fails_on_open_dead_letters_and_on_projection_lag() {
    use ledger_application::ports::{DeadLetter, Projection, SystemClock};
    use ledger_application::{DeadLetterCheck, ProjectionLagCheck, ProjectionProgress};

    let ledger = Ledger::new();
    let progress = Arc::new(ProjectionProgress::new(
        chrono::Utc::now() - chrono::Duration::seconds(60),
    ));
    let ready = || {
        app(state(
            Arc::clone(&ledger.store) as _,
            Arc::clone(&ledger.read_model) as _,
            vec![
                Arc::new(DeadLetterCheck::new(Arc::clone(&ledger.read_model) as _)),
                Arc::new(ProjectionLagCheck::new(
                    Arc::clone(&progress),
                    Arc::new(SystemClock),
                    std::time::Duration::from_secs(5),
                )),
            ],
        ))
    };
    // Started a minute ago and never caught up: behind.
    let body = ready()
        .await
        .send(get("/health/ready"))
        .await
        .problem(503, "not_ready");
    assert_eq!(body["failing_checks"], json!(["projection_lag"]));
    progress.caught_up();
    let body = ready().await.send(get("/health/ready")).await.ok(200);
    assert_eq!(body, json!({"status": "ok"}));

    ledger
        .read_model
        .record_dead_letter(&DeadLetter {
            account_id: None,
            sequence: None,
            event_id: None,
            event_type: None,
            raw: "{\"image\":\"secret-ish\"}".to_owned(),
            reason: "undecodable: test".to_owned(),
            waiting_behind: None,
            recorded_at: chrono::Utc::now(),
        })
        .await
        .expect("record");
    let body = ready()
        .await
        .send(get("/health/ready"))
        .await
        .problem(503, "not_ready");
    assert_eq!(body["failing_checks"], json!(["dead_letters"]));
    assert!(
        !body.to_string().contains("secret-ish"),
        "the letter stays out of the body: {body}"
    );
}

#[actix_web::test]
async fn the_openapi_document_lists_every_route_and_the_problem_schema() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    let document = app.send(get("/openapi.json")).await.ok(200);
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with('3'))
    );
    let routes = [
        ("/v1/accounts", "post"),
        ("/v1/accounts/{id}", "get"),
        ("/v1/accounts/{id}/deposits", "post"),
        ("/v1/accounts/{id}/withdrawals", "post"),
        ("/v1/accounts/{id}/freeze", "post"),
        ("/v1/accounts/{id}/unfreeze", "post"),
        ("/v1/accounts/{id}/close", "post"),
        ("/v1/accounts/{id}/transactions", "get"),
        ("/v1/accounts/{id}/balance", "get"),
        ("/v1/accounts/{id}/daily-balances", "get"),
        ("/v1/transfers", "post"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/openapi.json", "get"),
    ];
    let paths = document["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), routes.len(), "{:?}", paths.keys());
    for (path, method) in routes {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        if method == "post" {
            let parameters = operation["parameters"].as_array().expect("parameters");
            assert!(
                parameters.iter().any(|p| p["name"] == "Idempotency-Key"
                    && p["in"] == "header"
                    && p["required"] == true
                    && p["schema"]["pattern"] == IDEMPOTENCY_KEY_PATTERN),
                "{path} documents the Idempotency-Key header as required, with its pattern"
            );
            let body_optional = path.ends_with("/unfreeze") || path.ends_with("/close");
            assert_eq!(
                operation["requestBody"]["required"]
                    .as_bool()
                    .unwrap_or(false),
                !body_optional,
                "{path} documents whether its body is required"
            );
            assert!(
                operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                    .is_string(),
                "{path} documents its body"
            );
            assert!(
                operation["responses"]["422"]["content"]["application/problem+json"].is_object(),
                "{path} documents its problems"
            );
        }
    }
    let schemas = &document["components"]["schemas"];
    for schema in [
        "Problem",
        "FieldError",
        "OpenAccountRequest",
        "MoneyMovementRequest",
        "TransferRequest",
        "AccountResponse",
        "TransactionPageResponse",
    ] {
        assert!(schemas[schema].is_object(), "{schema} is in the components");
    }
    assert_eq!(
        schemas["MoneyMovementRequest"]["properties"]["amount"]["type"], "string",
        "amounts are documented as strings"
    );
}

/// What the fuzzer (scripts/fuzz.sh) found the document promising beyond what the handlers take:
/// every constrained input now carries its constraint, so a client generating requests from the
/// document sends only requests the ledger can accept.
#[actix_web::test]
async fn the_openapi_document_states_every_input_constraint_the_handlers_enforce() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    let document = app.send(get("/openapi.json")).await.ok(200);
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().expect("name");
                let schema = &parameter["schema"];
                match name {
                    "id" => assert_eq!(
                        schema["pattern"], ACCOUNT_ID_PATTERN,
                        "{method} {path}: the account id"
                    ),
                    "min_sequence" | "cursor" => {
                        assert_eq!(schema["type"], "integer", "{method} {path}: {name}");
                        assert_eq!(
                            schema["maximum"],
                            json!(SEQUENCE_MAX),
                            "{method} {path}: {name} is bounded as the parser bounds it"
                        );
                    }
                    "X-Correlation-Id" | "traceparent" => assert_eq!(
                        schema["type"], "string",
                        "{method} {path}: {name} takes any text (it is never refused)"
                    ),
                    _ => {}
                }
            }
        }
    }
    let schemas = &document["components"]["schemas"];
    for (schema, field, pattern) in [
        ("MoneyMovementRequest", "amount", AMOUNT_PATTERN),
        ("TransferRequest", "amount", AMOUNT_PATTERN),
        ("TransferRequest", "source_account_id", ACCOUNT_ID_PATTERN),
        ("TransferRequest", "target_account_id", ACCOUNT_ID_PATTERN),
        ("OpenAccountRequest", "account_id", ACCOUNT_ID_PATTERN),
        (
            "OpenAccountRequest",
            "overdraft_limit",
            OVERDRAFT_LIMIT_PATTERN,
        ),
        ("OpenAccountRequest", "owner", FREE_TEXT_PATTERN),
        ("MoneyMovementRequest", "description", FREE_TEXT_PATTERN),
        ("FreezeRequest", "reason", FREE_TEXT_PATTERN),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["pattern"], pattern,
            "{schema}.{field}"
        );
    }
    let currencies = &schemas["OpenAccountRequest"]["properties"]["currency"]["enum"];
    assert_eq!(
        currencies,
        &json!(CURRENCY_CODES.as_slice()),
        "the currencies booked"
    );
}
