//! The decoded-source cache: a source's prepared pixels (decoded at one DCT scale, upright, in
//! sRGB) kept for seconds, so the widths of a `srcset` (and a CDN's edges asking at once) decode
//! a new image once. Concurrent requests for one decode wait for it rather than repeat it.
//!
//! Invariants: a value is exactly what a fresh decode at that scale gives (the key is the source
//! version and the scale), so a hit never changes output bytes; bounded in bytes and in time;
//! `max_bytes = 0` turns it off.

use super::persist::DecodedConfig;
use crate::pipeline::{DecodedKey, DecodedSources, PipelineError, Pixels};
use crate::util::cache::BlockingCache;
use std::sync::Arc;
use std::time::Duration;

/// The cache, and the share width the pipeline decides its scale with.
pub struct Decoded {
    cache: BlockingCache<DecodedKey, Pixels>,
    pub share_width: u32,
}

impl Decoded {
    /// `None` when the config turns it off.
    pub fn new(cfg: &DecodedConfig) -> Option<Arc<Self>> {
        (cfg.max_bytes > 0 && cfg.ttl_ms > 0).then(|| {
            Arc::new(Self {
                cache: BlockingCache::new(cfg.max_bytes, Duration::from_millis(cfg.ttl_ms), |p| {
                    p.data.len()
                }),
                share_width: cfg.share_width,
            })
        })
    }

    /// (hits, misses).
    pub fn counters(&self) -> (u64, u64) {
        self.cache.counters()
    }
}

impl DecodedSources for Decoded {
    fn get_or_decode(
        &self,
        key: DecodedKey,
        decode: &mut dyn FnMut() -> Result<Pixels, PipelineError>,
    ) -> Result<Arc<Pixels>, PipelineError> {
        self.cache.get_or_try(key, decode)
    }
}
