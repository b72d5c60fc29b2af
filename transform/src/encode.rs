//! Encoders. Each writes pixels only: the source's EXIF (with any GPS position), ICC profile and
//! comments are never carried over, because nothing here is handed them.

use image::{DynamicImage, ImageEncoder};

use crate::{Error, OutputFormat, Params, effects};

pub fn encode(
    image: &DynamicImage,
    format: OutputFormat,
    params: &Params,
) -> Result<Vec<u8>, Error> {
    let failed = |e: &dyn std::fmt::Display| Error::Encode(e.to_string());
    let (w, h) = (image.width(), image.height());
    match format {
        OutputFormat::Jpeg => {
            // Already RGB (every JPEG source): encoded in place, without a copy of the pixels.
            let flattened;
            let rgb = match image {
                DynamicImage::ImageRgb8(rgb) => rgb,
                other => {
                    flattened = effects::flatten(other, params.background);
                    &flattened
                }
            };
            let mut compressor = turbojpeg::Compressor::new().map_err(|e| failed(&e))?;
            compressor
                .set_quality(i32::from(params.quality))
                .map_err(|e| failed(&e))?;
            // 4:2:0 below q90 and 4:4:4 from it, as libvips chooses.
            let subsamp = if params.quality >= 90 {
                turbojpeg::Subsamp::None
            } else {
                turbojpeg::Subsamp::Sub2x2
            };
            compressor.set_subsamp(subsamp).map_err(|e| failed(&e))?;
            // Optimised Huffman tables: a few percent smaller for a second pass over the
            // coefficients, cheap at output sizes.
            compressor.set_optimize(true).map_err(|e| failed(&e))?;
            let pitch = w as usize * 3;
            compressor
                .compress_to_vec(turbojpeg::Image {
                    pixels: rgb.as_raw().as_slice(),
                    width: w as usize,
                    pitch,
                    height: h as usize,
                    format: turbojpeg::PixelFormat::RGB,
                })
                .map_err(|e| failed(&e))
        }
        OutputFormat::Webp => {
            let quality = f32::from(params.quality);
            let memory = if image.color().has_alpha() {
                let rgba = image.to_rgba8();
                webp::Encoder::from_rgba(rgba.as_raw(), w, h).encode(quality)
            } else {
                match image {
                    DynamicImage::ImageRgb8(rgb) => {
                        webp::Encoder::from_rgb(rgb.as_raw(), w, h).encode(quality)
                    }
                    other => {
                        let rgb = other.to_rgb8();
                        webp::Encoder::from_rgb(rgb.as_raw(), w, h).encode(quality)
                    }
                }
            };
            Ok(memory.to_vec())
        }
        OutputFormat::Png => {
            let mut out = Vec::new();
            let (bytes, color) = if image.color().has_alpha() {
                (image.to_rgba8().into_raw(), image::ExtendedColorType::Rgba8)
            } else {
                (image.to_rgb8().into_raw(), image::ExtendedColorType::Rgb8)
            };
            image::codecs::png::PngEncoder::new(&mut out)
                .write_image(&bytes, w, h, color)
                .map_err(|e| failed(&e))?;
            Ok(out)
        }
        OutputFormat::Gif => {
            let mut out = Vec::new();
            let rgba = image.to_rgba8();
            image::codecs::gif::GifEncoder::new(&mut out)
                .encode(rgba.as_raw(), w, h, image::ExtendedColorType::Rgba8)
                .map_err(|e| failed(&e))?;
            Ok(out)
        }
        OutputFormat::Avif => avif(image, params.quality, AVIF_SPEED),
    }
}

/// rav1e's speed preset for AVIF (1 slowest … 10 fastest). 800-wide, q80, one core: 10 encodes
/// the detailed wallpaper in 0.29 s where 9 takes 0.84 s and ravif's default (5) 2.6 s, for 23 %
/// more bytes than 9. A miss must answer within the request, on a Lambda core slower than this
/// machine's, so the speed wins; BENCH.md ("AVIF encoder speed") has the whole measurement.
pub const AVIF_SPEED: u8 = 10;

/// AVIF through ravif (rav1e), on the calling thread: ravif is built without its `threading`
/// feature, and one thread is asked for so that a build that turns it on still spawns none.
/// 4:4:4 at 10 bits, ravif's choice for 8-bit sources (fewer banding steps for the same bytes).
/// RGBA whose alpha is all opaque is written without an alpha plane.
pub fn avif(image: &DynamicImage, quality: u8, speed: u8) -> Result<Vec<u8>, Error> {
    use rgb::FromSlice;
    let failed = |e: &dyn std::fmt::Display| Error::Encode(e.to_string());
    let (w, h) = (image.width() as usize, image.height() as usize);
    let quality = f32::from(quality.clamp(1, 100));
    let encoder = ravif::Encoder::new()
        .with_quality(quality)
        .with_alpha_quality(quality)
        .with_speed(speed.clamp(1, 10))
        .with_num_threads(Some(1));
    let encoded = match image {
        DynamicImage::ImageRgb8(rgb) => {
            encoder.encode_rgb(ravif::Img::new(rgb.as_raw().as_rgb(), w, h))
        }
        DynamicImage::ImageRgba8(rgba) => {
            encoder.encode_rgba(ravif::Img::new(rgba.as_raw().as_rgba(), w, h))
        }
        other if other.color().has_alpha() => {
            let rgba = other.to_rgba8();
            encoder.encode_rgba(ravif::Img::new(rgba.as_raw().as_rgba(), w, h))
        }
        other => {
            let rgb = other.to_rgb8();
            encoder.encode_rgb(ravif::Img::new(rgb.as_raw().as_rgb(), w, h))
        }
    }
    .map_err(|e| failed(&e))?;
    Ok(encoded.avif_file)
}
