//! Watermarks: a configured image placed on the output, scaled to a share of its width, at a
//! gravity point with a margin, blended with an opacity. Applied after padding, before encode.
//!
//! Invariants: pure; the mark always fits inside the output (shrunk when it would not); never
//! panics.

use super::{PipelineError, Pixels};

/// A watermark ready to apply (decoded once, at start).
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// RGBA pixels.
    pub pixels: Pixels,
    /// Where: ten-thousandths of the free space (0 = left/top, 10000 = right/bottom).
    pub x: u16,
    pub y: u16,
    /// Margin from the output's edges, pixels.
    pub margin: u32,
    /// 0..=1.
    pub opacity: f32,
    /// Width as a share of the output's width, 0..=1.
    pub scale: f32,
}

/// Blend `m` onto `px` (3 or 4 channels).
pub fn apply(px: &mut Pixels, m: &Mark) -> Result<(), PipelineError> {
    let (w, h) = (px.width, px.height);
    let (sw, sh) = (m.pixels.width.max(1), m.pixels.height.max(1));
    let margin = m.margin.min(w / 4).min(h / 4);
    let room_w = w.saturating_sub(2 * margin).max(1);
    let room_h = h.saturating_sub(2 * margin).max(1);
    let mut mw = ((f64::from(w) * f64::from(m.scale)).round() as u32).clamp(1, room_w);
    let mut mh = ((f64::from(mw) * f64::from(sh) / f64::from(sw)).round() as u32).max(1);
    if mh > room_h {
        mh = room_h;
        mw = ((f64::from(mh) * f64::from(sw) / f64::from(sh)).round() as u32).clamp(1, room_w);
    }
    let full = refract_resize::Crop {
        left: 0.0,
        top: 0.0,
        width: f64::from(sw),
        height: f64::from(sh),
    };
    let mark = refract_resize::resize(&m.pixels.data, 4, sw, sh, full, mw, mh)
        .map_err(|e| PipelineError::Bug(format!("watermark resize: {e}")))?;
    let free_x = f64::from(room_w - mw);
    let free_y = f64::from(room_h - mh);
    let left = margin + (free_x * f64::from(m.x) / 10_000.0).round() as u32;
    let top = margin + (free_y * f64::from(m.y) / 10_000.0).round() as u32;
    let c = usize::from(px.channels);
    let opacity = m.opacity.clamp(0.0, 1.0);
    for y in 0..mh {
        for x in 0..mw {
            let s = ((y * mw + x) * 4) as usize;
            let a = f32::from(mark[s + 3]) / 255.0 * opacity;
            if a <= 0.0 {
                continue;
            }
            let d = (((top + y) * w + left + x) as usize) * c;
            let Some(out) = px.data.get_mut(d..d + c) else {
                continue;
            };
            // "Over" with straight alpha: the output's own alpha weighs its colour.
            let ab = if c == 4 {
                f32::from(out[3]) / 255.0
            } else {
                1.0
            };
            let ao = a + ab * (1.0 - a);
            for ch in 0..c.min(3) {
                let v = (f32::from(mark[s + ch]) * a + f32::from(out[ch]) * ab * (1.0 - a)) / ao;
                out[ch] = v.round().clamp(0.0, 255.0) as u8;
            }
            if c == 4 {
                out[3] = (ao * 255.0).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, c: u8, v: &[u8]) -> Pixels {
        Pixels {
            width: w,
            height: h,
            channels: c,
            data: v
                .iter()
                .copied()
                .cycle()
                .take((w * h * u32::from(c)) as usize)
                .collect(),
        }
    }

    #[test]
    fn mark_lands_in_the_corner_with_its_opacity() {
        let mut px = solid(100, 50, 3, &[0, 0, 0]);
        let m = Mark {
            pixels: solid(10, 10, 4, &[255, 255, 255, 255]),
            x: 10_000,
            y: 10_000,
            margin: 5,
            opacity: 0.5,
            scale: 0.2,
        };
        apply(&mut px, &m).unwrap();
        let at = |x: u32, y: u32| px.data[((y * 100 + x) * 3) as usize];
        // 20x20 mark at (75, 25)..(95, 45).
        assert_eq!(at(80, 30), 128);
        assert_eq!(at(94, 44), 128);
        assert_eq!(at(96, 46), 0);
        assert_eq!(at(70, 30), 0);
        assert_eq!(at(10, 10), 0);
    }

    #[test]
    fn a_mark_larger_than_the_output_is_shrunk_to_fit() {
        let mut px = solid(20, 10, 4, &[0, 0, 0, 0]);
        let m = Mark {
            pixels: solid(100, 100, 4, &[255, 0, 0, 255]),
            x: 5000,
            y: 5000,
            margin: 0,
            opacity: 1.0,
            scale: 1.0,
        };
        apply(&mut px, &m).unwrap();
        let red = px
            .data
            .chunks(4)
            .filter(|p| p[0] == 255 && p[3] == 255)
            .count();
        assert_eq!(red, 100, "a 10x10 square");
        // Half-opaque red over a transparent output is red at half alpha, not a darkened red.
        let mut px = solid(4, 4, 4, &[0, 0, 0, 0]);
        let m = Mark { opacity: 0.5, ..m };
        apply(&mut px, &m).unwrap();
        assert_eq!(&px.data[..4], &[255, 0, 0, 128]);
    }
}
