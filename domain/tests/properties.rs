//! Property tests of the `Account` aggregate: random command sequences over a few USD accounts, checking
//! that replay rebuilds the live state, that no balance passes its overdraft limit, and that money is
//! conserved (the balances sum to deposits minus withdrawals), all in `Decimal`.

use std::cmp::Ordering;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use rust_decimal::Decimal;

use ledger_domain::{
    Account, AccountCommand, AccountEvent, AccountId, AccountKind, Amount, Currency, DomainError,
    FreezeReason, OverdraftLimit, OwnerName, TransferCommand, TransferId, apply, decide,
    decide_transfer,
};

/// The accounts the commands address, by index.
const ACCOUNTS: usize = 4;
/// Each account's overdraft limit in cents: two without, two with.
const LIMIT_CENTS: [i64; ACCOUNTS] = [0, 10_000, 0, 25_050];
/// Accounts opened before the generated commands run; the last one waits for a generated `Open`.
const OPENED_UP_FRONT: usize = 3;

/// An amount as generated: integer cents, sometimes written with a third decimal place.
#[derive(Debug, Clone, Copy)]
enum Money {
    /// `cents / 100`, two decimals.
    Cents(i64),
    /// The same value with a trailing zero (`12.340`): valid in USD, rescaled on the way in.
    Padded(i64),
    /// A value with a non-zero third decimal (`12.345`): never valid in USD.
    TooFine(i64),
}

impl Money {
    fn value(self) -> Decimal {
        match self {
            Self::Cents(cents) => Decimal::new(cents, 2),
            Self::Padded(cents) => Decimal::new(cents * 10, 3),
            Self::TooFine(cents) => Decimal::new(cents * 10 + 5, 3),
        }
    }

    fn amount(self) -> Amount {
        Amount::new(self.value()).expect("generated amounts are positive and small")
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Open(usize),
    Deposit(usize, Money),
    Withdraw(usize, Money),
    Transfer(usize, usize, Money),
    Freeze(usize),
    Unfreeze(usize),
    /// Withdraws a positive balance or deposits a negative one, then closes: lets `Close` succeed.
    SettleAndClose(usize),
    Close(usize),
}

fn account_index() -> impl Strategy<Value = usize> {
    0..ACCOUNTS
}

fn money() -> impl Strategy<Value = Money> {
    let cents = || 1..=50_000_i64;
    prop_oneof![
        8 => cents().prop_map(Money::Cents),
        2 => cents().prop_map(Money::Padded),
        1 => cents().prop_map(Money::TooFine),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => account_index().prop_map(Op::Open),
        6 => (account_index(), money()).prop_map(|(a, m)| Op::Deposit(a, m)),
        5 => (account_index(), money()).prop_map(|(a, m)| Op::Withdraw(a, m)),
        7 => (account_index(), account_index(), money()).prop_map(|(s, t, m)| Op::Transfer(s, t, m)),
        1 => account_index().prop_map(Op::Freeze),
        2 => account_index().prop_map(Op::Unfreeze),
        1 => account_index().prop_map(Op::SettleAndClose),
        1 => account_index().prop_map(Op::Close),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 0..80)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// What happened to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Rejected(DomainError),
    /// `SettleAndClose` on a missing account: nothing to decide.
    Skipped,
}

/// The accounts' live states, built step by step, and everything needed to check them.
#[derive(Debug)]
struct Ledger {
    ids: Vec<AccountId>,
    states: Vec<Option<Account>>,
    histories: Vec<Vec<AccountEvent>>,
    /// Accepted deposits minus accepted withdrawals, from the commands' own amounts.
    net_inflow: Decimal,
    transfers: u32,
}

impl Ledger {
    fn new() -> Self {
        let mut ledger = Self {
            ids: (0..ACCOUNTS)
                .map(|i| AccountId::parse(&format!("acc-{i}")).expect("valid id"))
                .collect(),
            states: vec![None; ACCOUNTS],
            histories: vec![Vec::new(); ACCOUNTS],
            net_inflow: Decimal::ZERO,
            transfers: 0,
        };
        for account in 0..OPENED_UP_FRONT {
            assert_eq!(ledger.run(Op::Open(account)), Outcome::Accepted);
        }
        ledger
    }

    fn usd() -> Currency {
        Currency::parse("USD").expect("supported")
    }

    fn decide_one(&mut self, account: usize, command: &AccountCommand) -> Outcome {
        match decide(&self.ids[account], self.states[account].as_ref(), command) {
            Ok(events) => {
                for event in events {
                    self.record(account, event);
                }
                Outcome::Accepted
            }
            Err(error) => Outcome::Rejected(error),
        }
    }

    /// Applies an accepted event to the live state and appends it to the account's history.
    fn record(&mut self, account: usize, event: AccountEvent) {
        let state = self.states[account].take();
        self.states[account] =
            Some(apply(&self.ids[account], state, &event).expect("decided events apply"));
        self.histories[account].push(event);
    }

    fn run(&mut self, op: Op) -> Outcome {
        match op {
            Op::Open(account) => {
                let limit = OverdraftLimit::new(Decimal::new(LIMIT_CENTS[account], 2))
                    .expect("valid limit");
                let command = AccountCommand::Open {
                    owner: OwnerName::parse(&format!("Owner {account}")).expect("valid owner"),
                    kind: AccountKind::Checking,
                    currency: Self::usd(),
                    overdraft_limit: limit,
                };
                self.decide_one(account, &command)
            }
            Op::Deposit(account, money) => {
                let command = AccountCommand::Deposit {
                    amount: money.amount(),
                    description: None,
                };
                let outcome = self.decide_one(account, &command);
                if outcome == Outcome::Accepted {
                    self.net_inflow += money.value();
                }
                outcome
            }
            Op::Withdraw(account, money) => {
                let command = AccountCommand::Withdraw {
                    amount: money.amount(),
                    description: None,
                };
                let outcome = self.decide_one(account, &command);
                if outcome == Outcome::Accepted {
                    self.net_inflow -= money.value();
                }
                outcome
            }
            Op::Transfer(source, target, money) => self.transfer(source, target, money),
            Op::Freeze(account) => {
                let reason = FreezeReason::parse("property test").expect("valid reason");
                self.decide_one(account, &AccountCommand::Freeze { reason })
            }
            Op::Unfreeze(account) => self.decide_one(account, &AccountCommand::Unfreeze),
            Op::SettleAndClose(account) => {
                let Some(state) = &self.states[account] else {
                    return Outcome::Skipped;
                };
                let balance = state.balance().value();
                let settled = match balance.cmp(&Decimal::ZERO) {
                    Ordering::Greater => {
                        self.run(Op::Withdraw(account, Money::Cents(cents(balance))))
                    }
                    Ordering::Less => self.run(Op::Deposit(account, Money::Cents(cents(-balance)))),
                    Ordering::Equal => Outcome::Accepted,
                };
                match settled {
                    Outcome::Accepted => self.decide_one(account, &AccountCommand::Close),
                    rejected => rejected,
                }
            }
            Op::Close(account) => self.decide_one(account, &AccountCommand::Close),
        }
    }

    fn transfer(&mut self, source: usize, target: usize, money: Money) -> Outcome {
        self.transfers += 1;
        let command = TransferCommand {
            transfer_id: TransferId::parse(&format!("tr-{}", self.transfers)).expect("valid id"),
            source: self.ids[source].clone(),
            target: self.ids[target].clone(),
            amount: money.amount(),
            description: None,
        };
        match decide_transfer(
            self.states[source].as_ref(),
            self.states[target].as_ref(),
            &command,
        ) {
            Ok(decision) => {
                self.record(source, decision.debit);
                self.record(target, decision.credit);
                Outcome::Accepted
            }
            Err(error) => Outcome::Rejected(error),
        }
    }

    fn opened(&self) -> impl Iterator<Item = &Account> {
        self.states.iter().flatten()
    }

    fn total_balance(&self) -> Decimal {
        self.opened().map(|account| account.balance().value()).sum()
    }
}

/// A two-decimal `Decimal` as integer cents (exact: the ledger's USD balances have two decimals).
fn cents(value: Decimal) -> i64 {
    let mut value = value;
    value.rescale(2);
    i64::try_from(value.mantissa()).expect("balances fit in i64 cents")
}

/// Every recorded money value is written with USD's two decimal places.
fn written_in_cents(event: &AccountEvent) -> bool {
    event.movement().is_none_or(|movement| {
        movement.amount.value().scale() == 2 && movement.balance_after.value().scale() == 2
    })
}

proptest! {
    #![proptest_config(config())]

    /// (a) Replaying each account's recorded history rebuilds exactly the state built step by step, and
    /// the version is the number of events.
    #[test]
    fn replay_rebuilds_the_live_state(ops in ops()) {
        let mut ledger = Ledger::new();
        for op in ops {
            ledger.run(op);
            for account in 0..ACCOUNTS {
                let replayed = Account::replay(&ledger.ids[account], &ledger.histories[account]);
                prop_assert_eq!(&replayed, &Ok(ledger.states[account].clone()));
                let version = ledger.states[account].as_ref().map_or(0, Account::version);
                prop_assert_eq!(version, u64::try_from(ledger.histories[account].len()).unwrap());
            }
        }
    }

    /// (b) After every command, accepted or not, each balance is at least minus its overdraft limit.
    #[test]
    fn no_balance_passes_its_overdraft_limit(ops in ops()) {
        let mut ledger = Ledger::new();
        for op in ops {
            ledger.run(op);
            for account in ledger.opened() {
                prop_assert!(
                    account.balance().value() >= -account.overdraft_limit().value(),
                    "{:?} is overdrawn beyond {:?} after {:?}",
                    account.balance(),
                    account.overdraft_limit(),
                    op
                );
            }
        }
    }

    /// (c) The balances always sum to deposits minus withdrawals: transfers only move money around.
    #[test]
    fn money_is_conserved(ops in ops()) {
        let mut ledger = Ledger::new();
        for op in ops {
            ledger.run(op);
            prop_assert_eq!(ledger.total_balance(), ledger.net_inflow, "after {:?}", op);
        }
    }

    /// Amounts are rescaled to the currency or refused: every recorded value has two decimals, and an
    /// amount with a significant third decimal is never accepted.
    #[test]
    fn recorded_money_has_the_currency_scale(ops in ops()) {
        let mut ledger = Ledger::new();
        for op in ops {
            let outcome = ledger.run(op);
            let too_fine = matches!(
                op,
                Op::Deposit(_, Money::TooFine(_))
                    | Op::Withdraw(_, Money::TooFine(_))
                    | Op::Transfer(_, _, Money::TooFine(_))
            );
            if too_fine {
                prop_assert_ne!(outcome, Outcome::Accepted);
            }
        }
        for history in &ledger.histories {
            prop_assert!(history.iter().all(written_in_cents), "{:?}", history);
        }
    }
}

/// Guards the generator: across a fixed sample it must produce every acceptance and every rejection the
/// properties rely on, or the properties above would pass vacuously.
#[test]
fn the_generated_commands_reach_every_outcome() {
    let mut runner = TestRunner::deterministic();
    let mut seen = Vec::new();
    for _ in 0..200 {
        let sequence = ops().new_tree(&mut runner).expect("a sequence").current();
        let mut ledger = Ledger::new();
        for op in sequence {
            let outcome = ledger.run(op);
            let label = match &outcome {
                Outcome::Accepted => format!("{op:?}").split('(').next().unwrap_or("").to_owned(),
                Outcome::Rejected(error) => format!("{error:?}")
                    .split([' ', '{'])
                    .next()
                    .unwrap_or("")
                    .to_owned(),
                Outcome::Skipped => continue,
            };
            if !seen.contains(&label) {
                seen.push(label);
            }
        }
    }
    for expected in [
        "Open",
        "Deposit",
        "Withdraw",
        "Transfer",
        "Freeze",
        "Unfreeze",
        "SettleAndClose",
        "AccountNotFound",
        "AccountAlreadyExists",
        "InvalidAmount",
        "InsufficientFunds",
        "AccountFrozen",
        "AccountClosed",
        "AccountAlreadyFrozen",
        "AccountNotFrozen",
        "SameAccountTransfer",
        "NonZeroBalance",
    ] {
        assert!(
            seen.iter().any(|label| label == expected),
            "{expected} never happened; seen: {seen:?}"
        );
    }
}
