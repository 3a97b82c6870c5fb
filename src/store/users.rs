//! People: user accounts and their sessions (refresh-token families).
//!
//! A session is a family of refresh tokens: each use rotates the token (the used one is marked,
//! a new one inserted, in one transaction). Presenting a token already rotated revokes its whole
//! family, since only a thief or a replay would hold it. Tokens are stored as hashes.

use super::{Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A user as stored (the password only as its Argon2id PHC string).
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    /// Lower-cased.
    pub email: String,
    pub name: String,
    pub password_hash: String,
    /// `admin` (every tenant) or `member` (of `tenant`, with `scopes`).
    pub role: String,
    pub tenant: String,
    pub scopes: Vec<String>,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Rotated: the session (family) and its user go on with the new token.
    Rotated { family: String, user: String },
    /// The token was already used: its family is now revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

macro_rules! user_columns {
    () => {
        "id, email, name, password_hash, role, tenant, scopes, disabled, created_at, updated_at"
    };
}

fn user_from_row(r: &AnyRow) -> Result<UserRecord> {
    let scopes: String = r.try_get("scopes")?;
    Ok(UserRecord {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        password_hash: r.try_get("password_hash")?,
        role: r.try_get("role")?,
        tenant: r.try_get("tenant")?,
        scopes: super::keys::split_list(&scopes),
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn insert_user(&self, u: &UserRecord) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(u.id.as_str())
        .bind(u.email.as_str())
        .bind(u.name.as_str())
        .bind(u.password_hash.as_str())
        .bind(u.role.as_str())
        .bind(u.tenant.as_str())
        .bind(u.scopes.join(","))
        .bind(i64::from(u.disabled))
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn set_user_name(&self, id: &str, name: &str, now: i64) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("UPDATE users SET name = $1, updated_at = $2 WHERE id = $3")
            .bind(name)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A new password; every session but `keep` (a family) is revoked in the same transaction.
    pub async fn set_password(
        &self,
        id: &str,
        password_hash: &str,
        keep: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
             AND id <> $3",
        )
        .bind(now)
        .bind(id)
        .bind(keep.unwrap_or(""))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new session for `user` with its first refresh token (by hash).
    pub async fn open_session(
        &self,
        family: &str,
        user: &str,
        token_hash: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(family)
        .bind(user)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        insert_token(&mut tx, family, token_hash, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Present a refresh token: rotate it to `next_hash`, or revoke its family on reuse.
    pub async fn refresh_session(
        &self,
        token_hash: &str,
        next_hash: &str,
        now: i64,
    ) -> Result<Refresh> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT t.session_id, t.used_at, s.user_id, s.revoked_at, s.expires_at \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Refresh::Invalid);
        };
        let family: String = row.try_get("session_id")?;
        let used: Option<i64> = row.try_get("used_at")?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        let expires: i64 = row.try_get("expires_at")?;
        if revoked.is_some() || expires <= now {
            return Ok(Refresh::Invalid);
        }
        if used.is_some() {
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2")
                .bind(now)
                .bind(family.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Refresh::Reused);
        }
        // Spent only if nobody spent it meanwhile (another server, on a shared database).
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent == 0 {
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2")
                .bind(now)
                .bind(family.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Refresh::Reused);
        }
        insert_token(&mut tx, &family, next_hash, now).await?;
        tx.commit().await?;
        Ok(Refresh::Rotated {
            family,
            user: row.try_get("user_id")?,
        })
    }

    /// Whether a session is live (not revoked, not expired).
    pub async fn session_live(&self, family: &str, now: i64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(family)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Revoke a session (logout); false when there was no such live session of `user`.
    pub async fn revoke_session(&self, family: &str, user: &str, now: i64) -> Result<bool> {
        let _w = self.write.lock().await;
        let n = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND user_id = $3 \
             AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family)
        .bind(user)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Every user (of `tenant`, or all), oldest first.
    pub async fn list_users(&self, tenant: Option<&str>) -> Result<Vec<UserRecord>> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE tenant = $1 ORDER BY created_at, id"
                ))
                .bind(t)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users ORDER BY created_at, id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(user_from_row).collect()
    }

    /// Disable or enable a user by email or id (disabling ends every session); false when
    /// none.
    pub async fn set_user_disabled(&self, who: &str, disabled: bool, now: i64) -> Result<bool> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let id: Option<String> =
            sqlx::query_scalar("SELECT id FROM users WHERE email = $1 OR id = $1")
                .bind(who)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(id) = id else {
            return Ok(false);
        };
        sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(disabled))
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if disabled {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// End the live session a refresh token (by hash) belongs to; false when none.
    pub async fn revoke_by_token(&self, token_hash: &str, now: i64) -> Result<bool> {
        let _w = self.write.lock().await;
        let n = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL AND id = \
             (SELECT session_id FROM refresh_tokens WHERE token_hash = $2)",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Forget sessions that expired, or were revoked over a day ago, with their tokens.
    pub async fn prune_sessions(&self, now: i64) -> Result<u64> {
        let _w = self.write.lock().await;
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $2")
            .bind(now)
            .bind(now - 86_400_000)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "DELETE FROM refresh_tokens WHERE NOT EXISTS \
             (SELECT 1 FROM sessions s WHERE s.id = refresh_tokens.session_id)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Whether any user exists.
    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }
}

async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    family: &str,
    token_hash: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(family)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
