//! `InMemoryReadModel`: the read model's tables as maps behind one mutex, so each apply is atomic.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ledger_domain::{AccountId, AccountStatus, Balance};

use crate::ports::{
    AccountView, ApplyOutcome, DailyBalanceView, DeadLetter, DeadLetterId, Projection,
    ReadModelChange, ReadModelQuery, ReadModelUpdate, StoreError, StoredDeadLetter,
    TransactionView,
};

#[derive(Debug, Default)]
struct Tables {
    accounts: HashMap<AccountId, AccountView>,
    transactions: HashMap<AccountId, BTreeMap<u64, TransactionView>>,
    daily_balances: HashMap<AccountId, BTreeMap<NaiveDate, DailyBalanceView>>,
    /// In the order recorded; a letter's id is its index plus one.
    dead_letters: Vec<StoredDeadLetter>,
}

#[derive(Debug, Default)]
pub struct InMemoryReadModel {
    tables: Mutex<Tables>,
}

impl InMemoryReadModel {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // Updates are checked before they are written, so a poisoned lock still guards whole rows.
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Projection for InMemoryReadModel {
    async fn last_sequence(&self, account_id: &AccountId) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .accounts
            .get(account_id)
            .map_or(0, |a| a.last_sequence))
    }

    async fn apply(&self, update: &ReadModelUpdate) -> Result<ApplyOutcome, StoreError> {
        let mut tables = self.lock();
        let account = tables.accounts.get(&update.account_id);
        let position = Position {
            last_sequence: account.map_or(0, |a| a.last_sequence),
            has_row: account.is_some(),
        };
        if !next_in_order(position, update)? {
            return Ok(ApplyOutcome::Stale);
        }
        write(&mut tables, update);
        Ok(ApplyOutcome::Applied)
    }

    async fn apply_batch(&self, updates: &[ReadModelUpdate]) -> Result<bool, StoreError> {
        let mut tables = self.lock();
        // Every update is judged against the position its predecessors in the batch leave, before
        // anything is written: under the one lock, all of them are written or none.
        let mut positions: HashMap<&AccountId, Position> = HashMap::new();
        for update in updates {
            let position = positions.entry(&update.account_id).or_insert_with(|| {
                let account = tables.accounts.get(&update.account_id);
                Position {
                    last_sequence: account.map_or(0, |a| a.last_sequence),
                    has_row: account.is_some(),
                }
            });
            if !next_in_order(*position, update)? {
                return Ok(false);
            }
            *position = Position {
                last_sequence: update.sequence,
                has_row: true,
            };
        }
        for update in updates {
            write(&mut tables, update);
        }
        Ok(true)
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<DeadLetterId, StoreError> {
        let mut tables = self.lock();
        let key = letter.deduplication_key();
        if let Some(known) = tables
            .dead_letters
            .iter_mut()
            .find(|stored| stored.letter.deduplication_key() == key)
        {
            if known.resolved_at.is_some() {
                known.letter = letter.clone();
                known.resolved_at = None;
            }
            return Ok(known.id);
        }
        let id = DeadLetterId::new(tables.dead_letters.len() as u64 + 1);
        tables.dead_letters.push(StoredDeadLetter {
            id,
            letter: letter.clone(),
            resolved_at: None,
        });
        Ok(id)
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, StoreError> {
        Ok(self
            .lock()
            .dead_letters
            .iter()
            .filter(|stored| stored.resolved_at.is_none())
            .take(limit)
            .cloned()
            .collect())
    }

    async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<StoredDeadLetter>, StoreError> {
        Ok(self
            .lock()
            .dead_letters
            .iter()
            .find(|stored| stored.id == id)
            .cloned())
    }

    async fn blocking_dead_letter(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<StoredDeadLetter>, StoreError> {
        Ok(self
            .lock()
            .dead_letters
            .iter()
            .filter(|stored| {
                stored.resolved_at.is_none()
                    && stored.letter.waiting_behind.is_none()
                    && stored.letter.account_id.as_ref() == Some(account_id)
                    && stored.letter.sequence.is_some()
            })
            .min_by_key(|stored| stored.letter.sequence)
            .cloned())
    }

    async fn resolve_dead_letters(
        &self,
        account_id: &AccountId,
        through_sequence: u64,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut resolved = 0;
        for stored in &mut self.lock().dead_letters {
            let covered = stored.resolved_at.is_none()
                && stored.letter.account_id.as_ref() == Some(account_id)
                && stored
                    .letter
                    .sequence
                    .is_some_and(|sequence| sequence <= through_sequence);
            if covered {
                stored.resolved_at = Some(at);
                resolved += 1;
            }
        }
        Ok(resolved)
    }
}

/// Where an account stands before an update: its `last_sequence`, and whether its row exists.
#[derive(Debug, Clone, Copy)]
struct Position {
    last_sequence: u64,
    has_row: bool,
}

/// The rule of `Projection::apply` for `update` at `position`: `true` if it is the next event,
/// `false` (stale) if not, and corrupt for a first event that is not an opening.
fn next_in_order(position: Position, update: &ReadModelUpdate) -> Result<bool, StoreError> {
    let opening = matches!(update.change, ReadModelChange::Opened { .. });
    if position.last_sequence + 1 != update.sequence || (opening && position.has_row) {
        return Ok(false);
    }
    if !opening && !position.has_row {
        // Checked before any write, so a refused update leaves nothing behind.
        return Err(StoreError::corrupt(format!(
            "event {} of account {} has no opened account to apply to",
            update.sequence, update.account_id
        )));
    }
    Ok(true)
}

/// Writes `update`, which [`next_in_order`] accepted at the account's current position.
fn write(tables: &mut Tables, update: &ReadModelUpdate) {
    match &update.change {
        ReadModelChange::Opened {
            owner,
            kind,
            currency,
            overdraft_limit,
        } => {
            tables.accounts.insert(
                update.account_id.clone(),
                AccountView {
                    account_id: update.account_id.clone(),
                    owner: owner.clone(),
                    kind: *kind,
                    currency: *currency,
                    status: AccountStatus::Open,
                    balance: Balance::zero(*currency),
                    overdraft_limit: *overdraft_limit,
                    frozen_reason: None,
                    last_sequence: update.sequence,
                    opened_at: update.occurred_at,
                    updated_at: update.occurred_at,
                },
            );
            return;
        }
        ReadModelChange::Moved(transaction) => {
            tables
                .transactions
                .entry(update.account_id.clone())
                .or_default()
                .insert(transaction.sequence, transaction.clone());
            let date = transaction.occurred_at.date_naive();
            tables
                .daily_balances
                .entry(update.account_id.clone())
                .or_default()
                .insert(
                    date,
                    DailyBalanceView {
                        date,
                        closing_balance: transaction.balance_after,
                        last_sequence: transaction.sequence,
                    },
                );
        }
        ReadModelChange::StatusChanged { .. } => {}
    }
    let Some(account) = tables.accounts.get_mut(&update.account_id) else {
        unreachable!("next_in_order saw the account row, under the same lock");
    };
    match &update.change {
        ReadModelChange::Moved(transaction) => account.balance = transaction.balance_after,
        ReadModelChange::StatusChanged {
            status,
            frozen_reason,
        } => {
            account.status = *status;
            account.frozen_reason.clone_from(frozen_reason);
        }
        ReadModelChange::Opened { .. } => {}
    }
    account.last_sequence = update.sequence;
    account.updated_at = update.occurred_at;
}

#[async_trait]
impl ReadModelQuery for InMemoryReadModel {
    async fn account(&self, account_id: &AccountId) -> Result<Option<AccountView>, StoreError> {
        Ok(self.lock().accounts.get(account_id).cloned())
    }

    async fn transactions(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<TransactionView>, StoreError> {
        Ok(self
            .lock()
            .transactions
            .get(account_id)
            .map_or_else(Vec::new, |rows| {
                rows.range((Bound::Excluded(after_sequence), Bound::Unbounded))
                    .take(limit)
                    .map(|(_, row)| row.clone())
                    .collect()
            }))
    }

    async fn last_transaction_at_or_before(
        &self,
        account_id: &AccountId,
        at: DateTime<Utc>,
    ) -> Result<Option<TransactionView>, StoreError> {
        Ok(self.lock().transactions.get(account_id).and_then(|rows| {
            rows.values()
                .rev()
                .find(|row| row.occurred_at <= at)
                .cloned()
        }))
    }

    async fn daily_balances(
        &self,
        account_id: &AccountId,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Result<Vec<DailyBalanceView>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        Ok(self
            .lock()
            .daily_balances
            .get(account_id)
            .map_or_else(Vec::new, |days| {
                days.range(from..=to)
                    .take(limit)
                    .map(|(_, day)| day.clone())
                    .collect()
            }))
    }
}

/// What the in-memory rebuild (`memory::rebuild`) needs of the tables: positions to compare, and
/// the swap itself under one lock.
impl InMemoryReadModel {
    /// Each account's `last_sequence`, and the (account, sequence) of every open dead letter that
    /// names both.
    pub(crate) fn positions(&self) -> (BTreeMap<AccountId, u64>, Vec<(AccountId, u64)>) {
        let tables = self.lock();
        let accounts = tables
            .accounts
            .iter()
            .map(|(id, account)| (id.clone(), account.last_sequence))
            .collect();
        let letters = tables
            .dead_letters
            .iter()
            .filter(|stored| stored.resolved_at.is_none())
            .filter_map(|stored| Some((stored.letter.account_id.clone()?, stored.letter.sequence?)))
            .collect();
        (accounts, letters)
    }

    /// Replaces the model's tables (not the checkpoints: they are the projector's position) with
    /// copies of `fresh`'s, at once.
    pub(crate) fn replace_model_with(&self, fresh: &InMemoryReadModel) {
        let fresh = fresh.lock();
        let mut live = self.lock();
        live.accounts.clone_from(&fresh.accounts);
        live.transactions.clone_from(&fresh.transactions);
        live.daily_balances.clone_from(&fresh.daily_balances);
        live.dead_letters.clone_from(&fresh.dead_letters);
    }
}
