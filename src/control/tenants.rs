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
    quotas(b.quota_bytes, b.quota_images)?;
    ctl.store
        .set_quota(&t, b.quota_bytes, b.quota_images)
        .await?;
    let u = ctl.library.usage(&t).await?;
    Ok(json(&j!({ "success": true, "tenant": t, "quota": u })))
}

/// The TENANT object: its name, state and usage against its quotas.
async fn tenant_view(
    ctl: &super::Control,
    t: &crate::store::TenantRecord,
) -> Result<serde_json::Value, Error> {
    let u = ctl.library.usage(&t.id).await?;
    Ok(j!({
        "id": t.id,
        "name": t.name,
        "active": t.active,
        "created_at": t.created_at.map(super::view::rfc3339),
        "rate_limit": t.rate_limit.as_deref().and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()),
        "quota": u,
    }))
}

/// The tenant-wide routes are for admins of every tenant (role admin, or an admin key of
/// tenant `default`).
fn only_global(ctx: &Ctx<'_>) -> Result<(), Error> {
    if global(ctx)? {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "tenants are managed by admins of tenant default".into(),
        ))
    }
}

/// `GET /api/v1/tenants`: every tenant (those with a row, and those keys, users or images name).
pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    ctx.query(&[])?;
    only_global(ctx)?;
    let mut out = Vec::new();
    for t in ctx.ctl.store.tenants().await? {
        out.push(tenant_view(ctx.ctl, &t).await?);
    }
    Ok(json(&j!({ "success": true, "tenants": out })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TenantBody {
    id: Option<String>,
    name: Option<String>,
    active: Option<bool>,
    #[serde(default, alias = "quotaBytes")]
    quota_bytes: Option<i64>,
    #[serde(default, alias = "quotaImages")]
    quota_images: Option<i64>,
    /// The tenant's rate limits (under its keys' own): as a key's `rate_limit`; `null` clears.
    #[serde(
        default,
        alias = "rateLimit",
        deserialize_with = "super::images::some_value"
    )]
    rate_limit: Option<serde_json::Value>,
}

fn display_name(n: &str) -> Result<String, Error> {
    let n = n.trim();
    if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
        return Err(Error::bad_param("name", "a name is 1-200 characters"));
    }
    Ok(n.to_string())
}

/// Quotas are 0 (no limit) or more; `None` is the configured default.
fn quotas(bytes: Option<i64>, images: Option<i64>) -> Result<(), Error> {
    for (name, v) in [("quota_bytes", bytes), ("quota_images", images)] {
        if v.is_some_and(|v| v < 0) {
            return Err(Error::bad_param(
                name,
                format!("{name} must be 0 (no limit) or more"),
            ));
        }
    }
    Ok(())
}

/// `POST /api/v1/tenants` `{id, name?, active?, quota_bytes?, quota_images?}`: 201; 409 when it
/// exists already.
pub(crate) async fn create(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    only_global(&ctx)?;
    let ctl = ctx.ctl;
    let b: TenantBody = super::json_body(ctx.req).await?;
    let id = tenant(b.id.as_deref().unwrap_or(""))?.to_string();
    let name = display_name(b.name.as_deref().unwrap_or(&id))?;
    quotas(b.quota_bytes, b.quota_images)?;
    let rate = super::keys::rate_limit(b.rate_limit)?;
    if ctl.store.tenant(&id).await?.is_some() {
        return Err(Error::Conflict(format!("tenant {id} exists")));
    }
    let t = crate::store::TenantRecord {
        id: id.clone(),
        name,
        active: b.active.unwrap_or(true),
        created_at: None,
        rate_limit: rate.map(|r| j!(r).to_string()),
    };
    ctl.store
        .insert_tenant(&t, crate::util::clock::now_ms())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Unique(_) => Error::Conflict(format!("tenant {id} exists")),
            other => other.into(),
        })?;
    if b.quota_bytes.is_some() || b.quota_images.is_some() {
        ctl.store
            .set_quota(&id, b.quota_bytes, b.quota_images)
            .await?;
    }
    ctl.auth.set_active(&id, t.active);
    ctl.auth.set_tenant_rate(&id, rate);
    let t = ctl
        .store
        .tenant(&id)
        .await?
        .ok_or_else(|| Error::Internal("tenant vanished".into()))?;
    Ok(super::created(
        &j!({ "success": true, "tenant": tenant_view(ctl, &t).await? }),
    ))
}

/// `GET /api/v1/tenants/{id}`.
pub(crate) async fn get_tenant(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    only_global(ctx)?;
    let id = tenant(id)?;
    let t = ctx
        .ctl
        .store
        .tenant(id)
        .await?
        .ok_or_else(|| Error::NotFound("no such tenant".into()))?;
    Ok(json(
        &j!({ "success": true, "tenant": tenant_view(ctx.ctl, &t).await? }),
    ))
}

/// `PATCH /api/v1/tenants/{id}` `{name?, active?, quota_bytes?, quota_images?, rate_limit?}`. Switching a
/// tenant off refuses its keys and users at once (tenant `default` cannot be switched off).
pub(crate) async fn patch(ctx: Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    only_global(&ctx)?;
    let ctl = ctx.ctl;
    let id = tenant(id)?.to_string();
    let b: TenantBody = super::json_body(ctx.req).await?;
    if b.id.as_deref().is_some_and(|i| i != id) {
        return Err(Error::bad_param("id", "a tenant's id does not change"));
    }
    let name = b.name.as_deref().map(display_name).transpose()?;
    quotas(b.quota_bytes, b.quota_images)?;
    let rate = match b.rate_limit {
        None => None,
        Some(v) => Some(super::keys::rate_limit(Some(v))?),
    };
    if b.active == Some(false) && id == "default" {
        return Err(Error::bad_param(
            "active",
            "tenant default cannot be switched off",
        ));
    }
    if ctl.store.tenant(&id).await?.is_none() {
        return Err(Error::NotFound("no such tenant".into()));
    }
    ctl.store
        .update_tenant(
            &id,
            name.as_deref(),
            b.active,
            rate.map(|r| r.map(|r| j!(r).to_string()))
                .as_ref()
                .map(Option::as_deref),
            crate::util::clock::now_ms(),
        )
        .await?;
    if let Some(r) = rate {
        ctl.auth.set_tenant_rate(&id, r);
    }
    if b.quota_bytes.is_some() || b.quota_images.is_some() {
        ctl.store
            .set_quota(&id, b.quota_bytes, b.quota_images)
            .await?;
    }
    if let Some(a) = b.active {
        ctl.auth.set_active(&id, a);
    }
    let t = ctl
        .store
        .tenant(&id)
        .await?
        .ok_or_else(|| Error::NotFound("no such tenant".into()))?;
    Ok(json(
        &j!({ "success": true, "tenant": tenant_view(ctl, &t).await? }),
    ))
}
