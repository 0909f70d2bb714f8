//! The full life of two accounts over real HTTP: open, move money, freeze, query, close.

use ledger_tests::{TestApp, new_key};
use serde_json::json;

// One story, read top to bottom: splitting it would hide how each step depends on the one before.
#[allow(clippy::too_many_lines)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_live_their_whole_life() {
    let app = TestApp::spawn().await;

    // Alice picks her id; Bob's is generated.
    let alice = app.open("alice", "USD", Some("100.00")).await;
    assert_eq!(alice.body["account_id"], "alice");
    assert_eq!(alice.body["sequence"], 1);
    assert!(alice.body["event_id"].as_str().is_some());
    assert_eq!(
        alice.headers.get("location").and_then(|v| v.to_str().ok()),
        Some("/v1/accounts/alice")
    );
    let bob = app
        .command(
            "/v1/accounts",
            &new_key(),
            &json!({"owner": "Bob", "kind": "SAVINGS", "currency": "USD"}),
        )
        .await;
    assert_eq!(bob.status, 201, "{}", bob.raw);
    let bob_id = bob.body["account_id"]
        .as_str()
        .expect("generated id")
        .to_owned();
    assert!(!bob_id.is_empty());

    let deposit = app.deposit("alice", "250.5").await;
    assert_eq!(deposit.status, 200, "{}", deposit.raw);
    assert_eq!(deposit.body["account_id"], "alice");
    assert_eq!(deposit.body["sequence"], 2);
    assert_eq!(
        deposit.body["balance_after"], "250.50",
        "amounts use the currency's decimals"
    );

    let withdrawal = app.withdraw("alice", "50.50").await;
    assert_eq!(withdrawal.status, 200, "{}", withdrawal.raw);
    assert_eq!(withdrawal.body["balance_after"], "200.00");

    let transfer = app
        .command(
            "/v1/transfers",
            &new_key(),
            &json!({"source_account_id": "alice", "target_account_id": bob_id,
                "amount": "75.25", "description": "rent"}),
        )
        .await;
    assert_eq!(transfer.status, 200, "{}", transfer.raw);
    let transfer_id = transfer.body["transfer_id"]
        .as_str()
        .expect("transfer id")
        .to_owned();
    assert_eq!(transfer.body["source"]["account_id"], "alice");
    assert_eq!(transfer.body["source"]["sequence"], 4);
    assert_eq!(transfer.body["source"]["balance_after"], "124.75");
    assert_eq!(transfer.body["target"]["account_id"], bob_id.as_str());
    assert_eq!(transfer.body["target"]["sequence"], 2);
    assert_eq!(transfer.body["target"]["balance_after"], "75.25");

    // Into the overdraft, within its limit.
    let overdrawn = app.withdraw("alice", "200.00").await;
    assert_eq!(overdrawn.status, 200, "{}", overdrawn.raw);
    assert_eq!(overdrawn.body["balance_after"], "-75.25");

    let freeze = app
        .command(
            "/v1/accounts/alice/freeze",
            &new_key(),
            &json!({"reason": "suspicious activity"}),
        )
        .await;
    assert_eq!(freeze.status, 200, "{}", freeze.raw);
    assert_eq!(freeze.body["status"], "FROZEN");
    assert_eq!(freeze.body["sequence"], 6);
    let frozen = app.account_at("alice", 6).await;
    assert_eq!(frozen.status, 200, "{}", frozen.raw);
    assert_eq!(frozen.body["status"], "FROZEN");
    assert_eq!(frozen.body["frozen_reason"], "suspicious activity");
    assert_eq!(app.deposit("alice", "1.00").await.code(), "account_frozen");
    let unfreeze = app
        .command("/v1/accounts/alice/unfreeze", &new_key(), &json!({}))
        .await;
    assert_eq!(unfreeze.status, 200, "{}", unfreeze.raw);
    assert_eq!(unfreeze.body["status"], "OPEN");

    // Settle up and close both.
    assert_eq!(app.transfer(&bob_id, "alice", "75.25").await.status, 200);
    let close_alice = app
        .command("/v1/accounts/alice/close", &new_key(), &json!({}))
        .await;
    assert_eq!(close_alice.status, 200, "{}", close_alice.raw);
    assert_eq!(close_alice.body["status"], "CLOSED");
    assert_eq!(close_alice.body["sequence"], 9);

    // The read model, once it caught up, tells the same story.
    let account = app.account_at("alice", 9).await;
    assert_eq!(account.status, 200, "{}", account.raw);
    assert_eq!(account.body["account_id"], "alice");
    assert_eq!(account.body["owner"], "Owner of alice");
    assert_eq!(account.body["kind"], "CHECKING");
    assert_eq!(account.body["currency"], "USD");
    assert_eq!(account.body["status"], "CLOSED");
    assert_eq!(account.body["balance"], "0.00");
    assert_eq!(account.body["overdraft_limit"], "100.00");
    assert_eq!(account.body["last_sequence"], 9);

    // Transactions page in sequence order, with a cursor.
    let first_page = app.get("/v1/accounts/alice/transactions?limit=2").await;
    assert_eq!(first_page.status, 200, "{}", first_page.raw);
    let items = first_page.body["items"].as_array().expect("items");
    let summary: Vec<_> = items
        .iter()
        .map(|i| {
            (
                i["sequence"].clone(),
                i["entry_type"].clone(),
                i["amount"].clone(),
                i["balance_after"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!(2), json!("DEPOSIT"), json!("250.50"), json!("250.50")),
            (
                json!(3),
                json!("WITHDRAWAL"),
                json!("50.50"),
                json!("200.00")
            ),
        ]
    );
    let cursor = first_page.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let mut all = items.clone();
    let mut next = Some(cursor);
    let mut pages = 1;
    while let Some(cursor) = next {
        pages += 1;
        assert!(pages < 10, "pagination must end");
        let page = app
            .get(&format!(
                "/v1/accounts/alice/transactions?limit=2&cursor={cursor}"
            ))
            .await;
        assert_eq!(page.status, 200, "{}", page.raw);
        all.extend(
            page.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .cloned(),
        );
        next = page.body["next_cursor"].as_str().map(str::to_owned);
    }
    let sequences: Vec<_> = all
        .iter()
        .map(|i| i["sequence"].as_u64().expect("seq"))
        .collect();
    assert_eq!(
        sequences,
        vec![2, 3, 4, 5, 8],
        "status changes are not money movements"
    );
    let transfer_out = &all[2];
    assert_eq!(transfer_out["entry_type"], "TRANSFER_OUT");
    assert_eq!(transfer_out["transfer_id"], transfer_id.as_str());
    assert_eq!(transfer_out["counterparty_account_id"], bob_id.as_str());
    assert_eq!(transfer_out["description"], "rent");
    assert_eq!(all[4]["entry_type"], "TRANSFER_IN");
    assert_eq!(all[4]["balance_after"], "0.00");

    // Balance as of the moment of the withdrawal, and now.
    let withdrawal_at = all[1]["occurred_at"]
        .as_str()
        .expect("timestamp")
        .to_owned();
    let then = app
        .get(&format!(
            "/v1/accounts/alice/balance?as_of={}",
            withdrawal_at.replace('+', "%2B")
        ))
        .await;
    assert_eq!(then.status, 200, "{}", then.raw);
    assert_eq!(then.body["balance"], "200.00");
    assert_eq!(then.body["sequence"], 3);
    let now = app.get("/v1/accounts/alice/balance").await;
    assert_eq!(now.body["balance"], "0.00");
    assert_eq!(now.body["sequence"], 8);
    let before_opening = app
        .get("/v1/accounts/alice/balance?as_of=2000-01-01T00:00:00Z")
        .await;
    assert_eq!(before_opening.status, 404, "{}", before_opening.raw);

    // Everything happened today: one daily closing balance.
    let daily = app.get("/v1/accounts/alice/daily-balances").await;
    assert_eq!(daily.status, 200, "{}", daily.raw);
    let days = daily.body["items"].as_array().expect("items");
    assert_eq!(days.len(), 1, "{}", daily.raw);
    assert_eq!(days[0]["closing_balance"], "0.00");
    assert_eq!(days[0]["last_sequence"], 8);

    // Bob's side mirrors it.
    let bob_view = app.account_at(&bob_id, 3).await;
    assert_eq!(bob_view.body["balance"], "0.00");
    assert_eq!(bob_view.body["kind"], "SAVINGS");

    // A closed account refuses everything.
    assert_eq!(app.deposit("alice", "1.00").await.code(), "account_closed");

    // The event store holds exactly the accepted commands' events: 9 for alice, 3 for bob.
    assert_eq!(app.event_count().await, 12);
    app.stop().await;
}
