//! A deterministic simulation of the whole application, after TigerBeetle's VOPR and FoundationDB's
//! simulator: one seed drives the command services, the feed projector and the query service over
//! fault-injecting wrappers of the in-memory stores, on a current-thread runtime with a paused
//! (virtual) clock, so a run is the same on every machine and every replay.
//!
//! A run: virtual clients send random commands and queries while the wrappers inject faults and a
//! chaos task restarts processes and crashes the projector; then faults stop, every client finishes
//! its retries, the projector catches up and stops, and [`checks`] tests every promise.

pub mod checks;
pub mod clients;
pub mod faults;
pub mod rng;
pub mod system;
pub mod world;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use ledger_application::ports::{Projection, ProjectionCheckpoints};

use self::checks::Violation;
use self::faults::FaultPlan;
use self::world::World;

/// How the clients behave, per mille.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientBehaviour {
    /// Commands sent a second time while the first attempt is still running.
    pub concurrent_retry: u32,
    /// Definitive answers after which the client asks again (bounded to two per command).
    pub retry_after_answer: u32,
    /// Attempts sent to the second process instead of the first.
    pub second_instance: u32,
    /// Keys under which a different request is sent afterwards.
    pub key_reuse: u32,
    /// Operations that are queries instead of commands.
    pub queries: u32,
    /// Attempts of one request before the client gives up (a liveness failure).
    pub attempts_max: u32,
}

/// How often the chaos task strikes, per mille of its ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaosPlan {
    /// Longest virtual pause between ticks.
    pub tick_max: Duration,
    /// A command-service process is killed and started again.
    pub process_restart: u32,
    /// The projector is killed mid-work and started again from its checkpoint.
    pub projector_crash: u32,
    pub projector_downtime_max: Duration,
}

/// Everything a run is made of, besides its seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimConfig {
    /// Operations (commands and queries, each with all its retries) over all clients.
    pub operations: u64,
    pub clients: usize,
    /// USD accounts every client works on (plus one EUR account).
    pub hot_accounts: usize,
    pub snapshot_every: u64,
    /// The second process's clock runs this much behind the first's.
    pub second_clock_behind: Duration,
    pub faults: FaultPlan,
    pub behaviour: ClientBehaviour,
    pub chaos: ChaosPlan,
}

impl SimConfig {
    /// The standard run of `operations` operations.
    pub fn standard(operations: u64) -> Self {
        Self {
            operations,
            clients: 8,
            hot_accounts: 4,
            snapshot_every: 4,
            second_clock_behind: Duration::from_millis(2),
            faults: FaultPlan::standard(),
            behaviour: ClientBehaviour {
                concurrent_retry: 150,
                retry_after_answer: 150,
                second_instance: 250,
                key_reuse: 30,
                queries: 150,
                attempts_max: 200,
            },
            chaos: ChaosPlan {
                tick_max: Duration::from_millis(40),
                process_restart: 60,
                projector_crash: 150,
                projector_downtime_max: Duration::from_millis(60),
            },
        }
    }
}

impl SimConfig {
    /// A configuration drawn from `seed` around the standard one ("swarm testing"): some seeds run
    /// many clients on one hot account, others a storm of faults, others no second process at all,
    /// so that the seeds together reach interleavings no single mix of rates would. The same seed
    /// always draws the same configuration, so a replay needs nothing but the seed.
    pub fn swarm(seed: u64, operations: u64) -> Self {
        // A generator of its own, so the run's generator starts from the seed untouched.
        let draw = rng::SimRng::new(seed ^ 0x5EED_C0F1_6000_0000);
        let scale = |per_mille: u32| {
            let factor = u32::try_from(draw.between(0..=3)).unwrap_or(1);
            per_mille * factor
        };
        let mut config = Self::standard(operations);
        config.clients = usize::try_from(draw.between(2..=16)).unwrap_or(8);
        config.hot_accounts = usize::try_from(draw.between(1..=6)).unwrap_or(4);
        config.snapshot_every = draw.between(1..=12);
        config.second_clock_behind = Duration::from_micros(draw.between(0..=5_000));
        let faults = &mut config.faults;
        for rate in [
            &mut faults.latency,
            &mut faults.load_failure,
            &mut faults.record_read_failure,
            &mut faults.append_conflict,
            &mut faults.append_failure_before_write,
            &mut faults.append_failure_after_commit,
            &mut faults.snapshot_failure,
            &mut faults.feed_failure,
            &mut faults.feed_duplicate,
            &mut faults.feed_replay,
            &mut faults.feed_reorder,
            &mut faults.projection_failure_before_write,
            &mut faults.projection_failure_after_write,
        ] {
            *rate = scale(*rate).min(900);
        }
        let behaviour = &mut config.behaviour;
        for rate in [
            &mut behaviour.concurrent_retry,
            &mut behaviour.retry_after_answer,
            &mut behaviour.second_instance,
            &mut behaviour.key_reuse,
        ] {
            *rate = scale(*rate).min(900);
        }
        config.chaos.process_restart = scale(config.chaos.process_restart);
        config.chaos.projector_crash = scale(config.chaos.projector_crash);
        config
    }
}

/// What a run did and what it found.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub seed: u64,
    pub config: SimConfig,
    /// Keys the clients used (one command each, with all its retries).
    pub commands: usize,
    pub queries: u64,
    /// Attempts that got an answer.
    pub answers: usize,
    pub events: usize,
    pub accounts: usize,
    pub virtual_time: Duration,
    /// SHA-256 of the trace: every answer, observation, restart and crash in order, then every event.
    pub digest: String,
    pub faults_injected: BTreeMap<&'static str, u64>,
    pub violations: Vec<Violation>,
    /// The trace lines about the first violation's subject.
    pub evidence: Vec<String>,
    /// The whole trace, for `SIM_TRACE`.
    pub trace: Vec<String>,
}

impl RunReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The trace lines about `subject` (a key such as `c3-o8` or an account id), or all of them
    /// for `all`: what `SIM_TRACE=<subject>` prints.
    pub fn trace_about(&self, subject: &str) -> Vec<String> {
        if subject == "all" {
            self.trace.clone()
        } else {
            world::lines_about(&self.trace, subject, usize::MAX)
        }
    }

    /// What a failing run prints: the seed, the broken promises, the evidence and how to replay.
    pub fn failure_message(&self) -> String {
        let mut text = format!(
            "simulation seed {} ({} operations) broke {} promise(s):\n",
            self.seed,
            self.config.operations,
            self.violations.len()
        );
        for violation in self.violations.iter().take(12) {
            let _ = writeln!(text, "  - {}", violation.message);
        }
        if self.violations.len() > 12 {
            let _ = writeln!(text, "  ... and {} more", self.violations.len() - 12);
        }
        if !self.evidence.is_empty() {
            text.push_str("trace of the first violation's subject:\n");
            for line in &self.evidence {
                let _ = writeln!(text, "    {line}");
            }
        }
        text.push_str(&replay_hint(self.seed, self.config.operations));
        text
    }
}

/// The commands that replay one seed exactly.
pub fn replay_hint(seed: u64, operations: u64) -> String {
    format!(
        "replay exactly with:\n  SIM_SEED={seed} SIM_OPS={operations} cargo test -p ledger-tests --test simulation\n  scripts/simulate.sh 1 {operations} {seed}\n"
    )
}

/// Runs one seed to the end and checks it. Never panics: a panic inside the run is a violation.
pub fn run(seed: u64, config: SimConfig) -> RunReport {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    // The command service's retry jitter draws from fastrand's thread-local generator; every task
    // of the run polls on this thread.
    fastrand::seed(seed);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(simulate(seed, config))
    }));
    match outcome {
        Ok(report) => report,
        Err(panic) => {
            let message = world::panic_message(panic.as_ref());
            RunReport {
                seed,
                config,
                commands: 0,
                queries: 0,
                answers: 0,
                events: 0,
                accounts: 0,
                virtual_time: Duration::ZERO,
                digest: String::new(),
                faults_injected: BTreeMap::new(),
                violations: vec![Violation {
                    subject: "panic".to_owned(),
                    message: format!("the run panicked: {message}"),
                }],
                evidence: Vec::new(),
                trace: Vec::new(),
            }
        }
    }
}

/// Longest virtual time the clients may take; past it the run is stuck (a liveness failure).
const CLIENT_PHASE_MAX: Duration = Duration::from_hours(1);
/// Polls of the read model, 10 ms of virtual time apart, before it must have caught up.
const SETTLE_POLLS_MAX: u32 = 3_000;

async fn simulate(seed: u64, config: SimConfig) -> RunReport {
    let world = Arc::new(World::new(seed, config));
    world.start_projector();
    let chaos = tokio::spawn(run_chaos(Arc::clone(&world)));
    let mut clients = tokio::task::JoinSet::new();
    let clients_count = u64::try_from(config.clients.max(1)).unwrap_or(1);
    for client in 0..config.clients.max(1) {
        let index = u64::try_from(client).unwrap_or(0);
        let share = config.operations / clients_count
            + u64::from(index < config.operations % clients_count);
        clients.spawn(clients::run_client(Arc::clone(&world), client, share));
    }
    let mut violations = Vec::new();
    let finished = tokio::time::timeout(CLIENT_PHASE_MAX, async {
        while let Some(joined) = clients.join_next().await {
            if let Err(error) = joined {
                std::panic::resume_unwind(error.into_panic());
            }
        }
    })
    .await;
    if finished.is_err() {
        violations.push(Violation {
            subject: "liveness".to_owned(),
            message: format!(
                "the clients did not finish within {CLIENT_PHASE_MAX:?} of virtual time"
            ),
        });
    }
    world.faults.disable();
    chaos.await.expect("the chaos task never panics");
    if let Err(message) = settle(&world).await {
        violations.push(Violation {
            subject: "projector".to_owned(),
            message,
        });
    }
    for death in world.projector_deaths() {
        violations.push(Violation {
            subject: "projector".to_owned(),
            message: format!("the projector task died: {death}"),
        });
    }
    violations.extend(checks::check(&world).await);
    let events = checks::all_events(&world).await;
    for event in &events {
        world.trace(format!("event {event:?}"));
    }
    report(&world, config, violations, &events)
}

fn report(
    world: &World,
    config: SimConfig,
    violations: Vec<Violation>,
    events: &[ledger_application::RecordedEvent],
) -> RunReport {
    let journal = world
        .journal
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let commands = journal.keys.len();
    let answers = journal
        .keys
        .values()
        .flatten()
        .map(|sent| sent.answers.len())
        .sum();
    drop(journal);
    let queries = world
        .observations
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .queries;
    let trace = world.trace_lines();
    let evidence = violations
        .first()
        .map(|first| world::lines_about(&trace, &first.subject, 24))
        .unwrap_or_default();
    RunReport {
        seed: world.seed,
        config,
        commands,
        queries,
        answers,
        events: events.len(),
        accounts: checks::streams(events).len(),
        virtual_time: Duration::from_micros(u64::try_from(world.elapsed_us()).unwrap_or(u64::MAX)),
        digest: world.digest(),
        faults_injected: world.faults.injected(),
        violations,
        evidence,
        trace,
    }
}

/// Restarts processes and crashes the projector at random moments until faults stop.
async fn run_chaos(world: Arc<World>) {
    let chaos = world.config.chaos;
    while world.faults.enabled() {
        let pause = Duration::from_millis(1) + world.rng.duration_up_to(chaos.tick_max);
        tokio::time::sleep(pause).await;
        if !world.faults.enabled() {
            break;
        }
        if world.rng.chance(chaos.process_restart) {
            world.restart_process(world.rng.index(2));
        }
        if world.rng.chance(chaos.projector_crash) {
            world.crash_projector().await;
            tokio::time::sleep(world.rng.duration_up_to(chaos.projector_downtime_max)).await;
            world.start_projector();
        }
    }
}

/// With faults off, lets the projector catch up with every stream and store its checkpoint at the
/// feed's end (it does when the feed falls idle), then stops it gracefully. Waiting for the
/// checkpoint too matters: a stop that lands in the back-off after a failed round stores none, which
/// is harmless (a restart only redelivers) but would leave the final checkpoint check nothing to say.
async fn settle(world: &World) -> Result<(), String> {
    world.start_projector();
    for _ in 0..SETTLE_POLLS_MAX {
        if world.reap_dead_projector().await {
            world.start_projector();
        }
        if caught_up(world).await {
            return world.stop_projector().await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!(
        "the read model did not catch up within {SETTLE_POLLS_MAX} polls after faults stopped"
    ))
}

async fn caught_up(world: &World) -> bool {
    let events = checks::all_events(world).await;
    let checkpoint = world
        .checkpoints
        .feed_checkpoint(world::PROJECTOR_NAME)
        .await
        .expect("the in-memory checkpoints never fail");
    if !events.is_empty() && checkpoint != Some(events.len() as u64) {
        return false;
    }
    for (account_id, stream) in checks::streams(&events) {
        let applied = world
            .read_model
            .last_sequence(&account_id)
            .await
            .expect("the in-memory read model never fails");
        if applied < stream.len() as u64 {
            return false;
        }
    }
    true
}
