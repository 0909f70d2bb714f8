//! `ledger verify`: the application's `Verifier` over the configured event store and read model,
//! each difference on its own line of standard output, then a summary.

use std::process::ExitCode;
use std::time::Instant;

use ledger_application::{Verifier, VerifyConfig, VerifySummary};

use crate::LedgerConfig;
use crate::admin::event_source;
use crate::startup::ReadSide;

/// Exit status when the read model differs from the event store.
pub const EXIT_DIFFERENCES: u8 = 1;
/// Exit status when the verification could not run to its end (a store unreachable, ...).
pub const EXIT_NOT_VERIFIED: u8 = 3;

/// Runs the verification and prints it; the exit status says clean (0), differences (1) or could
/// not verify (3).
pub async fn verify_command(config: &LedgerConfig) -> ExitCode {
    let started = Instant::now();
    match verify(config).await {
        Ok(summary) => {
            println!("{}", summary_line(&summary, started.elapsed()));
            if summary.differences == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_DIFFERENCES)
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_NOT_VERIFIED)
        }
    }
}

async fn verify(config: &LedgerConfig) -> Result<VerifySummary, String> {
    let read_side = ReadSide::open(config).await.map_err(|e| e.to_string())?;
    let verified = match event_source(config, &read_side).await {
        Ok(source) => {
            let query = read_side.query();
            let verifier = Verifier::new(
                source.scan.as_ref(),
                query.as_ref(),
                VerifyConfig::default(),
            );
            verifier
                .run(|difference| println!("{difference}"))
                .await
                .map_err(|e| e.to_string())
        }
        Err(error) => Err(error),
    };
    let closed = read_side.close().await.map_err(|e| e.to_string());
    let summary = verified?;
    closed?;
    Ok(summary)
}

/// The closing line: what was checked, what differed, how long it took.
fn summary_line(summary: &VerifySummary, elapsed: std::time::Duration) -> String {
    let verdict = if summary.differences == 0 {
        "the read model agrees with the event store".to_owned()
    } else {
        format!(
            "{} difference(s) in {} account(s)",
            summary.differences, summary.accounts_with_differences
        )
    };
    format!(
        "verified {} account(s), {} event(s) in {elapsed:.2?}: {verdict}",
        summary.accounts, summary.events,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_counts_time_and_verdict() {
        let clean = VerifySummary {
            accounts: 3,
            events: 40,
            accounts_with_differences: 0,
            differences: 0,
        };
        assert_eq!(
            summary_line(&clean, std::time::Duration::from_millis(1_250)),
            "verified 3 account(s), 40 event(s) in 1.25s: the read model agrees with the event store"
        );
        let damaged = VerifySummary {
            accounts_with_differences: 1,
            differences: 2,
            ..clean
        };
        assert!(
            summary_line(&damaged, std::time::Duration::ZERO)
                .ends_with(": 2 difference(s) in 1 account(s)")
        );
    }
}
