//! Variant lookup, one path: memory tier → persistent tier → (AVIF budget: a pending background
//! encode, or one started now) → transform on the CPU pool. `plan` decides the output before
//! the 304 check (it may read the source, at most once); `fetch` produces the bytes and says
//! which tier they came from.
//!
//! Invariants: the source is read at most once per request and only on a miss; each tier is
//! asked at most once per request; a variant is made once per key however many requests wait
//! (the memory tier coalesces), and lands in the persistent tier in the background.

use super::key::CacheKey;
use super::Delivery;
use crate::error::Error;
use crate::pipeline::output::OutputSpec;
use crate::pipeline::transform::Transform;
use crate::pipeline::{self, EncodeConfig, Encoded, Job, PixelLimits, Probe};
use crate::storage::origin::Stat;
use crate::util::workers::Ticket;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// `max-age` of an answer given while its AVIF is encoded in the background.
pub const AVIF_PENDING_MAX_AGE: u32 = 60;

/// One source version and the transform asked of it.
#[derive(Clone, Copy)]
pub struct Wanted<'a> {
    pub key: &'a str,
    pub stat: &'a Stat,
    pub transform: &'a Transform,
}

/// Where the bytes of a response came from (`X-Cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Memory,
    Persistent,
    Transformed,
}

impl Tier {
    pub fn x_cache(self) -> &'static str {
        match self {
            Self::Memory => "HIT",
            Self::Persistent => "HIT-PERSISTENT",
            Self::Transformed => "MISS",
        }
    }
}

/// The output decided for a request, and what deciding it already fetched.
pub struct Plan<'a> {
    pub spec: OutputSpec,
    pub key: CacheKey,
    /// An interim answer (WebP or the source's family) while the AVIF is encoded in the
    /// background: cached briefly.
    pub interim: bool,
    /// The source (and its probe), when deciding read it.
    source: Option<(Bytes, Probe)>,
    /// Found in the persistent tier while deciding.
    stored: Option<Encoded>,
    /// The persistent tier was asked already (and had nothing).
    tier_checked: bool,
    /// The CPU queue place taken before the source was read.
    ticket: Option<Ticket<'a>>,
}

impl Delivery {
    fn key_for(&self, w: &Wanted<'_>, spec: &OutputSpec) -> CacheKey {
        CacheKey::variant(
            w.key,
            &w.stat.version,
            &w.transform.canonical(),
            &spec.key_part(),
            &self.encode_fingerprint,
        )
    }

    /// Decide the output. Only an AVIF under the time budget needs more than arithmetic: when
    /// it is in no tier and its encode is estimated over `limits.avif_budget_ms`, it is started
    /// in the background (one job per key) and the answer now is its fallback.
    pub async fn plan<'a>(
        self: &'a Arc<Self>,
        w: &Wanted<'_>,
        spec: OutputSpec,
    ) -> Result<Plan<'a>, Error> {
        let key = self.key_for(w, &spec);
        let plain = Plan {
            spec,
            key,
            interim: false,
            source: None,
            stored: None,
            tier_checked: false,
            ticket: None,
        };
        if !spec.is_avif() || self.limits.avif_budget_ms == 0 || self.cache.contains(&key) {
            return Ok(plain);
        }
        let fallback = spec.without_avif(self.enabled);
        let interim = |source: Option<(Bytes, Probe)>, spec: OutputSpec, ticket| Plan {
            key: self.key_for(w, &spec),
            spec,
            interim: true,
            source,
            stored: None,
            tier_checked: false,
            ticket,
        };
        // Already being encoded: the fallback, without reading the source.
        if let Some(f) = fallback.filter(|_| self.pending(&key)) {
            return Ok(interim(None, f, None));
        }
        if let Some(p) = &self.persist {
            if let Some(enc) = p.get(&key).await {
                return Ok(Plan {
                    stored: Some(enc),
                    ..plain
                });
            }
        }
        // A queue place before the source is read, as for any transform.
        let ticket = self.cpu.admit()?;
        let bytes = self.read_source(w).await?;
        // Not an image: the transform reports it (as it would have without a budget).
        let Ok(probe) = pipeline::probe::probe(&bytes) else {
            return Ok(Plan {
                ticket: Some(ticket),
                ..plain
            });
        };
        let (ow, oh) = pipeline::output_size(&probe, w.transform);
        let cost = pipeline::encode::avif_cost_ms(
            u64::from(ow) * u64::from(oh),
            self.encode.avif_speed,
            self.encode.avif_encoder,
        );
        // With no cache tier the background result would have nowhere to go: encode now.
        let kept = self.cache.enabled() || self.persist.is_some();
        match fallback {
            Some(fallback) if kept && cost > self.limits.avif_budget_ms => {
                self.start_background(w, spec, key, (bytes.clone(), probe.clone()));
                Ok(interim(Some((bytes, probe)), fallback, Some(ticket)))
            }
            _ => Ok(Plan {
                source: Some((bytes, probe)),
                tier_checked: true,
                ticket: Some(ticket),
                ..plain
            }),
        }
    }

    /// The bytes of a planned variant: from memory, else the persistent tier, else a transform
    /// (then persisted in the background); and the tier they came from.
    pub async fn fetch(
        self: &Arc<Self>,
        w: &Wanted<'_>,
        plan: Plan<'_>,
    ) -> Result<(Arc<Encoded>, Tier), Error> {
        let key = plan.key;
        let (enc, made) = self
            .cache
            .get_or_make(key, self.fill(w, plan, self.encode.clone()))
            .await
            .map_err(|e| (*e).clone())?;
        Ok((enc, made.unwrap_or(Tier::Memory)))
    }

    /// A memory-tier fill: what the plan found, else the persistent tier (unless asked
    /// already), else a transform.
    async fn fill(
        self: &Arc<Self>,
        w: &Wanted<'_>,
        plan: Plan<'_>,
        encode: Arc<EncodeConfig>,
    ) -> Result<(Encoded, Tier), Error> {
        if let Some(enc) = plan.stored {
            return Ok((enc, Tier::Persistent));
        }
        if !plan.tier_checked {
            if let Some(p) = &self.persist {
                if let Some(enc) = p.get(&plan.key).await {
                    return Ok((enc, Tier::Persistent));
                }
            }
        }
        let enc = self
            .render(w, plan.spec, plan.source, plan.ticket, encode)
            .await?;
        if self.persist.is_some() {
            let (d, enc, key) = (self.clone(), enc.clone(), plan.key);
            tokio::spawn(async move {
                if let Some(p) = &d.persist {
                    p.put(&key, &enc).await;
                }
            });
        }
        Ok((enc, Tier::Transformed))
    }

    /// During an origin outage: the variant from a tier, if either has it (no transform: the
    /// source cannot be read). `spec` as negotiated; the AVIF budget does not apply.
    pub async fn stored(
        &self,
        w: &Wanted<'_>,
        spec: OutputSpec,
    ) -> Option<(Arc<Encoded>, CacheKey)> {
        let key = self.key_for(w, &spec);
        if let Some(enc) = self.cache.get(&key).await {
            return Some((enc, key));
        }
        let enc = self.persist.as_ref()?.get(&key).await?;
        let enc = Arc::new(enc);
        self.cache.insert(key, enc.clone()).await;
        Some((enc, key))
    }

    fn pending(&self, key: &CacheKey) -> bool {
        self.background_jobs
            .lock()
            .is_ok_and(|jobs| jobs.contains(key))
    }

    /// Encode `spec` (an AVIF) in the background into both tiers, once per key.
    fn start_background(
        self: &Arc<Self>,
        w: &Wanted<'_>,
        spec: OutputSpec,
        key: CacheKey,
        source: (Bytes, Probe),
    ) {
        let fresh = self
            .background_jobs
            .lock()
            .map(|mut jobs| jobs.insert(key))
            .unwrap_or(false);
        if !fresh {
            return;
        }
        let d = self.clone();
        let (k, stat, t) = (w.key.to_string(), w.stat.clone(), w.transform.clone());
        tokio::spawn(async move {
            let w = Wanted {
                key: &k,
                stat: &stat,
                transform: &t,
            };
            let plan = Plan {
                spec,
                key,
                interim: false,
                source: Some(source),
                stored: None,
                tier_checked: true,
                ticket: None,
            };
            let make = d.fill(&w, plan, d.encode_background.clone());
            if let Err(e) = d.cache.get_or_make(key, make).await {
                tracing::warn!(error = %e, key = k, "background AVIF encode failed");
            }
            if let Ok(mut jobs) = d.background_jobs.lock() {
                jobs.remove(&key);
            }
        });
    }

    async fn read_source(&self, w: &Wanted<'_>) -> Result<Bytes, Error> {
        Ok(self
            .origin
            .read(w.key, w.stat.version.len, self.limits.max_source_bytes)
            .await?)
    }

    /// A transform: a place in the CPU queue, the source (unless given), then the pipeline on
    /// the pool.
    async fn render(
        &self,
        w: &Wanted<'_>,
        spec: OutputSpec,
        source: Option<(Bytes, Probe)>,
        ticket: Option<Ticket<'_>>,
        encode: Arc<EncodeConfig>,
    ) -> Result<Encoded, Error> {
        let deadline =
            std::time::Instant::now() + Duration::from_millis(self.limits.request_timeout_ms);
        // A place in the CPU queue first: a full queue is refused before the source is read,
        // and sources held in memory are bounded by the queue.
        let ticket = match ticket {
            Some(t) => t,
            None => self.cpu.admit()?,
        };
        let (bytes, probe) = match source {
            Some((b, p)) => (b, Some(p)),
            None => (self.read_source(w).await?, None),
        };
        let limits = PixelLimits::from(&self.limits);
        let t = w.transform.clone();
        let mark = t.watermark.as_deref().and_then(|n| self.watermarks.get(n));
        let decoded = self.decoded.clone();
        let source = CacheKey::original(w.key, &w.stat.version).hash;
        self.transforms.fetch_add(1, Ordering::Relaxed);
        let result = ticket
            .run(move || {
                let job = Job {
                    transform: &t,
                    output: spec,
                    encode: &encode,
                    limits,
                    deadline: Some(deadline),
                    watermark: mark.as_deref(),
                    memo: Some(pipeline::Memo {
                        cache: decoded.sources(),
                        source,
                        share_width: decoded.share_width,
                    }),
                };
                match &probe {
                    Some(p) => pipeline::run_probed(&bytes, p, &job),
                    None => pipeline::run(&bytes, &job),
                }
            })
            .await?;
        result?.ok_or_else(|| {
            Error::NotAcceptable("no acceptable output format for this image".into())
        })
    }
}
