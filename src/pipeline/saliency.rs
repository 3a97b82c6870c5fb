//! `gravity=auto`: where to put a crop window so that it keeps the subject.
//!
//! The image (already decoded, usually shrunk on load) is reduced to at most 128 px on its long
//! side; each cell scores edges (luma gradient), saturation and skin tones, with a small bias
//! towards the centre, and the window of the crop's size with the highest total (a summed-area
//! table, every position tried) wins. The same signals libvips' `attention` strategy uses, on
//! pixels the pipeline already has.
//!
//! Invariants: pure; the window always fits inside the image; never panics.

use super::Pixels;

/// Longest side of the score map.
const MAP: u32 = 128;

/// The top-left corner (in `px` pixels) of the best `cw`×`ch` window of `px`.
pub fn best_window(px: &Pixels, cw: u32, ch: u32) -> (u32, u32) {
    let (w, h) = (px.width, px.height);
    if cw >= w && ch >= h || w == 0 || h == 0 {
        return (0, 0);
    }
    let scale = (f64::from(MAP) / f64::from(w.max(h))).min(1.0);
    let mw = ((f64::from(w) * scale).round() as u32).max(1);
    let mh = ((f64::from(h) * scale).round() as u32).max(1);
    let scores = score_map(px, mw, mh);
    // Summed-area table with a zero row and column.
    let (sw, sh) = (mw as usize + 1, mh as usize + 1);
    let mut sat = vec![0f64; sw * sh];
    for y in 0..mh as usize {
        let mut row = 0f64;
        for x in 0..mw as usize {
            row += scores[y * mw as usize + x];
            sat[(y + 1) * sw + x + 1] = sat[y * sw + x + 1] + row;
        }
    }
    let ww =
        ((f64::from(cw) * f64::from(mw) / f64::from(w)).round() as usize).clamp(1, mw as usize);
    let wh =
        ((f64::from(ch) * f64::from(mh) / f64::from(h)).round() as usize).clamp(1, mh as usize);
    let (mut best, mut at) = (f64::MIN, (0usize, 0usize));
    for y in 0..=(mh as usize - wh) {
        for x in 0..=(mw as usize - ww) {
            let s = sat[(y + wh) * sw + x + ww] - sat[y * sw + x + ww] - sat[(y + wh) * sw + x]
                + sat[y * sw + x];
            if s > best {
                best = s;
                at = (x, y);
            }
        }
    }
    // Back to image pixels, clamped so the window fits.
    let left = ((at.0 as f64 / f64::from(mw)) * f64::from(w)).round() as u32;
    let top = ((at.1 as f64 / f64::from(mh)) * f64::from(h)).round() as u32;
    (
        left.min(w.saturating_sub(cw)),
        top.min(h.saturating_sub(ch)),
    )
}

/// Per-cell interest of `px` reduced to `mw`×`mh` (box-averaged).
fn score_map(px: &Pixels, mw: u32, mh: u32) -> Vec<f64> {
    let (w, h, c) = (
        px.width as usize,
        px.height as usize,
        usize::from(px.channels),
    );
    let (mw_, mh_) = (mw as usize, mh as usize);
    // Mean RGB per cell.
    let mut rgb = vec![[0f64; 3]; mw_ * mh_];
    let mut n = vec![0u32; mw_ * mh_];
    for y in 0..h {
        let my = (y * mh_ / h).min(mh_ - 1);
        for x in 0..w {
            let mx = (x * mw_ / w).min(mw_ - 1);
            let p = (y * w + x) * c;
            let (r, g, b) = if c >= 3 {
                (px.data[p], px.data[p + 1], px.data[p + 2])
            } else {
                (px.data[p], px.data[p], px.data[p])
            };
            let cell = &mut rgb[my * mw_ + mx];
            cell[0] += f64::from(r);
            cell[1] += f64::from(g);
            cell[2] += f64::from(b);
            n[my * mw_ + mx] += 1;
        }
    }
    for (cell, k) in rgb.iter_mut().zip(&n) {
        let k = f64::from((*k).max(1));
        cell.iter_mut().for_each(|v| *v /= k);
    }
    let luma: Vec<f64> = rgb
        .iter()
        .map(|[r, g, b]| 0.299 * r + 0.587 * g + 0.114 * b)
        .collect();
    let mut out = vec![0f64; mw_ * mh_];
    let (cx, cy) = (mw_ as f64 / 2.0, mh_ as f64 / 2.0);
    for y in 0..mh_ {
        for x in 0..mw_ {
            let i = y * mw_ + x;
            let l = |xx: usize, yy: usize| luma[yy * mw_ + xx];
            let gx = l((x + 1).min(mw_ - 1), y) - l(x.saturating_sub(1), y);
            let gy = l(x, (y + 1).min(mh_ - 1)) - l(x, y.saturating_sub(1));
            let edge = (gx * gx + gy * gy).sqrt();
            let [r, g, b] = rgb[i];
            let (max, min) = (r.max(g).max(b), r.min(g).min(b));
            let saturation = if max > 0.0 { (max - min) / max } else { 0.0 };
            // Skin: warm, red above green above blue, moderately saturated.
            let skin = r > 95.0
                && g > 40.0
                && b > 20.0
                && r > g
                && g > b
                && r - b > 15.0
                && (0.15..0.65).contains(&saturation);
            let dx = (x as f64 - cx) / cx.max(1.0);
            let dy = (y as f64 - cy) / cy.max(1.0);
            let centre = 1.0 - 0.15 * (dx * dx + dy * dy).sqrt().min(1.0);
            out[i] = (1.0 + edge + 40.0 * saturation + if skin { 60.0 } else { 0.0 }) * centre;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat grey canvas with a busy, colourful square at (sx, sy).
    fn scene(w: u32, h: u32, sx: u32, sy: u32, s: u32) -> Pixels {
        let mut data = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                let inside = x >= sx && x < sx + s && y >= sy && y < sy + s;
                if inside {
                    let v = if (x / 3 + y / 3) % 2 == 0 { 230 } else { 20 };
                    data.extend_from_slice(&[v, 40, 255 - v]);
                } else {
                    data.extend_from_slice(&[120, 120, 120]);
                }
            }
        }
        Pixels {
            width: w,
            height: h,
            channels: 3,
            data,
        }
    }

    #[test]
    fn the_window_covers_the_subject() {
        // Subject at the far right of a wide image; a centre crop would miss it.
        let px = scene(900, 300, 760, 80, 120);
        let (l, t) = best_window(&px, 300, 300);
        assert_eq!(t, 0);
        assert!(l <= 760 && l + 300 >= 880, "window at {l}");
        // At the top of a tall image.
        let px = scene(200, 800, 40, 10, 100);
        let (l, t) = best_window(&px, 200, 200);
        assert_eq!(l, 0);
        assert!(t <= 10 && t + 200 >= 110, "window at {t}");
    }

    #[test]
    fn a_featureless_image_is_cropped_in_the_centre() {
        let px = scene(600, 200, 0, 0, 0);
        let (l, _) = best_window(&px, 200, 200);
        assert!((180..=220).contains(&l), "{l}");
    }

    #[test]
    fn windows_always_fit() {
        let px = scene(50, 40, 0, 0, 10);
        assert_eq!(best_window(&px, 60, 60), (0, 0));
        let (l, t) = best_window(&px, 49, 1);
        assert!(l + 49 <= 50 && t < 40);
    }
}
