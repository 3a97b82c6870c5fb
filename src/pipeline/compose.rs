//! Step 7: pad to the canvas (`contain`), flatten alpha onto `bg` when the output has no alpha,
//! and drop an alpha channel that is fully opaque (smaller output, same pixels).

use super::fit::Geometry;
use super::Pixels;
use crate::pipeline::transform::Rgba;

/// Finish `px` (already resized to `geom.out_*`) for an output that does or does not support alpha.
pub fn finish(px: Pixels, geom: &Geometry, bg: Rgba, output_alpha: bool) -> Pixels {
    let px = if geom.canvas_w != px.width || geom.canvas_h != px.height {
        pad(px, geom, bg)
    } else {
        px
    };
    if px.channels != 4 {
        return px;
    }
    if !output_alpha {
        return flatten(px, bg);
    }
    if px.data.chunks_exact(4).all(|p| p[3] == 255) {
        return drop_alpha(px);
    }
    px
}

fn pad(px: Pixels, geom: &Geometry, bg: Rgba) -> Pixels {
    let ch = if px.channels == 4 || bg[3] < 255 {
        4usize
    } else {
        3
    };
    let (cw, chh) = (geom.canvas_w as usize, geom.canvas_h as usize);
    let mut data = Vec::with_capacity(cw * chh * ch);
    for _ in 0..cw * chh {
        data.extend_from_slice(&bg[..ch]);
    }
    let sc = usize::from(px.channels);
    for y in 0..px.height as usize {
        let ty = y + geom.offset_y as usize;
        if ty >= chh {
            break;
        }
        for x in 0..px.width as usize {
            let tx = x + geom.offset_x as usize;
            if tx >= cw {
                break;
            }
            let s = (y * px.width as usize + x) * sc;
            let d = (ty * cw + tx) * ch;
            data[d..d + 3].copy_from_slice(&px.data[s..s + 3]);
            if ch == 4 {
                data[d + 3] = if sc == 4 { px.data[s + 3] } else { 255 };
            }
        }
    }
    Pixels {
        width: geom.canvas_w,
        height: geom.canvas_h,
        channels: ch as u8,
        data,
    }
}

fn flatten(px: Pixels, bg: Rgba) -> Pixels {
    let mut data = Vec::with_capacity(px.data.len() / 4 * 3);
    for p in px.data.chunks_exact(4) {
        let a = u32::from(p[3]);
        for i in 0..3 {
            let v = (u32::from(p[i]) * a + u32::from(bg[i]) * (255 - a) + 127) / 255;
            data.push(v as u8);
        }
    }
    Pixels {
        width: px.width,
        height: px.height,
        channels: 3,
        data,
    }
}

fn drop_alpha(px: Pixels) -> Pixels {
    let data = px
        .data
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    Pixels {
        width: px.width,
        height: px.height,
        channels: 3,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fit::Rect;
    use super::*;

    fn geom(w: u32, h: u32, cw: u32, chh: u32, ox: u32, oy: u32) -> Geometry {
        Geometry {
            crop: Rect {
                left: 0.0,
                top: 0.0,
                width: f64::from(w),
                height: f64::from(h),
            },
            out_w: w,
            out_h: h,
            canvas_w: cw,
            canvas_h: chh,
            offset_x: ox,
            offset_y: oy,
        }
    }

    #[test]
    fn compose_flattens_alpha_onto_bg() {
        let px = Pixels {
            width: 1,
            height: 1,
            channels: 4,
            data: vec![0, 0, 0, 0],
        };
        let out = finish(px, &geom(1, 1, 1, 1, 0, 0), [255, 0, 0, 255], false);
        assert_eq!((out.channels, out.data), (3, vec![255, 0, 0]));
    }

    #[test]
    fn compose_pads_with_bg_and_keeps_transparency_when_asked() {
        let px = Pixels {
            width: 1,
            height: 1,
            channels: 3,
            data: vec![9, 9, 9],
        };
        let out = finish(px, &geom(1, 1, 1, 3, 0, 1), [0, 0, 0, 0], true);
        assert_eq!((out.width, out.height, out.channels), (1, 3, 4));
        assert_eq!(out.data, vec![0, 0, 0, 0, 9, 9, 9, 255, 0, 0, 0, 0]);
    }

    #[test]
    fn compose_drops_opaque_alpha() {
        let px = Pixels {
            width: 1,
            height: 1,
            channels: 4,
            data: vec![1, 2, 3, 255],
        };
        let out = finish(px, &geom(1, 1, 1, 1, 0, 0), [255; 4], true);
        assert_eq!((out.channels, out.data), (3, vec![1, 2, 3]));
    }
}
