//! Signed URLs. `s` carries a MAC over the request path and the canonical query without `s`
//! (its pairs as sent, sorted); an optional `expires` (unix seconds) is covered by it. The MAC is
//! a blake3 keyed hash under a key derived from each configured secret, URL-safe base64.
//! Several keys verify (rotation); the first signs. `s` and `expires` never reach the transform
//! or the cache key, so rotating keys keeps the cache.
//!
//! Invariants: pure (no IO); comparisons are constant time; no secret in any error.

use crate::util::query::Query;
use crate::util::secret::Secret;
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Characters escaped in a URL path segment (`/` stays as the separator).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

/// The `[security]` config section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Signing secrets: the first signs, all verify.
    pub signing_keys: Vec<Secret>,
    /// Refuse unsigned `/img` requests (403) and expired ones (410).
    pub require_signature: bool,
    /// Allow only `preset=` (and cache busters) as transform parameters.
    pub presets_only: bool,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Invalid,
    /// Signed, but `expires` is in the past.
    Expired,
}

/// Derived MAC keys.
#[derive(Clone, Default)]
pub struct Signer {
    keys: Vec<[u8; 32]>,
    required: bool,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} keys)", self.keys.len())
    }
}

const CONTEXT: &str = "refract 2026-11 signed image URL";

impl Signer {
    pub fn new(cfg: &SecurityConfig) -> Self {
        Self {
            keys: cfg
                .signing_keys
                .iter()
                .filter(|k| !k.0.is_empty())
                .map(|k| blake3::derive_key(CONTEXT, k.0.as_bytes()))
                .collect(),
            required: cfg.require_signature,
        }
    }

    /// Whether URLs can be signed (a key is configured).
    pub fn can_sign(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Whether unsigned URLs are refused.
    pub fn required(&self) -> bool {
        self.required
    }

    fn mac(key: &[u8; 32], path: &str, canonical: &str) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(key);
        h.update(path.as_bytes());
        h.update(b"?");
        h.update(canonical.as_bytes());
        *h.finalize().as_bytes()
    }

    /// `path?query` with `&s=<mac>` appended (any `s` in `query` is replaced). `None` without a key.
    pub fn sign(&self, path: &str, query: &str) -> Option<String> {
        let key = self.keys.first()?;
        let (canonical, rest) = canonical(&Query::parse(query));
        let mac = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Self::mac(key, path, &canonical));
        Some(if rest.is_empty() {
            format!("{path}?s={mac}")
        } else {
            format!("{path}?{rest}&s={mac}")
        })
    }

    /// `/img/<key>[?query]` with the key's segments escaped, signed when a key is set.
    pub fn image_path(&self, storage_key: &str, query: &str) -> String {
        let path = format!("/img/{}", utf8_percent_encode(storage_key, SEGMENT));
        match self.sign(&path, query) {
            Some(signed) => signed,
            None if query.is_empty() => path,
            None => format!("{path}?{query}"),
        }
    }

    /// Check a request; returns the query without `s` and `expires`. Unsigned requests pass when
    /// signatures are not required; a present signature is always verified.
    pub fn check(&self, path: &str, query: Query, now_secs: u64) -> Result<Query, SignatureError> {
        self.verify(path, query, now_secs).map(|(q, _)| q)
    }

    /// `check`, also saying whether a valid signature was present, and until when (`Some(None)`:
    /// signed without `expires`): a signed URL is a capability that opens private images.
    pub fn verify(
        &self,
        path: &str,
        query: Query,
        now_secs: u64,
    ) -> Result<(Query, Option<Option<u64>>), SignatureError> {
        if self.keys.is_empty() && !self.required {
            // Signing not configured: `s`/`expires` are ordinary (unknown) parameters.
            return Ok((query, None));
        }
        let value = |name: &str| {
            query
                .pairs()
                .iter()
                .rev()
                .find(|p| p.raw_key() == name)
                .map(|p| p.raw.split_once('=').map_or("", |(_, v)| v))
        };
        let (sig, expires) = (value("s"), value("expires"));
        let stripped = Query::from_pairs(
            query
                .pairs()
                .iter()
                .filter(|p| p.raw_key() != "s" && p.raw_key() != "expires")
                .cloned()
                .collect(),
        );
        let Some(sig) = sig else {
            return if self.required {
                Err(SignatureError::Missing)
            } else {
                Ok((stripped, None))
            };
        };
        let given = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| SignatureError::Invalid)?;
        let (canonical, _) = canonical(&query);
        let ok = self.keys.iter().fold(false, |acc, k| {
            acc | bool::from(Self::mac(k, path, &canonical).as_slice().ct_eq(&given))
        });
        if !ok {
            return Err(SignatureError::Invalid);
        }
        let until = match expires {
            Some(e) => {
                let at: u64 = e.parse().map_err(|_| SignatureError::Invalid)?;
                if at <= now_secs {
                    return Err(SignatureError::Expired);
                }
                Some(at)
            }
            None => None,
        };
        Ok((stripped, Some(until)))
    }
}

/// The signed form of a query: its pairs without `s`, sorted; and the same pairs in their sent
/// order (to rebuild a URL).
fn canonical(query: &Query) -> (String, String) {
    let pairs: Vec<&str> = query
        .pairs()
        .iter()
        .filter(|p| p.raw_key() != "s")
        .map(|p| p.raw.as_str())
        .collect();
    let mut sorted = pairs.clone();
    sorted.sort_unstable();
    (sorted.join("&"), pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &Signer, path: &str, q: &str, now: u64) -> Result<String, SignatureError> {
        s.check(path, Query::parse(q), now).map(|q| q.raw())
    }

    fn signer(keys: &[&str], required: bool) -> Signer {
        Signer::new(&SecurityConfig {
            signing_keys: keys.iter().map(|k| Secret((*k).into())).collect(),
            require_signature: required,
            presets_only: false,
        })
    }

    #[test]
    fn signed_urls_verify_and_tampering_fails() {
        let s = signer(&["k1", "k2"], true);
        let url = s.sign("/img/a.jpg", "w=300&fm=webp").unwrap();
        let (path, query) = url.split_once('?').unwrap();
        assert_eq!(check(&s, path, query, 0), Ok("w=300&fm=webp".into()));
        // Reordered pairs still verify (canonical = sorted).
        let sig = query.rsplit_once("s=").unwrap().1;
        assert!(check(&s, path, &format!("fm=webp&s={sig}&w=300"), 0).is_ok());
        assert_eq!(
            check(&s, path, &query.replace("w=300", "w=3000"), 0),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            check(&s, "/img/b.jpg", query, 0),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            check(&s, path, "w=300&fm=webp", 0),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            check(&s, path, "w=300&s=!!", 0),
            Err(SignatureError::Invalid)
        );
        // Rotation: a URL signed by the second key verifies; one by an unknown key does not.
        let old = signer(&["k2"], true).sign("/img/a.jpg", "w=1").unwrap();
        let (p, q) = old.split_once('?').unwrap();
        assert!(check(&s, p, q, 0).is_ok());
        let other = signer(&["k3"], true).sign("/img/a.jpg", "w=1").unwrap();
        let (p, q) = other.split_once('?').unwrap();
        assert_eq!(check(&s, p, q, 0), Err(SignatureError::Invalid));
    }

    #[test]
    fn expires_is_signed_and_enforced() {
        let s = signer(&["k"], true);
        let url = s.sign("/img/a.jpg", "w=10&expires=1000").unwrap();
        let (p, q) = url.split_once('?').unwrap();
        assert_eq!(check(&s, p, q, 999), Ok("w=10".into()));
        assert_eq!(check(&s, p, q, 1000), Err(SignatureError::Expired));
        assert_eq!(
            check(&s, p, &q.replace("1000", "9999"), 0),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn optional_signatures_still_verify_when_present() {
        let s = signer(&["k"], false);
        assert_eq!(check(&s, "/img/a.jpg", "w=1", 0), Ok("w=1".into()));
        assert_eq!(
            check(&s, "/img/a.jpg", "w=1&s=AAAA", 0),
            Err(SignatureError::Invalid)
        );
    }
}
