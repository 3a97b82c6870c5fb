//! API keys: generation, hashing, extraction from a request, and who a key is.
//!
//! Keys are 256-bit random secrets (`rfk_` + URL-safe base64); only their blake3 hash is stored.
//! A presented key is hashed, looked up by hash, and the stored hash is compared in constant
//! time; the bootstrap admin key (config `auth.admin_key`, env `REFRACT_API_KEY`) is compared the
//! same way. Invariant: no key, hash or prefix longer than the shown prefix reaches a log line.

use crate::store::{KeyRecord, Store, StoreError};
use base64::Engine;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The `[auth]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Bootstrap admin key of tenant `default` (env `REFRACT_API_KEY`). Unset = no bootstrap key.
    pub admin_key: Option<crate::storage::origin::Secret>,
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

impl Principal {
    /// `admin` implies every scope.
    pub fn has(&self, s: Scope) -> bool {
        self.scopes.contains(&s) || self.scopes.contains(&Scope::Admin)
    }
}

/// The key sent with a request: `X-API-Key: k` or `Authorization: Bearer k`.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
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

/// A random URL-safe id of `n_bytes` bytes of entropy.
pub fn random_id(n_bytes: usize) -> Result<String, getrandom::Error> {
    let mut b = vec![0u8; n_bytes];
    getrandom::fill(&mut b)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(b)
        .replace(['-', '_'], "x"))
}

/// The authenticator.
pub struct Auth {
    bootstrap: Option<[u8; 32]>,
}

impl Auth {
    pub fn new(cfg: &AuthConfig) -> Self {
        Self {
            bootstrap: cfg
                .admin_key
                .as_ref()
                .filter(|k| !k.0.is_empty())
                .map(|k| *blake3::hash(k.0.as_bytes()).as_bytes()),
        }
    }

    /// Who `key` is, or `None` for an unknown key.
    pub async fn identify(
        &self,
        store: &Store,
        key: &str,
    ) -> Result<Option<Principal>, StoreError> {
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
        let Some((rec, stored)) = store.key_by_hash(hex.as_str()).await? else {
            return Ok(None);
        };
        if !bool::from(stored.as_bytes().ct_eq(hex.as_bytes())) {
            return Ok(None);
        }
        Ok(Some(principal(&rec)))
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
    fn keys_are_read_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(presented(&h), Some("abc"));
        h.insert("x-api-key", "xyz".parse().unwrap());
        assert_eq!(presented(&h), Some("xyz"));
        let mut h = HeaderMap::new();
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(presented(&h), None);
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
