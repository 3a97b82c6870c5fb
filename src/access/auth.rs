//! API keys: generation, hashing, extraction from a request, and who a key is.
//!
//! Keys are 256-bit random secrets (`rfk_` + URL-safe base64); only their blake3 hash is stored.
//! A presented key is hashed, looked up by hash, and the stored hash is compared in constant
//! time; the bootstrap admin key (config `auth.admin_key`, env `REFRACT_API_KEY`) is compared the
//! same way. Invariant: no key, hash or prefix longer than the shown prefix reaches a log line.

pub use crate::store::ShareUse;
use crate::store::{KeyRecord, Store, StoreError};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The `[auth]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bootstrap admin key of tenant `default` (env `REFRACT_API_KEY`). Unset = no bootstrap key.
    pub admin_key: Option<crate::util::secret::Secret>,
}

/// A permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

/// Per-key rate-limit overrides (`rate_limit` of `POST /api/v1/keys`); unset fields use config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateOverride {
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
    pub uploads_per_minute: Option<u32>,
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's id (`bootstrap` for the config key).
    pub key_id: String,
    pub tenant: String,
    pub scopes: Vec<Scope>,
    pub rate: RateOverride,
}

impl RateOverride {
    /// Each limit of `self`, else `under`'s (a key's own limits over its tenant's).
    pub fn over(self, under: Self) -> Self {
        Self {
            per_minute: self.per_minute.or(under.per_minute),
            per_hour: self.per_hour.or(under.per_hour),
            per_day: self.per_day.or(under.per_day),
            uploads_per_minute: self.uploads_per_minute.or(under.uploads_per_minute),
        }
    }
}

impl Principal {
    /// `admin` implies every scope.
    pub fn has(&self, s: Scope) -> bool {
        self.scopes.contains(&s) || self.scopes.contains(&Scope::Admin)
    }
}

/// A tenant name: 1-64 of `a-z 0-9 - _`.
pub fn valid_tenant(t: &str) -> bool {
    (1..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Hash of a key as stored.
pub fn hash(key: &str) -> String {
    blake3::hash(key.as_bytes()).to_hex().to_string()
}

/// A new random key and its display prefix.
pub fn generate() -> Result<(String, String), getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    let key = format!(
        "rfk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    );
    let prefix = key.chars().take(8).collect();
    Ok((key, prefix))
}

/// The authenticator.
pub struct Auth {
    /// Tenants switched off: their keys and users are refused at once.
    inactive: std::sync::RwLock<std::collections::HashSet<String>>,
    /// Tenants' own rate limits (under their keys' limits, over the configured ones).
    tenant_rates: std::sync::RwLock<std::collections::HashMap<String, RateOverride>>,
    bootstrap: Option<[u8; 32]>,
    store: Arc<Store>,
    accounts: Arc<super::accounts::Accounts>,
}

impl Auth {
    /// The storage key a share token is for (nothing counted), if it exists.
    pub async fn share_key(&self, token: &str) -> Result<Option<String>, StoreError> {
        self.store.share_key(&hash(token)).await
    }

    /// Use a share token once (the view is counted when it is live).
    pub async fn use_share(&self, token: &str, now: i64) -> Result<ShareUse, StoreError> {
        self.store.use_share(&hash(token), now).await
    }

    /// Does the album token `token` open the object at `storage_key` at `now`? `Some(expiry)`
    /// when it does (`None` inside: the token never expires).
    pub async fn album_grant(
        &self,
        token: &str,
        storage_key: &str,
        now: i64,
    ) -> Result<Option<Option<i64>>, StoreError> {
        let Some((album, _tenant, expires)) = self.store.album_token(&hash(token), now).await?
        else {
            return Ok(None);
        };
        Ok(self
            .store
            .album_holds(&album, storage_key, now)
            .await?
            .then_some(expires))
    }

    /// Keys are looked up in `store`; `auth.admin_key` is the bootstrap key.
    pub fn new(
        cfg: &AuthConfig,
        store: Arc<Store>,
        accounts: Arc<super::accounts::Accounts>,
    ) -> Self {
        Self {
            inactive: std::sync::RwLock::default(),
            tenant_rates: std::sync::RwLock::default(),
            accounts,
            bootstrap: cfg
                .admin_key
                .as_ref()
                .filter(|k| !k.0.is_empty())
                .map(|k| *blake3::hash(k.0.as_bytes()).as_bytes()),
            store,
        }
    }

    /// Who `key` (an API key, or a user's access token) is, or `None` for an unknown one.
    pub async fn identify(&self, key: &str) -> Result<Option<Principal>, StoreError> {
        if super::accounts::looks_like_jwt(key) {
            if key.len() > 4096 {
                return Ok(None);
            }
            let p = self.accounts.identify(key).await?.map(|(p, _, _)| p);
            return Ok(p
                .filter(|p| self.is_active(&p.tenant))
                .map(|p| self.with_tenant_rate(p)));
        }
        if key.is_empty() || key.len() > 256 {
            return Ok(None);
        }
        let h = blake3::hash(key.as_bytes());
        if let Some(b) = &self.bootstrap {
            if bool::from(b.ct_eq(h.as_bytes())) {
                return Ok(Some(Principal {
                    key_id: "bootstrap".into(),
                    tenant: "default".into(),
                    scopes: vec![Scope::Read, Scope::Write, Scope::Admin],
                    rate: RateOverride::default(),
                }));
            }
        }
        let hex = h.to_hex();
        let Some((rec, stored)) = self.store.key_by_hash(hex.as_str()).await? else {
            return Ok(None);
        };
        if !bool::from(stored.as_bytes().ct_eq(hex.as_bytes())) {
            return Ok(None);
        }
        Ok(Some(principal(&rec))
            .filter(|p| self.is_active(&p.tenant))
            .map(|p| self.with_tenant_rate(p)))
    }

    fn with_tenant_rate(&self, mut p: Principal) -> Principal {
        let rates = self
            .tenant_rates
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = rates.get(&p.tenant) {
            p.rate = p.rate.over(*t);
        }
        p
    }

    /// Set (or clear) a tenant's own rate limits.
    pub fn set_tenant_rate(&self, tenant: &str, rate: Option<RateOverride>) {
        let mut s = self
            .tenant_rates
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match rate {
            Some(r) => s.insert(tenant.to_string(), r),
            None => s.remove(tenant),
        };
    }

    /// Switch a tenant on or off (its keys and users are refused while off).
    pub fn set_active(&self, tenant: &str, active: bool) {
        let mut s = self
            .inactive
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if active {
            s.remove(tenant);
        } else {
            s.insert(tenant.to_string());
        }
    }

    /// Whether `tenant` is on (the bootstrap key's tenant, `default`, always is).
    pub fn is_active(&self, tenant: &str) -> bool {
        tenant == "default"
            || !self
                .inactive
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(tenant)
    }
}

fn principal(rec: &KeyRecord) -> Principal {
    Principal {
        key_id: rec.id.clone(),
        tenant: rec.tenant.clone(),
        scopes: rec.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        rate: rec
            .rate_limit
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names() {
        assert!(valid_tenant("default") && valid_tenant("acme-1_x"));
        assert!(!valid_tenant("") && !valid_tenant("Acme") && !valid_tenant("a/b"));
    }

    #[test]
    fn generated_keys_are_long_and_distinct() {
        let (a, pa) = generate().unwrap();
        let (b, _) = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.len() >= 40 && a.starts_with(&pa));
        assert_ne!(hash(&a), a);
    }

    #[test]
    fn admin_implies_every_scope() {
        let p = Principal {
            key_id: "k".into(),
            tenant: "t".into(),
            scopes: vec![Scope::Admin],
            rate: RateOverride::default(),
        };
        assert!(p.has(Scope::Read) && p.has(Scope::Write));
        let r = Principal {
            scopes: vec![Scope::Read],
            ..p
        };
        assert!(!r.has(Scope::Write));
    }
}
