//! Uploads through the real server into a real SQLite file and a real folder: every field
//! spelling, metadata, dedupe, atomic batches, every refusal, restart and crash recovery.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::*;
use common::{dims, get, magic};
use serde_json::Value;

#[tokio::test]
async fn upload_returns_the_full_image_object() {
    let s = start_api(|c| c.server.public_url = Some("https://img.example.com/".into()));
    let api = Api::admin(&s);
    let img = api
        .upload_one(
            "path.jpg",
            &fixture("path-2560x1600-icc.jpg"),
            &[
                ("tags", "Nature, trail"),
                ("description", "A path in the woods"),
            ],
        )
        .await;
    let id = img["id"].as_str().unwrap();
    let key = img["key"].as_str().unwrap();
    assert!(
        key.starts_with("default/") && key.ends_with(".jpg"),
        "{key}"
    );
    assert_eq!(img["url"], format!("https://img.example.com/img/{key}"));
    assert_eq!(
        img["urls"]["webp"],
        format!("https://img.example.com/img/{key}?fm=webp")
    );
    assert_eq!(
        img["urls"]["avif"],
        format!("https://img.example.com/img/{key}?fm=avif")
    );
    assert!(img["urls"]["thumb"].as_str().unwrap().contains("thumb=1"));
    assert_eq!(img["filename"], "path.jpg");
    assert_eq!(img["content_type"], "image/jpeg");
    assert_eq!(img["format"], "jpeg");
    assert_eq!(img["bytes"], fixture("path-2560x1600-icc.jpg").len());
    assert_eq!(
        (img["width"].as_u64(), img["height"].as_u64()),
        (Some(2560), Some(1600))
    );
    assert_eq!(img["orientation"], "landscape");
    assert_eq!(img["has_alpha"], false);
    assert_eq!(
        img["blake3"],
        blake3::hash(&fixture("path-2560x1600-icc.jpg"))
            .to_hex()
            .as_str()
    );
    assert_eq!(img["tags"], serde_json::json!(["nature", "trail"]));
    assert_eq!(img["description"], "A path in the woods");
    assert_eq!(img["is_private"], false);
    assert_eq!(img["duplicate"], false);
    assert!(img["expires_at"].is_null());
    assert!(img["created_at"].as_str().unwrap().ends_with('Z'));
    // EXIF of a real Olympus photo; no GPS by default.
    assert_eq!(img["exif"]["make"], "OLYMPUS IMAGING CORP.");
    assert_eq!(img["exif"]["model"], "E-M1");
    assert_eq!(img["exif"]["iso"], 200);
    assert_eq!(img["exif"]["exposure"], "1/15");
    assert_eq!(img["exif"]["taken_at"], "2015-09-06T18:46:57");
    assert!(img["exif"].get("gps").is_none());
    assert!(img["generation_info"].is_null());
    let ph = &img["placeholder"];
    assert!(ph["thumbhash"].as_str().unwrap().len() > 10);
    assert!(ph["dominant_color"].as_str().unwrap().starts_with('#'));
    // The same object from GET, and the bytes from /img.
    let again = api.get(&format!("/api/v1/images/{id}")).await;
    assert_eq!(again.status, 200);
    let mut expected = img.clone();
    expected.as_object_mut().unwrap().remove("duplicate");
    assert_eq!(again.json(), expected);
    let (st, _, body) = get(&s.url(&format!("/img/{key}")), None).await;
    assert_eq!(st, 200);
    assert_eq!(body, fixture("path-2560x1600-icc.jpg"));
    let (st, _, body) = get(&s.url(&format!("/img/{key}?w=300&fm=webp")), None).await;
    assert_eq!((st, magic(&body), dims(&body).0), (200, "webp", 300));
}

#[tokio::test]
async fn every_file_field_spelling_is_accepted() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    for (n, field) in ["file", "files[]", "files", "images[]", "images", "image"]
        .iter()
        .enumerate()
    {
        let r = api
            .upload(Form::new().file(field, "x.png", &distinct_png(n)))
            .await;
        assert_eq!(r.status, 201, "{field}: {}", r.text());
    }
    // A batch in files[].
    let r = api
        .upload(
            Form::new()
                .file("files[]", "a.png", &distinct_png(100))
                .file("files[]", "b.png", &distinct_png(101))
                .text("tags", r#"["batch", "two"]"#)
                .text("isPrivate", "true")
                .text("expiryMinutes", "60"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let imgs = r.json()["images"].as_array().unwrap().clone();
    assert_eq!(imgs.len(), 2);
    for i in &imgs {
        assert_eq!(i["tags"], serde_json::json!(["batch", "two"]));
        assert_eq!(i["is_private"], true);
        assert!(i["expires_at"].is_string());
        assert_eq!(i["has_alpha"], true);
        assert_eq!(i["format"], "png");
    }
    // is_public is the inverse of is_private; repeated tags fields add up.
    let img = api
        .upload_one(
            "c.png",
            &distinct_png(102),
            &[("is_public", "false"), ("tags", "a"), ("tags", "b,c")],
        )
        .await;
    assert_eq!(img["is_private"], true);
    assert_eq!(img["tags"], serde_json::json!(["a", "b", "c"]));
}

#[tokio::test]
async fn orientation_is_reported_after_exif_rotation_and_webp_exif_is_read() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    // Stored 450x600 with EXIF orientation 6: displayed 600x450.
    let img = api
        .upload_one("l6.jpg", &fixture("orientation/Landscape_6.jpg"), &[])
        .await;
    assert_eq!(
        (img["width"].as_u64(), img["height"].as_u64()),
        (Some(600), Some(450))
    );
    assert_eq!(img["orientation"], "landscape");
    assert_eq!(img["exif"]["orientation"], 6);
    let webp = api
        .upload_one("flower.webp", &fixture("flower-480x360-exif.webp"), &[])
        .await;
    assert_eq!(webp["exif"]["make"], "Canon");
    assert_eq!(webp["exif"]["model"], "Canon PowerShot S40");
    let gif = api
        .upload_one("horses.gif", &fixture("horses-402x280-anim.gif"), &[])
        .await;
    assert_eq!(
        (gif["format"].as_str(), gif["content_type"].as_str()),
        (Some("gif"), Some("image/gif"))
    );
}

#[tokio::test]
async fn generation_info_is_read_from_png_text_chunks() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let params = "a cat astronaut, best quality\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42";
    let a1111 = png_with_text(&fixture("dice-800x600-alpha.png"), "parameters", params);
    let img = api.upload_one("sd.png", &a1111, &[]).await;
    assert_eq!(img["generation_info"]["parameters"], params);
    let comfy = png_with_text(
        &png_with_text(
            &fixture("dice-800x600-alpha.png"),
            "prompt",
            r#"{"3":{"class_type":"KSampler"}}"#,
        ),
        "workflow",
        r#"{"nodes":[]}"#,
    );
    let img = api.upload_one("comfy.png", &comfy, &[]).await;
    assert_eq!(
        img["generation_info"]["prompt"],
        r#"{"3":{"class_type":"KSampler"}}"#
    );
    assert_eq!(img["generation_info"]["workflow"], r#"{"nodes":[]}"#);
    // Searchable.
    assert_eq!(api.ids("q=ASTRONAUT").await.len(), 1);
    assert_eq!(api.ids("q=ksampler").await.len(), 1);
}

#[tokio::test]
async fn avif_heic_and_jpeg_xl_uploads_are_stored_with_their_facts() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    for (name, format, ct, (w, h), alpha) in [
        (
            "field-640x427.avif",
            "avif",
            "image/avif",
            (640, 427),
            false,
        ),
        ("codecs/photo.heic", "heic", "image/heic", (600, 450), false),
        (
            "codecs/photo-alpha.heic",
            "heic",
            "image/heic",
            (0, 0),
            true,
        ),
        ("codecs/photo.jxl", "jxl", "image/jxl", (600, 450), false),
        ("codecs/alpha.jxl", "jxl", "image/jxl", (0, 0), true),
    ] {
        let bytes = fixture(name);
        let file = name.rsplit('/').next().unwrap();
        let img = api.upload_one(file, &bytes, &[]).await;
        assert_eq!(img["format"], format, "{name}: {img}");
        assert_eq!(img["content_type"], ct, "{name}");
        assert_eq!(img["has_alpha"], alpha, "{name}");
        assert_eq!(img["bytes"], bytes.len(), "{name}: stored as uploaded");
        if w > 0 {
            assert_eq!(
                (img["width"].as_u64(), img["height"].as_u64()),
                (Some(w), Some(h)),
                "{name}"
            );
        }
        assert!(img["placeholder"].is_object(), "{name}: {img}");
        // Delivered converted to what the client accepts.
        let key = img["key"].as_str().unwrap();
        let (st, _, body) = get(&s.url(&format!("/img/{key}?w=120&fm=webp")), None).await;
        assert_eq!((st, magic(&body)), (200, "webp"), "{name}");
        assert_eq!(dims(&body).0, 120, "{name}");
    }
    // The list filters by the new formats too.
    assert_eq!(api.ids("format=heic").await.len(), 2);
    assert_eq!(api.ids("format=jxl").await.len(), 2);
    // A HEIC converted at upload is stored as a JPEG, upright, without its EXIF.
    let img = api
        .upload_one(
            "c.heic",
            &fixture("codecs/photo.heic"),
            &[("format", "jpeg"), ("remove_exif", "true")],
        )
        .await;
    assert_eq!(
        (img["format"].as_str(), img["width"].as_u64()),
        (Some("jpeg"), Some(600))
    );
}

#[tokio::test]
async fn same_bytes_again_is_the_existing_image() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let bytes = fixture("rocket-640x427-adobergb.jpg");
    let first = api.upload_one("rocket.jpg", &bytes, &[]).await;
    let second = api
        .upload_one("again.jpg", &bytes, &[("tags", "other")])
        .await;
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["filename"], "rocket.jpg");
    // Twice in one batch: one object.
    let r = api
        .upload(Form::new().file("files[]", "x.png", &distinct_png(1)).file(
            "files[]",
            "y.png",
            &distinct_png(1),
        ))
        .await;
    let imgs = r.json()["images"].as_array().unwrap().clone();
    assert_eq!(
        (
            imgs[0]["duplicate"].as_bool(),
            imgs[1]["duplicate"].as_bool()
        ),
        (Some(false), Some(true))
    );
    assert_eq!(imgs[0]["id"], imgs[1]["id"]);
    assert_eq!(files_under(&s.root.join("default")).len(), 2);
    // Another tenant does not see the first tenant's copy: it gets its own image.
    let (_, other) = api.create_key("acme", &["read", "write"]).await;
    let theirs = api
        .with_key(&other)
        .upload_one("rocket.jpg", &bytes, &[])
        .await;
    assert_eq!(theirs["duplicate"], false);
    assert_ne!(theirs["id"], first["id"]);
    assert!(theirs["key"].as_str().unwrap().starts_with("acme/"));
}

#[tokio::test]
async fn remove_exif_strips_metadata_losslessly_and_keeps_orientation() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let original = fixture("path-2560x1600-icc.jpg");
    let img = api
        .upload_one("p.jpg", &original, &[("remove_exif", "true")])
        .await;
    let stored = std::fs::read(s.root.join(img["key"].as_str().unwrap())).unwrap();
    assert!(stored.len() < original.len());
    assert!(
        !stored.windows(7).any(|w| w == b"OLYMPUS"),
        "EXIF/XMP left in the stored file"
    );
    assert!(
        img["exif"].as_object().unwrap().is_empty(),
        "{}",
        img["exif"]
    );
    // Lossless: the entropy-coded data (from the last SOS on) is byte-identical.
    let sos = |b: &[u8]| b.windows(2).rposition(|w| w == [0xFF, 0xDA]).unwrap();
    assert_eq!(&stored[sos(&stored)..], &original[sos(&original)..]);
    assert_eq!(img["blake3"], blake3::hash(&stored).to_hex().as_str());
    // Orientation survives: Landscape_6 still displays 600x450 through /img.
    let l6 = api
        .upload_one(
            "l6.jpg",
            &fixture("orientation/Landscape_6.jpg"),
            &[("removeExif", "1")],
        )
        .await;
    assert_eq!(l6["exif"]["orientation"], 6);
    let (_, _, body) = get(
        &s.url(&format!("/img/{}?w=300", l6["key"].as_str().unwrap())),
        None,
    )
    .await;
    assert_eq!(dims(&body), (300, 225));
    // PNG and WebP too.
    let webp = api
        .upload_one(
            "f.webp",
            &fixture("flower-480x360-exif.webp"),
            &[("remove_exif", "true")],
        )
        .await;
    assert!(webp["exif"].as_object().unwrap().is_empty());
    let (st, _, body) = get(
        &s.url(&format!(
            "/img/{}?w=100&fm=png",
            webp["key"].as_str().unwrap()
        )),
        None,
    )
    .await;
    assert_eq!((st, dims(&body).0), (200, 100));
}

#[tokio::test]
async fn wanted_keys_are_sanitised_and_must_be_free() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let img = api
        .upload_one("a.png", &distinct_png(1), &[("key", "albums/cats/tom.png")])
        .await;
    assert_eq!(img["key"], "default/albums/cats/tom.png");
    assert!(s.root.join("default/albums/cats/tom.png").exists());
    let r = api
        .upload(
            Form::new()
                .file("file", "b.png", &distinct_png(2))
                .text("key", "albums/cats/tom.png"),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "CONFLICT".to_string()));
    // An object already in storage (not through the API) counts as taken, and is left alone.
    std::fs::create_dir_all(s.root.join("default")).unwrap();
    std::fs::write(s.root.join("default/manual.png"), distinct_png(9)).unwrap();
    let r = api
        .upload(
            Form::new()
                .file("file", "c.png", &distinct_png(3))
                .text("key", "manual.png"),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(
        std::fs::read(s.root.join("default/manual.png")).unwrap(),
        distinct_png(9)
    );
    for bad in ["../escape.png", "a//b.png", "/abs.png", "a\\b.png"] {
        let r = api
            .upload(
                Form::new()
                    .file("file", "d.png", &distinct_png(4))
                    .text("key", bad),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.json()["error"]["details"]["param"], "key");
    }
    assert_eq!(api.ids("").await.len(), 1);
}

async fn expect_refused(api: &Api, form: Form, status: u16, code: &str) -> Value {
    let r = api.upload(form).await;
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.code(), code);
    r.json()
}

#[tokio::test]
async fn bad_uploads_get_the_documented_error_and_store_nothing() {
    let s = start_api(|c| {
        c.limits.max_upload_bytes = 300_000;
        c.limits.max_upload_count = 3;
        c.limits.max_source_pixels = 20_000_000;
    });
    let api = Api::admin(&s);
    let jpeg = fixture("rocket-640x427-adobergb.jpg");
    // Not an image.
    expect_refused(
        &api,
        Form::new().file("file", "notes.jpg", b"hello, not an image"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    // A truncated AVIF, HEIC or JPEG XL does not decode.
    for name in [
        "field-640x427.avif",
        "codecs/photo.heic",
        "codecs/photo.jxl",
    ] {
        let whole = fixture(name);
        expect_refused(
            &api,
            Form::new().file("file", name, &whole[..whole.len() * 2 / 5]),
            422,
            "UNPROCESSABLE_IMAGE",
        )
        .await;
    }
    // EXIF cannot be stripped from a HEIC without re-encoding it: said, not ignored.
    let r = expect_refused(
        &api,
        Form::new()
            .file("file", "p.heic", &fixture("codecs/photo.heic"))
            .text("remove_exif", "true"),
        400,
        "BAD_REQUEST",
    )
    .await;
    assert!(r.to_string().contains("format=jpeg"), "{r}");
    // Truncated JPEG: does not fully decode.
    expect_refused(
        &api,
        Form::new().file("file", "t.jpg", &jpeg[..jpeg.len() / 2]),
        422,
        "UNPROCESSABLE_IMAGE",
    )
    .await;
    // A header claiming 100000x100000 pixels: refused from the header.
    expect_refused(
        &api,
        Form::new().file("file", "huge.png", &png_claiming(100_000, 100_000)),
        422,
        "UNPROCESSABLE_IMAGE",
    )
    .await;
    // Over the byte limit (checked while streaming).
    expect_refused(
        &api,
        Form::new().file("file", "big.jpg", &fixture("path-2560x1600-icc.jpg")),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    // Too many files.
    let mut f = Form::new();
    for i in 0..4 {
        f = f.file("files[]", "x.png", &distinct_png(i)[..100]);
    }
    let v = expect_refused(&api, f, 400, "BAD_REQUEST").await;
    assert_eq!(v["error"]["details"]["param"], "files[]");
    // Bad field values name the field.
    for (field, value) in [
        ("expiry_minutes", "soon"),
        ("expiry_minutes", "-5"),
        ("is_private", "maybe"),
        ("tags", "[1, 2]"),
        ("remove_exif", "perhaps"),
    ] {
        let v = expect_refused(
            &api,
            Form::new().file("file", "a.jpg", &jpeg).text(field, value),
            400,
            "BAD_REQUEST",
        )
        .await;
        assert_eq!(v["error"]["details"]["param"], field, "{field}={value}");
    }
    // No file.
    expect_refused(&api, Form::new().text("tags", "x"), 400, "BAD_REQUEST").await;
    // Not multipart.
    let r = api
        .send(
            "POST",
            "/api/v1/images",
            &[("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (415, "UNSUPPORTED_MEDIA_TYPE".to_string())
    );
    // Malformed multipart (no closing boundary).
    let r = api
        .send(
            "POST",
            "/api/v1/images",
            &[("content-type", &format!("multipart/form-data; boundary={BOUNDARY}"))],
            Some(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc").into_bytes()),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "BAD_REQUEST".to_string()));
    // A Content-Length over the whole-request limit is refused before the body is read.
    let r = api
        .send(
            "POST",
            "/api/v1/images",
            &[
                (
                    "content-type",
                    &format!("multipart/form-data; boundary={BOUNDARY}"),
                ),
                ("content-length", "900000000"),
            ],
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (413, "PAYLOAD_TOO_LARGE".to_string()));
    // Nothing stored anywhere.
    assert_eq!(api.ids("").await.len(), 0);
    assert!(files_under(&s.root.join("default")).is_empty());
    assert!(files_under(&s.root.join(".refract-tmp")).is_empty());
}

#[tokio::test]
async fn one_bad_file_in_five_rejects_the_whole_batch() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let jpeg = fixture("rocket-640x427-adobergb.jpg");
    let mut f = Form::new();
    for i in 0..4 {
        f = f.file("files[]", &format!("ok{i}.png"), &distinct_png(i));
    }
    f = f.file("files[]", "bad.jpg", &jpeg[..jpeg.len() - 5000]);
    let r = api.upload(f).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("bad.jpg"));
    assert_eq!(api.ids("").await.len(), 0);
    assert!(files_under(&s.root.join("default")).is_empty());
    // The same four alone are fine.
    let mut f = Form::new();
    for i in 0..4 {
        f = f.file("files[]", &format!("ok{i}.png"), &distinct_png(i));
    }
    assert_eq!(api.upload(f).await.status, 201);
    assert_eq!(api.ids("").await.len(), 4);
}

#[tokio::test]
async fn concurrent_uploads_all_land() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                api.upload(Form::new().file("file", "c.png", &distinct_png(i)))
                    .await
                    .status
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    // The same bytes concurrently: one image, one object.
    let same: Vec<_> = (0..6)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move {
                let r = api
                    .upload(Form::new().file("file", "s.png", &distinct_png(999)))
                    .await;
                (r.status, r.text())
            })
        })
        .collect();
    let mut fresh = 0;
    for t in same {
        let (st, body) = t.await.unwrap();
        assert_eq!(st, 201, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["images"][0]["duplicate"] == false {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one upload stores the bytes");
    assert_eq!(api.ids("per_page=100").await.len(), 13);
    assert_eq!(files_under(&s.root.join("default")).len(), 13);
}

#[tokio::test]
async fn data_survives_a_restart_and_interrupted_writes_are_swept() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let img = api
        .upload_one("keep.png", &distinct_png(1), &[("tags", "kept")])
        .await;
    let (_, key) = api.create_key("acme", &["read"]).await;
    let root = s.root.clone();
    // Simulate a crash between "object written" and "row committed": a journalled object.
    let cfg = s.cfg.clone();
    let s = s.restart(|_| {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let store = common::server_store(&cfg).await;
                store
                    .reserve(&["default/orphan.png".to_string()], 0)
                    .await
                    .unwrap();
            });
        })
        .join()
        .unwrap();
        std::fs::write(root.join("default/orphan.png"), distinct_png(2)).unwrap();
    });
    let api = Api::admin(&s);
    let r = api
        .get(&format!("/api/v1/images/{}", img["id"].as_str().unwrap()))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tags"], serde_json::json!(["kept"]));
    assert_eq!(
        api.with_key(&key).get("/api/v1/keys/validate").await.status,
        200
    );
    let (st, _, _) = get(
        &s.url(&format!("/img/{}", img["key"].as_str().unwrap())),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert!(
        !s.root.join("default/orphan.png").exists(),
        "orphan not swept"
    );
    assert_eq!(files_under(&s.root.join("default")).len(), 1);
}
