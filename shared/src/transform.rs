//! The transform parameters of a delivery URL, parsed and range-checked before any byte of the
//! source is read. A bad value is a [`ParamError`] naming the parameter, which the API answers
//! with 400 INVALID_PARAMS (docs/API.md#transforms).
//!
//! Only the parameters live here, so that the routes which sign a transform URL (`asset_url`)
//! check them without linking the pixels: decoding, resizing and encoding are the
//! `imgbt-transform` crate's, which only `deliver` links.

use std::fmt;

/// The largest `w` and `h` a URL may ask for.
pub const MAX_SIDE: u32 = 8192;
/// The largest output, in pixels: (w×dpr) × (h×dpr).
pub const MAX_OUTPUT_PIXELS: u64 = 25_000_000;
/// The quality when a URL gives none (libvips's `Q` default is 75; 80 is what most image CDNs use).
pub const DEFAULT_QUALITY: u8 = 80;

/// A parameter whose value is out of range or not one of its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {reason}")]
pub struct ParamError {
    /// The canonical name (`format`, never its alias `f`).
    pub param: &'static str,
    pub reason: String,
}

impl ParamError {
    pub fn new(param: &'static str, reason: impl Into<String>) -> Self {
        Self {
            param,
            reason: reason.into(),
        }
    }
}

/// How the image fills a `w`×`h` box (the names and meanings of sharp's `fit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Scaled to cover the box, then cropped to it (by `gravity` or `crop`).
    #[default]
    Cover,
    /// Scaled to fit inside the box, then padded to it with `bg`.
    Contain,
    /// Stretched to the box, aspect ratio ignored.
    Fill,
    /// Scaled to fit inside the box; no padding, so one side may be smaller.
    Inside,
    /// Scaled to cover the box; no cropping, so one side may be larger.
    Outside,
}

/// An output format a URL may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Webp,
    Avif,
    Png,
    Jpeg,
    Gif,
    /// AVIF or WebP if the request's `Accept` takes them, else the source's format (or JPEG); see
    /// [`Params::output_format`].
    Auto,
}

/// A concrete format: what [`Format::Auto`] resolves to, or a source's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Webp,
    Avif,
    Png,
    Jpeg,
    Gif,
}

impl OutputFormat {
    pub fn mime(self) -> &'static str {
        match self {
            Self::Webp => "image/webp",
            Self::Avif => "image/avif",
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Webp => "webp",
            Self::Avif => "avif",
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Gif => "gif",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flip {
    Horizontal,
    Vertical,
}

/// Content-aware cropping for `fit=cover` (libvips's smartcrop strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crop {
    /// Keeps the window with the most detail (Shannon entropy of the luminance histogram).
    Entropy,
    /// Keeps the window most likely to draw the eye: skin tones, saturated colour, edges.
    Attention,
}

/// Where a crop or a pad anchors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gravity {
    #[default]
    Center,
    North,
    NorthEast,
    East,
    SouthEast,
    South,
    SouthWest,
    West,
    NorthWest,
    /// The smart values: the same as `crop=entropy` / `crop=attention`.
    Smart(Crop),
}

impl Gravity {
    /// The anchor as fractions of the free space, (0, 0) the top left, (1, 1) the bottom right.
    pub fn anchor(self) -> (f64, f64) {
        match self {
            Self::Center | Self::Smart(_) => (0.5, 0.5),
            Self::North => (0.5, 0.0),
            Self::NorthEast => (1.0, 0.0),
            Self::East => (1.0, 0.5),
            Self::SouthEast => (1.0, 1.0),
            Self::South => (0.5, 1.0),
            Self::SouthWest => (0.0, 1.0),
            Self::West => (0.0, 0.5),
            Self::NorthWest => (0.0, 0.0),
        }
    }
}

/// Every transform a URL asked for. `Params::default()` is the identity (re-encoded).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Device pixel ratio: `w` and `h` are CSS pixels, the output is `w×dpr` by `h×dpr`.
    pub dpr: f32,
    pub fit: Fit,
    /// `None`: the source's format.
    pub format: Option<Format>,
    pub quality: u8,
    /// Gaussian blur, 1–100; the sigma is half the value.
    pub blur: Option<u8>,
    /// Unsharp mask, 1–100.
    pub sharpen: Option<u8>,
    /// Clockwise, after EXIF orientation and resizing: 0, 90, 180 or 270.
    pub rotate: u16,
    pub flip: Option<Flip>,
    pub grayscale: bool,
    pub crop: Option<Crop>,
    pub gravity: Gravity,
    /// Padding for `fit=contain`, and what alpha is flattened onto for JPEG. White unless given.
    pub background: [u8; 3],
}

impl Default for Params {
    fn default() -> Self {
        Self {
            width: None,
            height: None,
            dpr: 1.0,
            fit: Fit::Cover,
            format: None,
            quality: DEFAULT_QUALITY,
            blur: None,
            sharpen: None,
            rotate: 0,
            flip: None,
            grayscale: false,
            crop: None,
            gravity: Gravity::Center,
            background: [255, 255, 255],
        }
    }
}

/// The crop modes that exist, for the answer to one that does not.
const CROP_MODES: &str = "entropy, attention";

impl Params {
    /// Parses a URL's query pairs. Names are matched case-insensitively and the short aliases
    /// (`f`, `q`, `rt`, `g`) are accepted, as `shared::delivery::normalise` leaves them; names
    /// that are not transforms (`exp`, `sig`, anything unknown) are ignored here.
    pub fn parse<'a, I>(pairs: I) -> Result<Self, ParamError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut params = Self::default();
        for (name, value) in pairs {
            let name = name.to_ascii_lowercase();
            match name.as_str() {
                "w" => params.width = Some(side("w", value)?),
                "h" => params.height = Some(side("h", value)?),
                "dpr" => params.dpr = dpr(value)?,
                "fit" => params.fit = fit(value)?,
                "format" | "f" => params.format = Some(format(value)?),
                "quality" | "q" => params.quality = percent("quality", value)?,
                "blur" => params.blur = Some(percent("blur", value)?),
                "sharpen" => params.sharpen = Some(percent("sharpen", value)?),
                "rotate" | "rt" => params.rotate = rotate(value)?,
                "flip" => params.flip = Some(flip(value)?),
                "grayscale" => params.grayscale = flag("grayscale", value)?,
                "crop" => params.crop = Some(crop(value)?),
                "gravity" | "g" => params.gravity = gravity(value)?,
                "bg" => params.background = hex("bg", value)?,
                _ => {}
            }
        }
        if let (Some(w), Some(h)) = params.target() {
            check_output("w", w, h)?;
        }
        Ok(params)
    }

    /// `w×dpr` and `h×dpr`, rounded, as given (either may be missing).
    pub fn target(&self) -> (Option<u32>, Option<u32>) {
        let scale = |side: u32| ((side as f32 * self.dpr).round() as u32).max(1);
        (self.width.map(scale), self.height.map(scale))
    }

    /// The strategy a `fit=cover` crop uses: `crop` if given, else a smart `gravity`.
    pub fn smart_crop(&self) -> Option<Crop> {
        self.crop.or(match self.gravity {
            Gravity::Smart(crop) => Some(crop),
            _ => None,
        })
    }

    /// The format to encode. `format=auto` takes AVIF if the client accepts it, else WebP if it
    /// accepts WebP, else the source's format when it is one every browser shows (JPEG, PNG, GIF), else JPEG (PNG when
    /// the image has alpha, which JPEG would lose). A response chosen this way varies with
    /// `Accept` (`Vary: Accept`).
    pub fn output_format(
        &self,
        source: OutputFormat,
        has_alpha: bool,
        accepts: impl Into<Accepts>,
    ) -> OutputFormat {
        match self.format {
            Some(Format::Webp) => OutputFormat::Webp,
            Some(Format::Avif) => OutputFormat::Avif,
            Some(Format::Png) => OutputFormat::Png,
            Some(Format::Jpeg) => OutputFormat::Jpeg,
            Some(Format::Gif) => OutputFormat::Gif,
            None => source,
            Some(Format::Auto) => match accepts.into() {
                Accepts::Avif => OutputFormat::Avif,
                Accepts::Webp => OutputFormat::Webp,
                Accepts::Other => match source {
                    OutputFormat::Jpeg | OutputFormat::Png | OutputFormat::Gif => source,
                    _ if has_alpha => OutputFormat::Png,
                    _ => OutputFormat::Jpeg,
                },
            },
        }
    }

    /// The parameters in one fixed spelling: two URLs that ask for the same transform (aliases,
    /// order, `w=0800`, `grayscale=1`) give the same text. A stored variant's key is a digest of
    /// it (`crate::variants`).
    pub fn canonical(&self) -> String {
        let bg = self.background;
        format!(
            "w={:?};h={:?};dpr={};fit={:?};format={:?};q={};blur={:?};sharpen={:?};rotate={};\
             flip={:?};grayscale={};crop={:?};gravity={:?};bg={:02x}{:02x}{:02x}",
            self.width,
            self.height,
            self.dpr,
            self.fit,
            self.format,
            self.quality,
            self.blur,
            self.sharpen,
            self.rotate,
            self.flip,
            self.grayscale,
            self.crop,
            self.gravity,
            bg[0],
            bg[1],
            bg[2],
        )
    }

    /// Whether the answer depends on the request's `Accept` (so it must carry `Vary: Accept`).
    pub fn varies_with_accept(&self) -> bool {
        self.format == Some(Format::Auto)
    }
}

/// What a client decodes, as far as `format=auto` asks: AVIF (and so WebP), WebP, or neither.
/// Read from `Accept`, or behind the CDN from its `accept` parameter ([`Accepts::from_edge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepts {
    Avif,
    Webp,
    Other,
}

impl Accepts {
    /// From an `Accept` header (none: neither).
    pub fn from_header(accept: Option<&str>) -> Self {
        let accept = accept.unwrap_or("");
        if accepts(accept, "image/avif") {
            Self::Avif
        } else if accepts(accept, "image/webp") {
            Self::Webp
        } else {
            Self::Other
        }
    }

    /// From the `accept` parameter the CDN's viewer function appends for `format=auto`
    /// (`avif`, `webp` or `jpg`): the CDN forwards no headers, so this stands for `Accept`.
    pub fn from_edge(value: &str) -> Option<Self> {
        match value {
            "avif" => Some(Self::Avif),
            "webp" => Some(Self::Webp),
            "jpg" => Some(Self::Other),
            _ => None,
        }
    }

    /// The class as the CDN spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Avif => "avif",
            Self::Webp => "webp",
            Self::Other => "jpg",
        }
    }
}

impl From<Option<&str>> for Accepts {
    fn from(accept: Option<&str>) -> Self {
        Self::from_header(accept)
    }
}

/// Whether an `Accept` header names `wanted` exactly with a non-zero q. Wildcards do not count:
/// browsers send `*/*` with every image request, and it does not mean they decode WebP.
fn accepts(accept: &str, wanted: &str) -> bool {
    accept.split(',').any(|range| {
        let Ok(mime) = range.trim().parse::<mime::Mime>() else {
            return false;
        };
        let q = mime
            .get_param("q")
            .map_or(Some(1.0), |q| q.as_str().parse::<f32>().ok());
        mime.essence_str().eq_ignore_ascii_case(wanted) && q.is_some_and(|q| q > 0.0)
    })
}

/// Refuses an output larger than [`MAX_OUTPUT_PIXELS`], naming `param`.
pub fn check_output(param: &'static str, w: u32, h: u32) -> Result<(), ParamError> {
    if u64::from(w) * u64::from(h) > MAX_OUTPUT_PIXELS {
        return Err(ParamError::new(
            param,
            format!(
                "the output would be {w}×{h} pixels (w×dpr by h×dpr); at most {MAX_OUTPUT_PIXELS} pixels"
            ),
        ));
    }
    Ok(())
}

/// A whole number written in decimal digits only: no sign, no spaces, no fraction.
fn number(param: &'static str, value: &str) -> Result<u32, ParamError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParamError::new(
            param,
            format!("{value:?} is not a whole number"),
        ));
    }
    value
        .parse()
        .map_err(|_| ParamError::new(param, format!("{value:?} is too large")))
}

fn side(param: &'static str, value: &str) -> Result<u32, ParamError> {
    let n = number(param, value)?;
    if !(1..=MAX_SIDE).contains(&n) {
        return Err(ParamError::new(
            param,
            format!("{n} is out of range 1–{MAX_SIDE}"),
        ));
    }
    Ok(n)
}

fn percent(param: &'static str, value: &str) -> Result<u8, ParamError> {
    let n = number(param, value)?;
    if !(1..=100).contains(&n) {
        return Err(ParamError::new(param, format!("{n} is out of range 1–100")));
    }
    Ok(n as u8)
}

fn dpr(value: &str) -> Result<f32, ParamError> {
    // Decimal notation only ("1.5"): Rust's float parser also takes "inf", "NaN" and "1e0".
    let decimal = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && value.bytes().filter(|b| *b == b'.').count() <= 1
        && value.bytes().any(|b| b.is_ascii_digit());
    let parsed = if decimal {
        value.parse::<f32>().ok()
    } else {
        None
    };
    match parsed {
        Some(n) if (1.0..=3.0).contains(&n) => Ok(n),
        Some(n) => Err(ParamError::new("dpr", format!("{n} is out of range 1–3"))),
        None => Err(ParamError::new(
            "dpr",
            format!("{value:?} is not a number such as 1, 1.5 or 2"),
        )),
    }
}

fn one_of<T: Copy>(param: &'static str, value: &str, words: &[(&str, T)]) -> Result<T, ParamError> {
    let lower = value.to_ascii_lowercase();
    words
        .iter()
        .find(|(word, _)| *word == lower)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
            ParamError::new(
                param,
                format!("{value:?} is not one of {}", names.join(", ")),
            )
        })
}

fn fit(value: &str) -> Result<Fit, ParamError> {
    one_of(
        "fit",
        value,
        &[
            ("cover", Fit::Cover),
            ("contain", Fit::Contain),
            ("fill", Fit::Fill),
            ("inside", Fit::Inside),
            ("outside", Fit::Outside),
        ],
    )
}

fn format(value: &str) -> Result<Format, ParamError> {
    one_of(
        "format",
        value,
        &[
            ("webp", Format::Webp),
            ("avif", Format::Avif),
            ("png", Format::Png),
            ("jpg", Format::Jpeg),
            ("jpeg", Format::Jpeg),
            ("gif", Format::Gif),
            ("auto", Format::Auto),
        ],
    )
}

fn rotate(value: &str) -> Result<u16, ParamError> {
    match number("rotate", value)? {
        n @ (0 | 90 | 180 | 270) => Ok(n as u16),
        n => Err(ParamError::new(
            "rotate",
            format!("{n} is not one of 0, 90, 180, 270"),
        )),
    }
}

fn flip(value: &str) -> Result<Flip, ParamError> {
    one_of(
        "flip",
        value,
        &[("h", Flip::Horizontal), ("v", Flip::Vertical)],
    )
}

/// `grayscale` alone (an empty value) turns it on, as do `true` and `1`.
fn flag(param: &'static str, value: &str) -> Result<bool, ParamError> {
    one_of(
        param,
        value,
        &[
            ("", true),
            ("true", true),
            ("1", true),
            ("false", false),
            ("0", false),
        ],
    )
}

fn crop(value: &str) -> Result<Crop, ParamError> {
    match value.to_ascii_lowercase().as_str() {
        "entropy" => Ok(Crop::Entropy),
        "attention" => Ok(Crop::Attention),
        // No face detector ships through the package registries with its model inside and fits
        // a Lambda (rustface needs its model downloaded separately), so these are refused.
        mode @ ("face" | "auto") => Err(ParamError::new(
            "crop",
            format!("{mode} is not available; the crop modes are {CROP_MODES}"),
        )),
        _ => Err(ParamError::new(
            "crop",
            format!("{value:?} is not a crop mode; the crop modes are {CROP_MODES}"),
        )),
    }
}

fn gravity(value: &str) -> Result<Gravity, ParamError> {
    one_of(
        "gravity",
        value,
        &[
            ("center", Gravity::Center),
            ("centre", Gravity::Center),
            ("north", Gravity::North),
            ("northeast", Gravity::NorthEast),
            ("east", Gravity::East),
            ("southeast", Gravity::SouthEast),
            ("south", Gravity::South),
            ("southwest", Gravity::SouthWest),
            ("west", Gravity::West),
            ("northwest", Gravity::NorthWest),
            ("entropy", Gravity::Smart(Crop::Entropy)),
            ("attention", Gravity::Smart(Crop::Attention)),
        ],
    )
}

/// Six hex digits, `#` in front allowed (written `%23` in a URL).
fn hex(param: &'static str, value: &str) -> Result<[u8; 3], ParamError> {
    let digits = value.strip_prefix('#').unwrap_or(value);
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ParamError::new(
            param,
            format!("{value:?} is not a colour of six hex digits such as ff8800"),
        ));
    }
    let byte = |i: usize| u8::from_str_radix(&digits[i..i + 2], 16).expect("checked hex digits");
    Ok([byte(0), byte(2), byte(4)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<Params, ParamError> {
        Params::parse(query.iter().copied())
    }

    fn refused(query: &[(&str, &str)]) -> &'static str {
        match parse(query) {
            Err(e) => e.param,
            Ok(p) => panic!("{query:?} was accepted as {p:?}"),
        }
    }

    #[test]
    fn sides_are_1_to_8192() {
        assert_eq!(parse(&[("w", "1")]).unwrap().width, Some(1));
        assert_eq!(parse(&[("w", "8192")]).unwrap().width, Some(8192));
        assert_eq!(parse(&[("h", "600")]).unwrap().height, Some(600));
        for bad in [
            "0",
            "8193",
            "-5",
            "+5",
            "1.5",
            "",
            "abc",
            " 5",
            "99999999999",
        ] {
            assert_eq!(refused(&[("w", bad)]), "w", "w={bad}");
            assert_eq!(refused(&[("h", bad)]), "h", "h={bad}");
        }
    }

    #[test]
    fn dpr_is_1_to_3() {
        assert_eq!(parse(&[("dpr", "1")]).unwrap().dpr, 1.0);
        assert_eq!(parse(&[("dpr", "1.5")]).unwrap().dpr, 1.5);
        assert_eq!(parse(&[("dpr", "3")]).unwrap().dpr, 3.0);
        for bad in [
            "0.5", "3.01", "0", "inf", "NaN", "1e0", "", "2x", "1..5", ".",
        ] {
            assert_eq!(refused(&[("dpr", bad)]), "dpr", "dpr={bad}");
        }
    }

    #[test]
    fn effective_size_is_at_most_25_megapixels() {
        // 5000×5000 is exactly the limit; dpr multiplies both sides.
        assert!(parse(&[("w", "5000"), ("h", "5000")]).is_ok());
        assert_eq!(refused(&[("w", "5000"), ("h", "5001")]), "w");
        assert!(parse(&[("w", "2500"), ("h", "2500"), ("dpr", "2")]).is_ok());
        assert_eq!(refused(&[("w", "2500"), ("h", "2501"), ("dpr", "2")]), "w");
        assert_eq!(
            parse(&[("w", "400"), ("dpr", "2")]).unwrap().target(),
            (Some(800), None)
        );
    }

    #[test]
    fn fit_modes() {
        for (word, fit) in [
            ("cover", Fit::Cover),
            ("contain", Fit::Contain),
            ("fill", Fit::Fill),
            ("inside", Fit::Inside),
            ("outside", Fit::Outside),
            ("COVER", Fit::Cover),
        ] {
            assert_eq!(parse(&[("fit", word)]).unwrap().fit, fit);
        }
        assert_eq!(parse(&[]).unwrap().fit, Fit::Cover);
        for bad in ["scale-down", "", "crop"] {
            assert_eq!(refused(&[("fit", bad)]), "fit");
        }
    }

    #[test]
    fn formats_and_the_alias() {
        for (word, format) in [
            ("webp", Format::Webp),
            ("avif", Format::Avif),
            ("png", Format::Png),
            ("jpg", Format::Jpeg),
            ("jpeg", Format::Jpeg),
            ("gif", Format::Gif),
            ("auto", Format::Auto),
        ] {
            assert_eq!(parse(&[("format", word)]).unwrap().format, Some(format));
            assert_eq!(parse(&[("f", word)]).unwrap().format, Some(format));
        }
        assert_eq!(refused(&[("format", "tiff")]), "format");
        assert_eq!(refused(&[("f", "bmp")]), "format");
    }

    #[test]
    fn quality_blur_sharpen_are_1_to_100() {
        for name in ["quality", "q", "blur", "sharpen"] {
            let canonical = if name == "q" { "quality" } else { name };
            assert!(parse(&[(name, "1")]).is_ok());
            assert!(parse(&[(name, "100")]).is_ok());
            for bad in ["0", "101", "-1", "50.5", ""] {
                assert_eq!(refused(&[(name, bad)]), canonical, "{name}={bad}");
            }
        }
        assert_eq!(parse(&[("q", "55")]).unwrap().quality, 55);
        assert_eq!(parse(&[]).unwrap().quality, DEFAULT_QUALITY);
        assert_eq!(parse(&[("blur", "7")]).unwrap().blur, Some(7));
        assert_eq!(parse(&[("sharpen", "9")]).unwrap().sharpen, Some(9));
    }

    #[test]
    fn rotate_is_a_right_angle() {
        for n in ["0", "90", "180", "270"] {
            assert_eq!(parse(&[("rotate", n)]).unwrap().rotate.to_string(), n);
            assert_eq!(parse(&[("rt", n)]).unwrap().rotate.to_string(), n);
        }
        for bad in ["45", "360", "-90", "x"] {
            assert_eq!(refused(&[("rotate", bad)]), "rotate");
            assert_eq!(refused(&[("rt", bad)]), "rotate");
        }
    }

    #[test]
    fn flip_and_grayscale() {
        assert_eq!(
            parse(&[("flip", "h")]).unwrap().flip,
            Some(Flip::Horizontal)
        );
        assert_eq!(parse(&[("flip", "v")]).unwrap().flip, Some(Flip::Vertical));
        assert_eq!(refused(&[("flip", "x")]), "flip");
        assert_eq!(refused(&[("flip", "hv")]), "flip");
        for on in ["", "true", "1"] {
            assert!(parse(&[("grayscale", on)]).unwrap().grayscale);
        }
        for off in ["false", "0"] {
            assert!(!parse(&[("grayscale", off)]).unwrap().grayscale);
        }
        assert_eq!(refused(&[("grayscale", "yes")]), "grayscale");
    }

    #[test]
    fn crop_modes_and_the_ones_that_do_not_exist() {
        assert_eq!(
            parse(&[("crop", "entropy")]).unwrap().crop,
            Some(Crop::Entropy)
        );
        assert_eq!(
            parse(&[("crop", "attention")]).unwrap().crop,
            Some(Crop::Attention)
        );
        for missing in ["face", "auto"] {
            let e = parse(&[("crop", missing)]).unwrap_err();
            assert_eq!(e.param, "crop");
            assert!(e.reason.contains("entropy, attention"), "{e}");
            assert!(e.reason.contains(missing), "{e}");
        }
        let e = parse(&[("crop", "middle")]).unwrap_err();
        assert_eq!(e.param, "crop");
        assert!(e.reason.contains("entropy, attention"), "{e}");
    }

    #[test]
    fn gravity_compass_center_and_smart() {
        let all = [
            ("center", Gravity::Center),
            ("north", Gravity::North),
            ("northeast", Gravity::NorthEast),
            ("east", Gravity::East),
            ("southeast", Gravity::SouthEast),
            ("south", Gravity::South),
            ("southwest", Gravity::SouthWest),
            ("west", Gravity::West),
            ("northwest", Gravity::NorthWest),
            ("entropy", Gravity::Smart(Crop::Entropy)),
            ("attention", Gravity::Smart(Crop::Attention)),
        ];
        for (word, g) in all {
            assert_eq!(parse(&[("gravity", word)]).unwrap().gravity, g);
            assert_eq!(parse(&[("g", word)]).unwrap().gravity, g);
        }
        let smart = parse(&[("g", "attention")]).unwrap();
        assert_eq!(smart.smart_crop(), Some(Crop::Attention));
        assert_eq!(parse(&[("g", "north")]).unwrap().smart_crop(), None);
        assert_eq!(refused(&[("gravity", "up")]), "gravity");
        assert_eq!(refused(&[("g", "face")]), "gravity");
    }

    #[test]
    fn bg_is_six_hex_digits() {
        assert_eq!(
            parse(&[("bg", "ff8800")]).unwrap().background,
            [255, 136, 0]
        );
        assert_eq!(
            parse(&[("bg", "#00FF7f")]).unwrap().background,
            [0, 255, 127]
        );
        assert_eq!(parse(&[]).unwrap().background, [255, 255, 255]);
        for bad in ["fff", "ff88000", "gg0000", "", "#", "ff 800"] {
            assert_eq!(refused(&[("bg", bad)]), "bg", "bg={bad}");
        }
    }

    #[test]
    fn other_names_are_ignored() {
        let p = parse(&[("exp", "123"), ("sig", "abc"), ("utm", "x")]).unwrap();
        assert_eq!(p, Params::default());
    }

    #[test]
    fn auto_picks_from_accept() {
        let auto = parse(&[("format", "auto")]).unwrap();
        assert!(auto.varies_with_accept());
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert_eq!(
            auto.output_format(OutputFormat::Jpeg, false, Some(chrome)),
            OutputFormat::Avif
        );
        assert_eq!(
            auto.output_format(OutputFormat::Jpeg, false, Some("image/webp,*/*")),
            OutputFormat::Webp
        );
        // q=0 means "not this one"; a wildcard is not a promise to decode WebP.
        assert_eq!(
            auto.output_format(OutputFormat::Png, true, Some("image/webp;q=0, */*")),
            OutputFormat::Png
        );
        assert_eq!(
            auto.output_format(OutputFormat::Webp, false, Some("*/*")),
            OutputFormat::Jpeg
        );
        assert_eq!(
            auto.output_format(OutputFormat::Webp, true, None),
            OutputFormat::Png
        );
        let fixed = parse(&[("format", "png")]).unwrap();
        assert!(!fixed.varies_with_accept());
        assert_eq!(
            fixed.output_format(OutputFormat::Jpeg, false, Some(chrome)),
            OutputFormat::Png
        );
        assert_eq!(
            Params::default().output_format(OutputFormat::Gif, false, Some(chrome)),
            OutputFormat::Gif
        );
    }
}
