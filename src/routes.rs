//! The one route table: `(method, path)` → handler, for every route the server has, and the
//! `Handler` the HTTP server calls. Errors become responses here (`error` picks the status).
//!
//! To add a route: a line in `route` (or in `api` for `/api/v1`), a `Route` variant if it is
//! a new kind, and its arm in `Routes::dispatch`; the handler lives in its plane's module.

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
        "/version" => Route::Version,
        "/metrics" => Route::Metrics,
        "/random" => Route::Random,
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

/// The `/api/v1` part of the table: `(method, path)` → operation and its path parameter.
fn api<'a>(method: &Method, path: &'a str) -> Result<(Op, &'a str), Error> {
    let rest = path.strip_prefix("/api/v1").unwrap_or("");
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').skip(1).collect();
    let m = method.as_str();
    let not_allowed = |allow: &'static str| Err(Error::MethodNotAllowed { allow });
    match (segs.as_slice(), m) {
        (["images"], "GET" | "HEAD") => Ok((Op::ListImages, "")),
        (["images"], "POST") => Ok((Op::Upload, "")),
        (["images"], _) => not_allowed("GET, HEAD, POST"),
        (["images", id], "GET" | "HEAD") => Ok((Op::GetImage, id)),
        (["images", id], "PATCH") => Ok((Op::PatchImage, id)),
        (["images", id], "DELETE") => Ok((Op::DeleteImage, id)),
        (["images", _], _) => not_allowed("GET, HEAD, PATCH, DELETE"),
        (["images", id, "shares"], "GET" | "HEAD") => Ok((Op::ListShares, id)),
        (["images", id, "shares"], "POST") => Ok((Op::CreateShare, id)),
        (["images", _, "shares"], _) => not_allowed("GET, HEAD, POST"),
        (["shares", id], "DELETE") => Ok((Op::DeleteShare, id)),
        (["avatars"], "POST") => Ok((Op::PutAvatar, "")),
        (["avatars"], _) => not_allowed("POST"),
        (["avatars", u], "GET" | "HEAD") => Ok((Op::GetAvatar, u)),
        (["avatars", u], "PUT") => Ok((Op::PutAvatar, u)),
        (["avatars", u], "DELETE") => Ok((Op::DeleteAvatar, u)),
        (["avatars", _], _) => not_allowed("GET, HEAD, PUT, DELETE"),
        (["tenants"], "GET" | "HEAD") => Ok((Op::ListTenants, "")),
        (["tenants"], "POST") => Ok((Op::CreateTenant, "")),
        (["tenants"], _) => not_allowed("GET, HEAD, POST"),
        (["tenants", t], "GET" | "HEAD") => Ok((Op::GetTenant, t)),
        (["tenants", t], "PATCH") => Ok((Op::PatchTenant, t)),
        (["tenants", _], _) => not_allowed("GET, HEAD, PATCH"),
        (["tenants", t, "quota"], "GET" | "HEAD") => Ok((Op::GetQuota, t)),
        (["tenants", t, "quota"], "PUT") => Ok((Op::SetQuota, t)),
        (["tenants", _, "quota"], _) => not_allowed("GET, HEAD, PUT"),
        (["shares", _], _) => not_allowed("DELETE"),
        (["tags"], "GET" | "HEAD") => Ok((Op::Tags, "")),
        (["random"], "GET" | "HEAD") => Ok((Op::Random, "")),
        (["keys"], "GET" | "HEAD") => Ok((Op::ListKeys, "")),
        (["keys"], "POST") => Ok((Op::CreateKey, "")),
        (["keys"], _) => not_allowed("GET, HEAD, POST"),
        (["keys", "validate"], "POST" | "GET") => Ok((Op::ValidateKey, "")),
        (["keys", id], "DELETE") => Ok((Op::DeleteKey, id)),
        (["keys", _], _) => not_allowed("DELETE"),
        (["maintenance", "cleanup"], "POST") => Ok((Op::Cleanup, "")),
        (["maintenance", "cleanup"], _) => not_allowed("POST"),
        (["config"], "GET" | "HEAD") => Ok((Op::Config, "")),
        (["stats"], "GET" | "HEAD") => Ok((Op::Stats, "")),
        (["tags" | "random" | "config" | "stats"], _) => not_allowed("GET, HEAD"),
        (["albums"], "GET" | "HEAD") => Ok((Op::ListAlbums, "")),
        (["albums"], "POST") => Ok((Op::CreateAlbum, "")),
        (["albums"], _) => not_allowed("GET, HEAD, POST"),
        (["albums", id], "GET" | "HEAD") => Ok((Op::GetAlbum, id)),
        (["albums", id], "PATCH") => Ok((Op::PatchAlbum, id)),
        (["albums", id], "DELETE") => Ok((Op::DeleteAlbum, id)),
        (["albums", _], _) => not_allowed("GET, HEAD, PATCH, DELETE"),
        (["albums", id, "images"], "GET" | "HEAD") => Ok((Op::AlbumImages, id)),
        (["albums", id, "images"], "POST") => Ok((Op::AddAlbumImages, id)),
        (["albums", id, "images"], "DELETE") => Ok((Op::RemoveAlbumImages, id)),
        (["albums", _, "images"], _) => not_allowed("GET, HEAD, POST, DELETE"),
        (["albums", id, "tokens"], "GET" | "HEAD") => Ok((Op::ListAlbumTokens, id)),
        (["albums", id, "tokens"], "POST") => Ok((Op::CreateAlbumToken, id)),
        (["albums", _, "tokens"], _) => not_allowed("GET, HEAD, POST"),
        (["albums", _, "tokens", _], "DELETE") => Ok((
            Op::DeleteAlbumToken,
            rest.trim_end_matches('/')
                .strip_prefix("/albums/")
                .unwrap_or(""),
        )),
        (["albums", _, "tokens", _], _) => not_allowed("DELETE"),
        (["audit"], "GET" | "HEAD") => Ok((Op::Audit, "")),
        (["audit"], _) => not_allowed("GET, HEAD"),
        (["auth", "login"], "POST") => Ok((Op::Login, "")),
        (["auth", "register"], "POST") => Ok((Op::Register, "")),
        (["auth", "register"], _) => not_allowed("POST"),
        (["auth", "refresh"], "POST") => Ok((Op::Refresh, "")),
        (["auth", "logout"], "POST") => Ok((Op::Logout, "")),
        (["auth", "login" | "refresh" | "logout"], _) => not_allowed("POST"),
        (["auth", "me"], "GET" | "HEAD") => Ok((Op::Me, "")),
        (["auth", "me"], "PATCH") => Ok((Op::PatchMe, "")),
        (["auth", "me"], _) => not_allowed("GET, HEAD, PATCH"),
        (["auth", "me", "password"], "POST") => Ok((Op::ChangePassword, "")),
        (["auth", "me", "password"], _) => not_allowed("POST"),
        (["webhooks"], "GET" | "HEAD") => Ok((Op::ListWebhooks, "")),
        (["webhooks"], "POST") => Ok((Op::CreateWebhook, "")),
        (["webhooks"], _) => not_allowed("GET, HEAD, POST"),
        (["webhooks", id], "GET" | "HEAD") => Ok((Op::GetWebhook, id)),
        (["webhooks", id], "PATCH") => Ok((Op::PatchWebhook, id)),
        (["webhooks", id], "DELETE") => Ok((Op::DeleteWebhook, id)),
        (["webhooks", _], _) => not_allowed("GET, HEAD, PATCH, DELETE"),
        (["webhooks", id, "rotate-secret"], "POST") => Ok((Op::RotateWebhookSecret, id)),
        (["webhooks", id, "test"], "POST") => Ok((Op::TestWebhook, id)),
        (["webhooks", _, "rotate-secret" | "test"], _) => not_allowed("POST"),
        (["webhooks", id, "deliveries"], "GET" | "HEAD") => Ok((Op::WebhookDeliveries, id)),
        (["webhooks", _, "deliveries"], _) => not_allowed("GET, HEAD"),
        (["webhooks", _, "deliveries", _, "redeliver"], "POST") => Ok((
            Op::Redeliver,
            rest.trim_end_matches('/')
                .trim_start_matches("/webhooks/")
                .trim_end_matches("/redeliver"),
        )),
        (["webhooks", _, "deliveries", _, "redeliver"], _) => not_allowed("POST"),
        _ => Err(Error::NotFound("no such API route".into())),
    }
}

/// The server's handler: both planes, and the request counter.
pub struct Routes {
    delivery: Arc<Delivery>,
    control: Arc<Control>,
    requests: Arc<AtomicU64>,
}

impl Routes {
    pub fn new(delivery: Arc<Delivery>, control: Arc<Control>) -> Self {
        Self {
            delivery,
            control,
            requests: Arc::new(AtomicU64::new(0)),
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
        let delivery_route = matches!(
            route(&method, uri.path()),
            Ok(Route::Image { .. } | Route::CdnImage { .. } | Route::Share { .. })
        );
        let accept = req
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let answer = self.answer(req, peer, &method, &uri).await;
        match answer {
            Err(e @ (Error::NotFound(_) | Error::Gone(_))) if delivery_route => {
                match self.delivery.placeholder(uri.query(), accept.as_deref()) {
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
            Route::Version => Ok(response::json_ok(
                &json!({"name": "refract", "version": env!("CARGO_PKG_VERSION")}),
                "no-store",
            )),
            Route::Metrics => Ok(response::text(self.metrics().await)),
            Route::Image { raw_key } => {
                crate::delivery::img::handle(&self.delivery, &req, raw_key, peer).await
            }
            Route::CdnImage { rest } => {
                crate::delivery::cdn_cgi::handle(&self.delivery, &req, rest, peer).await
            }
            Route::Share { token } => {
                crate::delivery::img::shared(&self.delivery, &req, token, peer).await
            }
            Route::Random => Ok(control::handle(
                &self.control,
                req,
                peer,
                Ok((Op::Random, String::new())),
                true,
            )
            .await),
            Route::Api(routed) => {
                let routed = routed.map(|(op, p)| (op, p.to_string()));
                Ok(control::handle(&self.control, req, peer, routed, false).await)
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
             # TYPE refract_cpu_waiting gauge\nrefract_cpu_waiting {}\n\
             # TYPE refract_cpu_running gauge\nrefract_cpu_running {}\n\
             # TYPE refract_persistent_cache_bytes gauge\nrefract_persistent_cache_bytes {}\n{hooks}",
            self.requests.load(Ordering::Relaxed),
            d.transforms,
            d.cache_hits,
            d.cache_misses,
            d.cpu_waiting,
            d.cpu_running,
            d.persistent_bytes,
        )
    }
}

impl Handler for Routes {
    /// Share tokens (`/s/{token}`) are capabilities: never in a log line.
    fn loggable_path(&self, path: &str) -> String {
        match path.strip_prefix("/s/") {
            Some(_) => "/s/…".into(),
            None => path.to_string(),
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
    }
}
