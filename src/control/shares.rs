//! Share links: `POST/GET /api/v1/images/{id}/shares`, `DELETE /api/v1/shares/{id}`. A share
//! opens one image (private included) at `/s/{token}` and on `/img` (`token=`), until it
//! expires, uses its views, or is revoked (at once).

use super::view::rfc3339;
use super::{created, json, Ctx};
use crate::access::auth;
use crate::error::Error;
use crate::http::response::Body;
use crate::store::Share;
use crate::util::clock::now_ms;
use http::Response;
use serde::Deserialize;
use serde_json::json as j;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    /// Seconds; none = until revoked.
    #[serde(default, alias = "expiresIn")]
    expires_in: Option<u64>,
    /// Uses allowed; none = any number.
    #[serde(default, alias = "maxViews")]
    max_views: Option<u64>,
}

fn view(s: &Share) -> serde_json::Value {
    j!({
        "id": s.id,
        "image_id": s.image_id,
        "prefix": s.prefix,
        "expires_at": s.expires_at.map(rfc3339),
        "max_views": s.max_views,
        "views": s.views,
        "created_at": rfc3339(s.created_at),
    })
}

/// `POST /api/v1/images/{id}/shares`.
pub async fn create(ctx: Ctx<'_>, image: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let (ctl, root) = (ctx.ctl, ctx.base.root.clone());
    let now = now_ms();
    // Only an image the caller may see (another user's private image is a 404).
    super::images::visible(&ctx, image).await?;
    let b: ShareBody = super::optional_json_body(ctx.req).await?;
    let expires_at = super::expiry(b.expires_in, now)?;
    let max_views = match b.max_views {
        Some(v) if !(1..=1_000_000_000).contains(&v) => {
            return Err(Error::bad_param("max_views", "max_views must be 1..=10^9"))
        }
        v => v.and_then(|v| i64::try_from(v).ok()),
    };
    let secret = format!("rfs_{}", super::new_id(24)?);
    let s = Share {
        id: super::new_id(9)?,
        image_id: image.to_string(),
        prefix: secret.chars().take(10).collect(),
        expires_at,
        max_views,
        views: 0,
        created_at: now,
    };
    ctl.store
        .insert_share(&s, &p.tenant, &auth::hash(&secret))
        .await?;
    let mut v = view(&s);
    v["token"] = j!(secret);
    v["url"] = j!(format!("{root}/s/{secret}"));
    Ok(created(&j!({ "success": true, "share": v })))
}

/// `GET /api/v1/images/{id}/shares`: never the secrets.
pub async fn list(ctx: &Ctx<'_>, image: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let store = &ctx.ctl.store;
    super::images::visible(ctx, image).await?;
    let shares: Vec<_> = store
        .shares_of(&p.tenant, image)
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(json(&j!({ "success": true, "shares": shares })))
}

/// `DELETE /api/v1/shares/{id}`: revoked at once.
pub async fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    if !ctx.ctl.store.delete_share(&p.tenant, id).await? {
        return Err(Error::NotFound("share not found".into()));
    }
    Ok(json(&j!({ "success": true, "deleted": id })))
}
