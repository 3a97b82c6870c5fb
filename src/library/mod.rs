//! The image library: the multi-step operations that touch both the store (rows) and the origin
//! (objects), ordered so that a failure or a crash at any point loses nothing and leaves nothing
//! half-done.
//!
//! Ingest: analyse every file (nothing stored yet) → dedupe → reserve the storage keys in the
//! pending journal (one transaction) → write the objects → insert the rows and clear the
//! journal (one transaction). On any failure the written objects are deleted and the
//! reservations released; after a crash, `sweep_pending` at start deletes whatever the journal
//! still names. Delete: row gone and object journalled (one transaction) → object deleted →
//! journal cleared.
//!
//! Invariants: no HTTP types; every object key it writes is `<tenant>/...`; the access index is
//! updated before a call returns.

pub mod meta;
pub mod upload;

use crate::app::App;
use crate::error::Error;
use crate::library::upload::UploadForm;
use crate::store::{now_ms, AccessRule, ImageRecord, Patch};
use meta::Analysis;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The `[expiry]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpiryConfig {
    /// Seconds between sweeps that delete expired images.
    pub sweep_interval: u64,
}

impl Default for ExpiryConfig {
    fn default() -> Self {
        Self { sweep_interval: 60 }
    }
}

/// The `[metadata]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// Report the GPS position found in EXIF (off: it is personal data).
    pub keep_gps: bool,
}

/// One image after an upload.
#[derive(Debug, Clone)]
pub struct Stored {
    pub record: ImageRecord,
    /// The tenant already had these bytes: this is the existing image.
    pub duplicate: bool,
}

/// Who uploads.
#[derive(Debug, Clone)]
pub struct Uploader {
    pub tenant: String,
    pub owner: Option<String>,
}

/// Store an upload batch: all files or none.
pub async fn ingest(app: &App, who: &Uploader, form: UploadForm) -> Result<Vec<Stored>, Error> {
    let opts = meta::Options {
        limits: app.config.limits.pixel_limits(),
        keep_gps: app.config.metadata.keep_gps,
        remove_exif: form.remove_exif,
    };
    let fields = form_fields(&form);
    // Every file is analysed (on the CPU pool, in parallel) before anything is stored; the
    // first refusal rejects the batch and names its file.
    let jobs = form.files.into_iter().map(|f| async move {
        let name = f.filename;
        let bytes = f.bytes;
        let a = app
            .cpu
            .run(move || meta::analyze(bytes, opts))
            .await?
            .map_err(|e| match Error::from(e) {
                Error::UnsupportedMediaType(m) => {
                    Error::UnsupportedMediaType(format!("{name}: {m}"))
                }
                Error::Unprocessable(m) => Error::Unprocessable(format!("{name}: {m}")),
                other => other,
            })?;
        Ok::<_, Error>((name, a))
    });
    let analysed: Vec<(String, Analysis)> = futures_util::future::try_join_all(jobs).await?;
    // A concurrent upload of the same bytes may commit first: then plan again, and this
    // request gets its image as a duplicate.
    let mut attempt = 0;
    loop {
        let (out, fresh) = plan(app, who, &fields, &analysed).await?;
        if fresh.is_empty() {
            return Ok(out);
        }
        match store_objects(app, &fresh, fields.key.is_some()).await {
            Ok(()) => {
                for (r, _) in &fresh {
                    app.access.set(rule(r));
                }
                return Ok(out);
            }
            Err(Failure::Race) if attempt < 3 => attempt += 1,
            Err(Failure::Race) => {
                return Err(Error::Conflict(
                    "the same image is being stored concurrently; retry".into(),
                ))
            }
            Err(Failure::Error(e)) => return Err(e),
        }
    }
}

/// The text fields of an upload (everything but the files).
struct Fields {
    tags: Vec<String>,
    description: String,
    is_private: bool,
    expiry_minutes: Option<u64>,
    key: Option<String>,
}

fn form_fields(f: &UploadForm) -> Fields {
    Fields {
        tags: crate::library::upload::dedup_tags(f.tags.clone()),
        description: f.description.clone(),
        is_private: f.is_private,
        expiry_minutes: f.expiry_minutes,
        key: f.key.clone(),
    }
}

/// Decide, file by file, between an existing image (same bytes in the tenant, or earlier in the
/// batch) and a new record with the bytes to store.
async fn plan(
    app: &App,
    who: &Uploader,
    fields: &Fields,
    analysed: &[(String, Analysis)],
) -> Result<(Vec<Stored>, Vec<(ImageRecord, Vec<u8>)>), Error> {
    let now = now_ms();
    let mut out: Vec<Stored> = Vec::new();
    let mut fresh: Vec<(ImageRecord, Vec<u8>)> = Vec::new();
    let mut in_batch: HashMap<&str, usize> = HashMap::new();
    for (filename, a) in analysed {
        if let Some(existing) = app.store.find_by_hash(&who.tenant, &a.blake3, now).await? {
            out.push(Stored {
                record: existing,
                duplicate: true,
            });
            continue;
        }
        if let Some(&i) = in_batch.get(a.blake3.as_str()) {
            out.push(Stored {
                record: fresh[i].0.clone(),
                duplicate: true,
            });
            continue;
        }
        let id = new_id()?;
        let storage_key = match &fields.key {
            Some(k) => format!("{}/{k}", who.tenant),
            None => format!("{}/{id}.{}", who.tenant, a.format.extension()),
        };
        let record = ImageRecord {
            id,
            tenant: who.tenant.clone(),
            storage_key,
            filename: filename.clone(),
            content_type: a.format.mime().into(),
            format: a.format.name().into(),
            bytes: a.stored.len() as i64,
            width: i64::from(a.width),
            height: i64::from(a.height),
            orientation: a.orientation.into(),
            has_alpha: a.has_alpha,
            blake3: a.blake3.clone(),
            description: fields.description.clone(),
            is_private: fields.is_private,
            owner: who.owner.clone(),
            created_at: now,
            expires_at: fields.expiry_minutes.map(|m| {
                now.saturating_add(i64::try_from(m).unwrap_or(i64::MAX / 60_000) * 60_000)
            }),
            exif: serde_json::Value::Object(a.exif.clone()).to_string(),
            generation_info: a
                .generation_info
                .clone()
                .map(|g| serde_json::Value::Object(g).to_string()),
            placeholder: a.placeholder.to_string(),
            tags: fields.tags.clone(),
        };
        in_batch.insert(&a.blake3, fresh.len());
        out.push(Stored {
            record: record.clone(),
            duplicate: false,
        });
        fresh.push((record, a.stored.clone()));
    }
    Ok((out, fresh))
}

/// Why storing failed.
enum Failure {
    /// Another upload committed the same bytes first.
    Race,
    Error(Error),
}

impl<E: Into<Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::Error(e.into())
    }
}

/// Reserve → write → commit, undoing everything on failure.
async fn store_objects(
    app: &App,
    fresh: &[(ImageRecord, Vec<u8>)],
    wanted_key: bool,
) -> Result<(), Failure> {
    let keys: Vec<String> = fresh.iter().map(|(r, _)| r.storage_key.clone()).collect();
    app.store
        .reserve(&keys, now_ms())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Unique(_) => {
                Failure::Error(Error::Conflict("the storage key is already taken".into()))
            }
            other => other.into(),
        })?;
    let mut written: Vec<&str> = Vec::new();
    let result = async {
        if wanted_key {
            for k in &keys {
                if app.origin.exists(k).await? {
                    return Err(Failure::Error(Error::Conflict(
                        "the storage key is already taken".into(),
                    )));
                }
            }
        }
        for (r, bytes) in fresh {
            written.push(&r.storage_key);
            app.origin.write(&r.storage_key, bytes.clone()).await?;
        }
        let records: Vec<ImageRecord> = fresh.iter().map(|(r, _)| r.clone()).collect();
        app.store
            .commit_images(&records)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Unique(_) if !wanted_key => Failure::Race,
                crate::store::StoreError::Unique(_) => {
                    Failure::Error(Error::Conflict("the storage key is already taken".into()))
                }
                other => Failure::from(other),
            })
    }
    .await;
    if let Err(e) = result {
        // Undo: our objects first, then their reservations (a crash in between is swept at
        // start). An object that existed before this upload is not ours to delete.
        for k in written {
            if let Err(de) = app.origin.delete(k).await {
                tracing::warn!(key = %k, error = %de, "could not remove an object after a failed upload");
            }
        }
        if let Err(re) = app.store.release(&keys).await {
            tracing::warn!(error = %re, "could not release upload reservations");
        }
        return Err(e);
    }
    Ok(())
}

/// Delete an image of `tenant`: its row, its tags and (unless shared) its object. False when
/// there is no such image.
pub async fn delete(app: &App, tenant: &str, id: &str) -> Result<bool, Error> {
    let Some(d) = app.store.delete_image(tenant, id, now_ms()).await? else {
        return Ok(false);
    };
    if d.shared {
        if let Some(r) = app.store.access_rule(&d.storage_key).await? {
            app.access.set(r);
        }
        return Ok(true);
    }
    app.access.remove(&d.storage_key);
    // Without its row the object is unreachable through the API; the journal entry makes sure
    // it goes even if this delete fails now (retried by the next start-up sweep).
    app.origin.delete(&d.storage_key).await?;
    app.store.release(&[d.storage_key]).await?;
    Ok(true)
}

/// Apply a patch and refresh the access rule.
pub async fn update(
    app: &App,
    tenant: &str,
    id: &str,
    patch: &Patch,
) -> Result<Option<ImageRecord>, Error> {
    let r = app.store.update_image(tenant, id, patch, now_ms()).await?;
    if let Some(r) = &r {
        app.access.set(rule(r));
    }
    Ok(r)
}

/// Delete every expired image; the number deleted.
pub async fn purge_expired(app: &App) -> Result<usize, Error> {
    let mut n = 0;
    for (tenant, id) in app.store.expired(now_ms()).await? {
        if delete(app, &tenant, &id).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// Remove objects named by the pending journal (uploads or deletes cut short by a crash).
/// Run at start, before serving.
pub async fn sweep_pending(app: &App) -> Result<usize, Error> {
    let staged = app
        .origin
        .clear_staging()
        .map_err(|e| Error::Internal(format!("clearing the staging folder: {e}")))?;
    let keys = app.store.pending().await?;
    for k in &keys {
        app.origin.delete(k).await?;
    }
    app.store.release(&keys).await?;
    Ok(keys.len() + staged)
}

fn rule(r: &ImageRecord) -> AccessRule {
    AccessRule {
        storage_key: r.storage_key.clone(),
        tenant: r.tenant.clone(),
        is_private: r.is_private,
        expires_at: r.expires_at,
    }
}

/// A new image id: 12 URL-safe characters (72 random bits).
fn new_id() -> Result<String, Error> {
    crate::access::auth::random_id(9).map_err(|e| Error::Internal(format!("random: {e}")))
}
