//! The workloads A-F: what each sets up, how its clients drive the ledger, and the table it prints.
//! Each run gets a fresh ledger on a fresh SQLite file in a throwaway directory of its own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger_application::{Verifier, VerifyConfig};
use ledger_bootstrap::admin::event_source;
use ledger_bootstrap::startup::ReadSide;
use ledger_domain::Amount;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::bounded::for_each_bounded;
use crate::history::{self, History, random_amount};
use crate::ledger::{Keys, Ledger, Mode, Operation, Posted, embedded_config, sibling_binary};
use crate::stats::{Percentiles, Recorder, Summary, Table, micros, ms, per_second, ratio};

/// Accounts of the uniform workloads (A, D, F).
const ACCOUNTS: usize = 1_000;
/// Commands at once while opening and funding accounts.
const SETUP_CONCURRENCY: usize = 16;
/// Longest the bench waits for the projector to catch up after a run (or a seed) before it says so
/// and goes on.
const DRAIN_WITHIN: Duration = Duration::from_mins(5);
/// A bound on one client's loop, whatever the clock does.
const OPERATIONS_PER_CLIENT_MAX: u64 = 100_000_000;
/// Commands of the paced sender (F) in flight at once; one more is counted as not sent, so that a
/// ledger that cannot keep up shows as failures instead of a sender quietly slowing down.
const IN_FLIGHT_MAX: usize = 4_096;
/// About this many commands a second of F over HTTP are followed by a `min_sequence` read...
const LAG_PROBES_PER_SECOND: u64 = 20;
/// ...at most this many at once: the server answers a waiting read by polling its read model, so
/// probes without a bound would load the very projector they measure. A probe due while this many
/// wait is skipped (the table shows how many samples were taken).
const LAG_PROBES_IN_FLIGHT_MAX: usize = 16;
/// Longest one lag probe waits for its sequence.
const LAG_PROBE_WITHIN: Duration = Duration::from_secs(30);
/// The rate F uses when it has no figure from A and no `--lag-rate`: a calibration run measures one.
const LAG_RATE_PERCENT_OF_MAX: u64 = 80;

/// What the flags chose.
#[derive(Debug, Clone)]
pub struct Settings {
    pub seconds: u64,
    pub rebuild_events: u64,
    pub histories: Vec<u64>,
    pub lag_rate: Option<u64>,
}

/// The state of one bench invocation: the throwaway root, the keys, and A's best rate per mode
/// (F paces itself at 80% of it).
#[derive(Debug)]
pub struct Bench {
    settings: Settings,
    root: tempfile::TempDir,
    keys: Arc<Keys>,
    max_rate: Vec<(Mode, u64)>,
}

/// A throwaway directory holding one run's database, removed when dropped.
struct RunDir {
    dir: tempfile::TempDir,
}

impl RunDir {
    fn database(&self) -> PathBuf {
        self.dir.path().join("ledger.db")
    }
}

impl Bench {
    pub fn new(settings: Settings) -> Result<Self, String> {
        Ok(Self {
            settings,
            root: tempfile::Builder::new()
                .prefix("ledger-bench-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?,
            keys: Arc::new(Keys::new()),
            max_rate: Vec::new(),
        })
    }

    fn run_dir(&self) -> Result<RunDir, String> {
        tempfile::tempdir_in(self.root.path())
            .map(|dir| RunDir { dir })
            .map_err(|e| format!("cannot create a run directory: {e}"))
    }

    fn duration(&self) -> Duration {
        Duration::from_secs(self.settings.seconds.max(1))
    }

    /// A: uniform deposits of random amounts on random accounts among 1,000, 16 and 64 clients.
    pub async fn uniform_deposits(&mut self, modes: &[Mode]) -> Table {
        let mut table = closed_loop_table("A: uniform deposits, random amounts, 1,000 accounts");
        for &mode in modes {
            for clients in [16, 64] {
                let row = self
                    .closed_loop_run(mode, clients, "a", ACCOUNTS, None, Traffic::Deposits)
                    .await;
                match row {
                    Ok((row, ok_per_second)) => {
                        table.row(row);
                        self.note_rate(mode, ok_per_second);
                    }
                    Err(error) => table.row(failed_row(mode, &clients.to_string(), &error)),
                }
            }
        }
        table
    }

    /// B: one hot account, 16 clients depositing on it.
    pub async fn hot_account(&self, modes: &[Mode]) -> Table {
        let mut table = closed_loop_table("B: one hot account, deposits");
        for &mode in modes {
            match self
                .closed_loop_run(mode, 16, "b", 1, None, Traffic::Deposits)
                .await
            {
                Ok((row, _)) => table.row(row),
                Err(error) => table.row(failed_row(mode, "16", &error)),
            }
        }
        table
    }

    /// D: random transfers among 1,000 funded accounts, 16 clients.
    pub async fn transfers(&self, modes: &[Mode]) -> Table {
        let mut table = closed_loop_table("D: random transfers among 1,000 funded accounts");
        let funding = Amount::parse("1000000.00").expect("an amount");
        for &mode in modes {
            match self
                .closed_loop_run(mode, 16, "d", ACCOUNTS, Some(funding), Traffic::Transfers)
                .await
            {
                Ok((row, _)) => table.row(row),
                Err(error) => table.row(failed_row(mode, "16", &error)),
            }
        }
        table
    }

    fn note_rate(&mut self, mode: Mode, ok_per_second: u64) {
        match self.max_rate.iter_mut().find(|(known, _)| *known == mode) {
            Some((_, rate)) => *rate = (*rate).max(ok_per_second),
            None => self.max_rate.push((mode, ok_per_second)),
        }
    }

    /// One closed-loop run on a fresh ledger: open (and fund) the accounts, wait for the projector,
    /// drive it with `clients` for the run's time, wait for the projector again. The row, and the
    /// rate of successes.
    async fn closed_loop_run(
        &self,
        mode: Mode,
        clients: usize,
        prefix: &str,
        accounts: usize,
        funding: Option<Amount>,
        traffic: fn(Arc<Vec<String>>) -> Traffic,
    ) -> Result<(Vec<String>, u64), String> {
        let dir = self.run_dir()?;
        let ledger = Arc::new(Ledger::start(mode, &dir.database()).await?);
        let ids: Vec<String> = (0..accounts).map(|i| format!("{prefix}-{i:04}")).collect();
        let result = async {
            open_accounts(&ledger, &self.keys, &ids, funding).await?;
            drain(&ledger, &self.keys).await?;
            let _ = ledger.take_lags();
            let (recorder, elapsed) = closed_loop(
                &ledger,
                &self.keys,
                clients,
                self.duration(),
                traffic(Arc::new(ids)),
            )
            .await;
            let drained = drain(&ledger, &self.keys).await;
            let lags = ledger.take_lags();
            let summary = recorder.summarize();
            let ok_per_second = summary.ok_per_second(elapsed);
            let mut row = vec![
                mode.label().to_owned(),
                clients.to_string(),
                ok_per_second.to_string(),
            ];
            row.extend(summary_cells(&summary));
            row.push(lag_cell(lags, drained.as_ref().err()));
            Ok((row, ok_per_second))
        }
        .await;
        stop(ledger).await;
        result
    }

    /// C: the cost of a command on an account with 10, 1,000 and 100,000 events.
    pub async fn history_cost(&self, modes: &[Mode]) -> Table {
        let mut table = Table::new(
            "C: sequential deposits on an account with a long history (one client)",
            &[&["mode", "events", "cold ms", "ok/s"][..], SUMMARY_COLUMNS].concat(),
        );
        for &mode in modes {
            match self.history_cost_run(mode, &mut table).await {
                Ok(()) => {}
                Err(error) => table.row(failed_row(mode, "-", &error)),
            }
        }
        table.note(
            "histories are seeded through EventStore::append of events decided by the domain \
             (98 per append, each with its idempotency record); the projector drains them before \
             the timing starts; `cold` is the first command on the account",
        );
        table
    }

    async fn history_cost_run(&self, mode: Mode, table: &mut Table) -> Result<(), String> {
        let dir = self.run_dir()?;
        let histories: Vec<History> = self
            .settings
            .histories
            .iter()
            .map(|&events| History {
                account_id: format!("c-{events}"),
                events: events.max(1),
            })
            .collect();
        let started = Instant::now();
        let seeded = history::seed(&dir.database(), histories.clone()).await?;
        let seeding = started.elapsed();
        let ledger = Arc::new(Ledger::start(mode, &dir.database()).await?);
        let result = async {
            let drain_started = Instant::now();
            // A projector still catching up does not void the run: its figures are taken anyway,
            // and the note says they shared the machine with it.
            let projected = match drain(&ledger, &self.keys).await {
                Ok(()) => format!("projected in {} ms", drain_started.elapsed().as_millis()),
                Err(error) => format!(
                    "NOT projected ({error}): the figures below shared the cores with the projector"
                ),
            };
            table.note(format!(
                "{}: seeded {seeded} events in {} ms, {projected}",
                mode.label(),
                seeding.as_millis(),
            ));
            let mut steady_p50 = Vec::new();
            for history in &histories {
                let (cold, summary, elapsed) = self.sequential_deposits(&ledger, history).await;
                let mut row = vec![
                    mode.label().to_owned(),
                    history.events.to_string(),
                    cold.as_ref().map_or_else(Clone::clone, |us| ms(*us)),
                    summary.ok_per_second(elapsed).to_string(),
                ];
                row.extend(summary_cells(&summary));
                table.row(row);
                steady_p50.push((
                    history.events,
                    summary.latencies.map_or(0, |p| p.p50_us),
                    cold.unwrap_or(0),
                ));
            }
            if let (Some(first), Some(last)) = (steady_p50.first(), steady_p50.last()) {
                table.note(format!(
                    "{}: {} events vs {} events: steady p50 {}, cold {}",
                    mode.label(),
                    last.0,
                    first.0,
                    ratio(last.1, first.1),
                    ratio(last.2, first.2)
                ));
            }
            Ok(())
        }
        .await;
        stop(ledger).await;
        result
    }

    /// One client depositing on `history`'s account for the run's time; the first command apart.
    async fn sequential_deposits(
        &self,
        ledger: &Ledger,
        history: &History,
    ) -> (Result<u64, String>, Summary, Duration) {
        let deposit = || Operation::Deposit {
            account_id: history.account_id.clone(),
            amount: random_amount(),
        };
        let started = Instant::now();
        let cold = ledger
            .execute(&deposit(), &self.keys.fresh())
            .await
            .map(|_| micros(started.elapsed()));
        let mut recorder = Recorder::default();
        let started = Instant::now();
        let deadline = started + self.duration();
        for _ in 0..OPERATIONS_PER_CLIENT_MAX {
            if Instant::now() >= deadline {
                break;
            }
            let sent = Instant::now();
            match ledger.execute(&deposit(), &self.keys.fresh()).await {
                Ok(_) => recorder.ok(sent.elapsed()),
                Err(kind) => recorder.failed(kind),
            }
        }
        (cold, recorder.summarize(), started.elapsed())
    }

    /// E: rebuild (and verify) a read model of `--rebuild-events` events: in-process through
    /// `ledger rebuild`'s own code path and the `Verifier`; then as the `ledger` binary runs them.
    pub async fn rebuild(&self, modes: &[Mode]) -> Table {
        let mut table = Table::new(
            "E: rebuild of the read model from the event store",
            &[
                "mode",
                "events",
                "accounts",
                "rebuild s",
                "rebuild events/s",
                "verify s",
                "verify events/s",
                "verify said",
            ],
        );
        if let Err(error) = self.rebuild_runs(modes, &mut table).await {
            table.row(vec!["-".to_owned(), format!("failed: {error}")]);
        }
        table
    }

    async fn rebuild_runs(&self, modes: &[Mode], table: &mut Table) -> Result<(), String> {
        let events = self.settings.rebuild_events.max(1);
        // 100 events an account, as many accounts as that takes, at most 10,000 (then longer ones).
        let accounts = (events / 100).clamp(1, 10_000);
        let histories: Vec<History> = (0..accounts)
            .map(|index| History {
                account_id: format!("e-{index:05}"),
                events: events / accounts + u64::from(index < events % accounts),
            })
            .collect();
        let dir = self.run_dir()?;
        let path = dir.database();
        let started = Instant::now();
        let seeded = history::seed(&path, histories).await?;
        let seeding = started.elapsed();
        table.note(format!(
            "seeded {seeded} events (deposits decided by the domain, appended 98 at a time) in {} ms, {} events/s; the live model starts empty",
            seeding.as_millis(),
            per_second(seeded, seeding)
        ));
        for &mode in modes {
            let figures = match mode {
                Mode::InProcess => rebuild_in_process(&path).await,
                Mode::Http => rebuild_as_processes(&path).await,
            };
            let label = match mode {
                Mode::InProcess => "in-process",
                Mode::Http => "processes (ledger rebuild, ledger verify)",
            };
            match figures {
                Ok(figures) => table.row(vec![
                    label.to_owned(),
                    seeded.to_string(),
                    accounts.to_string(),
                    seconds_text(figures.rebuild),
                    per_second(seeded, figures.rebuild).to_string(),
                    seconds_text(figures.verify),
                    per_second(seeded, figures.verify).to_string(),
                    figures.verdict,
                ]),
                Err(error) => table.row(vec![label.to_owned(), format!("failed: {error}")]),
            }
        }
        Ok(())
    }

    /// F: projection lag under sustained open-loop load at 80% of A's best rate.
    pub async fn projection_lag(&self, modes: &[Mode]) -> Table {
        let mut table = Table::new(
            "F: projection lag under paced deposits (open loop), 1,000 accounts",
            &[
                &["mode", "rate/s", "ok/s"][..],
                SUMMARY_COLUMNS,
                &["lag samples", "lag p50 ms", "lag p99 ms", "lag max ms"],
            ]
            .concat(),
        );
        for &mode in modes {
            match self.projection_lag_run(mode, &mut table).await {
                Ok(row) => table.row(row),
                Err(error) => table.row(failed_row(mode, "-", &error)),
            }
        }
        table.note(
            "latency counts from each command's scheduled send time; in-process lag is every \
             applied event's recorded_at to its apply (a decorator of the Projection port); over \
             HTTP it is a sampled command's 2xx to its min_sequence read answering",
        );
        table
    }

    async fn projection_lag_run(
        &self,
        mode: Mode,
        table: &mut Table,
    ) -> Result<Vec<String>, String> {
        let rate = match (self.settings.lag_rate, self.known_rate(mode)) {
            (Some(rate), _) => rate,
            (None, Some(max)) => max * LAG_RATE_PERCENT_OF_MAX / 100,
            (None, None) => {
                let (_, max) = self
                    .closed_loop_run(mode, 16, "f", ACCOUNTS, None, Traffic::Deposits)
                    .await?;
                table.note(format!(
                    "{}: no figure from A in this run: calibrated at {max} ok/s (16 clients)",
                    mode.label()
                ));
                max * LAG_RATE_PERCENT_OF_MAX / 100
            }
        }
        .max(1);
        let dir = self.run_dir()?;
        let ledger = Arc::new(Ledger::start(mode, &dir.database()).await?);
        let ids: Vec<String> = (0..ACCOUNTS).map(|i| format!("f-{i:04}")).collect();
        let result = async {
            open_accounts(&ledger, &self.keys, &ids, None).await?;
            drain(&ledger, &self.keys).await?;
            let _ = ledger.take_lags();
            let paced = paced(&ledger, &self.keys, rate, self.duration(), Arc::new(ids)).await;
            let drained = drain(&ledger, &self.keys).await;
            let lags = ledger.take_lags().unwrap_or(paced.probed_lags_us);
            let summary = paced.recorder.summarize();
            let mut row = vec![
                mode.label().to_owned(),
                rate.to_string(),
                summary.ok_per_second(paced.elapsed).to_string(),
            ];
            row.extend(summary_cells(&summary));
            match (Percentiles::of_unsorted(lags), drained) {
                (Some(lag), Ok(())) => row.extend([
                    lag.samples.to_string(),
                    ms(lag.p50_us),
                    ms(lag.p99_us),
                    ms(lag.max_us),
                ]),
                (_, Err(error)) => row.push(format!("not drained: {error}")),
                (None, Ok(())) => row.push("no samples".to_owned()),
            }
            Ok(row)
        }
        .await;
        stop(ledger).await;
        result
    }

    fn known_rate(&self, mode: Mode) -> Option<u64> {
        self.max_rate
            .iter()
            .find(|(known, _)| *known == mode)
            .map(|(_, rate)| *rate)
    }
}

/// What the clients of a closed-loop run send.
#[derive(Debug, Clone)]
enum Traffic {
    /// A deposit of a random amount on a random account.
    Deposits(Arc<Vec<String>>),
    /// A transfer of a random amount between two different random accounts.
    Transfers(Arc<Vec<String>>),
}

impl Traffic {
    fn next(&self) -> Operation {
        match self {
            Self::Deposits(accounts) => Operation::Deposit {
                account_id: pick(accounts).to_owned(),
                amount: random_amount(),
            },
            Self::Transfers(accounts) => {
                let source = fastrand::usize(0..accounts.len());
                let target = (source + fastrand::usize(1..accounts.len().max(2))) % accounts.len();
                Operation::Transfer {
                    source: accounts[source].clone(),
                    target: accounts[target].clone(),
                    amount: random_amount(),
                }
            }
        }
    }
}

fn pick(accounts: &[String]) -> &str {
    &accounts[fastrand::usize(0..accounts.len())]
}

/// `clients` tasks, each sending its next command as soon as the last one answered, until
/// `duration` has passed. The tally, and the time until the last answer.
async fn closed_loop(
    ledger: &Arc<Ledger>,
    keys: &Arc<Keys>,
    clients: usize,
    duration: Duration,
    traffic: Traffic,
) -> (Recorder, Duration) {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (ledger, keys, traffic) = (Arc::clone(ledger), Arc::clone(keys), traffic.clone());
        tasks.spawn(async move {
            let mut recorder = Recorder::default();
            for _ in 0..OPERATIONS_PER_CLIENT_MAX {
                if Instant::now() >= deadline {
                    break;
                }
                let operation = traffic.next();
                let sent = Instant::now();
                match ledger.execute(&operation, &keys.fresh()).await {
                    Ok(_) => recorder.ok(sent.elapsed()),
                    Err(kind) => recorder.failed(kind),
                }
            }
            recorder
        });
    }
    let mut total = Recorder::default();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(recorder) => total.merge(recorder),
            Err(error) => total.failed(format!("client task failed: {error}")),
        }
    }
    (total, started.elapsed())
}

/// What the paced sender measured.
struct Paced {
    recorder: Recorder,
    elapsed: Duration,
    /// Over HTTP: sampled commands' 2xx to their `min_sequence` read answering.
    probed_lags_us: Vec<u64>,
}

/// An open-loop sender: `rate` deposits a second on random accounts for `duration`, each sent at
/// its scheduled time whatever the earlier ones are doing, its latency counted from that time.
async fn paced(
    ledger: &Arc<Ledger>,
    keys: &Arc<Keys>,
    rate: u64,
    duration: Duration,
    accounts: Arc<Vec<String>>,
) -> Paced {
    let traffic = Traffic::Deposits(accounts);
    let total = rate.saturating_mul(duration.as_secs());
    let probe_every = (rate / LAG_PROBES_PER_SECOND).max(1);
    let probe = matches!(**ledger, Ledger::Http(_));
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let probed = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let probes_in_flight = Arc::new(Semaphore::new(LAG_PROBES_IN_FLIGHT_MAX));
    // The rate counts until the last command answered, not until the last probe did.
    let last_answer_us = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut sent = 0_u64;
    while sent < total {
        let due = (u128::from(micros(started.elapsed())) * u128::from(rate) / 1_000_000)
            .min(u128::from(total));
        while u128::from(sent) < due {
            let scheduled = started + Duration::from_micros(sent.saturating_mul(1_000_000) / rate);
            let probe_this = probe && sent.is_multiple_of(probe_every);
            sent += 1;
            let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
                lock(&recorder).failed(format!("not sent: {IN_FLIGHT_MAX} in flight"));
                continue;
            };
            let (ledger, keys, recorder, probed, probes_in_flight, last_answer_us) = (
                Arc::clone(ledger),
                Arc::clone(keys),
                Arc::clone(&recorder),
                Arc::clone(&probed),
                Arc::clone(&probes_in_flight),
                Arc::clone(&last_answer_us),
            );
            let operation = traffic.next();
            tokio::spawn(async move {
                let answered = ledger.execute(&operation, &keys.fresh()).await;
                last_answer_us.fetch_max(micros(started.elapsed()), Ordering::Relaxed);
                drop(permit);
                match answered {
                    Ok(Posted {
                        account_id,
                        sequence,
                    }) => {
                        lock(&recorder).ok(scheduled.elapsed());
                        let probe_permit = if probe_this {
                            probes_in_flight.try_acquire_owned().ok()
                        } else {
                            None
                        };
                        if let Some(_probe_permit) = probe_permit {
                            let asked = Instant::now();
                            match ledger
                                .projected(&account_id, sequence, LAG_PROBE_WITHIN)
                                .await
                            {
                                Ok(()) => lock(&probed).push(micros(asked.elapsed())),
                                Err(kind) => lock(&recorder).failed(format!("lag read: {kind}")),
                            }
                        }
                    }
                    Err(kind) => lock(&recorder).failed(kind),
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Every command sent is answered (or timed out), and every probe too, before the figures are
    // read.
    let all = |permits: usize| u32::try_from(permits).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(crate::ledger::COMMAND_TIMEOUT + LAG_PROBE_WITHIN, async {
        let _commands = in_flight.acquire_many(all(IN_FLIGHT_MAX)).await;
        let _probes = probes_in_flight
            .acquire_many(all(LAG_PROBES_IN_FLIGHT_MAX))
            .await;
    })
    .await;
    let elapsed = Duration::from_micros(last_answer_us.load(Ordering::Relaxed));
    let recorder = std::mem::take(&mut *lock(&recorder));
    let probed_lags_us = std::mem::take(&mut *lock(&probed));
    Paced {
        recorder,
        elapsed,
        probed_lags_us,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Opens every account (and deposits `funding` on each), `SETUP_CONCURRENCY` at a time.
async fn open_accounts(
    ledger: &Arc<Ledger>,
    keys: &Arc<Keys>,
    ids: &[String],
    funding: Option<Amount>,
) -> Result<(), String> {
    for_each_bounded(ids.to_vec(), SETUP_CONCURRENCY, |account_id| {
        let (ledger, keys) = (Arc::clone(ledger), Arc::clone(keys));
        async move {
            let open = Operation::Open {
                account_id: account_id.clone(),
            };
            ledger
                .execute(&open, &keys.fresh())
                .await
                .map_err(|kind| format!("opening {account_id}: {kind}"))?;
            if let Some(amount) = funding {
                let fund = Operation::Deposit {
                    account_id: account_id.clone(),
                    amount,
                };
                ledger
                    .execute(&fund, &keys.fresh())
                    .await
                    .map_err(|kind| format!("funding {account_id}: {kind}"))?;
            }
            Ok(1)
        }
    })
    .await
    .map(|_| ())
}

/// Waits until the projector has applied everything written so far: it applies the feed in commit
/// order, so once a marker account opened now is in the read model, every earlier event is too.
async fn drain(ledger: &Ledger, keys: &Keys) -> Result<(), String> {
    let marker = format!("drain-{}", keys.fresh());
    let marker = &marker[..marker.len().min(64)];
    let posted = ledger
        .execute(
            &Operation::Open {
                account_id: marker.to_owned(),
            },
            &keys.fresh(),
        )
        .await
        .map_err(|kind| format!("drain marker: {kind}"))?;
    ledger
        .projected(&posted.account_id, posted.sequence, DRAIN_WITHIN)
        .await
        .map_err(|kind| format!("the projector did not catch up within {DRAIN_WITHIN:?}: {kind}"))
}

async fn stop(ledger: Arc<Ledger>) {
    match Arc::try_unwrap(ledger) {
        Ok(ledger) => ledger.stop().await,
        // A client task still holds it (it timed out): dropping it kills the process anyway.
        Err(shared) => drop(shared),
    }
}

fn closed_loop_table(title: &str) -> Table {
    Table::new(
        title,
        &[
            &["mode", "clients", "ok/s"][..],
            SUMMARY_COLUMNS,
            &["lag p50/p99/max ms"],
        ]
        .concat(),
    )
}

/// The columns of [`summary_cells`].
const SUMMARY_COLUMNS: &[&str] = &[
    "ok", "failed", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "failures",
];

/// ok, failed, p50, p99, p99.9, max, failures by kind.
fn summary_cells(summary: &Summary) -> Vec<String> {
    let latency = |pick: fn(&Percentiles) -> u64| {
        summary
            .latencies
            .as_ref()
            .map_or("-".to_owned(), |p| ms(pick(p)))
    };
    vec![
        summary.ok.to_string(),
        summary.failed().to_string(),
        latency(|p| p.p50_us),
        latency(|p| p.p99_us),
        latency(|p| p.p999_us),
        latency(|p| p.max_us),
        summary.failures_text(),
    ]
}

fn lag_cell(lags: Option<Vec<u64>>, not_drained: Option<&String>) -> String {
    if let Some(error) = not_drained {
        return format!("not drained: {error}");
    }
    match lags.and_then(Percentiles::of_unsorted) {
        Some(lag) => format!("{}/{}/{}", ms(lag.p50_us), ms(lag.p99_us), ms(lag.max_us)),
        None => "-".to_owned(),
    }
}

fn failed_row(mode: Mode, clients: &str, error: &str) -> Vec<String> {
    vec![
        mode.label().to_owned(),
        clients.to_owned(),
        format!("failed: {error}"),
    ]
}

fn seconds_text(duration: Duration) -> String {
    let millis = duration.as_millis();
    format!("{}.{:03}", millis / 1_000, millis % 1_000)
}

/// How long a rebuild and the verification after it took, and what the verification said.
struct RebuildFigures {
    rebuild: Duration,
    verify: Duration,
    verdict: String,
}

/// `ledger rebuild --restart`'s own code path (`ledger_bootstrap::admin::rebuild::run`), then the
/// `Verifier` as `ledger verify` wires it, on the file at `path`.
async fn rebuild_in_process(path: &Path) -> Result<RebuildFigures, String> {
    let config = embedded_config(path)?;
    let started = Instant::now();
    ledger_bootstrap::admin::rebuild::run(&config, &["--restart".to_owned()]).await?;
    let rebuild = started.elapsed();
    let started = Instant::now();
    let read_side = ReadSide::open(&config).await.map_err(|e| e.to_string())?;
    let verified = async {
        let source = event_source(&config, &read_side).await?;
        let query = read_side.query();
        let mut differences = Vec::new();
        let summary = Verifier::new(
            source.scan.as_ref(),
            query.as_ref(),
            VerifyConfig::default(),
        )
        .run(|difference| {
            if differences.len() < 3 {
                differences.push(difference.to_string());
            }
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok::<_, String>(if summary.differences == 0 {
            format!(
                "agrees ({} accounts, {} events)",
                summary.accounts, summary.events
            )
        } else {
            format!(
                "{} differences, e.g. {}",
                summary.differences,
                differences.join("; ")
            )
        })
    }
    .await;
    let _ = read_side.close().await;
    Ok(RebuildFigures {
        rebuild,
        verify: started.elapsed(),
        verdict: verified?,
    })
}

/// `ledger rebuild --restart` and `ledger verify` as an operator runs them, on the file at `path`.
async fn rebuild_as_processes(path: &Path) -> Result<RebuildFigures, String> {
    let ledger = sibling_binary("ledger")?;
    let run = |args: &'static [&'static str]| {
        let ledger = ledger.clone();
        let path = path.to_owned();
        async move {
            // A blocking wait on a thread of its own: the bench's runtime has no process driver.
            let started = Instant::now();
            let output = tokio::task::spawn_blocking(move || {
                std::process::Command::new(&ledger)
                    .args(args)
                    .env("LEDGER_SQLITE_PATH", &path)
                    .env("RUST_LOG", "warn")
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|e| format!("cannot run {}: {e}", ledger.display()))
            })
            .await
            .map_err(|e| e.to_string())??;
            let said = String::from_utf8_lossy(&output.stdout)
                .lines()
                .last()
                .unwrap_or_default()
                .to_owned();
            if output.status.success() {
                Ok((started.elapsed(), said))
            } else {
                Err(format!(
                    "ledger {} exited with {}: {said} {}",
                    args.join(" "),
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ))
            }
        }
    };
    let (rebuild, _) = run(&["rebuild", "--restart"]).await?;
    let (verify, verdict) = run(&["verify"]).await?;
    Ok(RebuildFigures {
        rebuild,
        verify,
        verdict,
    })
}
