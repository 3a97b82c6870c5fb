//! Where originals come from: an OpenDAL `Operator` over the local filesystem (default), S3, or a
//! read-only HTTP origin; storage-key sanitisation; `stat` → `SourceVersion`; bounded reads.
//!
//! Invariants: the only module that imports `opendal`; a key is sanitised before any storage
//! call (no `..`, no leading `/`, no backslash, no control characters); errors are
//! `OriginError`, never HTTP statuses.

use crate::util::cache::TtlCache;
use crate::util::secret::Secret;
use bytes::Bytes;
use opendal::{ErrorKind, Operator};
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What identifies one version of a stored original (from one `stat`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SourceVersion {
    /// The storage's ETag, when it has one.
    pub etag: Option<String>,
    /// Last modification, unix seconds.
    pub modified: Option<i64>,
    /// Length in bytes.
    pub len: u64,
}

/// Which storage service holds the originals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Fs,
    S3,
    Http,
}

/// The `[storage]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `fs`, `s3` or `http`.
    pub backend: Backend,
    /// fs: the folder of originals (default `<data_dir>/images`).
    pub root: Option<String>,
    /// s3: endpoint URL, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// s3: bucket.
    pub bucket: Option<String>,
    /// s3: region.
    pub region: String,
    /// s3: key prefix inside the bucket.
    pub prefix: Option<String>,
    /// s3: access key id.
    pub access_key_id: Option<String>,
    /// s3: secret access key.
    pub secret_access_key: Option<Secret>,
    /// http: base URL the key is appended to.
    pub base_url: Option<String>,
    /// Timeout of one storage call, milliseconds.
    pub timeout_ms: u64,
    /// http: networks (CIDRs) the origin may reach although internal (loopback, private,
    /// link-local, CGNAT are refused otherwise).
    pub http_allow_networks: Vec<String>,
    /// http: connect timeout, milliseconds.
    pub http_connect_timeout_ms: u64,
    /// How long a `stat` (the source's version) is reused, milliseconds; 0 = ask storage on
    /// every request. Writes and deletes through Refract invalidate at once; an object replaced
    /// behind Refract's back is seen after at most this long.
    pub stat_ttl_ms: u64,
    /// When storage cannot be reached (down, 5xx, timeout), how long the last version seen of
    /// a source may still be used to serve its cached variants instead of an error, seconds;
    /// 0 = never. Only an outage uses it: a source that storage says is gone is gone at once.
    pub stale_if_error_secs: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Fs,
            root: None,
            endpoint: None,
            bucket: None,
            region: "us-east-1".into(),
            prefix: None,
            access_key_id: None,
            secret_access_key: None,
            base_url: None,
            timeout_ms: 10_000,
            http_allow_networks: Vec::new(),
            http_connect_timeout_ms: 5_000,
            stat_ttl_ms: 1_000,
            stale_if_error_secs: 86_400,
        }
    }
}

impl StorageConfig {
    /// `http_allow_networks` parsed (a bare IP is a /32 or /128).
    pub fn allowed_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        crate::util::netguard::parse_networks(
            &self.http_allow_networks,
            "storage.http_allow_networks",
        )
    }

    /// Check that the chosen backend has what it needs.
    pub fn validate(&self) -> Result<(), String> {
        self.allowed_networks()?;
        match self.backend {
            Backend::Fs => Ok(()),
            Backend::S3 if self.bucket.is_none() => {
                Err("storage.bucket is required for the s3 backend".into())
            }
            Backend::S3 => Ok(()),
            Backend::Http => match &self.base_url {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(()),
                _ => Err(
                    "storage.base_url (http:// or https://) is required for the http backend"
                        .into(),
                ),
            },
        }
    }
}

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    InvalidKey(String),
    #[error("source is {len} bytes; the limit is {max}")]
    TooLarge { len: u64, max: u64 },
    #[error("origin timed out")]
    Timeout,
    #[error("origin unavailable: {0}")]
    Unavailable(String),
    /// The storage is full (ENOSPC, quota).
    #[error("storage full: {0}")]
    NoSpace(String),
}

/// One object found by `list_files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    pub path: String,
    pub len: u64,
    /// Unix seconds.
    pub modified: Option<i64>,
    /// The storage's ETag, when its listing gives one (S3).
    pub etag: Option<String>,
}

/// How long after storage failed to answer the sources it last saw are served stale at once
/// (without each request waiting for the timeout); uncached ones still ask storage.
const OUTAGE_MEMORY: Duration = Duration::from_secs(2);

/// Whether a `stat` came from storage now, or from memory during an outage (and the outage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// The outage this request saw; `None` when storage failed moments ago and was not asked
    /// again (ask it before answering an error).
    Stale(Option<OriginError>),
}

/// What one `stat` tells, and when storage told it.
#[derive(Debug, Clone)]
pub struct Stat {
    pub version: SourceVersion,
    /// When storage answered, and how many writes this process had made before it was asked
    /// (see `Origin::still_fresh`).
    pub fetched: std::time::Instant,
    pub writes: u64,
}

/// The originals store.
#[derive(Clone)]
pub struct Origin {
    op: Operator,
    timeout: Duration,
    /// Recent stats, so that a cache hit costs no storage round trip.
    stats: std::sync::Arc<TtlCache<Stat>>,
    /// The last version storage gave of each source, kept for `stale_if_error_secs`, read only
    /// when storage cannot be reached.
    last_good: std::sync::Arc<TtlCache<Stat>>,
    /// When storage last failed to answer: for `OUTAGE_MEMORY` after it, sources with a last
    /// version are served stale without waiting for storage's timeout again.
    outage_at: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// How long a `stat` is kept, and the writes and deletes made through this process.
    stat_ttl: Duration,
    writes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// fs: the staging folder of atomic writes (emptied at start: what a crash left there was
    /// never renamed into place).
    staging: Option<PathBuf>,
    /// fs: the root, canonical. A key whose file resolves outside it (a symbolic link out of
    /// the root) is as if absent.
    fs_root: Option<PathBuf>,
}

/// Sample images written into a brand-new local images folder, so a first run has something to show.
const SAMPLES: &[(&str, &[u8])] = &[
    ("rocket.jpg", include_bytes!("../../samples/rocket.jpg")),
    ("dice.png", include_bytes!("../../samples/dice.png")),
    (
        "landscape.jpg",
        include_bytes!("../../samples/landscape.jpg"),
    ),
];

impl Origin {
    /// Build the operator. For `fs`, `default_root` is used when `storage.root` is unset; a root
    /// that does not exist yet is created and seeded with the sample images.
    pub fn new(cfg: &StorageConfig, default_root: &Path) -> Result<Self, OriginError> {
        Self::build(cfg, default_root, true)
    }

    /// A store that is not the originals (the persistent variant tier): a missing fs root is
    /// created empty.
    pub fn new_store(cfg: &StorageConfig) -> Result<Self, OriginError> {
        Self::build(cfg, Path::new("."), false)
    }

    fn build(cfg: &StorageConfig, default_root: &Path, seed: bool) -> Result<Self, OriginError> {
        opendal::install_default();
        let unavailable = |e: opendal::Error| OriginError::Unavailable(e.to_string());
        let mut staging = None;
        let mut fs_root = None;
        let op = match cfg.backend {
            Backend::Fs => {
                let root = cfg
                    .root
                    .clone()
                    .unwrap_or_else(|| default_root.to_string_lossy().into_owned());
                let root_path = Path::new(&root);
                if !root_path.exists() {
                    let made = if seed {
                        seed_samples(root_path)
                    } else {
                        std::fs::create_dir_all(root_path)
                    };
                    made.map_err(|e| OriginError::Unavailable(format!("creating {root}: {e}")))?;
                }
                let abs = std::fs::canonicalize(root_path)
                    .map_err(|e| OriginError::Unavailable(format!("storage root {root}: {e}")))?;
                // Writes land in a temporary file that is renamed into place: a reader never
                // sees half an object, and a crash leaves no partial file under a real key.
                let tmp = abs.join(TMP_DIR);
                staging = Some(tmp.clone());
                fs_root = Some(abs.clone());
                Operator::new(
                    opendal::services::Fs::default()
                        .root(&abs.to_string_lossy())
                        .atomic_write_dir(&tmp.to_string_lossy()),
                )
                .map_err(unavailable)?
            }
            Backend::S3 => {
                let mut b = opendal::services::S3::default()
                    .bucket(cfg.bucket.as_deref().unwrap_or_default())
                    .region(&cfg.region)
                    .disable_config_load()
                    .disable_ec2_metadata();
                if let Some(e) = &cfg.endpoint {
                    b = b.endpoint(e);
                }
                if let Some(p) = &cfg.prefix {
                    b = b.root(p);
                }
                if let Some(k) = &cfg.access_key_id {
                    b = b.access_key_id(k);
                }
                if let Some(s) = &cfg.secret_access_key {
                    b = b.secret_access_key(&s.0);
                }
                Operator::new(b).map_err(unavailable)?
            }
            Backend::Http => http_operator(cfg)?,
        };
        Ok(Self {
            op,
            timeout: Duration::from_millis(cfg.timeout_ms.max(1)),
            stats: std::sync::Arc::new(TtlCache::new(
                100_000,
                Duration::from_millis(cfg.stat_ttl_ms),
            )),
            last_good: std::sync::Arc::new(TtlCache::new(
                100_000,
                Duration::from_secs(cfg.stale_if_error_secs),
            )),
            outage_at: std::sync::Arc::default(),
            stat_ttl: Duration::from_millis(cfg.stat_ttl_ms),
            writes: std::sync::Arc::default(),
            staging,
            fs_root,
        })
    }

    async fn timed<T>(
        &self,
        fut: impl Future<Output = opendal::Result<T>>,
    ) -> Result<T, OriginError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(OriginError::Timeout),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(map_err(e)),
        }
    }

    /// The source's version: one storage round trip, or none within `stat_ttl_ms` of the last.
    pub async fn stat(&self, key: &str) -> Result<Stat, OriginError> {
        self.stats.get_or_try(key, self.stat_recorded(key)).await
    }

    /// Whether `stat` is still what `stat_or_stale` would answer, fresh, without asking: kept
    /// no longer than the stat cache keeps it, nothing written or deleted through this process
    /// since it was asked, and no outage remembered. `false` when unsure.
    pub fn still_fresh(&self, stat: &Stat) -> bool {
        stat.writes == self.writes.load(std::sync::atomic::Ordering::Acquire)
            && stat.fetched.elapsed() < self.stat_ttl
            && !self.outage_remembered()
    }

    /// Whether storage failed within `OUTAGE_MEMORY` (then stats are served stale rather than
    /// waiting for its timeout again).
    fn outage_remembered(&self) -> bool {
        self.outage_at
            .lock()
            .ok()
            .and_then(|at| *at)
            .is_some_and(|at| at.elapsed() < OUTAGE_MEMORY)
    }

    /// As `stat`, but during an outage (storage down or timing out) the last version seen
    /// within `stale_if_error_secs`, marked stale, when there is one.
    pub async fn stat_or_stale(&self, key: &str) -> Result<(Stat, Freshness), OriginError> {
        if self.outage_remembered() {
            if let Some(s) = self.last_good.get(key).await {
                return Ok((s, Freshness::Stale(None)));
            }
        }
        match self.stat(key).await {
            Ok(s) => Ok((s, Freshness::Fresh)),
            Err(e @ (OriginError::Timeout | OriginError::Unavailable(_))) => {
                if let Ok(mut at) = self.outage_at.lock() {
                    *at = Some(std::time::Instant::now());
                }
                match self.last_good.get(key).await {
                    Some(s) => Ok((s, Freshness::Stale(Some(e)))),
                    None => Err(e),
                }
            }
            Err(e @ OriginError::NotFound) => {
                self.last_good.invalidate(key).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn stat_recorded(&self, key: &str) -> Result<Stat, OriginError> {
        let s = self.stat_now(key).await?;
        self.last_good.insert(key, s.clone()).await;
        // Storage answered: any remembered outage is over.
        if let Ok(mut at) = self.outage_at.lock() {
            *at = None;
        }
        Ok(s)
    }

    /// The source's version from storage itself.
    /// fs: whether `key`'s file, if it exists, resolves inside the root (symbolic links are
    /// followed only while they stay inside it).
    fn inside_root(&self, key: &str) -> bool {
        let Some(root) = &self.fs_root else {
            return true;
        };
        match std::fs::canonicalize(root.join(key)) {
            Ok(real) => real.starts_with(root),
            Err(_) => true,
        }
    }

    async fn stat_now(&self, key: &str) -> Result<Stat, OriginError> {
        if !self.inside_root(key) {
            return Err(OriginError::NotFound);
        }
        let writes = self.writes.load(std::sync::atomic::Ordering::Acquire);
        let meta = self.timed(self.op.stat(key)).await?;
        if meta.is_dir() {
            return Err(OriginError::NotFound);
        }
        Ok(Stat {
            version: SourceVersion {
                etag: meta.etag().map(str::to_string),
                modified: meta.last_modified().map(|t| t.into_inner().as_second()),
                len: meta.content_length(),
            },
            fetched: std::time::Instant::now(),
            writes,
        })
    }

    /// Read a whole object of known length `len`, refusing more than `max` bytes: from the
    /// stated length first, then while streaming (an origin may lie about the length, or not
    /// state one).
    pub async fn read(&self, key: &str, len: u64, max: u64) -> Result<Bytes, OriginError> {
        use futures_util::TryStreamExt;
        if len > max {
            return Err(OriginError::TooLarge { len, max });
        }
        if !self.inside_root(key) {
            return Err(OriginError::NotFound);
        }
        let fetch = async {
            let reader = self.op.reader(key).await?;
            let mut stream = reader.into_bytes_stream(..).await?;
            let cap = usize::try_from(len.max(1))
                .unwrap_or(usize::MAX)
                .min(64 << 20);
            let mut out = bytes::BytesMut::with_capacity(cap);
            while let Some(chunk) = stream.try_next().await.map_err(|e| {
                // A file gone between open and read (a persistent-tier object evicted by another
                // node or process) is a plain miss, not an outage.
                let kind = if e.kind() == std::io::ErrorKind::NotFound {
                    ErrorKind::NotFound
                } else {
                    ErrorKind::Unexpected
                };
                opendal::Error::new(kind, "reading the origin").set_source(e)
            })? {
                if (out.len() + chunk.len()) as u64 > max {
                    return Ok(Err(OriginError::TooLarge {
                        len: (out.len() + chunk.len()) as u64,
                        max,
                    }));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(Ok(out.freeze()))
        };
        self.timed(fetch).await?
    }

    /// Store a whole object (atomically replaced on fs; a single PUT on S3).
    pub async fn write(&self, key: &str, bytes: Vec<u8>) -> Result<(), OriginError> {
        let r = self
            .timed(async {
                // On a failed write the staged temp file is removed (abort), not left behind.
                let mut w = self.op.writer(key).await?;
                let r = match w.write(bytes).await {
                    Ok(()) => w.close().await.map(|_| ()),
                    Err(e) => Err(e),
                };
                if r.is_err() {
                    let _ = w.abort().await;
                }
                r
            })
            .await;
        self.stats.invalidate(key).await;
        self.last_good.invalidate(key).await;
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        r
    }

    /// Remove half-written temporary files left by a crash (fs only). Call before serving.
    pub fn clear_staging(&self) -> std::io::Result<usize> {
        let Some(dir) = &self.staging else {
            return Ok(0);
        };
        let mut n = 0;
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                for e in entries.flatten() {
                    if e.path().is_file() {
                        std::fs::remove_file(e.path())?;
                        n += 1;
                    }
                }
                Ok(n)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Remove an object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), OriginError> {
        let r = self.timed(async { self.op.delete(key).await }).await;
        self.stats.invalidate(key).await;
        self.last_good.invalidate(key).await;
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        match r {
            Ok(()) | Err(OriginError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The version of `key` as storage has it now (no cache).
    pub async fn version_now(&self, key: &str) -> Result<SourceVersion, OriginError> {
        Ok(self.stat_now(key).await?.version)
    }

    /// Create folder `path` (fs: a directory; S3: a `path/` marker object).
    pub async fn create_dir(&self, path: &str) -> Result<(), OriginError> {
        let dir = format!("{}/", path.trim_end_matches('/'));
        self.timed(async { self.op.create_dir(&dir).await }).await
    }

    /// Remove folder `path` (the caller has checked it holds no file).
    pub async fn delete_dir(&self, path: &str) -> Result<(), OriginError> {
        let dir = format!("{}/", path.trim_end_matches('/'));
        match self.timed(async { self.op.delete(&dir).await }).await {
            Ok(()) | Err(OriginError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether folder `path` exists (fs: a directory; S3: a marker or any object under it).
    pub async fn dir_exists(&self, path: &str) -> Result<bool, OriginError> {
        let dir = format!("{}/", path.trim_end_matches('/'));
        match self.timed(async { self.op.stat(&dir).await }).await {
            Ok(m) => Ok(m.is_dir()),
            Err(OriginError::NotFound) => Ok(!self.list_files_under(&dir).await?.is_empty()),
            Err(e) => Err(e),
        }
    }

    /// Whether an object exists under `key` (asks storage itself).
    pub async fn exists(&self, key: &str) -> Result<bool, OriginError> {
        match self.stat_now(key).await {
            Ok(_) => Ok(true),
            Err(OriginError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every object under the root (recursively): path, length, modification time.
    pub async fn list_files(&self) -> Result<Vec<ListedFile>, OriginError> {
        self.list_files_under("").await
    }

    /// Every object under `prefix` (a folder path ending in `/`, or "" for all).
    pub async fn list_files_under(&self, prefix: &str) -> Result<Vec<ListedFile>, OriginError> {
        let entries = match self
            .timed(async { self.op.list_with(prefix).recursive(true).await })
            .await
        {
            Err(OriginError::NotFound) => return Ok(Vec::new()),
            other => other?,
        };
        Ok(entries
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .map(|e| ListedFile {
                path: e.path().to_string(),
                len: e.metadata().content_length(),
                modified: e
                    .metadata()
                    .last_modified()
                    .map(|t| t.into_inner().as_second()),
                etag: e.metadata().etag().map(str::to_string),
            })
            .collect())
    }

    /// Read bytes `start..end` of an object.
    pub async fn read_range(&self, key: &str, start: u64, end: u64) -> Result<Bytes, OriginError> {
        if !self.inside_root(key) {
            return Err(OriginError::NotFound);
        }
        let buf = self
            .timed(async { self.op.read_with(key).range(start..end).await })
            .await?;
        Ok(buf.to_bytes())
    }
}

/// The read-only HTTP origin: keys are appended to `base_url` (which always ends in `/`, so a
/// key can only ever be a path under it), fetched by a client that refuses internal addresses.
fn http_operator(cfg: &StorageConfig) -> Result<Operator, OriginError> {
    use crate::util::netguard::{self, NetPolicy};
    let refused = |m: String| OriginError::Unavailable(m);
    let mut base = cfg.base_url.clone().unwrap_or_default();
    if !base.ends_with('/') {
        base.push('/');
    }
    let policy = NetPolicy::new(cfg.allowed_networks().map_err(refused)?);
    let url = reqwest::Url::parse(&base)
        .map_err(|e| refused(format!("storage.base_url is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused(
            "storage.base_url must not carry credentials".into(),
        ));
    }
    if let Some(ip) = url.host_str().and_then(netguard::literal_ip) {
        if !policy.allows(ip) {
            return Err(refused(format!(
                "storage.base_url points at an internal address ({ip}); allow it in \
                 storage.http_allow_networks"
            )));
        }
    }
    let client = netguard::client(
        policy,
        Duration::from_millis(cfg.http_connect_timeout_ms.max(1)),
        3,
    )
    .map_err(refused)?;
    let transport = opendal::HttpTransporter::new(
        opendal_http_transport_reqwest::ReqwestTransport::new(client),
    );
    // Endpoint = scheme://host[:port]; the base path is the root every key is joined under.
    let endpoint = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    let op = Operator::new(
        opendal::services::Http::default()
            .endpoint(&endpoint)
            .root(url.path()),
    )
    .map_err(|e| OriginError::Unavailable(e.to_string()))?;
    Ok(op.with_context(opendal::OperationContext::new().with_http_transport(transport)))
}

/// Folder (inside a local root) where writes are staged before their rename; never served.
pub const TMP_DIR: &str = ".refract-tmp";

fn map_err(e: opendal::Error) -> OriginError {
    match e.kind() {
        ErrorKind::NotFound => OriginError::NotFound,
        ErrorKind::IsADirectory => OriginError::NotFound,
        _ if is_storage_full(&e) => OriginError::NoSpace(e.to_string()),
        _ => OriginError::Unavailable(e.to_string()),
    }
}

/// Whether an error (or one of its causes) is a full disk or an exceeded quota.
fn is_storage_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) {
                return true;
            }
        }
        cause = c.source();
    }
    e.to_string().contains("No space left on device")
}

fn seed_samples(root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    for (name, bytes) in SAMPLES {
        let tmp = root.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, root.join(name))?;
    }
    Ok(())
}

/// Turn the raw (percent-encoded) path after `/img/` into a storage key, or refuse it.
/// Decoded once; refuses empty keys, a leading `/`, backslashes, control characters (NUL
/// included), `.`/`..`/empty segments and keys over 1024 bytes.
pub fn sanitize_key(raw: &str) -> Result<String, OriginError> {
    let bad = |m: &str| OriginError::InvalidKey(format!("invalid image key: {m}"));
    let key = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad("not valid UTF-8"))?;
    if key.is_empty() {
        return Err(bad("empty"));
    }
    if key.len() > 1024 {
        return Err(bad("longer than 1024 bytes"));
    }
    if key.starts_with('/') {
        return Err(bad("leading '/'"));
    }
    if key.contains('\\') {
        return Err(bad("backslash"));
    }
    if key.chars().any(char::is_control) {
        return Err(bad("control character"));
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(bad("empty, '.' or '..' path segment"));
    }
    if key.split('/').next() == Some(TMP_DIR) {
        return Err(bad("reserved folder"));
    }
    Ok(key.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_accepts_normal_keys() {
        assert_eq!(sanitize_key("photos/cat.jpg").unwrap(), "photos/cat.jpg");
        assert_eq!(sanitize_key("a%20b.jpg").unwrap(), "a b.jpg");
        assert_eq!(sanitize_key("caf%C3%A9.jpg").unwrap(), "café.jpg");
        assert_eq!(sanitize_key("x..y.jpg").unwrap(), "x..y.jpg");
    }

    #[test]
    fn sanitize_refuses_traversal_and_control() {
        for raw in [
            "",
            "../etc/passwd",
            "a/../../b",
            "%2e%2e/secret",
            "a/%2E%2E/b",
            "/etc/passwd",
            "%2Fetc%2Fpasswd",
            "a\\b",
            "a%5Cb",
            "a%00.jpg",
            "a%0a.jpg",
            "a//b",
            "./a",
            "%ff%fe",
            "a/.",
            ".refract-tmp/x.jpg",
        ] {
            assert!(sanitize_key(raw).is_err(), "{raw} must be refused");
        }
        // Decoded once only: a double-encoded dot-dot is a literal name, not traversal.
        assert_eq!(sanitize_key("%252e%252e/x").unwrap(), "%2e%2e/x");
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
    }
}
