//! The deterministic simulation in the test command: many seeds of the whole application under
//! injected faults, every promise checked after each run, and a replay of one seed that must be
//! identical. `SIM_SEED=<seed>` (and optionally `SIM_OPS=<operations>`) replays one seed alone;
//! `SIM_TRACE=<key or account id>` (or `all`) prints its trace.

use std::time::Instant;

use ledger_tests::simulation::{SimConfig, replay_hint, run};

/// Seeds the test command runs, and operations per seed: 24 x 500 = 12,000 operations.
const SEEDS: u64 = 24;
const OPERATIONS_PER_SEED: u64 = 500;

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|_| panic!("{name}={text} is not a number")),
    )
}

#[test]
fn every_promise_holds_under_every_seed() {
    let operations = env_number("SIM_OPS").unwrap_or(OPERATIONS_PER_SEED);
    let seeds: Vec<u64> = match env_number("SIM_SEED") {
        Some(seed) => vec![seed],
        None => (1..=SEEDS).collect(),
    };
    let started = Instant::now();
    let mut failures = Vec::new();
    let (mut commands, mut queries, mut events) = (0, 0, 0);
    for &seed in &seeds {
        let report = run(seed, SimConfig::swarm(seed, operations));
        if let Ok(subject) = std::env::var("SIM_TRACE") {
            for line in report.trace_about(&subject) {
                eprintln!("{line}");
            }
        }
        commands += report.commands;
        queries += report.queries;
        events += report.events;
        if !report.passed() {
            eprintln!("{}", report.failure_message());
            failures.push(seed);
        }
    }
    eprintln!(
        "simulated {} seeds x {operations} operations ({commands} commands, {queries} queries, \
         {events} events) in {:?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} seeds broke a promise: {failures:?} (each failure is printed above with its replay command)",
        failures.len(),
        seeds.len()
    );
    assert!(
        commands + usize::try_from(queries).unwrap_or(usize::MAX)
            >= usize::try_from(operations).unwrap_or(usize::MAX) * seeds.len(),
        "every operation ran"
    );
}

#[test]
fn one_seed_replays_exactly() {
    let config = SimConfig::standard(500);
    // Each run on a thread of its own, so nothing left behind in a thread (a thread-local generator,
    // a runtime) can make two runs agree by accident.
    let on_new_thread = |seed| {
        std::thread::spawn(move || run(seed, config))
            .join()
            .expect("a run never panics")
    };
    for seed in [7, 11] {
        let first = on_new_thread(seed);
        let again = on_new_thread(seed);
        assert!(
            first.events > 0 && first.answers > 500,
            "a run that does something: {first:?}"
        );
        assert_eq!(
            first.digest,
            again.digest,
            "seed {seed} ran twice with different traces: the simulation is not deterministic\n{}",
            replay_hint(seed, 500)
        );
    }
    assert_ne!(
        on_new_thread(7).digest,
        on_new_thread(8).digest,
        "the trace depends on the seed"
    );
}

#[test]
fn the_checks_catch_an_acknowledged_write_that_was_never_stored() {
    // A planted bug: the store acknowledges some appends without writing them. If the checks let
    // that pass, they would let a real lost write pass too.
    let mut config = SimConfig::standard(200);
    config.faults.acknowledge_without_writing = 50;
    let report = run(3, config);
    // The lost write is an accepted command's events ("the store holds" fewer than reported) or a
    // rejection's record ("the stored record holds None"): which of them the seed's trace loses
    // depends on every task's interleaving, the projector's included, so either one counts.
    assert!(
        report.violations.iter().any(|v| {
            v.message.contains("the store holds")
                || v.message.contains("the stored record holds None")
        }),
        "the lost writes were not noticed: {:?}",
        report.violations
    );
    let message = report.failure_message();
    assert!(
        message.contains("SIM_SEED=3 SIM_OPS=200 cargo test -p ledger-tests --test simulation")
    );
    assert!(message.contains("scripts/simulate.sh 1 200 3"));
}
