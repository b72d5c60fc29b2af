//! Image transforms for delivery URLs (issue 18). Only the deliver function links this crate.
//!
//! - [`params`]: the URL's transform parameters, parsed and range-checked ([`Params`]).
//! - [`decode`]: the source's format and size from its header (the pixel limit is checked there,
//!   before any pixel is allocated), its EXIF orientation, and the decode itself, with JPEG
//!   shrink-on-load in libjpeg-turbo's IDCT.
//! - [`geometry`]: what size to resize to and what to crop or pad, per fit mode.
//! - [`effects`]: crop windows (gravity, entropy, attention), padding, rotate, flip, grayscale,
//!   blur, sharpen, alpha flattening.
//! - [`encode`]: JPEG (libjpeg-turbo), WebP (libwebp), AVIF (rav1e via ravif), PNG and GIF.
//!   Nothing of the source's metadata is written: no EXIF, no GPS, no ICC, no comments.
//!
//! [`transform`] runs them in that order: decode → resize (fast_image_resize, Lanczos3) → orient
//! → crop/pad → effects → encode.
//!
//! AVIF is written but not read: an AVIF source is refused as [`Error::NotAnImage`], whose message
//! names the formats that are decoded. The AV1 decoders on crates.io do not fit yet (checked
//! 2026-12): `image`'s `avif-native` binds the dav1d C library through pkg-config, which the
//! arm64 Lambda cross-build (cargo-lambda with zig) has no copy of; `rav1d` 1.1, dav1d ported to
//! Rust, cross-builds for arm64 only without its assembly (the published crate lacks the
//! `src/arm/asm-offsets.h` its NEON files include) and exposes only dav1d's C API
//! (`unsafe extern "C" fn dav1d_open`, …), which this crate would have to wrap in its own unsafe
//! code; the crate that wraps it for AVIF (`avif-decode` 3) needs Rust 1.98, newer than the
//! workspace's toolchain; `avif-decode` 1 binds libaom, C again. `avif-decode` 3 over `rav1d` is
//! the candidate once the toolchain allows it.

pub mod decode;
pub mod effects;
pub mod encode;
pub mod geometry;
/// The parameters are `shared`'s: routes that only sign a URL check them without this crate.
pub use shared::transform as params;

pub use decode::{MAX_SOURCE_PIXELS, decodes};
pub use params::{Crop, Fit, Flip, Format, Gravity, OutputFormat, ParamError, Params};

use fast_image_resize as fr;
use image::DynamicImage;

/// Why a transform did not produce an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is invalid (400 INVALID_PARAMS naming it).
    #[error(transparent)]
    Params(#[from] ParamError),
    /// The asset is not an image this crate decodes (400).
    #[error("the asset is not an image in a format that can be transformed (JPEG, PNG, GIF, WebP)")]
    NotAnImage,
    /// The source's header declares more pixels than a transform decodes (400).
    #[error("the image is {width}×{height}; transforms decode at most {limit} pixels")]
    TooLarge { width: u64, height: u64, limit: u64 },
    /// The source claims a format but does not decode (400).
    #[error("the image does not decode: {0}")]
    Corrupt(String),
    /// An encoder failed on pixels we made: our fault (500).
    #[error("encoding failed: {0}")]
    Encode(String),
}

impl Error {
    /// Whether the request is at fault (the API answers 400 with the message, INVALID_PARAMS for
    /// a parameter) rather than this crate (500). Every source and parameter problem is the
    /// request's: only an encoder failing on pixels we produced is not.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, Error::Encode(_))
    }

    /// The parameter at fault, for INVALID_PARAMS.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            Error::Params(e) => Some(e.param),
            _ => None,
        }
    }
}

/// An encoded variant.
#[derive(Debug)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
}

/// Transforms `source` as `params` ask. `accepts` is what the client decodes (its `Accept`
/// header, or the CDN's class of it), read only for `format=auto`.
pub fn transform(
    source: &[u8],
    params: &Params,
    accepts: impl Into<params::Accepts>,
) -> Result<Output, Error> {
    let probe = decode::probe(source)?;
    let format = params.output_format(probe.format, probe.has_alpha, accepts);
    let plan = geometry::plan(params, probe.oriented_size())?;
    // The resize runs before the EXIF rotation (on the smaller image), so in the stored
    // orientation.
    let stored_resize = probe.orientation.unorient(plan.resize);
    let decoded = decode::decode(source, &probe, stored_resize)?;
    let resized = resize(decoded, stored_resize)?;
    let mut image = effects::orient(resized, probe.orientation);
    if let Some(window) = plan.crop {
        image = effects::crop(image, window, params);
    }
    if let Some(canvas) = plan.pad {
        image = effects::pad(image, canvas, params);
    }
    image = effects::apply(image, params);
    let bytes = encode::encode(&image, format, params)?;
    Ok(Output {
        bytes,
        format,
        width: image.width(),
        height: image.height(),
    })
}

/// Decoded pixels, 8 bits per channel, 3 (RGB) or 4 (RGBA) channels.
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub alpha: bool,
    pub data: Vec<u8>,
}

impl Pixels {
    fn into_image(self) -> Result<DynamicImage, Error> {
        let bad = || Error::Encode("pixel buffer does not match its size".into());
        Ok(if self.alpha {
            DynamicImage::ImageRgba8(
                image::RgbaImage::from_raw(self.width, self.height, self.data).ok_or_else(bad)?,
            )
        } else {
            DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(self.width, self.height, self.data).ok_or_else(bad)?,
            )
        })
    }
}

/// Lanczos3 in sRGB, as libvips's thumbnail does by default.
fn resize(pixels: Pixels, (width, height): (u32, u32)) -> Result<DynamicImage, Error> {
    if (pixels.width, pixels.height) == (width, height) {
        return pixels.into_image();
    }
    let kind = if pixels.alpha {
        fr::PixelType::U8x4
    } else {
        fr::PixelType::U8x3
    };
    let alpha = pixels.alpha;
    let failed = |e: &dyn std::fmt::Display| Error::Encode(e.to_string());
    let mut src = fr::images::Image::from_vec_u8(pixels.width, pixels.height, pixels.data, kind)
        .map_err(|e| failed(&e))?;
    let mut dst = fr::images::Image::new(width, height, kind);
    // Alpha is premultiplied in place, in the decoded buffer we own, rather than by the resizer,
    // which would premultiply into a second buffer the size of the source: 200 MB more at the
    // 50-megapixel limit, the difference between fitting a 512 MB function and not (BENCH.md).
    let mul_div = fr::MulDiv::default();
    if alpha {
        mul_div
            .multiply_alpha_inplace(&mut src)
            .map_err(|e| failed(&e))?;
    }
    fr::Resizer::new()
        .resize(
            &src,
            &mut dst,
            &fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3))
                .use_alpha(false),
        )
        .map_err(|e| failed(&e))?;
    drop(src);
    if alpha {
        mul_div
            .divide_alpha_inplace(&mut dst)
            .map_err(|e| failed(&e))?;
    }
    Pixels {
        width,
        height,
        alpha,
        data: dst.into_vec(),
    }
    .into_image()
}
