//! The one retry policy: how many attempts, and how long to wait between them, for every client
//! imgbt has (D1 over REST, R2 over S3, and the `imgbt` command's API client).
//!
//! The wait before retry `n` is "full jitter": a uniformly random duration between zero and
//! `min(CAP, BASE × 2ⁿ)`. Spreading the whole step (rather than half of it) is what keeps clients
//! that failed together from coming back together. A server's `Retry-After` replaces the backoff,
//! since the server knows better when it will take the request again; one longer than the policy's
//! `max_wait` is not waited for, and the caller reports the refusal instead.
//!
//! R2's retries are the AWS SDK's own: its standard retry mode is configured from [`BASE`],
//! [`CAP`] and [`R2_ATTEMPTS`], and uses the same full jitter.

use std::time::Duration;

/// The first backoff step (before the first retry, the ceiling is twice this).
pub const BASE: Duration = Duration::from_millis(100);
/// The largest backoff step.
pub const CAP: Duration = Duration::from_secs(2);
/// Attempts at a D1 batch, the first included.
pub const D1_ATTEMPTS: u32 = 4;
/// Attempts at an R2 call, the first included.
pub const R2_ATTEMPTS: u32 = 3;
/// The longest `Retry-After` a function waits for: its three waits at most stay well inside API
/// Gateway's 30 s.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(8);
/// The longest `Retry-After` the `imgbt` command waits for: a person is watching, not a gateway.
pub const CLI_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How one client retries refusals for rate (429), transient failures (5xx) and connections that
/// never reached the server (and, for D1, answers lost on the way back: db/d1.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    /// The longest `Retry-After` waited for.
    pub max_wait: Duration,
}

impl Backoff {
    pub const D1: Backoff = Backoff {
        attempts: D1_ATTEMPTS,
        base: BASE,
        cap: CAP,
        max_wait: MAX_RETRY_AFTER,
    };

    pub const R2: Backoff = Backoff {
        attempts: R2_ATTEMPTS,
        ..Backoff::D1
    };

    /// The `imgbt` command's policy: `retries` after the first attempt (its `--retries`).
    pub const fn cli(retries: u32) -> Backoff {
        Backoff {
            attempts: retries.saturating_add(1),
            max_wait: CLI_MAX_RETRY_AFTER,
            ..Backoff::D1
        }
    }

    /// The most that retry number `retry` (1-based) waits: `base × 2^retry`, at most `cap`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Full jitter: `random` (uniform over `u64`) scaled into `[0, ceiling(retry)]`.
    pub fn jittered(&self, retry: u32, random: u64) -> Duration {
        let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
        self.ceiling(retry).mul_f64(fraction)
    }

    /// How long to wait before retry number `retry` (1-based): what `Retry-After` asked for, else
    /// the jittered backoff. `None` when the server asked for longer than this policy waits.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        match retry_after {
            Some(asked) if asked > self.max_wait => None,
            Some(asked) => Some(asked),
            None => Some(self.jittered(retry, crate::random::u64())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let policy = Backoff::D1;
        assert_eq!(policy.ceiling(1), Duration::from_millis(200));
        assert_eq!(policy.ceiling(2), Duration::from_millis(400));
        assert_eq!(policy.ceiling(4), Duration::from_millis(1600));
        assert_eq!(policy.ceiling(5), CAP);
        assert_eq!(policy.ceiling(u32::MAX), CAP);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let policy = Backoff::D1;
        assert_eq!(policy.jittered(2, 0), Duration::ZERO);
        let top = policy.jittered(2, u64::MAX);
        assert!(
            top <= policy.ceiling(2) && top > Duration::from_millis(399),
            "{top:?}"
        );
        let middle = policy.jittered(2, u64::MAX / 2);
        assert!(middle.abs_diff(Duration::from_millis(200)) < Duration::from_millis(1));
    }

    #[test]
    fn waits_are_bounded_by_the_ceiling_and_actually_jittered() {
        let policy = Backoff::R2;
        for retry in 1..12 {
            let waits: Vec<Duration> = (0..50).map(|_| policy.wait(retry, None).unwrap()).collect();
            assert!(
                waits.iter().all(|w| *w <= policy.ceiling(retry)),
                "{waits:?}"
            );
            assert!(waits.iter().any(|w| *w != waits[0]), "jittered: {waits:?}");
        }
    }

    #[test]
    fn retry_after_replaces_the_backoff_up_to_the_longest_wait() {
        let policy = Backoff::D1;
        assert_eq!(
            policy.wait(1, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(policy.wait(1, Some(MAX_RETRY_AFTER)), Some(MAX_RETRY_AFTER));
        assert_eq!(policy.wait(1, Some(Duration::from_secs(9))), None);
        let cli = Backoff::cli(3);
        assert_eq!(cli.attempts, 4);
        assert_eq!(
            cli.wait(1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(cli.wait(1, Some(Duration::from_secs(61))), None);
    }
}
