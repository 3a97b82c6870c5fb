//! AVIF and HEIC/HEIF sources through libheif (dav1d for AV1, libde265 for HEVC): the primary
//! image, with its `irot`/`imir`/`clap` applied by libheif (the HEIF rule: these boxes, not an
//! EXIF tag, say how to show it), alpha kept, more than 8 bits reduced to 8 by libheif, and the
//! colour described by an ICC profile or an `nclx` box handed to `colour` like a JPEG's ICC.
//!
//! Invariants: the header facts come from the container boxes before any pixel is decoded;
//! decoding uses the calling thread only (the CPU pool counts one thread per job).

use super::probe::Probe;
use super::{PipelineError, Pixels};
use crate::pipeline::format::ImageFormat;
use libheif_rs::{
    ColorPrimaries, ColorSpace, DecodingOptions, HeifContext, ImageHandle, LibHeif, RgbChroma,
};
use std::sync::OnceLock;

fn lib() -> &'static LibHeif {
    static LIB: OnceLock<LibHeif> = OnceLock::new();
    LIB.get_or_init(LibHeif::new)
}

fn corrupt(format: ImageFormat) -> impl Fn(libheif_rs::HeifError) -> PipelineError {
    move |e| PipelineError::Corrupt(format!("{format}: {e}"))
}

/// The context and primary image; `max_pixels` bounds every image item libheif (and dav1d,
/// which takes its frame limit from it) will decode.
fn open(
    bytes: &[u8],
    format: ImageFormat,
    max_pixels: Option<u64>,
) -> Result<(HeifContext<'_>, ImageHandle), PipelineError> {
    let mut ctx = HeifContext::new().map_err(|e| PipelineError::Bug(e.to_string()))?;
    if let Some(max) = max_pixels {
        let mut limits = ctx.security_limits();
        limits.set_max_image_size_pixels(max.max(1));
        ctx.set_security_limits(&limits)
            .map_err(|e| PipelineError::Bug(e.to_string()))?;
    }
    ctx.read_bytes(bytes).map_err(corrupt(format))?;
    // Grid images (an iPhone HEIC is 48 tiles) decode in this thread, not in libheif's own.
    ctx.set_max_decoding_threads(0);
    let handle = ctx.primary_image_handle().map_err(corrupt(format))?;
    Ok((ctx, handle))
}

/// The header facts of an AVIF or HEIC source. The size is the displayed one (after `irot`).
pub fn probe(bytes: &[u8], format: ImageFormat) -> Result<Probe, PipelineError> {
    let (_ctx, h) = open(bytes, format, None)?;
    let has_alpha = h.has_alpha_channel();
    let coded =
        u64::from(h.ispe_width().unsigned_abs()) * u64::from(h.ispe_height().unsigned_abs());
    let shown = u64::from(h.width()) * u64::from(h.height());
    Ok(Probe {
        format,
        width: h.width(),
        height: h.height(),
        has_alpha,
        orientation: 1,
        icc: colour_profile(&h),
        components: if has_alpha { 4 } else { 3 },
        adobe: false,
        frames: 1,
        progressive: false,
        exif: None,
        coded_pixels: if coded > shown { coded } else { 0 },
    })
}

/// The profile `colour` converts from: the embedded ICC, else one made from the `nclx`
/// primaries and transfer when they are not sRGB's (BT.709 primaries or unspecified are).
fn colour_profile(h: &ImageHandle) -> Option<Vec<u8>> {
    if let Some(icc) = h.color_profile_raw() {
        if !icc.data.is_empty() {
            return Some(icc.data);
        }
    }
    let nclx = h.color_profile_nclx()?;
    let primaries = nclx.color_primaries();
    if matches!(
        primaries,
        ColorPrimaries::ITU_R_BT_709_5 | ColorPrimaries::Unspecified | ColorPrimaries::Unknown
    ) {
        return None;
    }
    use moxcms::{CicpColorPrimaries, CicpProfile, ColorProfile, TransferCharacteristics};
    let cicp = CicpProfile {
        color_primaries: CicpColorPrimaries::try_from(primaries as u8).ok()?,
        // Primaries only: the pixels are taken to carry the sRGB curve (BT.709's and sRGB's are
        // near enough; PQ/HLG sources are not tone-mapped, see docs/formats.md).
        transfer_characteristics: TransferCharacteristics::Srgb,
        matrix_coefficients: moxcms::MatrixCoefficients::Bt709,
        full_range: true,
    };
    ColorProfile::new_from_cicp(cicp).encode().ok()
}

/// Decode the primary image to 8-bit RGB or RGBA at its displayed size.
pub fn decode(bytes: &[u8], probe: &Probe) -> Result<Pixels, PipelineError> {
    let format = probe.format;
    // The size the limits checked, with room for codec padding (an HEVC frame is coded in
    // 8- or 64-pixel units: a 600x450 image is a 600x456 frame).
    let checked = (u64::from(probe.width) * u64::from(probe.height)).max(probe.coded_pixels);
    let bound = checked.saturating_add(checked / 4).saturating_add(1 << 16);
    let (_ctx, h) = open(bytes, format, Some(bound))?;
    let alpha = h.has_alpha_channel();
    let channels: u8 = if alpha { 4 } else { 3 };
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let mut options =
        DecodingOptions::new().ok_or_else(|| PipelineError::Bug("libheif options".into()))?;
    options.set_convert_hdr_to_8bit(true);
    // dav1d would start a thread per core for every decode; the CPU pool counts one.
    options.set_num_codec_threads(1);
    let img = lib()
        .decode(&h, ColorSpace::Rgb(chroma), Some(options))
        .map_err(corrupt(format))?;
    let planes = img.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| PipelineError::Corrupt(format!("{format}: no pixels decoded")))?;
    if plane.width != probe.width || plane.height != probe.height {
        return Err(PipelineError::Corrupt(format!(
            "{format}: decoded size disagrees with its header"
        )));
    }
    if plane.storage_bits_per_pixel != 8 * channels {
        return Err(PipelineError::Unsupported(format!(
            "{format}: {} bits per pixel after conversion",
            plane.storage_bits_per_pixel
        )));
    }
    let row = plane.width as usize * usize::from(channels);
    let mut data = Vec::with_capacity(row * plane.height as usize);
    for y in 0..plane.height as usize {
        let start = y * plane.stride;
        let line = plane
            .data
            .get(start..start + row)
            .ok_or_else(|| PipelineError::Bug(format!("{format}: short plane")))?;
        data.extend_from_slice(line);
    }
    if alpha && h.is_premultiplied_alpha() {
        super::decode::unpremultiply(&mut data);
    }
    Ok(Pixels {
        width: plane.width,
        height: plane.height,
        channels,
        data,
    })
}

/// AVIF with libaom (through libheif): the stored variants' encoder (`formats.avif_encoder`),
/// 4:2:0, one thread, `speed` 0..=9 (aom's cpu-used; higher is faster).
pub fn encode_avif(px: &Pixels, quality: u8, speed: u8) -> Result<Vec<u8>, PipelineError> {
    use libheif_rs::{Channel, CompressionFormat, EncoderParameterValue, EncoderQuality, Image};
    let err = |e: libheif_rs::HeifError| PipelineError::Encode(format!("libaom: {e}"));
    let chroma = if px.channels == 4 {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let mut img = Image::new(px.width, px.height, ColorSpace::Rgb(chroma)).map_err(err)?;
    img.create_plane(Channel::Interleaved, px.width, px.height, 8)
        .map_err(err)?;
    {
        let planes = img.planes_mut();
        let plane = planes
            .interleaved
            .ok_or_else(|| PipelineError::Bug("libheif: no interleaved plane".into()))?;
        let row = px.width as usize * usize::from(px.channels);
        for (y, line) in px.data.chunks_exact(row).enumerate() {
            let start = y * plane.stride;
            plane
                .data
                .get_mut(start..start + row)
                .ok_or_else(|| PipelineError::Bug("libheif: short plane".into()))?
                .copy_from_slice(line);
        }
    }
    let mut ctx = HeifContext::new().map_err(err)?;
    let mut enc = lib()
        .encoder_for_format(CompressionFormat::Av1)
        .map_err(err)?;
    // libheif maps aom's quality 100 to lossless: a slow, very large encode nobody asked for.
    enc.set_quality(EncoderQuality::Lossy(quality.min(99)))
        .map_err(err)?;
    for (name, value) in [
        ("speed", EncoderParameterValue::Int(i32::from(speed.min(9)))),
        ("threads", EncoderParameterValue::Int(1)),
        ("chroma", EncoderParameterValue::String("420".into())),
    ] {
        enc.set_parameter_value(name, value).map_err(err)?;
    }
    ctx.encode_image(&img, &mut enc, None).map_err(err)?;
    ctx.write_to_bytes().map_err(err)
}
