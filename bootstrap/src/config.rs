//! Typed configuration, read from the environment (`LEDGER_*`), with the defaults of design §7.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which event store the service writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStoreKind {
    /// The embedded SQLite file: `cargo run` needs nothing else.
    Sqlite,
}

/// Which read model the service projects into and queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadModelKind {
    Sqlite,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// `LEDGER_HTTP_ADDR`, default `127.0.0.1:8080`. Port 0 picks a free port (tests do).
    pub http_addr: SocketAddr,
    /// `LEDGER_SQLITE_PATH`, default `./data/ledger.db`.
    pub sqlite_path: PathBuf,
    /// `LEDGER_EVENT_STORE`, default `sqlite`.
    pub event_store: EventStoreKind,
    /// `LEDGER_READ_MODEL`, default `sqlite`.
    pub read_model: ReadModelKind,
    /// `LEDGER_HTTP_WORKERS`, default: the number of CPUs.
    pub http_workers: Option<usize>,
    /// `LEDGER_SHUTDOWN_TIMEOUT_SECS`, default 30: how long in-flight requests get to finish.
    pub shutdown_timeout: Duration,
    /// `LEDGER_COMMAND_ATTEMPTS_MAX`, default 10: attempts per command under write contention before
    /// answering `409 concurrency_conflict`.
    pub command_attempts_max: u32,
    /// `LEDGER_READ_WAIT_TIMEOUT_MS`, default 5000: the longest a query with `min_sequence` waits.
    pub read_wait_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{variable}=`{value}` is invalid: {reason}")]
    Invalid {
        variable: &'static str,
        value: String,
        reason: String,
    },
}

impl LedgerConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can supply variables without touching the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let invalid = |variable: &'static str, value: &str, reason: &str| ConfigError::Invalid {
            variable,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let http_addr = match lookup("LEDGER_HTTP_ADDR") {
            Some(value) => value.parse().map_err(|_| {
                invalid(
                    "LEDGER_HTTP_ADDR",
                    &value,
                    "expected host:port, e.g. 127.0.0.1:8080",
                )
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let sqlite_path = lookup("LEDGER_SQLITE_PATH")
            .filter(|value| !value.is_empty())
            .map_or_else(|| PathBuf::from("./data/ledger.db"), PathBuf::from);
        let event_store = match lookup("LEDGER_EVENT_STORE").as_deref() {
            None | Some("sqlite") => EventStoreKind::Sqlite,
            Some(other) => {
                return Err(invalid(
                    "LEDGER_EVENT_STORE",
                    other,
                    "this build supports `sqlite`",
                ));
            }
        };
        let read_model = match lookup("LEDGER_READ_MODEL").as_deref() {
            None | Some("sqlite") => ReadModelKind::Sqlite,
            Some(other) => {
                return Err(invalid(
                    "LEDGER_READ_MODEL",
                    other,
                    "this build supports `sqlite`",
                ));
            }
        };
        let http_workers = match lookup("LEDGER_HTTP_WORKERS") {
            Some(value) => Some(
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=256).contains(n))
                    .ok_or_else(|| invalid("LEDGER_HTTP_WORKERS", &value, "expected 1 to 256"))?,
            ),
            None => None,
        };
        let shutdown_timeout = match lookup("LEDGER_SHUTDOWN_TIMEOUT_SECS") {
            Some(value) => Duration::from_secs(
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= 3600)
                    .ok_or_else(|| {
                        invalid("LEDGER_SHUTDOWN_TIMEOUT_SECS", &value, "expected 0 to 3600")
                    })?,
            ),
            None => Duration::from_secs(30),
        };
        let command_attempts_max = match lookup("LEDGER_COMMAND_ATTEMPTS_MAX") {
            Some(value) => value
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| {
                    invalid("LEDGER_COMMAND_ATTEMPTS_MAX", &value, "expected 1 to 100")
                })?,
            None => 10,
        };
        let read_wait_timeout = match lookup("LEDGER_READ_WAIT_TIMEOUT_MS") {
            Some(value) => Duration::from_millis(
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= 60_000)
                    .ok_or_else(|| {
                        invalid("LEDGER_READ_WAIT_TIMEOUT_MS", &value, "expected 0 to 60000")
                    })?,
            ),
            None => Duration::from_secs(5),
        };
        Ok(Self {
            http_addr,
            sqlite_path,
            event_store,
            read_model,
            http_workers,
            shutdown_timeout,
            command_attempts_max,
            read_wait_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<LedgerConfig, ConfigError> {
        LedgerConfig::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn defaults_run_embedded_on_localhost() {
        let config = config(&[]).unwrap();
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.sqlite_path, PathBuf::from("./data/ledger.db"));
        assert_eq!(config.event_store, EventStoreKind::Sqlite);
        assert_eq!(config.read_model, ReadModelKind::Sqlite);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(30));
    }

    #[test]
    fn variables_override_defaults() {
        let config = config(&[
            ("LEDGER_HTTP_ADDR", "0.0.0.0:9000"),
            ("LEDGER_SQLITE_PATH", "/tmp/x.db"),
            ("LEDGER_HTTP_WORKERS", "2"),
        ])
        .unwrap();
        assert_eq!(config.http_addr.to_string(), "0.0.0.0:9000");
        assert_eq!(config.sqlite_path, PathBuf::from("/tmp/x.db"));
        assert_eq!(config.http_workers, Some(2));
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        for (variable, value) in [
            ("LEDGER_HTTP_ADDR", "localhost"),
            ("LEDGER_EVENT_STORE", "mongo"),
            ("LEDGER_READ_MODEL", "excel"),
            ("LEDGER_HTTP_WORKERS", "0"),
            ("LEDGER_SHUTDOWN_TIMEOUT_SECS", "-1"),
            ("LEDGER_COMMAND_ATTEMPTS_MAX", "0"),
            ("LEDGER_READ_WAIT_TIMEOUT_MS", "soon"),
        ] {
            let error = config(&[(variable, value)]).unwrap_err();
            assert!(error.to_string().contains(variable), "{error}");
        }
    }
}
