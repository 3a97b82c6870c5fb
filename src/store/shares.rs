//! Share links: one image, a token stored hashed, an optional expiry and view budget. A use is
//! counted atomically (the budget can never be overspent by concurrent requests).

use super::{Result, Store};
use sqlx::Row;

/// A share as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub id: String,
    pub image_id: String,
    pub prefix: String,
    pub expires_at: Option<i64>,
    pub max_views: Option<i64>,
    pub views: i64,
    pub created_at: i64,
}

/// What using a share token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareUse {
    /// Counted: the image's storage key, and when the share expires.
    Granted {
        storage_key: String,
        expires_at: Option<i64>,
    },
    /// It existed but has expired or used up its views.
    Spent,
    /// No such token (never issued, or revoked).
    Unknown,
}

impl Store {
    pub async fn insert_share(&self, s: &Share, tenant: &str, hash: &str) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query(
            "INSERT INTO shares (id, image_id, tenant, token_hash, prefix, expires_at, max_views, \
             views, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(s.id.as_str())
        .bind(s.image_id.as_str())
        .bind(tenant)
        .bind(hash)
        .bind(s.prefix.as_str())
        .bind(s.expires_at)
        .bind(s.max_views)
        .bind(s.views)
        .bind(s.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn shares_of(&self, tenant: &str, image_id: &str) -> Result<Vec<Share>> {
        let rows = sqlx::query(
            "SELECT id, image_id, prefix, expires_at, max_views, views, created_at FROM shares \
             WHERE tenant = $1 AND image_id = $2 ORDER BY created_at, id",
        )
        .bind(tenant)
        .bind(image_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Share {
                    id: r.try_get("id")?,
                    image_id: r.try_get("image_id")?,
                    prefix: r.try_get("prefix")?,
                    expires_at: r.try_get("expires_at")?,
                    max_views: r.try_get("max_views")?,
                    views: r.try_get("views")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Revoke a share at once; false when the tenant has none with this id.
    pub async fn delete_share(&self, tenant: &str, id: &str) -> Result<bool> {
        let _w = self.write.lock().await;
        let r = sqlx::query("DELETE FROM shares WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The storage key of the image a share (live or not) is for, if the share exists. A
    /// read: no lock, nothing counted.
    pub async fn share_key(&self, hash: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT i.storage_key FROM shares s JOIN images i ON i.id = s.image_id \
             WHERE s.token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Use a share token once: count the view if it is live (and its image too). Unknown
    /// tokens are answered from a read, without taking the write lock.
    pub async fn use_share(&self, hash: &str, now: i64) -> Result<ShareUse> {
        if self.share_key(hash).await?.is_none() {
            return Ok(ShareUse::Unknown);
        }
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let counted = sqlx::query(
            "UPDATE shares SET views = views + 1 WHERE token_hash = $1 \
             AND (expires_at IS NULL OR expires_at > $2) \
             AND (max_views IS NULL OR views < max_views)",
        )
        .bind(hash)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        let row = sqlx::query(
            "SELECT i.storage_key AS storage_key, s.expires_at AS expires_at FROM shares s \
             JOIN images i ON i.id = s.image_id WHERE s.token_hash = $1 \
             AND (i.expires_at IS NULL OR i.expires_at > $2)",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let out = match (row, counted) {
            (None, _) => {
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT 1 FROM shares WHERE token_hash = $1")
                        .bind(hash)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_some() {
                    ShareUse::Spent
                } else {
                    ShareUse::Unknown
                }
            }
            (Some(_), false) => ShareUse::Spent,
            (Some(r), true) => ShareUse::Granted {
                storage_key: r.try_get("storage_key")?,
                expires_at: r.try_get("expires_at")?,
            },
        };
        if matches!(out, ShareUse::Granted { .. }) {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(out)
    }
}
