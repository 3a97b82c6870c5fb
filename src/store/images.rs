//! Images and their tags: insert, search, update, delete, counts, access rules.

use super::outbox::{emit, Announce};
use super::sql::{Arg, Sql};
use super::{
    journal, AccessRule, Cursor, DayCount, Deleted, Filter, ImageRecord, Listing, Order, Paging,
    Patch, Result, Stats, Store, TagCount,
};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::BTreeMap;

pub(super) const IMAGE_COLUMNS: &str = "id, tenant, storage_key, filename, content_type, format, \
     bytes, width, height, orientation, has_alpha, blake3, description, is_private, owner, \
     created_at, expires_at, exif, generation_info, placeholder, source, file_mtime, etag, \
     gen_model, gen_sampler, gen_seed, gen_loras";

impl Store {
    /// Insert images (with tags) and drop their reservations, in one transaction; with
    /// `album`, they join it in the same transaction (if the tenant has it).
    pub async fn commit_images(
        &self,
        images: &[ImageRecord],
        album: Option<&str>,
        defaults: super::Quota,
    ) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        // The quota, checked under the write lock: concurrent uploads cannot both fit.
        if let Some(first) = images.first() {
            let u = usage(&mut tx, &first.tenant, defaults, first.created_at).await?;
            let add_bytes: i64 = images.iter().map(|i| i.bytes).sum();
            let add_images = images.len() as i64;
            let over_bytes = u.quota_bytes > 0 && u.used_bytes + add_bytes > u.quota_bytes;
            let over_images = u.quota_images > 0 && u.used_images + add_images > u.quota_images;
            if over_bytes || over_images {
                return Err(super::StoreError::Quota(u));
            }
        }
        let mut emitted = false;
        for i in images {
            insert_image(&mut tx, i).await?;
            insert_tags(&mut tx, &i.id, &i.tenant, &i.tags).await?;
            sqlx::query("DELETE FROM pending_objects WHERE storage_key = $1")
                .bind(i.storage_key.as_str())
                .execute(&mut *tx)
                .await?;
            emitted |= emit(
                &mut tx,
                Announce {
                    tenant: &i.tenant,
                    kind: "image.uploaded",
                    object: format!("image:{}", i.id),
                    data: serde_json::to_value(i).unwrap_or_default(),
                    now: i.created_at,
                },
            )
            .await?;
        }
        if let (Some(a), Some(first)) = (album, images.first()) {
            let ids: Vec<String> = images.iter().map(|i| i.id.clone()).collect();
            super::albums::add_members(&mut tx, &first.tenant, a, &ids, first.created_at).await?;
            emitted |= super::albums::touch(&mut tx, a, first.created_at).await?;
        }
        tx.commit().await?;
        self.announced(emitted);
        Ok(())
    }

    /// Whether an image row or a reservation holds `storage_key`.
    pub async fn storage_key_taken(&self, storage_key: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM images WHERE storage_key = $1) + \
             (SELECT COUNT(*) FROM pending_objects WHERE storage_key = $1)",
        )
        .bind(storage_key)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// A tenant's usage against its quota.
    pub async fn usage(
        &self,
        tenant: &str,
        defaults: super::Quota,
        now: i64,
    ) -> Result<super::Usage> {
        let mut tx = self.pool.begin().await?;
        let u = usage(&mut tx, tenant, defaults, now).await?;
        tx.commit().await?;
        Ok(u)
    }

    /// Set (or with `None`, clear back to the defaults) a tenant's own quotas.
    pub async fn set_quota(
        &self,
        tenant: &str,
        bytes: Option<i64>,
        images: Option<i64>,
    ) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM tenant_quotas WHERE tenant = $1")
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        if bytes.is_some() || images.is_some() {
            sqlx::query(
                "INSERT INTO tenant_quotas (tenant, quota_bytes, quota_images) VALUES ($1, $2, $3)",
            )
            .bind(tenant)
            .bind(bytes)
            .bind(images)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The live (not expired) uploaded image of `tenant` with these bytes (library files are not
    /// deduplicated against).
    pub async fn find_by_hash(
        &self,
        tenant: &str,
        blake3: &str,
        now: i64,
    ) -> Result<Option<ImageRecord>> {
        let mut s = Sql::new("SELECT ");
        s.push(IMAGE_COLUMNS)
            .push(" FROM images WHERE tenant = ")
            .bind(tenant)
            .push(" AND source = 'upload' AND blake3 = ")
            .bind(blake3)
            .live(false, now);
        self.fetch_one_image(&s).await
    }

    /// Ids of `tenant`'s expired images with these bytes (not swept yet).
    pub async fn expired_by_hash(
        &self,
        tenant: &str,
        blake3: &str,
        now: i64,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM images WHERE tenant = $1 AND blake3 = $2 AND source = 'upload' \
             AND expires_at IS NOT NULL AND expires_at <= $3",
        )
        .bind(tenant)
        .bind(blake3)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// The tenant that has image `id` (live or not), if any.
    pub async fn image_tenant(&self, id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT tenant FROM images WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// One live image of `tenant`.
    pub async fn get_image(&self, tenant: &str, id: &str, now: i64) -> Result<Option<ImageRecord>> {
        let mut s = Sql::new("SELECT ");
        s.push(IMAGE_COLUMNS)
            .push(" FROM images WHERE tenant = ")
            .bind(tenant)
            .push(" AND id = ")
            .bind(id)
            .live(false, now);
        self.fetch_one_image(&s).await
    }

    async fn fetch_one_image(&self, s: &Sql) -> Result<Option<ImageRecord>> {
        let Some(row) = s.query().fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let mut imgs = vec![image_from_row(&row)?];
        self.attach_tags(&mut imgs).await?;
        Ok(imgs.pop())
    }

    pub(super) async fn attach_tags(&self, images: &mut [ImageRecord]) -> Result<()> {
        if images.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = images.iter().map(|i| i.id.clone()).collect();
        let mut s = Sql::new("SELECT image_id, name FROM image_tags WHERE image_id IN ");
        s.bind_list(&ids).push(" ORDER BY name");
        let rows = s.query().fetch_all(&self.pool).await?;
        let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rows {
            by_id
                .entry(r.try_get("image_id")?)
                .or_default()
                .push(r.try_get("name")?);
        }
        for i in images {
            i.tags = by_id.remove(&i.id).unwrap_or_default();
        }
        Ok(())
    }

    /// What a regex search looks at, for the live images matching `f`, in id order after
    /// `after`, `chunk` at a time: `(id, storage key, generation info text when `with_info`)`.
    pub async fn search_texts(
        &self,
        tenant: &str,
        f: &Filter,
        now: i64,
        after: &str,
        chunk: u32,
        with_info: bool,
    ) -> Result<Vec<(String, String, Option<String>)>> {
        let mut s = Sql::new(if with_info {
            "SELECT id, storage_key, generation_info"
        } else {
            "SELECT id, storage_key, NULL AS generation_info"
        });
        live_where(&mut s, tenant, now, f);
        s.push(" AND id > ")
            .bind(after)
            .push(" ORDER BY id LIMIT ")
            .bind(i64::from(chunk));
        let rows = s.query().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("storage_key")?,
                    r.try_get("generation_info")?,
                ))
            })
            .collect()
    }

    /// `(storage key, created_at)` of the live images of `tenant` under `prefix`, for folder
    /// listings.
    pub async fn keys_under(
        &self,
        tenant: &str,
        prefix: &str,
        now: i64,
    ) -> Result<Vec<(String, i64)>> {
        let f = Filter {
            folder: Some((prefix.to_string(), true)),
            ..Filter::default()
        };
        let mut s = Sql::new("SELECT storage_key, created_at");
        live_where(&mut s, tenant, now, &f);
        let rows = s.query().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("storage_key")?, r.try_get("created_at")?)))
            .collect()
    }

    /// Search the live images of `tenant`.
    pub async fn list_images(
        &self,
        tenant: &str,
        f: &Filter,
        order: Order,
        paging: &Paging,
        now: i64,
    ) -> Result<Listing> {
        let total = match paging {
            Paging::Page { .. } => {
                let mut c = Sql::new("SELECT COUNT(*) AS n");
                live_where(&mut c, tenant, now, f);
                let row = c.query().fetch_one(&self.pool).await?;
                Some(row.try_get::<i64, _>("n")?)
            }
            Paging::Cursor { .. } => None,
        };
        let mut s = Sql::new("SELECT ");
        s.push(IMAGE_COLUMNS);
        live_where(&mut s, tenant, now, f);
        let desc = order != Order::CreatedAsc;
        if let Paging::Cursor {
            after: Some(c),
            limit: _,
        } = paging
        {
            s.push(if desc {
                " AND (created_at < "
            } else {
                " AND (created_at > "
            })
            .bind(c.created_at)
            .push(" OR (created_at = ")
            .bind(c.created_at)
            .push(if desc { " AND id < " } else { " AND id > " })
            .bind(c.id.clone())
            .push("))");
        }
        s.push(match order {
            Order::CreatedDesc => " ORDER BY created_at DESC, id DESC",
            Order::CreatedAsc => " ORDER BY created_at ASC, id ASC",
            Order::Random => " ORDER BY RANDOM()",
            Order::NameAsc => " ORDER BY storage_key ASC",
        });
        let (limit, offset) = match paging {
            Paging::Page { page, per_page } => (
                i64::from(*per_page),
                i64::from(page.saturating_sub(1)) * i64::from(*per_page),
            ),
            Paging::Cursor { limit, .. } => (i64::from(*limit), 0),
        };
        s.push(" LIMIT ").bind(limit).push(" OFFSET ").bind(offset);
        let rows = s.query().fetch_all(&self.pool).await?;
        let mut images = rows
            .iter()
            .map(image_from_row)
            .collect::<Result<Vec<_>>>()?;
        self.attach_tags(&mut images).await?;
        let next = match paging {
            Paging::Cursor { limit, .. } if images.len() as u64 == u64::from(*limit) => {
                images.last().map(|i| Cursor {
                    created_at: i.created_at,
                    id: i.id.clone(),
                })
            }
            _ => None,
        };
        Ok(Listing {
            images,
            total,
            next,
        })
    }

    /// Apply `patch` to a live image; `None` when there is no such image.
    pub async fn update_image(
        &self,
        tenant: &str,
        id: &str,
        patch: &Patch,
        now: i64,
    ) -> Result<Option<ImageRecord>> {
        {
            let _w = self.write.lock().await;
            let mut tx = self.pool.begin().await?;
            let mut s = Sql::new("SELECT id FROM images WHERE tenant = ");
            s.bind(tenant).push(" AND id = ").bind(id).live(false, now);
            let exists = s.query().fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Ok(None);
            }
            let mut s = Sql::new("UPDATE images SET id = id");
            if let Some(d) = &patch.description {
                s.push(", description = ").bind(d.as_str());
            }
            if let Some(p) = patch.is_private {
                s.push(", is_private = ").bind(p);
            }
            if let Some(e) = patch.expires_at {
                s.push(", expires_at = ").bind(e);
            }
            s.push(" WHERE id = ").bind(id);
            s.query().execute(&mut *tx).await?;
            if let Some(tags) = &patch.tags {
                sqlx::query("DELETE FROM image_tags WHERE image_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                insert_tags(&mut tx, id, tenant, tags).await?;
            }
            if !patch.remove_tags.is_empty() {
                let mut s = Sql::new("DELETE FROM image_tags WHERE image_id = ");
                s.bind(id)
                    .push(" AND name IN ")
                    .bind_list(&patch.remove_tags);
                s.query().execute(&mut *tx).await?;
            }
            for t in &patch.add_tags {
                sqlx::query("DELETE FROM image_tags WHERE image_id = $1 AND name = $2")
                    .bind(id)
                    .bind(t.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            insert_tags(&mut tx, id, tenant, &patch.add_tags).await?;
            // Announced as it is now, even if the patch just expired it.
            let emitted = announce_updated(&mut tx, tenant, id, now).await?;
            tx.commit().await?;
            self.announced(emitted);
        }
        // The row as it is now, even if the patch just expired it.
        self.get_image(tenant, id, i64::MIN).await
    }

    /// Delete an image row and its tags (expired ones too). When no other image uses its object,
    /// the object's key is journalled as pending in the same transaction, so a crash before the
    /// object is removed leaves it to the start-up sweep.
    pub async fn delete_image(
        &self,
        tenant: &str,
        id: &str,
        cause: super::Removal,
        now: i64,
    ) -> Result<Option<Deleted>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let key: Option<String> =
            sqlx::query_scalar("SELECT storage_key FROM images WHERE tenant = $1 AND id = $2")
                .bind(tenant)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(storage_key) = key else {
            return Ok(None);
        };
        detach_image(&mut tx, id).await?;
        let others: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM images WHERE storage_key = $1")
            .bind(storage_key.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let shared = others > 0;
        if !shared {
            journal(&mut tx, &storage_key, now).await?;
        }
        let emitted = emit(
            &mut tx,
            Announce {
                tenant,
                kind: match cause {
                    super::Removal::Deleted => "image.deleted",
                    super::Removal::Expired => "image.expired",
                },
                object: format!("image:{id}"),
                data: serde_json::json!({ "id": id }),
                now,
            },
        )
        .await?;
        tx.commit().await?;
        self.announced(emitted);
        Ok(Some(Deleted {
            storage_key,
            shared,
        }))
    }

    /// `(tenant, id)` of every image expired at `now`.
    pub async fn expired(&self, now: i64) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT tenant, id FROM images WHERE expires_at IS NOT NULL AND expires_at <= $1",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tenant")?, r.try_get("id")?)))
            .collect()
    }

    /// Tag names of the live images of `tenant` with their counts, by name.
    pub async fn tag_counts(&self, tenant: &str, now: i64) -> Result<Vec<(String, i64)>> {
        let mut s = Sql::new(
            "SELECT t.name AS name, COUNT(*) AS n FROM image_tags t JOIN images i \
             ON i.id = t.image_id WHERE",
        );
        s.tenant_is("t.tenant", tenant)
            .live(true, now)
            .push(" GROUP BY t.name ORDER BY t.name");
        let rows = s.query().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("n")?)))
            .collect()
    }

    /// Tag name → ids of the live images of `tenant` carrying it.
    pub async fn tag_members(
        &self,
        tenant: &str,
        now: i64,
    ) -> Result<BTreeMap<String, Vec<String>>> {
        let mut s = Sql::new(
            "SELECT t.name AS name, t.image_id AS image_id FROM image_tags t JOIN images i \
             ON i.id = t.image_id WHERE",
        );
        s.tenant_is("t.tenant", tenant)
            .live(true, now)
            .push(" ORDER BY t.name, i.created_at, i.id");
        let rows = s.query().fetch_all(&self.pool).await?;
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rows {
            out.entry(r.try_get("name")?)
                .or_default()
                .push(r.try_get("image_id")?);
        }
        Ok(out)
    }

    /// Counts over the live images of `tenant`.
    pub async fn stats(&self, tenant: &str, now: i64) -> Result<Stats> {
        let mut s = Sql::new(
            "SELECT format, COUNT(*) AS n, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS b \
             FROM images WHERE",
        );
        s.tenant_is("tenant", tenant)
            .live(false, now)
            .push(" GROUP BY format");
        let rows = s.query().fetch_all(&self.pool).await?;
        let mut st = Stats::default();
        for r in rows {
            let n: i64 = r.try_get("n")?;
            st.images += n;
            let b: i64 = r.try_get("b")?;
            let format: String = r.try_get("format")?;
            st.bytes += b;
            st.bytes_by_format.insert(format.clone(), b);
            st.by_format.insert(format, n);
        }
        let mut tags = self.tag_counts(tenant, now).await?;
        st.tags = tags.len() as i64;
        tags.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        st.top_tags = tags
            .into_iter()
            .take(10)
            .map(|(name, count)| TagCount { name, count })
            .collect();
        const DAY: i64 = 86_400_000;
        let today = now.div_euclid(DAY);
        let mut d = Sql::new("SELECT created_at / 86400000 AS d, COUNT(*) AS n FROM images WHERE");
        d.tenant_is("tenant", tenant)
            .live(false, now)
            .push(" AND created_at >= ")
            .bind((today - 29) * DAY)
            .push(" GROUP BY created_at / 86400000");
        let mut per_day = BTreeMap::new();
        for r in d.query().fetch_all(&self.pool).await? {
            per_day.insert(r.try_get::<i64, _>("d")?, r.try_get::<i64, _>("n")?);
        }
        st.uploads_per_day = (today - 29..=today)
            .map(|day| DayCount {
                day: crate::util::clock::ymd(day * DAY),
                count: per_day.get(&day).copied().unwrap_or(0),
            })
            .collect();
        Ok(st)
    }

    /// Every image that `/img` must check before serving: private or expiring ones.
    pub async fn access_rules(&self) -> Result<Vec<AccessRule>> {
        let rows = sqlx::query(
            "SELECT storage_key, tenant, is_private, expires_at FROM images \
             WHERE is_private = 1 OR expires_at IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rule_from_row).collect()
    }

    /// The rule of one stored object, if an image uses it.
    pub async fn access_rule(&self, storage_key: &str) -> Result<Option<AccessRule>> {
        let row = sqlx::query(
            "SELECT storage_key, tenant, is_private, expires_at FROM images WHERE storage_key = $1",
        )
        .bind(storage_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(rule_from_row).transpose()
    }
}

/// ` FROM images WHERE` the live images of `tenant` matching `f`.
fn live_where(s: &mut Sql, tenant: &str, now: i64, f: &Filter) {
    s.push(" FROM images WHERE")
        .tenant_is("tenant", tenant)
        .live(false, now);
    for t in &f.all_tags {
        s.push(
            " AND EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.name = ",
        )
        .bind(t.as_str())
        .push(")");
    }
    if !f.any_tags.is_empty() {
        s.push(
            " AND EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.name IN ",
        )
        .bind_list(&f.any_tags)
        .push(")");
    }
    if !f.not_tags.is_empty() {
        s.push(
            " AND NOT EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.name IN ",
        )
        .bind_list(&f.not_tags)
        .push(")");
    }
    if let Some(q) = &f.text {
        let pat = format!("%{}%", escape_like(&q.to_lowercase()));
        s.push(" AND (LOWER(filename) LIKE ")
            .bind(pat.as_str())
            .push(" ESCAPE '\\' OR LOWER(storage_key) LIKE ")
            .bind(pat.as_str())
            .push(" ESCAPE '\\' OR LOWER(description) LIKE ")
            .bind(pat.as_str())
            .push(" ESCAPE '\\' OR LOWER(COALESCE(generation_info, '')) LIKE ")
            .bind(pat.as_str())
            .push(
                " ESCAPE '\\' OR EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id \
                 AND LOWER(t.name) LIKE ",
            )
            .bind(pat.as_str())
            .push(" ESCAPE '\\'))");
    }
    if let Some(o) = &f.orientation {
        s.push(" AND orientation = ").bind(o.as_str());
    }
    if let Some(fm) = &f.format {
        s.push(" AND format = ").bind(fm.as_str());
    }
    if let Some(o) = &f.owner {
        s.push(" AND owner = ").bind(o.as_str());
    }
    if let Some(v) = &f.viewer {
        s.push(" AND (is_private = 0 OR owner = ")
            .bind(v.as_str())
            .push(")");
    }
    if let Some(a) = &f.album {
        s.push(" AND EXISTS (SELECT 1 FROM album_images m WHERE m.image_id = images.id AND m.album_id = ")
            .bind(a.as_str())
            .push(")");
    }
    if let Some(p) = f.private {
        s.push(" AND is_private = ").bind(p);
    }
    if let Some((prefix, recursive)) = &f.folder {
        let esc = escape_like(prefix);
        s.push(" AND storage_key LIKE ")
            .bind(format!("{esc}%"))
            .push(" ESCAPE '\\'");
        if !recursive {
            s.push(" AND storage_key NOT LIKE ")
                .bind(format!("{esc}%/%"))
                .push(" ESCAPE '\\'");
        }
    }
    if let Some(ids) = &f.ids {
        if ids.is_empty() {
            s.push(" AND 1 = 0");
        } else {
            s.push(" AND id IN ").bind_list(ids);
        }
    }
    if let Some(m) = &f.model {
        s.push(" AND gen_model LIKE ")
            .bind(format!("%{}%", escape_like(&m.to_lowercase())))
            .push(" ESCAPE '\\'");
    }
    if let Some(v) = &f.sampler {
        s.push(" AND gen_sampler = ").bind(v.to_lowercase());
    }
    if let Some(v) = &f.seed {
        s.push(" AND gen_seed = ").bind(v.as_str());
    }
    if let Some(l) = &f.lora {
        s.push(" AND gen_loras LIKE ")
            .bind(format!("%,{},%", escape_like(&l.to_lowercase())))
            .push(" ESCAPE '\\'");
    }
    if let Some(src) = &f.source {
        s.push(" AND source = ").bind(src.as_str());
    }
}

pub(super) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Journal a storage key as pending (its object may exist without a row).
/// An image's tags, in the caller's transaction.
async fn tags_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT name FROM image_tags WHERE image_id = $1 ORDER BY name")
        .bind(id)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("name").map_err(Into::into))
        .collect()
}

async fn insert_tags(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    tenant: &str,
    tags: &[String],
) -> Result<()> {
    for t in tags {
        sqlx::query("INSERT INTO image_tags (image_id, tenant, name) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(tenant)
            .bind(t.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Usage and the quota that applies (the tenant's own, else the defaults), in `tx`.
pub(super) async fn usage(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    defaults: super::Quota,
    now: i64,
) -> Result<super::Usage> {
    let mut s =
        Sql::new("SELECT COUNT(*) AS n, CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS b FROM images WHERE tenant = ");
    s.bind(tenant).live(false, now);
    let row = s.query().fetch_one(&mut **tx).await?;
    // Avatars count towards the bytes (not the images).
    let avatars: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM avatars WHERE tenant = $1",
    )
    .bind(tenant)
    .fetch_one(&mut **tx)
    .await?;
    let own = sqlx::query("SELECT quota_bytes, quota_images FROM tenant_quotas WHERE tenant = $1")
        .bind(tenant)
        .fetch_optional(&mut **tx)
        .await?;
    let (qb, qi): (Option<i64>, Option<i64>) = match own {
        Some(r) => (r.try_get("quota_bytes")?, r.try_get("quota_images")?),
        None => (None, None),
    };
    Ok(super::Usage {
        used_images: row.try_get("n")?,
        used_bytes: row.try_get::<i64, _>("b")? + avatars,
        quota_bytes: qb.unwrap_or(defaults.bytes),
        quota_images: qi.unwrap_or(defaults.images),
    })
}

/// Announce `image.updated` for image `id` as it is in the transaction (its row and tags);
/// whether an event was written.
pub(super) async fn announce_updated(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    id: &str,
    now: i64,
) -> Result<bool> {
    let mut s = Sql::new("SELECT ");
    s.push(IMAGE_COLUMNS)
        .push(" FROM images WHERE id = ")
        .bind(id);
    let Some(row) = s.query().fetch_optional(&mut **tx).await? else {
        return Ok(false);
    };
    let mut r = image_from_row(&row)?;
    r.tags = tags_in(tx, id).await?;
    emit(
        tx,
        Announce {
            tenant,
            kind: "image.updated",
            object: format!("image:{id}"),
            data: serde_json::to_value(&r).unwrap_or_default(),
            now,
        },
    )
    .await
}

/// Delete image `id`'s row with its tags, share links, album memberships and album covers.
pub(super) async fn detach_image(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
) -> Result<()> {
    for sql in [
        "DELETE FROM image_tags WHERE image_id = $1",
        // Its share links end with it.
        "DELETE FROM shares WHERE image_id = $1",
        // It leaves its albums (and stops being a cover).
        "DELETE FROM album_images WHERE image_id = $1",
        "UPDATE albums SET cover_image_id = NULL WHERE cover_image_id = $1",
        "DELETE FROM images WHERE id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Insert one image row (not its tags).
pub(super) async fn insert_image(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    i: &ImageRecord,
) -> Result<()> {
    let mut s = Sql::new("INSERT INTO images (");
    s.push(IMAGE_COLUMNS).push(") VALUES (");
    let args: [Arg; 27] = [
        i.id.clone().into(),
        i.tenant.clone().into(),
        i.storage_key.clone().into(),
        i.filename.clone().into(),
        i.content_type.clone().into(),
        i.format.clone().into(),
        i.bytes.into(),
        i.width.into(),
        i.height.into(),
        i.orientation.clone().into(),
        i.has_alpha.into(),
        i.blake3.clone().into(),
        i.description.clone().into(),
        i.is_private.into(),
        i.owner.clone().into(),
        i.created_at.into(),
        i.expires_at.into(),
        i.exif.clone().into(),
        i.generation_info.clone().into(),
        i.placeholder.clone().into(),
        i.source.clone().into(),
        i.file_mtime.into(),
        i.etag.clone().into(),
        i.gen.model.clone().into(),
        i.gen.sampler.clone().into(),
        i.gen.seed.clone().into(),
        loras_column(&i.gen.loras).into(),
    ];
    for (n, a) in args.into_iter().enumerate() {
        if n > 0 {
            s.push(", ");
        }
        s.bind(a);
    }
    s.push(")");
    s.query().execute(&mut **tx).await?;
    Ok(())
}

/// `,a,b,` (or `None` for no LoRA).
pub(super) fn loras_column(loras: &[String]) -> Option<String> {
    (!loras.is_empty()).then(|| format!(",{},", loras.join(",")))
}

pub(super) fn image_from_row(r: &AnyRow) -> Result<ImageRecord> {
    Ok(ImageRecord {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant")?,
        storage_key: r.try_get("storage_key")?,
        filename: r.try_get("filename")?,
        content_type: r.try_get("content_type")?,
        format: r.try_get("format")?,
        bytes: r.try_get("bytes")?,
        width: r.try_get("width")?,
        height: r.try_get("height")?,
        orientation: r.try_get("orientation")?,
        has_alpha: r.try_get::<i64, _>("has_alpha")? != 0,
        blake3: r.try_get("blake3")?,
        description: r.try_get("description")?,
        is_private: r.try_get::<i64, _>("is_private")? != 0,
        owner: r.try_get("owner")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        exif: r.try_get("exif")?,
        generation_info: r.try_get("generation_info")?,
        placeholder: r.try_get("placeholder")?,
        tags: Vec::new(),
        source: r.try_get("source")?,
        file_mtime: r.try_get("file_mtime")?,
        etag: r.try_get("etag")?,
        gen: super::GenFields {
            model: r.try_get("gen_model")?,
            sampler: r.try_get("gen_sampler")?,
            seed: r.try_get("gen_seed")?,
            loras: r
                .try_get::<Option<String>, _>("gen_loras")?
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        },
    })
}

fn rule_from_row(r: &AnyRow) -> Result<AccessRule> {
    Ok(AccessRule {
        storage_key: r.try_get("storage_key")?,
        tenant: r.try_get("tenant")?,
        is_private: r.try_get::<i64, _>("is_private")? != 0,
        expires_at: r.try_get("expires_at")?,
    })
}
