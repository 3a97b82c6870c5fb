//! The library indexer: the images already in the library roots (folders of the storage, or
//! prefixes of the bucket) become rows of tenant `library.tenant` with the same metadata as
//! uploads (`source = 'indexed'`), without being moved or rewritten.
//!
//! One scan lists every root, compares each file with what the index knows (size and time, and
//! the ETag on S3), analyses only new and changed files (on the CPU pool, a few at a time so
//! `/img` keeps its cores), writes rows in batches, and forgets files that are gone (purging
//! their variants). Scans run at start (in the background), every `rescan_secs`, when the
//! filesystem watcher (fs backend) sees a change, and on `POST /api/v1/library/rescan`.
//!
//! Invariants: never writes, moves or deletes a file; never touches a row it did not make
//! (uploads, avatars); one scan at a time; a bad file is counted and listed, never fatal.

use super::meta;
use crate::pipeline::PixelLimits;
use crate::storage::origin::{ListedFile, Origin};
use crate::store::{ImageRecord, Store};
use crate::util::clock::now_ms;
use crate::util::workers::CpuPool;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `[library]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LibraryConfig {
    /// Index the images already in `roots`.
    pub enabled: bool,
    /// Storage prefixes to index ("" = the whole storage root).
    pub roots: Vec<String>,
    /// The tenant indexed images belong to.
    pub tenant: String,
    /// Seconds between full rescans (the safety net under the watcher; S3's only way to see
    /// changes); 0 = only at start and on request.
    pub rescan_secs: u64,
    /// Watch the roots for changes (fs backend).
    pub watch: bool,
    /// Tag indexed images from their generation info (`model:<name>`, `lora:<name>`,
    /// `sampler:<name>`), as tags of type `auto`.
    pub auto_tags: bool,
}

impl Default for LibraryConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            roots: vec![String::new()],
            tenant: "default".into(),
            rescan_secs: 300,
            watch: true,
            auto_tags: false,
        }
    }
}

impl LibraryConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !crate::access::auth::valid_tenant(&self.tenant) {
            return Err("library.tenant: 1-64 of a-z, 0-9, '-', '_'".into());
        }
        for r in &self.roots {
            if !r.is_empty() && crate::storage::origin::sanitize_key(r).is_err() {
                return Err(format!("library.roots: {r:?} is not a storage prefix"));
            }
        }
        Ok(())
    }

    /// The roots as listing prefixes (`photos/`, or "" for everything), each once.
    fn prefixes(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .roots
            .iter()
            .map(|r| {
                let r = r.trim_matches('/');
                if r.is_empty() {
                    String::new()
                } else {
                    format!("{r}/")
                }
            })
            .collect();
        out.sort();
        out.dedup();
        // A root inside another is listed with it.
        let all = out.clone();
        out.retain(|p| !all.iter().any(|q| q != p && p.starts_with(q.as_str())));
        out
    }
}

/// File name extensions the indexer analyses; anything else is counted as skipped.
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "gif", "webp", "avif"];
/// Rows written per transaction.
const BATCH: usize = 64;
/// Entries kept in each of the status's lists.
const LISTED: usize = 200;

/// Progress and outcome of the scans, for `GET /api/v1/library/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub enabled: bool,
    pub running: bool,
    pub scans: u64,
    /// Unix ms.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// Image files in the roots (this scan, so far).
    pub seen: u64,
    /// New or changed files to analyse this scan, and how many are done.
    pub to_index: u64,
    pub indexed: u64,
    pub unchanged: u64,
    /// Files gone since the last scan (their rows forgotten).
    pub removed: u64,
    pub failed: u64,
    /// Non-image files and hidden folders' files passed over.
    pub skipped: u64,
    /// Files analysed per second, this scan.
    pub rate: f64,
    /// Seconds left, at this rate.
    pub eta_secs: Option<f64>,
    /// Why files failed (up to 200): key → reason.
    pub failures: BTreeMap<String, String>,
    /// Files passed over (up to 200): key → why.
    pub skipped_files: BTreeMap<String, String>,
    pub last_error: Option<String>,
}

/// What the indexer is built from.
pub struct Parts {
    pub cfg: LibraryConfig,
    pub store: Arc<Store>,
    pub origin: Arc<Origin>,
    pub cpu: Arc<CpuPool>,
    pub pixel_limits: PixelLimits,
    pub keep_gps: bool,
    pub max_source_bytes: u64,
    /// Prefixes never indexed (the persistent variant tier when it lives in the storage).
    pub skip_prefixes: Vec<String>,
    /// fs backend: the folders to watch (each root's path on disk).
    pub watch_dirs: Vec<std::path::PathBuf>,
    /// fs backend: the storage root on disk, canonical (files must resolve inside it).
    pub fs_root: Option<std::path::PathBuf>,
    pub on_removed: super::OnRemoved,
    /// This process among the nodes sharing the database: it indexes while it holds the
    /// `library` lease.
    pub node: String,
}

/// The lease of the node that indexes (one per cluster).
pub const LIBRARY_LEASE: &str = "library";

/// How long the `library` lease lasts without a scan renewing it.
const LIBRARY_LEASE_MS: i64 = 60_000;

/// The indexer.
pub struct Indexer {
    cfg: LibraryConfig,
    store: Arc<Store>,
    origin: Arc<Origin>,
    cpu: Arc<CpuPool>,
    pixel_limits: PixelLimits,
    keep_gps: bool,
    max_source_bytes: u64,
    skip_prefixes: Vec<String>,
    watch_dirs: Vec<std::path::PathBuf>,
    fs_root: Option<std::path::PathBuf>,
    on_removed: super::OnRemoved,
    node: String,
    status: Mutex<Status>,
    /// Files that failed, with the size and time they failed at (not retried until changed).
    failed_at: Mutex<HashMap<String, (u64, Option<i64>)>>,
    wake: tokio::sync::Notify,
    /// One scan at a time.
    scanning: tokio::sync::Mutex<()>,
}

impl Indexer {
    pub fn new(p: Parts) -> Self {
        Self {
            status: Mutex::new(Status {
                enabled: p.cfg.enabled,
                ..Status::default()
            }),
            cfg: p.cfg,
            store: p.store,
            origin: p.origin,
            cpu: p.cpu,
            pixel_limits: p.pixel_limits,
            keep_gps: p.keep_gps,
            max_source_bytes: p.max_source_bytes,
            skip_prefixes: p.skip_prefixes,
            watch_dirs: p.watch_dirs,
            fs_root: p.fs_root,
            on_removed: p.on_removed,
            node: p.node,
            failed_at: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            scanning: tokio::sync::Mutex::new(()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// The tenant indexed images belong to.
    pub fn tenant(&self) -> &str {
        &self.cfg.tenant
    }

    /// The roots (as prefixes) where `tenant` may manage files: the library's, for its tenant.
    pub fn roots_for(&self, tenant: &str) -> Vec<String> {
        if self.cfg.enabled && tenant == self.cfg.tenant {
            self.cfg.prefixes()
        } else {
            Vec::new()
        }
    }

    /// A snapshot of the progress.
    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    /// Ask for a scan now (it starts when the running one, if any, ends).
    pub fn rescan(&self) {
        self.wake.notify_one();
    }

    /// The background loop: a scan at start, then one per wake-up (watcher, request) or
    /// `rescan_secs`. Events arriving in a burst make one scan (250 ms of quiet first).
    pub async fn run(self: Arc<Self>) {
        if !self.cfg.enabled {
            return;
        }
        let _watcher = self.watch();
        let every = (self.cfg.rescan_secs > 0).then(|| Duration::from_secs(self.cfg.rescan_secs));
        loop {
            // One node of a cluster indexes: the holder of the lease, renewed at each scan.
            match self
                .store
                .try_lease(LIBRARY_LEASE, &self.node, LIBRARY_LEASE_MS, now_ms())
                .await
            {
                Ok(true) => self.scan().await,
                Ok(false) => tracing::debug!("library: another node indexes"),
                Err(e) => tracing::warn!(error = %e, "library: lease unavailable"),
            }
            match every {
                Some(d) => {
                    let _ = tokio::time::timeout(d, self.wake.notified()).await;
                }
                None => self.wake.notified().await,
            }
            // Let a burst of changes settle into one scan.
            while tokio::time::timeout(Duration::from_millis(250), self.wake.notified())
                .await
                .is_ok()
            {}
        }
    }

    /// The filesystem watcher (fs backend, `watch = true`): any event under a root wakes the
    /// loop. Kept alive by the returned value.
    fn watch(self: &Arc<Self>) -> Option<notify::RecommendedWatcher> {
        use notify::Watcher;
        if !self.cfg.watch || self.watch_dirs.is_empty() {
            return None;
        }
        let me = Arc::downgrade(self);
        let dirs = self.watch_dirs.clone();
        // Hidden files and folders (inside a root) are not indexed: their events wake nothing.
        let visible = move |p: &std::path::Path| {
            let rel = dirs
                .iter()
                .find_map(|d| p.strip_prefix(d).ok())
                .unwrap_or(p);
            !rel.components()
                .any(|c| c.as_os_str().to_str().is_some_and(|s| s.starts_with('.')))
        };
        let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let relevant =
                ev.is_ok_and(|e| !e.kind.is_access() && e.paths.iter().any(|p| visible(p)));
            if let (true, Some(me)) = (relevant, me.upgrade()) {
                me.wake.notify_one();
            }
        })
        .map_err(|e| tracing::warn!(error = %e, "library: no filesystem watcher"))
        .ok()?;
        for d in &self.watch_dirs {
            if let Err(e) = w.watch(d, notify::RecursiveMode::Recursive) {
                tracing::warn!(error = %e, dir = %d.display(), "library: cannot watch");
            }
        }
        Some(w)
    }

    /// One scan (waits for a running one to end first).
    pub async fn scan(&self) {
        let _one = self.scanning.lock().await;
        let started = Instant::now();
        {
            let mut s = lock(&self.status);
            let (scans, failures) = (s.scans, std::mem::take(&mut s.failures));
            *s = Status {
                enabled: true,
                running: true,
                scans,
                started_at: Some(now_ms()),
                failures,
                ..Status::default()
            };
        }
        let outcome = self.scan_inner(started).await;
        let mut s = lock(&self.status);
        s.running = false;
        s.scans += 1;
        s.finished_at = Some(now_ms());
        s.eta_secs = None;
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "library scan failed");
            s.last_error = Some(e);
        } else {
            s.last_error = None;
            tracing::info!(
                seen = s.seen,
                indexed = s.indexed,
                unchanged = s.unchanged,
                removed = s.removed,
                failed = s.failed,
                secs = started.elapsed().as_secs_f64(),
                "library scan"
            );
        }
    }

    async fn scan_inner(&self, started: Instant) -> Result<(), String> {
        let mut listed: Vec<ListedFile> = Vec::new();
        for prefix in self.cfg.prefixes() {
            listed.extend(
                self.origin
                    .list_files_under(&prefix)
                    .await
                    .map_err(|e| format!("listing {prefix:?}: {e}"))?,
            );
        }
        let known = self
            .store
            .known_files()
            .await
            .map_err(|e| format!("database: {e}"))?;
        let mut present: HashSet<String> = HashSet::new();
        let mut work: Vec<(ListedFile, Option<String>)> = Vec::new();
        {
            let failed_at = lock(&self.failed_at);
            let mut s = lock(&self.status);
            for f in listed {
                if let Some(why) = self.passed_over(&f.path) {
                    s.skipped += 1;
                    if s.skipped_files.len() < LISTED {
                        s.skipped_files.insert(f.path.clone(), why.into());
                    }
                    continue;
                }
                let k = known.get(&f.path);
                match k {
                    // Uploads and avatars are rows already; another tenant's too.
                    Some(k) if k.source != "indexed" || k.tenant != self.cfg.tenant => continue,
                    _ => {}
                }
                s.seen += 1;
                present.insert(f.path.clone());
                let mtime = f.modified.map(|t| t * 1000);
                let same = |k: &crate::store::KnownFile| {
                    k.bytes == f.len as i64
                        && k.file_mtime == mtime
                        && (f.etag.is_none() || k.etag == f.etag)
                };
                if k.is_some_and(same) {
                    s.unchanged += 1;
                    continue;
                }
                if failed_at.get(&f.path) == Some(&(f.len, mtime)) {
                    s.failed += 1;
                    continue;
                }
                work.push((f, k.map(|k| k.id.clone())));
            }
            s.to_index = work.len() as u64;
        }
        // Gone: indexed rows of this tenant under a root whose file was not listed.
        let prefixes = self.cfg.prefixes();
        let gone: Vec<String> = known
            .iter()
            .filter(|(key, k)| {
                k.source == "indexed"
                    && k.tenant == self.cfg.tenant
                    && !present.contains(*key)
                    && prefixes.iter().any(|p| key.starts_with(p.as_str()))
            })
            .map(|(key, _)| key.clone())
            .collect();
        let forgotten = self
            .store
            .forget_indexed(&gone)
            .await
            .map_err(|e| format!("database: {e}"))?;
        for key in &forgotten {
            (self.on_removed)(key.clone()).await;
        }
        lock(&self.status).removed = forgotten.len() as u64;

        // Analyse new and changed files, a few at a time, writing rows in batches.
        let parallel = self.cpu.workers().max(1);
        let jobs: Vec<_> = work
            .into_iter()
            .map(|(f, id)| self.analyse(f, id))
            .collect();
        let mut results = futures_util::stream::iter(jobs).buffer_unordered(parallel);
        let mut batch: Vec<ImageRecord> = Vec::with_capacity(BATCH);
        while let Some(r) = results.next().await {
            match r {
                Ok(rec) => batch.push(rec),
                Err(e) => {
                    // An unexpected error (randomness): count it like a bad file.
                    lock(&self.status).last_error = Some(e);
                }
            }
            if batch.len() >= BATCH {
                self.write(&mut batch, started).await?;
            }
        }
        drop(results);
        self.write(&mut batch, started).await?;
        Ok(())
    }

    /// Why a key is not indexed (hidden, the variant tier, not an image, a link out of the
    /// root), if it is not.
    fn passed_over(&self, key: &str) -> Option<&'static str> {
        if key.split('/').any(|seg| seg.starts_with('.')) {
            return Some("hidden");
        }
        if let Some(root) = &self.fs_root {
            // The fs backend lists through symbolic links: the file must resolve inside the root.
            match std::fs::canonicalize(root.join(key)) {
                Ok(real) if real.starts_with(root) => {}
                _ => return Some("a symbolic link out of the root"),
            }
        }
        if self
            .skip_prefixes
            .iter()
            .any(|p| key.starts_with(p.as_str()))
        {
            return Some("the persistent variant cache");
        }
        let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        if !ext.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) {
            return Some("not an image (by its name)");
        }
        None
    }

    /// Read and analyse one file into its row; a bad file is recorded as failed and yields
    /// `Err` only for faults of the server itself.
    async fn analyse(&self, f: ListedFile, id: Option<String>) -> Result<ImageRecord, String> {
        let id = match id {
            Some(id) => id,
            None => crate::util::ids::random_id(12).map_err(|e| e.to_string())?,
        };
        let mtime = f.modified.map(|t| t * 1000);
        let outcome = self.analyse_file(&f).await;
        // Lock order: `failed_at`, then `status` (as in `scan_inner`).
        let mut failed_at = lock(&self.failed_at);
        let mut s = lock(&self.status);
        match outcome {
            Ok(a) => {
                failed_at.remove(&f.path);
                s.indexed += 1;
                let filename = f.path.rsplit('/').next().unwrap_or(&f.path).to_string();
                Ok(ImageRecord {
                    id,
                    tenant: self.cfg.tenant.clone(),
                    storage_key: f.path.clone(),
                    filename,
                    content_type: a.format.mime().into(),
                    format: a.format.name().into(),
                    bytes: f.len as i64,
                    width: i64::from(a.width),
                    height: i64::from(a.height),
                    orientation: a.orientation.into(),
                    has_alpha: a.has_alpha,
                    blake3: a.blake3.clone(),
                    description: String::new(),
                    is_private: false,
                    owner: None,
                    created_at: mtime.unwrap_or_else(now_ms),
                    expires_at: None,
                    exif: serde_json::Value::Object(a.exif.clone()).to_string(),
                    generation_info: a
                        .generation_info
                        .clone()
                        .map(|g| serde_json::Value::Object(g).to_string()),
                    placeholder: a.placeholder.to_string(),
                    tags: if self.cfg.auto_tags {
                        auto_tags(&super::gen_fields(a.generation_info.as_ref()))
                    } else {
                        Vec::new()
                    },
                    source: "indexed".into(),
                    file_mtime: mtime,
                    etag: f.etag.clone(),
                    gen: super::gen_fields(a.generation_info.as_ref()),
                })
            }
            Err(why) => {
                failed_at.insert(f.path.clone(), (f.len, mtime));
                s.failed += 1;
                if s.failures.len() < LISTED || s.failures.contains_key(&f.path) {
                    s.failures.insert(f.path.clone(), why.clone());
                }
                Err(format!("{}: {why}", f.path))
            }
        }
    }

    async fn analyse_file(&self, f: &ListedFile) -> Result<meta::Analysis, String> {
        let bytes = self
            .origin
            .read(&f.path, f.len, self.max_source_bytes)
            .await
            .map_err(|e| e.to_string())?;
        let opts = meta::Options {
            limits: self.pixel_limits,
            keep_gps: self.keep_gps,
            remove_exif: false,
            convert: None,
        };
        // The pool may be busy serving `/img`: wait and try again rather than fail the file.
        let mut tries = 0;
        loop {
            let b = bytes.to_vec();
            match self.cpu.run(move || meta::analyze(b, opts)).await {
                Ok(r) => return r.map_err(|e| crate::error::Error::from(e).to_string()),
                Err(e) if tries < 20 => {
                    tries += 1;
                    tracing::debug!(error = ?e, "library: CPU pool busy, waiting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(format!("the CPU pool stayed busy: {e:?}")),
            }
        }
    }

    /// Write a batch of rows and update the rate.
    async fn write(&self, batch: &mut Vec<ImageRecord>, started: Instant) -> Result<(), String> {
        if !batch.is_empty() {
            self.store
                .upsert_indexed(batch)
                .await
                .map_err(|e| format!("database: {e}"))?;
            batch.clear();
        }
        let mut s = lock(&self.status);
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let done = s.indexed + s.failed;
        s.rate = (s.indexed as f64 / secs * 10.0).round() / 10.0;
        s.eta_secs = (s.rate > 0.0)
            .then(|| (s.to_index.saturating_sub(done) as f64 / s.rate * 10.0).round() / 10.0);
        Ok(())
    }
}

/// The auto tags of an image's generation fields: `model:…`, `sampler:…`, `lora:…` (each at
/// most 64 characters, no commas).
fn auto_tags(g: &crate::store::GenFields) -> Vec<String> {
    let mut out: Vec<String> = g
        .model
        .iter()
        .map(|m| format!("model:{m}"))
        .chain(g.sampler.iter().map(|s| format!("sampler:{s}")))
        .chain(g.loras.iter().map(|l| format!("lora:{l}")))
        .map(|t| {
            t.replace(',', " ")
                .chars()
                .take(64)
                .collect::<String>()
                .to_lowercase()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_become_prefixes_once() {
        let c = LibraryConfig {
            roots: vec!["a/b".into(), "/a/".into(), "c".into(), "c/".into()],
            ..LibraryConfig::default()
        };
        assert_eq!(c.prefixes(), vec!["a/", "c/"]);
        assert_eq!(LibraryConfig::default().prefixes(), vec![""]);
        assert!(LibraryConfig {
            tenant: "Bad".into(),
            ..LibraryConfig::default()
        }
        .validate()
        .is_err());
    }
}
