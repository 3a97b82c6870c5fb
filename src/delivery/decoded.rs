//! The decoded-source cache: a source's prepared pixels (decoded at one DCT scale, upright, in
//! sRGB) kept for seconds, so the widths of a `srcset` (and a CDN's edges asking at once) decode
//! a new image once. Concurrent requests for one decode wait for it rather than repeat it, and
//! wait *before* taking a CPU slot (`wait_or_make`), so a waiting request never idles a core.
//!
//! Invariants: a value is exactly what a fresh decode at that scale gives (the key is the source
//! version and the scale), so a hit never changes output bytes; bounded in bytes and in time;
//! `max_bytes = 0` turns it off, and `share_width` with it (each output then decodes at its own
//! scale; the effective share width is part of every cache key, so the keys change with it).

use super::persist::DecodedConfig;
use crate::pipeline::{DecodedKey, DecodedSources, PipelineError, Pixels};
use crate::util::cache::BlockingCache;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Decodes being made now, each with a lock its maker holds until the decode is in the cache.
type Making = Arc<Mutex<HashMap<DecodedKey, Arc<tokio::sync::Mutex<()>>>>>;

/// The cache (when on), and the share width the pipeline decides its scale with (0 when off).
pub struct Decoded {
    cache: Option<BlockingCache<DecodedKey, Pixels>>,
    pub share_width: u32,
    making: Making,
}

/// This request makes decode `key`: the requests waiting for it go on when this is dropped
/// (by `Lending`, as soon as the decode is in the cache; or with the job, if it never gets there).
pub struct Maker {
    making: Making,
    key: DecodedKey,
    _held: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Maker {
    fn drop(&mut self) {
        if let Ok(mut m) = self.making.lock() {
            m.remove(&self.key);
        }
    }
}

/// The cache as one job sees it: the decode it makes releases its waiters once cached, not when
/// the whole job (resize, encode) ends.
pub struct Lending<'a> {
    decoded: &'a Decoded,
    maker: Mutex<Option<Maker>>,
}

impl<'a> Lending<'a> {
    pub fn new(decoded: &'a Decoded, maker: Option<Maker>) -> Self {
        Self {
            decoded,
            maker: Mutex::new(maker),
        }
    }

    /// The cache, when on.
    pub fn sources(&self) -> Option<&dyn DecodedSources> {
        self.decoded
            .cache
            .as_ref()
            .map(|_| self as &dyn DecodedSources)
    }
}

impl DecodedSources for Lending<'_> {
    fn get_or_decode(
        &self,
        key: DecodedKey,
        decode: &mut dyn FnMut() -> Result<Pixels, PipelineError>,
    ) -> Result<Arc<Pixels>, PipelineError> {
        let got = self.decoded.get_or_decode(key, decode);
        if let Ok(mut m) = self.maker.lock() {
            m.take();
        }
        got
    }
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
            making: Making::default(),
        })
    }

    /// Before taking a CPU slot: while another request is making decode `key`, wait for it
    /// (until `deadline`); then `None` (the decode is cached, or waiting ran out: the job will
    /// find it or make it), or `Some(Maker)` when this request is to make it.
    pub async fn wait_or_make(
        &self,
        key: DecodedKey,
        deadline: tokio::time::Instant,
    ) -> Option<Maker> {
        let cache = self.cache.as_ref()?;
        loop {
            let lock = {
                let mut making = self.making.lock().ok()?;
                if cache.contains(&key) {
                    return None;
                }
                match making.get(&key) {
                    Some(lock) => lock.clone(),
                    None => {
                        let lock = Arc::new(tokio::sync::Mutex::new(()));
                        let held = lock.clone().try_lock_owned().ok()?;
                        making.insert(key, lock);
                        return Some(Maker {
                            making: self.making.clone(),
                            key,
                            _held: held,
                        });
                    }
                }
            };
            // The maker holds the lock until its decode is cached (or it failed).
            if tokio::time::timeout_at(deadline, lock.lock_owned())
                .await
                .is_err()
            {
                return None;
            }
        }
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
