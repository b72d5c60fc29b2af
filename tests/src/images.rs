//! Reading a transform's output back: its pixels, decoded by the `image` crate (a decoder of its
//! own, not the one the transform used), and how close two images are (PSNR). Golden tests
//! compare outputs by PSNR against references made by libvips, never by bytes: two good encoders
//! never agree on bytes.

use image::{DynamicImage, RgbImage};

/// The image in `bytes` (JPEG, PNG, GIF, WebP), or a panic naming what it was.
pub fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).unwrap_or_else(|e| {
        panic!(
            "not an image the image crate decodes ({} bytes, starting {:02x?}): {e}",
            bytes.len(),
            &bytes[..bytes.len().min(12)]
        )
    })
}

/// Peak signal-to-noise ratio of `a` against `b` over RGB, in dB (infinite when equal). The
/// images must be the same size.
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(
        a.dimensions(),
        b.dimensions(),
        "PSNR of images of different sizes"
    );
    let (sum, n) = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .fold((0f64, 0u64), |(sum, n), (x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            (sum + d * d, n + 1)
        });
    let mse = sum / n as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}
