//! Reading a source: its format, size and orientation from the header, then its pixels.

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};

use image::ImageDecoder;
use image::metadata::Orientation;

use crate::{Error, OutputFormat, Pixels};

/// The most pixels a source may declare: 50 megapixels (an 8K photo is 33), 200 MB as RGBA,
/// which a 1,769 MB function (one full vCPU) holds with its output. A JPEG shrunk on load
/// allocates far less, but the limit is on the header's size so that it is known before any
/// decoding starts.
pub const MAX_SOURCE_PIXELS: u64 = 50_000_000;

/// What the header says.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub format: OutputFormat,
    /// As stored, before the EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    pub orientation: Oriented,
}

impl Probe {
    /// The size as displayed, after the EXIF orientation.
    pub fn oriented_size(&self) -> (u32, u32) {
        self.orientation.orient((self.width, self.height))
    }
}

/// The EXIF orientation of a source (1, the identity, when it has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oriented(pub Orientation);

impl Oriented {
    /// Whether the orientation turns the image a quarter (EXIF 5–8), swapping its sides.
    pub fn swaps(self) -> bool {
        matches!(
            self.0,
            Orientation::Rotate90
                | Orientation::Rotate270
                | Orientation::Rotate90FlipH
                | Orientation::Rotate270FlipH
        )
    }

    pub fn orient(self, (w, h): (u32, u32)) -> (u32, u32) {
        if self.swaps() { (h, w) } else { (w, h) }
    }

    /// The stored size that becomes `size` once oriented (a quarter turn is its own inverse for sizes).
    pub fn unorient(self, size: (u32, u32)) -> (u32, u32) {
        self.orient(size)
    }
}

/// Format, size, alpha and orientation, from the header alone: nothing the size of the image is
/// allocated before the pixel limit is checked.
pub fn probe(source: &[u8]) -> Result<Probe, Error> {
    let format = match image::guess_format(source) {
        Ok(image::ImageFormat::Jpeg) => OutputFormat::Jpeg,
        Ok(image::ImageFormat::Png) => OutputFormat::Png,
        Ok(image::ImageFormat::Gif) => OutputFormat::Gif,
        Ok(image::ImageFormat::WebP) => OutputFormat::Webp,
        _ => return Err(Error::NotAnImage),
    };
    let (width, height) = match format {
        // libjpeg-turbo's own reading of the frame header: the one that would allocate.
        OutputFormat::Jpeg => {
            let header = turbojpeg::read_header(source).map_err(corrupt)?;
            (header.width as u64, header.height as u64)
        }
        _ => {
            let size = imagesize::blob_size(source).map_err(corrupt)?;
            (size.width as u64, size.height as u64)
        }
    };
    if width == 0 || height == 0 {
        return Err(Error::Corrupt("the header declares an empty image".into()));
    }
    if width * height > MAX_SOURCE_PIXELS {
        return Err(Error::TooLarge {
            width,
            height,
            limit: MAX_SOURCE_PIXELS,
        });
    }
    let has_alpha = match format {
        // A JPEG has no alpha; the other decoders read their header only here.
        OutputFormat::Jpeg => false,
        _ => reader(source)?
            .into_decoder()
            .map_err(corrupt)?
            .color_type()
            .has_alpha(),
    };
    Ok(Probe {
        format,
        width: width as u32,
        height: height as u32,
        has_alpha,
        orientation: Oriented(orientation(source)),
    })
}

/// The EXIF orientation, from the file's EXIF block wherever its container keeps it (JPEG APP1,
/// PNG eXIf, WebP EXIF). A missing or unreadable block means upright.
fn orientation(source: &[u8]) -> Orientation {
    let Ok(exif) = exif::Reader::new().read_from_container(&mut Cursor::new(source)) else {
        return Orientation::NoTransforms;
    };
    exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .and_then(|field| field.value.get_uint(0))
        .and_then(|n| u8::try_from(n).ok())
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms)
}

fn corrupt(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(e.to_string())
}

fn reader(source: &[u8]) -> Result<image::ImageReader<Cursor<&[u8]>>, Error> {
    let mut reader = image::ImageReader::new(Cursor::new(source))
        .with_guessed_format()
        .map_err(corrupt)?;
    // A second guard behind the header check: the decoders refuse to allocate past it.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(u32::MAX);
    limits.max_image_height = Some(u32::MAX);
    limits.max_alloc = Some(MAX_SOURCE_PIXELS * 4 + (1 << 20));
    reader.limits(limits);
    Ok(reader)
}

/// Sources decoded by this process. The variant-hit benchmark reads it: a hit serves stored
/// bytes, so it must not move.
static DECODES: AtomicU64 = AtomicU64::new(0);

/// How many sources this process has decoded (see [`decode`]).
pub fn decodes() -> u64 {
    DECODES.load(Ordering::Relaxed)
}

/// Decodes the pixels, for a resize to `target` (in the stored orientation). A JPEG is scaled in
/// its IDCT by 1/2, 1/4 or 1/8 when the resize still has a factor of two left to do.
pub fn decode(source: &[u8], probe: &Probe, target: (u32, u32)) -> Result<Pixels, Error> {
    DECODES.fetch_add(1, Ordering::Relaxed);
    match probe.format {
        OutputFormat::Jpeg => decode_jpeg(source, (probe.width, probe.height), target),
        _ => {
            let image = reader(source)?.decode().map_err(|e| match e {
                image::ImageError::Limits(_) => Error::TooLarge {
                    width: probe.width.into(),
                    height: probe.height.into(),
                    limit: MAX_SOURCE_PIXELS,
                },
                e => corrupt(e),
            })?;
            let (width, height) = (image.width(), image.height());
            Ok(if probe.has_alpha {
                Pixels {
                    width,
                    height,
                    alpha: true,
                    data: image.into_rgba8().into_raw(),
                }
            } else {
                Pixels {
                    width,
                    height,
                    alpha: false,
                    data: image.into_rgb8().into_raw(),
                }
            })
        }
    }
}

/// How much of the reduction the resize keeps after a JPEG's shrink-on-load: the IDCT's scaling
/// is close to a block average, which aliases if it does the whole reduction. 2, libvips's
/// choice (its thumbnail shrinks on load by 8 from a shrink of 16, by 4 from 8, by 2 from 4).
pub const SHRINK_HEADROOM: f64 = 2.0;

/// The IDCT scale for a JPEG of `source` size resized to `target` (see [`SHRINK_HEADROOM`]).
pub fn jpeg_scale(source: (u32, u32), target: (u32, u32)) -> turbojpeg::ScalingFactor {
    let shrink = f64::min(
        f64::from(source.0) / f64::from(target.0.max(1)),
        f64::from(source.1) / f64::from(target.1.max(1)),
    );
    for denom in [8, 4, 2] {
        if shrink >= SHRINK_HEADROOM * denom as f64 {
            return turbojpeg::ScalingFactor::new(1, denom);
        }
    }
    turbojpeg::ScalingFactor::ONE
}

fn decode_jpeg(source: &[u8], size: (u32, u32), target: (u32, u32)) -> Result<Pixels, Error> {
    let mut decompressor = turbojpeg::Decompressor::new().map_err(corrupt)?;
    let header = decompressor.read_header(source).map_err(corrupt)?;
    let scale = jpeg_scale(size, target);
    let header = if header.is_lossless {
        header
    } else {
        decompressor.set_scaling_factor(scale).map_err(corrupt)?;
        header.scaled(scale)
    };
    let format = turbojpeg::PixelFormat::RGB;
    let pitch = header.width * format.size();
    let mut image = turbojpeg::Image {
        pixels: vec![0u8; pitch * header.height],
        width: header.width,
        pitch,
        height: header.height,
        format,
    };
    decompressor
        .decompress(source, image.as_deref_mut())
        .map_err(corrupt)?;
    Ok(Pixels {
        width: header.width as u32,
        height: header.height as u32,
        alpha: false,
        data: image.pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use turbojpeg::ScalingFactor;

    #[test]
    fn shrink_on_load_leaves_the_resize_a_factor_of_two() {
        let photo = (5120, 2880);
        // 5120 → 800 is a shrink of 6.4: decode at 1/2 (2560 wide), Lanczos does 3.2.
        assert_eq!(jpeg_scale(photo, (800, 450)), ScalingFactor::new(1, 2));
        assert_eq!(jpeg_scale(photo, (640, 360)), ScalingFactor::new(1, 4));
        assert_eq!(jpeg_scale(photo, (320, 180)), ScalingFactor::new(1, 8));
        assert_eq!(jpeg_scale(photo, (1500, 844)), ScalingFactor::ONE);
        // The side with less to shrink decides (fit=fill may stretch one side).
        assert_eq!(jpeg_scale(photo, (320, 1000)), ScalingFactor::ONE);
    }
}
