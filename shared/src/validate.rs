//! Typed inputs. Each type has one constructor that checks its rule (docs/API.md#validation-rules),
//! so a value that exists is valid. Errors are [`ApiError::InvalidParams`] naming the field.

use crate::ApiError;
use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

/// A partition, collection or channel: `^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$`
/// (docs/API.md#path-components).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSegment(String);

pub const PATH_SEGMENT_RULE: &str = "must match ^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$";

impl PathSegment {
    pub fn parse(field: &str, text: &str) -> Result<Self, ApiError> {
        let bytes = text.as_bytes();
        let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok = (1..=64).contains(&bytes.len())
            && edge_ok(bytes[0])
            && edge_ok(bytes[bytes.len() - 1])
            && bytes.iter().all(|&b| edge_ok(b) || b == b'-');
        if ok {
            Ok(PathSegment(text.to_owned()))
        } else {
            Err(ApiError::invalid(field, PATH_SEGMENT_RULE))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored filename: 1–255 bytes of UTF-8, no `/`, `\` or control character, not `.` or `..`
/// (docs/API.md#filenames).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filename(String);

impl Filename {
    /// Normalises `text` to Unicode NFC, then checks the rules on the result, so that a name typed
    /// on a system that sends decomposed characters (macOS's NFD) and the same name typed
    /// elsewhere are one name: one uniqueness slot in a channel, one object key.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let normalized: String = text.nfc().collect();
        let text = normalized.as_str();
        let problem = if text.is_empty() {
            Some("must not be empty")
        } else if text.len() > 255 {
            Some("must be at most 255 bytes")
        } else if text == "." || text == ".." {
            Some("must not be `.` or `..`")
        } else if text.contains(['/', '\\']) {
            Some("must not contain `/` or `\\`")
        } else if text.chars().any(char::is_control) {
            Some("must not contain control characters")
        } else {
            None
        };
        match problem {
            Some(rule) => Err(ApiError::invalid("filename", rule)),
            None => Ok(Filename(text.to_owned())),
        }
    }

    /// The name an uploaded file part carried, reduced to its last path segment
    /// (`C:\x\a.jpg` → `a.jpg`), as a browser on any system may send a full path.
    pub fn from_uploaded_name(name: &str) -> Result<Self, ApiError> {
        let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
        Self::parse(last)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Metadata: a JSON object, at most 16 KiB when serialised. Kept in its compact serialisation
/// (docs/API.md#metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata(String);

pub const MAX_METADATA_BYTES: usize = 16 * 1024;

impl Metadata {
    pub fn empty() -> Self {
        Metadata("{}".to_owned())
    }

    /// From the upload field, which carries the object as JSON text.
    pub fn parse_text(text: &str) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|_| ApiError::invalid("metadata", "must be a JSON object"))?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Self, ApiError> {
        let Value::Object(object) = value else {
            return Err(ApiError::invalid("metadata", "must be a JSON object"));
        };
        Self::from_object(&object)
    }

    pub fn from_object(object: &Map<String, Value>) -> Result<Self, ApiError> {
        let text = serde_json::to_string(object).map_err(ApiError::internal)?;
        if text.len() > MAX_METADATA_BYTES {
            return Err(ApiError::invalid(
                "metadata",
                "must be at most 16384 bytes when serialised",
            ));
        }
        Ok(Metadata(text))
    }

    pub fn as_json(&self) -> &str {
        &self.0
    }
}

/// Tags: at most 64 strings of 1–64 characters; repeats are kept once, in first order
/// (docs/API.md#tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags(Vec<String>);

pub const MAX_TAGS: usize = 64;
pub const MAX_TAG_CHARS: usize = 64;

impl Tags {
    pub fn empty() -> Self {
        Tags(Vec::new())
    }

    /// From the upload field, which carries the array as JSON text.
    pub fn parse_text(text: &str) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|_| ApiError::invalid("tags", "must be a JSON array of strings"))?;
        Self::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<Self, ApiError> {
        let Value::Array(items) = value else {
            return Err(ApiError::invalid("tags", "must be a JSON array of strings"));
        };
        let mut tags: Vec<String> = Vec::with_capacity(items.len().min(MAX_TAGS));
        for item in items {
            let Value::String(tag) = item else {
                return Err(ApiError::invalid("tags", "must be a JSON array of strings"));
            };
            let chars = tag.chars().count();
            if chars == 0 || chars > MAX_TAG_CHARS {
                return Err(ApiError::invalid(
                    "tags",
                    "each tag must be 1 to 64 characters",
                ));
            }
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        if tags.len() > MAX_TAGS {
            return Err(ApiError::invalid("tags", "at most 64 distinct tags"));
        }
        Ok(Tags(tags))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".to_owned())
    }
}

/// A list page size: an integer from 1 to 200, in plain decimal (no sign, no leading zero); 50
/// when absent (docs/API.md#limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u8);

impl Limit {
    pub const DEFAULT: Limit = Limit(50);

    pub fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        let Some(text) = text else {
            return Ok(Self::DEFAULT);
        };
        let is_digits = !text.is_empty()
            && text.len() <= 3
            && text.bytes().all(|b| b.is_ascii_digit())
            && !text.starts_with('0');
        match text.parse::<u8>() {
            Ok(n) if is_digits && (1..=200).contains(&n) => Ok(Limit(n)),
            _ => Err(ApiError::invalid(
                "limit",
                "must be an integer from 1 to 200",
            )),
        }
    }

    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

/// The largest JSON request body parsed (a PATCH, the start of a direct upload): no valid one comes
/// near it (metadata ≤ 16 KiB, 64 tags of ≤ 64 characters, four names).
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;

/// A JSON request body: an object whose members are all in `known`. The size is checked before
/// parsing; the content type must be `application/json` or one of `also` (docs/API.md#json-bodies).
pub fn json_object(
    content_type: Option<&str>,
    also: &[&str],
    body: &[u8],
    known: &[&str],
) -> Result<Map<String, Value>, ApiError> {
    if body.len() > MAX_JSON_BODY_BYTES {
        return Err(ApiError::invalid(
            "body",
            format_args!("must be at most {MAX_JSON_BODY_BYTES} bytes"),
        ));
    }
    let json = content_type == Some("application/json");
    if !json && !content_type.is_some_and(|t| also.contains(&t)) {
        return Err(ApiError::invalid(
            "body",
            "Content-Type must be application/json",
        ));
    }
    let Ok(Value::Object(members)) = serde_json::from_slice::<Value>(body) else {
        return Err(ApiError::invalid("body", "must be a JSON object"));
    };
    if let Some(unknown) = members.keys().find(|k| !known.contains(&k.as_str())) {
        let shown: String = unknown.chars().take(64).collect();
        return Err(ApiError::InvalidParams(format!(
            "{shown}: unknown member (known: {})",
            known.join(", ")
        )));
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rejects(result: Result<impl std::fmt::Debug, ApiError>, field: &str) {
        match result {
            Err(ApiError::InvalidParams(message)) => {
                assert!(message.starts_with(&format!("{field}: ")), "{message}")
            }
            other => panic!("expected INVALID_PARAMS for {field}, got {other:?}"),
        }
    }

    #[test]
    fn path_segment_edges() {
        assert!(PathSegment::parse("partition", "a").is_ok());
        assert!(PathSegment::parse("partition", "0").is_ok());
        assert!(PathSegment::parse("partition", &"a".repeat(64)).is_ok());
        assert!(PathSegment::parse("partition", "hero-images").is_ok());
        assert!(PathSegment::parse("partition", "a--b").is_ok());
        rejects(
            PathSegment::parse("partition", &"a".repeat(65)),
            "partition",
        );
        rejects(PathSegment::parse("partition", ""), "partition");
        rejects(PathSegment::parse("collection", "Blog"), "collection");
        rejects(PathSegment::parse("channel", "-a"), "channel");
        rejects(PathSegment::parse("channel", "a-"), "channel");
        rejects(PathSegment::parse("channel", "-"), "channel");
        rejects(PathSegment::parse("channel", "a_b"), "channel");
        rejects(PathSegment::parse("channel", "a b"), "channel");
        rejects(PathSegment::parse("channel", "é"), "channel");
    }

    #[test]
    fn filename_rules() {
        assert_eq!(Filename::parse("photo.jpg").unwrap().as_str(), "photo.jpg");
        assert!(Filename::parse("фото 1.jpg").is_ok());
        assert!(Filename::parse(&"a".repeat(255)).is_ok());
        assert!(Filename::parse("...").is_ok());
        rejects(Filename::parse(""), "filename");
        rejects(Filename::parse("."), "filename");
        rejects(Filename::parse(".."), "filename");
        rejects(Filename::parse("a/b"), "filename");
        rejects(Filename::parse("a\\b"), "filename");
        rejects(Filename::parse("a\nb"), "filename");
        rejects(Filename::parse("a\u{7f}b"), "filename");
        rejects(Filename::parse(&"a".repeat(256)), "filename");
        // 255 bytes is the limit, not 255 characters.
        rejects(Filename::parse(&"é".repeat(128)), "filename");
    }

    #[test]
    fn filenames_are_stored_in_nfc() {
        let decomposed = "Cafe\u{301}.txt";
        let composed = "Caf\u{e9}.txt";
        assert_eq!(Filename::parse(decomposed).unwrap().as_str(), composed);
        assert_eq!(
            Filename::parse(composed).unwrap(),
            Filename::parse(decomposed).unwrap()
        );
    }

    #[test]
    fn uploaded_names_keep_their_last_segment() {
        assert_eq!(
            Filename::from_uploaded_name("C:\\x\\a.jpg")
                .unwrap()
                .as_str(),
            "a.jpg"
        );
        assert_eq!(
            Filename::from_uploaded_name("/tmp/x/b.png")
                .unwrap()
                .as_str(),
            "b.png"
        );
        assert_eq!(
            Filename::from_uploaded_name("c.gif").unwrap().as_str(),
            "c.gif"
        );
        rejects(Filename::from_uploaded_name("dir/"), "filename");
        rejects(Filename::from_uploaded_name("dir/.."), "filename");
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        assert_eq!(
            Metadata::parse_text(r#"{"alt": "Hero"}"#)
                .unwrap()
                .as_json(),
            r#"{"alt":"Hero"}"#
        );
        for bad in ["[]", "\"x\"", "1", "null", "true", "{", ""] {
            rejects(Metadata::parse_text(bad), "metadata");
        }
        let big = json!({ "k": "x".repeat(MAX_METADATA_BYTES) });
        rejects(Metadata::from_value(big), "metadata");
        let fits = json!({ "k": "x".repeat(MAX_METADATA_BYTES - 8) });
        assert_eq!(
            Metadata::from_value(fits).unwrap().as_json().len(),
            MAX_METADATA_BYTES
        );
    }

    #[test]
    fn tags_are_deduplicated_in_first_order() {
        let tags = Tags::parse_text(r#"["b","a","b","c","a"]"#).unwrap();
        assert_eq!(tags.as_slice(), ["b", "a", "c"]);
        assert_eq!(tags.to_json(), r#"["b","a","c"]"#);
    }

    #[test]
    fn tags_limits() {
        for bad in [
            "{}",
            "\"a\"",
            "[1]",
            "[null]",
            "[[\"a\"]]",
            "[\"\"]",
            "nope",
        ] {
            rejects(Tags::parse_text(bad), "tags");
        }
        rejects(Tags::from_value(json!(["x".repeat(65)])), "tags");
        assert!(Tags::from_value(json!(["é".repeat(64)])).is_ok());
        let max: Vec<String> = (0..64).map(|i| format!("t{i}")).collect();
        assert!(Tags::from_value(json!(max)).is_ok());
        let over: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
        rejects(Tags::from_value(json!(over)), "tags");
    }

    #[test]
    fn limit_edges() {
        assert_eq!(Limit::parse(None).unwrap().get(), 50);
        assert_eq!(Limit::parse(Some("1")).unwrap().get(), 1);
        assert_eq!(Limit::parse(Some("200")).unwrap().get(), 200);
        for bad in [
            "0", "201", "abc", "5.5", "", "-1", "+5", " 5", "0005", "1e2", "256", "05", "005",
            "00", "010",
        ] {
            rejects(Limit::parse(Some(bad)), "limit");
        }
    }
}
