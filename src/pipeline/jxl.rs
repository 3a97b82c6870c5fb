//! JPEG XL sources through jxl-oxide (pure Rust, one thread): the first keyframe, oriented by
//! the codestream's own orientation, rendered in sRGB (its colour management through moxcms),
//! alpha kept, samples reduced to 8 bits.
//!
//! Invariants: the header facts come from the image header before any pixel is rendered; the
//! decoder's allocations are bounded by the pixel count the probe saw.

use super::probe::Probe;
use super::{PipelineError, Pixels};
use crate::pipeline::format::ImageFormat;
use jxl_oxide::{AllocTracker, EnumColourEncoding, JxlImage, PixelFormat, RenderingIntent};

fn corrupt(e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Corrupt(format!("jxl: {e}"))
}

fn open(bytes: &[u8], budget: Option<usize>) -> Result<JxlImage, PipelineError> {
    let mut builder = JxlImage::builder();
    if let Some(limit) = budget {
        builder = builder.alloc_tracker(AllocTracker::with_limit(limit));
    }
    let mut img = builder.read(std::io::Cursor::new(bytes)).map_err(corrupt)?;
    img.set_cms(jxl_oxide::Moxcms);
    img.request_color_encoding(EnumColourEncoding::srgb(RenderingIntent::Relative));
    Ok(img)
}

fn channels(img: &JxlImage) -> Result<u8, PipelineError> {
    match img.pixel_format() {
        PixelFormat::Rgb | PixelFormat::Gray => Ok(3),
        PixelFormat::Rgba | PixelFormat::Graya => Ok(4),
        PixelFormat::Cmyk | PixelFormat::Cmyka => Err(PipelineError::Unsupported(
            "CMYK JPEG XL input is not supported".into(),
        )),
    }
}

/// The header facts of a JPEG XL source; the size is the displayed one (orientation applied).
pub fn probe(bytes: &[u8]) -> Result<Probe, PipelineError> {
    let img = open(bytes, Some((64 << 20) + bytes.len()))?;
    let ch = channels(&img)?;
    Ok(Probe {
        format: ImageFormat::Jxl,
        width: img.width(),
        height: img.height(),
        has_alpha: ch == 4,
        orientation: 1,
        icc: None,
        components: ch,
        adobe: false,
        frames: 1,
        progressive: false,
        exif: None,
        coded_pixels: 0,
    })
}

/// Render the first keyframe to 8-bit sRGB (RGB or RGBA).
pub fn decode(bytes: &[u8], probe: &Probe) -> Result<Pixels, PipelineError> {
    // Room for the float planes of every channel plus decoder scratch.
    let pixels = u64::from(probe.width) * u64::from(probe.height);
    let budget = pixels
        .saturating_mul(4 * 5)
        .saturating_add(bytes.len() as u64)
        .saturating_add(64 << 20);
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    let img = open(bytes, Some(budget))?;
    let ch = channels(&img)?;
    if img.num_loaded_keyframes() == 0 {
        return Err(PipelineError::Corrupt("jxl: no frame".into()));
    }
    let render = img.render_frame(0).map_err(corrupt)?;
    let mut stream = render.stream();
    let (w, h) = (stream.width(), stream.height());
    if w != probe.width || h != probe.height || stream.channels() != u32::from(ch) {
        return Err(PipelineError::Corrupt(
            "jxl: rendered frame disagrees with its header".into(),
        ));
    }
    let mut data = vec![0u8; w as usize * h as usize * usize::from(ch)];
    stream.write_to_buffer::<u8>(&mut data);
    // Associated (premultiplied) alpha is rendered as stored: make it straight.
    let associated = img
        .image_header()
        .metadata
        .ec_info
        .iter()
        .any(|e| e.alpha_associated() == Some(true));
    if ch == 4 && associated {
        super::decode::unpremultiply(&mut data);
    }
    Ok(Pixels {
        width: w,
        height: h,
        channels: ch,
        data,
    })
}
