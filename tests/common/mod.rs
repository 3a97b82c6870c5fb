//! Test support: a real Refract server on 127.0.0.1:0 over a temp folder holding the fixtures,
//! a small real HTTP origin, and image helpers (decode, sizes, perceptual hashes).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod api;
pub mod s3;

use refract::config::Config;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A running server; dropped = shut down.
pub struct Server {
    pub base: String,
    pub root: PathBuf,
    pub cfg: Config,
    dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The data directory (database, images).
    pub fn data_dir(&self) -> PathBuf {
        self.cfg.server.data_dir.clone()
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stop (gracefully), let `between` touch the data directory, and start again on it.
    pub fn restart(mut self, between: impl FnOnce(&Path)) -> Server {
        self.stop();
        between(&self.cfg.server.data_dir);
        let mut cfg = self.cfg.clone();
        cfg.server.listen = "127.0.0.1:0".into();
        let dir = self.dir.take().unwrap();
        start_with(cfg, dir, self.root.clone())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            // Keep the fixture's mtime, so that every test server sees the same source version
            // (and so the same ETags), whenever it copied the file.
            let dest = to.join(e.file_name());
            std::fs::copy(&p, &dest).unwrap();
            let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
            std::fs::File::options()
                .write(true)
                .open(&dest)
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
    }
}

/// A config tweak: `fm=auto` negotiates by `Accept` (`delivery.negotiate = "vary"`; the
/// default, "off", answers the source's family).
pub fn vary(c: &mut Config) {
    c.delivery.negotiate = refract::delivery::policy::Negotiate::Vary;
}

/// Start a server over a fresh copy of the fixtures; `tweak` edits the config first.
pub fn start(tweak: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    copy_dir(Path::new(FIXTURES), &root);
    let mut cfg = Config::default();
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.server.data_dir = dir.path().to_path_buf();
    cfg.server.log = "warn".into();
    cfg.server.shutdown_grace_secs = 2;
    tweak(&mut cfg);
    start_with(cfg, dir, root)
}

/// With `REFRACT_TEST_POSTGRES` (a server URL, e.g. `postgres://postgres@127.0.0.1:5432`, as
/// `.ci/test.sh` sets for the backend matrix): a new empty database on it for one test server;
/// otherwise `None` (embedded SQLite in the server's data folder).
pub fn test_database() -> Option<String> {
    Some(create_database(
        &std::env::var("REFRACT_TEST_POSTGRES").ok()?,
    ))
}

/// The store a server with `cfg` uses (its PostgreSQL database, else its SQLite file), opened
/// beside it to look into or arrange what the API cannot.
pub async fn server_store(cfg: &Config) -> refract::store::Store {
    match &cfg.database.url {
        Some(url) => refract::store::Store::open(&url.0, refract::store::PoolSize::default())
            .await
            .unwrap(),
        None => refract::store::Store::open_sqlite(&cfg.server.data_dir.join("refract.db"))
            .await
            .unwrap(),
    }
}

/// A new empty database on the PostgreSQL server at `base`; its URL.
pub fn create_database(base: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "t_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let base = base.trim_end_matches('/').to_string();
    let admin = format!("{base}/postgres");
    let create = format!("CREATE DATABASE {name}");
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                use sqlx::Connection;
                sqlx::any::install_default_drivers();
                let mut c = sqlx::AnyConnection::connect(&admin)
                    .await
                    .expect("postgres");
                sqlx::query(sqlx::AssertSqlSafe(create))
                    .execute(&mut c)
                    .await
                    .expect("create database");
            });
    })
    .join()
    .unwrap();
    format!("{base}/{name}")
}

pub fn start_with(mut cfg: Config, dir: tempfile::TempDir, root: PathBuf) -> Server {
    if cfg.database.url.is_none() {
        cfg.database.url = test_database().map(refract::util::secret::Secret);
    }
    let (tx, rx) = mpsc::channel::<Result<SocketAddr, String>>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let kept = cfg.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let tx2 = tx.clone();
            let r = refract::run(
                cfg,
                async {
                    let _ = stop_rx.await;
                },
                move |a| {
                    let _ = tx2.send(Ok(a));
                },
            )
            .await;
            if let Err(e) = r {
                let _ = tx.send(Err(e));
            }
        });
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server start timed out")
        .expect("server failed to start");
    Server {
        base: format!("http://{addr}"),
        root,
        cfg: kept,
        dir: Some(dir),
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// A free TCP port on 127.0.0.1 (for servers started as separate processes).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The built `refract` binary on `127.0.0.1:port` over `data`, with the admin key, rate limits off
/// and `extra` environment; returns once it accepts connections.
pub fn spawn_binary(data: &Path, port: u16, extra: &[(&str, &str)]) -> std::process::Child {
    spawn_binary_with(data, port, extra).0.take().unwrap()
}

/// A spawned server that is killed when dropped (also when a test panics).
pub struct Killed(Option<std::process::Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Killed {
    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, std::process::Child::id)
    }
}

/// As `spawn_binary`, killed on drop.
pub fn spawn_guarded(data: &Path, port: u16, extra: &[(&str, &str)]) -> Killed {
    spawn_binary_with(data, port, extra)
}

fn spawn_binary_with(data: &Path, port: u16, extra: &[(&str, &str)]) -> Killed {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_refract"));
    c.arg("--data-dir")
        .arg(data)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("REFRACT_API_KEY", api::ADMIN)
        .env("REFRACT__RATELIMIT__PER_MINUTE", "0")
        .env("REFRACT__RATELIMIT__PER_HOUR", "0")
        .env("REFRACT__RATELIMIT__PER_DAY", "0")
        .env("REFRACT__RATELIMIT__UPLOADS_PER_MINUTE", "0")
        .env("REFRACT__SERVER__LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // The backend matrix: one PostgreSQL database per data folder (kept in a file there, so a
    // restart over the same folder finds the same database).
    if !extra.iter().any(|(k, _)| *k == "REFRACT__DATABASE__URL") {
        let marker = data.join(".test-database-url");
        let url = std::fs::read_to_string(&marker).ok().or_else(|| {
            let url = test_database()?;
            std::fs::create_dir_all(data).unwrap();
            std::fs::write(&marker, &url).unwrap();
            Some(url)
        });
        if let Some(url) = url {
            c.env("REFRACT__DATABASE__URL", url);
        }
    }
    for (k, v) in extra {
        c.env(k, v);
    }
    let mut child = Killed(Some(c.spawn().unwrap()));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Serving, not only bound: the socket accepts connections from the start, but requests are
    // answered only after the start-up work (the sweep of interrupted writes among it).
    let answers = || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        s.write_all(b"GET /health HTTP/1.0\r\n\r\n").ok()?;
        let mut first = [0u8; 12];
        s.read_exact(&mut first).ok()?;
        first.starts_with(b"HTTP/1.").then_some(())
    };
    while answers().is_none() {
        if let Some(Ok(Some(status))) = child.0.as_mut().map(std::process::Child::try_wait) {
            panic!("the server exited at start: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Resident memory of a process, in MiB (Linux).
pub fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// GET with optional Accept; returns (status, headers, body).
pub async fn get(url: &str, accept: Option<&str>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut rb = client().get(url);
    if let Some(a) = accept {
        rb = rb.header("accept", a);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.unwrap().to_vec();
    (status, headers, body)
}

pub fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The JSON error code of an error body.
pub fn error_code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    assert_eq!(v["success"], false, "{v}");
    v["error"]["code"].as_str().unwrap().to_string()
}

/// Format name by magic bytes (independent of the crate under test).
pub fn magic(b: &[u8]) -> &'static str {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "jpeg"
    } else if b.starts_with(b"\x89PNG") {
        "png"
    } else if b.len() > 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        "webp"
    } else if b.len() > 12 && &b[4..12] == b"ftypavif" {
        "avif"
    } else if b.starts_with(b"GIF8") {
        "gif"
    } else {
        "unknown"
    }
}

/// Width and height of an output: decoded with `image`, or read from the `ispe` box for AVIF.
pub fn dims(b: &[u8]) -> (u32, u32) {
    if magic(b) == "avif" {
        let i = b
            .windows(4)
            .position(|w| w == b"ispe")
            .expect("AVIF without ispe");
        let r = |o: usize| u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        return (r(i + 8), r(i + 12));
    }
    let img = image::load_from_memory(b).expect("output must decode");
    (img.width(), img.height())
}

/// A 64-bit difference hash plus the mean colour: a small perceptual fingerprint.
pub fn fingerprint(b: &[u8]) -> (u64, [f64; 3]) {
    let img = image::load_from_memory(b)
        .expect("output must decode")
        .into_rgb8();
    let mut mean = [0f64; 3];
    for p in img.pixels() {
        for c in 0..3 {
            mean[c] += f64::from(p[c]);
        }
    }
    let n = f64::from(img.width() * img.height());
    for m in &mut mean {
        *m /= n;
    }
    let small = image::imageops::resize(
        &image::DynamicImage::ImageRgb8(img).into_luma8(),
        9,
        8,
        image::imageops::FilterType::Triangle,
    );
    let mut hash = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            let bit = small.get_pixel(x, y)[0] > small.get_pixel(x + 1, y)[0];
            hash = (hash << 1) | u64::from(bit);
        }
    }
    (hash, mean)
}

/// Hamming distance of two hashes and the largest mean-channel difference.
pub fn distance(a: &(u64, [f64; 3]), b: &(u64, [f64; 3])) -> (u32, f64) {
    let ham = (a.0 ^ b.0).count_ones();
    let d = (0..3).map(|i| (a.1[i] - b.1[i]).abs()).fold(0.0, f64::max);
    (ham, d)
}

/// Parse the Prometheus counter `name` from `/metrics`.
pub async fn metric(server: &Server, name: &str) -> u64 {
    let (_, _, body) = get(&server.url("/metrics"), None).await;
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
}

/// A minimal static HTTP origin over `root` (GET/HEAD, Content-Length, Last-Modified, ETag).
/// Paths under `/slow/` wait 3 s first (for timeout tests); `/stall/` sends half the body and
/// stops; `/chunked/` streams without a
/// length; `/liar/` claims 100 bytes on HEAD; `/redirect/N/path` redirects N times; `/to/host:port/path` redirects to that host.
pub struct Origin {
    pub base: String,
}

pub fn http_origin(root: PathBuf) -> Origin {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve_files(root, tx));
    });
    let addr: SocketAddr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    Origin {
        base: format!("http://{addr}/"),
    }
}

async fn serve_files(root: PathBuf, tx: mpsc::Sender<SocketAddr>) {
    use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
    use hyper::body::{Bytes, Frame};
    type B = BoxBody<Bytes, std::convert::Infallible>;
    let full = |b: Bytes| -> B { Full::new(b).boxed() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tx.send(listener.local_addr().unwrap()).unwrap();
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let root = root.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let root = root.clone();
                    async move {
                        let mut path = req.uri().path().trim_start_matches('/').to_string();
                        let redirect = |to: String| {
                            hyper::Response::builder()
                                .status(302)
                                .header("location", to)
                                .body(full(Bytes::new()))
                                .unwrap()
                        };
                        // /redirect/N/rest: N hops, then rest.
                        if let Some(rest) = path.strip_prefix("redirect/") {
                            let (n, rest) = rest.split_once('/').unwrap();
                            let n: u32 = n.parse().unwrap();
                            let to = if n <= 1 {
                                format!("/{rest}")
                            } else {
                                format!("/redirect/{}/{rest}", n - 1)
                            };
                            return Ok::<_, std::convert::Infallible>(redirect(to));
                        }
                        // /to/<host:port>/rest: a redirect to another host.
                        if let Some(rest) = path.strip_prefix("to/") {
                            let (host, rest) = rest.split_once('/').unwrap();
                            let host = percent_encoding::percent_decode_str(host)
                                .decode_utf8()
                                .unwrap();
                            return Ok(redirect(format!("http://{host}/{rest}")));
                        }
                        if let Some(rest) = path.strip_prefix("slow/") {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                            path = rest.to_string();
                        }
                        // /stall/path: GET sends the headers and half the body, then stops.
                        if let Some(rest) = path.strip_prefix("stall/") {
                            if let Ok(bytes) = std::fs::read(root.join(rest)) {
                                let len = bytes.len();
                                if req.method() == hyper::Method::HEAD {
                                    return Ok(hyper::Response::builder()
                                        .header("content-length", len)
                                        .body(full(Bytes::new()))
                                        .unwrap());
                                }
                                let half = Bytes::copy_from_slice(&bytes[..len / 2]);
                                // StreamExt named: BodyExt also has a `boxed`.
                                let frames = futures::StreamExt::chain(
                                    futures::stream::iter(vec![Ok::<_, std::convert::Infallible>(
                                        Frame::data(half),
                                    )]),
                                    futures::stream::pending(),
                                );
                                return Ok(hyper::Response::builder()
                                    .header("content-length", len)
                                    .body(StreamBody::new(frames).boxed())
                                    .unwrap());
                            }
                        }
                        let chunked = path.starts_with("chunked/");
                        if chunked {
                            path = path["chunked/".len()..].to_string();
                        }
                        // /liar/path: HEAD claims 100 bytes, GET sends the whole file.
                        let liar = path.starts_with("liar/");
                        if liar {
                            path = path["liar/".len()..].to_string();
                            if req.method() == hyper::Method::HEAD {
                                return Ok(hyper::Response::builder()
                                    .header("content-length", 100)
                                    .body(full(Bytes::new()))
                                    .unwrap());
                            }
                        }
                        let file = root.join(&path);
                        let resp = match std::fs::read(&file) {
                            Ok(bytes) if !path.contains("..") && chunked => {
                                // No Content-Length: the size is only known by reading.
                                let chunks: Vec<Result<Frame<Bytes>, std::convert::Infallible>> =
                                    bytes
                                        .chunks(64 << 10)
                                        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
                                        .collect();
                                let body = if req.method() == hyper::Method::HEAD {
                                    full(Bytes::new())
                                } else {
                                    StreamBody::new(futures::stream::iter(chunks)).boxed()
                                };
                                hyper::Response::builder().body(body).unwrap()
                            }
                            Ok(bytes) if !path.contains("..") => {
                                let len = bytes.len();
                                let body = if req.method() == hyper::Method::HEAD {
                                    Bytes::new()
                                } else {
                                    Bytes::from(bytes)
                                };
                                hyper::Response::builder()
                                    .header("content-length", len)
                                    .header("etag", format!("\"{len}\""))
                                    .header("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")
                                    .body(full(body))
                                    .unwrap()
                            }
                            _ => hyper::Response::builder()
                                .status(404)
                                .body(full(Bytes::from_static(b"nope")))
                                .unwrap(),
                        };
                        Ok(resp)
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                .await;
        });
    }
}

/// Checks on a browser report (`tests/support/*.mjs`): every request the page made went to
/// `base` (or was a `data:` URL), and axe-core found no serious or critical violation on any
/// page scanned (`report["axe"]`: page → violations).
pub fn assert_browser_report(report: &serde_json::Value, base: &str) {
    let requests: Vec<&str> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    assert!(
        requests
            .iter()
            .all(|u| u.starts_with(base) || u.starts_with("data:") || u.starts_with("blob:")),
        "the page fetched from elsewhere: {requests:?}"
    );
    if let Some(axe) = report["axe"].as_object() {
        for (page, violations) in axe {
            let bad: Vec<&serde_json::Value> = violations
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
                .collect();
            assert!(bad.is_empty(), "axe on {page}: {bad:?}");
        }
    }
}
