//! The transforms issue through a real server: gravity and smart crop, crop regions,
//! rotate/flip, trim, effects, downloads, `fm=json`; 400s naming the parameter; equal requests
//! sharing one cache key. (Per-operation perceptual goldens are in `tests/img_formats.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use image::{GenericImageView, Rgb, RgbImage};

const ROCKET: &str = "rocket-640x427-adobergb.jpg";

fn decode(b: &[u8]) -> image::DynamicImage {
    image::load_from_memory(b).unwrap()
}

/// A smooth sky-like gradient of `w`×`h`, the colour of pixel (x, y).
fn sky(y: u32, h: u32) -> Rgb<u8> {
    let t = y as f32 / h as f32;
    Rgb([
        (90.0 + 40.0 * t) as u8,
        (140.0 + 30.0 * t) as u8,
        (200.0 + 20.0 * t) as u8,
    ])
}

/// The smart-crop fixture: a 1200×360 smooth sky with a real photo (the 480×360 flower) at its
/// right edge. A centre crop of 360×360 is mostly sky; the subject is at x ≥ 720.
fn subject_at_the_edge(root: &std::path::Path) -> RgbImage {
    let flower = image::open(root.join("flower-480x360-exif.webp"))
        .unwrap()
        .into_rgb8();
    let mut canvas = RgbImage::from_fn(1200, 360, |_, y| sky(y, 360));
    image::imageops::replace(&mut canvas, &flower, 720, 0);
    canvas.save(root.join("subject-right.png")).unwrap();
    canvas
}

/// The share of `img`'s pixels that are (within a tolerance) the sky.
fn sky_share(img: &image::DynamicImage) -> f64 {
    let rgb = img.to_rgb8();
    let h = rgb.height();
    let n = rgb
        .enumerate_pixels()
        .filter(|(_, y, p)| {
            let s = sky(*y * 360 / h, 360);
            (0..3).all(|c| p[c].abs_diff(s[c]) <= 12)
        })
        .count();
    n as f64 / f64::from(rgb.width() * rgb.height())
}

#[tokio::test(flavor = "multi_thread")]
async fn smart_crop_keeps_a_subject_the_centre_crop_cuts_off() {
    let s = start(|_| {});
    subject_at_the_edge(&s.root);
    let url = |g: &str| s.url(&format!("/img/subject-right.png?w=360&h=360&fm=png{g}"));
    let (_, _, centre) = get(&url(""), None).await;
    let (_, _, smart) = get(&url("&g=auto"), None).await;
    let (centre, smart) = (decode(&centre), decode(&smart));
    assert_eq!(smart.dimensions(), (360, 360));
    let (c, a) = (sky_share(&centre), sky_share(&smart));
    assert!(c > 0.7, "the centre crop is mostly sky: {c:.2}");
    assert!(a < 0.1, "the smart crop holds the subject: {a:.2} sky");
    // The aliases and the /cdn-cgi/image/ form give the same variant.
    let etag =
        |u: String| async move { header(&get(&u, None).await.1, "etag").unwrap().to_string() };
    let smart_etag = etag(url("&g=auto")).await;
    assert_eq!(etag(url("&gravity=smart")).await, smart_etag);
    assert_eq!(etag(url("&g=attention")).await, smart_etag);
    assert_eq!(
        etag(s.url("/cdn-cgi/image/w=360,h=360,fit=crop,f=png,gravity=auto/subject-right.png"))
            .await,
        etag(s.url("/img/subject-right.png?w=360&h=360&fit=clip&fm=png&g=auto")).await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gravity_points_and_sides_place_the_window() {
    let s = start(|_| {});
    // g=west equals cropping the left square first: the same pixels.
    let (_, _, west) = get(
        &s.url(&format!("/img/{ROCKET}?w=200&h=200&g=west&fm=png")),
        None,
    )
    .await;
    let (_, _, region) = get(
        &s.url(&format!("/img/{ROCKET}?crop=0,0,427,427&w=200&fm=png")),
        None,
    )
    .await;
    let (ham, mean) = distance(&fingerprint(&west), &fingerprint(&region));
    assert!(ham <= 2 && mean < 1.0, "{ham} {mean}");
    let (_, _, east) = get(
        &s.url(&format!("/img/{ROCKET}?w=200&h=200&g=east&fm=png")),
        None,
    )
    .await;
    assert!(distance(&fingerprint(&west), &fingerprint(&east)).0 > 6);
    // A focal point near the right edge is the same window as east (clamped).
    let (_, h1, _) = get(
        &s.url(&format!("/img/{ROCKET}?w=200&h=200&g=0.99x0.5&fm=png")),
        None,
    )
    .await;
    let (_, _, fp) = get(
        &s.url(&format!("/img/{ROCKET}?w=200&h=200&g=fp:0.99:0.5&fm=png")),
        None,
    )
    .await;
    assert_eq!(fp, east);
    assert!(header(&h1, "etag").is_some());
    // centre and 0.5x0.5 are the default: one cache entry.
    let (_, a, _) = get(
        &s.url(&format!("/img/{ROCKET}?w=200&h=200&g=0.5x0.5")),
        None,
    )
    .await;
    let (_, b, _) = get(&s.url(&format!("/img/{ROCKET}?w=200&h=200")), None).await;
    assert_eq!(header(&a, "etag"), header(&b, "etag"));
    assert_eq!(header(&b, "x-cache"), Some("HIT"));
}

#[tokio::test(flavor = "multi_thread")]
async fn crop_rotate_flip_and_trim_shape_the_output() {
    let s = start(|_| {});
    let size = |q: &'static str| {
        let u = s.url(&format!("/img/{ROCKET}?{q}"));
        async move {
            let (st, _, body) = get(&u, None).await;
            assert_eq!(st, 200, "{q}");
            dims(&body)
        }
    };
    assert_eq!(size("crop=10,20,300,200").await, (300, 200));
    assert_eq!(size("crop=0.5,0,0.5,0.5&fm=png").await, (320, 214));
    assert_eq!(size("crop=0,0,320,213&w=100").await, (100, 67));
    assert_eq!(size("rot=90").await, (427, 640));
    assert_eq!(size("rot=270&w=100").await, (100, 150)); // w is the output's axis
    assert_eq!(size("rot=180&flip=v&w=64").await, (64, 43));
    assert_eq!(size("trim=10;20;30;40").await, (580, 387));
    assert_eq!(
        size("crop=100,100,200,200&trim=10;10;10;10&rot=90").await,
        (180, 180)
    );
    // Flip mirrors: the left column of the flipped image is the right column of the plain one.
    let (_, _, plain) = get(&s.url(&format!("/img/{ROCKET}?w=64&fm=png")), None).await;
    let (_, _, flipped) = get(&s.url(&format!("/img/{ROCKET}?w=64&fm=png&flip=h")), None).await;
    let (p, f) = (decode(&plain).to_rgb8(), decode(&flipped).to_rgb8());
    for y in [0, 20, 42] {
        assert_eq!(p.get_pixel(63, y), f.get_pixel(0, y), "row {y}");
    }
    // Automatic trim: the photo on a white 800×600 canvas comes back at its own size.
    let rocket = image::open(s.root.join(ROCKET)).unwrap().into_rgb8();
    let mut canvas = RgbImage::from_pixel(800, 600, Rgb([255, 255, 255]));
    image::imageops::replace(&mut canvas, &rocket, 80, 90);
    canvas.save(s.root.join("framed.png")).unwrap();
    let (st, _, body) = get(&s.url("/img/framed.png?trim=auto&fm=png"), None).await;
    assert_eq!((st, dims(&body)), (200, (640, 427)));
    let (_, _, body) = get(&s.url("/img/framed.png?trim=auto:30&w=320&fm=png"), None).await;
    assert_eq!(dims(&body), (320, 214));
    // A uniform image has nothing to trim: it is kept whole.
    RgbImage::from_pixel(50, 40, Rgb([9, 9, 9]))
        .save(s.root.join("flat.png"))
        .unwrap();
    let (st, _, body) = get(&s.url("/img/flat.png?trim=auto&fm=png"), None).await;
    assert_eq!((st, dims(&body)), (200, (50, 40)));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_parameters_answer_400_naming_them_before_any_work() {
    let s = start(|_| {});
    let rows = [
        ("crop=600,0,100,100", "crop"),
        ("crop=0,0,641,10", "crop"),
        ("crop=1,2,3", "crop"),
        ("trim=200;0;227;0", "trim"),
        ("trim=0;320;0;320", "trim"),
        ("rot=45", "rot"),
        ("rotate=-90", "rotate"),
        ("flip=diagonal", "flip"),
        ("blur=300", "blur"),
        ("sharpen=20", "sharpen"),
        ("gamma=0", "gamma"),
        ("g=face&w=10&h=10", "g"),
        ("pixelate=1000", "pixelate"),
        ("filename=%2F", "filename"),
        ("download=perhaps", "download"),
    ];
    for (q, param) in rows {
        let (st, h, body) = get(&s.url(&format!("/img/{ROCKET}?{q}")), None).await;
        assert_eq!(st, 400, "{q}");
        assert_eq!(header(&h, "cache-control"), Some("no-store"), "{q}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["details"]["param"], param, "{q}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn neutral_parameters_share_the_cache_key() {
    let s = start(|_| {});
    let (_, a, _) = get(&s.url(&format!("/img/{ROCKET}?w=120")), None).await;
    let neutral = "w=120&rot=0&brightness=1&contrast=1.0&gamma=1&saturation=1&blur=0&sharpen=0\
                   &pixelate=1&trim=0;0;0;0&g=center";
    let (_, b, _) = get(&s.url(&format!("/img/{ROCKET}?{neutral}")), None).await;
    assert_eq!(header(&a, "etag"), header(&b, "etag"));
    assert_eq!(header(&b, "x-cache"), Some("HIT"));
}

#[tokio::test(flavor = "multi_thread")]
async fn downloads_are_attachments_with_the_same_etag() {
    let s = start(|_| {});
    let base = format!("/img/{ROCKET}?w=100&fm=webp");
    let (_, plain, _) = get(&s.url(&base), None).await;
    assert_eq!(header(&plain, "content-disposition"), None);
    let (st, h, body) = get(&s.url(&format!("{base}&download=1")), None).await;
    assert_eq!((st, magic(&body)), (200, "webp"));
    assert_eq!(
        header(&h, "content-disposition"),
        Some("attachment; filename=\"rocket-640x427-adobergb.webp\"; filename*=UTF-8''rocket%2D640x427%2Dadobergb%2Ewebp")
    );
    assert_eq!(header(&h, "etag"), header(&plain, "etag"));
    assert_eq!(header(&h, "x-cache"), Some("HIT"));
    // A chosen name: path and quotes removed, the output's extension, UTF-8 kept in filename*.
    let (_, h, _) = get(
        &s.url(&format!("{base}&filename=..%2F..%2Fm%C3%BCnchen%22.png")),
        None,
    )
    .await;
    let d = header(&h, "content-disposition").unwrap();
    assert!(
        d.starts_with(
            "attachment; filename=\"m_nchen.webp\"; filename*=UTF-8''m%C3%BCnchen%2Ewebp"
        ),
        "{d}"
    );
    // Originals too, with their own name.
    let (_, h, body) = get(&s.url(&format!("/img/{ROCKET}?download=true")), None).await;
    assert_eq!(magic(&body), "jpeg");
    assert!(header(&h, "content-disposition")
        .unwrap()
        .contains("filename=\"rocket-640x427-adobergb.jpg\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_info_reports_the_output_after_every_geometry_step() {
    let s = start(|_| {});
    let info = |q: &'static str| {
        let u = s.url(&format!("/img/{q}"));
        async move {
            let (st, _, body) = get(&u, None).await;
            assert_eq!(st, 200, "{q}");
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()
        }
    };
    let v = info("rocket-640x427-adobergb.jpg?rot=90&w=100&fm=json").await;
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(100), Some(150))
    );
    let v = info("rocket-640x427-adobergb.jpg?crop=0,0,320,200&fm=json").await;
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(200))
    );
    let v = info("horses-402x280-anim.gif?fm=json").await;
    assert!(v["original"]["frames"].as_u64().unwrap() > 1, "{v}");
    let v = info("orientation/Landscape_6.jpg?fm=json").await;
    assert_eq!(v["original"]["orientation"].as_u64(), Some(6));
}

/// Frames and their delays (ms) of an animated GIF or WebP.
fn animation(b: &[u8]) -> Vec<((u32, u32), u32)> {
    use image::AnimationDecoder;
    let frames = match magic(b) {
        "gif" => image::codecs::gif::GifDecoder::new(std::io::Cursor::new(b))
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap(),
        "webp" => image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(b))
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap(),
        other => panic!("not an animation: {other}"),
    };
    frames
        .iter()
        .map(|f| {
            let (n, d) = f.delay().numer_denom_ms();
            (f.buffer().dimensions(), n / d.max(1))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn animations_stay_animated_with_their_timing() {
    let s = start(|_| {});
    const HORSES: &str = "horses-402x280-anim.gif";
    let source = animation(&std::fs::read(s.root.join(HORSES)).unwrap());
    assert!(source.len() > 1);
    // Negotiation off, no fm: the GIF stays a GIF, every frame resized alike, delays kept.
    let (st, h, gif) = get(&s.url(&format!("/img/{HORSES}?w=201")), None).await;
    assert_eq!((st, header(&h, "content-type")), (200, Some("image/gif")));
    let frames = animation(&gif);
    assert_eq!(frames.len(), source.len());
    assert!(frames.iter().all(|(d, _)| *d == (201, 140)), "{frames:?}");
    let delays = |f: &[((u32, u32), u32)]| f.iter().map(|x| x.1).collect::<Vec<_>>();
    assert_eq!(delays(&frames), delays(&source));
    // Animated WebP out, cropped and blurred on every frame.
    let (_, h, webp) = get(
        &s.url(&format!("/img/{HORSES}?w=100&h=100&fm=webp&blur=1")),
        None,
    )
    .await;
    assert_eq!(header(&h, "content-type"), Some("image/webp"));
    let frames = animation(&webp);
    assert_eq!(frames.len(), source.len());
    assert!(frames.iter().all(|(d, _)| *d == (100, 100)));
    // ... which is itself a source that stays animated WebP.
    std::fs::write(s.root.join("anim.webp"), &webp).unwrap();
    let (_, h, again) = get(&s.url("/img/anim.webp?w=50"), None).await;
    assert_eq!(header(&h, "content-type"), Some("image/webp"));
    assert_eq!(animation(&again).len(), source.len());
    // Stills on request: anim=false (the first frame), frame=N, or a format that cannot animate.
    let (_, h, still) = get(&s.url(&format!("/img/{HORSES}?w=100&anim=false")), None).await;
    assert_eq!(
        (header(&h, "content-type"), magic(&still)),
        (Some("image/png"), "png")
    );
    let (_, _, first) = get(&s.url(&format!("/img/{HORSES}?w=100&fm=png")), None).await;
    assert_eq!(first, still);
    let (_, _, third) = get(&s.url(&format!("/img/{HORSES}?w=100&fm=png&frame=2")), None).await;
    assert_ne!(third, first);
    // All frames held at a huge output size are over the pixel limit: 422 before any decode.
    let (st, _, body) = get(
        &s.url(&format!("/img/{HORSES}?w=4000&enlarge=1&fm=webp")),
        None,
    )
    .await;
    assert_eq!(
        (st, error_code(&body).as_str()),
        (422, "UNPROCESSABLE_IMAGE")
    );
    let (st, _, body) = get(&s.url(&format!("/img/{HORSES}?w=100&frame=999")), None).await;
    assert_eq!((st, error_code(&body).as_str()), (400, "BAD_REQUEST"));
}

#[tokio::test(flavor = "multi_thread")]
async fn animations_over_the_frame_limit_are_refused_unless_a_still_is_asked() {
    let s = start(|c| c.limits.max_animation_frames = 2);
    const HORSES: &str = "horses-402x280-anim.gif";
    let (st, _, body) = get(&s.url(&format!("/img/{HORSES}?w=100&fm=webp")), None).await;
    assert_eq!(
        (st, error_code(&body).as_str()),
        (422, "UNPROCESSABLE_IMAGE")
    );
    let (st, _, body) = get(
        &s.url(&format!("/img/{HORSES}?w=100&fm=webp&anim=false")),
        None,
    )
    .await;
    assert_eq!((st, magic(&body)), (200, "webp"));
    assert_eq!(animation_or_still(&body), 1);
}

fn animation_or_still(b: &[u8]) -> usize {
    if b.windows(4).any(|w| w == b"ANIM") {
        animation(b).len()
    } else {
        1
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watermarks_come_from_config_only() {
    use refract::delivery::watermark::WatermarkConfig;
    let mark = |key: &str| WatermarkConfig {
        key: key.into(),
        position: "southeast".into(),
        margin: 8,
        opacity: 1.0,
        scale: 0.25,
    };
    let s = start(|c| {
        c.watermarks
            .insert("logo".into(), mark("dice-800x600-alpha.png"));
    });
    let (_, plain_h, plain) = get(&s.url(&format!("/img/{ROCKET}?w=400&fm=png")), None).await;
    let (st, h, marked) = get(&s.url(&format!("/img/{ROCKET}?w=400&fm=png&wm=logo")), None).await;
    assert_eq!(st, 200);
    assert_ne!(header(&h, "etag"), header(&plain_h, "etag"));
    let (p, m) = (decode(&plain).to_rgb8(), decode(&marked).to_rgb8());
    assert_eq!(m.dimensions(), (400, 267));
    // Top-left untouched; the bottom-right corner region (100x75 mark, 8 px margin) changed.
    let differs = |x0: u32, y0: u32, x1: u32, y1: u32| {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| p.get_pixel(x, y) != m.get_pixel(x, y))
            .count()
    };
    assert_eq!(differs(0, 0, 200, 120), 0);
    assert!(differs(292, 184, 392, 259) > 1000);
    assert_eq!(differs(0, 0, 292, 184), 0, "nothing outside the mark's box");
    // Only configured names; never a URL.
    for q in ["wm=nope", "wm=https%3A%2F%2Fevil.example%2Fx.png"] {
        let (st, _, body) = get(&s.url(&format!("/img/{ROCKET}?w=10&{q}")), None).await;
        assert_eq!(
            (st, error_code(&body).as_str()),
            (400, "BAD_REQUEST"),
            "{q}"
        );
    }
    // A watermark that cannot be read stops the server at start, naming it.
    let mut cfg = refract::config::Config::default();
    cfg.server.data_dir = tempfile::tempdir().unwrap().keep();
    cfg.watermarks.insert("gone".into(), mark("no/such.png"));
    let e = refract::wiring::build(&cfg).await.err().unwrap();
    assert!(e.contains("watermarks.gone"), "{e}");
}
