//! HTTP semantics of `/img` through the real server: negotiation and `Vary`, conditional
//! requests, HEAD, ranges on originals, cache HIT after MISS, coalescing, and every error row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::api::crc32;
use common::*;
use std::time::{Duration, Instant};

const ROCKET: &str = "/img/rocket-640x427-adobergb.jpg";
const DICE: &str = "/img/dice-800x600-alpha.png";

#[tokio::test(flavor = "multi_thread")]
async fn health_and_version() {
    let s = start(|_| {});
    let (st, _, body) = get(&s.url("/health"), None).await;
    assert_eq!(
        (
            st,
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()
        ),
        (200, serde_json::json!({"status": "ok"}))
    );
    let (st, h, body) = get(&s.url("/version"), None).await;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((st, v["name"].as_str()), (200, Some("refract")));
    assert!(v["version"].is_string());
    assert!(
        header(&h, "x-request-id").is_some(),
        "every response has a request id"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn negotiate_table_and_vary_through_the_server() {
    let s = start(vary);
    let chromium = "image/jxl,image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    let rows: &[(&str, Option<&str>, &str, bool)] = &[
        (ROCKET, Some(chromium), "avif", true),
        (
            ROCKET,
            Some("image/avif;q=0,image/webp,*/*;q=0.8"),
            "webp",
            true,
        ),
        (
            ROCKET,
            Some("image/avif;q=0,image/webp;q=0,*/*"),
            "jpeg",
            true,
        ),
        (ROCKET, Some("*/*"), "jpeg", true),
        (ROCKET, Some("image/*"), "jpeg", true),
        (ROCKET, None, "jpeg", true),
        (DICE, Some("*/*"), "png", true),
        (DICE, Some("image/webp,*/*"), "webp", true),
        // Only AVIF/WebP acceptance is read: JPEG/PNG choices follow the source.
        (ROCKET, Some("image/png"), "jpeg", true),
        (ROCKET, Some("text/html,application/json"), "jpeg", true),
    ];
    for (path, accept, want, vary) in rows {
        let (st, h, body) = get(&s.url(&format!("{path}?w=50")), *accept).await;
        assert_eq!(st, 200, "{path} {accept:?}");
        assert_eq!(magic(&body), *want, "{path} {accept:?}");
        assert_eq!(
            header(&h, "content-type"),
            Some(format!("image/{want}").as_str())
        );
        assert_eq!(
            header(&h, "vary") == Some("Accept"),
            *vary,
            "{path} {accept:?}"
        );
    }
    // An explicit fm never varies, whatever Accept says.
    let (_, h, body) = get(&s.url(&format!("{ROCKET}?w=50&fm=webp")), Some(chromium)).await;
    assert_eq!((magic(&body), header(&h, "vary")), ("webp", None));
    // A normalised Accept (Cloudflare's Cache Rule forwards only the listed types, sorted,
    // without q-values) and junk Accept values land on the same four variants: equal ETags.
    let etag = |accept: &'static str| {
        let url = s.url(&format!("{ROCKET}?w=60"));
        async move { header(&get(&url, Some(accept)).await.1, "etag").map(str::to_string) }
    };
    assert_eq!(etag(chromium).await, etag("image/avif,image/webp").await);
    assert_eq!(
        etag("image/webp").await,
        etag("image/webp,image/x-junk-1").await
    );
    assert_eq!(etag("*/*").await, etag("text/x-junk-2;q=0.3").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn negotiate_disabled_formats_are_skipped_and_refused_explicitly() {
    let s = start(|c| {
        vary(c);
        c.formats.avif = false;
    });
    let (_, _, body) = get(
        &s.url(&format!("{ROCKET}?w=50")),
        Some("image/avif,image/webp,*/*"),
    )
    .await;
    assert_eq!(magic(&body), "webp");
    let (st, _, body) = get(&s.url(&format!("{ROCKET}?w=50&fm=avif")), None).await;
    assert_eq!((st, error_code(&body).as_str()), (400, "BAD_REQUEST"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_miss_then_hit_and_same_etag_for_equivalent_transforms() {
    let s = start(vary);
    let (st, h1, b1) = get(
        &s.url(&format!("{ROCKET}?w=120&h=80&fit=crop&fm=jpg")),
        None,
    )
    .await;
    assert_eq!((st, header(&h1, "x-cache")), (200, Some("MISS")));
    let (_, h2, b2) = get(
        &s.url(&format!(
            "{ROCKET}?t=99&format=jpeg&fit=cover&height=80&width=120"
        )),
        None,
    )
    .await;
    assert_eq!(header(&h2, "x-cache"), Some("HIT"));
    assert_eq!(b1, b2);
    let etag = header(&h1, "etag").unwrap();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong etag"
    );
    assert_eq!(header(&h2, "etag"), Some(etag));
    assert_eq!(
        header(&h1, "cache-control"),
        Some("public, max-age=86400, stale-while-revalidate=604800, stale-if-error=86400")
    );
    assert_eq!(
        header(&h1, "content-length").map(|v| v.parse::<usize>().unwrap()),
        Some(b1.len())
    );
    assert!(header(&h1, "last-modified").is_some());
    // A different transform has a different ETag.
    let (_, h3, _) = get(&s.url(&format!("{ROCKET}?w=121&h=80&fm=jpeg")), None).await;
    assert_ne!(header(&h3, "etag"), Some(etag));
}

/// A repeated request is answered from the request memo: the same headers and bytes as the full
/// path gives a hit, per `Accept` when the format is negotiated, HEAD included.
#[tokio::test(flavor = "multi_thread")]
async fn repeated_requests_answer_what_the_full_path_answers() {
    let s = start(vary);
    let url = s.url(&format!("{ROCKET}?w=64"));
    let webp = Some("image/webp,*/*");
    let (_, h1, b1) = get(&url, webp).await;
    assert_eq!(header(&h1, "x-cache"), Some("MISS"));
    // One connection (one event loop: each keeps its own memo lines) for the repeats.
    let one = client();
    let again = || async {
        let r = one
            .get(url.as_str())
            .header("accept", "image/webp,*/*")
            .send()
            .await
            .unwrap();
        let h = r.headers().clone();
        (h, r.bytes().await.unwrap().to_vec())
    };
    let _ = again().await;
    let before = metric(&s, "refract_memo_hits_total").await;
    let (memo, bm) = again().await;
    assert_eq!(
        metric(&s, "refract_memo_hits_total").await,
        before + 1,
        "the second request of the line, on the same event loop, is a memo hit"
    );
    // `If-None-Match` that does not match takes the full path (a hit there too).
    let full = client()
        .get(url.as_str())
        .header("accept", "image/webp,*/*")
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(full.status().as_u16(), 200);
    let fh = full.headers().clone();
    let bf = full.bytes().await.unwrap().to_vec();
    assert_eq!(header(&memo, "x-cache"), Some("HIT"));
    assert_eq!(magic(&bm), "webp");
    assert!(bm == b1 && bm == bf);
    let names = |h: &reqwest::header::HeaderMap| {
        let mut n: Vec<String> = h
            .keys()
            .map(|k| k.as_str().to_string())
            .filter(|k| k != "date" && k != "x-request-id")
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&memo), names(&fh));
    for name in names(&fh) {
        assert_eq!(memo.get(&name), fh.get(&name), "{name}");
    }
    // Another Accept, another answer (and another memo line).
    for _ in 0..2 {
        let (_, h, b) = get(&url, Some("image/jpeg")).await;
        assert_eq!(magic(&b), "jpeg");
        assert_eq!(header(&h, "vary"), Some("Accept"));
    }
    assert_eq!(magic(&get(&url, webp).await.2), "webp");
    // HEAD: the same headers, no body.
    let h = client()
        .head(url.as_str())
        .header("accept", "image/webp,*/*")
        .send()
        .await
        .unwrap();
    assert_eq!(h.headers().get("etag"), memo.get("etag"));
    assert_eq!(
        h.headers().get("content-length"),
        memo.get("content-length")
    );
    assert!(h.bytes().await.unwrap().is_empty());
    assert!(metric(&s, "refract_cache_hits_total").await >= 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn conditional_requests_answer_304_before_any_transform() {
    let s = start(vary);
    let url = s.url(&format!("{ROCKET}?w=90"));
    let (_, h, _) = get(&url, None).await;
    let etag = header(&h, "etag").unwrap().to_string();
    let before = metric(&s, "refract_transforms_total").await;
    // A different server (cold cache) must also answer 304 without transforming.
    let cold = start(vary);
    let cold_url = cold.url(&format!("{ROCKET}?w=90"));
    for (u, srv) in [(&url, &s), (&cold_url, &cold)] {
        let r = client()
            .get(u.as_str())
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 304);
        assert_eq!(r.headers().get("etag").unwrap().to_str().unwrap(), etag);
        assert!(r.headers().get("vary").is_some());
        assert!(r.bytes().await.unwrap().is_empty());
        let _ = srv;
    }
    assert_eq!(metric(&s, "refract_transforms_total").await, before);
    assert_eq!(metric(&cold, "refract_transforms_total").await, 0);
    // Originals too.
    let (_, h, _) = get(&s.url(ROCKET), None).await;
    let r = client()
        .get(s.url(ROCKET))
        .header("if-none-match", header(&h, "etag").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 304);
    let r = client()
        .get(s.url(ROCKET))
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn head_has_the_same_headers_and_no_body() {
    let s = start(|_| {});
    for path in [ROCKET.to_string(), format!("{ROCKET}?w=77&fm=webp")] {
        let g = client().get(s.url(&path)).send().await.unwrap();
        let gh = g.headers().clone();
        let glen = g.bytes().await.unwrap().len();
        let h = client().head(s.url(&path)).send().await.unwrap();
        assert_eq!(h.status().as_u16(), 200);
        for name in [
            "content-type",
            "etag",
            "cache-control",
            "content-length",
            "last-modified",
        ] {
            assert_eq!(h.headers().get(name), gh.get(name), "{path}: {name}");
        }
        assert_eq!(
            gh.get("content-length").unwrap().to_str().unwrap(),
            glen.to_string()
        );
        assert!(h.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn originals_are_served_unchanged_with_ranges() {
    let s = start(|_| {});
    let file = std::fs::read(format!("{FIXTURES}/rocket-640x427-adobergb.jpg")).unwrap();
    let (st, h, body) = get(&s.url(ROCKET), Some("image/avif,image/webp,*/*")).await;
    assert_eq!((st, body.len()), (200, file.len()));
    assert!(body == file, "bytes unchanged");
    assert_eq!(header(&h, "content-type"), Some("image/jpeg"));
    assert_eq!(header(&h, "accept-ranges"), Some("bytes"));
    assert_eq!(header(&h, "vary"), None);
    assert!(header(&h, "last-modified").is_some());
    // Cache busters alone still mean the original.
    let (_, _, busted) = get(&s.url(&format!("{ROCKET}?v=3")), None).await;
    assert!(busted == file);
    let range = |r: &'static str| {
        let url = s.url(ROCKET);
        async move {
            let resp = client().get(url).header("range", r).send().await.unwrap();
            let st = resp.status().as_u16();
            let cr = resp
                .headers()
                .get("content-range")
                .map(|v| v.to_str().unwrap().to_string());
            (st, cr, resp.bytes().await.unwrap().to_vec())
        }
    };
    let n = file.len();
    let (st, cr, b) = range("bytes=0-99").await;
    assert_eq!(
        (st, cr.as_deref(), &b[..]),
        (206, Some(format!("bytes 0-99/{n}").as_str()), &file[..100])
    );
    let (st, _, b) = range("bytes=-10").await;
    assert_eq!((st, &b[..]), (206, &file[n - 10..]));
    let (st, _, b) = range("bytes=100-").await;
    assert_eq!((st, &b[..]), (206, &file[100..]));
    let (st, cr, _) = range("bytes=999999999-").await;
    assert_eq!(
        (st, cr.as_deref()),
        (416, Some(format!("bytes */{n}").as_str()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn coalescing_concurrent_identical_misses_transform_once() {
    let s = start(|_| {});
    let before = metric(&s, "refract_transforms_total").await;
    let url = s.url("/img/path-2560x1600-icc.jpg?w=333&fm=webp");
    let tasks: Vec<_> = (0..16)
        .map(|_| tokio::spawn(get_owned(url.clone())))
        .collect();
    let mut bodies = Vec::new();
    for t in tasks {
        let (st, body) = t.await.unwrap();
        assert_eq!(st, 200);
        bodies.push(body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "all callers get the same bytes"
    );
    assert_eq!(
        metric(&s, "refract_transforms_total").await - before,
        1,
        "one transform for 16 identical misses"
    );
}

async fn get_owned(url: String) -> (u16, Vec<u8>) {
    let (st, _, b) = get(&url, None).await;
    (st, b)
}

#[tokio::test(flavor = "multi_thread")]
async fn cache_off_transforms_every_time() {
    let s = start(|c| {
        c.cache.memory_bytes = 0;
        c.cache.persistent.max_bytes = 0;
    });
    let url = s.url(&format!("{ROCKET}?w=50"));
    for _ in 0..2 {
        let (_, h, _) = get(&url, None).await;
        assert_eq!(header(&h, "x-cache"), Some("MISS"));
    }
    assert_eq!(metric(&s, "refract_transforms_total").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_bad_parameters_answer_400_naming_the_param() {
    let s = start(|_| {});
    for (q, param) in [
        ("w=0", "w"),
        ("w=9000", "w"),
        ("h=abc", "h"),
        ("q=101", "q"),
        ("fit=squash", "fit"),
        ("fm=tiff", "fm"),
        ("bg=nothex", "bg"),
        ("dpr=9", "dpr"),
        ("foo=bar", "foo"),
        ("w=10&w=20", "w"),
        ("w=10&width=20", "width"),
    ] {
        let (st, h, body) = get(&s.url(&format!("{ROCKET}?{q}")), None).await;
        assert_eq!(st, 400, "{q}");
        assert_eq!(header(&h, "content-type"), Some("application/json"));
        assert_eq!(header(&h, "cache-control"), Some("no-store"));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "BAD_REQUEST", "{q}");
        assert_eq!(v["error"]["details"]["param"], param, "{q}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(param),
            "{q}: {v}"
        );
    }
    // A 100 KB query string is a clean 400 too.
    let long = format!("{ROCKET}?w=1&{}", "x".repeat(100_000));
    let resp = raw_get(&s, &long).await;
    let status = &resp[9..12];
    assert!(
        ["400", "414", "431"].contains(&status),
        "100 KB query answered {status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_path_traversal_never_touches_storage() {
    let s = start(|_| {});
    // A file outside the images folder that traversal would reach.
    std::fs::write(s.root.parent().unwrap().join("secret.jpg"), b"secret").unwrap();
    // Sent raw: HTTP clients normalise dot segments themselves.
    for path in [
        "/img/../secret.jpg",
        "/img/..%2Fsecret.jpg",
        "/img/%2e%2e/secret.jpg",
        "/img/a/%2E%2E/%2E%2E/secret.jpg",
        "/img/%2Fetc%2Fpasswd",
        "/img/..%5Csecret.jpg",
        "/img/rocket%00.jpg",
        "/img/rocket%0a.jpg",
        "/img/%C0%AE%C0%AE/secret.jpg",
        "/img/",
    ] {
        let resp = raw_get(&s, path).await;
        assert!(
            resp.starts_with("HTTP/1.1 400"),
            "{path}: {}",
            &resp[..resp.len().min(200)]
        );
        assert!(resp.contains("\"BAD_REQUEST\""), "{path}");
    }
}

/// Send a request line as-is (no client-side normalisation) and return the whole response.
async fn raw_get(s: &Server, target: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut resp = Vec::new();
    sock.read_to_end(&mut resp).await.unwrap();
    String::from_utf8_lossy(&resp).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_bad_sources_answer_the_documented_4xx() {
    let s = start(|c| c.limits.max_source_bytes = 4_000_000);
    let root = &s.root;
    let jpeg = std::fs::read(root.join("path-2560x1600-icc.jpg")).unwrap();
    std::fs::write(root.join("truncated.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    std::fs::write(
        root.join("text.jpg"),
        b"this is a text file, not an image\n",
    )
    .unwrap();
    std::fs::write(root.join("empty.png"), b"").unwrap();
    // A PNG header claiming 100000 x 100000 pixels.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&100_000u32.to_be_bytes());
    png.extend_from_slice(&100_000u32.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0]);
    let crc = crc32(&png[12..]);
    png.extend_from_slice(&crc.to_be_bytes());
    png.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    std::fs::write(root.join("huge.png"), &png).unwrap();
    std::fs::write(root.join("big.jpg"), vec![0xFFu8; 4_100_000]).unwrap();
    let rows = [
        ("/img/missing.jpg?w=10", 404, "NOT_FOUND"),
        ("/img/missing.jpg", 404, "NOT_FOUND"),
        ("/img/truncated.jpg?w=100", 422, "UNPROCESSABLE_IMAGE"),
        ("/img/text.jpg?w=100", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("/img/empty.png?w=100", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("/img/big.jpg?w=100", 413, "PAYLOAD_TOO_LARGE"),
        ("/img/orientation?w=100", 404, "NOT_FOUND"),
    ];
    for (path, status, code) in rows {
        let (st, h, body) = get(&s.url(path), None).await;
        assert_eq!((st, error_code(&body).as_str()), (status, code), "{path}");
        assert_eq!(header(&h, "cache-control"), Some("no-store"), "{path}");
    }
    let t = Instant::now();
    let (st, _, body) = get(&s.url("/img/huge.png?w=100"), None).await;
    assert_eq!(
        (st, error_code(&body).as_str()),
        (422, "UNPROCESSABLE_IMAGE")
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "refused from the header, without decoding"
    );
    // The server is still fine.
    let (st, _, _) = get(&s.url(&format!("{ROCKET}?w=10")), None).await;
    assert_eq!(st, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_full_queue_answers_503_with_retry_after() {
    let s = start(|c| {
        c.limits.workers = 1;
        c.limits.queue_depth = 0;
    });
    let (st, h, body) = get(&s.url(&format!("{ROCKET}?w=10")), None).await;
    assert_eq!((st, error_code(&body).as_str()), (503, "SERVICE_BUSY"));
    assert_eq!(header(&h, "retry-after"), Some("1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_wrong_method_and_unknown_route() {
    let s = start(|_| {});
    let r = client().post(s.url(ROCKET)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let (st, _, body) = get(&s.url("/nowhere"), None).await;
    assert_eq!((st, error_code(&body).as_str()), (404, "NOT_FOUND"));
}

#[tokio::test(flavor = "multi_thread")]
async fn regressions_from_fuzzing_answer_4xx() {
    let s = start(|_| {});
    let dir = std::path::Path::new(FIXTURES).join("regressions");
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let (st, _, body) = get(&s.url(&format!("/img/regressions/{name}?w=50")), None).await;
        assert!((400..500).contains(&st), "{name}: {st}");
        assert!(!error_code(&body).is_empty());
    }
}

/// Accept headers found by fuzzing (`tests/fixtures/regressions-accept/`): the negotiated format
/// is one the header accepts (here: a type listed twice, once with an invalid q).
#[tokio::test(flavor = "multi_thread")]
async fn accept_regressions_from_fuzzing_negotiate_an_accepted_format() {
    use refract::delivery::negotiate::{self, Accept};
    use refract::pipeline::format::ImageFormat;
    use refract::pipeline::output::Enabled;
    let dir = std::path::Path::new(FIXTURES).join("regressions-accept");
    for e in std::fs::read_dir(&dir).unwrap() {
        let raw = std::fs::read(e.unwrap().path()).unwrap();
        let a = Accept::parse(&String::from_utf8_lossy(&raw));
        let on = Enabled {
            avif: true,
            webp: true,
        };
        let spec = negotiate::decide(
            refract::pipeline::transform::FormatRequest::Auto,
            &a,
            on,
            refract::delivery::policy::Negotiate::Vary,
        )
        .unwrap();
        // AVIF/WebP only when named acceptably; otherwise the source's family.
        match spec.resolve(ImageFormat::Jpeg, false).unwrap() {
            ImageFormat::Jpeg => {}
            out => assert!(
                a.explicit_quality(out.mime()) > 0.0,
                "{out:?} chosen but not accepted"
            ),
        }
    }
    // The same shape through HTTP (header bytes must be printable there).
    let s = start(vary);
    let accept = "image/avif;x=1;q=l, imaGe/avif, image/webp";
    let (st, h, body) = get(
        &s.url("/img/rocket-640x427-adobergb.jpg?w=50"),
        Some(accept),
    )
    .await;
    assert_eq!((st, magic(&body)), (200, "avif"));
    assert_eq!(header(&h, "vary"), Some("Accept"));
}
