//! The library of folders: a generated tree of real images (nested folders, A1111 and ComfyUI
//! generation info, a non-image, a corrupt image, a hidden folder, a symlink out of the root)
//! indexed by the real server; browsing, searching by field, folder and regex; files added,
//! changed and deleted while it runs (the watcher, and a rescan on request); the same on S3
//! (SeaweedFS).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{fixture, png_with_text, Api};
use common::{start_with, Server};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const A1111: &str = "a castle on a hill, <lora:castleStyle:0.7>\nNegative prompt: blurry\n\
    Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 4242, Size: 800x600, \
    Model hash: 6ce0161689, Model: dreamshaper_8";

fn comfy() -> String {
    json!({
        "3": {"class_type": "KSampler", "inputs": {"seed": 99, "steps": 20, "cfg": 8.0,
              "sampler_name": "euler", "positive": ["6", 0], "negative": ["7", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl/juggernautXL.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox in snow"}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "ugly"}},
        "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "foxStyle.safetensors"}}
    })
    .to_string()
}

/// The tree: 6 images in 3 folders, plus files that must not be indexed.
fn make_tree(root: &Path, outside: &Path) {
    let dice = fixture("dice-800x600-alpha.png");
    let w = |rel: &str, bytes: &[u8]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    w(
        "sd/2024/castle.png",
        &png_with_text(&dice, "parameters", A1111),
    );
    w("sd/2024/fox.png", &png_with_text(&dice, "prompt", &comfy()));
    w(
        "sd/2024/plain.png",
        &png_with_text(&dice, "Comment", "no generation info"),
    );
    w(
        "sd/2025/jan/copy.png",
        &png_with_text(&dice, "parameters", A1111),
    );
    w("photos/rocket.jpg", &fixture("rocket-640x427-adobergb.jpg"));
    w("top.webp", &fixture("flower-480x360-exif.webp"));
    w("sd/notes.txt", b"prompts I liked");
    w("sd/2024/broken.png", b"\x89PNG\r\n\x1a\nthis is not a png");
    w(".thumbs/x.png", &dice);
    std::fs::write(outside.join("secret.png"), &dice).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.png"), root.join("sd/escape.png")).unwrap();
}

fn library_server(tweak: impl FnOnce(&mut refract::config::Config)) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    make_tree(&root, outside.path());
    let mut cfg = refract::config::Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.data_dir = dir.path().to_path_buf();
    cfg.server.log = "warn".into();
    cfg.auth.admin_key = Some(refract::util::secret::Secret(common::api::ADMIN.into()));
    cfg.ratelimit.per_minute = 100_000;
    cfg.library.enabled = true;
    cfg.library.rescan_secs = 0;
    tweak(&mut cfg);
    (start_with(cfg, dir, root), outside)
}

/// Wait until a scan after `after` scans has finished; returns the status.
async fn scanned(api: &Api, after: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = api.get("/api/v1/library/status").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let s = r.json()["status"].clone();
        if s["scans"].as_u64().unwrap() > after && !s["running"].as_bool().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "no scan finished: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Poll a listing until `check` holds (the watcher's scan is asynchronous).
async fn eventually(api: &Api, path: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = api.get(path).await.json();
        if check(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never became as expected: {v}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_tree_is_indexed_browsed_and_searched() {
    let (s, _outside) = library_server(|_| {});
    let api = Api::admin(&s);
    let st = scanned(&api, 0).await;
    assert_eq!(st["indexed"], 6, "{st}");
    assert_eq!(st["failed"], 1, "{st}");
    assert!(st["failures"]["sd/2024/broken.png"].is_string(), "{st}");
    assert!(st["skipped_files"]["sd/notes.txt"].is_string(), "{st}");
    assert!(st["skipped_files"][".thumbs/x.png"].is_string(), "{st}");
    assert!(st["rate"].as_f64().unwrap() > 0.0);

    let all = api
        .get("/api/v1/images?source=indexed&per_page=200")
        .await
        .json();
    assert_eq!(
        keys(&all),
        vec![
            "photos/rocket.jpg",
            "sd/2024/castle.png",
            "sd/2024/fox.png",
            "sd/2024/plain.png",
            "sd/2025/jan/copy.png",
            "top.webp"
        ],
        "the symlink out of the root is not followed"
    );
    let castle = all["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == "sd/2024/castle.png")
        .unwrap();
    assert_eq!(castle["source"], "indexed");
    assert_eq!(castle["folder"], "sd/2024");
    assert_eq!(castle["file_name"], "castle.png");
    assert_eq!(
        (castle["width"].as_u64(), castle["height"].as_u64()),
        (Some(800), Some(600))
    );
    assert!(castle["file_mtime"].is_string());
    let g = &castle["generation"];
    assert_eq!(g["model"], "dreamshaper_8");
    assert_eq!(g["seed"], "4242");
    assert_eq!(g["steps"], 30);
    assert_eq!(g["negative_prompt"], "blurry");
    assert_eq!(g["loras"], json!(["castlestyle"]));
    assert!(castle["placeholder"]["thumbhash"].is_string());
    // It is served like any file.
    let r = common::client()
        .get(castle["urls"]["thumb"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Search by field, folder, regex.
    let q = |query: &'static str| {
        let api = api.clone();
        async move { keys(&api.get(&format!("/api/v1/images?{query}")).await.json()) }
    };
    assert_eq!(
        q("model=DreamShaper").await,
        vec!["sd/2024/castle.png", "sd/2025/jan/copy.png"]
    );
    assert_eq!(q("model=juggernautxl").await, vec!["sd/2024/fox.png"]);
    assert_eq!(q("lora=foxstyle").await, vec!["sd/2024/fox.png"]);
    assert_eq!(q("lora=castleStyle&seed=4242").await.len(), 2);
    assert_eq!(q("sampler=euler").await, vec!["sd/2024/fox.png"]);
    assert_eq!(q("folder=sd&recursive=false").await, Vec::<String>::new());
    assert_eq!(q("folder=sd/2024&recursive=false").await.len(), 3);
    assert_eq!(q("folder=sd").await.len(), 4);
    assert_eq!(
        q("regex=red%20fox|castle").await,
        vec![
            "sd/2024/castle.png",
            "sd/2024/fox.png",
            "sd/2025/jan/copy.png"
        ]
    );
    assert_eq!(
        q("regex=castle&path_only=true").await,
        vec!["sd/2024/castle.png"]
    );
    assert_eq!(q("regex=%5Ephotos/").await, vec!["photos/rocket.jpg"]);
    // Bounded regexes: a huge automaton is refused, a classic backtracking trap is linear.
    let r = api
        .get("/api/v1/images?regex=(%5Cw%7B100%7D)%7B100%7D")
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["details"]["param"], "regex");
    assert_eq!(api.get("/api/v1/images?regex=(a*)*b").await.status, 200);
    assert_eq!(api.get("/api/v1/images?regex=(").await.status, 400);
    assert_eq!(api.get("/api/v1/images?per_page=200").await.status, 200);
    assert_eq!(api.get("/api/v1/images?per_page=201").await.status, 400);

    // Folders: the root's subfolders with counts and covers, its own images.
    let root = api.get("/api/v1/folders").await.json();
    let names: Vec<(&str, u64)> = root["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap(),
                f["image_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, vec![("photos", 1), ("sd", 4)], "{root}");
    assert_eq!(keys(&root), vec!["top.webp"]);
    assert!(root["parent"].is_null());
    let cover = root["folders"][1]["cover_url"].as_str().unwrap();
    assert_eq!(
        common::client().get(cover).send().await.unwrap().status(),
        200
    );
    let sd = api.get("/api/v1/folders?path=sd/").await.json();
    assert_eq!(sd["parent"], "");
    assert_eq!(sd["folders"].as_array().unwrap().len(), 2);
    let page = api
        .get("/api/v1/folders?path=sd/2024&per_page=2&page=2")
        .await
        .json();
    assert_eq!(
        (page["total"].as_u64(), keys(&page)),
        (Some(3), vec!["sd/2024/plain.png".to_string()])
    );
    assert_eq!(api.get("/api/v1/folders?path=../etc").await.status, 400);

    // Tags work on library images like on uploads.
    let id = castle["id"].as_str().unwrap();
    let r = api
        .json(
            "PATCH",
            &format!("/api/v1/images/{id}"),
            &json!({"tags": ["favourite"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(q("tag=favourite").await, vec!["sd/2024/castle.png"]);

    // An upload is not indexed a second time by the next scan.
    let up = api
        .upload_one("u.png", &common::api::distinct_png(5), &[])
        .await;
    api.send("POST", "/api/v1/library/rescan", &[], None).await;
    let st = scanned(&api, 1).await;
    assert_eq!(st["unchanged"], 6, "{st}");
    assert_eq!(st["indexed"], 0, "{st}");
    let ups = api.get("/api/v1/images?source=upload").await.json();
    assert_eq!(keys(&ups), vec![up["key"].as_str().unwrap().to_string()]);
    // Tags survive a rescan.
    assert_eq!(q("tag=favourite").await, vec!["sd/2024/castle.png"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_disk_are_picked_up_by_the_watcher_and_by_a_rescan() {
    let (s, _outside) = library_server(|_| {});
    let api = Api::admin(&s);
    scanned(&api, 0).await;
    let root = s.root.clone();
    // Added, changed, deleted while running: the watcher sees them.
    std::fs::write(
        root.join("sd/2025/new.jpg"),
        fixture("rocket-640x427-adobergb.jpg"),
    )
    .unwrap();
    std::fs::write(root.join("top.webp"), fixture("dice-800x600-alpha.png")).unwrap();
    std::fs::remove_file(root.join("photos/rocket.jpg")).unwrap();
    let v = eventually(&api, "/api/v1/images?source=indexed&per_page=200", |v| {
        let k = keys(v);
        k.contains(&"sd/2025/new.jpg".to_string()) && !k.contains(&"photos/rocket.jpg".to_string())
    })
    .await;
    assert_eq!(keys(&v).len(), 6);
    let top = eventually(&api, "/api/v1/images?folder=&recursive=false", |v| {
        v["images"][0]["format"] == "png"
    })
    .await;
    assert_eq!(
        top["images"][0]["width"], 800,
        "re-analysed after the change"
    );
    // The deleted file's variants are gone too: its URL is a 404.
    let r = common::client()
        .get(s.url("/img/photos/rocket.jpg?w=50"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_watcher_a_rescan_on_request_catches_up() {
    let (s, _outside) = library_server(|c| c.library.watch = false);
    let api = Api::admin(&s);
    let st = scanned(&api, 0).await;
    let n = st["scans"].as_u64().unwrap();
    std::fs::remove_file(s.root.join("sd/2024/plain.png")).unwrap();
    std::fs::write(
        s.root.join("photos/again.png"),
        fixture("dice-800x600-alpha.png"),
    )
    .unwrap();
    let r = api.send("POST", "/api/v1/library/rescan", &[], None).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let st = scanned(&api, n).await;
    assert_eq!(
        (st["indexed"].as_u64(), st["removed"].as_u64()),
        (Some(1), Some(1)),
        "{st}"
    );
    let k = keys(
        &api.get("/api/v1/images?source=indexed&per_page=200")
            .await
            .json(),
    );
    assert!(
        k.contains(&"photos/again.png".to_string())
            && !k.contains(&"sd/2024/plain.png".to_string())
    );
    // Only admins see or start scans.
    let (_, member) = api.create_key("default", &["read", "write"]).await;
    let m = api.with_key(&member);
    assert_eq!(m.get("/api/v1/library/status").await.status, 403);
    assert_eq!(
        m.send("POST", "/api/v1/library/rescan", &[], None)
            .await
            .status,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_prefix_is_indexed_by_listing() {
    let (endpoint, bucket, key, secret) = common::s3::s3_env();
    let prefix = format!("lib-{}/", std::process::id());
    let op = common::s3::s3_operator(&endpoint, &bucket, &key, &secret, &prefix);
    let dice = fixture("dice-800x600-alpha.png");
    op.write("gen/a.png", png_with_text(&dice, "parameters", A1111))
        .await
        .unwrap();
    op.write("gen/b/c.jpg", fixture("rocket-640x427-adobergb.jpg"))
        .await
        .unwrap();
    op.write("gen/readme.md", b"hello".to_vec()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("unused");
    let mut cfg = refract::config::Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.data_dir = dir.path().to_path_buf();
    cfg.server.log = "warn".into();
    cfg.auth.admin_key = Some(refract::util::secret::Secret(common::api::ADMIN.into()));
    cfg.library.enabled = true;
    cfg.library.roots = vec!["gen".into()];
    cfg.library.rescan_secs = 0;
    common::s3::s3_config(&mut cfg, &endpoint, &bucket, &key, &secret, &prefix);
    let s = start_with(cfg, dir, root);
    let api = Api::admin(&s);
    let st = scanned(&api, 0).await;
    assert_eq!(
        (st["indexed"].as_u64(), st["skipped"].as_u64()),
        (Some(2), Some(1)),
        "{st}"
    );
    assert_eq!(
        keys(&api.get("/api/v1/images?model=dreamshaper").await.json()),
        vec!["gen/a.png"]
    );
    op.delete("gen/a.png").await.unwrap();
    api.send("POST", "/api/v1/library/rescan", &[], None).await;
    let st = scanned(&api, 1).await;
    assert_eq!(st["removed"], 1, "{st}");
    assert_eq!(
        keys(&api.get("/api/v1/folders?path=gen/b").await.json()),
        vec!["gen/b/c.jpg"]
    );
    op.delete_with("").recursive(true).await.unwrap();
}

/// What Python's `zipfile` makes of an archive: names, `testzip()` (every CRC checked) and
/// each entry's bytes as hex of its blake3-free SHA-256.
fn read_zip(bytes: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.zip");
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import hashlib, json, sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             print(json.dumps({'names': z.namelist(), 'bad': z.testzip(),\n\
               'sha256': {n: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()}}))",
        )
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sha256_hex(b: &[u8]) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg("import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_or_a_selection_downloads_as_a_streamed_zip() {
    let (s, _outside) = library_server(|_| {});
    let api = Api::admin(&s);
    scanned(&api, 0).await;
    let r = api
        .json("POST", "/api/v1/downloads", &json!({"folder": "sd"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"sd.zip\"")
    );
    assert!(
        r.header("content-length").is_none(),
        "streamed, not buffered"
    );
    let z = read_zip(&r.body);
    assert!(z["bad"].is_null(), "{z}");
    let mut names: Vec<&str> = z["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        vec![
            "2024/castle.png",
            "2024/fox.png",
            "2024/plain.png",
            "2025/jan/copy.png"
        ]
    );
    for n in &names {
        let on_disk = std::fs::read(s.root.join("sd").join(n)).unwrap();
        assert_eq!(z["sha256"][n], sha256_hex(&on_disk), "{n}");
    }
    // Not recursive: only the folder's own files.
    let r = api
        .json(
            "POST",
            "/api/v1/downloads",
            &json!({"folder": "sd/2024", "recursive": false}),
        )
        .await;
    assert_eq!(read_zip(&r.body)["names"].as_array().unwrap().len(), 3);
    // By ids: file names; a file gone since indexing is left out and named in ERRORS.txt.
    let all = api
        .get("/api/v1/images?folder=sd/2024&recursive=false&sort=name")
        .await
        .json();
    let ids: Vec<&str> = all["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    std::fs::rename(s.root.join("sd/2024/plain.png"), s.root.join("plain.moved")).unwrap();
    let r = api
        .json("POST", "/api/v1/downloads", &json!({"image_ids": ids}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let z = read_zip(&r.body);
    assert_eq!(
        z["names"],
        json!(["castle.png", "fox.png", "ERRORS.txt"]),
        "{z}"
    );
    // Refused before anything is sent.
    let r = api
        .json("POST", "/api/v1/downloads", &json!({"image_ids": ["nope"]}))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        api.json("POST", "/api/v1/downloads", &json!({}))
            .await
            .status,
        400
    );
    assert_eq!(
        api.json("POST", "/api/v1/downloads", &json!({"folder": "../x"}))
            .await
            .status,
        400
    );
    assert_eq!(
        api.json("POST", "/api/v1/downloads", &json!({"folder": "empty"}))
            .await
            .status,
        404
    );
}

async fn ops(api: &Api, ops: Value) -> Value {
    let r = api
        .json("POST", "/api/v1/library/ops", &json!({ "ops": ops }))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn statuses(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_operations_keep_storage_index_and_caches_consistent() {
    let (s, _outside) = library_server(|_| {});
    let api = Api::admin(&s);
    scanned(&api, 0).await;
    let castle = api
        .get("/api/v1/images?folder=sd/2024&regex=castle&path_only=true")
        .await
        .json()["images"][0]
        .clone();
    let id = castle["id"].as_str().unwrap().to_string();
    api.json(
        "PATCH",
        &format!("/api/v1/images/{id}"),
        &json!({"tags": ["keep"]}),
    )
    .await;
    // A variant in the cache under the old key.
    let old_url = s.url("/img/sd/2024/castle.png?w=64");
    assert_eq!(
        common::client()
            .get(&old_url)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let v = ops(
        &api,
        json!([
            {"op": "mkdir", "path": "archive/2024"},
            {"op": "move", "from": "sd/2024/castle.png", "to": "archive/2024/"},
            {"op": "rename", "from": "archive/2024/castle.png", "to": "castle-final.png"},
            {"op": "copy", "from": "sd/2024/fox.png", "to": "archive/2024/fox.png"},
            {"op": "move", "from": "sd/2024/plain.png", "to": "archive/2024/fox.png"},
            {"op": "move", "from": "sd/nothing.png", "to": "x.png"},
            {"op": "delete", "path": "archive/"},
            {"op": "move", "from": "sd/2024/plain.png", "to": "../../etc/x.png"},
            {"op": "delete", "path": "photos/rocket.jpg"},
            {"op": "delete", "path": "photos/"},
        ]),
    )
    .await;
    assert_eq!(
        statuses(&v),
        vec![
            "ok",
            "ok",
            "ok",
            "ok",
            "conflict",
            "not_found",
            "conflict",
            "invalid",
            "ok",
            "ok"
        ],
        "{v}"
    );
    assert_eq!(v["success"], false);
    let root = &s.root;
    // Storage: moved, renamed, copied, deleted; nothing overwritten.
    assert!(!root.join("sd/2024/castle.png").exists());
    assert!(root.join("archive/2024/castle-final.png").exists());
    assert!(root.join("sd/2024/fox.png").exists() && root.join("archive/2024/fox.png").exists());
    assert!(
        root.join("sd/2024/plain.png").exists(),
        "the conflicting move changed nothing"
    );
    assert!(!root.join("photos").exists(), "the emptied folder is gone");
    // Index: the same image (id, tags) at its new key; the copy is a new image.
    let r = api.get(&format!("/api/v1/images/{id}")).await.json();
    assert_eq!(r["key"], "archive/2024/castle-final.png");
    assert_eq!(r["file_name"], "castle-final.png");
    assert_eq!(r["tags"], json!(["keep"]));
    let copies = keys(
        &api.get("/api/v1/images?regex=fox&path_only=true")
            .await
            .json(),
    );
    assert_eq!(copies, vec!["archive/2024/fox.png", "sd/2024/fox.png"]);
    // Caches: the old key's variant is gone; the new key serves.
    assert_eq!(
        common::client()
            .get(&old_url)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = common::client()
        .get(s.url("/img/archive/2024/castle-final.png?w=64"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A folder moves with everything in it; the next scan finds nothing to add or remove.
    let v = ops(
        &api,
        json!([{"op": "move", "from": "sd/", "to": "done/sd"}]),
    )
    .await;
    assert_eq!(statuses(&v), vec!["ok"], "{v}");
    assert_eq!(v["results"][0]["files"], 3);
    let n = api.get("/api/v1/library/status").await.json()["status"]["scans"]
        .as_u64()
        .unwrap();
    api.send("POST", "/api/v1/library/rescan", &[], None).await;
    let st = scanned(&api, n).await;
    assert_eq!(
        (st["indexed"].as_u64(), st["removed"].as_u64()),
        (Some(0), Some(0)),
        "{st}"
    );
    assert_eq!(
        api.get("/api/v1/folders?path=done/sd").await.json()["folders"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Outside the tenant's folders, and bad requests.
    let (_, other) = api.create_key("other", &["read", "write"]).await;
    let o = api.with_key(&other);
    let v = ops(
        &o,
        json!([{"op": "delete", "path": "top.webp"}, {"op": "mkdir", "path": "elsewhere"}]),
    )
    .await;
    assert_eq!(statuses(&v), vec!["not_found", "invalid"]);
    assert_eq!(
        api.json("POST", "/api/v1/library/ops", &json!({"ops": []}))
            .await
            .status,
        400
    );
    assert_eq!(
        api.json(
            "POST",
            "/api/v1/library/ops",
            &json!({"ops": [{"op": "explode"}]})
        )
        .await
        .status,
        400
    );
}

/// kill -9 while a folder moves, file after file: after the restart (and its sweep) every image
/// has its file and every file its row, and no file was lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_move_loses_and_doubles_nothing() {
    let data = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = data.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    make_tree(&root, outside.path());
    std::fs::remove_file(root.join("sd/escape.png")).unwrap();
    let dice = fixture("dice-800x600-alpha.png");
    for i in 0..40 {
        let p = root.join(format!("batch/{i:02}.png"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, png_with_text(&dice, "Comment", &format!("file {i}"))).unwrap();
    }
    let digests = |root: &Path| {
        let mut out = Vec::new();
        for f in common::api::files_under(root) {
            if f.split('/').any(|s| s.starts_with('.')) || !f.ends_with(".png") {
                continue;
            }
            out.push(sha256_hex(&std::fs::read(root.join(&f)).unwrap()));
        }
        out.sort();
        out
    };
    let before = digests(&root);
    let env = [
        ("REFRACT__LIBRARY__ENABLED", "true"),
        ("REFRACT__LIBRARY__RESCAN_SECS", "0"),
    ];
    let port = common::free_port();
    let server = common::spawn_guarded(data.path(), port, &env);
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        key: Some(common::api::ADMIN.into()),
    };
    scanned(&api, 0).await;
    let mover = {
        let api = api.clone();
        tokio::spawn(async move {
            api.json(
                "POST",
                "/api/v1/library/ops",
                &json!({"ops": [{"op": "move", "from": "batch/", "to": "moved/batch"}]}),
            )
            .await
        })
    };
    // Let some files move, then kill.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !root.join("moved/batch").exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    unsafe_kill(server.id());
    drop(server);
    let _ = mover.await;
    let port = common::free_port();
    let _server = common::spawn_guarded(data.path(), port, &env);
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        key: Some(common::api::ADMIN.into()),
    };
    scanned(&api, 0).await;
    assert_eq!(digests(&root), before, "a file was lost or doubled");
    let all = api.get("/api/v1/images?per_page=200").await.json();
    let keys = keys(&all);
    let on_disk: Vec<String> = {
        let mut f: Vec<String> = common::api::files_under(&root)
            .into_iter()
            .filter(|f| {
                !f.split('/').any(|s| s.starts_with('.'))
                    && [".png", ".jpg", ".webp"].iter().any(|e| f.ends_with(e))
            })
            .filter(|f| f != "sd/2024/broken.png")
            .collect();
        f.sort();
        f
    };
    assert_eq!(
        keys, on_disk,
        "every file has one row and every row its file"
    );
    assert_eq!(keys.iter().filter(|k| k.contains("batch/")).count(), 40);
}

/// SIGKILL (no destructor runs, no graceful shutdown).
fn unsafe_kill(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_tags_come_from_generation_info_and_stay_apart_from_custom_ones() {
    let (s, _outside) = library_server(|c| c.library.auto_tags = true);
    let api = Api::admin(&s);
    scanned(&api, 0).await;
    let tags = api.get("/api/v1/tags").await.json();
    let find = |name: &str| {
        tags["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no tag {name}: {tags}"))
    };
    let model = find("model:dreamshaper_8");
    assert_eq!(
        (model["type"].as_str(), model["count"].as_i64()),
        (Some("auto"), Some(2))
    );
    assert_eq!(find("lora:foxstyle")["count"], 1);
    assert_eq!(find("sampler:euler")["type"], "auto");
    assert_eq!(
        keys(&api.get("/api/v1/images?tag=lora:castlestyle").await.json()),
        vec!["sd/2024/castle.png", "sd/2025/jan/copy.png"]
    );
    // A custom tag put on by hand survives a re-analysis; the auto ones are recomputed.
    let fox = api.get("/api/v1/images?tag=lora:foxstyle").await.json()["images"][0].clone();
    let id = fox["id"].as_str().unwrap();
    api.json(
        "PATCH",
        &format!("/api/v1/images/{id}"),
        &json!({"add_tags": ["mine"]}),
    )
    .await;
    std::fs::write(
        s.root.join("sd/2024/fox.png"),
        fixture("dice-800x600-alpha.png"),
    )
    .unwrap();
    let img = eventually(&api, &format!("/api/v1/images/{id}"), |v| {
        v["generation"].is_null()
    })
    .await;
    assert_eq!(img["tags"], json!(["mine"]), "{img}");
}

/// Moves and copies while scans run, over and over: the index and the storage agree at the end
/// (every row has its file, every file one row, no file indexed twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_operations_racing_with_scans_leave_index_and_storage_agreeing() {
    let (s, _outside) = library_server(|c| c.library.watch = true);
    let api = Api::admin(&s);
    scanned(&api, 0).await;
    for round in 0..6 {
        let (a, b) = if round % 2 == 0 {
            ("sd/", "race/sd")
        } else {
            ("race/sd/", "sd")
        };
        let rescans = {
            let api = api.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    api.send("POST", "/api/v1/library/rescan", &[], None).await;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        let v = ops(
            &api,
            json!([
                {"op": "move", "from": a, "to": b},
                {"op": "copy", "from": "top.webp", "to": format!("copies/top-{round}.webp")},
            ]),
        )
        .await;
        assert_eq!(statuses(&v), vec!["ok", "ok"], "{v}");
        rescans.await.unwrap();
    }
    // Let every scan settle, then compare.
    let n = api.get("/api/v1/library/status").await.json()["status"]["scans"]
        .as_u64()
        .unwrap();
    api.send("POST", "/api/v1/library/rescan", &[], None).await;
    scanned(&api, n).await;
    let mut indexed = keys(&api.get("/api/v1/images?per_page=200").await.json());
    indexed.sort();
    let mut on_disk: Vec<String> = common::api::files_under(&s.root)
        .into_iter()
        .filter(|f| {
            !f.split('/').any(|p| p.starts_with('.'))
                && [".png", ".jpg", ".webp"].iter().any(|e| f.ends_with(e))
                && f != "sd/2024/broken.png"
                && f != "sd/escape.png"
        })
        .collect();
    on_disk.sort();
    assert_eq!(indexed, on_disk);
    assert_eq!(
        indexed.iter().filter(|k| k.starts_with("copies/")).count(),
        6
    );
    assert_eq!(indexed.iter().filter(|k| k.starts_with("sd/")).count(), 4);
}
