//! The pipeline end to end on generated sources: output sizes per fit mode, EXIF orientation,
//! metadata stripped, gravity and padding, alpha, `format=auto`, and bad sources.

use imgbt_transform::{Error, OutputFormat, Params, transform};

/// `w`×`h` RGB, the left half red and the right half blue.
fn halves(w: u32, h: u32) -> Vec<u8> {
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    for _y in 0..h {
        for x in 0..w {
            pixels.extend_from_slice(if x < w / 2 {
                &[220, 20, 20]
            } else {
                &[20, 20, 220]
            });
        }
    }
    pixels
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    turbojpeg::compress(
        turbojpeg::Image {
            pixels: halves(w, h).as_slice(),
            width: w as usize,
            pitch: w as usize * 3,
            height: h as usize,
            format: turbojpeg::PixelFormat::RGB,
        },
        90,
        turbojpeg::Subsamp::Sub2x2,
    )
    .unwrap()
    .to_vec()
}

/// A TIFF block with an orientation and a GPS position, as a camera phone writes.
fn exif_block(orientation: u16) -> Vec<u8> {
    use exif::{Field, In, Rational, Tag, Value};
    let orientation = Field {
        tag: Tag::Orientation,
        ifd_num: In::PRIMARY,
        value: Value::Short(vec![orientation]),
    };
    let latitude = Field {
        tag: Tag::GPSLatitude,
        ifd_num: In::PRIMARY,
        value: Value::Rational(vec![
            Rational::from((48, 1)),
            Rational::from((51, 1)),
            Rational::from((2964, 100)),
        ]),
    };
    let latitude_ref = Field {
        tag: Tag::GPSLatitudeRef,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![b"N".to_vec()]),
    };
    let mut writer = exif::experimental::Writer::new();
    writer.push_field(&orientation);
    writer.push_field(&latitude);
    writer.push_field(&latitude_ref);
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).unwrap();
    tiff.into_inner()
}

/// `jpeg` with an APP1 Exif segment right after its SOI.
fn with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend(exif_block(orientation));
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    out.extend(payload);
    out.extend(&jpeg[2..]);
    out
}

fn params(query: &[(&str, &str)]) -> Params {
    Params::parse(query.iter().copied()).unwrap()
}

/// Decodes any output to RGBA, with its size.
fn decoded(bytes: &[u8]) -> image::RgbaImage {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let img = turbojpeg::decompress(bytes, turbojpeg::PixelFormat::RGBA).unwrap();
        image::RgbaImage::from_raw(img.width as u32, img.height as u32, img.pixels).unwrap()
    } else {
        image::load_from_memory(bytes).unwrap().to_rgba8()
    }
}

fn is_red(p: &image::Rgba<u8>) -> bool {
    p[0] > 150 && p[2] < 90
}

fn is_blue(p: &image::Rgba<u8>) -> bool {
    p[2] > 150 && p[0] < 90
}

#[test]
fn each_fit_gives_its_size() {
    let source = jpeg(1000, 500);
    for (fit, size) in [
        ("cover", (300, 300)),
        ("contain", (300, 300)),
        ("fill", (300, 300)),
        ("inside", (300, 150)),
        ("outside", (600, 300)),
    ] {
        for format in ["jpg", "webp", "png"] {
            let out = transform(
                &source,
                &params(&[("w", "300"), ("h", "300"), ("fit", fit), ("format", format)]),
                None,
            )
            .unwrap();
            let image = decoded(&out.bytes);
            assert_eq!(image.dimensions(), size, "fit={fit} format={format}");
            assert_eq!((out.width, out.height), size);
        }
    }
    // dpr multiplies; one side keeps the aspect ratio.
    let out = transform(&source, &params(&[("w", "150"), ("dpr", "2")]), None).unwrap();
    assert_eq!(decoded(&out.bytes).dimensions(), (300, 150));
    assert_eq!(out.format, OutputFormat::Jpeg);
}

#[test]
fn shrink_on_load_still_gives_the_exact_size() {
    // 5120 → 301 is a shrink of 17: libjpeg-turbo decodes at 1/8, Lanczos does the rest.
    let source = jpeg(5120, 2880);
    let out = transform(&source, &params(&[("w", "301"), ("format", "png")]), None).unwrap();
    let image = decoded(&out.bytes);
    assert_eq!(image.dimensions(), (301, 169));
    assert!(is_red(image.get_pixel(10, 80)) && is_blue(image.get_pixel(290, 80)));
}

#[test]
fn exif_orientation_is_applied() {
    // Stored 200×100, red left; orientation 6 means "rotate 90° clockwise to display": the
    // displayed image is 100×200 with red on top.
    let source = with_exif(&jpeg(200, 100), 6);
    let out = transform(&source, &params(&[("w", "50"), ("format", "png")]), None).unwrap();
    let image = decoded(&out.bytes);
    assert_eq!(image.dimensions(), (50, 100));
    assert!(
        is_red(image.get_pixel(25, 10)),
        "{:?}",
        image.get_pixel(25, 10)
    );
    assert!(
        is_blue(image.get_pixel(25, 90)),
        "{:?}",
        image.get_pixel(25, 90)
    );
    // Orientation 8 (90° counter-clockwise): blue on top.
    let source = with_exif(&jpeg(200, 100), 8);
    let image = decoded(
        &transform(&source, &params(&[("w", "50")]), None)
            .unwrap()
            .bytes,
    );
    assert_eq!(image.dimensions(), (50, 100));
    assert!(is_blue(image.get_pixel(25, 10)) && is_red(image.get_pixel(25, 90)));
}

#[test]
fn metadata_is_stripped() {
    let source = with_exif(&jpeg(200, 100), 1);
    // The fixture does carry a GPS position.
    let exif = exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(&source))
        .unwrap();
    assert!(
        exif.get_field(exif::Tag::GPSLatitude, exif::In::PRIMARY)
            .is_some()
    );
    for format in ["jpg", "webp", "png", "gif", "avif"] {
        let out = transform(&source, &params(&[("w", "100"), ("format", format)]), None).unwrap();
        let read = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(&out.bytes));
        assert!(read.is_err(), "{format}: the output has an EXIF block");
        for marker in [&b"Exif"[..], b"EXIF", b"eXIf", b"GPS"] {
            assert!(
                !out.bytes.windows(marker.len()).any(|w| w == marker),
                "{format}: {:?} in the output",
                String::from_utf8_lossy(marker)
            );
        }
    }
}

#[test]
fn gravity_picks_the_kept_side() {
    let source = jpeg(1000, 500);
    let crop = |g: &str| {
        let out = transform(
            &source,
            &params(&[("w", "200"), ("h", "200"), ("g", g), ("format", "png")]),
            None,
        )
        .unwrap();
        decoded(&out.bytes)
    };
    let west = crop("west");
    assert!(is_red(west.get_pixel(10, 100)) && is_red(west.get_pixel(190, 100)));
    let east = crop("east");
    assert!(is_blue(east.get_pixel(10, 100)) && is_blue(east.get_pixel(190, 100)));
    let center = crop("center");
    assert!(is_red(center.get_pixel(10, 100)) && is_blue(center.get_pixel(190, 100)));
}

#[test]
fn entropy_crop_keeps_the_detail() {
    // Flat grey except a noisy block at the right: the entropy crop moves onto it.
    let (w, h) = (600u32, 200u32);
    let mut pixels = vec![128u8; (w * h * 3) as usize];
    let mut state = 12345u32;
    for y in 0..h {
        for x in 450..w {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let v = (state >> 16) as u8;
            let i = ((y * w + x) * 3) as usize;
            pixels[i..i + 3].copy_from_slice(&[v, v, v]);
        }
    }
    let mut png = Vec::new();
    image::RgbImage::from_raw(w, h, pixels)
        .unwrap()
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let out = transform(
        &png,
        &params(&[
            ("w", "200"),
            ("h", "200"),
            ("crop", "entropy"),
            ("format", "png"),
        ]),
        None,
    )
    .unwrap();
    let image = decoded(&out.bytes);
    let varied = (0..200)
        .filter(|x| image.get_pixel(*x, 100)[0].abs_diff(128) > 20)
        .count();
    assert!(
        varied > 100,
        "only {varied} of 200 pixels come from the noisy block"
    );
}

#[test]
fn contain_pads_with_bg_and_alpha_flattens_onto_it() {
    let source = jpeg(1000, 500);
    let out = transform(
        &source,
        &params(&[
            ("w", "300"),
            ("h", "300"),
            ("fit", "contain"),
            ("bg", "00ff00"),
            ("f", "png"),
        ]),
        None,
    )
    .unwrap();
    let image = decoded(&out.bytes);
    assert_eq!(image.get_pixel(150, 5).0, [0, 255, 0, 255]);
    assert!(is_red(image.get_pixel(10, 150)));

    // A transparent PNG to JPEG comes out the colour of bg.
    let mut png = Vec::new();
    image::RgbaImage::from_pixel(40, 40, image::Rgba([255, 0, 0, 0]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let out = transform(&png, &params(&[("f", "jpg"), ("bg", "0000ff")]), None).unwrap();
    let p = *decoded(&out.bytes).get_pixel(20, 20);
    assert!(is_blue(&p), "{p:?}");
    // Kept as PNG, the alpha stays.
    let out = transform(&png, &params(&[("w", "20")]), None).unwrap();
    assert_eq!(out.format, OutputFormat::Png);
    assert_eq!(decoded(&out.bytes).get_pixel(10, 10)[3], 0);
}

#[test]
fn auto_follows_accept() {
    let source = jpeg(100, 50);
    let auto = params(&[("format", "auto")]);
    let out = transform(&source, &auto, Some("image/webp,*/*")).unwrap();
    assert_eq!(out.format, OutputFormat::Webp);
    assert!(out.bytes.starts_with(b"RIFF") && &out.bytes[8..12] == b"WEBP");
    let out = transform(&source, &auto, Some("*/*")).unwrap();
    assert_eq!(out.format, OutputFormat::Jpeg);
    assert!(out.bytes.starts_with(&[0xFF, 0xD8]));
    // A browser that takes AVIF gets AVIF, even when it lists WebP first.
    for accept in [
        "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
        "image/webp,image/avif",
    ] {
        let out = transform(&source, &auto, Some(accept)).unwrap();
        assert_eq!(out.format, OutputFormat::Avif, "{accept}");
        assert_eq!(avif_size(&out.bytes), (100, 50), "{accept}");
    }
}

/// An AVIF's size from its `ispe` box, after checking that it is an AV1 still image (`ftyp`
/// brand `avif`, an `av01` item). No AV1 decoder is linked (see the crate's docs), so the
/// container is what can be read back.
fn avif_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(
        &bytes[4..12],
        b"ftypavif",
        "not an AVIF: {:?}",
        &bytes[..12]
    );
    assert!(contains(bytes, b"av01"), "no AV1 item");
    assert_eq!(
        imagesize::image_type(bytes).unwrap(),
        imagesize::ImageType::Heif(imagesize::Compression::Av1)
    );
    let size = imagesize::blob_size(bytes).unwrap();
    (size.width as u32, size.height as u32)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The auxiliary image type AVIF gives an alpha plane (MIAF, ISO/IEC 23000-22).
const AVIF_ALPHA_URN: &[u8] = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha";

#[test]
fn avif_output_has_the_asked_size_and_quality() {
    let source = jpeg(1000, 500);
    for (query, size) in [
        (&[("w", "300")][..], (300, 150)),
        (
            &[("w", "200"), ("h", "200"), ("fit", "cover")][..],
            (200, 200),
        ),
        (&[("h", "90")][..], (180, 90)),
    ] {
        let mut query = query.to_vec();
        query.push(("format", "avif"));
        let out = transform(&source, &params(&query), None).unwrap();
        assert_eq!(out.format, OutputFormat::Avif);
        assert_eq!(out.format.mime(), "image/avif");
        assert_eq!(avif_size(&out.bytes), size, "{query:?}");
        assert_eq!((out.width, out.height), size);
        assert!(
            !contains(&out.bytes, AVIF_ALPHA_URN),
            "an opaque source has no alpha plane"
        );
    }
    // The smallest outputs, odd sizes included, encode rather than panic inside rav1e.
    for (w, h) in [(1, 1), (3, 1), (1, 7)] {
        let (w_s, h_s) = (w.to_string(), h.to_string());
        let query = [
            ("w", w_s.as_str()),
            ("h", h_s.as_str()),
            ("fit", "fill"),
            ("f", "avif"),
        ];
        let out = transform(&source, &params(&query), None).unwrap();
        assert_eq!(avif_size(&out.bytes), (w, h));
    }
    // `q` reaches the encoder: a low quality is smaller than a high one on a photo-like source
    // (noise, which costs bits at every quantizer).
    let mut noisy = halves(400, 200);
    let mut state = 7u32;
    for v in noisy.iter_mut() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *v = v.saturating_add((state >> 27) as u8);
    }
    let mut png = Vec::new();
    image::RgbImage::from_raw(400, 200, noisy)
        .unwrap()
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let at = |q: &str| {
        transform(&png, &params(&[("f", "avif"), ("q", q)]), None)
            .unwrap()
            .bytes
            .len()
    };
    let (low, high) = (at("20"), at("90"));
    assert!(low * 2 < high, "q=20 gave {low} bytes, q=90 {high}");
}

#[test]
fn avif_sources_are_refused_naming_what_is_decoded() {
    // No AV1 decoder is linked (the crate's docs say why): an AVIF source is a 400 that names the
    // formats that can be transformed, not a 500 or a panic.
    let avif = transform(&jpeg(64, 32), &params(&[("f", "avif")]), None)
        .unwrap()
        .bytes;
    let error = transform(&avif, &params(&[("w", "32")]), None).unwrap_err();
    assert!(matches!(error, Error::NotAnImage), "{error:?}");
    assert!(error.is_client_error());
    assert!(
        error.to_string().contains("JPEG, PNG, GIF, WebP"),
        "{error}"
    );
}

#[test]
fn avif_keeps_alpha() {
    let mut rgba = image::RgbaImage::from_pixel(64, 32, image::Rgba([200, 30, 30, 255]));
    for x in 0..32 {
        for y in 0..32 {
            rgba.put_pixel(x, y, image::Rgba([30, 30, 200, 40]));
        }
    }
    let mut png = Vec::new();
    rgba.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let out = transform(&png, &params(&[("w", "32"), ("f", "avif")]), None).unwrap();
    assert_eq!(avif_size(&out.bytes), (32, 16));
    assert!(
        contains(&out.bytes, AVIF_ALPHA_URN),
        "the alpha plane was dropped"
    );
    let query = [("w", "1"), ("h", "1"), ("fit", "fill"), ("f", "avif")];
    let out = transform(&png, &params(&query), None).unwrap();
    assert_eq!(avif_size(&out.bytes), (1, 1));
}

#[test]
fn effects_change_what_they_say() {
    let source = jpeg(200, 100);
    let run = |q: &[(&str, &str)]| {
        let mut q = q.to_vec();
        q.push(("f", "png"));
        decoded(&transform(&source, &params(&q), None).unwrap().bytes)
    };
    let rotated = run(&[("rotate", "90")]);
    assert_eq!(rotated.dimensions(), (100, 200));
    assert!(
        is_red(rotated.get_pixel(50, 10)),
        "90° clockwise puts the left on top"
    );
    let flipped = run(&[("flip", "h")]);
    assert!(is_blue(flipped.get_pixel(10, 50)) && is_red(flipped.get_pixel(190, 50)));
    let gray = run(&[("grayscale", "")]);
    let p = gray.get_pixel(10, 50);
    assert!(p[0] == p[1] && p[1] == p[2], "{p:?}");
    // A blur carries the blue across the red–blue edge at x=100.
    let sharp_edge = run(&[]);
    let blurred = run(&[("blur", "40")]);
    let (before, after) = (sharp_edge.get_pixel(92, 50), blurred.get_pixel(92, 50));
    assert!(is_red(before), "{before:?}");
    assert!(after[2] > before[2] + 30, "{before:?} → {after:?}");
    let sharpened = run(&[("sharpen", "20")]);
    assert_ne!(sharpened.as_raw(), sharp_edge.as_raw());
}

#[test]
fn bad_sources_are_errors_not_panics() {
    let p = params(&[("w", "100")]);
    assert!(matches!(
        transform(b"%PDF-1.7 not an image", &p, None),
        Err(Error::NotAnImage)
    ));
    assert!(matches!(transform(b"", &p, None), Err(Error::NotAnImage)));
    let whole = jpeg(400, 200);
    for cut in [4, 200, whole.len() / 2] {
        let result = transform(&whole[..cut], &p, None);
        assert!(
            matches!(result, Err(Error::Corrupt(_)) | Ok(_)),
            "cut at {cut}: {result:?}"
        );
    }
    let png_text = b"\x89PNG\r\n\x1a\n garbage";
    assert!(matches!(
        transform(png_text, &p, None),
        Err(Error::Corrupt(_))
    ));
}

#[test]
fn webp_and_gif_sources() {
    let rgb = halves(200, 100);
    let webp = webp::Encoder::from_rgb(&rgb, 200, 100)
        .encode(90.0)
        .to_vec();
    let mut gif = Vec::new();
    image::RgbImage::from_raw(200, 100, rgb)
        .unwrap()
        .write_to(&mut std::io::Cursor::new(&mut gif), image::ImageFormat::Gif)
        .unwrap();
    for (kind, source, format) in [
        ("webp", webp, OutputFormat::Webp),
        ("gif", gif, OutputFormat::Gif),
    ] {
        let out = transform(&source, &params(&[("w", "50")]), None).unwrap();
        assert_eq!(out.format, format, "{kind} stays {kind} unless asked");
        let image = decoded(&out.bytes);
        assert_eq!(image.dimensions(), (50, 25), "{kind}");
        assert!(
            is_red(image.get_pixel(5, 12)) && is_blue(image.get_pixel(45, 12)),
            "{kind}"
        );
    }
}

#[test]
fn errors_say_whose_fault() {
    let not_image = transform(b"hello", &params(&[]), None).unwrap_err();
    assert!(not_image.is_client_error());
    assert_eq!(not_image.param(), None);
    let bad = Params::parse([("w", "0")]).unwrap_err();
    let error = imgbt_transform::Error::from(bad);
    assert_eq!(error.param(), Some("w"));
    assert!(!imgbt_transform::Error::Encode("x".into()).is_client_error());
}

#[test]
fn resizing_keeps_the_colour_under_partial_alpha() {
    // The resize weighs colour by alpha (premultiplied, then divided back): a uniform colour at
    // half alpha comes out the same colour, neither darkened (left premultiplied) nor
    // brightened (divided without having been multiplied).
    let mut png = Vec::new();
    image::RgbaImage::from_pixel(100, 50, image::Rgba([200, 30, 30, 128]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let out = transform(&png, &params(&[("w", "50")]), None).unwrap();
    let image = decoded(&out.bytes);
    assert_eq!(image.dimensions(), (50, 25));
    for p in [
        image.get_pixel(0, 0),
        image.get_pixel(25, 12),
        image.get_pixel(49, 24),
    ] {
        let close = |a: u8, b: u8| a.abs_diff(b) <= 2;
        assert!(
            close(p[0], 200) && close(p[1], 30) && close(p[2], 30) && close(p[3], 128),
            "{p:?}"
        );
    }
}
