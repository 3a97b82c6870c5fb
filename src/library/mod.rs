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

pub mod fields;
pub mod index;
pub mod meta;
pub mod ops;
pub mod upload;

use crate::access::visibility::AccessIndex;
use crate::error::Error;
use crate::library::upload::UploadForm;
use crate::pipeline::PixelLimits;
use crate::storage::origin::Origin;
use crate::store::Store;
use crate::store::{AccessRule, ImageRecord, Patch, Removal};
use crate::util::clock::now_ms;
use crate::util::workers::CpuPool;
use meta::Analysis;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// The `[quota]` config section: what a tenant may store when an admin set nothing for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Bytes of originals per tenant; 0 = no limit.
    pub default_bytes: u64,
    /// Images per tenant; 0 = no limit.
    pub default_images: u64,
}

impl QuotaConfig {
    pub fn defaults(&self) -> crate::store::Quota {
        crate::store::Quota {
            bytes: i64::try_from(self.default_bytes).unwrap_or(i64::MAX),
            images: i64::try_from(self.default_images).unwrap_or(i64::MAX),
        }
    }
}

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

/// Called with a storage key once its object is deleted, before the delete returns (wiring
/// purges the variants derived from it).
pub type OnRemoved = Arc<
    dyn Fn(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync,
>;

/// What the library is built from (once, in `wiring`).
pub struct Parts {
    pub store: Arc<Store>,
    pub origin: Arc<Origin>,
    pub visibility: Arc<AccessIndex>,
    pub cpu: Arc<CpuPool>,
    pub pixel_limits: PixelLimits,
    pub metadata: MetadataConfig,
    pub quota: QuotaConfig,
    pub on_removed: OnRemoved,
}

/// The library: what its operations use, received by type.
pub struct Library {
    store: Arc<Store>,
    origin: Arc<Origin>,
    visibility: Arc<AccessIndex>,
    cpu: Arc<CpuPool>,
    pixel_limits: PixelLimits,
    keep_gps: bool,
    quota: crate::store::Quota,
    on_removed: OnRemoved,
}

impl Library {
    /// An original's bytes (at most `max`), for downloads.
    pub async fn read_original(
        &self,
        storage_key: &str,
        len: u64,
        max: u64,
    ) -> Result<bytes::Bytes, Error> {
        Ok(self.origin.read(storage_key, len, max).await?)
    }

    /// A tenant's usage against its quota.
    pub async fn usage(&self, tenant: &str) -> Result<crate::store::Usage, Error> {
        Ok(self.store.usage(tenant, self.quota, now_ms()).await?)
    }

    /// The library over these parts.
    pub fn new(p: Parts) -> Self {
        Self {
            quota: p.quota.defaults(),
            store: p.store,
            origin: p.origin,
            visibility: p.visibility,
            cpu: p.cpu,
            pixel_limits: p.pixel_limits,
            keep_gps: p.metadata.keep_gps,
            on_removed: p.on_removed,
        }
    }

    /// Store an upload batch: all files or none.
    pub async fn ingest(&self, who: &Uploader, form: UploadForm) -> Result<Vec<Stored>, Error> {
        let opts = meta::Options {
            limits: self.pixel_limits,
            keep_gps: self.keep_gps,
            remove_exif: form.remove_exif,
            convert: form.convert,
        };
        let fields = form_fields(&form);
        // Every file is analysed (on the CPU pool, in parallel) before anything is stored; the
        // first refusal rejects the batch and names its file.
        let jobs = form.files.into_iter().map(|f| async move {
            let name = f.filename;
            let bytes = f.bytes;
            let a = self
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
            let (out, fresh) = self.plan(who, &fields, &analysed).await?;
            if fresh.is_empty() {
                self.join_album(who, &fields, &out).await?;
                return Ok(out);
            }
            match self
                .store_objects(
                    &fresh,
                    fields.key.is_some() || fields.keep_name,
                    fields.album.as_deref(),
                )
                .await
            {
                Ok(()) => {
                    for (r, _) in &fresh {
                        self.visibility.set(rule(r));
                    }
                    self.join_album(who, &fields, &out).await?;
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

    /// Decide, file by file, between an existing image (same bytes in the tenant, or earlier in the
    /// batch) and a new record with the bytes to store.
    async fn plan(
        &self,
        who: &Uploader,
        fields: &Fields,
        analysed: &[(String, Analysis)],
    ) -> Result<(Vec<Stored>, Vec<(ImageRecord, Vec<u8>)>), Error> {
        let now = now_ms();
        let mut out: Vec<Stored> = Vec::new();
        let mut fresh: Vec<(ImageRecord, Vec<u8>)> = Vec::new();
        let mut in_batch: HashMap<&str, usize> = HashMap::new();
        let mut names: Vec<String> = Vec::new();
        for (filename, a) in analysed {
            // An expired copy the sweeper has not reached yet goes now, so the bytes can be
            // stored again.
            for id in self
                .store
                .expired_by_hash(&who.tenant, &a.blake3, now)
                .await?
            {
                self.delete(&who.tenant, &id).await?;
            }
            if let Some(existing) = self.store.find_by_hash(&who.tenant, &a.blake3, now).await? {
                // Never another user's private image (not even its record) as a duplicate.
                if existing.is_private && who.owner.is_some() && existing.owner != who.owner {
                    return Err(Error::Conflict(format!(
                        "{filename}: this image is already stored in the tenant, privately by \
                         another user"
                    )));
                }
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
                None if fields.keep_name => {
                    let k = self
                        .free_name(&who.tenant, filename, a.format.extension(), &names)
                        .await?;
                    names.push(k.clone());
                    k
                }
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
                expires_at: fields
                    .expiry_minutes
                    .map(|m| self::fields::expires_at(now, m)),
                exif: serde_json::Value::Object(a.exif.clone()).to_string(),
                generation_info: a
                    .generation_info
                    .clone()
                    .map(|g| serde_json::Value::Object(g).to_string()),
                placeholder: a.placeholder.to_string(),
                tags: fields.tags.clone(),
                source: "upload".into(),
                file_mtime: None,
                etag: None,
                gen: gen_fields(a.generation_info.as_ref()),
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

    /// Reserve → write → commit, undoing everything on failure.
    /// `{tenant}/{name}.{ext}` for a client's file name (sanitised), with `-1`, `-2`... when
    /// the name is taken (by an object, an image row, or another file of this batch).
    async fn free_name(
        &self,
        tenant: &str,
        filename: &str,
        ext: &str,
        batch: &[String],
    ) -> Result<String, Error> {
        let base = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
        let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
        let mut clean: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(100)
            .collect();
        clean = clean.trim_start_matches(['.', '_']).to_string();
        if clean.is_empty() {
            clean = "image".into();
        }
        for n in 0..1000u32 {
            let k = if n == 0 {
                format!("{tenant}/{clean}.{ext}")
            } else {
                format!("{tenant}/{clean}-{n}.{ext}")
            };
            if batch.contains(&k)
                || self.store.storage_key_taken(&k).await?
                || self.origin.exists(&k).await?
            {
                continue;
            }
            return Ok(k);
        }
        Err(Error::Conflict(format!("no free name for {clean}.{ext}")))
    }

    /// Images that were already stored (duplicates) join the upload's album too (new ones
    /// joined it in their commit's transaction).
    async fn join_album(
        &self,
        who: &Uploader,
        fields: &Fields,
        out: &[Stored],
    ) -> Result<(), Error> {
        let Some(album) = &fields.album else {
            return Ok(());
        };
        let dups: Vec<String> = out
            .iter()
            .filter(|s| s.duplicate)
            .map(|s| s.record.id.clone())
            .collect();
        if !dups.is_empty() {
            // All or nothing, and every id is a live image of the tenant: cannot miss.
            let _ = self
                .store
                .add_to_album(&who.tenant, album, &dups, now_ms())
                .await?;
        }
        Ok(())
    }

    async fn store_objects(
        &self,
        fresh: &[(ImageRecord, Vec<u8>)],
        wanted_key: bool,
        album: Option<&str>,
    ) -> Result<(), Failure> {
        let keys: Vec<String> = fresh.iter().map(|(r, _)| r.storage_key.clone()).collect();
        self.store
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
                    if self.origin.exists(k).await? {
                        return Err(Failure::Error(Error::Conflict(
                            "the storage key is already taken".into(),
                        )));
                    }
                }
            }
            for (r, bytes) in fresh {
                written.push(&r.storage_key);
                self.origin.write(&r.storage_key, bytes.clone()).await?;
            }
            let records: Vec<ImageRecord> = fresh.iter().map(|(r, _)| r.clone()).collect();
            self.store
                .commit_images(&records, album, self.quota)
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
                if let Err(de) = self.origin.delete(k).await {
                    tracing::warn!(key = %k, error = %de, "could not remove an object after a failed upload");
                }
            }
            if let Err(re) = self.store.release(&keys).await {
                tracing::warn!(error = %re, "could not release upload reservations");
            }
            return Err(e);
        }
        Ok(())
    }

    /// Delete an image of `tenant`: its row, its tags and (unless shared) its object. False when
    /// there is no such image.
    pub async fn delete(&self, tenant: &str, id: &str) -> Result<bool, Error> {
        self.remove(tenant, id, Removal::Deleted).await
    }

    /// Remove an image row (announced as `cause`), then its object unless another row uses it.
    async fn remove(&self, tenant: &str, id: &str, cause: Removal) -> Result<bool, Error> {
        let Some(d) = self.store.delete_image(tenant, id, cause, now_ms()).await? else {
            return Ok(false);
        };
        if d.shared {
            if let Some(r) = self.store.access_rule(&d.storage_key).await? {
                self.visibility.set(r);
            }
            return Ok(true);
        }
        self.visibility.remove(&d.storage_key);
        // Without its row the object is unreachable through the API; the journal entry makes sure
        // it goes even if this delete fails now (retried by the next start-up sweep).
        // Variants go first: whatever happens to the object next, none is served again.
        (self.on_removed)(d.storage_key.clone()).await;
        self.origin.delete(&d.storage_key).await?;
        self.store
            .release(std::slice::from_ref(&d.storage_key))
            .await?;
        Ok(true)
    }

    /// Store or replace a user's avatar, atomically: the new object is written under a
    /// reservation, then one transaction makes it the avatar and journals the old object,
    /// which is deleted (with its variants) only after that commit. EXIF is removed.
    pub async fn set_avatar(
        &self,
        tenant: &str,
        user: &str,
        bytes: Vec<u8>,
    ) -> Result<crate::store::AvatarRecord, Error> {
        let opts = meta::Options {
            limits: self.pixel_limits,
            keep_gps: false,
            remove_exif: true,
            convert: None,
        };
        let a = self.cpu.run(move || meta::analyze(bytes, opts)).await??;
        let user_hash = blake3::hash(user.as_bytes()).to_hex();
        // A fresh key every time (never the live avatar's, even for the same bytes): the
        // reservation and any undo or sweep can only ever touch the new object.
        let key = format!(
            "{tenant}/.avatars/{}-{}.{}",
            &user_hash[..16],
            new_id()?,
            a.format.extension()
        );
        let now = now_ms();
        let keys = [key.clone()];
        self.store.reserve(&keys, now).await.map_err(|e| match e {
            crate::store::StoreError::Unique(_) => {
                Error::Conflict("this avatar is being stored by another request; retry".into())
            }
            other => other.into(),
        })?;
        let record = crate::store::AvatarRecord {
            tenant: tenant.to_string(),
            user_id: user.to_string(),
            storage_key: key.clone(),
            format: a.format.name().into(),
            bytes: a.stored.len() as i64,
            width: i64::from(a.width),
            height: i64::from(a.height),
            updated_at: now,
        };
        let committed = async {
            self.origin.write(&key, a.stored).await?;
            Ok::<_, Error>(self.store.commit_avatar(&record, self.quota).await?)
        }
        .await;
        let old = match committed {
            Ok(old) => old,
            Err(e) => {
                // Undo: the new object and its reservation (a crash here is swept at start).
                if let Err(de) = self.origin.delete(&key).await {
                    tracing::warn!(key = %key, error = %de, "could not remove a failed avatar");
                } else {
                    let _ = self.store.release(&keys).await;
                }
                return Err(e);
            }
        };
        if let Some(old) = old {
            // The replacement is committed: a failure to remove the old object now is logged,
            // and its journal entry has it removed by the next start-up sweep.
            if let Err(e) = self.forget_object(old.clone()).await {
                tracing::warn!(key = %old, error = %e, "old avatar left for the start-up sweep");
            }
        }
        Ok(record)
    }

    /// Remove a user's avatar; false when there was none.
    pub async fn delete_avatar(&self, tenant: &str, user: &str) -> Result<bool, Error> {
        match self.store.delete_avatar(tenant, user, now_ms()).await? {
            Some(k) => {
                self.forget_object(k).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// A journaled object: its variants purged, the object deleted, the journal entry dropped.
    async fn forget_object(&self, key: String) -> Result<(), Error> {
        (self.on_removed)(key.clone()).await;
        self.origin.delete(&key).await?;
        self.store.release(std::slice::from_ref(&key)).await?;
        Ok(())
    }

    /// Apply a patch and refresh the access rule.
    pub async fn update(
        &self,
        tenant: &str,
        id: &str,
        patch: &Patch,
    ) -> Result<Option<ImageRecord>, Error> {
        let r = self.store.update_image(tenant, id, patch, now_ms()).await?;
        if let Some(r) = &r {
            self.visibility.set(rule(r));
        }
        Ok(r)
    }

    /// Delete every expired image; the number deleted.
    pub async fn purge_expired(&self) -> Result<usize, Error> {
        let mut n = 0;
        for (tenant, id) in self.store.expired(now_ms()).await? {
            if self.remove(&tenant, &id, Removal::Expired).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Remove objects named by the pending journal (uploads or deletes cut short by a crash).
    /// Run at start, before serving.
    pub async fn sweep_pending(&self) -> Result<usize, Error> {
        let staged = self
            .origin
            .clear_staging()
            .map_err(|e| Error::Internal(format!("clearing the staging folder: {e}")))?;
        let keys = self.store.pending().await?;
        for k in &keys {
            (self.on_removed)(k.clone()).await;
            self.origin.delete(k).await?;
        }
        self.store.release(&keys).await?;
        Ok(keys.len() + staged)
    }
}

/// The text fields of an upload (everything but the files).
struct Fields {
    tags: Vec<String>,
    description: String,
    is_private: bool,
    expiry_minutes: Option<u64>,
    key: Option<String>,
    album: Option<String>,
    keep_name: bool,
}

fn form_fields(f: &UploadForm) -> Fields {
    Fields {
        tags: self::fields::dedup_tags(f.tags.clone()),
        description: f.description.clone(),
        is_private: f.is_private,
        expiry_minutes: f.expiry_minutes,
        key: f.key.clone(),
        album: f.album.clone(),
        keep_name: f.keep_name,
    }
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
    crate::util::ids::random_id(9).map_err(|e| Error::Internal(format!("random: {e}")))
}

/// The searchable fields of an image's generation info.
pub(crate) fn gen_fields(
    info: Option<&serde_json::Map<String, serde_json::Value>>,
) -> crate::store::GenFields {
    let Some(p) = info.and_then(meta::geninfo::parse) else {
        return crate::store::GenFields::default();
    };
    crate::store::GenFields {
        model: p.model.map(|m| m.to_lowercase()),
        sampler: p.sampler.map(|s| s.to_lowercase()),
        seed: p.seed,
        loras: p.loras,
    }
}
