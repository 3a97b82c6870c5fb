//! Behind a CDN: negotiation modes, caching headers (stale-if-error, versioned URLs, the CDN-only
//! header, cached 404s, weak validators), Cloudflare's `/cdn-cgi/image/` URL form (same cache
//! key and ETag as `/img`, Cloudflare's fit meanings and sizes, `format=json`, `onerror`,
//! `metadata`), all against a real server on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use refract::delivery::policy::Negotiate;

const ROCKET: &str = "rocket-640x427-adobergb.jpg";
const DICE: &str = "dice-800x600-alpha.png";
const CHROMIUM: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get_with(
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut rb = no_redirects().get(url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let (st, h) = (r.status().as_u16(), r.headers().clone());
    (st, h, r.bytes().await.unwrap().to_vec())
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn default_negotiation_is_off_so_no_cache_can_serve_the_wrong_format() {
    let s = start(|_| {});
    assert_eq!(s.cfg.delivery.negotiate, Negotiate::Off);
    let url = s.url(&format!("/img/{ROCKET}?w=80"));
    let mut etags = Vec::new();
    for accept in [Some(CHROMIUM), Some("image/webp,*/*"), Some("*/*"), None] {
        let (st, h, body) = get(&url, accept).await;
        assert_eq!((st, magic(&body)), (200, "jpeg"), "{accept:?}");
        assert_eq!(header(&h, "vary"), None, "{accept:?}");
        etags.push(header(&h, "etag").unwrap().to_string());
    }
    etags.dedup();
    assert_eq!(etags.len(), 1, "one variant per URL");
    // Alpha sources answer PNG; explicit formats work as ever, fm=auto is the default.
    let (_, h, body) = get(&s.url(&format!("/img/{DICE}?w=80")), Some(CHROMIUM)).await;
    assert_eq!((magic(&body), header(&h, "vary")), ("png", None));
    let (_, _, body) = get(&s.url(&format!("/img/{ROCKET}?w=80&fm=avif")), None).await;
    assert_eq!(magic(&body), "avif");
    let (_, _, body) = get(
        &s.url(&format!("/img/{ROCKET}?w=80&fm=auto")),
        Some(CHROMIUM),
    )
    .await;
    assert_eq!(magic(&body), "jpeg");
    // compression=fast in vary mode: the source's family although AVIF is accepted.
    let v = start(vary);
    let (_, h, body) = get(
        &v.url(&format!("/img/{ROCKET}?w=80&compression=fast")),
        Some(CHROMIUM),
    )
    .await;
    assert_eq!((magic(&body), header(&h, "vary")), ("jpeg", Some("Accept")));
}

#[tokio::test(flavor = "multi_thread")]
async fn caching_headers_for_cdns_and_browsers() {
    let s = start(|c| {
        c.delivery.cdn_cache_control = "max-age=2592000, stale-if-error=86400".into();
        c.delivery.cdn_cache_control_header = "Cloudflare-CDN-Cache-Control".into();
    });
    let url = s.url(&format!("/img/{ROCKET}?w=90"));
    let (st, h, _) = get(&url, None).await;
    assert_eq!(st, 200);
    assert_eq!(
        header(&h, "cache-control"),
        Some("public, max-age=86400, stale-while-revalidate=604800, stale-if-error=86400")
    );
    assert_eq!(
        header(&h, "cloudflare-cdn-cache-control"),
        Some("max-age=2592000, stale-if-error=86400")
    );
    // The strong ETag is matched weakly (a CDN that recompresses weakens it), alone or in a list.
    let etag = header(&h, "etag").unwrap().to_string();
    assert!(etag.starts_with('"'));
    for inm in [format!("W/{etag}"), format!("\"nope\", W/{etag}")] {
        let (st, h304, body) = get_with(&url, &[("if-none-match", &inm)]).await;
        assert_eq!((st, body.len()), (304, 0), "{inm}");
        assert_eq!(header(&h304, "etag"), Some(etag.as_str()));
        assert!(header(&h304, "cloudflare-cdn-cache-control").is_some());
    }
    // A versioned URL is immutable; the original too.
    for path in [
        format!("/img/{ROCKET}?w=90&v=3"),
        format!("/img/{ROCKET}?v=abc"),
    ] {
        let (st, h, _) = get(&s.url(&path), None).await;
        assert_eq!(st, 200);
        assert_eq!(
            header(&h, "cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{path}"
        );
    }
    // Errors are not kept: 404 and 400 are no-store by default.
    let (st, h, body) = get(&s.url("/img/missing.jpg?w=10"), None).await;
    assert_eq!((st, error_code(&body).as_str()), (404, "NOT_FOUND"));
    assert_eq!(header(&h, "cache-control"), Some("no-store"));
    assert_eq!(header(&h, "cloudflare-cdn-cache-control"), None);
    let (st, h, _) = get(&s.url(&format!("/img/{ROCKET}?w=abc")), None).await;
    assert_eq!((st, header(&h, "cache-control")), (400, Some("no-store")));

    // A short 404 when configured; the interim answer of a pending AVIF never carries the CDN
    // header (the edge must not keep it for a month).
    let s = start(|c| {
        vary(c);
        c.limits.avif_budget_ms = 1;
        c.delivery.not_found_max_age_secs = 30;
        c.delivery.cdn_cache_control = "max-age=2592000".into();
    });
    let (st, h, body) = get(&s.url("/img/missing.jpg"), None).await;
    assert_eq!((st, error_code(&body).as_str()), (404, "NOT_FOUND"));
    assert_eq!(header(&h, "cache-control"), Some("public, max-age=30"));
    let (st, h, body) = get(&s.url(&format!("/img/{ROCKET}?w=300")), Some(CHROMIUM)).await;
    assert_eq!((st, magic(&body)), (200, "webp"));
    assert_eq!(header(&h, "cache-control"), Some("public, max-age=60"));
    assert_eq!(header(&h, "cdn-cache-control"), None);
    let (_, h, _) = get(&s.url(&format!("/img/{ROCKET}?w=300&fm=jpeg")), None).await;
    assert_eq!(header(&h, "cdn-cache-control"), Some("max-age=2592000"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cdn_cgi_urls_share_the_img_cache_key_and_etag() {
    let s = start(vary);
    let pairs = [
        ("width=400,quality=75,format=auto", "w=400&q=75"),
        ("w=300,h=300,fit=cover", "w=300&h=300&fit=cover&enlarge=1"),
        ("w=300,h=300", "w=300&h=300&fit=inside"),
        ("width=200,q=high,f=webp", "w=200&q=90&fm=webp"),
        (
            "width=200,dpr=2,background=white,fit=pad,height=100",
            "w=400&h=200&fit=contain&enlarge=1&bg=fff",
        ),
    ];
    for (options, query) in pairs {
        let a = get(
            &s.url(&format!("/cdn-cgi/image/{options}/{ROCKET}")),
            Some(CHROMIUM),
        )
        .await;
        let b = get(&s.url(&format!("/img/{ROCKET}?{query}")), Some(CHROMIUM)).await;
        assert_eq!((a.0, b.0), (200, 200), "{options}");
        assert_eq!(header(&a.1, "etag"), header(&b.1, "etag"), "{options}");
        assert_eq!(
            header(&b.1, "x-cache"),
            Some("HIT"),
            "{options}: one cache entry"
        );
        assert_eq!(a.2, b.2, "{options}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cdn_cgi_fit_modes_give_cloudflares_sizes() {
    let s = start(|_| {});
    // rocket is 640x427.
    let rows = [
        ("width=1000", (640, 427)),              // scale-down: never enlarges
        ("width=1000,fit=contain", (1000, 667)), // may enlarge
        ("width=300,height=300", (300, 200)),    // scale-down inside the box
        ("width=300,height=300,fit=cover", (300, 300)),
        ("width=1000,height=1000,fit=cover", (1000, 1000)),
        ("width=300,height=300,fit=crop", (300, 300)),
        ("width=1000,height=1000,fit=crop", (640, 427)), // smaller than the box: scale-down
        ("width=500,height=1000,fit=crop", (500, 427)),
        ("width=300,height=300,fit=pad", (300, 300)),
        ("width=300,height=300,fit=squeeze", (300, 300)),
        ("height=100", (150, 100)),
        ("width=100,dpr=2", (200, 133)),
    ];
    for (options, want) in rows {
        let (st, _, body) = get(&s.url(&format!("/cdn-cgi/image/{options}/{ROCKET}")), None).await;
        assert_eq!(st, 200, "{options}");
        assert_eq!(dims(&body), want, "{options}");
    }
    // format=json: Cloudflare's shape, nothing encoded; the same through /img as fm=json.
    let (st, h, body) = get(
        &s.url(&format!("/cdn-cgi/image/width=320,format=json/{ROCKET}")),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(header(&h, "content-type"), Some("application/json"));
    assert!(header(&h, "etag").is_some());
    let size = std::fs::metadata(s.root.join(ROCKET)).unwrap().len();
    assert_eq!(
        json(&body),
        serde_json::json!({"width": 320, "height": 214, "original":
            {"width": 640, "height": 427, "file_size": size, "format": "image/jpeg",
             "frames": 1, "orientation": 1}})
    );
    let (_, _, same) = get(&s.url(&format!("/img/{ROCKET}?w=320&fm=json")), None).await;
    assert_eq!(same, body);
    // EXIF orientation counts: Landscape_6 is stored as a portrait, rotated by its EXIF.
    let (_, _, body) = get(
        &s.url("/img/orientation/Landscape_6.jpg?fm=json&w=100"),
        None,
    )
    .await;
    let v = json(&body);
    let (ow, oh) = (
        v["original"]["width"].as_u64().unwrap(),
        v["original"]["height"].as_u64().unwrap(),
    );
    let (_, _, img) = get(&s.url("/img/orientation/Landscape_6.jpg?w=100"), None).await;
    assert_eq!(
        (
            v["width"].as_u64().unwrap() as u32,
            v["height"].as_u64().unwrap() as u32
        ),
        dims(&img)
    );
    assert!(
        ow > oh,
        "oriented size of a landscape stored portrait: {ow}x{oh}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cdn_cgi_bad_options_answer_400_naming_them() {
    let s = start(|_| {});
    let rows = [
        (format!("/cdn-cgi/image/width=abc/{ROCKET}"), "width"),
        (format!("/cdn-cgi/image/gravity=face/{ROCKET}"), "gravity"),
        (
            format!("/cdn-cgi/image/w=10,trim.left=5/{ROCKET}"),
            "trim.left",
        ),
        (
            format!("/cdn-cgi/image/w=10,segment=foreground/{ROCKET}"),
            "segment",
        ),
        (format!("/cdn-cgi/image/w=10,fit=stretch/{ROCKET}"), "fit"),
        (format!("/cdn-cgi/image/w=10,anim=maybe/{ROCKET}"), "anim"),
        (
            format!("/cdn-cgi/image/w=10,quality=best/{ROCKET}"),
            "quality",
        ),
        (format!("/cdn-cgi/image/w=10,bogus=1/{ROCKET}"), "bogus"),
        (format!("/cdn-cgi/image//{ROCKET}"), "options"),
        ("/cdn-cgi/image/w=10".to_string(), "source"),
        (
            "/cdn-cgi/image/w=10/https://example.com/a.jpg".to_string(),
            "source",
        ),
    ];
    for (path, param) in rows {
        let (st, h, body) = get(&s.url(&path), None).await;
        assert_eq!(st, 400, "{path}");
        assert_eq!(
            header(&h, "content-type"),
            Some("application/json"),
            "{path}"
        );
        assert_eq!(json(&body)["error"]["details"]["param"], param, "{path}");
    }
    let (st, _, _) = get(&s.url("/cdn-cgi/image/w=10/../etc/passwd"), None).await;
    assert_eq!(st, 400);
    let (st, _, _) = get(&s.url("/cdn-cgi/image/w=10,anim=false/missing.jpg"), None).await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn onerror_redirect_sends_the_original_when_the_transform_fails() {
    let s = start(|_| {});
    let mut broken = std::fs::read(s.root.join(ROCKET)).unwrap();
    broken.truncate(2000);
    std::fs::write(s.root.join("broken.jpg"), &broken).unwrap();
    let (st, _, body) = get_with(&s.url("/cdn-cgi/image/width=100/broken.jpg"), &[]).await;
    assert_eq!(
        (st, error_code(&body).as_str()),
        (422, "UNPROCESSABLE_IMAGE")
    );
    for path in [
        "/cdn-cgi/image/width=100,onerror=redirect/broken.jpg",
        "/img/broken.jpg?w=100&onerror=redirect",
    ] {
        let (st, h, _) = get_with(&s.url(path), &[]).await;
        assert_eq!(st, 302, "{path}");
        assert_eq!(header(&h, "location"), Some("/img/broken.jpg"), "{path}");
        assert_eq!(header(&h, "cache-control"), Some("no-store"));
    }
    // Not for client errors or a missing source.
    let (st, _, _) = get_with(
        &s.url("/cdn-cgi/image/width=x,onerror=redirect/broken.jpg"),
        &[],
    )
    .await;
    assert_eq!(st, 400);
    let (st, _, _) = get_with(
        &s.url("/cdn-cgi/image/width=1,onerror=redirect/nope.jpg"),
        &[],
    )
    .await;
    assert_eq!(st, 404);
    let (st, _, _) = get_with(&s.url("/img/broken.jpg?w=1&onerror=maybe"), &[]).await;
    assert_eq!(st, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn cdn_cgi_absolute_sources_only_under_the_http_origin() {
    use refract::storage::origin::Backend;
    let origin = http_origin(std::path::PathBuf::from(FIXTURES));
    let s = start(|c| {
        c.storage.backend = Backend::Http;
        c.storage.base_url = Some(origin.base.clone());
        c.storage.http_allow_networks = vec!["127.0.0.1".into()];
    });
    let (st, _, body) = get(
        &s.url(&format!(
            "/cdn-cgi/image/width=60/{}orientation/Landscape_3.jpg",
            origin.base
        )),
        None,
    )
    .await;
    assert_eq!((st, dims(&body)), (200, (60, 45)));
    let (st, _, body) = get(
        &s.url("/cdn-cgi/image/width=60/orientation/Landscape_3.jpg"),
        None,
    )
    .await;
    assert_eq!((st, dims(&body)), (200, (60, 45)));
    let (st, _, body) = get(
        &s.url("/cdn-cgi/image/width=60/http://169.254.169.254/latest"),
        None,
    )
    .await;
    assert_eq!(
        (st, json(&body)["error"]["details"]["param"].as_str()),
        (400, Some("source"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_cdn_cgi_urls_cover_the_options() {
    use refract::delivery::signing::Signer;
    use refract::util::secret::Secret;
    let s = start(|c| {
        c.security.signing_keys = vec![Secret("a-long-enough-test-signing-key-0123".into())];
        c.security.require_signature = true;
    });
    let signer = Signer::new(&s.cfg.security);
    let path = format!("/cdn-cgi/image/width=120/{ROCKET}");
    let signed = signer.sign(&path, "").unwrap();
    let (st, _, body) = get(&s.url(&signed), None).await;
    assert_eq!((st, dims(&body)), (200, (120, 80)));
    let tampered = signed.replace("width=120", "width=1200");
    let (st, _, _) = get(&s.url(&tampered), None).await;
    assert_eq!(st, 403);
    let (st, _, _) = get(&s.url(&path), None).await;
    assert_eq!(st, 403);
    // onerror's redirect target is signed too.
    std::fs::write(s.root.join("broken.jpg"), b"\xFF\xD8\xFF\xE0 not really").unwrap();
    let p = "/cdn-cgi/image/width=120,onerror=redirect/broken.jpg";
    let (st, h, _) = get_with(&s.url(&signer.sign(p, "").unwrap()), &[]).await;
    assert_eq!(st, 302);
    let location = header(&h, "location").unwrap().to_string();
    assert!(location.starts_with("/img/broken.jpg?s="), "{location}");
    let (st, _, _) = get_with(&s.url(&location), &[]).await;
    assert_eq!(st, 200);
}

/// A little-endian TIFF/EXIF: orientation 6, artist, copyright, and a camera make.
fn exif_tiff() -> Vec<u8> {
    let mut b = b"II\x2a\0\x08\0\0\0".to_vec();
    let entries: [(u16, u16, u32, [u8; 4]); 4] = [
        (0x010F, 2, 4, *b"Cam\0"),
        (0x0112, 3, 1, [6, 0, 0, 0]),
        (0x013B, 2, 4, *b"Ann\0"),
        (0x8298, 2, 13, ((8 + 2 + 4 * 12 + 4) as u32).to_le_bytes()),
    ];
    b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, ty, count, val) in entries {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&val);
    }
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(b"(c) 2026 Ann\0");
    b
}

fn with_app1(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(tiff);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn exif_of(jpeg: &[u8]) -> Option<exif::Exif> {
    exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(jpeg))
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_keep_and_copyright_carry_exif_into_jpeg() {
    let s = start(|_| {});
    let plain = std::fs::read(s.root.join(ROCKET)).unwrap();
    std::fs::write(s.root.join("exif.jpg"), with_app1(&plain, &exif_tiff())).unwrap();
    let text = |e: &exif::Exif, tag| {
        e.get_field(tag, exif::In::PRIMARY)
            .map(|f| f.display_value().to_string())
    };
    // Default: nothing kept (the orientation is applied to the pixels: 640x427 turns portrait).
    let (_, _, body) = get(
        &s.url("/cdn-cgi/image/width=100,format=jpeg/exif.jpg"),
        None,
    )
    .await;
    assert_eq!(dims(&body), (100, 150));
    assert!(exif_of(&body).is_none());
    // copyright: the notice and the artist only.
    let (_, _, body) = get(
        &s.url("/cdn-cgi/image/width=100,format=jpeg,metadata=copyright/exif.jpg"),
        None,
    )
    .await;
    let e = exif_of(&body).expect("EXIF kept");
    assert_eq!(
        text(&e, exif::Tag::Copyright).as_deref(),
        Some("\"(c) 2026 Ann\"")
    );
    assert_eq!(text(&e, exif::Tag::Artist).as_deref(), Some("\"Ann\""));
    assert_eq!(text(&e, exif::Tag::Make), None);
    assert_eq!(text(&e, exif::Tag::Orientation), None);
    // keep: everything, the orientation reset (the pixels are already upright).
    let (_, _, body) = get(&s.url("/img/exif.jpg?w=100&fm=jpeg&metadata=keep"), None).await;
    assert_eq!(dims(&body), (100, 150));
    let e = exif_of(&body).expect("EXIF kept");
    assert_eq!(text(&e, exif::Tag::Make).as_deref(), Some("\"Cam\""));
    let o = e
        .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
        .unwrap();
    assert_eq!(o.value.get_uint(0), Some(1));
    // Other outputs keep none.
    let (_, _, body) = get(&s.url("/img/exif.jpg?w=100&fm=png&metadata=keep"), None).await;
    assert_eq!(magic(&body), "png");
}
