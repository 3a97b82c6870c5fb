//! The persistent variant tier (survives a restart, bounded in size, shrugs off a corrupt
//! object), the AVIF time budget (WebP now, AVIF later) and the storage stat cache, on a real
//! server over a real folder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROCKET: &str = "/img/rocket-640x427-adobergb.jpg";

/// Every file under `dir` (recursively), skipping the staging folder.
fn stored(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == ".refract-tmp") {
            continue;
        }
        if p.is_dir() {
            out.extend(stored(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Wait (at most 20 s) until `cond` holds for the files under `dir`.
async fn wait_for(dir: &Path, what: &str, cond: impl Fn(&[PathBuf]) -> bool) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let files = stored(dir);
        if cond(&files) {
            return files;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {files:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_tier_survives_a_restart() {
    let s = start(|_| {});
    let cache = s.data_dir().join("cache");
    let url = format!("{ROCKET}?w=200&fm=webp");
    let (st, h, first) = get(&s.url(&url), None).await;
    assert_eq!((st, header(&h, "x-cache")), (200, Some("MISS")));
    let files = wait_for(&cache, "the variant on disk", |f| f.len() == 1).await;
    assert_eq!(
        std::fs::read(&files[0]).unwrap(),
        first,
        "stored bytes = served bytes"
    );
    assert!(metric(&s, "refract_persistent_cache_bytes").await >= first.len() as u64);

    let s = s.restart(|_| {});
    // What is on disk is indexed (in the background) against the bound.
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&s, "refract_persistent_cache_bytes").await != first.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "the stored variant was not indexed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, h, again) = get(&s.url(&url), None).await;
    assert_eq!((st, header(&h, "x-cache")), (200, Some("HIT-PERSISTENT")));
    assert_eq!(header(&h, "content-type"), Some("image/webp"));
    assert!(again == first);
    assert_eq!(
        metric(&s, "refract_transforms_total").await,
        0,
        "no transcode"
    );
    // Now it is in memory too.
    let (_, h, _) = get(&s.url(&url), None).await;
    assert_eq!(header(&h, "x-cache"), Some("HIT"));
}

/// The persistent tier's byte count, read synchronously (for `wait_for`'s condition).
fn metric_now(s: &Server) -> u64 {
    let url = s.url("/metrics");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_, _, body) = get(&url, None).await;
            String::from_utf8(body)
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("refract_persistent_cache_bytes "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap()
        })
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn persistent_tier_is_bounded_and_evicts_least_recently_used() {
    // Each 300 px JPEG of the rocket is ~8-9 KB: room for about three.
    let s = start(|c| {
        c.cache.memory_bytes = 0;
        c.cache.persistent.max_bytes = 30_000;
    });
    let cache = s.data_dir().join("cache");
    let mut total = 0;
    for w in [300, 301, 302, 303, 304, 305, 306, 307] {
        let (st, _, body) = get(&s.url(&format!("{ROCKET}?w={w}&fm=jpeg")), None).await;
        assert_eq!(st, 200);
        total += body.len();
    }
    assert!(total > 60_000, "the test writes twice the bound: {total}");
    // Writes land in the background: wait until the last one has, and has evicted.
    let size = |f: &[PathBuf]| -> u64 {
        f.iter()
            .filter_map(|p| p.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    let files = wait_for(&cache, "eviction to the bound", |f| {
        !f.is_empty() && size(f) <= 30_000 && size(f) == metric_now(&s)
    })
    .await;
    assert!(files.len() < 8, "some were evicted: {}", files.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_persisted_variant_is_a_miss_not_an_error() {
    let s = start(|_| {});
    let cache = s.data_dir().join("cache");
    let url = format!("{ROCKET}?w=120&fm=png");
    let (_, _, good) = get(&s.url(&url), None).await;
    let files = wait_for(&cache, "the variant on disk", |f| f.len() == 1).await;
    let s = s.restart(|_| std::fs::write(&files[0], b"not an image").unwrap());
    let (st, h, body) = get(&s.url(&url), None).await;
    assert_eq!((st, header(&h, "x-cache")), (200, Some("MISS")));
    assert_eq!(magic(&body), "png");
    assert_eq!(dims(&body), dims(&good));
    // The bad object is replaced by a good one.
    wait_for(&cache, "the rewritten variant", |f| {
        f.len() == 1 && std::fs::read(&f[0]).is_ok_and(|b| b == body)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn avif_over_budget_answers_webp_now_and_avif_later() {
    // A 1 ms budget: every AVIF is "too slow" for the request path.
    let s = start(|c| {
        vary(c);
        c.limits.avif_budget_ms = 1;
    });
    let url = s.url(&format!("{ROCKET}?w=320"));
    let accept = Some("image/avif,image/webp,*/*;q=0.8");
    let (st, h, body) = get(&url, accept).await;
    assert_eq!((st, magic(&body)), (200, "webp"));
    assert_eq!(header(&h, "cache-control"), Some("public, max-age=60"));
    assert_eq!(header(&h, "vary"), Some("Accept"));
    assert_eq!(dims(&body), (320, 214));
    // The AVIF arrives in the background; then it is what the same request gets.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (h, body) = loop {
        let (st, h, body) = get(&url, accept).await;
        assert_eq!(st, 200);
        if magic(&body) == "avif" {
            break (h, body);
        }
        assert!(Instant::now() < deadline, "no AVIF after 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(header(&h, "content-type"), Some("image/avif"));
    assert_ne!(header(&h, "cache-control"), Some("public, max-age=60"));
    assert_eq!(dims(&body), (320, 214));
    // Explicit fm=avif follows the same rule; a client without WebP gets the source's family.
    let (_, _, body) = get(&s.url(&format!("{ROCKET}?w=330&fm=avif")), None).await;
    assert_eq!(magic(&body), "webp");
    let (_, _, body) = get(
        &s.url(&format!("{ROCKET}?w=340")),
        Some("image/avif,image/jpeg"),
    )
    .await;
    assert_eq!(magic(&body), "jpeg");
}

#[tokio::test(flavor = "multi_thread")]
async fn avif_within_budget_is_encoded_on_the_request_path() {
    let s = start(|c| {
        vary(c);
        c.limits.avif_budget_ms = 60_000;
    });
    let (st, h, body) = get(
        &s.url(&format!("{ROCKET}?w=200")),
        Some("image/avif,image/webp,*/*"),
    )
    .await;
    assert_eq!((st, magic(&body)), (200, "avif"));
    assert_eq!(header(&h, "x-cache"), Some("MISS"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stat_cache_reuses_versions_briefly_and_writes_invalidate() {
    let s = start(|c| c.storage.stat_ttl_ms = 1500);
    let file = s.root.join("swap.jpg");
    std::fs::copy(s.root.join("rocket-640x427-adobergb.jpg"), &file).unwrap();
    let url = s.url("/img/swap.jpg?w=50&fm=jpeg");
    let (_, h1, b1) = get(&url, None).await;
    assert_eq!(dims(&b1), (50, 33));
    // Replaced behind Refract's back: the old version is served until the TTL passes...
    std::fs::copy(s.root.join("dice-800x600-alpha.png"), &file).unwrap();
    let (_, h2, b2) = get(&url, None).await;
    assert_eq!(header(&h1, "etag"), header(&h2, "etag"));
    assert!(b1 == b2);
    // ...then the new one.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (_, h3, b3) = get(&url, None).await;
    assert_ne!(header(&h1, "etag"), header(&h3, "etag"));
    assert_eq!(dims(&b3), (50, 38));
    // Removed behind Refract's back: a miss in the variant cache asks storage again.
    std::fs::remove_file(&file).unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (st, _, _) = get(&url, None).await;
    assert_eq!(st, 404);
}
