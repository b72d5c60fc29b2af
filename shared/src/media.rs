//! What a file is, from its bytes: MIME type and, for raster images, pixel size.
//!
//! The MIME type comes from the file's magic bytes when they are recognisable, else from the type
//! the upload declared, else from the filename's extension, else `application/octet-stream`.
//! A declared `application/octet-stream` says nothing, so it does not stop the extension from
//! answering.
//!
//! Contract: docs/API.md#mime-type-and-pixel-size.

pub const OCTET_STREAM: &str = "application/octet-stream";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub mime_type: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// The MIME type the magic bytes say, if they say one: what a delivery labels a stored variant
/// with, which needs no pixel size.
pub fn magic(bytes: &[u8]) -> Option<&'static str> {
    infer::get(bytes).map(|kind| kind.mime_type())
}

pub fn sniff(bytes: &[u8], declared: Option<&str>, filename: &str) -> Sniffed {
    let magic = magic(bytes).map(str::to_owned);
    let mime_type = magic
        .or_else(|| declared.and_then(clean_declared))
        .or_else(|| {
            mime_guess::from_path(filename)
                .first_raw()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| OCTET_STREAM.to_owned());
    let (width, height) = if is_raster(&mime_type) {
        match imagesize::blob_size(bytes) {
            Ok(size) => (
                u32::try_from(size.width).ok(),
                u32::try_from(size.height).ok(),
            ),
            Err(_) => (None, None),
        }
    } else {
        (None, None)
    };
    Sniffed {
        mime_type,
        width,
        height,
    }
}

fn is_raster(mime_type: &str) -> bool {
    mime_type.starts_with("image/") && !mime_type.starts_with("image/svg")
}

/// A declared content type, reduced to `type/subtype` in lowercase, if it is one.
fn clean_declared(declared: &str) -> Option<String> {
    let essence = media_type(declared.split(';').next()?)?;
    (essence != OCTET_STREAM).then_some(essence)
}

/// `text` as a media type `type/subtype` (RFC 9110 tokens, at most 127 characters each), in
/// lowercase, if it is one; parameters are not accepted.
pub fn media_type(text: &str) -> Option<String> {
    let essence = text.trim().to_ascii_lowercase();
    let (kind, sub) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (token(kind) && token(sub)).then_some(essence)
}

/// The type a filename's extension suggests, else `application/octet-stream`.
pub fn guess_from_filename(filename: &str) -> String {
    mime_guess::from_path(filename)
        .first_raw()
        .unwrap_or(OCTET_STREAM)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_wins_over_declared_and_extension() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x03\0\0\0\x02\x08\x02\0\0\0";
        let s = sniff(png, Some("text/plain"), "a.txt");
        assert_eq!(s.mime_type, "image/png");
        assert_eq!((s.width, s.height), (Some(3), Some(2)));
    }

    #[test]
    fn media_types_are_type_slash_subtype() {
        assert_eq!(media_type(" Image/PNG ").as_deref(), Some("image/png"));
        assert_eq!(media_type(OCTET_STREAM).as_deref(), Some(OCTET_STREAM));
        for bad in [
            "",
            "image",
            "image/",
            "/png",
            "text/plain; charset=utf-8",
            "a b/c",
            "é/x",
        ] {
            assert_eq!(media_type(bad), None, "{bad:?}");
        }
        assert_eq!(guess_from_filename("a.png"), "image/png");
        assert_eq!(guess_from_filename("README"), OCTET_STREAM);
    }

    #[test]
    fn declared_then_extension_then_octet_stream() {
        assert_eq!(
            sniff(b"hello", Some("text/markdown; charset=utf-8"), "a.bin").mime_type,
            "text/markdown"
        );
        assert_eq!(sniff(b"hello", None, "notes.txt").mime_type, "text/plain");
        assert_eq!(
            sniff(b"hello", Some("application/octet-stream"), "notes.txt").mime_type,
            "text/plain"
        );
        assert_eq!(
            sniff(b"hello", Some("not a type"), "notes").mime_type,
            OCTET_STREAM
        );
        let text = sniff(b"hello", None, "notes.txt");
        assert_eq!((text.width, text.height), (None, None));
    }
}
