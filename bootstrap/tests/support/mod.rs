//! What the binaries' tests share: running a binary to completion, and stopping a long-running one
//! with SIGTERM.

use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// Runs a binary of this package with `vars` added to the environment.
pub fn run(binary: &str, args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(binary)
        .args(args)
        .envs(vars.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

/// SIGTERM: the projector finishes its round and exits successfully, within a bound.
pub fn stop_with_sigterm(projector: &mut Child) {
    let pid = projector.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = projector.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "ledger-projector did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
