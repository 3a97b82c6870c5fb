//! `GET/PUT /api/v1/tenants/{tenant}/quota` (admin): a tenant's usage and its own quotas.

use super::{json, json_body, Ctx};
use crate::error::Error;
use crate::http::response::Body;
use http::Response;
use serde::Deserialize;
use serde_json::json as j;

fn tenant(t: &str) -> Result<&str, Error> {
    if crate::access::auth::valid_tenant(t) {
        Ok(t)
    } else {
        Err(Error::bad_param(
            "tenant",
            "a tenant is 1-64 of a-z, 0-9, '-', '_'",
        ))
    }
}

/// Whether the caller administers every tenant (an admin of tenant `default`, as for keys).
fn global(ctx: &Ctx<'_>) -> Result<bool, Error> {
    Ok(ctx.principal()?.tenant == "default")
}

/// `GET /api/v1/tenants/{tenant}/quota`: a tenant's admins see their own; global admins any.
pub async fn get(ctx: &Ctx<'_>, t: &str) -> Result<Response<Body>, Error> {
    let t = tenant(t)?;
    if !global(ctx)? && ctx.principal()?.tenant != t {
        return Err(Error::NotFound("no such tenant here".into()));
    }
    let u = ctx.ctl.library.usage(t).await?;
    Ok(json(&j!({ "success": true, "tenant": t, "quota": u })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    /// Bytes; `null` (or absent) = the configured default.
    #[serde(default, alias = "quotaBytes")]
    quota_bytes: Option<i64>,
    #[serde(default, alias = "quotaImages")]
    quota_images: Option<i64>,
}

/// `PUT /api/v1/tenants/{tenant}/quota`: 0 = no limit, `null` = the configured default. Only
/// global admins set quotas (a tenant may not raise its own).
pub async fn put(ctx: Ctx<'_>, t: &str) -> Result<Response<Body>, Error> {
    let t = tenant(t)?.to_string();
    if !global(&ctx)? {
        return Err(Error::Forbidden(
            "quotas are set by an admin of tenant default".into(),
        ));
    }
    let ctl = ctx.ctl;
    let b: QuotaBody = json_body(ctx.req).await?;
    for (name, v) in [
        ("quota_bytes", b.quota_bytes),
        ("quota_images", b.quota_images),
    ] {
        if v.is_some_and(|v| v < 0) {
            return Err(Error::bad_param(
                name,
                format!("{name} must be 0 (no limit) or more"),
            ));
        }
    }
    ctl.store
        .set_quota(&t, b.quota_bytes, b.quota_images)
        .await?;
    let u = ctl.library.usage(&t).await?;
    Ok(json(&j!({ "success": true, "tenant": t, "quota": u })))
}
