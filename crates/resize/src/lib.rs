//! Non-generic wrapper over `fast_image_resize`.
//!
//! Owns: one function that crops and resizes an interleaved 8-bit buffer with 1, 3 or 4 channels.
//! Why a crate of its own: `Resizer::resize` is generic, so its SIMD code is instantiated in the
//! calling crate. Behind this plain function it is compiled (optimised) once, here, instead of on
//! every rebuild of `refract` (about 45 s of release codegen), and runs fast in dev/test builds.
//! Four-channel input is treated as RGBA: alpha is premultiplied before filtering and divided
//! after, so transparent edges get no dark fringes.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

/// A crop rectangle in source pixels (fractional edges allowed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crop {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// Why a resize could not run (bad sizes or a buffer that does not match them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResizeError(pub String);

impl std::fmt::Display for ResizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResizeError {}

/// Crop `src` (`src_w`×`src_h`, `channels` interleaved u8) to `crop` and resize it to
/// `dst_w`×`dst_h` with Lanczos3. Returns the new buffer.
pub fn resize(
    src: &[u8],
    channels: u8,
    src_w: u32,
    src_h: u32,
    crop: Crop,
    dst_w: u32,
    dst_h: u32,
) -> Result<Vec<u8>, ResizeError> {
    if dst_w == 0 || dst_h == 0 || src_w == 0 || src_h == 0 {
        return Err(ResizeError("zero-sized image".into()));
    }
    let pixel_type = match channels {
        1 => PixelType::U8,
        2 => PixelType::U8x2,
        3 => PixelType::U8x3,
        4 => PixelType::U8x4,
        n => return Err(ResizeError(format!("unsupported channel count {n}"))),
    };
    let src_img =
        ImageRef::new(src_w, src_h, src, pixel_type).map_err(|e| ResizeError(e.to_string()))?;
    let mut dst = Image::new(dst_w, dst_h, pixel_type);
    let opts = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .crop(crop.left, crop.top, crop.width, crop.height)
        .use_alpha(channels == 4);
    Resizer::new()
        .resize(&src_img, &mut dst, &opts)
        .map_err(|e| ResizeError(e.to_string()))?;
    Ok(dst.into_vec())
}
