//! The rows of the library indexer: what the index knows of each file (for change detection),
//! adding or refreshing indexed files' rows in batches, and forgetting files that are gone.
//! Indexed rows are `source = 'indexed'`; uploads and avatars are never touched here.

use super::images::{image_from_row, insert_image, loras_column, IMAGE_COLUMNS};
use super::sql::Sql;
use super::{ImageRecord, Result, Store};
use sqlx::Row;
use std::collections::HashMap;

/// What the index knows of one storage key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFile {
    pub id: String,
    pub tenant: String,
    /// `upload`, `indexed`, or `avatar`.
    pub source: String,
    pub bytes: i64,
    pub file_mtime: Option<i64>,
    pub etag: Option<String>,
}

impl Store {
    /// Every storage key a row holds (images of every tenant, avatars) or a file operation or
    /// upload has reserved (`pending`), with what change detection compares.
    pub async fn known_files(&self) -> Result<HashMap<String, KnownFile>> {
        let rows = sqlx::query(
            "SELECT storage_key, id, tenant, source, bytes, file_mtime, etag FROM images \
             UNION ALL SELECT storage_key, user_id, tenant, 'avatar', bytes, NULL, NULL FROM avatars \
             UNION ALL SELECT storage_key, '', '', 'pending', 0, NULL, NULL FROM pending_objects",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            out.insert(
                r.try_get("storage_key")?,
                KnownFile {
                    id: r.try_get("id")?,
                    tenant: r.try_get("tenant")?,
                    source: r.try_get("source")?,
                    bytes: r.try_get("bytes")?,
                    file_mtime: r.try_get("file_mtime")?,
                    etag: r.try_get("etag")?,
                },
            );
        }
        Ok(out)
    }

    /// Add indexed files' rows, or refresh the facts of those already indexed (their id, tags,
    /// description, albums and shares stay), in one transaction. A key held by an upload is
    /// left alone.
    pub async fn upsert_indexed(&self, rows: &[ImageRecord]) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        for i in rows {
            let updated = sqlx::query(
                "UPDATE images SET content_type = $1, format = $2, bytes = $3, width = $4, \
                 height = $5, orientation = $6, has_alpha = $7, blake3 = $8, exif = $9, \
                 generation_info = $10, placeholder = $11, file_mtime = $12, etag = $13, \
                 gen_model = $14, gen_sampler = $15, gen_seed = $16, gen_loras = $17, \
                 created_at = $18 WHERE storage_key = $19 AND source = 'indexed'",
            )
            .bind(i.content_type.as_str())
            .bind(i.format.as_str())
            .bind(i.bytes)
            .bind(i.width)
            .bind(i.height)
            .bind(i.orientation.as_str())
            .bind(i64::from(i.has_alpha))
            .bind(i.blake3.as_str())
            .bind(i.exif.as_str())
            .bind(i.generation_info.as_deref())
            .bind(i.placeholder.as_str())
            .bind(i.file_mtime)
            .bind(i.etag.as_deref())
            .bind(i.gen.model.as_deref())
            .bind(i.gen.sampler.as_deref())
            .bind(i.gen.seed.as_deref())
            .bind(loras_column(&i.gen.loras))
            .bind(i.created_at)
            .bind(i.storage_key.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated > 0 {
                set_auto_tags(&mut tx, i).await?;
                continue;
            }
            // An upload, a move or a copy may have taken the key since the scan listed it.
            let taken: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM images WHERE storage_key = $1) + \
                 (SELECT COUNT(*) FROM pending_objects WHERE storage_key = $1)",
            )
            .bind(i.storage_key.as_str())
            .fetch_one(&mut *tx)
            .await?;
            if taken == 0 {
                insert_image(&mut tx, i).await?;
                set_auto_tags(&mut tx, i).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forget the indexed rows of these storage keys (their files are gone): rows, tags, album
    /// memberships and shares, in one transaction. Returns the keys forgotten.
    pub async fn forget_indexed(&self, keys: &[String]) -> Result<Vec<String>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut gone = Vec::new();
        for chunk in keys.chunks(500) {
            let mut s = Sql::new(
                "SELECT id, storage_key FROM images WHERE source = 'indexed' AND storage_key IN ",
            );
            s.bind_list(chunk);
            let rows = s.query().fetch_all(&mut *tx).await?;
            for r in rows {
                let id: String = r.try_get("id")?;
                super::images::detach_image(&mut tx, &id).await?;
                gone.push(r.try_get("storage_key")?);
            }
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// The indexed images of `tenant` whose storage key starts with `prefix` (all of them for
    /// ""), for the library's own listings.
    pub async fn indexed_under(&self, tenant: &str, prefix: &str) -> Result<Vec<ImageRecord>> {
        let mut s = Sql::new("SELECT ");
        s.push(IMAGE_COLUMNS)
            .push(" FROM images WHERE source = 'indexed' AND tenant = ")
            .bind(tenant)
            .push(" AND storage_key LIKE ")
            .bind(format!("{}%", super::images::escape_like(prefix)))
            .push(" ESCAPE '\\'");
        let rows = s.query().fetch_all(&self.pool).await?;
        rows.iter().map(image_from_row).collect()
    }
}

/// Give an indexed image exactly `i.tags` as its auto tags (its other auto tags go; its custom
/// tags stay). A name a custom tag of the tenant already has is left out: auto and custom tags
/// never mix.
async fn set_auto_tags(tx: &mut sqlx::Transaction<'_, sqlx::Any>, i: &ImageRecord) -> Result<()> {
    let id: String = sqlx::query_scalar("SELECT id FROM images WHERE storage_key = $1")
        .bind(i.storage_key.as_str())
        .fetch_one(&mut **tx)
        .await?;
    sqlx::query(
        "DELETE FROM image_tags WHERE image_id = $1 AND name IN \
         (SELECT name FROM tags WHERE tenant = $2 AND kind = 'auto')",
    )
    .bind(id.as_str())
    .bind(i.tenant.as_str())
    .execute(&mut **tx)
    .await?;
    for t in &i.tags {
        let kind: Option<String> =
            sqlx::query_scalar("SELECT kind FROM tags WHERE tenant = $1 AND name = $2")
                .bind(i.tenant.as_str())
                .bind(t.as_str())
                .fetch_optional(&mut **tx)
                .await?;
        match kind.as_deref() {
            Some("auto") => {}
            Some(_) => continue,
            None => {
                let tag_id = crate::util::ids::random_id(9)
                    .map_err(|e| super::StoreError::Db(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO tags (id, tenant, name, color, kind, created_at) \
                     VALUES ($1, $2, $3, NULL, 'auto', $4)",
                )
                .bind(tag_id.as_str())
                .bind(i.tenant.as_str())
                .bind(t.as_str())
                .bind(i.created_at)
                .execute(&mut **tx)
                .await?;
            }
        }
        sqlx::query(
            "INSERT INTO image_tags (image_id, tenant, name) SELECT $1, $2, $3 \
             WHERE NOT EXISTS (SELECT 1 FROM image_tags WHERE image_id = $1 AND name = $3)",
        )
        .bind(id.as_str())
        .bind(i.tenant.as_str())
        .bind(t.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// The live-or-not image of `tenant` at `storage_key`.
    pub async fn image_at(&self, tenant: &str, storage_key: &str) -> Result<Option<ImageRecord>> {
        let mut s = Sql::new("SELECT ");
        s.push(IMAGE_COLUMNS)
            .push(" FROM images WHERE tenant = ")
            .bind(tenant)
            .push(" AND storage_key = ")
            .bind(storage_key);
        let Some(row) = s.query().fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let mut r = image_from_row(&row)?;
        let mut one = [r.clone()];
        self.attach_tags(&mut one).await?;
        r.tags = std::mem::take(&mut one[0].tags);
        Ok(Some(r))
    }

    /// The second half of a move: image `id` now lives at `to` (whose object is written and
    /// reserved); `from` is journalled for deletion, `to`'s reservation released, the change
    /// announced; one transaction. `filename` becomes `to`'s last segment when it was `from`'s.
    /// `file_mtime` is the new file's time (unix ms), kept for an indexed image so that the next
    /// scan sees it unchanged.
    pub async fn move_image(
        &self,
        id: &str,
        from: &str,
        to: &str,
        file_mtime: Option<i64>,
        now: i64,
    ) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let old_name = from.rsplit('/').next().unwrap_or(from);
        let new_name = to.rsplit('/').next().unwrap_or(to);
        sqlx::query(
            "UPDATE images SET storage_key = $1, \
             filename = CASE WHEN filename = $2 THEN $3 ELSE filename END, \
             file_mtime = CASE WHEN source = 'indexed' THEN $4 ELSE file_mtime END WHERE id = $5",
        )
        .bind(to)
        .bind(old_name)
        .bind(new_name)
        .bind(file_mtime)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM pending_objects WHERE storage_key = $1")
            .bind(to)
            .execute(&mut *tx)
            .await?;
        super::journal::journal(&mut tx, from, now).await?;
        let tenant: String = sqlx::query_scalar("SELECT tenant FROM images WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let emitted = super::images::announce_updated(&mut tx, &tenant, id, now).await?;
        tx.commit().await?;
        self.announced(emitted);
        Ok(())
    }
}
