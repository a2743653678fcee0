//! The dates of the policy language: what a Date condition operator's values may be, read
//! the same way when a document is written (IAM refuses a value it cannot read with "The
//! policy failed legacy parsing") and when a request is judged, so that nothing accepted is
//! left unreadable at evaluation.
//!
//! AWS's forms ("Date condition operators", IAM User Guide,
//! docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
//! a date-time in ISO 8601 (`2020-01-01`, `2020-01-01T00:00:00Z`, with fractions of a
//! second or an offset) or seconds since the epoch (`1577836800`). What IAM accepts within
//! ISO 8601 follows the cases moto checked against IAM (getmoto/moto pull 2269,
//! tests/test_iam/test_iam_policies.py): a year alone, a one-digit hour, an offset of hours
//! alone; not an offset of one digit, not more than nine digits of fraction, not an epoch
//! past i64.

/// The instant `text` names, in milliseconds since the epoch (None: not a date IAM reads).
pub fn parse(text: &str) -> Option<i128> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: i64 = text.parse().ok()?;
        return Some(i128::from(seconds) * 1000);
    }
    let lower = text.to_ascii_lowercase();
    let (date, time) = match lower.split_once('t') {
        Some((date, time)) => (date, Some(time)),
        None => (lower.as_str(), None),
    };
    let days = days(date)?;
    let millis = match time {
        None | Some("") => 0,
        Some(time) => time_of_day(time)?,
    };
    Some(i128::from(days) * 86_400_000 + millis)
}

/// `[-]YYYY[-MM[-DD]]` as days since 1970-01-01.
fn days(date: &str) -> Option<i64> {
    let (negative, date) = match date.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, date),
    };
    let mut parts = date.split('-');
    let year: i64 = number(parts.next()?)?;
    let year = if negative { -year } else { year };
    let month = parts.next().map(number).unwrap_or(Some(1))?;
    let day = parts.next().map(number).unwrap_or(Some(1))?;
    if parts.next().is_some()
        || !(-292_275_054..=292_278_993).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
    {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// `H[:MM[:SS[.fraction]]]` with an optional zone (`z`, `+HH`, `+HH:MM`, `-HH:MM`), as
/// milliseconds into the day in UTC (negative or past a day when the zone moves it).
fn time_of_day(time: &str) -> Option<i128> {
    let (clock, offset) = if let Some(clock) = time.strip_suffix('z') {
        (clock, 0)
    } else if let Some(at) = time.rfind(['+', '-']) {
        let sign = if time.as_bytes()[at] == b'-' { -1 } else { 1 };
        (&time[..at], sign * zone(&time[at + 1..])?)
    } else {
        (time, 0)
    };
    let mut parts = clock.split(':');
    let hours: i64 = number(parts.next()?)?;
    let minutes = parts.next().map(number).unwrap_or(Some(0))?;
    let (seconds, nanos) = match parts.next() {
        None => (0, 0),
        Some(s) => match s.split_once('.') {
            None => (number(s)?, 0),
            Some((whole, fraction)) => {
                if fraction.len() > 9 {
                    return None;
                }
                let nanos: i64 = number(fraction)? * 10_i64.pow(9 - fraction.len() as u32);
                (number(whole)?, nanos)
            }
        },
    };
    if parts.next().is_some() || hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    let millis = ((hours * 60 + minutes) * 60 + seconds) * 1000 + nanos / 1_000_000;
    Some(i128::from(millis - offset * 60_000))
}

/// A zone offset `HH` or `HH:MM`, in minutes.
fn zone(text: &str) -> Option<i64> {
    let (hours, minutes) = text.split_once(':').unwrap_or((text, "00"));
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (i64, i64) = (number(hours)?, number(minutes)?);
    (hours <= 23 && minutes <= 59).then_some(hours * 60 + minutes)
}

/// Decimal digits only (no sign, no space), at most 18 of them.
fn number(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date; a day past its month's end runs
/// into the next month, as it does in AWS's reading.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse;

    const DAY: i128 = 86_400_000;

    #[test]
    fn the_forms_iam_reads() {
        assert_eq!(parse("1970-01-01"), Some(0));
        assert_eq!(parse("1970-01-02T00:00:00Z"), Some(DAY));
        assert_eq!(parse("2020-01-01T00:00:00Z"), Some(1_577_836_800_000));
        assert_eq!(parse("1577836800"), Some(1_577_836_800_000));
        assert_eq!(parse("2020T"), parse("2020-01-01"));
        assert_eq!(parse("2020"), Some(2_020_000));
        assert_eq!(parse("2020-01-01T01:00:00+01:00"), parse("2020-01-01"));
        assert_eq!(parse("2019-12-31T23:00:00-01:00"), parse("2020-01-01"));
        assert_eq!(parse("2016-12-13T21:20:37.593194+00:00"), Some(1_481_664_037_593));
        assert_eq!(parse("2000-03-01"), Some(11_017 * DAY));
        // Accepted by IAM (moto's cases).
        for text in ["01T", "2019-07-01T13:20:15Z", "2016-12-13t2:00:00.593194+23", "-292275054"] {
            assert!(parse(text).is_some(), "{text}");
        }
    }

    #[test]
    fn what_iam_refuses() {
        for text in [
            "sdfdsf",
            "234-13",
            "2016-12-13t2:00:00.593194+1",
            "2016-12-13t2:00:00.1999999999+10:59",
            "9223372036854775808",
            "2020-01-01T24:00:00Z",
            "2020-01-32",
            "",
            "2020-01-01 00:00:00",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
