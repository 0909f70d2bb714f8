//! The ledger's OpenTelemetry metrics: one set of instruments of the meter `ledger`, created once,
//! and the functions the command service, the event-store decorator and the projector record with.
//!
//! Through the OpenTelemetry API only. The instruments are made from the global meter provider the
//! first time anything is recorded, and kept (a hot path never re-creates them); with no provider
//! installed by then they are no-ops for the life of the process. So a deployable installs its
//! provider (bootstrap's telemetry) before it serves its first command or event.
//!
//! Durations are recorded as whole milliseconds in `u64` histograms: the workspace has no float
//! anywhere (design §3), and the SDK's default bucket bounds (0, 5, 10, 25, ... 10,000) are made for
//! milliseconds. A store call under a millisecond (SQLite) is recorded as 0; the bounds resolve what
//! matters in production (DynamoDB calls of 5-100 ms, lags up to 10 s).

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};

/// The meter every instrument of the ledger belongs to.
pub const METER_NAME: &str = "ledger";

/// `recorded_at` of an event to the moment the projector applied it (histogram, `ms`).
pub const PROJECTION_LAG: &str = "ledger.projection.lag";
/// Commands by type and outcome (counter, `{command}`).
pub const COMMANDS: &str = "ledger.commands";
/// Appends refused as a concurrency conflict (counter, `{conflict}`).
pub const COMMAND_CONFLICTS: &str = "ledger.command.conflicts";
/// Re-decisions after a refused append (counter, `{retry}`).
pub const COMMAND_RETRIES: &str = "ledger.command.retries";
/// Latency of one event-store call (histogram, `ms`).
pub const EVENT_STORE_DURATION: &str = "ledger.event_store.duration";
/// Dead letters recorded, by reason (counter, `{letter}`).
pub const DEAD_LETTERS: &str = "ledger.dead_letters";

/// Attribute keys (OpenTelemetry semantic conventions have none for these).
pub const ATTRIBUTE_EVENT_TYPE: &str = "ledger.event_type";
pub const ATTRIBUTE_COMMAND_TYPE: &str = "ledger.command.type";
pub const ATTRIBUTE_COMMAND_OUTCOME: &str = "ledger.command.outcome";
pub const ATTRIBUTE_EVENT_STORE_OPERATION: &str = "ledger.event_store.operation";
pub const ATTRIBUTE_EVENT_STORE_OUTCOME: &str = "ledger.event_store.outcome";
pub const ATTRIBUTE_DEAD_LETTER_REASON: &str = "ledger.dead_letter.reason";

/// How a command ended, as the `ledger.command.outcome` attribute says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcomeLabel {
    /// Carried out now: its events (and record) committed.
    Accepted,
    /// Refused for what it asks: a business rule, a reused key, a command too large to append.
    Rejected,
    /// Answered from the idempotency record of an earlier (or concurrent) attempt.
    Replayed,
    /// Gave up after the retry policy's attempts, all lost to concurrent writers.
    Conflict,
    /// An append may have committed and the record could not tell.
    OutcomeUnknown,
    /// A store failed or holds data this code cannot have written.
    Failed,
}

impl CommandOutcomeLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Replayed => "replayed",
            Self::Conflict => "conflict",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::Failed => "failed",
        }
    }
}

/// Why a dead letter was recorded, as the `ledger.dead_letter.reason` attribute says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterReason {
    /// The stored event cannot be decoded.
    Undecodable,
    /// The read model kept refusing the event as corrupt.
    Refused,
    /// An earlier event of the account never arrived within the retries.
    Gap,
    /// The event waits behind an earlier dead letter of its account.
    Waiting,
    /// Stream records were trimmed before they were projected.
    Trimmed,
}

impl DeadLetterReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Undecodable => "undecodable",
            Self::Refused => "refused",
            Self::Gap => "gap",
            Self::Waiting => "waiting",
            Self::Trimmed => "trimmed",
        }
    }
}

/// The instruments, made once from the meter `ledger`.
struct Instruments {
    projection_lag: Histogram<u64>,
    commands: Counter<u64>,
    command_conflicts: Counter<u64>,
    command_retries: Counter<u64>,
    event_store_duration: Histogram<u64>,
    dead_letters: Counter<u64>,
}

impl Instruments {
    fn new(meter: &Meter) -> Self {
        Self {
            projection_lag: meter
                .u64_histogram(PROJECTION_LAG)
                .with_description(
                    "Time from an event's recorded_at to its application to the read model",
                )
                .with_unit("ms")
                .build(),
            commands: meter
                .u64_counter(COMMANDS)
                .with_description("Commands executed, by type and outcome")
                .with_unit("{command}")
                .build(),
            command_conflicts: meter
                .u64_counter(COMMAND_CONFLICTS)
                .with_description("Appends refused because another writer got there first")
                .with_unit("{conflict}")
                .build(),
            command_retries: meter
                .u64_counter(COMMAND_RETRIES)
                .with_description("Commands decided again after a refused append")
                .with_unit("{retry}")
                .build(),
            event_store_duration: meter
                .u64_histogram(EVENT_STORE_DURATION)
                .with_description("Duration of one event-store call")
                .with_unit("ms")
                .build(),
            dead_letters: meter
                .u64_counter(DEAD_LETTERS)
                .with_description("Dead letters recorded by the projector, by reason")
                .with_unit("{letter}")
                .build(),
        }
    }
}

fn instruments() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| Instruments::new(&opentelemetry::global::meter(METER_NAME)))
}

/// One event applied to the read model, `lag` after it was recorded.
pub fn record_projection_lag(event_type: &'static str, lag: Duration) {
    instruments().projection_lag.record(
        whole_milliseconds(lag),
        &[KeyValue::new(ATTRIBUTE_EVENT_TYPE, event_type)],
    );
}

/// One command ended with `outcome`.
pub fn count_command(command_type: &'static str, outcome: CommandOutcomeLabel) {
    instruments().commands.add(
        1,
        &[
            KeyValue::new(ATTRIBUTE_COMMAND_TYPE, command_type),
            KeyValue::new(ATTRIBUTE_COMMAND_OUTCOME, outcome.as_str()),
        ],
    );
}

/// One append of a command refused as a concurrency conflict.
pub fn count_conflict(command_type: &'static str) {
    instruments()
        .command_conflicts
        .add(1, &[KeyValue::new(ATTRIBUTE_COMMAND_TYPE, command_type)]);
}

/// One command decided again after a refused append.
pub fn count_retry(command_type: &'static str) {
    instruments()
        .command_retries
        .add(1, &[KeyValue::new(ATTRIBUTE_COMMAND_TYPE, command_type)]);
}

/// One event-store call of `operation` took `elapsed` and succeeded (`ok`) or failed.
pub fn record_event_store_call(operation: &'static str, ok: bool, elapsed: Duration) {
    instruments().event_store_duration.record(
        whole_milliseconds(elapsed),
        &[
            KeyValue::new(ATTRIBUTE_EVENT_STORE_OPERATION, operation),
            KeyValue::new(
                ATTRIBUTE_EVENT_STORE_OUTCOME,
                if ok { "ok" } else { "error" },
            ),
        ],
    );
}

/// One dead letter recorded for `reason`.
pub fn count_dead_letter(reason: DeadLetterReason) {
    instruments().dead_letters.add(
        1,
        &[KeyValue::new(ATTRIBUTE_DEAD_LETTER_REASON, reason.as_str())],
    );
}

/// A duration in whole milliseconds (truncated; saturating at `u64::MAX`, which no lag reaches).
fn whole_milliseconds(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
