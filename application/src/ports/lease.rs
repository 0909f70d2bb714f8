//! The projector lease port: which one of several projector processes reads the event stream.
//!
//! Two `ledger-projector` processes on one stream would both read its shards (DynamoDB Streams allows
//! only a few readers per shard) and fight over the checkpoints. The per-event rule already keeps
//! them from applying an event twice; the lease keeps one of them active and the other standing by.

use std::time::Duration;

use super::{BoxError, StoreError};

/// A lease that at most one holder has at a time, across processes.
///
/// Every implementation MUST:
/// - hand out at most one [`HeldLease`] at a time, whoever asks (another process, another value of
///   the same lease, or the same value again);
/// - release the lease when the `HeldLease` is dropped, and when the holder's process dies (also by
///   SIGKILL), so that a contender acquires it within seconds;
/// - answer `try_acquire` within a bound, without waiting for the holder to let go.
#[async_trait::async_trait]
pub trait ProjectorLease: Send + Sync {
    /// One attempt: `Ok(Some(_))` when the caller now holds the lease, `Ok(None)` when another holder
    /// has it, `StoreError::Unavailable` when the store that keeps it cannot be asked.
    async fn try_acquire(&self) -> Result<Option<Box<dyn HeldLease>>, StoreError>;
}

/// The lease, held. Dropping it releases the lease.
#[async_trait::async_trait]
pub trait HeldLease: Send + Sync {
    /// `Ok` while this holder still has the lease; `Err` once a contender may have acquired it (the
    /// holder's connection is gone, or it could not be confirmed within `CONFIRM_TIMEOUT`). A holder
    /// told so MUST stop at once: another may already be projecting.
    async fn confirm(&self) -> Result<(), LeaseLost>;
}

/// The longest an implementation may take to confirm a held lease before it counts as lost.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a holder no longer has the lease.
#[derive(Debug, thiserror::Error)]
pub enum LeaseLost {
    /// The connection the lease lives on failed or was closed by the server.
    #[error("the connection holding the projector lease is gone: {0}")]
    ConnectionLost(#[source] BoxError),
    /// The store answered, but this holder's lock is no longer there.
    #[error("the projector lease is no longer held by this holder")]
    Released,
    /// No answer within the bound: counted as lost, since a contender may have taken over meanwhile.
    #[error("the projector lease could not be confirmed within {0:?}")]
    Unconfirmed(Duration),
}
