//! `ledger rebuild`: the wiring of the application's `Rebuilder` onto the configured event store and
//! read model, with an indicatif progress bar on stderr and a summary on stdout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use ledger_application::ports::{ReadModelRebuild, RebuildProgress, SystemClock};
use ledger_application::{RebuildLimits, RebuildObserver, RebuildSummary, Rebuilder};
use ledger_postgres::PostgresRebuild;
use ledger_sqlite::SqliteRebuild;

use crate::LedgerConfig;
use crate::admin::event_source;
use crate::startup::ReadSide;

pub const USAGE: &str = "usage: ledger rebuild [--restart]

Replays the whole event store in use (LEDGER_EVENT_STORE: the SQLite file, or the DynamoDB events
table read account by account with consistent reads, not the 24-hour stream) into a fresh read model
beside the live one (SQLite: the file LEDGER_SQLITE_PATH.rebuild; PostgreSQL: the schema
ledger_rebuild), then replaces the live model with it in one transaction. Queries answer from the
old model until then and from the whole new one after; the projector's checkpoints are kept, and a
projector running meanwhile goes on without a gap. Interrupted, it resumes from its last page of
accounts when run again. One rebuild at a time: a second one refuses to start.

  --restart   throw away what an interrupted rebuild left and start from the first account";

/// Said when another `ledger rebuild` holds the rebuild lease of this read model.
pub const ANOTHER_REBUILD_RUNS: &str = "another `ledger rebuild` is running on this read model: \
     let it finish (or stop it; it resumes when run again), then run this one";

/// Whether the command asked for help, a rebuild from scratch, or a rebuild that resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Help,
    Resume,
    Restart,
}

fn mode(args: &[String]) -> Result<Mode, String> {
    match args {
        [] => Ok(Mode::Resume),
        [flag] if flag == "--restart" => Ok(Mode::Restart),
        [flag] if matches!(flag.as_str(), "--help" | "-h" | "help") => Ok(Mode::Help),
        _ => Err(USAGE.to_owned()),
    }
}

/// Runs `ledger rebuild ARGS`: the summary to print, or why it failed (the live model unchanged).
pub async fn run(config: &LedgerConfig, args: &[String]) -> Result<String, String> {
    let mode = mode(args)?;
    if mode == Mode::Help {
        return Ok(USAGE.to_owned());
    }
    let read_side = ReadSide::open(config).await.map_err(|e| e.to_string())?;
    let rebuilt = match read_side.rebuild_lease().try_acquire().await {
        // Held until the rebuild ends: dropping it lets the next one in.
        Ok(Some(_held)) => rebuild_on(config, &read_side, mode).await,
        Ok(None) => Err(ANOTHER_REBUILD_RUNS.to_owned()),
        Err(error) => Err(format!("cannot take the rebuild lease: {error}")),
    };
    let closed = read_side.close().await.map_err(|e| e.to_string());
    let message = rebuilt?;
    closed?;
    Ok(format!("{message}; {}", read_side.describe(config)))
}

/// The fresh model of the read side in use, opened (and first thrown away, on `--restart`).
enum Fresh {
    Sqlite(SqliteRebuild),
    Postgres(PostgresRebuild),
}

impl Fresh {
    async fn open(read_side: &ReadSide, mode: Mode) -> Result<Self, String> {
        let text = |e: ledger_application::ports::StoreError| e.to_string();
        match read_side {
            ReadSide::Sqlite(database) => {
                let mut fresh = SqliteRebuild::open(database).await.map_err(text)?;
                if mode == Mode::Restart {
                    fresh.discard().await.map_err(text)?;
                    fresh = SqliteRebuild::open(database).await.map_err(text)?;
                }
                Ok(Self::Sqlite(fresh))
            }
            ReadSide::Postgres(read_model) => {
                let mut fresh = PostgresRebuild::open(read_model).await.map_err(text)?;
                if mode == Mode::Restart {
                    fresh.discard().await.map_err(text)?;
                    fresh = PostgresRebuild::open(read_model).await.map_err(text)?;
                }
                Ok(Self::Postgres(fresh))
            }
        }
    }

    fn port(&self) -> Arc<dyn ReadModelRebuild> {
        match self {
            Self::Sqlite(fresh) => Arc::new(fresh.clone()),
            Self::Postgres(fresh) => Arc::new(fresh.clone()),
        }
    }

    /// Closes the fresh model's connections (already closed after a swap; closing again is fine).
    async fn close(&self) {
        match self {
            Self::Sqlite(fresh) => {
                if let Err(error) = fresh.fresh_database().close().await {
                    tracing::warn!(%error, "closing the fresh model failed");
                }
            }
            Self::Postgres(fresh) => fresh.fresh_model().close().await,
        }
    }
}

async fn rebuild_on(
    config: &LedgerConfig,
    read_side: &ReadSide,
    mode: Mode,
) -> Result<String, String> {
    let source = event_source(config, read_side).await?;
    let fresh = Fresh::open(read_side, mode).await?;
    let rebuilder = Rebuilder::new(
        source.scan,
        fresh.port(),
        Arc::new(SystemClock),
        RebuildLimits::default(),
    );
    let bar = Bar::new();
    let started = Instant::now();
    let rebuilt = rebuilder.run(&bar).await;
    bar.bar.finish_and_clear();
    fresh.close().await;
    let summary = rebuilt.map_err(|e| e.to_string())?;
    Ok(describe(&summary, started.elapsed()))
}

fn describe(summary: &RebuildSummary, elapsed: Duration) -> String {
    format!(
        "read model rebuilt ({}): {} account(s), {} event(s), {} more caught up in {} pass(es), \
         {} open dead letter(s), in {}.{:03} s",
        if summary.resumed {
            "resumed an interrupted rebuild"
        } else {
            "from the first account"
        },
        summary.accounts,
        summary.events,
        summary.caught_up_events,
        summary.catch_up_passes,
        summary.dead_letters,
        elapsed.as_secs(),
        elapsed.subsec_millis(),
    )
}

/// The progress bar: a spinner (the total is not known without a second walk), events as its
/// position so that indicatif shows the rate, accounts in the message. Hidden when stderr is no
/// terminal.
struct Bar {
    bar: ProgressBar,
    accounts: AtomicU64,
}

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {pos} events ({per_sec}), {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Self {
            bar,
            accounts: AtomicU64::new(0),
        }
    }
}

impl RebuildObserver for Bar {
    fn started(&self, progress: &RebuildProgress, resumed: bool) {
        self.bar.set_position(progress.events_done);
        self.accounts
            .store(progress.accounts_done, Ordering::Relaxed);
        if resumed {
            self.bar.println(format!(
                "resuming an interrupted rebuild after {} account(s)",
                progress.accounts_done
            ));
        }
        self.bar
            .set_message(format!("{} accounts", progress.accounts_done));
    }

    fn account_replayed(&self, events: u64) {
        let accounts = self.accounts.fetch_add(1, Ordering::Relaxed) + 1;
        self.bar.inc(events);
        self.bar.set_message(format!("{accounts} accounts"));
    }

    fn page_stored(&self, progress: &RebuildProgress) {
        self.bar.set_position(progress.events_done);
    }

    fn caught_up(&self, pass: u32, accounts: usize) {
        let what = if pass == 0 {
            "last catch-up, live writers held".to_owned()
        } else {
            format!("catch-up pass {pass}")
        };
        self.bar.set_message(format!(
            "{what}: {accounts} account(s) behind the live model"
        ));
    }

    fn swapping(&self) {
        self.bar.set_message("swapping the new model in");
    }
}
