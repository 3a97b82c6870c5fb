//! `/api/v1/keys`: create (the secret is shown once), list (no secrets), delete, validate.
//! An admin of tenant `default` manages every tenant's keys; an admin of another tenant only its
//! own (others' keys are 404 to it).

use super::{created, json, json_body, Ctx};
use crate::access::auth::valid_tenant;
use crate::access::auth::{self, Principal, RateOverride, Scope};
use crate::error::Error;
use crate::http::response::Body;
use crate::store::{KeyRecord, NewKey};
use crate::util::clock::now_ms;
use http::Response;
use serde::Deserialize;
use serde_json::json as j;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    tenant: Option<String>,
    scopes: Vec<String>,
    /// An object of overrides, or a number (requests per minute).
    rate_limit: Option<serde_json::Value>,
}

fn is_global(p: &Principal) -> bool {
    p.tenant == "default"
}

/// `POST /api/v1/keys`.
pub async fn create(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let ctl = ctx.ctl;
    let b: CreateBody = json_body(ctx.req).await?;
    let name = b.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::bad_param("name", "1 to 100 characters"));
    }
    let tenant = b.tenant.unwrap_or_else(|| p.tenant.clone());
    if !valid_tenant(&tenant) {
        return Err(Error::bad_param("tenant", "1-64 of a-z, 0-9, '-', '_'"));
    }
    if tenant != p.tenant && !is_global(&p) {
        return Err(Error::Forbidden(
            "this key may only create keys for its own tenant".into(),
        ));
    }
    let mut scopes: Vec<Scope> = Vec::new();
    for s in &b.scopes {
        let sc = Scope::parse(s)
            .ok_or_else(|| Error::bad_param("scopes", "each scope is read, write or admin"))?;
        if !scopes.contains(&sc) {
            scopes.push(sc);
        }
    }
    if scopes.is_empty() {
        return Err(Error::bad_param(
            "scopes",
            "at least one of read, write, admin",
        ));
    }
    let rate = rate_limit(b.rate_limit)?;
    let (secret, prefix) = auth::generate().map_err(|e| Error::Internal(e.to_string()))?;
    let record = KeyRecord {
        id: crate::util::ids::random_id(9).map_err(|e| Error::Internal(e.to_string()))?,
        name,
        tenant,
        scopes: scopes.iter().map(|s| s.name().to_string()).collect(),
        prefix,
        rate_limit: rate
            .map(|r| serde_json::to_string(&r))
            .transpose()
            .map_err(|e| Error::Internal(e.to_string()))?,
        created_at: now_ms(),
    };
    ctl.store
        .insert_key(&NewKey {
            record: record.clone(),
            key_hash: auth::hash(&secret),
        })
        .await?;
    tracing::info!(key_id = %record.id, tenant = %record.tenant, "API key created");
    let mut v = key_view(&record);
    v["key"] = j!(secret);
    Ok(created(&j!({"success": true, "key": v})))
}

fn key_view(k: &KeyRecord) -> serde_json::Value {
    j!({
        "id": k.id,
        "name": k.name,
        "tenant": k.tenant,
        "scopes": k.scopes,
        "prefix": k.prefix,
        "rate_limit": k.rate_limit.as_deref().and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()),
        "created_at": super::view::rfc3339(k.created_at),
    })
}

/// `GET /api/v1/keys`.
pub async fn list(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let keys: Vec<_> = ctx
        .ctl
        .store
        .list_keys()
        .await?
        .iter()
        .filter(|k| is_global(p) || k.tenant == p.tenant)
        .map(key_view)
        .collect();
    Ok(json(&j!({"success": true, "keys": keys})))
}

/// `DELETE /api/v1/keys/{id}`.
pub async fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let visible = ctx
        .ctl
        .store
        .list_keys()
        .await?
        .into_iter()
        .any(|k| k.id == id && (is_global(p) || k.tenant == p.tenant));
    if !visible || !ctx.ctl.store.delete_key(id).await? {
        return Err(Error::NotFound("key not found".into()));
    }
    tracing::info!(key_id = %id, "API key deleted");
    Ok(json(
        &j!({"success": true, "message": "Key deleted successfully"}),
    ))
}

#[derive(Debug, Deserialize, Default)]
struct ValidateBody {
    key: Option<String>,
}

/// `POST /api/v1/keys/validate`: the key in a header, or `{"key": "..."}`.
pub async fn validate(ctx: Ctx<'_>, header_key: bool) -> Result<Response<Body>, Error> {
    let ctl = ctx.ctl;
    let caller = if header_key {
        ctx.caller.clone()
    } else {
        let has_body = ctx
            .req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v != "0");
        let b: ValidateBody = if has_body {
            json_body(ctx.req).await?
        } else {
            ValidateBody::default()
        };
        match b.key {
            Some(k) => ctl.auth.identify(&k).await?,
            None => None,
        }
    };
    Ok(match caller {
        Some(p) => json(&j!({
            "valid": true,
            "tenant": p.tenant,
            "scopes": p.scopes.iter().map(|s| s.name()).collect::<Vec<_>>(),
            "key_id": p.key_id,
        })),
        None => return Err(Error::InvalidKey),
    })
}

/// A `rate_limit` field (of a key or a tenant): a number (per minute), an object of
/// `per_minute`, `per_hour`, `per_day`, `uploads_per_minute`, or `null`/absent for none.
pub(super) fn rate_limit(v: Option<serde_json::Value>) -> Result<Option<RateOverride>, Error> {
    Ok(match v {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => Some(RateOverride {
            per_minute: Some(
                n.as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| Error::bad_param("rate_limit", "a whole number per minute"))?,
            ),
            ..RateOverride::default()
        }),
        Some(v) => Some(serde_json::from_value::<RateOverride>(v).map_err(|e| {
            Error::bad_param(
                "rate_limit",
                format!("per_minute, per_hour, per_day, uploads_per_minute: {e}"),
            )
        })?),
    })
}
