//! File operations on managed files (uploads and library files): rename or move, copy, delete,
//! create and remove folders. Each file operation is crash-safe through the pending-object
//! journal, like uploads: the new key is reserved (the indexer leaves it alone) → the object is
//! written → one transaction moves the row (or inserts the copy), releases the reservation and
//! journals the old object → the old object and its variants go → the journal is cleared. A
//! crash at any point leaves the old file with its row or the new one with its row, and the
//! start-up sweep removes the other. Nothing is overwritten: a taken destination is a conflict.

use super::{Library, Removal};
use crate::error::Error;
use crate::store::ImageRecord;
use crate::util::clock::now_ms;
use serde::{Deserialize, Serialize};

/// One operation of `POST /api/v1/library/ops`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// A file, or a folder (`from` ending in `/`: every file under it), to `to`.
    Move {
        from: String,
        to: String,
    },
    /// `move` within its folder: `to` is the new last segment.
    Rename {
        from: String,
        to: String,
    },
    Copy {
        from: String,
        to: String,
    },
    /// A file, or an empty folder (ending in `/`).
    Delete {
        path: String,
    },
    Mkdir {
        path: String,
    },
}

/// What became of one operation.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `ok`, `conflict`, `not_found`, `invalid` or `error`.
    pub status: &'static str,
    pub message: String,
    /// Files moved, copied or deleted.
    pub files: u64,
}

impl Outcome {
    fn ok(files: u64) -> Self {
        Self {
            status: "ok",
            message: String::new(),
            files,
        }
    }

    fn of(e: &Error) -> Self {
        Self {
            status: match e {
                Error::Conflict(_) => "conflict",
                Error::NotFound(_) => "not_found",
                Error::BadRequest { .. } | Error::Forbidden(_) => "invalid",
                _ => "error",
            },
            message: e.to_string(),
            files: 0,
        }
    }
}

/// Where a tenant may put files: its own prefix (`<tenant>/`), and, for the library's tenant,
/// the library roots.
pub struct Scope<'a> {
    pub tenant: &'a str,
    pub library_roots: &'a [String],
}

impl Scope<'_> {
    fn allows(&self, key: &str) -> bool {
        key.starts_with(&format!("{}/", self.tenant))
            || self
                .library_roots
                .iter()
                .any(|r| r.is_empty() || key.starts_with(r.as_str()))
    }
}

fn key(raw: &str, field: &'static str) -> Result<String, Error> {
    crate::storage::origin::sanitize_key(raw.trim_matches('/'))
        .map_err(|_| Error::bad_param(field, format!("{field} is not a storage path")))
}

impl Library {
    /// Run `ops` in order; each answers on its own (a failure does not stop the next).
    pub async fn file_ops(&self, scope: &Scope<'_>, ops: Vec<Op>) -> Vec<Outcome> {
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            out.push(match self.file_op(scope, op).await {
                Ok(n) => Outcome::ok(n),
                Err(e) => Outcome::of(&e),
            });
        }
        out
    }

    async fn file_op(&self, scope: &Scope<'_>, op: Op) -> Result<u64, Error> {
        match op {
            Op::Rename { from, to } => {
                if to.contains('/') || to.is_empty() {
                    return Err(Error::bad_param("to", "a rename gives the new name only"));
                }
                let folder = from
                    .trim_end_matches('/')
                    .rsplit_once('/')
                    .map_or("", |(f, _)| f);
                let to = if folder.is_empty() {
                    to
                } else {
                    format!("{folder}/{to}")
                };
                let to = if from.ends_with('/') {
                    format!("{to}/")
                } else {
                    to
                };
                self.transfer(scope, &from, &to, false).await
            }
            Op::Move { from, to } => self.transfer(scope, &from, &to, false).await,
            Op::Copy { from, to } => self.transfer(scope, &from, &to, true).await,
            Op::Delete { path } if path.ends_with('/') => {
                let p = key(&path, "path")?;
                if !scope.allows(&format!("{p}/")) {
                    return Err(Error::NotFound(format!("no folder {p} here")));
                }
                if !self.origin.dir_exists(&p).await? {
                    return Err(Error::NotFound(format!("no folder {p} here")));
                }
                if !self
                    .origin
                    .list_files_under(&format!("{p}/"))
                    .await?
                    .is_empty()
                {
                    return Err(Error::Conflict(format!("the folder {p} is not empty")));
                }
                self.origin.delete_dir(&p).await?;
                Ok(0)
            }
            Op::Delete { path } => {
                let p = key(&path, "path")?;
                let r = self.managed(scope, &p).await?;
                Ok(u64::from(
                    self.remove(&r.tenant, &r.id, Removal::Deleted).await?,
                ))
            }
            Op::Mkdir { path } => {
                let p = key(&path, "path")?;
                if !scope.allows(&format!("{p}/")) {
                    return Err(Error::Forbidden(format!(
                        "{p} is outside this tenant's folders"
                    )));
                }
                if self.origin.exists(&p).await? {
                    return Err(Error::Conflict(format!("a file is named {p}")));
                }
                self.origin.create_dir(&p).await?;
                Ok(0)
            }
        }
    }

    /// The image at `key` of the scope's tenant (a 404 otherwise).
    async fn managed(&self, scope: &Scope<'_>, key: &str) -> Result<ImageRecord, Error> {
        self.store
            .image_at(scope.tenant, key)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no managed file {key} here")))
    }

    /// Move or copy a file, or every file of a folder (`from` ending in `/`).
    async fn transfer(
        &self,
        scope: &Scope<'_>,
        from: &str,
        to: &str,
        copy: bool,
    ) -> Result<u64, Error> {
        let src = key(from, "from")?;
        let dst = key(to, "to")?;
        if !from.ends_with('/') {
            let r = self.managed(scope, &src).await?;
            // Into a folder: `to` ending in `/` keeps the file's name.
            let dst = if to.ends_with('/') {
                format!("{dst}/{}", src.rsplit('/').next().unwrap_or(&src))
            } else {
                dst
            };
            self.transfer_file(scope, &r, &dst, copy).await?;
            return Ok(1);
        }
        if dst.starts_with(&format!("{src}/")) || dst == src {
            return Err(Error::bad_param("to", "a folder cannot go inside itself"));
        }
        let files = self
            .store
            .keys_under(scope.tenant, &format!("{src}/"), i64::MIN)
            .await?;
        if files.is_empty() {
            return Err(Error::NotFound(format!(
                "no managed file under {src}/ here"
            )));
        }
        let mut done = 0;
        let mut first_error = None;
        for (k, _) in files {
            let rest = &k[src.len() + 1..];
            let r = self.managed(scope, &k).await?;
            match self
                .transfer_file(scope, &r, &format!("{dst}/{rest}"), copy)
                .await
            {
                Ok(()) => done += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if !copy && first_error.is_none() {
            // The emptied folder goes too (fs), unless something else still lives there.
            if self
                .origin
                .list_files_under(&format!("{src}/"))
                .await?
                .is_empty()
            {
                let _ = self.origin.delete_dir(&src).await;
            }
        }
        match first_error {
            Some(e) if done == 0 => Err(e),
            Some(e) => Err(Error::Conflict(format!("{done} files done, then: {e}"))),
            None => Ok(done),
        }
    }

    async fn transfer_file(
        &self,
        scope: &Scope<'_>,
        r: &ImageRecord,
        dst: &str,
        copy: bool,
    ) -> Result<(), Error> {
        if !scope.allows(dst) {
            return Err(Error::Forbidden(format!(
                "{dst} is outside this tenant's folders"
            )));
        }
        if dst == r.storage_key {
            return Err(Error::Conflict(format!("{dst} is where the file is")));
        }
        let dst_vec = vec![dst.to_string()];
        // Reserve: refused when an image holds the key; the indexer leaves a reserved key alone.
        self.store
            .reserve(&dst_vec, now_ms())
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Unique(_) => Error::Conflict(format!("{dst} is taken")),
                other => other.into(),
            })?;
        let written = async {
            if self.origin.exists(dst).await? {
                return Err(Error::Conflict(format!("{dst} is taken")));
            }
            let bytes = self
                .origin
                .read(&r.storage_key, r.bytes.max(0) as u64, 1 << 30)
                .await?;
            self.origin.write(dst, bytes.to_vec()).await?;
            Ok(())
        }
        .await;
        if let Err(e) = written {
            // Nothing of ours is at `dst` unless the write happened: the reservation goes, and
            // the sweep would remove a partial object (there is none: writes are atomic).
            if !matches!(e, Error::Conflict(_)) {
                let _ = self.origin.delete(dst).await;
            }
            let _ = self.store.release(&dst_vec).await;
            return Err(e);
        }
        let now = now_ms();
        // The new file's time, so that the next scan sees an indexed file unchanged.
        let mtime = self
            .origin
            .version_now(dst)
            .await
            .ok()
            .and_then(|v| v.modified)
            .map(|s| s * 1000);
        if copy {
            let mut c = r.clone();
            c.id = crate::util::ids::random_id(12).map_err(|e| Error::Internal(e.to_string()))?;
            c.storage_key = dst.to_string();
            if c.filename == r.storage_key.rsplit('/').next().unwrap_or("") {
                c.filename = dst.rsplit('/').next().unwrap_or(dst).to_string();
            }
            c.created_at = now;
            // A copy of an upload is not an upload (the tenant has those bytes already).
            if c.source == "indexed" {
                c.file_mtime = mtime;
            } else {
                c.source = "copy".into();
            }
            if let Err(e) = self
                .store
                .commit_images(&[c.clone()], None, self.quota)
                .await
            {
                let _ = self.origin.delete(dst).await;
                let _ = self.store.release(&dst_vec).await;
                return Err(e.into());
            }
            if let Some(rule) = self.store.access_rule(dst).await? {
                self.visibility.set(rule);
            }
            return Ok(());
        }
        self.store
            .move_image(&r.id, &r.storage_key, dst, mtime, now)
            .await?;
        if let Some(rule) = self.store.access_rule(dst).await? {
            self.visibility.set(rule);
        }
        self.visibility.remove(&r.storage_key);
        (self.on_removed)(r.storage_key.clone()).await;
        self.origin.delete(&r.storage_key).await?;
        self.store
            .release(std::slice::from_ref(&r.storage_key))
            .await?;
        Ok(())
    }
}
