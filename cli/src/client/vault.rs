//! `imgbt vault show | rename`: the vault's settings over the API (docs/API.md#vault). Beside
//! them in `imgbt vault`, `create` and `list` are admin commands on the store itself.

use super::{Api, ClientError, ConnectionArgs, VaultArgs, expect, json_body, other};
use clap::Args;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub vault: VaultArgs,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(Args)]
pub struct RenameArgs {
    /// The new name (1–100 characters).
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub vault: VaultArgs,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

/// The members of the vault record the client shows; later settings may join it, and `--json`
/// passes them through untouched.
#[derive(Deserialize)]
struct VaultRecord {
    id: String,
    name: String,
    created_at: String,
}

fn describe(value: &Value) -> Result<String, ClientError> {
    let vault = VaultRecord::deserialize(value)
        .map_err(|e| other(format!("the API's answer is not a vault record: {e}")))?;
    Ok(format!(
        "id:       {}\nname:     {}\ncreated:  {}\n",
        vault.id, vault.name, vault.created_at
    ))
}

pub async fn show(args: &ShowArgs) -> Result<(Value, String), ClientError> {
    let api = Api::new(&args.conn)?;
    let url = api.url(&args.vault.vault_id, &[]);
    let sent = api
        .send("vault show", || async {
            Ok(api.request(Method::GET, url.clone()))
        })
        .await?;
    let response = expect(sent.response, &[StatusCode::OK], "the API").await?;
    let value = json_body(response, "vault show").await?;
    let text = describe(&value)?;
    Ok((value, text))
}

pub async fn rename(args: &RenameArgs) -> Result<(Value, String), ClientError> {
    let api = Api::new(&args.conn)?;
    let url = api.url(&args.vault.vault_id, &[]);
    let body = json!({ "name": args.name });
    // Setting a name twice leaves what setting it once left: safe to retry.
    let sent = api
        .send("vault rename", || async {
            Ok(api.request(Method::PATCH, url.clone()).json(&body))
        })
        .await?;
    let response = expect(sent.response, &[StatusCode::OK], "the API").await?;
    let value = json_body(response, "vault rename").await?;
    let text = format!("Renamed the vault.\n{}", describe(&value)?);
    Ok((value, text))
}
