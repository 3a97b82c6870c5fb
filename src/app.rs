//! `App`: the state of one server, built once from `Config` (in `main`, and once per test server).
//!
//! Invariant: no process-global state; everything a request needs hangs off `App`.

use crate::access::auth::Auth;
use crate::access::ratelimit::RateLimits;
use crate::access::visibility::AccessIndex;
use crate::config::Config;
use crate::delivery::key::CacheKey;
use crate::delivery::persist::Persist;
use crate::delivery::signing::Signer;
use crate::pipeline::output::Enabled;
use crate::pipeline::transform::ParamConfig;
use crate::pipeline::EncodeConfig;
use crate::pipeline::Encoded;
use crate::storage::origin::Origin;
use crate::store::Store;
use crate::util::cache::VariantCache;
use crate::util::workers::CpuPool;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Counters exposed at `/metrics`.
#[derive(Default)]
pub struct Metrics {
    /// Pipeline runs (cache fills), counted when a transform starts on a worker.
    pub transforms: AtomicU64,
    /// Requests served.
    pub requests: AtomicU64,
}

/// Everything a request needs.
pub struct App {
    pub config: Config,
    pub params: ParamConfig,
    pub enabled: Enabled,
    pub encode_fingerprint: String,
    pub origin: Origin,
    pub cache: VariantCache<CacheKey, Encoded>,
    /// The persistent variant tier (`None` when off).
    pub persist: Option<Persist>,
    /// Encoder settings of the request path and of background AVIF encodes.
    pub encode: Arc<EncodeConfig>,
    pub encode_background: Arc<EncodeConfig>,
    /// Variants being encoded in the background (one job per key).
    pub background_jobs:
        std::sync::Mutex<std::collections::HashSet<crate::delivery::key::CacheKey>>,
    pub cpu: CpuPool,
    pub metrics: Metrics,
    pub store: Store,
    pub auth: Auth,
    pub ratelimits: RateLimits,
    pub access: AccessIndex,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub signer: Signer,
}

impl App {
    /// Build the state; fails when storage or the database cannot be set up.
    pub async fn new(config: Config) -> Result<Self, String> {
        let images = config.server.data_dir.join("images");
        let origin = Origin::new(&config.storage, &images).map_err(|e| format!("storage: {e}"))?;
        let store = match &config.database.url {
            Some(url) => Store::open(&url.0).await,
            None => Store::open_sqlite(&config.server.data_dir.join("refract.db")).await,
        }
        .map_err(|e| format!("database: {e}"))?;
        let access = AccessIndex::load(
            store
                .access_rules()
                .await
                .map_err(|e| format!("database: {e}"))?,
        );
        let persist = Persist::open(
            &config.cache.persistent,
            &config.storage,
            &config.server.data_dir,
        )
        .await
        .map_err(|e| format!("cache.persistent: {e}"))?;
        let cpu = CpuPool::new(
            config.workers(),
            config.limits.queue_depth,
            Duration::from_millis(config.limits.queue_timeout_ms),
        );
        Ok(Self {
            params: config.params(),
            enabled: Enabled {
                avif: config.formats.avif,
                webp: config.formats.webp,
            },
            encode_fingerprint: config.formats.fingerprint(),
            cache: VariantCache::new(
                config.cache.memory_bytes,
                Duration::from_secs(config.cache.ttl_secs),
                |e: &Encoded| e.bytes.len(),
            ),
            persist,
            encode: Arc::new(config.formats.clone()),
            encode_background: Arc::new(config.formats.for_background()),
            background_jobs: std::sync::Mutex::default(),
            origin,
            cpu,
            metrics: Metrics::default(),
            store,
            auth: Auth::new(&config.auth),
            ratelimits: RateLimits::new(&config.ratelimit),
            access,
            trusted_proxies: config.trusted_proxies()?,
            signer: Signer::new(&config.security),
            config,
        })
    }
}

/// Work while the server runs: index the persistent tier once, then periodically delete
/// expired images and forget idle rate-limit state.
pub async fn background(app: Arc<App>) {
    if let Some(p) = &app.persist {
        p.index_existing().await;
    }
    let every = Duration::from_secs(app.config.expiry.sweep_interval.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match crate::library::purge_expired(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired images deleted"),
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
        app.ratelimits.prune();
    }
}
