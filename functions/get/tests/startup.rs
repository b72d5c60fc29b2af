//! A function process refuses to start on an incomplete Cloudflare configuration, naming what is
//! missing and printing no secret. (Every function's `main` builds `Deps::from_env` the same way.)

use std::process::Command;

#[test]
fn an_incomplete_cloudflare_configuration_stops_the_function_at_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_get"))
        .env_clear()
        .env("CLOUDFLARE_API_TOKEN", "token-that-must-not-print")
        .env(
            "IMGBT_R2_SECRET_ACCESS_KEY",
            "r2-secret-that-must-not-print",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for missing in [
        "CLOUDFLARE_ACCOUNT_ID",
        "IMGBT_D1_DATABASE_ID",
        "IMGBT_R2_BUCKET",
        "IMGBT_R2_ACCESS_KEY_ID",
    ] {
        assert!(text.contains(missing), "{text}");
    }
    assert!(!text.contains("must-not-print"), "{text}");
}
