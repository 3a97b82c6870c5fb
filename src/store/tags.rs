//! Tags as things: a row per tag of a tenant (id, name, colour, type), beside the names images
//! carry in `image_tags` (which every existing filter and API keeps using). A name carried by
//! images gets its row the first time tags are listed or named by id; renaming onto an existing
//! name merges the two; deleting a tag takes it off every image. Every image whose tags change
//! is announced (`image.updated`) in the same transaction.

use super::images::announce_updated;
use super::sql::Sql;
use super::{Result, Store, StoreError};
use sqlx::Row;

/// A tag's row, with the number of live images carrying it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagRecord {
    pub id: String,
    pub name: String,
    pub color: Option<String>,
    /// `custom` or `auto` (made by the library from generation info).
    #[serde(rename = "type")]
    pub kind: String,
    pub count: i64,
}

/// What a batch tag operation changed: the images that gained or lost the tag, and the ids
/// that are no live image of the tenant (nothing was changed then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagBatch {
    Changed(Vec<String>),
    Missing(Vec<String>),
}

impl Store {
    /// Give every tag name of `tenant`'s images a row (ids for names that had none).
    async fn ensure_tag_rows(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        tenant: &str,
        now: i64,
    ) -> Result<()> {
        let rows = sqlx::query(
            "SELECT DISTINCT name FROM image_tags WHERE tenant = $1 \
             AND name NOT IN (SELECT name FROM tags WHERE tenant = $1)",
        )
        .bind(tenant)
        .fetch_all(&mut **tx)
        .await?;
        for r in rows {
            let name: String = r.try_get("name")?;
            insert_row(tx, tenant, &name, None, "custom", now).await?;
        }
        Ok(())
    }

    /// Every tag of `tenant` with its live images' count, by name.
    pub async fn tag_rows(&self, tenant: &str, now: i64) -> Result<Vec<TagRecord>> {
        {
            let _w = self.write.lock().await;
            let mut tx = self.pool.begin().await?;
            self.ensure_tag_rows(&mut tx, tenant, now).await?;
            tx.commit().await?;
        }
        let mut s = Sql::new(
            "SELECT t.id AS id, t.name AS name, t.color AS color, t.kind AS kind, \
             (SELECT COUNT(*) FROM image_tags it JOIN images i ON i.id = it.image_id \
              WHERE it.tenant = t.tenant AND it.name = t.name",
        );
        s.live(true, now)
            .push(") AS n FROM tags t WHERE t.tenant = ")
            .bind(tenant)
            .push(" ORDER BY t.name");
        let rows = s.query().fetch_all(&self.pool).await?;
        rows.iter().map(tag_from_row).collect()
    }

    /// One tag of `tenant` by id.
    pub async fn tag_row(&self, tenant: &str, id: &str, now: i64) -> Result<Option<TagRecord>> {
        Ok(self
            .tag_rows(tenant, now)
            .await?
            .into_iter()
            .find(|t| t.id == id))
    }

    /// A new tag; `Unique` when the tenant has the name already.
    pub async fn create_tag(
        &self,
        tenant: &str,
        name: &str,
        color: Option<&str>,
        kind: &str,
        now: i64,
    ) -> Result<String> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        self.ensure_tag_rows(&mut tx, tenant, now).await?;
        let id = insert_row(&mut tx, tenant, name, color, kind, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Rename and/or recolour tag `id`. Renaming onto a name the tenant has merges this tag into
    /// that one (its images carry the other, this row goes); returns the surviving tag's id, or
    /// `None` when there is no such tag.
    pub async fn update_tag(
        &self,
        tenant: &str,
        id: &str,
        name: Option<&str>,
        color: Option<Option<&str>>,
        now: i64,
    ) -> Result<Option<String>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        self.ensure_tag_rows(&mut tx, tenant, now).await?;
        let Some(old) = name_of(&mut tx, tenant, id).await? else {
            return Ok(None);
        };
        let mut survivor = id.to_string();
        let mut changed: Vec<String> = Vec::new();
        if let Some(new) = name.filter(|n| *n != old) {
            let target: Option<String> =
                sqlx::query_scalar("SELECT id FROM tags WHERE tenant = $1 AND name = $2")
                    .bind(tenant)
                    .bind(new)
                    .fetch_optional(&mut *tx)
                    .await?;
            changed = images_with(&mut tx, tenant, &old).await?;
            // Images carrying both keep one.
            sqlx::query(
                "DELETE FROM image_tags WHERE tenant = $1 AND name = $2 AND image_id IN \
                 (SELECT image_id FROM image_tags WHERE tenant = $1 AND name = $3)",
            )
            .bind(tenant)
            .bind(old.as_str())
            .bind(new)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE image_tags SET name = $1 WHERE tenant = $2 AND name = $3")
                .bind(new)
                .bind(tenant)
                .bind(old.as_str())
                .execute(&mut *tx)
                .await?;
            match target {
                Some(t) => {
                    sqlx::query("DELETE FROM tags WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    survivor = t;
                }
                None => {
                    sqlx::query("UPDATE tags SET name = $1 WHERE id = $2")
                        .bind(new)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        if let Some(c) = color {
            sqlx::query("UPDATE tags SET color = $1 WHERE id = $2")
                .bind(c)
                .bind(survivor.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let emitted = announce_all(&mut tx, tenant, &changed, now).await?;
        tx.commit().await?;
        self.announced(emitted);
        Ok(Some(survivor))
    }

    /// Delete tag `id` and take it off every image; `false` when there is no such tag.
    pub async fn delete_tag(&self, tenant: &str, id: &str, now: i64) -> Result<bool> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        self.ensure_tag_rows(&mut tx, tenant, now).await?;
        let Some(name) = name_of(&mut tx, tenant, id).await? else {
            return Ok(false);
        };
        let changed = images_with(&mut tx, tenant, &name).await?;
        sqlx::query("DELETE FROM image_tags WHERE tenant = $1 AND name = $2")
            .bind(tenant)
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tags WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let emitted = announce_all(&mut tx, tenant, &changed, now).await?;
        tx.commit().await?;
        self.announced(emitted);
        Ok(true)
    }

    /// Put tag `id` on (`add`) or take it off these images, all or none: any id that is not a
    /// live image of the tenant changes nothing and is reported. `None` when there is no such
    /// tag.
    pub async fn tag_images(
        &self,
        tenant: &str,
        id: &str,
        images: &[String],
        add: bool,
        now: i64,
    ) -> Result<Option<TagBatch>> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        self.ensure_tag_rows(&mut tx, tenant, now).await?;
        let Some(name) = name_of(&mut tx, tenant, id).await? else {
            return Ok(None);
        };
        let mut found: Vec<String> = Vec::new();
        for chunk in images.chunks(500) {
            let mut s = Sql::new("SELECT id FROM images WHERE tenant = ");
            s.bind(tenant)
                .push(" AND id IN ")
                .bind_list(chunk)
                .live(false, now);
            for r in s.query().fetch_all(&mut *tx).await? {
                found.push(r.try_get("id")?);
            }
        }
        let missing: Vec<String> = images
            .iter()
            .filter(|i| !found.contains(i))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Ok(Some(TagBatch::Missing(missing)));
        }
        let carrying = images_with(&mut tx, tenant, &name).await?;
        let mut changed = Vec::new();
        for image in &found {
            let has = carrying.contains(image);
            if add && !has {
                sqlx::query("INSERT INTO image_tags (image_id, tenant, name) VALUES ($1, $2, $3)")
                    .bind(image.as_str())
                    .bind(tenant)
                    .bind(name.as_str())
                    .execute(&mut *tx)
                    .await?;
            } else if !add && has {
                sqlx::query("DELETE FROM image_tags WHERE image_id = $1 AND name = $2")
                    .bind(image.as_str())
                    .bind(name.as_str())
                    .execute(&mut *tx)
                    .await?;
            } else {
                continue;
            }
            if !changed.contains(image) {
                changed.push(image.clone());
            }
        }
        let emitted = announce_all(&mut tx, tenant, &changed, now).await?;
        tx.commit().await?;
        self.announced(emitted);
        Ok(Some(TagBatch::Changed(changed)))
    }
}

/// Announce `image.updated` for each of `images`; whether any event was written.
async fn announce_all(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    images: &[String],
    now: i64,
) -> Result<bool> {
    let mut emitted = false;
    for image in images {
        emitted |= announce_updated(tx, tenant, image, now).await?;
    }
    Ok(emitted)
}

async fn insert_row(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    name: &str,
    color: Option<&str>,
    kind: &str,
    now: i64,
) -> Result<String> {
    let id = crate::util::ids::random_id(9).map_err(|e| StoreError::Db(e.to_string()))?;
    sqlx::query(
        "INSERT INTO tags (id, tenant, name, color, kind, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.as_str())
    .bind(tenant)
    .bind(name)
    .bind(color)
    .bind(kind)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

async fn name_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    id: &str,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT name FROM tags WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

/// Ids of the images of `tenant` carrying tag `name`.
async fn images_with(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    name: &str,
) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT image_id FROM image_tags WHERE tenant = $1 AND name = $2")
        .bind(tenant)
        .bind(name)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("image_id").map_err(Into::into))
        .collect()
}

fn tag_from_row(r: &sqlx::any::AnyRow) -> Result<TagRecord> {
    Ok(TagRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        color: r.try_get("color")?,
        kind: r.try_get("kind")?,
        count: r.try_get("n")?,
    })
}
