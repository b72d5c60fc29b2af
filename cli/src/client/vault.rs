//! `imgbt vault show | rename | delivery | rotate-delivery-secret`: the vault's settings over the
//! API (docs/API.md#vault, docs/API.md#delivery). Beside them in `imgbt vault`, `create` and
//! `list` are admin commands on the store itself.

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

/// How a vault delivers its assets (docs/API.md#delivery).
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Delivery {
    /// Anyone with an asset's URL may fetch it.
    Public,
    /// Only URLs that carry an expiry and a signature (`imgbt url` makes them).
    Signed,
}

#[derive(Args)]
pub struct DeliveryArgs {
    #[arg(value_enum)]
    pub mode: Delivery,
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
    /// Absent from an API that predates delivery.
    #[serde(default)]
    delivery: Option<String>,
    #[serde(default)]
    delivery_secret_rotated_at: Option<String>,
}

fn describe(value: &Value) -> Result<String, ClientError> {
    let vault = VaultRecord::deserialize(value)
        .map_err(|e| other(format!("the API's answer is not a vault record: {e}")))?;
    let mut text = format!(
        "id:       {}\nname:     {}\ncreated:  {}\n",
        vault.id, vault.name, vault.created_at
    );
    if let Some(delivery) = &vault.delivery {
        text.push_str(&format!("delivery: {delivery}\n"));
    }
    if let Some(rotated) = &vault.delivery_secret_rotated_at {
        text.push_str(&format!("delivery secret since: {rotated}\n"));
    }
    Ok(text)
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

pub async fn delivery(args: &DeliveryArgs) -> Result<(Value, String), ClientError> {
    let api = Api::new(&args.conn)?;
    let url = api.url(&args.vault.vault_id, &[]);
    let mode = match args.mode {
        Delivery::Public => "public",
        Delivery::Signed => "signed",
    };
    let body = json!({ "delivery": mode });
    // Setting a mode twice leaves what setting it once left: safe to retry.
    let sent = api
        .send("vault delivery", || async {
            Ok(api.request(Method::PATCH, url.clone()).json(&body))
        })
        .await?;
    let response = expect(sent.response, &[StatusCode::OK], "the API").await?;
    let value = json_body(response, "vault delivery").await?;
    let advice = match args.mode {
        Delivery::Public => "Anyone with an asset's URL may fetch it.",
        Delivery::Signed => "Only signed URLs deliver now: `imgbt url <asset>` makes them.",
    };
    let text = format!("{advice}\n{}", describe(&value)?);
    Ok((value, text))
}

pub async fn rotate_delivery_secret(args: &ShowArgs) -> Result<(Value, String), ClientError> {
    let api = Api::new(&args.conn)?;
    let url = api.url(&args.vault.vault_id, &["delivery", "rotate"]);
    // A resend whose first attempt went through finds that rotation and makes no other
    // (docs/API.md#delivery): safe to retry.
    let sent = api
        .send("vault rotate-delivery-secret", || async {
            Ok(api.request(Method::POST, url.clone()))
        })
        .await?;
    let response = expect(sent.response, &[StatusCode::OK], "the API").await?;
    let value = json_body(response, "vault rotate-delivery-secret").await?;
    let text = format!(
        "Rotated the delivery secret: URLs signed before still work until the next rotation.\n{}",
        describe(&value)?
    );
    Ok((value, text))
}
