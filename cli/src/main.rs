//! `imgbt`: the admin CLI and the API's client.
//!
//! - Admin commands (here): they open the same store as the functions (configured by the same
//!   environment: `IMGBT_DATA_DIR` for the embedded default) and run `shared::migrations` and
//!   `shared::admin` against it.
//! - Client commands ([`client`]: upload, ls, show, patch, rm, download, url, keys, vault
//!   show|rename|delivery|rotate-delivery-secret):
//!   they talk to the API at `IMGBT_URL` with `IMGBT_API_KEY`, over HTTP, as any user of the API
//!   does. `keys` and `vault show|rename` are the API's side of the admin `key` and
//!   `vault create|list`, for those who hold a secret key but not the store's credentials.
//!
//! Output: friendly text by default; with `--json`, exactly one JSON document on stdout. Errors go
//! to stderr with a non-zero exit code (and, with `--json`, `{"error": "..."}` on stdout): 1 for
//! admin commands; for client commands, see [`client::ClientError::exit_code`]. The only secret
//! ever printed is a key at the moment it is created, and the well-known keys of the dev vault
//! (`imgbt dev seed`, local stores only).

mod client;

use clap::{Args, Parser, Subcommand, ValueEnum};
use imgbt_cli::dev::{self, DevSeed};
use serde_json::json;
use shared::Deps;
use shared::admin::{self, GcReport, KeyInfo, NewKey, NewVault, VaultInfo};
use shared::auth::KeyKind;
use shared::deps::Config;
use shared::migrations;
use std::fmt::Display;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "imgbt",
    version,
    about = "imgbt: the API's client (upload, ls, show, patch, rm, download, url, keys, vault \
             show|rename|delivery|rotate-delivery-secret) and admin on the store (migrate, vault create|list, key, gc, fsck, dev)",
    after_help = "Client commands (over the API) read IMGBT_URL (the API's base URL) and \
                  IMGBT_API_KEY; admin commands open the store itself (IMGBT_DATA_DIR, or the \
                  Cloudflare variables). Keys: `imgbt keys` over the API with a secret key, \
                  `imgbt key` on the store. Vaults: `vault show|rename|delivery|rotate-delivery-secret` over the API, \
                  `vault create|list` on the store.\n\
                  Exit codes: 0 ok; 1 failure; 2 usage; 3 the API refused the request (4xx); \
                  4 not found; 5 conflict; 6 the API is unavailable (429, 5xx or no answer, \
                  after retries)."
)]
struct Cli {
    /// Print exactly one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Upload a file: multipart when it fits through the gateway, else a direct upload.
    Upload(client::upload::UploadArgs),
    /// List a vault's assets, newest first, every page.
    Ls(client::assets::LsArgs),
    /// Show one asset's record.
    Show(client::assets::AssetArgs),
    /// Change an asset's metadata (merged) or tags (replaced).
    Patch(client::assets::PatchArgs),
    /// Delete an asset.
    Rm(client::assets::AssetArgs),
    /// Download an asset's bytes.
    Download(client::download::DownloadArgs),
    /// Print an asset's delivery URL (any key of the vault): signed, with an expiry, when the
    /// vault's delivery is signed; with transform parameters (`--w 800 --format auto`) when given.
    // Boxed: its fourteen transform flags make it twice the size of any other command.
    Url(Box<client::url::UrlArgs>),
    /// Over the API, with a secret key of the vault: list, create and revoke its API keys. (On the
    /// store itself, with its credentials: `imgbt key`.)
    #[command(subcommand)]
    Keys(client::keys::KeysCommand),
    /// Apply pending schema migrations (safe to run again).
    Migrate,
    /// Vaults: `create` and `list` on the store itself (admin); `show`, `rename`, `delivery` and
    /// `rotate-delivery-secret` over the API.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Admin, on the store itself: create, list and revoke API keys. (Over the API, with a secret
    /// key: `imgbt keys`.)
    #[command(subcommand)]
    Key(KeyCommand),
    /// Finish pending object deletions, retrying any that failed when their asset was deleted;
    /// remove direct uploads that expired (over an hour ago) without being completed, objects
    /// under asset keys that nothing names once an hour old, and rows of uploads completed over
    /// 7 days ago. The deployed `gc` function runs the same sweep on a schedule.
    Gc,
    /// Compare records with objects: records without objects, objects without records (older
    /// than an hour; younger ones are listed apart), size mismatches. Exits non-zero when it
    /// finds any.
    Fsck,
    /// Local development helpers (never on a Cloudflare configuration).
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Subcommand)]
enum DevCommand {
    /// Reset the dev vault (fixed id, well-known keys) to its seed state: one sample asset,
    /// `docs/readme/main/hello.txt`. The sample events in `events/` use it. Local stores only:
    /// refused when the Cloudflare variables are set.
    Seed,
    /// Serve the embedded store's objects on 127.0.0.1, for URLs signed with
    /// IMGBT_LOCAL_OBJECTS_SECRET only: the stand-in for R2's presigned GETs, to which `content`
    /// redirects when the functions have IMGBT_LOCAL_OBJECTS_URL and the same secret.
    /// `./scripts/dev.sh` runs it. Serves until stopped.
    Objects {
        /// The port on 127.0.0.1.
        #[arg(long, default_value_t = imgbt_cli::objects::DEFAULT_PORT)]
        port: u16,
    },
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Admin, on the store: create a vault with one public (pk_) and one secret (sk_) key; the
    /// keys are shown only now.
    Create {
        /// A name for people; it need not be unique.
        #[arg(long)]
        name: String,
    },
    /// Admin, on the store: list vaults.
    List,
    /// Over the API (any key of the vault): show the vault's id, name and creation time.
    Show(client::vault::ShowArgs),
    /// Over the API (a secret key of the vault): rename the vault.
    Rename(client::vault::RenameArgs),
    /// Over the API (a secret key of the vault): deliver to anyone with an asset's URL
    /// (`public`), or only through signed URLs (`signed`).
    Delivery(client::vault::DeliveryArgs),
    /// Over the API (a secret key of the vault): a new delivery secret; URLs signed with the
    /// current one keep working until the next rotation.
    RotateDeliverySecret(client::vault::ShowArgs),
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key for a vault; the key is shown only now.
    Create {
        #[command(flatten)]
        vault: VaultArg,
        #[arg(long, value_enum)]
        kind: Kind,
        /// What the key is for, shown by `imgbt key list`.
        #[arg(long)]
        label: String,
    },
    /// List a vault's keys (hints only, never the keys).
    List {
        #[command(flatten)]
        vault: VaultArg,
    },
    /// Revoke a key: requests made with it get 401 from now on.
    Revoke {
        #[command(flatten)]
        vault: VaultArg,
        /// The key's id, as `imgbt key list` shows it.
        #[arg(long = "key", value_name = "KEY_ID")]
        key_id: String,
    },
}

#[derive(Args)]
struct VaultArg {
    /// The vault id (`vault_…`).
    #[arg(long = "vault", value_name = "VAULT_ID")]
    vault_id: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// pk_…: read-only (list, get).
    Public,
    /// sk_…: read and write.
    Secret,
}

impl From<Kind> for KeyKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Public => KeyKind::Public,
            Kind::Secret => KeyKind::Secret,
        }
    }
}

/// What a command prints on success: a JSON document for `--json`, text otherwise.
struct Output {
    json: serde_json::Value,
    text: String,
}

/// A command failure: the message for the user, the output to print first, if any, and the exit
/// code.
struct Failure {
    message: String,
    output: Option<Output>,
    exit: u8,
}

impl<E: Display> From<E> for Failure {
    fn from(err: E) -> Self {
        fail(err.to_string())
    }
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        output: None,
        exit: 1,
    }
}

impl From<client::ClientError> for Failure {
    fn from(err: client::ClientError) -> Self {
        Failure {
            message: err.message(),
            output: Some(Output {
                json: err.json(),
                text: String::new(),
            }),
            exit: err.exit_code(),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli.command, json).await {
        Ok(output) => {
            print(&output, cli.json);
            ExitCode::SUCCESS
        }
        Err(failure) => {
            match failure.output {
                Some(output) => print(&output, json),
                None if json => println!("{}", json!({ "error": failure.message })),
                None => {}
            }
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.exit)
        }
    }
}

fn print(output: &Output, json: bool) {
    if json {
        println!("{}", output.json);
    } else {
        print!("{}", output.text);
    }
}

async fn run(command: Command, json: bool) -> Result<Output, Failure> {
    let client = |(json, text)| Ok(Output { json, text });
    match &command {
        Command::Upload(args) => {
            let uploaded = client::upload::run(args, json).await?;
            let text = client::upload::describe(&args.path, &uploaded)?;
            return client((uploaded.asset, text));
        }
        Command::Ls(args) => return client(client::assets::ls(args).await?),
        Command::Show(args) => return client(client::assets::show(args).await?),
        Command::Patch(args) => return client(client::assets::patch(args).await?),
        Command::Rm(args) => return client(client::assets::rm(args).await?),
        Command::Download(args) => return client(client::download::run(args, json).await?),
        Command::Url(args) => return client(client::url::run(args).await?),
        Command::Keys(command) => return client(client::keys::run(command).await?),
        Command::Vault(VaultCommand::Show(args)) => {
            return client(client::vault::show(args).await?);
        }
        Command::Vault(VaultCommand::Rename(args)) => {
            return client(client::vault::rename(args).await?);
        }
        Command::Vault(VaultCommand::Delivery(args)) => {
            return client(client::vault::delivery(args).await?);
        }
        Command::Vault(VaultCommand::RotateDeliverySecret(args)) => {
            return client(client::vault::rotate_delivery_secret(args).await?);
        }
        _ => {}
    }
    if let Command::Dev(_) = command {
        // Before any client is built: the dev keys are public knowledge and must never reach D1.
        if let Config::Cloudflare(_) = Config::from_env()? {
            return Err(fail(
                "`imgbt dev seed` runs on the embedded store only: the dev vault's keys are public \
                 knowledge and must never reach D1. Unset the Cloudflare variables \
                 (CLOUDFLARE_*, IMGBT_D1_*, IMGBT_R2_*) to seed the local store. (`imgbt dev \
                 objects` serves the embedded store's objects only: on R2, R2 serves them.)",
            ));
        }
    }
    if let Command::Dev(DevCommand::Objects { port }) = command {
        return dev_objects(port).await;
    }
    if let Command::Migrate = command {
        // D1 alone: the deploy workflow migrates with no R2 credentials.
        return migrate(&Deps::open_d1_only_from_env()?).await;
    }
    let deps = Deps::open_from_env()?;
    let pending = migrations::pending(&*deps.db).await?;
    if !pending.is_empty() {
        return Err(fail(format!(
            "the store's schema is not up to date (pending: {}); run `imgbt migrate` first",
            pending.join(", ")
        )));
    }
    match command {
        Command::Migrate => unreachable!("handled above"),
        Command::Upload(_)
        | Command::Ls(_)
        | Command::Show(_)
        | Command::Patch(_)
        | Command::Rm(_)
        | Command::Download(_)
        | Command::Url(_)
        | Command::Keys(_)
        | Command::Vault(
            VaultCommand::Show(_)
            | VaultCommand::Rename(_)
            | VaultCommand::Delivery(_)
            | VaultCommand::RotateDeliverySecret(_),
        ) => {
            unreachable!("client commands are handled above")
        }
        Command::Vault(VaultCommand::Create { name }) => vault_create(&deps, &name).await,
        Command::Vault(VaultCommand::List) => vault_list(&deps).await,
        Command::Key(KeyCommand::Create { vault, kind, label }) => {
            key_create(&deps, &vault.vault_id, kind.into(), &label).await
        }
        Command::Key(KeyCommand::List { vault }) => key_list(&deps, &vault.vault_id).await,
        Command::Key(KeyCommand::Revoke { vault, key_id }) => {
            key_revoke(&deps, &vault.vault_id, &key_id).await
        }
        Command::Gc => gc(&deps).await,
        Command::Fsck => fsck(&deps).await,
        Command::Dev(DevCommand::Seed) => dev_seed(&deps).await,
        Command::Dev(DevCommand::Objects { .. }) => unreachable!("handled above"),
    }
}

async fn migrate(deps: &Deps) -> Result<Output, Failure> {
    let applied = migrations::apply(&*deps.db).await?;
    let text = if applied.is_empty() {
        "The schema is up to date; no migrations to apply.\n".to_owned()
    } else {
        applied
            .iter()
            .map(|name| format!("Applied {name}\n"))
            .collect()
    };
    Ok(Output {
        json: json!({ "applied": applied }),
        text,
    })
}

async fn vault_create(deps: &Deps, name: &str) -> Result<Output, Failure> {
    let name = name.trim();
    if name.is_empty() {
        return Err(fail("--name must not be empty"));
    }
    let vault: NewVault = admin::create_vault(&*deps.db, &deps.clock, name).await?;
    let text = format!(
        "Created vault {id} ({name}).\n\
         \x20 public key (read-only):       {pk}\n\
         \x20 secret key (read and write):  {sk}\n\
         The keys are shown only now; keep them somewhere safe.\n",
        id = vault.vault_id,
        pk = vault.public_key,
        sk = vault.secret_key,
    );
    Ok(Output {
        json: serde_json::to_value(&vault)?,
        text,
    })
}

async fn vault_list(deps: &Deps) -> Result<Output, Failure> {
    let vaults: Vec<VaultInfo> = admin::list_vaults(&*deps.db).await?;
    let text = if vaults.is_empty() {
        "No vaults yet. Create one with `imgbt vault create --name <name>`.\n".to_owned()
    } else {
        let rows = vaults
            .iter()
            .map(|v| vec![v.id.clone(), v.name.clone(), v.created_at.clone()])
            .collect();
        table(&["ID", "NAME", "CREATED"], rows)
    };
    Ok(Output {
        json: json!({ "vaults": vaults }),
        text,
    })
}

async fn key_create(
    deps: &Deps,
    vault_id: &str,
    kind: KeyKind,
    label: &str,
) -> Result<Output, Failure> {
    let created = match admin::create_key(&*deps.db, &deps.clock, vault_id, kind, label).await {
        // The key may exist, and nobody will ever see it: say how to find and revoke it.
        Err(shared::db::DbError::Uncertain(cause)) => {
            return Err(fail(format!(
                "D1's answer was lost, so the key may have been created without being shown                  ({cause}). `imgbt key list --vault {vault_id}` lists it, labelled {label:?}:                  revoke it, then create another."
            )));
        }
        created => created?,
    };
    let key: NewKey = created.ok_or_else(|| fail(format!("no vault {vault_id}")))?;
    let text = format!(
        "Created {kind} key {id} for vault {vault}: {key}\n\
         The key is shown only now; keep it somewhere safe.\n",
        kind = key.kind,
        id = key.key_id,
        vault = key.vault_id,
        key = key.key,
    );
    Ok(Output {
        json: serde_json::to_value(&key)?,
        text,
    })
}

/// Fails when there is no vault `vault_id`, so that listing an unknown vault is not silently empty.
async fn require_vault(deps: &Deps, vault_id: &str) -> Result<(), Failure> {
    let vaults = admin::list_vaults(&*deps.db).await?;
    if vaults.iter().any(|v| v.id == vault_id) {
        Ok(())
    } else {
        Err(fail(format!("no vault {vault_id}")))
    }
}

async fn key_list(deps: &Deps, vault_id: &str) -> Result<Output, Failure> {
    require_vault(deps, vault_id).await?;
    let keys: Vec<KeyInfo> = admin::list_keys(&*deps.db, vault_id).await?;
    let rows = keys
        .iter()
        .map(|k| {
            vec![
                k.id.clone(),
                k.kind.clone(),
                format!("{}…", k.hint),
                k.label.clone(),
                k.created_at.clone(),
                k.revoked_at.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    let text = table(&["ID", "KIND", "KEY", "LABEL", "CREATED", "REVOKED"], rows);
    Ok(Output {
        json: json!({ "vault_id": vault_id, "keys": keys }),
        text,
    })
}

async fn key_revoke(deps: &Deps, vault_id: &str, key_id: &str) -> Result<Output, Failure> {
    if !admin::revoke_key(&*deps.db, &deps.clock, vault_id, key_id).await? {
        return Err(fail(format!("no live key {key_id} in vault {vault_id}")));
    }
    Ok(Output {
        json: json!({ "revoked": true, "vault_id": vault_id, "key_id": key_id }),
        text: format!("Revoked key {key_id} of vault {vault_id}.\n"),
    })
}

async fn gc(deps: &Deps) -> Result<Output, Failure> {
    let report: GcReport = admin::gc(&*deps.db, &deps.clock, &*deps.blobs).await?;
    let mut text = String::new();
    if !report.expired_uploads.is_empty() {
        text.push_str(&format!(
            "Removed {} expired upload(s) never completed.\n",
            report.expired_uploads.len()
        ));
    }
    text.push_str(&format!(
        "Cleared {} pending deletion(s).\n",
        report.deleted.len()
    ));
    for key in &report.orphans {
        text.push_str(&format!("Removed object without record: {key}\n"));
    }
    if !report.completed_uploads.is_empty() {
        text.push_str(&format!(
            "Removed {} row(s) of uploads completed over 7 days ago.\n",
            report.completed_uploads.len()
        ));
    }
    for failure in &report.failed {
        text.push_str(&format!(
            "Could not remove (next `imgbt gc` retries): {}: {}\n",
            failure.r2_key, failure.error
        ));
    }
    let output = Output {
        json: serde_json::to_value(&report)?,
        text,
    };
    if report.failed.is_empty() {
        Ok(output)
    } else {
        Err(Failure {
            message: format!(
                "{} object(s) could not be removed; the next `imgbt gc` tries them again",
                report.failed.len()
            ),
            output: Some(output),
            exit: 1,
        })
    }
}

async fn dev_objects(port: u16) -> Result<Output, Failure> {
    use shared::blobs::object_urls::{SECRET_VAR, UrlSecret};
    let Config::Embedded { data_dir } = Config::from_env()? else {
        unreachable!("refused above");
    };
    let secret = std::env::var(SECRET_VAR)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            fail(format!(
                "set {SECRET_VAR} (at least 32 characters; ./scripts/dev.sh generates one): the \
                 object server serves URLs signed with it only"
            ))
        })?;
    let secret = UrlSecret::new(shared::deps::Secret::new(secret.trim())).map_err(fail)?;
    let dir = data_dir.join(shared::deps::OBJECTS_DIR);
    let blobs = shared::blobs::local::LocalBlobs::new(&dir).map_err(|e| fail(format!("{e}")))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| fail(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    // The bound address, so that `--port 0` says which port it got.
    let addr = listener
        .local_addr()
        .map_err(|e| fail(format!("cannot read the bound address: {e}")))?;
    eprintln!(
        "Serving the objects of {} on http://{addr} (signed URLs only; Ctrl-C to stop)",
        dir.display()
    );
    imgbt_cli::objects::serve(listener, blobs, secret).await;
    unreachable!("the object server serves until the process ends")
}

async fn dev_seed(deps: &Deps) -> Result<Output, Failure> {
    let seed: DevSeed = dev::seed_dev(&*deps.db, &deps.clock, &*deps.blobs).await?;
    let mut text = format!(
        "Reset the dev vault {id}: one sample asset, {asset} ({key}).\n\
         \x20 public key (read-only):       {pk}\n\
         \x20 secret key (read and write):  {sk}\n\
         These keys are public knowledge: local use only.\n",
        id = seed.vault_id,
        asset = seed.asset_id,
        key = seed.r2_key,
        pk = seed.public_key,
        sk = seed.secret_key,
    );
    if seed.pending_objects > 0 {
        text.push_str(&format!(
            "{} object(s) of removed assets could not be removed; run `imgbt gc` to retry.\n",
            seed.pending_objects
        ));
    }
    Ok(Output {
        json: serde_json::to_value(&seed)?,
        text,
    })
}

async fn fsck(deps: &Deps) -> Result<Output, Failure> {
    let report = admin::fsck(&*deps.db, &deps.clock, &*deps.blobs).await?;
    let mut text = format!(
        "{} record(s), {} object(s).\n",
        report.records, report.objects
    );
    for missing in &report.records_without_objects {
        text.push_str(&format!(
            "record without object: {} ({})\n",
            missing.asset_id, missing.r2_key
        ));
    }
    for key in &report.objects_without_records {
        text.push_str(&format!("object without record: {key}\n"));
    }
    if !report.recent_objects_without_records.is_empty() {
        text.push_str(&format!(
            "{} object(s) without record, written within the hour (a write may be in flight; \
             `imgbt gc` removes them once they are an hour old).\n",
            report.recent_objects_without_records.len()
        ));
    }
    for m in &report.size_mismatches {
        text.push_str(&format!(
            "size mismatch: {} record {} bytes, object {} bytes\n",
            m.asset_id, m.record_size, m.object_size
        ));
    }
    if !report.pending_deletions.is_empty() {
        text.push_str(&format!(
            "{} object(s) of deleted assets wait for `imgbt gc`.\n",
            report.pending_deletions.len()
        ));
    }
    if !report.pending_uploads.is_empty() {
        text.push_str(&format!(
            "{} object(s) of direct uploads wait for `complete` (or `imgbt gc` once expired).\n",
            report.pending_uploads.len()
        ));
    }
    let clean = report.is_clean();
    if clean {
        text.push_str("Consistent.\n");
    }
    let output = Output {
        json: serde_json::to_value(&report)?,
        text,
    };
    if clean {
        Ok(output)
    } else {
        Err(Failure {
            message: "the store is inconsistent (see above)".into(),
            output: Some(output),
            exit: 1,
        })
    }
}

/// Left-aligned columns separated by two spaces.
pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
}
