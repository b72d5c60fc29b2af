//! `imgbt keys ls | create | revoke`: a vault's keys over the API (docs/API.md#key-management),
//! with a secret key of that vault. The admin `imgbt key` does the same on the store itself.
//!
//! Neither a create nor a revoke is safe to send twice blindly, and the client retries after a
//! 5xx or a connection that failed once the request was out (the answer may be lost while the
//! work was done):
//! - A retried create that succeeds made a second key; the first may exist, seen by nobody. The
//!   client lists the vault's keys and names every other live key of the same label and type on
//!   stderr, to revoke if it is not someone else's. A create that fails after such an attempt
//!   says the same: a key may exist unseen, and how to find it.
//! - A retried revoke told 404 may mean the earlier attempt revoked the key. The client does not
//!   guess: it lists the vault's keys, and reports success only if the key is there and revoked
//!   (the state the user asked for, whoever reached it first); otherwise the 404 stands. A retried
//!   revoke told 401 may mean the earlier attempt revoked the very key the command runs with: the
//!   message says so.

use super::{Api, ClientError, ConnectionArgs, VaultArgs, expect, json_body, other};
use clap::{Args, Subcommand, ValueEnum};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List the vault's keys, live and revoked: id, type, hint, label, created, revoked (never a
    /// key).
    Ls(LsArgs),
    /// Create a key; it is printed this once and never again.
    Create(CreateArgs),
    /// Revoke a key: requests made with it get 401 from the next one on. The vault's last live
    /// secret key cannot be revoked (exit 5).
    Revoke(RevokeArgs),
}

#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub vault: VaultArgs,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KeyType {
    /// pk_…: read-only (list, get, content, vault show).
    Public,
    /// sk_…: read and write, and manages the vault's keys.
    Secret,
}

impl KeyType {
    fn as_str(self) -> &'static str {
        match self {
            KeyType::Public => "public",
            KeyType::Secret => "secret",
        }
    }
}

#[derive(Args)]
pub struct CreateArgs {
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: KeyType,
    /// What the key is for (1–100 characters), shown by `imgbt keys ls`.
    #[arg(long)]
    pub label: String,
    #[command(flatten)]
    pub vault: VaultArgs,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

#[derive(Args)]
pub struct RevokeArgs {
    /// The key's id (`key_…`), as `imgbt keys ls` shows it.
    #[arg(value_name = "KEY_ID")]
    pub key_id: String,
    #[command(flatten)]
    pub vault: VaultArgs,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

/// A key record as the API shows it (docs/API.md#key-management); never the key.
pub use shared::keys::KeyRecord;

fn key_of(value: &Value) -> Result<KeyRecord, ClientError> {
    KeyRecord::deserialize(value)
        .map_err(|e| other(format!("the API's answer is not a key record: {e}")))
}

pub async fn run(command: &KeysCommand) -> Result<(Value, String), ClientError> {
    match command {
        KeysCommand::Ls(args) => ls(args).await,
        KeysCommand::Create(args) => create(args).await,
        KeysCommand::Revoke(args) => revoke(args).await,
    }
}

/// The vault's keys, as the API's records.
async fn list(api: &Api, vault: &str) -> Result<Vec<Value>, ClientError> {
    let url = api.url(vault, &["keys"]);
    let sent = api
        .send("keys ls", || async {
            Ok(api.request(Method::GET, url.clone()))
        })
        .await?;
    let response = expect(sent.response, &[StatusCode::OK], "the API").await?;
    let mut page = json_body(response, "keys ls").await?;
    match page.get_mut("data").map(Value::take) {
        Some(Value::Array(data)) => Ok(data),
        _ => Err(other("keys ls: the API's answer has no data array")),
    }
}

async fn ls(args: &LsArgs) -> Result<(Value, String), ClientError> {
    let api = Api::new(&args.conn)?;
    let vault = &args.vault.vault_id;
    let keys = list(&api, vault).await?;
    let mut rows = Vec::new();
    for value in &keys {
        let key = key_of(value)?;
        rows.push(vec![
            key.id,
            key.kind,
            format!("{}…", key.hint),
            key.label,
            key.created_at,
            key.revoked_at.unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    let text = crate::table(&["ID", "TYPE", "HINT", "LABEL", "CREATED", "REVOKED"], rows);
    Ok((json!({ "vault_id": vault, "keys": keys }), text))
}

async fn create(args: &CreateArgs) -> Result<(Value, String), ClientError> {
    let api = Api::new(&args.conn)?;
    let vault = &args.vault.vault_id;
    let url = api.url(vault, &["keys"]);
    let body = json!({ "label": args.label, "type": args.kind.as_str() });
    let mut ambiguous = false;
    let unseen = format!(
        "An earlier attempt's answer was lost, so it may have created a key nobody has seen: \
         `imgbt keys ls` lists it, labelled {label:?}; revoke it with `imgbt keys revoke \
         <KEY_ID>`, then create another",
        label = args.label
    );
    let sent = match api
        .send_noting(
            "keys create",
            || async { Ok(api.request(Method::POST, url.clone()).json(&body)) },
            &mut ambiguous,
        )
        .await
    {
        Ok(sent) => sent,
        Err(err) if ambiguous => return Err(err.with_note(&unseen)),
        Err(err) => return Err(err),
    };
    let response = match expect(sent.response, &[StatusCode::CREATED], "the API").await {
        Ok(response) => response,
        Err(err) if ambiguous => return Err(err.with_note(&unseen)),
        Err(err) => return Err(err),
    };
    let value = json_body(response, "keys create").await?;
    let record = key_of(&value)?;
    let Some(key) = value.get("key").and_then(Value::as_str) else {
        return Err(other("keys create: the API's answer carries no key"));
    };
    if ambiguous {
        // On stderr, so also with --json; it names ids, never a key.
        eprintln!(
            "imgbt: keys create: {}",
            unseen_keys(&api, vault, &record).await
        );
    }
    let text = format!(
        "Created {kind} key {id} ({label:?}) for vault {vault}:\n{key}\n\
         The key is shown only now, never again; keep it somewhere safe.\n",
        kind = record.kind,
        id = record.id,
        label = record.label,
    );
    Ok((value, text))
}

/// After a create that succeeded on a retry: the other live keys of the same label and type, one
/// of which an earlier attempt may have made.
async fn unseen_keys(api: &Api, vault: &str, created: &KeyRecord) -> String {
    let lost = "an earlier attempt's answer was lost, so it may have created a key nobody has seen";
    let keys = match list(api, vault).await {
        Ok(keys) => keys,
        Err(err) => {
            return format!(
                "{lost}; listing the keys to find it failed ({}): `imgbt keys ls` shows keys \
                 labelled {:?}, to revoke any that is not in use",
                err.message(),
                created.label
            );
        }
    };
    let twins: Vec<String> = keys
        .iter()
        .filter_map(|value| key_of(value).ok())
        .filter(|k| {
            k.id != created.id
                && k.revoked_at.is_none()
                && k.label == created.label
                && k.kind == created.kind
        })
        .map(|k| format!("{} (created {})", k.id, k.created_at))
        .collect();
    if twins.is_empty() {
        format!(
            "{lost}, but the vault has no other live {} key labelled {:?}: nothing to revoke",
            created.kind, created.label
        )
    } else {
        format!(
            "{lost}. Live {} keys with the same label: {}. Revoke with `imgbt keys revoke \
             <KEY_ID>` the one that is nobody's",
            created.kind,
            twins.join(", ")
        )
    }
}

async fn revoke(args: &RevokeArgs) -> Result<(Value, String), ClientError> {
    let api = Api::new(&args.conn)?;
    let vault = &args.vault.vault_id;
    let id = &args.key_id;
    let url = api.url(vault, &["keys", id]);
    let sent = api
        .send("keys revoke", || async {
            Ok(api.request(Method::DELETE, url.clone()))
        })
        .await?;
    let ambiguous = sent.ambiguous;
    let done = |text: String| {
        Ok((
            json!({ "revoked": true, "vault_id": vault, "key_id": id }),
            text,
        ))
    };
    match expect(sent.response, &[StatusCode::NO_CONTENT], "the API").await {
        Ok(_) => done(format!(
            "Revoked key {id} of vault {vault}: requests with it get 401 from now on.\n"
        )),
        Err(err @ ClientError::Api { status: 404, .. }) if ambiguous => {
            match list(&api, vault).await {
                Ok(keys) => {
                    let found = keys
                        .iter()
                        .filter_map(|value| key_of(value).ok())
                        .find(|k| &k.id == id);
                    match found.and_then(|k| k.revoked_at) {
                        Some(at) => done(format!(
                            "Key {id} of vault {vault} is revoked (at {at}): an earlier attempt \
                             whose answer was lost revoked it, or it was revoked already.\n"
                        )),
                        // Not a key of the vault: the 404 means what it says.
                        None => Err(err),
                    }
                }
                Err(list_err) => Err(err.with_note(&format!(
                    "An earlier attempt's answer was lost, so this 404 may mean that attempt \
                     revoked the key; checking with the list of keys failed ({}): `imgbt keys \
                     ls` shows whether {id} is revoked",
                    list_err.message()
                ))),
            }
        }
        Err(err @ ClientError::Api { status: 401, .. }) if ambiguous => {
            Err(err.with_note(&format!(
                "An earlier attempt's answer was lost: if {id} is the key this command runs \
                 with, that attempt revoked it and this 401 is the proof; `imgbt keys ls` with \
                 another secret key shows it"
            )))
        }
        Err(err) => Err(err),
    }
}
