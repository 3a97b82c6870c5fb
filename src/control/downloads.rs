//! `POST /api/v1/downloads`: a selection of images (ids, or a folder) as one ZIP, streamed as it
//! is written: one original in memory at a time, never the whole archive, no temporary file.

use super::{json_body, Ctx};
use crate::error::Error;
use crate::http::response::{self, Body};
use crate::store::{Filter, ImageRecord, Order, Paging};
use crate::util::clock::now_ms;
use crate::util::zip;
use bytes::Bytes;
use http::Response;
use serde::Deserialize;

/// Most images in one archive.
pub const MAX_FILES: usize = 10_000;
/// Largest original put in an archive.
const MAX_FILE_BYTES: u64 = 512 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Selection {
    #[serde(default, alias = "imageIds")]
    image_ids: Option<Vec<String>>,
    #[serde(default)]
    folder: Option<String>,
    #[serde(default)]
    recursive: Option<bool>,
}

/// `{image_ids}` (names: the file names) or `{folder, recursive?}` (names: paths inside the
/// folder) → `application/zip`. The selection is checked before anything is sent: unknown ids
/// are a 404, more than 10,000 images or 4 GiB a 413. A file that cannot be read while the
/// archive streams is left out and named in `ERRORS.txt`, the archive's last entry.
pub async fn download(ctx: Ctx<'_>) -> Result<Response<Body>, Error> {
    let p = ctx.principal()?.clone();
    let viewer = super::images::viewer(&ctx)?;
    let ctl = ctx.ctl;
    let b: Selection = json_body(ctx.req).await?;
    let now = now_ms();
    let (filter, prefix, archive) = match (b.image_ids, b.folder) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_FILES {
                return Err(Error::bad_param(
                    "image_ids",
                    format!("image_ids must list 1-{MAX_FILES} ids"),
                ));
            }
            let mut ids = ids;
            ids.sort();
            ids.dedup();
            let f = Filter {
                ids: Some(ids),
                viewer: viewer.clone(),
                ..Filter::default()
            };
            (f, None, "images".to_string())
        }
        (None, Some(folder)) => {
            let prefix = super::images::folder_param(Some(&folder))?.unwrap_or_default();
            let name = prefix
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or("images")
                .to_string();
            let f = Filter {
                folder: Some((prefix.clone(), b.recursive.unwrap_or(true))),
                viewer: viewer.clone(),
                ..Filter::default()
            };
            (f, Some(prefix), name)
        }
        _ => {
            return Err(Error::bad_param(
                "image_ids",
                "give either image_ids or folder",
            ))
        }
    };
    let paging = Paging::Page {
        page: 1,
        per_page: MAX_FILES as u32 + 1,
    };
    let listing = ctl
        .store
        .list_images(&p.tenant, &filter, Order::NameAsc, &paging, now)
        .await?;
    let images = listing.images;
    if let Some(ids) = &filter.ids {
        let missing: Vec<&str> = ids
            .iter()
            .filter(|i| !images.iter().any(|r| &r.id == *i))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Error::NotFound(format!(
                "no such image(s) here: {}",
                missing.join(", ")
            )));
        }
    }
    if images.is_empty() {
        return Err(Error::NotFound("no image in this folder".into()));
    }
    let total: u64 = images.iter().map(|r| r.bytes.max(0) as u64 + 200).sum();
    if images.len() > MAX_FILES || total > zip::MAX_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "a download holds at most {MAX_FILES} images and 4 GiB; narrow the selection"
        )));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let library = ctl.library.clone();
    tokio::spawn(async move {
        let mut w = zip::Writer::default();
        let mut errors: Vec<String> = Vec::new();
        for r in &images {
            let name = entry_name(r, prefix.as_deref());
            let bytes = match library
                .read_original(&r.storage_key, r.bytes.max(0) as u64, MAX_FILE_BYTES)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    errors.push(format!("{name}: {e}"));
                    continue;
                }
            };
            let secs = r.file_mtime.unwrap_or(r.created_at).div_euclid(1000);
            let Some(chunk) = w.entry(&name, &bytes, secs) else {
                errors.push(format!("{name}: the archive is full"));
                continue;
            };
            // The client went away: stop reading.
            if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
        }
        if !errors.is_empty() {
            let text = format!("Left out of this archive:\n{}\n", errors.join("\n"));
            if let Some(chunk) = w.entry("ERRORS.txt", text.as_bytes(), now / 1000) {
                let _ = tx.send(Ok(Bytes::from(chunk))).await;
            }
        }
        let _ = tx.send(Ok(Bytes::from(w.finish()))).await;
    });
    Ok(response::stream(
        "application/zip",
        &format!(
            "attachment; filename=\"{}.zip\"",
            archive.replace(['"', '\\'], "_")
        ),
        rx,
    ))
}

/// The entry's name: its path inside the folder downloaded, or its file name.
fn entry_name(r: &ImageRecord, prefix: Option<&str>) -> String {
    match prefix {
        Some(p) => r
            .storage_key
            .strip_prefix(p)
            .unwrap_or(&r.storage_key)
            .to_string(),
        None => r
            .storage_key
            .rsplit('/')
            .next()
            .unwrap_or(&r.storage_key)
            .to_string(),
    }
}
