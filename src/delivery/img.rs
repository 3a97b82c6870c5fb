//! `GET`/`HEAD /img/{key}`: orchestrates sanitise → parse → negotiate → stat → key → 304 →
//! cache (coalesced) → fetch → CPU pool → pipeline → respond. No pixel code, no SQL here.

use super::Delivery;
use crate::access::auth::RateOverride;
use crate::access::ratelimit::{Bucket, Outcome};
use crate::access::visibility::Access;
use crate::delivery::key::CacheKey;
use crate::delivery::negotiate::{self, Accept, NegotiateError};
use crate::delivery::presets;
use crate::delivery::signing::SignatureError;
use crate::delivery::variants::{Wanted, AVIF_PENDING_MAX_AGE};
use crate::error::Error;
use crate::http::response::{self, Body, ImageMeta, RangeReq};
use crate::pipeline::format::ImageFormat;
use crate::pipeline::output::OutputSpec;
use crate::pipeline::transform::{self, Transform};
use crate::storage::origin::{sanitize_key, Freshness, Stat};
use crate::util::query::Query;
use http::{header, Request, Response};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Handle one `/img` request.
pub async fn handle<B>(
    app: &Arc<Delivery>,
    req: &Request<B>,
    raw_key: &str,
    peer: std::net::SocketAddr,
) -> Result<Response<Body>, Error> {
    let head = req.method() == http::Method::HEAD;
    if app.img_rate_limited {
        let client = format!(
            "ip:{}",
            crate::http::request::client_ip(&app.trusted_proxies, peer, req.headers())
        );
        if let Outcome::Denied { retry_after, .. } =
            app.ratelimits
                .check(Bucket::Img, &client, &RateOverride::default())
        {
            return Err(Error::RateLimited { retry_after });
        }
    }
    let key = sanitize_key(raw_key)?;
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let query = app
        .signer
        .check(req.uri().path(), query, crate::util::clock::now_secs())
        .map_err(|e| match e {
            SignatureError::Missing => {
                Error::Forbidden("this server serves signed URLs only (missing s)".into())
            }
            SignatureError::Invalid => Error::Forbidden("invalid URL signature".into()),
            SignatureError::Expired => Error::Gone("this signed URL has expired".into()),
        })?;
    let query = presets::expand(query, &app.presets, app.presets_only)?;
    let t = transform::parse(&query, &app.params)?;
    let cache_control = access_cache_control(app, req, &key).await?;
    let cc = cache_control.as_deref().unwrap_or(&app.cache_control);
    match t {
        None => original(app, req, &key, head, cc).await,
        Some(t) => variant(app, req, &key, t, head, cc).await,
    }
}

/// Objects of API images may be private or expiring: hide them (404, as if absent) from those
/// who may not see them, and keep shared caches from holding them too long. `Some` replaces
/// the configured `Cache-Control`.
async fn access_cache_control<B>(
    app: &Delivery,
    req: &Request<B>,
    key: &str,
) -> Result<Option<String>, Error> {
    let tenant = if app.visibility.is_restricted(key) {
        match crate::http::request::presented_key(req.headers()) {
            Some(k) => app
                .auth
                .identify(k)
                .await?
                .filter(|p| p.has(crate::access::auth::Scope::Read))
                .map(|p| p.tenant),
            None => None,
        }
    } else {
        None
    };
    let now = crate::util::clock::now_ms();
    match app.visibility.check(key, now, tenant.as_deref()) {
        Access::Public => Ok(None),
        Access::Until(at) => Ok(Some(format!(
            "public, max-age={}",
            (at - now).max(0) / 1000
        ))),
        Access::Private => Ok(Some("private, no-store".into())),
        Access::Hidden => Err(Error::NotFound("image not found".into())),
    }
}

fn header_str<B>(req: &Request<B>, name: header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn modified(stat: &Stat) -> Option<SystemTime> {
    stat.version
        .modified
        .and_then(|s| u64::try_from(s).ok())
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

fn is_not_modified<B>(req: &Request<B>, etag: &str, last_modified: Option<SystemTime>) -> bool {
    match header_str(req, header::IF_NONE_MATCH) {
        Some(inm) => response::if_none_match(Some(inm), etag),
        None => {
            response::not_modified_since(header_str(req, header::IF_MODIFIED_SINCE), last_modified)
        }
    }
}

async fn original<B>(
    app: &Delivery,
    req: &Request<B>,
    key: &str,
    head: bool,
    cache_control: &str,
) -> Result<Response<Body>, Error> {
    let stat = app.origin.stat(key).await?;
    let len = stat.version.len;
    let etag = CacheKey::original(key, &stat.version).etag();
    let mut meta = ImageMeta {
        content_type: "application/octet-stream",
        etag: &etag,
        last_modified: modified(&stat),
        cache_control,
        vary_accept: false,
        x_cache: None,
        accept_ranges: true,
    };
    if is_not_modified(req, &etag, meta.last_modified) {
        return Ok(response::not_modified(&meta));
    }
    let if_range_ok = header_str(req, header::IF_RANGE).is_none_or(|v| v.trim() == etag);
    let range = if if_range_ok {
        response::parse_range(header_str(req, header::RANGE), len)
    } else {
        RangeReq::Full
    };
    let sniff =
        |b: &[u8]| ImageFormat::sniff(b).map_or("application/octet-stream", ImageFormat::mime);
    match range {
        RangeReq::Unsatisfiable => Err(Error::RangeNotSatisfiable { len }),
        RangeReq::Partial(s, e) => {
            let prefix = app.origin.read_range(key, 0, len.min(64)).await?;
            meta.content_type = sniff(&prefix);
            let body = app.origin.read_range(key, s, e + 1).await?;
            Ok(response::image(&meta, body, Some((s, e, len)), head))
        }
        RangeReq::Full if head => {
            let prefix = app.origin.read_range(key, 0, len.min(64)).await?;
            meta.content_type = sniff(&prefix);
            Ok(response::image_head(&meta, len))
        }
        RangeReq::Full => {
            let body = app
                .origin
                .read(key, len, app.limits.max_source_bytes)
                .await?;
            meta.content_type = sniff(&body);
            Ok(response::image(&meta, body, None, false))
        }
    }
}

async fn variant<B>(
    app: &Arc<Delivery>,
    req: &Request<B>,
    key: &str,
    t: Transform,
    head: bool,
    cache_control: &str,
) -> Result<Response<Body>, Error> {
    let accept = header_str(req, header::ACCEPT).map_or_else(Accept::any, Accept::parse);
    let spec = negotiate::decide(t.format, &accept, app.enabled).map_err(|e| match e {
        NegotiateError::Disabled(f) => Error::bad_param(
            "fm",
            format!("output format {f} is disabled on this server"),
        ),
        NegotiateError::NotAcceptable => {
            Error::NotAcceptable("no image format in Accept can be produced".into())
        }
    })?;
    let (mut stat, freshness) = app.origin.stat_or_stale(key).await?;
    if let Freshness::Stale(outage) = freshness {
        let wanted = Wanted {
            key,
            stat: &stat,
            transform: &t,
        };
        if let Some(r) = stale(app, req, &wanted, spec, head, cache_control).await {
            return Ok(r);
        }
        // Nothing kept: the outage's own answer (502 or 504), or storage asked again when the
        // outage was only remembered.
        match outage {
            Some(e) => return Err(e.into()),
            None => stat = app.origin.stat(key).await?,
        }
    }
    let max = app.limits.max_source_bytes;
    if stat.version.len > max {
        return Err(Error::PayloadTooLarge(format!(
            "source is {} bytes; the limit is {max}",
            stat.version.len
        )));
    }
    let wanted = Wanted {
        key,
        stat: &stat,
        transform: &t,
    };
    let plan = app.plan(&wanted, spec).await?;
    let cache_control = if plan.interim {
        at_most(cache_control, AVIF_PENDING_MAX_AGE)
    } else {
        std::borrow::Cow::Borrowed(cache_control)
    };
    let etag = plan.key.etag();
    let mut meta = ImageMeta {
        content_type: "",
        etag: &etag,
        last_modified: modified(&stat),
        cache_control: &cache_control,
        vary_accept: plan.spec.varies(),
        x_cache: None,
        accept_ranges: false,
    };
    if is_not_modified(req, &etag, None) {
        return Ok(response::not_modified(&meta));
    }
    let (enc, tier) = app.fetch(&wanted, plan).await?;
    meta.content_type = enc.format.mime();
    meta.x_cache = Some(tier.x_cache());
    Ok(response::image(&meta, enc.bytes.clone(), None, head))
}

/// `Cache-Control` of a variant served stale during an origin outage: short, so that caches
/// ask again soon after the origin is back.
const STALE_MAX_AGE: u32 = 60;

/// The origin cannot be reached but a version of the source was seen within
/// `storage.stale_if_error_secs`: the variant from a tier (`X-Cache: STALE`), if one holds it.
async fn stale<B>(
    app: &Arc<Delivery>,
    req: &Request<B>,
    wanted: &Wanted<'_>,
    spec: OutputSpec,
    head: bool,
    cache_control: &str,
) -> Option<Response<Body>> {
    let (enc, key) = app.stored(wanted, spec).await?;
    let cache_control = at_most(cache_control, STALE_MAX_AGE);
    let etag = key.etag();
    let meta = ImageMeta {
        content_type: enc.format.mime(),
        etag: &etag,
        last_modified: modified(wanted.stat),
        cache_control: &cache_control,
        vary_accept: spec.varies(),
        x_cache: Some("STALE"),
        accept_ranges: false,
    };
    if is_not_modified(req, &etag, None) {
        return Some(response::not_modified(&meta));
    }
    Some(response::image(&meta, enc.bytes.clone(), None, head))
}

/// `Cache-Control` for an answer that should not be kept long: `public, max-age=secs`, unless
/// the given one is private, not to be stored, or already shorter (an expiring image's).
fn at_most(cache_control: &str, secs: u32) -> std::borrow::Cow<'_, str> {
    let current = cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.trim().parse::<u32>().ok());
    if cache_control.contains("private")
        || cache_control.contains("no-store")
        || current.is_some_and(|c| c <= secs)
    {
        std::borrow::Cow::Borrowed(cache_control)
    } else {
        std::borrow::Cow::Owned(format!("public, max-age={secs}"))
    }
}

#[cfg(test)]
mod tests {
    use super::at_most;

    #[test]
    fn short_answers_never_outlive_a_shorter_or_private_policy() {
        let d = "public, max-age=86400, stale-while-revalidate=604800";
        assert_eq!(at_most(d, 60), "public, max-age=60");
        assert_eq!(at_most("public, max-age=12", 60), "public, max-age=12");
        assert_eq!(at_most("private, no-store", 60), "private, no-store");
    }
}
