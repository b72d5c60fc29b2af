//! The browser harness (`imgbt_tests::browser`) proven on fixture files: headless Chromium
//! reports real PNG and WebP images decoded at their header's size, and a text file and a missing
//! file as not decoded (so a test on the harness can fail); WebM and MP4 videos that seek and play
//! on from the seek point, and a text file as no video; all served by a static server that honours
//! `Range`.

use imgbt_tests::browser::{Chromium, Page, serve_dir};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_reports_decoded_images_broken_ones_and_a_video_played_from_a_seek() {
    let Some(chromium) = Chromium::for_test(
        "browser::chromium_reports_decoded_images_broken_ones_and_a_video_played_from_a_seek",
    ) else {
        return;
    };
    let addr = serve_dir(&fixtures()).await;
    let url = |file: &str| format!("http://{addr}/{file}");
    let page = Page {
        images: vec![
            url("tiny.png"),
            url("tiny.webp"),
            url("notes.txt"),
            url("no-such-file.png"),
        ],
        videos: vec![
            (url("seek.webm"), 2.0),
            (url("seek.mp4"), 2.0),
            (url("notes.txt"), 2.0),
        ],
        ..Page::default()
    };
    let report = chromium.check(&page).await;
    assert_eq!(report.error, None, "the page's script failed");
    assert_eq!(report.images.len(), 4, "{report:?}");

    // The sizes are the fixtures' own (make.py gives each format a different one).
    for (image, (width, height)) in report.images[..2].iter().zip([(3, 2), (9, 8)]) {
        assert!(image.complete && image.decoded, "{image:?}");
        assert_eq!(
            (image.natural_width, image.natural_height),
            (width, height),
            "{image:?}"
        );
    }
    for broken in &report.images[2..] {
        assert!(!broken.decoded, "reported decoded: {broken:?}");
        assert_eq!(broken.natural_width, 0, "{broken:?}");
        assert!(broken.error.is_some(), "{broken:?}");
    }

    let [webm, mp4, broken] = &report.videos[..] else {
        panic!("three videos expected: {report:?}")
    };
    for video in [webm, mp4] {
        assert_eq!(video.error, None, "{video:?}");
        assert!(video.played_from_seek(), "{video:?}");
        let duration = video.duration.expect("metadata gives a duration");
        assert!(
            (duration - 4.0).abs() < 0.1,
            "the fixtures are 4 s long: {video:?}"
        );
        let seeked_at = video.seeked_at.expect("seeked");
        assert!((seeked_at - 2.0).abs() < 0.5, "seeked near 2 s: {video:?}");
    }
    assert!(!broken.metadata && !broken.played_from_seek(), "{broken:?}");
    assert!(broken.error.is_some(), "{broken:?}");
}

/// A page's video seeks by `Range`: the media server must answer it as a file server does.
#[tokio::test]
async fn the_media_server_answers_ranges() {
    let addr = serve_dir(&fixtures()).await;
    let whole = std::fs::read(fixtures().join("seek.webm")).unwrap();
    let client = reqwest::Client::new();
    let answer = client
        .get(format!("http://{addr}/seek.webm"))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 206);
    assert_eq!(
        answer.headers()["content-range"],
        format!("bytes 100-199/{}", whole.len()).as_str()
    );
    assert_eq!(answer.bytes().await.unwrap(), whole[100..200]);
}
