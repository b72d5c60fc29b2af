//! The multipart/form-data body of an upload, parsed with multer and validated into an [`Upload`].

use bytes::Bytes;
use shared::error::FILE_TOO_LARGE;
use shared::validate::{Filename, Metadata, PathSegment, Tags};
use shared::{ApiError, MAX_FILE_BYTES};

/// A valid upload request.
#[derive(Debug)]
pub struct Upload {
    pub partition: PathSegment,
    pub collection: PathSegment,
    pub channel: PathSegment,
    pub filename: Filename,
    pub metadata: Metadata,
    pub tags: Tags,
    pub file: Bytes,
    /// The content type the file part declared, if any.
    pub declared_type: Option<String>,
}

const FIELDS: [&str; 7] = [
    "file",
    "partition",
    "collection",
    "channel",
    "filename",
    "metadata",
    "tags",
];

/// Largest text field. Metadata, the largest legal one, is at most 16 KiB.
const MAX_TEXT_FIELD: u64 = 64 * 1024;

/// Largest header block of one part. A Content-Disposition with a 255-byte filename and a
/// Content-Type need a fraction of it; more is not a form a client means to send.
const MAX_PART_HEADERS: usize = 8 * 1024;

/// Room for the text fields and part headers around the file.
const FORM_OVERHEAD: u64 = FIELDS.len() as u64 * MAX_TEXT_FIELD + 64 * 1024;

pub async fn parse_form(content_type: Option<&str>, body: Bytes) -> Result<Upload, ApiError> {
    let boundary = content_type
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| ApiError::invalid("body", "must be multipart/form-data with a boundary"))?;
    // A body this large cannot hold a file within the limit: refuse it before parsing.
    if body.len() as u64 > MAX_FILE_BYTES + FORM_OVERHEAD {
        return Err(ApiError::PayloadTooLarge(FILE_TOO_LARGE));
    }
    let constraints = multer::Constraints::new()
        .allowed_fields(FIELDS.to_vec())
        .size_limit(
            multer::SizeLimit::new()
                .whole_stream(MAX_FILE_BYTES + FORM_OVERHEAD)
                .per_field(MAX_TEXT_FIELD)
                .for_field("file", MAX_FILE_BYTES),
        );
    let stream =
        futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);

    let mut seen: Vec<String> = Vec::new();
    let mut text = std::collections::HashMap::new();
    let mut file: Option<(Bytes, Option<String>, Option<String>)> = None;
    while let Some(field) = multipart.next_field().await.map_err(refusal)? {
        let name = field
            .name()
            .ok_or_else(|| ApiError::invalid("body", "every part needs a name"))?
            .to_owned();
        let header_bytes: usize = field
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if header_bytes > MAX_PART_HEADERS {
            return Err(ApiError::invalid(
                &name,
                format_args!("the part's headers must be at most {MAX_PART_HEADERS} bytes"),
            ));
        }
        if seen.contains(&name) {
            return Err(ApiError::invalid(&name, "must be sent once"));
        }
        seen.push(name.clone());
        if name == "file" {
            let uploaded_name = field.file_name().map(str::to_owned);
            let declared = field.content_type().map(|m| m.essence_str().to_owned());
            let bytes = field.bytes().await.map_err(refusal)?;
            file = Some((bytes, uploaded_name, declared));
        } else {
            let bytes = field.bytes().await.map_err(refusal)?;
            let value = String::from_utf8(bytes.to_vec())
                .map_err(|_| ApiError::invalid(&name, "must be UTF-8 text"))?;
            text.insert(name, value);
        }
    }

    let (file, uploaded_name, declared_type) =
        file.ok_or_else(|| ApiError::invalid("file", "is required"))?;
    let segment = |field: &str| match text.get(field) {
        Some(value) => PathSegment::parse(field, value),
        None => Err(ApiError::invalid(field, "is required")),
    };
    let partition = segment("partition")?;
    let collection = segment("collection")?;
    let channel = segment("channel")?;
    let filename = match (text.get("filename"), uploaded_name) {
        (Some(name), _) => Filename::parse(name)?,
        (None, Some(name)) => Filename::from_uploaded_name(&name)?,
        (None, None) => {
            return Err(ApiError::invalid(
                "filename",
                "is required when the file part has no filename",
            ));
        }
    };
    let metadata = text
        .get("metadata")
        .map(|t| Metadata::parse_text(t))
        .transpose()?
        .unwrap_or_else(Metadata::empty);
    let tags = text
        .get("tags")
        .map(|t| Tags::parse_text(t))
        .transpose()?
        .unwrap_or_else(Tags::empty);
    Ok(Upload {
        partition,
        collection,
        channel,
        filename,
        metadata,
        tags,
        file,
        declared_type,
    })
}

/// multer's errors as the API's: sizes are 413 for the file and 400 otherwise; every malformed
/// body is 400 naming what was wrong.
fn refusal(err: multer::Error) -> ApiError {
    use multer::Error as E;
    match err {
        E::FieldSizeExceeded { field_name, .. } if field_name.as_deref() == Some("file") => {
            ApiError::PayloadTooLarge(FILE_TOO_LARGE)
        }
        E::StreamSizeExceeded { .. } => ApiError::PayloadTooLarge(FILE_TOO_LARGE),
        E::FieldSizeExceeded { field_name, .. } => ApiError::invalid(
            field_name.as_deref().unwrap_or("field"),
            format_args!("must be at most {MAX_TEXT_FIELD} bytes"),
        ),
        E::UnknownField { field_name } => {
            let name: String = field_name
                .as_deref()
                .unwrap_or("(unnamed)")
                .chars()
                .take(64)
                .collect();
            ApiError::InvalidParams(format!(
                "{name}: unknown field (known: file, partition, collection, channel, filename, metadata, tags)"
            ))
        }
        other => ApiError::invalid("body", format_args!("malformed multipart body: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(parts: &[(&str, Option<&str>, &str)]) -> (String, Bytes) {
        let boundary = "XyZ";
        let mut body = String::new();
        for (name, filename, value) in parts {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\""
            ));
            if let Some(f) = filename {
                body.push_str(&format!("; filename=\"{f}\""));
            }
            body.push_str(&format!("\r\n\r\n{value}\r\n"));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        (
            format!("multipart/form-data; boundary={boundary}"),
            Bytes::from(body),
        )
    }

    const BASE: [(&str, Option<&str>, &str); 4] = [
        ("file", Some("C:\\x\\a.txt"), "hello"),
        ("partition", None, "p"),
        ("collection", None, "c"),
        ("channel", None, "ch"),
    ];

    #[tokio::test]
    async fn a_minimal_form_parses() {
        let (ct, body) = form(&BASE);
        let upload = parse_form(Some(&ct), body).await.unwrap();
        assert_eq!(upload.filename.as_str(), "a.txt");
        assert_eq!(&upload.file[..], b"hello");
        assert_eq!(upload.metadata.as_json(), "{}");
        assert_eq!(upload.tags.to_json(), "[]");
    }

    #[tokio::test]
    async fn duplicate_unknown_and_missing_fields_are_400() {
        let mut dup = BASE.to_vec();
        dup.push(("channel", None, "x"));
        let mut unknown = BASE.to_vec();
        unknown.push(("color", None, "red"));
        for parts in [dup, unknown, BASE[1..].to_vec(), BASE[..3].to_vec()] {
            let (ct, body) = form(&parts);
            assert!(matches!(
                parse_form(Some(&ct), body).await,
                Err(ApiError::InvalidParams(_))
            ));
        }
    }

    #[tokio::test]
    async fn a_part_with_huge_headers_is_400_naming_it() {
        let (ct, body) = form(&BASE);
        let text = String::from_utf8(body.to_vec()).unwrap();
        let padded = text.replacen(
            "name=\"partition\"\r\n",
            &format!(
                "name=\"partition\"\r\nX-Pad: {}\r\n",
                "a".repeat(MAX_PART_HEADERS)
            ),
            1,
        );
        assert_ne!(padded, text);
        match parse_form(Some(&ct), Bytes::from(padded)).await {
            Err(ApiError::InvalidParams(message)) => {
                assert!(message.starts_with("partition: "), "{message}")
            }
            other => panic!("expected INVALID_PARAMS, got {other:?}"),
        }
        let fits = text.replacen(
            "name=\"partition\"\r\n",
            &format!("name=\"partition\"\r\nX-Pad: {}\r\n", "a".repeat(1024)),
            1,
        );
        assert!(parse_form(Some(&ct), Bytes::from(fits)).await.is_ok());
    }

    #[tokio::test]
    async fn a_body_that_is_not_multipart_is_400() {
        for ct in [None, Some("application/json"), Some("multipart/form-data")] {
            let result = parse_form(ct, Bytes::from_static(b"{}")).await;
            assert!(matches!(result, Err(ApiError::InvalidParams(_))));
        }
        let (ct, body) = form(&BASE);
        let truncated = body.slice(..body.len() - 12);
        assert!(matches!(
            parse_form(Some(&ct), truncated).await,
            Err(ApiError::InvalidParams(_))
        ));
    }
}
