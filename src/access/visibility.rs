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
}

impl AccessIndex {
    pub fn load(rules: Vec<AccessRule>) -> Self {
        let idx = Self::default();
        for r in rules {
            idx.set(r);
        }
        idx
    }

    /// Record the current rule of an object.
    pub fn set(&self, r: AccessRule) {
        if let Ok(mut m) = self.rules.write() {
            if r.is_private || r.expires_at.is_some() {
                m.insert(r.storage_key.clone(), r);
            } else {
                m.remove(&r.storage_key);
            }
        }
    }

    /// Forget an object (deleted).
    pub fn remove(&self, storage_key: &str) {
        if let Ok(mut m) = self.rules.write() {
            m.remove(storage_key);
        }
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
    fn private_expired_and_public() {
        let i = AccessIndex::load(vec![rule(true, None)]);
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
