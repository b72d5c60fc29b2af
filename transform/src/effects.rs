//! Operations on the resized image: orientation, crop windows, padding and the effects. They run
//! after the resize, so on the output's pixels, never the source's.

use image::{DynamicImage, GenericImageView, Rgba, RgbaImage};

use crate::decode::Oriented;
use crate::params::{Crop, Flip, Params};

pub fn orient(mut image: DynamicImage, orientation: Oriented) -> DynamicImage {
    image.apply_orientation(orientation.0);
    image
}

/// The `window` of `image` that `fit=cover` keeps: by a smart strategy if asked for, else at the
/// gravity's anchor.
pub fn crop(image: DynamicImage, window: (u32, u32), params: &Params) -> DynamicImage {
    let (cw, ch) = (window.0.min(image.width()), window.1.min(image.height()));
    let (x, y) = match params.smart_crop() {
        Some(strategy) => smart_offset(&image, (cw, ch), strategy),
        None => {
            let (ax, ay) = params.gravity.anchor();
            (
                (f64::from(image.width() - cw) * ax).floor() as u32,
                (f64::from(image.height() - ch) * ay).floor() as u32,
            )
        }
    };
    image.crop_imm(x, y, cw, ch)
}

/// The top-left corner of the best `window`. The window is slid along each axis with room to
/// move (a cover crop has one, rounding may give both) over 33 positions.
fn smart_offset(image: &DynamicImage, window: (u32, u32), strategy: Crop) -> (u32, u32) {
    let luma = image.to_luma8();
    let rgb = image.to_rgb8();
    let (w, h) = (image.width(), image.height());
    let steps = 32;
    let positions = |free: u32| -> Vec<u32> {
        if free == 0 {
            vec![0]
        } else {
            (0..=steps)
                .map(|i| (u64::from(free) * i / steps) as u32)
                .collect()
        }
    };
    let score = |x: u32, y: u32| -> f64 {
        match strategy {
            Crop::Entropy => {
                // Shannon entropy of the window's luminance histogram, on every other pixel.
                let mut histogram = [0u32; 256];
                let mut n = 0u32;
                for j in (y..y + window.1).step_by(2) {
                    for i in (x..x + window.0).step_by(2) {
                        histogram[luma.get_pixel(i, j)[0] as usize] += 1;
                        n += 1;
                    }
                }
                histogram
                    .iter()
                    .filter(|c| **c > 0)
                    .map(|c| {
                        let p = f64::from(*c) / f64::from(n);
                        -p * p.log2()
                    })
                    .sum()
            }
            Crop::Attention => {
                // libvips's cues, simplified: edges (luminance gradient), saturation, and
                // skin-like hue, each summed over the window.
                let mut total = 0.0;
                for j in (y..y + window.1).step_by(2) {
                    for i in (x..x + window.0).step_by(2) {
                        let l = i32::from(luma.get_pixel(i, j)[0]);
                        let right = i32::from(luma.get_pixel((i + 1).min(w - 1), j)[0]);
                        let below = i32::from(luma.get_pixel(i, (j + 1).min(h - 1))[0]);
                        let edge = (l - right).abs() + (l - below).abs();
                        let [r, g, b] = rgb.get_pixel(i, j).0.map(i32::from);
                        let saturation = r.max(g).max(b) - r.min(g).min(b);
                        let skin = r > 95 && g > 40 && b > 20 && r > g && r > b && r - g > 15;
                        total += f64::from(edge)
                            + f64::from(saturation) * 0.5
                            + if skin { 64.0 } else { 0.0 };
                    }
                }
                total
            }
        }
    };
    let mut best = (0, 0);
    let mut best_score = f64::MIN;
    for y in positions(h - window.1) {
        for x in positions(w - window.0) {
            let s = score(x, y);
            if s > best_score {
                best_score = s;
                best = (x, y);
            }
        }
    }
    best
}

/// `fit=contain`: the image on a canvas of `bg`, placed at the gravity's anchor.
pub fn pad(image: DynamicImage, canvas: (u32, u32), params: &Params) -> DynamicImage {
    let [r, g, b] = params.background;
    let mut out = RgbaImage::from_pixel(canvas.0, canvas.1, Rgba([r, g, b, 255]));
    let (ax, ay) = params.gravity.anchor();
    let x = (f64::from(canvas.0.saturating_sub(image.width())) * ax).floor() as i64;
    let y = (f64::from(canvas.1.saturating_sub(image.height())) * ay).floor() as i64;
    let alpha = image.color().has_alpha();
    image::imageops::overlay(&mut out, &image.to_rgba8(), x, y);
    if alpha {
        DynamicImage::ImageRgba8(out)
    } else {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(out).to_rgb8())
    }
}

/// rotate, flip, grayscale, blur, sharpen, in that order.
pub fn apply(mut image: DynamicImage, params: &Params) -> DynamicImage {
    image = match params.rotate {
        90 => image.rotate90(),
        180 => image.rotate180(),
        270 => image.rotate270(),
        _ => image,
    };
    image = match params.flip {
        Some(Flip::Horizontal) => image.fliph(),
        Some(Flip::Vertical) => image.flipv(),
        None => image,
    };
    if params.grayscale {
        let gray = image.grayscale();
        // Back to the colour layout the encoders take; the channels stay equal.
        image = if gray.color().has_alpha() {
            DynamicImage::ImageRgba8(gray.to_rgba8())
        } else {
            DynamicImage::ImageRgb8(gray.to_rgb8())
        };
    }
    if let Some(blur) = params.blur {
        image = image.fast_blur(f32::from(blur) / 2.0);
    }
    if let Some(sharpen) = params.sharpen {
        image = image.unsharpen(f32::from(sharpen) / 10.0, 0);
    }
    image
}

/// The image without alpha, composited over `bg` (for JPEG, which has none).
pub fn flatten(image: &DynamicImage, background: [u8; 3]) -> image::RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let (w, h) = image.dimensions();
    let mut out = image::RgbImage::new(w, h);
    for (x, y, pixel) in image.to_rgba8().enumerate_pixels() {
        let [r, g, b, a] = pixel.0;
        let a = u32::from(a);
        let mix =
            |c: u8, bg: u8| ((u32::from(c) * a + u32::from(bg) * (255 - a) + 127) / 255) as u8;
        out.put_pixel(
            x,
            y,
            image::Rgb([
                mix(r, background[0]),
                mix(g, background[1]),
                mix(b, background[2]),
            ]),
        );
    }
    out
}
