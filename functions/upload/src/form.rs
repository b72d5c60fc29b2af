//! The multipart/form-data body of an upload (RFC 7578, framed as RFC 2046 § 5.1.1 says), parsed
//! in place and validated into an [`Upload`].
//!
//! The body is whole in memory (lambda_http hands it over as one buffer), so nothing is streamed
//! or copied: the parser finds each part's bounds in the body, and the file is a slice of it
//! (`Bytes::slice`: a reference count, not a copy). Only the small text fields are copied out.
//!
//! What it accepts, and refuses with 400 `INVALID_PARAMS` (413 for a file over the limit):
//! - `Content-Type: multipart/form-data` (case-insensitive) with one `boundary` parameter, a token
//!   or a quoted string, of 1–70 of the characters RFC 2046 allows, not ending in a space.
//! - A preamble before the first delimiter and an epilogue after the close delimiter are ignored.
//!   A delimiter line may carry transport padding (spaces, tabs) before its CRLF; lines end in
//!   CRLF, never a bare LF. The boundary may not occur inside a part (RFC 2046 forbids it): a
//!   delimiter there starts a new part, and a boundary followed by anything else is refused.
//! - Each part: header lines `Name: value` (the name a token, the value free of control
//!   characters), at most [`MAX_HEADER_LINES`] of them and [`MAX_PART_HEADERS`] bytes, then a
//!   blank line. `Content-Disposition: form-data` with a `name` and, for the file, a `filename`
//!   (RFC 7578 § 4.2: `filename*` is not used by multipart/form-data and is ignored). In a quoted
//!   value a backslash escapes only a quote, as browsers send Windows paths unescaped.
//! - Each field at most once, unknown fields refused: so a form has at most seven parts, and the
//!   first part past that is refused as soon as its headers are read.

use bytes::Bytes;
use memchr::memmem;
use shared::error::FILE_TOO_LARGE;
use shared::validate::{Filename, Metadata, PathSegment, Tags};
use shared::{ApiError, MAX_FILE_BYTES};
use std::ops::Range;

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

/// Most header lines in one part (a form part needs two).
const MAX_HEADER_LINES: usize = 32;

/// Room for the text fields and part headers around the file.
const FORM_OVERHEAD: u64 = FIELDS.len() as u64 * MAX_TEXT_FIELD + 64 * 1024;

/// RFC 2046's longest boundary.
const MAX_BOUNDARY: usize = 70;

pub fn parse_form(content_type: Option<&str>, body: Bytes) -> Result<Upload, ApiError> {
    let boundary = boundary_of(content_type)?;
    // A body this large cannot hold a file within the limit: refuse it before parsing.
    if body.len() as u64 > MAX_FILE_BYTES + FORM_OVERHEAD {
        return Err(ApiError::PayloadTooLarge(FILE_TOO_LARGE));
    }
    let parts = split(&body, &boundary)?;

    let mut text: [Option<String>; FIELDS.len()] = Default::default();
    let mut file: Option<(Bytes, Option<String>, Option<String>)> = None;
    for part in parts {
        if part.field == 0 {
            file = Some((body.slice(part.content), part.filename, part.content_type));
        } else {
            let value = String::from_utf8(body[part.content].to_vec())
                .map_err(|_| ApiError::invalid(FIELDS[part.field], "must be UTF-8 text"))?;
            text[part.field] = Some(value);
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

/// One part of the form, as found in the body.
#[derive(Debug)]
struct Part {
    /// Its index in [`FIELDS`].
    field: usize,
    filename: Option<String>,
    /// The media type it declared (`type/subtype`, lowercase), if any and well formed.
    content_type: Option<String>,
    /// Where its content lies in the body.
    content: Range<usize>,
}

fn malformed(what: impl std::fmt::Display) -> ApiError {
    ApiError::invalid("body", format_args!("malformed multipart body: {what}"))
}

/// The boundary of a `multipart/form-data` Content-Type.
fn boundary_of(content_type: Option<&str>) -> Result<String, ApiError> {
    let not_form = || ApiError::invalid("body", "must be multipart/form-data with a boundary");
    let value = content_type.ok_or_else(not_form)?;
    let (media_type, params) = value.split_at(value.find(';').unwrap_or(value.len()));
    if !media_type
        .trim_matches([' ', '\t'])
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return Err(not_form());
    }
    let mut boundary = None;
    for (name, value) in parameters(params.as_bytes(), Quoting::Http).ok_or_else(not_form)? {
        if name.eq_ignore_ascii_case("boundary")
            && boundary
                .replace(String::from_utf8_lossy(&value).into_owned())
                .is_some()
        {
            return Err(ApiError::invalid(
                "body",
                "the Content-Type must have one boundary parameter",
            ));
        }
    }
    let boundary = boundary.ok_or_else(not_form)?;
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

/// How a quoted parameter value is read.
#[derive(Clone, Copy, PartialEq)]
enum Quoting {
    /// HTTP's quoted-string: a backslash escapes any character.
    Http,
    /// Content-Disposition in a form: a backslash escapes only a quote, and only when a later
    /// quote can close the value, as browsers send a Windows path's backslashes as they are.
    Form,
}

/// `; name=value` parameters (RFC 9110 § 5.6.6), the value a token or a quoted string; names as
/// written, values as bytes. `None` when they are not well formed.
fn parameters(mut rest: &[u8], quoting: Quoting) -> Option<Vec<(String, Vec<u8>)>> {
    let ows = |s: &[u8]| -> usize { s.iter().take_while(|b| matches!(b, b' ' | b'\t')).count() };
    let mut params = Vec::new();
    loop {
        rest = &rest[ows(rest)..];
        let Some((&b';', after)) = rest.split_first() else {
            return rest.is_empty().then_some(params);
        };
        rest = &after[ows(after)..];
        if rest.is_empty() {
            return Some(params);
        }
        let name_len = rest.iter().take_while(|b| is_tchar(**b)).count();
        let name = std::str::from_utf8(&rest[..name_len]).ok()?;
        rest = &rest[name_len..];
        rest = &rest[ows(rest)..];
        let (&b'=', after) = rest.split_first()? else {
            return None;
        };
        rest = &after[ows(after)..];
        if name.is_empty() {
            return None;
        }
        let value = if let Some((&b'"', quoted)) = rest.split_first() {
            let mut value = Vec::new();
            let mut i = 0;
            loop {
                match *quoted.get(i)? {
                    b'"' => break,
                    b'\\' if quoting == Quoting::Http => {
                        value.push(*quoted.get(i + 1)?);
                        i += 2;
                    }
                    // A quote after a backslash is kept as text when another quote follows;
                    // the last one closes the value (`"C:\x\"` is `C:\x\`).
                    b'\\'
                        if quoted.get(i + 1) == Some(&b'"')
                            && memchr::memchr(b'"', &quoted[i + 2..]).is_some() =>
                    {
                        value.push(b'"');
                        i += 2;
                    }
                    other => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
            rest = &quoted[i + 1..];
            value
        } else {
            let len = rest.iter().take_while(|b| is_tchar(**b)).count();
            if len == 0 {
                return None;
            }
            let value = rest[..len].to_vec();
            rest = &rest[len..];
            value
        };
        params.push((name.to_owned(), value));
    }
}

/// A token character (RFC 9110 § 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The parts of `body`, each checked as soon as its headers are read.
fn split(body: &[u8], boundary: &str) -> Result<Vec<Part>, ApiError> {
    // The delimiter is CRLF "--" boundary; the first may open the body without its CRLF.
    let delimiter = format!("\r\n--{boundary}");
    let finder = memmem::Finder::new(delimiter.as_bytes());
    let mut pos = if body.starts_with(&delimiter.as_bytes()[2..]) {
        delimiter.len() - 2
    } else {
        match finder.find(body) {
            Some(i) => i + delimiter.len(),
            None => {
                return Err(malformed(
                    "no delimiter of the Content-Type's boundary in the body",
                ));
            }
        }
    };
    let mut parts: Vec<Part> = Vec::new();
    loop {
        // Just past a boundary: `--` closes the form (the epilogue after it is ignored);
        // otherwise transport padding, then CRLF, then a part.
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        pos += body[pos..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        if !body[pos..].starts_with(b"\r\n") {
            return Err(if pos == body.len() {
                malformed("the body ends after a delimiter, without the closing one")
            } else {
                malformed("a delimiter line must end in CRLF right after the boundary")
            });
        }
        pos += 2;
        let (part, content_start) = part_headers(body, pos, &parts)?;
        let Some(length) = finder.find(&body[content_start..]) else {
            return Err(malformed(
                "the body ends inside a part, without the closing delimiter",
            ));
        };
        let limit = if part.field == 0 {
            MAX_FILE_BYTES
        } else {
            MAX_TEXT_FIELD
        };
        if length as u64 > limit {
            return Err(if part.field == 0 {
                ApiError::PayloadTooLarge(FILE_TOO_LARGE)
            } else {
                ApiError::invalid(
                    FIELDS[part.field],
                    format_args!("must be at most {MAX_TEXT_FIELD} bytes"),
                )
            });
        }
        pos = content_start + length + delimiter.len();
        parts.push(Part {
            content: content_start..content_start + length,
            ..part
        });
    }
}

/// Reads the header block of the part that starts at `pos`, and checks the part against the
/// ones before it. Returns the part (its content not yet known) and where its content starts.
fn part_headers(body: &[u8], mut pos: usize, before: &[Part]) -> Result<(Part, usize), ApiError> {
    let mut disposition: Option<&[u8]> = None;
    let mut content_type: Option<&[u8]> = None;
    let mut header_bytes = 0usize;
    let mut lines = 0usize;
    loop {
        let Some(end) = memmem::find(&body[pos..], b"\r\n") else {
            return Err(malformed("the body ends inside a part's headers"));
        };
        let line = &body[pos..pos + end];
        pos += end + 2;
        if line.is_empty() {
            break;
        }
        lines += 1;
        if lines > MAX_HEADER_LINES {
            return Err(malformed(format_args!(
                "a part has more than {MAX_HEADER_LINES} header lines"
            )));
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return Err(malformed("a part's header line has no colon"));
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|b| is_tchar(*b)) {
            return Err(malformed("a part's header name is not a token"));
        }
        let value = trim_ows(&line[colon + 1..]);
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(malformed("a part's header value holds a control character"));
        }
        header_bytes += name.len() + value.len() + 4;
        let slot = if name.eq_ignore_ascii_case(b"content-disposition") {
            &mut disposition
        } else if name.eq_ignore_ascii_case(b"content-type") {
            &mut content_type
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            return Err(malformed("a part repeats a header"));
        }
    }

    let (name, filename) = match disposition {
        Some(value) => form_data(value)?,
        None => (None, None),
    };
    let name = name.ok_or_else(|| ApiError::invalid("body", "every part needs a name"))?;
    let Some(field) = FIELDS.iter().position(|f| *f == name) else {
        let shown: String = name.chars().take(64).collect();
        return Err(ApiError::InvalidParams(format!(
            "{shown}: unknown field (known: file, partition, collection, channel, filename, metadata, tags)"
        )));
    };
    if header_bytes > MAX_PART_HEADERS {
        return Err(ApiError::invalid(
            FIELDS[field],
            format_args!("the part's headers must be at most {MAX_PART_HEADERS} bytes"),
        ));
    }
    if before.iter().any(|p| p.field == field) {
        return Err(ApiError::invalid(FIELDS[field], "must be sent once"));
    }
    let part = Part {
        field,
        filename,
        content_type: content_type.and_then(media_type),
        content: 0..0,
    };
    Ok((part, pos))
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The `name` and `filename` of a `Content-Disposition: form-data` header.
fn form_data(value: &[u8]) -> Result<(Option<String>, Option<String>), ApiError> {
    let split = memchr::memchr(b';', value).unwrap_or(value.len());
    if !trim_ows(&value[..split]).eq_ignore_ascii_case(b"form-data") {
        return Err(malformed("a part's Content-Disposition must be form-data"));
    }
    let params = parameters(&value[split..], Quoting::Form)
        .ok_or_else(|| malformed("a part's Content-Disposition is not well formed"))?;
    let (mut name, mut filename): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    for (param, value) in params {
        let slot = if param.eq_ignore_ascii_case("name") {
            &mut name
        } else if param.eq_ignore_ascii_case("filename") {
            &mut filename
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            return Err(malformed(
                "a part's Content-Disposition repeats a parameter",
            ));
        }
    }
    let name = name
        .map(String::from_utf8)
        .transpose()
        .map_err(|_| malformed("a part's name is not UTF-8"))?;
    let filename = filename
        .map(String::from_utf8)
        .transpose()
        .map_err(|_| ApiError::invalid("filename", "the uploaded file name must be UTF-8"))?;
    Ok((name, filename))
}

/// The `type/subtype` of a part's Content-Type, lowercase; `None` if it is not one (then the
/// file counts as having declared no type, and its bytes or extension decide).
fn media_type(value: &[u8]) -> Option<String> {
    let essence = trim_ows(&value[..memchr::memchr(b';', value).unwrap_or(value.len())]);
    let slash = memchr::memchr(b'/', essence)?;
    let (kind, subtype) = (&essence[..slash], &essence[slash + 1..]);
    let token = |s: &[u8]| !s.is_empty() && s.iter().all(|b| is_tchar(*b));
    if !token(kind) || !token(subtype) {
        return None;
    }
    let essence = std::str::from_utf8(essence).ok()?;
    Some(essence.to_ascii_lowercase())
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

    #[test]
    fn a_minimal_form_parses() {
        let (ct, body) = form(&BASE);
        let upload = parse_form(Some(&ct), body).unwrap();
        assert_eq!(upload.filename.as_str(), "a.txt");
        assert_eq!(&upload.file[..], b"hello");
        assert_eq!(upload.metadata.as_json(), "{}");
        assert_eq!(upload.tags.to_json(), "[]");
    }

    #[test]
    fn duplicate_unknown_and_missing_fields_are_400() {
        let mut dup = BASE.to_vec();
        dup.push(("channel", None, "x"));
        let mut unknown = BASE.to_vec();
        unknown.push(("color", None, "red"));
        for parts in [dup, unknown, BASE[1..].to_vec(), BASE[..3].to_vec()] {
            let (ct, body) = form(&parts);
            assert!(matches!(
                parse_form(Some(&ct), body),
                Err(ApiError::InvalidParams(_))
            ));
        }
    }

    #[test]
    fn a_part_with_huge_headers_is_400_naming_it() {
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
        match parse_form(Some(&ct), Bytes::from(padded)) {
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
        assert!(parse_form(Some(&ct), Bytes::from(fits)).is_ok());
    }

    #[test]
    fn a_body_that_is_not_multipart_is_400() {
        for ct in [None, Some("application/json"), Some("multipart/form-data")] {
            let result = parse_form(ct, Bytes::from_static(b"{}"));
            assert!(matches!(result, Err(ApiError::InvalidParams(_))));
        }
        let (ct, body) = form(&BASE);
        let truncated = body.slice(..body.len() - 12);
        assert!(matches!(
            parse_form(Some(&ct), truncated),
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

    fn refusal_of(ct: &str, body: impl Into<Bytes>) -> String {
        match parse_form(Some(ct), body.into()) {
            Err(ApiError::InvalidParams(message)) => message,
            other => panic!("expected INVALID_PARAMS, got {other:?}"),
        }
    }

    #[test]
    fn the_file_is_a_slice_of_the_body_not_a_copy() {
        let content = "\u{0}\r\n--Xy\r--XyZ\n binary \r\n-- XyZ";
        let body = framed(&format!(
            "Content-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: Application/Octet-Stream; x=1\r\n\r\n{content}"
        ));
        let range = body.as_ptr_range();
        let upload = parse_form(Some(CT), body.clone()).unwrap();
        assert_eq!(&upload.file[..], content.as_bytes());
        assert!(range.contains(&upload.file.as_ptr()), "the file was copied");
        assert_eq!(
            upload.declared_type.as_deref(),
            Some("application/octet-stream")
        );
    }

    #[test]
    fn preamble_epilogue_padding_and_quoted_boundaries_are_read() {
        let body =
            framed("Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhi");
        let text = String::from_utf8(body.to_vec()).unwrap();
        let dressed = format!(
            "preamble, ignored\r\n{}epilogue --XyZ\r\n garbage",
            text.replacen("--XyZ\r\n", "--XyZ \t\r\n", 2)
        );
        let upload = parse_form(Some(CT), Bytes::from(dressed)).unwrap();
        assert_eq!(&upload.file[..], b"hi");
        let quoted = text.replace("XyZ", "a b:c=d");
        for ct in [
            "multipart/form-data; boundary=\"a b:c=d\"",
            "Multipart/Form-Data ; charset=utf-8;BOUNDARY=\"a b:c=d\";",
        ] {
            let upload = parse_form(Some(ct), Bytes::from(quoted.clone())).unwrap();
            assert_eq!(upload.channel.as_str(), "ch", "{ct}");
        }
    }

    #[test]
    fn boundaries_outside_rfc_2046_are_refused() {
        let long = "b".repeat(71);
        for ct in [
            format!("multipart/form-data; boundary={long}"),
            "multipart/form-data; boundary=\"ends \"".to_owned(),
            "multipart/form-data; boundary=\"a\\\"b\"".to_owned(),
            "multipart/form-data; boundary=XyZ; boundary=XyZ".to_owned(),
            "multipart/form-data; boundary=\"XyZ".to_owned(),
            "multipart/form-data; boundary=Xy Z".to_owned(),
            "multipart/form-data-x; boundary=XyZ".to_owned(),
        ] {
            let message = refusal_of(&ct, framed("x"));
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
        .unwrap();
        assert!(upload.file.is_empty());
    }

    #[test]
    fn framing_errors_are_400_body() {
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
            good.replacen("name=\"file\"", "name=\"file\"; name=\"file\"", 1),
            good.replacen("name=\"file\"", "name=file\"", 1),
            good.replacen(
                "filename=\"a\"\r\n",
                "filename=\"a\"\r\nContent-Disposition: form-data; name=\"file\"\r\n",
                1,
            ),
            good[..good.find("\r\n\r\nhi").unwrap()].to_owned(),
            "--XyZ".to_owned(),
            String::new(),
        ] {
            let message = refusal_of(CT, bad.clone());
            assert!(message.starts_with("body: "), "{bad:?}: {message}");
        }
    }

    #[test]
    fn a_quoted_filename_keeps_backslashes_and_unescapes_quotes() {
        let body = framed(
            "content-disposition: Form-Data; filename*=UTF-8''ignored.txt; NAME=file; filename=\"C:\\dir\\say \\\"hi\\\".txt\"\r\n\r\nx",
        );
        let upload = parse_form(Some(CT), body).unwrap();
        assert_eq!(upload.filename.as_str(), "say \"hi\".txt");
        let only_star =
            framed("Content-Disposition: form-data; name=file; filename*=UTF-8''a.txt\r\n\r\nx");
        assert!(refusal_of(CT, only_star).starts_with("filename: "));
    }

    #[test]
    fn a_text_field_over_its_limit_is_400_naming_it() {
        let big = "m".repeat(MAX_TEXT_FIELD as usize + 1);
        let body = framed(&format!(
            "Content-Disposition: form-data; name=\"metadata\"\r\n\r\n{big}"
        ));
        assert!(refusal_of(CT, body).starts_with("metadata: "));
    }

    /// The parts multer reads from a form: name, filename, content type, bytes.
    type Parsed = Vec<(String, Option<String>, Option<String>, Vec<u8>)>;

    fn with_multer(body: &Bytes) -> Parsed {
        let body = body.clone();
        let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
        let mut form = multer::Multipart::new(stream, "XyZ");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut parts = Vec::new();
            while let Some(field) = form.next_field().await.unwrap() {
                let name = field.name().unwrap().to_owned();
                let filename = field.file_name().map(str::to_owned);
                let declared = field.content_type().map(|m| m.essence_str().to_owned());
                parts.push((
                    name,
                    filename,
                    declared,
                    field.bytes().await.unwrap().to_vec(),
                ));
            }
            parts
        })
    }

    fn with_ours(body: &Bytes) -> Parsed {
        split(body, "XyZ")
            .unwrap()
            .into_iter()
            .map(|p| {
                (
                    FIELDS[p.field].to_owned(),
                    p.filename,
                    p.content_type,
                    body[p.content].to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn forms_read_as_multer_reads_them() {
        // Pseudo-random file contents, salted with pieces of delimiters that are not one.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut random = |n: usize| {
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect::<Vec<u8>>()
        };
        let salts: [&[u8]; 5] = [b"", b"\r\n--XyQ", b"\r\n-XyZ", b"--XyZ", b"\r\n--Xy"];
        for (i, salt) in salts.iter().enumerate() {
            for size in [0usize, 1, 100, 70_000] {
                let mut content = random(size);
                content.extend_from_slice(salt);
                content.extend(random(i * 3));
                let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\n[\"a\"]\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"n\xc3\xa9 1.png\"\r\nContent-Type: image/png\r\nX-Other: 1\r\n\r\n".to_vec();
                body.extend_from_slice(&content);
                body.extend_from_slice(b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"partition\"\r\n\r\np\r\n--XyZ--\r\n");
                let body = Bytes::from(body);
                let ours = with_ours(&body);
                assert_eq!(ours, with_multer(&body), "salt {salt:?}, size {size}");
                assert_eq!(ours[1].3, content);
            }
        }
    }
}
