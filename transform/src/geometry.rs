//! Sizes: what the image is resized to, and the box it is then cropped or padded to.

use crate::params::{self, Fit, Params};

/// Sizes in the displayed orientation (after EXIF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub resize: (u32, u32),
    /// `fit=cover`: the window kept of the resized image.
    pub crop: Option<(u32, u32)>,
    /// `fit=contain`: the canvas the resized image is centred on (by gravity).
    pub pad: Option<(u32, u32)>,
}

fn scaled(side: u32, scale: f64) -> u32 {
    ((f64::from(side) * scale).round() as u32).max(1)
}

/// The plan for a source of `source` size (oriented). With one side given, the other follows the
/// aspect ratio whatever the fit; with neither, the size is kept. The result is held to the same
/// 25-megapixel limit as the parameters (one side given can still ask for a huge image).
pub fn plan(params: &Params, source: (u32, u32)) -> Result<Plan, params::ParamError> {
    let (sw, sh) = source;
    let plan = match params.target() {
        (None, None) => Plan {
            resize: source,
            crop: None,
            pad: None,
        },
        (Some(w), None) => Plan {
            resize: (w, scaled(sh, f64::from(w) / f64::from(sw))),
            crop: None,
            pad: None,
        },
        (None, Some(h)) => Plan {
            resize: (scaled(sw, f64::from(h) / f64::from(sh)), h),
            crop: None,
            pad: None,
        },
        (Some(w), Some(h)) => {
            let (sx, sy) = (f64::from(w) / f64::from(sw), f64::from(h) / f64::from(sh));
            // The side that decides the scale gets the requested length exactly, not a rounding.
            let by = |scale: f64, x_decides: bool| {
                if x_decides {
                    (w, scaled(sh, scale))
                } else {
                    (scaled(sw, scale), h)
                }
            };
            let inside = by(sx.min(sy), sx <= sy);
            let outside = by(sx.max(sy), sx >= sy);
            match params.fit {
                Fit::Fill => Plan {
                    resize: (w, h),
                    crop: None,
                    pad: None,
                },
                Fit::Inside => Plan {
                    resize: inside,
                    crop: None,
                    pad: None,
                },
                Fit::Outside => Plan {
                    resize: outside,
                    crop: None,
                    pad: None,
                },
                Fit::Cover => Plan {
                    resize: outside,
                    crop: (outside != (w, h)).then_some((w, h)),
                    pad: None,
                },
                Fit::Contain => Plan {
                    resize: inside,
                    crop: None,
                    pad: (inside != (w, h)).then_some((w, h)),
                },
            }
        }
    };
    let given = if params.width.is_some() { "w" } else { "h" };
    params::check_output(given, plan.resize.0, plan.resize.1)?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(query: &[(&str, &str)], source: (u32, u32)) -> Plan {
        plan(&Params::parse(query.iter().copied()).unwrap(), source).unwrap()
    }

    #[test]
    fn one_side_keeps_the_aspect_ratio() {
        let p = plan_of(&[("w", "800")], (5120, 2880));
        assert_eq!(p.resize, (800, 450));
        let p = plan_of(&[("h", "450"), ("fit", "fill")], (5120, 2880));
        assert_eq!(p.resize, (800, 450));
        let p = plan_of(&[("w", "400"), ("dpr", "2")], (5120, 2880));
        assert_eq!(p.resize, (800, 450));
        assert_eq!(plan_of(&[], (31, 17)).resize, (31, 17));
    }

    #[test]
    fn each_fit_on_a_wide_source() {
        let source = (1000, 500);
        let q = |fit| plan_of(&[("w", "300"), ("h", "300"), ("fit", fit)], source);
        assert_eq!(
            q("cover"),
            Plan {
                resize: (600, 300),
                crop: Some((300, 300)),
                pad: None
            }
        );
        assert_eq!(
            q("contain"),
            Plan {
                resize: (300, 150),
                crop: None,
                pad: Some((300, 300))
            }
        );
        assert_eq!(
            q("fill"),
            Plan {
                resize: (300, 300),
                crop: None,
                pad: None
            }
        );
        assert_eq!(
            q("inside"),
            Plan {
                resize: (300, 150),
                crop: None,
                pad: None
            }
        );
        assert_eq!(
            q("outside"),
            Plan {
                resize: (600, 300),
                crop: None,
                pad: None
            }
        );
    }

    #[test]
    fn a_single_side_cannot_exceed_the_output_limit() {
        // w=8192 on a source 1 pixel wide and 10,000 high asks for 8192 × 81,920,000.
        let params = Params::parse([("w", "8192")]).unwrap();
        assert_eq!(plan(&params, (1, 10_000)).unwrap_err().param, "w");
    }
}
