//! The control plane: `/api/v1/...` (and `/random`). Each request: client IP → key → rate limit →
//! route → scope check → handler; every response carries `X-RateLimit-*`.
//!
//! Invariants: no SQL and no pixel code here (the store, the library and `meta` do that);
//! another tenant's image is a 404, never a 403; keys never reach a log line.

mod images;
mod keys;
mod misc;
mod query;
mod view;

use crate::access::auth::{self, Principal, Scope};
use crate::access::ratelimit::{self, Bucket, Outcome};
use crate::app::App;
use crate::error::Error;
use crate::http::response::{self, Body};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

pub use view::Base;

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

/// A tenant name: 1-64 of `a-z 0-9 - _`.
pub fn valid_tenant(t: &str) -> bool {
    (1..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
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
}

impl Op {
    /// The scope needed; `None` = no key needed.
    fn scope(self) -> Option<Scope> {
        match self {
            Self::Random | Self::ValidateKey => None,
            Self::ListImages | Self::GetImage | Self::Tags | Self::Stats => Some(Scope::Read),
            Self::Upload | Self::PatchImage | Self::DeleteImage => Some(Scope::Write),
            Self::CreateKey | Self::ListKeys | Self::DeleteKey | Self::Cleanup | Self::Config => {
                Some(Scope::Admin)
            }
        }
    }
}

/// `(method, path)` → operation and its path parameter.
fn route<'a>(method: &Method, path: &'a str) -> Result<(Op, &'a str), Error> {
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
        _ => Err(Error::NotFound("no such API route".into())),
    }
}

/// What a handler gets.
pub(crate) struct Ctx<'a> {
    pub app: &'a App,
    pub req: Request<hyper::body::Incoming>,
    pub caller: Option<Principal>,
    pub base: Base,
}

impl Ctx<'_> {
    /// The caller, who has passed the scope check.
    fn principal(&self) -> Result<&Principal, Error> {
        self.caller
            .as_ref()
            .ok_or_else(|| Error::Unauthorized("an API key is required".into()))
    }

    fn query(&self) -> &str {
        self.req.uri().query().unwrap_or("")
    }
}

/// Handle one `/api/...` request (or `/random` with `redirect`).
pub async fn handle(
    app: &App,
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    redirect: bool,
) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    let ip = ratelimit::client_ip(&app.trusted_proxies, peer, req.headers());
    let presented = auth::presented(req.headers()).map(str::to_string);
    let caller = match &presented {
        Some(k) => match app.auth.identify(&app.store, k).await {
            Ok(p) => p,
            Err(e) => return response::error(&e.into(), head),
        },
        None => None,
    };
    let client = caller
        .as_ref()
        .map_or_else(|| format!("ip:{ip}"), |p| format!("key:{}", p.key_id));
    let over = caller.as_ref().map(|p| p.rate).unwrap_or_default();
    let routed = if redirect {
        Ok((Op::Random, String::new()))
    } else {
        route(req.method(), req.uri().path()).map(|(op, p)| (op, p.to_string()))
    };
    let mut outcome = app.ratelimits.check(Bucket::Api, &client, &over);
    if let Ok((Op::Upload, _)) = routed {
        outcome = ratelimit::merge(
            outcome,
            app.ratelimits.check(Bucket::Upload, &client, &over),
        );
    }
    let result = match (outcome, routed) {
        (Outcome::Denied { retry_after, .. }, _) => Err(Error::RateLimited { retry_after }),
        (_, Err(e)) => Err(e),
        (_, Ok((op, param))) => {
            let ctx = Ctx {
                app,
                base: Base::of(app, req.headers()),
                req,
                caller,
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
        *resp.body_mut() = Body::new(Bytes::new());
    }
    resp
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
    }
}

/// Read a JSON body of at most 1 MiB into `T`; errors are 400s naming what is wrong.
pub(crate) async fn json_body<T: serde::de::DeserializeOwned>(
    req: Request<hyper::body::Incoming>,
) -> Result<T, Error> {
    const MAX: usize = 1 << 20;
    let body = http_body_util::Limited::new(req.into_body(), MAX)
        .collect()
        .await
        .map_err(|_| Error::PayloadTooLarge(format!("JSON body over {MAX} bytes")))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| Error::BadRequest {
        param: None,
        message: format!("invalid JSON body: {e}"),
    })
}

/// A JSON response with `Cache-Control: no-store`.
pub(crate) fn json(status: http::StatusCode, v: &serde_json::Value) -> Response<Body> {
    response::json(status, v, "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_routes() {
        let get = Method::GET;
        assert_eq!(route(&get, "/api/v1/images").unwrap().0, Op::ListImages);
        assert_eq!(
            route(&get, "/api/v1/images/abc").unwrap(),
            (Op::GetImage, "abc")
        );
        assert_eq!(
            route(&Method::DELETE, "/api/v1/keys/k1").unwrap(),
            (Op::DeleteKey, "k1")
        );
        assert_eq!(
            route(&Method::POST, "/api/v1/keys/validate").unwrap().0,
            Op::ValidateKey
        );
        assert!(matches!(
            route(&Method::PUT, "/api/v1/images"),
            Err(Error::MethodNotAllowed { .. })
        ));
        assert!(matches!(
            route(&get, "/api/v1/nope"),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            route(&get, "/api/v2/images"),
            Err(Error::NotFound(_))
        ));
    }

    #[test]
    fn tenant_names() {
        assert!(valid_tenant("default") && valid_tenant("acme-1_x"));
        assert!(!valid_tenant("") && !valid_tenant("Acme") && !valid_tenant("a/b"));
    }
}
