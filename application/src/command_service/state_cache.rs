//! The command service's bounded cache of account state: per account, the state after the latest
//! append this process saw commit (or read from the store), and when its latest event was recorded.
//!
//! The cache is never trusted, only validated (see the command service's module docs): an accepted
//! command decided against a cached state is validated by the store's conditional append (the
//! expected version), and a rejection by a read of the events after the cached version. A stale
//! entry therefore costs a retry, never money; so the cache needs no coordination with other
//! processes, and a lost update within this process (two commands that bypassed the account lock)
//! is harmless too, though `remember` keeps the newer of two versions anyway.
//!
//! Eviction is first in, first out over a ring of `capacity` slots: O(1) per operation with no
//! allocation after warm-up, and bounded by construction. An evicted hot account is simply loaded
//! again (snapshot plus tail) on its next command, which is what every command cost before.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use ledger_domain::{Account, AccountId};

/// Accounts cached by default: at a few hundred bytes each, about 100 MB at most.
pub const DEFAULT_STATE_CACHE_ACCOUNTS: usize = 100_000;

/// A committed state of one account, as the cache holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedAccount {
    pub account: Account,
    /// When the latest event (sequence `account.version()`) was recorded: the floor for the next
    /// event's `recorded_at`, since time never runs backwards within a stream.
    pub last_recorded_at: DateTime<Utc>,
}

/// Bounded account states, keyed by account id.
#[derive(Debug)]
pub(crate) struct StateCache {
    capacity: usize,
    inner: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    entries: HashMap<AccountId, Entry>,
    /// Which account holds each slot; `None` for a slot never used or freed by `forget`.
    slots: Vec<Option<AccountId>>,
    /// The slot the next new account takes (evicting its holder, if any).
    next_slot: usize,
}

#[derive(Debug)]
struct Entry {
    cached: CachedAccount,
    slot: usize,
}

impl StateCache {
    /// A cache of at most `capacity` accounts; 0 caches nothing.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Ring::default()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    /// A poisoned lock only means a panic elsewhere while holding it; every operation leaves the
    /// ring consistent before it could panic, and the entries are only hints.
    fn ring(&self) -> MutexGuard<'_, Ring> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, account_id: &AccountId) -> Option<CachedAccount> {
        if !self.is_enabled() {
            return None;
        }
        self.ring()
            .entries
            .get(account_id)
            .map(|entry| entry.cached.clone())
    }

    /// Stores a committed state, unless the cache holds a newer version of the account already.
    pub fn remember(&self, cached: CachedAccount) {
        if !self.is_enabled() {
            return;
        }
        let mut ring = self.ring();
        if let Some(entry) = ring.entries.get_mut(cached.account.id()) {
            if entry.cached.account.version() <= cached.account.version() {
                entry.cached = cached;
            }
            return;
        }
        if ring.slots.len() < self.capacity {
            ring.slots.push(None);
        }
        let slot = ring.next_slot;
        ring.next_slot = (slot + 1) % self.capacity;
        if let Some(evicted) = ring.slots[slot].take() {
            ring.entries.remove(&evicted);
        }
        ring.slots[slot] = Some(cached.account.id().clone());
        ring.entries
            .insert(cached.account.id().clone(), Entry { cached, slot });
    }

    /// Drops an account whose cached state may be stale (an append involving it did not commit).
    pub fn forget(&self, account_id: &AccountId) {
        let mut ring = self.ring();
        if let Some(entry) = ring.entries.remove(account_id) {
            ring.slots[entry.slot] = None;
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ring().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use ledger_domain::{
        AccountEvent, AccountKind, AccountOpened, Amount, Balance, Currency, MoneyDeposited,
        OverdraftLimit, OwnerName,
    };

    use super::*;

    fn opened(id: &str) -> CachedAccount {
        let account_id = AccountId::parse(id).unwrap();
        let event = AccountEvent::AccountOpened(AccountOpened {
            owner: OwnerName::parse("Ada").unwrap(),
            kind: AccountKind::Checking,
            currency: Currency::parse("USD").unwrap(),
            overdraft_limit: OverdraftLimit::parse("0.00").unwrap(),
        });
        CachedAccount {
            account: Account::replay(&account_id, [&event]).unwrap().unwrap(),
            last_recorded_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    fn deposited(cached: &CachedAccount) -> CachedAccount {
        let event = AccountEvent::MoneyDeposited(MoneyDeposited {
            amount: Amount::parse("1.00").unwrap(),
            balance_after: Balance::parse("1.00").unwrap(),
            description: None,
        });
        CachedAccount {
            account: Account::replay_onto(
                cached.account.id(),
                Some(cached.account.clone()),
                [&event],
            )
            .unwrap()
            .unwrap(),
            last_recorded_at: cached.last_recorded_at,
        }
    }

    fn id(text: &str) -> AccountId {
        AccountId::parse(text).unwrap()
    }

    #[test]
    fn holds_at_most_its_capacity_evicting_the_oldest_first() {
        let cache = StateCache::new(3);
        for index in 0..10 {
            cache.remember(opened(&format!("acc-{index}")));
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&id("acc-6")).is_none(), "evicted");
        for kept in ["acc-7", "acc-8", "acc-9"] {
            assert!(cache.get(&id(kept)).is_some(), "{kept} is among the newest");
        }
    }

    #[test]
    fn a_forgotten_account_frees_its_slot_and_is_not_returned() {
        let cache = StateCache::new(2);
        cache.remember(opened("acc-a"));
        cache.remember(opened("acc-b"));
        cache.forget(&id("acc-a"));
        assert!(cache.get(&id("acc-a")).is_none());
        assert_eq!(cache.len(), 1);
        // The freed slot is the next one taken: acc-b survives the insert.
        cache.remember(opened("acc-c"));
        assert!(cache.get(&id("acc-b")).is_some());
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let cache = StateCache::new(2);
        let first = opened("acc-a");
        let second = deposited(&first);
        cache.remember(second.clone());
        cache.remember(first);
        assert_eq!(cache.get(&id("acc-a")), Some(second));
    }

    #[test]
    fn a_capacity_of_zero_caches_nothing() {
        let cache = StateCache::new(0);
        cache.remember(opened("acc-a"));
        assert!(cache.get(&id("acc-a")).is_none());
        assert_eq!(cache.len(), 0);
    }
}
