//! Tags, stats, random picks, the effective config and maintenance.

use super::query::Query;
use super::{json, Ctx};
use crate::delivery::negotiate::Accept;
use crate::delivery::presets;
use crate::error::Error;
use crate::http::response::{self, Body};
use crate::library;
use crate::library::upload;
use crate::pipeline::transform;
use crate::store::{now_ms, Filter, Order, Paging};
use http::{Response, StatusCode};
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
        let members = ctx.app.store.tag_members(&p.tenant, now).await?;
        return Ok(json(StatusCode::OK, &j!(members)));
    }
    let tags: Vec<_> = ctx
        .app
        .store
        .tag_counts(&p.tenant, now)
        .await?
        .into_iter()
        .map(|(name, count)| j!({"name": name, "count": count}))
        .collect();
    Ok(json(StatusCode::OK, &j!({"success": true, "tags": tags})))
}

/// `GET /api/v1/stats`.
pub async fn stats(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let s = ctx.app.store.stats(&p.tenant, now_ms()).await?;
    Ok(json(StatusCode::OK, &j!(s)))
}

/// `GET /api/v1/config`: the effective config, secrets removed.
pub fn config(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let mut v =
        serde_json::to_value(&ctx.app.config).map_err(|e| Error::Internal(e.to_string()))?;
    remove_secrets(&mut v);
    Ok(json(StatusCode::OK, &v))
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

/// `POST /api/v1/maintenance/cleanup`: delete expired images now.
pub async fn cleanup(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let n = library::purge_expired(ctx.app).await?;
    Ok(json(
        StatusCode::OK,
        &j!({"success": true, "message": "Expired image cleanup triggered.", "deleted": n}),
    ))
}

/// `GET /api/v1/random` (URL as text) and `GET /random` (302 to it): a random public image of
/// the configured tenant, in a format the client's `Accept` takes, transform params passed on.
pub async fn random(ctx: &Ctx<'_>, redirect: bool) -> Result<Response<Body>, Error> {
    let app = ctx.app;
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
    let expanded = presets::expand(
        &pass_q,
        &app.config.presets,
        app.config.security.presets_only,
    )?;
    transform::parse(&expanded, &app.params)?;
    let listing = app
        .store
        .list_images(
            &app.config.random.tenant,
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
        if app.enabled.avif && accept.explicit_quality("image/avif") > 0.0 {
            params.push("fm=avif".into());
        } else if app.enabled.webp && accept.explicit_quality("image/webp") > 0.0 {
            params.push("fm=webp".into());
        }
    }
    let url = ctx.base.image_url(&img.storage_key, &params.join("&"));
    Ok(if redirect {
        response::redirect(&url)
    } else {
        response::plain(StatusCode::OK, url, "no-store")
    })
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
