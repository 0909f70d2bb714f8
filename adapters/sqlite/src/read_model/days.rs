//! Days and instants as the read model stores and compares them: fixed-width text, so that comparing
//! text compares time. `%Y` is four digits wide only for the years 0000-9999, so values outside
//! those years are refused when stored and clamped when used as query bounds.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use ledger_application::codec::format_timestamp;
use ledger_application::ports::StoreError;

const DAY_FORMAT: &str = "%Y-%m-%d";

const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(0, 1, 1) {
    Some(day) => day,
    None => panic!("0000-01-01 is a date"),
};

const LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(day) => day,
    None => panic!("9999-12-31 is a date"),
};

/// The last instant of year 9999 in the stored format.
const LAST_INSTANT: &str = "9999-12-31T23:59:59.999999Z";

/// The day column of a movement on `date`.
pub(super) fn stored(date: NaiveDate) -> Result<String, StoreError> {
    if !(FIRST_DAY..=LAST_DAY).contains(&date) {
        return Err(StoreError::corrupt(format!(
            "a movement dated {date} lies outside the years 0000-9999"
        )));
    }
    Ok(date.format(DAY_FORMAT).to_string())
}

/// `date` as a bound on stored days: every stored day lies within 0000-9999, so clamping into those
/// years selects the same rows.
pub(super) fn bound(date: NaiveDate) -> String {
    date.clamp(FIRST_DAY, LAST_DAY)
        .format(DAY_FORMAT)
        .to_string()
}

/// A stored day column back into a date.
pub(crate) fn parse(text: &str) -> Result<NaiveDate, chrono::ParseError> {
    NaiveDate::parse_from_str(text, DAY_FORMAT)
}

/// `at` as an upper bound on stored instants; `None` if it precedes every instant that can be stored.
pub(super) fn instant_bound(at: DateTime<Utc>) -> Option<String> {
    match at.year() {
        ..0 => None,
        0..=9999 => Some(format_timestamp(at)),
        _ => Some(LAST_INSTANT.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn stored_days_are_fixed_width_and_parse_back() {
        for date in [day(2026, 3, 9), day(7, 1, 1), FIRST_DAY, LAST_DAY] {
            let text = stored(date).unwrap();
            assert_eq!(text.len(), 10, "{text}");
            assert_eq!(parse(&text).unwrap(), date);
        }
        assert!(stored(day(10_000, 1, 1)).is_err());
        assert!(stored(day(-1, 12, 31)).is_err());
    }

    #[test]
    fn bounds_outside_four_digit_years_are_clamped() {
        assert_eq!(bound(day(12_345, 6, 7)), "9999-12-31");
        assert_eq!(bound(day(-44, 3, 15)), "0000-01-01");
        assert_eq!(bound(day(2026, 3, 9)), "2026-03-09");
    }

    #[test]
    fn instant_bounds_sort_with_stored_instants() {
        let now = Utc.with_ymd_and_hms(2026, 3, 9, 12, 0, 0).unwrap();
        let far = Utc.with_ymd_and_hms(12_000, 1, 1, 0, 0, 0).unwrap();
        let ancient = Utc.with_ymd_and_hms(-5, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(instant_bound(now), Some(format_timestamp(now)));
        let far = instant_bound(far).unwrap();
        assert!(far.as_str() > format_timestamp(now).as_str());
        assert_eq!(far.len(), format_timestamp(now).len());
        assert_eq!(instant_bound(ancient), None);
    }
}
