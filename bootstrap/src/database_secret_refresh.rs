//! The background re-read of the database secret (`LEDGER_DATABASE_SECRET_REFRESH_SECONDS`), so that
//! a password rotated by RDS reaches the pool's new connections without a restart.
//!
//! sqlx opens every new connection with the pool's connect options of the moment, and
//! `Pool::set_connect_options` replaces them; connections already open stay logged in (the server
//! does not end a session when its role's password changes). RDS rotates the managed master
//! password every 7 days by default and keeps only the new one, so without this, every connection
//! opened after the pool retires its old ones (30 min) would fail until the process restarted.
//!
//! One task per pool, spawned where the pool is opened (`ReadSide::open`). It ends when the pool is
//! closed; a process (or a Lambda execution environment) that never closes its pool ends it with
//! its runtime: a spawned task keeps neither `main` nor an invocation waiting. A failed read is
//! logged and the credentials in use are kept until the next period.

use std::time::Duration;

use ledger_postgres::PostgresReadModel;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::database_credentials::{SecretSource, read_secret};

/// The longest one re-read may take, on top of the client's own retry and timeout configuration:
/// a hung read must not hold the next periods back indefinitely.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts re-reading `source`'s secret every `period` (the first time one `period` from now: the
/// pool was just opened with it) and giving `read_model`'s pools the new username and password
/// whenever they differ from those in use. Ends when `read_model`'s pool is closed.
///
/// The handle is for tests; dropping it does not stop the task.
pub fn spawn_database_secret_refresh(
    read_model: PostgresReadModel,
    source: SecretSource,
    period: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let closed = read_model.pool().close_event();
        tokio::select! {
            () = closed => {}
            () = refresh_every(&read_model, source, period) => {}
        }
    })
}

/// Never returns: runs until the caller stops polling it (the pool closed, or the runtime ended).
async fn refresh_every(read_model: &PostgresReadModel, mut source: SecretSource, period: Duration) {
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    // A Lambda environment thawed after a long freeze reads once, not once per missed period.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        refresh_once(read_model, &mut source).await;
    }
}

/// One re-read: new credentials are handed to the pools; a failure is logged (by its error, which
/// never quotes the secret) and the credentials in use are kept.
async fn refresh_once(read_model: &PostgresReadModel, source: &mut SecretSource) {
    let read = tokio::time::timeout(READ_TIMEOUT, read_secret(&source.client, &source.arn)).await;
    match read {
        Ok(Ok(credentials)) if credentials == source.credentials => {}
        Ok(Ok(credentials)) => {
            read_model.set_credentials(&credentials.username, credentials.password.expose_secret());
            tracing::info!(
                arn = %source.arn,
                username_changed = credentials.username != source.credentials.username,
                "the database secret changed; new connections use its new credentials"
            );
            source.credentials = credentials;
        }
        Ok(Err(error)) => {
            tracing::warn!(arn = %source.arn, %error,
                "cannot read the database secret again; keeping the credentials in use");
        }
        Err(_) => {
            tracing::warn!(arn = %source.arn, timeout_seconds = READ_TIMEOUT.as_secs(),
                "reading the database secret again timed out; keeping the credentials in use");
        }
    }
}
