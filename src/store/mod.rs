//! The metadata store: API keys, images, tags and the pending-object journal, in SQL through
//! sqlx's `Any` driver (embedded SQLite by default; the SQL is portable so PostgreSQL can follow).
//!
//! Invariants: the only module that writes SQL; every value is bound, never interpolated; every
//! multi-row change is one transaction; writes are serialised by one lock (SQLite allows one
//! writer, and two deferred transactions upgrading to write would deadlock); reads never take it.
//! It knows nothing of HTTP, storage objects or pixels. Times are unix milliseconds.

mod albums;
mod audit;
mod avatars;
mod cluster;
mod images;
mod journal;
mod keys;
mod library;
mod outbox;
mod schema;
mod shares;
mod sql;
mod tags;
mod tenants;
mod users;

pub use albums::{AlbumToken, Missing};
pub use audit::AuditEntry;
pub use avatars::AvatarRecord;
pub use cluster::{follow_changes, Heard, CHANGES};
use journal::journal;
pub use library::KnownFile;
pub use outbox::{
    Attempt, Claimed, DeliveryRecord, EventRecord, OutboxDepth, Outcome, Recorded, WebhookPatch,
    WebhookRecord,
};
pub use shares::{Share, ShareUse};
pub use tags::{TagBatch, TagRecord};
pub use tenants::TenantRecord;
pub use users::{Refresh, UserRecord};

use serde::{Deserialize, Serialize};
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use std::collections::BTreeMap;
use std::path::Path;

/// The `[database]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Database URL (`sqlite://…` or `postgres://…`); unset = embedded SQLite at
    /// `<data_dir>/refract.db`.
    pub url: Option<crate::util::secret::Secret>,
    /// Connections kept per process; unset = 4 for SQLite, 16 for PostgreSQL.
    pub max_connections: Option<u32>,
    /// How long a query waits for a connection before the request answers 503 (ms); unset =
    /// 3000 for PostgreSQL (fail fast while it is down), 30000 for SQLite (it is never down:
    /// only busy, and a burst of writes waits its turn).
    pub acquire_timeout_ms: Option<u64>,
}

/// How a store's pool is sized (unset: by backend, as `DatabaseConfig` says).
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolSize {
    pub max_connections: Option<u32>,
    pub acquire_timeout: Option<std::time::Duration>,
}

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (storage key taken, or same bytes in the tenant).
    #[error("unique constraint: {0}")]
    Unique(String),
    /// The database stayed busy or locked past its busy timeout (another writer holds it):
    /// retry later.
    #[error("database busy: {0}")]
    Busy(String),
    /// The database failed (a server fault).
    #[error("database: {0}")]
    Db(String),
    /// A commit would take the tenant over its quota; nothing was written.
    #[error("quota exceeded")]
    Quota(Usage),
}

/// A tenant's usage against its quota (0 = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Usage {
    pub used_bytes: i64,
    pub used_images: i64,
    pub quota_bytes: i64,
    pub quota_images: i64,
}

/// The quotas that apply when a tenant has none of its own (0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quota {
    pub bytes: i64,
    pub images: i64,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        // The database cannot be reached (down, restarting, the pool exhausted): 503, and the
        // pool reconnects by itself when it is back.
        if matches!(
            e,
            sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed
        ) {
            return Self::Busy(format!("database unavailable: {e}"));
        }
        match e.as_database_error() {
            Some(d) if d.is_unique_violation() => Self::Unique(d.message().to_string()),
            // SQLITE_BUSY (5) / SQLITE_LOCKED (6), after the driver's busy timeout of retries;
            // PostgreSQL: connection exceptions (08…), shutting down or starting (57P01-57P03),
            // serialization failure and deadlock (40001, 40P01).
            Some(d)
                if d.code().as_deref().is_some_and(|c| {
                    matches!(c, "5" | "6" | "517" | "262" | "40001" | "40P01")
                        || c.starts_with("08")
                        || c.starts_with("57P0")
                }) =>
            {
                Self::Busy(d.message().to_string())
            }
            _ => Self::Db(e.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// An API key as stored (no secret: only its hash, which is never returned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub tenant: String,
    pub scopes: Vec<String>,
    /// The first characters of the key, to recognise it in a list.
    pub prefix: String,
    /// Per-key rate-limit overrides as JSON text.
    #[serde(skip)]
    pub rate_limit: Option<String>,
    pub created_at: i64,
}

/// A new key: the record plus the hash of its secret.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub record: KeyRecord,
    pub key_hash: String,
}

/// One image's metadata row, with its tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: String,
    pub tenant: String,
    pub storage_key: String,
    pub filename: String,
    pub content_type: String,
    pub format: String,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub orientation: String,
    pub has_alpha: bool,
    pub blake3: String,
    pub description: String,
    pub is_private: bool,
    pub owner: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// JSON object text.
    pub exif: String,
    /// JSON object text, when the image carries generation info.
    pub generation_info: Option<String>,
    /// JSON object text.
    pub placeholder: String,
    pub tags: Vec<String>,
    /// `upload` or `indexed` (a file of a library root). (`default`: webhook snapshots written
    /// before these fields existed still read.)
    #[serde(default)]
    pub source: String,
    /// The file's modification time (unix ms; indexed files).
    #[serde(default)]
    pub file_mtime: Option<i64>,
    /// The object's ETag (indexed files on S3).
    #[serde(default)]
    pub etag: Option<String>,
    /// Searchable generation info fields (from `library::meta::geninfo::Parsed`).
    #[serde(default)]
    pub gen: GenFields,
}

/// The generation info fields kept in columns for search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenFields {
    pub model: Option<String>,
    pub sampler: Option<String>,
    pub seed: Option<String>,
    /// Lower-cased LoRA names.
    pub loras: Vec<String>,
}

/// An album row, with the number of images in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlbumRecord {
    pub id: String,
    pub tenant: String,
    pub owner: Option<String>,
    pub name: String,
    pub description: String,
    pub is_public: bool,
    pub external_id: Option<String>,
    pub cover_image_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub image_count: i64,
}

/// A partial album update. `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct AlbumPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub is_public: Option<bool>,
    /// `Some(None)` clears the cover.
    pub cover_image_id: Option<Option<String>>,
}

/// Search filters; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub all_tags: Vec<String>,
    pub any_tags: Vec<String>,
    pub not_tags: Vec<String>,
    /// Case-insensitive substring over filename, key, description, tags and generation info.
    pub text: Option<String>,
    pub orientation: Option<String>,
    pub format: Option<String>,
    pub owner: Option<String>,
    pub private: Option<bool>,
    /// Only images in this album.
    pub album: Option<String>,
    /// A user inside the tenant: private images only when they are theirs.
    pub viewer: Option<String>,
    /// Only images under this storage prefix (`a/b/`): `(prefix, recursive)`; without
    /// `recursive`, only those directly in it.
    pub folder: Option<(String, bool)>,
    /// Only these image ids (a regex search's matches).
    pub ids: Option<Vec<String>>,
    /// Generation info fields (model and sampler lower-cased; the model matches as a
    /// substring, the others exactly).
    pub model: Option<String>,
    pub sampler: Option<String>,
    pub seed: Option<String>,
    pub lora: Option<String>,
    /// `upload` or `indexed`.
    pub source: Option<String>,
}

/// Result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    CreatedDesc,
    CreatedAsc,
    Random,
    /// By storage key (folder, then file name), as a file browser shows them.
    NameAsc,
}

/// A position in `(created_at, id)` order: the last item of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: String,
}

/// How much to return.
#[derive(Debug, Clone)]
pub enum Paging {
    /// 1-based page number.
    Page { page: u32, per_page: u32 },
    /// Items after `after` (none = from the start).
    Cursor { after: Option<Cursor>, limit: u32 },
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct Listing {
    pub images: Vec<ImageRecord>,
    /// Page paging: the number of matches.
    pub total: Option<i64>,
    /// Cursor paging: where the next page starts, when there may be one.
    pub next: Option<Cursor>,
}

/// A partial update. `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    pub tags: Option<Vec<String>>,
    pub add_tags: Vec<String>,
    pub remove_tags: Vec<String>,
    pub description: Option<String>,
    pub is_private: Option<bool>,
    /// `Some(None)` clears the expiry.
    pub expires_at: Option<Option<i64>>,
}

/// Counts for `/api/v1/stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub images: i64,
    pub bytes: i64,
    pub by_format: BTreeMap<String, i64>,
    /// Bytes stored, by format.
    pub bytes_by_format: BTreeMap<String, i64>,
    pub tags: i64,
    /// The last 30 days (UTC, oldest first, today included): images uploaded each day that
    /// are still live.
    pub uploads_per_day: Vec<DayCount>,
    /// The ten most used tags, most used first.
    pub top_tags: Vec<TagCount>,
}

/// One day of `Stats::uploads_per_day`.
#[derive(Debug, Clone, Serialize)]
pub struct DayCount {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub count: i64,
}

/// One tag of `Stats::top_tags`.
#[derive(Debug, Clone, Serialize)]
pub struct TagCount {
    pub name: String,
    pub count: i64,
}

/// The tenant selector meaning every tenant (not a valid tenant name, so never a real one).
pub const ALL_TENANTS: &str = "*";

/// What `/img` must know of a stored object: who owns it, whether it is private, when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    pub storage_key: String,
    pub tenant: String,
    pub is_private: bool,
    pub expires_at: Option<i64>,
}

/// Why an image row is removed (announced as `image.deleted` or `image.expired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    Expired,
}

/// What a delete left to do outside the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub storage_key: String,
    /// The object is still used by another image: keep it.
    pub shared: bool,
}

/// The store.
pub struct Store {
    pool: AnyPool,
    /// PostgreSQL (else SQLite).
    postgres: bool,
    write: tokio::sync::Mutex<()>,
    /// Notified after a commit wrote to the webhook outbox.
    outbox: tokio::sync::Notify,
}

impl Store {
    /// Open (creating if needed) the embedded SQLite database at `path` and migrate it.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        Self::open_sqlite_sized(path, PoolSize::default()).await
    }

    /// `open_sqlite` with a pool size.
    pub async fn open_sqlite_sized(path: &Path, size: PoolSize) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Db(format!("creating {}: {e}", dir.display())))?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::open(&url, size).await
    }

    /// Open a database by URL (`sqlite://…` or `postgres://…`) and migrate it.
    pub async fn open(url: &str, size: PoolSize) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(size.max_connections.unwrap_or(if sqlite { 4 } else { 16 }))
            .acquire_timeout(
                size.acquire_timeout
                    .unwrap_or(std::time::Duration::from_secs(if sqlite { 30 } else { 3 })),
            )
            // A connection that died with the server (a restart) is found and replaced before
            // a query uses it.
            .test_before_acquire(true)
            .connect(url)
            .await?;
        if sqlite {
            // Persistent per database file: readers do not block the writer.
            sqlx::query("PRAGMA journal_mode=WAL")
                .fetch_all(&pool)
                .await?;
        }
        let store = Self {
            pool,
            postgres: !sqlite,
            write: tokio::sync::Mutex::new(()),
            outbox: tokio::sync::Notify::new(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Wake the webhook sender after a commit that wrote to the outbox.
    fn announced(&self, emitted: bool) {
        if emitted {
            self.outbox.notify_one();
        }
    }

    async fn migrate(&self) -> Result<()> {
        let _w = self.write.lock().await;
        // Nodes starting together on one PostgreSQL migrate one at a time: the others wait on
        // this session lock, then find every migration applied.
        let mut conn = self.pool.acquire().await?;
        if self.postgres {
            sqlx::query("SELECT pg_advisory_lock(7261000)")
                .execute(&mut *conn)
                .await?;
        }
        let done = self.migrate_on(&mut conn).await;
        if self.postgres {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock(7261000)")
                .execute(&mut *conn)
                .await;
            if unlocked.is_err() {
                // A connection still holding the lock is not given back to the pool.
                conn.detach();
            }
        }
        done
    }

    async fn migrate_on(&self, conn: &mut sqlx::pool::PoolConnection<sqlx::Any>) -> Result<()> {
        use sqlx::Connection;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
             applied_at BIGINT NOT NULL)",
        )
        .execute(&mut **conn)
        .await?;
        for (version, statements) in schema::MIGRATIONS {
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(*version)
                    .fetch_optional(&mut **conn)
                    .await?;
            if done.is_some() {
                continue;
            }
            let mut tx = conn.begin().await?;
            for s in *statements {
                sqlx::query(*s).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(crate::util::clock::now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version, "schema migration applied");
        }
        Ok(())
    }
}
