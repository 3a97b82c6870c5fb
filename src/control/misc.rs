//! Tags, stats, random picks, the effective config and maintenance.

use super::query::Query;
use super::{json, Ctx};
use crate::delivery::negotiate::Accept;
use crate::delivery::presets;
use crate::error::Error;
use crate::http::response::{self, Body};
use crate::library::upload;
use crate::pipeline::transform;
use crate::store::{Filter, Order, Paging};
use crate::util::clock::now_ms;
use http::Response;
use serde_json::json as j;

/// `GET /api/v1/tags` (`?detail=true`: tag → image ids).
pub async fn tags(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let q = Query::parse(ctx.query(), &["detail"])?;
    let detail = q
        .get("detail")
        .map(|v| upload::parse_bool(v, "detail"))
        .transpose()?
        .unwrap_or(false);
    let now = now_ms();
    if detail {
        let members = ctx.ctl.store.tag_members(&p.tenant, now).await?;
        return Ok(json(&j!(members)));
    }
    let tags: Vec<_> = ctx
        .ctl
        .store
        .tag_counts(&p.tenant, now)
        .await?
        .into_iter()
        .map(|(name, count)| j!({"name": name, "count": count}))
        .collect();
    Ok(json(&j!({"success": true, "tags": tags})))
}

/// `GET /api/v1/stats`.
pub async fn stats(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let s = ctx.ctl.store.stats(&p.tenant, now_ms()).await?;
    Ok(json(&j!(s)))
}

/// `GET /api/v1/config`: the effective config, secrets removed.
pub fn config(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    Ok(json(&ctx.ctl.effective_config))
}

/// `POST /api/v1/maintenance/cleanup`: delete expired images now.
pub async fn cleanup(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let n = ctx.ctl.library.purge_expired().await?;
    Ok(json(
        &j!({"success": true, "message": "Expired image cleanup triggered.", "deleted": n}),
    ))
}

/// `GET /api/v1/random` (URL as text) and `GET /random` (302 to it): a random public image of
/// the configured tenant, in a format the client's `Accept` takes, transform params passed on.
pub async fn random(ctx: &Ctx<'_>, redirect: bool) -> Result<Response<Body>, Error> {
    let ctl = ctx.ctl;
    let q = Query::parse_lenient(ctx.query());
    let mut filter = Filter {
        private: Some(false),
        orientation: q.choice("orientation", &["landscape", "portrait", "square"])?,
        ..Filter::default()
    };
    for t in q.all("tag") {
        filter.all_tags.push(upload::tag(t, "tag")?);
    }
    // Everything else is a transform for `/img`: validated here so the URL is sure to work.
    let pass: Vec<String> = q
        .pairs()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "tag" | "orientation" | "s" | "expires"))
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let pass_q = pass.join("&");
    let expanded = presets::expand(&pass_q, &ctl.random.presets, ctl.random.presets_only)?;
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
    let explicit_fm = q.get("fm").is_some() || q.get("format").is_some();
    let accept = ctx
        .req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map_or_else(Accept::any, Accept::parse);
    let mut params = pass;
    if !explicit_fm {
        if ctl.random.enabled.avif && accept.explicit_quality("image/avif") > 0.0 {
            params.push("fm=avif".into());
        } else if ctl.random.enabled.webp && accept.explicit_quality("image/webp") > 0.0 {
            params.push("fm=webp".into());
        }
    }
    let url = ctx.base.image_url(&img.storage_key, &params.join("&"));
    Ok(if redirect {
        response::redirect(&url)
    } else {
        response::plain(url, "no-store")
    })
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
