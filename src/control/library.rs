//! The library of folders: `GET /api/v1/folders` (browse storage prefixes), and the indexer's
//! `GET /api/v1/library/status` and `POST /api/v1/library/rescan`.

use super::images::{folder_param, viewer};
use super::{json, view, Ctx};
use crate::error::Error;
use crate::http::response::Body;
use crate::store::{Filter, Order, Paging};
use crate::util::clock::now_ms;
use http::Response;
use serde_json::json as j;
use std::collections::BTreeMap;

/// `GET /api/v1/library/status` (admin): the indexer's progress and outcome.
pub async fn status(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    ctx.query(&[])?;
    let s = ctx.ctl.indexer.status();
    Ok(json(&j!({
        "success": true,
        "tenant": ctx.ctl.indexer.tenant(),
        "status": s,
    })))
}

/// `POST /api/v1/library/rescan` (admin): a scan now (after the running one); 202.
pub async fn rescan(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    ctx.query(&[])?;
    if !ctx.ctl.indexer.enabled() {
        return Err(Error::Conflict(
            "the library is not enabled ([library] enabled = true)".into(),
        ));
    }
    ctx.ctl.indexer.rescan();
    Ok(crate::http::response::json_accepted(
        &j!({ "success": true, "status": ctx.ctl.indexer.status() }),
        "no-store",
    ))
}

/// One subfolder of a listing.
#[derive(Default)]
struct Sub {
    count: u64,
    newest: i64,
    cover: String,
}

/// `GET /api/v1/folders?path=P`: the subfolders of storage prefix `P` (name, path, images
/// under it, newest time, a cover thumbnail: its newest image) and its own images, paged like
/// image lists (by name).
pub async fn folders(ctx: &Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?;
    let q = ctx.query(&["path", "page", "per_page", "sort"])?;
    let path = folder_param(q.get("path"))?.unwrap_or_default();
    let now = now_ms();
    let mut subs: BTreeMap<String, Sub> = BTreeMap::new();
    for (key, at) in ctx.ctl.store.keys_under(&p.tenant, &path, now).await? {
        let rest = &key[path.len()..];
        let Some((name, _)) = rest.split_once('/') else {
            continue;
        };
        let s = subs.entry(name.to_string()).or_default();
        s.count += 1;
        if at >= s.newest {
            s.newest = at;
            s.cover = key.clone();
        }
    }
    let folders: Vec<_> = subs
        .iter()
        .map(|(name, s)| {
            j!({
                "name": name,
                "path": format!("{path}{name}/"),
                "image_count": s.count,
                "newest_at": view::rfc3339(s.newest),
                "cover_url": ctx.base.image_url(&s.cover, "thumb=1"),
            })
        })
        .collect();
    let order = match q
        .choice("sort", &["name", "created_desc", "created_asc"])?
        .as_deref()
    {
        Some("created_desc") => Order::CreatedDesc,
        Some("created_asc") => Order::CreatedAsc,
        _ => Order::NameAsc,
    };
    let (page, per_page) = (
        q.num("page", 1..=1_000_000)?.unwrap_or(1),
        q.num("per_page", 1..=200)?.unwrap_or(50),
    );
    let filter = Filter {
        folder: Some((path.clone(), false)),
        viewer: viewer(ctx)?,
        ..Filter::default()
    };
    let listing = ctx
        .ctl
        .store
        .list_images(
            &p.tenant,
            &filter,
            order,
            &Paging::Page { page, per_page },
            now,
        )
        .await?;
    let images: Vec<_> = listing
        .images
        .iter()
        .map(|r| view::image(r, &ctx.base))
        .collect();
    let parent = path.trim_end_matches('/').rsplit_once('/').map_or(
        if path.is_empty() {
            None
        } else {
            Some(String::new())
        },
        |(p, _)| Some(format!("{p}/")),
    );
    Ok(json(&j!({
        "success": true,
        "path": path,
        "parent": parent,
        "folders": folders,
        "images": images,
        "page": page,
        "per_page": per_page,
        "total": listing.total.unwrap_or(0),
    })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OpsBody {
    ops: Vec<crate::library::ops::Op>,
}

/// `POST /api/v1/library/ops` `{ops: [{op: move|rename|copy|delete|mkdir, …}]}` (write): up to
/// 100 operations in order, each answered on its own (`results[i].status`: `ok`, `conflict`,
/// `not_found`, `invalid`, `error`); nothing is ever overwritten.
pub async fn ops(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let ctl = ctx.ctl;
    let b: OpsBody = super::json_body(ctx.req).await?;
    if b.ops.is_empty() || b.ops.len() > 100 {
        return Err(Error::bad_param("ops", "ops must list 1-100 operations"));
    }
    let roots = ctl.indexer.roots_for(&p.tenant);
    let library = ctl.library.clone();
    let tenant = p.tenant.clone();
    // Run to the end even if the client goes away (each step is journalled anyway).
    let results = super::detached(async move {
        let scope = crate::library::ops::Scope {
            tenant: &tenant,
            library_roots: &roots,
        };
        Ok(library.file_ops(&scope, b.ops).await)
    })
    .await?;
    let all_ok = results.iter().all(|r| r.status == "ok");
    Ok(json(&j!({"success": all_ok, "results": results})))
}
