//! Tenants as things (FileHarbor's "clients"): a name and whether they are active. A tenant
//! exists as soon as anything names it (a key, a user, an image); a row adds its name and its
//! state. Quotas live in `tenant_quotas`.

use super::{Result, Store};
use sqlx::Row;

/// A tenant's row (or what is known of one without a row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub created_at: Option<i64>,
    /// Rate limits for the tenant's keys (JSON of `access::auth::RateOverride`).
    pub rate_limit: Option<String>,
}

impl Store {
    /// Insert a tenant; `Unique` when it has a row already.
    pub async fn insert_tenant(&self, t: &TenantRecord, now: i64) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query(
            "INSERT INTO tenants (id, name, active, created_at, updated_at, rate_limit) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(t.id.as_str())
        .bind(t.name.as_str())
        .bind(i64::from(t.active))
        .bind(now)
        .bind(t.rate_limit.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every tenant: rows, and tenants named by keys, users or images without one.
    pub async fn tenants(&self) -> Result<Vec<TenantRecord>> {
        let rows = sqlx::query(
            "SELECT t.id AS id, r.name AS name, r.active AS active, r.created_at AS created_at, \
             r.rate_limit AS rate_limit \
             FROM (SELECT id FROM tenants UNION SELECT tenant FROM api_keys \
             UNION SELECT tenant FROM users UNION SELECT tenant FROM images) t \
             LEFT JOIN tenants r ON r.id = t.id ORDER BY t.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                Ok(TenantRecord {
                    name: r
                        .try_get::<Option<String>, _>("name")?
                        .unwrap_or_else(|| id.clone()),
                    active: r
                        .try_get::<Option<i64>, _>("active")?
                        .is_none_or(|a| a != 0),
                    created_at: r.try_get("created_at")?,
                    rate_limit: r.try_get("rate_limit")?,
                    id,
                })
            })
            .collect()
    }

    /// One tenant (`None` when nothing names it).
    pub async fn tenant(&self, id: &str) -> Result<Option<TenantRecord>> {
        Ok(self.tenants().await?.into_iter().find(|t| t.id == id))
    }

    /// Set a tenant's name and state (a row is made when it has none).
    pub async fn update_tenant(
        &self,
        id: &str,
        name: Option<&str>,
        active: Option<bool>,
        rate_limit: Option<Option<&str>>,
        now: i64,
    ) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO tenants (id, name, active, created_at, updated_at) \
             SELECT $1, $1, 1, $2, $2 WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE id = $1)",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(n) = name {
            sqlx::query("UPDATE tenants SET name = $1, updated_at = $2 WHERE id = $3")
                .bind(n)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(r) = rate_limit {
            sqlx::query("UPDATE tenants SET rate_limit = $1, updated_at = $2 WHERE id = $3")
                .bind(r)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(a) = active {
            sqlx::query("UPDATE tenants SET active = $1, updated_at = $2 WHERE id = $3")
                .bind(i64::from(a))
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
