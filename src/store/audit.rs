//! The audit log: every write by an administrator (who, what, when, from where, and the
//! answer's status), newest first, kept `audit.retention_days`.

use super::{Result, Store};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: String,
    /// Unix milliseconds.
    pub at: i64,
    /// `bootstrap`, a key id, or `user:<id>`.
    pub actor: String,
    /// The actor's tenant.
    pub tenant: String,
    /// The operation (`CreateKey`, `DeleteImage`, …).
    pub action: String,
    /// What it named (an id), if anything.
    pub target: String,
    pub method: String,
    pub path: String,
    pub status: i64,
    /// The client's address.
    pub ip: String,
}

fn entry_from_row(r: &AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        tenant: r.try_get("tenant")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        method: r.try_get("method")?,
        path: r.try_get("path")?,
        status: r.try_get("status")?,
        ip: r.try_get("ip")?,
    })
}

impl Store {
    pub async fn insert_audit(&self, e: &AuditEntry) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, tenant, action, target, method, path, status, \
             ip) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(e.id.as_str())
        .bind(e.at)
        .bind(e.actor.as_str())
        .bind(e.tenant.as_str())
        .bind(e.action.as_str())
        .bind(e.target.as_str())
        .bind(e.method.as_str())
        .bind(e.path.as_str())
        .bind(e.status)
        .bind(e.ip.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Newest first: at most `limit`, before `(at, id)` when given, only `tenant`'s when given.
    pub async fn audit(
        &self,
        tenant: Option<&str>,
        before: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let mut s = super::sql::Sql::new(
            "SELECT id, at, actor, tenant, action, target, method, path, status, ip \
             FROM audit_log WHERE 1 = 1",
        );
        if let Some(t) = tenant {
            s.push(" AND tenant = ").bind(t);
        }
        if let Some((at, id)) = before {
            s.push(" AND (at < ")
                .bind(at)
                .push(" OR (at = ")
                .bind(at)
                .push(" AND id < ")
                .bind(id)
                .push("))");
        }
        s.push(" ORDER BY at DESC, id DESC LIMIT ")
            .bind(i64::from(limit));
        let rows = s.query().fetch_all(&self.pool).await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Forget entries older than `before`.
    pub async fn prune_audit(&self, before: i64) -> Result<u64> {
        let _w = self.write.lock().await;
        Ok(sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
