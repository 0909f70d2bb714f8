//! Long runs of the deterministic simulation, on every core: `SEEDS` seeds of `OPS` operations each,
//! from `FIRST_SEED` on (by default a fresh one, printed, so every run explores new interleavings).
//! Prints each failing seed with its broken promises and the command that replays it; exits 1 if any.
//!
//! `scripts/simulate.sh SEEDS OPS [FIRST_SEED]`, e.g. `scripts/simulate.sh 200 5000` (10^6 operations).
//! `SIM_TRACE=<key or account id>` (or `all`) also prints each run's trace about it.

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ledger_tests::simulation::{SimConfig, run};

fn argument(position: usize, name: &str) -> Option<u64> {
    let text = std::env::args().nth(position)?;
    if let Ok(value) = text.parse() {
        Some(value)
    } else {
        eprintln!("{name} must be a number, not {text:?}");
        std::process::exit(2);
    }
}

/// A seed nobody chose: the clock's nanoseconds. Only the first seed comes from it, and it is printed.
fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    u64::try_from(nanos % u128::from(u32::MAX)).unwrap_or(0) * 1_000
}

fn main() -> ExitCode {
    let seeds = argument(1, "SEEDS").unwrap_or(200);
    let operations = argument(2, "OPS").unwrap_or(5_000);
    let first_seed = argument(3, "FIRST_SEED").unwrap_or_else(fresh_seed);
    let trace_subject = std::env::var("SIM_TRACE").ok();
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "simulating seeds {first_seed}..{} ({seeds} seeds x {operations} operations) on {workers} threads",
        first_seed + seeds
    );
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let totals = Mutex::new((0_usize, 0_u64, 0_usize, Vec::new()));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= seeds {
                        return;
                    }
                    let seed = first_seed + index;
                    let seed_started = Instant::now();
                    // Each seed runs on this thread's own current-thread runtime: threads share nothing.
                    let report = run(seed, SimConfig::swarm(seed, operations));
                    if let Some(subject) = &trace_subject {
                        for line in report.trace_about(subject) {
                            println!("seed {seed}: {line}");
                        }
                    }
                    let mut totals = totals
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    totals.0 += report.commands;
                    totals.1 += report.queries;
                    totals.2 += report.events;
                    if report.passed() {
                        println!(
                            "seed {seed}: ok, {} commands, {} queries, {} events, {:?} virtual, digest {} ({:?})",
                            report.commands,
                            report.queries,
                            report.events,
                            report.virtual_time,
                            &report.digest[..16],
                            seed_started.elapsed()
                        );
                    } else {
                        println!("{}", report.failure_message());
                        totals.3.push(seed);
                    }
                }
            });
        }
    });
    let (commands, queries, events, failed) = totals
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let elapsed = started.elapsed();
    println!(
        "{seeds} seeds, {} operations ({commands} commands with all their retries, {queries} queries), \
         {events} events, in {elapsed:?}",
        seeds * operations
    );
    if failed.is_empty() {
        println!("every promise held");
        ExitCode::SUCCESS
    } else {
        let mut failed = failed;
        failed.sort_unstable();
        println!("{} seed(s) broke a promise: {failed:?}", failed.len());
        ExitCode::FAILURE
    }
}
