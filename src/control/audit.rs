//! The audit log: every write (`POST`, `PUT`, `PATCH`, `DELETE`) by a caller holding the
//! `admin` scope is recorded after it is answered: who (key id or user), what (the operation
//! and its target), when, from where (the client IP), and the status. `GET /api/v1/audit`
//! (admin): an admin of tenant `default` reads every entry, another tenant's admin its own.

use super::{json, Ctx, Op};
use crate::access::auth::{Principal, Scope};
use crate::error::Error;
use crate::http::response::Body;
use crate::store::AuditEntry;
use http::{Method, Response};
use serde::{Deserialize, Serialize};
use serde_json::json as j;

/// The `[audit]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Days entries are kept.
    pub retention_days: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { retention_days: 90 }
    }
}

impl AuditConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=3650).contains(&self.retention_days) {
            return Err("audit.retention_days must be 1-3650".into());
        }
        Ok(())
    }

    /// Entries older than this many milliseconds are forgotten.
    pub fn retention_ms(&self) -> i64 {
        i64::try_from(self.retention_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX)
    }
}

/// What to record of a request, decided before it runs (the caller and the operation).
pub(crate) struct Pending {
    entry: AuditEntry,
}

/// `Some` when this request is an administrator's write.
pub(crate) fn pending(
    caller: Option<&Principal>,
    routed: &Result<(Op, String), Error>,
    method: &Method,
    path: &str,
    ip: std::net::IpAddr,
) -> Option<Pending> {
    let p = caller.filter(|p| p.has(Scope::Admin))?;
    let (op, param) = routed.as_ref().ok()?;
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    Some(Pending {
        entry: AuditEntry {
            id: String::new(),
            at: 0,
            actor: p.key_id.clone(),
            tenant: p.tenant.clone(),
            action: format!("{op:?}"),
            target: param.chars().take(200).collect(),
            method: method.as_str().to_string(),
            path: path.chars().take(500).collect(),
            status: 0,
            ip: ip.to_string(),
        },
    })
}

/// Write the entry with the answer's status (a failure to write is logged, never the answer).
pub(crate) async fn record(ctl: &super::Control, p: Pending, status: u16) {
    let mut e = p.entry;
    e.at = crate::util::clock::now_ms();
    e.status = i64::from(status);
    e.id = match crate::util::ids::random_id(12) {
        Ok(id) => format!("aud_{id}"),
        Err(err) => {
            tracing::warn!(error = %err, "audit: no id");
            return;
        }
    };
    if let Err(err) = ctl.store.insert_audit(&e).await {
        tracing::warn!(error = %err, action = %e.action, "audit: entry not written");
    }
}

/// `GET /api/v1/audit?limit=&before=`: newest first; `next_before` continues.
pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let q = ctx.query(&["limit", "before"])?;
    let p = ctx.principal()?;
    let tenant = (p.tenant != "default").then_some(p.tenant.as_str());
    let limit = match q.get("limit") {
        None => 50,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| Error::bad_param("limit", "limit is 1-500"))?,
    };
    let before = match q.get("before") {
        None => None,
        Some(v) => {
            let (at, id) = v
                .split_once('_')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| Error::bad_param("before", "before is the next_before of a page"))?;
            Some((at, format!("aud_{}", id.trim_start_matches("aud_"))))
        }
    };
    let entries = ctx.ctl.store.audit(tenant, before, limit).await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(|e| format!("{}_{}", e.at, e.id)))
        .flatten();
    let items: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            j!({
                "id": e.id,
                "at": super::view::rfc3339(e.at),
                "actor": e.actor,
                "tenant": e.tenant,
                "action": e.action,
                "target": e.target,
                "method": e.method,
                "path": e.path,
                "status": e.status,
                "ip": e.ip,
            })
        })
        .collect();
    Ok(json(
        &j!({ "success": true, "entries": items, "next_before": next }),
    ))
}
