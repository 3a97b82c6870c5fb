//! Step 4: apply EXIF orientation (all 8 values) so the pixels are upright.

use super::Pixels;

/// Return `px` turned upright for EXIF `orientation` (1 = as stored).
pub fn apply(px: Pixels, orientation: u8) -> Pixels {
    if !(2..=8).contains(&orientation) {
        return px;
    }
    let (w, h, c) = (
        px.width as usize,
        px.height as usize,
        usize::from(px.channels),
    );
    let (dw, dh) = if orientation >= 5 { (h, w) } else { (w, h) };
    let mut out = vec![0u8; px.data.len()];
    for y in 0..dh {
        for x in 0..dw {
            // Source coordinate of display pixel (x, y).
            let (sx, sy) = match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x),
            };
            let s = (sy * w + sx) * c;
            let d = (y * dw + x) * c;
            out[d..d + c].copy_from_slice(&px.data[s..s + c]);
        }
    }
    Pixels {
        width: dw as u32,
        height: dh as u32,
        channels: px.channels,
        data: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A 2x3 grey image whose values are their stored index.
    fn img() -> Pixels {
        Pixels {
            width: 2,
            height: 3,
            channels: 1,
            data: vec![0, 1, 2, 3, 4, 5],
        }
    }

    #[test]
    fn orient_all_eight() {
        let cases: [(u8, (u32, u32), [u8; 6]); 8] = [
            (1, (2, 3), [0, 1, 2, 3, 4, 5]),
            (2, (2, 3), [1, 0, 3, 2, 5, 4]),
            (3, (2, 3), [5, 4, 3, 2, 1, 0]),
            (4, (2, 3), [4, 5, 2, 3, 0, 1]),
            (5, (3, 2), [0, 2, 4, 1, 3, 5]),
            (6, (3, 2), [4, 2, 0, 5, 3, 1]),
            (7, (3, 2), [5, 3, 1, 4, 2, 0]),
            (8, (3, 2), [1, 3, 5, 0, 2, 4]),
        ];
        for (o, size, want) in cases {
            let p = apply(img(), o);
            assert_eq!((p.width, p.height), size, "orientation {o}");
            assert_eq!(p.data, want, "orientation {o}");
        }
    }
}
