//! Keys as long as ours get (up to ~520 bytes: `vault_…/<partition ≤64>/<collection ≤64>/<channel
//! ≤64>/asset_…_<filename ≤255 bytes>`) stored through the S3 stand-in, which R2 takes (up to
//! 1,024 bytes) and plain s3s-fs could not (a path segment over 255 bytes, and the base64 of the
//! key in a file name).

mod common;

use common::{blobs, body, sdk};

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use bytes::Bytes;
use imgbt_test_servers::S3Server;
use shared::blobs::Blobs;

const VAULT: &str = "vault_01JZ8Q4X7M2N5P8R1T4V7W0Y3A";
const ASSET: &str = "asset_01JZ8Q4X7M2N5P8R1T4V7W0Y3B";

/// 64 characters cycled from `seed`.
fn segment(seed: &str) -> String {
    seed.chars().cycle().take(64).collect()
}

/// A key of exactly 520 bytes with multi-byte UTF-8 and spaces in every component.
fn long_utf8_key() -> String {
    let head = format!(
        "{VAULT}/{}/{}/{}/{ASSET}_",
        segment("größe 写真 "),
        segment("Ärzte für Fotos "),
        segment("canal ñ — 頻道 "),
    );
    let mut filename = "cat photo 🐈 très jolie ".to_owned();
    while head.len() + filename.len() + ".png".len() < 520 {
        filename.push('x');
    }
    filename.push_str(".png");
    assert!(
        filename.len() <= 255,
        "filename of {} bytes",
        filename.len()
    );
    let key = format!("{head}{filename}");
    assert_eq!(key.len(), 520);
    key
}

/// Three 64-character ASCII segments and a 255-byte filename: 516 bytes.
fn long_ascii_key(partition: &str) -> String {
    let filename = format!("{}.png", "f".repeat(251));
    assert_eq!(filename.len(), 255);
    format!(
        "{VAULT}/{}/{}/{}/{ASSET}_{filename}",
        segment(partition),
        segment("collection-"),
        segment("channel-"),
    )
}

#[tokio::test]
async fn a_520_byte_utf8_key_round_trips_through_our_client() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    let key = long_utf8_key();
    assert_eq!(blobs.size(&key).await.unwrap(), None);

    blobs.put(&key, body(), "image/png").await.expect("put");
    assert_eq!(blobs.size(&key).await.unwrap(), Some(body().len() as u64));
    assert!(server.object_exists(&key));
    assert_eq!(server.object_bytes(&key).as_deref(), Some(&body()[..]));
    assert_eq!(server.object_len(&key), Some(body().len() as u64));
    assert_eq!(
        server.object_content_type(&key).as_deref(),
        Some("image/png")
    );
    assert_eq!(server.objects(), vec![key.clone()]);
    let name = server.object_path(&key);
    let name = name.file_name().unwrap().to_str().unwrap();
    assert_eq!(name.len(), 64, "stored under its digest: {name}");

    blobs.delete(&key).await.expect("delete");
    assert!(!server.object_exists(&key));
    assert_eq!(server.object_len(&key), None);
    assert!(server.objects().is_empty());
    assert_eq!(blobs.size(&key).await.unwrap(), None);
}

#[tokio::test]
async fn a_key_of_64_character_segments_and_a_255_byte_filename_works() {
    let server = S3Server::start().await;
    let blobs = blobs(&server);
    let key = long_ascii_key("partition-");
    assert_eq!(key.len(), 516);

    blobs.put(&key, body(), "image/png").await.expect("put");
    assert_eq!(blobs.size(&key).await.unwrap(), Some(body().len() as u64));
    assert_eq!(server.object_bytes(&key).as_deref(), Some(&body()[..]));
    assert_eq!(server.objects(), vec![key.clone()]);

    blobs.delete(&key).await.expect("delete");
    assert!(server.objects().is_empty());
}

#[tokio::test]
async fn get_and_head_answer_as_s3s_fs_does_for_long_keys() {
    let server = S3Server::start().await;
    let client = sdk(&server);
    let key = long_utf8_key();

    let missing = client
        .head_object()
        .bucket(server.bucket())
        .key(&key)
        .send()
        .await
        .expect_err("not there yet");
    assert_eq!(
        missing.raw_response().map(|r| r.status().as_u16()),
        Some(404)
    );
    let missing = client
        .get_object()
        .bucket(server.bucket())
        .key(&key)
        .send()
        .await
        .expect_err("not there yet");
    assert!(
        missing
            .as_service_error()
            .is_some_and(|e| e.is_no_such_key()),
        "{missing:?}"
    );

    let put = client
        .put_object()
        .bucket(server.bucket())
        .key(&key)
        .content_type("image/png")
        .body(body().into())
        .send()
        .await
        .expect("put");
    let etag = put.e_tag().expect("an ETag").to_owned();
    assert_eq!(etag.len(), 34, "a quoted MD5: {etag}");

    let head = client
        .head_object()
        .bucket(server.bucket())
        .key(&key)
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("image/png"));
    assert_eq!(head.content_length(), Some(body().len() as i64));
    assert_eq!(head.e_tag(), Some(etag.as_str()));

    let got = client
        .get_object()
        .bucket(server.bucket())
        .key(&key)
        .send()
        .await
        .expect("get");
    assert_eq!(got.content_type(), Some("image/png"));
    assert_eq!(got.content_length(), Some(body().len() as i64));
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), body());
}

#[tokio::test]
async fn listing_speaks_in_original_keys() {
    let server = S3Server::start().await;
    let client = sdk(&server);
    let keys = [
        long_ascii_key("a-"),
        long_ascii_key("b-"),
        format!("{VAULT}/short/x.png"),
        long_utf8_key(),
        "vault_other/y.png".to_owned(),
    ];
    for key in &keys {
        client
            .put_object()
            .bucket(server.bucket())
            .key(key)
            .body(Bytes::from_static(b"abc").into())
            .send()
            .await
            .expect("put");
    }
    let mut sorted = keys.to_vec();
    sorted.sort();
    assert_eq!(server.objects(), sorted);

    // Everything, in key order.
    let all = client
        .list_objects_v2()
        .bucket(server.bucket())
        .send()
        .await
        .expect("list");
    let listed: Vec<&str> = all.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(listed, sorted);
    assert!(all.contents().iter().all(|o| o.size() == Some(3)));

    // A prefix filters on original keys.
    let vault = client
        .list_objects_v2()
        .bucket(server.bucket())
        .prefix(format!("{VAULT}/"))
        .send()
        .await
        .expect("list");
    let listed: Vec<&str> = vault.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(listed, &sorted[..4]);

    // A delimiter groups on original keys.
    let grouped = client
        .list_objects_v2()
        .bucket(server.bucket())
        .prefix(format!("{VAULT}/"))
        .delimiter("/")
        .send()
        .await
        .expect("list");
    let prefixes: Vec<&str> = grouped
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    let mut expected: Vec<String> = sorted[..4]
        .iter()
        .map(|k| {
            let rest = &k[VAULT.len() + 1..];
            format!("{VAULT}/{}/", rest.split('/').next().unwrap())
        })
        .collect();
    expected.dedup();
    assert_eq!(prefixes, expected);
    assert!(grouped.contents().is_empty());

    // Pages of two follow the continuation token to the end.
    let mut paged = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(server.bucket())
            .max_keys(2)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list");
        paged.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_owned),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_owned);
    }
    assert_eq!(paged, sorted);
}

#[tokio::test]
async fn delete_objects_takes_original_keys() {
    let server = S3Server::start().await;
    let client = sdk(&server);
    let keep = long_ascii_key("keep-");
    let gone = [long_utf8_key(), long_ascii_key("gone-")];
    for key in gone.iter().chain([&keep]) {
        client
            .put_object()
            .bucket(server.bucket())
            .key(key)
            .body(Bytes::from_static(b"abc").into())
            .send()
            .await
            .expect("put");
    }
    let delete = Delete::builder()
        .set_objects(Some(
            gone.iter()
                .map(|k| ObjectIdentifier::builder().key(k).build().unwrap())
                .collect(),
        ))
        .build()
        .unwrap();
    let out = client
        .delete_objects()
        .bucket(server.bucket())
        .delete(delete)
        .send()
        .await
        .expect("delete objects");
    let mut deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    let mut expected: Vec<&str> = gone.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(deleted, expected);
    assert_eq!(server.objects(), vec![keep]);
}
