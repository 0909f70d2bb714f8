//! The clock and id-source ports, with their production implementations.

use chrono::{DateTime, Utc};
use ledger_domain::{AccountId, TransferId};
use uuid::Uuid;

use crate::envelope::EventId;

/// Where time comes from, so tests can pin it.
pub trait Clock: Send + Sync {
    /// The current instant in whole microseconds: the precision every store keeps, so a value read
    /// back always equals the value written.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's UTC wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        Utc::now().trunc_subsecs(6)
    }
}

/// Where new identities come from. Every call MUST return an id never returned before.
pub trait IdSource: Send + Sync {
    fn event_id(&self) -> EventId;
    fn account_id(&self) -> AccountId;
    fn transfer_id(&self) -> TransferId;
}

/// UUIDv7 ids: unique, and sorted by creation time, which keeps index inserts local.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Ids;

impl IdSource for UuidV7Ids {
    fn event_id(&self) -> EventId {
        EventId::from_uuid(Uuid::now_v7())
    }

    fn account_id(&self) -> AccountId {
        AccountId::parse(&format!("acc_{}", Uuid::now_v7().simple()))
            .expect("a prefixed UUID is a valid account id")
    }

    fn transfer_id(&self) -> TransferId {
        TransferId::parse(&format!("trf_{}", Uuid::now_v7().simple()))
            .expect("a prefixed UUID is a valid transfer id")
    }
}

/// A dependency the service needs in order to serve: `/health/ready` asks each one.
#[async_trait::async_trait]
pub trait HealthCheck: Send + Sync {
    /// A short name for the report, such as `event_store`.
    fn name(&self) -> &'static str;
    /// `Ok` when the dependency answers a trivial request now.
    async fn check(&self) -> Result<(), super::StoreError>;
}
