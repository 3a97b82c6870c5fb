//! Pixels through the real server: the format matrix, fit geometry, EXIF orientation, colour
//! management and perceptual goldens (`REFRACT_BLESS=1` rewrites `tests/fixtures/goldens.json`,
//! `REFRACT_SAVE_OUTPUTS=dir` writes every golden output for a person to look at).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

/// (file, displayed width, displayed height)
const INPUTS: &[(&str, u32, u32)] = &[
    ("rocket-640x427-adobergb.jpg", 640, 427),
    ("path-2560x1600-icc.jpg", 2560, 1600),
    ("seeding-5312x2988-progressive.jpg", 5312, 2988),
    ("grey-2560x1600-gray.jpg", 2560, 1600),
    ("cmyk-100x100.jpg", 100, 100),
    ("dice-800x600-alpha.png", 800, 600),
    ("spacefun-2048x1542-palette.png", 2048, 1542),
    ("horses-402x280-anim.gif", 402, 280),
    ("flower-480x360-exif.webp", 480, 360),
    ("orientation/Landscape_6.jpg", 600, 450),
    ("field-640x427.avif", 640, 427),
    ("codecs/photo.heic", 600, 450),
    ("codecs/photo.jxl", 600, 450),
];

#[tokio::test(flavor = "multi_thread")]
async fn format_matrix_every_input_to_every_output() {
    let s = start(|_| {});
    let mut failures = Vec::new();
    for (file, w, h) in INPUTS {
        let want_h = ((64.0 * f64::from(*h) / f64::from(*w)).round() as u32).max(1);
        for fm in ["jpeg", "png", "webp", "avif"] {
            let (status, headers, body) =
                get(&s.url(&format!("/img/{file}?w=64&fm={fm}")), None).await;
            if status != 200 {
                failures.push(format!(
                    "{file} -> {fm}: status {status} {}",
                    String::from_utf8_lossy(&body)
                ));
                continue;
            }
            let ct = header(&headers, "content-type").unwrap_or("");
            if magic(&body) != fm || ct != format!("image/{fm}") {
                failures.push(format!(
                    "{file} -> {fm}: magic {} content-type {ct}",
                    magic(&body)
                ));
                continue;
            }
            let d = dims(&body);
            if d != (64, want_h) {
                failures.push(format!("{file} -> {fm}: {d:?}, want (64, {want_h})"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "format matrix failures:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn new_inputs_answer_what_the_client_accepts_and_keep_alpha() {
    let s = start(|c| c.delivery.negotiate = refract::delivery::policy::Negotiate::Vary);
    // fm=auto: AVIF for a client that accepts it, else WebP, else the JPEG family.
    for (accept, want) in [
        ("image/avif,image/webp,*/*", "avif"),
        ("image/webp,*/*", "webp"),
        ("*/*", "jpeg"),
    ] {
        for file in [
            "codecs/photo.heic",
            "codecs/photo.jxl",
            "field-640x427.avif",
        ] {
            let (st, h, body) = get(&s.url(&format!("/img/{file}?w=200")), Some(accept)).await;
            assert_eq!((st, magic(&body)), (200, want), "{file} for {accept}");
            assert_eq!(
                header(&h, "content-type"),
                Some(format!("image/{want}").as_str())
            );
        }
    }
    // Alpha survives a HEIC or JPEG XL source (PNG output of a partly transparent image).
    for file in ["codecs/photo-alpha.heic", "codecs/alpha.jxl"] {
        let (st, _, body) = get(&s.url(&format!("/img/{file}?w=100&fm=png")), None).await;
        assert_eq!(st, 200, "{file}");
        let img = image::load_from_memory(&body).unwrap().into_rgba8();
        let min = img.pixels().map(|p| p[3]).min().unwrap();
        assert!(min < 128, "{file}: alpha lost (min alpha {min})");
    }
    // The originals pass through with their own type; HEIC and JPEG XL are never outputs.
    let (st, h, _) = get(&s.url("/img/codecs/photo.heic"), None).await;
    assert_eq!((st, header(&h, "content-type")), (200, Some("image/heic")));
    let (st, h, _) = get(&s.url("/img/codecs/photo.jxl"), None).await;
    assert_eq!((st, header(&h, "content-type")), (200, Some("image/jxl")));
    let (st, _, body) = get(&s.url("/img/codecs/photo.jxl?fm=heic"), None).await;
    assert_eq!((st, error_code(&body).as_str()), (400, "BAD_REQUEST"));
    // JSON sizes come from the container header.
    let (_, _, body) = get(&s.url("/img/codecs/photo.heic?w=300&fm=json"), None).await;
    let j: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(j["original"]["width"], 600, "{j}");
}

#[tokio::test(flavor = "multi_thread")]
async fn heif_and_jpeg_xl_orientations_come_out_upright() {
    let s = start(|_| {});
    // (file, the upright reference it must look like): `irot`/`imir` in AVIF, `irot` in a HEIC
    // whose EXIF also says 6 (iPhone style: `irot` wins), the codestream orientation in JPEG XL.
    for (file, reference) in [
        ("codecs/field-rot1.avif", "field-640x427.avif"),
        ("codecs/field-mir1.avif", "field-640x427.avif"),
        ("codecs/photo-rot90.heic", "codecs/photo.heic"),
        ("codecs/photo-orient6.jxl", "codecs/photo.jxl"),
        ("codecs/photo.heic", "orientation/Landscape_1.jpg"),
        ("codecs/photo-10bit.avif", "orientation/Landscape_1.jpg"),
    ] {
        let mut prints = Vec::new();
        for f in [file, reference] {
            let (st, _, body) = get(&s.url(&format!("/img/{f}?w=120&fm=png")), None).await;
            assert_eq!(st, 200, "{f}");
            let (w, h) = dims(&body);
            assert_eq!(w, 120, "{f}");
            assert!(h < 120, "{f}: {w}x{h} is not landscape");
            prints.push(fingerprint(&body));
        }
        let (ham, _) = distance(&prints[0], &prints[1]);
        assert!(
            ham <= 8,
            "{file} differs from {reference} by {ham} bits: not upright"
        );
    }
    // A greyscale JPEG XL comes out grey; an AVIF sequence answers its still image.
    let (st, _, body) = get(&s.url("/img/codecs/grey.jxl?w=100&fm=png"), None).await;
    assert_eq!((st, dims(&body)), (200, (100, 63)));
    let (st, _, body) = get(&s.url("/img/codecs/star-sequence.avif?w=50&fm=png"), None).await;
    assert_eq!((st, dims(&body)), (200, (50, 50)));
}

#[tokio::test(flavor = "multi_thread")]
async fn decoded_sources_are_shared_and_never_change_the_bytes() {
    // Every request a transform (no variant cache), with and without the decoded cache.
    let on = start(|c| {
        c.cache.memory_bytes = 0;
        c.cache.persistent.max_bytes = 0;
    });
    let off = start(|c| {
        c.cache.memory_bytes = 0;
        c.cache.persistent.max_bytes = 0;
        // Decodes kept for a millisecond: every request decodes afresh, at the same scales.
        c.cache.decoded.ttl_ms = 1;
    });
    let widths = [320, 480, 640, 960, 1280];
    for file in [
        "seeding-5312x2988-progressive.jpg",
        "dice-800x600-alpha.png",
        "field-640x427.avif",
    ] {
        for w in widths {
            let url = format!("/img/{file}?w={w}&fm=webp");
            let (a, _, x) = get(&on.url(&url), None).await;
            let (b, _, y) = get(&off.url(&url), None).await;
            assert_eq!((a, b), (200, 200), "{url}");
            assert!(
                x == y,
                "{url}: a decoded-cache answer differs from a fresh decode"
            );
        }
    }
    // Every width (up to share_width, 1920) shares the 1/2 decode of the 16 MP JPEG, and each
    // other source decodes once for all its widths (all but the first request of each hit).
    let hits = metric(&on, "refract_decoded_hits_total").await;
    let misses = metric(&on, "refract_decoded_misses_total").await;
    assert_eq!((hits, misses), (12, 3), "hits/misses");
    assert!(metric(&off, "refract_decoded_misses_total").await >= 14);
    // Every step after the decode, on hits: EXIF orientation with the user's turn, crop, smart
    // and automatic trims, effects, an ICC source, an output at the source's own size.
    for q in [
        "orientation/Landscape_6.jpg?w=200&rot=90&flip=h",
        "orientation/Landscape_6.jpg?w=200&rot=90&flip=h&fm=png",
        "orientation/Landscape_6.jpg?w=150&crop=10,20,300,200",
        "orientation/Landscape_6.jpg?w=120&h=120&fit=cover&g=auto",
        "orientation/Landscape_6.jpg?w=300&trim=auto&blur=2&sharpen=1",
        "path-2560x1600-icc.jpg?w=500&fm=jpeg",
        "path-2560x1600-icc.jpg?w=2560&fm=png",
    ] {
        let (a, _, x) = get(&on.url(&format!("/img/{q}")), None).await;
        let (b, _, y) = get(&off.url(&format!("/img/{q}")), None).await;
        assert_eq!((a, b), (200, 200), "{q}");
        assert!(
            x == y,
            "{q}: a decoded-cache answer differs from a fresh decode"
        );
    }
    assert!(metric(&on, "refract_decoded_hits_total").await > hits + 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_widths_decodes_once() {
    // A page's srcset arriving at once: six widths of one new 16 MP JPEG, concurrently.
    let s = start(|c| {
        c.cache.memory_bytes = 0;
        c.cache.persistent.max_bytes = 0;
    });
    let urls: Vec<String> = [320, 480, 640, 960, 1280, 1920]
        .iter()
        .map(|w| {
            s.url(&format!(
                "/img/seeding-5312x2988-progressive.jpg?w={w}&fm=jpeg"
            ))
        })
        .collect();
    let answers = futures::future::join_all(urls.iter().map(|u| get(u, None))).await;
    for (u, (st, _, body)) in urls.iter().zip(&answers) {
        assert_eq!((*st, magic(body)), (200, "jpeg"), "{u}");
    }
    // One scale (1/2: 5312 / 1920 = 2.8) for all six, decoded once; the other five requests
    // waited for it and hit.
    assert_eq!(metric(&s, "refract_decoded_misses_total").await, 1);
    assert_eq!(metric(&s, "refract_decoded_hits_total").await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn geometry_of_every_fit_mode_through_the_server() {
    let s = start(|_| {});
    // rocket is 640x427.
    let rows: &[(&str, (u32, u32))] = &[
        ("w=200", (200, 133)),
        ("h=100", (150, 100)),
        ("w=200&h=200", (200, 200)),
        ("w=200&h=200&fit=crop", (200, 200)),
        ("w=200&h=200&fit=cover", (200, 200)),
        ("w=200&h=200&fit=contain", (200, 200)),
        ("w=200&h=200&fit=fill", (200, 200)),
        ("w=200&h=200&fit=inside", (200, 133)),
        ("w=200&h=200&fit=outside", (300, 200)),
        ("w=2000", (640, 427)),
        ("w=2000&enlarge=1", (2000, 1334)),
        ("w=1000&h=1000", (427, 427)),
        ("w=1000&h=1000&fit=contain", (427, 427)),
        ("w=1000&h=1000&fit=inside", (640, 427)),
        ("w=1000&h=1000&fit=outside&enlarge=true", (1499, 1000)),
        ("w=100&dpr=2", (200, 133)),
        ("w=100&h=50&dpr=1.5", (150, 75)),
        ("thumb=1", (256, 256)),
        ("thumb=1&w=100", (100, 256)),
        ("fm=png", (640, 427)),
    ];
    let mut failures = Vec::new();
    for (q, want) in rows {
        let (status, _, body) = get(
            &s.url(&format!("/img/rocket-640x427-adobergb.jpg?{q}&fm=png"))
                .replace("fm=png&fm=png", "fm=png"),
            None,
        )
        .await;
        if status != 200 {
            failures.push(format!("{q}: {status} {}", String::from_utf8_lossy(&body)));
            continue;
        }
        let d = dims(&body);
        if d != *want {
            failures.push(format!("{q}: got {d:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn geometry_contain_pads_with_bg_and_cover_crops_the_centre() {
    let s = start(|_| {});
    let (_, _, body) = get(
        &s.url("/img/rocket-640x427-adobergb.jpg?w=200&h=200&fit=contain&bg=ff0000&fm=png"),
        None,
    )
    .await;
    let img = image::load_from_memory(&body).unwrap().into_rgb8();
    // 200x133 image centred: top rows are padding.
    assert_eq!(img.get_pixel(100, 2).0, [255, 0, 0]);
    assert_eq!(img.get_pixel(100, 197).0, [255, 0, 0]);
    let (_, _, body) = get(
        &s.url("/img/rocket-640x427-adobergb.jpg?w=200&h=200&fit=contain&bg=00000000&fm=png"),
        None,
    )
    .await;
    let img = image::load_from_memory(&body).unwrap().into_rgba8();
    assert_eq!(img.get_pixel(100, 2).0[3], 0, "transparent padding");
    assert_eq!(img.get_pixel(100, 100).0[3], 255);
}

#[tokio::test(flavor = "multi_thread")]
async fn orientation_all_eight_exif_values_come_out_upright() {
    let s = start(|_| {});
    let mut prints = Vec::new();
    for o in 1..=8 {
        let (status, _, body) = get(
            &s.url(&format!("/img/orientation/Landscape_{o}.jpg?w=120&fm=png")),
            None,
        )
        .await;
        assert_eq!(status, 200, "orientation {o}");
        assert_eq!(dims(&body), (120, 90), "orientation {o}");
        prints.push(fingerprint(&body));
    }
    for (i, p) in prints.iter().enumerate().skip(1) {
        let (ham, _) = distance(&prints[0], p);
        assert!(
            ham <= 8,
            "Landscape_{} differs from Landscape_1 by {ham} bits: not upright",
            i + 1
        );
    }
}

fn saturation(b: &[u8]) -> f64 {
    let img = image::load_from_memory(b).unwrap().into_rgb8();
    let total: u64 = img
        .pixels()
        .map(|p| u64::from(p.0.iter().max().unwrap() - p.0.iter().min().unwrap()))
        .sum();
    total as f64 / f64::from(img.width() * img.height())
}

#[tokio::test(flavor = "multi_thread")]
async fn colour_adobe_rgb_is_converted_to_srgb() {
    let s = start(|_| {});
    let (_, _, ours) = get(
        &s.url("/img/rocket-640x427-adobergb.jpg?w=320&fm=png"),
        None,
    )
    .await;
    // Reference without colour management: the same pixels read as if they were sRGB.
    let src = std::fs::read(format!("{FIXTURES}/rocket-640x427-adobergb.jpg")).unwrap();
    let naive = image::load_from_memory(&src).unwrap().resize_exact(
        320,
        214,
        image::imageops::FilterType::Lanczos3,
    );
    let mut naive_png = Vec::new();
    naive
        .write_to(
            &mut std::io::Cursor::new(&mut naive_png),
            image::ImageFormat::Png,
        )
        .unwrap();
    let (s_ours, s_naive) = (saturation(&ours), saturation(&naive_png));
    // Adobe RGB values shown as sRGB look washed out; converted, they are more saturated.
    assert!(
        s_ours > s_naive * 1.05,
        "saturation ours {s_ours:.2} vs unmanaged {s_naive:.2}"
    );
    // ...and otherwise the same picture.
    let (ham, _) = distance(&fingerprint(&ours), &fingerprint(&naive_png));
    assert!(ham <= 8, "structure differs by {ham} bits");
}

#[tokio::test(flavor = "multi_thread")]
async fn quality_outputs_match_an_independent_reference_resize() {
    let s = start(|_| {});
    for (file, w, h) in [
        ("path-2560x1600-icc.jpg", 400u32, 250u32),
        ("grey-2560x1600-gray.jpg", 400, 250),
        ("dice-800x600-alpha.png", 300, 225),
    ] {
        let (_, _, ours) = get(&s.url(&format!("/img/{file}?w={w}&fm=png")), None).await;
        let src = std::fs::read(format!("{FIXTURES}/{file}")).unwrap();
        let reference = image::load_from_memory(&src).unwrap().resize_exact(
            w,
            h,
            image::imageops::FilterType::Lanczos3,
        );
        let mut ref_png = Vec::new();
        reference
            .write_to(
                &mut std::io::Cursor::new(&mut ref_png),
                image::ImageFormat::Png,
            )
            .unwrap();
        let (ham, mean) = distance(&fingerprint(&ours), &fingerprint(&ref_png));
        assert!(
            ham <= 6 && mean <= 3.0,
            "{file}: {ham} bits, mean colour off by {mean:.2}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quality_goldens_perceptual_hashes_within_tolerance() {
    let s = start(|_| {});
    let cases = [
        ("rocket-640x427-adobergb.jpg", "w=300&fm=jpeg"),
        ("path-2560x1600-icc.jpg", "w=400&fm=webp"),
        ("seeding-5312x2988-progressive.jpg", "w=400&h=300&fm=jpeg"),
        ("grey-2560x1600-gray.jpg", "w=300&fm=jpeg"),
        ("cmyk-100x100.jpg", "w=100&fm=png"),
        ("dice-800x600-alpha.png", "w=300&fm=png"),
        ("dice-800x600-alpha.png", "w=300&fm=jpeg&bg=336699"),
        ("spacefun-2048x1542-palette.png", "w=300&fm=png"),
        ("horses-402x280-anim.gif", "w=200&fm=png"),
        ("flower-480x360-exif.webp", "w=200&fm=jpeg"),
        ("orientation/Landscape_8.jpg", "w=200&h=200&fm=webp"),
        // The transforms issue: one golden per operation.
        ("rocket-640x427-adobergb.jpg", "w=300&h=300&g=auto&fm=png"),
        ("rocket-640x427-adobergb.jpg", "w=300&h=300&g=east&fm=png"),
        ("rocket-640x427-adobergb.jpg", "crop=100,50,300,200&fm=png"),
        ("rocket-640x427-adobergb.jpg", "w=200&rot=90&flip=h&fm=png"),
        ("rocket-640x427-adobergb.jpg", "w=300&blur=3&fm=png"),
        ("rocket-640x427-adobergb.jpg", "w=300&sharpen=3&fm=png"),
        ("rocket-640x427-adobergb.jpg", "w=300&pixelate=12&fm=png"),
        (
            "rocket-640x427-adobergb.jpg",
            "w=300&brightness=1.3&contrast=1.2&gamma=0.8&fm=png",
        ),
        ("rocket-640x427-adobergb.jpg", "w=300&saturation=0&fm=png"),
        (
            "path-2560x1600-icc.jpg",
            "w=300&trim=100;200;100;200&fm=webp",
        ),
    ];
    let path = format!("{FIXTURES}/goldens.json");
    let bless = std::env::var("REFRACT_BLESS").is_ok_and(|v| v == "1");
    let save = std::env::var("REFRACT_SAVE_OUTPUTS").ok();
    let mut goldens: serde_json::Map<String, serde_json::Value> = if bless {
        serde_json::Map::new()
    } else {
        serde_json::from_str(
            &std::fs::read_to_string(&path)
                .expect("goldens.json missing: run with REFRACT_BLESS=1"),
        )
        .unwrap()
    };
    let mut failures = Vec::new();
    for (file, q) in cases {
        let name = format!("{file}?{q}");
        let (status, _, body) = get(&s.url(&format!("/img/{name}")), None).await;
        assert_eq!(status, 200, "{name}");
        if let Some(dir) = &save {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(
                format!(
                    "{dir}/{}.{}",
                    name.replace(['/', '?', '&', '='], "_"),
                    magic(&body)
                ),
                &body,
            )
            .unwrap();
        }
        let fp = fingerprint(&body);
        if bless {
            goldens.insert(name, serde_json::json!({"dhash": format!("{:016x}", fp.0), "mean": fp.1.map(|m| (m * 100.0).round() / 100.0)}));
            continue;
        }
        let Some(g) = goldens.get(&name) else {
            failures.push(format!("{name}: no golden (run with REFRACT_BLESS=1)"));
            continue;
        };
        let want = (
            u64::from_str_radix(g["dhash"].as_str().unwrap(), 16).unwrap(),
            [
                g["mean"][0].as_f64().unwrap(),
                g["mean"][1].as_f64().unwrap(),
                g["mean"][2].as_f64().unwrap(),
            ],
        );
        let (ham, mean) = distance(&fp, &want);
        if ham > 6 || mean > 3.0 {
            failures.push(format!(
                "{name}: dhash off by {ham} bits, mean colour off by {mean:.2}"
            ));
        }
    }
    if bless {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&goldens).unwrap() + "\n",
        )
        .unwrap();
    }
    assert!(
        failures.is_empty(),
        "golden mismatches:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_exif_and_xmp_are_stripped_from_outputs() {
    let s = start(|_| {});
    for (file, fm) in [
        ("orientation/Landscape_6.jpg", "jpeg"),
        ("flower-480x360-exif.webp", "webp"),
        ("flower-480x360-exif.webp", "jpeg"),
        ("path-2560x1600-icc.jpg", "png"),
    ] {
        let src = std::fs::read(format!("{FIXTURES}/{file}")).unwrap();
        assert!(
            src.windows(4).any(|w| w == b"Exif" || w == b"EXIF"),
            "{file} carries EXIF"
        );
        let (st, _, body) = get(&s.url(&format!("/img/{file}?w=100&fm={fm}")), None).await;
        assert_eq!(st, 200);
        for needle in [&b"Exif"[..], b"EXIF", b"eXIf", b"http://ns.adobe.com/xap"] {
            assert!(
                !body.windows(needle.len()).any(|w| w == needle),
                "{file} -> {fm} still has {:?}",
                String::from_utf8_lossy(needle)
            );
        }
    }
}
