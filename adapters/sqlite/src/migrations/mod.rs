//! The schema migrations: SQL files embedded in the binary, applied in order, each in its own
//! transaction together with the `PRAGMA user_version` that records it.

use ledger_application::ports::StoreError;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{AssertSqlSafe, Row};

use crate::database::{BEGIN_WRITE, roll_back};

struct Migration {
    /// The `user_version` once this migration is applied: its position in [`MIGRATIONS`], from 1.
    version: i64,
    name: &'static str,
    sql: &'static str,
}

/// Append only: a released migration is never edited, since databases in the field already ran it.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "event_store",
        sql: include_str!("0001_event_store.sql"),
    },
    Migration {
        version: 2,
        name: "read_model",
        sql: include_str!("0002_read_model.sql"),
    },
    Migration {
        version: 3,
        name: "stream_checkpoints",
        sql: include_str!("0003_stream_checkpoints.sql"),
    },
    Migration {
        version: 4,
        name: "dead_letters",
        sql: include_str!("0004_dead_letters.sql"),
    },
];

/// The schema version a database has once this build opened it: the number of migrations.
#[allow(clippy::cast_possible_wrap)] // a handful of migrations, far below i64::MAX
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
#[error("migration {version} ({name}) failed: {source}")]
struct MigrationFailed {
    version: i64,
    name: &'static str,
    #[source]
    source: sqlx::Error,
}

/// Applies every migration the database lacks. Each runs under the write lock and first re-reads the
/// version, so two processes opening one file at once apply each migration exactly once.
pub(crate) async fn apply(write: &SqlitePool) -> Result<(), StoreError> {
    let latest = MIGRATIONS.last().map_or(0, |m| m.version);
    for migration in MIGRATIONS {
        let failed = |source| {
            StoreError::unavailable(MigrationFailed {
                version: migration.version,
                name: migration.name,
                source,
            })
        };
        let mut transaction = write.begin_with(BEGIN_WRITE).await.map_err(failed)?;
        let current = match user_version(&mut transaction).await {
            Ok(current) => current,
            Err(error) => {
                roll_back(transaction).await;
                return Err(failed(error));
            }
        };
        if current > latest {
            roll_back(transaction).await;
            // Running old code on a newer schema could write rows the newer code misreads.
            return Err(StoreError::corrupt(format!(
                "the database schema is at version {current}, newer than version {latest} of this \
                 build; refusing to use it"
            )));
        }
        if current >= migration.version {
            roll_back(transaction).await;
            continue;
        }
        let applied = run(&mut transaction, migration).await;
        match applied {
            Ok(()) => transaction.commit().await.map_err(failed)?,
            Err(error) => {
                roll_back(transaction).await;
                return Err(failed(error));
            }
        }
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied SQLite migration"
        );
    }
    Ok(())
}

async fn user_version(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
    sqlx::query("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?
        .try_get::<i64, _>(0)
}

async fn run(conn: &mut SqliteConnection, migration: &Migration) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(migration.sql).execute(&mut *conn).await?;
    // PRAGMA takes no bound parameters; the version is an integer constant of this file.
    sqlx::query(AssertSqlSafe(format!(
        "PRAGMA user_version = {}",
        migration.version
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn versions_count_up_from_one() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, i64::try_from(index).unwrap() + 1);
        }
    }
}
