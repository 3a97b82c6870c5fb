//! `/api/v1/avatars/{user_id}`: one avatar per user of a tenant. `PUT` (multipart `file`;
//! FileHarbor's `POST /api/v1/avatars` with `externalUserId`) stores or replaces it atomically,
//! `GET` answers it (a 302 to its `/img` URL, square by default, the request's transform
//! parameters passed on) or, for a user without one, a generated identicon, so an avatar
//! `<img>` never breaks; `DELETE` removes it.

use super::{detached, json, Ctx};
use crate::error::Error;
use crate::http::response::{self, Body, ImageMeta};
use crate::pipeline::format::ImageFormat;
use crate::util::query::Pair;
use http::Response;
use serde_json::json as j;

fn user_id(v: &str) -> Result<String, Error> {
    let v = percent_encoding::percent_decode_str(v)
        .decode_utf8()
        .map_err(|_| Error::bad_param("user_id", "not UTF-8"))?;
    let ok = !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic());
    if !ok {
        return Err(Error::bad_param(
            "user_id",
            "a user id is 1-128 visible ASCII characters",
        ));
    }
    Ok(v.into_owned())
}

/// `PUT /api/v1/avatars/{user_id}`, or `POST /api/v1/avatars` with `externalUserId` (`user`
/// empty).
pub async fn put(ctx: Ctx<'_>, user: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let ctl = ctx.ctl;
    let form = super::images::read_form(ctx).await?;
    let user = match (user, &form.external_user) {
        ("", Some(u)) => user_id(u)?,
        ("", None) => {
            return Err(Error::bad_param(
                "externalUserId",
                "name the user: PUT /api/v1/avatars/{user_id} or an externalUserId field",
            ))
        }
        (u, _) => user_id(u)?,
    };
    let [file] = <[_; 1]>::try_from(form.files)
        .map_err(|_| Error::bad_param("file", "an avatar is exactly one file"))?;
    let lib = ctl.library.clone();
    let tenant = p.tenant.clone();
    let u = user.clone();
    let a = detached(async move { lib.set_avatar(&tenant, &u, file.bytes).await }).await?;
    Ok(json(&j!({
        "success": true,
        "avatar": super::view::avatar(&a),
    })))
}

/// `DELETE /api/v1/avatars/{user_id}`.
pub async fn delete(ctx: &Ctx<'_>, user: &str) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let user = user_id(user)?;
    let lib = ctx.ctl.library.clone();
    let tenant = p.tenant.clone();
    if !detached(async move { lib.delete_avatar(&tenant, &user).await }).await? {
        return Err(Error::NotFound("no avatar for this user".into()));
    }
    Ok(json(&j!({ "success": true })))
}

/// `GET /api/v1/avatars/{user_id}`: no key needed (the tenant is the key's, else `tenant=`,
/// else `default`).
pub async fn get(ctx: &Ctx<'_>, user: &str) -> Result<Response<Body>, Error> {
    let user = user_id(user)?;
    let q = ctx.any_query();
    let tenant = match (&ctx.caller, q.get("tenant")) {
        (Some(p), _) => p.tenant.clone(),
        (None, Some(t)) if crate::access::auth::valid_tenant(t) => t.to_string(),
        (None, Some(_)) => return Err(Error::bad_param("tenant", "not a tenant name")),
        (None, None) => "default".to_string(),
    };
    let size = ctx.ctl.avatar_size;
    let Some(a) = ctx.ctl.store.avatar(&tenant, &user).await? else {
        let w = q
            .get("w")
            .or(q.get("width"))
            .and_then(|v| v.parse::<u32>().ok())
            .map_or(size, |w| w.clamp(16, 512));
        // Drawn and encoded off the async threads (anyone may ask for one).
        return tokio::task::spawn_blocking(move || identicon(&tenant, &user, w))
            .await
            .map_err(|e| Error::Internal(format!("identicon: {e}")))?;
    };
    // Square by default; the request's own parameters win (unless this server serves only
    // signed or preset URLs: then an anonymous caller cannot have any transform signed); `v`
    // versions the URL (immutable).
    let passthrough = !ctx.ctl.signer.required() && !ctx.ctl.random.presets_only;
    let mut pairs: Vec<Pair> = q
        .pairs()
        .iter()
        .filter(|p| passthrough && p.key.as_deref() != Some("tenant"))
        .cloned()
        .collect();
    let has = |pairs: &[Pair], names: &[&str]| {
        pairs
            .iter()
            .any(|p| p.key.as_deref().is_some_and(|k| names.contains(&k)))
    };
    if !has(&pairs, &["w", "width", "h", "height", "thumb"]) {
        pairs.push(Pair::new("w", &size.to_string()));
        pairs.push(Pair::new("h", &size.to_string()));
    }
    if !has(&pairs, &["fit"]) {
        pairs.push(Pair::new("fit", "cover"));
    }
    if !has(&pairs, &["v"]) {
        pairs.push(Pair::new("v", &a.updated_at.to_string()));
    }
    let query = crate::util::query::Query::from_pairs(pairs).raw();
    Ok(response::redirect(
        &ctx.base.image_url(&a.storage_key, &query),
    ))
}

/// A 5×5 mirrored identicon of the user's id, `size` pixels, PNG.
fn identicon(tenant: &str, user: &str, size: u32) -> Result<Response<Body>, Error> {
    let h = blake3::hash(format!("{tenant}\0{user}").as_bytes());
    let b = h.as_bytes();
    let colour = [64 + b[0] / 2, 64 + b[1] / 2, 64 + b[2] / 2];
    let background = [240u8, 240, 240];
    let on = |cx: usize, cy: usize| {
        let col = if cx > 2 { 4 - cx } else { cx };
        let bit = cy * 3 + col;
        (b[3 + bit / 8] >> (bit % 8)) & 1 == 1
    };
    let s = size as usize;
    let mut data = Vec::with_capacity(s * s * 3);
    for y in 0..s {
        for x in 0..s {
            // A margin of half a cell around the 5×5 grid.
            let (gx, gy) = (x * 12 / s, y * 12 / s);
            let inside = (1..11).contains(&gx) && (1..11).contains(&gy);
            let lit = inside && on((gx - 1) / 2, (gy - 1) / 2);
            data.extend_from_slice(if lit { &colour } else { &background });
        }
    }
    let px = crate::pipeline::Pixels {
        width: size,
        height: size,
        channels: 3,
        data,
    };
    let png = crate::pipeline::encode::encode(
        &px,
        ImageFormat::Png,
        90,
        &crate::pipeline::EncodeConfig::default(),
    )?;
    let etag = format!("\"{}\"", &h.to_hex()[..32]);
    let meta = ImageMeta {
        content_type: "image/png",
        etag: &etag,
        last_modified: None,
        cache_control: "public, max-age=300",
        cdn_cache_control: None,
        vary_accept: false,
        content_disposition: None,
        x_cache: None,
        accept_ranges: false,
    };
    Ok(response::image(&meta, png.into(), None, false))
}
