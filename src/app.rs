//! `App`: the state of one server, built once from `Config` (in `main`, and once per test server).
//!
//! Invariant: no process-global state; everything a request needs hangs off `App`.

use crate::cache::VariantCache;
use crate::config::Config;
use crate::negotiate::Enabled;
use crate::origin::{Origin, OriginError};
use crate::transform::ParamConfig;
use crate::workers::CpuPool;
use std::sync::atomic::AtomicU64;
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
    pub cache: VariantCache,
    pub cpu: CpuPool,
    pub metrics: Metrics,
}

impl App {
    /// Build the state; fails when storage cannot be set up.
    pub fn new(config: Config) -> Result<Self, OriginError> {
        let images = config.server.data_dir.join("images");
        let origin = Origin::new(&config.storage, &images)?;
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
            cache: VariantCache::new(&config.cache),
            origin,
            cpu,
            metrics: Metrics::default(),
            config,
        })
    }
}
