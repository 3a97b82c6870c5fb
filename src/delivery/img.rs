//! `GET`/`HEAD /img/{key}`: orchestrates sanitise → signature → presets → parse → visibility →
//! caching policy → negotiate → stat → key → 304 → tiers (coalesced) → CPU pool → pipeline →
//! respond; `serve` is shared with the `/cdn-cgi/image/` form. No pixel code, no SQL here.

use super::Delivery;
use crate::access::auth::RateOverride;
use crate::access::auth::ShareUse;
use crate::access::ratelimit::{Bucket, Outcome};
use crate::access::visibility::Access;
use crate::delivery::key::CacheKey;
use crate::delivery::memo;
use crate::delivery::negotiate::{self, Accept, NegotiateError};
use crate::delivery::policy::{self, Caching};
use crate::delivery::presets;
use crate::delivery::signing::SignatureError;
use crate::delivery::variants::{Wanted, AVIF_PENDING_MAX_AGE};
use crate::error::Error;
use crate::http::response::{self, Body, ImageMeta, RangeReq};
use crate::pipeline::format::ImageFormat;
use crate::pipeline::output::{Enabled, OutputSpec};
use crate::pipeline::transform::{self, FormatRequest, Transform};
use crate::storage::origin::{sanitize_key, Freshness, Stat};
use crate::util::query::{Pair, Query};
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
    rate_limit(app, req, peer).await?;
    if let Some(r) = remembered(app, req).await {
        return Ok(r);
    }
    let key = sanitize_key(raw_key)?;
    let query = Query::parse(req.uri().query().unwrap_or(""));
    // Boxed: the full path's future is large, and a memo hit should not carry it.
    Box::pin(serve(app, req, key, query, Vec::new())).await
}

/// The per-IP `/img` rate limit, when configured.
pub(super) async fn rate_limit<B>(
    app: &Delivery,
    req: &Request<B>,
    peer: std::net::SocketAddr,
) -> Result<(), Error> {
    if !app.img_rate_limited {
        return Ok(());
    }
    let client = format!(
        "ip:{}",
        crate::http::request::client_ip(&app.trusted_proxies, peer, req.headers())
    );
    match Box::pin(
        app.ratelimits
            .check(Bucket::Img, &client, &RateOverride::default()),
    )
    .await
    {
        Outcome::Denied { retry_after, .. } => Err(Error::RateLimited { retry_after }),
        _ => Ok(()),
    }
}

/// The answer the request memo holds for this request line, when every check it makes still
/// holds (see `memo`); `None`: take the full path.
pub(super) async fn remembered<B>(app: &Delivery, req: &Request<B>) -> Option<Response<Body>> {
    let line = memo::request_key(req)?;
    let now = crate::util::clock::now_ms();
    // What the line resolved to, if it still holds without asking storage; else the object
    // whose `stat` must be asked again.
    let epoch = app.cache.epoch();
    let checked = app.memo.with(line.0, line.1, |e| {
        if e.until_secs
            .is_some_and(|until| until <= crate::util::clock::now_secs())
            || app.visibility.check(&e.storage_key, now, None) != Access::Public
        {
            return None;
        }
        Some(match app.origin.still_fresh(&e.stat) {
            true => Ok((e.cache_key, e.headers.clone(), e.variant_held(now, epoch))),
            false => Err(e.storage_key.clone()),
        })
    })??;
    let (cache_key, headers, held) = match checked {
        Ok(found) => found,
        Err(storage_key) => {
            // Boxed: storage's future is large, and asked once per stat TTL at most.
            let (stat, fresh) = Box::pin(app.origin.stat_or_stale(&storage_key))
                .await
                .ok()?;
            if fresh != Freshness::Fresh {
                return None;
            }
            app.memo.with(line.0, line.1, |e| {
                (e.stat.version == stat.version).then(|| {
                    e.stat = stat;
                    (e.cache_key, e.headers.clone(), None)
                })
            })??
        }
    };
    let enc = match held {
        Some(enc) => {
            app.cache.count_hit();
            enc
        }
        None => {
            let enc = app.cache.get(&cache_key).await?;
            app.memo
                .with(line.0, line.1, |e| e.told(cache_key, &enc, now, epoch));
            enc
        }
    };
    app.memo.hit();
    let body = if req.method() == http::Method::HEAD {
        bytes::Bytes::new()
    } else {
        enc.bytes.clone()
    };
    Some(response::with_headers(headers, body))
}

/// An answer the request memo may keep: public, for ever, opened by no capability, shown rather
/// than downloaded; valid until the signature's `expires` when there is one.
#[derive(Clone, Copy)]
struct Memoable {
    until_secs: Option<u64>,
}

/// What both URL forms share once the storage key is known: signature (over the request's
/// own path and query) → `options` (the `/cdn-cgi/image/` options, as pairs) → presets →
/// `onerror` → parse → visibility → the original or a variant; a 404 cached briefly when
/// configured.
pub(super) async fn serve<B>(
    app: &Arc<Delivery>,
    req: &Request<B>,
    key: String,
    query: Query,
    options: Vec<Pair>,
) -> Result<Response<Body>, Error> {
    serve_as(app, req, key, query, options, None).await
}

/// `GET /s/{token}`: a share link. The token is the capability (no signature needed); each use
/// is counted; the transform parameters of the query apply.
pub async fn shared<B>(
    app: &Arc<Delivery>,
    req: &Request<B>,
    token: &str,
    peer: std::net::SocketAddr,
) -> Result<Response<Body>, Error> {
    rate_limit(app, req, peer).await?;
    let now = crate::util::clock::now_ms();
    match app.auth.use_share(token, now).await? {
        ShareUse::Unknown => Err(Error::NotFound("share link not found".into())),
        ShareUse::Spent => Err(Error::Gone(
            "this share link has expired or used all its views".into(),
        )),
        ShareUse::Granted {
            storage_key,
            expires_at,
        } => {
            let query = Query::parse(req.uri().query().unwrap_or(""));
            Box::pin(serve_as(
                app,
                req,
                storage_key,
                query,
                Vec::new(),
                Some(expires_at),
            ))
            .await
        }
    }
}

/// `serve`, with `grant` when a token already opened the object (`Some(expiry)`): then no
/// signature or visibility check, and private caching no longer than the grant lives.
async fn serve_as<B>(
    app: &Arc<Delivery>,
    req: &Request<B>,
    key: String,
    query: Query,
    options: Vec<Pair>,
    grant: Option<Option<i64>>,
) -> Result<Response<Body>, Error> {
    let head = req.method() == http::Method::HEAD;
    let (query, signed) = if grant.is_some() {
        (query, None)
    } else {
        app.signer
            .verify(req.uri().path(), query, crate::util::clock::now_secs())
            .map_err(|e| match e {
                SignatureError::Missing => {
                    Error::Forbidden("this server serves signed URLs only (missing s)".into())
                }
                SignatureError::Invalid => Error::Forbidden("invalid URL signature".into()),
                SignatureError::Expired => Error::Gone("this signed URL has expired".into()),
            })?
    };
    let query = if options.is_empty() {
        query
    } else {
        Query::from_pairs(
            options
                .into_iter()
                .chain(query.pairs().iter().cloned())
                .collect(),
        )
    };
    let query = presets::expand(query, &app.presets, app.presets_only)?;
    let versioned = query.get("v").is_some();
    let (query, asks) = take_delivery_params(query)?;
    let t = transform::parse(&query, &app.params)?;
    if let Some(name) = t.as_ref().and_then(|t| t.watermark.as_deref()) {
        if app.watermarks.get(name).is_none() {
            return Err(Error::bad_param(
                "wm",
                format!("no watermark named '{name}' is configured"),
            ));
        }
    }
    // A valid signature opens a private image too (the URL is the capability).
    // A valid signature *with* `expires` (at most `MAX_SIGNED_GRANT` ahead) opens a private
    // image too: the URL is the capability. Signed URLs without `expires` (those the API hands
    // out) never do, so no permanent key to a private image exists.
    let grant = grant.or_else(|| {
        let now = crate::util::clock::now_secs();
        signed
            .flatten()
            .filter(|until| *until <= now.saturating_add(MAX_SIGNED_GRANT))
            .filter(|_| app.visibility.is_restricted(&key))
            .map(|until| Some(i64::try_from(until.saturating_mul(1000)).unwrap_or(i64::MAX)))
    });
    let opened = grant.is_some();
    let access = match grant {
        Some(expires) => granted(app, &key, expires, crate::util::clock::now_ms()),
        None => access_cache_control(app, req, &key, asks.token.as_deref()).await,
    };
    let answer = match access {
        Err(e) => Err(e),
        Ok(access) => {
            let memoable =
                (!opened && access.is_none() && asks.download.is_none()).then_some(Memoable {
                    until_secs: signed.flatten(),
                });
            let caching = Caching::for_answer(&app.policy, access, versioned);
            let download = asks.download.as_ref().map(|name| Download {
                key: &key,
                name: name.as_deref(),
            });
            match t {
                None => original(app, req, &key, head, &caching, download).await,
                Some(t) => variant(app, req, &key, t, head, &caching, download, memoable).await,
            }
        }
    };
    match answer {
        // Never for an object a capability opened, nor a restricted one: the redirect target is
        // a lasting signed URL.
        Err(e)
            if asks.redirect_on_error
                && is_transform_error(&e)
                && !opened
                && !app.visibility.is_restricted(&key) =>
        {
            Ok(response::redirect(&app.signer.image_path(&key, "")))
        }
        Err(e @ Error::NotFound(_)) if !app.has_placeholders() => {
            match policy::not_found(&app.policy) {
                Some(cc) => Ok(response::error_cached(&e, head, &cc)),
                None => Err(e),
            }
        }
        other => other,
    }
}

/// How far ahead a signed URL's `expires` may be for it to open a private image (seconds).
const MAX_SIGNED_GRANT: u64 = 7 * 86_400;

/// Longest `max-age` of an answer opened by a token (seconds).
const TOKEN_MAX_AGE: i64 = 3600;

/// The `Cache-Control` of an object a capability (token, share, signature) opened, valid until
/// `expires`: private, no longer than it lives (or the object does); an expired object stays
/// hidden.
fn granted(
    app: &Delivery,
    key: &str,
    expires: Option<i64>,
    now: i64,
) -> Result<Option<String>, Error> {
    match app.visibility.check_granted(key, now) {
        Access::Hidden => Err(Error::NotFound("image not found".into())),
        Access::Until(at) => Ok(Some(granted_cache_control(
            Some(expires.map_or(at, |e| e.min(at))),
            now,
        ))),
        Access::Public | Access::Private => {
            // A private image that also expires is kept no longer than either lives.
            let until = match (expires, app.visibility.expires_at(key)) {
                (Some(e), Some(x)) => Some(e.min(x)),
                (e, x) => e.or(x),
            };
            Ok(Some(granted_cache_control(until, now)))
        }
    }
}

/// `Cache-Control` of an answer a token opened: private, for no longer than the token lives.
fn granted_cache_control(expires: Option<i64>, now: i64) -> String {
    let life = expires.map_or(TOKEN_MAX_AGE, |e| {
        ((e - now).max(0) / 1000).min(TOKEN_MAX_AGE)
    });
    format!("private, max-age={life}")
}

/// What a request asks of the answer rather than of the pixels (never part of the cache key).
#[derive(Default)]
struct Asks {
    /// `token=`: an album token that may open a private image.
    token: Option<String>,
    /// `onerror=redirect` (Cloudflare's): on a transform error, a 302 to the original.
    redirect_on_error: bool,
    /// `download=1` (`Some(None)`) or `filename=NAME`: `Content-Disposition: attachment`.
    download: Option<Option<String>>,
}

/// Take `onerror`, `download` and `filename` out of the query.
fn take_delivery_params(query: Query) -> Result<(Query, Asks), Error> {
    let mut asks = Asks::default();
    let mut seen: Vec<&str> = Vec::new();
    let mut rest = Vec::with_capacity(query.pairs().len());
    for p in query.pairs() {
        let name = match p.key.as_deref() {
            Some(n @ ("onerror" | "download" | "filename" | "token")) => n,
            _ => {
                rest.push(p.clone());
                continue;
            }
        };
        if seen.contains(&name) {
            return Err(Error::bad_param(
                name,
                format!("{name} is given more than once"),
            ));
        }
        seen.push(name);
        let value = p.value.as_deref().unwrap_or("");
        match name {
            "onerror" if value == "redirect" => asks.redirect_on_error = true,
            "onerror" => return Err(Error::bad_param("onerror", "onerror must be redirect")),
            "token" => asks.token = Some(value.to_string()),
            "download" => {
                if crate::util::query::flag(value, "download")? && asks.download.is_none() {
                    asks.download = Some(None);
                }
            }
            _ => {
                let name = sanitise_filename(value).ok_or_else(|| {
                    Error::bad_param("filename", "filename must be 1..=200 bytes of a file name")
                })?;
                asks.download = Some(Some(name));
            }
        }
    }
    Ok((Query::from_pairs(rest), asks))
}

/// A file name safe in a header and on the client's disk: no path, no control characters, no
/// quotes; `None` when nothing is left or it is too long.
fn sanitise_filename(v: &str) -> Option<String> {
    let base = v.rsplit(['/', '\\']).next().unwrap_or(v);
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | ';' | '%'))
        .collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    (!clean.is_empty() && clean.len() <= 200).then_some(clean)
}

/// An answer to be saved rather than shown.
#[derive(Clone, Copy)]
struct Download<'a> {
    key: &'a str,
    name: Option<&'a str>,
}

impl Download<'_> {
    /// The `Content-Disposition` value: the given name (or the key's file name), its extension
    /// replaced by the output's when the output's format is known.
    fn header(&self, format: Option<ImageFormat>) -> String {
        let given = self
            .name
            .map(str::to_string)
            .or_else(|| sanitise_filename(self.key))
            .unwrap_or_else(|| "image".into());
        let name = match format {
            Some(f) => {
                let stem = match given.rsplit_once('.') {
                    Some((stem, _)) if !stem.is_empty() => stem,
                    _ => given.as_str(),
                };
                format!("{stem}.{}", f.extension())
            }
            None => given,
        };
        let ascii: String = name
            .chars()
            .map(|c| if c.is_ascii() && c != '\\' { c } else { '_' })
            .collect();
        let encoded =
            percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC);
        format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
    }
}

/// Failures of the transform itself (the source was found but could not be made into the
/// variant), which `onerror=redirect` answers with the original.
fn is_transform_error(e: &Error) -> bool {
    matches!(
        e,
        Error::PayloadTooLarge(_)
            | Error::UnsupportedMediaType(_)
            | Error::Unprocessable(_)
            | Error::NotAcceptable(_)
            | Error::Busy
            | Error::Internal(_)
    )
}

/// Objects of API images may be private or expiring: hide them (404, as if absent) from those
/// who may not see them, and keep shared caches from holding them too long. `Some` replaces
/// the configured `Cache-Control`.
async fn access_cache_control<B>(
    app: &Delivery,
    req: &Request<B>,
    key: &str,
    token: Option<&str>,
) -> Result<Option<String>, Error> {
    let now = crate::util::clock::now_ms();
    // An album token (`token=`): the image as its own tenant sees it, kept only privately and
    // no longer than the token lives.
    if let Some(t) = token.filter(|_| app.visibility.is_restricted(key)) {
        let mut grant = app.auth.album_grant(t, key, now).await?;
        // A share token of this very object (a use is counted only then).
        if grant.is_none() && app.auth.share_key(t).await?.as_deref() == Some(key) {
            if let ShareUse::Granted {
                storage_key,
                expires_at,
            } = app.auth.use_share(t, now).await?
            {
                grant = (storage_key == key).then_some(expires_at);
            }
        }
        if let Some(expires) = grant {
            return granted(app, key, expires, now);
        }
    }
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

/// The headers every image answer carries, from its caching policy.
fn meta<'a>(
    app: &'a Delivery,
    caching: &'a Caching<'_>,
    etag: &'a str,
    last_modified: Option<SystemTime>,
) -> ImageMeta<'a> {
    let cdn_header = app.policy.cdn_cache_control_header.as_str();
    ImageMeta {
        content_type: "",
        etag,
        last_modified,
        cache_control: &caching.cache_control,
        cdn_cache_control: caching.cdn.map(|v| (cdn_header, v)),
        vary_accept: false,
        content_disposition: None,
        x_cache: None,
        accept_ranges: false,
    }
}

async fn original<B>(
    app: &Delivery,
    req: &Request<B>,
    key: &str,
    head: bool,
    caching: &Caching<'_>,
    download: Option<Download<'_>>,
) -> Result<Response<Body>, Error> {
    let stat = app.origin.stat(key).await?;
    let len = stat.version.len;
    let etag = CacheKey::original(key, &stat.version).etag();
    let disposition = download.map(|d| d.header(None));
    let mut meta = ImageMeta {
        content_type: "application/octet-stream",
        accept_ranges: true,
        content_disposition: disposition.as_deref(),
        ..meta(app, caching, &etag, modified(&stat))
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

#[allow(clippy::too_many_arguments)]
async fn variant<B>(
    app: &Arc<Delivery>,
    req: &Request<B>,
    key: &str,
    t: Transform,
    head: bool,
    caching: &Caching<'_>,
    download: Option<Download<'_>>,
    memoable: Option<Memoable>,
) -> Result<Response<Body>, Error> {
    if t.format == FormatRequest::Json {
        return info(app, req, key, &t, head, caching).await;
    }
    let accept = header_str(req, header::ACCEPT).map_or_else(Accept::any, Accept::parse);
    // compression=fast: the source's family, whatever the client accepts.
    let enabled = if t.fast {
        Enabled {
            avif: false,
            webp: false,
        }
    } else {
        app.enabled
    };
    let spec = negotiate::decide(t.format, &accept, enabled, app.policy.negotiate).map_err(
        |e| match e {
            NegotiateError::Disabled(f) => Error::bad_param(
                "fm",
                format!("output format {f} is disabled on this server"),
            ),
            NegotiateError::NoImage => Error::bad_param("fm", "fm=json answers no image"),
        },
    )?;
    let (mut stat, freshness) = app.origin.stat_or_stale(key).await?;
    let fresh = matches!(freshness, Freshness::Fresh);
    if let Freshness::Stale(outage) = freshness {
        let wanted = Wanted {
            key,
            stat: &stat,
            transform: &t,
        };
        if let Some(r) = stale(app, req, &wanted, spec, head, caching).await {
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
    // `memoable` already excludes downloads and capabilities.
    let remember = fresh && !plan.interim && app.cache.enabled();
    let cache_key = plan.key;
    let interim;
    let caching = if plan.interim {
        interim = caching.at_most(AVIF_PENDING_MAX_AGE);
        &interim
    } else {
        caching
    };
    let etag = plan.key.etag();
    let mut meta = ImageMeta {
        vary_accept: app.varies(&plan.spec),
        ..meta(app, caching, &etag, modified(&stat))
    };
    if is_not_modified(req, &etag, None) {
        return Ok(response::not_modified(&meta));
    }
    // Read before the tier is: an invalidation from here on sends the memo back to the tier.
    let epoch = app.cache.epoch();
    let (enc, tier) = app.fetch(&wanted, plan).await?;
    meta.content_type = enc.format.mime();
    if let (Some(m), true, Some(line)) = (memoable, remember, memo::request_key(req)) {
        // The headers a repeated request gets: the same, from the memory tier.
        let hit = ImageMeta {
            x_cache: Some(super::variants::Tier::Memory.x_cache()),
            ..meta
        };
        let headers = response::image(&hit, enc.bytes.clone(), None, true)
            .headers()
            .clone();
        app.memo.put(
            line,
            memo::Resolved {
                storage_key: key.to_string(),
                stat: stat.clone(),
                cache_key,
                until_secs: m.until_secs,
                headers,
                variant: Arc::downgrade(&enc),
                epoch,
                told_ms: crate::util::clock::now_ms(),
            },
        );
    }
    meta.x_cache = Some(tier.x_cache());
    let disposition = download.map(|d| d.header(Some(enc.format)));
    meta.content_disposition = disposition.as_deref();
    Ok(response::image(&meta, enc.bytes.clone(), None, head))
}

/// How many bytes of a source `fm=json` reads first: enough for the header of any format
/// unless a JPEG carries huge metadata before its frame header (then the whole source).
const INFO_PREFIX: u64 = 256 * 1024;

/// `fm=json` (`format=json`): the output's size and the source's, Cloudflare's shape, from the
/// source's header: nothing is decoded or encoded.
async fn info<B>(
    app: &Delivery,
    req: &Request<B>,
    key: &str,
    t: &Transform,
    head: bool,
    caching: &Caching<'_>,
) -> Result<Response<Body>, Error> {
    let stat = app.origin.stat(key).await?;
    let len = stat.version.len;
    let etag = CacheKey::variant(
        key,
        &stat.version,
        &t.canonical(),
        "json",
        &app.encode_fingerprint,
    )
    .etag();
    let meta = ImageMeta {
        content_type: "application/json",
        ..meta(app, caching, &etag, modified(&stat))
    };
    if is_not_modified(req, &etag, None) {
        return Ok(response::not_modified(&meta));
    }
    let prefix = app.origin.read_range(key, 0, len.min(INFO_PREFIX)).await?;
    let probed = match crate::pipeline::probe::probe(&prefix) {
        Err(_) if len > INFO_PREFIX => {
            let max = app.limits.max_source_bytes;
            if len > max {
                return Err(Error::PayloadTooLarge(format!(
                    "source is {len} bytes; the limit is {max}"
                )));
            }
            crate::pipeline::probe::probe(&app.origin.read(key, len, max).await?)
        }
        other => other,
    };
    let probe = probed.map_err(Error::from)?;
    let (w, h) = crate::pipeline::output_size(&probe, t);
    let (ow, oh) = probe.oriented_size();
    let body = serde_json::json!({
        "width": w,
        "height": h,
        "original": {
            "width": ow,
            "height": oh,
            "file_size": len,
            "format": probe.format.mime(),
            "frames": probe.frames,
            "orientation": probe.orientation,
        },
    });
    let bytes = bytes::Bytes::from(body.to_string());
    Ok(response::image(&meta, bytes, None, head))
}

/// `Cache-Control` max-age of a variant served stale during an origin outage: short, so that
/// caches ask again soon after the origin is back.
const STALE_MAX_AGE: u32 = 60;

/// The origin cannot be reached but a version of the source was seen within
/// `storage.stale_if_error_secs`: the variant from a tier (`X-Cache: STALE`), if one holds it.
async fn stale<B>(
    app: &Arc<Delivery>,
    req: &Request<B>,
    wanted: &Wanted<'_>,
    spec: OutputSpec,
    head: bool,
    caching: &Caching<'_>,
) -> Option<Response<Body>> {
    let (enc, key) = app.stored(wanted, spec).await?;
    let caching = caching.at_most(STALE_MAX_AGE);
    let etag = key.etag();
    let meta = ImageMeta {
        content_type: enc.format.mime(),
        vary_accept: app.varies(&spec),
        x_cache: Some("STALE"),
        ..meta(app, &caching, &etag, modified(wanted.stat))
    };
    if is_not_modified(req, &etag, None) {
        return Some(response::not_modified(&meta));
    }
    Some(response::image(&meta, enc.bytes.clone(), None, head))
}
