//! Builds the running ledger from a `LedgerConfig`: stores, services, the in-process projector and the
//! HTTP server. Tests build it exactly as `main` does, on port 0 with a fresh database.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer};
use ledger_application::ports::{EventFeed, EventStore, HealthCheck, SystemClock, UuidV7Ids};
use ledger_application::{
    CommandService, DeadLetterCheck, FeedProjector, FeedProjectorConfig, FreshnessWait,
    ProjectionLagCheck, ProjectionProgress, ProjectionRetry, Projector, QueryService, RetryPolicy,
    SignallingEventStore,
};
use ledger_dynamodb::config::{DynamoClients, DynamoSettings, DynamoTables};
use ledger_dynamodb::event_store::DynamoEventStore;
use ledger_dynamodb::snapshots::DynamoSnapshotStore;
use ledger_dynamodb::streams::{StreamPoller, StreamPollerConfig};
use ledger_dynamodb::tables::{create_tables, events_stream_arn};
use ledger_http::HttpState;
use ledger_sqlite::SqliteDatabase;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::{DynamodbConfig, EventStoreKind, LedgerConfig, ReadModelKind};

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
    #[error("DynamoDB is not ready: {0}")]
    Dynamodb(#[source] ledger_application::ports::StoreError),
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
    event_store: Arc<dyn EventStore>,
    feed: Option<Arc<dyn EventFeed>>,
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

/// What the chosen event store brings: the command service over it, its projector task and how far
/// behind that is, its readiness check, and how to read back what it stored.
struct EventSide {
    commands: CommandService,
    event_store: Arc<dyn EventStore>,
    feed: Option<Arc<dyn EventFeed>>,
    projector: JoinHandle<()>,
    projection_progress: Arc<ProjectionProgress>,
    event_store_check: Arc<dyn HealthCheck>,
}

impl Application {
    /// Opens the stores, starts the projector and binds the listener. Must run inside a Tokio runtime.
    pub async fn build(config: &LedgerConfig) -> Result<Self, StartupError> {
        // The read model is SQLite in every mode of this build; the match makes a new kind a compile
        // error here.
        match config.read_model {
            ReadModelKind::Sqlite => {}
        }
        let database = SqliteDatabase::open(&config.sqlite_path)
            .await
            .map_err(|source| StartupError::Database {
                path: config.sqlite_path.display().to_string(),
                source,
            })?;
        let read_model = Arc::new(database.read_model());
        let (stop_projector, stop_signal) = watch::channel(false);
        let retry = RetryPolicy {
            attempts_max: config.command_attempts_max,
            ..RetryPolicy::default()
        };
        let side = match config.event_store {
            EventStoreKind::Sqlite => embedded(&database, retry, stop_signal),
            EventStoreKind::Dynamodb => {
                dynamodb(&config.dynamodb, &database, retry, stop_signal).await?
            }
        };
        let queries = Arc::new(QueryService::new(
            read_model,
            FreshnessWait {
                timeout: config.read_wait_timeout,
                ..FreshnessWait::default()
            },
        ));
        // Readiness asks what is in use: the event store (SQLite or DynamoDB), the read model, and
        // the projector (no open dead letter, lag within its bound).
        let health_checks: Vec<Arc<dyn HealthCheck>> = vec![
            side.event_store_check,
            Arc::new(database.read_model()),
            Arc::new(DeadLetterCheck::new(Arc::new(database.read_model()))),
            Arc::new(ProjectionLagCheck::new(
                side.projection_progress,
                Arc::new(SystemClock),
                config.ready_lag_max,
            )),
        ];
        let state = HttpState {
            commands: Arc::new(side.commands),
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
        tracing::info!(port, event_store = ?config.event_store,
            read_model = %config.sqlite_path.display(), "ledger listening");
        Ok(Self {
            server,
            port,
            database,
            event_store: side.event_store,
            feed: side.feed,
            projector: side.projector,
            stop_projector,
        })
    }

    /// The bound port (the real one when the configuration asked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The feed of every stored event (embedded mode only), for tools and tests that audit what was
    /// written.
    pub fn event_feed(&self) -> Option<Arc<dyn EventFeed>> {
        self.feed.clone()
    }

    /// The event store itself, for tools and tests that fold an account's history.
    pub fn event_store(&self) -> Arc<dyn EventStore> {
        Arc::clone(&self.event_store)
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

/// Embedded mode: events and read model in one SQLite file, the feed projector woken by every append.
fn embedded(
    database: &SqliteDatabase,
    retry: RetryPolicy,
    stop: watch::Receiver<bool>,
) -> EventSide {
    let appended = Arc::new(Notify::new());
    let event_store = Arc::new(database.event_store());
    let commands = CommandService::new(
        Arc::new(SignallingEventStore::new(
            event_store.clone(),
            Arc::clone(&appended),
        )),
        Arc::new(SystemClock),
        Arc::new(UuidV7Ids),
        retry,
    );
    let projector = FeedProjector::new(
        EMBEDDED_PROJECTOR,
        event_store.clone(),
        Arc::new(database.read_model()),
        Arc::new(SystemClock),
        FeedProjectorConfig::default(),
        appended,
    );
    EventSide {
        commands,
        event_store: event_store.clone(),
        event_store_check: event_store.clone(),
        feed: Some(event_store),
        projection_progress: projector.progress(),
        projector: tokio::spawn(async move { projector.run(stop).await }),
    }
}

/// DynamoDB mode: events (and snapshots) in DynamoDB, the stream poller feeding the SQLite read model.
async fn dynamodb(
    config: &DynamodbConfig,
    database: &SqliteDatabase,
    retry: RetryPolicy,
    stop: watch::Receiver<bool>,
) -> Result<EventSide, StartupError> {
    let clients = ledger_dynamodb::config::clients().await;
    let client = clients.dynamodb.clone();
    let tables = dynamo_tables(config);
    if config.create_tables {
        create_tables(&client, &tables)
            .await
            .map_err(StartupError::Dynamodb)?;
    }
    let poller = stream_poller(&clients, &tables.events, database).await?;
    let settings = DynamoSettings::with_tables(tables);
    let event_store = Arc::new(DynamoEventStore::new(client.clone(), settings.clone()));
    let snapshots = Arc::new(DynamoSnapshotStore::new(client, settings));
    let commands = CommandService::new(
        event_store.clone(),
        Arc::new(SystemClock),
        Arc::new(UuidV7Ids),
        retry,
    )
    .with_snapshots(snapshots, config.snapshot_every);
    Ok(EventSide {
        commands,
        event_store: event_store.clone(),
        event_store_check: event_store,
        feed: None,
        projection_progress: poller.progress(),
        projector: tokio::spawn(async move { poller.run(stop).await }),
    })
}

/// The configured table names.
pub fn dynamo_tables(config: &DynamodbConfig) -> DynamoTables {
    DynamoTables {
        events: config.events_table.clone(),
        idempotency: config.idempotency_table.clone(),
        snapshots: config.snapshots_table.clone(),
    }
}

/// The DynamoDB Streams reader of `events_table`, projecting into the SQLite read model of `database`
/// and keeping its shard checkpoints there.
pub async fn stream_poller(
    clients: &DynamoClients,
    events_table: &str,
    database: &SqliteDatabase,
) -> Result<StreamPoller, StartupError> {
    let stream_arn = events_stream_arn(&clients.dynamodb, events_table)
        .await
        .map_err(StartupError::Dynamodb)?;
    let read_model = Arc::new(database.read_model());
    Ok(StreamPoller::new(
        clients.streams.clone(),
        stream_arn,
        read_model.clone(),
        Projector::new(
            read_model,
            Arc::new(SystemClock),
            ProjectionRetry::default(),
        ),
        StreamPollerConfig::default(),
    ))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_shutdown_signal() {
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
