//! Delivery (docs/API.md#delivery): every asset at a URL a browser can use with no header,
//! `/d/{vaultId}/{partition}/{collection}/{channel}/{filename}`, each segment percent-encoded as
//! an RFC 3986 path segment.
//!
//! A vault's delivery is `public` or `signed`. A signed URL carries `exp` (unix seconds) and `sig`,
//! the unpadded base64url HMAC-SHA256, under the vault's delivery secret, of [`canonical`]: the
//! vault, the encoded path, `exp`, and every other query parameter. So parameters added later (the
//! transforms) are covered too. The current and the previous secret are both accepted, so a
//! rotation does not break URLs already handed out.
//!
//! The vault's settings and the asset are read in one statement ([`lookup`]): one D1 request per
//! delivery.

use crate::ApiError;
use crate::batch::Query;
use crate::db::{Row, Stmt, StmtResult};
use crate::secret::Secret;
use crate::transform::Params;
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::Sha256;
use std::ops::RangeInclusive;

/// The delivery route's path (both its GET and its HEAD).
pub const PATH: &str = "/d/{vaultId}/{partition}/{collection}/{channel}/{filename}";

/// What a segment keeps unencoded: RFC 3986's unreserved characters. The sub-delimiters a segment
/// may carry are encoded too, so that a URL reads the same after any proxy's normalisation.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The longest life of a cached answer, and of a signed URL's private caching.
pub const MAX_AGE_SECONDS: u64 = 3600;

/// A delivery's path, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPath {
    pub vault_id: String,
    pub partition: String,
    pub collection: String,
    pub channel: String,
    pub filename: String,
}

fn encode(segment: &str) -> impl std::fmt::Display + '_ {
    utf8_percent_encode(segment, SEGMENT)
}

/// The delivery path of an asset, every segment encoded: what `imgbt url` prints after the host.
pub fn path(
    vault_id: &str,
    partition: &str,
    collection: &str,
    channel: &str,
    filename: &str,
) -> String {
    format!(
        "/d/{}/{}/{}/{}/{}",
        encode(vault_id),
        encode(partition),
        encode(collection),
        encode(channel),
        encode(filename)
    )
}

impl DeliveryPath {
    /// The delivery path that ends `raw` (a stage or `/lambda-url/<fn>` may come before it), or
    /// `None` when its last six segments are not `d`, a vault id and four segments that decode to
    /// UTF-8. An API route's path never has this shape: its vault id follows `vaults`, not `d`.
    pub fn parse(raw: &str) -> Option<Self> {
        let [vault, partition, collection, channel, filename] = raw_segments(raw)?;
        let decode = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|text| text.into_owned())
        };
        Some(DeliveryPath {
            vault_id: vault.to_owned(),
            partition: decode(partition)?,
            collection: decode(collection)?,
            channel: decode(channel)?,
            filename: decode(filename)?,
        })
    }

    /// The path as [`path`] encodes it: what a signature covers, however the request spelled it.
    pub fn encoded(&self) -> String {
        path(
            &self.vault_id,
            &self.partition,
            &self.collection,
            &self.channel,
            &self.filename,
        )
    }
}

/// The vault id and the four hierarchy segments of a delivery path as they are in `raw`, still
/// encoded; `None` when `raw` does not end in a delivery path.
pub fn raw_segments(raw: &str) -> Option<[&str; 5]> {
    let segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
    let start = segments.len().checked_sub(6)?;
    let [d, vault, partition, collection, channel, filename] = segments[start..] else {
        return None;
    };
    (d == "d" && crate::ids::is_id("vault_", vault))
        .then_some([vault, partition, collection, channel, filename])
}

/// The string a signature covers. Names and values are form-encoded, so that `&` or `=` inside a
/// value cannot make two different queries read the same.
pub fn canonical(vault_id: &str, path: &str, exp: u64, params: &[(String, String)]) -> String {
    // The parameters as [`normalise`] leaves them, less `exp` and `sig`: so never the CDN's own
    // `accept`, nor a parameter no delivery reads.
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in normalise(params) {
        if name != "exp" && name != "sig" {
            query.append_pair(&name, &value);
        }
    }
    format!("{vault_id}\n{path}\n{exp}\n{}", query.finish())
}

/// The query parameters a delivery URL may carry, by their canonical names: issue 18's transforms
/// and the signature's `exp` and `sig`. The list of `infra/cdn/viewer-request.js`, whose
/// normalisation [`normalise`] repeats, so that a URL signed here still verifies after the CDN
/// rewrote its query (tests/tests/cdn.rs proves the two agree).
pub const PARAMETERS: [&str; 16] = [
    "w",
    "h",
    "dpr",
    "fit",
    "format",
    "quality",
    "blur",
    "sharpen",
    "rotate",
    "flip",
    "grayscale",
    "crop",
    "gravity",
    "bg",
    "exp",
    "sig",
];

/// Short names a URL may use for a parameter: (alias, canonical name).
pub const ALIASES: [(&str, &str); 4] = [
    ("f", "format"),
    ("q", "quality"),
    ("rt", "rotate"),
    ("g", "gravity"),
];

/// `params` as the CDN's viewer function leaves them: names lowercased and aliases mapped onto
/// canonical names, unknown names dropped, one value per name (the canonical spelling first, then
/// the first name in sorted order, then the first written), sorted by name.
pub fn normalise(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut written: Vec<&(String, String)> = params.iter().collect();
    // Stable: a name written twice keeps its first value, as CloudFront's `value` does.
    written.sort_by(|a, b| a.0.cmp(&b.0));
    let mut picked: std::collections::BTreeMap<&str, (&str, bool)> = Default::default();
    for (raw, value) in written {
        let lower = raw.to_lowercase();
        let name = ALIASES
            .iter()
            .find(|(alias, _)| *alias == lower)
            .map_or(lower.as_str(), |(_, name)| name);
        let Some(name) = PARAMETERS.iter().find(|known| **known == name) else {
            continue;
        };
        let exact = raw == name;
        if let Some((_, spelled)) = picked.get(name)
            && (*spelled || !exact)
        {
            continue;
        }
        picked.insert(name, (value, exact));
    }
    picked
        .into_iter()
        .map(|(name, (value, _))| (name.to_owned(), value.to_owned()))
        .collect()
}

/// The transform parameters of a query as a delivery reads them ([`normalise`]d, without `exp`
/// and `sig`), checked: 400 INVALID_PARAMS naming a bad one. The delivery transforms with them;
/// the URL route puts them in the URLs it signs, so the two cannot read a query differently.
pub fn transform_query(
    pairs: &[(String, String)],
) -> Result<(Vec<(String, String)>, Params), ApiError> {
    let transform: Vec<(String, String)> = normalise(pairs)
        .into_iter()
        .filter(|(name, _)| name != "exp" && name != "sig")
        .collect();
    let params = Params::parse(transform.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .map_err(|e| ApiError::InvalidParams(e.to_string()))?;
    Ok((transform, params))
}

fn mac(secret: &str, message: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(message.as_bytes());
    mac
}

/// The `sig` of a URL: unpadded base64url of HMAC-SHA256 under `secret` (the secret's text is the
/// key) over [`canonical`].
pub fn sign(
    secret: &str,
    vault_id: &str,
    path: &str,
    exp: u64,
    params: &[(String, String)],
) -> String {
    let tag = mac(secret, &canonical(vault_id, path, exp, params)).finalize();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.into_bytes())
}

/// The query of a signed URL: `params`, then `exp` and `sig`.
pub fn signed_query(
    secret: &str,
    vault_id: &str,
    path: &str,
    exp: u64,
    params: &[(String, String)],
) -> String {
    let sig = sign(secret, vault_id, path, exp, params);
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    query.append_pair("exp", &exp.to_string());
    query.append_pair("sig", &sig);
    query.finish()
}

/// A new delivery secret: 32 random bytes, in hex.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    crate::random::fill(&mut bytes);
    crate::auth::hex(&bytes)
}

pub const EXPIRED: &str = "this URL expired";
pub const BAD_SIGNATURE: &str =
    "this vault's delivery is signed: the URL needs a valid exp and sig (see `imgbt url`)";

/// The secrets a signature may be made with: during a rotation, the previous one too.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub current: Option<Secret>,
    pub previous: Option<Secret>,
}

/// Checks the `exp` and `sig` of `query` for `path` of `vault_id` at `now_s` (unix seconds), and
/// returns `exp`. Expired is 403 with its own message (the URL was good once); a missing, malformed
/// or wrong signature is 403. The comparison is `hmac`'s, in constant time.
pub fn verify(
    secrets: &Secrets,
    vault_id: &str,
    path: &str,
    query: &[(String, String)],
    now_s: u64,
) -> Result<u64, ApiError> {
    let bad = || ApiError::Forbidden(BAD_SIGNATURE);
    let one = |name: &str| {
        let mut found = query.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        match (found.next(), found.next()) {
            (Some(value), None) => Ok(value.as_str()),
            _ => Err(bad()),
        }
    };
    let exp_text = one("exp")?;
    let exp: u64 = exp_text
        .parse()
        .ok()
        .filter(|_| exp_text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(bad)?;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(one("sig")?)
        .map_err(|_| bad())?;
    let message = canonical(vault_id, path, exp, query);
    let valid = [&secrets.current, &secrets.previous]
        .into_iter()
        .flatten()
        .any(|secret| mac(secret.expose(), &message).verify_slice(&sig).is_ok());
    if !valid {
        return Err(bad());
    }
    // The signature first: an expiry is reported only for a URL this vault signed.
    if exp <= now_s {
        return Err(ApiError::Forbidden(EXPIRED));
    }
    Ok(exp)
}

/// How a vault delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Public,
    Signed,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "public" => Some(Mode::Public),
            "signed" => Some(Mode::Signed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Public => "public",
            Mode::Signed => "signed",
        }
    }
}

/// The asset a delivery path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: String,
    pub r2_key: String,
    pub size: u64,
    pub mime_type: String,
}

/// The vault's delivery settings and the asset at the path, as [`lookup`] reads them.
#[derive(Debug, Clone)]
pub struct Found {
    pub mode: Mode,
    pub secrets: Secrets,
    pub asset: Option<Stored>,
}

// The vault's settings with the asset, if any, beside them: one row for a vault, none without.
// The join's columns are the assets table's UNIQUE key, so it is one index probe.
const LOOKUP: &str = "SELECT v.delivery, v.delivery_secret, v.delivery_secret_previous, \
     a.id AS asset_id, a.r2_key, a.size, a.mime_type \
     FROM vaults AS v LEFT JOIN assets AS a ON a.vault_id = v.id AND a.partition = ?2 \
     AND a.collection = ?3 AND a.channel = ?4 AND a.filename = ?5 WHERE v.id = ?1";

fn read_found(result: StmtResult) -> Result<Option<Found>, ApiError> {
    let Some(row) = result.rows.first() else {
        return Ok(None);
    };
    let text = |column: &str| row.text_opt(column);
    let mode = text("delivery")
        .as_deref()
        .and_then(Mode::parse)
        .ok_or_else(|| ApiError::internal("a vault row has no delivery mode"))?;
    Ok(Some(Found {
        mode,
        secrets: Secrets {
            current: text("delivery_secret").map(Secret::new),
            previous: text("delivery_secret_previous").map(Secret::new),
        },
        asset: read_asset(row)?,
    }))
}

fn read_asset(row: &Row) -> Result<Option<Stored>, ApiError> {
    let Some(id) = row.get("asset_id").and_then(|v| v.as_str()) else {
        return Ok(None);
    };
    let text = |column: &str| {
        row.text_opt(column)
            .ok_or_else(|| ApiError::internal(format!("asset row has no {column}")))
    };
    Ok(Some(Stored {
        id: id.to_owned(),
        r2_key: text("r2_key")?,
        size: row.get("size").and_then(|v| v.as_u64()).unwrap_or(0),
        mime_type: text("mime_type")?,
    }))
}

/// The vault's settings and the asset at `path` (the filename in NFC, as stored): `None` when
/// there is no such vault.
pub fn lookup(path: &DeliveryPath) -> Query<Option<Found>> {
    use unicode_normalization::UnicodeNormalization;
    let filename: String = path.filename.nfc().collect();
    Query::new(
        Stmt::new(
            LOOKUP,
            vec![
                path.vault_id.as_str().into(),
                path.partition.as_str().into(),
                path.collection.as_str().into(),
                path.channel.as_str().into(),
                filename.into(),
            ],
        ),
        read_found,
    )
}

/// The strong ETag of an asset: its id (an asset's bytes never change; a new upload is a new id).
pub fn etag(asset_id: &str) -> String {
    format!("\"{asset_id}\"")
}

/// Whether `If-None-Match` (a list of tags, or `*`) names `etag`. Weak comparison, as RFC 9110
/// asks of If-None-Match: `W/"x"` matches `"x"`.
pub fn none_match(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// `Cache-Control` for a delivery: public vaults are cached an hour anywhere; a signed URL only by
/// the browser, and never past its expiry.
pub fn cache_control(exp: Option<u64>, now_s: u64) -> String {
    match exp {
        None => format!("public, max-age={MAX_AGE_SECONDS}"),
        Some(exp) => format!(
            "private, max-age={}",
            exp.saturating_sub(now_s).min(MAX_AGE_SECONDS)
        ),
    }
}

/// What a `Range` header asks of an object of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranged {
    /// No range, or one the answer may ignore (malformed, or several): the whole object.
    Whole,
    /// One satisfiable range: 206 with these bytes.
    Part(RangeInclusive<u64>),
    /// 416, with `Content-Range: bytes */{size}`.
    Unsatisfiable,
}

/// Reads a `Range` header (RFC 9110 §14) with `http-range-header`. A header the parser refuses is
/// ignored, as RFC 9110 allows; so are several ranges (the answer is then the whole object,
/// never a multipart body).
pub fn range(header: Option<&str>, size: u64) -> Ranged {
    use http_range_header::{EndPosition, StartPosition};
    let Some(header) = header else {
        return Ranged::Whole;
    };
    let Ok(parsed) = http_range_header::parse_range_header(header) else {
        return Ranged::Whole;
    };
    let [one] = parsed.ranges.as_slice() else {
        return Ranged::Whole;
    };
    if size == 0 {
        return Ranged::Unsatisfiable;
    }
    // A suffix longer than the object is the whole object (RFC 9110 §14.1.2); the crate refuses it.
    if let (StartPosition::FromLast(n), EndPosition::LastByte) = (one.start, one.end)
        && n > size
    {
        return Ranged::Part(0..=size - 1);
    }
    match parsed.validate(size).as_deref() {
        Ok([part]) if *part.start() < size && part.start() <= part.end() => {
            Ranged::Part(part.clone())
        }
        _ => Ranged::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAULT: &str = "vault_01JD0000000000000000000000";

    #[test]
    fn a_path_round_trips_through_its_encoding() {
        let encoded = path(VAULT, "p", "c a", "ch/x", "été 100%.jpg");
        assert_eq!(
            encoded,
            format!("/d/{VAULT}/p/c%20a/ch%2Fx/%C3%A9t%C3%A9%20100%25.jpg")
        );
        let parsed = DeliveryPath::parse(&encoded).unwrap();
        assert_eq!(parsed.channel, "ch/x");
        assert_eq!(parsed.filename, "été 100%.jpg");
        assert_eq!(parsed.encoded(), encoded);
        // A stage before it is allowed; an API path, a bad vault id or bad UTF-8 is not.
        assert!(DeliveryPath::parse(&format!("/prod{encoded}")).is_some());
        assert!(DeliveryPath::parse(&format!("/d/{VAULT}/p/c/ch")).is_none());
        assert!(DeliveryPath::parse("/d/vault_x/p/c/ch/f").is_none());
        assert!(DeliveryPath::parse(&format!("/d/{VAULT}/p/c/ch/%FF")).is_none());
        assert!(DeliveryPath::parse(&format!("/api/v1/vaults/{VAULT}/assets/a")).is_none());
        assert!(DeliveryPath::parse(&format!("/e/{VAULT}/p/c/ch/f")).is_none());
    }

    fn pairs(query: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn a_signature_covers_the_vault_path_expiry_and_parameters() {
        let secret = new_secret();
        assert_eq!(secret.len(), 64);
        let p = path(VAULT, "p", "c", "ch", "a.png");
        let params = vec![("w".to_owned(), "800".to_owned())];
        let query = pairs(&signed_query(&secret, VAULT, &p, 2000, &params));
        let secrets = Secrets {
            current: Some(Secret::new(secret.clone())),
            previous: None,
        };
        assert_eq!(verify(&secrets, VAULT, &p, &query, 1000).unwrap(), 2000);
        assert!(matches!(
            verify(&secrets, VAULT, &p, &query, 2000),
            Err(ApiError::Forbidden(EXPIRED))
        ));
        let refused = |vault: &str, path: &str, query: &[(String, String)]| {
            matches!(
                verify(&secrets, vault, path, query, 1000),
                Err(ApiError::Forbidden(BAD_SIGNATURE))
            )
        };
        let other = VAULT.replace('0', "1");
        assert!(refused(&other, &p, &query));
        assert!(refused(
            VAULT,
            &path(VAULT, "p", "c", "ch", "b.png"),
            &query
        ));
        let mut tampered = query.clone();
        tampered[0].1 = "801".into();
        assert!(refused(VAULT, &p, &tampered));
        let mut added = query.clone();
        added.push(("h".into(), "1".into()));
        assert!(refused(VAULT, &p, &added));
        let later = query
            .iter()
            .map(|(n, v)| match n.as_str() {
                "exp" => (n.clone(), "3000".to_owned()),
                _ => (n.clone(), v.clone()),
            })
            .collect::<Vec<_>>();
        assert!(refused(VAULT, &p, &later));
        assert!(refused(VAULT, &p, &params));
        // Parameter order does not matter; a value holding `&` is not two parameters.
        let two = vec![
            ("bg".to_owned(), "1".to_owned()),
            ("blur".to_owned(), "2".to_owned()),
        ];
        let one = vec![("bg".to_owned(), "1&blur=2".to_owned())];
        assert_ne!(canonical(VAULT, &p, 1, &two), canonical(VAULT, &p, 1, &one));
        let swapped: Vec<_> = two.iter().rev().cloned().collect();
        assert_eq!(
            canonical(VAULT, &p, 1, &two),
            canonical(VAULT, &p, 1, &swapped)
        );
    }

    #[test]
    fn the_signed_string_reads_a_query_as_the_cdn_leaves_it() {
        let p = path(VAULT, "p", "c", "ch", "a.png");
        let own = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let written = own(&[
            ("W", "800"),
            ("q", "80"),
            ("f", "auto"),
            ("utm_source", "mail"),
            ("accept", "avif"),
            ("RT", "90"),
        ]);
        let rewritten = own(&[
            ("accept", "webp"),
            ("format", "auto"),
            ("quality", "80"),
            ("rotate", "90"),
            ("w", "800"),
        ]);
        assert_eq!(
            canonical(VAULT, &p, 9, &written),
            canonical(VAULT, &p, 9, &rewritten)
        );
        assert_eq!(
            canonical(VAULT, &p, 9, &written),
            format!("{VAULT}\n{p}\n9\nformat=auto&quality=80&rotate=90&w=800")
        );
        // A name and its alias: the canonical spelling wins, in either order; else the first.
        for pairs in [
            own(&[("quality", "80"), ("q", "50")]),
            own(&[("q", "50"), ("quality", "80")]),
            own(&[("quality", "80"), ("quality", "50")]),
        ] {
            assert_eq!(normalise(&pairs), own(&[("quality", "80")]), "{pairs:?}");
        }
        // A known parameter still counts: changing it changes the string.
        assert_ne!(
            canonical(VAULT, &p, 9, &own(&[("f", "webp")])),
            canonical(VAULT, &p, 9, &own(&[("f", "avif")]))
        );
    }

    #[test]
    fn the_previous_secret_is_accepted_beside_the_current_one() {
        let (old, new) = (new_secret(), new_secret());
        let p = path(VAULT, "p", "c", "ch", "a.png");
        let query = pairs(&signed_query(&old, VAULT, &p, 2000, &[]));
        let rotated = Secrets {
            current: Some(Secret::new(new.clone())),
            previous: Some(Secret::new(old.clone())),
        };
        assert!(verify(&rotated, VAULT, &p, &query, 1000).is_ok());
        let twice = Secrets {
            current: Some(Secret::new(new_secret())),
            previous: Some(Secret::new(new)),
        };
        assert!(verify(&twice, VAULT, &p, &query, 1000).is_err());
        assert!(verify(&Secrets::default(), VAULT, &p, &query, 1000).is_err());
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(range(None, 10), Ranged::Whole);
        assert_eq!(range(Some("bytes=0-3"), 10), Ranged::Part(0..=3));
        assert_eq!(range(Some("bytes=5-"), 10), Ranged::Part(5..=9));
        assert_eq!(range(Some("bytes=-4"), 10), Ranged::Part(6..=9));
        assert_eq!(range(Some("bytes=-40"), 10), Ranged::Part(0..=9));
        assert_eq!(range(Some("bytes=2-400"), 10), Ranged::Part(2..=9));
        assert_eq!(range(Some("bytes=10-"), 10), Ranged::Unsatisfiable);
        assert_eq!(range(Some("bytes=0-0"), 0), Ranged::Unsatisfiable);
        assert_eq!(range(Some("bytes=0-1, 4-5"), 10), Ranged::Whole);
        assert_eq!(range(Some("items=0-1"), 10), Ranged::Whole);
        assert_eq!(range(Some("bytes=x-1"), 10), Ranged::Whole);
    }

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_any() {
        let tag = etag("asset_1");
        assert!(none_match("\"asset_1\"", &tag));
        assert!(none_match("\"x\", W/\"asset_1\"", &tag));
        assert!(none_match("*", &tag));
        assert!(!none_match("\"asset_2\"", &tag));
    }

    #[test]
    fn cache_control_suits_the_vault() {
        assert_eq!(cache_control(None, 5), "public, max-age=3600");
        assert_eq!(cache_control(Some(65), 5), "private, max-age=60");
        assert_eq!(cache_control(Some(100_000), 5), "private, max-age=3600");
    }
}
