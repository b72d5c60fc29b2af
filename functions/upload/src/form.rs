//! The multipart/form-data body of an upload (RFC 7578), read with `multer` and validated into an
//! [`Upload`].
//!
//! The body is whole in memory (lambda_http hands it over as one buffer). It goes to multer as a
//! single chunk: multer copies it once into its own buffer, and every part, the file included, is
//! then a slice of that buffer (a reference count, not a further copy). Only the small text
//! fields are copied out.
//!
//! Refused with 400 `INVALID_PARAMS` (413 for a file over the limit):
//! - a Content-Type that is not `multipart/form-data` with a `boundary` parameter (read by
//!   `multer::parse_boundary`), or a boundary that is not 1–70 of the characters RFC 2046 allows,
//!   or ends in a space;
//! - framing multer refuses: no delimiter, a delimiter followed by neither `--` nor transport
//!   padding and CRLF, a body that ends before the close delimiter; a part with more than 32
//!   header lines, or a header line httparse refuses (no colon, a name that is not a token, a
//!   control character, a folded line);
//! - a part without a name, with an unknown name or a name already sent (so a form has at most
//!   seven parts), whose Content-Disposition is not `form-data`, or whose headers (as multer keeps
//!   them) exceed [`MAX_PART_HEADERS`];
//! - a text field over [`MAX_TEXT_FIELD`] bytes or not UTF-8; a file over `MAX_FILE_BYTES` (413).
//!
//! Where multer departs from the RFCs' letter (and from the hand-written parser it replaced), its
//! reading is accepted as it is: each of these is the client's own description of its own upload,
//! and still ends in a validated [`Upload`] or a 400.
//! - Content-Disposition: the parameters `name` and `filename` are found in lowercase only, and
//!   the first of each counts. `filename*` is never read (RFC 7578 § 4.2: multipart/form-data does
//!   not use it); one written before `filename` hides it, and the part counts as having no file
//!   name. In a quoted value `\"` is a quote and any other backslash stays, as browsers send
//!   Windows paths unescaped; so a quoted file name ending in a backslash never closes, and the
//!   part counts as having no file name.
//! - A header repeated within a part: the last one counts, Content-Disposition included, and only
//!   that one is counted against [`MAX_PART_HEADERS`].
//! - Header lines may end in a bare LF (httparse reads them); delimiter lines need CRLF, and a
//!   part's headers end at the first CRLF CRLF.
//! - The first delimiter is found anywhere, not only at the start of a line; the preamble before
//!   it and the epilogue after the close delimiter are ignored.
//! - The Content-Type's grammar is the `mime` crate's: no whitespace before a `;`, and of two
//!   `boundary` parameters the first counts.

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

/// RFC 2046's longest boundary.
const MAX_BOUNDARY: usize = 70;

pub async fn parse_form(content_type: Option<&str>, body: Bytes) -> Result<Upload, ApiError> {
    let boundary = boundary_of(content_type)?;
    // A body this large cannot hold a file within the limit: refuse it before multer copies it.
    if body.len() as u64 > MAX_FILE_BYTES + FORM_OVERHEAD {
        return Err(ApiError::PayloadTooLarge(FILE_TOO_LARGE));
    }
    let constraints = multer::Constraints::new()
        .allowed_fields(FIELDS.to_vec())
        .size_limit(
            multer::SizeLimit::new()
                .per_field(MAX_TEXT_FIELD)
                .for_field("file", MAX_FILE_BYTES),
        );
    // One chunk: multer finds every part within it, so each part comes back as one slice of
    // multer's buffer, never pieced together.
    let stream =
        futures_util::stream::once(std::future::ready(Ok::<_, std::convert::Infallible>(body)));
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);

    let mut text: [Option<String>; FIELDS.len()] = Default::default();
    let mut file: Option<(Bytes, Option<String>, Option<String>)> = None;
    let mut seen = [false; FIELDS.len()];
    while let Some(mut field) = multipart.next_field().await.map_err(refusal)? {
        // multer has already refused names outside FIELDS.
        let index = field
            .name()
            .and_then(|name| FIELDS.iter().position(|f| *f == name))
            .ok_or_else(no_name)?;
        let name = FIELDS[index];
        let header_bytes: usize = field
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if header_bytes > MAX_PART_HEADERS {
            return Err(ApiError::invalid(
                name,
                format_args!("the part's headers must be at most {MAX_PART_HEADERS} bytes"),
            ));
        }
        let form_data = field
            .headers()
            .get("content-disposition")
            .and_then(|value| value.as_bytes().split(|b| *b == b';').next())
            .is_some_and(|kind| kind.trim_ascii().eq_ignore_ascii_case(b"form-data"));
        if !form_data {
            return Err(malformed("a part's Content-Disposition must be form-data"));
        }
        if std::mem::replace(&mut seen[index], true) {
            return Err(ApiError::invalid(name, "must be sent once"));
        }
        let filename = field.file_name().map(str::to_owned);
        let declared = field.content_type().map(|m| m.essence_str().to_owned());
        let mut content = Bytes::new();
        while let Some(chunk) = field.chunk().await.map_err(refusal)? {
            // Always one chunk, the body being one; joined all the same should multer ever split.
            content = if content.is_empty() {
                chunk
            } else {
                [content, chunk].concat().into()
            };
        }
        if index == 0 {
            file = Some((content, filename, declared));
        } else {
            let value = String::from_utf8(content.to_vec())
                .map_err(|_| ApiError::invalid(name, "must be UTF-8 text"))?;
            text[index] = Some(value);
        }
    }
    let text_of = |field: &str| {
        let i = FIELDS.iter().position(|f| *f == field).unwrap_or(0);
        text[i].as_deref()
    };

    let (file, uploaded_name, declared_type) =
        file.ok_or_else(|| ApiError::invalid("file", "is required"))?;
    let segment = |field: &str| match text_of(field) {
        Some(value) => PathSegment::parse(field, value),
        None => Err(ApiError::invalid(field, "is required")),
    };
    let partition = segment("partition")?;
    let collection = segment("collection")?;
    let channel = segment("channel")?;
    let filename = match (text_of("filename"), uploaded_name) {
        (Some(name), _) => Filename::parse(name)?,
        (None, Some(name)) => Filename::from_uploaded_name(&name)?,
        (None, None) => {
            return Err(ApiError::invalid(
                "filename",
                "is required when the file part has no filename",
            ));
        }
    };
    let metadata = text_of("metadata")
        .map(Metadata::parse_text)
        .transpose()?
        .unwrap_or_else(Metadata::empty);
    let tags = text_of("tags")
        .map(Tags::parse_text)
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

fn malformed(what: impl std::fmt::Display) -> ApiError {
    ApiError::invalid("body", format_args!("malformed multipart body: {what}"))
}

fn no_name() -> ApiError {
    ApiError::invalid("body", "every part needs a name")
}

/// The boundary of a `multipart/form-data` Content-Type, held to RFC 2046's form, which multer
/// does not check: an empty boundary, for one, would make every `--` a delimiter.
fn boundary_of(content_type: Option<&str>) -> Result<String, ApiError> {
    let boundary = content_type
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or_else(|| ApiError::invalid("body", "must be multipart/form-data with a boundary"))?;
    let bchar = |b: u8| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b);
    if boundary.is_empty()
        || boundary.len() > MAX_BOUNDARY
        || boundary.ends_with(' ')
        || !boundary.bytes().all(bchar)
    {
        return Err(ApiError::invalid(
            "body",
            format_args!(
                "the boundary must be 1 to {MAX_BOUNDARY} letters, digits or '()+_,-./:=? characters, not ending in a space"
            ),
        ));
    }
    Ok(boundary)
}

/// multer's errors as the API's. The messages are ours: some of multer's quote what the client
/// sent, at any length.
fn refusal(err: multer::Error) -> ApiError {
    use multer::Error as E;
    match err {
        E::FieldSizeExceeded { field_name, .. } if field_name.as_deref() == Some("file") => {
            ApiError::PayloadTooLarge(FILE_TOO_LARGE)
        }
        E::FieldSizeExceeded { field_name, .. } => ApiError::invalid(
            field_name.as_deref().unwrap_or("body"),
            format_args!("must be at most {MAX_TEXT_FIELD} bytes"),
        ),
        E::UnknownField {
            field_name: Some(name),
        } => {
            let shown: String = name.chars().take(64).collect();
            ApiError::InvalidParams(format!(
                "{shown}: unknown field (known: file, partition, collection, channel, filename, metadata, tags)"
            ))
        }
        E::UnknownField { field_name: None } => no_name(),
        E::IncompleteFieldData { .. } => {
            malformed("the body ends inside a part, without the closing delimiter")
        }
        E::IncompleteStream => malformed(
            "expected a delimiter line (the boundary, then CRLF, or `--` to close the form) where the body has something else or ends",
        ),
        E::IncompleteHeaders => malformed("the body ends inside a part's headers"),
        E::ReadHeaderFailed(why) => malformed(format_args!("a part's header is not valid ({why})")),
        E::DecodeHeaderName { .. } | E::DecodeHeaderValue { .. } => {
            malformed("a part's header is not valid")
        }
        _ => malformed("the body could not be read"),
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

    const CT: &str = "multipart/form-data; boundary=XyZ";

    /// The four required parts around `file_part` (a part's headers and content, without its
    /// delimiter), framed with the boundary `XyZ`.
    fn framed(file_part: &str) -> Bytes {
        Bytes::from(format!(
            "--XyZ\r\n{file_part}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"partition\"\r\n\r\np\r\n--XyZ\r\nContent-Disposition: form-data; name=\"collection\"\r\n\r\nc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\nch\r\n--XyZ--\r\n"
        ))
    }

    async fn refusal_of(ct: &str, body: impl Into<Bytes>) -> String {
        match parse_form(Some(ct), body.into()).await {
            Err(ApiError::InvalidParams(message)) => message,
            other => panic!("expected INVALID_PARAMS, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_file_keeps_its_bytes_near_delimiters_and_its_declared_type() {
        let content = "\u{0}\r\n--Xy\r--XyZ\n binary \r\n-- XyZ";
        let body = framed(&format!(
            "Content-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: Application/Octet-Stream; x=1\r\n\r\n{content}"
        ));
        let upload = parse_form(Some(CT), body).await.unwrap();
        assert_eq!(&upload.file[..], content.as_bytes());
        assert_eq!(
            upload.declared_type.as_deref(),
            Some("application/octet-stream")
        );
    }

    #[tokio::test]
    async fn preamble_epilogue_padding_and_quoted_boundaries_are_read() {
        let body =
            framed("Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhi");
        let text = String::from_utf8(body.to_vec()).unwrap();
        let dressed = format!(
            "preamble, ignored\r\n{}epilogue --XyZ\r\n garbage",
            text.replacen("--XyZ\r\n", "--XyZ \t\r\n", 2)
        );
        let upload = parse_form(Some(CT), Bytes::from(dressed)).await.unwrap();
        assert_eq!(&upload.file[..], b"hi");
        let quoted = text.replace("XyZ", "a b:c=d");
        for ct in [
            "multipart/form-data; boundary=\"a b:c=d\"",
            "Multipart/Form-Data; charset=utf-8;BOUNDARY=\"a b:c=d\";",
        ] {
            let upload = parse_form(Some(ct), Bytes::from(quoted.clone()))
                .await
                .unwrap();
            assert_eq!(upload.channel.as_str(), "ch", "{ct}");
        }
    }

    #[tokio::test]
    async fn boundaries_outside_rfc_2046_are_refused() {
        let long = "b".repeat(71);
        for ct in [
            format!("multipart/form-data; boundary={long}"),
            "multipart/form-data; boundary=\"ends \"".to_owned(),
            "multipart/form-data; boundary=\"a\\\"b\"".to_owned(),
            "multipart/form-data; boundary=\"XyZ".to_owned(),
            "multipart/form-data; boundary=Xy Z".to_owned(),
            "multipart/form-data; boundary=".to_owned(),
            "multipart/form-data; boundary=\"\"".to_owned(),
            "multipart/form-data; boundary=Xy{Z".to_owned(),
            "multipart/form-data-x; boundary=XyZ".to_owned(),
        ] {
            let message = refusal_of(&ct, framed("x")).await;
            assert!(message.starts_with("body: "), "{ct}: {message}");
        }
        let seventy = "b".repeat(70);
        let body = framed("Content-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n");
        let text = String::from_utf8(body.to_vec())
            .unwrap()
            .replace("XyZ", &seventy);
        let upload = parse_form(
            Some(&format!("multipart/form-data; boundary={seventy}")),
            Bytes::from(text),
        )
        .await
        .unwrap();
        assert!(upload.file.is_empty());
    }

    #[tokio::test]
    async fn framing_errors_are_400_body() {
        let good = String::from_utf8(
            framed("Content-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nhi")
                .to_vec(),
        )
        .unwrap();
        let forty_lines = "X-Pad: 1\r\n".repeat(40);
        for bad in [
            good.replace("\r\n", "\n"),
            good.replacen("hi\r\n--XyZ\r\n", "hi\r\n--XyZjunk\r\n", 1),
            good.replacen("--XyZ--\r\n", "--XyZ", 1),
            good.replacen("--XyZ--\r\n", "", 1),
            good.replacen(
                "filename=\"a\"\r\n",
                &format!("filename=\"a\"\r\n{forty_lines}"),
                1,
            ),
            good.replacen(
                "filename=\"a\"\r\n",
                "filename=\"a\"\r\nX-Bell: \u{7}\r\n",
                1,
            ),
            good.replacen("filename=\"a\"\r\n", "filename=\"a\"\r\n folded\r\n", 1),
            good.replacen("filename=\"a\"\r\n", "filename=\"a\"\r\nNo colon\r\n", 1),
            good.replacen("form-data; name=\"file\"", "attachment; name=\"file\"", 1),
            good.replacen("form-data; name=\"file\"", "name=\"file\"", 1),
            good.replacen(
                "Content-Disposition: form-data; name=\"partition\"",
                "Content-Type: text/plain",
                1,
            ),
            good[..good.find("\r\n\r\nhi").unwrap()].to_owned(),
            "--XyZ".to_owned(),
            String::new(),
        ] {
            let message = refusal_of(CT, bad.clone()).await;
            assert!(message.starts_with("body: "), "{bad:?}: {message}");
        }
    }

    #[tokio::test]
    async fn a_quoted_filename_keeps_backslashes_and_unescapes_quotes() {
        let body = framed(
            "content-disposition: Form-Data; name=file; filename=\"C:\\dir\\say \\\"hi\\\".txt\"; filename*=UTF-8''ignored.txt\r\n\r\nx",
        );
        let upload = parse_form(Some(CT), body).await.unwrap();
        assert_eq!(upload.filename.as_str(), "say \"hi\".txt");
        let only_star =
            framed("Content-Disposition: form-data; name=file; filename*=UTF-8''a.txt\r\n\r\nx");
        assert!(refusal_of(CT, only_star).await.starts_with("filename: "));
    }

    #[tokio::test]
    async fn a_text_field_over_its_limit_is_400_naming_it() {
        let big = "m".repeat(MAX_TEXT_FIELD as usize + 1);
        let body = framed(&format!(
            "Content-Disposition: form-data; name=\"metadata\"\r\n\r\n{big}"
        ));
        assert!(refusal_of(CT, body).await.starts_with("metadata: "));
        let fits = framed(&format!(
            "Content-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n{big}"
        ));
        assert_eq!(
            parse_form(Some(CT), fits).await.unwrap().file.len(),
            big.len()
        );
    }

    #[tokio::test]
    async fn a_body_too_large_for_any_legal_form_is_413_before_it_is_read() {
        // Zeros, not a form: read, it would be a 400; its size alone makes it a 413.
        let limit = (MAX_FILE_BYTES + FORM_OVERHEAD) as usize;
        let over = Bytes::from(vec![0u8; limit + 1]);
        assert!(matches!(
            parse_form(Some(CT), over).await,
            Err(ApiError::PayloadTooLarge(_))
        ));
        let at_limit = Bytes::from(vec![0u8; limit]);
        assert!(refusal_of(CT, at_limit).await.starts_with("body: "));
    }

    #[tokio::test]
    async fn a_text_field_that_is_not_utf8_is_400_naming_it() {
        let mut body = form(&BASE).1.to_vec();
        let at = body.windows(3).position(|w| w == b"\r\nc").unwrap() + 2;
        body[at] = 0xff;
        let message = refusal_of(CT, body).await;
        assert!(message.starts_with("collection: "), "{message}");
    }

    /// The readings the module comment states as multer's, so that it stays true.
    #[tokio::test]
    async fn loose_forms_are_read_as_the_module_comment_says() {
        let file = "Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"";
        // The first `filename` counts; a `filename*` before it hides it.
        let twice = framed(&format!("{file}; filename=\"b.txt\"\r\n\r\nx"));
        let upload = parse_form(Some(CT), twice).await.unwrap();
        assert_eq!(upload.filename.as_str(), "a.txt");
        let star_first = framed(
            "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''b.txt; filename=\"a.txt\"\r\n\r\nx",
        );
        assert!(refusal_of(CT, star_first).await.starts_with("filename: "));
        // Parameter names in another case are not found: the part has no name.
        let upper = framed("Content-Disposition: form-data; NAME=\"file\"\r\n\r\nx");
        assert!(refusal_of(CT, upper).await.starts_with("body: "));
        // A repeated header: the last counts.
        let repeated = framed(&format!(
            "Content-Disposition: form-data; name=\"tags\"\r\n{file}\r\n\r\nx"
        ));
        let upload = parse_form(Some(CT), repeated).await.unwrap();
        assert_eq!(&upload.file[..], b"x");
        // A header line ending in a bare LF.
        let bare_lf = framed(&format!("{file}\nContent-Type: text/plain\r\n\r\nx"));
        let upload = parse_form(Some(CT), bare_lf).await.unwrap();
        assert_eq!(upload.declared_type.as_deref(), Some("text/plain"));
        // The first delimiter in the middle of a line.
        let text = String::from_utf8(framed(&format!("{file}\r\n\r\nx")).to_vec()).unwrap();
        let upload = parse_form(Some(CT), Bytes::from(format!("preamble{text}")))
            .await
            .unwrap();
        assert_eq!(upload.filename.as_str(), "a.txt");
        // Of two boundary parameters the first counts; whitespace before `;` is refused.
        let two = "multipart/form-data; boundary=XyZ; boundary=other";
        assert!(
            parse_form(Some(two), Bytes::from(text.clone()))
                .await
                .is_ok()
        );
        let spaced = "multipart/form-data ; boundary=XyZ";
        assert!(refusal_of(spaced, text).await.starts_with("body: "));
    }
}
