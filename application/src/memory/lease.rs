//! The projector lease in memory: one holder at a time among the clones of one value, and a way for
//! tests to take it away as a lost connection would.

use std::sync::{Arc, Mutex, PoisonError};

use crate::ports::{HeldLease, LeaseLost, ProjectorLease, StoreError};

/// Clones share the lease: each clone is a contender, as each process is for the real ones.
#[derive(Debug, Clone, Default)]
pub struct InMemoryProjectorLease {
    state: Arc<Mutex<LeaseState>>,
}

#[derive(Debug, Default)]
struct LeaseState {
    /// The token of the current holder, if any; a new token per grant, so an old holder never
    /// mistakes a later grant for its own.
    holder: Option<u64>,
    grants: u64,
}

impl InMemoryProjectorLease {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the lease from its holder, as a server ending the holder's session would: the holder's
    /// next `confirm` fails and a contender may acquire it at once.
    pub fn revoke(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .holder = None;
    }
}

#[async_trait::async_trait]
impl ProjectorLease for InMemoryProjectorLease {
    async fn try_acquire(&self) -> Result<Option<Box<dyn HeldLease>>, StoreError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.holder.is_some() {
            return Ok(None);
        }
        state.grants += 1;
        let token = state.grants;
        state.holder = Some(token);
        Ok(Some(Box::new(InMemoryHeldLease {
            state: Arc::clone(&self.state),
            token,
        })))
    }
}

struct InMemoryHeldLease {
    state: Arc<Mutex<LeaseState>>,
    token: u64,
}

#[async_trait::async_trait]
impl HeldLease for InMemoryHeldLease {
    async fn confirm(&self) -> Result<(), LeaseLost> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.holder == Some(self.token) {
            Ok(())
        } else {
            Err(LeaseLost::Released)
        }
    }
}

impl Drop for InMemoryHeldLease {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.holder == Some(self.token) {
            state.holder = None;
        }
    }
}
