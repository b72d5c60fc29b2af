//! A source whose header declares more than MAX_SOURCE_PIXELS is refused before its pixels are
//! allocated: the peak heap while refusing stays far below one row of such an image's pixels.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use imgbt_transform::{Error, MAX_SOURCE_PIXELS, Params, transform};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(now, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The heap used above the current level while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst) - base)
}

/// A PNG that is only a signature and an IHDR declaring `w`×`h` RGBA (no pixel data follows).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let writer = encoder.write_header().unwrap();
    drop(writer);
    out
}

/// A real 16×16 JPEG whose frame header is rewritten to declare `w`×`h`.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let pixels = vec![128u8; 16 * 16 * 3];
    let mut jpeg = turbojpeg::compress(
        turbojpeg::Image {
            pixels: pixels.as_slice(),
            width: 16,
            pitch: 48,
            height: 16,
            format: turbojpeg::PixelFormat::RGB,
        },
        80,
        turbojpeg::Subsamp::Sub2x2,
    )
    .unwrap()
    .to_vec();
    // SOF0: FF C0, length (2), precision (1), height (2), width (2).
    let sof = jpeg.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    jpeg
}

#[test]
fn bombs_are_refused_from_the_header() {
    let params = Params::parse([("w", "100")]).unwrap();
    // 60,000 × 60,000 RGBA would be 14.4 GB; one row alone is 240 KB.
    let bombs = [
        ("png", png_header(60_000, 60_000)),
        ("jpeg", jpeg_claiming(60_000, 60_000)),
    ];
    for (kind, bomb) in bombs {
        let (result, peak) = peak_during(|| transform(&bomb, &params, None));
        match result {
            Err(Error::TooLarge {
                width,
                height,
                limit,
            }) => {
                assert_eq!(
                    (width, height, limit),
                    (60_000, 60_000, MAX_SOURCE_PIXELS),
                    "{kind}"
                );
            }
            other => panic!("{kind}: {other:?}"),
        }
        assert!(
            peak < 200_000,
            "{kind}: {peak} bytes allocated while refusing"
        );
    }
    // Just over the limit is refused too; the limit itself is a size, not a guess per format.
    let side = (MAX_SOURCE_PIXELS as f64).sqrt() as u32 + 1;
    let over = png_header(side, side);
    assert!(matches!(
        transform(&over, &params, None),
        Err(Error::TooLarge { .. })
    ));
    // Under the limit the same header gets as far as the decoder, which finds no pixel data.
    let under = png_header(1000, 1000);
    assert!(matches!(
        transform(&under, &params, None),
        Err(Error::Corrupt(_))
    ));
}
