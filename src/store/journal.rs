//! The pending-object journal: storage keys whose object may exist without a row (an upload in
//! flight, or a delete not finished). Swept at start.

use super::sql::Sql;
use super::{Result, Store, StoreError};
use sqlx::Row;

impl Store {
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
            journal(&mut tx, k, now).await?;
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
}

pub(super) async fn journal(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO pending_objects (storage_key, created_at) VALUES ($1, $2)")
        .bind(key)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
