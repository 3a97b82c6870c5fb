//! Placeholders shown while an image loads: a ThumbHash and the dominant colour.

use crate::pipeline::Pixels;
use base64::Engine;
use serde_json::{json, Value};

/// `{"thumbhash": base64, "dominant_color": "#rrggbb"}` from pixels at most 100×100.
pub fn compute(px: &Pixels) -> Value {
    let rgba = to_rgba(px);
    let w = px.width as usize;
    let h = px.height as usize;
    let hash = if w <= 100 && h <= 100 && w * h > 0 {
        Some(
            base64::engine::general_purpose::STANDARD
                .encode(thumbhash::rgba_to_thumb_hash(w, h, &rgba)),
        )
    } else {
        None
    };
    json!({ "thumbhash": hash, "dominant_color": dominant(&rgba) })
}

fn to_rgba(px: &Pixels) -> Vec<u8> {
    match px.channels {
        4 => px.data.clone(),
        3 => px
            .data
            .chunks_exact(3)
            .flat_map(|c| [c[0], c[1], c[2], 255])
            .collect(),
        _ => px.data.iter().flat_map(|&g| [g, g, g, 255]).collect(),
    }
}

/// The mean colour of the most populated bucket (4 bits per channel) of the opaque-enough
/// pixels: the colour that covers most of the image, not a muddy average of all of it.
fn dominant(rgba: &[u8]) -> String {
    let mut buckets = vec![(0u32, [0u64; 3]); 4096];
    for p in rgba.chunks_exact(4).filter(|p| p[3] >= 128) {
        let i =
            (usize::from(p[0] >> 4) << 8) | (usize::from(p[1] >> 4) << 4) | usize::from(p[2] >> 4);
        let b = &mut buckets[i];
        b.0 += 1;
        for (sum, &v) in b.1.iter_mut().zip(p) {
            *sum += u64::from(v);
        }
    }
    let Some((n, sum)) = buckets.iter().max_by_key(|b| b.0).filter(|b| b.0 > 0) else {
        return "#000000".into();
    };
    let n = u64::from(*n);
    format!("#{:02x}{:02x}{:02x}", sum[0] / n, sum[1] / n, sum[2] / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominant_colour_is_the_largest_area() {
        // 3 red pixels and 1 blue one: red wins.
        let px = Pixels {
            width: 2,
            height: 2,
            channels: 3,
            data: vec![250, 0, 0, 250, 0, 0, 250, 0, 0, 0, 0, 250],
        };
        let v = compute(&px);
        assert_eq!(v["dominant_color"], "#fa0000");
        assert!(v["thumbhash"].as_str().is_some_and(|s| !s.is_empty()));
    }
}
