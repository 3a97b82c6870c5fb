//! `/api/v1/images`: upload, search, read, update, delete.

use super::view::{self, parse_rfc3339};
use super::{created, detached, guarded_body, json, json_body, Ctx};
use crate::error::Error;
use crate::http::response::Body;
use crate::library::fields;
use crate::library::upload::{self, UploadLimits};
use crate::library::Uploader;
use crate::store::{Cursor, Filter, Order, Paging, Patch};
use crate::util::clock::now_ms;
use base64::Engine;
use http::Response;
use serde::Deserialize;
use serde_json::json as j;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The `format` filter: every stored format's name (`ImageFormat::ALL`, checked by a test).
const FORMATS: &[&str] = &["jpeg", "png", "gif", "webp", "avif", "heic", "jxl"];
const SHAPES: &[&str] = &["landscape", "portrait", "square"];

/// `POST /api/v1/images` (multipart).
pub async fn upload(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let ctl = ctx.ctl;
    let p = ctx.principal()?.clone();
    let owner = owner(ctx.req.headers())?;
    let base = ctx.base.clone();
    let form = read_form(ctx).await?;
    if let Some(a) = &form.album {
        if ctl.store.get_album(&p.tenant, a).await?.is_none() {
            return Err(Error::bad_param(
                "album_id",
                format!("no album {a} in this tenant"),
            ));
        }
    }
    let who = Uploader {
        tenant: p.tenant.clone(),
        owner,
    };
    let lib = ctl.library.clone();
    let stored = detached(async move { lib.ingest(&who, form).await }).await?;
    let images: Vec<_> = stored
        .iter()
        .map(|s| {
            let mut v = view::image(&s.record, &base);
            v["duplicate"] = j!(s.duplicate);
            v
        })
        .collect();
    Ok(created(&j!({ "success": true, "images": images })))
}

/// The multipart body of an upload, within the upload limits (413 before reading an
/// oversized body; 408 when it arrives too slowly).
pub(super) async fn read_form(ctx: Ctx<'_>) -> Result<upload::UploadForm, Error> {
    let ctl = ctx.ctl;
    let lim = UploadLimits {
        max_file_bytes: ctl.limits.max_upload_bytes,
        max_files: ctl.limits.max_upload_count,
    };
    let headers = ctx.req.headers();
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // Refuse from Content-Length before reading a byte of an oversized body.
    let max_body = lim
        .max_file_bytes
        .saturating_mul(lim.max_files as u64)
        .saturating_add(1 << 20);
    if let Some(len) = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > max_body {
            return Err(Error::PayloadTooLarge(format!(
                "request body of {len} bytes is over the {max_body} byte limit"
            )));
        }
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let stream = guarded_body(ctx.req.into_body(), &ctl.limits, timed_out.clone());
    match upload::parse(&content_type, stream, lim).await {
        Err(_) if timed_out.load(Ordering::Relaxed) => Err(Error::RequestTimeout(format!(
            "the upload body did not arrive within limits.body_timeout_ms ({} ms) or at \
             limits.min_body_rate ({} bytes/s)",
            ctl.limits.body_timeout_ms, ctl.limits.min_body_rate
        ))),
        other => other,
    }
}

/// `X-User-Id`: the external user recorded as owner.
pub(super) fn owner(h: &http::HeaderMap) -> Result<Option<String>, Error> {
    let Some(v) = h.get("x-user-id") else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .ok_or_else(|| Error::bad_param("X-User-Id", "must be 1-128 visible ASCII characters"))?;
    Ok(Some(s.to_string()))
}

/// `GET /api/v1/images`.
pub async fn list(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let q = ctx.query(&[
        "tag",
        "any_tag",
        "not_tag",
        "q",
        "orientation",
        "format",
        "owner",
        "private",
        "album_id",
        "albumId",
        "sort",
        "page",
        "per_page",
        "cursor",
        "limit",
        "folder",
        "recursive",
        "regex",
        "path_only",
        "model",
        "sampler",
        "seed",
        "lora",
        "source",
    ])?;
    let tags = |k: &str| -> Result<Vec<String>, Error> {
        q.all(k)
            .into_iter()
            .map(|t| Ok(fields::tag(t, k)?))
            .collect()
    };
    let text = |k: &str| -> Result<Option<String>, Error> {
        match q.get(k).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) if v.chars().count() > 200 => Err(Error::bad_param(
                k,
                format!("{k} is at most 200 characters"),
            )),
            Some(v) => Ok(Some(v.to_string())),
        }
    };
    let mut filter = Filter {
        folder: folder_param(q.get("folder"))?
            .map(|f| Ok::<_, Error>((f, q.flag("recursive")?.unwrap_or(true))))
            .transpose()?,
        model: text("model")?,
        sampler: text("sampler")?,
        seed: text("seed")?,
        lora: text("lora")?,
        source: q.choice("source", &["upload", "indexed", "copy"])?,
        ids: None,
        all_tags: tags("tag")?,
        any_tags: tags("any_tag")?,
        not_tags: tags("not_tag")?,
        text: q
            .get("q")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        orientation: q.choice("orientation", SHAPES)?,
        format: q
            .choice("format", FORMATS)?
            .map(|f| if f == "jpg" { "jpeg".into() } else { f }),
        owner: q.get("owner").map(str::to_string),
        private: q.flag("private")?,
        album: q.get("album_id").or(q.get("albumId")).map(str::to_string),
        viewer: viewer(ctx)?,
    };
    let order = match q
        .choice("sort", &["created_desc", "created_asc", "random", "name"])?
        .as_deref()
    {
        Some("created_asc") => Order::CreatedAsc,
        Some("random") => Order::Random,
        Some("name") => Order::NameAsc,
        _ => Order::CreatedDesc,
    };
    let cursor_mode = q.get("cursor").is_some() || q.get("limit").is_some();
    if cursor_mode && (q.get("page").is_some() || q.get("per_page").is_some()) {
        return Err(Error::bad_param(
            "cursor",
            "use either page/per_page or cursor/limit",
        ));
    }
    if cursor_mode && matches!(order, Order::Random | Order::NameAsc) {
        return Err(Error::bad_param(
            "cursor",
            "random and name order have no cursor; use page",
        ));
    }
    if let Some(pattern) = q.get("regex") {
        let path_only = q.flag("path_only")?.unwrap_or(false);
        filter.ids = Some(regex_matches(ctx, &p.tenant, &filter, pattern, path_only).await?);
    }
    let paging = if cursor_mode {
        Paging::Cursor {
            after: q
                .get("cursor")
                .filter(|c| !c.is_empty())
                .map(decode_cursor)
                .transpose()?,
            limit: q.num("limit", 1..=200)?.unwrap_or(20),
        }
    } else {
        Paging::Page {
            page: q.num("page", 1..=1_000_000)?.unwrap_or(1),
            per_page: q.num("per_page", 1..=200)?.unwrap_or(20),
        }
    };
    let listing = ctx
        .ctl
        .store
        .list_images(&p.tenant, &filter, order, &paging, now_ms())
        .await?;
    let images: Vec<_> = listing
        .images
        .iter()
        .map(|r| view::image(r, &ctx.base))
        .collect();
    let body = match paging {
        Paging::Page { page, per_page } => j!({
            "success": true, "images": images, "page": page, "per_page": per_page,
            "total": listing.total.unwrap_or(0),
        }),
        Paging::Cursor { .. } => j!({
            "success": true, "images": images,
            "next_cursor": listing.next.as_ref().map(encode_cursor),
        }),
    };
    Ok(json(&body))
}

/// `folder=`: a storage prefix, sanitised like keys (`a/b` → `a/b/`; "" or `/` = everything).
pub(super) fn folder_param(v: Option<&str>) -> Result<Option<String>, Error> {
    let Some(v) = v else { return Ok(None) };
    Ok(Some(fields::folder(v, "folder")?))
}

/// Most images a regex search may match (their ids become the listing's filter).
const REGEX_MAX_MATCHES: usize = 20_000;

/// The ids of the images matching `filter` whose storage key, or (without `path_only`) whose
/// generation text (`parameters`, ComfyUI `prompt`), `pattern` matches. The pattern is
/// compiled by the `regex` crate: linear time in the text, no backtracking; its size and the
/// automaton it builds are bounded.
async fn regex_matches(
    ctx: &Ctx<'_>,
    tenant: &str,
    filter: &Filter,
    pattern: &str,
    path_only: bool,
) -> Result<Vec<String>, Error> {
    if pattern.is_empty() || pattern.chars().count() > 256 {
        return Err(Error::bad_param("regex", "a regex is 1-256 characters"));
    }
    let re = regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .nest_limit(50)
        .build()
        .map_err(|e| Error::bad_param("regex", format!("invalid or too large a regex: {e}")))?;
    let mut out = Vec::new();
    let mut after = String::new();
    let now = now_ms();
    loop {
        let rows = ctx
            .ctl
            .store
            .search_texts(tenant, filter, now, &after, 500, !path_only)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.0.clone();
        for (id, key, info) in rows {
            let hit = re.is_match(&key)
                || info
                    .as_deref()
                    .is_some_and(|i| generation_texts(i).iter().any(|t| re.is_match(t)));
            if hit {
                if out.len() == REGEX_MAX_MATCHES {
                    return Err(Error::bad_param(
                        "regex",
                        format!("more than {REGEX_MAX_MATCHES} images match: narrow the search (folder, tag, q)"),
                    ));
                }
                out.push(id);
            }
        }
    }
    Ok(out)
}

/// The searchable texts of a generation info object: `parameters` and ComfyUI's `prompt`.
fn generation_texts(info: &str) -> Vec<String> {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(info) else {
        return Vec::new();
    };
    ["parameters", "prompt"]
        .iter()
        .filter_map(|k| m.get(*k).and_then(|v| v.as_str()).map(str::to_string))
        .collect()
}

pub(super) fn encode_cursor(c: &Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{}", c.created_at, c.id))
}

pub(super) fn decode_cursor(s: &str) -> Result<Cursor, Error> {
    let bad = || Error::bad_param("cursor", "not a cursor returned by this API");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (t, id) = text.split_once(':').ok_or_else(bad)?;
    Ok(Cursor {
        created_at: t.parse().map_err(|_| bad())?,
        id: id.to_string(),
    })
}

fn not_found() -> Error {
    Error::NotFound("image not found".into())
}

/// Who is looking, inside the tenant: the `X-User-Id` of a key without `admin` scope (it sees
/// public images and its own private ones); `None` = the whole tenant (no user named, or an
/// admin key).
pub(super) fn viewer(ctx: &Ctx<'_>) -> Result<Option<String>, Error> {
    let p = ctx.principal()?;
    if p.has(crate::access::auth::Scope::Admin) {
        return Ok(None);
    }
    owner(ctx.req.headers())
}

/// The live image `id` of the caller's tenant, if the caller may see it (another user's
/// private image is a 404, never a 403).
pub(super) async fn visible(ctx: &Ctx<'_>, id: &str) -> Result<crate::store::ImageRecord, Error> {
    let p = ctx.principal()?;
    let r = ctx
        .ctl
        .store
        .get_image(&p.tenant, id, now_ms())
        .await?
        .ok_or_else(not_found)?;
    match viewer(ctx)? {
        Some(v) if r.is_private && r.owner.as_deref() != Some(v.as_str()) => Err(not_found()),
        _ => Ok(r),
    }
}

/// `GET /api/v1/images/{id}`.
pub async fn get(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    let r = visible(ctx, id).await?;
    Ok(json(&view::image(&r, &ctx.base)))
}

/// The `PATCH` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    tags: Option<Vec<String>>,
    add_tags: Option<Vec<String>>,
    remove_tags: Option<Vec<String>>,
    description: Option<String>,
    is_private: Option<bool>,
    expiry_minutes: Option<u64>,
    /// RFC 3339 text, unix seconds, or null to clear.
    #[serde(default, deserialize_with = "some_value")]
    expires_at: Option<serde_json::Value>,
}

/// Keep an explicit `null` apart from an absent field.
pub(super) fn some_value<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// `PATCH /api/v1/images/{id}`.
pub async fn patch(ctx: Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    visible(&ctx, id).await?;
    let p = ctx.principal()?.clone();
    let (ctl, base) = (ctx.ctl, ctx.base.clone());
    let body: PatchBody = json_body(ctx.req).await?;
    let norm = |v: Option<Vec<String>>, field: &str| -> Result<Vec<String>, Error> {
        v.unwrap_or_default()
            .iter()
            .map(|t| Ok(fields::tag(t, field)?))
            .collect()
    };
    if body.tags.is_some() && (body.add_tags.is_some() || body.remove_tags.is_some()) {
        return Err(Error::bad_param(
            "tags",
            "send tags, or add_tags/remove_tags, not both",
        ));
    }
    if body.expiry_minutes.is_some() && body.expires_at.is_some() {
        return Err(Error::bad_param(
            "expires_at",
            "send expiry_minutes or expires_at, not both",
        ));
    }
    if let Some(d) = &body.description {
        fields::description(d, "description")?;
    }
    let now = now_ms();
    let expires_at = match (body.expiry_minutes, &body.expires_at) {
        (Some(m), _) => {
            Some(fields::expiry_minutes(m, "expiry_minutes")?.map(|m| fields::expires_at(now, m)))
        }
        (None, Some(serde_json::Value::Null)) => Some(None),
        (None, Some(serde_json::Value::Number(n))) => Some(Some(
            n.as_i64()
                .filter(|s| *s > 0)
                .ok_or_else(|| Error::bad_param("expires_at", "unix seconds must be positive"))?
                .saturating_mul(1000),
        )),
        (None, Some(serde_json::Value::String(s))) => {
            Some(Some(parse_rfc3339(s).ok_or_else(|| {
                Error::bad_param("expires_at", "not an RFC 3339 time (2026-12-31T23:59:59Z)")
            })?))
        }
        (None, Some(_)) => {
            return Err(Error::bad_param(
                "expires_at",
                "RFC 3339 text, unix seconds or null",
            ))
        }
        (None, None) => None,
    };
    let patch = Patch {
        tags: body
            .tags
            .map(|t| norm(Some(t), "tags"))
            .transpose()?
            .map(fields::dedup_tags),
        add_tags: fields::dedup_tags(norm(body.add_tags, "add_tags")?),
        remove_tags: norm(body.remove_tags, "remove_tags")?,
        description: body.description,
        is_private: body.is_private,
        expires_at,
    };
    let r = ctl
        .library
        .update(&p.tenant, id, &patch)
        .await?
        .ok_or_else(not_found)?;
    Ok(json(&view::image(&r, &base)))
}

/// `DELETE /api/v1/images/{id}`.
pub async fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Response<Body>, Error> {
    visible(ctx, id).await?;
    let p = ctx.principal()?;
    let (lib, tenant, image) = (ctx.ctl.library.clone(), p.tenant.clone(), id.to_string());
    if !detached(async move { lib.delete(&tenant, &image).await }).await? {
        return Err(not_found());
    }
    Ok(json(
        &j!({"success": true, "message": "Image deleted successfully"}),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_format_filter_names_every_format() {
        let names: Vec<&str> = crate::pipeline::format::ImageFormat::ALL
            .iter()
            .map(|f| f.name())
            .collect();
        assert_eq!(super::FORMATS, names.as_slice());
    }
}
