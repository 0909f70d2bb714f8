//! The simulated world: the in-memory stores behind fault-injecting wrappers, two command-service
//! processes that can be restarted, the feed projector that can be crashed, the query service, and
//! the journal of every answer each idempotency key got.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ledger_application::memory::{
    InMemoryCheckpoints, InMemoryEventStore, InMemoryReadModel, InMemorySnapshotStore,
};
use ledger_application::ports::{
    AccountView, Clock, EventFeed, EventStore, IdSource, Projection, ProjectionCheckpoints,
    ReadModelQuery, SnapshotStore, StoreError, TransactionView,
};
use ledger_application::{
    CommandContext, CommandError, CommandOutcome, CommandRequest, CommandService, FeedProjector,
    FeedProjectorConfig, FreshnessWait, ProjectionRetry, QueryService, RequestFingerprint,
    RetryPolicy, SignallingEventStore,
};
use ledger_domain::{AccountId, DomainError};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};

use super::SimConfig;
use super::faults::{
    Faults, FaultyCheckpoints, FaultyEventStore, FaultyFeed, FaultyProjection, FaultySnapshots,
};
use super::rng::SimRng;
use super::system::{SeededIds, VirtualClock};

/// The feed reader's name, under which its checkpoint is stored.
pub const PROJECTOR_NAME: &str = "simulation";

/// What a client heard back from one attempt of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Done(CommandOutcome),
    Rejected(DomainError),
    KeyReused,
    /// Transient: lost to concurrent writers more often than the service retries.
    ConcurrencyConflict,
    /// Transient: the store failed before writing anything.
    StoreUnavailable,
    /// Transient: the service could not tell whether the command was carried out.
    OutcomeUnknown,
    /// Transient: the process restarted while the request was in flight (a dropped connection).
    Cancelled,
    /// An answer no correct run gives (a corrupt history, a missing record, a too-large append).
    Broken(String),
}

impl Answer {
    pub fn from_result(result: Result<CommandOutcome, CommandError>) -> Self {
        match result {
            Ok(outcome) => Self::Done(outcome),
            Err(CommandError::Rejected(error)) => Self::Rejected(error),
            Err(CommandError::IdempotencyKeyReused { .. }) => Self::KeyReused,
            Err(CommandError::ConcurrencyConflict { .. }) => Self::ConcurrencyConflict,
            Err(CommandError::Store(StoreError::Unavailable(_))) => Self::StoreUnavailable,
            Err(CommandError::OutcomeUnknown { .. }) => Self::OutcomeUnknown,
            Err(
                error @ (CommandError::TooLarge { .. }
                | CommandError::CorruptHistory { .. }
                | CommandError::Store(StoreError::Corrupt { .. })),
            ) => Self::Broken(error.to_string()),
        }
    }

    /// Whether the client may take the answer as the command's result and stop retrying.
    pub fn is_definitive(&self) -> bool {
        match self {
            Self::Done(_) | Self::Rejected(_) | Self::KeyReused | Self::Broken(_) => true,
            Self::ConcurrencyConflict
            | Self::StoreUnavailable
            | Self::OutcomeUnknown
            | Self::Cancelled => false,
        }
    }
}

/// One request sent under a key, and every answer it got, in the order they arrived.
#[derive(Debug, Clone)]
pub struct SentRequest {
    pub request: CommandRequest,
    pub fingerprint: RequestFingerprint,
    /// A different request deliberately sent under a key already used: it must be refused.
    pub reuses_key: bool,
    pub answers: Vec<Answer>,
}

/// One attempt of a request: who sent it, when, and to which process.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub client: usize,
    pub key: &'a str,
    pub request: &'a CommandRequest,
    pub number: u32,
    pub sent_at_us: u128,
    pub process: usize,
    pub generation: u64,
}

/// Everything sent under each idempotency key.
#[derive(Debug, Default)]
pub struct Journal {
    pub keys: BTreeMap<String, Vec<SentRequest>>,
}

impl Journal {
    /// The entry of `request` under `key`, created on first sight; a second, different request
    /// under the key is a deliberate reuse.
    fn sent(&mut self, key: &str, request: &CommandRequest) -> &mut SentRequest {
        let fingerprint = request.fingerprint();
        let requests = self.keys.entry(key.to_owned()).or_default();
        let index = if let Some(index) = requests.iter().position(|r| r.fingerprint == fingerprint)
        {
            index
        } else {
            let reuses_key = !requests.is_empty();
            requests.push(SentRequest {
                request: request.clone(),
                fingerprint,
                reuses_key,
                answers: Vec::new(),
            });
            requests.len() - 1
        };
        &mut requests[index]
    }
}

/// What the query side showed a client: checked at the end against the history's prefix.
#[derive(Debug, Default)]
pub struct Observations {
    pub accounts: Vec<AccountView>,
    pub transactions: Vec<(AccountId, TransactionView)>,
    pub not_yet_consistent: u64,
    pub queries: u64,
}

/// The trace of a run: every answer and observation in order, hashed into the run's digest.
#[derive(Debug)]
struct Trace {
    hasher: Sha256,
    lines: Vec<String>,
}

/// The message of a panic payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The lines of `trace` about `subject` (a key or an account id): the last `max_each` answers and
/// observations, then the first `max_each` stored events.
pub fn lines_about(trace: &[String], subject: &str, max_each: usize) -> Vec<String> {
    let (plain, quoted) = (format!(" {subject} "), format!("(\"{subject}\")"));
    let (events, answers): (Vec<&String>, Vec<&String>) = trace
        .iter()
        .filter(|line| line.contains(&plain) || line.contains(&quoted))
        .partition(|line| line.starts_with("event "));
    let skip = answers.len().saturating_sub(max_each);
    answers
        .into_iter()
        .skip(skip)
        .chain(events.into_iter().take(max_each))
        .cloned()
        .collect()
}

/// One command-service process; restarting it drops every request in flight.
struct Process {
    generation: u64,
    service: CommandService,
    /// Set once, when the process is killed; `kill` wakes the requests it had in flight. Not a
    /// `watch` channel: its receivers wait on one of several shards picked at random, so the order
    /// in which they wake would differ from run to run.
    killed: AtomicBool,
    kill: Notify,
}

/// What every process is built from: the shared stores, a clock of its own, the shared id source.
struct ProcessParts {
    store: Arc<dyn EventStore>,
    snapshots: Arc<dyn SnapshotStore>,
    snapshot_every: u64,
    clocks: [Arc<dyn Clock>; 2],
    ids: Arc<SeededIds>,
}

impl ProcessParts {
    fn process(&self, index: usize, generation: u64) -> Process {
        let service = CommandService::new(
            Arc::clone(&self.store),
            Arc::clone(&self.clocks[index]),
            Arc::clone(&self.ids) as Arc<dyn IdSource>,
            RetryPolicy {
                attempts_max: 6,
                backoff_base: Duration::from_millis(1),
                backoff_max: Duration::from_millis(20),
            },
        )
        .with_snapshots(Arc::clone(&self.snapshots), self.snapshot_every);
        Process {
            generation,
            service,
            killed: AtomicBool::new(false),
            kill: Notify::new(),
        }
    }
}

pub struct World {
    pub seed: u64,
    pub config: SimConfig,
    pub rng: Arc<SimRng>,
    pub faults: Arc<Faults>,
    /// The store itself, without faults: what the checks read.
    pub raw_store: Arc<InMemoryEventStore>,
    pub read_model: Arc<InMemoryReadModel>,
    /// The projector's positions, without faults: what the checks read.
    pub checkpoints: Arc<InMemoryCheckpoints>,
    pub queries: QueryService,
    parts: ProcessParts,
    feed: Arc<dyn EventFeed>,
    projection: Arc<dyn Projection>,
    faulty_checkpoints: Arc<dyn ProjectionCheckpoints>,
    processes: [Mutex<Arc<Process>>; 2],
    projector: Mutex<Option<tokio::task::JoinHandle<()>>>,
    projector_stop: watch::Sender<bool>,
    projector_deaths: Mutex<Vec<String>>,
    wake: Arc<Notify>,
    start: tokio::time::Instant,
    pub journal: Mutex<Journal>,
    pub observations: Mutex<Observations>,
    pub known_accounts: Mutex<Vec<AccountId>>,
    trace: Mutex<Trace>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The simulation's own state; a panicking task fails the run anyway.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl World {
    /// Builds the world; must run inside the simulation's paused runtime.
    pub fn new(seed: u64, config: SimConfig) -> Self {
        let rng = Arc::new(SimRng::new(seed));
        let faults = Arc::new(Faults::new(config.faults, Arc::clone(&rng)));
        let raw_store = Arc::new(InMemoryEventStore::new());
        let wake = Arc::new(Notify::new());
        let signalling: Arc<dyn EventStore> = Arc::new(SignallingEventStore::new(
            Arc::clone(&raw_store) as Arc<dyn EventStore>,
            Arc::clone(&wake),
        ));
        let service_store: Arc<dyn EventStore> =
            Arc::new(FaultyEventStore::new(signalling, Arc::clone(&faults)));
        let snapshots: Arc<dyn SnapshotStore> = Arc::new(FaultySnapshots::new(
            Arc::new(InMemorySnapshotStore::new()),
            Arc::clone(&faults),
        ));
        let feed: Arc<dyn EventFeed> = Arc::new(FaultyFeed::new(
            Arc::clone(&raw_store) as Arc<dyn EventFeed>,
            Arc::clone(&faults),
        ));
        let read_model = Arc::new(InMemoryReadModel::new());
        let projection: Arc<dyn Projection> = Arc::new(FaultyProjection::new(
            Arc::clone(&read_model) as Arc<dyn Projection>,
            Arc::clone(&faults),
        ));
        let checkpoints = Arc::new(InMemoryCheckpoints::new());
        let faulty_checkpoints: Arc<dyn ProjectionCheckpoints> = Arc::new(FaultyCheckpoints::new(
            Arc::clone(&checkpoints) as Arc<dyn ProjectionCheckpoints>,
            Arc::clone(&faults),
        ));
        let queries = QueryService::new(
            Arc::clone(&read_model) as Arc<dyn ReadModelQuery>,
            FreshnessWait {
                timeout: Duration::from_secs(2),
                poll_interval: Duration::from_millis(5),
            },
        );
        let start = tokio::time::Instant::now();
        let clocks: [Arc<dyn Clock>; 2] = [
            Arc::new(VirtualClock::new(start, Duration::ZERO)),
            Arc::new(VirtualClock::new(start, config.second_clock_behind)),
        ];
        let ids = Arc::new(SeededIds::new(seed));
        let (projector_stop, _) = watch::channel(false);
        let parts = ProcessParts {
            store: service_store,
            snapshots,
            snapshot_every: config.snapshot_every,
            clocks,
            ids,
        };
        let processes = [
            Mutex::new(Arc::new(parts.process(0, 1))),
            Mutex::new(Arc::new(parts.process(1, 1))),
        ];
        Self {
            seed,
            config,
            rng,
            faults,
            raw_store,
            read_model,
            checkpoints,
            queries,
            parts,
            feed,
            projection,
            faulty_checkpoints,
            processes,
            projector: Mutex::new(None),
            projector_stop,
            projector_deaths: Mutex::new(Vec::new()),
            wake,
            start,
            journal: Mutex::new(Journal::default()),
            observations: Mutex::new(Observations::default()),
            known_accounts: Mutex::new(Vec::new()),
            trace: Mutex::new(Trace {
                hasher: Sha256::new(),
                lines: Vec::new(),
            }),
        }
    }

    /// Virtual microseconds since the run began.
    pub fn elapsed_us(&self) -> u128 {
        self.start.elapsed().as_micros()
    }

    /// Appends a line to the trace (and its digest).
    pub fn trace(&self, line: String) {
        let mut trace = locked(&self.trace);
        trace.hasher.update(line.as_bytes());
        trace.hasher.update(b"\n");
        trace.lines.push(line);
    }

    pub fn trace_lines(&self) -> Vec<String> {
        locked(&self.trace).lines.clone()
    }

    /// The digest of the trace so far, as hex.
    pub fn digest(&self) -> String {
        let digest = locked(&self.trace).hasher.clone().finalize();
        digest.iter().fold(String::new(), |mut hex, byte| {
            use std::fmt::Write;
            let _ = write!(hex, "{byte:02x}");
            hex
        })
    }

    /// Sends one attempt to process `index`. A restart of the process while the request is in
    /// flight drops it at its next await, exactly as a killed process drops its connections.
    pub async fn execute(
        &self,
        index: usize,
        context: &CommandContext,
        request: &CommandRequest,
    ) -> (Answer, u64) {
        let process = Arc::clone(&locked(&self.processes[index]));
        let killed = process.kill.notified();
        tokio::pin!(killed);
        // Registered before the flag is read, so a kill in between still wakes this request.
        killed.as_mut().enable();
        if process.killed.load(Ordering::Relaxed) {
            return (Answer::Cancelled, process.generation);
        }
        let answer = tokio::select! {
            biased;
            () = killed => Answer::Cancelled,
            result = process.service.execute(context, request) => Answer::from_result(result),
        };
        (answer, process.generation)
    }

    /// Kills process `index` (its requests in flight are dropped) and starts a new one on the same
    /// stores, with fresh in-process locks.
    pub fn restart_process(&self, index: usize) {
        let mut slot = locked(&self.processes[index]);
        slot.killed.store(true, Ordering::Relaxed);
        slot.kill.notify_waiters();
        let generation = slot.generation + 1;
        *slot = Arc::new(self.parts.process(index, generation));
        drop(slot);
        self.trace(format!(
            "t={} process {index} restarted as generation {generation}",
            self.elapsed_us()
        ));
    }

    /// Starts a feed projector from the stored checkpoint, unless one runs.
    pub fn start_projector(&self) {
        let mut slot = locked(&self.projector);
        if slot.is_some() {
            return;
        }
        let projector = FeedProjector::new(
            PROJECTOR_NAME,
            Arc::clone(&self.feed),
            Arc::clone(&self.projection),
            Arc::clone(&self.faulty_checkpoints),
            Arc::clone(&self.parts.clocks[0]),
            FeedProjectorConfig {
                batch_size: 8,
                retry: ProjectionRetry {
                    attempts_per_event_max: 5,
                    retry_delay: Duration::from_millis(5),
                },
                idle_poll_max: Duration::from_millis(50),
                unavailable_backoff_max: Duration::from_millis(100),
                checkpoint_every_events: 16,
                checkpoint_interval: Duration::from_millis(30),
            },
            Arc::clone(&self.wake),
        );
        let stop = self.projector_stop.subscribe();
        *slot = Some(tokio::spawn(async move { projector.run(stop).await }));
        drop(slot);
        self.trace(format!("t={} projector started", self.elapsed_us()));
    }

    /// If the projector task ended by itself (a panic: it only returns when asked to stop), records
    /// why and clears the slot, so that the next start replaces it. Returns whether it had died.
    pub async fn reap_dead_projector(&self) -> bool {
        let finished = {
            let mut slot = locked(&self.projector);
            if slot
                .as_ref()
                .is_some_and(tokio::task::JoinHandle::is_finished)
            {
                slot.take()
            } else {
                None
            }
        };
        let Some(handle) = finished else {
            return false;
        };
        let how = match handle.await {
            Ok(()) => "returned without being asked to stop".to_owned(),
            Err(error) => match error.try_into_panic() {
                Ok(panic) => panic_message(panic.as_ref()),
                Err(error) => error.to_string(),
            },
        };
        self.trace(format!("t={} projector died: {how}", self.elapsed_us()));
        locked(&self.projector_deaths).push(how);
        true
    }

    /// Why the projector task died, each time it did.
    pub fn projector_deaths(&self) -> Vec<String> {
        locked(&self.projector_deaths).clone()
    }

    /// Kills the projector wherever it is (between an apply and its checkpoint, mid-batch, ...).
    pub async fn crash_projector(&self) {
        self.reap_dead_projector().await;
        let handle = locked(&self.projector).take();
        if let Some(handle) = handle {
            handle.abort();
            // A task aborted at an await point ends as cancelled; one that finished ends normally.
            let _ = handle.await;
            self.trace(format!("t={} projector crashed", self.elapsed_us()));
        }
    }

    /// Asks the projector to stop and waits until it stored its checkpoint.
    pub async fn stop_projector(&self) -> Result<(), String> {
        self.projector_stop.send_replace(true);
        let handle = locked(&self.projector).take();
        match handle {
            Some(handle) => handle
                .await
                .map_err(|error| format!("the projector task failed: {error}")),
            None => Ok(()),
        }
    }

    /// Records an answer under its key and in the trace.
    pub fn record_answer(&self, attempt: &Attempt<'_>, answer: &Answer) {
        self.trace(format!(
            "t={} c{} {} attempt {} sent t={} to p{}g{} {:?} -> {answer:?}",
            self.elapsed_us(),
            attempt.client,
            attempt.key,
            attempt.number,
            attempt.sent_at_us,
            attempt.process,
            attempt.generation,
            attempt.request,
        ));
        locked(&self.journal)
            .sent(attempt.key, attempt.request)
            .answers
            .push(answer.clone());
    }

    /// Registers `request` under `key` before its first attempt, so the journal knows it even if no
    /// attempt ever answers.
    pub fn register_request(&self, key: &str, request: &CommandRequest) {
        locked(&self.journal).sent(key, request);
    }

    pub fn observe_account(&self, client: usize, view: &AccountView) {
        self.trace(format!(
            "t={} c{client} query {} -> sequence {} balance {} {:?}",
            self.elapsed_us(),
            view.account_id,
            view.last_sequence,
            view.balance,
            view.status
        ));
        locked(&self.observations).accounts.push(view.clone());
    }

    pub fn observe_transactions(
        &self,
        client: usize,
        account_id: &AccountId,
        items: &[TransactionView],
    ) {
        self.trace(format!(
            "t={} c{client} transactions {account_id} -> {} items up to {:?}",
            self.elapsed_us(),
            items.len(),
            items.last().map(|item| item.sequence)
        ));
        let mut observations = locked(&self.observations);
        for item in items {
            observations
                .transactions
                .push((account_id.clone(), item.clone()));
        }
    }

    pub fn observe_not_yet_consistent(&self, client: usize, account_id: &AccountId) {
        self.trace(format!(
            "t={} c{client} query {account_id} -> not yet consistent",
            self.elapsed_us()
        ));
        locked(&self.observations).not_yet_consistent += 1;
    }

    pub fn count_query(&self) {
        locked(&self.observations).queries += 1;
    }

    pub fn add_known_account(&self, account_id: &AccountId) {
        let mut known = locked(&self.known_accounts);
        if !known.contains(account_id) {
            known.push(account_id.clone());
        }
    }

    pub fn known_accounts(&self) -> Vec<AccountId> {
        locked(&self.known_accounts).clone()
    }
}
