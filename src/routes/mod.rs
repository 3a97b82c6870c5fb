//! The one route table: `(method, path)` → handler, for every route the server has, and the
//! `Handler` the HTTP server calls. Errors become responses here (`error` picks the status).
//!
//! To add a route: a line in `route` (or in `api` for `/api/v1`), a `Route` variant if it is
//! a new kind, and its arm in `Routes::dispatch`; the handler lives in its plane's module.

pub mod openapi;
pub mod ui;

use crate::control::{self, Control, Op};
use crate::delivery::Delivery;
use crate::error::Error;
use crate::http::response::{self, Body};
use crate::http::server::Handler;
use http::{Method, Request, Response};
use hyper::body::Incoming;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Where a request goes.
#[derive(Debug)]
pub enum Route<'a> {
    /// `/ready`: the database and the storage answer (for load balancers).
    Ready,
    Health,
    Version,
    Metrics,
    /// `/img/{key}`; the key is still percent-encoded.
    Image {
        raw_key: &'a str,
    },
    /// `/cdn-cgi/image/<OPTIONS>/<SOURCE>`: Cloudflare's URL form; `rest` is what follows the
    /// prefix, still percent-encoded.
    CdnImage {
        rest: &'a str,
    },
    /// `/s/{token}`: a share link.
    Share {
        token: &'a str,
    },
    /// `/random`: a 302 to a random image.
    Random,
    /// `/openapi.json`, `/docs` and its script.
    OpenApi,
    Docs,
    DocsScript,
    /// A page or file of the web interface (`/gallery`, `/ui/`, `/ui/assets/…`).
    Ui,
    /// `/` and `/ui`: to `/ui/`.
    UiHome,
    /// `/api/...`: an API operation and its path parameter, or why there is none (answered by
    /// the control plane, with its rate-limit headers).
    Api(Result<(Op, &'a str), Error>),
}

/// Route a request.
pub fn route<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, Error> {
    if path == "/api" || path.starts_with("/api/") {
        return Ok(Route::Api(api(method, path)));
    }
    let r = match path {
        "/health" => Route::Health,
        "/ready" => Route::Ready,
        "/version" => Route::Version,
        "/metrics" => Route::Metrics,
        "/random" => Route::Random,
        "/openapi.json" => Route::OpenApi,
        "/docs" | "/docs/" => Route::Docs,
        "/docs/rapidoc-min.js" => Route::DocsScript,
        "/" | "/ui" => Route::UiHome,
        p if ui::is_ui_path(p) => Route::Ui,
        p => match (
            p.strip_prefix("/img/"),
            p.strip_prefix("/cdn-cgi/image/"),
            p.strip_prefix("/s/"),
        ) {
            (Some(raw_key), _, _) => Route::Image { raw_key },
            (_, Some(rest), _) => Route::CdnImage { rest },
            (_, _, Some(token)) if !token.is_empty() && !token.contains('/') => {
                Route::Share { token }
            }
            _ => return Err(Error::NotFound("no such route".into())),
        },
    };
    if method == Method::GET || method == Method::HEAD {
        Ok(r)
    } else {
        Err(Error::MethodNotAllowed { allow: "GET, HEAD" })
    }
}

/// One row of the `/api/v1` table: a method (GET also answers HEAD), a path pattern under
/// `/api/v1` whose `{name}` segments match any one segment, and the operation. The OpenAPI
/// document (`openapi`) is generated from these rows, so the two cannot drift.
#[derive(Debug, Clone, Copy)]
pub struct ApiRoute {
    pub method: &'static str,
    pub path: &'static str,
    pub op: Op,
}

const fn r(method: &'static str, path: &'static str, op: Op) -> ApiRoute {
    ApiRoute { method, path, op }
}

/// The `/api/v1` part of the table.
pub const API: &[ApiRoute] = &[
    r("GET", "/images", Op::ListImages),
    r("POST", "/images", Op::Upload),
    r("GET", "/images/{id}", Op::GetImage),
    r("PATCH", "/images/{id}", Op::PatchImage),
    r("DELETE", "/images/{id}", Op::DeleteImage),
    r("GET", "/images/{id}/shares", Op::ListShares),
    r("POST", "/images/{id}/shares", Op::CreateShare),
    r("GET", "/images/{id}/albums", Op::ImageAlbums),
    r("DELETE", "/shares/{id}", Op::DeleteShare),
    r("POST", "/avatars", Op::PutAvatar),
    r("GET", "/avatars/{user_id}", Op::GetAvatar),
    r("PUT", "/avatars/{user_id}", Op::PutAvatar),
    r("DELETE", "/avatars/{user_id}", Op::DeleteAvatar),
    r("GET", "/users", Op::ListUsers),
    r("PATCH", "/users/{id}", Op::PatchUser),
    r("GET", "/tenants", Op::ListTenants),
    r("POST", "/tenants", Op::CreateTenant),
    r("GET", "/tenants/{tenant}", Op::GetTenant),
    r("PATCH", "/tenants/{tenant}", Op::PatchTenant),
    r("GET", "/tenants/{tenant}/quota", Op::GetQuota),
    r("PUT", "/tenants/{tenant}/quota", Op::SetQuota),
    r("GET", "/tags", Op::Tags),
    r("POST", "/tags", Op::CreateTag),
    r("PATCH", "/tags/{id}", Op::PatchTag),
    r("DELETE", "/tags/{id}", Op::DeleteTag),
    r("POST", "/tags/{id}/images", Op::TagImages),
    r("DELETE", "/tags/{id}/images", Op::UntagImages),
    r("POST", "/images/{id}/tags/{tag}/toggle", Op::ToggleTag),
    r("GET", "/random", Op::Random),
    r("GET", "/keys", Op::ListKeys),
    r("POST", "/keys", Op::CreateKey),
    r("GET", "/keys/validate", Op::ValidateKey),
    r("POST", "/keys/validate", Op::ValidateKey),
    r("DELETE", "/keys/{id}", Op::DeleteKey),
    r("POST", "/maintenance/cleanup", Op::Cleanup),
    r("GET", "/config", Op::Config),
    r("GET", "/stats", Op::Stats),
    r("GET", "/albums", Op::ListAlbums),
    r("POST", "/albums", Op::CreateAlbum),
    r("GET", "/albums/{id}", Op::GetAlbum),
    r("PATCH", "/albums/{id}", Op::PatchAlbum),
    r("DELETE", "/albums/{id}", Op::DeleteAlbum),
    r("GET", "/albums/{id}/images", Op::AlbumImages),
    r("POST", "/albums/{id}/images", Op::AddAlbumImages),
    r("DELETE", "/albums/{id}/images", Op::RemoveAlbumImages),
    r("PUT", "/albums/{id}/images", Op::OrderAlbumImages),
    r("GET", "/albums/{id}/tokens", Op::ListAlbumTokens),
    r("POST", "/albums/{id}/tokens", Op::CreateAlbumToken),
    r(
        "DELETE",
        "/albums/{id}/tokens/{token}",
        Op::DeleteAlbumToken,
    ),
    r("GET", "/audit", Op::Audit),
    r("GET", "/folders", Op::Folders),
    r("POST", "/downloads", Op::Download),
    r("GET", "/gallery", Op::Gallery),
    r("GET", "/library/status", Op::LibraryStatus),
    r("POST", "/library/rescan", Op::LibraryRescan),
    r("POST", "/library/ops", Op::FileOps),
    r("POST", "/auth/login", Op::Login),
    r("POST", "/auth/register", Op::Register),
    r("POST", "/auth/refresh", Op::Refresh),
    r("POST", "/auth/logout", Op::Logout),
    r("POST", "/auth/session", Op::SessionLogin),
    r("DELETE", "/auth/session", Op::SessionLogout),
    r("POST", "/auth/session/refresh", Op::SessionRefresh),
    r("GET", "/auth/me", Op::Me),
    r("PATCH", "/auth/me", Op::PatchMe),
    r("POST", "/auth/me/password", Op::ChangePassword),
    r("GET", "/webhooks", Op::ListWebhooks),
    r("POST", "/webhooks", Op::CreateWebhook),
    r("GET", "/webhooks/{id}", Op::GetWebhook),
    r("PATCH", "/webhooks/{id}", Op::PatchWebhook),
    r("DELETE", "/webhooks/{id}", Op::DeleteWebhook),
    r(
        "POST",
        "/webhooks/{id}/rotate-secret",
        Op::RotateWebhookSecret,
    ),
    r("POST", "/webhooks/{id}/test", Op::TestWebhook),
    r("GET", "/webhooks/{id}/deliveries", Op::WebhookDeliveries),
    r(
        "POST",
        "/webhooks/{id}/deliveries/{delivery}/redeliver",
        Op::Redeliver,
    ),
];

/// Does `pattern` match `segs`? `Some(param)`: the path from the first `{…}` segment to the
/// last one (`id`, or `id/tokens/token` for two), `""` when there is none.
fn matches<'a>(pattern: &str, rest: &'a str, segs: &[&'a str]) -> Option<&'a str> {
    let pat: Vec<&str> = pattern.split('/').skip(1).collect();
    if pat.len() != segs.len() {
        return None;
    }
    let mut first = None;
    let mut last = None;
    for (i, (p, s)) in pat.iter().zip(segs).enumerate() {
        if p.starts_with('{') {
            if s.is_empty() {
                return None;
            }
            first.get_or_insert(i);
            last = Some(i);
        } else if p != s {
            return None;
        }
    }
    let (Some(a), Some(b)) = (first, last) else {
        return Some("");
    };
    // Byte offsets of segment `a`'s start and segment `b`'s end inside `rest` ("/x/y/…").
    let start: usize = segs[..a].iter().map(|s| s.len() + 1).sum::<usize>() + 1;
    let end: usize = segs[..=b].iter().map(|s| s.len() + 1).sum();
    rest.get(start..end)
}

/// The `/api/v1` part of the table: `(method, path)` → operation and its path parameter.
fn api<'a>(method: &Method, path: &'a str) -> Result<(Op, &'a str), Error> {
    let rest = path
        .strip_prefix("/api/v1")
        .filter(|r| r.starts_with('/'))
        .unwrap_or("")
        .trim_end_matches('/');
    let segs: Vec<&str> = rest.split('/').skip(1).collect();
    let m = match method.as_str() {
        "HEAD" => "GET",
        m => m,
    };
    let mut allowed: Vec<&'static str> = Vec::new();
    for route in API {
        if let Some(param) = matches(route.path, rest, &segs) {
            if route.method == m {
                return Ok((route.op, param));
            }
            if !allowed.contains(&route.method) {
                allowed.push(route.method);
            }
        }
    }
    if allowed.is_empty() {
        return Err(Error::NotFound("no such API route".into()));
    }
    Err(Error::MethodNotAllowed {
        allow: allow_header(&allowed),
    })
}

/// `Allow` for a set of methods (GET brings HEAD), from the few combinations the table has.
fn allow_header(methods: &[&str]) -> &'static str {
    let has = |m: &str| methods.contains(&m);
    let mut s = String::new();
    for (m, also) in [
        ("GET", Some("HEAD")),
        ("POST", None),
        ("PUT", None),
        ("PATCH", None),
        ("DELETE", None),
    ] {
        if has(m) {
            for x in std::iter::once(m).chain(also) {
                if !s.is_empty() {
                    s.push_str(", ");
                }
                s.push_str(x);
            }
        }
    }
    ALLOWS
        .iter()
        .find(|a| **a == s)
        .copied()
        .unwrap_or("GET, HEAD")
}

/// Every `Allow` value the table produces (kept static: `Error` holds a `&'static str`).
const ALLOWS: &[&str] = &[
    "GET, HEAD",
    "POST",
    "DELETE",
    "GET, HEAD, POST",
    "GET, HEAD, PATCH",
    "GET, HEAD, PUT",
    "GET, HEAD, PATCH, DELETE",
    "GET, HEAD, PUT, DELETE",
    "GET, HEAD, POST, DELETE",
    "PATCH, DELETE",
    "POST, DELETE",
    "PATCH",
    "GET, HEAD, POST, PUT, DELETE",
];

/// The server's handler: both planes, and the request counter.
pub struct Routes {
    delivery: Arc<Delivery>,
    control: Arc<Control>,
    requests: Arc<AtomicU64>,
    /// `[ui]`.
    ui: control::UiConfig,
}

impl Routes {
    /// `requests` is the counter the HTTP server increments (shown at `/metrics`).
    pub fn new(
        delivery: Arc<Delivery>,
        control: Arc<Control>,
        requests: Arc<AtomicU64>,
        ui: control::UiConfig,
    ) -> Self {
        Self {
            delivery,
            control,
            requests,
            ui,
        }
    }

    /// The request counter the HTTP server increments (shown at `/metrics`).
    pub fn requests(&self) -> Arc<AtomicU64> {
        self.requests.clone()
    }

    async fn dispatch(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<Body>, Error> {
        let method = req.method().clone();
        let uri = req.uri().clone();
        let accept = req.headers().get(http::header::ACCEPT).cloned();
        let answer = self.answer(req, peer, &method, &uri).await;
        match answer {
            Err(e @ (Error::NotFound(_) | Error::Gone(_)))
                if matches!(
                    route(&method, uri.path()),
                    Ok(Route::Image { .. } | Route::CdnImage { .. } | Route::Share { .. })
                ) =>
            {
                let accept = accept.as_ref().and_then(|v| v.to_str().ok());
                match self.delivery.placeholder(uri.query(), accept) {
                    Some(p) => Ok(response::error_image(
                        &e,
                        p.format.mime(),
                        p.bytes.clone(),
                        method == Method::HEAD,
                    )),
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    async fn answer(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        method: &Method,
        uri: &http::Uri,
    ) -> Result<Response<Body>, Error> {
        match route(method, uri.path())? {
            Route::Health => Ok(response::json_ok(&json!({"status": "ok"}), "no-store")),
            Route::Ready => {
                let (db, storage) = Box::pin(async {
                    tokio::join!(self.control.database_ready(), self.delivery.storage_ready())
                })
                .await;
                let word = |r: &Result<(), String>| match r {
                    Ok(()) => "ok".to_string(),
                    Err(e) => e.clone(),
                };
                let leases = if db.is_ok() {
                    Box::pin(self.control.leases_held()).await
                } else {
                    Vec::new()
                };
                let body = json!({
                    "status": if db.is_ok() && storage.is_ok() { "ready" } else { "unready" },
                    "database": word(&db),
                    "storage": word(&storage),
                    "node": self.control.node(),
                    "leases": leases,
                });
                Ok(if db.is_ok() && storage.is_ok() {
                    response::json_ok(&body, "no-store")
                } else {
                    response::json_unavailable(&body)
                })
            }
            Route::Version => Ok(response::json_ok(
                &json!({"name": "refract", "version": env!("CARGO_PKG_VERSION")}),
                "no-store",
            )),
            Route::Metrics => Ok(response::text(Box::pin(self.metrics()).await)),
            Route::OpenApi => Ok(response::asset(
                "application/json",
                openapi::document(),
                "no-cache",
            )),
            Route::Docs => Ok(response::asset(
                "text/html; charset=utf-8",
                openapi::DOCS_HTML.as_bytes(),
                "no-cache",
            )),
            Route::UiHome => {
                let home = uri.path() == "/ui" || self.ui.root_redirect;
                if !self.ui.enabled || !home {
                    return Err(Error::NotFound("no such route".into()));
                }
                Ok(response::redirect("/ui/"))
            }
            Route::Ui => {
                if !self.ui.enabled {
                    return Err(Error::NotFound(
                        "the web interface is off ([ui] enabled)".into(),
                    ));
                }
                let inm = req
                    .headers()
                    .get(http::header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok());
                ui::serve(uri.path(), uri.query(), inm, method == Method::HEAD)
                    .ok_or_else(|| Error::NotFound("no such file".into()))
            }
            Route::DocsScript => Ok(response::asset(
                "text/javascript; charset=utf-8",
                openapi::RAPIDOC_JS,
                "public, max-age=86400",
            )),
            Route::Image { raw_key } => {
                crate::delivery::img::handle(&self.delivery, &req, raw_key, peer).await
            }
            Route::CdnImage { rest } => {
                crate::delivery::cdn_cgi::handle(&self.delivery, &req, rest, peer).await
            }
            Route::Share { token } => {
                Box::pin(crate::delivery::img::shared(
                    &self.delivery,
                    &req,
                    token,
                    peer,
                ))
                .await
            }
            // The control plane's futures are large: boxed, so that each request's future (a
            // cache hit's included) stays small to create and move.
            Route::Random => Ok(Box::pin(control::handle(
                &self.control,
                req,
                peer,
                Ok((Op::Random, String::new())),
                true,
            ))
            .await),
            Route::Api(routed) => {
                let routed = routed.map(|(op, p)| (op, p.to_string()));
                Ok(Box::pin(control::handle(&self.control, req, peer, routed, false)).await)
            }
        }
    }

    /// `/metrics`: Prometheus text.
    async fn metrics(&self) -> String {
        let d = self.delivery.stats();
        let hooks = self.control.webhook_metrics().await;
        format!(
            "# TYPE refract_requests_total counter\nrefract_requests_total {}\n\
             # TYPE refract_transforms_total counter\nrefract_transforms_total {}\n\
             # TYPE refract_cache_hits_total counter\nrefract_cache_hits_total {}\n\
             # TYPE refract_cache_misses_total counter\nrefract_cache_misses_total {}\n\
             # TYPE refract_memo_hits_total counter\nrefract_memo_hits_total {}\n\
             # TYPE refract_decoded_hits_total counter\nrefract_decoded_hits_total {}\n\
             # TYPE refract_decoded_misses_total counter\nrefract_decoded_misses_total {}\n\
             # TYPE refract_cpu_waiting gauge\nrefract_cpu_waiting {}\n\
             # TYPE refract_cpu_running gauge\nrefract_cpu_running {}\n\
             # TYPE refract_persistent_cache_bytes gauge\nrefract_persistent_cache_bytes {}\n\
             # TYPE refract_log_lines_dropped_total counter\nrefract_log_lines_dropped_total {}\n{hooks}",
            self.requests.load(Ordering::Relaxed),
            d.transforms,
            d.cache_hits,
            d.cache_misses,
            d.memo_hits,
            d.decoded.0,
            d.decoded.1,
            d.cpu_waiting,
            d.cpu_running,
            d.persistent_bytes,
            self.control.log_lines_dropped(),
        )
    }
}

impl Handler for Routes {
    /// Share tokens (`/s/{token}`) are capabilities: never in a log line.
    fn loggable_path<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        match path.strip_prefix("/s/") {
            Some(_) => "/s/…".into(),
            None => path.into(),
        }
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let head = req.method() == Method::HEAD;
        match self.dispatch(req, peer).await {
            Ok(r) => r,
            Err(e) => {
                if e.status().is_server_error() {
                    tracing::error!(error = ?e, "request failed");
                }
                response::error(&e, head)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table() {
        let get = Method::GET;
        assert!(matches!(route(&get, "/health"), Ok(Route::Health)));
        assert!(matches!(
            route(&Method::HEAD, "/img/a/b.jpg"),
            Ok(Route::Image { raw_key: "a/b.jpg" })
        ));
        assert!(matches!(
            route(&get, "/img/"),
            Ok(Route::Image { raw_key: "" })
        ));
        assert!(matches!(
            route(&Method::POST, "/img/a.jpg"),
            Err(Error::MethodNotAllowed { .. })
        ));
        assert!(matches!(route(&get, "/nope"), Err(Error::NotFound(_))));
        assert!(matches!(route(&get, "/img"), Err(Error::NotFound(_))));
        assert!(matches!(
            route(&Method::DELETE, "/api/v1/images/x"),
            Ok(Route::Api(Ok((Op::DeleteImage, "x"))))
        ));
        assert!(matches!(
            route(&Method::POST, "/api/v1/nope"),
            Ok(Route::Api(Err(Error::NotFound(_))))
        ));
        assert!(matches!(route(&get, "/random"), Ok(Route::Random)));
        assert!(matches!(
            route(&get, "/cdn-cgi/image/w=1/a.jpg"),
            Ok(Route::CdnImage { rest: "w=1/a.jpg" })
        ));
        assert!(matches!(
            route(&Method::POST, "/cdn-cgi/image/w=1/a.jpg"),
            Err(Error::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            route(&Method::POST, "/random"),
            Err(Error::MethodNotAllowed { .. })
        ));
    }

    #[test]
    fn api_routes() {
        let get = Method::GET;
        assert_eq!(api(&get, "/api/v1/images").unwrap().0, Op::ListImages);
        assert_eq!(
            api(&get, "/api/v1/images/abc").unwrap(),
            (Op::GetImage, "abc")
        );
        assert_eq!(
            api(&Method::DELETE, "/api/v1/keys/k1").unwrap(),
            (Op::DeleteKey, "k1")
        );
        assert_eq!(
            api(&Method::POST, "/api/v1/keys/validate").unwrap().0,
            Op::ValidateKey
        );
        assert!(matches!(
            api(&Method::PUT, "/api/v1/images"),
            Err(Error::MethodNotAllowed { .. })
        ));
        assert!(matches!(api(&get, "/api/v1/nope"), Err(Error::NotFound(_))));
        assert!(matches!(
            api(&get, "/api/v2/images"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            api(&get, "/api/v1images"),
            Err(Error::NotFound(_))
        ));
        assert_eq!(
            api(&Method::DELETE, "/api/v1/albums/a1/tokens/t1").unwrap(),
            (Op::DeleteAlbumToken, "a1/tokens/t1")
        );
        assert_eq!(
            api(&Method::POST, "/api/v1/webhooks/w/deliveries/d/redeliver").unwrap(),
            (Op::Redeliver, "w/deliveries/d")
        );
        assert_eq!(
            api(&Method::HEAD, "/api/v1/images/x/shares/").unwrap(),
            (Op::ListShares, "x")
        );
        assert!(matches!(
            api(&get, "/api/v1/images//shares"),
            Err(Error::NotFound(_))
        ));
    }

    /// Every path of the table answers its exact `Allow` to a method it lacks.
    #[test]
    fn every_allow_is_exact() {
        for route in API {
            let path = format!("/api/v1{}", route.path.replace('{', "x").replace('}', ""));
            let rest = path.trim_start_matches("/api/v1");
            let segs: Vec<&str> = rest.split('/').skip(1).collect();
            let mut methods: Vec<&str> = API
                .iter()
                .filter(|o| matches(o.path, rest, &segs).is_some())
                .map(|o| o.method)
                .collect();
            methods.dedup();
            let Err(Error::MethodNotAllowed { allow }) = api(&Method::OPTIONS, &path) else {
                panic!("{path}: OPTIONS should be refused");
            };
            for m in &methods {
                assert!(
                    allow.split(", ").any(|a| a == *m),
                    "{path}: {allow} lacks {m}"
                );
            }
            assert_eq!(
                allow.split(", ").count(),
                methods.len() + usize::from(methods.contains(&"GET")),
                "{path}: {allow}"
            );
        }
    }
}
