//! The shipped CDN recipes, run: Debian's nginx and Varnish as caching proxies on 127.0.0.1 in
//! front of a real Refract, with the configs from `deploy/` (only addresses and paths changed),
//! and the Cloudflare Worker (`deploy/cloudflare/worker.js`) run by Node in front of a cache that
//! keys by URL alone (Cloudflare's default, emulated by nginx ignoring `Vary`).
//!
//! Three clients: a browser that accepts AVIF and WebP, one that accepts WebP only, and `*/*`.
//! Each must get a format it accepts, on the first request and from the proxy's cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROCKET: &str = "rocket-640x427-adobergb.jpg";
const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

/// (Accept, the formats it accepts).
const CLIENTS: [(&str, &[&str]); 3] = [
    (
        "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
        &["avif", "webp", "jpeg", "png"],
    ),
    ("image/webp,*/*", &["webp", "jpeg", "png"]),
    ("*/*", &["jpeg", "png"]),
];

/// A child process killed on drop, with the directory it runs in.
struct Proc {
    child: Child,
    _dir: tempfile::TempDir,
    base: String,
    log: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A temp dir others may enter (nginx workers and Varnish's compiler run as other users).
fn open_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

async fn wait_listening(base: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client().get(format!("{base}/health")).send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "proxy did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// nginx with `server_conf` (http-level configuration) as its only include.
async fn nginx(server_conf: &str) -> Proc {
    let dir = open_dir();
    let d = dir.path();
    let port = free_port();
    let conf = server_conf
        .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
        .replace(
            "/var/cache/nginx/refract",
            &d.join("cache").display().to_string(),
        );
    std::fs::write(d.join("refract.conf"), conf).unwrap();
    let t = |n: &str| d.join(n).display().to_string();
    let main = format!(
        "daemon off;\nworker_processes 1;\npid {pid};\nerror_log {log} info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n access_log off;\n client_body_temp_path {a};\n proxy_temp_path {b};\n \
         fastcgi_temp_path {c};\n uwsgi_temp_path {e};\n scgi_temp_path {f};\n \
         include {inc};\n}}\n",
        pid = t("nginx.pid"),
        log = t("error.log"),
        a = t("tmp-body"),
        b = t("tmp-proxy"),
        c = t("tmp-fcgi"),
        e = t("tmp-uwsgi"),
        f = t("tmp-scgi"),
        inc = t("refract.conf"),
    );
    std::fs::write(d.join("nginx.conf"), main).unwrap();
    let child = Command::new("nginx")
        .args(["-p", &t(""), "-e", &t("error.log"), "-c", &t("nginx.conf")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx is installed (scripts/setup --test)");
    let p = Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log: d.join("error.log"),
        _dir: dir,
    };
    wait_listening(&p.base, &p.log).await;
    p
}

/// The shipped nginx config, pointed at `upstream`.
async fn shipped_nginx(upstream: &str) -> Proc {
    let conf = std::fs::read_to_string(format!("{DEPLOY}/nginx/refract.conf")).unwrap();
    nginx(&conf.replace("server 127.0.0.1:8080;", &format!("server {upstream};"))).await
}

/// A cache that keys by URL alone and ignores `Vary` (what Cloudflare does by default).
async fn url_only_nginx(upstream: &str) -> Proc {
    nginx(&format!(
        "proxy_cache_path /var/cache/nginx/refract keys_zone=urlonly:1m;\n\
         server {{\n listen 80;\n location / {{\n  proxy_pass http://{upstream};\n  \
         proxy_cache urlonly;\n  proxy_cache_key $scheme$host$request_uri;\n  \
         proxy_ignore_headers Vary;\n  proxy_cache_valid 200 1h;\n  \
         add_header X-Proxy-Cache $upstream_cache_status always;\n }}\n}}\n"
    ))
    .await
}

/// Varnish with the shipped VCL, pointed at `upstream` (`127.0.0.1:port`).
async fn shipped_varnish(upstream: &str) -> Proc {
    let dir = open_dir();
    let d = dir.path();
    let port = free_port();
    let backend_port = upstream.rsplit(':').next().unwrap();
    let vcl = std::fs::read_to_string(format!("{DEPLOY}/varnish/refract.vcl"))
        .unwrap()
        .replace(".port = \"8080\";", &format!(".port = \"{backend_port}\";"));
    std::fs::write(d.join("refract.vcl"), vcl).unwrap();
    let log = d.join("varnish.log");
    let mut cmd = Command::new("varnishd");
    cmd.args(["-F", "-a", &format!("127.0.0.1:{port}")])
        .arg("-f")
        .arg(d.join("refract.vcl"))
        .arg("-n")
        .arg(d.join("work"))
        .args(["-s", "malloc,64m"]);
    if !is_root() {
        cmd.args(["-j", "none"]);
    }
    let child = cmd
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("varnishd is installed (scripts/setup --test)");
    let p = Proc {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
        _dir: dir,
    };
    wait_listening(&p.base, &p.log).await;
    p
}

fn upstream(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_string()
}

async fn fetch(url: &str, accept: &str) -> (String, String, (u32, u32)) {
    let (st, h, body) = get(url, Some(accept)).await;
    assert_eq!(st, 200, "{url} {accept}");
    (
        magic(&body).to_string(),
        header(&h, "x-proxy-cache").unwrap_or("").to_string(),
        dims(&body),
    )
}

/// Every client gets a format it accepts, first from Refract, then from the proxy's cache.
async fn every_client_gets_what_it_accepts(proxy: &Proc, path: &str) -> Vec<String> {
    let url = format!("{}{path}", proxy.base);
    let mut formats = Vec::new();
    for (accept, ok) in CLIENTS {
        let (first, status, _) = fetch(&url, accept).await;
        assert!(ok.contains(&first.as_str()), "{accept}: got {first}");
        assert_eq!(status, "MISS", "{accept}: first request");
        let (again, status, _) = fetch(&url, accept).await;
        assert_eq!(status, "HIT", "{accept}: second request");
        assert_eq!(again, first, "{accept}");
        formats.push(first);
    }
    formats
}

#[tokio::test(flavor = "multi_thread")]
async fn shipped_nginx_config_serves_each_client_its_variant() {
    let s = start(vary);
    let proxy = shipped_nginx(&upstream(&s)).await;
    let path = format!("/img/{ROCKET}?w=120");
    let formats = every_client_gets_what_it_accepts(&proxy, &path).await;
    assert_eq!(formats, ["avif", "webp", "jpeg"]);
    // Another spelling of the same class shares the entry (normalised Accept in the key).
    let (f, status, _) = fetch(
        &format!("{}{path}", proxy.base),
        "image/webp,image/avif,video/*;q=0.8,*/*;q=0.5",
    )
    .await;
    assert_eq!((f.as_str(), status.as_str()), ("avif", "HIT"));
    // q=0 is a no.
    let (f, _, _) = fetch(
        &format!("{}{path}", proxy.base),
        "image/avif;q=0,image/webp",
    )
    .await;
    assert_eq!(f, "webp");
    // With negotiate = "off" the same config is just as right: one format for everyone.
    let off = start(|_| {});
    let proxy = shipped_nginx(&upstream(&off)).await;
    let formats = every_client_gets_what_it_accepts(&proxy, &path).await;
    assert_eq!(formats, ["jpeg", "jpeg", "jpeg"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn shipped_varnish_vcl_serves_each_client_its_variant() {
    let s = start(vary);
    let proxy = shipped_varnish(&upstream(&s)).await;
    let path = format!("/img/{ROCKET}?w=130");
    let formats = every_client_gets_what_it_accepts(&proxy, &path).await;
    assert_eq!(formats, ["avif", "webp", "jpeg"]);
    // The /cdn-cgi/image/ form goes through the same rules.
    let formats =
        every_client_gets_what_it_accepts(&proxy, &format!("/cdn-cgi/image/width=140/{ROCKET}"))
            .await;
    assert_eq!(formats, ["avif", "webp", "jpeg"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_only_cache_is_safe_with_negotiate_off_and_unsafe_with_vary() {
    let path = format!("/img/{ROCKET}?w=150");
    // negotiate = "off" (the default): whoever comes first, everyone can decode the answer.
    let off = start(|_| {});
    let proxy = url_only_nginx(&upstream(&off)).await;
    let url = format!("{}{path}", proxy.base);
    for (i, (accept, ok)) in CLIENTS.iter().enumerate() {
        let (f, status, _) = fetch(&url, accept).await;
        assert!(ok.contains(&f.as_str()), "{accept}: got {f}");
        assert_eq!(status, if i == 0 { "MISS" } else { "HIT" });
    }
    // negotiate = "vary" behind the same cache: the first browser's AVIF is served to a client
    // that cannot decode it. This is why "vary" needs a cache that honours Vary.
    let vary_server = start(vary);
    let proxy = url_only_nginx(&upstream(&vary_server)).await;
    let url = format!("{}{path}", proxy.base);
    let (first, _, _) = fetch(&url, CLIENTS[0].0).await;
    assert_eq!(first, "avif");
    let (wrong, status, _) = fetch(&url, "*/*").await;
    assert_eq!((wrong.as_str(), status.as_str()), ("avif", "HIT"));
    assert!(!CLIENTS[2].1.contains(&wrong.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_recipes_replace_what_the_proxies_hold() {
    let s = start(|c| {
        vary(c);
        c.storage.stat_ttl_ms = 0;
    });
    let nginx = shipped_nginx(&upstream(&s)).await;
    let varnish = shipped_varnish(&upstream(&s)).await;
    let path = format!("/img/{ROCKET}?h=100");
    let accept = CLIENTS[2].0;
    for p in [&nginx, &varnish] {
        let (_, _, d) = fetch(&format!("{}{path}", p.base), accept).await;
        assert_eq!(d, (150, 100));
        let (_, status, _) = fetch(&format!("{}{path}", p.base), accept).await;
        assert_eq!(status, "HIT");
    }
    // The original is replaced behind the proxies (a square image under the same key).
    let square = std::fs::read(Path::new(FIXTURES).join("cmyk-100x100.jpg")).unwrap();
    std::fs::write(s.root.join(ROCKET), square).unwrap();
    for p in [&nginx, &varnish] {
        let (_, status, d) = fetch(&format!("{}{path}", p.base), accept).await;
        assert_eq!(
            (status.as_str(), d),
            ("HIT", (150, 100)),
            "still the old one"
        );
    }
    // Varnish: PURGE drops every variant of the URL.
    let r = client()
        .request(
            reqwest::Method::from_bytes(b"PURGE").unwrap(),
            format!("{}{path}", varnish.base),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, status, d) = fetch(&format!("{}{path}", varnish.base), accept).await;
    assert_eq!((status.as_str(), d), ("MISS", (100, 100)));
    // nginx: the refresh token fetches anew and stores the answer in place of the old one.
    let r = client()
        .get(format!("{}{path}", nginx.base))
        .header("accept", accept)
        .header("x-refresh-token", "CHANGE-ME")
        .send()
        .await
        .unwrap();
    assert_eq!(header(r.headers(), "x-proxy-cache"), Some("BYPASS"));
    assert_eq!(dims(&r.bytes().await.unwrap()), (100, 100));
    let (_, status, d) = fetch(&format!("{}{path}", nginx.base), accept).await;
    assert_eq!((status.as_str(), d), ("HIT", (100, 100)));
}

/// Cloudflare Free, recipe 3: the Worker puts `fm` in the URL from `Accept`, in front of a cache
/// that keys by URL alone and Refract on `negotiate = "off"`. Node runs the shipped worker.js.
#[tokio::test(flavor = "multi_thread")]
async fn cloudflare_worker_makes_the_format_explicit() {
    let s = start(|_| {});
    let proxy = url_only_nginx(&upstream(&s)).await;
    let out = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/worker.test.mjs"
        ))
        .arg(&proxy.base)
        .arg(format!("/img/{ROCKET}?w=160"))
        .output()
        .expect("node is installed (scripts/setup --test)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One line per client and pass: the format and the proxy's cache status.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "image/avif MISS",
            "image/webp MISS",
            "image/jpeg MISS",
            "image/avif HIT",
            "image/webp HIT",
            "image/jpeg HIT",
        ],
        "{stdout}"
    );
}
