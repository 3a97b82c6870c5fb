//! The in-memory variant cache: moka, bounded in bytes, keyed by `CacheKey`; concurrent misses
//! for one key run the computation once and share its result.
//!
//! Invariants: the only module that imports `moka`; it does not know how values are made (it
//! receives a future); `memory_bytes = 0` turns it off (every request computes).

use crate::key::CacheKey;
use crate::pipeline::Encoded;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The `[cache]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Memory budget in bytes for encoded variants; 0 = off.
    pub memory_bytes: u64,
    /// Seconds an entry may live.
    pub ttl_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            ttl_secs: 24 * 3600,
        }
    }
}

/// Whether a value came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Hit,
    Miss,
}

/// The variant cache with hit/miss counters.
pub struct VariantCache {
    inner: Option<moka::future::Cache<CacheKey, Arc<Encoded>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl VariantCache {
    /// Build from config.
    pub fn new(cfg: &CacheConfig) -> Self {
        let inner = (cfg.memory_bytes > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(cfg.memory_bytes)
                .weigher(|_k: &CacheKey, v: &Arc<Encoded>| {
                    u32::try_from(v.bytes.len() + 64).unwrap_or(u32::MAX)
                })
                .time_to_live(Duration::from_secs(cfg.ttl_secs.max(1)))
                .build()
        });
        Self {
            inner,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Return the cached value for `key`, or run `make` once (however many callers wait on it)
    /// and cache its success. Errors are not cached.
    pub async fn get_or_make<E, F>(
        &self,
        key: CacheKey,
        make: F,
    ) -> Result<(Arc<Encoded>, Lookup), Arc<E>>
    where
        E: Send + Sync + 'static,
        F: Future<Output = Result<Encoded, E>>,
    {
        let Some(cache) = &self.inner else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return make
                .await
                .map(|v| (Arc::new(v), Lookup::Miss))
                .map_err(Arc::new);
        };
        let entry = cache
            .entry(key)
            .or_try_insert_with(async { make.await.map(Arc::new) })
            .await?;
        let lookup = if entry.is_fresh() {
            Lookup::Miss
        } else {
            Lookup::Hit
        };
        match lookup {
            Lookup::Hit => self.hits.fetch_add(1, Ordering::Relaxed),
            Lookup::Miss => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        Ok((entry.into_value(), lookup))
    }

    /// Counters: (hits, misses).
    pub fn counters(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}
