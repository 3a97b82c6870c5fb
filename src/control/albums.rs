//! `/api/v1/albums`: albums, their images (ordered; an image may be in several) and their
//! access tokens. Another tenant's album is a 404; deleting an album never deletes images.

use super::images::owner;
use super::view::{self, rfc3339};
use super::{created, json, json_body, Ctx};
use crate::access::auth;
use crate::error::Error;
use crate::http::response::Body;
use crate::library::fields;
use crate::store::{AlbumPatch, AlbumRecord, AlbumToken, Missing};
use crate::util::clock::now_ms;
use http::Response;
use serde::Deserialize;
use serde_json::json as j;

fn not_found() -> Error {
    Error::NotFound("album not found".into())
}

/// The tenant's album `id`, or a 404.
async fn owned(ctl: &super::Control, tenant: &str, id: &str) -> Result<AlbumRecord, Error> {
    ctl.store.get_album(tenant, id).await?.ok_or_else(not_found)
}

/// `{album}` as it is now.
async fn answer(ctl: &super::Control, tenant: &str, id: &str) -> Result<Response<Body>, Error> {
    let a = owned(ctl, tenant, id).await?;
    Ok(json(&j!({ "success": true, "album": view::album(&a) })))
}

fn name(v: &str) -> Result<String, Error> {
    let t = v.trim();
    if t.is_empty() || t.chars().count() > 200 || t.chars().any(char::is_control) {
        return Err(Error::bad_param("name", "name must be 1-200 characters"));
    }
    Ok(t.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, alias = "isPublic")]
    is_public: Option<bool>,
    #[serde(default, alias = "externalId")]
    external_id: Option<String>,
    #[serde(default, alias = "coverImageId")]
    cover_image_id: Option<String>,
}

/// `POST /api/v1/albums`.
pub async fn create(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let owner = owner(ctx.req.headers())?;
    let (ctl, now) = (ctx.ctl, now_ms());
    let b: CreateBody = json_body(ctx.req).await?;
    let description = b.description.unwrap_or_default();
    fields::description(&description, "description")?;
    if let Some(e) = &b.external_id {
        if e.is_empty() || e.len() > 128 || e.chars().any(char::is_control) {
            return Err(Error::bad_param(
                "external_id",
                "external_id must be 1-128 characters",
            ));
        }
    }
    if let Some(c) = &b.cover_image_id {
        cover_exists(ctl, &p.tenant, c).await?;
    }
    let a = AlbumRecord {
        id: super::new_id(12)?,
        tenant: p.tenant.clone(),
        owner,
        name: name(&b.name)?,
        description,
        is_public: b.is_public.unwrap_or(false),
        external_id: b.external_id,
        cover_image_id: b.cover_image_id,
        created_at: now,
        updated_at: now,
        image_count: 0,
    };
    ctl.store.insert_album(&a).await.map_err(|e| match e {
        crate::store::StoreError::Unique(_) => {
            Error::Conflict("an album with this external_id exists in this tenant".into())
        }
        e => e.into(),
    })?;
    Ok(created(&j!({ "success": true, "album": view::album(&a) })))
}

async fn cover_exists(ctl: &super::Control, tenant: &str, id: &str) -> Result<(), Error> {
    match ctl.store.get_image(tenant, id, now_ms()).await? {
        Some(_) => Ok(()),
        None => Err(Error::bad_param(
            "cover_image_id",
            format!("no image {id} in this tenant"),
        )),
    }
}

/// `GET /api/v1/albums`: `page`/`per_page`, or `cursor`/`limit` (as images).
pub async fn list(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let q = ctx.query(&["page", "per_page", "cursor", "limit"])?;
    if q.get("cursor").is_some() || q.get("limit").is_some() {
        if q.get("page").is_some() || q.get("per_page").is_some() {
            return Err(Error::bad_param(
                "cursor",
                "use either page/per_page or cursor/limit",
            ));
        }
        let after = q
            .get("cursor")
            .filter(|c| !c.is_empty())
            .map(super::images::decode_cursor)
            .transpose()?;
        let limit = q.num("limit", 1..=100)?.unwrap_or(20);
        let (albums, next) = ctx
            .ctl
            .store
            .albums_after(&p.tenant, after.as_ref(), limit)
            .await?;
        let albums: Vec<_> = albums.iter().map(view::album).collect();
        return Ok(json(&j!({
            "success": true, "albums": albums,
            "next_cursor": next.as_ref().map(super::images::encode_cursor),
        })));
    }
    let page = q.num("page", 1..=1_000_000)?.unwrap_or(1);
    let per_page = q.num("per_page", 1..=100)?.unwrap_or(20);
    let (albums, total) = ctx.ctl.store.list_albums(&p.tenant, page, per_page).await?;
    let albums: Vec<_> = albums.iter().map(view::album).collect();
    Ok(json(&j!({
        "success": true, "albums": albums, "page": page, "per_page": per_page, "total": total,
    })))
}

/// The tenant whose album `id` the caller may read: a key with `read` scope, or an album
/// token of this album (`?token=`; expired: 410, unknown or revoked: 404).
async fn reader(ctx: &Ctx<'_>, id: &str) -> Result<String, Error> {
    if let Some(p) = &ctx.caller {
        if !p.has(auth::Scope::Read) {
            return Err(Error::Forbidden("this key lacks the read scope".into()));
        }
        return Ok(p.tenant.clone());
    }
    let q = ctx.any_query();
    let Some(token) = q.get("token") else {
        return Err(Error::Unauthorized(
            "an API key (X-API-Key or Authorization: Bearer) or an album token is required".into(),
        ));
    };
    let hash = auth::hash(token);
    let store = &ctx.ctl.store;
    match store.album_token(&hash, now_ms()).await? {
        Some((album, tenant, _)) if album == id => Ok(tenant),
        Some(_) => Err(not_found()),
        None => match store.album_token_expiry(&hash).await? {
            Some(_) => Err(Error::Gone("this album token has expired".into())),
            None => Err(not_found()),
        },
    }
}

/// `GET /api/v1/albums/{id}`.
pub async fn get(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let tenant = reader(ctx, id).await?;
    answer(ctx.ctl, &tenant, id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, alias = "isPublic")]
    is_public: Option<bool>,
    /// `null` clears the cover.
    #[serde(default, alias = "coverImageId", deserialize_with = "some")]
    cover_image_id: Option<Option<String>>,
}

/// A present field, even `null`, is `Some`.
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PATCH /api/v1/albums/{id}`.
pub async fn patch(ctx: Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let ctl = ctx.ctl;
    let b: PatchBody = json_body(ctx.req).await?;
    if let Some(d) = &b.description {
        fields::description(d, "description")?;
    }
    if let Some(Some(c)) = &b.cover_image_id {
        cover_exists(ctl, &p.tenant, c).await?;
    }
    let patch = AlbumPatch {
        name: b.name.as_deref().map(name).transpose()?,
        description: b.description,
        is_public: b.is_public,
        cover_image_id: b.cover_image_id,
    };
    let a = ctl
        .store
        .update_album(&p.tenant, id, &patch, now_ms())
        .await?
        .ok_or_else(not_found)?;
    Ok(json(&j!({ "success": true, "album": view::album(&a) })))
}

/// `DELETE /api/v1/albums/{id}`: the album, its membership and its tokens; never its images.
pub async fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    if !ctx.ctl.store.delete_album(&p.tenant, id).await? {
        return Err(not_found());
    }
    Ok(json(&j!({ "success": true, "deleted": id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Members {
    #[serde(alias = "imageIds")]
    image_ids: Vec<String>,
}

async fn members(ctx: Ctx<'_>) -> Result<Vec<String>, Error> {
    let b: Members = json_body(ctx.req).await?;
    if b.image_ids.is_empty() || b.image_ids.len() > 1000 {
        return Err(Error::bad_param(
            "image_ids",
            "image_ids must list 1-1000 ids",
        ));
    }
    let mut ids = b.image_ids;
    ids.dedup();
    Ok(ids)
}

fn missing(m: Missing) -> Error {
    Error::NotFound(format!("no such image(s) here: {}", m.0.join(", ")))
}

/// `POST /api/v1/albums/{id}/images`: add (all or nothing).
pub async fn add_images(ctx: Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let ctl = ctx.ctl;
    owned(ctl, &p.tenant, id).await?;
    let viewer = super::images::viewer(&ctx)?;
    let ids = members(ctx).await?;
    // With X-User-Id, another user's private images cannot be put in an album (as if absent).
    if let Some(v) = &viewer {
        let mut hidden = Vec::new();
        for i in &ids {
            if let Some(r) = ctl.store.get_image(&p.tenant, i, now_ms()).await? {
                if r.is_private && r.owner.as_deref() != Some(v.as_str()) {
                    hidden.push(i.clone());
                }
            }
        }
        if !hidden.is_empty() {
            return Err(missing(Missing(hidden)));
        }
    }
    ctl.store
        .add_to_album(&p.tenant, id, &ids, now_ms())
        .await?
        .map_err(missing)?;
    answer(ctl, &p.tenant, id).await
}

/// `DELETE /api/v1/albums/{id}/images`: remove (all or nothing).
pub async fn remove_images(ctx: Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let ctl = ctx.ctl;
    owned(ctl, &p.tenant, id).await?;
    let ids = members(ctx).await?;
    ctl.store
        .remove_from_album(id, &ids, now_ms())
        .await?
        .map_err(missing)?;
    answer(ctl, &p.tenant, id).await
}

/// `PUT /api/v1/albums/{id}/images`: reorder: these images first, in this order, the others
/// after them as they were (all or nothing: ids not in the album → 404 naming them).
pub async fn order_images(ctx: Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let ctl = ctx.ctl;
    owned(ctl, &p.tenant, id).await?;
    let ids = members(ctx).await?;
    ctl.store
        .order_album(id, &ids, now_ms())
        .await?
        .map_err(missing)?;
    answer(ctl, &p.tenant, id).await
}

/// `GET /api/v1/albums/{id}/images`: in album order, paged.
pub async fn images(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let tenant = reader(ctx, id).await?;
    let q = ctx.query(&["page", "per_page", "token"])?;
    // A key with X-User-Id sees only public images and that user's own private ones; a token
    // holder sees the whole album.
    let viewer = match &ctx.caller {
        Some(_) => super::images::viewer(ctx)?,
        None => None,
    };
    let page = q.num("page", 1..=1_000_000)?.unwrap_or(1);
    let per_page = q.num("per_page", 1..=100)?.unwrap_or(20);
    let store = &ctx.ctl.store;
    owned(ctx.ctl, &tenant, id).await?;
    let (images, total) = store
        .album_images(&tenant, id, page, per_page, now_ms(), viewer.as_deref())
        .await?;
    let images: Vec<_> = images.iter().map(|r| view::image(r, &ctx.base)).collect();
    Ok(json(&j!({
        "success": true, "images": images, "page": page, "per_page": per_page, "total": total,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    /// Seconds; none = until revoked.
    #[serde(default, alias = "expiresIn")]
    expires_in: Option<u64>,
}

fn token_view(t: &AlbumToken) -> serde_json::Value {
    j!({
        "id": t.id,
        "album_id": t.album_id,
        "prefix": t.prefix,
        "created_at": rfc3339(t.created_at),
        "expires_at": t.expires_at.map(rfc3339),
    })
}

/// `POST /api/v1/albums/{id}/tokens`: a token shown once (stored hashed) that opens the album
/// and its images, private ones included, on the API and on `/img` (`token=`).
pub async fn create_token(ctx: Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let ctl = ctx.ctl;
    owned(ctl, &p.tenant, id).await?;
    let b: TokenBody = super::optional_json_body(ctx.req).await?;
    let now = now_ms();
    let expires_at = super::expiry(b.expires_in, now)?;
    let secret = format!("rft_{}", super::new_id(32)?);
    let t = AlbumToken {
        id: super::new_id(9)?,
        album_id: id.to_string(),
        prefix: secret.chars().take(10).collect(),
        expires_at,
        created_at: now,
    };
    ctl.store
        .insert_album_token(&t, &p.tenant, &auth::hash(&secret))
        .await?;
    let mut v = token_view(&t);
    v["token"] = j!(secret);
    Ok(created(&j!({ "success": true, "token": v })))
}

/// `GET /api/v1/albums/{id}/tokens`: prefixes and expiries, never the secrets.
pub async fn tokens(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let store = &ctx.ctl.store;
    owned(ctx.ctl, &p.tenant, id).await?;
    let list: Vec<_> = store
        .album_tokens(id)
        .await?
        .iter()
        .map(token_view)
        .collect();
    Ok(json(&j!({ "success": true, "tokens": list })))
}

/// `DELETE /api/v1/albums/{id}/tokens/{token_id}`: revoked at once.
pub async fn delete_token(ctx: &Ctx<'_>, id: &str, token: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let store = &ctx.ctl.store;
    owned(ctx.ctl, &p.tenant, id).await?;
    if !store.delete_album_token(id, token).await? {
        return Err(Error::NotFound("token not found".into()));
    }
    Ok(json(&j!({ "success": true, "deleted": token })))
}

/// `GET /api/v1/images/{id}/albums`: the albums holding an image (of the caller's tenant).
pub async fn albums_of(ctx: &Ctx<'_>, image: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    ctx.query(&[])?;
    super::images::visible(ctx, image).await?;
    let albums: Vec<_> = ctx
        .ctl
        .store
        .albums_of_image(&p.tenant, image)
        .await?
        .iter()
        .map(view::album)
        .collect();
    Ok(json(&j!({ "success": true, "albums": albums })))
}
