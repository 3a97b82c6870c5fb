//! Avatars on a real server (and the real binary for the crash test): the generated default,
//! storing, replacing (the old object gone, variants purged), FileHarbor's POST form, deleting,
//! two clients replacing at once, and kill -9 during a replacement.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::*;
use common::*;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn put_avatar(api: &Api, user: &str, bytes: &[u8]) -> Resp {
    let f = Form::new().file("file", "me.png", bytes);
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    api.send(
        "PUT",
        &format!("/api/v1/avatars/{user}"),
        &[("content-type", ct.as_str())],
        Some(f.body()),
    )
    .await
}

/// Where `GET /api/v1/avatars/{user}` points (None: the identicon is served directly).
async fn location(base: &str, user: &str, query: &str) -> Option<String> {
    let r = no_redirects()
        .get(format!("{base}/api/v1/avatars/{user}{query}"))
        .send()
        .await
        .unwrap();
    match r.status().as_u16() {
        302 => Some(r.headers()["location"].to_str().unwrap().to_string()),
        200 => {
            assert_eq!(header(r.headers(), "content-type"), Some("image/png"));
            None
        }
        s => panic!("status {s}"),
    }
}

fn avatar_files(images: &std::path::Path) -> Vec<String> {
    files_under(&images.join("default/.avatars"))
}

#[tokio::test(flavor = "multi_thread")]
async fn avatars_are_stored_replaced_and_never_broken() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    // No avatar yet: a generated identicon at the same URL, stable per user.
    let (st, h, a1) = get(&s.url("/api/v1/avatars/alice"), None).await;
    assert_eq!((st, dims(&a1)), (200, (256, 256)));
    assert!(header(&h, "etag").is_some());
    let (_, _, a2) = get(&s.url("/api/v1/avatars/alice"), None).await;
    let (_, _, b) = get(&s.url("/api/v1/avatars/bob?w=64"), None).await;
    assert_eq!(a1, a2);
    assert_eq!(dims(&b), (64, 64));
    // Store one: GET answers a 302 to its square /img variant.
    let r = put_avatar(&api, "alice", &distinct_png(1)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let loc = location(&s.base, "alice", "").await.unwrap();
    assert!(
        loc.contains("/img/default/.avatars/")
            && loc.contains("w=256")
            && loc.contains("fit=cover"),
        "{loc}"
    );
    let (st, _, img) = get(&loc, None).await;
    assert_eq!((st, dims(&img)), (200, (256, 256)));
    let loc50 = location(&s.base, "alice", "?w=50&h=50").await.unwrap();
    assert_eq!(dims(&get(&loc50, None).await.2), (50, 50));
    // Replace: the new one answers, the old object is gone.
    let old = avatar_files(&s.root);
    assert_eq!(old.len(), 1);
    assert_eq!(
        put_avatar(&api, "alice", &distinct_png(2)).await.status,
        200
    );
    let now = avatar_files(&s.root);
    assert_eq!(now.len(), 1);
    assert_ne!(now, old);
    let (st, _, _) = get(&loc, None).await;
    assert_eq!(st, 404, "the old avatar's URL serves nothing any more");
    // FileHarbor's form.
    let f = Form::new()
        .file("file", "b.png", &distinct_png(3))
        .text("externalUserId", "bob");
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let r = api
        .send(
            "POST",
            "/api/v1/avatars",
            &[("content-type", ct.as_str())],
            Some(f.body()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(location(&s.base, "bob", "").await.is_some());
    // Delete: the identicon again, no object left.
    assert_eq!(api.delete("/api/v1/avatars/alice").await.status, 200);
    assert!(location(&s.base, "alice", "").await.is_none());
    assert_eq!(avatar_files(&s.root).len(), 1, "only bob's");
    assert_eq!(api.delete("/api/v1/avatars/alice").await.status, 404);
    // Refusals: not an image, two files, no key.
    assert_eq!(put_avatar(&api, "carol", b"not an image").await.status, 415);
    let two =
        Form::new()
            .file("file", "a.png", &distinct_png(4))
            .file("file", "b.png", &distinct_png(5));
    let r = api
        .send(
            "PUT",
            "/api/v1/avatars/carol",
            &[("content-type", ct.as_str())],
            Some(two.body()),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        put_avatar(&Api::new(&s, None), "carol", &distinct_png(6))
            .await
            .status,
        401
    );
    assert_eq!(avatar_files(&s.root).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clients_replacing_at_once_leave_one_avatar_and_no_orphan() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    assert_eq!(
        put_avatar(&api, "dora", &distinct_png(10)).await.status,
        200
    );
    for round in 0..3 {
        let tries = (0..4).map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                put_avatar(&api, "dora", &distinct_png(20 + round * 10 + i))
                    .await
                    .status
            })
        });
        for r in futures_util::future::join_all(tries).await {
            assert!(matches!(r.unwrap(), 200 | 409));
        }
        assert_eq!(avatar_files(&s.root).len(), 1, "round {round}");
        let loc = location(&s.base, "dora", "").await.unwrap();
        assert_eq!(get(&loc, None).await.0, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_replacement_leaves_the_old_or_the_new_avatar_and_nothing_else() {
    let big = std::fs::read(std::path::Path::new(FIXTURES).join("path-2560x1600-icc.jpg")).unwrap();
    for (i, delay_ms) in [0u64, 15, 40, 80, 150].into_iter().enumerate() {
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let api = Api {
            base: base.clone(),
            key: Some(ADMIN.to_string()),
        };
        let first = distinct_png(100 + i);
        {
            let _server = spawn_guarded(data.path(), port, &[]);
            assert_eq!(put_avatar(&api, "erin", &first).await.status, 200);
            let api2 = api.clone();
            let big2 = big.clone();
            let replacing =
                tokio::spawn(async move { put_avatar(&api2, "erin", &big2).await.status });
            tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            drop(_server); // SIGKILL
            let _ = replacing.await;
        }
        let _server = spawn_guarded(data.path(), port, &[]);
        let files = avatar_files(&data.path().join("images"));
        assert_eq!(files.len(), 1, "kill after {delay_ms} ms: {files:?}");
        let loc = location(&base, "erin", "")
            .await
            .expect("an avatar remains");
        let (st, _, body) = get(&loc, None).await;
        assert_eq!(st, 200, "kill after {delay_ms} ms");
        assert!(matches!(dims(&body), (256, 256)));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_avatar_bytes_again_keep_one_working_avatar() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let png = distinct_png(7);
    for _ in 0..3 {
        assert_eq!(put_avatar(&api, "fred", &png).await.status, 200);
        assert_eq!(avatar_files(&s.root).len(), 1);
        let loc = location(&s.base, "fred", "").await.unwrap();
        assert_eq!(get(&loc, None).await.0, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn avatars_count_towards_the_byte_quota() {
    let small = distinct_png(1);
    let quota = small.len() as u64 * 3;
    let s = start_api(move |c| c.quota.default_bytes = quota);
    let api = Api::admin(&s);
    assert_eq!(put_avatar(&api, "gus", &small).await.status, 200);
    let used = api.get("/api/v1/stats").await.json()["quota"]["used_bytes"]
        .as_i64()
        .unwrap();
    assert!(used > 0 && used <= small.len() as i64, "{used}");
    // Replacing does not count the old one twice; something too big is refused, nothing kept.
    assert_eq!(put_avatar(&api, "gus", &distinct_png(2)).await.status, 200);
    let big = std::fs::read(std::path::Path::new(FIXTURES).join("path-2560x1600-icc.jpg")).unwrap();
    assert!(big.len() as u64 > quota);
    let r = put_avatar(&api, "hal", &big).await;
    assert_eq!((r.status, r.code().as_str()), (507, "INSUFFICIENT_STORAGE"));
    assert_eq!(avatar_files(&s.root).len(), 1);
}
