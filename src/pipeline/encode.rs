//! Step 8: encode. JPEG with mozjpeg-rs (trellis quantisation, optimised Huffman, 4:2:0) up to
//! `jpeg_trellis_max_pixels`, libjpeg-turbo (optimised Huffman, 4:2:0) above; PNG with `image`;
//! WebP with libwebp; AVIF with libaom (through libheif, feature `heif`) or ravif (rav1e with
//! asm, feature `rav1e`), as `avif_encoder` chooses.
//! Nothing but pixels is written: no EXIF, no XMP.

use super::{PipelineError, Pixels};
use crate::pipeline::format::ImageFormat;
use serde::{Deserialize, Serialize};

/// The `[formats]` config section: which outputs negotiation may pick, and encoder defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncodeConfig {
    /// Allow AVIF output.
    pub avif: bool,
    /// Allow WebP output.
    pub webp: bool,
    /// Default JPEG quality.
    pub jpeg_quality: u8,
    /// Default WebP quality.
    pub webp_quality: u8,
    /// Default AVIF quality.
    pub avif_quality: u8,
    /// AVIF speed 1..=10 on the request path (higher = faster): libaom's cpu-used with `aom`
    /// (10 counts as 9), rav1e's speed with `rav1e`.
    pub avif_speed: u8,
    /// AVIF speed for encodes in the background (over `limits.avif_budget_ms`).
    pub avif_background_speed: u8,
    /// libwebp method 0..=6 (higher = smaller and slower).
    pub webp_method: u8,
    /// JPEG outputs up to this many pixels are encoded with trellis quantisation (mozjpeg-rs:
    /// ~10 % fewer bytes at equal quality, ~45 µs per 1000 pixels); larger ones with
    /// libjpeg-turbo. 0 = never.
    pub jpeg_trellis_max_pixels: u64,
    /// The encoder of AVIFs made in the background (over `limits.avif_budget_ms`): `aom`
    /// (libaom, fewer bytes at equal quality; a build without the `heif` feature uses rav1e
    /// instead, at the same speed number) or `rav1e`.
    pub avif_background_encoder: AvifEncoder,
    /// The encoder of AVIFs made on the request path (libaom at cpu-used 9 by default).
    pub avif_encoder: AvifEncoder,
}

/// An AV1 encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AvifEncoder {
    /// rav1e (pure Rust with asm): `avif_speed` 1..=10.
    Rav1e,
    /// libaom: speed 0..=9 (aom's cpu-used; `avif_speed` 10 counts as 9).
    Aom,
}

#[cfg(not(any(feature = "heif", feature = "rav1e")))]
compile_error!("AVIF output needs an encoder: build with the `heif` or the `rav1e` feature");

impl AvifEncoder {
    /// The encoder this build runs: the other one stands in for one that is not built (aom
    /// comes with the `heif` feature, rav1e with `rav1e`).
    pub fn effective(self) -> Self {
        match self {
            Self::Aom if cfg!(feature = "heif") => Self::Aom,
            Self::Rav1e if cfg!(feature = "rav1e") => Self::Rav1e,
            _ if cfg!(feature = "heif") => Self::Aom,
            _ => Self::Rav1e,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Rav1e => "rav1e",
            Self::Aom => "aom",
        }
    }
}

impl Default for EncodeConfig {
    fn default() -> Self {
        Self {
            avif: true,
            webp: true,
            jpeg_quality: 80,
            webp_quality: 80,
            avif_quality: 60,
            avif_speed: 9,
            avif_background_speed: 5,
            webp_method: 4,
            jpeg_trellis_max_pixels: 300_000,
            avif_background_encoder: AvifEncoder::Aom,
            avif_encoder: AvifEncoder::Aom,
        }
    }
}

impl EncodeConfig {
    /// The quality used when the request has no `q`.
    pub fn default_quality(&self, f: ImageFormat) -> u8 {
        match f {
            ImageFormat::Webp => self.webp_quality,
            ImageFormat::Avif => self.avif_quality,
            _ => self.jpeg_quality,
        }
    }

    /// Check ranges; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (k, v) in [
            ("jpeg_quality", self.jpeg_quality),
            ("webp_quality", self.webp_quality),
            ("avif_quality", self.avif_quality),
        ] {
            if !(1..=100).contains(&v) {
                return Err(format!("formats.{k} must be 1..=100"));
            }
        }
        if !(1..=10).contains(&self.avif_speed) {
            return Err("formats.avif_speed must be 1..=10".into());
        }
        if !(1..=10).contains(&self.avif_background_speed) {
            return Err("formats.avif_background_speed must be 1..=10".into());
        }
        if self.webp_method > 6 {
            return Err("formats.webp_method must be 0..=6".into());
        }
        Ok(())
    }

    /// A fingerprint of everything that changes output bytes (part of the cache key).
    pub fn fingerprint(&self) -> String {
        format!(
            "jq{}wq{}aq{}as{}ab{}wm{}jt{}ae{}{}",
            self.jpeg_quality,
            self.webp_quality,
            self.avif_quality,
            self.avif_speed,
            self.avif_background_speed,
            self.webp_method,
            self.jpeg_trellis_max_pixels,
            self.avif_encoder.name(),
            self.avif_background_encoder.name(),
        )
    }

    /// The same settings with AVIF at the background encoder and speed.
    pub fn for_background(&self) -> Self {
        Self {
            avif_speed: self.avif_background_speed,
            avif_encoder: self.avif_background_encoder,
            ..self.clone()
        }
    }
}

/// Estimated milliseconds of one AVIF encode of `pixels` at `speed`, one thread, scaled by area
/// (how both encoders' cost grows). Measured on the 2-core reference machine, the higher of two
/// detailed photos (1200 and 2560 px wide outputs, ms per megapixel): rav1e 0.8 with asm at
/// speed 10 = 500; libaom 3.6 at cpu-used 9 = 95, 8 = 275, 7 = 470, 6 = 1000, 5 = 3500. (Smooth
/// images encode several times faster with libaom; the estimate is for the detailed ones.)
pub fn avif_cost_ms(pixels: u64, speed: u8, encoder: AvifEncoder) -> u64 {
    let ms_per_megapixel: u64 = match (encoder.effective(), speed) {
        (AvifEncoder::Rav1e, 10..) => 500,
        (AvifEncoder::Rav1e, 9) => 1_200,
        (AvifEncoder::Rav1e, 7 | 8) => 2_500,
        (AvifEncoder::Rav1e, 5 | 6) => 2_700,
        (AvifEncoder::Rav1e, _) => 3_000,
        (AvifEncoder::Aom, 9..) => 95,
        (AvifEncoder::Aom, 8) => 275,
        (AvifEncoder::Aom, 7) => 470,
        (AvifEncoder::Aom, 6) => 1_000,
        (AvifEncoder::Aom, 5) => 3_500,
        (AvifEncoder::Aom, _) => 6_000,
    };
    pixels.saturating_mul(ms_per_megapixel) / 1_000_000
}

/// Encode `px` as `format` at `quality` (1..=100).
pub fn encode(
    px: &Pixels,
    format: ImageFormat,
    quality: u8,
    cfg: &EncodeConfig,
) -> Result<Vec<u8>, PipelineError> {
    let q = quality.clamp(1, 100);
    match format {
        ImageFormat::Jpeg
            if u64::from(px.width) * u64::from(px.height) <= cfg.jpeg_trellis_max_pixels =>
        {
            jpeg_trellis(px, q)
        }
        ImageFormat::Jpeg => jpeg(px, q),
        ImageFormat::Png => png(px),
        ImageFormat::Webp => webp(px, q, cfg.webp_method),
        ImageFormat::Avif => match cfg.avif_encoder.effective() {
            #[cfg(feature = "heif")]
            AvifEncoder::Aom => super::heif::encode_avif(px, q, cfg.avif_speed.min(9)),
            #[cfg(feature = "rav1e")]
            AvifEncoder::Rav1e => avif(px, q, cfg.avif_speed),
            #[allow(unreachable_patterns)]
            other => Err(PipelineError::Bug(format!("{other:?} is not built in"))),
        },
        ImageFormat::Gif | ImageFormat::Heic | ImageFormat::Jxl => {
            Err(PipelineError::Bug(format!("{format} output requested")))
        }
    }
}

fn enc_err(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Encode(e.to_string())
}

fn jpeg(px: &Pixels, q: u8) -> Result<Vec<u8>, PipelineError> {
    use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};
    let format = if px.channels == 4 {
        PixelFormat::RGBA
    } else {
        PixelFormat::RGB
    };
    let (w, h) = (px.width as usize, px.height as usize);
    let mut c = Compressor::new().map_err(enc_err)?;
    c.set_quality(i32::from(q)).map_err(enc_err)?;
    c.set_subsamp(Subsamp::Sub2x2).map_err(enc_err)?;
    c.set_optimize(true).map_err(enc_err)?;
    let img = Image {
        pixels: px.data.as_slice(),
        width: w,
        pitch: w * format.size(),
        height: h,
        format,
    };
    c.compress_to_vec(img).map_err(enc_err)
}

/// Baseline JPEG with mozjpeg's trellis quantisation of the AC coefficients (the DC pass cost
/// 20 % of the time for 0.01 % of the bytes at 400 px), optimised Huffman tables and overshoot
/// deringing, 4:2:0.
fn jpeg_trellis(px: &Pixels, q: u8) -> Result<Vec<u8>, PipelineError> {
    let enc = mozjpeg_rs::Encoder::new(mozjpeg_rs::Preset::BaselineBalanced)
        .quality(q)
        .subsampling(mozjpeg_rs::Subsampling::S420)
        .trellis(mozjpeg_rs::TrellisConfig::default().dc_trellis(false));
    let out = if px.channels == 4 {
        enc.encode_rgba(&px.data, px.width, px.height)
    } else {
        enc.encode_rgb(&px.data, px.width, px.height)
    };
    out.map_err(enc_err)
}

fn png(px: &Pixels) -> Result<Vec<u8>, PipelineError> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::{ExtendedColorType, ImageEncoder};
    let mut out = Vec::new();
    let color = if px.channels == 4 {
        ExtendedColorType::Rgba8
    } else {
        ExtendedColorType::Rgb8
    };
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
        .write_image(&px.data, px.width, px.height, color)
        .map_err(enc_err)?;
    Ok(out)
}

fn webp(px: &Pixels, q: u8, method: u8) -> Result<Vec<u8>, PipelineError> {
    let enc = if px.channels == 4 {
        webp::Encoder::from_rgba(&px.data, px.width, px.height)
    } else {
        webp::Encoder::from_rgb(&px.data, px.width, px.height)
    };
    let mut config = webp::WebPConfig::new().map_err(|()| enc_err("libwebp config"))?;
    config.quality = f32::from(q);
    config.method = i32::from(method);
    let mem = enc
        .encode_advanced(&config)
        .map_err(|e| enc_err(format!("{e:?}")))?;
    Ok(mem.to_vec())
}

#[cfg(feature = "rav1e")]
fn avif(px: &Pixels, q: u8, speed: u8) -> Result<Vec<u8>, PipelineError> {
    use rgb::FromSlice;
    let enc = ravif::Encoder::new()
        .with_quality(f32::from(q))
        .with_alpha_quality(f32::from(q))
        .with_speed(speed.clamp(1, 10))
        .with_num_threads(Some(1));
    let (w, h) = (px.width as usize, px.height as usize);
    let res = if px.channels == 4 {
        enc.encode_rgba(ravif::Img::new(px.data.as_rgba(), w, h))
    } else {
        enc.encode_rgb(ravif::Img::new(px.data.as_rgb(), w, h))
    };
    Ok(res.map_err(enc_err)?.avif_file)
}

#[cfg(test)]
mod cost_tests {
    use super::*;

    #[test]
    #[cfg(feature = "rav1e")]
    fn avif_cost_grows_with_area_and_effort() {
        let rav1e = AvifEncoder::Rav1e;
        assert_eq!(avif_cost_ms(90_000, 10, rav1e), 45);
        assert!(avif_cost_ms(90_000, 6, rav1e) > 200);
        assert!(avif_cost_ms(4_000_000, 10, rav1e) > 1_000);
        assert_eq!(avif_cost_ms(u64::MAX, 1, rav1e), u64::MAX / 1_000_000);
        if cfg!(feature = "heif") {
            let aom = AvifEncoder::Aom;
            for speed in 5..=9 {
                assert!(
                    avif_cost_ms(1_000_000, speed, aom) < avif_cost_ms(1_000_000, speed - 1, aom)
                );
            }
            assert!(
                avif_cost_ms(2_000_000, 9, aom) < 250,
                "two megapixels at the default speed in the budget"
            );
            assert!(avif_cost_ms(500_000, 9, aom) < avif_cost_ms(500_000, 10, rav1e));
        }
    }
}
