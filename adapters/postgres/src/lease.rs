//! The projector lease on PostgreSQL: a session-level advisory lock on one dedicated connection,
//! held for the life of the lease (not a pooled connection, which would hand the session, and the
//! lock with it, to whoever borrows it next).
//!
//! The server releases a session lock when its session ends, so the lease is released when the
//! holder drops it (the connection closes), when the holder's process dies (the kernel closes the
//! socket, also on SIGKILL) and when the server ends the session; in the last case the holder's next
//! `confirm` fails and it stands down.

use std::time::Duration;

use async_trait::async_trait;
use ledger_application::ports::{
    CONFIRM_TIMEOUT, HeldLease, LeaseLost, ProjectorLease, StoreError,
};
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPool};
use tokio::sync::Mutex;

/// How long an attempt may take to connect and ask for the lock.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The lease named `name` in one database. Every value is a contender; each attempt opens a
/// connection of its own, kept only if it wins, so that no two holders ever share a session
/// (advisory locks are re-entrant within one).
///
/// The connection is not the pool's, but its options are: each attempt reads the pool's current
/// connect options, so that a password rotated into the pool (`Pool::set_connect_options`) is the
/// one the next attempt logs in with.
#[derive(Clone)]
pub struct PostgresProjectorLease {
    pool: PgPool,
    name: String,
}

/// By hand: the connect options hold the database password (sqlx's `Debug` prints it), so only
/// where the lease is and its name are shown.
impl std::fmt::Debug for PostgresProjectorLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options = self.pool.connect_options();
        f.debug_struct("PostgresProjectorLease")
            .field("host", &options.get_host())
            .field("database", &options.get_database())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PostgresProjectorLease {
    /// The lease `name` (e.g. `ledger-projector:` and the stream it reads) in the database of
    /// `pool`, on connections of its own made with the pool's connect options. The lock key is
    /// `hashtextextended(name, 0)`, the server's own stable hash.
    pub fn new(pool: PgPool, name: impl Into<String>) -> Self {
        Self {
            pool,
            name: name.into(),
        }
    }

    async fn attempt(&self) -> Result<Option<Box<dyn HeldLease>>, sqlx::Error> {
        let options = self.pool.connect_options();
        let mut connection = PgConnection::connect_with(&options).await?;
        let granted: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(&self.name)
                .fetch_one(&mut connection)
                .await?;
        if granted {
            Ok(Some(Box::new(PostgresHeldLease {
                connection: Mutex::new(connection),
            })))
        } else {
            // Not kept: a standby holds no session between its attempts.
            connection.close().await?;
            Ok(None)
        }
    }
}

#[async_trait]
impl ProjectorLease for PostgresProjectorLease {
    async fn try_acquire(&self) -> Result<Option<Box<dyn HeldLease>>, StoreError> {
        match tokio::time::timeout(ATTEMPT_TIMEOUT, self.attempt()).await {
            Ok(attempted) => attempted.map_err(StoreError::unavailable),
            Err(elapsed) => Err(StoreError::unavailable(elapsed)),
        }
    }
}

/// The lock, held on its own session. Dropping it closes the connection, which ends the session and
/// releases the lock.
struct PostgresHeldLease {
    connection: Mutex<PgConnection>,
}

#[async_trait]
impl HeldLease for PostgresHeldLease {
    async fn confirm(&self) -> Result<(), LeaseLost> {
        let confirmed = tokio::time::timeout(CONFIRM_TIMEOUT, async {
            let mut connection = self.connection.lock().await;
            // The session answering is not enough: the lock itself must still be there.
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid() AND granted)",
            )
            .fetch_one(&mut *connection)
            .await
        })
        .await;
        match confirmed {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(LeaseLost::Released),
            Ok(Err(error)) => Err(LeaseLost::ConnectionLost(Box::new(error))),
            Err(_) => Err(LeaseLost::Unconfirmed(CONFIRM_TIMEOUT)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A runtime: a lazy pool starts its maintenance task, though it never connects here.
    #[tokio::test]
    async fn debug_does_not_print_the_password() {
        let options: sqlx::postgres::PgConnectOptions =
            "postgres://ledger:hunter2@db.internal/ledger"
                .parse()
                .expect("a PostgreSQL URL");
        let pool = sqlx::postgres::PgPoolOptions::new().connect_lazy_with(options);
        let printed = format!(
            "{:?}",
            PostgresProjectorLease::new(pool, "ledger-projector:x")
        );
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("db.internal") && printed.contains("ledger-projector:x"));
    }
}
