//! The multipart/form-data body of `POST …/assets`, written here rather than by reqwest's form
//! builder so that its exact length is known before it is sent: the client picks multipart or a
//! direct upload by whether that length fits in one Lambda invocation.
//!
//! The text fields come first, the file last, streamed from disk between a header and a trailer
//! held in memory.

use bytes::Bytes;

/// A form ready to send: everything before the file, and everything after it.
pub struct Form {
    pub boundary: String,
    pub head: Bytes,
    pub tail: Bytes,
    pub file_size: u64,
}

impl Form {
    /// `fields` in order (name, value), then a `file` part of `file_size` bytes. The part's own
    /// filename is a placeholder: the `filename` field carries the real one, byte for byte,
    /// whatever characters it has.
    pub fn new<N: AsRef<str>, V: AsRef<str>>(fields: &[(N, V)], file_size: u64) -> Form {
        let boundary = format!(
            "imgbt-{:016x}{:016x}",
            getrandom::u64().unwrap_or(0x5eed),
            getrandom::u64().unwrap_or(0xb0a7)
        );
        let mut head = String::new();
        for (name, value) in fields {
            let (name, value) = (name.as_ref(), value.as_ref());
            head.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        ));
        let tail = format!("\r\n--{boundary}--\r\n");
        Form {
            boundary,
            head: Bytes::from(head),
            tail: Bytes::from(tail),
            file_size,
        }
    }

    /// The body's length in bytes, as `Content-Length` will say.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.file_size + self.tail.len() as u64
    }

    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_form_parses_back_and_its_length_is_exact() {
        let form = Form::new(
            &[
                ("partition", "p"),
                ("filename", "naïve \"quoted\".txt"),
                ("tags", r#"["a"]"#),
            ],
            5,
        );
        let body = [&form.head[..], b"hello", &form.tail[..]].concat();
        assert_eq!(body.len() as u64, form.len());
        let stream =
            futures_util::stream::once(
                async move { Ok::<_, std::io::Error>(bytes::Bytes::from(body)) },
            );
        let mut parts = multer::Multipart::new(stream, form.boundary.clone());
        let mut seen = Vec::new();
        while let Some(field) = parts.next_field().await.unwrap() {
            let name = field.name().unwrap().to_owned();
            seen.push((name, field.text().await.unwrap()));
        }
        assert_eq!(
            seen,
            [
                ("partition".into(), "p".into()),
                ("filename".into(), "naïve \"quoted\".txt".into()),
                ("tags".into(), r#"["a"]"#.into()),
                ("file".into(), "hello".into()),
            ]
        );
    }
}
