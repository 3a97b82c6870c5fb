//! What ingest learns from an uploaded file: a full validating decode, the displayed size and
//! shape, EXIF summary, generation info, placeholder, content hash; and the bytes to store
//! (EXIF/XMP stripped losslessly when asked).
//!
//! Invariants: synchronous and pure (runs on the CPU pool; no IO); everything is computed from
//! the bytes that will be stored.

pub mod exif;
pub mod geninfo;
pub mod placeholder;
pub mod strip;

use crate::pipeline::format::ImageFormat;
use crate::pipeline::{self, PipelineError, PixelLimits};
use serde_json::{Map, Value};

/// Options of one analysis.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub limits: PixelLimits,
    pub keep_gps: bool,
    pub remove_exif: bool,
    /// Store the image converted to this format at this quality (orientation applied; EXIF
    /// kept in a JPEG unless `remove_exif`).
    pub convert: Option<(ImageFormat, Option<u8>)>,
}

/// The facts of one file.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The bytes to store.
    pub stored: Vec<u8>,
    pub format: ImageFormat,
    /// Displayed size (after EXIF orientation).
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    /// `landscape`, `portrait` or `square`.
    pub orientation: &'static str,
    pub exif: Map<String, Value>,
    pub generation_info: Option<Map<String, Value>>,
    pub placeholder: Value,
    /// blake3 of `stored`, hex.
    pub blake3: String,
}

/// Analyse `bytes`: refuses unsupported formats (415), too many pixels and undecodable data (422).
pub fn analyze(bytes: Vec<u8>, o: Options) -> Result<Analysis, PipelineError> {
    let (probe, px) = pipeline::preview(&bytes, o.limits, 100)?;
    if let Some((format, quality)) = o.convert {
        return converted(&bytes, &px, format, quality, &o);
    }
    if o.remove_exif && !strip::can_strip(probe.format) {
        return Err(PipelineError::OutOfRange {
            param: "remove_exif".into(),
            message: format!(
                "EXIF cannot be removed from a {} without re-encoding it: upload with \
                 format=jpeg or format=webp to convert it (EXIF is then dropped)",
                probe.format.name().to_uppercase()
            ),
        });
    }
    let stored = if o.remove_exif {
        strip::strip(&bytes, probe.format, probe.orientation)
            .ok_or_else(|| PipelineError::Corrupt("malformed container".into()))?
    } else {
        bytes
    };
    let (width, height) = probe.oriented_size();
    Ok(Analysis {
        format: probe.format,
        width,
        height,
        has_alpha: probe.has_alpha,
        orientation: shape(width, height),
        exif: exif::summary(&stored, o.keep_gps),
        generation_info: geninfo::read(&stored, probe.format),
        placeholder: placeholder::compute(&px),
        blake3: blake3::hash(&stored).to_hex().to_string(),
        stored,
    })
}

/// The upload converted (PicHub's `format`/`convertToWebP`): what is stored is the new image,
/// upright, and the facts are the stored image's.
fn converted(
    bytes: &[u8],
    px: &pipeline::Pixels,
    format: ImageFormat,
    quality: Option<u8>,
    o: &Options,
) -> Result<Analysis, PipelineError> {
    use crate::pipeline::transform::{self, ParamConfig};
    let mut q = format!("fm={}", format.name());
    if let Some(v) = quality {
        q.push_str(&format!("&q={v}"));
    }
    if !o.remove_exif && format == ImageFormat::Jpeg {
        q.push_str("&metadata=keep");
    }
    let t = transform::parse(
        &crate::util::query::Query::parse(&q),
        &ParamConfig::default(),
    )
    .map_err(|e| PipelineError::Bug(e.to_string()))?
    .ok_or_else(|| PipelineError::Bug("empty conversion".into()))?;
    let encode = pipeline::EncodeConfig::default();
    let job = pipeline::Job {
        transform: &t,
        output: pipeline::output::OutputSpec::Fixed(format),
        encode: &encode,
        limits: o.limits,
        deadline: None,
        watermark: None,
        memo: None,
    };
    let enc = pipeline::run(bytes, &job)?.ok_or_else(|| PipelineError::Bug("no output".into()))?;
    let stored = enc.bytes.to_vec();
    Ok(Analysis {
        format,
        width: enc.width,
        height: enc.height,
        has_alpha: format.supports_alpha() && px.channels == 4,
        orientation: shape(enc.width, enc.height),
        exif: exif::summary(&stored, o.keep_gps),
        generation_info: geninfo::read(&stored, format),
        placeholder: placeholder::compute(px),
        blake3: blake3::hash(&stored).to_hex().to_string(),
        stored,
    })
}

/// `landscape`, `portrait` or `square` (of a size).
pub fn shape(w: u32, h: u32) -> &'static str {
    match w.cmp(&h) {
        std::cmp::Ordering::Greater => "landscape",
        std::cmp::Ordering::Less => "portrait",
        std::cmp::Ordering::Equal => "square",
    }
}
