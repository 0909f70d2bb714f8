//! Query strings (`GET`), parsed into typed queries with every invalid parameter named, and the
//! response bodies built from the read model's views.
//!
//! Parameters arrive as text and are parsed here rather than by serde, so that `limit=abc` is a
//! `validation_failed` naming `limit`, not an anonymous deserializer message.

use chrono::{DateTime, Days, NaiveDate, Utc};
use ledger_application::ports::{AccountView, DailyBalanceView, TransactionView};
use ledger_application::query_service::{DAILY_BALANCE_DAYS_MAX, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX};
use ledger_application::{BalanceAsOf, TransactionPage};
use ledger_domain::AccountId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::fields::Fields;
use super::{AccountKindName, AccountStatusName, EntryTypeName, timestamp};
use crate::problem::ApiError;

/// The largest sequence a client may name: the stores keep sequences in signed 64-bit columns.
pub const SEQUENCE_MAX: u64 = i64::MAX.unsigned_abs();

/// How many days `daily-balances` covers when the client names no start.
pub const DAILY_BALANCE_DAYS_DEFAULT: u64 = 30;

fn parse_sequence(text: &str) -> Result<u64, String> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    text.parse::<u64>()
        .ok()
        .filter(|&sequence| digits_only && sequence <= SEQUENCE_MAX)
        .ok_or_else(|| format!("must be a whole number from 0 to {SEQUENCE_MAX}"))
}

/// `min_sequence` as the query service takes it: 0 asks for nothing, so it waits for nothing.
fn parse_min_sequence(fields: &mut Fields, text: Option<&str>) -> Option<u64> {
    fields
        .parse_optional("min_sequence", text, parse_sequence)
        .filter(|&sequence| sequence > 0)
}

/// `?min_sequence=` of `GET /v1/accounts/{id}`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccountParams {
    /// Wait (a few seconds at most) until the read model has applied this sequence of the account;
    /// `503 read_model_behind` if it does not in time.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9_223_372_036_854_775_807_u64, example = 3)]
    pub min_sequence: Option<String>,
}

/// A parsed account query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountQuery {
    pub account_id: AccountId,
    pub min_sequence: Option<u64>,
}

impl AccountParams {
    pub fn try_into_domain(self, account_id: &str) -> Result<AccountQuery, ApiError> {
        let mut fields = Fields::default();
        let account_id = fields.parse("account_id", || AccountId::parse(account_id));
        let min_sequence = parse_min_sequence(&mut fields, self.min_sequence.as_deref());
        match account_id {
            Some(account_id) if fields.is_valid() => Ok(AccountQuery {
                account_id,
                min_sequence,
            }),
            _ => Err(fields.into_error()),
        }
    }
}

/// `?cursor=&limit=&min_sequence=` of `GET /v1/accounts/{id}/transactions`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransactionsParams {
    /// The `next_cursor` of the previous page, passed back as it came; leave out for the first
    /// page.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub cursor: Option<String>,
    /// Items per page, 1 to 200; 50 when left out.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<String>,
    /// Wait (bounded) until the read model has applied this sequence of the account.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub min_sequence: Option<String>,
}

/// A parsed transactions query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionsQuery {
    pub account_id: AccountId,
    pub after_sequence: u64,
    pub limit: usize,
    pub min_sequence: Option<u64>,
}

/// A cursor is the sequence of the last item of the page before. Clients treat it as opaque, which
/// leaves room to change its encoding.
fn encode_cursor(after_sequence: u64) -> String {
    after_sequence.to_string()
}

fn decode_cursor(text: &str) -> Result<u64, String> {
    parse_sequence(text).map_err(|_| "is not a cursor returned by this API".to_owned())
}

fn parse_limit(text: &str) -> Result<usize, String> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    text.parse::<usize>()
        .ok()
        .filter(|&limit| digits_only && (1..=PAGE_SIZE_MAX).contains(&limit))
        .ok_or_else(|| format!("must be a whole number from 1 to {PAGE_SIZE_MAX}"))
}

impl TransactionsParams {
    pub fn try_into_domain(self, account_id: &str) -> Result<TransactionsQuery, ApiError> {
        let mut fields = Fields::default();
        let account_id = fields.parse("account_id", || AccountId::parse(account_id));
        let after_sequence = fields.parse_optional("cursor", self.cursor.as_deref(), decode_cursor);
        let limit = fields.parse_optional("limit", self.limit.as_deref(), parse_limit);
        let min_sequence = parse_min_sequence(&mut fields, self.min_sequence.as_deref());
        match account_id {
            Some(account_id) if fields.is_valid() => Ok(TransactionsQuery {
                account_id,
                after_sequence: after_sequence.unwrap_or(0),
                limit: limit.unwrap_or(PAGE_SIZE_DEFAULT),
                min_sequence,
            }),
            _ => Err(fields.into_error()),
        }
    }
}

/// `?as_of=&min_sequence=` of `GET /v1/accounts/{id}/balance`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BalanceParams {
    /// An RFC 3339 instant (encode `+` as `%2B`); now when left out.
    #[param(value_type = Option<String>, format = DateTime, example = "2024-01-31T23:59:59Z")]
    pub as_of: Option<String>,
    /// Wait (bounded) until the read model has applied this sequence of the account.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub min_sequence: Option<String>,
}

/// A parsed balance-as-of query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceQuery {
    pub account_id: AccountId,
    pub as_of: DateTime<Utc>,
    pub min_sequence: Option<u64>,
}

fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|instant| instant.with_timezone(&Utc))
        .map_err(|_| {
            "must be an RFC 3339 instant such as 2024-01-31T23:59:59Z (encode `+` as %2B)"
                .to_owned()
        })
}

impl BalanceParams {
    /// `now` is the instant used when the client names none.
    pub fn try_into_domain(
        self,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<BalanceQuery, ApiError> {
        let mut fields = Fields::default();
        let account_id = fields.parse("account_id", || AccountId::parse(account_id));
        let as_of = fields.parse_optional("as_of", self.as_of.as_deref(), parse_instant);
        let min_sequence = parse_min_sequence(&mut fields, self.min_sequence.as_deref());
        match account_id {
            Some(account_id) if fields.is_valid() => Ok(BalanceQuery {
                account_id,
                as_of: as_of.unwrap_or(now),
                min_sequence,
            }),
            _ => Err(fields.into_error()),
        }
    }
}

/// `?from=&to=&min_sequence=` of `GET /v1/accounts/{id}/daily-balances`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DailyBalancesParams {
    /// First day (UTC), `YYYY-MM-DD`; 30 days before `to` when left out.
    #[param(value_type = Option<String>, format = Date, example = "2024-01-01")]
    pub from: Option<String>,
    /// Last day (UTC), `YYYY-MM-DD`, included; today when left out. At most 366 days after `from`.
    #[param(value_type = Option<String>, format = Date, example = "2024-01-31")]
    pub to: Option<String>,
    /// Wait (bounded) until the read model has applied this sequence of the account.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub min_sequence: Option<String>,
}

/// A parsed daily-balances query over the days `from..=to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyBalancesQuery {
    pub account_id: AccountId,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub min_sequence: Option<u64>,
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    // The length check refuses chrono's lenient forms (`+12024-01-01`, `2024-1-1`).
    let date = (text.len() == 10)
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten();
    date.ok_or_else(|| "must be a calendar date written YYYY-MM-DD".to_owned())
}

impl DailyBalancesParams {
    /// `today` (UTC) is the last day when the client names none.
    pub fn try_into_domain(
        self,
        account_id: &str,
        today: NaiveDate,
    ) -> Result<DailyBalancesQuery, ApiError> {
        let mut fields = Fields::default();
        let account_id = fields.parse("account_id", || AccountId::parse(account_id));
        let from = fields.parse_optional("from", self.from.as_deref(), parse_date);
        let to = fields.parse_optional("to", self.to.as_deref(), parse_date);
        let min_sequence = parse_min_sequence(&mut fields, self.min_sequence.as_deref());
        let Some(account_id) = account_id.filter(|_| fields.is_valid()) else {
            return Err(fields.into_error());
        };
        let to = to.unwrap_or(today);
        let from = from.or_else(|| to.checked_sub_days(Days::new(DAILY_BALANCE_DAYS_DEFAULT)));
        let Some(from) = from else {
            fields.reject("to", "is too early to count 30 days back from");
            return Err(fields.into_error());
        };
        if from > to {
            fields.reject("from", "must not be after `to`");
        } else {
            let days = to.signed_duration_since(from).num_days().saturating_add(1);
            let days_max = i64::try_from(DAILY_BALANCE_DAYS_MAX).unwrap_or(i64::MAX);
            if days > days_max {
                fields.reject(
                    "from",
                    format!(
                        "the range covers {days} days, more than the {DAILY_BALANCE_DAYS_MAX} one \
                         query may cover"
                    ),
                );
            }
        }
        if !fields.is_valid() {
            return Err(fields.into_error());
        }
        Ok(DailyBalancesQuery {
            account_id,
            from,
            to,
            min_sequence,
        })
    }
}

/// `200` to `GET /v1/accounts/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AccountResponse {
    pub account_id: String,
    pub owner: String,
    #[schema(value_type = AccountKindName)]
    pub kind: String,
    #[schema(example = "USD")]
    pub currency: String,
    #[schema(value_type = AccountStatusName)]
    pub status: String,
    /// A decimal string; negative only within the overdraft limit.
    #[schema(example = "112.50")]
    pub balance: String,
    #[schema(example = "0.00")]
    pub overdraft_limit: String,
    /// Present while the account is frozen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen_reason: Option<String>,
    /// The sequence of the last event the read model applied: how fresh this view is.
    pub last_sequence: u64,
    #[schema(format = DateTime)]
    pub opened_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<AccountView> for AccountResponse {
    fn from(view: AccountView) -> Self {
        Self {
            account_id: view.account_id.to_string(),
            owner: view.owner.to_string(),
            kind: view.kind.as_str().to_owned(),
            currency: view.currency.to_string(),
            status: view.status.as_str().to_owned(),
            balance: view.balance.to_string(),
            overdraft_limit: view.overdraft_limit.to_string(),
            frozen_reason: view.frozen_reason.map(String::from),
            last_sequence: view.last_sequence,
            opened_at: timestamp(view.opened_at),
            updated_at: timestamp(view.updated_at),
        }
    }
}

/// One money movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TransactionItem {
    pub sequence: u64,
    pub event_id: String,
    #[schema(value_type = EntryTypeName)]
    pub entry_type: String,
    /// Always positive; `entry_type` says which way it moved. A decimal string.
    #[schema(example = "12.50")]
    pub amount: String,
    #[schema(example = "112.50")]
    pub balance_after: String,
    /// Present on transfers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    /// Present on transfers: the other account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterparty_account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[schema(format = DateTime)]
    pub occurred_at: String,
}

impl From<TransactionView> for TransactionItem {
    fn from(view: TransactionView) -> Self {
        Self {
            sequence: view.sequence,
            event_id: view.event_id.to_string(),
            entry_type: view.entry_type.as_str().to_owned(),
            amount: view.amount.to_string(),
            balance_after: view.balance_after.to_string(),
            transfer_id: view.transfer_id.map(String::from),
            counterparty_account_id: view.counterparty_account_id.map(String::from),
            description: view.description.map(String::from),
            occurred_at: timestamp(view.occurred_at),
        }
    }
}

/// `200` to `GET /v1/accounts/{id}/transactions`: a page in sequence order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TransactionPageResponse {
    pub items: Vec<TransactionItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl From<TransactionPage> for TransactionPageResponse {
    fn from(page: TransactionPage) -> Self {
        Self {
            items: page.items.into_iter().map(TransactionItem::from).collect(),
            next_cursor: page.next_after_sequence.map(encode_cursor),
        }
    }
}

/// `200` to `GET /v1/accounts/{id}/balance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BalanceResponse {
    pub account_id: String,
    #[schema(format = DateTime)]
    pub as_of: String,
    #[schema(example = "112.50")]
    pub balance: String,
    /// The sequence of the event that set this balance.
    pub sequence: u64,
}

impl From<BalanceAsOf> for BalanceResponse {
    fn from(balance: BalanceAsOf) -> Self {
        Self {
            account_id: balance.account_id.to_string(),
            as_of: timestamp(balance.as_of),
            balance: balance.balance.to_string(),
            sequence: balance.sequence,
        }
    }
}

/// The closing balance of a day on which money moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DailyBalanceItem {
    #[schema(format = Date, example = "2024-01-31")]
    pub date: String,
    #[schema(example = "112.50")]
    pub closing_balance: String,
    /// The sequence of the day's last movement.
    pub last_sequence: u64,
}

impl From<DailyBalanceView> for DailyBalanceItem {
    fn from(view: DailyBalanceView) -> Self {
        Self {
            date: view.date.format("%Y-%m-%d").to_string(),
            closing_balance: view.closing_balance.to_string(),
            last_sequence: view.last_sequence,
        }
    }
}

/// `200` to `GET /v1/accounts/{id}/daily-balances`: days with movements, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DailyBalancesResponse {
    pub account_id: String,
    pub items: Vec<DailyBalanceItem>,
}

/// `200` to the health endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HealthResponse {
    #[schema(example = "ok")]
    pub status: String,
}

impl HealthResponse {
    pub fn ok() -> Self {
        Self {
            status: "ok".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(error: ApiError) -> Vec<String> {
        match error {
            ApiError::ValidationFailed { errors } => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected validation_failed, got {other:?}"),
        }
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("valid date")
    }

    #[test]
    fn transactions_default_to_the_first_page_of_the_default_size() {
        let query = TransactionsParams::default()
            .try_into_domain("acc-1")
            .expect("valid");
        assert_eq!(query.after_sequence, 0);
        assert_eq!(query.limit, PAGE_SIZE_DEFAULT);
        assert_eq!(query.min_sequence, None);
    }

    #[test]
    fn cursor_round_trips_and_bad_paging_is_refused() {
        let query = TransactionsParams {
            cursor: Some(encode_cursor(42)),
            limit: Some("200".to_owned()),
            min_sequence: Some("0".to_owned()),
        }
        .try_into_domain("acc-1")
        .expect("valid");
        assert_eq!((query.after_sequence, query.limit), (42, 200));
        assert_eq!(query.min_sequence, None, "0 waits for nothing");

        for (cursor, limit) in [
            ("x", "0"),
            ("-1", "201"),
            ("18446744073709551615", "+5"),
            ("", "1.5"),
        ] {
            let error = TransactionsParams {
                cursor: Some(cursor.to_owned()),
                limit: Some(limit.to_owned()),
                min_sequence: Some("9223372036854775808".to_owned()),
            }
            .try_into_domain("acc-1")
            .expect_err("invalid");
            assert_eq!(fields_of(error), ["cursor", "limit", "min_sequence"]);
        }
    }

    #[test]
    fn as_of_is_rfc3339_in_any_offset_and_defaults_to_now() {
        let now = Utc::now();
        let query = BalanceParams::default()
            .try_into_domain("acc-1", now)
            .expect("valid");
        assert_eq!(query.as_of, now);
        let query = BalanceParams {
            as_of: Some("2024-01-31T23:00:00-01:00".to_owned()),
            min_sequence: None,
        }
        .try_into_domain("acc-1", now)
        .expect("valid");
        assert_eq!(timestamp(query.as_of), "2024-02-01T00:00:00.000000Z");
        // Extremes of the calendar parse, or are refused, without panicking.
        for edge in [
            "0000-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59-23:59",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            if let Ok(query) = (BalanceParams {
                as_of: Some(edge.to_owned()),
                min_sequence: None,
            })
            .try_into_domain("acc-1", now)
            {
                assert!(!timestamp(query.as_of).is_empty());
            }
        }
        for bad in ["2024-01-31", "yesterday", "2024-01-31T23:00:00 01:00"] {
            let error = BalanceParams {
                as_of: Some(bad.to_owned()),
                min_sequence: None,
            }
            .try_into_domain("acc-1", now)
            .expect_err(bad);
            assert_eq!(fields_of(error), ["as_of"]);
        }
    }

    #[test]
    fn daily_balances_default_to_the_last_thirty_days() {
        let today = date("2024-03-01");
        let query = DailyBalancesParams::default()
            .try_into_domain("acc-1", today)
            .expect("valid");
        assert_eq!((query.from, query.to), (date("2024-01-31"), today));
    }

    #[test]
    fn daily_balance_ranges_are_ordered_and_bounded() {
        let today = date("2025-06-01");
        let range = |from: &str, to: &str| DailyBalancesParams {
            from: Some(from.to_owned()),
            to: Some(to.to_owned()),
            min_sequence: None,
        };
        let query = range("2024-01-01", "2024-12-31")
            .try_into_domain("acc-1", today)
            .expect("366 days is allowed");
        assert_eq!(query.from, date("2024-01-01"));
        for (from, to, field) in [
            ("2024-01-01", "2025-01-01", "from"),
            ("2024-02-01", "2024-01-31", "from"),
            ("2024-1-1", "2024-01-31", "from"),
            ("2024-01-01", "2024-02-30", "to"),
        ] {
            let error = range(from, to)
                .try_into_domain("acc-1", today)
                .expect_err("invalid range");
            assert_eq!(fields_of(error), [field], "{from}..{to}");
        }
    }
}
