//! `imgbt url <asset> [--expires 1h]`: an asset's delivery URL (docs/API.md#delivery), signed
//! when the vault's delivery is. The one URL the client prints: it is meant to be handed out.

use super::{Api, ClientError, ConnectionArgs, VaultArgs, expect, json_body, other, usage};
use clap::Args;
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[derive(Args)]
pub struct UrlArgs {
    /// The asset id (`asset_…`).
    #[arg(value_name = "ASSET_ID")]
    pub asset_id: String,
    /// How long a signed URL works: `90s`, `15m`, `1h`, `7d` (at most 7 days). Default an hour.
    /// A public vault's URLs never expire.
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    #[command(flatten)]
    pub vault: VaultArgs,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

/// The longest life of a signed URL the API grants, in seconds.
const MAX_SECONDS: u64 = 604_800;

/// `--expires` in whole seconds: a duration as `humantime` reads it (`1h`, `1h 30m`, `90s`), or a
/// bare number of seconds.
pub fn seconds(text: &str) -> Result<u64, ClientError> {
    let text = text.trim();
    let seconds = match text.parse::<u64>() {
        Ok(n) => n,
        Err(_) => {
            let duration = humantime::parse_duration(text).map_err(|e| {
                usage(format!(
                    "--expires {text:?} is not a duration (e.g. 90s, 15m, 1h, 7d): {e}"
                ))
            })?;
            if duration.subsec_nanos() != 0 {
                return Err(usage(format!("--expires {text:?}: give whole seconds")));
            }
            duration.as_secs()
        }
    };
    if !(1..=MAX_SECONDS).contains(&seconds) {
        return Err(usage(format!(
            "--expires {text:?}: a signed URL lives from 1 second to 7 days"
        )));
    }
    Ok(seconds)
}

pub async fn run(args: &UrlArgs) -> Result<(Value, String), ClientError> {
    let expires = args.expires.as_deref().map(seconds).transpose()?;
    let api = Api::new(&args.conn)?;
    let mut url = api.url(&args.vault.vault_id, &["assets", &args.asset_id, "url"]);
    if let Some(expires) = expires {
        url.query_pairs_mut()
            .append_pair("expires", &expires.to_string());
    }
    let sent = api
        .send("url", || async {
            Ok(api.request(Method::GET, url.clone()))
        })
        .await?;
    let response = expect(sent.response, &[StatusCode::OK], "the API").await?;
    let value = json_body(response, "url").await?;
    let delivery = value["url"]
        .as_str()
        .ok_or_else(|| other(format!("the API's answer has no url: {value}")))?;
    Ok((value.clone(), format!("{delivery}\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_takes_durations_and_seconds_within_7_days() {
        assert_eq!(seconds("1h").unwrap(), 3600);
        assert_eq!(seconds("90s").unwrap(), 90);
        assert_eq!(seconds("1h 30m").unwrap(), 5400);
        assert_eq!(seconds("7d").unwrap(), 604_800);
        assert_eq!(seconds("120").unwrap(), 120);
        for bad in ["0", "0s", "8d", "604801", "soon", "1.5s", "-1h", ""] {
            let err = seconds(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}: {}", err.message());
        }
    }
}
