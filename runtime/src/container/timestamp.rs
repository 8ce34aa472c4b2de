//! RFC 3339 UTC timestamps with nanoseconds, as CRI log records and state files carry them
//! (`2026-11-22T00:39:37.123456789Z`), formatted into a fixed-size array.
//!
//! Written out rather than through a date crate's `Display`: the pod shim stamps every log line,
//! and this is its steady-state loop, whose code is all a long-idle shim keeps resident (see
//! `shim::shed`). This path allocates nothing and touches a few hundred bytes of code; a
//! formatter built on `core::fmt` and a time-zone-aware date type touches tens of kilobytes.
//!
//! Invariants: the output is always [`LEN`] bytes of ASCII with nine fractional digits (the form
//! `jiff`'s `{:.9}` writes and every reader of these files parses); times before the epoch
//! print as the epoch and times past year 9999 as its last nanosecond.

use std::time::{Duration, SystemTime};

/// Bytes in a timestamp: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub const LEN: usize = 30;

/// Seconds from the epoch to 9999-12-31T23:59:59Z, the last second four year digits can hold.
const MAX_SECS: u64 = 253_402_300_799;

/// The current time.
#[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
#[unsafe(link_section = ".text.hot.k1s_shim")]
pub fn now() -> [u8; LEN] {
    format(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// The current time as a `String` (state files).
pub fn now_string() -> String {
    // Always ASCII (see the module invariants).
    String::from_utf8_lossy(&now()).into_owned()
}

/// `since_epoch` as a timestamp.
#[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
#[unsafe(link_section = ".text.hot.k1s_shim")]
pub fn format(since_epoch: Duration) -> [u8; LEN] {
    let (secs, nanos) = if since_epoch.as_secs() > MAX_SECS {
        (MAX_SECS, 999_999_999)
    } else {
        (since_epoch.as_secs(), since_epoch.subsec_nanos())
    };
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let mut out = *b"0000-00-00T00:00:00.000000000Z";
    put(&mut out[0..4], year);
    put(&mut out[5..7], month);
    put(&mut out[8..10], day);
    put(&mut out[11..13], of_day / 3600);
    put(&mut out[14..16], of_day / 60 % 60);
    put(&mut out[17..19], of_day % 60);
    put(&mut out[20..29], u64::from(nanos));
    out
}

/// Writes `value`'s last `digits.len()` decimal digits, zero-padded, into `digits`.
#[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
#[unsafe(link_section = ".text.hot.k1s_shim")]
fn put(digits: &mut [u8], mut value: u64) {
    for d in digits.iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The proleptic Gregorian (year, month, day) of a day number counted from 1970-01-01.
///
/// Counts in 400-year eras that start on March 1st, so the leap day is the last day of an era's
/// year and every month before it has a fixed length (the usual civil-from-days method).
#[allow(unsafe_code)] // SAFETY: see `shim` on the hot section: plain code, placed together.
#[unsafe(link_section = ".text.hot.k1s_shim")]
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // 0000-03-01 is 719,468 days before 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 0 = March, ..., 11 = February.
    let m = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * m + 2) / 5 + 1;
    let month = if m < 10 { m + 3 } else { m - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jiff_form(d: Duration) -> String {
        let ts = jiff::Timestamp::new(d.as_secs() as i64, d.subsec_nanos() as i32).unwrap();
        format!("{ts:.9}")
    }

    fn ours(d: Duration) -> String {
        String::from_utf8(format(d).to_vec()).unwrap()
    }

    #[test]
    fn matches_jiff_across_leap_years_centuries_and_month_ends() {
        // Every day from 1970 to 2500 (leap days, 2100's missing one, 2400's present one), at a
        // time of day and a nanosecond count that vary with the day.
        for day in 0..(530 * 366) {
            let secs = day * 86_400 + (day * 7919) % 86_400;
            let d = Duration::new(secs, ((day * 104_729) % 1_000_000_000) as u32);
            assert_eq!(ours(d), jiff_form(d), "day {day}");
        }
    }

    #[test]
    fn edges() {
        assert_eq!(ours(Duration::ZERO), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            ours(Duration::new(951_782_400, 5)),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            ours(Duration::new(MAX_SECS, 999_999_999)),
            "9999-12-31T23:59:59.999999999Z"
        );
        assert_eq!(
            ours(Duration::new(u64::MAX / 2, 0)),
            "9999-12-31T23:59:59.999999999Z"
        );
        assert_eq!(now().len(), LEN);
        assert!(now_string().ends_with('Z'));
    }
}
