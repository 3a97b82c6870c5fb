//! The metadata store: API keys, images, tags and the pending-object journal, in SQL through
//! sqlx's `Any` driver (embedded SQLite by default; the SQL is portable so PostgreSQL can follow).
//!
//! Invariants: the only module that writes SQL; every value is bound, never interpolated; every
//! multi-row change is one transaction; writes are serialised by one lock (SQLite allows one
//! writer, and two deferred transactions upgrading to write would deadlock); reads never take it.
//! It knows nothing of HTTP, storage objects or pixels. Times are unix milliseconds.

mod schema;
mod sql;

use serde::{Deserialize, Serialize};
use sql::{Arg, Sql};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::collections::BTreeMap;
use std::path::Path;

/// The `[database]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Database URL; unset = embedded SQLite at `<data_dir>/refract.db`.
    pub url: Option<crate::origin::Secret>,
}

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (storage key taken, or same bytes in the tenant).
    #[error("unique constraint: {0}")]
    Unique(String),
    /// The database failed (a server fault).
    #[error("database: {0}")]
    Db(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e.as_database_error() {
            Some(d) if d.is_unique_violation() => Self::Unique(d.message().to_string()),
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
}

/// Result order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    CreatedDesc,
    CreatedAsc,
    Random,
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
    pub tags: i64,
}

/// What `/img` must know of a stored object: who owns it, whether it is private, when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    pub storage_key: String,
    pub tenant: String,
    pub is_private: bool,
    pub expires_at: Option<i64>,
}

/// What a delete left to do outside the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub storage_key: String,
    /// The object is still used by another image: keep it.
    pub shared: bool,
}

const IMAGE_COLUMNS: &str = "id, tenant, storage_key, filename, content_type, format, bytes, \
     width, height, orientation, has_alpha, blake3, description, is_private, owner, created_at, \
     expires_at, exif, generation_info, placeholder";

/// The store.
pub struct Store {
    pool: AnyPool,
    write: tokio::sync::Mutex<()>,
}

impl Store {
    /// Open (creating if needed) the embedded SQLite database at `path` and migrate it.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Db(format!("creating {}: {e}", dir.display())))?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::open(&url).await
    }

    /// Open a database by URL (`sqlite://...`) and migrate it.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 8 })
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
            write: tokio::sync::Mutex::new(()),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
             applied_at BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        for (version, statements) in schema::MIGRATIONS {
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(*version)
                    .fetch_optional(&self.pool)
                    .await?;
            if done.is_some() {
                continue;
            }
            let mut tx = self.pool.begin().await?;
            for s in *statements {
                sqlx::query(*s).execute(&mut *tx).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version, "schema migration applied");
        }
        Ok(())
    }

    // ---- API keys ----

    pub async fn insert_key(&self, k: &NewKey) -> Result<()> {
        let _w = self.write.lock().await;
        let r = &k.record;
        sqlx::query(
            "INSERT INTO api_keys (id, name, tenant, scopes, key_hash, prefix, rate_limit, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(r.id.as_str())
        .bind(r.name.as_str())
        .bind(r.tenant.as_str())
        .bind(r.scopes.join(","))
        .bind(k.key_hash.as_str())
        .bind(r.prefix.as_str())
        .bind(r.rate_limit.clone())
        .bind(r.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The key whose secret hashes to `hash`, with that stored hash.
    pub async fn key_by_hash(&self, hash: &str) -> Result<Option<(KeyRecord, String)>> {
        let row = sqlx::query(
            "SELECT id, name, tenant, scopes, prefix, rate_limit, created_at, key_hash \
             FROM api_keys WHERE key_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((key_from_row(&r)?, r.try_get::<String, _>("key_hash")?)))
            .transpose()
    }

    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query(
            "SELECT id, name, tenant, scopes, prefix, rate_limit, created_at FROM api_keys \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Delete a key; false when there was none.
    pub async fn delete_key(&self, id: &str) -> Result<bool> {
        let _w = self.write.lock().await;
        let r = sqlx::query("DELETE FROM api_keys WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    // ---- the pending-object journal ----

    /// Reserve storage keys before their objects are written: refused (`Unique`) when an image
    /// or another upload in flight holds one of them. One transaction: all or none.
    pub async fn reserve(&self, keys: &[String], now: i64) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut s = Sql::new("SELECT storage_key FROM images WHERE storage_key IN ");
        s.bind_list(keys);
        if let Some(row) = s.query().fetch_optional(&mut *tx).await? {
            let k: String = row.try_get("storage_key")?;
            return Err(StoreError::Unique(format!("storage key {k} is taken")));
        }
        for k in keys {
            sqlx::query("INSERT INTO pending_objects (storage_key, created_at) VALUES ($1, $2)")
                .bind(k.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forget reservations (after their objects were removed, or committed).
    pub async fn release(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let _w = self.write.lock().await;
        let mut s = Sql::new("DELETE FROM pending_objects WHERE storage_key IN ");
        s.bind_list(keys);
        s.query().execute(&self.pool).await?;
        Ok(())
    }

    /// Every reservation (after a crash: objects that may exist without a row).
    pub async fn pending(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT storage_key FROM pending_objects ORDER BY storage_key")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("storage_key").map_err(Into::into))
            .collect()
    }

    // ---- images ----

    /// Insert images (with tags) and drop their reservations, in one transaction.
    pub async fn commit_images(&self, images: &[ImageRecord]) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        for i in images {
            let mut s = Sql::new("INSERT INTO images (");
            s.push(IMAGE_COLUMNS).push(") VALUES (");
            let args: [Arg; 20] = [
                i.id.clone().into(),
                i.tenant.clone().into(),
                i.storage_key.clone().into(),
                i.filename.clone().into(),
                i.content_type.clone().into(),
                i.format.clone().into(),
                i.bytes.into(),
                i.width.into(),
                i.height.into(),
                i.orientation.clone().into(),
                i.has_alpha.into(),
                i.blake3.clone().into(),
                i.description.clone().into(),
                i.is_private.into(),
                i.owner.clone().into(),
                i.created_at.into(),
                i.expires_at.into(),
                i.exif.clone().into(),
                i.generation_info.clone().into(),
                i.placeholder.clone().into(),
            ];
            for (n, a) in args.into_iter().enumerate() {
                if n > 0 {
                    s.push(", ");
                }
                s.bind(a);
            }
            s.push(")");
            s.query().execute(&mut *tx).await?;
            insert_tags(&mut tx, &i.id, &i.tenant, &i.tags).await?;
            sqlx::query("DELETE FROM pending_objects WHERE storage_key = $1")
                .bind(i.storage_key.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The live (not expired) image of `tenant` with these bytes.
    pub async fn find_by_hash(
        &self,
        tenant: &str,
        blake3: &str,
        now: i64,
    ) -> Result<Option<ImageRecord>> {
        let mut s = Sql::new("SELECT ");
        s.push(IMAGE_COLUMNS)
            .push(" FROM images WHERE tenant = ")
            .bind(tenant)
            .push(" AND blake3 = ")
            .bind(blake3)
            .push(" AND (expires_at IS NULL OR expires_at > ")
            .bind(now)
            .push(")");
        self.fetch_one_image(&s).await
    }

    /// One live image of `tenant`.
    pub async fn get_image(&self, tenant: &str, id: &str, now: i64) -> Result<Option<ImageRecord>> {
        let mut s = Sql::new("SELECT ");
        s.push(IMAGE_COLUMNS)
            .push(" FROM images WHERE tenant = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .push(" AND (expires_at IS NULL OR expires_at > ")
            .bind(now)
            .push(")");
        self.fetch_one_image(&s).await
    }

    async fn fetch_one_image(&self, s: &Sql) -> Result<Option<ImageRecord>> {
        let Some(row) = s.query().fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let mut imgs = vec![image_from_row(&row)?];
        self.attach_tags(&mut imgs).await?;
        Ok(imgs.pop())
    }

    async fn attach_tags(&self, images: &mut [ImageRecord]) -> Result<()> {
        if images.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = images.iter().map(|i| i.id.clone()).collect();
        let mut s = Sql::new("SELECT image_id, name FROM image_tags WHERE image_id IN ");
        s.bind_list(&ids).push(" ORDER BY name");
        let rows = s.query().fetch_all(&self.pool).await?;
        let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rows {
            by_id
                .entry(r.try_get("image_id")?)
                .or_default()
                .push(r.try_get("name")?);
        }
        for i in images {
            i.tags = by_id.remove(&i.id).unwrap_or_default();
        }
        Ok(())
    }

    /// Search the live images of `tenant`.
    pub async fn list_images(
        &self,
        tenant: &str,
        f: &Filter,
        order: Order,
        paging: &Paging,
        now: i64,
    ) -> Result<Listing> {
        let total = match paging {
            Paging::Page { .. } => {
                let mut c = Sql::new("SELECT COUNT(*) AS n");
                live_where(&mut c, tenant, now, f);
                let row = c.query().fetch_one(&self.pool).await?;
                Some(row.try_get::<i64, _>("n")?)
            }
            Paging::Cursor { .. } => None,
        };
        let mut s = Sql::new("SELECT ");
        s.push(IMAGE_COLUMNS);
        live_where(&mut s, tenant, now, f);
        let desc = order != Order::CreatedAsc;
        if let Paging::Cursor {
            after: Some(c),
            limit: _,
        } = paging
        {
            s.push(if desc {
                " AND (created_at < "
            } else {
                " AND (created_at > "
            })
            .bind(c.created_at)
            .push(" OR (created_at = ")
            .bind(c.created_at)
            .push(if desc { " AND id < " } else { " AND id > " })
            .bind(c.id.clone())
            .push("))");
        }
        s.push(match order {
            Order::CreatedDesc => " ORDER BY created_at DESC, id DESC",
            Order::CreatedAsc => " ORDER BY created_at ASC, id ASC",
            Order::Random => " ORDER BY RANDOM()",
        });
        let (limit, offset) = match paging {
            Paging::Page { page, per_page } => (
                i64::from(*per_page),
                i64::from(page.saturating_sub(1)) * i64::from(*per_page),
            ),
            Paging::Cursor { limit, .. } => (i64::from(*limit), 0),
        };
        s.push(" LIMIT ").bind(limit).push(" OFFSET ").bind(offset);
        let rows = s.query().fetch_all(&self.pool).await?;
        let mut images = rows
            .iter()
            .map(image_from_row)
            .collect::<Result<Vec<_>>>()?;
        self.attach_tags(&mut images).await?;
        let next = match paging {
            Paging::Cursor { limit, .. } if images.len() as u64 == u64::from(*limit) => {
                images.last().map(|i| Cursor {
                    created_at: i.created_at,
                    id: i.id.clone(),
                })
            }
            _ => None,
        };
        Ok(Listing {
            images,
            total,
            next,
        })
    }

    /// Apply `patch` to a live image; `None` when there is no such image.
    pub async fn update_image(
        &self,
        tenant: &str,
        id: &str,
        patch: &Patch,
        now: i64,
    ) -> Result<Option<ImageRecord>> {
        {
            let _w = self.write.lock().await;
            let mut tx = self.pool.begin().await?;
            let exists: Option<String> = sqlx::query_scalar(
                "SELECT id FROM images WHERE tenant = $1 AND id = $2 \
                 AND (expires_at IS NULL OR expires_at > $3)",
            )
            .bind(tenant)
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if exists.is_none() {
                return Ok(None);
            }
            let mut s = Sql::new("UPDATE images SET id = id");
            if let Some(d) = &patch.description {
                s.push(", description = ").bind(d.as_str());
            }
            if let Some(p) = patch.is_private {
                s.push(", is_private = ").bind(p);
            }
            if let Some(e) = patch.expires_at {
                s.push(", expires_at = ").bind(e);
            }
            s.push(" WHERE id = ").bind(id);
            s.query().execute(&mut *tx).await?;
            if let Some(tags) = &patch.tags {
                sqlx::query("DELETE FROM image_tags WHERE image_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                insert_tags(&mut tx, id, tenant, tags).await?;
            }
            if !patch.remove_tags.is_empty() {
                let mut s = Sql::new("DELETE FROM image_tags WHERE image_id = ");
                s.bind(id)
                    .push(" AND name IN ")
                    .bind_list(&patch.remove_tags);
                s.query().execute(&mut *tx).await?;
            }
            for t in &patch.add_tags {
                sqlx::query("DELETE FROM image_tags WHERE image_id = $1 AND name = $2")
                    .bind(id)
                    .bind(t.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            insert_tags(&mut tx, id, tenant, &patch.add_tags).await?;
            tx.commit().await?;
        }
        // The row as it is now, even if the patch just expired it.
        self.get_image(tenant, id, i64::MIN).await
    }

    /// Delete an image row and its tags (expired ones too). When no other image uses its object,
    /// the object's key is journalled as pending in the same transaction, so a crash before the
    /// object is removed leaves it to the start-up sweep.
    pub async fn delete_image(&self, tenant: &str, id: &str, now: i64) -> Result<Option<Deleted>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let key: Option<String> =
            sqlx::query_scalar("SELECT storage_key FROM images WHERE tenant = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(storage_key) = key else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM image_tags WHERE image_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM images WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let others: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM images WHERE storage_key = $1")
            .bind(storage_key.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let shared = others > 0;
        if !shared {
            sqlx::query("INSERT INTO pending_objects (storage_key, created_at) VALUES ($1, $2)")
                .bind(storage_key.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(Deleted {
            storage_key,
            shared,
        }))
    }

    /// `(tenant, id)` of every image expired at `now`.
    pub async fn expired(&self, now: i64) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT tenant, id FROM images WHERE expires_at IS NOT NULL AND expires_at <= $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tenant")?, r.try_get("id")?)))
            .collect()
    }

    /// Tag names of the live images of `tenant` with their counts, by name.
    pub async fn tag_counts(&self, tenant: &str, now: i64) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT t.name AS name, COUNT(*) AS n FROM image_tags t JOIN images i \
             ON i.id = t.image_id WHERE t.tenant = $1 \
             AND (i.expires_at IS NULL OR i.expires_at > $2) GROUP BY t.name ORDER BY t.name",
        )
        .bind(tenant)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("n")?)))
            .collect()
    }

    /// Tag name → ids of the live images of `tenant` carrying it.
    pub async fn tag_members(
        &self,
        tenant: &str,
        now: i64,
    ) -> Result<BTreeMap<String, Vec<String>>> {
        let rows = sqlx::query(
            "SELECT t.name AS name, t.image_id AS image_id FROM image_tags t JOIN images i \
             ON i.id = t.image_id WHERE t.tenant = $1 \
             AND (i.expires_at IS NULL OR i.expires_at > $2) ORDER BY t.name, i.created_at, i.id",
        )
        .bind(tenant)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rows {
            out.entry(r.try_get("name")?)
                .or_default()
                .push(r.try_get("image_id")?);
        }
        Ok(out)
    }

    /// Counts over the live images of `tenant`.
    pub async fn stats(&self, tenant: &str, now: i64) -> Result<Stats> {
        let rows = sqlx::query(
            "SELECT format, COUNT(*) AS n, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS b \
             FROM images WHERE tenant = $1 AND (expires_at IS NULL OR expires_at > $2) \
             GROUP BY format",
        )
        .bind(tenant)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut st = Stats::default();
        for r in rows {
            let n: i64 = r.try_get("n")?;
            st.images += n;
            st.bytes += r.try_get::<i64, _>("b")?;
            st.by_format.insert(r.try_get("format")?, n);
        }
        st.tags = self.tag_counts(tenant, now).await?.len() as i64;
        Ok(st)
    }

    /// Every image that `/img` must check before serving: private or expiring ones.
    pub async fn access_rules(&self) -> Result<Vec<AccessRule>> {
        let rows = sqlx::query(
            "SELECT storage_key, tenant, is_private, expires_at FROM images \
             WHERE is_private = 1 OR expires_at IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rule_from_row).collect()
    }

    /// The rule of one stored object, if an image uses it.
    pub async fn access_rule(&self, storage_key: &str) -> Result<Option<AccessRule>> {
        let row = sqlx::query(
            "SELECT storage_key, tenant, is_private, expires_at FROM images WHERE storage_key = $1",
        )
        .bind(storage_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rule_from_row).transpose()
    }
}

/// ` FROM images WHERE` the live images of `tenant` matching `f`.
fn live_where(s: &mut Sql, tenant: &str, now: i64, f: &Filter) {
    s.push(" FROM images WHERE tenant = ")
        .bind(tenant)
        .push(" AND (expires_at IS NULL OR expires_at > ")
        .bind(now)
        .push(")");
    for t in &f.all_tags {
        s.push(
            " AND EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.name = ",
        )
        .bind(t.as_str())
        .push(")");
    }
    if !f.any_tags.is_empty() {
        s.push(
            " AND EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.name IN ",
        )
        .bind_list(&f.any_tags)
        .push(")");
    }
    if !f.not_tags.is_empty() {
        s.push(
            " AND NOT EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.name IN ",
        )
        .bind_list(&f.not_tags)
        .push(")");
    }
    if let Some(q) = &f.text {
        let pat = format!("%{}%", escape_like(&q.to_lowercase()));
        s.push(" AND (LOWER(filename) LIKE ")
            .bind(pat.as_str())
            .push(" ESCAPE '\\' OR LOWER(storage_key) LIKE ")
            .bind(pat.as_str())
            .push(" ESCAPE '\\' OR LOWER(description) LIKE ")
            .bind(pat.as_str())
            .push(" ESCAPE '\\' OR LOWER(COALESCE(generation_info, '')) LIKE ")
            .bind(pat.as_str())
            .push(
                " ESCAPE '\\' OR EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id \
                 AND LOWER(t.name) LIKE ",
            )
            .bind(pat.as_str())
            .push(" ESCAPE '\\'))");
    }
    if let Some(o) = &f.orientation {
        s.push(" AND orientation = ").bind(o.as_str());
    }
    if let Some(fm) = &f.format {
        s.push(" AND format = ").bind(fm.as_str());
    }
    if let Some(o) = &f.owner {
        s.push(" AND owner = ").bind(o.as_str());
    }
    if let Some(p) = f.private {
        s.push(" AND is_private = ").bind(p);
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

async fn insert_tags(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    tenant: &str,
    tags: &[String],
) -> Result<()> {
    for t in tags {
        sqlx::query("INSERT INTO image_tags (image_id, tenant, name) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(tenant)
            .bind(t.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

fn key_from_row(r: &AnyRow) -> Result<KeyRecord> {
    let scopes: String = r.try_get("scopes")?;
    Ok(KeyRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        tenant: r.try_get("tenant")?,
        scopes: scopes
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        prefix: r.try_get("prefix")?,
        rate_limit: r.try_get("rate_limit")?,
        created_at: r.try_get("created_at")?,
    })
}

fn image_from_row(r: &AnyRow) -> Result<ImageRecord> {
    Ok(ImageRecord {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        storage_key: r.try_get("storage_key")?,
        filename: r.try_get("filename")?,
        content_type: r.try_get("content_type")?,
        format: r.try_get("format")?,
        bytes: r.try_get("bytes")?,
        width: r.try_get("width")?,
        height: r.try_get("height")?,
        orientation: r.try_get("orientation")?,
        has_alpha: r.try_get::<i64, _>("has_alpha")? != 0,
        blake3: r.try_get("blake3")?,
        description: r.try_get("description")?,
        is_private: r.try_get::<i64, _>("is_private")? != 0,
        owner: r.try_get("owner")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        exif: r.try_get("exif")?,
        generation_info: r.try_get("generation_info")?,
        placeholder: r.try_get("placeholder")?,
        tags: Vec::new(),
    })
}

fn rule_from_row(r: &AnyRow) -> Result<AccessRule> {
    Ok(AccessRule {
        storage_key: r.try_get("storage_key")?,
        tenant: r.try_get("tenant")?,
        is_private: r.try_get::<i64, _>("is_private")? != 0,
        expires_at: r.try_get("expires_at")?,
    })
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
