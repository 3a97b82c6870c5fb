//! The decoded-source cache: a source's prepared pixels (decoded at one DCT scale, upright, in
//! sRGB) kept for seconds, so the widths of a `srcset` (and a CDN's edges asking at once) decode
//! a new image once. Concurrent requests for one decode wait for it rather than repeat it.
//!
//! Invariants: a value is exactly what a fresh decode at that scale gives (the key is the source
//! version and the scale), so a hit never changes output bytes; bounded in bytes and in time;
//! `max_bytes = 0` turns it off, and `share_width` with it (each output then decodes at its own
//! scale; the effective share width is part of every cache key, so the keys change with it).

use super::persist::DecodedConfig;
use crate::pipeline::{DecodedKey, DecodedSources, PipelineError, Pixels};
use crate::util::cache::BlockingCache;
use std::sync::Arc;
use std::time::Duration;

/// The cache (when on), and the share width the pipeline decides its scale with (0 when off).
pub struct Decoded {
    cache: Option<BlockingCache<DecodedKey, Pixels>>,
    pub share_width: u32,
}

impl Decoded {
    pub fn new(cfg: &DecodedConfig) -> Arc<Self> {
        Arc::new(Self {
            cache: (cfg.max_bytes > 0 && cfg.ttl_ms > 0).then(|| {
                BlockingCache::new(
                    cfg.max_bytes,
                    // At most an hour: decodes are for bursts (moka refuses absurd lifetimes).
                    Duration::from_millis(cfg.ttl_ms.min(3_600_000)),
                    |p: &Pixels| p.data.len(),
                )
            }),
            // Sharing a scale only pays when decodes are shared: off, each output takes its own
            // (the fastest single request).
            share_width: if cfg.max_bytes > 0 && cfg.ttl_ms > 0 {
                cfg.share_width
            } else {
                0
            },
        })
    }

    /// The cache, when on.
    pub fn sources(&self) -> Option<&dyn DecodedSources> {
        self.cache.as_ref().map(|_| self as &dyn DecodedSources)
    }

    /// Drop entries whose time is up.
    pub fn expire(&self) {
        if let Some(c) = &self.cache {
            c.run_pending_tasks();
        }
    }

    /// (hits, misses).
    pub fn counters(&self) -> (u64, u64) {
        self.cache.as_ref().map_or((0, 0), BlockingCache::counters)
    }
}

impl DecodedSources for Decoded {
    fn get_or_decode(
        &self,
        key: DecodedKey,
        decode: &mut dyn FnMut() -> Result<Pixels, PipelineError>,
    ) -> Result<Arc<Pixels>, PipelineError> {
        match &self.cache {
            Some(c) => c.get_or_try(key, decode),
            None => decode().map(Arc::new),
        }
    }
}
