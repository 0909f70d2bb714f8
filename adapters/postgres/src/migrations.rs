//! The schema migrations: SQL files under `adapters/postgres/migrations/`, embedded in the binary and
//! applied in order, all in one transaction under an advisory lock, each recorded in
//! `schema_migrations`, so that running them again (or from two processes at once) changes nothing.

use ledger_application::ports::StoreError;
use sqlx::PgPool;
use sqlx::Row;

struct Migration {
    /// Its position in [`MIGRATIONS`], from 1.
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Append only: a released migration is never edited, since databases in the field already ran it.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "read_model",
        sql: include_str!("../migrations/0001_read_model.sql"),
    },
    Migration {
        version: 2,
        name: "projected_at",
        sql: include_str!("../migrations/0002_projected_at.sql"),
    },
];

/// The schema version a database has once [`migrate`] ran: the number of migrations.
#[allow(clippy::cast_possible_wrap)] // a handful of migrations, far below i64::MAX
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The key of the transaction-scoped advisory lock that serialises migrations: two processes
/// starting at once must not both create the same table. Any fixed number works; this one spells
/// "ledgermg" in ASCII.
const MIGRATION_LOCK_KEY: i64 = 0x6c65_6467_6572_6d67;

#[derive(Debug, thiserror::Error)]
#[error("migration {version} ({name}) failed: {source}")]
struct MigrationFailed {
    version: i64,
    name: &'static str,
    #[source]
    source: sqlx::Error,
}

/// Applies every migration the database lacks. PostgreSQL's DDL is transactional, so either all of
/// them commit together with their records or none does.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut transaction = pool.begin().await.map_err(StoreError::unavailable)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *transaction)
        .await
        .map_err(StoreError::unavailable)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
         version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, \
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .execute(&mut *transaction)
    .await
    .map_err(StoreError::unavailable)?;
    let applied: i64 =
        sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations")
            .fetch_one(&mut *transaction)
            .await
            .map_err(StoreError::unavailable)?
            .try_get("version")
            .map_err(StoreError::unavailable)?;
    if applied > SCHEMA_VERSION {
        return Err(StoreError::corrupt(format!(
            "the read model's schema is at version {applied}, newer than this build's {SCHEMA_VERSION}"
        )));
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > applied) {
        let failed = |source| {
            StoreError::unavailable(MigrationFailed {
                version: migration.version,
                name: migration.name,
                source,
            })
        };
        sqlx::raw_sql(migration.sql)
            .execute(&mut *transaction)
            .await
            .map_err(failed)?;
        sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
            .bind(migration.version)
            .bind(migration.name)
            .execute(&mut *transaction)
            .await
            .map_err(failed)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "read model migrated"
        );
    }
    transaction.commit().await.map_err(StoreError::unavailable)
}
