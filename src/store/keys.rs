//! API keys: insert, look up by hash, list, delete.

use super::{KeyRecord, NewKey, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

impl Store {
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
}

fn key_from_row(r: &AnyRow) -> Result<KeyRecord> {
    let scopes: String = r.try_get("scopes")?;
    Ok(KeyRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        tenant: r.try_get("tenant")?,
        scopes: split_list(&scopes),
        prefix: r.try_get("prefix")?,
        rate_limit: r.try_get("rate_limit")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A comma-separated column (scopes) as its items.
pub(super) fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
