//! Wiring: the one place where the server's parts are built from `Config`, once (in `run`,
//! and once per test server), and handed by type to the contexts that use them: the delivery
//! plane (`Delivery`), the control plane (`Control`, with its `Library`), and the route table
//! over both. Also the background loop (persistent-tier index, expiry sweep, rate-limit pruning).
//!
//! Invariant: no process-global state; nothing else builds a shared part.

use crate::access::auth::Auth;
use crate::access::ratelimit::RateLimits;
use crate::access::visibility::AccessIndex;
use crate::config::Config;
use crate::control::{self, Control, RandomParts};
use crate::delivery::persist::Persist;
use crate::delivery::signing::Signer;
use crate::delivery::{self, Delivery};
use crate::library::{Library, OnRemoved};
use crate::pipeline::output::Enabled;
use crate::pipeline::PixelLimits;
use crate::routes::Routes;
use crate::storage::origin::Origin;
use crate::store::Store;
use crate::util::workers::CpuPool;
use std::sync::Arc;
use std::time::Duration;

/// A built server: its route table, and what runs beside it.
pub struct Built {
    pub routes: Arc<Routes>,
    pub delivery: Arc<Delivery>,
    pub library: Arc<Library>,
    pub ratelimits: Arc<RateLimits>,
    /// `expiry.sweep_interval`.
    pub sweep_every: Duration,
    pub cpu: Arc<CpuPool>,
    pub store: Arc<Store>,
    pub webhooks: Arc<control::webhooks::Webhooks>,
    /// `audit.retention_days`, in milliseconds.
    pub audit_retention_ms: i64,
    pub indexer: Arc<crate::library::index::Indexer>,
    /// This process among the nodes sharing the database (leases, announcements).
    pub node: String,
    /// The PostgreSQL URL the change listener follows (`None` on SQLite: one node).
    pub listen_url: Option<String>,
    /// Changes made here, for the announcer (PostgreSQL only).
    pub announced: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>,
    pub visibility: Arc<AccessIndex>,
    pub auth: Arc<Auth>,
}

/// This node's name among the nodes: kept in `<data_dir>/node-id` (host name and a random
/// part, made at first start), so a restarted node takes its own leases back at once while
/// another node waits for them to expire. Each node has its own data folder.
fn node_id(data_dir: &std::path::Path) -> String {
    let file = data_dir.join("node-id");
    if let Some(id) = std::fs::read_to_string(&file)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() <= 128)
    {
        return id;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut r = [0u8; 6];
    let _ = getrandom::fill(&mut r);
    let id = format!(
        "{}-{}",
        if host.is_empty() { "node" } else { &host },
        r.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let tmp = data_dir.join(".node-id.tmp");
    if std::fs::create_dir_all(data_dir).is_ok()
        && std::fs::write(&tmp, &id).is_ok()
        && std::fs::rename(&tmp, &file).is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
    id
}

/// Build every part; fails when storage or the database cannot be set up.
pub async fn build(config: &Config) -> Result<Built, String> {
    let images = config.server.data_dir.join("images");
    let origin =
        Arc::new(Origin::new(&config.storage, &images).map_err(|e| format!("storage: {e}"))?);
    let store = Arc::new(open_store(config).await?);
    let node = node_id(&config.server.data_dir);
    // On PostgreSQL other nodes may share the database: changes made here are announced.
    let (announce, announced) = if store.is_postgres() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let visibility = Arc::new(AccessIndex::load(
        store
            .access_rules()
            .await
            .map_err(|e| format!("database: {e}"))?,
        announce,
    ));
    let persist = Persist::open(
        &config.cache.persistent,
        &config.storage,
        &config.server.data_dir,
    )
    .await
    .map_err(|e| format!("cache.persistent: {e}"))?;
    let cpu = Arc::new(CpuPool::new(
        config.workers(),
        config.limits.queue_depth,
        Duration::from_millis(config.limits.queue_timeout_ms),
    ));
    let accounts = Arc::new(crate::access::accounts::Accounts::new(
        &config.accounts,
        crate::access::accounts::signing_key(&config.accounts, &config.server.data_dir)
            .map_err(|e| format!("accounts: {e}"))?,
        store.clone(),
    )?);
    accounts
        .bootstrap(&config.accounts)
        .await
        .map_err(|e| format!("accounts: {e}"))?;
    let auth = Arc::new(Auth::new(&config.auth, store.clone(), accounts.clone()));
    for t in store
        .tenants()
        .await
        .map_err(|e| format!("database: {e}"))?
    {
        auth.set_active(&t.id, t.active);
        auth.set_tenant_rate(
            &t.id,
            t.rate_limit
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok()),
        );
    }
    let ratelimits = Arc::new(RateLimits::new(&config.ratelimit)?);
    let trusted_proxies = config.trusted_proxies()?;
    let watermarks = crate::delivery::watermark::Watermarks::load(
        &origin,
        &config.watermarks,
        crate::pipeline::PixelLimits::from(&config.limits),
    )
    .await?;
    let delivery = Arc::new(Delivery::new(delivery::Parts {
        origin: origin.clone(),
        persist,
        cpu: cpu.clone(),
        visibility: visibility.clone(),
        auth: auth.clone(),
        ratelimits: ratelimits.clone(),
        trusted_proxies: trusted_proxies.clone(),
        limits: config.limits.clone(),
        cache: config.cache.clone(),
        formats: config.formats.clone(),
        security: config.security.clone(),
        presets: config.presets.clone(),
        params: config.params(),
        policy: config.delivery.clone(),
        watermarks,
        fallback: config.access.fallback,
        http_base: (config.storage.backend == crate::storage::origin::Backend::Http)
            .then(|| config.storage.base_url.clone())
            .flatten(),
        img_rate_limited: config.ratelimit.img_per_minute > 0,
    }));
    // A deleted source takes its variants with it, from both tiers.
    let purge = delivery.clone();
    let on_removed: OnRemoved = Arc::new(move |key: String| {
        let d = purge.clone();
        Box::pin(async move {
            let n = d.purge_source(&key).await;
            if n > 0 {
                tracing::debug!(key, variants = n, "variants purged");
            }
        })
    });
    let indexer = Arc::new(crate::library::index::Indexer::new(
        crate::library::index::Parts {
            cfg: config.library.clone(),
            store: store.clone(),
            origin: origin.clone(),
            cpu: cpu.clone(),
            pixel_limits: PixelLimits::from(&config.limits),
            keep_gps: config.metadata.keep_gps,
            max_source_bytes: config.limits.max_source_bytes,
            skip_prefixes: library_skips(config),
            watch_dirs: library_watch_dirs(config, &images),
            fs_root: (config.storage.backend == crate::storage::origin::Backend::Fs)
                .then(|| {
                    std::fs::canonicalize(
                        config
                            .storage
                            .root
                            .as_ref()
                            .map_or_else(|| images.clone(), std::path::PathBuf::from),
                    )
                    .ok()
                })
                .flatten(),
            on_removed: on_removed.clone(),
            node: node.clone(),
        },
    ));
    let library = Arc::new(Library::new(crate::library::Parts {
        store: store.clone(),
        origin: origin.clone(),
        visibility: visibility.clone(),
        cpu: cpu.clone(),
        pixel_limits: PixelLimits::from(&config.limits),
        metadata: config.metadata.clone(),
        quota: config.quota.clone(),
        on_removed,
    }));
    let webhooks = Arc::new(control::webhooks::Webhooks::new(
        config.webhooks.clone(),
        control::Base {
            root: config.server.public_url.as_deref().map_or_else(
                || format!("http://{}", config.server.listen),
                |u| u.trim_end_matches('/').to_string(),
            ),
            signer: Signer::new(&config.security),
        },
    )?);
    let requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let control = Arc::new(Control::new(control::Parts {
        store: store.clone(),
        library: library.clone(),
        auth: auth.clone(),
        ratelimits: ratelimits.clone(),
        trusted_proxies,
        public_url: config.server.public_url.clone(),
        listen: config.server.listen.clone(),
        signer: Signer::new(&config.security),
        limits: config.limits.clone(),
        avatar_size: config.avatars.size,
        random: RandomParts {
            tenant: config.random.tenant.clone(),
            presets: config.presets.clone(),
            presets_only: config.security.presets_only,
            params: config.params(),
            enabled: Enabled {
                avif: config.formats.avif,
                webp: config.formats.webp,
            },
        },
        config: serde_json::to_value(config).map_err(|e| e.to_string())?,
        webhooks: webhooks.clone(),
        accounts,
        registration_open: config.accounts.registration
            == crate::access::accounts::Registration::Open,
        indexer: indexer.clone(),
        gallery_tenant: config.ui.gallery_tenant.clone(),
        node: node.clone(),
        counters: {
            let (d, r) = (delivery.clone(), requests.clone());
            Arc::new(move || {
                let s = d.stats();
                serde_json::json!({
                    "requests": r.load(std::sync::atomic::Ordering::Relaxed),
                    "transforms": s.transforms,
                    "cache_hits": s.cache_hits,
                    "cache_misses": s.cache_misses,
                })
            })
        },
    }));
    let listen_url = store
        .is_postgres()
        .then(|| config.database.url.as_ref().map(|u| u.0.clone()))
        .flatten();
    Ok(Built {
        routes: Arc::new(Routes::new(
            delivery.clone(),
            control,
            requests,
            config.ui.clone(),
        )),
        delivery,
        library,
        ratelimits,
        sweep_every: Duration::from_secs(config.expiry.sweep_interval.max(1)),
        cpu,
        store,
        webhooks,
        audit_retention_ms: config.audit.retention_ms(),
        indexer,
        node,
        listen_url,
        announced: std::sync::Mutex::new(announced),
        visibility,
        auth,
    })
}

/// What `refract user …` does.
pub enum UserAction {
    Create {
        email: String,
        password: String,
        role: String,
        tenant: String,
        scopes: Vec<String>,
        name: String,
    },
    SetDisabled {
        email: String,
        disabled: bool,
    },
}

/// `refract user …`: change an account in the configured database; what was done, in words.
pub async fn user_command(config: &Config, action: UserAction) -> Result<String, String> {
    let store = open_store(config).await?;
    match action {
        UserAction::Create {
            email,
            password,
            role,
            tenant,
            scopes,
            name,
        } => {
            let id = crate::access::accounts::create_user(
                &store, &email, &password, &role, &tenant, &scopes, &name,
            )
            .await?;
            Ok(format!("user {id} created ({role})"))
        }
        UserAction::SetDisabled { email, disabled } => {
            let email = crate::access::accounts::valid_email(&email).ok_or("not an email")?;
            let found = store
                .set_user_disabled(&email, disabled, crate::util::clock::now_ms())
                .await
                .map_err(|e| e.to_string())?;
            match (found, disabled) {
                (false, _) => Err("no such user".into()),
                (true, true) => Ok("user disabled; every session ended".into()),
                (true, false) => Ok("user enabled".into()),
            }
        }
    }
}

async fn open_store(config: &Config) -> Result<Store, String> {
    let size = crate::store::PoolSize {
        max_connections: config.database.max_connections,
        acquire_timeout: config
            .database
            .acquire_timeout_ms
            .map(std::time::Duration::from_millis),
    };
    match &config.database.url {
        Some(url) => Store::open(&url.0, size).await,
        None => Store::open_sqlite_sized(&config.server.data_dir.join("refract.db"), size).await,
    }
    .map_err(|e| format!("database: {e}"))
}

/// Work while the server runs: the webhook sender; index the persistent tier once, then
/// periodically delete expired images, forget idle rate-limit state, finished webhook
/// deliveries past their retention, and ended sessions.
pub fn background(built: &Built) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (delivery, library, ratelimits) = (
        built.delivery.clone(),
        built.library.clone(),
        built.ratelimits.clone(),
    );
    let (store, webhooks, every) = (
        built.store.clone(),
        built.webhooks.clone(),
        built.sweep_every,
    );
    let audit_retention = built.audit_retention_ms;
    let indexer = built.indexer.clone();
    let node = built.node.clone();
    let sync = follow_the_cluster(built);
    async move {
        let sender = crate::control::webhooks::sender::run(webhooks.clone(), store.clone());
        let index = indexer.run();
        let sweeps = async move {
            delivery.index_persistent_tier().await;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Once per cluster: the node holding the `upkeep` lease sweeps; it renews it every
            // tick, and another node takes it over three ticks after it stops (`kill -9`).
            let ttl = i64::try_from((every * 3).max(Duration::from_secs(2)).as_millis())
                .unwrap_or(i64::MAX);
            loop {
                tick.tick().await;
                ratelimits.prune();
                match store
                    .try_lease(UPKEEP, &node, ttl, crate::util::clock::now_ms())
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "upkeep lease: database unavailable");
                        continue;
                    }
                }
                match library.purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "expired images deleted"),
                    Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
                }
                let before = crate::util::clock::now_ms() - webhooks.retention_ms();
                if let Err(e) = store.prune_outbox(before).await {
                    tracing::warn!(error = %e, "webhook outbox pruning failed");
                }
                if let Err(e) = store.prune_sessions(crate::util::clock::now_ms()).await {
                    tracing::warn!(error = %e, "session pruning failed");
                }
                let before = crate::util::clock::now_ms() - audit_retention;
                if let Err(e) = store.prune_audit(before).await {
                    tracing::warn!(error = %e, "audit log pruning failed");
                }
            }
        };
        tokio::join!(sender, sweeps, index, sync);
    }
}

/// The lease of the once-per-cluster upkeep (expiry sweep, pruning).
pub const UPKEEP: &str = "upkeep";

/// How long a node may miss an announcement before the periodic reload catches it up.
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);

/// Keep this node's view in step with the others (PostgreSQL): announce the changes made here,
/// apply the ones announced elsewhere (the access rule read again, this node's memory-tier
/// variants dropped), and reload what differs every `RELOAD_EVERY` and after a reconnect (an
/// announcement may have been missed), with the tenants' state (active, rate limits).
fn follow_the_cluster(built: &Built) -> impl std::future::Future<Output = ()> + Send + 'static {
    let announced = built.announced.lock().ok().and_then(|mut a| a.take());
    let url = built.listen_url.clone();
    let (store, node, visibility, delivery, auth) = (
        built.store.clone(),
        built.node.clone(),
        built.visibility.clone(),
        built.delivery.clone(),
        built.auth.clone(),
    );
    async move {
        let Some(url) = url else { return };
        let announcer = {
            let (store, node) = (store.clone(), node.clone());
            async move {
                if let Some(mut rx) = announced {
                    while let Some(key) = rx.recv().await {
                        store.announce_change(&node, &key).await;
                    }
                }
            }
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
        let listener = async move { crate::store::follow_changes(&url, &node, tx).await };
        let apply = async move {
            let mut reload = tokio::time::interval(RELOAD_EVERY);
            reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let heard = tokio::select! {
                    h = rx.recv() => match h { Some(h) => h, None => return },
                    _ = reload.tick() => crate::store::Heard::Gap,
                };
                match heard {
                    crate::store::Heard::Changed(key) => {
                        // On a read failure the rule stays as it was (never opened by error).
                        if let Ok(rule) = store.access_rule(&key).await {
                            visibility.apply(&key, rule);
                        }
                        delivery.forget_variants(&key);
                    }
                    crate::store::Heard::Gap => reload_all(&store, &visibility, &auth).await,
                }
            }
        };
        tokio::join!(announcer, listener, apply);
    }
}

/// Read again every access rule that differs from the database's, and the tenants' state.
async fn reload_all(store: &Store, visibility: &AccessIndex, auth: &Auth) {
    if let Ok(rules) = store.access_rules().await {
        for key in visibility.differs(&rules) {
            if let Ok(rule) = store.access_rule(&key).await {
                visibility.apply(&key, rule);
            }
        }
    }
    if let Ok(tenants) = store.tenants().await {
        for t in tenants {
            auth.set_active(&t.id, t.active);
            auth.set_tenant_rate(
                &t.id,
                t.rate_limit
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok()),
            );
        }
    }
}

/// Storage prefixes the library indexer passes over: the persistent variant tier when it lives
/// in the originals' storage (an S3 prefix, or a folder inside the fs root).
fn library_skips(config: &Config) -> Vec<String> {
    use crate::delivery::persist::PersistentBackend;
    let p = &config.cache.persistent;
    match p.backend {
        PersistentBackend::S3 => vec![p
            .path
            .clone()
            .unwrap_or_else(|| "refract-cache/".into())
            .trim_start_matches('/')
            .to_string()],
        PersistentBackend::Fs => {
            let root = config
                .storage
                .root
                .as_ref()
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| config.server.data_dir.join("images"));
            let cache = p
                .path
                .as_ref()
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| config.server.data_dir.join("cache"));
            match (std::fs::canonicalize(root), std::fs::canonicalize(cache)) {
                (Ok(r), Ok(c)) => c
                    .strip_prefix(&r)
                    .ok()
                    .map(|rel| format!("{}/", rel.to_string_lossy()))
                    .into_iter()
                    .collect(),
                _ => Vec::new(),
            }
        }
    }
}

/// The folders the library watches (fs backend): each root's path on disk.
fn library_watch_dirs(config: &Config, default_root: &std::path::Path) -> Vec<std::path::PathBuf> {
    if config.storage.backend != crate::storage::origin::Backend::Fs || !config.library.enabled {
        return Vec::new();
    }
    let root = config
        .storage
        .root
        .as_ref()
        .map_or_else(|| default_root.to_path_buf(), std::path::PathBuf::from);
    let Ok(root) = std::fs::canonicalize(root) else {
        return Vec::new();
    };
    config
        .library
        .roots
        .iter()
        .map(|r| root.join(r.trim_matches('/')))
        .filter(|d| d.is_dir())
        .collect()
}

/// Give memory back to the kernel once image work has stopped: every second, when the CPU pool
/// is idle and has finished jobs since the last trim (a burst of large buffers, such as the
/// sources of abandoned requests, would otherwise stay resident), after dropping the decoded
/// sources whose time is up (nothing else would: the cache is only maintained when used).
/// Never on a request.
pub async fn trim_when_idle(cpu: Arc<CpuPool>, delivery: Arc<Delivery>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trimmed_at = cpu.done();
    loop {
        tick.tick().await;
        let done = cpu.done();
        if done != trimmed_at && cpu.idle() {
            trimmed_at = done;
            let d = delivery.clone();
            let _ = tokio::task::spawn_blocking(move || {
                d.expire_decoded();
                refract_malloc_tune::trim()
            })
            .await;
        }
    }
}
