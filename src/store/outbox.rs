//! Webhooks: endpoints, and the outbox of events and their deliveries.
//!
//! An event is written by `emit`, inside the transaction of the change it announces, with one
//! delivery row per subscribed, enabled endpoint of the tenant (no endpoint: nothing written).
//! Every delivery gets the next `seq` under the write lock, so `seq` is commit order. A delivery
//! is due when it is pending, its time has come, no lease holds it, and no earlier pending
//! delivery of the same object to the same endpoint waits (per-object order). Senders claim a
//! delivery with a lease and record each attempt in one transaction.

use super::{Result, Store};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// The endpoint columns, in `webhook_from_row`'s names.
macro_rules! webhook_columns {
    () => {
        "id, tenant, url, events, enabled, description, secret, old_secret, old_secret_until, \
         failing_since, disabled_reason, created_at, updated_at"
    };
}

/// The delivery columns (with its event's type), in `delivery_from_row`'s order.
macro_rules! delivery_columns {
    () => {
        "d.id, d.seq, d.event_id, e.type, d.webhook_id, d.status, d.attempts, d.next_at, \
         d.last_status, d.last_latency_ms, d.last_response, d.last_error, d.created_at, \
         d.updated_at"
    };
}

/// A webhook endpoint as stored (its secrets are never shown after creation, nor debug-printed).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: String,
    pub tenant: String,
    pub url: String,
    /// Event types, `*` or `kind.*` patterns.
    pub events: Vec<String>,
    pub enabled: bool,
    pub description: String,
    pub secret: String,
    /// The secret before the last rotation, still signing until `old_secret_until`.
    pub old_secret: Option<String>,
    pub old_secret_until: Option<i64>,
    /// When the current run of failed attempts began.
    pub failing_since: Option<i64>,
    pub disabled_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRecord")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("enabled", &self.enabled)
            .field("secret", &"***")
            .finish_non_exhaustive()
    }
}

impl WebhookRecord {
    /// Whether this endpoint subscribes to events of type `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|e| {
            e == "*"
                || e == kind
                || e.strip_suffix(".*")
                    .is_some_and(|p| kind.split_once('.').is_some_and(|(k, _)| k == p))
        })
    }
}

/// A partial endpoint update. `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

/// One event as written in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// `msg_…`: the `webhook-id` of every delivery of it.
    pub id: String,
    pub tenant: String,
    /// `image.uploaded`, …
    pub kind: String,
    /// The JSON snapshot of the changed object, taken in the change's transaction (or `{"id"}`
    /// for a deletion).
    pub data: String,
    pub created_at: i64,
}

/// Delivery states.
pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: String,
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub webhook_id: String,
    pub status: String,
    pub attempts: i64,
    pub next_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_latency_ms: Option<i64>,
    pub last_response: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A claimed delivery with what sending it needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: DeliveryRecord,
    pub event: EventRecord,
    /// `None` when the endpoint was deleted meanwhile.
    pub webhook: Option<WebhookRecord>,
    /// The lease this claim holds (`lease_until`): recording the attempt needs it.
    pub lease: i64,
}

/// What became of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again at this time.
    Retry(i64),
    /// Give up on this delivery.
    Failed,
    /// Give up, and disable the endpoint for this reason (its other pending deliveries fail too).
    Disable(String),
}

/// One attempt's result.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: Option<i64>,
    pub latency_ms: i64,
    pub response: Option<String>,
    pub error: Option<String>,
    pub outcome: Outcome,
    /// Disable the endpoint when its failures began this long ago (ms).
    pub disable_after_ms: i64,
}

/// What became of a claimed delivery.
#[derive(Debug, Clone)]
pub enum Recorded {
    Attempted(Attempt),
    /// Failed without an attempt (its endpoint is gone or disabled).
    Abandoned(String),
}

/// The outbox as a gauge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    pub pending: i64,
    /// Creation time of the oldest pending delivery.
    pub oldest: Option<i64>,
}

/// An announcement, written by the store function making the change.
pub(super) struct Announce<'a> {
    pub tenant: &'a str,
    pub kind: &'static str,
    /// `image:<id>`, `album:<id>`, `avatar:<user>`: the unit of ordering.
    pub object: String,
    pub data: serde_json::Value,
    pub now: i64,
}

/// Write an event and its deliveries to every subscribed, enabled endpoint of the tenant, in
/// the caller's transaction (under the write lock). True when anything was written.
pub(super) async fn emit(tx: &mut Tx<'_>, a: Announce<'_>) -> Result<bool> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM webhooks WHERE tenant = $1 AND enabled = 1"
    ))
    .bind(a.tenant)
    .fetch_all(&mut **tx)
    .await?;
    let mut targets = Vec::new();
    for r in &rows {
        let w = webhook_from_row(r)?;
        if w.wants(a.kind) {
            targets.push(w.id);
        }
    }
    if targets.is_empty() {
        return Ok(false);
    }
    let event = EventRecord {
        id: format!("msg_{}", new_id()?),
        tenant: a.tenant.to_string(),
        kind: a.kind.to_string(),
        data: a.data.to_string(),
        created_at: a.now,
    };
    insert_event(tx, &event, &a.object).await?;
    for w in targets {
        insert_delivery(tx, &event.id, &w, &a.object, a.now).await?;
    }
    Ok(true)
}

async fn insert_event(tx: &mut Tx<'_>, e: &EventRecord, object: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhook_events (id, tenant, type, object, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.id.as_str())
    .bind(e.tenant.as_str())
    .bind(e.kind.as_str())
    .bind(object)
    .bind(e.data.as_str())
    .bind(e.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_delivery(
    tx: &mut Tx<'_>,
    event: &str,
    webhook: &str,
    object: &str,
    now: i64,
) -> Result<String> {
    // Nodes sharing a PostgreSQL take `seq` one at a time too (held to the commit), so `seq`
    // stays commit order across the cluster.
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock(7261001)")
            .execute(&mut **tx)
            .await?;
    }
    let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM webhook_deliveries")
        .fetch_one(&mut **tx)
        .await?;
    let id = format!("dlv_{}", new_id()?);
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, seq, event_id, webhook_id, object, status, \
         attempts, next_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7, $7)",
    )
    .bind(id.as_str())
    .bind(seq)
    .bind(event)
    .bind(webhook)
    .bind(object)
    .bind(PENDING)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

fn new_id() -> Result<String> {
    crate::util::ids::random_id(12).map_err(|e| super::StoreError::Db(format!("random: {e}")))
}

fn webhook_from_row(r: &AnyRow) -> Result<WebhookRecord> {
    let events: String = r.try_get("events")?;
    Ok(WebhookRecord {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        url: r.try_get("url")?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        enabled: r.try_get::<i64, _>("enabled")? != 0,
        description: r.try_get("description")?,
        secret: r.try_get("secret")?,
        old_secret: r.try_get("old_secret")?,
        old_secret_until: r.try_get("old_secret_until")?,
        failing_since: r.try_get("failing_since")?,
        disabled_reason: r.try_get("disabled_reason")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn delivery_from_row(r: &AnyRow) -> Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: r.try_get(0)?,
        seq: r.try_get(1)?,
        event_id: r.try_get(2)?,
        event_type: r.try_get(3)?,
        webhook_id: r.try_get(4)?,
        status: r.try_get(5)?,
        attempts: r.try_get(6)?,
        next_at: r.try_get(7)?,
        last_status: r.try_get(8)?,
        last_latency_ms: r.try_get(9)?,
        last_response: r.try_get(10)?,
        last_error: r.try_get(11)?,
        created_at: r.try_get(12)?,
        updated_at: r.try_get(13)?,
    })
}

fn events_json(events: &[String]) -> String {
    serde_json::to_string(events).unwrap_or_else(|_| "[]".into())
}

impl Store {
    pub async fn insert_webhook(&self, w: &WebhookRecord) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query(concat!(
            "INSERT INTO webhooks (",
            webhook_columns!(),
            ") \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(w.id.as_str())
        .bind(w.tenant.as_str())
        .bind(w.url.as_str())
        .bind(events_json(&w.events))
        .bind(i64::from(w.enabled))
        .bind(w.description.as_str())
        .bind(w.secret.as_str())
        .bind(w.old_secret.clone())
        .bind(w.old_secret_until)
        .bind(w.failing_since)
        .bind(w.disabled_reason.clone())
        .bind(w.created_at)
        .bind(w.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn webhooks(&self, tenant: &str) -> Result<Vec<WebhookRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE tenant = $1 ORDER BY created_at, id"
        ))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(webhook_from_row).collect()
    }

    pub async fn webhook(&self, tenant: &str, id: &str) -> Result<Option<WebhookRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(webhook_from_row).transpose()
    }

    /// Apply `p`; `None` when the tenant has no such endpoint. Disabling fails its pending
    /// deliveries; enabling clears the failure record.
    pub async fn update_webhook(
        &self,
        tenant: &str,
        id: &str,
        p: &WebhookPatch,
        now: i64,
    ) -> Result<Option<WebhookRecord>> {
        {
            let _w = self.write.lock().await;
            let mut tx = self.pool.begin().await?;
            let mut s = super::sql::Sql::new("UPDATE webhooks SET updated_at = ");
            s.bind(now);
            if let Some(u) = &p.url {
                s.push(", url = ").bind(u.as_str());
            }
            if let Some(e) = &p.events {
                s.push(", events = ").bind(events_json(e));
            }
            if let Some(d) = &p.description {
                s.push(", description = ").bind(d.as_str());
            }
            match p.enabled {
                Some(true) => {
                    s.push(", enabled = 1, failing_since = NULL, disabled_reason = NULL");
                }
                Some(false) => {
                    s.push(", enabled = 0, disabled_reason = ")
                        .bind("disabled through the API");
                }
                None => {}
            }
            s.push(" WHERE tenant = ")
                .bind(tenant)
                .push(" AND id = ")
                .bind(id);
            if s.query().execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(None);
            }
            if p.enabled == Some(false) {
                fail_pending(&mut tx, id, "endpoint disabled", now).await?;
            }
            tx.commit().await?;
        }
        self.webhook(tenant, id).await
    }

    /// Replace the secret; the old one keeps signing until `old_until`.
    pub async fn rotate_webhook_secret(
        &self,
        tenant: &str,
        id: &str,
        secret: &str,
        old_until: i64,
        now: i64,
    ) -> Result<Option<WebhookRecord>> {
        {
            let _w = self.write.lock().await;
            let n = sqlx::query(
                "UPDATE webhooks SET old_secret = secret, old_secret_until = $1, secret = $2, \
                 updated_at = $3 WHERE tenant = $4 AND id = $5",
            )
            .bind(old_until)
            .bind(secret)
            .bind(now)
            .bind(tenant)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok(None);
            }
        }
        self.webhook(tenant, id).await
    }

    /// Delete an endpoint and its deliveries; false when none.
    pub async fn delete_webhook(&self, tenant: &str, id: &str) -> Result<bool> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM webhooks WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if gone {
            sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// An endpoint's deliveries, newest first: at most `limit`, before `before` (a `seq`),
    /// only `status` when given.
    pub async fn deliveries(
        &self,
        webhook: &str,
        status: Option<&str>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>> {
        let mut s = super::sql::Sql::new("SELECT ");
        s.push(delivery_columns!())
            .push(
                " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
                 WHERE d.webhook_id = ",
            )
            .bind(webhook);
        if let Some(st) = status {
            s.push(" AND d.status = ").bind(st);
        }
        if let Some(b) = before {
            s.push(" AND d.seq < ").bind(b);
        }
        s.push(" ORDER BY d.seq DESC LIMIT ").bind(i64::from(limit));
        let rows = s.query().fetch_all(&self.pool).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// Send an endpoint's delivery again: a new pending delivery of the same event (same
    /// `webhook-id`), due now. `None` when the endpoint has no such delivery.
    pub async fn redeliver(
        &self,
        webhook: &str,
        delivery: &str,
        now: i64,
    ) -> Result<Option<DeliveryRecord>> {
        let id = {
            let _w = self.write.lock().await;
            let mut tx = self.pool.begin().await?;
            let row = sqlx::query(
                "SELECT event_id, object FROM webhook_deliveries WHERE webhook_id = $1 AND id = $2",
            )
            .bind(webhook)
            .bind(delivery)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            let event: String = row.try_get("event_id")?;
            let object: String = row.try_get("object")?;
            let id = insert_delivery(&mut tx, &event, webhook, &object, now).await?;
            tx.commit().await?;
            id
        };
        self.outbox.notify_one();
        self.delivery(&id).await
    }

    /// A `webhook.test` event for one endpoint only.
    pub async fn test_event(
        &self,
        w: &WebhookRecord,
        data: serde_json::Value,
        now: i64,
    ) -> Result<Option<DeliveryRecord>> {
        let id = {
            let _w = self.write.lock().await;
            let mut tx = self.pool.begin().await?;
            let event = EventRecord {
                id: format!("msg_{}", new_id()?),
                tenant: w.tenant.clone(),
                kind: "webhook.test".into(),
                data: data.to_string(),
                created_at: now,
            };
            let object = format!("test:{}", event.id);
            insert_event(&mut tx, &event, &object).await?;
            let id = insert_delivery(&mut tx, &event.id, &w.id, &object, now).await?;
            tx.commit().await?;
            id
        };
        self.outbox.notify_one();
        self.delivery(&id).await
    }

    async fn delivery(&self, id: &str) -> Result<Option<DeliveryRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries d \
             JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    /// Claim up to `limit` due deliveries for `lease_ms` (oldest first; per endpoint and
    /// object, only the earliest pending one).
    pub async fn claim_due(&self, now: i64, lease_ms: i64, limit: u32) -> Result<Vec<Claimed>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        // Several nodes claim at once on PostgreSQL: rows another node is claiming are
        // skipped, not waited for (and not claimed twice).
        let sql = format!(
            "{}{}",
            concat!(
                "SELECT ",
                delivery_columns!(),
                ", e.tenant AS e_tenant, e.data AS e_data, \
                 e.created_at AS e_created FROM webhook_deliveries d \
                 JOIN webhook_events e ON e.id = d.event_id \
                 WHERE d.status = $1 AND d.next_at <= $2 \
                 AND (d.lease_until IS NULL OR d.lease_until < $2) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o WHERE o.webhook_id = d.webhook_id \
                 AND o.object = d.object AND o.status = $1 AND o.seq < d.seq) \
                 ORDER BY d.seq LIMIT $3"
            ),
            if self.postgres {
                " FOR UPDATE OF d SKIP LOCKED"
            } else {
                ""
            }
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(PENDING)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let delivery = delivery_from_row(r)?;
            sqlx::query("UPDATE webhook_deliveries SET lease_until = $1 WHERE id = $2")
                .bind(now + lease_ms)
                .bind(delivery.id.as_str())
                .execute(&mut *tx)
                .await?;
            let webhook = sqlx::query(concat!(
                "SELECT ",
                webhook_columns!(),
                " FROM webhooks WHERE id = $1"
            ))
            .bind(delivery.webhook_id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(webhook_from_row)
            .transpose()?;
            let event = EventRecord {
                id: delivery.event_id.clone(),
                tenant: r.try_get("e_tenant")?,
                kind: delivery.event_type.clone(),
                data: r.try_get("e_data")?,
                created_at: r.try_get("e_created")?,
            };
            out.push(Claimed {
                delivery,
                event,
                webhook,
                lease: now + lease_ms,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Record what became of claimed deliveries, in one transaction (one commit for a batch of
    /// attempts). An attempt also tells its endpoint's story: a success ends a run of failures;
    /// a failure may disable it. Nothing is recorded for a claim that no longer holds (its lease
    /// ran out and another attempt took over, or its endpoint was disabled meanwhile). Returns
    /// the endpoints disabled, with why.
    pub async fn record_attempts(
        &self,
        done: &[(Claimed, Recorded)],
        now: i64,
    ) -> Result<Vec<(String, String)>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut disabled = Vec::new();
        for (c, r) in done {
            match r {
                Recorded::Attempted(a) => {
                    if let Some(why) = record_in(&mut tx, c, a, now).await? {
                        disabled.push((c.delivery.webhook_id.clone(), why));
                    }
                }
                Recorded::Abandoned(why) => abandon_in(&mut tx, c, why, now).await?,
            }
        }
        tx.commit().await?;
        Ok(disabled)
    }

    /// Drop every lease: called when the sender starts, so that deliveries claimed by a process
    /// that died are sent again at once (one sender per database; see docs/webhooks.md).
    pub async fn release_leases(&self) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("UPDATE webhook_deliveries SET lease_until = NULL WHERE status = $1")
            .bind(PENDING)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// When the next pending delivery falls due (none pending: `None`).
    pub async fn next_due(&self) -> Result<Option<i64>> {
        // Only deliveries that are first in their object's line: a blocked one is not due
        // before the one ahead of it.
        Ok(sqlx::query_scalar(
            "SELECT MIN(COALESCE(d.lease_until, d.next_at)) FROM webhook_deliveries d \
             WHERE d.status = $1 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o \
             WHERE o.webhook_id = d.webhook_id AND o.object = d.object AND o.status = $1 \
             AND o.seq < d.seq)",
        )
        .bind(PENDING)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn outbox_depth(&self) -> Result<OutboxDepth> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM webhook_deliveries \
             WHERE status = $1",
        )
        .bind(PENDING)
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxDepth {
            pending: row.try_get("n")?,
            oldest: row.try_get("oldest")?,
        })
    }

    /// Forget finished deliveries last touched before `before`, and events left without any.
    pub async fn prune_outbox(&self, before: i64) -> Result<u64> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let n =
            sqlx::query("DELETE FROM webhook_deliveries WHERE status <> $1 AND updated_at < $2")
                .bind(PENDING)
                .bind(before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query(
            "DELETE FROM webhook_events WHERE NOT EXISTS \
             (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Woken after every commit that wrote to the outbox.
    pub fn outbox_signal(&self) -> &tokio::sync::Notify {
        &self.outbox
    }
}

/// Record an attempt on a claimed delivery, and what it means for its endpoint; why the
/// endpoint was disabled, when it was.
/// Nothing is recorded when the claim no longer holds (its lease ran out and another
/// attempt took over, or the endpoint was disabled meanwhile).
async fn record_in(tx: &mut Tx<'_>, c: &Claimed, a: &Attempt, now: i64) -> Result<Option<String>> {
    let (delivery, webhook) = (c.delivery.id.as_str(), c.delivery.webhook_id.as_str());
    let (status, next_at) = match &a.outcome {
        Outcome::Delivered => (DELIVERED, None),
        Outcome::Retry(at) => (PENDING, Some(*at)),
        Outcome::Failed | Outcome::Disable(_) => (FAILED, None),
    };
    let held = sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, next_at = $2, \
         lease_until = NULL, last_status = $3, last_latency_ms = $4, last_response = $5, \
         last_error = $6, updated_at = $7 WHERE id = $8 AND status = $9 AND lease_until = $10",
    )
    .bind(status)
    .bind(next_at)
    .bind(a.status)
    .bind(a.latency_ms)
    .bind(a.response.clone())
    .bind(a.error.clone())
    .bind(now)
    .bind(delivery)
    .bind(PENDING)
    .bind(c.lease)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if held == 0 {
        return Ok(None);
    }
    let mut disable = match &a.outcome {
        Outcome::Disable(why) => Some(why.clone()),
        _ => None,
    };
    if a.outcome == Outcome::Delivered {
        sqlx::query(
            "UPDATE webhooks SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
        )
        .bind(webhook)
        .execute(&mut **tx)
        .await?;
    } else if disable.is_none() {
        // A run of failures starts at the first failure after a success, or after a day
        // without failures (an endpoint that failed once long ago is not "failing for days").
        sqlx::query(
            "UPDATE webhooks SET failing_since = $1 WHERE id = $2 AND (failing_since IS NULL \
             OR last_failure_at IS NULL OR last_failure_at < $3)",
        )
        .bind(now)
        .bind(webhook)
        .bind(now - 86_400_000)
        .execute(&mut **tx)
        .await?;
        sqlx::query("UPDATE webhooks SET last_failure_at = $1 WHERE id = $2")
            .bind(now)
            .bind(webhook)
            .execute(&mut **tx)
            .await?;
        let since: Option<i64> =
            sqlx::query_scalar("SELECT failing_since FROM webhooks WHERE id = $1")
                .bind(webhook)
                .fetch_optional(&mut **tx)
                .await?
                .flatten();
        if since.is_some_and(|s| now - s >= a.disable_after_ms) {
            disable = Some(format!(
                "every attempt failed for {} hours",
                (now - since.unwrap_or(now)) / 3_600_000
            ));
        }
    }
    if let Some(why) = &disable {
        sqlx::query(
            "UPDATE webhooks SET enabled = 0, disabled_reason = $1, updated_at = $2 \
             WHERE id = $3",
        )
        .bind(why.as_str())
        .bind(now)
        .bind(webhook)
        .execute(&mut **tx)
        .await?;
        fail_pending(tx, webhook, "endpoint disabled", now).await?;
    }
    Ok(disable)
}

/// Fail a claimed delivery without an attempt (its endpoint is gone or disabled).
async fn abandon_in(tx: &mut Tx<'_>, c: &Claimed, why: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, next_at = NULL, lease_until = NULL, \
         last_error = $2, updated_at = $3 WHERE id = $4 AND status = $5 AND lease_until = $6",
    )
    .bind(FAILED)
    .bind(why)
    .bind(now)
    .bind(c.delivery.id.as_str())
    .bind(PENDING)
    .bind(c.lease)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn fail_pending(tx: &mut Tx<'_>, webhook: &str, why: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, next_at = NULL, lease_until = NULL, \
         last_error = $2, updated_at = $3 WHERE webhook_id = $4 AND status = $5",
    )
    .bind(FAILED)
    .bind(why)
    .bind(now)
    .bind(webhook)
    .bind(PENDING)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions() {
        let mut w = WebhookRecord {
            id: "w".into(),
            tenant: "t".into(),
            url: "https://x".into(),
            events: vec!["image.uploaded".into(), "album.*".into()],
            enabled: true,
            description: String::new(),
            secret: "s".into(),
            old_secret: None,
            old_secret_until: None,
            failing_since: None,
            disabled_reason: None,
            created_at: 0,
            updated_at: 0,
        };
        assert!(w.wants("image.uploaded"));
        assert!(!w.wants("image.deleted"));
        assert!(w.wants("album.created"));
        assert!(!w.wants("albums.created"));
        w.events = vec!["*".into()];
        assert!(w.wants("avatar.deleted"));
    }
}
