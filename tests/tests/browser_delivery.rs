//! Delivery URLs in a real browser (docs/API.md#delivery): headless Chromium loads a page whose
//! `<img>` and `<video>` elements point at the URLs the API hands out (`asset_url`), on a public
//! vault and on a signed one, served by the functions behind the in-process gateway. Each image
//! must decode at its own size; each video must seek and play on from the seek point, its bytes
//! coming through a redirect (the served limit is set below the videos' size, as a Lambda's is
//! below a large file's): to the S3 server's presigned URL on the Cloudflare backend, to the local
//! object server on the embedded default. A tampered signature and a path with no asset must not
//! decode, so the page can fail.

use imgbt_tests::browser::{Chromium, Page};
use imgbt_tests::{Backend, Form, TestApp, fixture, gateway, upload_request};
use serde_json::{Value, json};
use shared::Deps;
use std::future::Future;
use std::rc::Rc;

/// Served responses carry at most this many bytes: the images fit, the videos are redirected.
const SERVED_LIMIT: u64 = 20_000;

/// The app's stores, served with a Lambda-like limit of [`SERVED_LIMIT`].
struct Served(Deps);

impl AsRef<Deps> for Served {
    fn as_ref(&self) -> &Deps {
        &self.0
    }
}

fn local<F: Future<Output = ()>>(test: F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, test);
}

/// An asset of `vault` (`key` is its secret key) from the fixture `file`, sent as a multipart
/// upload straight to the handler (no gateway limit on the way in).
async fn upload(app: &TestApp, vault: &str, key: &str, file: &str, mime: &str) -> String {
    let form = Form::asset("site", "media", "main", file, mime, &fixture(file));
    let reply = app
        .call("upload")
        .vault(vault)
        .key(key)
        .form(&form)
        .send()
        .await;
    reply.ok(201)["id"].as_str().unwrap().to_owned()
}

/// The delivery URL the API hands a client holding `key`, asked for over HTTP at `api`, so that
/// it points where the browser can reach.
async fn url_of(api: &str, vault: &str, key: &str, asset: &str) -> String {
    let answer: Value = reqwest::Client::new()
        .get(format!("{api}/api/v1/vaults/{vault}/assets/{asset}/url"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["url"].as_str().expect("a url").to_owned()
}

/// The same URL with the first character of its signature changed.
fn tamper(url: &str) -> String {
    let at = url.find("sig=").expect("a signed URL") + "sig=".len();
    let first = &url[at..at + 1];
    let other = if first == "A" { "B" } else { "A" };
    format!("{}{other}{}", &url[..at], &url[at + 1..])
}

async fn delivery_in_the_browser(backend: Backend, test: &str) {
    let Some(chromium) = Chromium::for_test(test) else {
        return;
    };
    let mut app = TestApp::on(backend).await;
    if matches!(backend, Backend::Embedded) {
        app.serve_objects().await;
    }
    let app = Rc::new(app);
    let (signed, public) = (&app.vault, &app.other);

    // The first vault signs its URLs; the second is public.
    let turned = app
        .call("vault_update")
        .key(&signed.secret_key)
        .json(&json!({ "delivery": "signed" }))
        .send()
        .await
        .ok(200);
    assert_eq!(turned["delivery"], "signed");

    let png = upload(
        &app,
        &public.vault_id,
        &public.secret_key,
        "tiny.png",
        "image/png",
    )
    .await;
    let webp = upload(
        &app,
        &public.vault_id,
        &public.secret_key,
        "tiny.webp",
        "image/webp",
    )
    .await;
    let webm = upload(
        &app,
        &public.vault_id,
        &public.secret_key,
        "seek.webm",
        "video/webm",
    )
    .await;
    let signed_png = upload(
        &app,
        &signed.vault_id,
        &signed.secret_key,
        "tiny.png",
        "image/png",
    )
    .await;
    let mp4 = fixture("seek.mp4");
    assert!(mp4.len() as u64 > SERVED_LIMIT && fixture("seek.webm").len() as u64 > SERVED_LIMIT);
    let signed_mp4 = app
        .direct_upload(
            &upload_request("site", "media", "main", "seek.mp4", mp4.len()),
            mp4,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut served = Deps::new(app.deps.db.clone(), app.deps.blobs.clone());
    served.max_request_bytes = Some(SERVED_LIMIT);
    let addr = gateway::start(Rc::new(Served(served))).await;
    let api = format!("http://{addr}");

    let public_url = |asset| url_of(&api, &public.vault_id, &public.public_key, asset);
    let signed_url = |asset| url_of(&api, &signed.vault_id, &signed.public_key, asset);
    let (png_url, webp_url, webm_url) = (
        public_url(&png).await,
        public_url(&webp).await,
        public_url(&webm).await,
    );
    let (signed_png_url, signed_mp4_url) =
        (signed_url(&signed_png).await, signed_url(&signed_mp4).await);
    assert!(
        !png_url.contains("sig="),
        "a public vault's URL is plain: {png_url}"
    );
    assert!(signed_png_url.contains("sig="), "{signed_png_url}");
    let tampered = tamper(&signed_png_url);
    let missing = png_url.replace("tiny.png", "missing.png");

    let page = Page {
        images: vec![png_url, webp_url, signed_png_url, tampered, missing],
        videos: vec![(webm_url, 2.0), (signed_mp4_url, 2.0)],
    };
    let report = chromium.check(&page).await;
    assert_eq!(report.error, None, "the page's script failed: {report:?}");
    assert_eq!(report.images.len(), 5, "{report:?}");
    for (image, (width, height)) in report.images[..3].iter().zip([(3, 2), (9, 8), (3, 2)]) {
        assert!(image.complete && image.decoded, "{image:?}");
        assert_eq!(
            (image.natural_width, image.natural_height),
            (width, height),
            "{image:?}"
        );
    }
    for refused in &report.images[3..] {
        assert!(
            !refused.decoded && refused.natural_width == 0,
            "{refused:?}"
        );
    }
    assert_eq!(report.videos.len(), 2, "{report:?}");
    for video in &report.videos {
        assert_eq!(video.error, None, "{video:?}");
        assert!(video.played_from_seek(), "{video:?}");
        let seeked_at = video.seeked_at.expect("seeked");
        assert!((seeked_at - 2.0).abs() < 0.5, "seeked near 2 s: {video:?}");
    }
}

#[test]
fn a_browser_shows_public_and_signed_delivery_urls_and_seeks_their_videos_embedded() {
    local(delivery_in_the_browser(
        Backend::Embedded,
        "browser_delivery::…_embedded",
    ));
}

#[test]
fn a_browser_shows_public_and_signed_delivery_urls_and_seeks_their_videos_on_r2() {
    local(delivery_in_the_browser(
        Backend::Cloudflare,
        "browser_delivery::…_on_r2",
    ));
}
