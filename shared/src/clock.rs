//! Time as the API shows it: RFC 3339, UTC, `Z`, always three fractional digits.
//!
//! Fixed width means the text order of stored times is their time order, which the list's
//! keyset pagination and `updated_at`'s forward step in SQL rely on.
//!
//! Contract: docs/API.md#times.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::{OffsetDateTime, format_description::BorrowedFormatItem, macros::format_description};

const FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Milliseconds since the Unix epoch, by the system's clock. Private: everything reads time
/// through a [`Clock`], so that a test that moves one moves all that the code under test sees.
fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The one clock: the system's, moved by an offset that only tests set (to sign URLs that are
/// already expired, or uploads that expired long ago, without waiting). Handlers read the one in
/// their `Deps`; the CLI's commands and the test kit pass theirs.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now_ms(&self) -> u64 {
        system_ms().saturating_add_signed(self.offset_ms.load(Ordering::Relaxed))
    }

    /// The same instant as [`Clock::now_ms`], for signers that take a `SystemTime`.
    pub fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// Moves this clock `offset_ms` away from the system's (negative: into the past).
    pub fn set_offset_ms(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }
}

/// Formats milliseconds since the epoch as the API's time text.
pub fn format_ms(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

/// True when `text` is a time in exactly the API's format.
pub fn is_timestamp(text: &str) -> bool {
    text.len() == 24 && time::PrimitiveDateTime::parse(text, FORMAT).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc_with_millis() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_768_473_000_123), "2026-01-15T10:30:00.123Z");
    }

    #[test]
    fn a_clock_moves_by_its_offset() {
        let clock = Clock::default();
        clock.set_offset_ms(-3_600_000);
        let behind = system_ms() - clock.now_ms();
        assert!((3_600_000..3_700_000).contains(&behind), "{behind}");
        clock.set_offset_ms(0);
        assert!(clock.now_ms().abs_diff(system_ms()) < 1000);
    }

    #[test]
    fn recognises_only_the_api_format() {
        assert!(is_timestamp("2026-01-15T10:30:00.123Z"));
        assert!(!is_timestamp("2026-01-15T10:30:00Z"));
        assert!(!is_timestamp("2026-13-15T10:30:00.123Z"));
        assert!(!is_timestamp("2026-01-15T10:30:00.123+"));
    }
}
