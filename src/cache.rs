//! In-memory caches, all moka: the variant cache (bounded in bytes, keyed by `CacheKey`;
//! concurrent misses for one key run the computation once and share its result) and `TtlCache`,
//! a small map whose entries expire after a short time (the storage stat cache).
//!
//! Invariants: the only module that imports `moka`; it does not know how values are made (it
//! receives a future); `memory_bytes = 0` turns the variant cache off (every request computes),
//! a zero TTL turns a `TtlCache` off.

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
    /// The second tier: variants persisted through storage.
    pub persistent: PersistentConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            ttl_secs: 24 * 3600,
            persistent: PersistentConfig::default(),
        }
    }
}

/// Where the persistent tier keeps variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersistentBackend {
    /// A local folder.
    Fs,
    /// A prefix in the `[storage]` S3 bucket (same endpoint and credentials).
    S3,
}

/// The `[cache.persistent]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersistentConfig {
    /// Size bound in bytes (least recently used variants are deleted past it); 0 = off.
    pub max_bytes: u64,
    /// `fs` or `s3`.
    pub backend: PersistentBackend,
    /// fs: the folder (default `<data_dir>/cache`); s3: the key prefix (default
    /// `refract-cache/`), which should lie outside the originals' prefix.
    pub path: Option<String>,
}

impl Default for PersistentConfig {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 30,
            backend: PersistentBackend::Fs,
            path: None,
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

    /// Whether the memory tier is on.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Whether `key` is in memory now (no counters touched).
    pub fn contains(&self, key: &CacheKey) -> bool {
        self.inner.as_ref().is_some_and(|c| c.contains_key(key))
    }

    /// Put a value made elsewhere (a background encode) into the cache.
    pub async fn insert(&self, key: CacheKey, value: Arc<Encoded>) {
        if let Some(cache) = &self.inner {
            cache.insert(key, value).await;
        }
    }

    /// Counters: (hits, misses).
    pub fn counters(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// A map whose entries live at most `ttl`, at most `capacity` of them; concurrent misses for one
/// key run the lookup once. Only successes are kept.
pub struct TtlCache<V> {
    inner: Option<moka::future::Cache<String, V>>,
}

impl<V: Clone + Send + Sync + 'static> TtlCache<V> {
    /// A zero `ttl` makes a cache that keeps nothing.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        let inner = (!ttl.is_zero()).then(|| {
            moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build()
        });
        Self { inner }
    }

    /// The cached value for `key`, or the result of `make` (cached when it is `Ok`).
    pub async fn get_or_try<E, F>(&self, key: &str, make: F) -> Result<V, E>
    where
        E: Clone + Send + Sync + 'static,
        F: Future<Output = Result<V, E>>,
    {
        match &self.inner {
            None => make.await,
            Some(c) => {
                if let Some(v) = c.get(key).await {
                    return Ok(v);
                }
                c.try_get_with(key.to_string(), make)
                    .await
                    .map_err(|e| (*e).clone())
            }
        }
    }

    /// Forget `key` (after a write or delete through this process).
    pub async fn invalidate(&self, key: &str) {
        if let Some(c) = &self.inner {
            c.invalidate(key).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ttl_cache_keeps_successes_until_invalidated() {
        let c: TtlCache<u32> = TtlCache::new(10, Duration::from_secs(60));
        let ok = |v: u32| async move { Ok::<u32, String>(v) };
        assert_eq!(c.get_or_try("a", ok(1)).await, Ok(1));
        assert_eq!(c.get_or_try("a", ok(2)).await, Ok(1), "cached");
        c.invalidate("a").await;
        assert_eq!(c.get_or_try("a", ok(3)).await, Ok(3));
        let err = async { Err::<u32, String>("nope".into()) };
        assert_eq!(c.get_or_try("b", err).await, Err("nope".into()));
        assert_eq!(c.get_or_try("b", ok(4)).await, Ok(4), "errors are not kept");
    }

    #[tokio::test]
    async fn zero_ttl_keeps_nothing() {
        let c: TtlCache<u32> = TtlCache::new(10, Duration::ZERO);
        assert_eq!(c.get_or_try("a", async { Ok::<u32, ()>(1) }).await, Ok(1));
        assert_eq!(c.get_or_try("a", async { Ok::<u32, ()>(2) }).await, Ok(2));
    }
}
