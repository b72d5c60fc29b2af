//! imgbt's transform against libvips's `thumbnail`, the engine behind imgproxy (BENCH.md,
//! "Image transforms against libvips").
//!
//! Both sides run as processes, single-threaded (`VIPS_CONCURRENCY=1`; ours has no threads),
//! each under `/usr/bin/time` for its peak RSS, alternately (A B, then B A) after a warm-up, on
//! the same input to the same width and quality. Each figure is a ratio measured in this run:
//! time (medians), output bytes, peak memory, and the PSNR of our output against vips's. A
//! process's time includes its start (vips loads GLib and its modules), so each side's fixed cost
//! is measured too, on a 16×16 JPEG, and a second time ratio leaves it out.
//!
//! `transform-vs-vips [--runs N] [--inputs N] [--width W] [--quality Q]`
//! `transform-vs-vips once <input> <output> <format> <width> <quality>` (one transform: the
//! process the benchmark times on our side)
//! `transform-vs-vips avif-speeds <input> [width] [quality]` (the AVIF encode alone at each of
//! rav1e's speeds, on the pipeline's resized pixels: how `encode::AVIF_SPEED` was chosen)
//! `transform-vs-vips memory [--runs N]` (ours alone on the worst sources the function accepts:
//! peak RSS and CPU time per output format, for the Lambda memory model in BENCH.md)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use imgbt_transform::{Params, transform};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("once") {
        let [input, output, format, width, quality] = &args[1..] else {
            panic!("once <input> <output> <format> <width> <quality>");
        };
        once(Path::new(input), Path::new(output), format, width, quality);
        return;
    }
    if args.first().map(String::as_str) == Some("memory") {
        let runs = args
            .iter()
            .position(|a| a == "--runs")
            .and_then(|i| args.get(i + 1))
            .map_or(3, |v| v.parse().expect("a number"));
        memory(runs);
        return;
    }
    if args.first().map(String::as_str) == Some("avif-speeds") {
        let input = args.get(1).expect("avif-speeds <input> [width] [quality]");
        let width = args.get(2).map_or("800", String::as_str);
        let quality = args.get(3).map_or("80", String::as_str);
        avif_speeds(Path::new(input), width, quality);
        return;
    }
    let option = |name: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    bench(Options {
        runs: option("--runs", 7),
        inputs: option("--inputs", 3),
        width: option("--width", 800),
        quality: option("--quality", 80),
    });
}

fn once(input: &Path, output: &Path, format: &str, width: &str, quality: &str) {
    let source = std::fs::read(input).expect("read the input");
    let params = Params::parse([("w", width), ("format", format), ("q", quality)])
        .expect("valid parameters");
    let out = transform(&source, &params, None).expect("transform");
    std::fs::write(output, out.bytes).expect("write the output");
}

/// Times `encode::avif` at each speed (median of 3) on the pixels the pipeline hands the encoder
/// (resized losslessly through PNG), with the bytes each gives.
fn avif_speeds(input: &Path, width: &str, quality: &str) {
    let source = std::fs::read(input).expect("read the input");
    let params = Params::parse([("w", width), ("format", "png")]).expect("valid parameters");
    let png = transform(&source, &params, None).expect("transform");
    let pixels = image::load_from_memory(&png.bytes).expect("decode our PNG");
    let q: u8 = quality.parse().expect("a quality 1-100");
    println!("| speed | encode ms | bytes |");
    println!("|---:|---:|---:|");
    for speed in 1..=10u8 {
        // Speeds 1-3 take tens of seconds at 800 wide: one run is enough to rule them out.
        let runs = if speed <= 3 { 1 } else { 3 };
        let mut times = Vec::new();
        let mut len = 0;
        for _ in 0..runs {
            let start = Instant::now();
            len = imgbt_transform::encode::avif(&pixels, q, speed)
                .expect("encode")
                .len();
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        println!("| {speed} | {:.0} | {len} |", median(times));
    }
}

/// The largest source a transform accepts: exactly `MAX_SOURCE_PIXELS` (10000×5000) as an RGBA
/// PNG, made from a photograph (`jpeg` stretched, bilinear) under the same alpha vignette as
/// [`alpha_png`], so that its PNG compresses as a photo does, not as noise or a flat colour would.
/// (Our own pipeline cannot make it: `w` and `h` stop at 8192.)
fn largest_png(jpeg: &Path, out: &Path) {
    let (w, h) = (10_000u32, 5_000u32);
    assert_eq!(
        u64::from(w) * u64::from(h),
        imgbt_transform::MAX_SOURCE_PIXELS
    );
    let data = std::fs::read(jpeg).expect("read the input");
    let photo = turbojpeg::decompress(&data, turbojpeg::PixelFormat::RGBA).expect("decode");
    let photo = image::RgbaImage::from_raw(photo.width as u32, photo.height as u32, photo.pixels)
        .expect("size");
    let mut rgba = image::imageops::resize(&photo, w, h, image::imageops::FilterType::Triangle);
    drop(photo);
    let (wf, hf) = (f64::from(w), f64::from(h));
    for (x, y, p) in rgba.enumerate_pixels_mut() {
        let (dx, dy) = (f64::from(x) / wf - 0.5, f64::from(y) / hf - 0.5);
        let d = ((dx * dx + dy * dy) / 0.5).sqrt().min(1.0);
        p[3] = (255.0 - 191.0 * d).round() as u8;
    }
    rgba.save(out).expect("write the PNG");
}

/// Ours alone, `runs` times per case after a warm-up: peak RSS (the largest) and CPU time
/// (user + system, the median; the process has one thread, so this is its single-core time, and
/// unlike wall time it does not grow when other processes share the cores).
fn memory(runs: usize) {
    let scratch =
        std::env::temp_dir().join(format!("imgbt-transform-memory-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let jpeg = inputs(1).remove(0);
    let png = scratch.join("largest.png");
    largest_png(&jpeg, &png);
    let me = std::env::current_exe().expect("own path");
    println!(
        "| source | KB | to | CPU ms (median) | wall ms (median) | peak RSS MiB | output bytes |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|");
    for (input, name) in [
        (jpeg.as_path(), "5120×2880 JPEG (largest wallpaper)"),
        (png.as_path(), "10000×5000 PNG, alpha (MAX_SOURCE_PIXELS)"),
    ] {
        let kb = std::fs::metadata(input).map_or(0, |m| m.len() / 1000);
        for format in ["webp", "jpg", "avif"] {
            let out = scratch.join(format!("out.{format}"));
            let command = [
                me.display().to_string(),
                "once".into(),
                input.display().to_string(),
                out.display().to_string(),
                format.into(),
                "800".into(),
                "80".into(),
            ];
            let stats = scratch.join("stats");
            let mut cpu = Vec::new();
            let mut wall = Vec::new();
            let mut rss = 0u64;
            for i in 0..=runs {
                let start = Instant::now();
                let status = Command::new("/usr/bin/time")
                    .args(["-f", "%M %U %S", "-o"])
                    .arg(&stats)
                    .args(&command)
                    .status()
                    .expect("run /usr/bin/time (apt-get install time)");
                let ms = start.elapsed().as_secs_f64() * 1e3;
                assert!(status.success(), "{command:?} failed: {status}");
                let line = std::fs::read_to_string(&stats).expect("read /usr/bin/time's output");
                let fields: Vec<f64> = line
                    .trim()
                    .lines()
                    .last()
                    .expect("a line")
                    .split_whitespace()
                    .map(|f| f.parse().expect("a number"))
                    .collect();
                if i == 0 {
                    continue; // the warm-up: page cache
                }
                rss = rss.max(fields[0] as u64);
                cpu.push((fields[1] + fields[2]) * 1e3);
                wall.push(ms);
            }
            println!(
                "| {name} | {kb} | {format} | {:.0} | {:.0} | {:.1} | {} |",
                median(cpu),
                median(wall),
                rss as f64 / 1024.0,
                std::fs::metadata(&out).map_or(0, |m| m.len()),
            );
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
}

struct Options {
    runs: usize,
    inputs: usize,
    width: usize,
    quality: usize,
}

/// One process run: wall time in ms and peak RSS in KiB.
struct Run {
    ms: f64,
    rss_kib: u64,
}

fn timed(command: &[String], scratch: &Path) -> Run {
    let rss_file = scratch.join("rss");
    let start = Instant::now();
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .args(command)
        .env("VIPS_CONCURRENCY", "1")
        .status()
        .expect("run /usr/bin/time (apt-get install time)");
    let ms = start.elapsed().as_secs_f64() * 1e3;
    assert!(status.success(), "{command:?} failed: {status}");
    let rss_kib = std::fs::read_to_string(&rss_file)
        .expect("read /usr/bin/time's output")
        .trim()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("a max RSS in KiB");
    Run { ms, rss_kib }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Ours and vips's commands for one input → output.
fn commands(
    input: &Path,
    ours_out: &Path,
    vips_out: &Path,
    format: &str,
    width: usize,
    quality: usize,
) -> (Vec<String>, Vec<String>) {
    let me = std::env::current_exe().expect("own path");
    let ours = vec![
        me.display().to_string(),
        "once".into(),
        input.display().to_string(),
        ours_out.display().to_string(),
        format.into(),
        width.to_string(),
        quality.to_string(),
    ];
    // `strip`: ours writes no metadata, so vips's output must not carry the source's either.
    let vips = vec![
        "vips".into(),
        "thumbnail".into(),
        input.display().to_string(),
        format!("{}[Q={quality},strip]", vips_out.display()),
        width.to_string(),
    ];
    (ours, vips)
}

/// Both sides alternately, after one warm-up each: (ours, vips), medians of time and of RSS.
fn pair(ours: &[String], vips: &[String], runs: usize, scratch: &Path) -> ((f64, u64), (f64, u64)) {
    timed(ours, scratch);
    timed(vips, scratch);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..runs {
        if i % 2 == 0 {
            a.push(timed(ours, scratch));
            b.push(timed(vips, scratch));
        } else {
            b.push(timed(vips, scratch));
            a.push(timed(ours, scratch));
        }
    }
    let summary = |runs: Vec<Run>| {
        let rss = runs.iter().map(|r| r.rss_kib).max().unwrap_or(0);
        (median(runs.into_iter().map(|r| r.ms).collect()), rss)
    };
    (summary(a), summary(b))
}

/// An output decoded to RGB, or RGBA for a source with alpha: (width, height, samples). AVIF
/// goes through vips (libheif) to PNG: no AV1 decoder is linked on our side.
fn pixels(bytes: &[u8], alpha: bool, scratch: &Path) -> ((u32, u32), Vec<u8>) {
    if bytes.get(4..12) == Some(b"ftypavif") {
        let (avif, png) = (scratch.join("decode.avif"), scratch.join("decode.png"));
        std::fs::write(&avif, bytes).expect("write the AVIF");
        let status = Command::new("vips")
            .arg("copy")
            .arg(&avif)
            .arg(&png)
            .status()
            .expect("run vips");
        assert!(status.success(), "vips could not decode an AVIF output");
        let png = std::fs::read(&png).expect("read the decoded AVIF");
        return pixels(&png, alpha, scratch);
    }
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let img = turbojpeg::decompress(bytes, turbojpeg::PixelFormat::RGB).expect("decode JPEG");
        ((img.width as u32, img.height as u32), img.pixels)
    } else {
        let img = image::load_from_memory(bytes).expect("decode the output");
        let size = (img.width(), img.height());
        if alpha {
            (size, img.to_rgba8().into_raw())
        } else {
            (size, img.to_rgb8().into_raw())
        }
    }
}

/// PSNR of `a` against `b` over every sample, in dB; `None` if the sizes differ.
fn psnr(a: &((u32, u32), Vec<u8>), b: &((u32, u32), Vec<u8>)) -> Option<f64> {
    if a.0 != b.0 || a.1.len() != b.1.len() {
        return None;
    }
    let sum: f64 =
        a.1.iter()
            .zip(&b.1)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum();
    let mse = sum / a.1.len() as f64;
    Some(if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    })
}

/// A PNG with alpha made from a photograph: `jpeg` decoded at half size (2560×1440 from the
/// wallpapers), under a vignette of alpha from 255 at the centre to 64 in the corners (never 0,
/// where the colour of invisible pixels would weigh in the PSNR).
fn alpha_png(jpeg: &Path, out: &Path) {
    let mut decompressor = turbojpeg::Decompressor::new().expect("decompressor");
    decompressor
        .set_scaling_factor(turbojpeg::ScalingFactor::ONE_HALF)
        .expect("scale");
    let data = std::fs::read(jpeg).expect("read the input");
    let header = decompressor
        .read_header(&data)
        .expect("JPEG header")
        .scaled(turbojpeg::ScalingFactor::ONE_HALF);
    let mut img = turbojpeg::Image {
        pixels: vec![0u8; header.width * header.height * 4],
        width: header.width,
        pitch: header.width * 4,
        height: header.height,
        format: turbojpeg::PixelFormat::RGBA,
    };
    decompressor
        .decompress(&data, img.as_deref_mut())
        .expect("decode");
    let (w, h) = (header.width as f64, header.height as f64);
    for y in 0..header.height {
        for x in 0..header.width {
            let (dx, dy) = (x as f64 / w - 0.5, y as f64 / h - 0.5);
            let d = ((dx * dx + dy * dy) / 0.5).sqrt().min(1.0);
            img.pixels[(y * header.width + x) * 4 + 3] = (255.0 - 191.0 * d).round() as u8;
        }
    }
    image::RgbaImage::from_raw(header.width as u32, header.height as u32, img.pixels)
        .expect("size")
        .save(out)
        .expect("write the PNG");
}

/// The largest 5120×2880 JPEGs of plasma-workspace-wallpapers, largest first.
fn inputs(count: usize) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let root = Path::new("/usr/share/wallpapers");
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "5120x2880.jpg") {
                let len = entry.metadata().map_or(0, |m| m.len());
                found.push((len, path));
            }
        }
    }
    assert!(
        !found.is_empty(),
        "no 5120x2880.jpg under /usr/share/wallpapers: apt-get install plasma-workspace-wallpapers"
    );
    found.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
    found.into_iter().take(count).map(|(_, p)| p).collect()
}

fn bench(options: Options) {
    let scratch =
        std::env::temp_dir().join(format!("imgbt-transform-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let vips_version = Command::new("vips")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .expect("vips (apt-get install libvips-tools)");
    eprintln!(
        "{vips_version}; {} runs per side; w={} q={}",
        options.runs, options.width, options.quality
    );

    // Each side's fixed cost: a 16×16 JPEG to 8 wide.
    let tiny = scratch.join("tiny.jpg");
    let grey = vec![90u8; 16 * 16 * 3];
    let tiny_jpeg = turbojpeg::compress(
        turbojpeg::Image {
            pixels: grey.as_slice(),
            width: 16,
            pitch: 48,
            height: 16,
            format: turbojpeg::PixelFormat::RGB,
        },
        80,
        turbojpeg::Subsamp::Sub2x2,
    )
    .expect("encode the tiny JPEG");
    std::fs::write(&tiny, &*tiny_jpeg).expect("write the tiny JPEG");
    let (ours_cmd, vips_cmd) = commands(
        &tiny,
        &scratch.join("tiny-ours.jpg"),
        &scratch.join("tiny-vips.jpg"),
        "jpg",
        8,
        options.quality,
    );
    let ((ours_fixed, ours_fixed_rss), (vips_fixed, vips_fixed_rss)) =
        pair(&ours_cmd, &vips_cmd, options.runs * 2, &scratch);

    println!(
        "| input | to | ours ms | vips ms | time ×vips (process) | time ×vips (net of start) | bytes ×vips | PSNR vs vips | peak RSS ours / vips (MiB) | memory ×vips (process) | memory ×vips (net of start) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| 16×16 (each side's start) | jpg | {ours_fixed:.1} | {vips_fixed:.1} | {:.2} | – | – | – | {:.1} / {:.1} | {:.2} | – |",
        ours_fixed / vips_fixed,
        ours_fixed_rss as f64 / 1024.0,
        vips_fixed_rss as f64 / 1024.0,
        ours_fixed_rss as f64 / vips_fixed_rss as f64,
    );
    let mut worst = [0.0f64; 5];
    let mut worst_psnr = f64::INFINITY;
    let jpegs = inputs(options.inputs);
    let png = scratch.join("alpha.png");
    alpha_png(&jpegs[0], &png);
    let named = |input: &Path| {
        input
            .components()
            .rev()
            .nth(3)
            .map_or("?".into(), |c| c.as_os_str().to_string_lossy().into_owned())
    };
    let mut cases: Vec<(PathBuf, String, &[&str], bool)> = jpegs
        .iter()
        .map(|p| (p.clone(), named(p), &["jpg", "webp", "avif"][..], false))
        .collect();
    // JPEG output would flatten the alpha, onto different backgrounds on each side.
    cases.push((
        png,
        format!("{} 2560×1440 PNG, alpha", named(&jpegs[0])),
        &["webp", "avif"][..],
        true,
    ));
    for (input, name, formats, alpha) in cases {
        for &format in formats {
            let ours_out = scratch.join(format!("ours.{format}"));
            let vips_out = scratch.join(format!("vips.{format}"));
            let (ours_cmd, vips_cmd) = commands(
                &input,
                &ours_out,
                &vips_out,
                format,
                options.width,
                options.quality,
            );
            let ((ours_ms, ours_rss), (vips_ms, vips_rss)) =
                pair(&ours_cmd, &vips_cmd, options.runs, &scratch);
            let ours_bytes = std::fs::read(&ours_out).expect("our output");
            let vips_bytes = std::fs::read(&vips_out).expect("vips's output");
            let (a, b) = (
                pixels(&ours_bytes, alpha, &scratch),
                pixels(&vips_bytes, alpha, &scratch),
            );
            let psnr = psnr(&a, &b);
            let time = ours_ms / vips_ms;
            let net = (ours_ms - ours_fixed) / (vips_ms - vips_fixed);
            let bytes = ours_bytes.len() as f64 / vips_bytes.len() as f64;
            let memory = ours_rss as f64 / vips_rss as f64;
            let memory_net = (ours_rss as f64 - ours_fixed_rss as f64)
                / (vips_rss as f64 - vips_fixed_rss as f64);
            // The budgets are issue 18's for WebP and JPEG; AVIF is a different encoder on each
            // side (rav1e against libheif's), reported but not judged.
            if format != "avif" {
                for (w, v) in worst.iter_mut().zip([time, net, bytes, memory, memory_net]) {
                    *w = w.max(v);
                }
                worst_psnr = worst_psnr.min(psnr.unwrap_or(0.0));
            }
            println!(
                "| {name} ({} KB) | {format} | {ours_ms:.1} | {vips_ms:.1} | {time:.2} | {net:.2} | {bytes:.2} ({} / {} B) | {} | {:.1} / {:.1} | {memory:.2} | {memory_net:.2} |",
                std::fs::metadata(&input).map_or(0, |m| m.len() / 1000),
                ours_bytes.len(),
                vips_bytes.len(),
                match psnr {
                    Some(p) => format!("{p:.1} dB"),
                    None => format!("sizes differ: {:?} vs {:?}", a.0, b.0),
                },
                ours_rss as f64 / 1024.0,
                vips_rss as f64 / 1024.0,
            );
        }
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!();
    println!(
        "Worst case over the JPEG and WebP rows: time {:.2}× process, {:.2}× net of start (budget 1.5×: {}); bytes {:.2}× (budget 1.15×: {}); PSNR {:.1} dB (budget 35 dB: {}); memory {:.2}× process, {:.2}× net of start (budget 2×: {}).",
        worst[0],
        worst[1],
        verdict(worst[1] <= 1.5),
        worst[2],
        verdict(worst[2] <= 1.15),
        worst_psnr,
        verdict(worst_psnr >= 35.0),
        worst[3],
        worst[4],
        verdict(worst[4] <= 2.0),
    );
    std::fs::remove_dir_all(&scratch).ok();
}
