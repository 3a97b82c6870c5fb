//! Hardening through the real server: signed URLs, presets, security headers, the request
//! deadline, the connection limit, animated inputs against the pixel limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::*;
use common::*;
use refract::delivery::signing::{SecurityConfig, Signer};
use refract::util::secret::Secret;
use std::io::{Read, Write};
use std::time::Duration;

fn signer(keys: &[&str]) -> Signer {
    Signer::new(&SecurityConfig {
        signing_keys: keys.iter().map(|k| Secret((*k).into())).collect(),
        require_signature: true,
        presets_only: false,
    })
}

fn signed_server() -> Server {
    start_api(|c| {
        c.security.signing_keys = vec![Secret("key-one".into()), Secret("key-two".into())];
        c.security.require_signature = true;
    })
}

#[tokio::test]
async fn unsigned_wrong_and_expired_urls_are_refused() {
    let s = signed_server();
    let path = "/img/rocket-640x427-adobergb.jpg";
    for q in ["", "?w=100", "?w=100&s=AAAA", "?w=100&s="] {
        let (st, h, body) = get(&s.url(&format!("{path}{q}")), None).await;
        assert_eq!((st, error_code(&body)), (403, "FORBIDDEN".into()), "{q}");
        assert_eq!(header(&h, "cache-control"), Some("no-store"));
    }
    // Signed by the first key, and by the second (rotation).
    let a = signer(&["key-one"]).sign(path, "w=100").unwrap();
    let b = signer(&["key-two"]).sign(path, "w=100").unwrap();
    let (st, h1, body) = get(&s.url(&a), None).await;
    assert_eq!((st, dims(&body).0), (200, 100));
    let (st, h2, _) = get(&s.url(&b), None).await;
    assert_eq!(st, 200);
    // The signature is not part of the cache key: same variant, same ETag, a hit.
    assert_eq!(header(&h1, "etag"), header(&h2, "etag"));
    assert_eq!(header(&h2, "x-cache"), Some("HIT"));
    // Tampering with any signed pair fails; an unknown key fails.
    let (st, _, _) = get(&s.url(&a.replace("w=100", "w=1000")), None).await;
    assert_eq!(st, 403);
    let c = signer(&["key-three"]).sign(path, "w=100").unwrap();
    assert_eq!(get(&s.url(&c), None).await.0, 403);
    assert_eq!(
        get(&s.url(&a.replace("rocket", "Rocket")), None).await.0,
        403
    );
    // expires is covered: in the future fine, in the past 410.
    let later = signer(&["key-one"])
        .sign(path, "w=50&expires=4102444800")
        .unwrap();
    assert_eq!(get(&s.url(&later), None).await.0, 200);
    let past = signer(&["key-one"])
        .sign(path, "w=50&expires=1600000000")
        .unwrap();
    let (st, _, body) = get(&s.url(&past), None).await;
    assert_eq!((st, error_code(&body)), (410, "URL_EXPIRED".into()));
    let moved = later.replace("4102444800", "4102444801");
    assert_eq!(get(&s.url(&moved), None).await.0, 403);
}

/// A signed URL answered from the request memo (a repeated request) still expires on time.
#[tokio::test]
async fn a_repeated_signed_url_expires_when_its_signature_does() {
    let s = signed_server();
    let path = "/img/rocket-640x427-adobergb.jpg";
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    let url = signer(&["key-one"])
        .sign(path, &format!("w=60&expires={soon}"))
        .unwrap();
    // One connection: one event loop, whose memo keeps the line.
    let one = client();
    let ask = || async {
        let r = one.get(s.url(&url)).send().await.unwrap();
        let (st, cache) = (r.status().as_u16(), r.headers().get("x-cache").cloned());
        (st, cache, r.bytes().await.unwrap().to_vec())
    };
    let (st, cache, _) = ask().await;
    assert_eq!((st, cache.unwrap().to_str().unwrap()), (200, "MISS"));
    let (st, cache, _) = ask().await;
    assert_eq!((st, cache.unwrap().to_str().unwrap()), (200, "HIT"));
    assert_eq!(metric(&s, "refract_memo_hits_total").await, 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (st, _, body) = ask().await;
    assert_eq!((st, error_code(&body)), (410, "URL_EXPIRED".into()));
}

#[tokio::test]
async fn api_urls_are_signed_when_signatures_are_required() {
    let s = signed_server();
    let api = Api::admin(&s);
    let img = api
        .upload_one("a.jpg", &fixture("rocket-640x427-adobergb.jpg"), &[])
        .await;
    for u in [&img["url"], &img["urls"]["webp"], &img["urls"]["thumb"]] {
        let u = u.as_str().unwrap();
        assert!(u.contains("s="), "{u}");
        assert_eq!(get(u, None).await.0, 200, "{u}");
    }
    let r = Api::new(&s, None)
        .send(
            "GET",
            "/api/v1/random?w=64",
            &[("accept", "image/webp")],
            None,
        )
        .await;
    let url = r.text();
    assert!(url.contains("&s="), "{url}");
    let (st, _, body) = get(&url, None).await;
    assert_eq!((st, magic(&body), dims(&body).0), (200, "webp", 64));
}

#[tokio::test]
async fn presets_expand_and_presets_only_refuses_free_parameters() {
    let preset = |c: &mut refract::config::Config| {
        let mut card = std::collections::BTreeMap::new();
        card.insert(
            "w".to_string(),
            refract::delivery::presets::PresetValue::Int(600),
        );
        card.insert(
            "h".to_string(),
            refract::delivery::presets::PresetValue::Int(400),
        );
        card.insert(
            "fit".to_string(),
            refract::delivery::presets::PresetValue::Text("cover".into()),
        );
        c.presets.insert("card".into(), card);
    };
    let s = start(preset);
    let img = "/img/path-2560x1600-icc.jpg";
    let (st, _, body) = get(&s.url(&format!("{img}?preset=card&fm=webp")), None).await;
    assert_eq!((st, magic(&body), dims(&body)), (200, "webp", (600, 400)));
    let (st, _, body) = get(&s.url(&format!("{img}?preset=card&w=300")), None).await;
    assert_eq!((st, dims(&body)), (200, (300, 400)), "own parameters win");
    let (st, _, body) = get(&s.url(&format!("{img}?preset=poster")), None).await;
    assert_eq!((st, error_code(&body)), (400, "BAD_REQUEST".into()));
    let s = start(|c| {
        preset(c);
        c.security.presets_only = true;
    });
    assert_eq!(
        get(&s.url(&format!("{img}?preset=card&t=42")), None)
            .await
            .0,
        200
    );
    assert_eq!(
        get(&s.url(img), None).await.0,
        200,
        "originals need no preset"
    );
    for q in ["w=100", "preset=card&w=100", "thumb=1"] {
        let (st, _, body) = get(&s.url(&format!("{img}?{q}")), None).await;
        assert_eq!((st, error_code(&body)), (400, "BAD_REQUEST".into()), "{q}");
    }
}

#[test]
fn a_broken_preset_stops_the_server_at_start_with_its_name() {
    let file = "[presets.hero]\nw = 0\n";
    let e = refract::config::Config::from_sources(
        Some((std::path::Path::new("x.toml"), file)),
        &[],
        &Default::default(),
    )
    .unwrap_err();
    assert!(e.contains("presets.hero"), "{e}");
    let e = refract::config::Config::from_sources(
        None,
        &[("REFRACT__SECURITY__REQUIRE_SIGNATURE".into(), "true".into())],
        &Default::default(),
    )
    .unwrap_err();
    assert!(e.contains("signing_keys"), "{e}");
}

#[tokio::test]
async fn images_carry_nosniff_and_a_locked_down_csp() {
    let s = start(|_| {});
    for q in ["", "?w=100"] {
        let (st, h, _) = get(&s.url(&format!("/img/dice-800x600-alpha.png{q}")), None).await;
        assert_eq!(st, 200);
        assert_eq!(header(&h, "x-content-type-options"), Some("nosniff"));
        assert_eq!(
            header(&h, "content-security-policy"),
            Some("default-src 'none'")
        );
        assert!(header(&h, "x-request-id").is_some());
    }
}

#[tokio::test]
async fn a_transform_past_the_deadline_is_a_503_not_a_hang() {
    let s = start(|c| {
        c.limits.request_timeout_ms = 1;
        c.cache.memory_bytes = 0;
    });
    let (st, h, body) = get(
        &s.url("/img/seeding-5312x2988-progressive.jpg?w=4000&fm=png"),
        None,
    )
    .await;
    assert_eq!((st, error_code(&body)), (503, "SERVICE_BUSY".into()));
    assert!(header(&h, "retry-after").is_some());
}

#[tokio::test]
async fn animated_inputs_count_every_frame_against_the_pixel_limit() {
    // horses: 402x280 per frame, many frames. One frame fits the limit, all of them do not.
    let s = start(|c| c.limits.max_source_pixels = 402 * 280 * 2);
    let (st, _, body) = get(&s.url("/img/horses-402x280-anim.gif?w=100"), None).await;
    assert_eq!((st, error_code(&body)), (422, "UNPROCESSABLE_IMAGE".into()));
    let s = start(|_| {});
    assert_eq!(
        get(&s.url("/img/horses-402x280-anim.gif?w=100"), None)
            .await
            .0,
        200
    );
}

#[test]
fn connections_over_the_limit_wait_for_a_free_slot() {
    let s = start(|c| c.server.max_connections = 2);
    let addr = s.base.trim_start_matches("http://").to_string();
    let request = |sock: &mut std::net::TcpStream| {
        sock.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 256];
        let n = sock.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut a = std::net::TcpStream::connect(&addr).unwrap();
    let mut b = std::net::TcpStream::connect(&addr).unwrap();
    assert!(request(&mut a).starts_with("HTTP/1.1 200"));
    assert!(request(&mut b).starts_with("HTTP/1.1 200"));
    // Both slots are held (keep-alive): a third connection is not served...
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    assert_eq!(request(&mut c), "", "served beyond max_connections");
    // ...until one closes.
    drop(a);
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 256];
    let n = c.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(b);
}

#[test]
fn slow_headers_are_cut_off() {
    let s = start(|c| c.server.header_read_timeout_secs = 1);
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut sock = std::net::TcpStream::connect(&addr).unwrap();
    // A slowloris client: a request line, then headers that never finish.
    sock.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let r = sock.read_to_end(&mut buf);
    assert!(
        r.is_ok() || buf.starts_with(b"HTTP/1.1 408"),
        "the server kept a slow client: {r:?}"
    );
    // The server still serves others.
    let mut ok = std::net::TcpStream::connect(&addr).unwrap();
    ok.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    ok.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn progressive_jpegs_have_their_own_pixel_limit() {
    // seeding: 5312x2988 progressive (15.9 MP); path: 2560x1600 baseline (4.1 MP).
    let s = start(|c| c.limits.max_progressive_pixels = 10_000_000);
    let (st, _, body) = get(&s.url("/img/seeding-5312x2988-progressive.jpg?w=100"), None).await;
    assert_eq!((st, error_code(&body)), (422, "UNPROCESSABLE_IMAGE".into()));
    let msg = String::from_utf8_lossy(&body).to_string();
    assert!(
        msg.contains("progressive JPEG has 15872256 pixels"),
        "{msg}"
    );
    // A larger baseline JPEG is not affected, nor is the original itself (no decode).
    let s2 = start(|c| c.limits.max_progressive_pixels = 1_000_000);
    assert_eq!(
        get(&s2.url("/img/path-2560x1600-icc.jpg?w=100"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        get(&s.url("/img/seeding-5312x2988-progressive.jpg"), None)
            .await
            .0,
        200
    );
    // The default lets it through.
    let s = start(|_| {});
    let (st, _, body) = get(&s.url("/img/seeding-5312x2988-progressive.jpg?w=100"), None).await;
    assert_eq!((st, dims(&body)), (200, (100, 56)));
}

/// A symbolic link in the storage root that points out of it is as if absent (`/img` never
/// serves a file from outside the root); one that stays inside works.
#[tokio::test]
async fn symbolic_links_out_of_the_root_are_not_followed() {
    let s = start(|_| {});
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("private.jpg"),
        fixture("rocket-640x427-adobergb.jpg"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("private.jpg"),
        s.root.join("escape.jpg"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        s.root.join("rocket-640x427-adobergb.jpg"),
        s.root.join("alias.jpg"),
    )
    .unwrap();
    for q in ["", "?w=50", "?fm=webp"] {
        let r = client()
            .get(s.url(&format!("/img/escape.jpg{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{q}");
        let r = client()
            .get(s.url(&format!("/img/alias.jpg{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{q}");
    }
    let r = client()
        .get(s.url("/img/escape.jpg"))
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
