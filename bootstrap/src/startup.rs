//! Builds the running ledger from a `LedgerConfig`: stores, services, the in-process projector and the
//! HTTP server. Tests build it exactly as `main` does, on port 0 with a fresh database.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer};
use ledger_application::ports::{EventFeed, EventStore, HealthCheck, SystemClock, UuidV7Ids};
use ledger_application::{
    CommandService, FeedProjector, FeedProjectorConfig, FreshnessWait, QueryService, RetryPolicy,
    SignallingEventStore,
};
use ledger_http::HttpState;
use ledger_sqlite::SqliteDatabase;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::{EventStoreKind, LedgerConfig, ReadModelKind};

/// The name under which the embedded projector stores its feed checkpoint.
pub const EMBEDDED_PROJECTOR: &str = "embedded-sqlite-feed";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the SQLite database at {path}: {source}")]
    Database {
        path: String,
        #[source]
        source: ledger_application::ports::StoreError,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A built, not yet running, ledger service.
pub struct Application {
    server: Server,
    port: u16,
    database: SqliteDatabase,
    projector: JoinHandle<()>,
    stop_projector: watch::Sender<bool>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Opens the stores, starts the projector and binds the listener. Must run inside a Tokio runtime.
    pub async fn build(config: &LedgerConfig) -> Result<Self, StartupError> {
        // Only the embedded kinds exist in this build; the match makes a new kind a compile error here.
        match (config.event_store, config.read_model) {
            (EventStoreKind::Sqlite, ReadModelKind::Sqlite) => {}
        }
        let database = SqliteDatabase::open(&config.sqlite_path)
            .await
            .map_err(|source| StartupError::Database {
                path: config.sqlite_path.display().to_string(),
                source,
            })?;
        let appended = Arc::new(Notify::new());
        let event_store = Arc::new(database.event_store());
        let read_model = Arc::new(database.read_model());
        let commands = Arc::new(CommandService::new(
            Arc::new(SignallingEventStore::new(
                event_store.clone(),
                Arc::clone(&appended),
            )),
            Arc::new(SystemClock),
            Arc::new(UuidV7Ids),
            RetryPolicy {
                attempts_max: config.command_attempts_max,
                ..RetryPolicy::default()
            },
        ));
        let queries = Arc::new(QueryService::new(
            read_model.clone(),
            FreshnessWait {
                timeout: config.read_wait_timeout,
                ..FreshnessWait::default()
            },
        ));

        let projector = FeedProjector::new(
            EMBEDDED_PROJECTOR,
            event_store,
            read_model,
            Arc::new(SystemClock),
            FeedProjectorConfig::default(),
            appended,
        );
        let (stop_projector, stop_signal) = watch::channel(false);
        let projector = tokio::spawn(async move { projector.run(stop_signal).await });

        let health_checks: Vec<Arc<dyn HealthCheck>> = vec![Arc::new(database.clone())];
        let state = HttpState {
            commands,
            queries,
            health_checks,
        };
        let listener =
            TcpListener::bind(config.http_addr).map_err(|source| StartupError::Listen {
                addr: config.http_addr,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                addr: config.http_addr,
                source,
            })?
            .port();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::Logger::new("%r %s %Dms"))
                .configure(ledger_http::configure(state.clone()))
        })
        // Signals are handled by `run_until_stopped`, so that SIGINT too drains gracefully.
        .disable_signals()
        .shutdown_timeout(config.shutdown_timeout.as_secs());
        if let Some(workers) = config.http_workers {
            server = server.workers(workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Listen {
                addr: config.http_addr,
                source,
            })?
            .run();
        tracing::info!(port, path = %config.sqlite_path.display(), "ledger listening");
        Ok(Self {
            server,
            port,
            database,
            projector,
            stop_projector,
        })
    }

    /// The bound port (the real one when the configuration asked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The feed of every stored event, for tools and tests that audit what was written.
    pub fn event_feed(&self) -> Arc<dyn EventFeed> {
        Arc::new(self.database.event_store())
    }

    /// The event store itself, for tools and tests that fold an account's history.
    pub fn event_store(&self) -> Arc<dyn EventStore> {
        Arc::new(self.database.event_store())
    }

    /// A handle to stop the server gracefully (`stop(true)`) from elsewhere, e.g. a test.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM or `handle().stop(..)`, then drains in-flight requests, lets the
    /// projector finish its batch and store its checkpoint, and closes the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let signals = tokio::spawn(async move {
            wait_for_shutdown_signal().await;
            tracing::info!("shutdown requested; draining in-flight requests");
            handle.stop(true).await;
        });
        let served = self.server.await;
        signals.abort();
        let _ = self.stop_projector.send(true);
        if let Err(error) = self.projector.await {
            tracing::error!(%error, "projector task failed");
        }
        if let Err(error) = self.database.close().await {
            tracing::error!(%error, "closing the database failed");
        }
        tracing::info!("ledger stopped");
        served
    }
}

async fn wait_for_shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut stream) => {
                    stream.recv().await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
