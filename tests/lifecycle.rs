//! The process as an operator sees it: `kill -9` during concurrent uploads loses nothing and
//! leaves nothing half-done; SIGTERM lets in-flight requests finish and refuses new ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::*;
use common::{free_port, spawn_binary as spawn};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

async fn all_images(api: &Api) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = api
            .get(&format!("/api/v1/images?limit=100&cursor={cursor}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        out.extend(v["images"].as_array().unwrap().iter().cloned());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_concurrent_uploads_leaves_no_orphan_and_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    let mut next = 0usize;
    for round in 0..3 {
        let port = free_port();
        let mut child = spawn(&data, port, &[]);
        let api = Api {
            base: format!("http://127.0.0.1:{port}"),
            key: Some(ADMIN.into()),
        };
        // Four uploaders, each sending distinct images (some in batches of 3) until the kill.
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let api = api.clone();
                let start = next + t * 1000;
                tokio::spawn(async move {
                    let mut ok = Vec::new();
                    for i in 0.. {
                        let n = start + i * 3;
                        let form = Form::new()
                            .file("files[]", "a.png", &distinct_png(n))
                            .file("files[]", "b.png", &distinct_png(n + 1))
                            .file("files[]", "c.jpg", &fixture_variant(n + 2));
                        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
                        let sent = common::client()
                            .post(format!("{}/api/v1/images", api.base))
                            .header("x-api-key", ADMIN)
                            .header("content-type", ct)
                            .body(form.body())
                            .send()
                            .await;
                        match sent {
                            Ok(r) if r.status() == 201 => {
                                // Killed while sending the answer: not acknowledged.
                                let Ok(body) = r.bytes().await else { return ok };
                                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                                for img in v["images"].as_array().unwrap() {
                                    ok.push(img["key"].as_str().unwrap().to_string());
                                }
                            }
                            Ok(r) => panic!("upload answered {}", r.status()),
                            Err(_) => return ok, // the server died
                        }
                    }
                    ok
                })
            })
            .collect();
        // Let some land, then kill -9 in the middle of the rest.
        tokio::time::sleep(Duration::from_millis(700 + 300 * round)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        for t in tasks {
            acknowledged.extend(t.await.unwrap());
        }
        next += 100_000;
    }
    assert!(
        acknowledged.len() >= 6,
        "too few uploads landed before the kills: {}",
        acknowledged.len()
    );
    // Restart: the start-up sweep runs before serving.
    let port = free_port();
    let mut child = spawn(&data, port, &[]);
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        key: Some(ADMIN.into()),
    };
    let rows = all_images(&api).await;
    let row_keys: BTreeSet<String> = rows
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect();
    let images = data.join("images");
    let files: BTreeSet<String> = files_under(&images.join("default"))
        .into_iter()
        .map(|f| format!("default/{f}"))
        .collect();
    // Every acknowledged upload survived; rows and objects match one to one.
    assert!(
        acknowledged.is_subset(&row_keys),
        "an acknowledged upload is missing"
    );
    assert_eq!(row_keys, files, "orphan object or row without object");
    assert!(
        files_under(&images.join(".refract-tmp")).is_empty(),
        "half-written temp files left"
    );
    // No half-written file: every object is whole (its blake3 is the row's) and decodes.
    for img in &rows {
        let bytes = std::fs::read(images.join(img["key"].as_str().unwrap())).unwrap();
        assert_eq!(
            blake3::hash(&bytes).to_hex().as_str(),
            img["blake3"].as_str().unwrap()
        );
        image::load_from_memory(&bytes).expect("stored object decodes");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A distinct real JPEG: the rocket photo with a COM segment carrying `n`.
fn fixture_variant(n: usize) -> Vec<u8> {
    let jpeg = fixture("rocket-640x427-adobergb.jpg");
    let text = format!("variant {n}");
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&u16::try_from(text.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_requests_finish_and_refuses_new_ones() {
    let origin = common::http_origin(std::path::PathBuf::from(common::FIXTURES));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = spawn(
        &dir.path().join("data"),
        port,
        &[
            ("REFRACT__STORAGE__BACKEND", "http"),
            ("REFRACT__STORAGE__BASE_URL", &origin.base),
            ("REFRACT__STORAGE__HTTP_ALLOW_NETWORKS", "127.0.0.1"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    // The origin takes 3 s to answer /slow/: this request is in flight during the SIGTERM.
    let slow = tokio::spawn({
        let url = format!("{base}/img/slow/dice-800x600-alpha.png?w=100");
        async move { common::get(&url, None).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // New connections are refused while the old request drains.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "a new connection was accepted after SIGTERM"
    );
    let (st, _, body) = slow.await.unwrap();
    assert_eq!(
        (st, common::dims(&body).0),
        (200, 100),
        "the in-flight request finished"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_a_port_in_use_fails_to_start() {
    // Every event loop accepts from one listening socket, bound once: the port is not shared
    // with another process by accident.
    let first = common::start(|_| {});
    let addr = first.base.trim_start_matches("http://").to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = refract::config::Config::default();
    cfg.server.listen = addr.clone();
    cfg.server.data_dir = dir.path().to_path_buf();
    let r = refract::run(cfg, std::future::pending(), |_| {}).await;
    let e = r.expect_err("the second server must not start");
    assert!(e.contains("cannot listen") && e.contains(&addr), "{e}");
    // The first one still answers.
    let (st, _, _) = common::get(&first.url("/health"), None).await;
    assert_eq!(st, 200);
}
