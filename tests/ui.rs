//! The web interface in a real browser (Debian's Chromium through npm's playwright-core, and
//! npm's axe-core): the public gallery shows the public images only, with ThumbHash
//! placeholders, `srcset` thumbnails and a keyboard-driven viewer; nothing is fetched from
//! elsewhere; no serious or critical accessibility violation; the files are cached by hashed
//! URL and the pages carry a strict CSP. Screenshots go to `target/ui-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{distinct_png, fixture, start_api, Api};
use serde_json::Value;
use std::process::Command;

/// The pages' servers wait patiently for a CPU slot: two Chromiums and their servers' transforms
/// (a debug build) share the suite's two cores, and a request shed with 503 after the default
/// 10 s would fail a test about pages, not about overload (tests/resilience.rs covers that).
fn patient(c: &mut refract::config::Config) {
    c.limits.queue_timeout_ms = 120_000;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_gallery_in_a_real_browser() {
    let s = start_api(patient);
    let api = Api::admin(&s);
    api.upload_one(
        "a.png",
        &distinct_png(1),
        &[("description", "Dice on a table")],
    )
    .await;
    api.upload_one(
        "b.jpg",
        &fixture("rocket-640x427-adobergb.jpg"),
        &[("tags", "space,rocket")],
    )
    .await;
    api.upload_one(
        "c.webp",
        &fixture("flower-480x360-exif.webp"),
        &[("description", "A flower")],
    )
    .await;
    api.upload_one(
        "d.png",
        &distinct_png(2),
        &[("description", "secret plans"), ("is_private", "true")],
    )
    .await;
    // Another tenant's public image is not in the gallery of tenant default.
    let (_, other) = api.create_key("other", &["read", "write"]).await;
    api.with_key(&other)
        .upload_one("e.png", &distinct_png(3), &[("description", "elsewhere")])
        .await;

    // The API the page uses, without a key.
    let g = Api::new(&s, None).get("/api/v1/gallery?limit=2").await;
    assert_eq!(g.status, 200, "{}", g.text());
    let page: Value = g.json();
    assert_eq!(page["images"].as_array().unwrap().len(), 2);
    assert!(page["images"][0].get("owner").is_none() && page["images"][0].get("key").is_none());
    let rest: Value = Api::new(&s, None)
        .get(&format!(
            "/api/v1/gallery?cursor={}",
            page["next_cursor"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(rest["images"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());

    // The files: hashed URLs immutable, pages no-cache with an ETag and a strict CSP; 304.
    let r = common::client()
        .get(s.url("/gallery"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let csp = common::header(&h, "content-security-policy")
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(common::header(&h, "cache-control"), Some("no-cache"));
    let etag = common::header(&h, "etag").unwrap().to_string();
    let html = r.text().await.unwrap();
    let js = html
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(js.starts_with("/ui/assets/gallery.js?v="), "{js}");
    let r = common::client().get(s.url(&js)).send().await.unwrap();
    assert_eq!(
        common::header(r.headers(), "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let r = common::client()
        .get(s.url("/gallery"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(
        common::client()
            .get(s.url("/ui/assets/nope.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // The browser.
    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/target/ui-screenshots");
    std::fs::create_dir_all(shots).unwrap();
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/gallery_page.mjs"
        ))
        .arg(&s.base)
        .arg(shots)
        .env("EXPECT_ITEMS", "3")
        .output()
        .expect("node");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "gallery page: {said}{}\n(.ci/test.sh installs chromium, playwright-core and axe-core; NODE_PATH must hold them)",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(said.trim()).unwrap();
    assert_eq!(r["items"], 3, "{r}");
    assert_eq!(r["loaded"], 3, "every thumbnail loaded: {r}");
    assert_eq!(r["srcsets"], 3, "{r}");
    assert_eq!(r["placeholders"], 3, "ThumbHash placeholders: {r}");
    let alts: Vec<&str> = r["alts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        alts.contains(&"Dice on a table") && alts.contains(&"rocket, space"),
        "{alts:?}"
    );
    assert!(
        !alts
            .iter()
            .any(|a| a.contains("secret") || a.contains("elsewhere")),
        "{alts:?}"
    );
    // Thumbnails are sized variants, not originals; the phone asks for wider ones (DPR 3).
    for src in r["current_srcs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(r["phone_srcs"].as_array().unwrap())
    {
        assert!(src.as_str().unwrap().contains("w="), "{src}");
    }
    common::assert_browser_report(&r, &s.base);
    assert_eq!(r["console_errors"], serde_json::json!([]), "{r}");
    let v = &r["viewer"];
    assert!(v["first"].as_str().unwrap().ends_with("1 / 3"), "{v}");
    assert!(v["next"].as_str().unwrap().ends_with("2 / 3"), "{v}");
    assert!(
        v["wrapped"].as_str().unwrap().ends_with("3 / 3"),
        "← from the first wraps: {v}"
    );
    assert!(v["src"].as_str().unwrap().contains("w="), "{v}");
    assert_eq!(
        (v["closed"].as_bool(), v["focus_back"].as_bool()),
        (Some(true), Some(true)),
        "{v}"
    );
    for f in [
        "gallery-desktop.png",
        "gallery-viewer-desktop.png",
        "gallery-phone.png",
    ] {
        assert!(
            std::fs::metadata(format!("{shots}/{f}")).unwrap().len() > 1000,
            "{f}"
        );
    }
}

const PARAMETERS: &str =
    "a castle on a hill\nNegative prompt: blurry\nSteps: 30, Sampler: Euler a, \
    CFG scale: 7, Seed: 4242, Size: 800x600, Model: dreamshaper_8";

/// Sign in, browse, filter with NOT, read a prompt in the viewer, sign out: in Chromium, with
/// axe-core on every page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_browse_filter_and_view_in_a_real_browser() {
    let s = start_api(|c| {
        patient(c);
        c.accounts.admin_email = Some("admin@example.com".into());
        c.accounts.admin_password = Some(refract::util::secret::Secret(
            "a long admin password".into(),
        ));
    });
    let api = Api::admin(&s);
    let dice = fixture("dice-800x600-alpha.png");
    api.upload_one(
        "castle.png",
        &common::api::png_with_text(&dice, "parameters", PARAMETERS),
        &[("tags", "castle")],
    )
    .await;
    api.upload_one(
        "cat.jpg",
        &fixture("rocket-640x427-adobergb.jpg"),
        &[("tags", "cat,night"), ("description", "A cat")],
    )
    .await;
    api.upload_one(
        "flower.webp",
        &fixture("flower-480x360-exif.webp"),
        &[("description", "A flower")],
    )
    .await;
    // `/` leads to the interface.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(s.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), common::header(r.headers(), "location")),
        (302, Some("/ui/"))
    );

    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/target/ui-screenshots");
    std::fs::create_dir_all(shots).unwrap();
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/app_page.mjs"
        ))
        .args([&s.base, shots, "admin@example.com", "a long admin password"])
        .env("EXPECT_ITEMS", "3")
        .env("EXPECT_WITHOUT_CAT", "2")
        .env(
            "UPLOAD_FILES",
            format!(
                "{}/grey-2560x1600-gray.jpg,{}/cmyk-100x100.jpg",
                common::FIXTURES,
                common::FIXTURES
            ),
        )
        .output()
        .expect("node");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "app page: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(said.trim()).unwrap();
    assert_eq!(r["wrong_password"], "invalid email or password", "{r}");
    assert_eq!(r["who"], "admin@example.com");
    assert_eq!(r["all"].as_array().unwrap().len(), 3, "{r}");
    let without: Vec<&str> = r["without_cat"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        !without.contains(&"A cat") && without.contains(&"A flower"),
        "{without:?}"
    );
    assert_eq!(
        r["cookie_visible_to_script"], "",
        "the session cookie is HttpOnly"
    );
    assert_eq!(r["prompt"], "a castle on a hill");
    assert_eq!(r["negative"], "blurry");
    let params = r["params"].as_str().unwrap();
    assert!(
        params.contains("dreamshaper_8") && params.contains("4242") && params.contains("Euler a"),
        "{params}"
    );
    assert!(
        r["first"].as_str().unwrap().ends_with("1 / 3")
            && r["second"].as_str().unwrap().ends_with("2 / 3"),
        "{r}"
    );
    assert_eq!(r["signed_out"], true);
    // Dropped files: two stored (with the batch's tag), the corrupt one refused with the API's
    // own message, alone.
    let up = &r["upload"];
    assert_eq!(up["overall"], "2 of 3 uploaded, 1 refused", "{up}");
    let rows = up["rows"].as_array().unwrap();
    assert_eq!(rows.iter().filter(|r| r["cls"] == "ok").count(), 2, "{up}");
    let bad = rows.iter().find(|r| r["name"] == "broken.png").unwrap();
    assert_eq!(bad["cls"], "failed");
    assert!(
        bad["state"].as_str().unwrap().contains("broken.png"),
        "{bad}"
    );
    assert_eq!(api.ids("tag=dropped").await.len(), 2);
    common::assert_browser_report(&r, &s.base);
    // The only console errors allowed: the expected 401s (wrong password, no session yet) and
    // the corrupt upload's 415.
    for e in r["console_errors"].as_array().unwrap() {
        let e = e.as_str().unwrap();
        assert!(e.contains("401") || e.contains("415"), "{e}");
    }
}

/// Batch actions, zoom, sharing (opened without a session, then revoked), albums (filled,
/// reordered, shared by token, revoked), admin (a key created and revoked; users, tenants,
/// charts, audit, config), a confirmed delete, an API-key sign-in: in Chromium, axe on each page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_albums_admin_and_batch_actions_in_a_real_browser() {
    let s = start_api(|c| {
        patient(c);
        c.accounts.admin_email = Some("admin@example.com".into());
        c.accounts.admin_password = Some(refract::util::secret::Secret(
            "a long admin password".into(),
        ));
    });
    let api = Api::admin(&s);
    for (name, bytes, fields) in [
        (
            "alpha.png",
            distinct_png(11),
            vec![("description", "Alpha")],
        ),
        (
            "beta.jpg",
            fixture("rocket-640x427-adobergb.jpg"),
            vec![("description", "Beta")],
        ),
        (
            "gamma.png",
            distinct_png(12),
            vec![("description", "Gamma"), ("is_private", "true")],
        ),
        (
            "delta.jpg",
            fixture("grey-2560x1600-gray.jpg"),
            vec![("description", "Delta")],
        ),
    ] {
        api.upload_one(name, &bytes, &fields).await;
    }
    let (_, read_key) = api.create_key("default", &["read"]).await;
    // One image in a subfolder, for the folder tree.
    let beta: Value = api.get("/api/v1/images?q=beta.jpg").await.json();
    let key = beta["images"][0]["key"].as_str().unwrap().to_string();
    let moved = api
        .json(
            "POST",
            "/api/v1/library/ops",
            &serde_json::json!({"ops": [{"op": "move", "from": key, "to": "default/trips/"}]}),
        )
        .await;
    assert_eq!(
        moved.json()["results"][0]["status"],
        "ok",
        "{}",
        moved.text()
    );

    let shots = concat!(env!("CARGO_MANIFEST_DIR"), "/target/ui-screenshots");
    std::fs::create_dir_all(shots).unwrap();
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/manage_page.mjs"
        ))
        .args([
            &s.base,
            shots,
            "admin@example.com",
            "a long admin password",
            &read_key,
        ])
        .env("EXPECT_ITEMS", "4")
        .output()
        .expect("node");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "pages: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_str(said.trim()).unwrap();
    assert!(r.get("error").is_none(), "{}", r["error"]);

    assert_eq!(r["folder_items"], serde_json::json!(["Beta"]), "{r}");
    // The private image's thumbnail came through the token (an object URL).
    assert_eq!(r["private_thumbs"], serde_json::json!(["blob:"]), "{r}");
    // Checkbox, then shift-click: three selected, tagged in one batch.
    assert_eq!(r["selected"], 3, "{r}");
    assert_eq!(r["batch_count"], "3 selected");
    assert_eq!(r["batch_notice"], "Tagged: 3 of 3.");
    assert_eq!(r["batch_hidden_after"], true);
    // Zoom loads a larger variant over the screen-sized one; 0 resets.
    let z = &r["zoom"];
    assert_eq!(z["zoomed"], true, "{z}");
    assert!(
        z["transform"].as_str().unwrap().contains("scale(1.5)"),
        "{z}"
    );
    assert_ne!(z["src"], z["before"]);
    assert_eq!(z["reset"], "");
    // The share link opens the image without a session, and nothing once revoked.
    assert!(r["share_url"].as_str().unwrap().contains("/s/"), "{r}");
    assert_eq!(r["clipboard"], r["share_url"], "the copy button copies it");
    assert_eq!(r["share_open"]["status"], 200, "{r}");
    assert!(r["share_open"]["type"]
        .as_str()
        .unwrap()
        .starts_with("image/"));
    assert!(r["share_open"]["width"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["share_revoked"]["status"], 404, "{r}");
    // Tags edited inline in the viewer.
    assert_eq!(r["tags_saved"], "Saved.", "{r}");
    assert_eq!(api.ids("tag=inline").await.len(), 1);
    // Three were tagged in the batch (one of them then edited inline, which replaced its tags).
    assert_eq!(api.ids("tag=batch").await.len(), 2);
    // The album: reordered, shared by a token that opens the private image too, then revoked.
    let before = r["album_order_before"].as_array().unwrap();
    let after = r["album_order_after"].as_array().unwrap();
    assert_eq!(before.len(), 2);
    assert_eq!((&before[0], &before[1]), (&after[1], &after[0]), "{r}");
    assert_eq!(r["shared_album"]["title"], "Trip");
    let alts: Vec<&str> = r["shared_album"]["alts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        alts.contains(&"Gamma"),
        "the token opens private images: {alts:?}"
    );
    assert!(
        r["shared_album_revoked"]
            .as_str()
            .unwrap()
            .starts_with("This album cannot be shown"),
        "{r}"
    );
    let albums: Value = api.get("/api/v1/albums").await.json();
    let trip = &albums["albums"][0];
    assert_eq!(trip["name"], "Trip");
    let first: Value = api
        .get(&format!(
            "/api/v1/albums/{}/images",
            trip["id"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(
        trip["cover_image_id"], first["images"][0]["id"],
        "the cover set in the page, first in the new order"
    );
    // The viewer names the albums of the image it shows (the first, in Trip).
    assert_eq!(r["viewer_albums"], "In Trip", "{r}");
    // Admin: the key worked until revoked.
    assert_eq!(
        (&r["key_valid"], &r["key_after_revoke"]),
        (&200.into(), &401.into())
    );
    let admin = &r["admin"];
    assert!(admin["users"]
        .as_array()
        .unwrap()
        .contains(&"admin@example.com".into()));
    assert!(admin["tenants"]
        .as_array()
        .unwrap()
        .contains(&"default".into()));
    assert_eq!(admin["charts"], 3);
    assert!(admin["bars"].as_u64().unwrap() >= 30, "{admin}");
    assert!(admin["audit_rows"].as_u64().unwrap() > 0);
    let config = admin["config"].as_str().unwrap();
    assert!(config.contains("\"server\""), "{config}");
    assert!(
        !config.contains("a long admin password") && !config.contains(&read_key),
        "no secrets in the page's config"
    );
    // The confirmed delete.
    assert!(r["confirm_text"]
        .as_str()
        .unwrap()
        .starts_with("Delete 1 image?"));
    assert_eq!(r["after_delete"], 3);
    assert_eq!(api.ids("").await.len(), 3);
    // An API key signs in; a read key gets neither uploads, selection nor admin.
    assert_eq!(r["bad_key"], "invalid or missing API key", "{r}");
    let k = &r["key_session"];
    assert!(k["who"].as_str().unwrap().starts_with("API key"), "{k}");
    assert_eq!(
        (&k["upload_hidden"], &k["boxes"], &k["admin_link"]),
        (&true.into(), &0.into(), &false.into()),
        "{k}"
    );
    common::assert_browser_report(&r, &s.base);
    // The only console errors allowed: the revoked share's and album's 404s, the bad key's
    // 401, and Chromium's own image document refused its inline style by the image's
    // `Content-Security-Policy: default-src 'none'` (the image shows regardless: width above).
    for e in r["console_errors"].as_array().unwrap() {
        let e = e.as_str().unwrap();
        assert!(
            e.contains("404")
                || e.contains("401")
                || e.starts_with("Applying inline style violates")
                    && e.contains("'default-src 'none''"),
            "{e}"
        );
    }
    for f in [
        "albums-desktop.png",
        "albums-phone.png",
        "admin-desktop.png",
        "admin-phone.png",
        "shared-album-desktop.png",
        "viewer-share-desktop.png",
    ] {
        assert!(
            std::fs::metadata(format!("{shots}/{f}")).unwrap().len() > 1000,
            "{f}"
        );
    }
}
