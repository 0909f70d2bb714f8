//! The concurrency scenarios every event store must pass, over real HTTP: run against the embedded
//! SQLite ledger and against DynamoDB Local by the test files that name a backend.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::json;

use crate::{TestApp, decimal, new_key};

/// Eight clients withdraw 80.00 from 100.00 at once: exactly one may succeed.
pub async fn concurrent_withdrawals_never_overdraw(app: Arc<TestApp>) {
    app.open("race", "USD", None).await;
    assert_eq!(app.deposit("race", "100.00").await.status, 200);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let app = Arc::clone(&app);
        tasks.spawn(async move { app.withdraw("race", "80.00").await });
    }
    let mut succeeded = 0;
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.expect("task");
        match reply.status {
            200 => {
                succeeded += 1;
                assert_eq!(reply.body["balance_after"], "20.00");
            }
            422 => assert_eq!(reply.code(), "insufficient_funds", "{}", reply.raw),
            other => panic!("unexpected {other}: {}", reply.raw),
        }
    }
    assert_eq!(
        succeeded, 1,
        "exactly one withdrawal of 80.00 fits in 100.00"
    );
    let account = app.folded("race").await;
    assert_eq!(account.balance().to_string(), "20.00");
    assert_eq!(account.version(), 3);
    let view = app.account_at("race", 3).await;
    assert_eq!(view.status, 200, "{}", view.raw);
    assert_eq!(view.body["balance"], "20.00");
}

/// `transfers` transfers between random pairs of `accounts` accounts, all at once: money is neither
/// created nor destroyed, no balance passes its limit, and the read model converges to the fold of
/// the event store.
pub async fn concurrent_transfers_conserve_money(
    app: Arc<TestApp>,
    accounts: usize,
    transfers: usize,
) {
    let ids: Vec<String> = (0..accounts).map(|i| format!("pool-{i}")).collect();
    for id in &ids {
        app.open(id, "USD", None).await;
        assert_eq!(app.deposit(id, "1000.00").await.status, 200);
    }
    let total_before = Decimal::from(1000 * accounts);

    let mut rng = seed();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..transfers {
        let source = next(&mut rng) % accounts;
        let target = (source + 1 + next(&mut rng) % (accounts - 1)) % accounts;
        let cents = 1 + next(&mut rng) % 30_000;
        let amount = Decimal::new(i64::try_from(cents).expect("small"), 2).to_string();
        let (app, source, target) = (Arc::clone(&app), ids[source].clone(), ids[target].clone());
        tasks.spawn(async move { app.transfer(&source, &target, &amount).await });
    }
    let (mut accepted, mut refused, mut conflicted) = (0_u64, 0_u64, 0_u64);
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.expect("task");
        match (reply.status, reply.code()) {
            (200, _) => accepted += 1,
            (422, "insufficient_funds") => refused += 1,
            (409, "concurrency_conflict") => conflicted += 1,
            (status, code) => panic!("unexpected {status} {code}: {}", reply.raw),
        }
    }
    println!(
        "transfers: {accepted} accepted, {refused} insufficient funds, {conflicted} conflicts"
    );
    assert!(
        accepted > transfers as u64 / 2,
        "most transfers go through: {accepted}"
    );

    // The source of truth conserves the total and respects every limit.
    let mut total_after = Decimal::ZERO;
    let mut events = 0;
    let mut versions = Vec::new();
    for id in &ids {
        let account = app.folded(id).await;
        assert!(account.balance().value() >= Decimal::ZERO, "{id} overdrawn");
        total_after += account.balance().value();
        events += account.version();
        versions.push((id.clone(), account.version(), account.balance()));
    }
    assert_eq!(total_after, total_before, "transfers conserve money");
    // Each account has its opening and seed deposit; each accepted transfer one event on each side.
    assert_eq!(events, 2 * accounts as u64 + 2 * accepted);

    // The read model converges to the fold of the event store.
    let mut read_total = Decimal::ZERO;
    for (id, version, balance) in versions {
        let view = app.account_at(&id, version).await;
        assert_eq!(view.status, 200, "{}", view.raw);
        assert_eq!(view.body["last_sequence"], version);
        assert_eq!(view.body["balance"], balance.to_string(), "{id}");
        read_total += decimal(&view.body["balance"]);
    }
    assert_eq!(read_total, total_before);
}

/// The same `Idempotency-Key` sent ten times in parallel: one effect, ten identical answers.
pub async fn one_key_sent_ten_times_in_parallel_has_one_effect(app: Arc<TestApp>) {
    app.open("target", "USD", None).await;
    let key = new_key();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let app = Arc::clone(&app);
        let key = key.clone();
        tasks.spawn(async move {
            app.command(
                "/v1/accounts/target/deposits",
                &key,
                &json!({"amount": "5.00"}),
            )
            .await
        });
    }
    let mut bodies = Vec::new();
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.expect("task");
        assert_eq!(reply.status, 200, "{}", reply.raw);
        bodies.push(reply.raw);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every reply is the one outcome"
    );
    let account = app.folded("target").await;
    assert_eq!(account.version(), 2, "open + exactly one deposit");
    assert_eq!(account.balance().to_string(), "5.00");
}

/// Sends one command `copies` times at once under one key, spread over `apps` (several instances on
/// one store, or one), and asserts that every answer is the same: status and body, byte for byte.
/// Returns that answer.
async fn one_answer_under_one_key(
    apps: &[Arc<TestApp>],
    copies: usize,
    path: &str,
    key: &str,
    body: &serde_json::Value,
) -> crate::Reply {
    let mut tasks = tokio::task::JoinSet::new();
    for copy in 0..copies {
        let app = Arc::clone(&apps[copy % apps.len()]);
        let (path, key, body) = (path.to_owned(), key.to_owned(), body.clone());
        tasks.spawn(async move { app.command(&path, &key, &body).await });
    }
    let mut replies = Vec::new();
    while let Some(reply) = tasks.join_next().await {
        replies.push(reply.expect("task"));
    }
    let first = replies.pop().expect("at least one copy");
    for reply in &replies {
        assert_eq!(
            (reply.status, &reply.raw),
            (first.status, &first.raw),
            "every attempt under key {key} gets the one answer"
        );
    }
    first
}

/// Issue 6's interleavings, on whatever store and number of instances `apps` share: one key sent
/// eight times at once is one answer — for a withdrawal that fits only once, an opening with a
/// client-chosen id, and a rejection — and later retries get that answer again, even after the
/// account changed.
pub async fn every_attempt_under_one_key_gets_the_one_answer(apps: Vec<Arc<TestApp>>) {
    let first = &apps[0];
    first.open("once", "USD", None).await;
    assert_eq!(first.deposit("once", "100.00").await.status, 200);

    // A withdrawal of 80.00 from 100.00 fits exactly once: every copy must hear that it succeeded.
    let withdrawal_key = new_key();
    let withdrawal = json!({"amount": "80.00"});
    let answer = one_answer_under_one_key(
        &apps,
        8,
        "/v1/accounts/once/withdrawals",
        &withdrawal_key,
        &withdrawal,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    assert_eq!(answer.body["balance_after"], "20.00");
    // After: the same answer again, also for the amount spelled differently.
    for (app, amount) in apps.iter().zip(["80.00", "80.0", "80"].iter().cycle()) {
        let again = app
            .command(
                "/v1/accounts/once/withdrawals",
                &withdrawal_key,
                &json!({"amount": amount}),
            )
            .await;
        assert_eq!((again.status, &again.raw), (200, &answer.raw), "{amount}");
    }

    // Opening with a client-chosen id: every copy hears 201, none `account_already_exists`.
    let open_key = new_key();
    let opening = json!({"account_id": "chosen", "owner": "Ada", "kind": "SAVINGS",
        "currency": "EUR"});
    let answer = one_answer_under_one_key(&apps, 8, "/v1/accounts", &open_key, &opening).await;
    assert_eq!(answer.status, 201, "{}", answer.raw);

    // A rejection is an answer too: the same 422 for every copy, and for a retry after the account
    // could pay.
    let refused_key = new_key();
    let too_much = json!({"amount": "500.00"});
    let answer = one_answer_under_one_key(
        &apps,
        8,
        "/v1/accounts/once/withdrawals",
        &refused_key,
        &too_much,
    )
    .await;
    assert_eq!(answer.status, 422, "{}", answer.raw);
    assert_eq!(answer.code(), "insufficient_funds");
    assert_eq!(answer.body["available"], "20.00");
    assert_eq!(first.deposit("once", "1000.00").await.status, 200);
    let later = apps[apps.len() - 1]
        .command("/v1/accounts/once/withdrawals", &refused_key, &too_much)
        .await;
    assert_eq!((later.status, &later.raw), (422, &answer.raw));

    // One effect each: the opening, the seed deposit, one withdrawal, the later deposit.
    let once = first.folded("once").await;
    assert_eq!(once.version(), 4);
    assert_eq!(once.balance().to_string(), "1020.00");
    assert_eq!(first.folded("chosen").await.version(), 1);
}

/// A small deterministic generator (xorshift), so a failing run can be replayed from its seed.
fn seed() -> u64 {
    let seed = std::env::var("LEDGER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    println!("LEDGER_TEST_SEED={seed}");
    seed
}

fn next(state: &mut u64) -> usize {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    usize::try_from(*state % 1_000_000_007).expect("fits")
}
