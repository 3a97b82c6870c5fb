//! The request memo: what an `/img` (or `/cdn-cgi/image/`) request line resolved to the last
//! time it was answered, so that the same request again, the common case for a CDN origin,
//! skips everything between the route and the memory tier: query parsing, the signature,
//! presets, parameter parsing, negotiation, the cache key and the answer's headers.
//!
//! It keeps no bytes and decides nothing. Each use re-checks what can change between two
//! identical requests, with the same calls the full path makes:
//! - the signature's `expires` (the URL, signature included, is part of the memo's key);
//! - the object's visibility (only answers anyone may see, for ever, are kept);
//! - the source's version: the `stat` the answer was made from while the stat cache would
//!   still answer it (nothing written since, no outage), else a `stat` that must find the same
//!   version, fresh (never a stale answer);
//! - the variant itself: read from the memory tier at least once a second per line (so the
//!   tier's eviction sees a hot line as used), and between those reads through a weak
//!   reference to the tier's value, void as soon as the tier drops it; any invalidation of the
//!   tier (a purge, a delete) sends every line back to the tier first. Gone from the tier means
//!   the full path. Either way the answer counts as a memory-tier hit.
//!
//! So nothing has to tell the memo of a change: a write or delete changes the `stat`, a purge
//! moves the tier's epoch, a visibility change is read on every use.
//!
//! A request with `If-None-Match` takes the full path (it may answer 304), as does a
//! `Content-Disposition` answer, an interim one (AVIF on its way), and anything opened by a
//! token or a signed grant. Each thread (each event loop) keeps its own lines, bounded in number;
//! a full memo drops an arbitrary line.

use super::key::CacheKey;
use crate::pipeline::Encoded;
use crate::storage::origin::Stat;
use http::{header, HeaderMap, HeaderValue, Method, Request};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use thread_local::ThreadLocal;

/// Request lines kept per thread (each event loop keeps its own: no lock, no shared counter).
const PER_THREAD: usize = 4096;

/// What a request line resolved to.
pub struct Resolved {
    /// The object, the `stat` of the version the answer was made from, the variant's key.
    pub storage_key: String,
    pub stat: Stat,
    pub cache_key: CacheKey,
    /// The signature's `expires` (unix seconds), when the URL carries one.
    pub until_secs: Option<u64>,
    /// The answer's headers (`X-Cache: HIT`), its body to come from the memory tier.
    pub headers: HeaderMap,
    /// The memory tier's value, as last read from it (`told_ms`), at its invalidation `epoch`.
    pub variant: Weak<Encoded>,
    pub epoch: u64,
    pub told_ms: i64,
}

impl Resolved {
    /// The variant without asking the memory tier: only within `TELL_EVERY_MS` of the last
    /// read from it, while no invalidation has happened since and the tier still holds it.
    pub fn variant_held(&self, now_ms: i64, epoch: u64) -> Option<Arc<Encoded>> {
        if now_ms >= self.told_ms.saturating_add(TELL_EVERY_MS) || epoch != self.epoch {
            return None;
        }
        self.variant.upgrade()
    }

    /// Remember the variant of `cache_key` as just read from the memory tier at `epoch`; not
    /// when the line resolves to another key by now (the full path put a newer answer while
    /// the tier was read).
    pub fn told(&mut self, cache_key: CacheKey, variant: &Arc<Encoded>, now_ms: i64, epoch: u64) {
        if self.cache_key != cache_key {
            return;
        }
        self.variant = Arc::downgrade(variant);
        self.told_ms = now_ms;
        self.epoch = epoch;
    }
}

/// How often a line reads its variant from the memory tier rather than from its weak
/// reference: so that the tier's eviction still sees a hot line as used.
const TELL_EVERY_MS: i64 = 1000;

struct Entry {
    /// The request's path and query, and its `Accept` (`""` when absent or not text).
    target: Box<str>,
    accept: Box<str>,
    resolved: Resolved,
}

/// The lines by their hash, which is already keyed (`RandomState`): not hashed again.
type Lines = RefCell<HashMap<u64, Entry, BuildHasherDefault<Prehashed>>>;

/// A `Hasher` for keys that are a keyed hash already.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The memo of one delivery plane.
pub struct Memo {
    local: ThreadLocal<Lines>,
    /// Requests answered from the memo, counted per thread.
    hits: ThreadLocal<AtomicU64>,
    hasher: RandomState,
}

impl Default for Memo {
    fn default() -> Self {
        Self {
            local: ThreadLocal::new(),
            hits: ThreadLocal::new(),
            hasher: RandomState::new(),
        }
    }
}

/// What identifies a request to the memo: its path and query, and its `Accept`. `None` for a
/// request the memo never answers (not GET/HEAD, or conditional).
pub fn request_key<B>(req: &Request<B>) -> Option<(&str, &str)> {
    if !(req.method() == Method::GET || req.method() == Method::HEAD)
        || req.headers().contains_key(header::IF_NONE_MATCH)
    {
        return None;
    }
    let target = req.uri().path_and_query()?.as_str();
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Some((target, accept))
}

impl Memo {
    fn hash(&self, target: &str, accept: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        target.hash(&mut h);
        accept.hash(&mut h);
        h.finish()
    }

    /// `f` of the entry this thread keeps for the request line, if any (`f` may change it).
    pub fn with<R>(
        &self,
        target: &str,
        accept: &str,
        f: impl FnOnce(&mut Resolved) -> R,
    ) -> Option<R> {
        let hash = self.hash(target, accept);
        let mut lines = self.local.get_or_default().try_borrow_mut().ok()?;
        let entry = lines
            .get_mut(&hash)
            .filter(|e| *e.target == *target && *e.accept == *accept)?;
        Some(f(&mut entry.resolved))
    }

    /// Keep what `target` + `accept` resolved to (replacing what it resolved to before).
    pub fn put(&self, (target, accept): (&str, &str), mut resolved: Resolved) {
        // The server sets the request id on every answer: a slot for it now, so that the
        // copy each answer takes never has to grow.
        resolved.headers.insert(
            crate::http::server::REQUEST_ID,
            HeaderValue::from_static("-"),
        );
        let hash = self.hash(target, accept);
        let Ok(mut lines) = self.local.get_or_default().try_borrow_mut() else {
            return;
        };
        if lines.len() >= PER_THREAD && !lines.contains_key(&hash) {
            if let Some(old) = lines.keys().next().copied() {
                lines.remove(&old);
            }
        }
        lines.insert(
            hash,
            Entry {
                target: target.into(),
                accept: accept.into(),
                resolved,
            },
        );
    }

    /// Count a request answered from the memo.
    pub fn hit(&self) {
        self.hits.get_or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered from the memo, on every thread.
    pub fn hits(&self) -> u64 {
        self.hits.iter().map(|h| h.load(Ordering::Relaxed)).sum()
    }

    /// How many request lines this thread keeps.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.local.get().map_or(0, |l| l.borrow().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::storage::origin::SourceVersion;

    fn version(len: u64) -> Stat {
        Stat {
            version: SourceVersion {
                etag: None,
                modified: Some(1),
                len,
            },
            fetched: std::time::Instant::now(),
            writes: 0,
        }
    }

    fn key(s: &str) -> CacheKey {
        CacheKey::variant(s, &version(1).version, "w400", "jpeg", "")
    }

    fn resolved(storage_key: &str) -> Resolved {
        Resolved {
            storage_key: storage_key.into(),
            stat: version(1),
            cache_key: key(storage_key),
            until_secs: None,
            headers: HeaderMap::new(),
            variant: Weak::new(),
            epoch: 0,
            told_ms: 0,
        }
    }

    #[test]
    fn an_entry_answers_only_its_own_line_and_accept() {
        let m = Memo::default();
        m.put(("/img/a.jpg?w=4", "image/webp"), resolved("a.jpg"));
        let found = |t: &str, a: &str| m.with(t, a, |e| e.storage_key.clone());
        assert_eq!(
            found("/img/a.jpg?w=4", "image/webp").as_deref(),
            Some("a.jpg")
        );
        assert!(found("/img/a.jpg?w=4", "").is_none());
        assert!(found("/img/a.jpg?w=5", "image/webp").is_none());
    }

    #[test]
    fn a_held_variant_is_used_only_briefly_alive_and_within_its_epoch() {
        let enc = Arc::new(Encoded {
            bytes: bytes::Bytes::from_static(b"x"),
            format: crate::pipeline::format::ImageFormat::Jpeg,
            width: 1,
            height: 1,
        });
        let mut r = resolved("a.jpg");
        assert!(r.variant_held(0, 0).is_none(), "never read from the tier");
        r.told(key("other.jpg"), &enc, 10_000, 3);
        assert!(
            r.variant_held(10_500, 3).is_none(),
            "the line resolves to another key by now"
        );
        r.told(r.cache_key, &enc, 10_000, 3);
        assert!(r.variant_held(10_500, 3).is_some());
        assert!(
            r.variant_held(11_000, 3).is_none(),
            "a second on: ask the tier"
        );
        assert!(r.variant_held(10_500, 4).is_none(), "an invalidation since");
        drop(enc);
        assert!(r.variant_held(10_500, 3).is_none(), "the tier dropped it");
    }

    #[test]
    fn it_stays_bounded() {
        let m = Memo::default();
        for i in 0..(PER_THREAD * 3) {
            m.put((&format!("/img/a.jpg?w={i}"), ""), resolved("a.jpg"));
        }
        assert_eq!(m.len(), PER_THREAD);
    }

    #[test]
    fn conditional_and_unsafe_requests_are_not_memo_keys() {
        let get = Request::get("/img/a.jpg?w=4")
            .header("accept", "image/avif")
            .body(())
            .unwrap_or_default();
        assert_eq!(request_key(&get), Some(("/img/a.jpg?w=4", "image/avif")));
        let inm = Request::get("/img/a.jpg")
            .header("if-none-match", "\"x\"")
            .body(())
            .unwrap_or_default();
        assert_eq!(request_key(&inm), None);
        let post = Request::post("/img/a.jpg").body(()).unwrap_or_default();
        assert_eq!(request_key(&post), None);
    }
}
