//! The conditions an origin behind a CDN lives in, tried on the real binary: clients that hang up
//! while their work is queued or running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{free_port, rss_mib, spawn_guarded};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const HEAVY: &str = "seeding-5312x2988-progressive.jpg";

async fn metric(base: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

/// Send `n` requests for distinct heavy variants and hang up `after` later, without reading.
async fn abandon_wave(port: u16, first: usize, n: usize, after: Duration) {
    let mut conns = Vec::new();
    for i in first..first + n {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let req = format!(
            "GET /img/{HEAVY}?w={}&fm=avif HTTP/1.1\r\nHost: t\r\nAccept: image/avif\r\n\r\n",
            400 + i
        );
        s.write_all(req.as_bytes()).await.unwrap();
        conns.push(s);
    }
    tokio::time::sleep(after).await;
    drop(conns);
}

/// Poll until the CPU pool is idle (no waiter, no running job); returns how long it took.
async fn until_idle(base: &str) -> Duration {
    let t0 = Instant::now();
    loop {
        let waiting = metric(base, "refract_cpu_waiting").await;
        let running = metric(base, "refract_cpu_running").await;
        if waiting == 0 && running == 0 {
            return t0.elapsed();
        }
        // A hang guard, not a speed check: the queue must drain rather than stay stuck.
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "pool stuck: {waiting} waiting, {running} running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn server_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("data/images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::copy(Path::new(common::FIXTURES).join(HEAVY), images.join(HEAVY)).unwrap();
    let data = dir.path().join("data");
    (dir, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_heavy_requests_release_the_queue_slots_and_memory() {
    let (_dir, data) = server_dir();
    let port = free_port();
    let child = spawn_guarded(
        &data,
        port,
        &[
            ("REFRACT__LIMITS__WORKERS", "2"),
            ("REFRACT__LIMITS__QUEUE_DEPTH", "256"),
            ("REFRACT__LIMITS__AVIF_BUDGET_MS", "0"),
            ("REFRACT__CACHE__PERSISTENT__MAX_BYTES", "0"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = common::client();
    // Warm up: one transform of the heavy source, so "idle" includes a used pipeline.
    let r = http
        .get(format!("{base}/img/{HEAVY}?w=300&fm=avif"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let idle = rss_mib(child.id());

    let mut peak = idle;
    for wave in 0..2 {
        abandon_wave(port, wave * 300, 300, Duration::from_millis(600)).await;
        peak = peak.max(rss_mib(child.id()));
    }
    let drained = until_idle(&base).await;
    let after = rss_mib(child.id());

    // Fresh transforms are served again: eight at once, every one 200.
    let fresh: Vec<_> = (0..8)
        .map(|i| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                let r = http
                    .get(format!("{base}/img/{HEAVY}?w={}&fm=avif", 500 + i))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body = r.bytes().await.unwrap();
                (status, body.len())
            })
        })
        .collect();
    for f in fresh {
        let (status, len) = f.await.unwrap();
        assert_eq!(status, 200, "a fresh transform after the storm");
        assert!(len > 0);
    }
    assert_eq!(metric(&base, "refract_cpu_waiting").await, 0);
    eprintln!("storm: idle {idle} MiB, peak {peak} MiB, after {after} MiB, drained in {drained:?}");
    // Memory held by abandoned requests is given back: within 200 MiB of idle (the peak of a
    // stuck queue was near 1 GiB).
    assert!(
        after <= idle + 200,
        "RSS after the storm {after} MiB vs idle {idle} MiB"
    );
    drop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coalesced_miss_whose_first_requester_leaves_still_completes_for_the_others() {
    let (_dir, data) = server_dir();
    let port = free_port();
    let _child = spawn_guarded(&data, port, &[("REFRACT__LIMITS__AVIF_BUDGET_MS", "0")]);
    let base = format!("http://127.0.0.1:{port}");
    let path = format!("/img/{HEAVY}?w=640&fm=avif");
    // The first requester asks and hangs up while the variant is being made.
    let mut first = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    first.write_all(req.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    // A second one joins the same miss, then the first goes away.
    let second = tokio::spawn({
        let url = format!("{base}{path}");
        async move { reqwest::get(url).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    drop(first);
    let r = second.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/avif");
    assert!(!r.bytes().await.unwrap().is_empty());
    // It landed in the cache once: the next request is a hit.
    let again = reqwest::get(format!("{base}{path}")).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["x-cache"], "HIT");
    until_idle(&base).await;
    assert_eq!(metric(&base, "refract_cpu_waiting").await, 0);
}
