//! In-memory caches, all moka: the variant cache (bounded in bytes, keyed by `CacheKey`;
//! concurrent misses for one key run the computation once and share its result) and `TtlCache`,
//! a small map whose entries expire after a short time (the storage stat cache).
//!
//! Invariants: the only module that imports `moka`; it does not know how values are made (it
//! receives a future); `memory_bytes = 0` turns the variant cache off (every request computes),
//! a zero TTL turns a `TtlCache` off.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A cache of values bounded in bytes (each value weighs what `weigh` says), with hit/miss
/// counters and an invalidation epoch.
pub struct VariantCache<K, V> {
    inner: Option<moka::future::Cache<K, Arc<V>>>,
    /// Hits, counted per thread (a hit is the common case: no counter shared between threads).
    hits: thread_local::ThreadLocal<AtomicU64>,
    misses: AtomicU64,
    /// Bumped by every invalidation: a value held since an older epoch may have been dropped.
    epoch: AtomicU64,
}

impl<K, V> VariantCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// At most `max_bytes` (0 = off), each entry living at most `ttl`.
    pub fn new(max_bytes: u64, ttl: Duration, weigh: fn(&V) -> usize) -> Self {
        let inner = (max_bytes > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(move |_k: &K, v: &Arc<V>| u32::try_from(weigh(v) + 64).unwrap_or(u32::MAX))
                .time_to_live(ttl.max(Duration::from_secs(1)))
                .support_invalidation_closures()
                .build()
        });
        Self {
            inner,
            hits: thread_local::ThreadLocal::new(),
            misses: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
        }
    }

    /// Count a hit answered with a value this cache handed out before (the request memo's).
    pub fn count_hit(&self) {
        self.hits.get_or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// The invalidation epoch: a value obtained at this epoch was in the cache as long as the
    /// epoch has not moved and the value is still alive (held by nobody else for long: the
    /// cache's own reference is what keeps it).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The cached value for `key` (with `None`), or the value `make` produces, run once however
    /// many callers wait on it, with the tag it returns (`Some` only for the caller whose
    /// `make` ran). Successes are cached; errors are not. If the caller running `make` goes
    /// away, a waiting caller runs its own.
    pub async fn get_or_make<E, T, F>(&self, key: K, make: F) -> Result<(Arc<V>, Option<T>), Arc<E>>
    where
        E: Send + Sync + 'static,
        F: Future<Output = Result<(V, T), E>>,
    {
        let Some(cache) = &self.inner else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return match make.await {
                Ok((v, t)) => Ok((Arc::new(v), Some(t))),
                Err(e) => Err(Arc::new(e)),
            };
        };
        let mut tag = None;
        let entry = cache
            .entry(key)
            .or_try_insert_with(async {
                let (v, t) = make.await?;
                tag = Some(t);
                Ok(Arc::new(v))
            })
            .await?;
        let fresh = entry.is_fresh();
        if fresh {
            self.misses.fetch_add(1, Ordering::Relaxed);
        } else {
            self.count_hit();
        }
        Ok((entry.into_value(), if fresh { tag } else { None }))
    }

    /// The cached value for `key`, if any (counted as a hit when found).
    pub async fn get(&self, key: &K) -> Option<Arc<V>> {
        let v = self.inner.as_ref()?.get(key).await;
        if v.is_some() {
            self.count_hit();
        }
        v
    }

    /// Drop every entry whose key matches `doomed` (lazily: they are never returned again).
    pub fn invalidate_if(&self, doomed: impl Fn(&K) -> bool + Send + Sync + 'static) {
        if let Some(cache) = &self.inner {
            if let Err(e) = cache.invalidate_entries_if(move |k, _| doomed(k)) {
                tracing::warn!(error = %e, "cache invalidation refused");
            }
        }
        // After the predicate is registered: a value read at the new epoch was read after it,
        // so it is not a doomed one (those are hidden from then on, though still alive).
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the memory tier is on.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Whether `key` is in memory now (no counters touched).
    pub fn contains(&self, key: &K) -> bool {
        self.inner.as_ref().is_some_and(|c| c.contains_key(key))
    }

    /// Put a value made elsewhere (a background encode) into the cache.
    pub async fn insert(&self, key: K, value: Arc<V>) {
        if let Some(cache) = &self.inner {
            cache.insert(key, value).await;
        }
    }

    /// Counters: (hits, misses).
    pub fn counters(&self) -> (u64, u64) {
        (
            self.hits.iter().map(|h| h.load(Ordering::Relaxed)).sum(),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// A blocking cache for the CPU pool's threads (the decoded sources): bounded in bytes, entries
/// living at most `ttl`; concurrent misses for one key run the computation once (the others
/// wait for it), and only successes are kept.
pub struct BlockingCache<K, V> {
    inner: Option<moka::sync::Cache<K, Arc<V>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K, V> BlockingCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// At most `max_bytes` (0 = off), each entry living at most `ttl`; weights in KiB so that
    /// one entry may weigh more than 4 GiB's worth of `u32` bytes.
    pub fn new(max_bytes: u64, ttl: Duration, weigh: fn(&V) -> usize) -> Self {
        let inner = (max_bytes > 0 && !ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(max_bytes.div_ceil(1024))
                .weigher(move |_k: &K, v: &Arc<V>| {
                    u32::try_from(weigh(v).div_ceil(1024) + 1).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .build()
        });
        Self {
            inner,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached value for `key`, or what `make` returns (run once for concurrent callers).
    pub fn get_or_try<E, F>(&self, key: K, make: F) -> Result<Arc<V>, E>
    where
        E: Clone + Send + Sync + 'static,
        F: FnOnce() -> Result<V, E>,
    {
        let Some(cache) = &self.inner else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return make().map(Arc::new);
        };
        let mut ran = false;
        let v = cache.try_get_with(key, || {
            ran = true;
            make().map(Arc::new)
        });
        let counter = if ran { &self.misses } else { &self.hits };
        counter.fetch_add(1, Ordering::Relaxed);
        v.map_err(|e| (*e).clone())
    }

    /// Counters: (hits, misses).
    pub fn counters(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Run moka's pending maintenance: expired entries are dropped (and their memory freed).
    pub fn run_pending_tasks(&self) {
        if let Some(c) = &self.inner {
            c.run_pending_tasks();
        }
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

    /// The value kept for `key`, if any.
    pub async fn get(&self, key: &str) -> Option<V> {
        match &self.inner {
            Some(c) => c.get(key).await,
            None => None,
        }
    }

    /// Keep `value` for `key`.
    pub async fn insert(&self, key: &str, value: V) {
        if let Some(c) = &self.inner {
            c.insert(key.to_string(), value).await;
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

    #[test]
    fn blocking_cache_drops_expired_entries_when_asked() {
        let c: BlockingCache<u8, Vec<u8>> =
            BlockingCache::new(1 << 20, Duration::from_millis(20), Vec::len);
        let _ = c.get_or_try(1, || Ok::<_, String>(vec![1; 1000]));
        c.run_pending_tasks();
        let inner = c.inner.as_ref().unwrap();
        assert_eq!(inner.entry_count(), 1);
        std::thread::sleep(Duration::from_millis(50));
        c.run_pending_tasks();
        assert_eq!(inner.entry_count(), 0, "expired and dropped");
    }

    #[test]
    fn blocking_cache_makes_once_and_keeps_only_successes() {
        let c: BlockingCache<u8, Vec<u8>> =
            BlockingCache::new(1 << 20, Duration::from_secs(60), Vec::len);
        assert_eq!(
            *c.get_or_try(1, || Ok::<_, String>(vec![1]))
                .unwrap_or_default(),
            [1]
        );
        assert_eq!(
            *c.get_or_try(1, || Ok::<_, String>(vec![2]))
                .unwrap_or_default(),
            [1]
        );
        assert_eq!(
            c.get_or_try(2, || Err::<Vec<u8>, _>("no".to_string())),
            Err("no".into())
        );
        assert_eq!(
            *c.get_or_try(2, || Ok::<_, String>(vec![3]))
                .unwrap_or_default(),
            [3]
        );
        assert_eq!(c.counters(), (1, 3));
        let off: BlockingCache<u8, Vec<u8>> =
            BlockingCache::new(0, Duration::from_secs(60), Vec::len);
        assert_eq!(
            *off.get_or_try(1, || Ok::<_, String>(vec![1]))
                .unwrap_or_default(),
            [1]
        );
        assert_eq!(
            *off.get_or_try(1, || Ok::<_, String>(vec![2]))
                .unwrap_or_default(),
            [2]
        );
    }

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
