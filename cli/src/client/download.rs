//! `imgbt download`: an asset's bytes into a file (or stdout).
//!
//! The API answers the content route with the bytes (embedded default) or a 302 to a short-lived
//! presigned URL (R2). The redirect is followed here, by hand, without the API key. The bytes go to
//! a temporary file beside the destination, which is renamed over it only once every byte has
//! arrived and the count matches the asset's size: an interrupted download leaves nothing behind
//! and never a half-written file under the real name.

use super::assets::{self, AssetArgs};
use super::progress::{self, human_bytes};
use super::{Api, ClientError, chain, expect, other, unavailable, usage};
use clap::Args;
use reqwest::header::LOCATION;
use reqwest::{Method, Response, StatusCode, Url};
use serde_json::{Value, json};
use std::path::{Component, Path, PathBuf};
use tokio::io::AsyncWriteExt;

#[derive(Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    pub asset: AssetArgs,
    /// Where to write: a file (replaced if it exists), a directory, or `-` for stdout. Default:
    /// the asset's filename in the current directory.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Replace an existing file when writing to the default name.
    #[arg(long)]
    pub force: bool,
}

enum Destination {
    File(PathBuf),
    Stdout,
}

fn destination(args: &DownloadArgs, filename: &str) -> Result<Destination, ClientError> {
    let own_name = || {
        // The API never stores a name with a separator, `.` or `..`; check anyway, as the name
        // decides where a file is written.
        let mut parts = Path::new(filename).components();
        match (parts.next(), parts.next()) {
            (Some(Component::Normal(_)), None) => Ok(PathBuf::from(filename)),
            _ => Err(other(format!(
                "the asset's filename {filename:?} cannot be used as a file name here; pass -o"
            ))),
        }
    };
    match &args.output {
        Some(path) if path.as_os_str() == "-" => Ok(Destination::Stdout),
        Some(path) if path.is_dir() => Ok(Destination::File(path.join(own_name()?))),
        Some(path) => Ok(Destination::File(path.clone())),
        None => {
            let path = own_name()?;
            if path.exists() && !args.force {
                return Err(other(format!(
                    "{} exists; pass --force to replace it, or -o to write elsewhere",
                    path.display()
                )));
            }
            Ok(Destination::File(path))
        }
    }
}

pub async fn run(args: &DownloadArgs, json: bool) -> Result<(Value, String), ClientError> {
    if json && args.output.as_deref().is_some_and(|p| p.as_os_str() == "-") {
        return Err(usage(
            "-o - writes the bytes to stdout; it cannot go with --json",
        ));
    }
    let api = Api::new(&args.asset.conn)?;
    let vault = &args.asset.vault.vault_id;
    let record = assets::get(&api, vault, &args.asset.asset_id, "download").await?;
    let asset = assets::asset_of(&record)?;
    let destination = destination(args, &asset.filename)?;
    let response = fetch(&api, vault, &asset.id).await?;
    let bar = progress::bar(asset.size, !json, "download");
    let written = match &destination {
        Destination::Stdout => {
            let mut out = tokio::io::stdout();
            let n = copy(response, &mut out, &bar).await?;
            out.flush()
                .await
                .map_err(|e| other(format!("stdout: {e}")))?;
            n
        }
        Destination::File(path) => save(response, path, asset.size, &bar).await?,
    };
    bar.finish_and_clear();
    if written != asset.size {
        return Err(unavailable(format!(
            "download: got {written} bytes of {}; nothing was written",
            asset.size
        )));
    }
    let path = match &destination {
        // stdout carries the bytes and nothing else.
        Destination::Stdout => return Ok((Value::Null, String::new())),
        Destination::File(path) => path.display().to_string(),
    };
    Ok((
        json!({ "id": asset.id, "path": path, "size": written, "mime_type": asset.mime_type }),
        format!(
            "Downloaded {} ({}, {}) to {path}.\n",
            asset.id,
            assets::path_of(&asset),
            human_bytes(written)
        ),
    ))
}

/// The answer carrying the bytes: the API's own, or the presigned URL's it redirects to.
async fn fetch(api: &Api, vault: &str, asset_id: &str) -> Result<Response, ClientError> {
    let url = api.url(vault, &["assets", asset_id, "content"]);
    let sent = api
        .send("download", || async {
            Ok(api.request(Method::GET, url.clone()))
        })
        .await?;
    let response = expect(
        sent.response,
        &[
            StatusCode::OK,
            StatusCode::FOUND,
            StatusCode::SEE_OTHER,
            StatusCode::TEMPORARY_REDIRECT,
        ],
        "the API",
    )
    .await?;
    if response.status() == StatusCode::OK {
        return Ok(response);
    }
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| url.join(l).ok())
        .filter(|u: &Url| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| other("download: the API redirected without a usable Location"))?;
    let sent = api
        .send("download", || async {
            Ok(api.bare(Method::GET, location.clone()))
        })
        .await?;
    expect(sent.response, &[StatusCode::OK], "the download URL").await
}

/// Streams the body into `out`, returning the byte count.
async fn copy<W: tokio::io::AsyncWrite + Unpin>(
    mut response: Response,
    out: &mut W,
    bar: &indicatif::ProgressBar,
) -> Result<u64, ClientError> {
    let mut written = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| unavailable(format!("download: the connection failed: {}", chain(&e))))?
    {
        out.write_all(&chunk)
            .await
            .map_err(|e| other(format!("writing the download: {e}")))?;
        written += chunk.len() as u64;
        bar.inc(chunk.len() as u64);
    }
    Ok(written)
}

/// Writes the body to a temporary file beside `path`, then renames it to `path` if it has
/// `size` bytes. On any failure the temporary file is removed.
async fn save(
    response: Response,
    path: &Path,
    size: u64,
    bar: &indicatif::ProgressBar,
) -> Result<u64, ClientError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let local = |e: std::io::Error| other(format!("{}: {e}", path.display()));
    let temp = tempfile::Builder::new()
        .prefix(".imgbt-download-")
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(|e| other(format!("{}: {e}", dir.display())))?;
    let mut file = tokio::fs::File::from_std(temp.as_file().try_clone().map_err(local)?);
    let written = copy(response, &mut file, bar).await?;
    file.flush().await.map_err(local)?;
    file.sync_all().await.map_err(local)?;
    drop(file);
    if written == size {
        temp.persist(path).map_err(|e| local(e.error))?;
    }
    Ok(written)
}
