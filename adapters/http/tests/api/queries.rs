//! The query endpoints over the projected read model: body shapes, paging, time, freshness.

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::support::{Ledger, command, deposit, freeze, get, open};

fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<_> = value.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

fn assert_timestamp(value: &Value) {
    let text = value.as_str().expect("timestamp is a string");
    let parsed = chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339");
    assert_eq!(parsed.offset().local_minus_utc(), 0, "UTC: {text}");
    assert!(text.ends_with('Z'), "{text}");
}

#[actix_web::test]
async fn an_account_shows_its_projected_state() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;
    deposit(&app, "acc-1", "12.5").await;
    ledger.project().await;

    let body = app.send(get("/v1/accounts/acc-1")).await.ok(200);
    assert_eq!(
        sorted_keys(&body),
        [
            "account_id",
            "balance",
            "currency",
            "kind",
            "last_sequence",
            "opened_at",
            "overdraft_limit",
            "owner",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(body["account_id"], "acc-1");
    assert_eq!(body["owner"], "Ada Lovelace");
    assert_eq!(body["kind"], "CHECKING");
    assert_eq!(body["currency"], "USD");
    assert_eq!(body["status"], "OPEN");
    assert_eq!(body["balance"], "12.50");
    assert_eq!(body["overdraft_limit"], "0.00");
    assert_eq!(body["last_sequence"], 2);
    assert_timestamp(&body["opened_at"]);
    assert_timestamp(&body["updated_at"]);

    freeze(&app, "acc-1").await;
    ledger.project().await;
    let body = app.send(get("/v1/accounts/acc-1")).await.ok(200);
    assert_eq!(body["status"], "FROZEN");
    assert_eq!(body["frozen_reason"], "suspected fraud");
    assert_eq!(body["last_sequence"], 3);
}

#[actix_web::test]
async fn transactions_come_in_sequence_order_one_page_at_a_time() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "alice", "USD").await;
    open(&app, "bob", "USD").await;
    app.send(command(
        "/v1/accounts/alice/deposits",
        &json!({"amount": "100", "description": "salary"}),
    ))
    .await
    .ok(200);
    deposit(&app, "alice", "1.00").await;
    app.send(command(
        "/v1/accounts/alice/withdrawals",
        &json!({"amount": "2.00"}),
    ))
    .await
    .ok(200);
    let transfer = app
        .send(command(
            "/v1/transfers",
            &json!({"source_account_id": "alice", "target_account_id": "bob", "amount": "9.00", "description": "rent"}),
        ))
        .await
        .ok(200);
    ledger.project().await;

    let first = app
        .send(get("/v1/accounts/alice/transactions?limit=2"))
        .await
        .ok(200);
    let items = first["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["sequence"], 2);
    assert_eq!(items[0]["entry_type"], "DEPOSIT");
    assert_eq!(items[0]["amount"], "100.00");
    assert_eq!(items[0]["balance_after"], "100.00");
    assert_eq!(items[0]["description"], "salary");
    assert!(items[0]["event_id"].is_string());
    assert_timestamp(&items[0]["occurred_at"]);
    assert_eq!(
        sorted_keys(&items[1]),
        [
            "amount",
            "balance_after",
            "entry_type",
            "event_id",
            "occurred_at",
            "sequence"
        ]
    );
    let cursor = first["next_cursor"].as_str().expect("a next page");

    let second = app
        .send(get(&format!(
            "/v1/accounts/alice/transactions?limit=2&cursor={cursor}"
        )))
        .await
        .ok(200);
    let items = second["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["sequence"], 4);
    assert_eq!(items[0]["entry_type"], "WITHDRAWAL");
    assert_eq!(items[1]["sequence"], 5);
    assert_eq!(items[1]["entry_type"], "TRANSFER_OUT");
    assert_eq!(items[1]["transfer_id"], transfer["transfer_id"]);
    assert_eq!(items[1]["counterparty_account_id"], "bob");
    assert_eq!(items[1]["balance_after"], "90.00");
    assert_eq!(second.get("next_cursor"), None, "last page: {second}");

    let bob = app.send(get("/v1/accounts/bob/transactions")).await.ok(200);
    assert_eq!(bob["items"][0]["entry_type"], "TRANSFER_IN");
    assert_eq!(bob["items"][0]["counterparty_account_id"], "alice");
    assert_eq!(bob["items"][0]["description"], "rent");
}

#[actix_web::test]
async fn bad_paging_parameters_are_400() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;
    ledger.project().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=-1", "cursor"),
        ("cursor=99999999999999999999", "cursor"),
        ("min_sequence=x", "min_sequence"),
    ] {
        let fields = app
            .send(get(&format!("/v1/accounts/acc-1/transactions?{query}")))
            .await
            .invalid_fields();
        assert_eq!(fields, [field], "{query}");
    }
}

#[actix_web::test]
async fn the_balance_as_of_an_instant() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;
    deposit(&app, "acc-1", "7.00").await;
    ledger.project().await;

    let body = app.send(get("/v1/accounts/acc-1/balance")).await.ok(200);
    assert_eq!(
        sorted_keys(&body),
        ["account_id", "as_of", "balance", "sequence"]
    );
    assert_eq!(body["account_id"], "acc-1");
    assert_eq!(body["balance"], "7.00");
    assert_eq!(body["sequence"], 2);
    assert_timestamp(&body["as_of"]);

    let later = (Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(SecondsFormat::Secs, false)
        .replace('+', "%2B");
    let body = app
        .send(get(&format!("/v1/accounts/acc-1/balance?as_of={later}")))
        .await
        .ok(200);
    assert_eq!(body["balance"], "7.00");

    let body = app
        .send(get("/v1/accounts/acc-1/balance?as_of=2001-02-03T04:05:06Z"))
        .await
        .problem(404, "account_not_found");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("did not exist")),
        "{body}"
    );

    let fields = app
        .send(get("/v1/accounts/acc-1/balance?as_of=yesterday"))
        .await
        .invalid_fields();
    assert_eq!(fields, ["as_of"]);
}

#[actix_web::test]
async fn daily_balances_cover_a_bounded_range_of_days() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;
    deposit(&app, "acc-1", "3.00").await;
    deposit(&app, "acc-1", "4.00").await;
    ledger.project().await;
    let today = Utc::now().date_naive().format("%Y-%m-%d").to_string();

    for path in [
        "/v1/accounts/acc-1/daily-balances".to_owned(),
        format!("/v1/accounts/acc-1/daily-balances?from={today}&to={today}"),
    ] {
        let body = app.send(get(&path)).await.ok(200);
        assert_eq!(body["account_id"], "acc-1");
        assert_eq!(
            body["items"],
            json!([{"date": today, "closing_balance": "7.00", "last_sequence": 3}]),
            "{path}"
        );
    }

    let body = app
        .send(get(
            "/v1/accounts/acc-1/daily-balances?from=2001-01-01&to=2001-12-31",
        ))
        .await
        .ok(200);
    assert_eq!(body["items"], json!([]));

    for (query, field) in [
        ("from=2024-01-01&to=2025-01-01", "from"),
        ("from=2024-02-01&to=2024-01-01", "from"),
        ("from=01/02/2024", "from"),
        ("to=2024-02-30", "to"),
    ] {
        let fields = app
            .send(get(&format!("/v1/accounts/acc-1/daily-balances?{query}")))
            .await
            .invalid_fields();
        assert_eq!(fields, [field], "{query}");
    }
}

#[actix_web::test]
async fn min_sequence_waits_for_the_read_model_within_bounds() {
    let ledger = Ledger::new();
    let app = ledger.app().await;
    open(&app, "acc-1", "USD").await;
    ledger.project().await;
    let written = deposit(&app, "acc-1", "1.00").await;
    assert_eq!(written["sequence"], 2);

    // Not projected yet: the bounded wait runs out.
    for path in [
        "/v1/accounts/acc-1?min_sequence=2",
        "/v1/accounts/acc-1/transactions?min_sequence=2",
        "/v1/accounts/acc-1/balance?min_sequence=2",
        "/v1/accounts/acc-1/daily-balances?min_sequence=2",
    ] {
        let reply = app.send(get(path)).await;
        let body = reply.problem(503, "read_model_behind");
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_eq!(body["min_sequence"], 2);
        assert_eq!(body["last_sequence"], 1);
        assert_eq!(body["account_id"], "acc-1");
    }

    ledger.project().await;
    let body = app
        .send(get("/v1/accounts/acc-1?min_sequence=2"))
        .await
        .ok(200);
    assert_eq!(body["last_sequence"], 2);
    app.send(get("/v1/accounts/acc-1/balance?min_sequence=0"))
        .await
        .ok(200);
}
