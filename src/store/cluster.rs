//! What several nodes sharing one database coordinate through it: leases (one holder per
//! once-per-cluster job, taken over when the holder stops renewing, e.g. after `kill -9`) and
//! change notifications (PostgreSQL `NOTIFY` on [`CHANGES`]; nothing to do on SQLite, which one
//! process owns).

use super::{Result, Store};

/// The channel a node announces changed storage keys on.
pub const CHANGES: &str = "refract_changes";

impl Store {
    /// Whether this store is PostgreSQL (several nodes may share it).
    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// Take or renew lease `name` for `holder` until `now + ttl_ms`: true when `holder` has
    /// it now (it was free, expired, or already its own). Atomic on both backends.
    pub async fn try_lease(&self, name: &str, holder: &str, ttl_ms: i64, now: i64) -> Result<bool> {
        // Every write of this process goes through the write lock: on SQLite, a write beside a
        // transaction that read first makes that transaction fail (SQLITE_BUSY_SNAPSHOT).
        let _w = self.write.lock().await;
        let r = sqlx::query(
            "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = $2, until = $3 \
             WHERE leases.holder = $2 OR leases.until < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Give lease `name` up (a clean stop), if `holder` has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let _w = self.write.lock().await;
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The live leases: `(name, holder)`.
    pub async fn leases(&self, now: i64) -> Result<Vec<(String, String)>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, holder FROM leases WHERE until >= $1 ORDER BY name")
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows)
    }

    /// Tell the other nodes that what `/img` knows of `storage_key` changed (privacy, expiry,
    /// deletion), as node `node`. PostgreSQL only; a failure is logged (the periodic reload
    /// catches up).
    pub async fn announce_change(&self, node: &str, storage_key: &str) {
        if !self.postgres {
            return;
        }
        if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES)
            .bind(format!("{node}\n{storage_key}"))
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "announcing a change failed");
        }
    }

    /// One round trip to the database (for `/ready`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// What a node hears on [`CHANGES`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// Another node changed this storage key.
    Changed(String),
    /// Connected or reconnected: announcements may have been missed, reload everything.
    Gap,
}

/// Follow the announcements of the other nodes (PostgreSQL at `url`; not `node`'s own) into
/// `tx`, reconnecting after a failure, until `tx` closes. Never logs the URL (it may hold a
/// password).
pub async fn follow_changes(url: &str, node: &str, tx: tokio::sync::mpsc::Sender<Heard>) {
    let own = format!("{node}\n");
    loop {
        match sqlx::postgres::PgListener::connect(url).await {
            Ok(mut l) => match l.listen(CHANGES).await {
                Ok(()) => {
                    if tx.send(Heard::Gap).await.is_err() {
                        return;
                    }
                    loop {
                        let heard = match l.try_recv().await {
                            Ok(Some(n)) if n.payload().starts_with(&own) => continue,
                            Ok(Some(n)) => Heard::Changed(
                                n.payload()
                                    .split_once('\n')
                                    .map_or(n.payload(), |(_, k)| k)
                                    .to_string(),
                            ),
                            // The connection dropped; the next call reconnects.
                            Ok(None) => Heard::Gap,
                            Err(e) => {
                                tracing::warn!(error = %e, "change listener failed; reconnecting");
                                break;
                            }
                        };
                        if tx.send(heard).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "change listener: LISTEN failed"),
            },
            Err(e) => tracing::warn!(error = %e, "change listener: cannot connect"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
