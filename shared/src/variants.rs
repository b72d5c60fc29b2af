//! Variants: the stored outputs of transforms (docs/API.md#variants).
//!
//! A variant lives in the object store beside the originals, under
//! `_variants/{vaultId}/{assetId}/{digest}`: the digest is of the transform's canonical
//! parameters (and, for `format=auto`, the client's class of `Accept`), so the key is known
//! before the source is read, and a hit is one GET with no D1 write. The asset id in the key is
//! what makes a variant die with its asset: a name uploaded again is a new asset id, so an old
//! variant is never served for new bytes, and deleting an asset removes its prefix.
//!
//! How nothing is forgotten: the delete journals the prefix in `pending_deletions` in the batch
//! that removes the record, as it does the original's key; removing a pending key that ends in
//! `/` removes every object under it ([`remove`]). A transform still running when its asset is
//! deleted may store a variant after that; gc removes a variant whose asset no longer exists once
//! it is older than the orphan grace, and fsck reports it.

use crate::blobs::{BlobError, Blobs};
use crate::transform::{Accepts, Params};
use sha2::{Digest, Sha256};

/// Where every variant lives. Original keys start with a vault id (`vault_…`), so none is here.
pub const ROOT: &str = "_variants/";

/// Variants stored per asset. Past it, a variant is computed and served but not stored (the
/// request's log line says `variant=over_cap`): a URL with a free parameter (`w=1`, `w=2`, …)
/// must not fill the bucket. Fifty covers a responsive `srcset` in three formats many times over.
pub const CAP_PER_ASSET: usize = 50;

/// The prefix of an asset's variants.
pub fn prefix(vault_id: &str, asset_id: &str) -> String {
    format!("{ROOT}{vault_id}/{asset_id}/")
}

/// The SQL expression of [`prefix`] over an `assets` row (`vault_id`, `id`), for the delete's
/// journal; a macro so that `concat!` can build statements with it. A test runs it on SQLite
/// and holds it to [`prefix`].
#[macro_export]
macro_rules! variants_prefix_sql {
    () => {
        "'_variants/' || vault_id || '/' || id || '/'"
    };
}

/// [`variants_prefix_sql!`] as a constant.
pub const PREFIX_SQL: &str = variants_prefix_sql!();

/// One variant of an asset: its key and its ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub key: String,
    /// Strong: the asset id and the digest (a variant's bytes are a function of both).
    pub etag: String,
}

/// The variant of `asset_id` that `params` ask for. `accepts` counts only for `format=auto`.
pub fn variant(vault_id: &str, asset_id: &str, params: &Params, accepts: Accepts) -> Variant {
    let mut hasher = Sha256::new();
    // The version leads, so a change to what a transform produces can move every key at once.
    hasher.update(b"v1;");
    hasher.update(params.canonical().as_bytes());
    if params.varies_with_accept() {
        hasher.update(b";accept=");
        hasher.update(accepts.as_str().as_bytes());
    }
    let digest = hasher.finalize();
    let digest: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Variant {
        key: format!("{}{digest}", prefix(vault_id, asset_id)),
        etag: format!("\"{asset_id}.{digest}\""),
    }
}

/// The vault and asset a variant's key (or prefix) belongs to, or `None` for any other key.
pub fn owner(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(ROOT)?;
    let mut parts = rest.splitn(3, '/');
    let vault = parts.next().filter(|v| crate::ids::is_id("vault_", v))?;
    let asset = parts.next().filter(|a| crate::ids::is_id("asset_", a))?;
    parts.next()?;
    Some((vault, asset))
}

/// Whether a pending deletion is an asset's variant prefix rather than one object.
pub fn is_prefix(key: &str) -> bool {
    key.ends_with('/') && owner(key).is_some()
}

/// Removes a pending key: one object, or every object under a variant prefix. Removing what is
/// already gone succeeds, so a removal can run twice.
pub async fn remove(blobs: &dyn Blobs, key: &str) -> Result<(), BlobError> {
    if !is_prefix(key) {
        return blobs.delete(key).await;
    }
    for object in blobs.list(key).await? {
        blobs.delete(&object.key).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::parse(pairs.iter().copied()).unwrap()
    }

    const VAULT: &str = "vault_01JA0000000000000000000000";
    const ASSET: &str = "asset_01JA0000000000000000000000";

    #[test]
    fn one_transform_one_key_however_spelled() {
        let a = variant(
            VAULT,
            ASSET,
            &params(&[("w", "800"), ("f", "webp")]),
            Accepts::Other,
        );
        let b = variant(
            VAULT,
            ASSET,
            &params(&[("format", "webp"), ("w", "0800")]),
            Accepts::Avif,
        );
        assert_eq!(a, b);
        let c = variant(
            VAULT,
            ASSET,
            &params(&[("w", "801"), ("f", "webp")]),
            Accepts::Other,
        );
        assert_ne!(a.key, c.key);
        assert_ne!(a.etag, c.etag);
        assert!(a.key.starts_with(&prefix(VAULT, ASSET)));
        assert_eq!(owner(&a.key), Some((VAULT, ASSET)));
    }

    #[test]
    fn auto_is_keyed_by_what_the_client_decodes() {
        let auto = params(&[("w", "800"), ("format", "auto")]);
        let keys: std::collections::BTreeSet<String> =
            [Accepts::Avif, Accepts::Webp, Accepts::Other]
                .into_iter()
                .map(|accepts| variant(VAULT, ASSET, &auto, accepts).key)
                .collect();
        assert_eq!(keys.len(), 3);
    }

    #[test]
    fn another_asset_never_shares_a_variant() {
        let p = params(&[("w", "800")]);
        let other = "asset_01JB0000000000000000000000";
        assert_ne!(
            variant(VAULT, ASSET, &p, Accepts::Other).key,
            variant(VAULT, other, &p, Accepts::Other).key
        );
    }

    #[test]
    fn only_variant_prefixes_are_prefixes() {
        assert!(is_prefix(&prefix(VAULT, ASSET)));
        assert!(!is_prefix(&format!("{VAULT}/p/c/ch/{ASSET}_a.jpg")));
        assert!(!is_prefix("_variants/"));
        assert!(!is_prefix("_variants/x/y/"));
        assert_eq!(owner(&format!("{VAULT}/p/c/ch/{ASSET}_a.jpg")), None);
    }

    #[cfg(feature = "embedded")]
    #[test]
    fn the_sql_prefix_is_the_rust_prefix() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let sql = format!("SELECT {PREFIX_SQL} FROM (SELECT ?1 AS vault_id, ?2 AS id)");
        let got: String = conn
            .query_row(&sql, [VAULT, ASSET], |row| row.get(0))
            .unwrap();
        assert_eq!(got, prefix(VAULT, ASSET));
    }
}
