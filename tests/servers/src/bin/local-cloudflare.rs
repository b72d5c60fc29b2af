//! Runs the D1 REST and S3 test servers until interrupted, so that the functions and `imgbt` can
//! run their production code path (D1 over REST, R2 over S3) on a laptop:
//!
//! ```text
//! cargo run -p imgbt-test-servers --bin local-cloudflare -- .imgbt/cloudflare.env
//! ```
//!
//! prints, and writes to the given file, the Cloudflare variables that point at them. The values
//! are local throwaways; the stores live in memory and a temporary directory while this runs.

use imgbt_test_servers::{D1Server, S3Server};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (d1, s3) = tokio::join!(D1Server::start(), S3Server::start());
    let vars = [
        ("CLOUDFLARE_ACCOUNT_ID", d1.account_id().to_owned()),
        ("CLOUDFLARE_API_TOKEN", d1.token().to_owned()),
        ("IMGBT_D1_DATABASE_ID", d1.database_id().to_owned()),
        ("IMGBT_D1_BASE_URL", d1.base_url()),
        ("IMGBT_R2_BUCKET", s3.bucket().to_owned()),
        ("IMGBT_R2_ACCESS_KEY_ID", s3.access_key_id().to_owned()),
        (
            "IMGBT_R2_SECRET_ACCESS_KEY",
            s3.secret_access_key().to_owned(),
        ),
        ("IMGBT_R2_ENDPOINT", s3.endpoint()),
    ];
    let text: String = vars
        .iter()
        .map(|(name, value)| format!("export {name}={value}\n"))
        .collect();
    if let Some(path) = std::env::args().nth(1) {
        std::fs::write(&path, &text)?;
        eprintln!("wrote {path}");
    }
    print!("{text}");
    eprintln!(
        "D1 REST at {} and S3 at {}; Ctrl-C stops both.",
        d1.base_url(),
        s3.endpoint()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
