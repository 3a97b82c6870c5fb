//! Tags, stats, random picks, the effective config and maintenance.

use super::{detached, json, Ctx};
use crate::delivery::negotiate::{self, Accept};
use crate::delivery::policy::Negotiate;
use crate::delivery::presets;
use crate::error::Error;
use crate::http::response::{self, Body};
use crate::library::fields;
use crate::pipeline::output::OutputSpec;
use crate::pipeline::transform;
use crate::pipeline::transform::FormatRequest;
use crate::store::{Filter, Order, Paging};
use crate::util::clock::now_ms;
use crate::util::query::{Pair, Query};
use http::Response;
use serde_json::json as j;

/// `GET /api/v1/tags` (`?detail=true`: tag → image ids; `q`: names containing it, any case;
/// `limit`: the first that many, by name).
pub async fn tags(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let q = ctx.query(&["detail", "q", "limit"])?;
    let detail = q.flag("detail")?.unwrap_or(false);
    let search = q.get("q").map(str::to_lowercase);
    let limit = q
        .num("limit", 1..=10_000)?
        .map_or(usize::MAX, |n| n as usize);
    let wanted = |name: &str| search.as_deref().is_none_or(|s| name.contains(s));
    let now = now_ms();
    if detail {
        let mut members = ctx.ctl.store.tag_members(&p.tenant, now).await?;
        members.retain(|name, _| wanted(name));
        let members: serde_json::Map<_, _> = members
            .into_iter()
            .take(limit)
            .map(|(k, v)| (k, j!(v)))
            .collect();
        return Ok(json(&j!(members)));
    }
    // One tenant: TAG objects (ids, colours, types); every tenant (`*`): names and counts.
    let tags: Vec<_> = if p.tenant == crate::store::ALL_TENANTS {
        ctx.ctl
            .store
            .tag_counts(&p.tenant, now)
            .await?
            .into_iter()
            .filter(|(name, _)| wanted(name))
            .take(limit)
            .map(|(name, count)| j!({"name": name, "count": count}))
            .collect()
    } else {
        ctx.ctl
            .store
            .tag_rows(&p.tenant, now)
            .await?
            .iter()
            .filter(|t| wanted(&t.name))
            .take(limit)
            .map(super::tags::view)
            .collect()
    };
    Ok(json(&j!({"success": true, "tags": tags})))
}

/// `GET /api/v1/stats`.
pub async fn stats(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    ctx.query(&[])?;
    let s = ctx.ctl.store.stats(&p.tenant, now_ms()).await?;
    let mut v = j!(s);
    v["tenant"] = j!(p.tenant);
    if p.tenant != crate::store::ALL_TENANTS {
        v["quota"] = j!(ctx.ctl.library.usage(&p.tenant).await?);
    }
    // The server's own counters (every tenant, since the process started).
    let mut server = (ctx.ctl.counters)();
    let hits = server["cache_hits"].as_u64().unwrap_or(0);
    let lookups = hits + server["cache_misses"].as_u64().unwrap_or(0);
    server["cache_hit_ratio"] = if lookups == 0 {
        serde_json::Value::Null
    } else {
        j!(hits as f64 / lookups as f64)
    };
    v["server"] = server;
    Ok(json(&v))
}

/// `GET /api/v1/config`: the effective config, secrets removed.
pub fn config(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    Ok(json(&ctx.ctl.effective_config))
}

/// `POST /api/v1/maintenance/cleanup`: delete expired images now.
pub async fn cleanup(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let lib = ctx.ctl.library.clone();
    let n = detached(async move { lib.purge_expired().await }).await?;
    Ok(json(
        &j!({"success": true, "message": "Expired image cleanup triggered.", "deleted": n}),
    ))
}

/// `GET /api/v1/random` (URL as text) and `GET /random` (302 to it): a random public image of
/// the configured tenant, in a format the client's `Accept` takes, transform params passed on.
pub async fn random(ctx: &Ctx<'_>, redirect: bool) -> Result<Response<Body>, Error> {
    let ctl = ctx.ctl;
    let q = ctx.any_query();
    let mut filter = Filter {
        private: Some(false),
        orientation: q.choice("orientation", &["landscape", "portrait", "square"])?,
        ..Filter::default()
    };
    for t in q.all("tag") {
        filter.all_tags.push(fields::tag(t, "tag")?);
    }
    // Everything else is a transform for `/img`: validated here so the URL is sure to work.
    let mut pass: Vec<Pair> = q
        .decoded()
        .filter(|(k, _)| !matches!(*k, "tag" | "orientation" | "s" | "expires"))
        .map(|(k, v)| Pair::new(k, v))
        .collect();
    let expanded = presets::expand(
        Query::from_pairs(pass.clone()),
        &ctl.random.presets,
        ctl.random.presets_only,
    )?;
    transform::parse(&expanded, &ctl.random.params)?;
    let listing = ctl
        .store
        .list_images(
            &ctl.random.tenant,
            &filter,
            Order::Random,
            &Paging::Page {
                page: 1,
                per_page: 1,
            },
            now_ms(),
        )
        .await?;
    let Some(img) = listing.images.first() else {
        return Err(Error::NotFound("no image matches".into()));
    };
    let explicit_fm = ["fm", "f", "format"].iter().any(|k| q.get(k).is_some());
    let accept = ctx
        .req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map_or_else(Accept::any, Accept::parse);
    // The format `/img` would negotiate, made explicit so that the URL is the same for every
    // client that gets it.
    if !explicit_fm {
        if let Ok(OutputSpec::Negotiated(c)) =
            // Made explicit in the URL, so safe behind any cache whatever delivery.negotiate.
            negotiate::decide(
                FormatRequest::Auto,
                &accept,
                ctl.random.enabled,
                Negotiate::Vary,
            )
        {
            if c.avif {
                pass.push(Pair::new("fm", "avif"));
            } else if c.webp {
                pass.push(Pair::new("fm", "webp"));
            }
        }
    }
    let url = ctx
        .base
        .image_url(&img.storage_key, &Query::from_pairs(pass).raw());
    Ok(if redirect {
        response::redirect(&url)
    } else {
        response::plain(url, "no-store")
    })
}

/// `GET /api/v1/gallery` (no key): the public, live images of `ui.gallery_tenant`, newest
/// first, by cursor (`cursor`, `limit` 1-100), as PUBLIC_IMAGE objects.
pub async fn gallery(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let q = ctx.query(&["cursor", "limit"])?;
    let filter = Filter {
        private: Some(false),
        ..Filter::default()
    };
    let paging = Paging::Cursor {
        after: q
            .get("cursor")
            .filter(|c| !c.is_empty())
            .map(super::images::decode_cursor)
            .transpose()?,
        limit: q.num("limit", 1..=100)?.unwrap_or(40),
    };
    let listing = ctx
        .ctl
        .store
        .list_images(
            &ctx.ctl.gallery_tenant,
            &filter,
            Order::CreatedDesc,
            &paging,
            now_ms(),
        )
        .await?;
    let images: Vec<_> = listing
        .images
        .iter()
        .map(|r| super::view::public_image(r, &ctx.base))
        .collect();
    Ok(json(&j!({
        "success": true,
        "images": images,
        "next_cursor": listing.next.as_ref().map(super::images::encode_cursor),
    })))
}
