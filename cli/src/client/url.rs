//! `imgbt url <asset> [--expires 1h] [--w 800 --format auto …]`: an asset's delivery URL
//! (docs/API.md#delivery), signed when the vault's delivery is, with transform parameters
//! (docs/API.md#transforms) when given. The one URL the client prints: it is meant to be handed out.
//!
//! The transform flags are passed to the route as written: the API checks them (a bad one is its
//! 400, printed as the API says it), so the client never disagrees with the server on a range.

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
    pub transform: TransformArgs,
    #[command(flatten)]
    pub vault: VaultArgs,
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

/// The transform parameters of the URL, by their delivery names (docs/API.md#transforms).
#[derive(Args, Default)]
#[command(next_help_heading = "Transform (docs/API.md#transforms)")]
pub struct TransformArgs {
    /// Width in CSS pixels, 1-8192.
    #[arg(long = "w", value_name = "PX")]
    pub width: Option<String>,
    /// Height in CSS pixels, 1-8192.
    #[arg(long = "h", value_name = "PX")]
    pub height: Option<String>,
    /// Device pixel ratio, 1-3: the output is w×dpr by h×dpr.
    #[arg(long, value_name = "RATIO")]
    pub dpr: Option<String>,
    /// cover, contain, fill, inside or outside.
    #[arg(long, value_name = "FIT")]
    pub fit: Option<String>,
    /// webp, avif, png, jpg, gif, or auto (chosen from the browser's Accept).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// 1-100.
    #[arg(long, value_name = "Q")]
    pub quality: Option<String>,
    /// Gaussian blur, 1-100.
    #[arg(long, value_name = "N")]
    pub blur: Option<String>,
    /// Sharpening, 1-100.
    #[arg(long, value_name = "N")]
    pub sharpen: Option<String>,
    /// Clockwise degrees: 0, 90, 180 or 270.
    #[arg(long, value_name = "DEGREES")]
    pub rotate: Option<String>,
    /// h (mirror left to right) or v (upside down).
    #[arg(long, value_name = "AXIS")]
    pub flip: Option<String>,
    /// Grayscale; `--grayscale` alone is `--grayscale true`.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub grayscale: Option<String>,
    /// Content-aware crop for fit=cover: entropy or attention.
    #[arg(long, value_name = "MODE")]
    pub crop: Option<String>,
    /// Where a crop or pad anchors: center, north, northeast, …, or a smart value.
    #[arg(long, value_name = "GRAVITY")]
    pub gravity: Option<String>,
    /// Background as 6 hex digits (padding, and alpha flattened into JPEG).
    #[arg(long, value_name = "RRGGBB")]
    pub bg: Option<String>,
}

impl TransformArgs {
    /// The given flags as (parameter, value), in the order the flags are documented.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("w", &self.width),
            ("h", &self.height),
            ("dpr", &self.dpr),
            ("fit", &self.fit),
            ("format", &self.format),
            ("quality", &self.quality),
            ("blur", &self.blur),
            ("sharpen", &self.sharpen),
            ("rotate", &self.rotate),
            ("flip", &self.flip),
            ("grayscale", &self.grayscale),
            ("crop", &self.crop),
            ("gravity", &self.gravity),
            ("bg", &self.bg),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
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
    {
        let mut query = url.query_pairs_mut();
        if let Some(expires) = expires {
            query.append_pair("expires", &expires.to_string());
        }
        query.extend_pairs(args.transform.pairs());
    }
    // `query_pairs_mut` leaves a bare `?` behind when nothing was appended.
    if url.query() == Some("") {
        url.set_query(None);
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
    fn transform_flags_become_the_routes_parameters_by_their_delivery_names() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            transform: TransformArgs,
        }
        let cli = Cli::try_parse_from([
            "imgbt",
            "--w",
            "800",
            "--h",
            "600",
            "--format",
            "auto",
            "--grayscale",
            "--bg",
            "00ff00",
        ])
        .unwrap();
        assert_eq!(
            cli.transform.pairs(),
            [
                ("w", "800"),
                ("h", "600"),
                ("format", "auto"),
                ("grayscale", "true"),
                ("bg", "00ff00")
            ]
        );
        let none = Cli::try_parse_from(["imgbt"]).unwrap();
        assert!(none.transform.pairs().is_empty());
    }

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
