//! `Verifier`: folds every account of the event store with the domain and compares what it finds
//! with the read model, one typed [`Difference`] per disagreement.
//!
//! The event store is the truth; the read model is what the projector made of it. The verifier walks
//! the accounts with [`EventStoreScan`] (pages of accounts, then pages of each account's events, so
//! that neither the accounts nor one long history ever sit in memory whole) and checks, per account:
//! the account row (balance, status, `last_sequence`), the transactions (their count and the sum of
//! their signed amounts, walked page by page) and the daily closing balances (walked in step with
//! the events' days). Accounts run a few at a time, since on DynamoDB every page is a round trip.
//!
//! It reads, never writes. Run it on a quiet ledger or once the projector has caught up: an event
//! appended while it runs shows as the read model being behind (a `last_sequence` difference).
//! What it cannot see: a read-model account that the event store does not hold at all, since no port
//! lists the read model's accounts.

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;

use chrono::NaiveDate;
use futures_util::{Stream, TryStreamExt, stream};
use ledger_domain::{
    Account, AccountEvent, AccountId, AccountStatus, Balance, EntryType, HistoryError,
};

use crate::ports::{DailyBalanceView, EventStoreScan, ReadModelQuery, ScanCursor, StoreError};

/// Page sizes, concurrency and bounds of one verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Accounts asked for per page of the walk.
    pub accounts_page: usize,
    /// Events read per page of one account's history.
    pub events_page: usize,
    /// Transactions and daily balances read per page of the read model.
    pub read_model_page: usize,
    /// Accounts verified at once.
    pub concurrency: usize,
    /// The most pages of accounts one walk takes before it gives up (a cursor that never ends).
    pub account_pages_max: u64,
    /// The most pages of events, transactions or days read for one account.
    pub account_pages_per_read_max: u64,
    /// Daily differences reported one by one per account; the rest are counted in one line.
    pub daily_differences_per_account_max: u64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            accounts_page: 500,
            events_page: 1_000,
            read_model_page: 1_000,
            concurrency: 16,
            account_pages_max: 10_000_000,
            account_pages_per_read_max: 1_000_000,
            daily_differences_per_account_max: 20,
        }
    }
}

/// One disagreement between the event store and the read model about one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub account_id: AccountId,
    pub what: DifferenceKind,
}

/// What disagrees, with what the event store says (`store`) and what the read model holds
/// (`read_model`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DifferenceKind {
    /// The event store holds the account; the read model has no row for it.
    MissingFromReadModel,
    Balance {
        store: Balance,
        read_model: Balance,
    },
    Status {
        store: AccountStatus,
        read_model: AccountStatus,
    },
    LastSequence {
        store: u64,
        read_model: u64,
    },
    /// How many money movements the account has.
    TransactionCount {
        store: u64,
        read_model: u64,
    },
    /// Credits minus debits over every movement.
    TransactionSum {
        store: Balance,
        read_model: Balance,
    },
    /// The closing balance of a day; `None` on the side that has no such day.
    DailyClosingBalance {
        date: NaiveDate,
        store: Option<Balance>,
        read_model: Option<Balance>,
    },
    /// More daily differences than [`VerifyConfig::daily_differences_per_account_max`]: how many
    /// more there were.
    FurtherDailyDifferences {
        count: u64,
    },
    /// The stored history does not fold: the event store itself is damaged (the comparison of the
    /// account stops there).
    HistoryRefused {
        sequence: u64,
        error: HistoryError,
    },
    /// The stored history skips or repeats a sequence.
    SequenceGap {
        expected: u64,
        found: u64,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let account = &self.account_id;
        let day =
            |day: &Option<Balance>| day.map_or_else(|| "no day".to_owned(), |b| b.to_string());
        match &self.what {
            DifferenceKind::MissingFromReadModel => {
                write!(
                    f,
                    "{account} account: in the event store, missing from the read model"
                )
            }
            DifferenceKind::Balance { store, read_model } => {
                write!(
                    f,
                    "{account} balance: store {store}, read model {read_model}"
                )
            }
            DifferenceKind::Status { store, read_model } => {
                write!(
                    f,
                    "{account} status: store {store}, read model {read_model}"
                )
            }
            DifferenceKind::LastSequence { store, read_model } => {
                write!(
                    f,
                    "{account} last_sequence: store {store}, read model {read_model}"
                )
            }
            DifferenceKind::TransactionCount { store, read_model } => {
                write!(
                    f,
                    "{account} transaction count: store {store}, read model {read_model}"
                )
            }
            DifferenceKind::TransactionSum { store, read_model } => {
                write!(
                    f,
                    "{account} transaction sum: store {store}, read model {read_model}"
                )
            }
            DifferenceKind::DailyClosingBalance {
                date,
                store,
                read_model,
            } => write!(
                f,
                "{account} closing balance of {date}: store {}, read model {}",
                day(store),
                day(read_model)
            ),
            DifferenceKind::FurtherDailyDifferences { count } => {
                write!(f, "{account} closing balances: {count} more day(s) differ")
            }
            DifferenceKind::HistoryRefused { sequence, error } => {
                write!(
                    f,
                    "{account} history: event {sequence} does not fold: {error}"
                )
            }
            DifferenceKind::SequenceGap { expected, found } => write!(
                f,
                "{account} history: sequence {found} stored where {expected} was expected"
            ),
        }
    }
}

/// Why a verification could not finish (a difference is not a failure of the verifier).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("reading the event store failed: {0}")]
    EventStore(#[source] StoreError),
    #[error("reading the read model failed: {0}")]
    ReadModel(#[source] StoreError),
    #[error("the walk over the accounts took more than {pages_max} pages")]
    WalkTooLong { pages_max: u64 },
    #[error("account {account_id} needs more than {pages_max} pages of one read")]
    AccountTooLong {
        account_id: AccountId,
        pages_max: u64,
    },
}

/// What one verification looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VerifySummary {
    pub accounts: u64,
    pub events: u64,
    pub accounts_with_differences: u64,
    pub differences: u64,
}

/// One account's outcome: how many events it folded and what differed.
#[derive(Debug, Default)]
struct AccountReport {
    events: u64,
    differences: Vec<Difference>,
}

/// Compares the read model with the event store; see the module documentation.
pub struct Verifier<'a> {
    scan: &'a dyn EventStoreScan,
    read_model: &'a dyn ReadModelQuery,
    config: VerifyConfig,
}

impl fmt::Debug for Verifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<'a> Verifier<'a> {
    pub fn new(
        scan: &'a dyn EventStoreScan,
        read_model: &'a dyn ReadModelQuery,
        config: VerifyConfig,
    ) -> Self {
        Self {
            scan,
            read_model,
            config: VerifyConfig {
                accounts_page: config.accounts_page.max(1),
                events_page: config.events_page.max(1),
                read_model_page: config.read_model_page.max(1),
                concurrency: config.concurrency.max(1),
                ..config
            },
        }
    }

    /// Verifies every account, handing each difference to `on_difference` as soon as its account is
    /// done (accounts finish in no particular order), and returns what it looked at.
    pub async fn run(
        &self,
        mut on_difference: impl FnMut(&Difference) + Send,
    ) -> Result<VerifySummary, VerifyError> {
        let accounts = self
            .account_pages()
            .map_ok(|page| stream::iter(page.into_iter().map(Ok::<_, VerifyError>)))
            .try_flatten();
        let reports = accounts
            .map_ok(|account_id| self.verify_account(account_id))
            .try_buffer_unordered(self.config.concurrency);
        let mut reports = std::pin::pin!(reports);
        let mut summary = VerifySummary::default();
        while let Some(report) = reports.try_next().await? {
            summary.accounts += 1;
            summary.events += report.events;
            if !report.differences.is_empty() {
                summary.accounts_with_differences += 1;
            }
            for difference in &report.differences {
                summary.differences += 1;
                on_difference(difference);
            }
        }
        Ok(summary)
    }

    /// The walk over the accounts, page by page.
    fn account_pages(&self) -> impl Stream<Item = Result<Vec<AccountId>, VerifyError>> + '_ {
        /// Where the walk is: before its first page, after a page with a next cursor, or done.
        enum Walk {
            Start,
            After(ScanCursor, u64),
            Done,
        }
        stream::try_unfold(Walk::Start, move |walk| async move {
            let (cursor, pages) = match walk {
                Walk::Start => (None, 0),
                Walk::After(cursor, pages) => (Some(cursor), pages),
                Walk::Done => return Ok(None),
            };
            if pages >= self.config.account_pages_max {
                return Err(VerifyError::WalkTooLong {
                    pages_max: self.config.account_pages_max,
                });
            }
            let page = self
                .scan
                .accounts_page(cursor.as_ref(), self.config.accounts_page)
                .await
                .map_err(VerifyError::EventStore)?;
            let next = match page.next {
                Some(cursor) => Walk::After(cursor, pages + 1),
                None => Walk::Done,
            };
            Ok(Some((page.accounts, next)))
        })
    }

    async fn verify_account(&self, account_id: AccountId) -> Result<AccountReport, VerifyError> {
        // The read model first: if an event lands meanwhile, the store is ahead (reported as such),
        // never the read model ahead of a store read that came before it.
        let view = self
            .read_model
            .account(&account_id)
            .await
            .map_err(VerifyError::ReadModel)?;
        let mut report = AccountReport::default();
        let mut days = view.as_ref().map(|_| DailyCheck::new(self, &account_id));
        let fold = self.fold(&account_id, &mut report, days.as_mut()).await?;
        let Some(view) = view else {
            report.differences.push(Difference {
                account_id,
                what: DifferenceKind::MissingFromReadModel,
            });
            return Ok(report);
        };
        // A damaged history is reported already; an empty one (listed, but no events) has nothing
        // to compare.
        let Some(folded) = fold else {
            return Ok(report);
        };
        if let Some(days) = days {
            days.finish(&mut report).await?;
        }
        let account = &folded.account;
        let mut differ = |what| {
            report.differences.push(Difference {
                account_id: account_id.clone(),
                what,
            });
        };
        if account.balance() != view.balance {
            differ(DifferenceKind::Balance {
                store: account.balance(),
                read_model: view.balance,
            });
        }
        if account.status() != view.status {
            differ(DifferenceKind::Status {
                store: account.status(),
                read_model: view.status,
            });
        }
        if account.version() != view.last_sequence {
            differ(DifferenceKind::LastSequence {
                store: account.version(),
                read_model: view.last_sequence,
            });
        }
        let (count, sum) = self.read_model_transactions(&account_id, account).await?;
        if count != folded.movements {
            differ(DifferenceKind::TransactionCount {
                store: folded.movements,
                read_model: count,
            });
        }
        if sum != folded.movement_sum {
            differ(DifferenceKind::TransactionSum {
                store: folded.movement_sum,
                read_model: sum,
            });
        }
        Ok(report)
    }

    /// Folds the account's history page by page, feeding each movement's day to `days`. `None` when
    /// the history is damaged (reported) or empty.
    async fn fold(
        &self,
        account_id: &AccountId,
        report: &mut AccountReport,
        mut days: Option<&mut DailyCheck<'_>>,
    ) -> Result<Option<Folded>, VerifyError> {
        let mut state: Option<Folded> = None;
        let limit = self.config.events_page;
        for _ in 0..self.config.account_pages_per_read_max {
            let after = state.as_ref().map_or(0, |folded| folded.account.version());
            let page = self
                .scan
                .events_page(account_id, after, limit)
                .await
                .map_err(VerifyError::EventStore)?;
            let whole = page.len() < limit;
            for recorded in &page {
                report.events += 1;
                let expected = after_of(state.as_ref()) + 1;
                if recorded.sequence != expected {
                    report.differences.push(Difference {
                        account_id: account_id.clone(),
                        what: DifferenceKind::SequenceGap {
                            expected,
                            found: recorded.sequence,
                        },
                    });
                    return Ok(None);
                }
                let previous = state.take();
                let folded = match Folded::apply(account_id, previous, &recorded.event) {
                    Ok(folded) => folded,
                    Err(error) => {
                        report.differences.push(Difference {
                            account_id: account_id.clone(),
                            what: DifferenceKind::HistoryRefused {
                                sequence: recorded.sequence,
                                error,
                            },
                        });
                        return Ok(None);
                    }
                };
                if let (Some(days), Some(movement)) =
                    (days.as_deref_mut(), recorded.event.movement())
                {
                    let day = DailyBalanceView {
                        date: recorded.recorded_at().date_naive(),
                        closing_balance: movement.balance_after,
                        last_sequence: recorded.sequence,
                    };
                    days.movement(day, report).await?;
                }
                state = Some(folded);
            }
            if whole {
                return Ok(state);
            }
        }
        Err(VerifyError::AccountTooLong {
            account_id: account_id.clone(),
            pages_max: self.config.account_pages_per_read_max,
        })
    }

    /// The read model's transactions of the account, page by page: how many, and their signed sum.
    async fn read_model_transactions(
        &self,
        account_id: &AccountId,
        account: &Account,
    ) -> Result<(u64, Balance), VerifyError> {
        let mut count = 0_u64;
        let mut sum = Balance::zero(account.currency());
        let mut after = 0;
        let limit = self.config.read_model_page;
        for _ in 0..self.config.account_pages_per_read_max {
            let page = self
                .read_model
                .transactions(account_id, after, limit)
                .await
                .map_err(VerifyError::ReadModel)?;
            for transaction in &page {
                count += 1;
                sum = signed_add(sum, transaction.entry_type, transaction.amount);
                after = transaction.sequence;
            }
            if page.len() < limit {
                return Ok((count, sum));
            }
        }
        Err(VerifyError::AccountTooLong {
            account_id: account_id.clone(),
            pages_max: self.config.account_pages_per_read_max,
        })
    }
}

fn after_of(state: Option<&Folded>) -> u64 {
    state.map_or(0, |folded| folded.account.version())
}

/// `sum` moved by one movement: credits add, debits subtract. Saturates where `Balance` would
/// overflow, which the bounded amounts make unreachable; a saturated sum still differs visibly.
fn signed_add(sum: Balance, entry_type: EntryType, amount: ledger_domain::Amount) -> Balance {
    let moved = match entry_type {
        EntryType::Deposit | EntryType::TransferIn => sum.plus(amount),
        EntryType::Withdrawal | EntryType::TransferOut => sum.minus(amount),
    };
    moved.unwrap_or(sum)
}

/// The account as its events fold, with what the read model's transactions must add up to.
#[derive(Debug)]
struct Folded {
    account: Account,
    movements: u64,
    movement_sum: Balance,
}

impl Folded {
    fn apply(
        account_id: &AccountId,
        state: Option<Self>,
        event: &AccountEvent,
    ) -> Result<Self, HistoryError> {
        let (account, movements, movement_sum) = match state {
            Some(folded) => (
                Some(folded.account),
                folded.movements,
                Some(folded.movement_sum),
            ),
            None => (None, 0, None),
        };
        let account = ledger_domain::apply(account_id, account, event)?;
        let mut movement_sum = movement_sum.unwrap_or_else(|| Balance::zero(account.currency()));
        let mut movements = movements;
        if let Some(movement) = event.movement() {
            movements += 1;
            movement_sum = signed_add(movement_sum, movement.entry_type, movement.amount);
        }
        Ok(Self {
            account,
            movements,
            movement_sum,
        })
    }
}

/// The daily closing balances, checked in step with the fold: the store's days come from the
/// events as they are folded, the read model's from its pages, both oldest first.
struct DailyCheck<'a> {
    read_model: &'a dyn ReadModelQuery,
    account_id: &'a AccountId,
    config: VerifyConfig,
    /// The store's day being folded: its closing balance is the last movement's of that day.
    current: Option<DailyBalanceView>,
    /// The read model's days read but not yet compared.
    found: VecDeque<DailyBalanceView>,
    /// Where the next page of the read model's days starts; `None` once they are exhausted.
    next_from: Option<NaiveDate>,
    pages: u64,
    reported: u64,
    further: u64,
}

impl<'a> DailyCheck<'a> {
    fn new(verifier: &Verifier<'a>, account_id: &'a AccountId) -> Self {
        Self {
            read_model: verifier.read_model,
            account_id,
            config: verifier.config,
            current: None,
            found: VecDeque::new(),
            // Every day the read model could hold: days before the opening would be differences too.
            next_from: Some(first_day()),
            pages: 0,
            reported: 0,
            further: 0,
        }
    }

    /// One movement of the store: a new day closes the one before, which is then compared.
    async fn movement(
        &mut self,
        day: DailyBalanceView,
        report: &mut AccountReport,
    ) -> Result<(), VerifyError> {
        match self.current.take() {
            Some(current) if current.date != day.date => {
                self.compare(current, report).await?;
            }
            _ => {}
        }
        self.current = Some(day);
        Ok(())
    }

    /// The last day, then every read-model day after it, which no event accounts for.
    async fn finish(mut self, report: &mut AccountReport) -> Result<(), VerifyError> {
        if let Some(current) = self.current.take() {
            self.compare(current, report).await?;
        }
        while let Some(extra) = self.next_found().await? {
            self.differ(report, extra.date, None, Some(extra.closing_balance));
        }
        if self.further > 0 {
            report.differences.push(Difference {
                account_id: self.account_id.clone(),
                what: DifferenceKind::FurtherDailyDifferences {
                    count: self.further,
                },
            });
        }
        Ok(())
    }

    async fn compare(
        &mut self,
        expected: DailyBalanceView,
        report: &mut AccountReport,
    ) -> Result<(), VerifyError> {
        loop {
            if self.found.is_empty() {
                self.fill().await?;
            }
            match self.found.front() {
                Some(found) if found.date < expected.date => {
                    let (date, balance) = (found.date, found.closing_balance);
                    self.found.pop_front();
                    self.differ(report, date, None, Some(balance));
                }
                Some(found) if found.date == expected.date => {
                    if found.closing_balance != expected.closing_balance {
                        let balance = found.closing_balance;
                        self.differ(
                            report,
                            expected.date,
                            Some(expected.closing_balance),
                            Some(balance),
                        );
                    }
                    self.found.pop_front();
                    return Ok(());
                }
                _ => {
                    self.differ(report, expected.date, Some(expected.closing_balance), None);
                    return Ok(());
                }
            }
        }
    }

    async fn next_found(&mut self) -> Result<Option<DailyBalanceView>, VerifyError> {
        if self.found.is_empty() {
            self.fill().await?;
        }
        Ok(self.found.pop_front())
    }

    /// Reads the next page of the read model's days, if any are left.
    async fn fill(&mut self) -> Result<(), VerifyError> {
        let Some(from) = self.next_from else {
            return Ok(());
        };
        if self.pages >= self.config.account_pages_per_read_max {
            return Err(VerifyError::AccountTooLong {
                account_id: self.account_id.clone(),
                pages_max: self.config.account_pages_per_read_max,
            });
        }
        self.pages += 1;
        let limit = self.config.read_model_page;
        let page = self
            .read_model
            .daily_balances(self.account_id, from, last_day(), limit)
            .await
            .map_err(VerifyError::ReadModel)?;
        self.next_from = match page.last() {
            Some(last) if page.len() >= limit => last.date.succ_opt(),
            _ => None,
        };
        self.found.extend(page);
        Ok(())
    }

    fn differ(
        &mut self,
        report: &mut AccountReport,
        date: NaiveDate,
        store: Option<Balance>,
        read_model: Option<Balance>,
    ) {
        if self.reported >= self.config.daily_differences_per_account_max {
            self.further += 1;
            return;
        }
        self.reported += 1;
        report.differences.push(Difference {
            account_id: self.account_id.clone(),
            what: DifferenceKind::DailyClosingBalance {
                date,
                store,
                read_model,
            },
        });
    }
}

/// The range of days asked of the read model: wide enough for any day a ledger records, narrow
/// enough for every database's date type (PostgreSQL's ends in 5874897, SQLite compares text).
fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN)
}

fn last_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX)
}
