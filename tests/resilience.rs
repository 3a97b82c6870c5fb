//! The conditions an origin behind a CDN lives in, tried on the real binary: clients that hang up
//! while their work is queued or running.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{free_port, rss_mib, spawn_guarded};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const HEAVY: &str = "seeding-5312x2988-progressive.jpg";

async fn metric(base: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

/// Send `n` requests for distinct heavy variants and hang up `after` later, without reading.
async fn abandon_wave(port: u16, first: usize, n: usize, after: Duration) {
    let mut conns = Vec::new();
    for i in first..first + n {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let req = format!(
            "GET /img/{HEAVY}?w={}&fm=avif HTTP/1.1\r\nHost: t\r\nAccept: image/avif\r\n\r\n",
            400 + i
        );
        s.write_all(req.as_bytes()).await.unwrap();
        conns.push(s);
    }
    tokio::time::sleep(after).await;
    drop(conns);
}

/// Poll until the CPU pool is idle (no waiter, no running job); returns how long it took.
async fn until_idle(base: &str) -> Duration {
    let t0 = Instant::now();
    loop {
        let waiting = metric(base, "refract_cpu_waiting").await;
        let running = metric(base, "refract_cpu_running").await;
        if waiting == 0 && running == 0 {
            return t0.elapsed();
        }
        // A hang guard, not a speed check: the queue must drain rather than stay stuck.
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "pool stuck: {waiting} waiting, {running} running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn server_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("data/images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::copy(Path::new(common::FIXTURES).join(HEAVY), images.join(HEAVY)).unwrap();
    let data = dir.path().join("data");
    (dir, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_heavy_requests_release_the_queue_slots_and_memory() {
    let (_dir, data) = server_dir();
    let port = free_port();
    let child = spawn_guarded(
        &data,
        port,
        &[
            ("REFRACT__LIMITS__WORKERS", "2"),
            ("REFRACT__LIMITS__QUEUE_DEPTH", "256"),
            ("REFRACT__LIMITS__AVIF_BUDGET_MS", "0"),
            ("REFRACT__CACHE__PERSISTENT__MAX_BYTES", "0"),
            // Other tests share the CPU: the fresh transforms below may queue a while.
            ("REFRACT__LIMITS__QUEUE_TIMEOUT_MS", "120000"),
            ("REFRACT__LIMITS__REQUEST_TIMEOUT_MS", "240000"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = common::client();
    // Warm up: one transform of the heavy source, so "idle" includes a used pipeline.
    let r = http
        .get(format!("{base}/img/{HEAVY}?w=300&fm=avif"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let idle = rss_mib(child.id());

    let mut peak = idle;
    for wave in 0..2 {
        abandon_wave(port, wave * 300, 300, Duration::from_millis(600)).await;
        peak = peak.max(rss_mib(child.id()));
    }
    let drained = until_idle(&base).await;
    let after = rss_mib(child.id());

    // Fresh transforms are served again: eight at once, every one 200.
    let fresh: Vec<_> = (0..8)
        .map(|i| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                let r = http
                    .get(format!("{base}/img/{HEAVY}?w={}&fm=avif", 500 + i))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body = r.bytes().await.unwrap();
                (status, body.len())
            })
        })
        .collect();
    for f in fresh {
        let (status, len) = f.await.unwrap();
        assert_eq!(status, 200, "a fresh transform after the storm");
        assert!(len > 0);
    }
    assert_eq!(metric(&base, "refract_cpu_waiting").await, 0);
    // Memory held by abandoned requests is given back once the pool is idle (a background trim):
    // within 200 MiB of idle (the peak of a stuck queue was near 1 GiB). Polled, with a hang
    // guard: the trim runs within seconds of the pool going idle.
    let t0 = Instant::now();
    let mut settled = rss_mib(child.id());
    while settled > idle + 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "RSS after the storm {settled} MiB vs idle {idle} MiB"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        settled = rss_mib(child.id());
    }
    eprintln!(
        "storm: idle {idle} MiB, peak {peak} MiB, right after {after} MiB, settled {settled} MiB, drained in {drained:?}"
    );
    drop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coalesced_miss_whose_first_requester_leaves_still_completes_for_the_others() {
    let (_dir, data) = server_dir();
    let port = free_port();
    let _child = spawn_guarded(&data, port, &[("REFRACT__LIMITS__AVIF_BUDGET_MS", "0")]);
    let base = format!("http://127.0.0.1:{port}");
    let path = format!("/img/{HEAVY}?w=640&fm=avif");
    // The first requester asks and hangs up while the variant is being made.
    let mut first = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    first.write_all(req.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    // A second one joins the same miss, then the first goes away.
    let second = tokio::spawn({
        let url = format!("{base}{path}");
        async move { reqwest::get(url).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    drop(first);
    let r = second.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/avif");
    assert!(!r.bytes().await.unwrap().is_empty());
    // It landed in the cache once: the next request is a hit.
    let again = reqwest::get(format!("{base}{path}")).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["x-cache"], "HIT");
    until_idle(&base).await;
    assert_eq!(metric(&base, "refract_cpu_waiting").await, 0);
}

/// Files (not folders) under `dir`, recursively.
fn objects_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(objects_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_removes_every_variant_from_both_tiers() {
    use common::api::*;
    let server = start_api(|c| c.limits.avif_budget_ms = 0);
    let api = Api::admin(&server);
    let cache_dir = server.data_dir().join("cache");
    // `a` under a key of its own choosing, so that the same bytes can come back under the same
    // key (the same source version): only a real purge makes its variants misses again.
    let a = api
        .upload_one("a.png", &distinct_png(1), &[("key", "same/a.png")])
        .await;
    let b = api.upload_one("b.png", &distinct_png(2), &[]).await;
    let (a_url, b_url) = (
        a["url"].as_str().unwrap().to_string(),
        b["url"].as_str().unwrap().to_string(),
    );
    let http = common::client();
    for url in [&a_url, &b_url] {
        for q in ["w=100&fm=webp", "w=120&fm=png", "w=90&fm=avif"] {
            let r = http.get(format!("{url}?{q}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}?{q}");
        }
    }
    // The persistent tier is written in the background.
    let deadline = Instant::now() + Duration::from_secs(30);
    while objects_under(&cache_dir).len() < 6 {
        assert!(
            Instant::now() < deadline,
            "variants never reached the persistent tier"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = objects_under(&cache_dir);
    let r = api
        .delete(&format!("/api/v1/images/{}", a["id"].as_str().unwrap()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Gone from disk when the DELETE answers: only b's three variants remain.
    let after = objects_under(&cache_dir);
    assert_eq!(after.len(), 3, "before {before:?}\nafter {after:?}");
    // b is untouched and still served from memory.
    let r = http
        .get(format!("{b_url}?w=100&fm=webp"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-cache"], "HIT");
    // The same bytes uploaded again under the same key (so, within the same second, the same
    // source version and the same cache keys) are transformed afresh: nothing of the old copy
    // survived in memory.
    let again = api
        .upload_one("a.png", &distinct_png(1), &[("key", "same/a.png")])
        .await;
    assert_eq!(again["duplicate"], false);
    assert_eq!(again["url"], a_url.as_str());
    let r = http
        .get(format!("{}?w=100&fm=webp", again["url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-cache"], "MISS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bytes_upload_again_after_an_earlier_copy_expired_before_the_sweep() {
    use common::api::*;
    // The sweeper runs hourly here: the expired row is still in the database.
    let server = start_api(|c| c.expiry.sweep_interval = 3600);
    let api = Api::admin(&server);
    let first = api.upload_one("x.png", &distinct_png(7), &[]).await;
    let id = first["id"].as_str().unwrap();
    let r = api
        .json(
            "PATCH",
            &format!("/api/v1/images/{id}"),
            &serde_json::json!({"expires_at": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(api.get(&format!("/api/v1/images/{id}")).await.status, 404);
    let second = api
        .upload(Form::new().file("file", "x.png", &distinct_png(7)))
        .await;
    assert_eq!(second.status, 201, "{}", second.text());
    let img = &second.json()["images"][0];
    assert_eq!(img["duplicate"], false);
    assert_ne!(img["id"].as_str().unwrap(), id);
    let r = common::client()
        .get(img["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_abandoned_mid_body_or_mid_batch_leave_nothing_behind_without_a_restart() {
    use common::api::*;
    let server = start_api(|_| {});
    let api = Api::admin(&server);
    let port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let images = server.data_dir().join("images");
    // Forty batches of three files each; clients hang up at every point: in the middle of the
    // body, right after it, and while the batch is being stored.
    let mut tasks = Vec::new();
    for n in 0..40usize {
        let body = Form::new()
            .file("files", "a.png", &distinct_png(1000 + n * 3))
            .file("files", "b.png", &distinct_png(1001 + n * 3))
            .file("files", "c.png", &distinct_png(1002 + n * 3))
            .body();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let head = format!(
                "POST /api/v1/images HTTP/1.1\r\nHost: t\r\nX-API-Key: {ADMIN}\r\n\
                 Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).await.unwrap();
            let cut = match n % 4 {
                0 => body.len() / 2,
                _ => body.len(),
            };
            s.write_all(&body[..cut]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5 * (n as u64 % 8))).await;
            drop(s);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Whatever was stored is whole: every row has its object and every object its row, with no
    // reservation left in the journal (read from the database file itself) and nothing in
    // staging, now (not after a restart).
    let store = common::server_store(&server.cfg).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed: Vec<String> = api.get("/api/v1/images?per_page=100").await.json()["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["key"].as_str().unwrap().to_string())
            .collect();
        let mut on_disk: Vec<String> = objects_under(&images)
            .iter()
            .filter(|p| !p.to_string_lossy().contains(".refract-tmp"))
            .map(|p| {
                p.strip_prefix(&images)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .filter(|k| k.starts_with("default/"))
            .collect();
        on_disk.sort();
        let mut keys = listed.clone();
        keys.sort();
        let staged = objects_under(&images.join(".refract-tmp")).len();
        let reserved = store.pending().await.unwrap();
        if keys == on_disk && staged == 0 && reserved.is_empty() {
            assert_eq!(
                keys.len() % 3,
                0,
                "batches are all or nothing: {}",
                keys.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rows {keys:?}\nobjects {on_disk:?}\nstaged {staged}\nreserved {reserved:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A SeaweedFS of this test's own (started from the binary `.ci/test.sh` installs), so that it
/// can be stopped and killed without touching the suite's shared one.
struct Weed {
    bin: String,
    dir: std::path::PathBuf,
    ports: [u16; 5],
    child: Option<std::process::Child>,
}

const WEED_KEY: &str = "outage-key";
const WEED_SECRET: &str = "outage-secret";

impl Weed {
    fn start(dir: &Path) -> Weed {
        let bin = std::env::var("REFRACT_TEST_WEED").unwrap_or_else(|_| {
            panic!("REFRACT_TEST_WEED is not set: run the suite with .ci/test.sh")
        });
        let low = || loop {
            let p = free_port();
            if p < 55000 {
                return p;
            }
        };
        let mut w = Weed {
            bin,
            dir: dir.to_path_buf(),
            ports: [low(), low(), low(), low(), low()],
            child: None,
        };
        std::fs::create_dir_all(&w.dir).unwrap();
        std::fs::write(
            w.dir.join("s3.json"),
            format!(
                r#"{{"identities":[{{"name":"t","credentials":[{{"accessKey":"{WEED_KEY}","secretKey":"{WEED_SECRET}"}}],"actions":["Admin","Read","List","Tagging","Write"]}}]}}"#
            ),
        )
        .unwrap();
        w.run();
        let deadline = Instant::now() + Duration::from_secs(60);
        while w.s3(&["-X", "PUT", &format!("{}/images", w.endpoint())]) != "200" {
            assert!(Instant::now() < deadline, "SeaweedFS did not come up");
            std::thread::sleep(Duration::from_millis(300));
        }
        w
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[0])
    }

    fn run(&mut self) {
        let [s3, m, v, f, a] = self.ports;
        let d = self.dir.display();
        let child = std::process::Command::new(&self.bin)
            .args([
                "mini",
                &format!("-dir={d}/data"),
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                &format!("-master.port={m}"),
                &format!("-volume.port={v}"),
                &format!("-filer.port={f}"),
                &format!("-s3.port={s3}"),
                "-admin.ui=false",
                &format!("-admin.port={a}"),
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                &format!("-s3.config={d}/s3.json"),
                "-s3.autoCreateBucket=false",
                &format!("-filer.localSocket={d}/filer.sock"),
                &format!("-s3.localSocket={d}/s3.sock"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// curl with SigV4 against this server; returns the status code.
    fn s3(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .args(["--aws-sigv4", "aws:amz:us-east-1:s3"])
            .args(["--user", &format!("{WEED_KEY}:{WEED_SECRET}")])
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A stopped process must be continued to die cleanly.
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
        }
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_outage_serves_cached_variants_stale_and_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut weed = Weed::start(&dir.path().join("weed"));
    let put = weed.s3(&[
        "-X",
        "PUT",
        "--upload-file",
        &format!("{}/rocket-640x427-adobergb.jpg", common::FIXTURES),
        &format!("{}/images/o/cat.jpg", weed.endpoint()),
    ]);
    assert_eq!(put, "200");
    let port = free_port();
    let endpoint = weed.endpoint();
    let _refract = spawn_guarded(
        &dir.path().join("data"),
        port,
        &[
            ("REFRACT__STORAGE__BACKEND", "s3"),
            ("REFRACT__STORAGE__ENDPOINT", &endpoint),
            ("REFRACT__STORAGE__BUCKET", "images"),
            ("REFRACT__STORAGE__PREFIX", "o/"),
            ("REFRACT__STORAGE__ACCESS_KEY_ID", WEED_KEY),
            ("REFRACT__STORAGE__SECRET_ACCESS_KEY", WEED_SECRET),
            ("REFRACT__STORAGE__TIMEOUT_MS", "1500"),
            ("REFRACT__STORAGE__STAT_TTL_MS", "200"),
            ("REFRACT__CACHE__PERSISTENT__MAX_BYTES", "0"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    // A hang guard (not a speed check): nothing may wait much past the storage timeout.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let get = |q: &str| {
        let (http, url) = (http.clone(), format!("{base}/img/cat.jpg{q}"));
        async move {
            let r = http.get(url).send().await.unwrap();
            let cache = r
                .headers()
                .get("x-cache")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let cc = r
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (r.status().as_u16(), cache, cc)
        }
    };
    assert_eq!(get("?w=100").await.0, 200);
    assert_eq!(get("?w=100").await.1, "HIT");

    // A stall (SIGSTOP): the cached variant is served stale, the rest time out.
    weed.signal("-STOP");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, cache, cc) = get("?w=100").await;
    assert_eq!((status, cache.as_str()), (200, "STALE"));
    assert_eq!(cc, "public, max-age=60");
    assert_eq!(get("?w=101").await.0, 504, "uncached during a stall");
    assert_eq!(get("").await.0, 504, "the original during a stall");
    weed.signal("-CONT");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, cache, _) = get("?w=102").await;
    assert_eq!(
        (status, cache.as_str()),
        (200, "MISS"),
        "fresh transforms after recovery"
    );
    assert_eq!(get("?w=100").await.1, "HIT", "fresh again after recovery");

    // Down (SIGKILL): stale again for what is cached, 502 for the rest.
    weed.kill();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(get("?w=100").await.1, "STALE");
    assert_eq!(
        get("?w=103").await.0,
        502,
        "uncached while the origin is down"
    );

    // Back up on the same data: served fresh, with no restart of Refract.
    weed.run();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, cache, _) = get("?w=104").await;
        if status == 200 {
            assert_eq!(cache, "MISS");
            break;
        }
        assert!(
            status == 502 || status == 504,
            "only 502/504 while coming back, got {status}"
        );
        assert!(Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(get("?w=100").await.1, "HIT");
}

/// Send `head` then `body` at `bytes_per_tick` every `tick`; returns the status line's code and
/// the body of the answer (the server may answer before the body is complete).
async fn trickle(
    port: u16,
    head: String,
    body: Vec<u8>,
    bytes_per_tick: usize,
    tick: Duration,
) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await.unwrap();
        for chunk in body.chunks(bytes_per_tick) {
            if wr.write_all(chunk).await.is_err() {
                return;
            }
            tokio::time::sleep(tick).await;
        }
    });
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), rd.read_to_end(&mut buf)).await;
    writer.abort();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_upload_is_cut_off_with_408_and_stores_nothing() {
    use common::api::*;
    let server = start_api(|c| {
        c.limits.body_timeout_ms = 1500;
        c.limits.min_body_rate = 0;
    });
    let api = Api::admin(&server);
    let port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let body = Form::new().file("file", "a.png", &distinct_png(77)).body();
    let head = |len: usize| {
        format!(
            "POST /api/v1/images HTTP/1.1\r\nHost: t\r\nX-API-Key: {ADMIN}\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    // Past the whole-body deadline.
    let (code, text) = trickle(
        port,
        head(body.len()),
        body.clone(),
        2048,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(code, 408, "{text}");
    assert!(text.contains("REQUEST_TIMEOUT"), "{text}");
    assert_eq!(api.ids("").await.len(), 0, "nothing stored");

    // Under the minimum rate (checked after 5 s), with a generous deadline.
    let server = start_api(|c| {
        c.limits.body_timeout_ms = 60_000;
        c.limits.min_body_rate = 50_000;
    });
    let api = Api::admin(&server);
    let port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let (code, text) = trickle(
        port,
        head(body.len()),
        body.clone(),
        4096,
        Duration::from_millis(250),
    )
    .await;
    assert_eq!(code, 408, "{text}");
    assert_eq!(api.ids("").await.len(), 0, "nothing stored");
    // A body at a normal pace is stored.
    let r = api
        .upload(Form::new().file("file", "a.png", &distinct_png(77)))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_and_free_their_slot() {
    use tokio::io::AsyncReadExt;
    let server = common::start(|c| {
        c.server.header_read_timeout_secs = 1;
        c.server.max_connections = 4;
    });
    let port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    // A keep-alive connection that answers one request, then idles: closed by the server.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle keep-alive connection stayed open");

    // Every slot held by an idle client: a new client is served once one is freed (here by the
    // idle timeout; the kernel's backlog holds it meanwhile).
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(server.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(idle);
}

/// A small tmpfs mounted for one test (the suite runs as root, as `.ci/test.sh` does on CI),
/// unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "could not mount a tmpfs at {} (the suite runs as root)",
            at.display()
        );
        SmallDisk(at.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_stores_nothing_partial_and_keeps_serving() {
    use common::api::*;
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("disk"), "2m");
    let images = disk.0.join("images");
    let cache = disk.0.join("cache");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::copy(
        Path::new(common::FIXTURES).join("rocket-640x427-adobergb.jpg"),
        images.join("rocket.jpg"),
    )
    .unwrap();
    let (images_s, cache_s) = (
        images.to_string_lossy().into_owned(),
        cache.to_string_lossy().into_owned(),
    );
    let server = start_api(move |c| {
        c.storage.root = Some(images_s);
        c.cache.persistent.path = Some(cache_s);
    });
    let api = Api::admin(&server);
    // Fill the disk with uploads (each ~218 KB) until it refuses.
    let mut refused = None;
    for n in 0..40 {
        let r = api
            .upload(Form::new().file("file", "d.png", &distinct_png(5000 + n)))
            .await;
        if r.status != 201 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("a 2 MB disk never filled up");
    assert_eq!(r.status, 507, "{}", r.text());
    assert_eq!(r.code(), "INSUFFICIENT_STORAGE");
    // Rows and objects one to one: the refused upload left no object and no row.
    let rows: Vec<String> = api.get("/api/v1/images?per_page=100").await.json()["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect();
    let mut objects: Vec<String> = objects_under(&images.join("default"))
        .iter()
        .map(|p| format!("default/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    objects.sort();
    let mut rows_sorted = rows.clone();
    rows_sorted.sort();
    assert_eq!(rows_sorted, objects);
    assert_eq!(
        objects_under(&images.join(".refract-tmp")),
        Vec::<std::path::PathBuf>::new(),
        "a refused write leaves no staged file"
    );
    // Serving goes on (the persistent tier cannot write: it logs and pauses, never fails a
    // request), for originals and new variants alike.
    let http = common::client();
    for q in ["", "?w=200", "?w=210&fm=webp", "?w=220&fm=png"] {
        let r = http
            .get(server.url(&format!("/img/rocket.jpg{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{q}");
    }
    // Freeing space makes uploads work again, without a restart.
    let first = rows[0].clone();
    let id = api.get("/api/v1/images?per_page=100").await.json()["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == first.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.delete(&format!("/api/v1/images/{id}")).await.status,
        200
    );
    let r = api
        .upload(Form::new().file("file", "small.jpg", &fixture("cmyk-100x100.jpg")))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_answers_503_with_retry_after_never_500() {
    use common::api::*;
    use sqlx::Connection;
    let server = start_api(|_| {});
    let api = Api::admin(&server);
    assert_eq!(
        api.upload(Form::new().file("file", "a.png", &distinct_png(9001)))
            .await
            .status,
        201
    );
    // Another process holds the write lock (a backup, a second node on the same file).
    let url = format!(
        "sqlite://{}",
        server.data_dir().join("refract.db").display()
    );
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut other)
        .await
        .unwrap();
    let r = api
        .upload(Form::new().file("file", "b.png", &distinct_png(9002)))
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.code(), "SERVICE_BUSY");
    assert!(r.header("retry-after").is_some());
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    drop(other);
    let r = api
        .upload(Form::new().file("file", "b.png", &distinct_png(9002)))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_origin_read_ends_in_504_at_the_timeout_without_holding_a_cpu_slot() {
    let origin = common::http_origin(std::path::PathBuf::from(common::FIXTURES));
    let server = common::start(|c| {
        c.storage.backend = refract::storage::origin::Backend::Http;
        c.storage.base_url = Some(origin.base.clone());
        c.storage.http_allow_networks = vec!["127.0.0.1/32".into()];
        c.storage.timeout_ms = 2000;
    });
    let base = server.base.clone();
    let stalled = tokio::spawn(async move {
        let r = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
            .get(format!(
                "{base}/img/stall/rocket-640x427-adobergb.jpg?w=100"
            ))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    });
    // While the bytes have stopped, the request holds a queue place, never a CPU slot.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(metric(&server.base, "refract_cpu_running").await, 0);
    let (status, body) = stalled.await.unwrap();
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("ORIGIN_TIMEOUT"), "{body}");
    // The rest of the origin is served as usual.
    let r = reqwest::get(server.url("/img/rocket-640x427-adobergb.jpg?w=100"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(metric(&server.base, "refract_cpu_waiting").await, 0);
}
