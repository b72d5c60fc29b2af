//! Signed URLs of the local object server (`imgbt dev objects`): the embedded default's stand-in
//! for R2's presigned GETs. A Lambda response cannot carry more than about 6 MB, so on R2 the
//! `content` function redirects to R2; with this server configured the embedded default
//! redirects too, and large files download under `cargo lambda watch` as they do in production.
//!
//! A URL is `{base}/{key, each segment percent-encoded}?exp=…&response-content-type=…&sig=…`:
//! `exp` in Unix seconds, the content type the server answers with (R2's parameter of that
//! name), and `sig` = base64url (no padding) of HMAC-SHA256(secret, "{exp}\n{content type}\n{key}").
//! The key goes last: `exp` is digits and a content type holds no line break (both are checked),
//! so the signed message splits one way only, whatever the key holds.
//!
//! The secret comes from `IMGBT_LOCAL_OBJECTS_SECRET` (`./scripts/dev.sh` generates it once into
//! the data directory). It is held in a [`Secret`] and never printed.

use crate::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use sha2::Sha256;

/// The base URL of the local object server, e.g. `http://127.0.0.1:9001`.
pub const URL_VAR: &str = "IMGBT_LOCAL_OBJECTS_URL";
/// The HMAC key both the functions and the server hold.
pub const SECRET_VAR: &str = "IMGBT_LOCAL_OBJECTS_SECRET";
/// The shortest secret accepted: 32 characters (dev.sh writes 64 hex digits, 32 random bytes).
pub const MIN_SECRET_LEN: usize = 32;

/// The query parameters of a signed URL.
pub const EXPIRES: &str = "exp";
pub const CONTENT_TYPE: &str = "response-content-type";
pub const SIGNATURE: &str = "sig";

/// What RFC 3986 allows unencoded in a path segment (unreserved, sub-delims, `:` and `@`):
/// everything else is percent-encoded, `/` included, so a segment stays one segment.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The HMAC key of local object URLs.
#[derive(Clone, Debug)]
pub struct UrlSecret(Secret);

/// Why a request to the object server is refused (each is a 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Unsigned,
    BadSignature,
    Expired,
}

impl Refused {
    /// The message of the 403's envelope.
    pub fn message(self) -> &'static str {
        match self {
            Refused::Unsigned => {
                "this URL is not signed: it needs exp, response-content-type and sig"
            }
            Refused::BadSignature => "this URL's signature does not match",
            Refused::Expired => "this URL expired",
        }
    }
}

/// What a valid signature vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub content_type: String,
    /// Unix seconds.
    pub expires_at: u64,
}

impl UrlSecret {
    pub fn new(secret: Secret) -> Result<Self, &'static str> {
        if secret.expose().len() < MIN_SECRET_LEN {
            return Err("IMGBT_LOCAL_OBJECTS_SECRET must be at least 32 characters");
        }
        Ok(UrlSecret(secret))
    }

    fn mac(&self, key: &str, content_type: &str, expires_at: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(format!("{expires_at}\n{content_type}\n{key}").as_bytes());
        mac
    }

    /// The query of a signed URL for `key`.
    pub fn sign_query(&self, key: &str, content_type: &str, expires_at: u64) -> String {
        let sig = self
            .mac(key, content_type, expires_at)
            .finalize()
            .into_bytes();
        form_urlencoded::Serializer::new(String::new())
            .append_pair(EXPIRES, &expires_at.to_string())
            .append_pair(CONTENT_TYPE, content_type)
            .append_pair(SIGNATURE, &URL_SAFE_NO_PAD.encode(sig))
            .finish()
    }

    /// Checks a request for `key` (its path, decoded) with `query` at `now` (Unix seconds). The
    /// signature is checked in constant time, before the expiry, so that a changed `exp` is a
    /// bad signature. A signed parameter given twice is refused: which one counts is ambiguous.
    pub fn verify(&self, key: &str, query: Option<&str>, now: u64) -> Result<Signed, Refused> {
        let (mut exp, mut content_type, mut sig) = (None, None, None);
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let slot = match name.as_ref() {
                EXPIRES => &mut exp,
                CONTENT_TYPE => &mut content_type,
                SIGNATURE => &mut sig,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(Refused::BadSignature);
            }
        }
        let (Some(exp), Some(content_type), Some(sig)) = (exp, content_type, sig) else {
            return Err(Refused::Unsigned);
        };
        let expires_at = (!exp.is_empty() && exp.bytes().all(|b| b.is_ascii_digit()))
            .then(|| exp.parse::<u64>().ok())
            .flatten()
            .ok_or(Refused::BadSignature)?;
        if content_type.chars().any(char::is_control) {
            return Err(Refused::BadSignature);
        }
        let sig = URL_SAFE_NO_PAD
            .decode(sig.as_bytes())
            .map_err(|_| Refused::BadSignature)?;
        self.mac(key, &content_type, expires_at)
            .verify_slice(&sig)
            .map_err(|_| Refused::BadSignature)?;
        if expires_at < now {
            return Err(Refused::Expired);
        }
        Ok(Signed {
            content_type,
            expires_at,
        })
    }
}

/// Where the local object server is, and its secret: what the embedded store needs to presign.
#[derive(Clone, Debug)]
pub struct ObjectUrls {
    base: String,
    secret: UrlSecret,
}

impl ObjectUrls {
    pub fn new(base: &str, secret: UrlSecret) -> Result<Self, &'static str> {
        let base = base.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err("IMGBT_LOCAL_OBJECTS_URL must be an http:// or https:// URL");
        }
        Ok(ObjectUrls {
            base: base.to_owned(),
            secret,
        })
    }

    /// [`URL_VAR`] and [`SECRET_VAR`] through `lookup`: both set, or neither (`None`: the
    /// embedded store has no URLs, and `content` serves small files itself).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, &'static str> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        match (get(URL_VAR), get(SECRET_VAR)) {
            (None, None) => Ok(None),
            (Some(url), Some(secret)) => {
                Self::new(url.trim(), UrlSecret::new(Secret::new(secret.trim()))?).map(Some)
            }
            _ => Err("set both IMGBT_LOCAL_OBJECTS_URL and IMGBT_LOCAL_OBJECTS_SECRET, or neither"),
        }
    }

    /// The server's base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A URL that serves `key` as `content_type` until `expires_at` (Unix seconds).
    pub fn url(&self, key: &str, content_type: &str, expires_at: u64) -> String {
        let path: Vec<String> = key
            .split('/')
            .map(|segment| utf8_percent_encode(segment, PATH_SEGMENT).to_string())
            .collect();
        format!(
            "{}/{}?{}",
            self.base,
            path.join("/"),
            self.secret.sign_query(key, content_type, expires_at)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> UrlSecret {
        UrlSecret::new(Secret::new("0123456789abcdef0123456789abcdef")).unwrap()
    }

    fn query_of(url: &str) -> &str {
        url.split_once('?').unwrap().1
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires_and_only_for_its_key() {
        let urls = ObjectUrls::new("http://127.0.0.1:9001/", secret()).unwrap();
        let key = "vault_x/p/c/ch/asset_y_a b#?%é.txt";
        let url = urls.url(key, "text/plain; charset=utf-8", 1000);
        assert!(
            url.starts_with(
                "http://127.0.0.1:9001/vault_x/p/c/ch/asset_y_a%20b%23%3F%25%C3%A9.txt?"
            ),
            "{url}"
        );
        let q = query_of(&url);
        let signed = secret().verify(key, Some(q), 1000).unwrap();
        assert_eq!(signed.content_type, "text/plain; charset=utf-8");
        assert_eq!(signed.expires_at, 1000);
        assert_eq!(secret().verify(key, Some(q), 1001), Err(Refused::Expired));
        assert_eq!(
            secret().verify("vault_x/p/c/ch/other", Some(q), 0),
            Err(Refused::BadSignature)
        );
        let other = UrlSecret::new(Secret::new("another secret of at least 32 chars")).unwrap();
        assert_eq!(other.verify(key, Some(q), 0), Err(Refused::BadSignature));
    }

    #[test]
    fn every_signed_parameter_is_covered_and_required() {
        let q = secret().sign_query("k", "image/png", 1000);
        for tampered in [
            q.replace("exp=1000", "exp=2000"),
            q.replace("exp=1000", "exp=+1000"),
            q.replace("image%2Fpng", "text%2Fhtml"),
            format!("{q}&exp=1000"),
            q.replace("sig=", "sig=A"),
        ] {
            assert_eq!(
                secret().verify("k", Some(&tampered), 0),
                Err(Refused::BadSignature),
                "{tampered}"
            );
        }
        for part in ["exp", "response-content-type", "sig"] {
            let without: String = q
                .split('&')
                .filter(|p| !p.starts_with(&format!("{part}=")))
                .collect::<Vec<_>>()
                .join("&");
            assert_eq!(
                secret().verify("k", Some(&without), 0),
                Err(Refused::Unsigned)
            );
        }
        assert_eq!(secret().verify("k", None, 0), Err(Refused::Unsigned));
        // Parameters that are not signed change nothing.
        assert!(secret().verify("k", Some(&format!("{q}&x=1")), 0).is_ok());
    }

    #[test]
    fn configuration_needs_both_variables_and_a_long_secret() {
        let lookup = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(ObjectUrls::from_lookup(lookup(&[])).unwrap().is_none());
        assert!(ObjectUrls::from_lookup(lookup(&[(URL_VAR, "http://127.0.0.1:1")])).is_err());
        assert!(
            ObjectUrls::from_lookup(lookup(&[
                (URL_VAR, "http://127.0.0.1:1"),
                (SECRET_VAR, "short")
            ]))
            .is_err()
        );
        let urls = ObjectUrls::from_lookup(lookup(&[
            (URL_VAR, "http://127.0.0.1:1"),
            (SECRET_VAR, "0123456789abcdef0123456789abcdef"),
        ]))
        .unwrap()
        .unwrap();
        let shown = format!("{urls:?}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }
}
