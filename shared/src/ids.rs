//! Identifiers: `asset_`/`vault_`/`key_`/`upload_` followed by a ULID.
//!
//! A ULID's first 48 bits are its creation time in milliseconds, so ids created with the same clock
//! as `created_at` sort the same way; the list order (`created_at`, `id`) relies on that only as a
//! tie-break.
//!
//! Contract: docs/API.md#ids.

use ulid::Ulid;

fn make(prefix: &str, ms: u64) -> String {
    let mut random = [0u8; 16];
    crate::random::fill(&mut random);
    let ulid = Ulid::from_parts(ms, u128::from_le_bytes(random));
    format!("{prefix}{ulid}")
}

pub fn new_asset_id(ms: u64) -> String {
    make("asset_", ms)
}

pub fn new_vault_id(ms: u64) -> String {
    make("vault_", ms)
}

pub fn new_upload_id(ms: u64) -> String {
    make("upload_", ms)
}

pub fn new_key_id(ms: u64) -> String {
    make("key_", ms)
}

/// The id one revoke writes beside `revoked_at`, so that a resent batch knows its own revoke
/// (migrations/0004_key_revoked_by.sql).
pub fn new_revoke_id(ms: u64) -> String {
    make("revoke_", ms)
}

/// True when `text` is `prefix` followed by a well-formed ULID (26 Crockford base32 characters).
pub fn is_id(prefix: &str, text: &str) -> bool {
    text.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == 26 && Ulid::from_string(rest).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_ulids() {
        let id = new_asset_id(1_768_473_000_123);
        assert!(is_id("asset_", &id), "{id}");
        assert!(!is_id("vault_", &id));
        assert_eq!(
            Ulid::from_string(&id[6..]).unwrap().timestamp_ms(),
            1_768_473_000_123
        );
    }

    #[test]
    fn ids_of_later_times_sort_later() {
        assert!(new_asset_id(1000) < new_asset_id(1001));
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert!(!is_id("asset_", "asset_"));
        assert!(!is_id("asset_", "asset_01JD"));
        assert!(!is_id("asset_", "asset_01JDZZZZZZZZZZZZZZZZZZZZZU"));
        assert!(!is_id("asset_", "01JD0000000000000000000000"));
    }
}
