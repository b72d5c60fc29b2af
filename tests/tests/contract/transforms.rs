// Transforms and variants (docs/API.md#transforms, #variants): a delivery URL with transform
// parameters answers a variant of the image. Included after rules.rs, in the same module, once
// per backend: it uses rules.rs's imports and helpers (`fixture`, `id`, `CountingDb`).

use imgbt_tests::counting::{CountingBlobs, Counts};
use imgbt_tests::images::{decode, psnr};

/// `scene.jpg`: 640×360, detail on its left, smooth on its right (tests/fixtures/README.md).
const SCENE: (u32, u32) = (640, 360);

async fn upload_image(app: &TestApp, filename: &str, mime: &str, bytes: &[u8]) -> (Value, String) {
    let form = Form::asset("web", "site", "hero", filename, mime, bytes);
    let record = app.create(&form).await;
    let path = TestApp::delivery_path(&record);
    (record, path)
}

async fn scene(app: &TestApp) -> (Value, String) {
    upload_image(app, "scene.jpg", "image/jpeg", &fixture("scene.jpg")).await
}

async fn fetch(app: &TestApp, path: &str, query: &str) -> imgbt_tests::Reply {
    app.deliver(&format!("{path}?{query}")).send().await
}

/// The reply's image size, read from its header by `imagesize`.
fn size_of(reply: &imgbt_tests::Reply) -> (u32, u32) {
    let size = imagesize::blob_size(&reply.body)
        .unwrap_or_else(|e| panic!("not an image: {e}; {}", reply.snippet()));
    (size.width as u32, size.height as u32)
}

fn ok_image(reply: &imgbt_tests::Reply, query: &str) -> (u32, u32) {
    assert_eq!(reply.status.as_u16(), 200, "{query}: {}", reply.snippet());
    size_of(reply)
}

#[tokio::test]
async fn every_transform_parameter_gives_the_asked_size_and_format() {
    let app = app().await;
    let (_, path) = scene(&app).await;
    let (w, h) = SCENE;
    let cases: Vec<(&str, (u32, u32), &str)> = vec![
        ("w=320", (320, 180), "image/jpeg"),
        ("h=90", (160, 90), "image/jpeg"),
        ("w=100&h=100", (100, 100), "image/jpeg"),
        ("w=100&h=100&fit=cover", (100, 100), "image/jpeg"),
        ("w=100&h=100&fit=contain", (100, 100), "image/jpeg"),
        ("w=100&h=50&fit=fill", (100, 50), "image/jpeg"),
        ("w=100&h=100&fit=inside", (100, 56), "image/jpeg"),
        ("w=100&h=100&fit=outside", (178, 100), "image/jpeg"),
        ("w=100&dpr=2", (200, 113), "image/jpeg"),
        ("w=100&dpr=1.5", (150, 84), "image/jpeg"),
        ("w=64&format=webp", (64, 36), "image/webp"),
        ("w=64&f=webp", (64, 36), "image/webp"),
        ("w=64&format=png", (64, 36), "image/png"),
        ("w=64&format=jpg", (64, 36), "image/jpeg"),
        ("w=64&format=gif", (64, 36), "image/gif"),
        ("w=64&quality=40", (64, 36), "image/jpeg"),
        ("w=64&q=100", (64, 36), "image/jpeg"),
        ("w=64&blur=10", (64, 36), "image/jpeg"),
        ("w=64&sharpen=50", (64, 36), "image/jpeg"),
        ("w=64&rotate=90", (36, 64), "image/jpeg"),
        ("w=64&rt=180", (64, 36), "image/jpeg"),
        ("w=64&rotate=270", (36, 64), "image/jpeg"),
        ("w=64&rotate=0", (64, 36), "image/jpeg"),
        ("w=64&flip=h", (64, 36), "image/jpeg"),
        ("w=64&flip=v", (64, 36), "image/jpeg"),
        ("w=64&grayscale=true", (64, 36), "image/jpeg"),
        ("w=80&h=80&crop=entropy", (80, 80), "image/jpeg"),
        ("w=80&h=80&crop=attention", (80, 80), "image/jpeg"),
        ("w=80&h=80&gravity=north", (80, 80), "image/jpeg"),
        ("w=80&h=80&g=southwest", (80, 80), "image/jpeg"),
        ("w=80&h=80&gravity=entropy", (80, 80), "image/jpeg"),
        ("w=80&h=80&fit=contain&bg=ff0000", (80, 80), "image/jpeg"),
        // A CSS colour's `#` may lead.
        ("w=80&h=80&fit=contain&bg=%23ff0000", (80, 80), "image/jpeg"),
        // Without w or h: the source's size, re-encoded as asked.
        ("format=png", (w, h), "image/png"),
        ("grayscale=true", (w, h), "image/jpeg"),
    ];
    for (query, size, mime) in cases {
        let got = fetch(&app, &path, query).await;
        assert_eq!(ok_image(&got, query), size, "{query}");
        assert_eq!(got.header("content-type"), Some(mime), "{query}");
        // Decodable by a decoder of its own, at the size its header says.
        let image = decode(&got.body);
        assert_eq!((image.width(), image.height()), size, "{query}");
        assert_eq!(got.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(got.header("cache-control"), Some("public, max-age=3600"));
        assert!(
            got.header("vary").is_none(),
            "{query}: no Vary without auto"
        );
    }
    let avif = fetch(&app, &path, "w=64&format=avif").await;
    assert_eq!(ok_image(&avif, "avif"), (64, 36));
    assert_eq!(avif.header("content-type"), Some("image/avif"));
}

#[tokio::test]
async fn every_transform_parameter_refuses_a_bad_value_naming_it() {
    let app = app().await;
    let (_, path) = scene(&app).await;
    let cases = [
        ("w=0", "w"),
        ("w=8193", "w"),
        ("w=abc", "w"),
        ("w=-5", "w"),
        ("w=", "w"),
        ("h=0", "h"),
        ("h=9000", "h"),
        ("dpr=0", "dpr"),
        ("dpr=3.5", "dpr"),
        ("dpr=x", "dpr"),
        // 8192 × 8192 is over 25,000,000 pixels; so is 4000×2 by 4000×2.
        ("w=8192&h=8192", "w"),
        ("w=4000&h=4000&dpr=2", "w"),
        ("fit=stretch", "fit"),
        ("format=bmp", "format"),
        ("f=tiff", "format"),
        ("quality=0", "quality"),
        ("q=101", "quality"),
        ("blur=0", "blur"),
        ("blur=101", "blur"),
        ("sharpen=0", "sharpen"),
        ("sharpen=200", "sharpen"),
        ("rotate=45", "rotate"),
        ("rt=-90", "rotate"),
        ("flip=x", "flip"),
        ("grayscale=maybe", "grayscale"),
        ("crop=center", "crop"),
        ("gravity=up", "gravity"),
        ("g=middle", "gravity"),
        ("bg=fff", "bg"),
        ("bg=zzzzzz", "bg"),
    ];
    for (query, param) in cases {
        let got = fetch(&app, &path, query).await;
        assert_eq!(got.status.as_u16(), 400, "{query}");
        let message = got.invalid(param);
        assert!(
            message.starts_with(&format!("{param}:")),
            "{query}: the message leads with the parameter: {message}"
        );
    }
    // A bad parameter is 400 whatever the path names: it is read before the asset.
    let missing = format!("/d/{}/web/site/hero/nothing-here.jpg", app.vault.vault_id);
    fetch(&app, &missing, "w=0").await.invalid("w");
    fetch(&app, &missing, "w=10").await.error(404, "NOT_FOUND");
}

#[tokio::test]
async fn crop_face_and_auto_are_refused_with_the_crop_modes_that_exist() {
    let app = app().await;
    let (_, path) = scene(&app).await;
    for query in ["w=50&h=50&crop=face", "w=50&h=50&crop=auto"] {
        let message = fetch(&app, &path, query).await.invalid("crop");
        assert!(
            message.contains("entropy") && message.contains("attention"),
            "{query}: the message says which crop modes exist: {message}"
        );
    }
}

#[tokio::test]
async fn aliases_and_spellings_give_the_same_variant() {
    let app = app().await;
    let (_, path) = scene(&app).await;
    let long = fetch(
        &app,
        &path,
        "w=120&format=webp&quality=60&rotate=90&gravity=north",
    )
    .await;
    let short = fetch(&app, &path, "g=north&rt=90&q=60&f=webp&W=0120").await;
    assert_eq!(long.status.as_u16(), 200, "{}", long.snippet());
    assert_eq!(short.status.as_u16(), 200, "{}", short.snippet());
    assert_eq!(long.header("etag"), short.header("etag"));
    assert_eq!(long.body, short.body);
    let other = fetch(&app, &path, "w=121&format=webp&quality=60&rotate=90").await;
    assert_ne!(other.header("etag"), long.header("etag"));
}

#[tokio::test]
async fn outputs_match_libvips_references_by_psnr() {
    let app = app().await;
    let (_, path) = scene(&app).await;
    // References made by `vips` from scene.jpg (tests/fixtures/README.md), compared as pixels.
    let cases = [
        ("w=200&format=png", "golden/w200.png", 35.0),
        ("w=150&h=150&format=png", "golden/cover150.png", 35.0),
        ("w=200&rotate=90&format=png", "golden/w200-rot90.png", 35.0),
        ("w=200&flip=h&format=png", "golden/w200-fliph.png", 35.0),
        (
            "w=200&grayscale=true&format=png",
            "golden/w200-gray.png",
            35.0,
        ),
        // Two Gaussian blurs of one sigma, computed differently (ours is a box approximation).
        ("w=200&blur=10&format=png", "golden/w200-blur10.png", 33.0),
        // Lossy outputs, against vips's at the same quality.
        ("w=200&format=webp&q=90", "golden/w200-q90.webp", 35.0),
        ("w=200&format=jpg&q=90", "golden/w200-q90.jpg", 33.0),
    ];
    for (query, golden, min_db) in cases {
        let got = fetch(&app, &path, query).await;
        ok_image(&got, query);
        let ours = decode(&got.body).to_rgb8();

        let reference = decode(&fixture(golden)).to_rgb8();
        assert_eq!(ours.dimensions(), reference.dimensions(), "{query}");
        let db = psnr(&ours, &reference);
        assert!(
            db >= min_db,
            "{query} against {golden}: {db:.1} dB < {min_db}"
        );
    }
}

/// Shannon entropy of an image's luminance histogram, in bits.
fn entropy(image: &image::RgbImage) -> f64 {
    let mut histogram = [0u64; 256];
    for p in image.pixels() {
        let y = (0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
            .round() as usize;
        histogram[y.min(255)] += 1;
    }
    let n = (image.width() * image.height()) as f64;
    histogram
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Mean absolute difference between horizontal neighbours: how much fine detail there is.
fn detail(image: &image::RgbImage) -> f64 {
    let mut sum = 0f64;
    let mut n = 0u64;
    for y in 0..image.height() {
        for x in 1..image.width() {
            let (a, b) = (image.get_pixel(x - 1, y), image.get_pixel(x, y));
            sum += (0..3)
                .map(|c| (f64::from(a[c]) - f64::from(b[c])).abs())
                .sum::<f64>();
            n += 1;
        }
    }
    sum / n as f64
}

#[tokio::test]
async fn effects_change_the_pixels_as_asked() {
    let app = app().await;
    let (_, path) = scene(&app).await;
    let pixels = |reply: &imgbt_tests::Reply| decode(&reply.body).to_rgb8();
    let plain = pixels(&fetch(&app, &path, "w=200&format=png").await);

    // grayscale: every pixel's channels are equal.
    let gray = pixels(&fetch(&app, &path, "w=200&format=png&grayscale=true").await);
    assert!(gray.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    assert!(
        plain.pixels().any(|p| p[0] != p[1]),
        "the source has colour"
    );

    // flip=h mirrors, flip=v turns upside down: flipping back gives the plain image.
    let flipped = pixels(&fetch(&app, &path, "w=200&format=png&flip=h").await);
    assert_eq!(image::imageops::flip_horizontal(&flipped), plain);
    let flipped = pixels(&fetch(&app, &path, "w=200&format=png&flip=v").await);
    assert_eq!(image::imageops::flip_vertical(&flipped), plain);
    // rotate turns clockwise.
    let turned = pixels(&fetch(&app, &path, "w=200&format=png&rotate=90").await);
    assert_eq!(image::imageops::rotate270(&turned), plain);

    // blur takes detail away, more the higher it is; sharpen adds it.
    let blur5 = pixels(&fetch(&app, &path, "w=200&format=png&blur=5").await);
    let blur50 = pixels(&fetch(&app, &path, "w=200&format=png&blur=50").await);
    let sharp = pixels(&fetch(&app, &path, "w=200&format=png&sharpen=80").await);
    assert!(detail(&blur5) < detail(&plain) && detail(&blur50) < detail(&blur5));
    assert!(detail(&sharp) > detail(&plain));

    // quality: a lower one is fewer bytes.
    let q20 = fetch(&app, &path, "w=200&q=20").await.body.len();
    let q95 = fetch(&app, &path, "w=200&q=95").await.body.len();
    assert!(q20 < q95, "q=20 is {q20} bytes, q=95 {q95}");

    // fit=contain pads with bg (white unless given).
    let red = pixels(&fetch(&app, &path, "w=100&h=100&fit=contain&bg=ff0000&format=png").await);
    assert_eq!(red.get_pixel(50, 0).0, [255, 0, 0], "the pad above is bg");
    assert_eq!(red.get_pixel(50, 99).0, [255, 0, 0], "the pad below is bg");
    let white = pixels(&fetch(&app, &path, "w=100&h=100&fit=contain&format=png").await);
    assert_eq!(white.get_pixel(50, 0).0, [255, 255, 255]);

    // gravity moves the crop window; the smart crops keep the detailed side (the left).
    let window = |q: &'static str| {
        let app = &app;
        let path = &path;
        async move { pixels(&fetch(app, path, q).await) }
    };
    let west = window("w=100&h=100&g=west&format=png").await;
    let east = window("w=100&h=100&g=east&format=png").await;
    let centre = window("w=100&h=100&format=png").await;
    assert_ne!(west, east);
    assert_ne!(west, centre);
    for smart in [
        "w=100&h=100&crop=entropy&format=png",
        "w=100&h=100&crop=attention&format=png",
        "w=100&h=100&gravity=attention&format=png",
    ] {
        let kept = window(smart).await;
        assert!(
            entropy(&kept) > entropy(&east),
            "{smart}: the window kept ({:.2} bits) has more detail than the smooth east ({:.2})",
            entropy(&kept),
            entropy(&east)
        );
    }
}

#[tokio::test]
async fn exif_orientation_is_applied_and_metadata_is_stripped() {
    let app = app().await;
    let source = fixture("oriented.jpg");
    // Stored 640×360 with orientation 6 (turn 90° clockwise to show), a GPS position and a Make.
    assert!(source.windows(10).any(|w| w == b"imgbt-test"));
    let (_, path) = upload_image(&app, "oriented.jpg", "image/jpeg", &source).await;
    for (query, size) in [
        ("w=180", (180, 320)),
        ("w=180&format=webp", (180, 320)),
        ("w=180&format=png", (180, 320)),
        ("format=jpg", (360, 640)),
    ] {
        let got = fetch(&app, &path, query).await;
        assert_eq!(ok_image(&got, query), size, "{query}: shown upright");
        let body = &got.body;
        for marker in [&b"Exif\0\0"[..], b"imgbt-test", b"GPS", b"eXIf"] {
            assert!(
                !body.windows(marker.len()).any(|w| w == marker),
                "{query}: the variant carries {:?}",
                String::from_utf8_lossy(marker)
            );
        }
    }
}

#[tokio::test]
async fn format_auto_follows_what_the_client_decodes_and_varies_with_accept() {
    let app = app().await;
    let (_, path) = scene(&app).await;
    let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    let cases: [(Option<&str>, &str, &str); 6] = [
        (Some(chrome), "", "image/avif"),
        (Some(chrome), "&accept=webp", "image/webp"),
        (Some("image/webp,*/*"), "", "image/webp"),
        (Some("*/*"), "", "image/jpeg"),
        (None, "", "image/jpeg"),
        // Behind the CDN, its `accept` class stands for the header it does not forward.
        (Some(chrome), "&accept=jpg", "image/jpeg"),
    ];
    let mut etags = Vec::new();
    for (accept, extra, mime) in cases {
        let mut call = app.deliver(&format!("{path}?w=64&format=auto{extra}"));
        if let Some(accept) = accept {
            call = call.header("accept", accept);
        }
        let got = call.send().await;
        assert_eq!(got.status.as_u16(), 200, "{accept:?}: {}", got.snippet());
        assert_eq!(got.header("content-type"), Some(mime), "{accept:?}{extra}");
        assert_eq!(got.header("vary"), Some("Accept"), "{accept:?}");
        etags.push((mime, got.header("etag").map(str::to_owned)));
    }
    // One variant per format: a JPEG answer never carries the WebP answer's ETag.
    let webp = etags.iter().find(|(m, _)| *m == "image/webp").unwrap();
    let jpeg = etags.iter().find(|(m, _)| *m == "image/jpeg").unwrap();
    assert_ne!(webp.1, jpeg.1);
    // A source with alpha stays lossless when the client takes neither AVIF nor WebP.
    let (_, png) = upload_image(&app, "alpha.png", "image/png", &fixture("alpha.png")).await;
    let got = fetch(&app, &png, "w=64&format=auto").await;
    assert_eq!(got.header("content-type"), Some("image/png"));
    assert!(decode(&got.body).color().has_alpha(), "alpha kept");
}

/// The app's store behind counters, and the app's database behind a batch counter.
async fn counted(app: &TestApp) -> (Deps, Arc<Counts>, Arc<CountingDb>) {
    let counts = Arc::new(Counts::default());
    let db = Arc::new(CountingDb {
        inner: app.deps.db.clone(),
        batches: Default::default(),
        statements: Default::default(),
    });
    let mut deps = app.another_instance().await;
    deps.db = db.clone();
    deps.blobs = Arc::new(CountingBlobs {
        inner: deps.blobs.clone(),
        counts: counts.clone(),
    });
    (deps, counts, db)
}

#[tokio::test]
async fn a_variant_is_computed_once_then_served_from_the_store() {
    let app = app().await;
    let (record, path) = scene(&app).await;
    let (deps, counts, db) = counted(&app).await;
    let url = format!("{path}?w=300&format=webp");
    let batches = || db.batches.load(Ordering::SeqCst);

    let first = app.call_on(&deps, "deliver").raw_path(&url).send().await;
    assert_eq!(first.status.as_u16(), 200, "{}", first.snippet());
    // (reads, puts, lists, deletes, other): the variant (absent), the source; the cap's count;
    // the variant stored.
    assert_eq!(counts.snapshot(), (2, 1, 1, 0, 0), "a miss");
    assert_eq!(batches(), 1, "one D1 request");
    let etag = first.header("etag").unwrap().to_owned();
    assert!(etag.starts_with(&format!("\"{}.", id(&record))), "{etag}");

    counts.reset();
    let second = app.call_on(&deps, "deliver").raw_path(&url).send().await;
    assert_eq!(second.status.as_u16(), 200, "{}", second.snippet());
    assert_eq!(second.body, first.body, "the stored bytes");
    assert_eq!(second.header("etag"), Some(etag.as_str()));
    assert_eq!(second.header("content-type"), Some("image/webp"));
    assert_eq!(counts.snapshot(), (1, 0, 0, 0, 0), "a hit is one GET");
    assert_eq!(batches(), 2, "one D1 request");

    // If-None-Match: 304 before any read of the store.
    counts.reset();
    let again = app
        .call_on(&deps, "deliver")
        .raw_path(&url)
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(again.status.as_u16(), 304);
    assert!(again.body.is_empty());
    assert_eq!(counts.snapshot(), (0, 0, 0, 0, 0));

    // HEAD: the headers of the GET; a Range: that part of the variant.
    let head = app
        .call_on(&deps, "deliver")
        .raw_path(&url)
        .method(Method::HEAD)
        .send()
        .await;
    assert_eq!(head.status.as_u16(), 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(first.body.len().to_string().as_str())
    );
    let part = app
        .call_on(&deps, "deliver")
        .raw_path(&url)
        .header("range", "bytes=0-11")
        .send()
        .await;
    assert_eq!(part.status.as_u16(), 206);
    assert_eq!(part.body, first.body[..12]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-11/{}", first.body.len()).as_str())
    );
}

#[tokio::test]
async fn variants_past_the_cap_are_served_but_not_stored() {
    let app = app().await;
    let (record, path) = upload_image(&app, "tiny.png", "image/png", &fixture("tiny.png")).await;
    let cap = shared::variants::CAP_PER_ASSET;
    let prefix = shared::variants::prefix(&app.vault.vault_id, &id(&record));
    for w in 1..=cap + 2 {
        let got = fetch(&app, &path, &format!("w={w}&fit=fill&h=1")).await;
        assert_eq!(ok_image(&got, "w"), (w as u32, 1));
    }
    let stored = app.blobs().list(&prefix).await.unwrap();
    assert_eq!(stored.len(), cap, "{cap} variants stored, no more");
    // One past the cap is computed again each time: still served, still the same pixels.
    let over = fetch(&app, &path, &format!("w={}&fit=fill&h=1", cap + 1)).await;
    assert_eq!(ok_image(&over, "over"), (cap as u32 + 1, 1));
    assert_eq!(app.blobs().list(&prefix).await.unwrap().len(), cap);
}

async fn deleted(app: &TestApp, asset_id: &str) {
    deleted_on(app, &app.deps, asset_id).await;
}

/// Deletes `asset_id` with the secret key through `deps` (a faulty store, say): 204.
async fn deleted_on(app: &TestApp, deps: &Deps, asset_id: &str) {
    let reply = app
        .call_on(deps, "delete")
        .key(app.sk())
        .asset(asset_id)
        .send()
        .await;
    assert_eq!(reply.status.as_u16(), 204, "{}", reply.snippet());
}

/// fsck on the app's store, dated past the orphan grace.
async fn fsck(app: &TestApp) -> shared::admin::fsck::FsckReport {
    admin::fsck(&*app.deps.db, &imgbt_tests::past_the_grace(), &*app.blobs())
        .await
        .expect("fsck")
}

#[tokio::test]
async fn deleting_an_asset_removes_its_variants() {
    let app = app().await;
    let (record, path) = scene(&app).await;
    let prefix = shared::variants::prefix(&app.vault.vault_id, &id(&record));
    for query in ["w=100", "w=100&format=webp", "w=50&format=png"] {
        ok_image(&fetch(&app, &path, query).await, query);
    }
    assert_eq!(app.blobs().list(&prefix).await.unwrap().len(), 3);
    let report = fsck(&app).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.variants, 3);

    deleted(&app, &id(&record)).await;
    assert!(app.blobs().list(&prefix).await.unwrap().is_empty());
    let report = fsck(&app).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.variants, 0);
    assert_eq!(report.objects, 0, "{report:?}");
    fetch(&app, &path, "w=100").await.error(404, "NOT_FOUND");
}

#[tokio::test]
async fn variants_whose_removal_failed_are_finished_by_gc() {
    let app = app().await;
    let (record, path) = scene(&app).await;
    let prefix = shared::variants::prefix(&app.vault.vault_id, &id(&record));
    ok_image(&fetch(&app, &path, "w=100").await, "w=100");
    let faulty = Arc::new(FaultyBlobs::new(app.blobs()));
    faulty.fail_delete.store(true, Ordering::SeqCst);
    let deps = app.deps_with_blobs(faulty.clone());
    deleted_on(&app, &deps, &id(&record)).await;
    // The record is gone; the object and the variants wait, journaled.
    assert_eq!(app.blobs().list(&prefix).await.unwrap().len(), 1);
    assert!(app.pending_deletions().await.contains(&prefix));
    let report = fsck(&app).await;
    assert!(report.is_clean(), "{report:?}");
    assert!(report.pending_deletions.contains(&prefix), "{report:?}");

    let swept = admin::gc(&*app.deps.db, &imgbt_tests::past_the_grace(), &*app.blobs())
        .await
        .expect("gc");
    assert!(swept.deleted.contains(&prefix), "{swept:?}");
    assert!(app.blobs().list(&prefix).await.unwrap().is_empty());
    assert!(app.pending_deletions().await.is_empty());
    let report = fsck(&app).await;
    assert!(report.is_clean() && report.objects == 0, "{report:?}");
}

#[tokio::test]
async fn a_variant_stored_after_its_asset_was_deleted_is_found_and_removed() {
    let app = app().await;
    let (record, path) = scene(&app).await;
    let asset = id(&record);
    let stored = fetch(&app, &path, "w=100").await;
    ok_image(&stored, "w=100");
    deleted(&app, &asset).await;
    // gc clears the pending rows of what the delete removed.
    admin::gc(
        &*app.deps.db,
        &shared::clock::Clock::default(),
        &*app.blobs(),
    )
    .await
    .expect("gc");
    // What a transform that was still running stores after the delete removed the prefix.
    let late = format!(
        "{}0123456789abcdef0123456789abcdef",
        shared::variants::prefix(&app.vault.vault_id, &asset)
    );
    app.blobs()
        .put(&late, stored.body.clone().into(), "image/jpeg")
        .await
        .unwrap();
    let report = fsck(&app).await;
    assert!(!report.is_clean());
    assert_eq!(report.variants_without_assets, vec![late.clone()]);

    // gc removes it at once: an asset id never comes back, so nothing can need it.
    let swept = admin::gc(
        &*app.deps.db,
        &shared::clock::Clock::default(),
        &*app.blobs(),
    )
    .await
    .expect("gc");
    assert_eq!(swept.orphans, vec![late]);
    assert!(fsck(&app).await.is_clean());
}

#[tokio::test]
async fn a_name_uploaded_again_is_never_answered_with_the_old_variant() {
    let app = app().await;
    let (record, path) = scene(&app).await;
    let old = fetch(&app, &path, "w=64&format=png").await;
    ok_image(&old, "old");
    deleted(&app, &id(&record)).await;
    // The same name, other bytes: the old image turned upside down.
    let upside_down = {
        let image = decode(&fixture("scene.jpg")).to_rgb8();
        let turned = image::imageops::rotate180(&image);
        let mut out = std::io::Cursor::new(Vec::new());
        turned.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let (again, again_path) = upload_image(&app, "scene.jpg", "image/png", &upside_down).await;
    assert_eq!(again_path, path, "the same URL");
    let new = fetch(&app, &path, "w=64&format=png").await;
    ok_image(&new, "new");
    assert_ne!(new.header("etag"), old.header("etag"));
    assert!(new.header("etag").unwrap().contains(&id(&again)));
    let (old_px, new_px) = (decode(&old.body).to_rgb8(), decode(&new.body).to_rgb8());
    assert_eq!(
        image::imageops::rotate180(&new_px).dimensions(),
        old_px.dimensions()
    );
    assert!(psnr(&image::imageops::rotate180(&new_px), &old_px) > 30.0);
    assert!(psnr(&new_px, &old_px) < 20.0, "not the old pixels");
}

#[tokio::test]
async fn a_non_image_is_served_as_is_and_refused_with_transform_parameters() {
    let app = app().await;
    let text = fixture("notes.txt");
    let (_, path) = upload_image(&app, "notes.txt", "text/plain", &text).await;
    let plain = app.deliver(&path).send().await;
    assert_eq!(plain.status.as_u16(), 200, "{}", plain.snippet());
    assert_eq!(plain.body, text);
    let message = fetch(&app, &path, "w=100")
        .await
        .error(400, "INVALID_PARAMS");
    assert!(message.contains("text/plain"), "{message}");
    // Parameters that change nothing, and names that are not parameters, serve the original.
    for query in ["grayscale=false", "v=2", "rotate=0"] {
        let got = fetch(&app, &path, query).await;
        assert_eq!(got.status.as_u16(), 200, "{query}: {}", got.snippet());
        assert_eq!(got.body, text, "{query}");
    }
    let (record, jpeg) = scene(&app).await;
    let same = fetch(&app, &jpeg, "grayscale=false&utm_source=x").await;
    assert_eq!(same.body, fixture("scene.jpg"));
    assert_eq!(
        same.header("etag"),
        Some(format!("\"{}\"", id(&record)).as_str())
    );
}

#[tokio::test]
async fn a_source_too_large_to_decode_is_refused_from_its_header() {
    let app = app().await;
    // A PNG whose header declares 30,000 × 30,000 pixels (900 MP) and holds no pixel data: a
    // decoder that believed it would allocate 3.6 GB.
    let mut bomb = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bomb, 30_000, 30_000);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let writer = encoder.write_header().unwrap();
        drop(writer);
    }
    let (_, path) = upload_image(&app, "bomb.png", "image/png", &bomb).await;
    let message = fetch(&app, &path, "w=100")
        .await
        .error(400, "INVALID_PARAMS");
    assert!(message.contains("30000"), "{message}");
    // Bytes that begin as a JPEG and are not one: 400, not a 500.
    let (_, broken) = upload_image(
        &app,
        "broken.jpg",
        "image/jpeg",
        &[&[0xFFu8, 0xD8, 0xFF, 0xE0][..], &[0x5Au8; 400][..]].concat(),
    )
    .await;
    fetch(&app, &broken, "w=100")
        .await
        .error(400, "INVALID_PARAMS");
}

#[tokio::test]
async fn a_store_that_fails_around_a_variant_loses_nothing() {
    for lose in [false, true] {
        let app = app().await;
        let (record, path) = scene(&app).await;
        let prefix = shared::variants::prefix(&app.vault.vault_id, &id(&record));
        let faulty = Arc::new(FaultyBlobs::new(app.blobs()));
        let deps = app.deps_with_blobs(faulty.clone());
        // The variant's put fails (before storing, or after, its answer lost): the image is
        // still answered, and the next request finds it stored or computes it again.
        let flag = if lose {
            &faulty.lose_answers
        } else {
            &faulty.fail_put
        };
        flag.store(true, Ordering::SeqCst);
        let url = format!("{path}?w=120&format=webp");
        let first = app.call_on(&deps, "deliver").raw_path(&url).send().await;
        assert_eq!(first.status.as_u16(), 200, "{}", first.snippet());
        assert!(!first.text().contains("upstream-7f3a"));
        let stored = app.blobs().list(&prefix).await.unwrap().len();
        assert_eq!(stored, usize::from(lose), "lose={lose}");
        flag.store(false, Ordering::SeqCst);
        let second = app.call_on(&deps, "deliver").raw_path(&url).send().await;
        assert_eq!(second.status.as_u16(), 200);
        assert_eq!(second.body, first.body, "the same variant either way");
        assert_eq!(app.blobs().list(&prefix).await.unwrap().len(), 1);

        // The delete's removals fail the same ways: the record goes, the journal keeps what
        // was not confirmed removed, and gc finishes it.
        flag.store(true, Ordering::SeqCst);
        deleted_on(&app, &deps, &id(&record)).await;
        assert!(
            app.pending_deletions().await.contains(&prefix),
            "lose={lose}"
        );
        admin::gc(&*app.deps.db, &imgbt_tests::past_the_grace(), &*app.blobs())
            .await
            .expect("gc");
        assert!(app.pending_deletions().await.is_empty());
        let report = fsck(&app).await;
        assert!(
            report.is_clean() && report.objects == 0,
            "lose={lose}: {report:?}"
        );
    }
}
