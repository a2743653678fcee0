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
pub fn iso8601(unix_seconds: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_is_whole_seconds_with_z() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_795_362_416), "2026-11-22T15:46:56Z");
    }

    #[test]
    fn system_clock_advances() {
        let clock = SystemClock::default();
        let before = clock.unix();
        clock.advance(Duration::hours(2));
        assert!(clock.unix() >= before + 7200);
    }
}
