//! AWS Signature Version 4 for S3, as AWS documents it ("Authenticating Requests (AWS Signature
//! Version 4)" in the S3 API reference): a canonical request, a string to sign over its SHA-256,
//! and an HMAC-SHA256 key derived from the secret for one day, region and service.
//!
//! Two forms: [`Signer::authorization`] signs a request in its `Authorization` header, and
//! [`Signer::presign`] signs a URL in its query (`X-Amz-*` parameters, for a client without
//! the secret). Paths are handed in already encoded ([`encode_path`]), as they are sent: S3 signs
//! the path as it is on the wire, each segment encoded once.

use crate::deps::Secret;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::time::{Duration, SystemTime};

/// The payload hash of a request whose body is not hashed (TLS protects it in transit).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The longest validity S3 accepts for a presigned URL: seven days.
pub const MAX_PRESIGNED_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// The credentials and scope requests are signed with.
pub struct Signer {
    access_key_id: String,
    secret: Secret,
    region: String,
    service: &'static str,
}

/// One request to sign: the path as sent (encoded), its query parameters (not encoded), and the
/// headers to sign, lowercase names (`host` among them), values as sent.
pub struct Parts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub headers: &'a [(&'a str, &'a str)],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &self.secret)
            .field("region", &self.region)
            .finish()
    }
}

impl Signer {
    pub fn new(access_key_id: &str, secret: &Secret, region: &str, service: &'static str) -> Self {
        Signer {
            access_key_id: access_key_id.to_owned(),
            secret: secret.clone(),
            region: region.to_owned(),
            service,
        }
    }

    /// The headers that sign `parts` at `at` with `payload_hash` (a hex SHA-256 of the body, or
    /// [`UNSIGNED_PAYLOAD`]): `x-amz-date`, `x-amz-content-sha256` and `authorization`. The two
    /// `x-amz-` headers are signed too, so `parts.headers` must not hold them.
    pub fn authorization(
        &self,
        parts: &Parts<'_>,
        payload_hash: &str,
        at: SystemTime,
    ) -> [(&'static str, String); 3] {
        let stamp = Stamp::of(at);
        let mut headers: Vec<(&str, &str)> = parts.headers.to_vec();
        headers.push(("x-amz-content-sha256", payload_hash));
        headers.push(("x-amz-date", &stamp.long));
        let canonical = canonical_request(
            parts.method,
            parts.path,
            &canonical_query(parts.query),
            &headers,
            payload_hash,
        );
        let signature = self.signature(&stamp, &canonical.text);
        let authorization = format!(
            "{ALGORITHM} Credential={}/{},SignedHeaders={},Signature={signature}",
            self.access_key_id,
            self.scope(&stamp),
            canonical.signed_headers
        );
        [
            ("x-amz-date", stamp.long.clone()),
            ("x-amz-content-sha256", payload_hash.to_owned()),
            ("authorization", authorization),
        ]
    }

    /// The query string (encoded, without `?`) that signs `parts` for `expires_in` from `at`:
    /// `parts.query` and the `X-Amz-*` parameters, `X-Amz-Signature` last. The body is not signed
    /// (`UNSIGNED-PAYLOAD`): whoever holds the URL sends it.
    pub fn presign(&self, parts: &Parts<'_>, at: SystemTime, expires_in: Duration) -> String {
        let stamp = Stamp::of(at);
        let credential = format!("{}/{}", self.access_key_id, self.scope(&stamp));
        let expires = expires_in.as_secs().to_string();
        let mut names: Vec<&str> = parts.headers.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        let signed_headers = names.join(";");
        let mut query: Vec<(&str, &str)> = parts.query.to_vec();
        query.extend([
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", credential.as_str()),
            ("X-Amz-Date", stamp.long.as_str()),
            ("X-Amz-Expires", expires.as_str()),
            ("X-Amz-SignedHeaders", signed_headers.as_str()),
        ]);
        let query = canonical_query(&query);
        let canonical = canonical_request(
            parts.method,
            parts.path,
            &query,
            parts.headers,
            UNSIGNED_PAYLOAD,
        );
        let signature = self.signature(&stamp, &canonical.text);
        format!("{query}&X-Amz-Signature={signature}")
    }

    fn scope(&self, stamp: &Stamp) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            stamp.day, self.region, self.service
        )
    }

    fn signature(&self, stamp: &Stamp, canonical_request: &str) -> String {
        let to_sign = format!(
            "{ALGORITHM}\n{}\n{}\n{}",
            stamp.long,
            self.scope(stamp),
            hex(&Sha256::digest(canonical_request.as_bytes()))
        );
        let secret = format!("AWS4{}", self.secret.expose());
        let key = hmac(secret.as_bytes(), stamp.day.as_bytes());
        let key = hmac(&key, self.region.as_bytes());
        let key = hmac(&key, self.service.as_bytes());
        let key = hmac(&key, b"aws4_request");
        hex(&hmac(&key, to_sign.as_bytes()))
    }
}

/// `YYYYMMDD'T'HHMMSS'Z'` and `YYYYMMDD` of one instant, in UTC.
struct Stamp {
    long: String,
    day: String,
}

impl Stamp {
    fn of(at: SystemTime) -> Stamp {
        let t = time::OffsetDateTime::from(at);
        let day = format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day());
        let long = format!("{day}T{:02}{:02}{:02}Z", t.hour(), t.minute(), t.second());
        Stamp { long, day }
    }
}

struct Canonical {
    text: String,
    signed_headers: String,
}

/// Method, path, query, headers (lowercase, sorted, values trimmed and inner runs of spaces made
/// one), the signed header names, and the payload hash, one per line.
fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
) -> Canonical {
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), collapse_spaces(value)))
        .collect();
    headers.sort();
    let mut text = format!("{method}\n{path}\n{query}\n");
    for (name, value) in &headers {
        let _ = writeln!(text, "{name}:{value}");
    }
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let _ = write!(text, "\n{signed_headers}\n{payload_hash}");
    Canonical {
        text,
        signed_headers,
    }
}

fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Each name and value encoded ([`encode`], `/` too), sorted by name then value, joined with `&`.
/// A parameter without a value is `name=`. The same text is the query sent.
pub fn canonical_query(params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(name, value)| (encode(name, false), encode(value, false)))
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (name, value)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// An object key as a path: every byte but `A-Za-z0-9-._~` percent-encoded (uppercase hex), each
/// segment once, the `/` between segments kept.
pub fn encode_path(key: &str) -> String {
    encode(key, true)
}

/// S3's URI encoding: unreserved characters kept, every other byte of the UTF-8 as `%XX`;
/// `/` kept only when `keep_slash`.
pub fn encode(text: &str, keep_slash: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(byte >> 4)] as char);
                out.push(HEX[usize::from(byte & 0xF)] as char);
            }
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any size");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    //! The examples of AWS's S3 API reference, "Authenticating Requests: Using the Authorization
    //! Header" and "… Using Query Parameters": their credentials, bucket, time and the signatures
    //! they publish.
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const HOST: &str = "examplebucket.s3.amazonaws.com";

    fn aws() -> Signer {
        Signer::new(
            "AKIAIOSFODNN7EXAMPLE",
            &Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            "us-east-1",
            "s3",
        )
    }

    /// 2013-05-24T00:00:00Z, the examples' time.
    fn may_24_2013() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn authorization(parts: &Parts<'_>, payload_hash: &str) -> String {
        let headers = aws().authorization(parts, payload_hash, may_24_2013());
        assert_eq!(headers[0], ("x-amz-date", "20130524T000000Z".to_owned()));
        assert_eq!(
            headers[1],
            ("x-amz-content-sha256", payload_hash.to_owned())
        );
        headers[2].1.clone()
    }

    #[test]
    fn get_object_with_a_range() {
        let parts = Parts {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &[("host", HOST), ("range", "bytes=0-9")],
        };
        assert_eq!(
            authorization(&parts, EMPTY_SHA256),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn put_object_with_a_dollar_in_the_key() {
        let body = b"Welcome to Amazon S3.";
        let hash = hex(&Sha256::digest(body));
        assert_eq!(
            hash,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let path = format!("/{}", encode_path("test$file.text"));
        assert_eq!(path, "/test%24file.text");
        let parts = Parts {
            method: "PUT",
            path: &path,
            query: &[],
            headers: &[
                ("Host", HOST),
                ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
        };
        assert_eq!(
            authorization(&parts, &hash),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,\
             Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    #[test]
    fn get_bucket_lifecycle_a_parameter_without_value() {
        let parts = Parts {
            method: "GET",
            path: "/",
            query: &[("lifecycle", "")],
            headers: &[("host", HOST)],
        };
        assert!(authorization(&parts, EMPTY_SHA256).ends_with(
            "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        ));
    }

    #[test]
    fn list_objects_query_sorted_by_name() {
        let parts = Parts {
            method: "GET",
            path: "/",
            query: &[("prefix", "J"), ("max-keys", "2")],
            headers: &[("host", HOST)],
        };
        assert!(authorization(&parts, EMPTY_SHA256).ends_with(
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        ));
    }

    #[test]
    fn presigned_get_object() {
        let parts = Parts {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &[("host", HOST)],
        };
        let query = aws().presign(&parts, may_24_2013(), Duration::from_secs(86_400));
        assert_eq!(
            query,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    #[test]
    fn another_secret_or_time_is_another_signature() {
        let parts = Parts {
            method: "GET",
            path: "/test.txt",
            query: &[],
            headers: &[("host", HOST), ("range", "bytes=0-9")],
        };
        let signature =
            |signer: &Signer, at| signer.authorization(&parts, EMPTY_SHA256, at)[2].1.clone();
        let reference = signature(&aws(), may_24_2013());
        let other = Signer::new(
            "AKIAIOSFODNN7EXAMPLE",
            &Secret::new("other"),
            "us-east-1",
            "s3",
        );
        assert_ne!(signature(&other, may_24_2013()), reference);
        assert_ne!(
            signature(&aws(), may_24_2013() + Duration::from_secs(1)),
            reference
        );
        assert!(!reference.contains("wJalrXUtnFEMI"));
        assert!(!format!("{:?}", aws()).contains("wJalrXUtnFEMI"));
    }

    #[test]
    fn awkward_keys_are_encoded_once_per_segment() {
        assert_eq!(
            encode_path("a b+c&d%e~f.g_h-i"),
            "a%20b%2Bc%26d%25e~f.g_h-i"
        );
        assert_eq!(
            encode_path("v/p/c/ch/asset_1_ü写.png"),
            "v/p/c/ch/asset_1_%C3%BC%E5%86%99.png"
        );
        assert_eq!(
            encode_path("a=b;c:d@e,f!g'h(i)j*k"),
            "a%3Db%3Bc%3Ad%40e%2Cf%21g%27h%28i%29j%2Ak"
        );
        // Already-encoded text is encoded again: a key is never taken for an encoding.
        assert_eq!(encode_path("%20"), "%2520");
        assert_eq!(encode("a/b", false), "a%2Fb");
    }

    #[test]
    fn canonical_query_encodes_and_sorts() {
        assert_eq!(
            canonical_query(&[
                ("prefix", "a b/ü"),
                ("list-type", "2"),
                ("continuation-token", "x+y=z")
            ]),
            "continuation-token=x%2By%3Dz&list-type=2&prefix=a%20b%2F%C3%BC"
        );
    }

    #[test]
    fn header_values_are_trimmed_and_inner_spaces_collapsed() {
        let canonical = canonical_request(
            "GET",
            "/",
            "",
            &[("X-Amz-Meta-A", "  one   two "), ("host", "h")],
            UNSIGNED_PAYLOAD,
        );
        assert_eq!(
            canonical.text,
            "GET\n/\n\nhost:h\nx-amz-meta-a:one two\n\nhost;x-amz-meta-a\nUNSIGNED-PAYLOAD"
        );
    }
}
