//! `/api/v1/users` (admin): the accounts of a tenant, or of every tenant for an admin of
//! tenant `default`; disable or enable one (disabling ends its sessions at once).

use super::auth::user_view;
use super::{json, json_body, Ctx};
use crate::error::Error;
use crate::http::response::Body;
use crate::util::clock::now_ms;
use http::Response;
use serde::Deserialize;
use serde_json::json as j;

/// The tenant whose users the caller administers; `None` = every tenant.
fn scope(ctx: &Ctx<'_>) -> Result<Option<String>, Error> {
    let t = &ctx.principal()?.tenant;
    Ok((t != "default").then(|| t.clone()))
}

/// `GET /api/v1/users`: oldest first, without password hashes.
pub(crate) async fn list(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    ctx.query(&[])?;
    let users = ctx.ctl.store.list_users(scope(ctx)?.as_deref()).await?;
    let out: Vec<_> = users.iter().map(user_view).collect();
    Ok(json(&j!({ "success": true, "users": out })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    disabled: bool,
}

/// `PATCH /api/v1/users/{id}`: `{disabled}`.
pub(crate) async fn patch(ctx: Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let allowed = scope(&ctx)?;
    let store = &ctx.ctl.store;
    let user = store
        .user(id)
        .await?
        .filter(|u| allowed.as_deref().is_none_or(|t| t == u.tenant))
        .ok_or_else(|| Error::NotFound("no such user".into()))?;
    if ctx.principal()?.key_id.strip_prefix("user:") == Some(user.id.as_str()) {
        return Err(Error::Conflict(
            "you cannot disable your own account".into(),
        ));
    }
    let b: UserPatch = json_body(ctx.req).await?;
    store
        .set_user_disabled(&user.id, b.disabled, now_ms())
        .await?;
    let user = store
        .user(&user.id)
        .await?
        .ok_or_else(|| Error::NotFound("no such user".into()))?;
    Ok(json(&j!({ "success": true, "user": user_view(&user) })))
}
