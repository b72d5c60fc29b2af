//! Clients of the S3 stand-in shared by the S3 suites: our R2 client, and the AWS SDK itself for
//! what our client has no call for.

// Each suite is its own crate and uses only some of these.
#![allow(dead_code)]

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;
use imgbt_test_servers::S3Server;
use shared::blobs::r2::R2Blobs;
use shared::secret::Secret;

/// Our R2 client, signing with the server's key pair.
pub fn blobs(server: &S3Server) -> R2Blobs {
    blobs_with_secret(server, server.secret_access_key())
}

/// Our R2 client, signing with `secret` (to be refused when it is not the server's).
pub fn blobs_with_secret(server: &S3Server, secret: &str) -> R2Blobs {
    R2Blobs::new(
        &server.endpoint(),
        server.bucket(),
        server.access_key_id(),
        &Secret::new(secret),
    )
}

/// The AWS SDK configured as our client is: region `auto`, path-style.
pub fn sdk(server: &S3Server) -> aws_sdk_s3::Client {
    let credentials = Credentials::new(
        server.access_key_id(),
        server.secret_access_key(),
        None,
        None,
        "test",
    );
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(server.endpoint())
        .region(Region::new("auto"))
        .force_path_style(true)
        .credentials_provider(credentials)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// 10,000 bytes that are not all alike.
pub fn body() -> Bytes {
    Bytes::from((0..10_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}
