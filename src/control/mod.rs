//! The control plane: `/api/v1/...` (and `/random`). Each request: client IP → key → rate limit →
//! scope check → handler; every response carries `X-RateLimit-*`. `routes` maps paths to `Op`s.
//!
//! Invariants: no SQL and no pixel code here (the store, the library and `meta` do that);
//! another tenant's image is a 404, never a 403; keys never reach a log line; only `error`
//! picks status codes.

mod albums;
pub mod audit;
mod auth;
mod avatars;
mod downloads;
mod images;
mod keys;
mod library;
mod misc;
mod shares;
mod tags;
mod tenants;
mod users;
mod view;
pub mod webhooks;

use crate::access::auth::{Auth, Principal, Scope};
use crate::access::ratelimit::{self, Bucket, Outcome, RateLimits};
use crate::delivery::presets::Presets;
use crate::delivery::signing::Signer;
use crate::error::Error;
use crate::http::request::{client_ip, presented_key};
use crate::http::response::{self, Body};
use crate::library::Library;
use crate::pipeline::output::Enabled;
use crate::pipeline::transform::ParamConfig;
use crate::store::Store;
use crate::util::limits::LimitsConfig;
use crate::util::query::Query;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

pub use view::Base;

/// The `[avatars]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AvatarsConfig {
    /// The default square side of `GET /api/v1/avatars/{user_id}`, pixels.
    pub size: u32,
}

impl Default for AvatarsConfig {
    fn default() -> Self {
        Self { size: 256 }
    }
}

/// The `[random]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomConfig {
    /// Tenant whose public images `/random` picks from.
    pub tenant: String,
}

impl Default for RandomConfig {
    fn default() -> Self {
        Self {
            tenant: "default".into(),
        }
    }
}

/// The `[ui]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Serve the web pages (`/ui/`, `/ui/login`, `/gallery`).
    pub enabled: bool,
    /// `/` redirects to `/ui/`.
    pub root_redirect: bool,
    /// The tenant whose public images `/gallery` (and `GET /api/v1/gallery`) shows.
    pub gallery_tenant: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            root_redirect: true,
            gallery_tenant: "default".into(),
        }
    }
}

/// What `/random` needs to build a working `/img` URL.
pub struct RandomParts {
    pub tenant: String,
    pub presets: Presets,
    pub presets_only: bool,
    pub params: ParamConfig,
    pub enabled: Enabled,
}

/// What the control plane is built from (once, in `wiring`).
pub struct Parts {
    pub store: Arc<Store>,
    pub library: Arc<Library>,
    pub auth: Arc<Auth>,
    pub ratelimits: Arc<RateLimits>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub public_url: Option<String>,
    pub listen: String,
    pub signer: Signer,
    pub limits: LimitsConfig,
    pub random: RandomParts,
    /// `[avatars] size`: an avatar's default square side.
    pub avatar_size: u32,
    /// The effective configuration, serialised (secrets are dropped here).
    pub config: serde_json::Value,
    pub webhooks: Arc<webhooks::Webhooks>,
    pub accounts: Arc<crate::access::accounts::Accounts>,
    /// `accounts.registration = "open"`.
    pub registration_open: bool,
    /// The server's own counters (requests, cache hits and misses), for the stats.
    pub counters: Counters,
    pub indexer: Arc<crate::library::index::Indexer>,
    /// `ui.gallery_tenant`.
    pub gallery_tenant: String,
    /// This process among the nodes sharing the database.
    pub node: String,
}

/// Reads the server's counters: `{"requests", "cache_hits", "cache_misses", "transforms"}`.
pub type Counters = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// The control plane's context: everything its handlers use, by type.
pub struct Control {
    store: Arc<Store>,
    library: Arc<Library>,
    auth: Arc<Auth>,
    ratelimits: Arc<RateLimits>,
    trusted_proxies: Vec<ipnet::IpNet>,
    public_url: Option<String>,
    listen: String,
    signer: Signer,
    limits: LimitsConfig,
    random: RandomParts,
    avatar_size: u32,
    effective_config: serde_json::Value,
    webhooks: Arc<webhooks::Webhooks>,
    accounts: Arc<crate::access::accounts::Accounts>,
    registration_open: bool,
    counters: Counters,
    indexer: Arc<crate::library::index::Indexer>,
    gallery_tenant: String,
    node: String,
}

impl Control {
    pub fn new(p: Parts) -> Self {
        let mut effective_config = p.config;
        remove_secrets(&mut effective_config);
        Self {
            store: p.store,
            library: p.library,
            auth: p.auth,
            ratelimits: p.ratelimits,
            trusted_proxies: p.trusted_proxies,
            public_url: p.public_url,
            listen: p.listen,
            signer: p.signer,
            limits: p.limits,
            random: p.random,
            avatar_size: p.avatar_size,
            effective_config,
            webhooks: p.webhooks,
            accounts: p.accounts,
            registration_open: p.registration_open,
            counters: p.counters,
            indexer: p.indexer,
            gallery_tenant: p.gallery_tenant,
            node: p.node,
        }
    }

    /// Log lines dropped because stderr could not keep up (for `/metrics`).
    pub fn log_lines_dropped(&self) -> u64 {
        crate::util::telemetry::dropped_lines()
    }

    /// This process among the nodes sharing the database.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The once-per-cluster jobs this node runs now (the leases it holds).
    pub async fn leases_held(&self) -> Vec<String> {
        self.store
            .leases(crate::util::clock::now_ms())
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, holder)| *holder == self.node)
            .map(|(name, _)| name)
            .collect()
    }

    /// Whether the database answers within two seconds (`/ready`): `Err` says why not.
    pub async fn database_ready(&self) -> Result<(), String> {
        match tokio::time::timeout(std::time::Duration::from_secs(2), self.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("unavailable: {e}")),
            Err(_) => Err("no answer within 2 s".into()),
        }
    }

    /// The webhook lines of `/metrics` (outbox depth read from the store).
    pub async fn webhook_metrics(&self) -> String {
        let depth = self.store.outbox_depth().await.unwrap_or_default();
        self.webhooks.metrics(depth)
    }
}

/// Secrets serialise as `***`; drop them altogether.
fn remove_secrets(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|_, x| x.as_str() != Some("***"));
            m.values_mut().for_each(remove_secrets);
        }
        serde_json::Value::Array(a) => {
            a.retain(|x| x.as_str() != Some("***"));
            a.iter_mut().for_each(remove_secrets);
        }
        _ => {}
    }
}

/// The operations of the API (the route table in `routes` maps paths to them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListImages,
    Upload,
    GetImage,
    PatchImage,
    DeleteImage,
    Tags,
    Random,
    CreateKey,
    ListKeys,
    DeleteKey,
    ValidateKey,
    Cleanup,
    Config,
    Stats,
    ListAlbums,
    CreateAlbum,
    GetAlbum,
    PatchAlbum,
    DeleteAlbum,
    AlbumImages,
    AddAlbumImages,
    RemoveAlbumImages,
    OrderAlbumImages,
    ListAlbumTokens,
    CreateAlbumToken,
    /// Its parameter is `{album}/tokens/{token}`.
    DeleteAlbumToken,
    CreateShare,
    ListShares,
    /// The albums holding an image.
    ImageAlbums,
    DeleteShare,
    GetQuota,
    SetQuota,
    GetAvatar,
    PutAvatar,
    DeleteAvatar,
    ListWebhooks,
    CreateWebhook,
    GetWebhook,
    PatchWebhook,
    DeleteWebhook,
    RotateWebhookSecret,
    TestWebhook,
    WebhookDeliveries,
    /// Its parameter is `{webhook}/deliveries/{delivery}`.
    Redeliver,
    Login,
    Refresh,
    Logout,
    Me,
    PatchMe,
    ChangePassword,
    Register,
    Audit,
    ListTenants,
    ListUsers,
    /// Its parameter is the user's id.
    PatchUser,
    CreateTenant,
    GetTenant,
    PatchTenant,
    Folders,
    LibraryStatus,
    LibraryRescan,
    CreateTag,
    PatchTag,
    DeleteTag,
    TagImages,
    UntagImages,
    /// Its parameter is `{image}/tags/{tag}`.
    ToggleTag,
    Download,
    FileOps,
    Gallery,
    SessionLogin,
    SessionRefresh,
    SessionLogout,
}

impl Op {
    /// What `?tenant=` selects for an admin of every tenant: `Some(true)` one tenant or all of
    /// them (`*`, a listing), `Some(false)` one tenant, `None` not taken (the operation is not
    /// about one tenant's images, albums, avatars or tags).
    fn tenant_param(self) -> Option<bool> {
        match self {
            Self::ListImages | Self::Tags | Self::Stats | Self::ListAlbums => Some(true),
            Self::Upload
            | Self::GetImage
            | Self::PatchImage
            | Self::DeleteImage
            | Self::ListShares
            | Self::ImageAlbums
            | Self::CreateShare
            | Self::CreateAlbum
            | Self::GetAlbum
            | Self::PatchAlbum
            | Self::DeleteAlbum
            | Self::AlbumImages
            | Self::AddAlbumImages
            | Self::RemoveAlbumImages
            | Self::OrderAlbumImages
            | Self::ListAlbumTokens
            | Self::CreateAlbumToken
            | Self::DeleteAlbumToken
            | Self::GetAvatar
            | Self::PutAvatar
            | Self::DeleteAvatar
            | Self::Folders
            | Self::Download
            | Self::FileOps
            | Self::CreateTag
            | Self::PatchTag
            | Self::DeleteTag
            | Self::TagImages
            | Self::UntagImages
            | Self::ToggleTag => Some(false),
            _ => None,
        }
    }

    /// The name of the scope needed (for the OpenAPI document); `None` = no key needed.
    pub fn required_scope(self) -> Option<&'static str> {
        self.scope().map(Scope::name)
    }

    /// The scope needed; `None` = no key needed.
    fn scope(self) -> Option<Scope> {
        match self {
            // An album token may stand in for a key on these two (checked by the handler).
            Self::Random
            | Self::ValidateKey
            | Self::GetAvatar
            | Self::GetAlbum
            | Self::AlbumImages
            // The account routes check their own credentials (a password, a refresh token,
            // an access token).
            | Self::Login
            | Self::Refresh
            | Self::Logout
            | Self::Me
            | Self::PatchMe
            | Self::ChangePassword
            | Self::Register
            // The public gallery: public images of `ui.gallery_tenant`, no key.
            | Self::Gallery
            // The browser session: a password or the session cookie.
            | Self::SessionLogin
            | Self::SessionRefresh
            | Self::SessionLogout => None,
            Self::ListImages
            | Self::GetImage
            | Self::Tags
            | Self::Stats
            | Self::ListAlbums
            | Self::ListAlbumTokens
            | Self::ListShares
            | Self::ImageAlbums
            | Self::Folders
            | Self::Download => Some(Scope::Read),
            Self::Upload
            | Self::PatchImage
            | Self::DeleteImage
            | Self::CreateAlbum
            | Self::PatchAlbum
            | Self::DeleteAlbum
            | Self::AddAlbumImages
            | Self::RemoveAlbumImages
            | Self::OrderAlbumImages
            | Self::CreateAlbumToken
            | Self::DeleteAlbumToken
            | Self::CreateShare
            | Self::DeleteShare
            | Self::PutAvatar
            | Self::DeleteAvatar
            | Self::CreateTag
            | Self::PatchTag
            | Self::DeleteTag
            | Self::TagImages
            | Self::UntagImages
            | Self::ToggleTag
            | Self::FileOps => Some(Scope::Write),
            Self::CreateKey
            | Self::ListKeys
            | Self::DeleteKey
            | Self::Cleanup
            | Self::Config
            | Self::GetQuota
            | Self::SetQuota
            | Self::ListWebhooks
            | Self::CreateWebhook
            | Self::GetWebhook
            | Self::PatchWebhook
            | Self::DeleteWebhook
            | Self::RotateWebhookSecret
            | Self::TestWebhook
            | Self::WebhookDeliveries
            | Self::Redeliver
            | Self::Audit
            | Self::ListTenants
            | Self::ListUsers
            | Self::PatchUser
            | Self::CreateTenant
            | Self::GetTenant
            | Self::PatchTenant
            | Self::LibraryStatus
            | Self::LibraryRescan => Some(Scope::Admin),
        }
    }
}

/// What a handler gets.
pub(crate) struct Ctx<'a> {
    pub ctl: &'a Control,
    pub req: Request<hyper::body::Incoming>,
    pub caller: Option<Principal>,
    pub base: Base,
    /// The client's address (the socket peer, or what a trusted proxy says).
    pub ip: std::net::IpAddr,
}

impl Ctx<'_> {
    /// The caller, who has passed the scope check.
    fn principal(&self) -> Result<&Principal, Error> {
        self.caller
            .as_ref()
            .ok_or_else(|| Error::Unauthorized("an API key is required".into()))
    }

    /// The query, parsed once; any key outside `allowed` (and `tenant`, read by `act_as`) is
    /// refused (a typo should not silently widen a search).
    fn query(&self, allowed: &[&str]) -> Result<Query, Error> {
        let q = self.any_query();
        let mut with_tenant = allowed.to_vec();
        with_tenant.push("tenant");
        q.only(&with_tenant)?;
        Ok(q)
    }

    /// The query, any key accepted.
    fn any_query(&self) -> Query {
        Query::parse(self.req.uri().query().unwrap_or(""))
    }
}

/// Handle one request the route table sent here: `routed` is its operation and path parameter
/// (or the routing error, answered with the rate-limit headers too); `redirect` for `/random`.
pub async fn handle(
    ctl: &Control,
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    routed: Result<(Op, String), Error>,
    redirect: bool,
) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    let ip = client_ip(&ctl.trusted_proxies, peer, req.headers());
    let presented = presented_key(req.headers()).map(str::to_string);
    let caller = match &presented {
        Some(k) => match ctl.auth.identify(k).await {
            Ok(p) => p,
            Err(e) => return response::error(&e.into(), head),
        },
        None => None,
    };
    let mut caller = caller;
    let routed = act_as(ctl, &mut caller, routed, req.uri().query()).await;
    let audited = audit::pending(caller.as_ref(), &routed, req.method(), req.uri().path(), ip);
    let client = caller
        .as_ref()
        .map_or_else(|| format!("ip:{ip}"), |p| format!("key:{}", p.key_id));
    let over = caller.as_ref().map(|p| p.rate).unwrap_or_default();
    let mut outcome = ctl.ratelimits.check(Bucket::Api, &client, &over).await;
    if let Ok((Op::Upload, _)) = routed {
        outcome = ratelimit::merge(
            outcome,
            ctl.ratelimits.check(Bucket::Upload, &client, &over).await,
        );
    }
    let result = match (outcome, routed) {
        (Outcome::Denied { retry_after, .. }, _) => Err(Error::RateLimited { retry_after }),
        (_, Err(e)) => Err(e),
        (_, Ok((op, param))) => {
            let ctx = Ctx {
                ctl,
                base: Base::of(
                    ctl.public_url.as_deref(),
                    &ctl.listen,
                    &ctl.signer,
                    req.headers(),
                ),
                req,
                caller,
                ip,
            };
            dispatch(ctx, op, param, presented.is_some(), redirect).await
        }
    };
    let mut resp = result.unwrap_or_else(|e| {
        if e.status().is_server_error() {
            tracing::error!(error = ?e, "API request failed");
        }
        response::error(&e, head)
    });
    if let Some(a) = audited {
        audit::record(ctl, a, resp.status().as_u16()).await;
    }
    let status = match outcome {
        Outcome::Allowed(s) => s,
        Outcome::Denied { status, .. } => Some(status),
    };
    if let Some(s) = status {
        let h = resp.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(s.limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(s.remaining));
        h.insert("x-ratelimit-reset", HeaderValue::from(s.reset));
    }
    if head {
        *resp.body_mut() = response::empty();
    }
    resp
}

/// Whose data the caller acts on. An admin of every tenant (an admin of tenant `default`) acts
/// on `?tenant=T` when it names one (`*`: every tenant, on listings), or else on the tenant that
/// owns the image or album named in the path; anyone else only on their own tenant (another
/// one is a 404, as if it did not exist).
async fn act_as(
    ctl: &Control,
    caller: &mut Option<Principal>,
    routed: Result<(Op, String), Error>,
    query: Option<&str>,
) -> Result<(Op, String), Error> {
    let (op, param) = routed?;
    let (Some(p), Some(all_allowed)) = (caller.as_mut(), op.tenant_param()) else {
        return Ok((op, param));
    };
    let global = p.tenant == "default" && p.has(Scope::Admin);
    let q = Query::parse(query.unwrap_or(""));
    let asked = q.get("tenant").map(str::to_string);
    match asked.as_deref() {
        Some(t) if t == p.tenant => {}
        Some(_) if !global => return Err(Error::NotFound("no such tenant here".into())),
        Some(crate::store::ALL_TENANTS) if all_allowed => {
            crate::store::ALL_TENANTS.clone_into(&mut p.tenant);
        }
        Some(t) if crate::access::auth::valid_tenant(t) => t.clone_into(&mut p.tenant),
        Some(_) => {
            return Err(Error::bad_param(
                "tenant",
                "a tenant is 1-64 of a-z, 0-9, '-', '_' (or * on listings)",
            ))
        }
        None if global => {
            let id = param.split('/').next().unwrap_or("");
            let owner = match op {
                Op::GetImage
                | Op::PatchImage
                | Op::DeleteImage
                | Op::ListShares
                | Op::ImageAlbums
                | Op::CreateShare
                | Op::ToggleTag => ctl.store.image_tenant(id).await?,
                Op::GetAlbum
                | Op::PatchAlbum
                | Op::DeleteAlbum
                | Op::AlbumImages
                | Op::AddAlbumImages
                | Op::RemoveAlbumImages
                | Op::OrderAlbumImages
                | Op::ListAlbumTokens
                | Op::CreateAlbumToken
                | Op::DeleteAlbumToken => ctl.store.album_tenant(id).await?,
                _ => None,
            };
            if let Some(t) = owner {
                p.tenant = t;
            }
        }
        None => {}
    }
    Ok((op, param))
}

async fn dispatch(
    ctx: Ctx<'_>,
    op: Op,
    param: String,
    key_presented: bool,
    redirect: bool,
) -> Result<Response<Body>, Error> {
    if let Some(scope) = op.scope() {
        match &ctx.caller {
            None if key_presented => return Err(Error::Unauthorized("invalid API key".into())),
            None => {
                return Err(Error::Unauthorized(
                    "an API key is required (X-API-Key or Authorization: Bearer)".into(),
                ))
            }
            Some(p) if !p.has(scope) => {
                return Err(Error::Forbidden(format!(
                    "this key lacks the {} scope",
                    scope.name()
                )))
            }
            Some(_) => {}
        }
    }
    match op {
        Op::ListImages => images::list(&ctx).await,
        Op::Upload => images::upload(ctx).await,
        Op::GetImage => images::get(&ctx, &param).await,
        Op::PatchImage => images::patch(ctx, &param).await,
        Op::DeleteImage => images::delete(&ctx, &param).await,
        Op::Tags => misc::tags(&ctx).await,
        Op::Random => misc::random(&ctx, redirect).await,
        Op::CreateKey => keys::create(ctx).await,
        Op::ListKeys => keys::list(&ctx).await,
        Op::DeleteKey => keys::delete(&ctx, &param).await,
        Op::ValidateKey => keys::validate(ctx, key_presented).await,
        Op::Cleanup => misc::cleanup(&ctx).await,
        Op::Config => misc::config(&ctx),
        Op::Stats => misc::stats(&ctx).await,
        Op::ListAlbums => albums::list(&ctx).await,
        Op::CreateAlbum => albums::create(ctx).await,
        Op::GetAlbum => albums::get(&ctx, &param).await,
        Op::PatchAlbum => albums::patch(ctx, &param).await,
        Op::DeleteAlbum => albums::delete(&ctx, &param).await,
        Op::AlbumImages => albums::images(&ctx, &param).await,
        Op::AddAlbumImages => albums::add_images(ctx, &param).await,
        Op::RemoveAlbumImages => albums::remove_images(ctx, &param).await,
        Op::OrderAlbumImages => albums::order_images(ctx, &param).await,
        Op::ListUsers => users::list(&ctx).await,
        Op::PatchUser => users::patch(ctx, &param).await,
        Op::ListAlbumTokens => albums::tokens(&ctx, &param).await,
        Op::CreateAlbumToken => albums::create_token(ctx, &param).await,
        Op::GetAvatar => avatars::get(&ctx, &param).await,
        Op::PutAvatar => avatars::put(ctx, &param).await,
        Op::DeleteAvatar => avatars::delete(&ctx, &param).await,
        Op::GetQuota => tenants::get(&ctx, &param).await,
        Op::SetQuota => tenants::put(ctx, &param).await,
        Op::CreateShare => shares::create(ctx, &param).await,
        Op::ListShares => shares::list(&ctx, &param).await,
        Op::ImageAlbums => albums::albums_of(&ctx, &param).await,
        Op::DeleteShare => shares::delete(&ctx, &param).await,
        Op::ListWebhooks => webhooks::list(&ctx).await,
        Op::CreateWebhook => webhooks::create(ctx).await,
        Op::GetWebhook => webhooks::get(&ctx, &param).await,
        Op::PatchWebhook => webhooks::patch(ctx, &param).await,
        Op::DeleteWebhook => webhooks::delete(&ctx, &param).await,
        Op::RotateWebhookSecret => webhooks::rotate(&ctx, &param).await,
        Op::TestWebhook => webhooks::test(&ctx, &param).await,
        Op::WebhookDeliveries => webhooks::deliveries(&ctx, &param).await,
        Op::Redeliver => {
            let (hook, delivery) = param.split_once("/deliveries/").unwrap_or((&param, ""));
            webhooks::redeliver(&ctx, hook, delivery).await
        }
        Op::Audit => audit::list(&ctx).await,
        Op::ListTenants => tenants::list(&ctx).await,
        Op::CreateTenant => tenants::create(ctx).await,
        Op::GetTenant => tenants::get_tenant(&ctx, &param).await,
        Op::PatchTenant => tenants::patch(ctx, &param).await,
        Op::Folders => library::folders(&ctx).await,
        Op::Download => downloads::download(ctx).await,
        Op::FileOps => library::ops(ctx).await,
        Op::Gallery => misc::gallery(&ctx).await,
        Op::SessionLogin => auth::session_login(ctx).await,
        Op::SessionRefresh => auth::session_refresh(ctx).await,
        Op::SessionLogout => auth::session_logout(ctx).await,
        Op::CreateTag => tags::create(ctx).await,
        Op::PatchTag => tags::patch(ctx, &param).await,
        Op::DeleteTag => tags::delete(&ctx, &param).await,
        Op::TagImages => tags::images(ctx, &param, true).await,
        Op::UntagImages => tags::images(ctx, &param, false).await,
        Op::ToggleTag => tags::toggle(&ctx, &param).await,
        Op::LibraryStatus => library::status(&ctx).await,
        Op::LibraryRescan => library::rescan(&ctx).await,
        Op::Login => auth::login(ctx).await,
        Op::Register => auth::register(ctx).await,
        Op::Refresh => auth::refresh(ctx).await,
        Op::Logout => auth::logout(ctx).await,
        Op::Me => auth::me(&ctx).await,
        Op::PatchMe => auth::patch_me(ctx).await,
        Op::ChangePassword => auth::password(ctx).await,
        Op::DeleteAlbumToken => {
            let (album, token) = param.split_once("/tokens/").unwrap_or((&param, ""));
            albums::delete_token(&ctx, album, token).await
        }
    }
}

/// Read a JSON body of at most 1 MiB into `T`; errors are 400s naming what is wrong.
pub(crate) async fn json_body<T: serde::de::DeserializeOwned>(
    req: Request<hyper::body::Incoming>,
) -> Result<T, Error> {
    parse_json(&body_bytes(req).await?)
}

/// A JSON body as `T`; a string holding NUL (U+0000) anywhere is refused (no text column of
/// any backend stores it).
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    let bad = |e: serde_json::Error| Error::BadRequest {
        param: None,
        message: format!("invalid JSON body: {e}"),
    };
    let v: serde_json::Value = serde_json::from_slice(body).map_err(bad)?;
    if holds_nul(&v) {
        return Err(Error::BadRequest {
            param: None,
            message: "invalid JSON body: text may not contain NUL (\\u0000)".into(),
        });
    }
    serde_json::from_value(v).map_err(bad)
}

fn holds_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(holds_nul),
        serde_json::Value::Object(m) => m.iter().any(|(k, x)| k.contains('\0') || holds_nul(x)),
        _ => false,
    }
}

/// As `json_body`, an empty body (whatever its framing: length, chunked, HTTP/2) being `T`'s
/// default.
pub(crate) async fn optional_json_body<T: serde::de::DeserializeOwned + Default>(
    req: Request<hyper::body::Incoming>,
) -> Result<T, Error> {
    let body = body_bytes(req).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(&body)
}

async fn body_bytes(req: Request<hyper::body::Incoming>) -> Result<Bytes, Error> {
    const MAX: usize = 1 << 20;
    Ok(http_body_util::Limited::new(req.into_body(), MAX)
        .collect()
        .await
        .map_err(|_| Error::PayloadTooLarge(format!("JSON body over {MAX} bytes")))?
        .to_bytes())
}

/// A request body that must arrive within `body_timeout_ms` and, after five seconds, at an
/// average of at least `min_body_rate` bytes per second. When it does not, the stream ends in an
/// error and `timed_out` is set (the caller answers 408).
fn guarded_body(
    body: hyper::body::Incoming,
    limits: &LimitsConfig,
    timed_out: Arc<std::sync::atomic::AtomicBool>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    use futures_util::StreamExt;
    let start = tokio::time::Instant::now();
    let deadline = start + std::time::Duration::from_millis(limits.body_timeout_ms.max(1));
    let min_rate = limits.min_body_rate;
    let state = (body.into_data_stream(), 0u64, false);
    futures_util::stream::unfold(state, move |(mut inner, mut got, done)| {
        let timed_out = timed_out.clone();
        async move {
            if done {
                return None;
            }
            let fail = |why: &str| {
                timed_out.store(true, std::sync::atomic::Ordering::Relaxed);
                std::io::Error::new(std::io::ErrorKind::TimedOut, why.to_string())
            };
            loop {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Some((Err(fail("body timeout")), (inner, got, true)));
                }
                let secs = now.duration_since(start).as_secs();
                if min_rate > 0 && secs >= 5 && got / secs < min_rate {
                    return Some((Err(fail("body too slow")), (inner, got, true)));
                }
                // Wake up at least every second to check the rate again.
                let wake = (now + std::time::Duration::from_secs(1)).min(deadline);
                match tokio::time::timeout_at(wake, inner.next()).await {
                    Ok(Some(Ok(chunk))) => {
                        got += chunk.len() as u64;
                        return Some((Ok(chunk), (inner, got, false)));
                    }
                    Ok(Some(Err(e))) => {
                        return Some((Err(std::io::Error::other(e)), (inner, got, true)))
                    }
                    Ok(None) => return None,
                    Err(_) => continue,
                }
            }
        }
    })
}

/// Run a library operation to its end even if the client goes away: a dropped request must not
/// cut a multi-step write short (objects written, rows not yet). The handler awaits the result.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    tokio::spawn(work)
        .await
        .map_err(|e| Error::Internal(format!("library task: {e}")))?
}

/// A random id of `n_bytes` of entropy (the OS refusing randomness is a server fault).
pub(crate) fn new_id(n_bytes: usize) -> Result<String, Error> {
    crate::util::ids::random_id(n_bytes).map_err(|e| Error::Internal(e.to_string()))
}

/// A capability's expiry from `expires_in` (seconds, 1 s to 10 years; none = never).
pub(crate) fn expiry(expires_in: Option<u64>, now: i64) -> Result<Option<i64>, Error> {
    match expires_in {
        Some(s) if !(1..=10 * 366 * 86_400).contains(&s) => Err(Error::bad_param(
            "expires_in",
            "expires_in must be 1 second to 10 years",
        )),
        Some(s) => Ok(Some(now + i64::try_from(s).unwrap_or(0) * 1000)),
        None => Ok(None),
    }
}

/// A `200 OK` JSON response with `Cache-Control: no-store`.
pub(crate) fn json(v: &serde_json::Value) -> Response<Body> {
    response::json_ok(v, "no-store")
}

/// A `201 Created` JSON response with `Cache-Control: no-store`.
pub(crate) fn created(v: &serde_json::Value) -> Response<Body> {
    response::json_created(v, "no-store")
}
