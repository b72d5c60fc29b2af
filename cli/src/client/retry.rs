//! Which answers are worth another try, and what their `Retry-After` asks for.
//!
//! 429 and 5xx answers and connection failures are retried; how often and after how long is
//! [`shared::backoff`]'s policy, the same as the functions' own clients. A `Retry-After` header
//! (seconds or an HTTP date) replaces the backoff; one longer than the policy's `max_wait` is not
//! waited for: the command fails and says so.

use std::time::{Duration, SystemTime};

/// Whether an answer with `status` may succeed when sent again.
pub fn retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// `Retry-After` as a duration from `now`: delay-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2026 07:28:00 GMT`); a date in the past means now. Anything else is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn only_rate_limits_and_server_errors_are_retried() {
        for status in [429, 500, 502, 503, 504] {
            assert!(retryable(status), "{status}");
        }
        for status in [200, 302, 400, 401, 403, 404, 409, 410, 413] {
            assert!(!retryable(status), "{status}");
        }
    }
}
