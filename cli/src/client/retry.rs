//! When to try a request again, and how long to wait first.
//!
//! 429 and 5xx answers and connection failures are retried, up to a bounded number of attempts,
//! after an exponential backoff with jitter (half of each step fixed, half random, so that clients
//! that failed together do not come back together). A `Retry-After` header (seconds or an HTTP
//! date) replaces the backoff: the server knows better when it will take the request again. A wait
//! longer than [`Policy::max_wait`] is not waited for: the command fails and says so.

use std::time::{Duration, SystemTime};

/// The retry rules of one command.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Retries after the first attempt (so `retries + 1` attempts at most).
    pub retries: u32,
    /// The first backoff step; each retry doubles it.
    pub base: Duration,
    /// The largest backoff step.
    pub cap: Duration,
    /// The longest `Retry-After` the client waits for.
    pub max_wait: Duration,
}

impl Policy {
    pub fn new(retries: u32) -> Self {
        Policy {
            retries,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(8),
            max_wait: Duration::from_secs(60),
        }
    }

    /// The backoff before retry number `retry` (0 for the first retry), with `random` a uniformly
    /// random number: half of the step is fixed, the other half is `random` scaled into it.
    pub fn backoff(&self, retry: u32, random: u64) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
            .min(self.cap);
        let half = step / 2;
        let half_ms = half.as_millis() as u64;
        let jitter = if half_ms == 0 {
            0
        } else {
            random % (half_ms + 1)
        };
        half + Duration::from_millis(jitter)
    }

    /// How long to wait before retry number `retry`: what `Retry-After` asked for, else the backoff.
    /// `None` when the server asked for longer than the client waits.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(after) if after > self.max_wait => None,
            Some(after) => Some(after),
            None => Some(self.backoff(retry, random())),
        }
    }
}

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

fn random() -> u64 {
    // Jitter needs no cryptographic quality; if the OS source fails, no jitter is still correct.
    getrandom::u64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_half_of_it_random() {
        let policy = Policy::new(10);
        assert_eq!(policy.backoff(0, 0), Duration::from_millis(125));
        assert_eq!(policy.backoff(0, 125), Duration::from_millis(250));
        assert_eq!(policy.backoff(0, 126), Duration::from_millis(125));
        assert_eq!(policy.backoff(1, 0), Duration::from_millis(250));
        assert_eq!(policy.backoff(2, 0), Duration::from_millis(500));
        assert_eq!(policy.backoff(10, 0), Duration::from_secs(4));
        assert_eq!(policy.backoff(10, 4000), Duration::from_secs(8));
        assert_eq!(policy.backoff(1000, 4001), Duration::from_secs(4));
        for retry in 0..40 {
            let d = policy.backoff(retry, random());
            assert!(d <= policy.cap, "{retry}: {d:?}");
        }
    }

    #[test]
    fn retry_after_wins_over_backoff_but_not_beyond_the_longest_wait() {
        let policy = Policy::new(3);
        assert_eq!(
            policy.wait(0, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(policy.wait(0, Some(Duration::from_secs(61))), None);
        assert!(policy.wait(0, None).unwrap() <= Duration::from_millis(250));
    }

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
