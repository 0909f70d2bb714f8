//! Builds the running ledger from a `LedgerConfig`: stores, services, the in-process projector (none
//! when the read model is PostgreSQL: `ledger-projector` feeds it) and the HTTP server. Tests build it exactly as `main` does, on port 0 with a fresh database.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer};
use ledger_application::ports::{
    EventFeed, EventStore, HealthCheck, Projection, ProjectionCheckpoints, ProjectorLease,
    ReadModelQuery, SystemClock, UuidV7Ids,
};
use ledger_application::{
    CommandService, DeadLetterCheck, FeedProjector, FeedProjectorConfig, FreshnessWait,
    InstrumentedEventStore, ProjectionLagCheck, ProjectionProgress, ProjectionRetry, Projector,
    QueryService, RetryPolicy, SignallingEventStore,
};
use ledger_dynamodb::config::{DynamoClients, DynamoSettings, DynamoTables};
use ledger_dynamodb::event_store::DynamoEventStore;
use ledger_dynamodb::snapshots::DynamoSnapshotStore;
use ledger_dynamodb::streams::{StreamPoller, StreamPollerConfig};
use ledger_dynamodb::tables::{create_tables, events_stream_arn};
use ledger_http::HttpState;
use ledger_postgres::PostgresReadModel;
use ledger_sqlite::{SqliteDatabase, SqliteProjectorLease};
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
    #[error("cannot reach the PostgreSQL read model at {url}: {source}")]
    Postgres {
        /// Printed without its credentials.
        url: String,
        #[source]
        source: ledger_application::ports::StoreError,
    },
    #[error("LEDGER_READ_MODEL=postgres needs DATABASE_URL")]
    MissingDatabaseUrl,
    #[error(transparent)]
    DatabaseCredentials(#[from] crate::database_credentials::DatabaseCredentialsError),
    #[error("LEDGER_READ_MODEL=postgres needs LEDGER_EVENT_STORE=dynamodb")]
    PostgresNeedsDynamodb,
    #[error("DynamoDB is not ready: {0}")]
    Dynamodb(#[source] ledger_application::ports::StoreError),
    #[error(transparent)]
    Authentication(#[from] crate::authentication::AuthStartupError),
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
    read_side: ReadSide,
    event_store: Arc<dyn EventStore>,
    feed: Option<Arc<dyn EventFeed>>,
    /// The in-process projector; `None` with the PostgreSQL read model, which `ledger-projector` feeds.
    projector: Option<JoinHandle<()>>,
    stop_projector: watch::Sender<bool>,
}

/// The read model in use: one SQLite file, or the PostgreSQL database every API process shares.
#[derive(Debug, Clone)]
pub enum ReadSide {
    Sqlite(SqliteDatabase),
    Postgres(PostgresReadModel),
}

impl ReadSide {
    /// Opens the configured read model: the SQLite file (created and migrated), or a pool on
    /// `DATABASE_URL` (not migrated: `ledger migrate` does that, once, not every task at start-up),
    /// with the credentials of `LEDGER_DATABASE_SECRET_ARN` when set, read again every
    /// `LEDGER_DATABASE_SECRET_REFRESH_SECONDS` while the pool is open. Every binary that reaches
    /// PostgreSQL opens it here.
    pub async fn open(config: &LedgerConfig) -> Result<Self, StartupError> {
        Self::open_refreshing_every(config, config.database_secret_refresh).await
    }

    /// As [`ReadSide::open`], with the secret read again every `secret_refresh` instead of the
    /// configured period (which is at least 30 s): for tests of a rotation.
    pub async fn open_refreshing_every(
        config: &LedgerConfig,
        secret_refresh: std::time::Duration,
    ) -> Result<Self, StartupError> {
        match (config.read_model, &config.database_url) {
            (ReadModelKind::Postgres, Some(url)) => {
                let (options, secret) =
                    crate::database_credentials::postgres_connect_options(config)
                        .await?
                        .ok_or(StartupError::MissingDatabaseUrl)?;
                let read_model =
                    PostgresReadModel::connect_with(options)
                        .await
                        .map_err(|source| StartupError::Postgres {
                            url: url.to_string(),
                            source,
                        })?;
                if let Some(secret) = secret {
                    crate::database_secret_refresh::spawn_database_secret_refresh(
                        read_model.clone(),
                        secret,
                        secret_refresh,
                    );
                }
                Ok(Self::Postgres(read_model))
            }
            // Configuration refuses postgres without a URL; should one be built by hand, the SQLite
            // file is not silently used in its place.
            (ReadModelKind::Postgres, None) => Err(StartupError::MissingDatabaseUrl),
            (ReadModelKind::Sqlite, _) => SqliteDatabase::open_with_group_commit(
                &config.sqlite_path,
                config.sqlite_group_commit,
            )
            .await
            .map(Self::Sqlite)
            .map_err(|source| StartupError::Database {
                path: config.sqlite_path.display().to_string(),
                source,
            }),
        }
    }

    pub fn query(&self) -> Arc<dyn ReadModelQuery> {
        match self {
            Self::Sqlite(database) => Arc::new(database.read_model()),
            Self::Postgres(read_model) => Arc::new(read_model.clone()),
        }
    }

    pub fn projection(&self) -> Arc<dyn Projection> {
        match self {
            Self::Sqlite(database) => Arc::new(database.read_model()),
            Self::Postgres(read_model) => Arc::new(read_model.clone()),
        }
    }

    /// Where the projectors keep their positions: in the database of the read model they feed,
    /// in tables of their own (a rebuild replaces the read model, not these).
    pub fn checkpoints(&self) -> Arc<dyn ProjectionCheckpoints> {
        match self {
            Self::Sqlite(database) => Arc::new(database.checkpoints()),
            Self::Postgres(read_model) => Arc::new(read_model.checkpoints()),
        }
    }

    /// The lease that keeps one `ledger-projector` of the stream of `events_table` active: an
    /// advisory lock in PostgreSQL keyed by the table, or a file lock beside the SQLite file.
    pub fn projector_lease(&self, events_table: &str) -> Arc<dyn ProjectorLease> {
        match self {
            Self::Sqlite(database) => Arc::new(SqliteProjectorLease::beside(database.path())),
            Self::Postgres(read_model) => {
                Arc::new(read_model.projector_lease(format!("ledger-projector:{events_table}")))
            }
        }
    }

    /// The lease that lets one `ledger rebuild` at a time work on this read model: two would write
    /// one fresh model and race to swap it in.
    pub fn rebuild_lease(&self) -> Arc<dyn ProjectorLease> {
        match self {
            Self::Sqlite(database) => {
                Arc::new(SqliteProjectorLease::beside_for(database.path(), "rebuild"))
            }
            Self::Postgres(read_model) => Arc::new(read_model.projector_lease("ledger-rebuild")),
        }
    }

    pub fn health_check(&self) -> Arc<dyn HealthCheck> {
        match self {
            Self::Sqlite(database) => Arc::new(database.read_model()),
            Self::Postgres(read_model) => Arc::new(read_model.clone()),
        }
    }

    /// What logs may say about it: the SQLite path, or the URL without credentials.
    pub fn describe(&self, config: &LedgerConfig) -> String {
        match (self, &config.database_url) {
            (Self::Postgres(_), Some(url)) => url.to_string(),
            _ => config.sqlite_path.display().to_string(),
        }
    }

    pub async fn close(&self) -> Result<(), ledger_application::ports::StoreError> {
        match self {
            Self::Sqlite(database) => database.close().await,
            Self::Postgres(read_model) => {
                read_model.close().await;
                Ok(())
            }
        }
    }
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
    /// The in-process projector and how far behind it is; `None` when another process projects.
    projector: Option<(JoinHandle<()>, Arc<ProjectionProgress>)>,
    event_store_check: Arc<dyn HealthCheck>,
}

impl Application {
    /// Opens the stores, starts the projector and binds the listener. Must run inside a Tokio runtime.
    pub async fn build(config: &LedgerConfig) -> Result<Self, StartupError> {
        // First: a ledger that may not start for want of keys opens nothing.
        let authentication =
            crate::authentication::api_authentication(&config.auth, config.http_addr).await?;
        let read_side = ReadSide::open(config).await?;
        let (stop_projector, stop_signal) = watch::channel(false);
        let retry = RetryPolicy {
            attempts_max: config.command_attempts_max,
            ..RetryPolicy::default()
        };
        let mut side = match (config.event_store, &read_side) {
            (EventStoreKind::Sqlite, ReadSide::Sqlite(database)) => {
                embedded(database, retry, stop_signal)
            }
            (EventStoreKind::Sqlite, ReadSide::Postgres(_)) => {
                return Err(StartupError::PostgresNeedsDynamodb);
            }
            // With SQLite, every API process polls the stream into its own file (single node);
            // with PostgreSQL, `ledger-projector` is the one consumer and this process polls nothing.
            (EventStoreKind::Dynamodb, ReadSide::Sqlite(_)) => {
                dynamodb(&config.dynamodb, Some(&read_side), retry, stop_signal).await?
            }
            (EventStoreKind::Dynamodb, ReadSide::Postgres(_)) => {
                dynamodb(&config.dynamodb, None, retry, stop_signal).await?
            }
        };
        side.commands = side.commands.with_state_cache(config.state_cache_accounts);
        let queries = Arc::new(QueryService::new(
            read_side.query(),
            FreshnessWait {
                timeout: config.read_wait_timeout,
                ..FreshnessWait::default()
            },
        ));
        // Readiness asks what is in use: the event store (SQLite or DynamoDB), the read model, no
        // open dead letter in it, and, when this process projects, the projector's lag. With
        // PostgreSQL the lag is `ledger-projector`'s to report, not every API task's.
        let mut health_checks: Vec<Arc<dyn HealthCheck>> = vec![
            side.event_store_check,
            read_side.health_check(),
            Arc::new(DeadLetterCheck::new(read_side.projection())),
        ];
        let projector = side.projector.map(|(task, progress)| {
            health_checks.push(Arc::new(ProjectionLagCheck::new(
                progress,
                Arc::new(SystemClock),
                config.ready_lag_max,
            )));
            task
        });
        let state = HttpState {
            commands: Arc::new(side.commands),
            queries,
            health_checks,
            authentication,
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
            // No actix `Logger`: it writes through the `log` crate, which nothing here reads; the
            // `http.request` span's "request served" line is the access log.
            App::new().configure(ledger_http::configure(state.clone()))
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
            read_model = %read_side.describe(config),
            in_process_projector = projector.is_some(), "ledger listening");
        Ok(Self {
            server,
            port,
            read_side,
            event_store: side.event_store,
            feed: side.feed,
            projector,
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
        if let Some(projector) = self.projector
            && let Err(error) = projector.await
        {
            tracing::error!(%error, "projector task failed");
        }
        if let Err(error) = self.read_side.close().await {
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
    // Every call of the command path is traced and timed (`event_store.*` spans and latency).
    let commands = CommandService::new(
        Arc::new(InstrumentedEventStore::new(Arc::new(
            SignallingEventStore::new(event_store.clone(), Arc::clone(&appended)),
        ))),
        Arc::new(SystemClock),
        Arc::new(UuidV7Ids),
        retry,
    );
    let projector = FeedProjector::new(
        EMBEDDED_PROJECTOR,
        event_store.clone(),
        Arc::new(database.read_model()),
        Arc::new(database.checkpoints()),
        Arc::new(SystemClock),
        FeedProjectorConfig::default(),
        appended,
    );
    let progress = projector.progress();
    EventSide {
        commands,
        event_store: event_store.clone(),
        event_store_check: event_store.clone(),
        feed: Some(event_store),
        projector: Some((
            tokio::spawn(async move { projector.run(stop).await }),
            progress,
        )),
    }
}

/// DynamoDB mode: events (and snapshots) in DynamoDB; the stream poller feeding `polled_read_side`
/// when given (SQLite, single node), none when another process projects (PostgreSQL).
async fn dynamodb(
    config: &DynamodbConfig,
    polled_read_side: Option<&ReadSide>,
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
    let poller = match polled_read_side {
        Some(read_side) => Some(stream_poller(&clients, &tables.events, read_side).await?),
        None => None,
    };
    let settings = DynamoSettings::with_tables(tables);
    let event_store = Arc::new(DynamoEventStore::new(client.clone(), settings.clone()));
    let snapshots = Arc::new(DynamoSnapshotStore::new(client, settings));
    let commands = CommandService::new(
        Arc::new(InstrumentedEventStore::new(event_store.clone())),
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
        projector: poller.map(|poller| {
            let progress = poller.progress();
            (
                tokio::spawn(async move { poller.run(stop).await }),
                progress,
            )
        }),
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

/// The DynamoDB Streams reader of `events_table`, projecting into `read_side` (SQLite or PostgreSQL)
/// and keeping its shard checkpoints there.
pub async fn stream_poller(
    clients: &DynamoClients,
    events_table: &str,
    read_side: &ReadSide,
) -> Result<StreamPoller, StartupError> {
    let stream_arn = events_stream_arn(&clients.dynamodb, events_table)
        .await
        .map_err(StartupError::Dynamodb)?;
    Ok(StreamPoller::new(
        clients.streams.clone(),
        stream_arn,
        read_side.checkpoints(),
        Projector::new(
            read_side.projection(),
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
