//! What the read-model contract cannot see: the PostgreSQL tables themselves. The money columns'
//! type and exactness, microsecond instants, repeatable and concurrent migrations, the as-of
//! look-up's plan, bounds beyond PostgreSQL's calendar, and the health check. A real server each time.

use chrono::{DateTime, NaiveDate, Utc};
use ledger_application::ports::{
    ApplyOutcome, HealthCheck, Projection, ReadModelQuery, ReadModelUpdate,
};
use ledger_application::testkit::fixtures::{account, at, deposited_event, opened_event, recorded};
use ledger_postgres::testkit::FreshDatabase;
use ledger_postgres::{LAST_TRANSACTION_AT_OR_BEFORE, PostgresReadModel, SCHEMA_VERSION};
use sqlx::{AssertSqlSafe, Row};

async fn apply_all(read_model: &PostgresReadModel, events: &[ledger_application::RecordedEvent]) {
    for event in events {
        let outcome = read_model
            .apply(&ReadModelUpdate::from_event(event))
            .await
            .expect("apply");
        assert_eq!(outcome, ApplyOutcome::Applied, "event {}", event.sequence);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn money_columns_are_numeric_and_keep_a_fifteen_digit_amount_exactly() {
    let database = FreshDatabase::create().await;
    let read_model = database.read_model().await;
    let largest = "999999999999999.99";
    apply_all(
        &read_model,
        &[
            recorded("rich", 1, opened_event(), at(1, 8, 0)),
            recorded("rich", 2, deposited_event(largest, largest), at(1, 9, 0)),
        ],
    )
    .await;

    let id = account("rich");
    let view = read_model.account(&id).await.unwrap().expect("the account");
    assert_eq!(view.balance.to_string(), largest);
    assert_eq!(
        view.overdraft_limit.to_string(),
        "50.00",
        "the scale is kept"
    );
    let movements = read_model.transactions(&id, 0, 10).await.unwrap();
    assert_eq!(movements[0].amount.to_string(), largest);
    assert_eq!(movements[0].balance_after.to_string(), largest);
    let days = read_model
        .daily_balances(&id, NaiveDate::MIN, NaiveDate::MAX, 10)
        .await
        .unwrap();
    assert_eq!(days[0].closing_balance.to_string(), largest);

    let stored: String =
        sqlx::query("SELECT balance::text AS text FROM accounts WHERE account_id = 'rich'")
            .fetch_one(read_model.pool())
            .await
            .unwrap()
            .get("text");
    assert_eq!(stored, largest, "the server holds the exact digits");

    let money_column_types: Vec<(String, String, String)> = sqlx::query(
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
         WHERE column_name IN ('balance', 'overdraft_limit', 'amount', 'balance_after', 'closing_balance') \
         ORDER BY table_name, column_name",
    )
    .fetch_all(read_model.pool())
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1), row.get(2)))
    .collect();
    assert_eq!(money_column_types.len(), 5, "{money_column_types:?}");
    assert!(
        money_column_types
            .iter()
            .all(|(_, _, kind)| kind == "numeric"),
        "{money_column_types:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn instants_read_back_equal_to_the_microsecond() {
    let database = FreshDatabase::create().await;
    let read_model = database.read_model().await;
    let opened_at = at(2, 8, 123_456);
    let moved_at = at(2, 23, 3_599_999_999); // 23:59:59.999999
    apply_all(
        &read_model,
        &[
            recorded("precise", 1, opened_event(), opened_at),
            recorded("precise", 2, deposited_event("1.00", "1.00"), moved_at),
        ],
    )
    .await;
    let id = account("precise");
    let view = read_model.account(&id).await.unwrap().expect("the account");
    assert_eq!(view.opened_at, opened_at);
    assert_eq!(view.updated_at, moved_at);
    let movement = read_model
        .last_transaction_at_or_before(&id, moved_at)
        .await
        .unwrap()
        .expect("the movement, at its own instant");
    assert_eq!(movement.occurred_at, moved_at);
    let one_micro_earlier = moved_at - chrono::Duration::microseconds(1);
    assert!(
        read_model
            .last_transaction_at_or_before(&id, one_micro_earlier)
            .await
            .unwrap()
            .is_none()
    );
    let days = read_model
        .daily_balances(&id, moved_at.date_naive(), moved_at.date_naive(), 10)
        .await
        .unwrap();
    assert_eq!(days.len(), 1, "23:59:59.999999 UTC is still the same day");
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_are_repeatable_and_safe_to_run_at_once() {
    let database = FreshDatabase::create().await;
    let first = database.read_model().await;
    first.migrate().await.expect("a second run changes nothing");
    let second = PostgresReadModel::connect_with(database.options.clone())
        .await
        .unwrap();
    let (a, b) = tokio::join!(first.migrate(), second.migrate());
    a.expect("concurrent migrate");
    b.expect("concurrent migrate");

    let versions: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(first.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    // The data survives a re-run: migrations never recreate a table.
    apply_all(&first, &[recorded("kept", 1, opened_event(), at(1, 8, 0))]).await;
    second.migrate().await.unwrap();
    assert_eq!(first.last_sequence(&account("kept")).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_balance_as_of_an_instant_descends_the_time_index_without_sorting() {
    const HISTORY: i64 = 10_000;
    let database = FreshDatabase::create().await;
    let read_model = database.read_model().await;
    // 10,000 movements, one per second, two per second from 5,000 on (equal instants occur).
    sqlx::query(
        "INSERT INTO account_transactions (account_id, sequence, event_id, entry_type, amount, \
         balance_after, occurred_at) \
         SELECT 'long', s, gen_random_uuid()::text, 'DEPOSIT', 1.00, s::numeric(20, 2), \
         TIMESTAMPTZ '2026-03-01 00:00:00+00' + make_interval(secs => \
           CASE WHEN s > 5000 THEN 5000 + (s - 5000) / 2 ELSE s END) \
         FROM generate_series(1, $1::bigint) AS s",
    )
    .bind(HISTORY)
    .execute(read_model.pool())
    .await
    .unwrap();
    sqlx::raw_sql("ANALYZE account_transactions")
        .execute(read_model.pool())
        .await
        .unwrap();

    let instant = |second: i64| -> DateTime<Utc> {
        "2026-03-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::seconds(second)
    };
    let plan: Vec<String> = sqlx::query(AssertSqlSafe(format!(
        "EXPLAIN {LAST_TRANSACTION_AT_OR_BEFORE}"
    )))
    .bind("long")
    .bind(instant(3_600))
    .fetch_all(read_model.pool())
    .await
    .unwrap()
    .iter()
    .map(|row| row.get(0))
    .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("account_transactions_by_time") && !plan.contains("Sort"),
        "the look-up must descend the time index, with no sort:\n{plan}"
    );

    let id = account("long");
    for (second, expected_sequence) in [(1, 1), (4_999, 4_999), (5_000, 5_001), (7_500, 10_000)] {
        let found = read_model
            .last_transaction_at_or_before(&id, instant(second))
            .await
            .unwrap()
            .expect("a movement");
        assert_eq!(found.sequence, expected_sequence, "as of second {second}");
        assert_eq!(
            found.balance_after.to_string(),
            format!("{expected_sequence}.00")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bounds_beyond_postgres_calendar_answer_instead_of_failing() {
    let database = FreshDatabase::create().await;
    let read_model = database.read_model().await;
    apply_all(
        &read_model,
        &[
            recorded("edge", 1, opened_event(), at(1, 8, 0)),
            recorded("edge", 2, deposited_event("3.00", "3.00"), at(1, 9, 0)),
        ],
    )
    .await;
    let id = account("edge");
    assert!(
        read_model
            .last_transaction_at_or_before(&id, DateTime::<Utc>::MIN_UTC)
            .await
            .unwrap()
            .is_none()
    );
    let latest = read_model
        .last_transaction_at_or_before(&id, DateTime::<Utc>::MAX_UTC)
        .await
        .unwrap()
        .expect("the movement");
    assert_eq!(latest.sequence, 2);
    let days = read_model
        .daily_balances(&id, NaiveDate::MIN, NaiveDate::MAX, 10)
        .await
        .unwrap();
    assert_eq!(days.len(), 1);
    let none = read_model
        .daily_balances(&id, NaiveDate::MIN, NaiveDate::MIN, 10)
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_health_check_answers_while_the_server_does_and_fails_once_closed() {
    let database = FreshDatabase::create().await;
    let read_model = database.read_model().await;
    assert_eq!(read_model.name(), "read_model");
    read_model.check().await.expect("healthy");
    read_model.close().await;
    assert!(
        read_model.check().await.is_err(),
        "a closed pool is unhealthy"
    );
}
