//! Cache keys and ETags.
//!
//! `CacheKey` = blake3(schema version ‖ storage key ‖ source version ‖ canonical transform ‖
//! output spec ‖ encoder settings), tagged with the source it derives from (64 bits of
//! blake3(storage key)), so every variant of a source can be found and purged when the source
//! is deleted. A new source version gives a new key, so an overwrite never needs a purge.
//! Invariant: plain types in, no knowledge of moka or OpenDAL.

use crate::storage::origin::SourceVersion;
use std::fmt;

/// Bump when the pipeline's output for the same inputs changes.
const SCHEMA: &str = "refract-v1";

/// Which source a variant derives from: 64 bits of blake3(storage key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceTag(pub [u8; 8]);

impl SourceTag {
    pub fn of(storage_key: &str) -> Self {
        let h = blake3::hash(storage_key.as_bytes());
        let mut t = [0u8; 8];
        t.copy_from_slice(&h.as_bytes()[..8]);
        Self(t)
    }

    /// Lower-case hex (16 digits).
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(16);
        push_hex(&mut s, &self.0);
        s
    }
}

/// A 256-bit cache key and the source it derives from.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub source: SourceTag,
    pub hash: [u8; 32],
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.hex())
    }
}

impl CacheKey {
    /// Derive the key of a transformed variant.
    pub fn variant(
        path: &str,
        v: &SourceVersion,
        canonical: &str,
        output: &str,
        settings: &str,
    ) -> Self {
        Self::of(
            path,
            &[
                "variant",
                path,
                &version_string(v),
                canonical,
                output,
                settings,
            ],
        )
    }

    /// Derive the key of an original (no transform).
    pub fn original(path: &str, v: &SourceVersion) -> Self {
        Self::of(path, &["original", path, &version_string(v)])
    }

    /// blake3 over the schema and the length-prefixed parts (so no boundary can shift).
    fn of(path: &str, parts: &[&str]) -> Self {
        let mut h = blake3::Hasher::new();
        for part in std::iter::once(SCHEMA).chain(parts.iter().copied()) {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        Self {
            source: SourceTag::of(path),
            hash: *h.finalize().as_bytes(),
        }
    }

    /// Lower-case hex of the whole key.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(64);
        push_hex(&mut s, &self.hash);
        s
    }

    /// The strong ETag, quoted: the first 128 bits of the key.
    pub fn etag(&self) -> String {
        let mut s = String::with_capacity(34);
        s.push('"');
        push_hex(&mut s, &self.hash[..16]);
        s.push('"');
        s
    }
}

/// Append `bytes` as lower-case hex (on every request: no per-byte formatting).
fn push_hex(s: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
}

fn version_string(v: &SourceVersion) -> String {
    format!(
        "{}|{}|{}",
        v.etag.as_deref().unwrap_or(""),
        v.modified.unwrap_or(0),
        v.len
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(len: u64) -> SourceVersion {
        SourceVersion {
            etag: Some("abc".into()),
            modified: Some(1),
            len,
        }
    }

    #[test]
    fn key_changes_with_every_input() {
        let base = CacheKey::variant("a.jpg", &v(1), "w=1", "fixed:jpeg", "s");
        assert_eq!(
            base,
            CacheKey::variant("a.jpg", &v(1), "w=1", "fixed:jpeg", "s")
        );
        assert_ne!(
            base,
            CacheKey::variant("b.jpg", &v(1), "w=1", "fixed:jpeg", "s")
        );
        assert_ne!(
            base,
            CacheKey::variant("a.jpg", &v(2), "w=1", "fixed:jpeg", "s")
        );
        assert_ne!(
            base,
            CacheKey::variant("a.jpg", &v(1), "w=2", "fixed:jpeg", "s")
        );
        assert_ne!(
            base,
            CacheKey::variant("a.jpg", &v(1), "w=1", "fixed:png", "s")
        );
        assert_ne!(
            base,
            CacheKey::variant("a.jpg", &v(1), "w=1", "fixed:jpeg", "t")
        );
        // Length-prefixing: moving a boundary changes the key.
        assert_ne!(
            CacheKey::variant("ab", &v(1), "c", "o", "s"),
            CacheKey::variant("a", &v(1), "bc", "o", "s")
        );
    }

    #[test]
    fn variants_carry_their_source() {
        let a = CacheKey::variant("a.jpg", &v(1), "w=1", "fixed:jpeg", "s");
        let b = CacheKey::variant("a.jpg", &v(2), "w=9", "fixed:png", "t");
        assert_eq!(a.source, b.source);
        assert_eq!(a.source, SourceTag::of("a.jpg"));
        assert_ne!(a.source, SourceTag::of("b.jpg"));
        assert_eq!(a.source.hex().len(), 16);
    }

    #[test]
    fn etag_is_quoted_strong_hex() {
        let e = CacheKey::original("a", &v(1)).etag();
        assert!(e.starts_with('"') && e.ends_with('"') && e.len() == 34);
    }
}
