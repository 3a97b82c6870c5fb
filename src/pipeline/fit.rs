//! Geometry: where to crop, what size to resize to and what canvas to pad to. Pure math.
//!
//! sharp's meanings: cover = fill the box and crop the centre; contain = fit inside and pad to the
//! box; fill = stretch; inside = fit inside, no pad; outside = cover the box, no crop. Without
//! `enlarge` the output is never larger than the (oriented) source. Clip (Cloudflare's `crop`)
//! is cover into the box with each side capped at the source's.

use crate::pipeline::transform::{Fit, Gravity, Transform};

/// Where a window of `win` sits along a side of `total`, for a gravity coordinate (ten-
/// thousandths; `None` = the middle): centred on the point as far as the window fits.
fn place(total: f64, win: f64, at: Option<u16>) -> f64 {
    let p = at.map_or(0.5, |v| f64::from(v) / 10_000.0);
    (p * total - win / 2.0).clamp(0.0, (total - win).max(0.0))
}

/// A rectangle in source pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// The plan for one transform on one source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// The part of the (oriented) source that is used.
    pub crop: Rect,
    /// The size the crop is resized to.
    pub out_w: u32,
    pub out_h: u32,
    /// The final canvas (larger than `out` only for `contain`), and where `out` sits on it.
    pub canvas_w: u32,
    pub canvas_h: u32,
    pub offset_x: u32,
    pub offset_y: u32,
}

fn r(x: f64) -> u32 {
    (x.round() as u32).max(1)
}

/// Plan a transform for a source of `sw`×`sh` (after EXIF orientation).
pub fn plan(sw: u32, sh: u32, t: &Transform) -> Geometry {
    let (fw, fh) = (f64::from(sw), f64::from(sh));
    let full = Rect {
        left: 0.0,
        top: 0.0,
        width: fw,
        height: fh,
    };
    let simple = |w: u32, h: u32| Geometry {
        crop: full,
        out_w: w,
        out_h: h,
        canvas_w: w,
        canvas_h: h,
        offset_x: 0,
        offset_y: 0,
    };
    let (bw, bh) = match (t.width, t.height) {
        (None, None) => return simple(sw, sh),
        (Some(w), Some(h)) => (f64::from(w), f64::from(h)),
        (Some(w), None) => (f64::from(w), f64::from(w) * fh / fw),
        (None, Some(h)) => (f64::from(h) * fw / fh, f64::from(h)),
    };
    // Without enlarge, a box that is larger than the source shrinks to it, aspect kept.
    let shrink_box = |bw: f64, bh: f64| -> (f64, f64) {
        if t.enlarge {
            (bw, bh)
        } else {
            let k = (fw / bw).min(fh / bh).min(1.0);
            (bw * k, bh * k)
        }
    };
    let cap = |s: f64| if t.enlarge { s } else { s.min(1.0) };
    match t.fit {
        Fit::Inside => {
            let s = cap((bw / fw).min(bh / fh));
            simple(r(fw * s), r(fh * s))
        }
        Fit::Outside => {
            let s = cap((bw / fw).max(bh / fh));
            simple(r(fw * s), r(fh * s))
        }
        Fit::Fill => {
            let (bw, bh) = shrink_box(bw, bh);
            simple(r(bw), r(bh))
        }
        Fit::Cover | Fit::Clip => {
            let (bw, bh) = if t.fit == Fit::Clip {
                (bw.min(fw), bh.min(fh))
            } else {
                shrink_box(bw, bh)
            };
            let (ow, oh) = (r(bw), r(bh));
            let s = (f64::from(ow) / fw).max(f64::from(oh) / fh);
            let (cw, ch) = ((f64::from(ow) / s).min(fw), (f64::from(oh) / s).min(fh));
            let (gx, gy) = match t.gravity {
                Gravity::Point { x, y } => (Some(x), Some(y)),
                Gravity::Centre | Gravity::Auto => (None, None),
            };
            Geometry {
                crop: Rect {
                    left: place(fw, cw, gx),
                    top: place(fh, ch, gy),
                    width: cw,
                    height: ch,
                },
                out_w: ow,
                out_h: oh,
                canvas_w: ow,
                canvas_h: oh,
                offset_x: 0,
                offset_y: 0,
            }
        }
        Fit::Contain => {
            let (bw, bh) = shrink_box(bw, bh);
            let (cw, ch) = (r(bw), r(bh));
            let s = (f64::from(cw) / fw).min(f64::from(ch) / fh);
            let (ow, oh) = (r(fw * s).min(cw), r(fh * s).min(ch));
            Geometry {
                crop: full,
                out_w: ow,
                out_h: oh,
                canvas_w: cw,
                canvas_h: ch,
                offset_x: (cw - ow) / 2,
                offset_y: (ch - oh) / 2,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::transform::{parse, ParamConfig};

    fn g(sw: u32, sh: u32, q: &str) -> Geometry {
        let t = parse(
            &crate::util::query::Query::parse(q),
            &ParamConfig::default(),
        )
        .unwrap()
        .unwrap();
        plan(sw, sh, &t)
    }

    fn out(gm: &Geometry) -> (u32, u32) {
        (gm.canvas_w, gm.canvas_h)
    }

    #[test]
    fn fit_modes_shrinking() {
        assert_eq!(out(&g(800, 600, "w=400")), (400, 300));
        assert_eq!(out(&g(800, 600, "h=300")), (400, 300));
        assert_eq!(out(&g(800, 600, "w=200&h=200")), (200, 200)); // cover
        let c = g(800, 600, "w=200&h=200&fit=cover");
        assert_eq!(
            (c.crop.width, c.crop.height, c.crop.left),
            (600.0, 600.0, 100.0)
        );
        assert_eq!(out(&g(800, 600, "w=200&h=200&fit=inside")), (200, 150));
        assert_eq!(out(&g(800, 600, "w=200&h=200&fit=outside")), (267, 200));
        assert_eq!(out(&g(800, 600, "w=200&h=200&fit=fill")), (200, 200));
        let k = g(800, 600, "w=200&h=200&fit=contain");
        assert_eq!(
            (out(&k), k.out_w, k.out_h, k.offset_y),
            ((200, 200), 200, 150, 25)
        );
    }

    #[test]
    fn fit_without_enlarge_never_exceeds_source() {
        assert_eq!(out(&g(800, 600, "w=1600")), (800, 600));
        assert_eq!(out(&g(800, 600, "w=1600&h=1600&fit=inside")), (800, 600));
        assert_eq!(out(&g(800, 600, "w=1600&h=1600&fit=outside")), (800, 600));
        // cover: the box shrinks to the source, aspect kept (square box → 600x600 crop).
        assert_eq!(out(&g(800, 600, "w=1600&h=1600")), (600, 600));
        assert_eq!(out(&g(800, 600, "w=1600&h=1600&fit=fill")), (600, 600));
        assert_eq!(out(&g(800, 600, "w=1000&h=300")), (800, 240));
        let k = g(800, 600, "w=1000&h=1000&fit=contain");
        assert_eq!((out(&k), k.out_w, k.out_h), ((600, 600), 600, 450));
    }

    #[test]
    fn gravity_places_the_cover_window() {
        // 800x600 into 200x200: a 600x600 window, 200 px of slack horizontally.
        let left = |q: &str| g(800, 600, q).crop.left;
        assert_eq!(left("w=200&h=200"), 100.0);
        assert_eq!(left("w=200&h=200&g=west"), 0.0);
        assert_eq!(left("w=200&h=200&g=east"), 200.0);
        assert_eq!(left("w=200&h=200&g=0.6x0.5"), 180.0);
        assert_eq!(left("w=200&h=200&g=0.99x0"), 200.0);
        assert_eq!(g(600, 800, "w=200&h=200&g=south").crop.top, 200.0);
    }

    #[test]
    fn clip_caps_each_side_at_the_source() {
        // Larger than the box: cover.
        assert_eq!(out(&g(800, 600, "w=200&h=200&fit=clip")), (200, 200));
        // Smaller on both sides: the whole source, unscaled.
        let k = g(800, 600, "w=1600&h=1600&fit=clip");
        assert_eq!((out(&k), k.crop.width), ((800, 600), 800.0));
        // Smaller on one side: that side kept, the other cropped at scale 1.
        let k = g(800, 600, "w=500&h=1000&fit=clip");
        assert_eq!(
            (out(&k), k.crop.width, k.crop.left),
            ((500, 600), 500.0, 150.0)
        );
    }

    #[test]
    fn fit_with_enlarge_grows() {
        assert_eq!(out(&g(800, 600, "w=1600&enlarge=1")), (1600, 1200));
        assert_eq!(out(&g(800, 600, "w=1600&h=1600&enlarge=1")), (1600, 1600));
        assert_eq!(
            out(&g(800, 600, "w=1600&h=1600&fit=inside&enlarge=1")),
            (1600, 1200)
        );
    }

    #[test]
    fn fit_dpr_scales_box() {
        assert_eq!(out(&g(2000, 1000, "w=400&dpr=2")), (800, 400));
        assert_eq!(out(&g(2000, 1000, "w=400&h=400&dpr=1.5")), (600, 600));
    }

    #[test]
    fn fit_tiny_results_stay_at_least_one_pixel() {
        assert_eq!(out(&g(8000, 10, "w=10")), (10, 1));
        assert_eq!(out(&g(1, 1, "w=1&h=1")), (1, 1));
    }
}
