//! `imgbt ls`, `show`, `patch`, `rm`, and the asset record as the client reads it.

use super::progress::human_bytes;
use super::{Api, ClientError, ConnectionArgs, VaultArgs, expect, json_body, other, usage};
use clap::Args;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The asset record, as the functions write it.
pub use shared::asset::Asset;

/// Reads an asset record out of an answer of the API.
pub fn asset_of(value: &Value) -> Result<Asset, ClientError> {
    Asset::deserialize(value)
        .map_err(|e| other(format!("the API's answer is not an asset record: {e}")))
}

/// `partition/collection/channel/filename`.
pub fn path_of(asset: &Asset) -> String {
    format!(
        "{}/{}/{}/{}",
        asset.partition, asset.collection, asset.channel, asset.filename
    )
}

#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub vault: VaultArgs,
    #[arg(long)]
    pub partition: Option<String>,
    #[arg(long)]
    pub collection: Option<String>,
    #[arg(long)]
    pub channel: Option<String>,
    /// Show at most this many assets (default: all of them, page after page).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Assets asked for per request.
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=200))]
    pub page_size: u64,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

/// Every asset matching the filters, newest first, up to `limit`; and how many requests it took.
pub async fn list(
    api: &Api,
    vault: &str,
    filters: &[(&str, Option<&str>)],
    limit: Option<u64>,
    page_size: u64,
) -> Result<(Vec<Value>, u32), ClientError> {
    let mut assets = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let want = match limit {
            Some(limit) => page_size.min(limit - assets.len() as u64),
            None => page_size,
        };
        if want == 0 {
            break;
        }
        let mut url = api.url(vault, &["assets"]);
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in filters {
                if let Some(value) = value {
                    query.append_pair(name, value);
                }
            }
            query.append_pair("limit", &want.to_string());
            if let Some(cursor) = &cursor {
                query.append_pair("cursor", cursor);
            }
        }
        let sent = api
            .send("list", || async {
                Ok(api.request(Method::GET, url.clone()))
            })
            .await?;
        let response = expect(sent.response, &[StatusCode::OK], "the API").await?;
        let mut page = json_body(response, "list").await?;
        pages += 1;
        let Some(Value::Array(data)) = page.get_mut("data").map(Value::take) else {
            return Err(other("list: the API's answer has no data array"));
        };
        assets.extend(data);
        match (page["has_more"].as_bool(), page["cursor"].as_str()) {
            (Some(true), Some(next)) => cursor = Some(next.to_owned()),
            (Some(false), _) => break,
            _ => {
                return Err(other(
                    "list: the API's answer has has_more without a cursor",
                ));
            }
        }
    }
    Ok((assets, pages))
}

pub async fn ls(args: &LsArgs) -> Result<(Value, String), ClientError> {
    if args.limit == Some(0) {
        return Err(usage("--limit must be at least 1"));
    }
    let api = Api::new(&args.conn)?;
    let filters = [
        ("partition", args.partition.as_deref()),
        ("collection", args.collection.as_deref()),
        ("channel", args.channel.as_deref()),
    ];
    let (assets, _pages) = list(
        &api,
        &args.vault.vault_id,
        &filters,
        args.limit,
        args.page_size,
    )
    .await?;
    let mut rows = Vec::new();
    for value in &assets {
        let asset = asset_of(value)?;
        rows.push(vec![
            asset.id.clone(),
            path_of(&asset),
            human_bytes(asset.size),
            asset.mime_type.clone(),
            asset.created_at.clone(),
        ]);
    }
    let text = if rows.is_empty() {
        "No assets.\n".to_owned()
    } else {
        crate::table(&["ID", "PATH", "SIZE", "TYPE", "CREATED"], rows)
    };
    Ok((json!({ "count": assets.len(), "assets": assets }), text))
}

/// The asset called `filename` in `partition/collection/channel`, if there is one.
pub async fn find_by_name(
    api: &Api,
    vault: &str,
    [partition, collection, channel]: [&str; 3],
    filename: &str,
) -> Result<Option<Value>, ClientError> {
    // The API stores names in NFC: compare as it does.
    let filename = shared::validate::Filename::parse(filename)
        .map(|f| f.as_str().to_owned())
        .unwrap_or_else(|_| filename.to_owned());
    let filters = [
        ("partition", Some(partition)),
        ("collection", Some(collection)),
        ("channel", Some(channel)),
    ];
    let (assets, _) = list(api, vault, &filters, None, 200).await?;
    Ok(assets
        .into_iter()
        .find(|a| a["filename"].as_str() == Some(filename.as_str())))
}

#[derive(Args)]
pub struct AssetArgs {
    /// The asset id (`asset_…`).
    #[arg(value_name = "ASSET_ID")]
    pub asset_id: String,
    #[command(flatten)]
    pub vault: VaultArgs,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

/// The asset's record; `what` names the command in messages.
pub async fn get(api: &Api, vault: &str, asset_id: &str, what: &str) -> Result<Value, ClientError> {
    let url = api.url(vault, &["assets", asset_id]);
    let sent = api
        .send(what, || async { Ok(api.request(Method::GET, url.clone())) })
        .await?;
    let response = expect(sent.response, &[StatusCode::OK], "the API").await?;
    json_body(response, what).await
}

pub async fn show(args: &AssetArgs) -> Result<(Value, String), ClientError> {
    let api = Api::new(&args.conn)?;
    let value = get(&api, &args.vault.vault_id, &args.asset_id, "show").await?;
    let text = describe(&asset_of(&value)?);
    Ok((value, text))
}

/// An asset, one field a line.
pub fn describe(asset: &Asset) -> String {
    let dimensions = match (asset.width, asset.height) {
        (Some(w), Some(h)) => format!(", {w}×{h}"),
        _ => String::new(),
    };
    format!(
        "id:        {}\n\
         path:      {}\n\
         size:      {} bytes ({})\n\
         type:      {}{dimensions}\n\
         metadata:  {}\n\
         tags:      {}\n\
         r2_key:    {}\n\
         created:   {}\n\
         updated:   {}\n",
        asset.id,
        path_of(asset),
        asset.size,
        human_bytes(asset.size),
        asset.mime_type,
        asset.metadata,
        asset.tags,
        asset.r2_key,
        asset.created_at,
        asset.updated_at,
    )
}

#[derive(Args)]
pub struct PatchArgs {
    #[command(flatten)]
    pub asset: AssetArgs,
    /// Set a metadata entry to a string value; repeat for more.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Remove a metadata entry; repeat for more.
    #[arg(long = "unset", value_name = "KEY")]
    pub unset: Vec<String>,
    /// A JSON Merge Patch for the metadata (nested objects merge, null removes); `--meta` and
    /// `--unset` apply on top of it.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
    /// Replace the tags: a comma-separated list (`--tags ''` removes them all).
    #[arg(long, value_name = "A,B")]
    pub tags: Option<String>,
}

/// The PATCH body the flags describe.
pub fn patch_body(args: &PatchArgs) -> Result<Value, ClientError> {
    let mut body = Map::new();
    let metadata = super::upload::metadata(args.metadata.as_deref(), &args.meta)?;
    if metadata.is_some() || !args.unset.is_empty() {
        let mut metadata = metadata.unwrap_or_default();
        for key in &args.unset {
            if metadata.get(key).is_some_and(|v| !v.is_null()) {
                return Err(usage(format!("metadata key {key:?} is both set and unset")));
            }
            metadata.insert(key.clone(), Value::Null);
        }
        body.insert("metadata".into(), Value::Object(metadata));
    }
    if let Some(tags) = &args.tags {
        let tags: Vec<&str> = tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        body.insert("tags".into(), json!(tags));
    }
    if body.is_empty() {
        return Err(usage(
            "nothing to change: pass --meta KEY=VALUE, --unset KEY, --metadata JSON or --tags A,B",
        ));
    }
    Ok(Value::Object(body))
}

pub async fn patch(args: &PatchArgs) -> Result<(Value, String), ClientError> {
    let body = patch_body(args)?;
    let api = Api::new(&args.asset.conn)?;
    let url = api.url(
        &args.asset.vault.vault_id,
        &["assets", &args.asset.asset_id],
    );
    // A merge patch applied twice leaves what it left once, and tags are replaced: safe to retry.
    let sent = api
        .send("patch", || async {
            Ok(api.request(Method::PATCH, url.clone()).json(&body))
        })
        .await?;
    let response = expect(sent.response, &[StatusCode::OK], "the API").await?;
    let value = json_body(response, "patch").await?;
    let text = format!(
        "Updated {}.\n{}",
        args.asset.asset_id,
        describe(&asset_of(&value)?)
    );
    Ok((value, text))
}

pub async fn rm(args: &AssetArgs) -> Result<(Value, String), ClientError> {
    let api = Api::new(&args.conn)?;
    let url = api.url(&args.vault.vault_id, &["assets", &args.asset_id]);
    let sent = api
        .send("rm", || async {
            Ok(api.request(Method::DELETE, url.clone()))
        })
        .await?;
    let ambiguous = sent.ambiguous;
    let id = &args.asset_id;
    match expect(sent.response, &[StatusCode::NO_CONTENT], "the API").await {
        Ok(_) => Ok((json!({ "deleted": id }), format!("Deleted {id}.\n"))),
        // An attempt whose answer was lost deleted it: the retry finds it gone.
        Err(ClientError::Api { status: 404, .. }) if ambiguous => Ok((
            json!({ "deleted": id }),
            format!("Deleted {id} (by an earlier attempt whose answer was lost).\n"),
        )),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        patch: PatchArgs,
    }

    fn body(args: &[&str]) -> Result<Value, ClientError> {
        let mut argv = vec!["x", "asset_1", "--vault", "vault_1"];
        argv.extend(args);
        patch_body(&Wrap::parse_from(argv).patch)
    }

    #[test]
    fn patch_flags_become_one_merge_patch() {
        assert_eq!(
            body(&["--meta", "a=1", "--unset", "b", "--tags", "x, y,,"]).unwrap(),
            json!({"metadata": {"a": "1", "b": null}, "tags": ["x", "y"]})
        );
        assert_eq!(body(&["--tags", ""]).unwrap(), json!({"tags": []}));
        assert_eq!(
            body(&["--metadata", r#"{"n":{"m":2}}"#]).unwrap(),
            json!({"metadata": {"n": {"m": 2}}})
        );
        assert_eq!(body(&[]).err().unwrap().exit_code(), 2);
        assert_eq!(
            body(&["--meta", "a=1", "--unset", "a"])
                .err()
                .unwrap()
                .exit_code(),
            2
        );
    }
}
