//! The injected clock: domain code never reads the wall clock itself, so that rotation,
//! expiry and skew can be tested in milliseconds.

use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;

    /// Seconds since the Unix epoch.
    fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

/// The wall clock, shifted by an offset that only a manual (test or simulation) clock moves.
#[derive(Debug, Default)]
pub struct SystemClock {
    offset_ms: AtomicI64,
}

// === impl SystemClock ===

impl SystemClock {
    /// Moves this clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.whole_milliseconds()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place the wall clock is read
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// As `now().unix_timestamp()`, without building a date: a fetch reads it twice, and
    /// the date took a read from 134 instructions to 391 (callgrind).
    #[allow(clippy::disallowed_methods)] // the wall clock again, as `now` reads it
    fn unix(&self) -> i64 {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        since_epoch.saturating_add(self.offset_ms.load(Ordering::SeqCst)).div_euclid(1000)
    }
}

/// A clock that stands still until moved, for unit tests.
#[derive(Debug)]
pub struct FixedClock {
    unix_ms: AtomicI64,
}

impl FixedClock {
    pub fn at(unix_seconds: i64) -> Self {
        Self { unix_ms: AtomicI64::new(unix_seconds * 1000) }
    }

    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.whole_milliseconds()).unwrap_or(i64::MAX);
        self.unix_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        let ms = self.unix_ms.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// Formats a Unix time as AWS does: `2026-11-22T15:46:56Z` (whole seconds, `Z`).
///
/// Every issuance formats two (LastUpdated, Expiration): the digits are written directly,
/// since `format!` with widths cost 3,600 instructions a call (callgrind, refresh scenario).
pub fn iso8601(unix_seconds: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (year, month, day) = t.to_calendar_date();
    let (hour, minute, second) = t.to_hms();
    // `time` keeps years within ±9999; before year 0 the sign needs `format!`.
    let Ok(year) = u16::try_from(year) else {
        return format!("{year:05}-{:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z", u8::from(month));
    };
    let mut out = String::with_capacity(20);
    let mut two = |n: u8, after: Option<char>| {
        out.push(char::from(b'0' + n / 10 % 10));
        out.push(char::from(b'0' + n % 10));
        if let Some(c) = after {
            out.push(c);
        }
    };
    // Both halves of a year up to 9999 are below 100.
    two((year / 100) as u8, None);
    two((year % 100) as u8, Some('-'));
    two(u8::from(month), Some('-'));
    two(day, Some('T'));
    two(hour, Some(':'));
    two(minute, Some(':'));
    two(second, Some('Z'));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_is_whole_seconds_with_z() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_795_362_416), "2026-11-22T15:46:56Z");
        assert_eq!(iso8601(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(iso8601(-62_135_596_800), "0001-01-01T00:00:00Z");
    }

    proptest::proptest! {
        /// The digits written by hand are RFC 3339's, as `time` formats it, for every second
        /// from year 1 to 9999.
        #[test]
        fn iso8601_agrees_with_rfc3339(unix in -62_135_596_800i64..=253_402_300_799) {
            let t = OffsetDateTime::from_unix_timestamp(unix).unwrap();
            let rfc3339 = t.format(&time::format_description::well_known::Rfc3339).unwrap();
            proptest::prop_assert_eq!(iso8601(unix), rfc3339);
        }
    }

    #[test]
    fn system_clock_advances() {
        let clock = SystemClock::default();
        let before = clock.unix();
        clock.advance(Duration::hours(2));
        assert!(clock.unix() >= before + 7200);
    }

    #[test]
    fn the_system_clocks_seconds_are_its_dates() {
        let clock = SystemClock::default();
        for by in [0, -1, -1_500, 999, 86_400_000, -86_400_001] {
            clock.advance(Duration::milliseconds(by));
            // Read in between two reads of the other way (a second may turn between them).
            let (before, date, after) = (clock.unix(), clock.now().unix_timestamp(), clock.unix());
            assert!(before <= date && date <= after, "{before} {date} {after} at {by} ms");
            assert!(after - before <= 1);
        }
    }
}
