//! Step 3: decode to RGB/RGBA. JPEG goes through libjpeg-turbo with shrink-on-load in the DCT
//! domain (1/2, 1/4, 1/8: the largest scale that still covers the output, as sharp and imgproxy
//! choose it);
//! CMYK/YCCK JPEGs are converted to RGB here. PNG, GIF (first frame) and WebP go through `image`;
//! AVIF and HEIC through `heif` (libheif), JPEG XL through `jxl` (jxl-oxide).

use super::probe::{reader, Probe};
use super::{PipelineError, Pixels};
use crate::pipeline::format::ImageFormat;

/// The DCT scale denominator for a source/target ratio of `fx` × `fy`: the largest of 8, 4, 2
/// that the ratio reaches, so the decode is never smaller than the output (libjpeg rounds the
/// scaled size up) and the resampler does the rest. sharp (`fastShrinkOnLoad`, its default) and
/// imgproxy choose the same way; libvips' own thumbnail leaves 2× more, which costs a 400 px
/// output of a 20 MP JPEG a 1/4 decode instead of 1/8 (bytes at equal SSIMULACRA2 with this
/// rule: `bench/RESULTS.md`).
pub fn shrink_factor(fx: f64, fy: f64) -> u32 {
    let f = fx.min(fy);
    [8, 4, 2]
        .into_iter()
        .find(|&s| f >= f64::from(s))
        .unwrap_or(1)
}

/// Decode `bytes` (already probed). `shrink` is a DCT scale denominator (1, 2, 4 or 8), used for
/// JPEG only.
pub fn decode(bytes: &[u8], probe: &Probe, shrink: u32) -> Result<Pixels, PipelineError> {
    match probe.format {
        ImageFormat::Jpeg => decode_jpeg(bytes, probe, shrink),
        #[cfg(feature = "heif")]
        ImageFormat::Avif | ImageFormat::Heic => super::heif::decode(bytes, probe),
        #[cfg(feature = "jxl")]
        ImageFormat::Jxl => super::jxl::decode(bytes, probe),
        f => decode_image(bytes, f, probe),
    }
}

fn decode_jpeg(bytes: &[u8], probe: &Probe, shrink: u32) -> Result<Pixels, PipelineError> {
    use turbojpeg::{Decompressor, Image, PixelFormat, ScalingFactor};
    let corrupt = |e: turbojpeg::Error| PipelineError::Corrupt(e.to_string());
    let mut d = Decompressor::new().map_err(|e| PipelineError::Bug(e.to_string()))?;
    let header = d.read_header(bytes).map_err(corrupt)?;
    if header.width != probe.width as usize || header.height != probe.height as usize {
        return Err(PipelineError::Corrupt(
            "JPEG frame size disagrees with its header".into(),
        ));
    }
    let factor = ScalingFactor::new(1, shrink.clamp(1, 8) as usize);
    d.set_scaling_factor(factor).map_err(corrupt)?;
    let scaled = header.scaled(factor);
    let (w, h) = (scaled.width.max(1), scaled.height.max(1));
    let cmyk = probe.components == 4;
    let format = if cmyk {
        PixelFormat::CMYK
    } else {
        PixelFormat::RGB
    };
    let ch = format.size();
    let mut pixels = vec![0u8; w * h * ch];
    d.decompress(
        bytes,
        Image {
            pixels: pixels.as_mut_slice(),
            width: w,
            pitch: w * ch,
            height: h,
            format,
        },
    )
    .map_err(corrupt)?;
    let data = if cmyk {
        cmyk_to_rgb(&pixels, probe.adobe)
    } else {
        pixels
    };
    Ok(Pixels {
        width: w as u32,
        height: h as u32,
        channels: 3,
        data,
    })
}

/// Naive CMYK → RGB. Adobe (Photoshop) JPEGs store CMYK inverted.
fn cmyk_to_rgb(src: &[u8], inverted: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    for p in src.chunks_exact(4) {
        let (c, m, y, k) = if inverted {
            (
                u32::from(p[0]),
                u32::from(p[1]),
                u32::from(p[2]),
                u32::from(p[3]),
            )
        } else {
            (
                255 - u32::from(p[0]),
                255 - u32::from(p[1]),
                255 - u32::from(p[2]),
                255 - u32::from(p[3]),
            )
        };
        out.extend_from_slice(&[
            (c * k / 255) as u8,
            (m * k / 255) as u8,
            (y * k / 255) as u8,
        ]);
    }
    out
}

fn decode_image(bytes: &[u8], format: ImageFormat, probe: &Probe) -> Result<Pixels, PipelineError> {
    // Room for the decoded frame at 8 bytes per pixel (16-bit RGBA) plus decoder scratch.
    let budget = u64::from(probe.width) * u64::from(probe.height) * 8 + (32 << 20);
    let img = reader(bytes, format, budget)?
        .decode()
        .map_err(|e| PipelineError::Corrupt(e.to_string()))?;
    let (width, height) = (img.width(), img.height());
    let (channels, data) = if probe.has_alpha || img.color().has_alpha() {
        (4, img.into_rgba8().into_raw())
    } else {
        (3, img.into_rgb8().into_raw())
    };
    Ok(Pixels {
        width,
        height,
        channels,
        data,
    })
}

/// Premultiplied RGBA → straight RGBA (the rest of the pipeline works on straight alpha).
pub(super) fn unpremultiply(data: &mut [u8]) {
    for p in data.chunks_exact_mut(4) {
        let a = u32::from(p[3]);
        if a > 0 && a < 255 {
            for c in &mut p[..3] {
                *c = ((u32::from(*c) * 255 + a / 2) / a).min(255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpremultiply_restores_straight_alpha() {
        let mut px = [64, 32, 0, 128, 10, 10, 10, 0, 200, 100, 50, 255];
        unpremultiply(&mut px);
        assert_eq!(px, [128, 64, 0, 128, 10, 10, 10, 0, 200, 100, 50, 255]);
    }

    #[test]
    fn shrink_is_the_largest_scale_that_covers_the_output() {
        assert_eq!(shrink_factor(1.0, 1.0), 1);
        assert_eq!(shrink_factor(1.99, 10.0), 1);
        assert_eq!(shrink_factor(2.0, 2.0), 2);
        assert_eq!(shrink_factor(3.2, 3.2), 2);
        assert_eq!(shrink_factor(4.7, 9.0), 4);
        assert_eq!(shrink_factor(7.9, 7.9), 4);
        assert_eq!(shrink_factor(15.07, 15.07), 8);
        assert_eq!(shrink_factor(16.0, 20.0), 8);
    }

    #[test]
    fn cmyk_conversion_handles_both_polarities() {
        assert_eq!(
            cmyk_to_rgb(&[255, 255, 255, 255], true),
            vec![255, 255, 255]
        );
        assert_eq!(cmyk_to_rgb(&[0, 0, 0, 0], false), vec![255, 255, 255]);
        assert_eq!(cmyk_to_rgb(&[0, 255, 255, 255], true), vec![0, 255, 255]);
    }
}
