//! The `[limits]` config section: bytes, pixels, dimensions, time and queue bounds, enforced
//! before the expensive step by the modules that do it (pipeline, delivery, library, the CPU
//! pool). A plain section shared by several owners, so it lives at the bottom.

use serde::{Deserialize, Serialize};

/// The `[limits]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest `w`/`h`.
    pub max_dimension: u32,
    /// Largest source object to transform, bytes.
    pub max_source_bytes: u64,
    /// Most pixels a source (or an output canvas) may have.
    pub max_source_pixels: u64,
    /// Most pixels a progressive JPEG source may have (its decode holds the whole image's DCT
    /// coefficients, ~3 bytes per pixel, and gains little from shrink-on-load).
    pub max_progressive_pixels: u64,
    /// Most frames of an animation answered animated; over it, 422 (`anim=false` or `frame=N`
    /// answer a still).
    pub max_animation_frames: u32,
    /// CPU workers for image work; 0 = one per core.
    pub workers: usize,
    /// Requests that may wait for a worker before 503.
    pub queue_depth: usize,
    /// Milliseconds a request may wait for a worker before 503.
    pub queue_timeout_ms: u64,
    /// Largest uploaded file, bytes.
    pub max_upload_bytes: u64,
    /// Most files in one upload request.
    pub max_upload_count: usize,
    /// Milliseconds a transform may take, queue wait included (checked between pipeline steps;
    /// over: 503).
    pub request_timeout_ms: u64,
    /// Longest AVIF encode (estimated from the output's pixel area) done on the request path,
    /// milliseconds. Over it, the answer is WebP (or the source's family) with a short
    /// `Cache-Control`, and the AVIF is encoded in the background for the next request.
    /// 0 = always encode AVIF on the request path.
    pub avif_budget_ms: u64,
    /// Longest time an upload body may take to arrive, milliseconds; past it 408.
    pub body_timeout_ms: u64,
    /// Slowest average rate an upload body may arrive at, bytes per second, checked once five
    /// seconds have passed (a trickle holds a connection and a worker's memory); 0 = off.
    pub min_body_rate: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_dimension: 8192,
            max_source_bytes: 50 << 20,
            max_source_pixels: 50_000_000,
            max_progressive_pixels: 25_000_000,
            max_animation_frames: 500,
            workers: 0,
            queue_depth: 256,
            queue_timeout_ms: 10_000,
            max_upload_bytes: 50 << 20,
            max_upload_count: 20,
            request_timeout_ms: 30_000,
            avif_budget_ms: 250,
            body_timeout_ms: 300_000,
            min_body_rate: 4096,
        }
    }
}
