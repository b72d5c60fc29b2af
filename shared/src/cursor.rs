//! The list cursor: the position after the last asset of a page, `(created_at, id)`, as base64url
//! of `{"created_at":…,"id":…}`. Opaque to clients; anything that does not decode to exactly that is
//! refused, so a cursor can never smuggle anything into SQL.
//!
//! Contract: docs/API.md#cursor.

use crate::ApiError;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub created_at: String,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(text: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::invalid("cursor", "is not a cursor returned by this API");
        if text.len() > 256 {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| invalid())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if !crate::clock::is_timestamp(&cursor.created_at) || !is_written_asset_id(&cursor.id) {
            return Err(invalid());
        }
        Ok(cursor)
    }
}

/// An asset id exactly as the API writes it. A ULID parses case-insensitively (and past its
/// 128 bits), but the list compares ids as text, so only the canonical spelling names a position.
fn is_written_asset_id(id: &str) -> bool {
    id.strip_prefix("asset_").is_some_and(|text| {
        ulid::Ulid::from_string(text).is_ok_and(|ulid| ulid.to_string() == text)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Cursor {
        Cursor {
            created_at: "2026-01-15T10:30:00.123Z".into(),
            id: crate::ids::new_asset_id(1_768_473_000_123),
        }
    }

    #[test]
    fn round_trips() {
        let cursor = sample();
        let text = cursor.encode();
        assert!(text.starts_with("eyJjcmVhdGVkX2F0"), "{text}");
        assert_eq!(Cursor::decode(&text).unwrap(), cursor);
    }

    #[test]
    fn refuses_what_does_not_decode() {
        let bad_json = URL_SAFE_NO_PAD.encode(br#"{"created_at":"x","id":"y"}"#);
        let lowercase = URL_SAFE_NO_PAD.encode(
            br#"{"created_at":"2026-01-15T10:30:00.123Z","id":"asset_01jd0000000000000000000000"}"#,
        );
        let overflow = URL_SAFE_NO_PAD.encode(
            br#"{"created_at":"2026-01-15T10:30:00.123Z","id":"asset_8ZZZZZZZZZZZZZZZZZZZZZZZZZ"}"#,
        );
        let extra = URL_SAFE_NO_PAD.encode(
            br#"{"created_at":"2026-01-15T10:30:00.123Z","id":"asset_01JD0000000000000000000000","x":1}"#,
        );
        for bad in [
            "",
            "!!!",
            "bm90IGpzb24",
            bad_json.as_str(),
            extra.as_str(),
            lowercase.as_str(),
            overflow.as_str(),
            &"A".repeat(300),
        ] {
            assert!(
                matches!(Cursor::decode(bad), Err(ApiError::InvalidParams(_))),
                "{bad}"
            );
        }
    }
}
