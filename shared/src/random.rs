//! Randomness from the operating system: ids, keys, upload tokens, temporary names, and jitter.
//!
//! A leaf module: it imports nothing from this crate, so that the modules that need random bytes
//! (ids, auth, the stores, backoff) need not import one another for them.

/// Fills `buf` from the operating system's random source.
pub fn fill(buf: &mut [u8]) {
    // The OS generator failing is not something a request can recover from.
    getrandom::fill(buf).expect("the operating system's random source failed");
}

/// A uniformly random `u64`.
pub fn u64() -> u64 {
    let mut bytes = [0u8; 8];
    fill(&mut bytes);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_differ() {
        // 64 random bits repeating by chance: one in 2^64.
        assert_ne!(super::u64(), super::u64());
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        super::fill(&mut a);
        super::fill(&mut b);
        assert_ne!(a, b);
    }
}
