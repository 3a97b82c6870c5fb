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

/// `landscape`, `portrait` or `square`.
pub fn shape(w: u32, h: u32) -> &'static str {
    match w.cmp(&h) {
        std::cmp::Ordering::Greater => "landscape",
        std::cmp::Ordering::Less => "portrait",
        std::cmp::Ordering::Equal => "square",
    }
}
