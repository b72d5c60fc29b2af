//! Delivery URLs in a real browser (docs/API.md#delivery): headless Chromium loads a page whose
//! `<img>` and `<video>` elements point at the URLs the API hands out (`asset_url`), on a public
//! vault and on a signed one, served by the functions behind the in-process gateway. Each image
//! must decode at its own size; each video must seek and play on from the seek point, its bytes
//! coming through a redirect (the served limit is set below the videos' size, as a Lambda's is
//! below a large file's): to the S3 server's presigned URL on the Cloudflare backend, to the local
//! object server on the embedded default. A tampered signature and a path with no asset must not
//! decode, so the page can fail.
//!
//! Transforms (docs/API.md#transforms): two `<img srcset sizes>` whose candidates are `w=` URLs
//! from the URL route (one on each vault), and a `format=auto` image. They load through a proxy
//! that records each exchange, so the test knows the `Accept` the browser itself sent and the
//! `Content-Type` each `<img>` received; each image's decoded size is the size asked for.

use imgbt_tests::browser::{Chromium, Exchange, Page, SrcSet, recording_proxy};
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
    url_with(api, vault, key, asset, "").await
}

/// [`url_of`] with transform parameters (`query`) for the URL route to put in the URL.
async fn url_with(api: &str, vault: &str, key: &str, asset: &str, query: &str) -> String {
    let answer: Value = reqwest::Client::new()
        .get(format!(
            "{api}/api/v1/vaults/{vault}/assets/{asset}/url?{query}"
        ))
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

    // Transformed images load through the recording proxy: the URL route's answer with the
    // proxy's origin (a signature covers the path and query, not the host).
    let (proxy, exchanges) = recording_proxy(api.clone()).await;
    let proxied = |url: String| url.replacen(&api, &format!("http://{proxy}"), 1);
    // A srcset of `w=` candidates for `sizes` CSS pixels; at a density of 1 the browser takes the
    // narrowest candidate at least `sizes` wide, here the middle one.
    let srcset = |urls: [String; 3], widths: [u32; 3], sizes: u32| SrcSet {
        srcset: urls
            .iter()
            .zip(widths)
            .map(|(url, w)| format!("{url} {w}w"))
            .collect::<Vec<_>>()
            .join(", "),
        sizes: format!("{sizes}px"),
        src: urls[1].clone(),
    };
    let mut public_candidates = Vec::new();
    for w in [40, 80, 160] {
        let query = format!("w={w}&format=auto");
        let url = url_with(&api, &public.vault_id, &public.public_key, &webp, &query).await;
        public_candidates.push(proxied(url));
    }
    let mut signed_candidates = Vec::new();
    for w in [20, 40, 80] {
        let query = format!("w={w}&f=auto");
        let url = url_with(
            &api,
            &signed.vault_id,
            &signed.public_key,
            &signed_png,
            &query,
        )
        .await;
        assert!(url.contains("sig="), "{url}");
        signed_candidates.push(proxied(url));
    }
    let public_srcset = public_candidates.clone().try_into().unwrap();
    let signed_srcset = signed_candidates.clone().try_into().unwrap();
    let auto_url = proxied(
        url_with(
            &api,
            &public.vault_id,
            &public.public_key,
            &png,
            "w=50&format=auto",
        )
        .await,
    );

    let page = Page {
        images: vec![
            png_url,
            webp_url,
            signed_png_url,
            tampered,
            missing,
            auto_url.clone(),
        ],
        srcsets: vec![
            srcset(public_srcset, [40, 80, 160], 60),
            srcset(signed_srcset, [20, 40, 80], 30),
        ],
        videos: vec![(webm_url, 2.0), (signed_mp4_url, 2.0)],
    };
    let report = chromium.check(&page).await;
    assert_eq!(report.error, None, "the page's script failed: {report:?}");
    assert_eq!(report.images.len(), 6, "{report:?}");
    for (image, (width, height)) in report.images[..3].iter().zip([(3, 2), (9, 8), (3, 2)]) {
        assert!(image.complete && image.decoded, "{image:?}");
        assert_eq!(
            (image.natural_width, image.natural_height),
            (width, height),
            "{image:?}"
        );
    }
    for refused in &report.images[3..5] {
        assert!(
            !refused.decoded && refused.natural_width == 0,
            "{refused:?}"
        );
    }

    // format=auto at w=50 of the 3×2 PNG: 50×33 (the height follows the aspect ratio).
    let auto = &report.images[5];
    assert!(auto.complete && auto.decoded, "{auto:?}");
    assert_eq!(
        (auto.natural_width, auto.natural_height),
        (50, 33),
        "{auto:?}"
    );
    let exchanges = exchanges.lock().unwrap().clone();
    assert_received_auto(&exchanges, &auto_url);

    // The srcsets: the middle candidate chosen; its pixels are the `w` asked for (the 9×8 WebP at
    // 80 wide is 80×71, the 3×2 PNG at 40 wide is 40×27); `naturalWidth` is corrected by the
    // candidate's density (80 px for 60 CSS px), so it is the `sizes` width.
    assert_eq!(report.srcsets.len(), 2, "{report:?}");
    for (image, candidates, sizes, pixels) in [
        (&report.srcsets[0], &public_candidates, 60, (80, 71)),
        (&report.srcsets[1], &signed_candidates, 30, (40, 27)),
    ] {
        assert!(image.complete && image.decoded, "{image:?}");
        assert_eq!(image.current_src, candidates[1], "{image:?}");
        assert_eq!((image.pixel_width, image.pixel_height), pixels, "{image:?}");
        assert_eq!(image.natural_width, sizes, "{image:?}");
        assert_received_auto(&exchanges, &image.current_src);
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

/// The browser fetched `url` (through the recording proxy) with its own `Accept`, which takes AVIF
/// and WebP (Chromium's image `Accept`), and received the format `format=auto` gives it: WebP
/// while no AVIF encoder ships, AVIF once one does; with `Vary: Accept`.
fn assert_received_auto(exchanges: &[Exchange], url: &str) {
    let path_and_query = &url[url.find("/d/").expect("a delivery URL")..];
    let fetched: Vec<&Exchange> = exchanges
        .iter()
        .filter(|e| e.path_and_query == path_and_query)
        .collect();
    assert!(
        !fetched.is_empty(),
        "the browser never fetched {url}: {exchanges:?}"
    );
    for exchange in fetched {
        assert_eq!(exchange.status, 200, "{exchange:?}");
        let accept = exchange.accept.as_deref().unwrap_or_default();
        assert!(
            accept.contains("image/avif") && accept.contains("image/webp"),
            "{exchange:?}"
        );
        let expected = "image/avif";
        assert_eq!(
            exchange.content_type.as_deref(),
            Some(expected),
            "{exchange:?}"
        );
        assert_eq!(exchange.vary.as_deref(), Some("Accept"), "{exchange:?}");
    }
}
