//! What the binaries' tests share: running a binary to completion, running a long-lived one with its
//! log lines collected (JSON, one object a line), and stopping one with SIGTERM (gracefully) or
//! SIGKILL (a crash); `otlp` is the OTLP receiver of the telemetry tests, `lambda_runtime_api` the Lambda Runtime API the
//! Lambda binaries run against.
#![allow(
    dead_code,
    reason = "every test crate of the binaries compiles this module and uses a part of it"
)]

pub mod lambda_runtime_api;
pub mod loopback;
pub mod otlp;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
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

/// SIGTERM: the process finishes what it is doing and exits successfully, within a bound.
pub fn stop_with_sigterm(process: &mut Child) {
    let pid = process.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = process.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the process did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

/// A long-running binary whose output lines (stdout and stderr, at `RUST_LOG=info`) are collected as
/// they come, so a test can wait for what it says. Killed with SIGKILL if the test drops it running.
pub struct LoggedProcess {
    pub name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl LoggedProcess {
    pub fn spawn(name: &str, binary: &str, vars: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary);
        // Telemetry only where a test asks for it: none inherited from the shell running the suite.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OTEL_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .envs(vars.iter().copied())
            .env("RUST_LOG", "info")
            // JSON lines (the default) without colour codes, so that a test can look for words in
            // them and read their fields.
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("{name} ({binary}) starts: {error}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        collect_lines(stdout, Arc::clone(&lines));
        collect_lines(stderr, Arc::clone(&lines));
        Self {
            name: name.to_owned(),
            child,
            lines,
        }
    }

    /// How many lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// The first line containing `needle`, waited for up to `within`.
    pub fn wait_for_line(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|line| line.contains(needle))
            {
                return line.clone();
            }
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!(
                    "{} exited ({status}) before saying {needle:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not say {needle:?} within {within:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every line so far, each the JSON object of one log event (or whatever else it printed).
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The process id, to look at it from outside (its threads in `/proc`).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything it said so far, for failure messages.
    pub fn log(&self) -> String {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }

    /// SIGKILL, as a crash or an OOM kill: no chance to release anything or store a checkpoint.
    pub fn kill_with_sigkill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    pub fn stop_with_sigterm(&mut self) {
        stop_with_sigterm(&mut self.child);
    }
}

impl Drop for LoggedProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The JSON object of a log line, or `None` for a line that is not one.
pub fn json_line(line: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_str(line) {
        Ok(serde_json::Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// The port of a "ledger listening" line.
pub fn listening_port(line: &str) -> u16 {
    json_line(line)
        .and_then(|object| object.get("port").and_then(serde_json::Value::as_u64))
        .and_then(|port| u16::try_from(port).ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

fn collect_lines(output: impl Read + Send + 'static, lines: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line);
        }
    });
}
