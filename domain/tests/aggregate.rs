//! Given/when/then tests of the `Account` aggregate: every command's success and every rejection of
//! `decide` and `decide_transfer`, and the refusal of impossible histories by `apply` and `replay`.

use ledger_domain::{
    Account, AccountClosed, AccountCommand, AccountEvent, AccountFrozen, AccountId, AccountKind,
    AccountOpened, AccountStatus, AccountUnfrozen, Amount, Balance, Currency, Description,
    DomainError, FreezeReason, HistoryError, MoneyDeposited, MoneyWithdrawn, OverdraftLimit,
    OwnerName, TransferCommand, TransferCredited, TransferDebited, TransferDecision, TransferId,
    apply, decide, decide_transfer,
};

// ---------------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------------

const ACCOUNT: &str = "acc-1";
const OTHER: &str = "acc-2";

fn id(text: &str) -> AccountId {
    AccountId::parse(text).expect("valid account id")
}

fn account_id() -> AccountId {
    id(ACCOUNT)
}

fn currency(code: &str) -> Currency {
    Currency::parse(code).expect("supported currency")
}

fn usd() -> Currency {
    currency("USD")
}

fn amount(text: &str) -> Amount {
    Amount::parse(text).expect("valid amount")
}

fn balance(text: &str) -> Balance {
    Balance::parse(text).expect("valid balance")
}

fn limit(text: &str) -> OverdraftLimit {
    OverdraftLimit::parse(text).expect("valid overdraft limit")
}

fn owner() -> OwnerName {
    OwnerName::parse("Ada Lovelace").expect("valid owner")
}

fn note(text: &str) -> Description {
    Description::parse(text).expect("valid description")
}

fn reason() -> FreezeReason {
    FreezeReason::parse("suspected fraud").expect("valid reason")
}

fn transfer_id() -> TransferId {
    TransferId::parse("tr-1").expect("valid transfer id")
}

// ---------------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------------

fn opened_in(currency: Currency, overdraft_limit: &str) -> AccountEvent {
    AccountEvent::AccountOpened(AccountOpened {
        owner: owner(),
        kind: AccountKind::Checking,
        currency,
        overdraft_limit: limit(overdraft_limit),
    })
}

/// A USD checking account without overdraft.
fn opened() -> AccountEvent {
    opened_in(usd(), "0.00")
}

fn deposited(amount_text: &str, balance_after: &str) -> AccountEvent {
    AccountEvent::MoneyDeposited(MoneyDeposited {
        amount: amount(amount_text),
        balance_after: balance(balance_after),
        description: None,
    })
}

fn withdrawn(amount_text: &str, balance_after: &str) -> AccountEvent {
    AccountEvent::MoneyWithdrawn(MoneyWithdrawn {
        amount: amount(amount_text),
        balance_after: balance(balance_after),
        description: None,
    })
}

fn frozen() -> AccountEvent {
    AccountEvent::AccountFrozen(AccountFrozen { reason: reason() })
}

fn unfrozen() -> AccountEvent {
    AccountEvent::AccountUnfrozen(AccountUnfrozen {})
}

fn closed() -> AccountEvent {
    AccountEvent::AccountClosed(AccountClosed {})
}

// ---------------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------------

fn open_in(currency: Currency, overdraft_limit: &str) -> AccountCommand {
    AccountCommand::Open {
        owner: owner(),
        kind: AccountKind::Checking,
        currency,
        overdraft_limit: limit(overdraft_limit),
    }
}

fn deposit(amount_text: &str) -> AccountCommand {
    AccountCommand::Deposit {
        amount: amount(amount_text),
        description: None,
    }
}

fn withdraw(amount_text: &str) -> AccountCommand {
    AccountCommand::Withdraw {
        amount: amount(amount_text),
        description: None,
    }
}

fn freeze() -> AccountCommand {
    AccountCommand::Freeze { reason: reason() }
}

fn transfer(source: &str, target: &str, amount_text: &str) -> TransferCommand {
    TransferCommand {
        transfer_id: transfer_id(),
        source: id(source),
        target: id(target),
        amount: amount(amount_text),
        description: Some(note("rent")),
    }
}

// ---------------------------------------------------------------------------------------------------
// Given / when / then
// ---------------------------------------------------------------------------------------------------

/// The state of `ACCOUNT` after `events`, folded with `Account::replay`.
fn given(events: &[AccountEvent]) -> Option<Account> {
    given_account(ACCOUNT, events)
}

fn given_account(account: &str, events: &[AccountEvent]) -> Option<Account> {
    Account::replay(&id(account), events).expect("a valid history")
}

/// Decides `command` for `ACCOUNT` in `state`.
fn when(
    state: Option<&Account>,
    command: &AccountCommand,
) -> Result<Vec<AccountEvent>, DomainError> {
    decide(&account_id(), state, command)
}

fn when_transfer(
    source: Option<&Account>,
    target: Option<&Account>,
    command: &TransferCommand,
) -> Result<TransferDecision, DomainError> {
    decide_transfer(source, target, command)
}

/// `Decimal` equality ignores the scale (`12.5 == 12.50`), so the written form is compared as well: the
/// `Debug` output of the money types shows every decimal place.
fn assert_exactly<T: PartialEq + std::fmt::Debug>(actual: &T, expected: &T) {
    assert_eq!(actual, expected);
    assert_eq!(format!("{actual:?}"), format!("{expected:?}"));
}

fn then_expect_events(result: Result<Vec<AccountEvent>, DomainError>, expected: &[AccountEvent]) {
    let events = result.expect("the command is accepted");
    assert_exactly(&events.as_slice(), &expected);
}

fn then_expect_error<T: std::fmt::Debug>(result: Result<T, DomainError>, expected: &DomainError) {
    let error = result.expect_err("the command is rejected");
    assert_exactly(&error, expected);
}

fn then_expect_transfer(
    result: Result<TransferDecision, DomainError>,
    debit: AccountEvent,
    credit: AccountEvent,
) {
    let decision = result.expect("the transfer is accepted");
    assert_exactly(&decision, &TransferDecision { debit, credit });
}

fn not_found(account: &str) -> DomainError {
    DomainError::AccountNotFound {
        account_id: id(account),
    }
}

fn frozen_error(account: &str) -> DomainError {
    DomainError::AccountFrozen {
        account_id: id(account),
    }
}

fn closed_error(account: &str) -> DomainError {
    DomainError::AccountClosed {
        account_id: id(account),
    }
}

// ---------------------------------------------------------------------------------------------------
// Open
// ---------------------------------------------------------------------------------------------------

#[test]
fn open_without_overdraft_limit() {
    then_expect_events(
        when(None, &open_in(usd(), "0")),
        &[opened_in(usd(), "0.00")],
    );
}

#[test]
fn open_with_overdraft_limit_rescales_it_to_the_currency() {
    then_expect_events(
        when(None, &open_in(usd(), "250.5")),
        &[opened_in(usd(), "250.50")],
    );
    then_expect_events(
        when(None, &open_in(usd(), "100.000")),
        &[opened_in(usd(), "100.00")],
    );
}

#[test]
fn open_savings_account_keeps_its_kind() {
    let command = AccountCommand::Open {
        owner: owner(),
        kind: AccountKind::Savings,
        currency: currency("EUR"),
        overdraft_limit: OverdraftLimit::NONE,
    };
    then_expect_events(
        when(None, &command),
        &[AccountEvent::AccountOpened(AccountOpened {
            owner: owner(),
            kind: AccountKind::Savings,
            currency: currency("EUR"),
            overdraft_limit: limit("0.00"),
        })],
    );
}

#[test]
fn open_an_existing_account_is_rejected() {
    let state = given(&[opened()]);
    then_expect_error(
        when(state.as_ref(), &open_in(usd(), "0")),
        &DomainError::AccountAlreadyExists {
            account_id: account_id(),
        },
    );
}

#[test]
fn open_a_closed_account_again_is_rejected() {
    let state = given(&[opened(), closed()]);
    then_expect_error(
        when(state.as_ref(), &open_in(usd(), "0")),
        &DomainError::AccountAlreadyExists {
            account_id: account_id(),
        },
    );
}

#[test]
fn open_with_overdraft_limit_finer_than_the_currency_is_rejected() {
    then_expect_error(
        when(None, &open_in(usd(), "1.001")),
        &DomainError::InvalidOverdraftLimit {
            limit: "1.001".to_owned(),
            currency: usd(),
            minor_units: 2,
        },
    );
}

#[test]
fn open_jpy_account_has_zero_decimals() {
    let jpy = currency("JPY");
    then_expect_events(when(None, &open_in(jpy, "1000")), &[opened_in(jpy, "1000")]);
    // Trailing zeros lose nothing: they are dropped to the yen's zero decimal places.
    then_expect_events(
        when(None, &open_in(jpy, "1000.00")),
        &[opened_in(jpy, "1000")],
    );
    let state = given(&[opened_in(jpy, "1000")]).expect("opened");
    assert_exactly(&state.balance(), &balance("0"));
}

#[test]
fn open_jpy_account_with_fractional_overdraft_limit_is_rejected() {
    then_expect_error(
        when(None, &open_in(currency("JPY"), "0.5")),
        &DomainError::InvalidOverdraftLimit {
            limit: "0.5".to_owned(),
            currency: currency("JPY"),
            minor_units: 0,
        },
    );
}

#[test]
fn open_kwd_account_has_three_decimals() {
    let kwd = currency("KWD");
    then_expect_events(when(None, &open_in(kwd, "1.5")), &[opened_in(kwd, "1.500")]);
    then_expect_error(
        when(None, &open_in(kwd, "1.0005")),
        &DomainError::InvalidOverdraftLimit {
            limit: "1.0005".to_owned(),
            currency: kwd,
            minor_units: 3,
        },
    );
}

// ---------------------------------------------------------------------------------------------------
// Deposit
// ---------------------------------------------------------------------------------------------------

#[test]
fn deposit_credits_the_balance() {
    let state = given(&[opened(), deposited("10.00", "10.00")]);
    then_expect_events(
        when(state.as_ref(), &deposit("12.5")),
        &[deposited("12.50", "22.50")],
    );
}

#[test]
fn deposit_keeps_its_description() {
    let state = given(&[opened()]);
    let command = AccountCommand::Deposit {
        amount: amount("7"),
        description: Some(note("salary")),
    };
    then_expect_events(
        when(state.as_ref(), &command),
        &[AccountEvent::MoneyDeposited(MoneyDeposited {
            amount: amount("7.00"),
            balance_after: balance("7.00"),
            description: Some(note("salary")),
        })],
    );
}

#[test]
fn deposit_with_trailing_zeros_beyond_the_currency_is_accepted() {
    let state = given(&[opened()]);
    then_expect_events(
        when(state.as_ref(), &deposit("12.500")),
        &[deposited("12.50", "12.50")],
    );
}

#[test]
fn deposit_onto_an_overdrawn_balance_can_bring_it_back_to_zero() {
    let state = given(&[opened_in(usd(), "100.00"), withdrawn("5.00", "-5.00")]);
    then_expect_events(
        when(state.as_ref(), &deposit("5")),
        &[deposited("5.00", "0.00")],
    );
}

#[test]
fn deposit_to_a_missing_account_is_rejected() {
    then_expect_error(when(None, &deposit("10")), &not_found(ACCOUNT));
}

#[test]
fn deposit_to_a_frozen_account_is_rejected() {
    let state = given(&[opened(), frozen()]);
    then_expect_error(when(state.as_ref(), &deposit("10")), &frozen_error(ACCOUNT));
}

#[test]
fn deposit_to_a_closed_account_is_rejected() {
    let state = given(&[opened(), closed()]);
    then_expect_error(when(state.as_ref(), &deposit("10")), &closed_error(ACCOUNT));
}

#[test]
fn deposit_with_more_decimals_than_the_currency_is_rejected() {
    let state = given(&[opened()]);
    then_expect_error(
        when(state.as_ref(), &deposit("1.001")),
        &DomainError::InvalidAmount {
            amount: amount("1.001"),
            currency: usd(),
            minor_units: 2,
        },
    );
}

#[test]
fn deposit_in_yen_takes_whole_yen_only() {
    let jpy = currency("JPY");
    let state = given(&[opened_in(jpy, "0")]);
    then_expect_events(
        when(state.as_ref(), &deposit("150")),
        &[deposited("150", "150")],
    );
    then_expect_error(
        when(state.as_ref(), &deposit("1.5")),
        &DomainError::InvalidAmount {
            amount: amount("1.5"),
            currency: jpy,
            minor_units: 0,
        },
    );
}

// ---------------------------------------------------------------------------------------------------
// Withdraw
// ---------------------------------------------------------------------------------------------------

#[test]
fn withdraw_debits_the_balance() {
    let state = given(&[opened(), deposited("100.00", "100.00")]);
    then_expect_events(
        when(state.as_ref(), &withdraw("30.5")),
        &[withdrawn("30.50", "69.50")],
    );
}

#[test]
fn withdraw_keeps_its_description() {
    let state = given(&[opened(), deposited("100.00", "100.00")]);
    let command = AccountCommand::Withdraw {
        amount: amount("1"),
        description: Some(note("coffee")),
    };
    then_expect_events(
        when(state.as_ref(), &command),
        &[AccountEvent::MoneyWithdrawn(MoneyWithdrawn {
            amount: amount("1.00"),
            balance_after: balance("99.00"),
            description: Some(note("coffee")),
        })],
    );
}

#[test]
fn withdraw_the_whole_balance_leaves_zero() {
    let state = given(&[opened(), deposited("20.00", "20.00")]);
    then_expect_events(
        when(state.as_ref(), &withdraw("20")),
        &[withdrawn("20.00", "0.00")],
    );
}

#[test]
fn withdraw_into_the_overdraft_up_to_exactly_the_limit() {
    let state = given(&[opened_in(usd(), "100.00"), deposited("20.00", "20.00")]);
    then_expect_events(
        when(state.as_ref(), &withdraw("120")),
        &[withdrawn("120.00", "-100.00")],
    );
}

#[test]
fn withdraw_one_cent_beyond_the_overdraft_limit_is_rejected() {
    let state = given(&[opened_in(usd(), "100.00"), deposited("20.00", "20.00")]);
    then_expect_error(
        when(state.as_ref(), &withdraw("120.01")),
        &DomainError::InsufficientFunds {
            account_id: account_id(),
            available: balance("120.00"),
            requested: amount("120.01"),
        },
    );
}

#[test]
fn withdraw_more_than_the_balance_without_overdraft_is_rejected() {
    let state = given(&[opened(), deposited("50.00", "50.00")]);
    then_expect_error(
        when(state.as_ref(), &withdraw("50.01")),
        &DomainError::InsufficientFunds {
            account_id: account_id(),
            available: balance("50.00"),
            requested: amount("50.01"),
        },
    );
}

#[test]
fn withdraw_from_an_overdrawn_account_counts_only_the_remaining_overdraft() {
    let state = given(&[opened_in(usd(), "100.00"), withdrawn("30.00", "-30.00")]);
    then_expect_error(
        when(state.as_ref(), &withdraw("70.5")),
        &DomainError::InsufficientFunds {
            account_id: account_id(),
            available: balance("70.00"),
            requested: amount("70.50"),
        },
    );
    then_expect_events(
        when(state.as_ref(), &withdraw("70")),
        &[withdrawn("70.00", "-100.00")],
    );
}

#[test]
fn withdraw_from_a_frozen_account_is_rejected() {
    let state = given(&[opened(), deposited("50.00", "50.00"), frozen()]);
    then_expect_error(
        when(state.as_ref(), &withdraw("10")),
        &frozen_error(ACCOUNT),
    );
}

#[test]
fn withdraw_from_a_closed_account_is_rejected() {
    let state = given(&[opened(), closed()]);
    then_expect_error(
        when(state.as_ref(), &withdraw("10")),
        &closed_error(ACCOUNT),
    );
}

#[test]
fn withdraw_from_a_missing_account_is_rejected() {
    then_expect_error(when(None, &withdraw("10")), &not_found(ACCOUNT));
}

#[test]
fn withdraw_with_more_decimals_than_the_currency_is_rejected() {
    let state = given(&[opened(), deposited("50.00", "50.00")]);
    then_expect_error(
        when(state.as_ref(), &withdraw("0.005")),
        &DomainError::InvalidAmount {
            amount: amount("0.005"),
            currency: usd(),
            minor_units: 2,
        },
    );
}

// ---------------------------------------------------------------------------------------------------
// Freeze / unfreeze
// ---------------------------------------------------------------------------------------------------

#[test]
fn freeze_an_open_account() {
    let state = given(&[opened()]);
    then_expect_events(when(state.as_ref(), &freeze()), &[frozen()]);
}

#[test]
fn freeze_a_frozen_account_is_rejected() {
    let state = given(&[opened(), frozen()]);
    then_expect_error(
        when(state.as_ref(), &freeze()),
        &DomainError::AccountAlreadyFrozen {
            account_id: account_id(),
        },
    );
}

#[test]
fn freeze_a_closed_account_is_rejected() {
    let state = given(&[opened(), closed()]);
    then_expect_error(when(state.as_ref(), &freeze()), &closed_error(ACCOUNT));
}

#[test]
fn freeze_a_missing_account_is_rejected() {
    then_expect_error(when(None, &freeze()), &not_found(ACCOUNT));
}

#[test]
fn unfreeze_a_frozen_account() {
    let state = given(&[opened(), frozen()]);
    then_expect_events(
        when(state.as_ref(), &AccountCommand::Unfreeze),
        &[unfrozen()],
    );
}

#[test]
fn unfreeze_an_account_that_is_not_frozen_is_rejected() {
    let state = given(&[opened(), frozen(), unfrozen()]);
    then_expect_error(
        when(state.as_ref(), &AccountCommand::Unfreeze),
        &DomainError::AccountNotFrozen {
            account_id: account_id(),
        },
    );
}

#[test]
fn unfreeze_a_closed_account_is_rejected() {
    let state = given(&[opened(), closed()]);
    then_expect_error(
        when(state.as_ref(), &AccountCommand::Unfreeze),
        &closed_error(ACCOUNT),
    );
}

#[test]
fn unfreeze_a_missing_account_is_rejected() {
    then_expect_error(when(None, &AccountCommand::Unfreeze), &not_found(ACCOUNT));
}

#[test]
fn an_unfrozen_account_moves_money_again() {
    let state = given(&[opened(), frozen(), unfrozen()]);
    then_expect_events(
        when(state.as_ref(), &deposit("1")),
        &[deposited("1.00", "1.00")],
    );
}

// ---------------------------------------------------------------------------------------------------
// Close
// ---------------------------------------------------------------------------------------------------

#[test]
fn close_at_a_zero_balance() {
    then_expect_events(
        when(given(&[opened()]).as_ref(), &AccountCommand::Close),
        &[closed()],
    );
    let emptied = given(&[
        opened(),
        deposited("10.00", "10.00"),
        withdrawn("10.00", "0.00"),
    ]);
    then_expect_events(when(emptied.as_ref(), &AccountCommand::Close), &[closed()]);
}

#[test]
fn close_with_a_positive_balance_is_rejected() {
    let state = given(&[opened(), deposited("10.00", "10.00")]);
    then_expect_error(
        when(state.as_ref(), &AccountCommand::Close),
        &DomainError::NonZeroBalance {
            account_id: account_id(),
            balance: balance("10.00"),
        },
    );
}

#[test]
fn close_with_a_negative_balance_is_rejected() {
    let state = given(&[opened_in(usd(), "50.00"), withdrawn("0.01", "-0.01")]);
    then_expect_error(
        when(state.as_ref(), &AccountCommand::Close),
        &DomainError::NonZeroBalance {
            account_id: account_id(),
            balance: balance("-0.01"),
        },
    );
}

#[test]
fn close_a_frozen_account_is_rejected() {
    let state = given(&[opened(), frozen()]);
    then_expect_error(
        when(state.as_ref(), &AccountCommand::Close),
        &frozen_error(ACCOUNT),
    );
}

#[test]
fn close_a_closed_account_is_rejected() {
    let state = given(&[opened(), closed()]);
    then_expect_error(
        when(state.as_ref(), &AccountCommand::Close),
        &closed_error(ACCOUNT),
    );
}

#[test]
fn close_a_missing_account_is_rejected() {
    then_expect_error(when(None, &AccountCommand::Close), &not_found(ACCOUNT));
}

// ---------------------------------------------------------------------------------------------------
// Transfer
// ---------------------------------------------------------------------------------------------------

fn debited(amount_text: &str, balance_after: &str) -> AccountEvent {
    AccountEvent::TransferDebited(TransferDebited {
        transfer_id: transfer_id(),
        amount: amount(amount_text),
        balance_after: balance(balance_after),
        target_account_id: id(OTHER),
        description: Some(note("rent")),
    })
}

fn credited(amount_text: &str, balance_after: &str) -> AccountEvent {
    AccountEvent::TransferCredited(TransferCredited {
        transfer_id: transfer_id(),
        amount: amount(amount_text),
        balance_after: balance(balance_after),
        source_account_id: id(ACCOUNT),
        description: Some(note("rent")),
    })
}

/// `ACCOUNT` with 100.00 and `OTHER` with 5.00, both USD without overdraft.
fn funded_pair() -> (Option<Account>, Option<Account>) {
    (
        given(&[opened(), deposited("100.00", "100.00")]),
        given_account(OTHER, &[opened(), deposited("5.00", "5.00")]),
    )
}

#[test]
fn transfer_debits_the_source_and_credits_the_target() {
    let (source, target) = funded_pair();
    then_expect_transfer(
        when_transfer(
            source.as_ref(),
            target.as_ref(),
            &transfer(ACCOUNT, OTHER, "12.5"),
        ),
        debited("12.50", "87.50"),
        credited("12.50", "17.50"),
    );
}

#[test]
fn transfer_of_the_whole_balance_leaves_the_source_at_zero() {
    let (source, target) = funded_pair();
    then_expect_transfer(
        when_transfer(
            source.as_ref(),
            target.as_ref(),
            &transfer(ACCOUNT, OTHER, "100"),
        ),
        debited("100.00", "0.00"),
        credited("100.00", "105.00"),
    );
}

#[test]
fn transfer_to_the_same_account_is_rejected() {
    let (source, _) = funded_pair();
    let expected = DomainError::SameAccountTransfer {
        account_id: account_id(),
    };
    then_expect_error(
        when_transfer(
            source.as_ref(),
            source.as_ref(),
            &transfer(ACCOUNT, ACCOUNT, "1"),
        ),
        &expected,
    );
    // Checked before existence: the request itself is wrong.
    then_expect_error(
        when_transfer(None, None, &transfer(ACCOUNT, ACCOUNT, "1")),
        &expected,
    );
}

#[test]
fn transfer_from_a_missing_source_is_rejected() {
    let (_, target) = funded_pair();
    then_expect_error(
        when_transfer(None, target.as_ref(), &transfer(ACCOUNT, OTHER, "1")),
        &not_found(ACCOUNT),
    );
    then_expect_error(
        when_transfer(None, None, &transfer(ACCOUNT, OTHER, "1")),
        &not_found(ACCOUNT),
    );
}

#[test]
fn transfer_to_a_missing_target_is_rejected() {
    let (source, _) = funded_pair();
    then_expect_error(
        when_transfer(source.as_ref(), None, &transfer(ACCOUNT, OTHER, "1")),
        &not_found(OTHER),
    );
}

#[test]
fn transfer_from_a_frozen_source_is_rejected() {
    let source = given(&[opened(), deposited("100.00", "100.00"), frozen()]);
    let (_, target) = funded_pair();
    then_expect_error(
        when_transfer(
            source.as_ref(),
            target.as_ref(),
            &transfer(ACCOUNT, OTHER, "1"),
        ),
        &frozen_error(ACCOUNT),
    );
}

#[test]
fn transfer_to_a_frozen_target_is_rejected() {
    let (source, _) = funded_pair();
    let target = given_account(OTHER, &[opened(), frozen()]);
    then_expect_error(
        when_transfer(
            source.as_ref(),
            target.as_ref(),
            &transfer(ACCOUNT, OTHER, "1"),
        ),
        &frozen_error(OTHER),
    );
}

#[test]
fn transfer_from_a_closed_source_is_rejected() {
    let source = given(&[opened(), closed()]);
    let (_, target) = funded_pair();
    then_expect_error(
        when_transfer(
            source.as_ref(),
            target.as_ref(),
            &transfer(ACCOUNT, OTHER, "1"),
        ),
        &closed_error(ACCOUNT),
    );
}

#[test]
fn transfer_to_a_closed_target_is_rejected() {
    let (source, _) = funded_pair();
    let target = given_account(OTHER, &[opened(), closed()]);
    then_expect_error(
        when_transfer(
            source.as_ref(),
            target.as_ref(),
            &transfer(ACCOUNT, OTHER, "1"),
        ),
        &closed_error(OTHER),
    );
}

#[test]
fn transfer_between_currencies_is_rejected() {
    let (source, _) = funded_pair();
    let target = given_account(OTHER, &[opened_in(currency("EUR"), "0.00")]);
    then_expect_error(
        when_transfer(
            source.as_ref(),
            target.as_ref(),
            &transfer(ACCOUNT, OTHER, "1"),
        ),
        &DomainError::CurrencyMismatch {
            source_currency: usd(),
            target_currency: currency("EUR"),
        },
    );
}

#[test]
fn transfer_beyond_the_source_funds_is_rejected() {
    let (source, target) = funded_pair();
    then_expect_error(
        when_transfer(
            source.as_ref(),
            target.as_ref(),
            &transfer(ACCOUNT, OTHER, "100.01"),
        ),
        &DomainError::InsufficientFunds {
            account_id: account_id(),
            available: balance("100.00"),
            requested: amount("100.01"),
        },
    );
}

#[test]
fn transfer_may_use_the_source_overdraft_up_to_its_limit() {
    let source = given(&[opened_in(usd(), "50.00"), deposited("10.00", "10.00")]);
    let (_, target) = funded_pair();
    then_expect_transfer(
        when_transfer(
            source.as_ref(),
            target.as_ref(),
            &transfer(ACCOUNT, OTHER, "60"),
        ),
        debited("60.00", "-50.00"),
        credited("60.00", "65.00"),
    );
    then_expect_error(
        when_transfer(
            source.as_ref(),
            target.as_ref(),
            &transfer(ACCOUNT, OTHER, "60.01"),
        ),
        &DomainError::InsufficientFunds {
            account_id: account_id(),
            available: balance("60.00"),
            requested: amount("60.01"),
        },
    );
}

#[test]
fn transfer_with_more_decimals_than_the_currency_is_rejected() {
    let (source, target) = funded_pair();
    then_expect_error(
        when_transfer(
            source.as_ref(),
            target.as_ref(),
            &transfer(ACCOUNT, OTHER, "0.001"),
        ),
        &DomainError::InvalidAmount {
            amount: amount("0.001"),
            currency: usd(),
            minor_units: 2,
        },
    );
}

#[test]
fn transfer_events_replay_on_both_streams() {
    let source_history = [opened(), deposited("100.00", "100.00")];
    let target_history = [opened(), deposited("5.00", "5.00")];
    let decision = when_transfer(
        given(&source_history).as_ref(),
        given_account(OTHER, &target_history).as_ref(),
        &transfer(ACCOUNT, OTHER, "40"),
    )
    .expect("accepted");
    let source = given(&[source_history.as_slice(), &[decision.debit]].concat()).expect("opened");
    let target = given_account(
        OTHER,
        &[target_history.as_slice(), &[decision.credit]].concat(),
    )
    .expect("opened");
    assert_exactly(&source.balance(), &balance("60.00"));
    assert_exactly(&target.balance(), &balance("45.00"));
    assert_eq!((source.version(), target.version()), (3, 3));
}

// ---------------------------------------------------------------------------------------------------
// apply / replay
// ---------------------------------------------------------------------------------------------------

#[test]
fn replay_of_an_empty_stream_is_no_account() {
    assert_eq!(Account::replay(&account_id(), &[]), Ok(None));
}

#[test]
fn replay_folds_the_state_the_events_describe() {
    let state = given(&[
        opened_in(usd(), "25.00"),
        deposited("10.00", "10.00"),
        withdrawn("4.50", "5.50"),
        frozen(),
    ])
    .expect("opened");
    assert_eq!(state.id(), &account_id());
    assert_eq!(state.owner(), &owner());
    assert_eq!(state.kind(), AccountKind::Checking);
    assert_eq!(state.currency(), usd());
    assert_eq!(state.status(), AccountStatus::Frozen);
    assert_exactly(&state.balance(), &balance("5.50"));
    assert_exactly(&state.overdraft_limit(), &limit("25.00"));
    assert_exactly(&state.available(), &balance("30.50"));
    assert_eq!(state.version(), 4);
}

#[test]
fn a_fresh_account_has_a_zero_balance_in_the_currency_scale() {
    let state = given(&[opened()]).expect("opened");
    assert_exactly(&state.balance(), &balance("0.00"));
    assert_eq!(state.status(), AccountStatus::Open);
}

#[test]
fn version_equals_the_number_of_events() {
    let history = [
        opened(),
        deposited("10.00", "10.00"),
        frozen(),
        unfrozen(),
        withdrawn("10.00", "0.00"),
        closed(),
    ];
    for length in 1..=history.len() {
        let state = given(&history[..length]).expect("opened");
        assert_eq!(state.version(), u64::try_from(length).expect("small"));
    }
    assert_eq!(
        given(&history).map(|state| state.status()),
        Some(AccountStatus::Closed)
    );
}

#[test]
fn apply_evolves_one_event_at_a_time() {
    let first = apply(&account_id(), None, &opened()).expect("opened");
    assert_eq!(first.version(), 1);
    let second = apply(&account_id(), Some(first), &deposited("3.00", "3.00")).expect("deposit");
    assert_eq!(second.version(), 2);
    assert_exactly(&second.balance(), &balance("3.00"));
    assert_eq!(Some(second), given(&[opened(), deposited("3.00", "3.00")]));
}

#[test]
fn decided_events_apply_to_the_state_they_were_decided_on() {
    let history = vec![opened_in(usd(), "10.00")];
    let commands = [
        deposit("5"),
        withdraw("15"),
        freeze(),
        AccountCommand::Unfreeze,
        deposit("10"),
        AccountCommand::Close,
    ];
    let mut history = history;
    let mut state = given(&history);
    for command in &commands {
        for event in when(state.as_ref(), command).expect("accepted") {
            state = Some(apply(&account_id(), state, &event).expect("applies"));
            history.push(event);
        }
    }
    assert_eq!(state, given(&history));
    let state = state.expect("opened");
    assert_eq!(state.status(), AccountStatus::Closed);
    assert_eq!(state.version(), 7);
}

#[test]
fn a_history_must_start_with_account_opened() {
    assert_eq!(
        Account::replay(&account_id(), &[deposited("10.00", "10.00")]),
        Err(HistoryError::NotOpenedFirst {
            event_type: "MoneyDeposited"
        })
    );
    assert_eq!(
        apply(&account_id(), None, &frozen()),
        Err(HistoryError::NotOpenedFirst {
            event_type: "AccountFrozen"
        })
    );
}

#[test]
fn a_history_cannot_open_an_account_twice() {
    assert_eq!(
        Account::replay(
            &account_id(),
            &[opened(), deposited("10.00", "10.00"), opened()]
        ),
        Err(HistoryError::OpenedTwice { version: 3 })
    );
}

#[test]
fn a_deposit_with_a_wrong_balance_after_is_refused() {
    let error = Account::replay(
        &account_id(),
        &[
            opened(),
            deposited("10.00", "10.00"),
            deposited("5.00", "50.00"),
        ],
    )
    .expect_err("inconsistent history");
    assert_exactly(
        &error,
        &HistoryError::BalanceMismatch {
            event_type: "MoneyDeposited",
            version: 3,
            recorded: balance("50.00"),
            computed: balance("15.00"),
        },
    );
}

#[test]
fn a_withdrawal_with_a_wrong_balance_after_is_refused() {
    let error = Account::replay(
        &account_id(),
        &[
            opened(),
            deposited("10.00", "10.00"),
            withdrawn("4.00", "4.00"),
        ],
    )
    .expect_err("inconsistent history");
    assert_exactly(
        &error,
        &HistoryError::BalanceMismatch {
            event_type: "MoneyWithdrawn",
            version: 3,
            recorded: balance("4.00"),
            computed: balance("6.00"),
        },
    );
}

#[test]
fn transfer_events_with_a_wrong_balance_after_are_refused() {
    assert_eq!(
        Account::replay(&account_id(), &[opened(), debited("1.00", "1.00")]),
        Err(HistoryError::BalanceMismatch {
            event_type: "TransferDebited",
            version: 2,
            recorded: balance("1.00"),
            computed: balance("-1.00"),
        })
    );
    assert_eq!(
        Account::replay(&account_id(), &[opened(), credited("1.00", "-1.00")]),
        Err(HistoryError::BalanceMismatch {
            event_type: "TransferCredited",
            version: 2,
            recorded: balance("-1.00"),
            computed: balance("1.00"),
        })
    );
}

fn assert_impossible(events: &[AccountEvent], expected_rule: &str) {
    match Account::replay(&account_id(), events) {
        Err(HistoryError::ImpossibleEvent { rule, version, .. }) => {
            assert_eq!(rule, expected_rule);
            assert_eq!(version, events.len() as u64);
        }
        other => panic!("expected ImpossibleEvent({expected_rule}), got {other:?}"),
    }
}

#[test]
fn histories_that_break_the_aggregates_rules_are_refused() {
    assert_impossible(
        &[opened(), closed(), deposited("5.00", "5.00")],
        "money moves only on an open account",
    );
    assert_impossible(
        &[opened(), frozen(), withdrawn("1.00", "-1.00")],
        "money moves only on an open account",
    );
    assert_impossible(
        &[opened(), withdrawn("1000.00", "-1000.00")],
        "a debit never passes the overdraft limit",
    );
    assert_impossible(
        &[opened(), deposited("1.005", "1.005")],
        "money is written in the currency's minor units",
    );
    assert_impossible(
        &[opened(), deposited("12.5", "12.5")],
        "money is written in the currency's minor units",
    );
    assert_impossible(&[opened(), unfrozen()], "only a frozen account is unfrozen");
    assert_impossible(
        &[opened(), frozen(), frozen()],
        "only an open account is frozen",
    );
    assert_impossible(
        &[opened(), deposited("1.00", "1.00"), closed()],
        "only an open account at zero balance is closed",
    );
}

#[test]
fn a_snapshot_restores_the_state_it_was_taken_from() {
    let history = [opened(), deposited("10.00", "10.00"), frozen()];
    let account = given(&history).unwrap();
    let restored = Account::restore(&account_id(), account.snapshot()).unwrap();
    assert_eq!(restored, account);
    let continued = Account::replay_onto(
        &account_id(),
        Some(restored),
        &[unfrozen(), deposited("1.00", "11.00")],
    )
    .unwrap()
    .unwrap();
    let full = given(&[
        opened(),
        deposited("10.00", "10.00"),
        frozen(),
        unfrozen(),
        deposited("1.00", "11.00"),
    ])
    .unwrap();
    assert_eq!(continued, full);
    assert_eq!(continued.version(), 5);
}

#[test]
fn an_impossible_snapshot_is_refused() {
    let mut snapshot = given(&[opened(), deposited("10.00", "10.00")])
        .unwrap()
        .snapshot();
    snapshot.balance = balance("-1.00");
    assert!(matches!(
        Account::restore(&account_id(), snapshot.clone()),
        Err(HistoryError::ImpossibleEvent {
            rule: "a balance never passes the overdraft limit",
            ..
        })
    ));
    snapshot.balance = balance("1.5");
    assert!(Account::restore(&account_id(), snapshot.clone()).is_err());
    snapshot.balance = balance("1.50");
    snapshot.version = 0;
    assert!(Account::restore(&account_id(), snapshot).is_err());
}
