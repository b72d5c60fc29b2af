//! API keys: `pk_…` (read-only) and `sk_…` (read and write), each bound to one vault.
//!
//! A key is 24 random bytes (192 bits) in hex after its prefix. Only its SHA-256 is stored: keys have
//! far more entropy than a password, so a fast hash cannot be brute-forced, and lookups stay one
//! indexed equality. Authentication never costs a request of its own: [`Credential::lookup`] is the
//! first statement of each handler's batch, and every write carries [`write_guard!`](crate::write_guard)
//! so that it cannot happen for a key that may not write to that vault.
//!
//! Contract: docs/API.md#authentication.

use crate::ApiError;
use crate::batch::Query;
use crate::db::{Row, Stmt, Value};
use crate::random;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Public,
    Secret,
}

impl KeyKind {
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Public => "pk_",
            KeyKind::Secret => "sk_",
        }
    }

    /// The value of the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Public => "public",
            KeyKind::Secret => "secret",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "public" => Some(KeyKind::Public),
            "secret" => Some(KeyKind::Secret),
            _ => None,
        }
    }
}

/// SQL, as a literal for `concat!`, that is true only when the key whose hash is bound as `$hash`
/// (e.g. `"?3"`, see [`Credential::hash_param`]) may write to the vault bound as `$vault`: a live
/// secret key of that vault. Every write of every handler carries it in its own WHERE clause.
#[macro_export]
macro_rules! write_guard {
    ($hash:literal, $vault:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM api_keys WHERE key_hash = ",
            $hash,
            " AND vault_id = ",
            $vault,
            " AND kind = 'secret' AND revoked_at IS NULL)"
        )
    };
}

/// What a request needs its key to allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

const KEY_RANDOM_BYTES: usize = 24;

/// A new random key of `kind`, to be shown once.
pub fn generate_key(kind: KeyKind) -> String {
    let mut bytes = [0u8; KEY_RANDOM_BYTES];
    random::fill(&mut bytes);
    format!("{}{}", kind.prefix(), hex(&bytes))
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// What `imgbt key list` shows of a key: its prefix and first four characters.
pub fn key_hint(key: &str) -> String {
    key.chars().take(7).collect()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The key a request presented, reduced to its hash. The key itself goes no further.
#[derive(Clone)]
pub struct Credential {
    hash: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(..)")
    }
}

impl Credential {
    /// Reads `Authorization: Bearer <key>`. Missing header, another scheme, or a string that is not
    /// shaped like a key: 401 before any lookup.
    pub fn from_header(value: Option<&[u8]>) -> Result<Self, ApiError> {
        let value = value.ok_or(ApiError::Unauthorized)?;
        let text = std::str::from_utf8(value).map_err(|_| ApiError::Unauthorized)?;
        let (scheme, key) = text.trim().split_once(' ').ok_or(ApiError::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized);
        }
        let key = key.trim();
        let shaped = (key.starts_with("pk_") || key.starts_with("sk_"))
            && key.len() == 3 + 2 * KEY_RANDOM_BYTES
            && key[3..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !shaped {
            return Err(ApiError::Unauthorized);
        }
        Ok(Credential {
            hash: hash_key(key),
        })
    }

    /// The statement that starts every batch: the key's vault and kind, if it exists and is live.
    pub fn lookup(&self) -> Query<KeyOnFile> {
        Query::new(
            Stmt::new(
                "SELECT vault_id, kind FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
                vec![Value::from(self.hash.as_str())],
            ),
            |result| Ok(KeyOnFile(result.rows)),
        )
    }

    /// The key's hash, as the parameter a [`write_guard!`](crate::write_guard) names.
    pub fn hash_param(&self) -> Value {
        Value::from(self.hash.as_str())
    }

    /// Decides the request from the result of [`Credential::lookup`]: 401 for an unknown or revoked
    /// key, 403 for another vault's key or a public key on a write.
    pub fn check(rows: &[Row], vault_id: &str, access: Access) -> Result<(), ApiError> {
        let row = rows.first().ok_or(ApiError::Unauthorized)?;
        let key_vault = row
            .get("vault_id")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if key_vault != vault_id {
            return Err(ApiError::Forbidden("this key belongs to another vault"));
        }
        let kind = row
            .get("kind")
            .and_then(|v| v.as_str())
            .and_then(KeyKind::parse);
        match (access, kind) {
            (Access::Read, Some(_)) | (Access::Write, Some(KeyKind::Secret)) => Ok(()),
            (Access::Write, Some(KeyKind::Public)) => Err(ApiError::Forbidden(
                "public keys are read-only; use a secret (sk_) key",
            )),
            (_, None) => Err(ApiError::internal("api_keys row has an unknown kind")),
        }
    }
}

/// What [`Credential::lookup`] found; [`KeyOnFile::check`] decides the request with it.
#[derive(Debug)]
pub struct KeyOnFile(Vec<Row>);

impl KeyOnFile {
    /// See [`Credential::check`].
    pub fn check(&self, vault_id: &str, access: Access) -> Result<(), ApiError> {
        Credential::check(&self.0, vault_id, access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_their_prefix_and_192_bits() {
        let key = generate_key(KeyKind::Secret);
        assert!(key.starts_with("sk_"));
        assert_eq!(key.len(), 51);
        assert_ne!(key, generate_key(KeyKind::Secret));
        assert!(generate_key(KeyKind::Public).starts_with("pk_"));
    }

    #[test]
    fn bearer_header_parsing() {
        let key = generate_key(KeyKind::Public);
        let ok = Credential::from_header(Some(format!("Bearer {key}").as_bytes())).unwrap();
        assert_eq!(ok.hash, hash_key(&key));
        assert!(Credential::from_header(Some(format!("bearer {key}").as_bytes())).is_ok());
        for bad in [
            String::new(),
            key.clone(),
            format!("Basic {key}"),
            format!("Bearer {}", &key[..50]),
            format!("Bearer {}X", &key[..50]),
            format!("Bearer xk_{}", &key[3..]),
            format!("Bearer {}", key.to_uppercase()),
        ] {
            assert!(
                matches!(
                    Credential::from_header(Some(bad.as_bytes())),
                    Err(ApiError::Unauthorized)
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Credential::from_header(None),
            Err(ApiError::Unauthorized)
        ));
        assert!(matches!(
            Credential::from_header(Some(b"Bearer \xff")),
            Err(ApiError::Unauthorized)
        ));
    }

    #[test]
    fn the_stored_hash_is_not_the_key() {
        let key = generate_key(KeyKind::Secret);
        let hash = hash_key(&key);
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains(&key[3..]));
        assert_eq!(key_hint(&key), key[..7]);
    }

    fn row(vault: &str, kind: &str) -> Row {
        Row::from_pairs([("vault_id", vault.into()), ("kind", kind.into())])
    }

    #[test]
    fn check_decides_401_403_and_ok() {
        assert!(matches!(
            Credential::check(&[], "vault_a", Access::Read),
            Err(ApiError::Unauthorized)
        ));
        let public = [row("vault_a", "public")];
        let secret = [row("vault_a", "secret")];
        assert!(Credential::check(&public, "vault_a", Access::Read).is_ok());
        assert!(matches!(
            Credential::check(&public, "vault_a", Access::Write),
            Err(ApiError::Forbidden(_))
        ));
        assert!(Credential::check(&secret, "vault_a", Access::Write).is_ok());
        assert!(matches!(
            Credential::check(&secret, "vault_b", Access::Read),
            Err(ApiError::Forbidden(_))
        ));
    }
}
