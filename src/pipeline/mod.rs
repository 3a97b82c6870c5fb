//! The image pipeline: encoded bytes in, encoded bytes out. Synchronous, CPU only.
//!
//! Steps, in order, each a module: `probe` (format by magic bytes, dimensions, alpha, EXIF
//! orientation, ICC) → limits → `decode` (JPEG shrink-on-load in the DCT domain) → `orient` →
//! `colour` (embedded ICC → sRGB) → `resize` (crop + Lanczos3, premultiplied alpha) →
//! `compose` (pad for `contain`, flatten alpha for JPEG) → `encode` → `exif` (a JPEG
//! output keeps the source's EXIF only when `metadata` asks).
//! Geometry is pure math in `fit`.
//!
//! Invariants: no IO, no async, no tokio/hyper/opendal/moka; limits are passed in; no input may
//! panic it (fuzzed); pixel limits are checked from the header before any decode allocation.

pub mod animation;
pub mod colour;
pub mod compose;
pub mod decode;
pub mod effects;
pub mod encode;
pub mod exif;
pub mod fit;
pub mod format;
#[cfg(feature = "heif")]
pub mod heif;
#[cfg(feature = "jxl")]
pub mod jxl;
pub mod orient;
pub mod output;
pub mod probe;
pub mod region;
pub mod saliency;
pub mod transform;
pub mod watermark;

use crate::pipeline::format::ImageFormat;
use crate::pipeline::output::OutputSpec;
use crate::pipeline::transform::{Gravity, Metadata, Transform, Trim};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

pub use encode::EncodeConfig;
pub use probe::Probe;

/// Why the pipeline stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// Not a format we decode.
    #[error("{0}")]
    Unsupported(String),
    /// Over `limits.max_source_pixels` (or the output would be).
    #[error("image has {pixels} pixels; the limit is {max}")]
    TooManyPixels { pixels: u64, max: u64 },
    /// A progressive JPEG over `limits.max_progressive_pixels`.
    #[error("progressive JPEG has {pixels} pixels; the limit for progressive JPEGs is {max}")]
    ProgressiveTooLarge { pixels: u64, max: u64 },
    /// Corrupt or truncated data.
    #[error("corrupt or truncated image: {0}")]
    Corrupt(String),
    /// An encoder failed (a bug or resource problem, not the client's fault).
    #[error("encode failed: {0}")]
    Encode(String),
    /// An invariant broke.
    #[error("pipeline bug: {0}")]
    Bug(String),
    /// The request's deadline passed between two steps.
    #[error("processing exceeded the request deadline")]
    Timeout,
    /// A parameter does not fit this image (`crop` outside it, `trim` removing all of it):
    /// the client's fault, named.
    #[error("{message}")]
    OutOfRange { param: String, message: String },
}

/// Pixel limits (the `[limits]` values the pipeline needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PixelLimits {
    /// Most pixels a source may have (width × height from its header).
    pub max_source_pixels: u64,
    /// Most pixels a progressive JPEG may have: it is entropy-decoded into a coefficient buffer
    /// of the whole image (~3 bytes per pixel) whatever the output size.
    pub max_progressive_pixels: u64,
    /// Most frames an animation kept animated may have.
    pub max_animation_frames: u32,
}

impl From<&crate::util::limits::LimitsConfig> for PixelLimits {
    fn from(l: &crate::util::limits::LimitsConfig) -> Self {
        Self {
            max_source_pixels: l.max_source_pixels,
            max_progressive_pixels: l.max_progressive_pixels,
            max_animation_frames: l.max_animation_frames,
        }
    }
}

impl PixelLimits {
    /// The same bound for every kind of source.
    pub fn uniform(max_pixels: u64) -> Self {
        Self {
            max_source_pixels: max_pixels,
            max_progressive_pixels: max_pixels,
            max_animation_frames: 1000,
        }
    }
}

/// Decoded pixels: interleaved 8-bit RGB (3 channels) or RGBA (4 channels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub data: Vec<u8>,
}

/// An encoded output image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub bytes: Bytes,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// Which decode of which source: the source's identity (its version hash) and the DCT scale
/// denominator (1 for formats without shrink-on-load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecodedKey {
    pub source: [u8; 32],
    pub shrink: u8,
}

/// Decoded sources kept for a few seconds (the caller's cache; the pipeline holds none): the
/// outputs of one source asked within seconds decode it once. A value is the decode *prepared*
/// (EXIF-oriented, in sRGB), exactly what a fresh decode would give.
pub trait DecodedSources: Send + Sync {
    /// The prepared decode for `key`, made by `decode` when absent (once, however many callers
    /// ask at the same time).
    fn get_or_decode(
        &self,
        key: DecodedKey,
        decode: &mut dyn FnMut() -> Result<Pixels, PipelineError>,
    ) -> Result<Arc<Pixels>, PipelineError>;
}

/// Changes whenever the pipeline's own choices change output bytes for the same transform and
/// settings (as the JPEG shrink-on-load rule did in `2`); part of every variant's cache key, so
/// a new build never serves what an older one stored as if it had made it.
pub const REVISION: u32 = 2;

/// A run's use of the decoded-source cache.
#[derive(Clone, Copy)]
pub struct Memo<'a> {
    /// The cache, when on. The caller sets `share_width` to 0 when it is off (each output at its
    /// own scale); the share width in effect is part of every cache key, since it changes bytes.
    pub cache: Option<&'a dyn DecodedSources>,
    /// The source version's identity.
    pub source: [u8; 32],
    /// Outputs whose longer side is under this share one decode scale: the DCT shrink is chosen
    /// as if the output were this large (so `srcset` widths up to it decode once).
    pub share_width: u32,
}

impl std::fmt::Debug for Memo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo")
            .field("share_width", &self.share_width)
            .finish_non_exhaustive()
    }
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    pub transform: &'a Transform,
    pub output: OutputSpec,
    pub encode: &'a EncodeConfig,
    pub limits: PixelLimits,
    /// Checked between steps; `None` = no deadline.
    pub deadline: Option<std::time::Instant>,
    /// The watermark `wm=` names, when it does.
    pub watermark: Option<&'a watermark::Mark>,
    /// The decoded-source cache, when the caller keeps one.
    pub memo: Option<Memo<'a>>,
}

impl Job<'_> {
    fn check_deadline(&self) -> Result<(), PipelineError> {
        match self.deadline {
            Some(d) if std::time::Instant::now() >= d => Err(PipelineError::Timeout),
            _ => Ok(()),
        }
    }
}

/// The output canvas size for a probed source and a transform (no decode; an automatic trim
/// is not known before decoding and counts as none).
pub fn output_size(probe: &Probe, t: &Transform) -> (u32, u32) {
    let (ow, oh) = probe.oriented_size();
    let r = region::region(ow, oh, t).unwrap_or(region::Region::full(ow, oh));
    let (rw, rh) = turned(r, region::user_orientation(t.flip, t.rotate));
    let g = fit::plan(rw, rh, t);
    (g.canvas_w, g.canvas_h)
}

/// The size of region `r` once turned by orientation `o`.
fn turned(r: region::Region, o: u8) -> (u32, u32) {
    if region::swaps(o) {
        (r.height, r.width)
    } else {
        (r.width, r.height)
    }
}

/// Run the whole pipeline on `input`. `None` from output negotiation (nothing acceptable for
/// this source) is reported as `Ok(None)`.
pub fn run(input: &[u8], job: &Job<'_>) -> Result<Option<Encoded>, PipelineError> {
    run_probed(input, &probe::probe(input)?, job)
}

/// `run` for a source already probed (by the caller, from these bytes).
///
/// Order: orient (EXIF) → crop region and trim → flip/rotate → resize (gravity places a
/// cover window; `auto` looks at the pixels) → effects (colour, blur, sharpen, pixelate) →
/// pad/flatten → [watermark] → encode → EXIF kept when asked. An animated source whose output
/// can animate (WebP; GIF for GIF sources) goes through `animation`, every frame shaped alike.
pub fn run_probed(
    input: &[u8],
    probe: &Probe,
    job: &Job<'_>,
) -> Result<Option<Encoded>, PipelineError> {
    probe.check_limits(job.limits)?;
    let t = job.transform;
    if let Some(n) = t.frame {
        if n >= probe.frames {
            return Err(PipelineError::OutOfRange {
                param: "frame".into(),
                message: format!(
                    "frame {n} does not exist: the image has {} frame(s)",
                    probe.frames
                ),
            });
        }
    }
    let animated = probe.frames > 1 && t.anim;
    let format = match job
        .output
        .resolve_animated(probe.format)
        .filter(|_| animated)
    {
        Some(f) => f,
        None => match job.output.resolve(probe.format, probe.has_alpha) {
            Some(f) => f,
            None => return Ok(None),
        },
    };
    let mut shaper = Shaper::new(probe, job, format)?;
    if animated && format.can_animate() {
        return animation::run(input, probe, job, format, &mut shaper).map(Some);
    }
    job.check_deadline()?;
    let px = match (t.frame, job.memo) {
        (Some(n), _) if n > 0 => {
            let decoded = animation::frame(input, probe, job.limits, n)?;
            job.check_deadline()?;
            shaper.shape(decoded)?
        }
        (_, Some(memo)) => {
            let shrink = shaper.shrink(memo.share_width);
            let Some(cache) = memo.cache else {
                let decoded = decode::decode(input, probe, shrink)?;
                job.check_deadline()?;
                return finish(input, probe, job, format, shaper.shape(decoded)?);
            };
            let key = DecodedKey {
                source: memo.source,
                shrink: if probe.format == ImageFormat::Jpeg {
                    shrink as u8
                } else {
                    1
                },
            };
            let prepared = cache.get_or_decode(key, &mut || {
                decode::decode(input, probe, shrink).map(|px| prepare(px, probe))
            })?;
            job.check_deadline()?;
            shaper.shape_prepared(Cow::Borrowed(&prepared))?
        }
        (_, None) => {
            let decoded = decode::decode(input, probe, shaper.shrink(0))?;
            job.check_deadline()?;
            shaper.shape(decoded)?
        }
    };
    finish(input, probe, job, format, px)
}

/// Encode the shaped pixels (and keep the EXIF a JPEG output is asked to keep).
fn finish(
    input: &[u8],
    probe: &Probe,
    job: &Job<'_>,
    format: ImageFormat,
    px: Pixels,
) -> Result<Option<Encoded>, PipelineError> {
    job.check_deadline()?;
    let t = job.transform;
    let quality = t
        .quality
        .unwrap_or_else(|| job.encode.default_quality(format));
    let mut bytes = encode::encode(&px, format, quality, job.encode)?;
    if format == ImageFormat::Jpeg {
        bytes = with_metadata(bytes, input, probe, t.metadata);
    }
    Ok(Some(Encoded {
        bytes: Bytes::from(bytes),
        format,
        width: px.width,
        height: px.height,
    }))
}

/// Everything between decoded pixels and the pixels to encode, for one transform of one
/// source; the decisions that look at pixels (automatic trim, smart gravity) are taken on the
/// first image shaped and kept for the rest (every frame of an animation alike).
pub(crate) struct Shaper<'a> {
    t: &'a Transform,
    probe: &'a Probe,
    /// Oriented source size.
    ow: u32,
    oh: u32,
    region: region::Region,
    user: u8,
    geom: fit::Geometry,
    decided: bool,
    alpha_out: bool,
    bg: transform::Rgba,
    mark: Option<&'a watermark::Mark>,
}

impl<'a> Shaper<'a> {
    fn new(probe: &'a Probe, job: &'a Job<'a>, format: ImageFormat) -> Result<Self, PipelineError> {
        let t = job.transform;
        let (ow, oh) = probe.oriented_size();
        let region = region::region(ow, oh, t)?;
        let user = region::user_orientation(t.flip, t.rotate);
        let (rw, rh) = turned(region, user);
        let geom = fit::plan(rw, rh, t);
        let canvas_pixels = u64::from(geom.canvas_w) * u64::from(geom.canvas_h);
        if canvas_pixels > job.limits.max_source_pixels {
            return Err(PipelineError::TooManyPixels {
                pixels: canvas_pixels,
                max: job.limits.max_source_pixels,
            });
        }
        Ok(Self {
            t,
            probe,
            ow,
            oh,
            region,
            user,
            geom,
            decided: false,
            alpha_out: format.supports_alpha(),
            bg: t.bg,
            mark: job.watermark,
        })
    }

    /// Pixels of one output canvas.
    pub(crate) fn canvas_pixels(&self) -> u64 {
        u64::from(self.geom.canvas_w) * u64::from(self.geom.canvas_h)
    }

    /// The shrink-on-load factor for this geometry (`decode::shrink_factor`), with the output taken
    /// to be at least `share` pixels on its longer side (0: as it is).
    fn shrink(&self, share: u32) -> u32 {
        let g = &self.geom;
        let long = g.out_w.max(g.out_h).max(1);
        let k = (f64::from(share) / f64::from(long)).max(1.0);
        decode::shrink_factor(
            g.crop.width / (f64::from(g.out_w) * k),
            g.crop.height / (f64::from(g.out_h) * k),
        )
    }

    /// Decoded (stored-orientation) pixels → the output's pixels.
    pub(crate) fn shape(&mut self, decoded: Pixels) -> Result<Pixels, PipelineError> {
        self.shape_prepared(Cow::Owned(prepare(decoded, self.probe)))
    }

    /// Prepared pixels (EXIF-oriented, sRGB) → the output's pixels. Borrowed pixels are
    /// copied only when a step must change them in place.
    pub(crate) fn shape_prepared(&mut self, px: Cow<'_, Pixels>) -> Result<Pixels, PipelineError> {
        let (t, user) = (self.t, self.user);
        let whole = self.region == region::Region::full(self.ow, self.oh)
            && !matches!(t.trim, Trim::Auto { .. });
        let mut px = px;
        if whole && user != 1 {
            px = Cow::Owned(orient::apply(px.into_owned(), user));
        }
        if !whole {
            // The decode may have shrunk the image: regions scale from oriented source pixels.
            let (dx, dy) = (
                f64::from(px.width) / f64::from(self.ow),
                f64::from(px.height) / f64::from(self.oh),
            );
            let r = self.region;
            let mut cut = region::Region {
                left: (f64::from(r.left) * dx).floor() as u32,
                top: (f64::from(r.top) * dy).floor() as u32,
                width: ((f64::from(r.width) * dx).round() as u32).max(1),
                height: ((f64::from(r.height) * dy).round() as u32).max(1),
            };
            if let (Trim::Auto { tolerance }, false) = (t.trim, self.decided) {
                if let Some(found) = region::auto_trim(&px, cut, tolerance) {
                    cut = found;
                    self.region = region::Region {
                        left: (f64::from(found.left) / dx).round() as u32,
                        top: (f64::from(found.top) / dy).round() as u32,
                        width: ((f64::from(found.width) / dx).round() as u32).max(1),
                        height: ((f64::from(found.height) / dy).round() as u32).max(1),
                    };
                    let (rw, rh) = turned(self.region, user);
                    self.geom = fit::plan(rw, rh, t);
                }
            }
            px = Cow::Owned(orient::apply(region::cut(px.into_owned(), cut), user));
        }
        // The decode may have shrunk the image: scale the crop from the region to its pixels.
        let (rw, rh) = turned(self.region, user);
        let sx = f64::from(px.width) / f64::from(rw);
        let sy = f64::from(px.height) / f64::from(rh);
        let g = &mut self.geom;
        let windowed = g.crop.width < f64::from(rw) || g.crop.height < f64::from(rh);
        if t.gravity == Gravity::Auto && windowed && !self.decided {
            let cw = ((g.crop.width * sx).round() as u32).clamp(1, px.width);
            let ch = ((g.crop.height * sy).round() as u32).clamp(1, px.height);
            let (l, top) = saliency::best_window(&px, cw, ch);
            g.crop.left = f64::from(l) / sx;
            g.crop.top = f64::from(top) / sy;
        }
        self.decided = true;
        let crop = refract_resize::Crop {
            left: g.crop.left * sx,
            top: g.crop.top * sy,
            width: (g.crop.width * sx).min(f64::from(px.width)),
            height: (g.crop.height * sy).min(f64::from(px.height)),
        };
        let mut px = resize(px, crop, g.out_w, g.out_h)?;
        let fx = t.effects();
        if fx.any() {
            effects::apply(&mut px, &fx);
        }
        let mut px = compose::finish(px, g, self.bg, self.alpha_out);
        if let Some(m) = self.mark {
            watermark::apply(&mut px, m)?;
        }
        Ok(px)
    }
}

/// Decoded pixels → upright (EXIF orientation) and in sRGB: what every output of the source
/// starts from.
fn prepare(decoded: Pixels, probe: &Probe) -> Pixels {
    let mut px = orient::apply(decoded, probe.orientation);
    if let Some(icc) = &probe.icc {
        colour::to_srgb(&mut px, icc);
    }
    px
}

/// A JPEG output with the source's EXIF that `metadata` keeps (none by default).
fn with_metadata(jpeg: Vec<u8>, input: &[u8], probe: &Probe, m: Metadata) -> Vec<u8> {
    let Some(tiff) = probe.exif.clone().and_then(|r| input.get(r)) else {
        return jpeg;
    };
    let kept = match m {
        Metadata::None => None,
        Metadata::Copyright => exif::copyright_only(tiff),
        Metadata::Keep => exif::upright(tiff),
    };
    match kept {
        Some(t) => exif::insert_app1(jpeg, &t),
        None => jpeg,
    }
}

/// Resize `crop` of `px` to `w`×`h` (a no-op when that is the whole image at its size).
fn resize(
    px: Cow<'_, Pixels>,
    crop: refract_resize::Crop,
    w: u32,
    h: u32,
) -> Result<Pixels, PipelineError> {
    let is_identity = w == px.width
        && h == px.height
        && crop.left == 0.0
        && crop.top == 0.0
        && crop.width == f64::from(px.width)
        && crop.height == f64::from(px.height);
    if is_identity {
        return Ok(px.into_owned());
    }
    let data = refract_resize::resize(&px.data, px.channels, px.width, px.height, crop, w, h)
        .map_err(|e| PipelineError::Bug(format!("resize: {e}")))?;
    Ok(Pixels {
        width: w,
        height: h,
        channels: px.channels,
        data,
    })
}

/// Decode `input` whole (corrupt or truncated data is refused), orient it, convert it to sRGB and
/// shrink it to fit inside `max_side`²: what ingest uses to validate an upload and to compute its
/// placeholder. Returns the header's facts with the pixels.
pub fn preview(
    input: &[u8],
    limits: PixelLimits,
    max_side: u32,
) -> Result<(Probe, Pixels), PipelineError> {
    let probe = probe::probe(input)?;
    probe.check_limits(limits)?;
    let (ow, oh) = probe.oriented_size();
    let scale = (f64::from(max_side.max(1)) / f64::from(ow.max(oh))).min(1.0);
    let out_w = ((f64::from(ow) * scale).round() as u32).max(1);
    let out_h = ((f64::from(oh) * scale).round() as u32).max(1);
    let shrink = decode::shrink_factor(
        f64::from(ow) / f64::from(out_w),
        f64::from(oh) / f64::from(out_h),
    );
    let px = prepare(decode::decode(input, &probe, shrink)?, &probe);
    let crop = refract_resize::Crop {
        left: 0.0,
        top: 0.0,
        width: f64::from(px.width),
        height: f64::from(px.height),
    };
    let px = resize(Cow::Owned(px), crop, out_w, out_h)?;
    Ok((probe, px))
}
