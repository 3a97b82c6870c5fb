//! The delivery plane: `GET /img/{key}` and what it needs above the pixels: URL signing,
//! presets, format negotiation, the cache key and the variant tiers. `Delivery` is its context,
//! built once (in `wiring`) from the parts it uses.

pub mod cdn_cgi;
pub mod decoded;
pub mod img;
pub mod key;
pub mod memo;
pub mod negotiate;
pub mod persist;
pub mod policy;
pub mod presets;
pub mod signing;
pub mod variants;
pub mod watermark;

use crate::access::auth::Auth;
use crate::access::ratelimit::RateLimits;
use crate::access::visibility::AccessIndex;
use crate::pipeline::output::Enabled;
use crate::pipeline::transform::ParamConfig;
use crate::pipeline::{EncodeConfig, Encoded};
use crate::storage::origin::Origin;
use crate::util::cache::VariantCache;
use crate::util::limits::LimitsConfig;
use crate::util::workers::CpuPool;
use key::CacheKey;
use persist::{CacheConfig, Persist};
use policy::{DeliveryConfig, Negotiate};
use presets::Presets;
use signing::{SecurityConfig, Signer};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watermark::Watermarks;

/// What the delivery plane is built from.
pub struct Parts {
    pub origin: Arc<Origin>,
    pub persist: Option<Persist>,
    pub cpu: Arc<CpuPool>,
    pub visibility: Arc<AccessIndex>,
    pub auth: Arc<Auth>,
    pub ratelimits: Arc<RateLimits>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub limits: LimitsConfig,
    pub cache: CacheConfig,
    pub formats: EncodeConfig,
    pub security: SecurityConfig,
    pub presets: Presets,
    pub params: ParamConfig,
    /// The `[delivery]` section: negotiation mode and caching headers.
    pub policy: DeliveryConfig,
    /// `storage.base_url` when storage is an HTTP origin: absolute `/cdn-cgi/image/` sources
    /// must be under it.
    pub http_base: Option<String>,
    /// The `[watermarks]`, loaded.
    pub watermarks: Watermarks,
    /// `[access] fallback`.
    pub fallback: crate::access::visibility::Fallback,
    /// `ratelimit.img_per_minute > 0`.
    pub img_rate_limited: bool,
}

/// The delivery plane's context.
pub struct Delivery {
    origin: Arc<Origin>,
    cache: VariantCache<CacheKey, Encoded>,
    persist: Option<Persist>,
    cpu: Arc<CpuPool>,
    visibility: Arc<AccessIndex>,
    auth: Arc<Auth>,
    ratelimits: Arc<RateLimits>,
    trusted_proxies: Vec<ipnet::IpNet>,
    limits: LimitsConfig,
    signer: Signer,
    presets: Presets,
    presets_only: bool,
    params: ParamConfig,
    enabled: Enabled,
    /// Encoder settings of the request path and of background AVIF encodes.
    encode: Arc<EncodeConfig>,
    encode_background: Arc<EncodeConfig>,
    encode_fingerprint: String,
    /// Variants being encoded in the background (one job per key).
    background_jobs: Mutex<HashSet<CacheKey>>,
    policy: DeliveryConfig,
    http_base: Option<String>,
    watermarks: Watermarks,
    /// Placeholders for inaccessible images (`[access] fallback = "image"`): PNG, WebP, JPEG.
    placeholders: Vec<Encoded>,
    img_rate_limited: bool,
    /// Pipeline runs (cache fills), counted when a transform starts on a worker.
    transforms: AtomicU64,
    /// Decoded sources kept for seconds (`[cache.decoded]`).
    decoded: Arc<decoded::Decoded>,
    /// What recent request lines resolved to (a repeated request skips to the memory tier).
    memo: memo::Memo,
}

/// A 64×64 light grey image in PNG, WebP and JPEG (made once, at start).
fn placeholders() -> Vec<Encoded> {
    use crate::pipeline::format::ImageFormat;
    let px = crate::pipeline::Pixels {
        width: 64,
        height: 64,
        channels: 3,
        data: vec![0xE5; 64 * 64 * 3],
    };
    let cfg = EncodeConfig::default();
    [ImageFormat::Png, ImageFormat::Webp, ImageFormat::Jpeg]
        .into_iter()
        .filter_map(|f| {
            let bytes = crate::pipeline::encode::encode(&px, f, 80, &cfg).ok()?;
            Some(Encoded {
                bytes: bytes.into(),
                format: f,
                width: 64,
                height: 64,
            })
        })
        .collect()
}

/// What `/metrics` reports of the delivery plane.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub transforms: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Cache hits answered from the request memo (a part of `cache_hits`).
    pub memo_hits: u64,
    /// Decoded-source cache: (hits, misses).
    pub decoded: (u64, u64),
    pub cpu_waiting: usize,
    pub cpu_running: usize,
    pub persistent_bytes: u64,
}

impl Delivery {
    pub fn new(p: Parts) -> Self {
        let decoded = decoded::Decoded::new(&p.cache.decoded);
        Self {
            origin: p.origin,
            cache: VariantCache::new(
                p.cache.memory_bytes,
                Duration::from_secs(p.cache.ttl_secs),
                |e: &Encoded| e.bytes.len(),
            ),
            persist: p.persist,
            cpu: p.cpu,
            visibility: p.visibility,
            auth: p.auth,
            ratelimits: p.ratelimits,
            trusted_proxies: p.trusted_proxies,
            limits: p.limits,
            signer: Signer::new(&p.security),
            presets: p.presets,
            presets_only: p.security.presets_only,
            params: p.params,
            enabled: Enabled {
                avif: p.formats.avif,
                webp: p.formats.webp,
            },
            // The share width picks the decode scale of every output up to it, and the pipeline's
            // revision its other choices: both change bytes.
            encode_fingerprint: format!(
                "{}{}sw{}pr{}",
                p.formats.fingerprint(),
                p.watermarks.fingerprint(),
                decoded.share_width,
                crate::pipeline::REVISION
            ),
            encode_background: Arc::new(p.formats.for_background()),
            encode: Arc::new(p.formats),
            background_jobs: Mutex::default(),
            policy: p.policy,
            http_base: p.http_base,
            watermarks: p.watermarks,
            placeholders: match p.fallback {
                crate::access::visibility::Fallback::Image => placeholders(),
                crate::access::visibility::Fallback::Error => Vec::new(),
            },
            img_rate_limited: p.img_rate_limited,
            transforms: AtomicU64::new(0),
            decoded,
            memo: memo::Memo::default(),
        }
    }

    /// Drop the decoded sources whose time is up (the cache is otherwise maintained only when
    /// used, so an idle server would keep them).
    pub fn expire_decoded(&self) {
        self.decoded.expire();
    }

    /// The placeholder for an inaccessible image, when `[access] fallback = "image"`: in the
    /// `fm` asked for (PNG, WebP or JPEG), else WebP when `Accept` names it, else PNG.
    pub fn placeholder(&self, query: Option<&str>, accept: Option<&str>) -> Option<&Encoded> {
        use crate::pipeline::format::ImageFormat;
        if self.placeholders.is_empty() {
            return None;
        }
        let q = crate::util::query::Query::parse(query.unwrap_or(""));
        let fm = q.get("fm").or(q.get("format"));
        let want = match fm.and_then(ImageFormat::from_name) {
            Some(f) => f,
            None if accept.is_some_and(|a| {
                negotiate::Accept::parse(a).explicit_quality("image/webp") > 0.0
            }) =>
            {
                ImageFormat::Webp
            }
            None => ImageFormat::Png,
        };
        self.placeholders
            .iter()
            .find(|e| e.format == want)
            .or_else(|| self.placeholders.first())
    }

    pub(crate) fn has_placeholders(&self) -> bool {
        !self.placeholders.is_empty()
    }

    /// Whether an answer of `spec` carries `Vary: Accept`: only a negotiated one, and only
    /// when negotiation reads `Accept`.
    pub fn varies(&self, spec: &crate::pipeline::output::OutputSpec) -> bool {
        self.policy.negotiate == Negotiate::Vary && spec.varies()
    }

    /// Counters and gauges for `/metrics`.
    pub fn stats(&self) -> Stats {
        let (cache_hits, cache_misses) = self.cache.counters();
        Stats {
            transforms: self.transforms.load(Ordering::Relaxed),
            cache_hits,
            cache_misses,
            memo_hits: self.memo.hits(),
            decoded: self.decoded.counters(),
            cpu_waiting: self.cpu.waiting(),
            cpu_running: self.cpu.running(),
            persistent_bytes: self.persist.as_ref().map_or(0, Persist::bytes),
        }
    }

    /// Remove every variant of the source at `storage_key` from the memory tier and the
    /// persistent tier (after a delete: not only unreachable, gone). Returns the number of
    /// persistent objects deleted.
    pub async fn purge_source(&self, storage_key: &str) -> usize {
        let tag = key::SourceTag::of(storage_key);
        self.cache
            .invalidate_if(move |k: &CacheKey| k.source == tag);
        match &self.persist {
            Some(p) => p.purge_source(tag).await,
            None => 0,
        }
    }

    /// Whether the storage answers within two seconds (`/ready`): a stat of a key that need not
    /// exist; `Err` says why not.
    pub async fn storage_ready(&self) -> Result<(), String> {
        let probe = self.origin.exists(".refract-ready-probe");
        match tokio::time::timeout(std::time::Duration::from_secs(2), probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("unavailable: {e}")),
            Err(_) => Err("no answer within 2 s".into()),
        }
    }

    /// Drop this node's memory-tier variants of the source at `storage_key` (another node
    /// changed or deleted it; the persistent tier is shared and was purged there).
    pub fn forget_variants(&self, storage_key: &str) {
        let tag = key::SourceTag::of(storage_key);
        self.cache
            .invalidate_if(move |k: &CacheKey| k.source == tag);
    }

    /// Index the persistent tier's existing objects (run once, in the background, after start).
    pub async fn index_persistent_tier(&self) {
        if let Some(p) = &self.persist {
            p.index_existing().await;
        }
    }
}
