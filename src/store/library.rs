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
    /// Every storage key a row holds (images of every tenant, and avatars), with what change
    /// detection compares.
    pub async fn known_files(&self) -> Result<HashMap<String, KnownFile>> {
        let rows = sqlx::query(
            "SELECT storage_key, id, tenant, source, bytes, file_mtime, etag FROM images \
             UNION ALL SELECT storage_key, user_id, tenant, 'avatar', bytes, NULL, NULL FROM avatars",
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
                continue;
            }
            let taken: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM images WHERE storage_key = $1")
                    .bind(i.storage_key.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            if taken == 0 {
                insert_image(&mut tx, i).await?;
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
