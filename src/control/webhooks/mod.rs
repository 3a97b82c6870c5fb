//! Webhooks: `/api/v1/webhooks` (endpoints of the caller's tenant, `admin` scope), their
//! deliveries, test events and secret rotation; and the sender that empties the outbox.
//!
//! Events are written by the store in the transaction of the change they announce (see
//! `store::outbox`); nothing here emits one, except `POST …/test`.
//!
//! Invariants: a secret is shown once (at creation or rotation) and never logged; an endpoint
//! URL is `https` (or `http` with `webhooks.allow_http`) and is refused when it points at an
//! internal address not in `webhooks.allow_networks`, both when it is saved and when connecting.

pub mod sender;
pub mod signature;

use super::view::{rfc3339, Base};
use super::{created, json, optional_json_body, Ctx};
use crate::error::Error;
use crate::http::response::Body;
use crate::store::{DeliveryRecord, WebhookPatch, WebhookRecord};
use crate::util::clock::now_ms;
use crate::util::netguard::{self, NetPolicy};
use http::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json as j, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The `[webhooks]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Accept `http://` endpoint URLs (otherwise `https://` only).
    pub allow_http: bool,
    /// Internal networks endpoints may reach (CIDRs or IPs); every other internal address
    /// (loopback, private, link-local, metadata…) is refused.
    pub allow_networks: Vec<String>,
    /// Seconds an attempt may take (connect, send, answer).
    pub timeout_secs: u64,
    /// Attempts in flight at once.
    pub workers: usize,
    /// Seconds before each retry (jittered ±20 %); after the last, the delivery fails.
    pub retry_schedule_secs: Vec<u64>,
    /// An endpoint whose attempts have all failed for this many hours is disabled.
    pub disable_after_hours: u64,
    /// Bytes of a receiver's answer kept with the delivery.
    pub max_response_bytes: usize,
    /// Days finished deliveries are kept.
    pub retention_days: u64,
    /// Hours the previous secret keeps signing after a rotation.
    pub secret_overlap_hours: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_http: false,
            allow_networks: Vec::new(),
            timeout_secs: 10,
            workers: 16,
            retry_schedule_secs: vec![5, 300, 1800, 7200, 18_000, 36_000, 36_000],
            disable_after_hours: 120,
            max_response_bytes: 1024,
            retention_days: 7,
            secret_overlap_hours: 24,
        }
    }
}

impl WebhooksConfig {
    pub fn validate(&self) -> Result<(), String> {
        netguard::parse_networks(&self.allow_networks, "webhooks.allow_networks")?;
        if !(1..=300).contains(&self.timeout_secs) {
            return Err("webhooks.timeout_secs must be 1-300".into());
        }
        if !(1..=64).contains(&self.workers) {
            return Err("webhooks.workers must be 1-64".into());
        }
        if self.retry_schedule_secs.len() > 50 {
            return Err("webhooks.retry_schedule_secs: at most 50 retries".into());
        }
        if self.max_response_bytes > 64 * 1024 {
            return Err("webhooks.max_response_bytes must be at most 65536".into());
        }
        if self.retry_schedule_secs.iter().any(|s| *s > 7 * 86_400) {
            return Err("webhooks.retry_schedule_secs: each at most 604800 (a week)".into());
        }
        if self.disable_after_hours > 24 * 365 {
            return Err("webhooks.disable_after_hours must be at most 8760".into());
        }
        if !(1..=3650).contains(&self.retention_days) {
            return Err("webhooks.retention_days must be 1-3650".into());
        }
        if self.secret_overlap_hours > 24 * 30 {
            return Err("webhooks.secret_overlap_hours must be at most 720".into());
        }
        Ok(())
    }
}

/// The event types an endpoint may subscribe to.
pub const EVENTS: &[&str] = &[
    "image.uploaded",
    "image.updated",
    "image.deleted",
    "image.expired",
    "album.created",
    "album.updated",
    "album.deleted",
    "avatar.updated",
    "avatar.deleted",
];

/// Deliveries by outcome since start.
#[derive(Debug, Default)]
pub struct Stats {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
}

/// What webhooks need: their config, the guarded client, the base of the URLs in payloads.
pub struct Webhooks {
    cfg: WebhooksConfig,
    policy: NetPolicy,
    client: reqwest::Client,
    base: Base,
    stats: Stats,
}

impl Webhooks {
    /// `base`: the root of `/img` URLs in payloads (`server.public_url`, else the listen address).
    pub fn new(cfg: WebhooksConfig, base: Base) -> Result<Self, String> {
        let policy = NetPolicy::new(netguard::parse_networks(
            &cfg.allow_networks,
            "webhooks.allow_networks",
        )?);
        let client = netguard::client(
            policy.clone(),
            Duration::from_secs(cfg.timeout_secs.max(1)),
            0,
        )?;
        Ok(Self {
            cfg,
            policy,
            client,
            base,
            stats: Stats::default(),
        })
    }

    /// The scheme, and a literal IP host against the policy (names are checked by the
    /// client's resolver at connect time; a literal never reaches it).
    fn check_target(&self, url: &str) -> Result<(), String> {
        let u = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        match u.scheme() {
            "https" => {}
            "http" if self.cfg.allow_http => {}
            "http" => return Err("http:// endpoints need webhooks.allow_http; use https://".into()),
            other => return Err(format!("{other}: an endpoint URL is https://")),
        }
        match u.host_str().and_then(netguard::literal_ip) {
            Some(ip) if !self.policy.allows(ip) => Err(format!(
                "{ip} is an internal address; internal addresses are refused unless listed in \
                 webhooks.allow_networks"
            )),
            _ => Ok(()),
        }
    }

    /// A URL an endpoint may have: absolute http(s), a host that is not internal.
    async fn check_url(&self, url: &str) -> Result<String, Error> {
        let bad = |m: String| Error::bad_param("url", m);
        let url = url.trim();
        if url.is_empty() || url.len() > 2048 {
            return Err(bad("a URL of 1-2048 characters is required".into()));
        }
        self.check_target(url).map_err(bad)?;
        let u = reqwest::Url::parse(url).map_err(|e| bad(format!("not a URL: {e}")))?;
        let host = u
            .host_str()
            .ok_or_else(|| bad("the URL has no host".into()))?;
        netguard::check_host(host, &self.policy)
            .await
            .map_err(|e| {
                bad(format!(
                    "{e}; internal addresses are refused unless listed in webhooks.allow_networks"
                ))
            })?;
        Ok(u.to_string())
    }

    /// Prometheus lines for `/metrics`.
    pub fn metrics(&self, depth: crate::store::OutboxDepth) -> String {
        let oldest = depth
            .oldest
            .map_or(0.0, |t| (now_ms() - t).max(0) as f64 / 1000.0);
        format!(
            "# TYPE refract_webhook_deliveries_total counter\n\
             refract_webhook_deliveries_total{{outcome=\"delivered\"}} {}\n\
             refract_webhook_deliveries_total{{outcome=\"retried\"}} {}\n\
             refract_webhook_deliveries_total{{outcome=\"failed\"}} {}\n\
             # TYPE refract_webhook_outbox_pending gauge\nrefract_webhook_outbox_pending {}\n\
             # TYPE refract_webhook_outbox_oldest_seconds gauge\n\
             refract_webhook_outbox_oldest_seconds {oldest:.3}\n",
            self.stats.delivered.load(Ordering::Relaxed),
            self.stats.retried.load(Ordering::Relaxed),
            self.stats.failed.load(Ordering::Relaxed),
            depth.pending,
        )
    }

    /// Forget finished deliveries older than `retention_days`.
    pub fn retention_ms(&self) -> i64 {
        i64::try_from(self.cfg.retention_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX)
    }
}

/// The WEBHOOK object (never its secret).
fn view(w: &WebhookRecord) -> Value {
    j!({
        "id": w.id,
        "url": w.url,
        "events": w.events,
        "enabled": w.enabled,
        "description": w.description,
        "disabled_reason": w.disabled_reason,
        "failing_since": w.failing_since.map(rfc3339),
        "previous_secret_valid_until": w.old_secret_until.filter(|t| *t > now_ms()).map(rfc3339),
        "created_at": rfc3339(w.created_at),
        "updated_at": rfc3339(w.updated_at),
    })
}

/// The DELIVERY object.
fn delivery_view(d: &DeliveryRecord) -> Value {
    j!({
        "id": d.id,
        "message_id": d.event_id,
        "type": d.event_type,
        "status": d.status,
        "attempts": d.attempts,
        "last_status_code": d.last_status,
        "latency_ms": d.last_latency_ms,
        "next_attempt_at": d.next_at.filter(|_| d.status == "pending").map(rfc3339),
        "response": d.last_response,
        "error": d.last_error,
        "created_at": rfc3339(d.created_at),
        "updated_at": rfc3339(d.updated_at),
        "seq": d.seq,
    })
}

/// `events`: a list of types (or `*`, `kind.*`), or the string `*`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Events {
    One(String),
    List(Vec<String>),
}

fn events(e: Events) -> Result<Vec<String>, Error> {
    let list = match e {
        Events::One(s) => vec![s],
        Events::List(l) => l,
    };
    if list.is_empty() || list.len() > 32 {
        return Err(Error::bad_param("events", "1-32 event types, or \"*\""));
    }
    let mut out: Vec<String> = Vec::new();
    for e in list {
        let known = e == "*"
            || EVENTS.contains(&e.as_str())
            || e.strip_suffix(".*").is_some_and(|k| {
                EVENTS
                    .iter()
                    .any(|t| t.split_once('.').is_some_and(|(p, _)| p == k))
            });
        if !known {
            return Err(Error::bad_param(
                "events",
                format!("unknown event type {e:?}; known: {}", EVENTS.join(", ")),
            ));
        }
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

fn description(d: String) -> Result<String, Error> {
    if d.chars().count() > 500 || d.chars().any(char::is_control) {
        return Err(Error::bad_param(
            "description",
            "at most 500 characters, no control characters",
        ));
    }
    Ok(d)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Fields {
    url: Option<String>,
    events: Option<Events>,
    enabled: Option<bool>,
    description: Option<String>,
}

fn not_found() -> Error {
    Error::NotFound("webhook not found".into())
}

fn secret() -> Result<String, Error> {
    signature::new_secret().map_err(|e| Error::Internal(format!("random: {e}")))
}

/// `POST /api/v1/webhooks`: 201 with the endpoint and its secret (shown this once).
pub(crate) async fn create(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let tenant = ctx.principal()?.tenant.clone();
    let ctl = ctx.ctl;
    let f: Fields = optional_json_body(ctx.req).await?;
    let url = ctl
        .webhooks
        .check_url(f.url.as_deref().unwrap_or(""))
        .await?;
    let now = now_ms();
    let w = WebhookRecord {
        id: format!("wh_{}", super::new_id(12)?),
        tenant,
        url,
        events: match f.events {
            Some(e) => events(e)?,
            None => vec!["*".into()],
        },
        enabled: f.enabled.unwrap_or(true),
        description: description(f.description.unwrap_or_default())?,
        secret: secret()?,
        old_secret: None,
        old_secret_until: None,
        failing_since: None,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    ctl.store.insert_webhook(&w).await?;
    Ok(created(
        &j!({ "success": true, "webhook": view(&w), "secret": w.secret }),
    ))
}

/// `GET /api/v1/webhooks`.
pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    ctx.query(&[])?;
    let tenant = &ctx.principal()?.tenant;
    let all = ctx.ctl.store.webhooks(tenant).await?;
    let hooks: Vec<Value> = all.iter().map(view).collect();
    Ok(json(&j!({ "success": true, "webhooks": hooks })))
}

async fn owned(ctx: &Ctx<'_>, id: &str) -> Result<WebhookRecord, Error> {
    let tenant = &ctx.principal()?.tenant;
    ctx.ctl
        .store
        .webhook(tenant, id)
        .await?
        .ok_or_else(not_found)
}

/// `GET /api/v1/webhooks/{id}`.
pub(crate) async fn get(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let w = owned(ctx, id).await?;
    Ok(json(&j!({ "success": true, "webhook": view(&w) })))
}

/// `PATCH /api/v1/webhooks/{id}`: `url`, `events`, `enabled`, `description`. Enabling clears
/// the failure record; disabling fails the pending deliveries.
pub(crate) async fn patch(ctx: Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let tenant = ctx.principal()?.tenant.clone();
    let ctl = ctx.ctl;
    let f: Fields = optional_json_body(ctx.req).await?;
    let p = WebhookPatch {
        url: match f.url {
            Some(u) => Some(ctl.webhooks.check_url(&u).await?),
            None => None,
        },
        events: f.events.map(events).transpose()?,
        enabled: f.enabled,
        description: f.description.map(description).transpose()?,
    };
    let w = ctl
        .store
        .update_webhook(&tenant, id, &p, now_ms())
        .await?
        .ok_or_else(not_found)?;
    Ok(json(&j!({ "success": true, "webhook": view(&w) })))
}

/// `DELETE /api/v1/webhooks/{id}`: the endpoint and its deliveries.
pub(crate) async fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let tenant = &ctx.principal()?.tenant;
    if !ctx.ctl.store.delete_webhook(tenant, id).await? {
        return Err(not_found());
    }
    Ok(json(&j!({ "success": true })))
}

/// `POST /api/v1/webhooks/{id}/rotate-secret`: a new secret (shown this once); the previous
/// one keeps signing (a second signature) for `secret_overlap_hours`.
pub(crate) async fn rotate(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let tenant = &ctx.principal()?.tenant;
    let now = now_ms();
    let hours = i64::try_from(ctx.ctl.webhooks.cfg.secret_overlap_hours).unwrap_or(24);
    let until = now + hours * 3_600_000;
    let new = secret()?;
    let w = ctx
        .ctl
        .store
        .rotate_webhook_secret(tenant, id, &new, until, now)
        .await?
        .ok_or_else(not_found)?;
    Ok(json(&j!({
        "success": true,
        "webhook": view(&w),
        "secret": new,
        "previous_secret_valid_until": rfc3339(until),
    })))
}

/// `GET /api/v1/webhooks/{id}/deliveries?status=&limit=&before=`: newest first.
pub(crate) async fn deliveries(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let q = ctx.query(&["status", "limit", "before"])?;
    let w = owned(ctx, id).await?;
    let status = q.get("status").filter(|s| !s.is_empty());
    if let Some(s) = status {
        if !["pending", "delivered", "failed"].contains(&s) {
            return Err(Error::bad_param(
                "status",
                "status is pending, delivered or failed",
            ));
        }
    }
    let limit = match q.get("limit") {
        None => 50,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| Error::bad_param("limit", "limit is 1-200"))?,
    };
    let before = match q.get("before") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| Error::bad_param("before", "before is a delivery's seq"))?,
        ),
    };
    let list = ctx
        .ctl
        .store
        .deliveries(&w.id, status, before, limit)
        .await?;
    let next = (list.len() == limit as usize)
        .then(|| list.last().map(|d| d.seq))
        .flatten();
    let items: Vec<Value> = list.iter().map(delivery_view).collect();
    Ok(json(
        &j!({ "success": true, "deliveries": items, "next_before": next }),
    ))
}

/// `POST /api/v1/webhooks/{id}/deliveries/{delivery}/redeliver`: the same message (same
/// `webhook-id`) sent again, now.
pub(crate) async fn redeliver(
    ctx: &Ctx<'_>,
    id: &str,
    delivery: &str,
) -> Result<Response<Body>, Error> {
    let w = owned(ctx, id).await?;
    if !w.enabled {
        return Err(Error::Conflict(
            "the endpoint is disabled; enable it first".into(),
        ));
    }
    let d = ctx
        .ctl
        .store
        .redeliver(&w.id, delivery, now_ms())
        .await?
        .ok_or_else(|| Error::NotFound("delivery not found".into()))?;
    Ok(created(
        &j!({ "success": true, "delivery": delivery_view(&d) }),
    ))
}

/// `POST /api/v1/webhooks/{id}/test`: a `webhook.test` event to this endpoint only.
pub(crate) async fn test(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let w = owned(ctx, id).await?;
    if !w.enabled {
        return Err(Error::Conflict(
            "the endpoint is disabled; enable it first".into(),
        ));
    }
    let data = j!({ "webhook_id": w.id, "message": "a test event from Refract" });
    let d = ctx
        .ctl
        .store
        .test_event(&w, data, now_ms())
        .await?
        .ok_or_else(|| Error::Internal("test delivery not written".into()))?;
    Ok(created(
        &j!({ "success": true, "delivery": delivery_view(&d) }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lists() {
        assert_eq!(events(Events::One("*".into())).unwrap(), vec!["*"]);
        assert_eq!(
            events(Events::List(vec![
                "image.*".into(),
                "album.created".into(),
                "album.created".into()
            ]))
            .unwrap(),
            vec!["image.*", "album.created"]
        );
        assert!(events(Events::List(vec![])).is_err());
        assert!(events(Events::List(vec!["image.exploded".into()])).is_err());
        assert!(events(Events::List(vec!["nope.*".into()])).is_err());
    }

    #[test]
    fn defaults_validate() {
        assert!(WebhooksConfig::default().validate().is_ok());
        let bad = WebhooksConfig {
            allow_networks: vec!["not-a-net".into()],
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("webhooks.allow_networks"));
    }
}
