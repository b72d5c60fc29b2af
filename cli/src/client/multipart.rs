//! The multipart/form-data body of `POST …/assets`, as reqwest's form writer encodes it: the text
//! fields first, in order, then the file, streamed from disk with its length declared, so reqwest
//! knows the whole body's length and sends it as `Content-Length`.
//!
//! The client picks multipart or a direct upload by whether that length fits in one Lambda
//! invocation, so [`encoded_len`] asks reqwest for it before anything is read or sent.

use reqwest::header::CONTENT_LENGTH;
use reqwest::multipart::{Form, Part};
use reqwest::{Body, RequestBuilder};

/// `fields` in order (name, value), then a `file` part of `file_size` bytes read from `file`. The
/// part's own filename is a placeholder: the `filename` field carries the real one, byte for
/// byte, whatever characters it has. The part declares no type, so the API finds it from the
/// bytes and the filename (docs/API.md#mime-type-and-pixel-size).
pub fn form<N: AsRef<str>, V: AsRef<str>>(fields: &[(N, V)], file: Body, file_size: u64) -> Form {
    let form = fields.iter().fold(Form::new(), |form, (name, value)| {
        form.text(name.as_ref().to_owned(), value.as_ref().to_owned())
    });
    form.part(
        "file",
        Part::stream_with_length(file, file_size).file_name("upload"),
    )
}

/// The length of the body `request` would carry with [`form`] of `fields` and a file of
/// `file_size` bytes: the `Content-Length` reqwest computes for it. Nothing is read or sent.
pub fn encoded_len<N: AsRef<str>, V: AsRef<str>>(
    request: RequestBuilder,
    fields: &[(N, V)],
    file_size: u64,
) -> Option<u64> {
    let form = form(fields, Body::from(Vec::new()), file_size);
    let request = request.multipart(form).build().ok()?;
    request
        .headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    const FIELDS: [(&str, &str); 3] = [
        ("partition", "p"),
        ("filename", "naïve \"quoted\".txt"),
        ("tags", r#"["a"]"#),
    ];

    #[tokio::test]
    async fn the_form_parses_back_and_its_length_is_known_in_advance() {
        let client = reqwest::Client::new();
        let post = || client.post("http://127.0.0.1:9/");
        let expected = encoded_len(post(), &FIELDS, 5).expect("a length");
        let mut request = post()
            .multipart(form(&FIELDS, Body::from("hello"), 5))
            .build()
            .unwrap();
        let boundary = request.headers()["content-type"]
            .to_str()
            .unwrap()
            .split_once("boundary=")
            .unwrap()
            .1
            .to_owned();
        assert_eq!(request.headers()[CONTENT_LENGTH], expected.to_string());
        let body = request
            .body_mut()
            .take()
            .expect("a body")
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(body.len() as u64, expected);
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
        let mut parts = multer::Multipart::new(stream, boundary);
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
