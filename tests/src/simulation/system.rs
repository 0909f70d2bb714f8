//! The clock and id-source ports on virtual time and a seeded counter, so that a run's timestamps and
//! ids are the same every time its seed is replayed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use ledger_application::EventId;
use ledger_application::ports::{Clock, IdSource};
use ledger_domain::{AccountId, TransferId};

/// A fixed epoch plus the virtual time elapsed since the run began, optionally running behind by a
/// fixed skew: a second process whose wall clock is a little late.
#[derive(Debug)]
pub struct VirtualClock {
    epoch: DateTime<Utc>,
    start: tokio::time::Instant,
    behind: Duration,
}

impl VirtualClock {
    /// Must be called inside the simulation's runtime, whose paused clock it reads.
    pub fn new(start: tokio::time::Instant, behind: Duration) -> Self {
        // Just before midnight, so a run crosses a day boundary and daily balances get two days.
        let epoch = Utc
            .with_ymd_and_hms(2026, 3, 1, 23, 59, 59)
            .single()
            .expect("a valid epoch");
        Self {
            epoch,
            start,
            behind,
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.start.elapsed();
        let since_epoch = chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
            - chrono::Duration::from_std(self.behind).unwrap_or(chrono::Duration::zero());
        (self.epoch + since_epoch).trunc_subsecs(6)
    }
}

/// Ids from one counter shared by every process of the run, tagged with the seed: unique within the
/// run and the same on every replay (UUIDv7s would be neither).
#[derive(Debug)]
pub struct SeededIds {
    seed: u64,
    counter: AtomicU64,
}

impl SeededIds {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl IdSource for SeededIds {
    fn event_id(&self) -> EventId {
        EventId::from_uuid(uuid::Uuid::from_u64_pair(self.seed, self.next()))
    }

    fn account_id(&self) -> AccountId {
        AccountId::parse(&format!("gen-{}", self.next())).expect("a short id is an account id")
    }

    fn transfer_id(&self) -> TransferId {
        TransferId::parse(&format!("trf-{}", self.next())).expect("a short id is a transfer id")
    }
}
