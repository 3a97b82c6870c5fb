//! The webhook sender: claims due deliveries from the outbox, sends each (signed, through the
//! SSRF guard, no redirects, with a timeout), and records the attempt: delivered on 2xx; 410
//! disables the endpoint; anything else is retried on the schedule, then failed. Woken by every
//! commit that wrote to the outbox, by each finished attempt, and by the next retry's time.

use super::{signature, Webhooks};
use crate::store::{Attempt, Claimed, EventRecord, Outcome, Recorded, Store};
use crate::util::clock::now_ms;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Run until aborted (the attempts in flight end with it; their leases are dropped at the next
/// start and they are sent again, with the same `webhook-id`). Attempts report back here, and
/// what finished is recorded in one transaction per batch.
pub async fn run(hooks: Arc<Webhooks>, store: Arc<Store>) {
    if let Err(e) = store.release_leases().await {
        tracing::warn!(error = %e, "webhook outbox: releasing leases failed");
    }
    let workers = hooks.cfg.workers.max(1);
    let lease_ms =
        i64::try_from(hooks.cfg.timeout_secs.saturating_add(30) * 1000).unwrap_or(i64::MAX);
    let (report, mut reports) = tokio::sync::mpsc::unbounded_channel::<(Claimed, Recorded)>();
    let mut inflight = tokio::task::JoinSet::new();
    let mut done: Vec<(Claimed, Recorded)> = Vec::new();
    loop {
        while let Ok(d) = reports.try_recv() {
            done.push(d);
        }
        if !done.is_empty() {
            match store.record_attempts(&done, now_ms()).await {
                Ok(disabled) => {
                    for (webhook, reason) in disabled {
                        tracing::warn!(%webhook, %reason, "webhook endpoint disabled");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "webhook outbox: recording attempts failed"),
            }
            done.clear();
        }
        while inflight.try_join_next().is_some() {}
        let free = workers.saturating_sub(inflight.len());
        let mut claimed = 0;
        if free > 0 {
            match store
                .claim_due(now_ms(), lease_ms, u32::try_from(free).unwrap_or(1))
                .await
            {
                Ok(batch) => {
                    claimed = batch.len();
                    for c in batch {
                        let (hooks, report) = (hooks.clone(), report.clone());
                        inflight.spawn(async move {
                            let r = attempt(&hooks, &c).await;
                            let _ = report.send((c, r));
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "webhook outbox: claiming deliveries failed"),
            }
        }
        if claimed > 0 && claimed == free {
            continue;
        }
        // Sleep until something may be due: a commit, a finished attempt, or the next retry
        // (at least 1 s when nothing could be claimed, so blocked deliveries do not spin).
        let wait = match store.next_due().await {
            Ok(Some(at)) => {
                Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0).clamp(1000, 5000))
            }
            _ => Duration::from_secs(5),
        };
        tokio::select! {
            () = store.outbox_signal().notified() => {}
            Some(d) = reports.recv() => done.push(d),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One attempt of one claimed delivery: what to record.
async fn attempt(hooks: &Webhooks, c: &Claimed) -> Recorded {
    let now = now_ms();
    let Some(w) = c.webhook.as_ref().filter(|w| w.enabled) else {
        hooks.stats.failed.fetch_add(1, Ordering::Relaxed);
        return Recorded::Abandoned("endpoint disabled or deleted".into());
    };
    let body = hooks.body(&c.event);
    let ts = now / 1000;
    let mut secrets = vec![w.secret.as_str()];
    if let (Some(old), Some(until)) = (&w.old_secret, w.old_secret_until) {
        if until > now {
            secrets.push(old);
        }
    }
    let signature = signature::header(&secrets, &c.event.id, ts, &body);
    let started = Instant::now();
    let sent = match hooks.check_target(&w.url) {
        Err(e) => Err(e),
        Ok(()) => send(hooks, &w.url, &c.event.id, ts, &signature, body).await,
    };
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let attempts = c.delivery.attempts + 1;
    let retry = || match usize::try_from(attempts - 1)
        .ok()
        .and_then(|i| hooks.cfg.retry_schedule_secs.get(i))
    {
        Some(&secs) => Outcome::Retry(now_ms() + jittered(secs)),
        None => Outcome::Failed,
    };
    let (status, response, error, outcome) = match sent {
        Ok((code, text)) if (200..300).contains(&code) => {
            (Some(code), text, None, Outcome::Delivered)
        }
        Ok((410, text)) => (
            Some(410),
            text,
            Some("the receiver answered 410 Gone".to_string()),
            Outcome::Disable("the receiver answered 410 Gone".into()),
        ),
        Ok((code, text)) => (
            Some(code),
            text,
            Some(format!("the receiver answered {code}")),
            retry(),
        ),
        Err(e) => (None, None, Some(e), retry()),
    };
    let counter = match &outcome {
        Outcome::Delivered => &hooks.stats.delivered,
        Outcome::Retry(_) => &hooks.stats.retried,
        Outcome::Failed | Outcome::Disable(_) => &hooks.stats.failed,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    if outcome == Outcome::Failed {
        tracing::warn!(
            webhook = %w.id, delivery = %c.delivery.id, attempts,
            "webhook delivery failed after its last retry"
        );
    }
    Recorded::Attempted(Attempt {
        status: status.map(i64::from),
        latency_ms,
        response,
        error,
        outcome,
        disable_after_ms: i64::try_from(hooks.cfg.disable_after_hours.saturating_mul(3_600_000))
            .unwrap_or(i64::MAX),
    })
}

/// POST the body; the status and the start of the response body (at most
/// `max_response_bytes`), or why nothing was answered.
async fn send(
    hooks: &Webhooks,
    url: &str,
    id: &str,
    ts: i64,
    signature: &str,
    body: Vec<u8>,
) -> Result<(u16, Option<String>), String> {
    let resp = hooks
        .client
        .post(url)
        .timeout(Duration::from_secs(hooks.cfg.timeout_secs.max(1)))
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("Refract-Webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    let status = resp.status().as_u16();
    let cap = hooks.cfg.max_response_bytes;
    let mut kept = Vec::new();
    let mut resp = resp;
    // The response counts only up to the cap; the rest is not read.
    while kept.len() < cap {
        match tokio::time::timeout(
            Duration::from_secs(hooks.cfg.timeout_secs.max(1)),
            resp.chunk(),
        )
        .await
        {
            Ok(Ok(Some(chunk))) => {
                kept.extend_from_slice(&chunk[..chunk.len().min(cap - kept.len())])
            }
            _ => break,
        }
    }
    let text = (!kept.is_empty()).then(|| String::from_utf8_lossy(&kept).into_owned());
    Ok((status, text))
}

/// A send error in words (the whole chain: "refused (internal) address" sits at the bottom).
fn describe(e: reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// `secs` in milliseconds, ±20 % at random (retries of many endpoints do not arrive together).
fn jittered(secs: u64) -> i64 {
    let base = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
    let r = getrandom::u32().unwrap_or(u32::MAX / 2);
    let spread = base / 5;
    if spread == 0 {
        return base;
    }
    base - spread + i64::from(r) % (2 * spread + 1)
}

impl Webhooks {
    /// The body of an event: `{"type", "timestamp", "data"}`, `data` being the public object
    /// rendered from the snapshot taken when the change committed.
    pub(super) fn body(&self, e: &EventRecord) -> Vec<u8> {
        let raw: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
        let data = match e.kind.as_str() {
            "image.uploaded" | "image.updated" => serde_json::from_value(raw.clone())
                .map_or(raw, |r| crate::control::view::image(&r, &self.base)),
            "album.created" | "album.updated" => {
                serde_json::from_value(raw.clone()).map_or(raw, |a| crate::control::view::album(&a))
            }
            "avatar.updated" => serde_json::from_value(raw.clone())
                .map_or(raw, |a| crate::control::view::avatar(&a)),
            _ => raw,
        };
        json!({
            "type": e.kind,
            "timestamp": crate::control::view::rfc3339(e.created_at),
            "data": data,
        })
        .to_string()
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::jittered;

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..1000 {
            let j = jittered(300);
            assert!((240_000..=360_000).contains(&j), "{j}");
        }
        assert_eq!(jittered(0), 0);
    }
}
