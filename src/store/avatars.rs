//! Avatars: one per user of a tenant. Replacing one is one transaction: the new row in, the
//! new object's reservation dropped, the old object journaled for deletion (so a crash at any
//! point leaves the old avatar or the new one, and the start-up sweep removes the other).

use super::journal::journal;
use super::outbox::{emit, Announce};
use super::{Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A user's avatar.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AvatarRecord {
    pub tenant: String,
    pub user_id: String,
    pub storage_key: String,
    pub format: String,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
    pub updated_at: i64,
}

impl Store {
    pub async fn avatar(&self, tenant: &str, user: &str) -> Result<Option<AvatarRecord>> {
        let row = sqlx::query(
            "SELECT tenant, user_id, storage_key, format, bytes, width, height, updated_at \
             FROM avatars WHERE tenant = $1 AND user_id = $2",
        )
        .bind(tenant)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| avatar_from_row(&r)).transpose()
    }

    /// Make `r` the user's avatar (its object written under a reservation). Returns the old
    /// object's key when it is to be deleted (journaled in the same transaction).
    pub async fn commit_avatar(
        &self,
        r: &AvatarRecord,
        defaults: super::Quota,
    ) -> Result<Option<String>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        // The tenant's byte quota counts avatars; the one replaced does not count twice.
        let u = super::images::usage(&mut tx, &r.tenant, defaults, r.updated_at).await?;
        let replaced: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM avatars WHERE tenant = $1 AND user_id = $2",
        )
        .bind(r.tenant.as_str())
        .bind(r.user_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if u.quota_bytes > 0 && u.used_bytes - replaced + r.bytes > u.quota_bytes {
            return Err(super::StoreError::Quota(u));
        }
        let old: Option<String> = sqlx::query_scalar(
            "SELECT storage_key FROM avatars WHERE tenant = $1 AND user_id = $2",
        )
        .bind(r.tenant.as_str())
        .bind(r.user_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM avatars WHERE tenant = $1 AND user_id = $2")
            .bind(r.tenant.as_str())
            .bind(r.user_id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO avatars (tenant, user_id, storage_key, format, bytes, width, height, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(r.tenant.as_str())
        .bind(r.user_id.as_str())
        .bind(r.storage_key.as_str())
        .bind(r.format.as_str())
        .bind(r.bytes)
        .bind(r.width)
        .bind(r.height)
        .bind(r.updated_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM pending_objects WHERE storage_key = $1")
            .bind(r.storage_key.as_str())
            .execute(&mut *tx)
            .await?;
        let gone = match old {
            Some(k) if k != r.storage_key => {
                journal(&mut tx, &k, r.updated_at).await?;
                Some(k)
            }
            _ => None,
        };
        let emitted = emit(
            &mut tx,
            Announce {
                tenant: &r.tenant,
                kind: "avatar.updated",
                object: format!("avatar:{}", r.user_id),
                data: serde_json::to_value(r).unwrap_or_default(),
                now: r.updated_at,
            },
        )
        .await?;
        tx.commit().await?;
        self.announced(emitted);
        Ok(gone)
    }

    /// Remove the user's avatar; its object's key (journaled) when there was one.
    pub async fn delete_avatar(
        &self,
        tenant: &str,
        user: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let old: Option<String> = sqlx::query_scalar(
            "SELECT storage_key FROM avatars WHERE tenant = $1 AND user_id = $2",
        )
        .bind(tenant)
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(k) = &old {
            sqlx::query("DELETE FROM avatars WHERE tenant = $1 AND user_id = $2")
                .bind(tenant)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            journal(&mut tx, k, now).await?;
        }
        let emitted = old.is_some()
            && emit(
                &mut tx,
                Announce {
                    tenant,
                    kind: "avatar.deleted",
                    object: format!("avatar:{user}"),
                    data: serde_json::json!({ "user_id": user }),
                    now,
                },
            )
            .await?;
        tx.commit().await?;
        self.announced(emitted);
        Ok(old)
    }
}

fn avatar_from_row(r: &AnyRow) -> Result<AvatarRecord> {
    Ok(AvatarRecord {
        tenant: r.try_get("tenant")?,
        user_id: r.try_get("user_id")?,
        storage_key: r.try_get("storage_key")?,
        format: r.try_get("format")?,
        bytes: r.try_get("bytes")?,
        width: r.try_get("width")?,
        height: r.try_get("height")?,
        updated_at: r.try_get("updated_at")?,
    })
}
