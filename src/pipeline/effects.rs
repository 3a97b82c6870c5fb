//! Pixel effects at the output size: Gaussian blur (three box passes, O(1) per pixel whatever
//! the sigma), unsharp-mask sharpening, pixelation, and colour adjustments (brightness,
//! contrast, gamma through one lookup table; saturation by mixing with luma).
//!
//! Invariants: pure; in place on `Pixels` (3 or 4 channels, straight alpha; blur works on
//! premultiplied values so transparent pixels do not bleed colour); never panics.

use super::Pixels;

/// The effects of one transform, resolved (neutral values do nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effects {
    /// Gaussian sigma in output pixels; 0 = none.
    pub blur: f32,
    /// Unsharp-mask strength 0..=10; 0 = none.
    pub sharpen: f32,
    /// Block size in output pixels; 0 or 1 = none.
    pub pixelate: u32,
    /// Factors, 1 = unchanged.
    pub brightness: f32,
    pub contrast: f32,
    pub gamma: f32,
    pub saturation: f32,
}

impl Default for Effects {
    fn default() -> Self {
        Self {
            blur: 0.0,
            sharpen: 0.0,
            pixelate: 0,
            brightness: 1.0,
            contrast: 1.0,
            gamma: 1.0,
            saturation: 1.0,
        }
    }
}

impl Effects {
    /// Whether any effect does something.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }
}

/// Apply every effect, in a fixed order: colour → blur → sharpen → pixelate.
pub fn apply(px: &mut Pixels, e: &Effects) {
    colour(px, e);
    if e.blur > 0.0 {
        gaussian(px, e.blur);
    }
    if e.sharpen > 0.0 {
        sharpen(px, e.sharpen);
    }
    if e.pixelate > 1 {
        pixelate(px, e.pixelate);
    }
}

fn colour_channels(px: &Pixels) -> usize {
    usize::from(px.channels.min(3))
}

/// Brightness, contrast and gamma through one table; then saturation.
fn colour(px: &mut Pixels, e: &Effects) {
    let c = usize::from(px.channels);
    if c == 0 {
        return;
    }
    let n = colour_channels(px);
    if e.brightness != 1.0 || e.contrast != 1.0 || e.gamma != 1.0 {
        let mut lut = [0u8; 256];
        for (i, v) in lut.iter_mut().enumerate() {
            let mut x = i as f32 / 255.0 * e.brightness;
            x = (x - 0.5) * e.contrast + 0.5;
            x = x.clamp(0.0, 1.0).powf(1.0 / e.gamma);
            *v = (x * 255.0).round().clamp(0.0, 255.0) as u8;
        }
        for p in px.data.chunks_exact_mut(c) {
            for v in &mut p[..n] {
                *v = lut[usize::from(*v)];
            }
        }
    }
    if e.saturation != 1.0 && n == 3 {
        let s = e.saturation;
        for p in px.data.chunks_exact_mut(c) {
            let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
            let l = 0.2126 * r + 0.7152 * g + 0.0722 * b;
            for (v, x) in p[..3].iter_mut().zip([r, g, b]) {
                *v = (l + (x - l) * s).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Box radii whose three passes approximate a Gaussian of `sigma` (Kovesi's method).
fn box_radii(sigma: f32) -> [usize; 3] {
    let n = 3.0f32;
    let ideal = (12.0 * sigma * sigma / n + 1.0).sqrt();
    let mut wl = ideal.floor() as i64;
    if wl % 2 == 0 {
        wl -= 1;
    }
    let wl = wl.max(1);
    let wu = wl + 2;
    let wl_f = wl as f32;
    let m = ((12.0 * sigma * sigma - n * wl_f * wl_f - 4.0 * n * wl_f - 3.0 * n)
        / (-4.0 * wl_f - 4.0))
        .round() as i64;
    let mut r = [0usize; 3];
    for (i, slot) in r.iter_mut().enumerate() {
        let w = if (i as i64) < m { wl } else { wu };
        *slot = usize::try_from((w - 1) / 2).unwrap_or(0);
    }
    r
}

/// One box pass of radius `r` over a line of `len` pixels of `c` interleaved channels, edges
/// extended.
fn box_line(src: &[f32], dst: &mut [f32], len: usize, c: usize, r: usize) {
    let norm = 1.0 / (2 * r + 1) as f32;
    let mut acc = [0f32; 4];
    // The first window is centred on pixel 0, its left half clamped to pixel 0.
    for k in 0..=2 * r {
        let j = k.saturating_sub(r).min(len - 1);
        for ch in 0..c {
            acc[ch] += src[j * c + ch];
        }
    }
    for i in 0..len {
        let out = i.saturating_sub(r) * c;
        let inn = (i + r + 1).min(len - 1) * c;
        for ch in 0..c {
            dst[i * c + ch] = acc[ch] * norm;
            acc[ch] += src[inn + ch] - src[out + ch];
        }
    }
}

/// One vertical box pass of radius `r` over all columns at once, in place: a running sum per
/// column, the original rows the window still needs kept in a ring of `r + 1` rows.
fn box_columns(data: &mut [u8], stride: usize, h: usize, r: usize) {
    let norm = 1.0 / (2 * r + 1) as f32;
    let mut acc = vec![0f32; stride];
    for k in 0..=2 * r {
        let j = k.saturating_sub(r).min(h - 1);
        for (a, v) in acc.iter_mut().zip(&data[j * stride..(j + 1) * stride]) {
            *a += f32::from(*v);
        }
    }
    let slots = r + 1;
    let mut ring = vec![0u8; slots * stride];
    for y in 0..h {
        let row = y * stride;
        ring[(y % slots) * stride..(y % slots + 1) * stride]
            .copy_from_slice(&data[row..row + stride]);
        for (v, a) in data[row..row + stride].iter_mut().zip(&acc) {
            *v = (a * norm).round().clamp(0.0, 255.0) as u8;
        }
        if y + 1 == h {
            break;
        }
        // Slide: the original of row max(y - r, 0) leaves, row min(y + r + 1, h - 1) (not yet
        // overwritten) enters.
        let out = y.saturating_sub(r) % slots;
        let inn = (y + r + 1).min(h - 1) * stride;
        let leaving = &ring[out * stride..(out + 1) * stride];
        let entering = &data[inn..inn + stride];
        for ((a, o), i) in acc.iter_mut().zip(leaving).zip(entering) {
            *a += f32::from(*i) - f32::from(*o);
        }
    }
}

/// Gaussian blur of `sigma` pixels (premultiplied when there is alpha), in place: each box pass
/// works on one row or column at a time, so the memory it needs is one line, whatever the
/// image's size.
pub fn gaussian(px: &mut Pixels, sigma: f32) {
    let (w, h, c) = (
        px.width as usize,
        px.height as usize,
        usize::from(px.channels),
    );
    if w == 0 || h == 0 || !(1..=4).contains(&c) || sigma <= 0.0 || px.data.len() < w * h * c {
        return;
    }
    let alpha = c == 4;
    if alpha {
        for p in px.data.chunks_exact_mut(4) {
            let a = u32::from(p[3]);
            for v in &mut p[..3] {
                *v = ((u32::from(*v) * a + 127) / 255) as u8;
            }
        }
    }
    let n = w * c;
    let (mut src, mut dst) = (vec![0f32; n], vec![0f32; n]);
    let q = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    for r in box_radii(sigma) {
        if r == 0 {
            continue;
        }
        for y in 0..h {
            let row = &mut px.data[y * w * c..(y + 1) * w * c];
            for (s, v) in src.iter_mut().zip(row.iter()) {
                *s = f32::from(*v);
            }
            box_line(&src, &mut dst, w, c, r);
            for (v, d) in row.iter_mut().zip(&dst) {
                *v = q(*d);
            }
        }
        box_columns(&mut px.data, w * c, h, r);
    }
    if alpha {
        for p in px.data.chunks_exact_mut(4) {
            let a = u32::from(p[3]);
            if let Some(half) = a.checked_div(2).filter(|_| a > 0) {
                for v in &mut p[..3] {
                    *v = ((u32::from(*v) * 255 + half) / a).min(255) as u8;
                }
            }
        }
    }
}

/// Unsharp mask: `v + amount × (v − blur(v, 1 px))`, `amount = strength / 2`.
pub fn sharpen(px: &mut Pixels, strength: f32) {
    let mut blurred = px.clone();
    gaussian(&mut blurred, 1.0);
    let amount = strength / 2.0;
    let c = usize::from(px.channels);
    let n = colour_channels(px);
    for (p, b) in px
        .data
        .chunks_exact_mut(c)
        .zip(blurred.data.chunks_exact(c))
    {
        for ch in 0..n {
            let v = f32::from(p[ch]);
            p[ch] = (v + amount * (v - f32::from(b[ch])))
                .round()
                .clamp(0.0, 255.0) as u8;
        }
    }
}

/// Blocks of `size`×`size` pixels filled with their mean.
pub fn pixelate(px: &mut Pixels, size: u32) {
    let (w, h, c) = (
        px.width as usize,
        px.height as usize,
        usize::from(px.channels),
    );
    let s = size as usize;
    if s < 2 || c == 0 {
        return;
    }
    let mut sum = vec![0u32; c];
    for by in (0..h).step_by(s) {
        for bx in (0..w).step_by(s) {
            let (ex, ey) = ((bx + s).min(w), (by + s).min(h));
            sum.iter_mut().for_each(|v| *v = 0);
            for y in by..ey {
                for x in bx..ex {
                    let p = (y * w + x) * c;
                    for (acc, v) in sum.iter_mut().zip(&px.data[p..p + c]) {
                        *acc += u32::from(*v);
                    }
                }
            }
            let n = ((ex - bx) * (ey - by)) as u32;
            for y in by..ey {
                for x in bx..ex {
                    let p = (y * w + x) * c;
                    for (v, acc) in px.data[p..p + c].iter_mut().zip(&sum) {
                        *v = ((acc + n / 2) / n) as u8;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: u32, h: u32, c: u8, f: impl Fn(u32, u32, usize) -> u8) -> Pixels {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                for ch in 0..usize::from(c) {
                    data.push(f(x, y, ch));
                }
            }
        }
        Pixels {
            width: w,
            height: h,
            channels: c,
            data,
        }
    }

    #[test]
    fn neutral_effects_change_nothing() {
        let src = img(9, 7, 3, |x, y, ch| (x * 20 + y * 7 + ch as u32 * 50) as u8);
        let mut p = src.clone();
        apply(&mut p, &Effects::default());
        assert_eq!(p, src);
        assert!(!Effects::default().any());
    }

    #[test]
    fn blur_keeps_flat_areas_and_mean_and_softens_edges() {
        let flat = img(20, 10, 3, |_, _, _| 100);
        let mut p = flat.clone();
        gaussian(&mut p, 5.0);
        assert_eq!(p, flat);
        let edge = img(40, 4, 3, |x, _, _| if x < 20 { 0 } else { 255 });
        let mut p = edge.clone();
        gaussian(&mut p, 3.0);
        let row: Vec<u8> = (0..40).map(|x| p.data[x * 3]).collect();
        assert!(row[19] > 40 && row[19] < 215 && row[20] > 40, "{row:?}");
        assert!(row[0] < 5 && row[39] > 250, "{row:?}");
        assert!(row.windows(2).all(|w| w[0] <= w[1]), "monotone: {row:?}");
    }

    #[test]
    fn blur_does_not_bleed_colour_from_transparent_pixels() {
        // Left half transparent red, right half opaque blue.
        let p0 = img(20, 2, 4, |x, _, ch| match (x < 10, ch) {
            (true, 0) => 255,
            (true, _) => 0,
            (false, 2) | (false, 3) => 255,
            _ => 0,
        });
        let mut p = p0.clone();
        gaussian(&mut p, 2.0);
        let px = &p.data[(10) * 4..(10) * 4 + 4];
        assert_eq!(px[0], 0, "no red in a blurred blue pixel: {px:?}");
        assert!(px[3] > 100 && px[3] < 255);
    }

    #[test]
    fn sharpen_increases_edge_contrast() {
        let edge = img(20, 4, 3, |x, _, _| if x < 10 { 100 } else { 150 });
        let mut p = edge.clone();
        sharpen(&mut p, 4.0);
        assert!(p.data[9 * 3] < 100 && p.data[10 * 3] > 150);
        assert_eq!(p.data[0], 100);
    }

    #[test]
    fn pixelate_fills_blocks_with_their_mean() {
        let mut p = img(4, 2, 1, |x, _, _| if x % 2 == 0 { 0 } else { 100 });
        pixelate(&mut p, 2);
        assert_eq!(p.data, vec![50; 8]);
    }

    #[test]
    fn colour_adjustments() {
        let mut p = img(1, 1, 3, |_, _, ch| [200, 100, 50][ch]);
        colour(
            &mut p,
            &Effects {
                saturation: 0.0,
                ..Effects::default()
            },
        );
        assert!(
            p.data[0] == p.data[1] && p.data[1] == p.data[2],
            "{:?}",
            p.data
        );
        let mut p = img(1, 1, 3, |_, _, _| 100);
        colour(
            &mut p,
            &Effects {
                brightness: 2.0,
                ..Effects::default()
            },
        );
        assert_eq!(p.data, vec![200; 3]);
        let mut p = img(1, 1, 3, |_, _, _| 64);
        colour(
            &mut p,
            &Effects {
                gamma: 2.0,
                ..Effects::default()
            },
        );
        assert!(p.data[0] > 120, "gamma > 1 brightens: {:?}", p.data);
        let mut p = img(1, 1, 3, |_, _, _| 200);
        colour(
            &mut p,
            &Effects {
                contrast: 0.0,
                ..Effects::default()
            },
        );
        assert_eq!(p.data, vec![128; 3]);
    }

    #[test]
    fn box_radii_grow_with_sigma() {
        assert!(box_radii(0.5).iter().all(|r| *r <= 1));
        let (a, b) = (box_radii(2.0), box_radii(20.0));
        assert!(b[0] > a[0]);
    }
}
