//! Albums: rows, membership (ordered, an image in any number of albums) and access tokens
//! (stored hashed). Deleting an album never deletes its images.

use super::images::image_from_row;
use super::sql::Sql;
use super::{AlbumPatch, AlbumRecord, ImageRecord, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

const ALBUM_COLUMNS: &str = "a.id, a.tenant, a.owner, a.name, a.description, a.is_public, \
     a.external_id, a.cover_image_id, a.created_at, a.updated_at, \
     (SELECT COUNT(*) FROM album_images m WHERE m.album_id = a.id) AS image_count";

/// `images::IMAGE_COLUMNS` of the images table aliased `i`.
const JOINED_IMAGE_COLUMNS: &str = "i.id, i.tenant, i.storage_key, i.filename, i.content_type, \
     i.format, i.bytes, i.width, i.height, i.orientation, i.has_alpha, i.blake3, i.description, \
     i.is_private, i.owner, i.created_at, i.expires_at, i.exif, i.generation_info, i.placeholder, \
     i.source, i.file_mtime, i.etag, i.gen_model, i.gen_sampler, i.gen_seed, i.gen_loras";

/// Image ids of a request that are not live images of the tenant (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing(pub Vec<String>);

/// An album token as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlbumToken {
    pub id: String,
    pub album_id: String,
    pub prefix: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

impl Store {
    pub async fn insert_album(&self, a: &AlbumRecord) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO albums (id, tenant, owner, name, description, is_public, external_id, \
             cover_image_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(a.id.as_str())
        .bind(a.tenant.as_str())
        .bind(a.owner.clone())
        .bind(a.name.as_str())
        .bind(a.description.as_str())
        .bind(i64::from(a.is_public))
        .bind(a.external_id.clone())
        .bind(a.cover_image_id.clone())
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(&mut *tx)
        .await?;
        let emitted = announce(&mut tx, &a.id, "album.created", a.updated_at).await?;
        tx.commit().await?;
        self.announced(emitted);
        Ok(())
    }

    pub async fn get_album(&self, tenant: &str, id: &str) -> Result<Option<AlbumRecord>> {
        let mut s = Sql::new("SELECT ");
        s.push(ALBUM_COLUMNS)
            .push(" FROM albums a WHERE a.tenant = ")
            .bind(tenant)
            .push(" AND a.id = ")
            .bind(id);
        s.query()
            .fetch_optional(&self.pool)
            .await?
            .map(|r| album_from_row(&r))
            .transpose()
    }

    /// The tenant's albums after `after` (newest first), at most `limit`, and where the next
    /// page starts when there may be one.
    pub async fn albums_after(
        &self,
        tenant: &str,
        after: Option<&super::Cursor>,
        limit: u32,
    ) -> Result<(Vec<AlbumRecord>, Option<super::Cursor>)> {
        let mut s = Sql::new("SELECT ");
        s.push(ALBUM_COLUMNS)
            .push(" FROM albums a WHERE a.tenant = ")
            .bind(tenant);
        if let Some(c) = after {
            s.push(" AND (a.created_at < ")
                .bind(c.created_at)
                .push(" OR (a.created_at = ")
                .bind(c.created_at)
                .push(" AND a.id < ")
                .bind(c.id.clone())
                .push("))");
        }
        s.push(" ORDER BY a.created_at DESC, a.id DESC LIMIT ")
            .bind(i64::from(limit));
        let rows = s.query().fetch_all(&self.pool).await?;
        let albums: Vec<AlbumRecord> = rows.iter().map(album_from_row).collect::<Result<_>>()?;
        let next = (albums.len() as u64 == u64::from(limit))
            .then(|| albums.last())
            .flatten()
            .map(|a| super::Cursor {
                created_at: a.created_at,
                id: a.id.clone(),
            });
        Ok((albums, next))
    }

    /// A page of the tenant's albums, newest first, and how many there are.
    pub async fn list_albums(
        &self,
        tenant: &str,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<AlbumRecord>, i64)> {
        let mut c = Sql::new("SELECT COUNT(*) AS n FROM albums a WHERE");
        c.tenant_is("a.tenant", tenant);
        let total: i64 = c.query().fetch_one(&self.pool).await?.try_get("n")?;
        let mut s = Sql::new("SELECT ");
        s.push(ALBUM_COLUMNS)
            .push(" FROM albums a WHERE")
            .tenant_is("a.tenant", tenant)
            .push(" ORDER BY a.created_at DESC, a.id DESC LIMIT ")
            .bind(i64::from(per_page))
            .push(" OFFSET ")
            .bind(i64::from(page.saturating_sub(1)) * i64::from(per_page));
        let rows = s.query().fetch_all(&self.pool).await?;
        let albums = rows.iter().map(album_from_row).collect::<Result<_>>()?;
        Ok((albums, total))
    }

    /// The tenant that has album `id`, if any.
    pub async fn album_tenant(&self, id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT tenant FROM albums WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Apply `p`; `None` when the tenant has no such album.
    pub async fn update_album(
        &self,
        tenant: &str,
        id: &str,
        p: &AlbumPatch,
        now: i64,
    ) -> Result<Option<AlbumRecord>> {
        {
            let _w = self.write.lock().await;
            let mut tx = self.pool.begin().await?;
            let mut s = Sql::new("UPDATE albums SET updated_at = ");
            s.bind(now);
            if let Some(n) = &p.name {
                s.push(", name = ").bind(n.as_str());
            }
            if let Some(d) = &p.description {
                s.push(", description = ").bind(d.as_str());
            }
            if let Some(v) = p.is_public {
                s.push(", is_public = ").bind(v);
            }
            if let Some(c) = &p.cover_image_id {
                s.push(", cover_image_id = ").bind(c.clone());
            }
            s.push(" WHERE tenant = ")
                .bind(tenant)
                .push(" AND id = ")
                .bind(id);
            if s.query().execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok(None);
            }
            let emitted = announce(&mut tx, id, "album.updated", now).await?;
            tx.commit().await?;
            self.announced(emitted);
        }
        self.get_album(tenant, id).await
    }

    /// Delete an album, its membership and its tokens (never its images); false when none.
    pub async fn delete_album(&self, tenant: &str, id: &str) -> Result<bool> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM albums WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if gone {
            sqlx::query("DELETE FROM album_images WHERE album_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM album_tokens WHERE album_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let emitted = gone
            && super::outbox::emit(
                &mut tx,
                super::outbox::Announce {
                    tenant,
                    kind: "album.deleted",
                    object: format!("album:{id}"),
                    data: serde_json::json!({ "id": id }),
                    now: crate::util::clock::now_ms(),
                },
            )
            .await?;
        tx.commit().await?;
        self.announced(emitted);
        Ok(gone)
    }

    /// Which of `ids` are not live images of `tenant`.
    async fn missing_images(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        tenant: &str,
        ids: &[String],
        now: i64,
    ) -> Result<Vec<String>> {
        let mut s = Sql::new("SELECT id FROM images WHERE tenant = ");
        s.bind(tenant)
            .push(" AND id IN ")
            .bind_list(ids)
            .live(false, now);
        let found = column(s.query().fetch_all(&mut **tx).await?, "id")?;
        Ok(absent(ids, &found))
    }

    /// Add images (in the given order, after those already there; ones already in it stay
    /// where they are). All or nothing: unknown ids change nothing.
    pub async fn add_to_album(
        &self,
        tenant: &str,
        album: &str,
        ids: &[String],
        now: i64,
    ) -> Result<std::result::Result<(), Missing>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let missing = self.missing_images(&mut tx, tenant, ids, now).await?;
        if !missing.is_empty() {
            return Ok(Err(Missing(missing)));
        }
        add_members(&mut tx, tenant, album, ids, now).await?;
        let emitted = touch(&mut tx, album, now).await?;
        tx.commit().await?;
        self.announced(emitted);
        Ok(Ok(()))
    }

    /// Remove images from an album. All or nothing: ids not in it change nothing.
    pub async fn remove_from_album(
        &self,
        album: &str,
        ids: &[String],
        now: i64,
    ) -> Result<std::result::Result<(), Missing>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let mut s = Sql::new("SELECT image_id FROM album_images WHERE album_id = ");
        s.bind(album).push(" AND image_id IN ").bind_list(ids);
        let found = column(s.query().fetch_all(&mut *tx).await?, "image_id")?;
        let missing = absent(ids, &found);
        if !missing.is_empty() {
            return Ok(Err(Missing(missing)));
        }
        let mut d = Sql::new("DELETE FROM album_images WHERE album_id = ");
        d.bind(album).push(" AND image_id IN ").bind_list(ids);
        d.query().execute(&mut *tx).await?;
        let emitted = touch(&mut tx, album, now).await?;
        tx.commit().await?;
        self.announced(emitted);
        Ok(Ok(()))
    }

    /// Put `ids` first, in that order, and the album's other images after them in their
    /// present order. All or nothing: ids not in the album change nothing.
    pub async fn order_album(
        &self,
        album: &str,
        ids: &[String],
        now: i64,
    ) -> Result<std::result::Result<(), Missing>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let present = column(
            sqlx::query(
                "SELECT image_id FROM album_images WHERE album_id = $1 ORDER BY position, image_id",
            )
            .bind(album)
            .fetch_all(&mut *tx)
            .await?,
            "image_id",
        )?;
        let missing = absent(ids, &present);
        if !missing.is_empty() {
            return Ok(Err(Missing(missing)));
        }
        let first: std::collections::HashSet<&String> = ids.iter().collect();
        let order = ids
            .iter()
            .chain(present.iter().filter(|i| !first.contains(i)));
        for (pos, id) in (1_i64..).zip(order) {
            sqlx::query(
                "UPDATE album_images SET position = $1 WHERE album_id = $2 AND image_id = $3",
            )
            .bind(pos)
            .bind(album)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        let emitted = touch(&mut tx, album, now).await?;
        tx.commit().await?;
        self.announced(emitted);
        Ok(Ok(()))
    }

    /// The albums of `tenant` holding an image, by name.
    pub async fn albums_of_image(&self, tenant: &str, image: &str) -> Result<Vec<AlbumRecord>> {
        let mut s = Sql::new("SELECT ");
        s.push(ALBUM_COLUMNS)
            .push(" FROM albums a WHERE a.tenant = ")
            .bind(tenant)
            .push(" AND EXISTS (SELECT 1 FROM album_images m WHERE m.album_id = a.id AND m.image_id = ")
            .bind(image)
            .push(") ORDER BY a.name, a.id");
        s.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(album_from_row)
            .collect()
    }

    /// A page of an album's live images in album order, and how many it has.
    pub async fn album_images(
        &self,
        tenant: &str,
        album: &str,
        page: u32,
        per_page: u32,
        now: i64,
        viewer: Option<&str>,
    ) -> Result<(Vec<ImageRecord>, i64)> {
        let mut c = Sql::new(
            "SELECT COUNT(*) AS n FROM album_images m JOIN images i ON i.id = m.image_id \
             WHERE m.album_id = ",
        );
        c.bind(album)
            .push(" AND i.tenant = ")
            .bind(tenant)
            .live(true, now);
        if let Some(v) = viewer {
            c.push(" AND (i.is_private = 0 OR i.owner = ")
                .bind(v)
                .push(")");
        }
        let total: i64 = c.query().fetch_one(&self.pool).await?.try_get("n")?;
        let mut s = Sql::new("SELECT ");
        s.push(JOINED_IMAGE_COLUMNS)
            .push(" FROM album_images m JOIN images i ON i.id = m.image_id WHERE m.album_id = ")
            .bind(album)
            .push(" AND i.tenant = ")
            .bind(tenant)
            .live(true, now);
        if let Some(v) = viewer {
            s.push(" AND (i.is_private = 0 OR i.owner = ")
                .bind(v)
                .push(")");
        }
        s.push(" ORDER BY m.position, m.image_id LIMIT ")
            .bind(i64::from(per_page))
            .push(" OFFSET ")
            .bind(i64::from(page.saturating_sub(1)) * i64::from(per_page));
        let rows = s.query().fetch_all(&self.pool).await?;
        let mut images = rows
            .iter()
            .map(image_from_row)
            .collect::<Result<Vec<_>>>()?;
        self.attach_tags(&mut images).await?;
        Ok((images, total))
    }

    pub async fn insert_album_token(&self, t: &AlbumToken, tenant: &str, hash: &str) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query(
            "INSERT INTO album_tokens (id, album_id, tenant, token_hash, prefix, expires_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t.id.as_str())
        .bind(t.album_id.as_str())
        .bind(tenant)
        .bind(hash)
        .bind(t.prefix.as_str())
        .bind(t.expires_at)
        .bind(t.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn album_tokens(&self, album: &str) -> Result<Vec<AlbumToken>> {
        let rows = sqlx::query(
            "SELECT id, album_id, prefix, expires_at, created_at FROM album_tokens \
             WHERE album_id = $1 ORDER BY created_at, id",
        )
        .bind(album)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AlbumToken {
                    id: r.try_get("id")?,
                    album_id: r.try_get("album_id")?,
                    prefix: r.try_get("prefix")?,
                    expires_at: r.try_get("expires_at")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Revoke a token at once; false when the album has no such token.
    pub async fn delete_album_token(&self, album: &str, id: &str) -> Result<bool> {
        let _w = self.write.lock().await;
        let r = sqlx::query("DELETE FROM album_tokens WHERE album_id = $1 AND id = $2")
            .bind(album)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// When a token (live or not) expires, if it exists: `Some(None)` never.
    pub async fn album_token_expiry(&self, hash: &str) -> Result<Option<Option<i64>>> {
        let row = sqlx::query("SELECT expires_at FROM album_tokens WHERE token_hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(r.try_get("expires_at")?)).transpose()
    }

    /// The album (id, tenant) a live token opens, and when the token expires.
    pub async fn album_token(
        &self,
        hash: &str,
        now: i64,
    ) -> Result<Option<(String, String, Option<i64>)>> {
        let row = sqlx::query(
            "SELECT album_id, tenant, expires_at FROM album_tokens WHERE token_hash = $1 \
             AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("album_id")?,
                r.try_get("tenant")?,
                r.try_get("expires_at")?,
            ))
        })
        .transpose()
    }

    /// Whether the object at `storage_key` is a live image in `album`.
    pub async fn album_holds(&self, album: &str, storage_key: &str, now: i64) -> Result<bool> {
        let mut s = Sql::new(
            "SELECT 1 AS one FROM album_images m JOIN images i ON i.id = m.image_id \
             WHERE m.album_id = ",
        );
        s.bind(album)
            .push(" AND i.storage_key = ")
            .bind(storage_key)
            .live(true, now);
        Ok(s.query().fetch_optional(&self.pool).await?.is_some())
    }
}

/// Append `ids` to `album` (inside the caller's transaction), after its last position; ids
/// already in it are left where they are.
pub(super) async fn add_members(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    album: &str,
    ids: &[String],
    now: i64,
) -> Result<()> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT MAX(position) FROM album_images WHERE album_id = $1")
            .bind(album)
            .fetch_one(&mut **tx)
            .await?;
    let mut pos = last.unwrap_or(0);
    for id in ids {
        pos += 1;
        sqlx::query(
            "INSERT INTO album_images (album_id, image_id, tenant, position, added_at) \
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM albums WHERE id = $1 AND tenant = $3) \
             ON CONFLICT (album_id, image_id) DO NOTHING",
        )
        .bind(album)
        .bind(id.as_str())
        .bind(tenant)
        .bind(pos)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Mark an album changed and announce it (inside the caller's transaction); true when an
/// event was written.
pub(super) async fn touch(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    album: &str,
    now: i64,
) -> Result<bool> {
    sqlx::query("UPDATE albums SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(album)
        .execute(&mut **tx)
        .await?;
    announce(tx, album, "album.updated", now).await
}

/// Announce an album as it is now in the caller's transaction (`kind`: created or updated).
async fn announce(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    album: &str,
    kind: &'static str,
    now: i64,
) -> Result<bool> {
    let mut s = Sql::new("SELECT ");
    s.push(ALBUM_COLUMNS)
        .push(" FROM albums a WHERE a.id = ")
        .bind(album);
    let Some(row) = s.query().fetch_optional(&mut **tx).await? else {
        return Ok(false);
    };
    let a = album_from_row(&row)?;
    super::outbox::emit(
        tx,
        super::outbox::Announce {
            tenant: &a.tenant,
            kind,
            object: format!("album:{}", a.id),
            data: serde_json::to_value(&a).unwrap_or_default(),
            now,
        },
    )
    .await
}

/// One text column of rows.
fn column(rows: Vec<AnyRow>, name: &str) -> Result<Vec<String>> {
    rows.iter()
        .map(|r| r.try_get::<String, _>(name).map_err(Into::into))
        .collect()
}

/// The ids of `wanted` not in `found`.
fn absent(wanted: &[String], found: &[String]) -> Vec<String> {
    wanted
        .iter()
        .filter(|i| !found.contains(i))
        .cloned()
        .collect()
}

fn album_from_row(r: &AnyRow) -> Result<AlbumRecord> {
    Ok(AlbumRecord {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        owner: r.try_get("owner")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        is_public: r.try_get::<i64, _>("is_public")? != 0,
        external_id: r.try_get("external_id")?,
        cover_image_id: r.try_get("cover_image_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        image_count: r.try_get("image_count")?,
    })
}
