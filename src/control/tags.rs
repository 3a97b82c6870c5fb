//! Tags as things: `POST /api/v1/tags`, `PATCH/DELETE /api/v1/tags/{id}`, many images at once
//! (`POST/DELETE /api/v1/tags/{id}/images`) and `POST /api/v1/images/{id}/tags/{tag}/toggle`.
//! `GET /api/v1/tags` (in `misc`) lists them with ids. Names stay case-insensitive and unique
//! per tenant; the by-name APIs and filters keep working.

use super::{json, json_body, Ctx};
use crate::error::Error;
use crate::http::response::Body;
use crate::library::fields;
use crate::store::{TagBatch, TagRecord};
use crate::util::clock::now_ms;
use http::Response;
use serde::Deserialize;
use serde_json::json as j;

/// The TAG object.
pub(super) fn view(t: &TagRecord) -> serde_json::Value {
    j!({"id": t.id, "name": t.name, "color": t.color, "type": t.kind, "count": t.count})
}

/// `#rgb` or `#rrggbb`.
fn color(c: &str) -> Result<String, Error> {
    let hex = c.strip_prefix('#').unwrap_or("");
    if matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(c.to_ascii_lowercase())
    } else {
        Err(Error::bad_param("color", "a colour is #rgb or #rrggbb"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTag {
    name: String,
    #[serde(default)]
    color: Option<String>,
}

/// `POST /api/v1/tags` `{name, color?}` → 201 `{tag}`; 409 when the tenant has the name.
pub async fn create(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let ctl = ctx.ctl;
    let b: NewTag = json_body(ctx.req).await?;
    let name = fields::tag(&b.name, "name")?;
    let color = b.color.as_deref().map(color).transpose()?;
    let now = now_ms();
    let id = ctl
        .store
        .create_tag(&p.tenant, &name, color.as_deref(), "custom", now)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Unique(_) => {
                Error::Conflict(format!("the tag {name} exists"))
            }
            other => other.into(),
        })?;
    let t = found(ctl.store.tag_row(&p.tenant, &id, now).await?)?;
    Ok(super::created(&j!({"success": true, "tag": view(&t)})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagPatch {
    #[serde(default)]
    name: Option<String>,
    /// `null` clears the colour.
    #[serde(default, deserialize_with = "super::images::some_value")]
    color: Option<serde_json::Value>,
}

/// `PATCH /api/v1/tags/{id}` `{name?, color?}`: renaming onto a name the tenant has merges the
/// two (the answer is the surviving tag).
pub async fn patch(ctx: Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let ctl = ctx.ctl;
    let b: TagPatch = json_body(ctx.req).await?;
    let name = b
        .name
        .as_deref()
        .map(|n| fields::tag(n, "name"))
        .transpose()?;
    let color: Option<Option<String>> = match b.color {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(serde_json::Value::String(c)) => Some(Some(color(&c)?)),
        Some(_) => return Err(Error::bad_param("color", "a colour is #rgb or #rrggbb")),
    };
    let now = now_ms();
    let survivor = ctl
        .store
        .update_tag(
            &p.tenant,
            id,
            name.as_deref(),
            color.as_ref().map(Option::as_deref),
            now,
        )
        .await?
        .ok_or_else(no_tag)?;
    let t = found(ctl.store.tag_row(&p.tenant, &survivor, now).await?)?;
    Ok(json(&j!({"success": true, "tag": view(&t)})))
}

/// `DELETE /api/v1/tags/{id}`: off every image, then gone.
pub async fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    if !ctx.ctl.store.delete_tag(&p.tenant, id, now_ms()).await? {
        return Err(no_tag());
    }
    Ok(json(&j!({"success": true, "deleted": id})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Images {
    #[serde(alias = "imageIds")]
    image_ids: Vec<String>,
}

/// `POST` (add) or `DELETE` (remove) `/api/v1/tags/{id}/images` `{image_ids}`: 1-1000 images,
/// all or none (an id that is no image of the tenant changes nothing: 404 naming it).
pub async fn images(ctx: Ctx<'_>, id: &str, add: bool) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let ctl = ctx.ctl;
    let viewer = super::images::viewer(&ctx)?;
    let b: Images = json_body(ctx.req).await?;
    if b.image_ids.is_empty() || b.image_ids.len() > 1000 {
        return Err(Error::bad_param(
            "image_ids",
            "image_ids must list 1-1000 ids",
        ));
    }
    let mut ids = b.image_ids;
    ids.sort();
    ids.dedup();
    // With X-User-Id, another user's private images are as if absent.
    if let Some(v) = &viewer {
        for i in &ids {
            if let Some(r) = ctl.store.get_image(&p.tenant, i, now_ms()).await? {
                if r.is_private && r.owner.as_deref() != Some(v.as_str()) {
                    return Err(Error::NotFound(format!("no such image(s) here: {i}")));
                }
            }
        }
    }
    let now = now_ms();
    match ctl
        .store
        .tag_images(&p.tenant, id, &ids, add, now)
        .await?
        .ok_or_else(no_tag)?
    {
        TagBatch::Missing(m) => Err(Error::NotFound(format!(
            "no such image(s) here: {}",
            m.join(", ")
        ))),
        TagBatch::Changed(changed) => {
            let t = found(ctl.store.tag_row(&p.tenant, id, now).await?)?;
            Ok(json(
                &j!({"success": true, "tag": view(&t), "changed": changed}),
            ))
        }
    }
}

/// `POST /api/v1/images/{id}/tags/{tag}/toggle`: the tag on if it was off, off if it was on;
/// `{tagged, image}`.
pub async fn toggle(ctx: &Ctx<'_>, param: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let (image, tag) = param.split_once("/tags/").unwrap_or((param, ""));
    let r = super::images::visible(ctx, image).await?;
    let now = now_ms();
    let t = found(ctx.ctl.store.tag_row(&p.tenant, tag, now).await?)?;
    let add = !r.tags.contains(&t.name);
    ctx.ctl
        .store
        .tag_images(&p.tenant, &t.id, &[image.to_string()], add, now)
        .await?
        .ok_or_else(no_tag)?;
    let r = super::images::visible(ctx, image).await?;
    Ok(json(&j!({
        "success": true,
        "tagged": add,
        "image": super::view::image(&r, &ctx.base),
    })))
}

fn no_tag() -> Error {
    Error::NotFound("no such tag here".into())
}

fn found(t: Option<TagRecord>) -> Result<TagRecord, Error> {
    t.ok_or_else(no_tag)
}
