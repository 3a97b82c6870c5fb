//! The persistent variant tier: encoded variants stored through OpenDAL (a local folder, or a
//! prefix in the S3 bucket), under the same blake3 `CacheKey` as the memory tier, so that a
//! restart or another node serves them without transcoding again.
//!
//! Size-bounded: an index of the objects this process knows (listed in the background after
//! start, and kept up to date as it reads and writes) deletes the least recently used past `max_bytes`, down to 90 %.
//! Objects another node writes into a shared prefix count only once this node lists or reads
//! them; a bucket lifecycle rule is the hard bound there.
//!
//! Invariants: all IO goes through `Origin`; a failure here is logged and is a miss, never a
//! failed request; objects are written whole (temp file + rename on fs, one PUT on S3); the key
//! is hex, so no client input reaches a storage path.

use crate::delivery::key::{CacheKey, SourceTag};
use crate::pipeline::format::ImageFormat;
use crate::pipeline::{probe, Encoded};
use crate::storage::origin::{Backend, Origin, OriginError, StorageConfig, TMP_DIR};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

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
    /// Decoded sources kept for seconds, so several outputs of one source decode it once.
    pub decoded: DecodedConfig,
}

/// The `[cache.decoded]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodedConfig {
    /// Memory budget in bytes for decoded pixels; 0 = off (every output decodes its source).
    pub max_bytes: u64,
    /// Milliseconds a decode is kept after it is made.
    pub ttl_ms: u64,
    /// Outputs up to this many pixels on their longer side share one JPEG decode scale (the
    /// DCT shrink is chosen as if they were this large), so a `srcset` decodes once or twice.
    pub share_width: u32,
}

impl Default for DecodedConfig {
    fn default() -> Self {
        Self {
            max_bytes: 128 << 20,
            ttl_ms: 10_000,
            share_width: 1920,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            ttl_secs: 24 * 3600,
            persistent: PersistentConfig::default(),
            decoded: DecodedConfig::default(),
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

/// Largest object the tier reads back (a variant is far smaller).
const MAX_OBJECT: u64 = 64 << 20;

/// What the index knows of one object.
#[derive(Debug, Clone, Copy)]
struct Entry {
    len: u64,
    used: u64,
}

#[derive(Debug)]
struct Index {
    entries: HashMap<String, Entry>,
    total: u64,
    /// Use ticks of reads and writes start above any listing position, so a listed object is
    /// always older than one used since the start.
    clock: u64,
}

impl Default for Index {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            total: 0,
            clock: 1 << 40,
        }
    }
}

impl Index {
    /// An object found by listing, `order` its age rank (0 = oldest); kept as is when already
    /// known.
    fn add_listed(&mut self, path: &str, len: u64, order: u64) {
        if !self.entries.contains_key(path) {
            self.entries
                .insert(path.to_string(), Entry { len, used: order });
            self.total += len;
        }
    }

    fn touch(&mut self, path: &str, len: u64) {
        self.clock += 1;
        let used = self.clock;
        if let Some(old) = self.entries.insert(path.to_string(), Entry { len, used }) {
            self.total -= old.len;
        }
        self.total += len;
    }

    fn forget(&mut self, path: &str) {
        if let Some(old) = self.entries.remove(path) {
            self.total -= old.len;
        }
    }

    /// Remove from the index, least recently used first, until the total is at most `target`;
    /// returns the paths to delete.
    fn evict_to(&mut self, target: u64) -> Vec<String> {
        if self.total <= target {
            return Vec::new();
        }
        let mut by_age: Vec<(u64, String, u64)> = self
            .entries
            .iter()
            .map(|(p, e)| (e.used, p.clone(), e.len))
            .collect();
        by_age.sort_unstable();
        let mut out = Vec::new();
        for (_, path, len) in by_age {
            if self.total <= target {
                break;
            }
            self.entries.remove(&path);
            self.total -= len;
            out.push(path);
        }
        out
    }
}

/// The persistent tier.
pub struct Persist {
    store: Origin,
    max_bytes: u64,
    index: Mutex<Index>,
    /// After a full-disk failure, writes stop until then (one log line per pause).
    paused_until: Mutex<Option<std::time::Instant>>,
}

/// How long writes pause after the tier's storage was found full.
const FULL_PAUSE: std::time::Duration = std::time::Duration::from_secs(60);

impl Persist {
    /// Open the tier (`None` when `max_bytes` is 0), clear half-written files and index what is
    /// already stored.
    pub async fn open(
        cfg: &PersistentConfig,
        storage: &StorageConfig,
        data_dir: &Path,
    ) -> Result<Option<Self>, String> {
        if cfg.max_bytes == 0 {
            return Ok(None);
        }
        let store_cfg =
            match cfg.backend {
                PersistentBackend::Fs => {
                    StorageConfig {
                        backend: Backend::Fs,
                        root: Some(cfg.path.clone().unwrap_or_else(|| {
                            data_dir.join("cache").to_string_lossy().into_owned()
                        })),
                        stat_ttl_ms: 0,
                        ..StorageConfig::default()
                    }
                }
                PersistentBackend::S3 if storage.backend == Backend::S3 => StorageConfig {
                    prefix: Some(
                        cfg.path
                            .clone()
                            .unwrap_or_else(|| "refract-cache/".to_string()),
                    ),
                    stat_ttl_ms: 0,
                    ..storage.clone()
                },
                PersistentBackend::S3 => return Err(
                    "cache.persistent.backend = \"s3\" needs storage.backend = \"s3\" (it uses \
                     that bucket and its credentials)"
                        .into(),
                ),
            };
        let store = Origin::new_store(&store_cfg).map_err(|e| e.to_string())?;
        store.clear_staging().map_err(|e| e.to_string())?;
        let tier = Self {
            store,
            max_bytes: cfg.max_bytes,
            index: Mutex::new(Index::default()),
            paused_until: Mutex::new(None),
        };
        Ok(Some(tier))
    }

    /// Index what is already stored (run in the background after start: a large prefix takes a
    /// while to list, and serving need not wait). Objects read or written meanwhile keep their
    /// place; listed ones count as older, most recently modified last.
    pub async fn index_existing(&self) {
        let mut files: Vec<_> = match self.store.list_files().await {
            Ok(f) => f
                .into_iter()
                .filter(|f| !f.path.starts_with(TMP_DIR))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "persistent cache: listing failed; bound counts new objects only");
                return;
            }
        };
        files.sort_by_key(|f| f.modified.unwrap_or(0));
        if let Ok(mut idx) = self.index.lock() {
            for (i, f) in files.iter().enumerate() {
                idx.add_listed(&f.path, f.len, i as u64);
            }
        }
        self.evict().await;
    }

    /// The object path of a key: its source's tag (so a source's variants share a folder),
    /// then the whole key.
    fn path(key: &CacheKey) -> String {
        format!("{}/{}", key.source.hex(), key.hex())
    }

    /// Delete every stored variant of a source (the index's and whatever a listing finds, such
    /// as objects another node wrote). Returns how many were deleted; failures are logged.
    pub async fn purge_source(&self, source: SourceTag) -> usize {
        let prefix = format!("{}/", source.hex());
        let mut doomed: Vec<String> = match self.index.lock() {
            Ok(mut i) => {
                let paths: Vec<String> = i
                    .entries
                    .keys()
                    .filter(|p| p.starts_with(&prefix))
                    .cloned()
                    .collect();
                for p in &paths {
                    i.forget(p);
                }
                paths
            }
            Err(_) => Vec::new(),
        };
        match self.store.list_files_under(&prefix).await {
            Ok(files) => doomed.extend(files.into_iter().map(|f| f.path)),
            Err(e) => tracing::warn!(error = %e, "persistent cache: listing for a purge failed"),
        }
        doomed.sort_unstable();
        doomed.dedup();
        let mut n = 0;
        for p in &doomed {
            match self.store.delete(p).await {
                Ok(()) => n += 1,
                Err(e) => tracing::warn!(error = %e, path = p, "persistent cache: purge failed"),
            }
        }
        n
    }

    /// A stored variant, or `None` (absent, unreadable, or not an image: all misses).
    pub async fn get(&self, key: &CacheKey) -> Option<Encoded> {
        let path = Self::path(key);
        let known = self
            .index
            .lock()
            .ok()
            .and_then(|i| i.entries.get(&path).map(|e| e.len));
        let bytes = match self.store.read(&path, known.unwrap_or(0), MAX_OBJECT).await {
            Ok(b) => b,
            Err(OriginError::NotFound) => {
                if let Ok(mut i) = self.index.lock() {
                    i.forget(&path);
                }
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, path, "persistent cache: read failed");
                return None;
            }
        };
        let Some(enc) = decode_entry(bytes) else {
            tracing::warn!(path, "persistent cache: not an image; deleting it");
            let _ = self.store.delete(&path).await;
            if let Ok(mut i) = self.index.lock() {
                i.forget(&path);
            }
            return None;
        };
        if let Ok(mut i) = self.index.lock() {
            i.touch(&path, enc.bytes.len() as u64);
        }
        Some(enc)
    }

    /// Store a variant, then evict past the bound. Failures are logged.
    pub async fn put(&self, key: &CacheKey, enc: &Encoded) {
        let now = std::time::Instant::now();
        if self
            .paused_until
            .lock()
            .is_ok_and(|p| p.is_some_and(|until| now < until))
        {
            return;
        }
        let path = Self::path(key);
        match self.store.write(&path, enc.bytes.to_vec()).await {
            Ok(()) => {}
            Err(OriginError::NoSpace(e)) => {
                if let Ok(mut p) = self.paused_until.lock() {
                    *p = Some(now + FULL_PAUSE);
                }
                tracing::warn!(error = %e, "persistent cache: storage full; writes paused for 60 s (serving goes on)");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, path, "persistent cache: write failed");
                return;
            }
        }
        if let Ok(mut i) = self.index.lock() {
            i.touch(&path, enc.bytes.len() as u64);
        }
        self.evict().await;
    }

    /// Bytes the index counts now.
    pub fn bytes(&self) -> u64 {
        self.index.lock().map_or(0, |i| i.total)
    }

    async fn evict(&self) {
        let doomed = match self.index.lock() {
            Ok(mut i) if i.total > self.max_bytes => i.evict_to(self.max_bytes / 10 * 9),
            _ => return,
        };
        for path in doomed {
            if let Err(e) = self.store.delete(&path).await {
                tracing::warn!(error = %e, path, "persistent cache: delete failed");
            }
        }
    }
}

fn decode_entry(bytes: Bytes) -> Option<Encoded> {
    let format = ImageFormat::sniff(&bytes)?;
    let p = probe::probe(&bytes).ok()?;
    Some(Encoded {
        format,
        width: p.width,
        height: p.height,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_evicts_least_recently_used_first() {
        let mut i = Index::default();
        i.touch("a", 40);
        i.touch("b", 40);
        i.touch("c", 40);
        i.touch("a", 40); // a is now the most recent
        assert_eq!(i.total, 120);
        assert_eq!(i.evict_to(80), vec!["b".to_string()]);
        assert_eq!(i.evict_to(0), vec!["c".to_string(), "a".to_string()]);
        assert_eq!(i.total, 0);
        i.touch("d", 10);
        i.forget("d");
        assert_eq!((i.total, i.entries.len()), (0, 0));
        // Listed objects are older than used ones, and a listing does not demote a used one.
        i.touch("used", 10);
        i.add_listed("old", 10, 0);
        i.add_listed("used", 10, 1);
        assert_eq!(i.total, 20);
        assert_eq!(i.evict_to(10), vec!["old".to_string()]);
    }
}
