//! Rate limits: governor GCRA limiters per client (an API key's id, or `ip:<addr>` for
//! unauthenticated calls), one per window (minute, hour, day), plus uploads per minute and an
//! optional per-IP limit on `/img`. The tightest window is reported as `X-RateLimit-*`.
//!
//! A window of `n` per `period` allows a burst of `n` and refills one every `period / n`, so
//! `Remaining` is what may be sent right now and `Reset` is when the window is full again.
//! With `redis_url`, the windows live in Redis instead, shared by every node of a cluster: the
//! same GCRA, run by one Lua script that checks every window of a request atomically and spends
//! from them only when all allow it; keys expire when their window is full again. Without it,
//! each node counts alone (the effective limit is then N× with N nodes).
//!
//! Invariant: the only module that imports `governor` or `redis`; 0 in config means "no limit".

use crate::access::auth::RateOverride;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `[ratelimit]` config section (PicHub's defaults). 0 = unlimited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    pub per_minute: u32,
    pub per_hour: u32,
    pub per_day: u32,
    pub uploads_per_minute: u32,
    /// Requests per minute per client IP on `/img` (0 = off, the default).
    pub img_per_minute: u32,
    /// Redis (`redis://host:6379/0`) holding the windows for every node; unset: per node.
    pub redis_url: Option<crate::util::secret::Secret>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_minute: 60,
            per_hour: 1000,
            per_day: 10_000,
            uploads_per_minute: 10,
            img_per_minute: 0,
            redis_url: None,
        }
    }
}

/// Which budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Api,
    Upload,
    Img,
}

/// One window's state after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub limit: u32,
    pub remaining: u32,
    /// Unix seconds when the window is full again.
    pub reset: u64,
}

/// The result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed; the tightest window (none when unlimited).
    Allowed(Option<Status>),
    /// Refused by this window; retry after this many seconds.
    Denied { status: Status, retry_after: u64 },
}

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

struct Window {
    lim: Keyed,
    limit: u32,
    period: Duration,
}

type SetKey = (Bucket, [u32; 3]);

/// All limiters of a server.
pub struct RateLimits {
    cfg: RateLimitConfig,
    sets: Mutex<HashMap<SetKey, Arc<Vec<Window>>>>,
    /// The cluster's shared windows (`redis_url`).
    shared: Option<redis::aio::ConnectionManager>,
}

/// GCRA over several windows in one atomic step. KEYS: one per window; ARGV: now (ms), then
/// per window its interval (ms between two requests at the steady rate) and its limit (the
/// burst). Every window is checked before any is spent. Returns `{1, limit, remaining, reset_ms}`
/// for the tightest window when allowed, `{0, limit, 0, reset_ms, retry_ms}` for the refusing one.
const GCRA: &str = r"
local now = tonumber(ARGV[1])
local tats = {}
for i = 1, #KEYS do
  local t = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + t
  local allow_at = new_tat - t * limit
  if allow_at > now then
    return {0, limit, 0, tat + 0, allow_at - now}
  end
  tats[i] = new_tat
end
local best = nil
for i = 1, #KEYS do
  local t = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  redis.call('SET', KEYS[i], tats[i], 'PX', math.max(1, tats[i] - now))
  local remaining = math.floor((now + t * limit - tats[i]) / t)
  if best == nil or remaining < best[3] then best = {1, limit, remaining, tats[i]} end
end
return best
";

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

impl RateLimits {
    /// The limiters; with `redis_url`, connected lazily (a Redis that is down at start is
    /// retried on each request).
    pub fn new(cfg: &RateLimitConfig) -> Result<Self, String> {
        let shared = match &cfg.redis_url {
            Some(url) => {
                let client = redis::Client::open(url.0.as_str())
                    .map_err(|e| format!("ratelimit.redis_url: {e}"))?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(500)))
                    .set_response_timeout(Some(Duration::from_millis(500)))
                    .set_number_of_retries(1);
                Some(
                    redis::aio::ConnectionManager::new_lazy_with_config(client, config)
                        .map_err(|e| format!("ratelimit.redis_url: {e}"))?,
                )
            }
            None => None,
        };
        Ok(Self {
            cfg: cfg.clone(),
            sets: Mutex::new(HashMap::new()),
            shared,
        })
    }

    /// Spend one request of `client` from `bucket`: in Redis when the windows are shared (a
    /// Redis that does not answer lets the request through, logged: availability over the
    /// limit), else here.
    pub async fn check(&self, bucket: Bucket, client: &str, over: &RateOverride) -> Outcome {
        let Some(conn) = &self.shared else {
            return self.check_here(bucket, client, over);
        };
        let limits = self.limits(bucket, over);
        if limits.iter().all(|&n| n == 0) {
            return Outcome::Allowed(None);
        }
        let now_ms = crate::util::clock::now_ms();
        let script = redis::Script::new(GCRA);
        let mut inv = script.prepare_invoke();
        inv.arg(now_ms);
        for (&n, period) in limits.iter().zip([MINUTE, HOUR, DAY]) {
            if n == 0 {
                continue;
            }
            let interval =
                (i64::try_from(period.as_millis()).unwrap_or(i64::MAX) / i64::from(n)).max(1);
            inv.key(format!(
                "refract:rl:{bucket:?}:{}:{n}:{client}",
                period.as_secs()
            ));
            inv.arg(interval).arg(n);
        }
        let mut conn = conn.clone();
        let r: Result<Vec<i64>, _> = inv.invoke_async(&mut conn).await;
        let to_secs = |ms: i64| u64::try_from((ms + 999) / 1000).unwrap_or(0);
        match r.as_deref() {
            Ok([1, limit, remaining, reset]) => Outcome::Allowed(Some(Status {
                limit: u32::try_from(*limit).unwrap_or(u32::MAX),
                remaining: u32::try_from((*remaining).max(0)).unwrap_or(0),
                reset: to_secs(*reset),
            })),
            Ok([0, limit, _, reset, retry]) => Outcome::Denied {
                status: Status {
                    limit: u32::try_from(*limit).unwrap_or(u32::MAX),
                    remaining: 0,
                    reset: to_secs(*reset),
                },
                retry_after: to_secs(*retry).max(1),
            },
            other => {
                tracing::warn!(answer = ?other.map_err(ToString::to_string), "shared rate limit unavailable; allowing");
                Outcome::Allowed(None)
            }
        }
    }

    fn limits(&self, bucket: Bucket, over: &RateOverride) -> [u32; 3] {
        let c = &self.cfg;
        match bucket {
            Bucket::Api => [
                over.per_minute.unwrap_or(c.per_minute),
                over.per_hour.unwrap_or(c.per_hour),
                over.per_day.unwrap_or(c.per_day),
            ],
            Bucket::Upload => [
                over.uploads_per_minute.unwrap_or(c.uploads_per_minute),
                0,
                0,
            ],
            Bucket::Img => [c.img_per_minute, 0, 0],
        }
    }

    /// Spend one request of `client` from `bucket`, counted in this process.
    fn check_here(&self, bucket: Bucket, client: &str, over: &RateOverride) -> Outcome {
        let limits = self.limits(bucket, over);
        let Some(windows) = self.windows((bucket, limits)) else {
            return Outcome::Allowed(None);
        };
        let key = client.to_string();
        let now = crate::util::clock::now_secs();
        let mut tightest: Option<Status> = None;
        for w in windows.iter() {
            let refill = w.period / w.limit.max(1);
            match w.lim.check_key(&key) {
                Ok(snap) => {
                    let remaining = snap.remaining_burst_capacity();
                    let missing = w.limit.saturating_sub(remaining);
                    let s = Status {
                        limit: w.limit,
                        remaining,
                        reset: now + ceil_secs(refill * missing),
                    };
                    if tightest.is_none_or(|t| s.remaining < t.remaining) {
                        tightest = Some(s);
                    }
                }
                Err(not_until) => {
                    let wait = not_until.wait_time_from(w.lim.clock().now());
                    let retry_after = ceil_secs(wait).max(1);
                    return Outcome::Denied {
                        status: Status {
                            limit: w.limit,
                            remaining: 0,
                            reset: now + ceil_secs(refill * w.limit),
                        },
                        retry_after,
                    };
                }
            }
        }
        Outcome::Allowed(tightest)
    }

    fn windows(&self, key: SetKey) -> Option<Arc<Vec<Window>>> {
        if key.1.iter().all(|&n| n == 0) {
            return None;
        }
        let mut sets = self.sets.lock().ok()?;
        let set = sets.entry(key).or_insert_with(|| {
            let periods = [MINUTE, HOUR, DAY];
            Arc::new(
                key.1
                    .iter()
                    .zip(periods)
                    .filter_map(|(&n, period)| {
                        let burst = NonZeroU32::new(n)?;
                        let quota = Quota::with_period(period / n)?.allow_burst(burst);
                        Some(Window {
                            lim: RateLimiter::keyed(quota)
                                .with_middleware::<StateInformationMiddleware>(),
                            limit: n,
                            period,
                        })
                    })
                    .collect(),
            )
        });
        Some(set.clone())
    }

    /// Drop the state of clients whose windows are full again (bounded memory).
    pub fn prune(&self) {
        if let Ok(sets) = self.sets.lock() {
            for set in sets.values() {
                for w in set.iter() {
                    w.lim.retain_recent();
                }
            }
        }
    }
}

/// Merge two outcomes: a denial wins, else the tighter window.
pub fn merge(a: Outcome, b: Outcome) -> Outcome {
    match (a, b) {
        (d @ Outcome::Denied { .. }, _) | (_, d @ Outcome::Denied { .. }) => d,
        (Outcome::Allowed(Some(x)), Outcome::Allowed(Some(y))) => {
            Outcome::Allowed(Some(if y.remaining < x.remaining { y } else { x }))
        }
        (Outcome::Allowed(x), Outcome::Allowed(y)) => Outcome::Allowed(x.or(y)),
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_down_then_refuses() {
        let r = RateLimits::new(&RateLimitConfig {
            per_minute: 3,
            ..RateLimitConfig::default()
        })
        .unwrap();
        let none = RateOverride::default();
        let mut seen = Vec::new();
        for _ in 0..3 {
            match r.check_here(Bucket::Api, "k1", &none) {
                Outcome::Allowed(Some(s)) => seen.push((s.limit, s.remaining)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen, vec![(3, 2), (3, 1), (3, 0)]);
        match r.check_here(Bucket::Api, "k1", &none) {
            Outcome::Denied {
                status,
                retry_after,
            } => {
                assert_eq!(status.limit, 3);
                assert!((1..=20).contains(&retry_after));
            }
            other => panic!("{other:?}"),
        }
        // Another client has its own budget.
        assert!(matches!(
            r.check_here(Bucket::Api, "k2", &none),
            Outcome::Allowed(Some(_))
        ));
        // A per-key override replaces the default.
        let big = RateOverride {
            per_minute: Some(100),
            ..RateOverride::default()
        };
        assert!(matches!(
            r.check_here(Bucket::Api, "k1", &big),
            Outcome::Allowed(Some(Status { limit: 100, .. }))
        ));
        // img is off by default.
        assert_eq!(
            r.check_here(Bucket::Img, "ip", &none),
            Outcome::Allowed(None)
        );
    }
}
