//! Storage backends through OpenDAL: a real S3 server (SeaweedFS, started by the test command,
//! see `.ci/test.sh`), an S3 origin that is down, a real HTTP origin and its timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::s3::*;
use common::*;
use refract::config::Config;
use refract::storage::origin::Backend;

#[tokio::test(flavor = "multi_thread")]
async fn s3_backend_serves_originals_and_transforms() {
    let (endpoint, bucket, key, secret) = s3_env();
    let prefix = format!("/t{}/", std::process::id());
    // Put a fixture into the bucket with OpenDAL directly.
    let op = s3_operator(&endpoint, &bucket, &key, &secret, &prefix);
    let bytes = std::fs::read(format!("{FIXTURES}/rocket-640x427-adobergb.jpg")).unwrap();
    op.write("photos/rocket.jpg", bytes.clone()).await.unwrap();

    let s = start(|c| s3_config(c, &endpoint, &bucket, &key, &secret, &prefix));
    let (st, h, body) = get(&s.url("/img/photos/rocket.jpg"), None).await;
    assert_eq!((st, body.len()), (200, bytes.len()));
    assert!(body == bytes);
    assert!(header(&h, "etag").is_some());
    let (st, h, body) = get(&s.url("/img/photos/rocket.jpg?w=100&fm=webp"), None).await;
    assert_eq!((st, magic(&body), dims(&body)), (200, "webp", (100, 67)));
    assert_eq!(header(&h, "x-cache"), Some("MISS"));
    let r = client()
        .get(s.url("/img/photos/rocket.jpg"))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..], &bytes[..10]);
    let (st, _, body) = get(&s.url("/img/photos/missing.jpg?w=10"), None).await;
    assert_eq!((st, error_code(&body).as_str()), (404, "NOT_FOUND"));
    // A new version put behind Refract's back is served once the stat cache entry (1.5 s here)
    // expires: the version is part of the cache key, so no purge is needed.
    let (_, h1, _) = get(&s.url("/img/photos/rocket.jpg?w=50"), None).await;
    let dice = std::fs::read(format!("{FIXTURES}/dice-800x600-alpha.png")).unwrap();
    op.write("photos/rocket.jpg", dice).await.unwrap();
    let (_, h_cached, _) = get(&s.url("/img/photos/rocket.jpg?w=50"), None).await;
    assert_eq!(
        header(&h1, "etag"),
        header(&h_cached, "etag"),
        "stat reused"
    );
    assert_eq!(header(&h_cached, "x-cache"), Some("HIT"));
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let (_, h2, body) = get(&s.url("/img/photos/rocket.jpg?w=50"), None).await;
    assert_ne!(header(&h1, "etag"), header(&h2, "etag"));
    assert_eq!(dims(&body), (50, 38));
    // Wrong credentials are an origin failure (502), not the client's.
    let bad = start(|c| s3_config(c, &endpoint, &bucket, &key, "wrong-secret", &prefix));
    let (st, _, body) = get(&bad.url("/img/photos/rocket.jpg?w=10"), None).await;
    assert_eq!((st, error_code(&body).as_str()), (502, "ORIGIN_ERROR"));
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_persistent_cache_tier_serves_after_a_restart() {
    let (endpoint, bucket, key, secret) = s3_env();
    let prefix = format!("/p{}/", std::process::id());
    let cache_prefix = format!("/p{}-cache/", std::process::id());
    let op = s3_operator(&endpoint, &bucket, &key, &secret, &prefix);
    let bytes = std::fs::read(format!("{FIXTURES}/rocket-640x427-adobergb.jpg")).unwrap();
    op.write("rocket.jpg", bytes).await.unwrap();
    let cache_prefix2 = cache_prefix.clone();
    let s = start(move |c| {
        s3_config(c, &endpoint, &bucket, &key, &secret, &prefix);
        c.cache.persistent.backend = refract::delivery::persist::PersistentBackend::S3;
        c.cache.persistent.path = Some(cache_prefix2);
    });
    let (endpoint, bucket, key, secret) = s3_env();
    let cache_op = s3_operator(&endpoint, &bucket, &key, &secret, &cache_prefix);
    let url = "/img/rocket.jpg?w=140&fm=jpeg";
    let (st, h, first) = get(&s.url(url), None).await;
    assert_eq!((st, header(&h, "x-cache")), (200, Some("MISS")));
    // The variant lands in the bucket under the cache prefix (written in the background).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let listed = loop {
        let l = cache_op.list_with("").recursive(true).await.unwrap();
        let files: Vec<_> = l.into_iter().filter(|e| e.metadata().is_file()).collect();
        if !files.is_empty() {
            break files;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no variant in the bucket"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(listed.len(), 1);
    let stored = cache_op.read(listed[0].path()).await.unwrap().to_vec();
    assert!(stored == first);
    let s = s.restart(|_| {});
    let (st, h, again) = get(&s.url(url), None).await;
    assert_eq!((st, header(&h, "x-cache")), (200, Some("HIT-PERSISTENT")));
    assert!(again == first);
    assert_eq!(metric(&s, "refract_transforms_total").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_origin_down_answers_502() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = start(|c| {
        s3_config(
            c,
            &format!("http://127.0.0.1:{port}"),
            "images",
            "k",
            "s",
            "/",
        )
    });
    for path in ["/img/a.jpg?w=10", "/img/a.jpg"] {
        let (st, h, body) = get(&s.url(path), None).await;
        assert_eq!(
            (st, error_code(&body).as_str()),
            (502, "ORIGIN_ERROR"),
            "{path}"
        );
        assert_eq!(header(&h, "cache-control"), Some("no-store"));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            !v.to_string().contains("127.0.0.1"),
            "origin details stay out of the body"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http_origin_is_a_transforming_reverse_proxy() {
    let origin = http_origin(std::path::PathBuf::from(FIXTURES));
    let s = start(|c| {
        c.storage.backend = Backend::Http;
        c.storage.base_url = Some(origin.base.clone());
        c.storage.timeout_ms = 1000;
        c.storage.http_allow_networks = vec!["127.0.0.1".into()];
    });
    let (st, _, body) = get(&s.url("/img/orientation/Landscape_3.jpg?w=60&fm=png"), None).await;
    assert_eq!((st, dims(&body)), (200, (60, 45)));
    let (st, h, body) = get(&s.url("/img/dice-800x600-alpha.png"), None).await;
    assert_eq!((st, header(&h, "content-type")), (200, Some("image/png")));
    assert_eq!(
        body.len(),
        std::fs::metadata(format!("{FIXTURES}/dice-800x600-alpha.png"))
            .unwrap()
            .len() as usize
    );
    let (st, _, body) = get(&s.url("/img/nothing-here.jpg?w=60"), None).await;
    assert_eq!((st, error_code(&body).as_str()), (404, "NOT_FOUND"));
    // The origin answers after 3 s; the storage timeout is 1 s.
    let (st, _, body) = get(&s.url("/img/slow/dice-800x600-alpha.png?w=60"), None).await;
    assert_eq!((st, error_code(&body).as_str()), (504, "ORIGIN_TIMEOUT"));
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_backend_stores_uploads_and_deletes_them() {
    use common::api::*;
    let (endpoint, bucket, key, secret) = s3_env();
    let prefix = format!("/u{}/", std::process::id());
    let s = start_api(|c| s3_config(c, &endpoint, &bucket, &key, &secret, &prefix));
    let api = Api::admin(&s);
    let bytes = fixture("rocket-640x427-adobergb.jpg");
    let img = api
        .upload_one("rocket.jpg", &bytes, &[("tags", "s3")])
        .await;
    let k = img["key"].as_str().unwrap().to_string();
    // The object is in the bucket, byte for byte.
    let op = s3_operator(&endpoint, &bucket, &key, &secret, &prefix);
    assert_eq!(op.read(&k).await.unwrap().to_vec(), bytes);
    let (st, _, body) = get(&s.url(&format!("/img/{k}?w=120&fm=webp")), None).await;
    assert_eq!((st, dims(&body)), (200, (120, 80)));
    // One bad file in a batch: nothing new in the bucket.
    let before = op
        .list_with("default/")
        .recursive(true)
        .await
        .unwrap()
        .len();
    let r = api
        .upload(
            Form::new()
                .file("files[]", "ok.png", &distinct_png(5))
                .file("files[]", "bad.jpg", &bytes[..bytes.len() / 3]),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        op.list_with("default/")
            .recursive(true)
            .await
            .unwrap()
            .len(),
        before
    );
    // Delete: gone from the bucket and from /img.
    let r = api
        .delete(&format!("/api/v1/images/{}", img["id"].as_str().unwrap()))
        .await;
    assert_eq!(r.status, 200);
    assert!(!op.exists(&k).await.unwrap());
    assert_eq!(
        get(&s.url(&format!("/img/{k}?w=120&fm=webp")), None)
            .await
            .0,
        404
    );
}

fn http_config(c: &mut Config, base: &str, allow: &[&str]) {
    c.storage.backend = Backend::Http;
    c.storage.base_url = Some(base.into());
    c.storage.timeout_ms = 5000;
    c.storage.http_allow_networks = allow.iter().map(|s| s.to_string()).collect();
}

#[tokio::test(flavor = "multi_thread")]
async fn http_origin_refuses_internal_addresses_unless_allowed() {
    let origin = http_origin(std::path::PathBuf::from(FIXTURES));
    // A literal internal address: refused at start, with the key to change.
    let mut cfg = Config::default();
    http_config(&mut cfg, &origin.base, &[]);
    cfg.server.data_dir = tempfile::tempdir().unwrap().keep();
    let e = refract::wiring::build(&cfg).await.err().unwrap();
    assert!(
        e.contains("internal address") && e.contains("http_allow_networks"),
        "{e}"
    );
    // A name that resolves to loopback: refused when connecting (502), never fetched.
    let port = origin
        .base
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let by_name = format!("http://localhost:{port}/");
    let s = start(|c| http_config(c, &by_name, &[]));
    let (st, _, body) = get(&s.url("/img/dice-800x600-alpha.png?w=50"), None).await;
    assert_eq!((st, error_code(&body).as_str()), (502, "ORIGIN_ERROR"));
    // Allowed explicitly: fetched.
    let s = start(|c| http_config(c, &by_name, &["127.0.0.0/8", "::1"]));
    let (st, _, body) = get(&s.url("/img/dice-800x600-alpha.png?w=50"), None).await;
    assert_eq!((st, dims(&body).0), (200, 50));
}

#[tokio::test(flavor = "multi_thread")]
async fn http_origin_redirects_are_limited_and_rechecked() {
    let origin = http_origin(std::path::PathBuf::from(FIXTURES));
    let s = start(|c| http_config(c, &origin.base, &["127.0.0.1"]));
    let (st, _, body) = get(&s.url("/img/redirect/3/dice-800x600-alpha.png?w=40"), None).await;
    assert_eq!((st, dims(&body).0), (200, 40), "3 redirects are followed");
    let (st, _, body) = get(&s.url("/img/redirect/4/dice-800x600-alpha.png?w=40"), None).await;
    assert_eq!(
        (st, error_code(&body).as_str()),
        (502, "ORIGIN_ERROR"),
        "a 4th is not"
    );
    // A redirect to an internal address that is not allowed: a private one, and the
    // IPv4-mapped spelling of the (reachable) origin itself, which only the guard stops.
    let port = origin
        .base
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let (st, _, _) = get(
        &s.url(&format!(
            "/img/to/127.0.0.1:{port}/dice-800x600-alpha.png?w=40"
        )),
        None,
    )
    .await;
    assert_eq!(st, 200, "a redirect to an allowed address is followed");
    for target in [
        "10.0.0.1:80".to_string(),
        format!("[::ffff:127.0.0.1]:{port}"),
    ] {
        let (st, _, body) = get(
            &s.url(&format!("/img/to/{target}/dice-800x600-alpha.png?w=40")),
            None,
        )
        .await;
        assert_eq!(
            (st, error_code(&body).as_str()),
            (502, "ORIGIN_ERROR"),
            "{target}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http_origin_bodies_are_capped_while_streaming() {
    let origin = http_origin(std::path::PathBuf::from(FIXTURES));
    // path-2560x1600-icc.jpg is ~900 KB; the limit is 200 KB; the origin sends no length.
    let s = start(|c| {
        http_config(c, &origin.base, &["127.0.0.1"]);
        c.limits.max_source_bytes = 200_000;
    });
    // An origin that states a small length, then sends more: stopped while streaming.
    let (st, _, body) = get(&s.url("/img/liar/path-2560x1600-icc.jpg?w=40"), None).await;
    assert_eq!((st, error_code(&body).as_str()), (413, "PAYLOAD_TOO_LARGE"));
    // An origin that states no length at all is refused (never read unbounded).
    let (st, _, body) = get(
        &s.url("/img/chunked/rocket-640x427-adobergb.jpg?w=40"),
        None,
    )
    .await;
    assert_eq!((st, error_code(&body).as_str()), (502, "ORIGIN_ERROR"));
    let (st, _, body) = get(&s.url("/img/liar/rocket-640x427-adobergb.jpg?w=40"), None).await;
    assert_eq!(
        (st, dims(&body).0),
        (200, 40),
        "a small body within the limit is fine"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_a_delete_removes_the_variants_under_the_cache_prefix() {
    use common::api::*;
    use refract::delivery::key::SourceTag;
    let (endpoint, bucket, key, secret) = s3_env();
    let prefix = format!("/d{}/", std::process::id());
    let cache_prefix = format!("/d{}-cache/", std::process::id());
    let cache_prefix2 = cache_prefix.clone();
    let s = start_api(move |c| {
        s3_config(c, &endpoint, &bucket, &key, &secret, &prefix);
        c.cache.persistent.backend = refract::delivery::persist::PersistentBackend::S3;
        c.cache.persistent.path = Some(cache_prefix2);
    });
    let (endpoint, bucket, key, secret) = s3_env();
    let cache_op = s3_operator(&endpoint, &bucket, &key, &secret, &cache_prefix);
    let api = Api::admin(&s);
    let a = api.upload_one("a.png", &distinct_png(31), &[]).await;
    let b = api.upload_one("b.png", &distinct_png(32), &[]).await;
    for img in [&a, &b] {
        for q in ["w=100&fm=webp", "w=120&fm=png"] {
            let (st, _, _) = get(&format!("{}?{q}", img["url"].as_str().unwrap()), None).await;
            assert_eq!(st, 200);
        }
    }
    let files = || async {
        let l = cache_op.list_with("").recursive(true).await.unwrap();
        l.into_iter()
            .filter(|e| e.metadata().is_file())
            .map(|e| e.path().to_string())
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while files().await.len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "variants never reached the bucket"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = api
        .delete(&format!("/api/v1/images/{}", a["id"].as_str().unwrap()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let left = files().await;
    let a_tag = SourceTag::of(a["key"].as_str().unwrap()).hex();
    let b_tag = SourceTag::of(b["key"].as_str().unwrap()).hex();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|p| p.starts_with(&b_tag)), "{left:?}");
    assert!(!left.iter().any(|p| p.starts_with(&a_tag)), "{left:?}");
}
