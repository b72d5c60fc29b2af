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
    let vars = imgbt_test_servers::cloudflare_env(&d1, &s3);
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
