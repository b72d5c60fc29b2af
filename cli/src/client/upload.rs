//! `imgbt upload`: one file into a vault, as multipart when the whole request fits in one Lambda
//! invocation, else as a direct upload (create the upload, PUT the bytes to the URL it gives,
//! complete it). Both read the file in chunks as they send it.
//!
//! Retries: every request is retried on 429, 5xx and connection failures (the file is read again
//! from the start). Creating a direct upload, its PUT and its completion are all safe to repeat. A
//! multipart upload is not: if an attempt whose answer was lost had stored the asset, the retry is
//! told 409 CONFLICT. The client then looks the name up, and if the asset there has the file's
//! size, takes it as its own (and says so on stderr); otherwise the 409 stands.

use super::assets;
use super::multipart;
use super::progress::{self, human_bytes};
use super::{Api, ClientError, ConnectionArgs, VaultArgs, expect, json_body, other, usage};
use clap::{Args, ValueEnum};
use reqwest::header::{CONTENT_LENGTH, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// The largest request body one Lambda invocation takes through API Gateway (6 MiB of payload,
/// base64-encoded): `shared::deps::LAMBDA_BODY_LIMIT`. Multipart bodies up to this go in one request.
pub const MULTIPART_LIMIT: u64 = shared::deps::LAMBDA_BODY_LIMIT;

#[derive(Args)]
pub struct UploadArgs {
    /// The file to upload.
    pub path: PathBuf,
    #[command(flatten)]
    pub vault: VaultArgs,
    /// Where the asset goes.
    #[arg(long, value_name = "PARTITION/COLLECTION/CHANNEL")]
    pub to: String,
    /// A tag; repeat for more.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// A metadata entry with a string value; repeat for more.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Metadata as a JSON object (for values that are not strings); `--meta` entries are added to it.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    /// The asset's filename (default: the file's own name).
    #[arg(long, value_name = "FILENAME")]
    pub name: Option<String>,
    /// How to send the bytes; `auto` picks multipart when the request fits through the gateway
    /// (4,718,592 bytes, form fields included), else a direct upload.
    #[arg(long, value_enum, default_value_t = UploadMethod::Auto)]
    pub method: UploadMethod,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum UploadMethod {
    Auto,
    Multipart,
    Direct,
}

/// What the upload stored, for the caller to print.
pub struct Uploaded {
    pub asset: Value,
    pub method: UploadMethod,
}

/// `key=value` pairs as a metadata object, on top of `base` (a JSON object) if given.
pub fn metadata(
    base: Option<&str>,
    pairs: &[String],
) -> Result<Option<Map<String, Value>>, ClientError> {
    let mut map = match base {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(usage(
                    "--metadata must be a JSON object, e.g. '{\"alt\":\"Hero\"}'",
                ));
            }
        },
        None if pairs.is_empty() => return Ok(None),
        None => Map::new(),
    };
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| usage(format!("--meta {pair:?}: expected KEY=VALUE")))?;
        map.insert(key.to_owned(), Value::String(value.to_owned()));
    }
    Ok(Some(map))
}

/// `partition/collection/channel`.
fn destination(to: &str) -> Result<[&str; 3], ClientError> {
    let parts: Vec<&str> = to.split('/').collect();
    match parts.as_slice() {
        [p, c, ch] if !p.is_empty() && !c.is_empty() && !ch.is_empty() => Ok([p, c, ch]),
        _ => Err(usage(format!(
            "--to {to:?}: expected PARTITION/COLLECTION/CHANNEL, e.g. marketing/blog/hero-images"
        ))),
    }
}

pub async fn run(args: &UploadArgs, json: bool) -> Result<Uploaded, ClientError> {
    let [partition, collection, channel] = destination(&args.to)?;
    let metadata = metadata(args.metadata.as_deref(), &args.meta)?;
    let filename = match &args.name {
        Some(name) => name.clone(),
        None => args
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                usage(format!(
                    "{}: cannot name the asset after this path; pass --name",
                    args.path.display()
                ))
            })?,
    };
    let info = std::fs::metadata(&args.path)
        .map_err(|e| other(format!("{}: {e}", args.path.display())))?;
    if !info.is_file() {
        return Err(usage(format!("{}: not a file", args.path.display())));
    }
    let size = info.len();
    let api = Api::new(&args.conn)?;
    let target = Target {
        vault: &args.vault.vault_id,
        partition,
        collection,
        channel,
        filename: &filename,
        metadata: metadata.as_ref(),
        tags: (!args.tags.is_empty()).then_some(args.tags.as_slice()),
    };

    let fields = target.form_fields();
    let encoded = multipart::encoded_len(
        api.request(Method::POST, api.url(target.vault, &["assets"])),
        &fields,
        size,
    );
    let method = pick(args.method, encoded);
    let bar = progress::bar(size, !json, "upload");
    let mut method = method;
    let mut asset = match method {
        UploadMethod::Multipart => upload_multipart(&api, &target, &args.path, size, &bar).await,
        _ => direct(&api, &target, &args.path, size, &bar).await,
    };
    if args.method == UploadMethod::Auto
        && method == UploadMethod::Multipart
        && matches!(asset, Err(ClientError::Api { status: 413, .. }))
    {
        // A deployment that takes less than a Lambda's limit: the direct way has no such limit.
        eprintln!("imgbt: upload: the API refused the request as too large; uploading directly");
        method = UploadMethod::Direct;
        asset = direct(&api, &target, &args.path, size, &bar).await;
    }
    bar.finish_and_clear();
    Ok(Uploaded {
        asset: asset?,
        method,
    })
}

/// Where and under which name the file goes.
struct Target<'a> {
    vault: &'a str,
    partition: &'a str,
    collection: &'a str,
    channel: &'a str,
    filename: &'a str,
    metadata: Option<&'a Map<String, Value>>,
    tags: Option<&'a [String]>,
}

impl Target<'_> {
    fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("partition", self.partition.to_owned()),
            ("collection", self.collection.to_owned()),
            ("channel", self.channel.to_owned()),
            ("filename", self.filename.to_owned()),
        ];
        if let Some(metadata) = self.metadata {
            fields.push(("metadata", Value::Object(metadata.clone()).to_string()));
        }
        if let Some(tags) = self.tags {
            fields.push(("tags", json!(tags).to_string()));
        }
        fields
    }
}

/// The method `asked` resolves to for a multipart body of `encoded` bytes (`None`: unknown):
/// `auto` is multipart when the body fits in one Lambda invocation, else a direct upload.
fn pick(asked: UploadMethod, encoded: Option<u64>) -> UploadMethod {
    match asked {
        UploadMethod::Auto if encoded.is_some_and(|len| len <= MULTIPART_LIMIT) => {
            UploadMethod::Multipart
        }
        UploadMethod::Auto => UploadMethod::Direct,
        forced => forced,
    }
}

async fn upload_multipart(
    api: &Api,
    target: &Target<'_>,
    path: &Path,
    size: u64,
    bar: &indicatif::ProgressBar,
) -> Result<Value, ClientError> {
    let url = api.url(target.vault, &["assets"]);
    let fields = target.form_fields();
    let sent = api
        .send("upload", || async {
            let file = progress::open_sized(path, size).await?;
            bar.set_position(0);
            let chunks = progress::file_chunks(file, size, bar.clone());
            let form = multipart::form(&fields, reqwest::Body::wrap_stream(chunks), size);
            Ok(api.request(Method::POST, url.clone()).multipart(form))
        })
        .await?;
    let ambiguous = sent.ambiguous;
    match expect(sent.response, &[StatusCode::CREATED], "the API").await {
        Ok(response) => json_body(response, "upload").await,
        Err(ClientError::Api { status: 409, .. }) if ambiguous => {
            claim_landed_upload(api, target, size).await
        }
        Err(err) => Err(err),
    }
}

/// After a 409 on a retried multipart upload: the asset of that name, if it has the file's size.
async fn claim_landed_upload(
    api: &Api,
    target: &Target<'_>,
    size: u64,
) -> Result<Value, ClientError> {
    let found = assets::find_by_name(
        api,
        target.vault,
        [target.partition, target.collection, target.channel],
        target.filename,
    )
    .await?;
    match found {
        Some(asset) if assets::asset_of(&asset)?.size == size => {
            eprintln!(
                "imgbt: upload: an earlier attempt stored the file before its answer was lost; \
                 the asset it created has the file's size and is taken as this upload's"
            );
            Ok(asset)
        }
        _ => Err(ClientError::Api {
            status: 409,
            code: "CONFLICT".to_owned(),
            message: format!(
                "an asset named {}/{}/{}/{} exists (and is not this file: an earlier attempt's \
                 answer was lost, but the asset there has another size)",
                target.partition, target.collection, target.channel, target.filename
            ),
        }),
    }
}

async fn direct(
    api: &Api,
    target: &Target<'_>,
    path: &Path,
    size: u64,
    bar: &indicatif::ProgressBar,
) -> Result<Value, ClientError> {
    // 1. Create the upload. Repeating it is harmless: an upload never completed expires and
    //    `imgbt gc` removes it.
    let mut request = json!({
        "partition": target.partition,
        "collection": target.collection,
        "channel": target.channel,
        "filename": target.filename,
        "size": size,
    });
    if let Some(metadata) = target.metadata {
        request["metadata"] = Value::Object(metadata.clone());
    }
    if let Some(tags) = target.tags {
        request["tags"] = json!(tags);
    }
    let url = api.url(target.vault, &["uploads"]);
    let sent = api
        .send("upload", || async {
            Ok(api.request(Method::POST, url.clone()).json(&request))
        })
        .await?;
    let response = expect(sent.response, &[StatusCode::CREATED], "the API").await?;
    let created = json_body(response, "upload").await?;
    let upload = Upload::of(&created)?;

    // 2. The bytes, to the URL it gave, with exactly its headers and no key. A PUT is idempotent.
    let sent = api
        .send("upload (PUT)", || async {
            let file = progress::open_sized(path, size).await?;
            bar.set_position(0);
            let mut request = api.bare(Method::PUT, upload.url.clone());
            for (name, value) in &upload.headers {
                request = request.header(name, value);
            }
            Ok(request
                .header(CONTENT_LENGTH, size)
                .body(reqwest::Body::wrap_stream(progress::file_chunks(
                    file,
                    size,
                    bar.clone(),
                ))))
        })
        .await?;
    // 412: R2 URLs only create (`if-none-match: *` is signed), so the bytes are already there, as
    // when a first attempt landed but its answer was lost. Complete checks their size, and removes
    // an object of the wrong size so that the next attempt can PUT again.
    expect(
        sent.response,
        &[
            StatusCode::OK,
            StatusCode::CREATED,
            StatusCode::NO_CONTENT,
            StatusCode::PRECONDITION_FAILED,
        ],
        "the upload URL",
    )
    .await?;

    // 3. Complete: 201 the first time, 200 with the same asset when an earlier attempt had
    //    completed it already.
    let url = api.url(target.vault, &["uploads", &upload.id, "complete"]);
    let sent = api
        .send("upload (complete)", || async {
            Ok(api.request(Method::POST, url.clone()))
        })
        .await?;
    let response = expect(
        sent.response,
        &[StatusCode::CREATED, StatusCode::OK],
        "the API",
    )
    .await?;
    json_body(response, "upload (complete)").await
}

/// The API's answer to creating an upload.
struct Upload {
    id: String,
    url: Url,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Upload {
    fn of(value: &Value) -> Result<Upload, ClientError> {
        let bad = |what: &str| other(format!("upload: the API's answer has no valid {what}"));
        let id = value["upload_id"]
            .as_str()
            .ok_or_else(|| bad("upload_id"))?
            .to_owned();
        if value["method"].as_str() != Some("PUT") {
            return Err(bad("method (PUT)"));
        }
        let url = value["url"]
            .as_str()
            .and_then(|u| Url::parse(u).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| bad("url"))?;
        let mut headers = Vec::new();
        if let Some(map) = value["headers"].as_object() {
            for (name, value) in map {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("headers"))?;
                let value = value
                    .as_str()
                    .and_then(|v| HeaderValue::from_str(v).ok())
                    .ok_or_else(|| bad("headers"))?;
                headers.push((name, value));
            }
        } else if !value["headers"].is_null() {
            return Err(bad("headers"));
        }
        Ok(Upload { id, url, headers })
    }
}

/// The text `imgbt upload` prints.
pub fn describe(path: &Path, uploaded: &Uploaded) -> Result<String, ClientError> {
    let asset = assets::asset_of(&uploaded.asset)?;
    let how = match uploaded.method {
        UploadMethod::Multipart => "multipart",
        _ => "direct upload",
    };
    Ok(format!(
        "Uploaded {} as {} ({}, {}, {}; {how}).\n",
        path.display(),
        asset.id,
        assets::path_of(&asset),
        human_bytes(asset.size),
        asset.mime_type,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_pairs_are_strings_on_top_of_the_json_object() {
        let pairs = vec!["alt=Hero".to_owned(), "eq=a=b".to_owned()];
        let map = metadata(Some(r#"{"n":1,"alt":"x"}"#), &pairs)
            .unwrap()
            .unwrap();
        assert_eq!(Value::Object(map), json!({"n":1,"alt":"Hero","eq":"a=b"}));
        assert!(metadata(None, &[]).unwrap().is_none());
        assert_eq!(metadata(None, &["x".into()]).err().unwrap().exit_code(), 2);
        assert_eq!(metadata(None, &["=v".into()]).err().unwrap().exit_code(), 2);
        assert_eq!(metadata(Some("[1]"), &[]).err().unwrap().exit_code(), 2);
    }

    #[test]
    fn the_destination_is_three_segments() {
        assert_eq!(destination("a/b/c").unwrap(), ["a", "b", "c"]);
        for bad in ["a/b", "a/b/c/d", "a//c", "", "/a/b"] {
            assert!(destination(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_just_under_the_limit_with_its_fields_goes_multipart() {
        let fields = [
            ("partition", "p"),
            ("collection", "c"),
            ("channel", "ch"),
            ("filename", "f"),
        ];
        let client = reqwest::Client::new();
        let encoded =
            |size| multipart::encoded_len(client.post("http://127.0.0.1:9/"), &fields, size);
        let overhead = encoded(0).expect("a length");
        let fits = MULTIPART_LIMIT - overhead;
        assert_eq!(encoded(fits), Some(MULTIPART_LIMIT));
        assert_eq!(
            pick(UploadMethod::Auto, encoded(fits)),
            UploadMethod::Multipart
        );
        assert_eq!(
            pick(UploadMethod::Auto, encoded(fits + 1)),
            UploadMethod::Direct
        );
        assert_eq!(pick(UploadMethod::Auto, None), UploadMethod::Direct);
        assert_eq!(
            pick(UploadMethod::Multipart, encoded(fits + 1)),
            UploadMethod::Multipart
        );
    }
}
