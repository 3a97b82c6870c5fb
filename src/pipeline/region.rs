//! The part of the source a transform uses, and which way up: the crop region (`crop`, then
//! `trim`) in the EXIF-oriented frame, and the user's `flip`/`rotate` as one of the eight
//! orientations, applied to the EXIF-oriented pixels (`compose` folds two orientations into one
//! where a caller needs the pair).
//!
//! Invariants: pure; a region always lies inside the image and is at least 1×1 (or the
//! request is refused naming the parameter); never panics.

use super::{orient, PipelineError, Pixels};
use crate::pipeline::transform::{Crop, Flip, Transform, Trim};

/// A rectangle in whole pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

impl Region {
    pub fn full(w: u32, h: u32) -> Self {
        Self {
            left: 0,
            top: 0,
            width: w,
            height: h,
        }
    }
}

fn out_of_range(param: &str, message: String) -> PipelineError {
    PipelineError::OutOfRange {
        param: param.to_string(),
        message,
    }
}

/// The region of an `ow`×`oh` (oriented) source that `crop` and explicit `trim` leave.
pub fn region(ow: u32, oh: u32, t: &Transform) -> Result<Region, PipelineError> {
    let mut r = Region::full(ow, oh);
    if let Some(c) = t.crop {
        r = match c {
            Crop::Pixels {
                x,
                y,
                width,
                height,
            } => Region {
                left: x,
                top: y,
                width,
                height,
            },
            Crop::Fraction {
                x,
                y,
                width,
                height,
            } => {
                // Edges rounded, then the size between them: x + width <= 1 always fits.
                let f = |v: u32, total: u32| -> u32 {
                    ((u64::from(v) * u64::from(total) + 5000) / 10_000) as u32
                };
                let (l, t) = (f(x, ow).min(ow - 1), f(y, oh).min(oh - 1));
                Region {
                    left: l,
                    top: t,
                    width: f(x + width, ow).min(ow).saturating_sub(l).max(1),
                    height: f(y + height, oh).min(oh).saturating_sub(t).max(1),
                }
            }
        };
        if u64::from(r.left) + u64::from(r.width) > u64::from(ow)
            || u64::from(r.top) + u64::from(r.height) > u64::from(oh)
        {
            return Err(out_of_range(
                "crop",
                format!(
                    "crop {}x{} at {},{} does not fit the {ow}x{oh} image",
                    r.width, r.height, r.left, r.top
                ),
            ));
        }
    }
    if let Trim::Sides {
        top,
        right,
        bottom,
        left,
    } = t.trim
    {
        if u64::from(left) + u64::from(right) >= u64::from(r.width)
            || u64::from(top) + u64::from(bottom) >= u64::from(r.height)
        {
            return Err(out_of_range(
                "trim",
                format!(
                    "trim {top};{right};{bottom};{left} would remove the whole {}x{} image",
                    r.width, r.height
                ),
            ));
        }
        r = Region {
            left: r.left + left,
            top: r.top + top,
            width: r.width - left - right,
            height: r.height - top - bottom,
        };
    }
    Ok(r)
}

/// The orientation (1..=8) of the user's flip then rotate (clockwise), without EXIF.
pub fn user_orientation(flip: Flip, rotate: u16) -> u8 {
    let flip_o = match (flip.h, flip.v) {
        (false, false) => 1,
        (true, false) => 2,
        (false, true) => 4,
        (true, true) => 3,
    };
    let rot_o = match rotate {
        90 => 6,
        180 => 3,
        270 => 8,
        _ => 1,
    };
    compose(flip_o, rot_o)
}

/// The orientation equal to applying `a`, then `b`.
pub fn compose(a: u8, b: u8) -> u8 {
    let probe = Pixels {
        width: 2,
        height: 3,
        channels: 1,
        data: vec![0, 1, 2, 3, 4, 5],
    };
    let want = orient::apply(orient::apply(probe.clone(), a), b);
    (1..=8)
        .find(|&o| orient::apply(probe.clone(), o) == want)
        .unwrap_or(1)
}

/// Whether orientation `o` swaps width and height.
pub fn swaps(o: u8) -> bool {
    (5..=8).contains(&o)
}

/// The bounding box of what differs from the top-left corner's colour by more than
/// `tolerance` (any channel), inside `within`; `None` when nothing does (all one colour).
pub fn auto_trim(px: &Pixels, within: Region, tolerance: u8) -> Option<Region> {
    let (w, c) = (px.width as usize, usize::from(px.channels));
    let at = |x: u32, y: u32| (y as usize * w + x as usize) * c;
    let corner = px
        .data
        .get(at(within.left, within.top)..at(within.left, within.top) + c)?;
    let corner: Vec<u8> = corner.to_vec();
    let differs = |x: u32, y: u32| {
        let p = at(x, y);
        px.data.get(p..p + c).is_some_and(|v| {
            v.iter()
                .zip(&corner)
                .any(|(a, b)| a.abs_diff(*b) > tolerance)
        })
    };
    let (x0, y0) = (within.left, within.top);
    let (x1, y1) = (within.left + within.width, within.top + within.height);
    let (mut l, mut t, mut r, mut b) = (u32::MAX, u32::MAX, 0u32, 0u32);
    for y in y0..y1 {
        for x in x0..x1 {
            if differs(x, y) {
                l = l.min(x);
                t = t.min(y);
                r = r.max(x + 1);
                b = b.max(y + 1);
            }
        }
    }
    (l != u32::MAX).then(|| Region {
        left: l,
        top: t,
        width: r - l,
        height: b - t,
    })
}

/// The pixels of `r` (clamped to the image).
pub fn cut(px: Pixels, r: Region) -> Pixels {
    if r.left == 0 && r.top == 0 && r.width >= px.width && r.height >= px.height {
        return px;
    }
    let c = usize::from(px.channels);
    let l = r.left.min(px.width.saturating_sub(1)) as usize;
    let t = r.top.min(px.height.saturating_sub(1)) as usize;
    let w = (r.width as usize).clamp(1, px.width as usize - l);
    let h = (r.height as usize).clamp(1, px.height as usize - t);
    let mut data = Vec::with_capacity(w * h * c);
    for y in t..t + h {
        let s = (y * px.width as usize + l) * c;
        data.extend_from_slice(&px.data[s..s + w * c]);
    }
    Pixels {
        width: w as u32,
        height: h as u32,
        channels: px.channels,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composing_orientations() {
        assert_eq!(compose(1, 6), 6);
        assert_eq!(compose(6, 6), 3);
        assert_eq!(compose(6, 8), 1);
        assert_eq!(compose(2, 2), 1);
        // Flip horizontally, then rotate 90° clockwise = transpose (orientation 5 as EXIF
        // defines it: mirror + 270 CW... whichever of 5/7 the table says), checked by pixels.
        let o = user_orientation(Flip { h: true, v: false }, 90);
        let probe = Pixels {
            width: 2,
            height: 3,
            channels: 1,
            data: vec![0, 1, 2, 3, 4, 5],
        };
        let by_steps = orient::apply(orient::apply(probe.clone(), 2), 6);
        assert_eq!(orient::apply(probe, o), by_steps);
        assert_eq!(user_orientation(Flip::default(), 0), 1);
        assert_eq!(user_orientation(Flip::default(), 270), 8);
    }

    #[test]
    fn fractional_crops_fit_odd_sizes() {
        let t = crate::pipeline::transform::parse(
            &crate::util::query::Query::parse("crop=0.5,0,0.5,1"),
            &crate::pipeline::transform::ParamConfig::default(),
        )
        .unwrap()
        .unwrap();
        let r = region(1001, 7, &t).unwrap();
        assert_eq!((r.left, r.width, r.height), (501, 500, 7));
        assert_eq!(
            region(3, 3, &t).unwrap().left + region(3, 3, &t).unwrap().width,
            3
        );
    }

    #[test]
    fn auto_trim_finds_the_content() {
        let mut data = vec![255u8; 10 * 8 * 3];
        for y in 2..5 {
            for x in 3..7 {
                let p = (y * 10 + x) * 3;
                data[p] = 0;
            }
        }
        let px = Pixels {
            width: 10,
            height: 8,
            channels: 3,
            data,
        };
        assert_eq!(
            auto_trim(&px, Region::full(10, 8), 10),
            Some(Region {
                left: 3,
                top: 2,
                width: 4,
                height: 3
            })
        );
        let flat = Pixels {
            width: 4,
            height: 4,
            channels: 3,
            data: vec![9; 48],
        };
        assert_eq!(auto_trim(&flat, Region::full(4, 4), 0), None);
        let cut_px = cut(
            px,
            Region {
                left: 3,
                top: 2,
                width: 4,
                height: 3,
            },
        );
        assert_eq!((cut_px.width, cut_px.height), (4, 3));
        assert!(cut_px.data.chunks(3).all(|p| p[0] == 0));
    }
}
