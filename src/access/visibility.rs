//! What `/img` checks before serving a stored object that an image of the API owns: private
//! images are served only to a key of their tenant, expired ones to nobody. Kept in memory
//! (loaded from the store at start, updated by every write of this process), so the hot path
//! makes no database round trip.
//!
//! Invariant: holds only objects that need a check (private or expiring); an object absent from
//! it is public.

use crate::store::AccessRule;
use serde::{Deserialize, Serialize};

/// What an inaccessible image (missing, private, expired) answers on `/img`, `/cdn-cgi/image/`
/// and `/s/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// The JSON error (default).
    #[default]
    Error,
    /// Its real status (404/410) with a small placeholder image, so a page shows a placeholder
    /// rather than a broken-image icon.
    Image,
}

/// The `[access]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// `"error"` (default) or `"image"`.
    pub fallback: Fallback,
}
use std::collections::HashMap;
use std::sync::RwLock;

/// The verdict for one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone may see it, for ever.
    Public,
    /// Anyone may see it until this unix-millisecond time (caches must not keep it longer).
    Until(i64),
    /// Its tenant's caller may see it (no shared cache may keep it).
    Private,
    /// Nobody (expired, or private to another tenant): answer as if it did not exist.
    Hidden,
}

/// The index.
#[derive(Default)]
pub struct AccessIndex {
    rules: RwLock<HashMap<String, AccessRule>>,
    /// Where a change made here is announced to the other nodes (the key that changed).
    announce: Option<tokio::sync::mpsc::UnboundedSender<String>>,
}

impl AccessIndex {
    /// The index of `rules`; changes made through `set` and `remove` are sent to `announce`.
    pub fn load(
        rules: Vec<AccessRule>,
        announce: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    ) -> Self {
        let idx = Self {
            rules: RwLock::default(),
            announce,
        };
        for r in rules {
            let key = r.storage_key.clone();
            idx.apply(&key, Some(r));
        }
        idx
    }

    /// Record the current rule of an object (a change made on this node: announced).
    pub fn set(&self, r: AccessRule) {
        let key = r.storage_key.clone();
        self.apply(&key, Some(r));
        self.announced(key);
    }

    /// Forget an object (deleted on this node: announced).
    pub fn remove(&self, storage_key: &str) {
        self.apply(storage_key, None);
        self.announced(storage_key.to_string());
    }

    fn announced(&self, key: String) {
        if let Some(tx) = &self.announce {
            let _ = tx.send(key);
        }
    }

    /// Take an object's rule as the database has it now (a change another node announced;
    /// `None`: no row, or public for ever). Not announced again.
    pub fn apply(&self, storage_key: &str, r: Option<AccessRule>) {
        if let Ok(mut m) = self.rules.write() {
            match r {
                Some(r) if r.is_private || r.expires_at.is_some() => {
                    m.insert(storage_key.to_string(), r);
                }
                _ => {
                    m.remove(storage_key);
                }
            }
        }
    }

    /// The keys whose rule here differs from `snapshot` (every restricted rule as the database
    /// had it a moment ago). The periodic reload, the safety net for a missed announcement,
    /// reads each of them again rather than taking the snapshot whole: a change committed here
    /// after the snapshot was read is never undone by it.
    pub fn differs(&self, snapshot: &[AccessRule]) -> Vec<String> {
        let Ok(m) = self.rules.read() else {
            return Vec::new();
        };
        let fresh: HashMap<&str, &AccessRule> = snapshot
            .iter()
            .filter(|r| r.is_private || r.expires_at.is_some())
            .map(|r| (r.storage_key.as_str(), r))
            .collect();
        let mut out: Vec<String> = fresh
            .iter()
            .filter(|(k, r)| m.get(**k) != Some(**r))
            .map(|(k, _)| (*k).to_string())
            .collect();
        out.extend(
            m.keys()
                .filter(|k| !fresh.contains_key(k.as_str()))
                .cloned(),
        );
        out
    }

    /// May `tenant` (the caller's, when it sent a valid key) see `storage_key` at `now`?
    pub fn check(&self, storage_key: &str, now: i64, tenant: Option<&str>) -> Access {
        let Ok(m) = self.rules.read() else {
            return Access::Hidden;
        };
        match m.get(storage_key) {
            None => Access::Public,
            Some(r) if r.expires_at.is_some_and(|e| e <= now) => Access::Hidden,
            Some(r) if r.is_private && tenant != Some(r.tenant.as_str()) => Access::Hidden,
            Some(r) if r.is_private => Access::Private,
            Some(r) => r.expires_at.map_or(Access::Public, Access::Until),
        }
    }

    /// The verdict for a caller granted access by a token: as the object's own tenant.
    pub fn check_granted(&self, storage_key: &str, now: i64) -> Access {
        let tenant = self
            .rules
            .read()
            .ok()
            .and_then(|m| m.get(storage_key).map(|r| r.tenant.clone()));
        self.check(storage_key, now, tenant.as_deref())
    }

    /// When the object expires, if it does.
    pub fn expires_at(&self, storage_key: &str) -> Option<i64> {
        self.rules
            .read()
            .ok()
            .and_then(|m| m.get(storage_key).and_then(|r| r.expires_at))
    }

    /// Whether the object has a rule at all (then `/img` looks at the caller's key).
    pub fn is_restricted(&self, storage_key: &str) -> bool {
        self.rules
            .read()
            .map_or(true, |m| m.get(storage_key).is_some_and(|r| r.is_private))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(private: bool, exp: Option<i64>) -> AccessRule {
        AccessRule {
            storage_key: "t/a.jpg".into(),
            tenant: "t".into(),
            is_private: private,
            expires_at: exp,
        }
    }

    #[test]
    fn a_reload_reads_again_only_what_differs() {
        let i = AccessIndex::load(vec![rule(true, None)], None);
        assert!(i.differs(&[rule(true, None)]).is_empty());
        // Public now (absent from the snapshot), or another rule: read again.
        assert_eq!(i.differs(&[]), vec!["t/a.jpg".to_string()]);
        assert_eq!(
            i.differs(&[rule(false, Some(5))]),
            vec!["t/a.jpg".to_string()]
        );
        i.apply("t/a.jpg", None);
        assert_eq!(i.differs(&[rule(true, None)]), vec!["t/a.jpg".to_string()]);
        assert!(
            i.differs(&[rule(false, None)]).is_empty(),
            "public rules are not kept"
        );
    }

    #[test]
    fn private_expired_and_public() {
        let i = AccessIndex::load(vec![rule(true, None)], None);
        assert_eq!(i.check("t/a.jpg", 0, None), Access::Hidden);
        assert_eq!(i.check("t/a.jpg", 0, Some("other")), Access::Hidden);
        assert_eq!(i.check("t/a.jpg", 0, Some("t")), Access::Private);
        assert_eq!(i.check("x.jpg", 0, None), Access::Public);
        i.set(rule(false, Some(100)));
        assert_eq!(i.check("t/a.jpg", 99, None), Access::Until(100));
        assert_eq!(i.check("t/a.jpg", 100, None), Access::Hidden);
        i.set(rule(false, None));
        assert_eq!(i.check("t/a.jpg", 1000, None), Access::Public);
    }
}
