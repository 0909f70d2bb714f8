//! `ledger-healthcheck`: the container image's health check. GETs `LEDGER_HEALTHCHECK_URL` (default
//! `http://127.0.0.1:8080/health/ready`) within 2 s in all and exits 0 only on HTTP 200; otherwise it
//! says why in one line on stderr and exits 1 (what Docker's HEALTHCHECK and ECS read as unhealthy).

use std::process::ExitCode;

use ledger_bootstrap::healthcheck::{
    DEFAULT_HEALTHCHECK_URL, HEALTHCHECK_TIMEOUT, HealthcheckTarget,
};

fn main() -> ExitCode {
    let url = std::env::var("LEDGER_HEALTHCHECK_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_HEALTHCHECK_URL.to_owned());
    match HealthcheckTarget::parse(&url).and_then(|target| target.check(HEALTHCHECK_TIMEOUT)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ledger-healthcheck: {url}: {error}");
            ExitCode::FAILURE
        }
    }
}
