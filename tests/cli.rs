//! The `refract` binary as a user runs it: defaults, flags, env, config errors, sample images,
//! graceful shutdown on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::free_port;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_refract");

fn wait_health(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Write;
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if out.starts_with("HTTP/1.1 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn http_get(port: u16, path: &str) -> Vec<u8> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn cli_first_run_seeds_samples_and_serves_them_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env("REFRACT_LISTEN", format!("127.0.0.1:{port}"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_health(port), "server did not come up");
    for sample in ["rocket.jpg", "dice.png", "landscape.jpg"] {
        assert!(
            dir.path().join("data/images").join(sample).exists(),
            "{sample} seeded"
        );
    }
    let resp = http_get(port, "/img/rocket.jpg?w=400");
    assert!(
        resp.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&resp[..200.min(resp.len())])
    );
    // SIGTERM: a clean, prompt exit.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn cli_flags_beat_env_and_storage_root_serves_an_existing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/cmyk-100x100.jpg"
        ),
        photos.join("c.jpg"),
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--storage-root",
        ])
        .arg(&photos)
        .env("REFRACT_LISTEN", "127.0.0.1:1")
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = wait_health(port);
    let resp = if up {
        http_get(port, "/img/c.jpg?w=50&fm=png")
    } else {
        Vec::new()
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "--listen must beat REFRACT_LISTEN");
    assert!(resp.starts_with(b"HTTP/1.1 200"));
    assert!(
        !dir.path().join("data/images").exists(),
        "no default folder when --storage-root is given"
    );
}

#[test]
fn cli_unknown_config_keys_fail_at_start_with_the_key_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[cache]\nmemory_byte = 5\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("memory_byte"));
    let out = Command::new(BIN)
        .env("REFRACT__LIMITS__MAX_PIXELZ", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_pixelz"));
}

fn http_send(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn cli_embedded_database_and_keys_never_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let admin = "bootstrap-secret-4d9c1e";
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env("REFRACT_LISTEN", format!("127.0.0.1:{port}"))
        .env("REFRACT_API_KEY", admin)
        .env("REFRACT__SERVER__LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_health(port), "server did not come up");
    assert!(
        dir.path().join("data/refract.db").exists(),
        "embedded SQLite at <data_dir>/refract.db"
    );
    let created = http_send(
        port,
        "POST",
        "/api/v1/keys",
        &[("X-API-Key", admin), ("Content-Type", "application/json")],
        br#"{"name": "uploader", "scopes": ["write"]}"#,
    );
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let json: serde_json::Value =
        serde_json::from_str(created.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let secret = json["key"]["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("rfk_"), "{created}");
    let boundary = "b0undary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"r.jpg\"\r\n\r\n"
    )
    .into_bytes();
    body.extend(std::fs::read(dir.path().join("data/images/rocket.jpg")).unwrap());
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    let up = http_send(
        port,
        "POST",
        "/api/v1/images",
        &[
            ("Authorization", &format!("Bearer {secret}")),
            (
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            ),
        ],
        &body,
    );
    assert!(
        up.starts_with("HTTP/1.1 201"),
        "{}",
        &up[..up.len().min(300)]
    );
    let bad = http_send(
        port,
        "GET",
        "/api/v1/images",
        &[("X-API-Key", "rfk_wrong-guess")],
        b"",
    );
    assert!(bad.starts_with("HTTP/1.1 401"));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    child.wait().unwrap();
    assert!(
        log.contains("/api/v1/images"),
        "requests are logged:\n{log}"
    );
    for s in [admin, secret.as_str(), "rfk_wrong-guess"] {
        assert!(!log.contains(s), "secret {s} in the log:\n{log}");
    }
    assert!(
        !log.contains("\u{1b}["),
        "ANSI colours in a non-terminal log"
    );
}

#[test]
fn cli_sign_uses_the_same_config_as_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [
        ("REFRACT__SECURITY__SIGNING_KEYS", "k-new,k-old"),
        ("REFRACT__SECURITY__REQUIRE_SIGNATURE", "true"),
    ];
    let mut server = Command::new(BIN);
    server
        .current_dir(dir.path())
        .env("REFRACT_LISTEN", format!("127.0.0.1:{port}"))
        .stderr(Stdio::null());
    for (k, v) in env {
        server.env(k, v);
    }
    let mut child = server.spawn().unwrap();
    assert!(wait_health(port), "server did not come up");
    let sign = |target: &str, extra: &[&str]| {
        let mut c = Command::new(BIN);
        c.current_dir(dir.path())
            .arg("sign")
            .arg(target)
            .args(extra);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let signed = sign("/img/rocket.jpg?w=120", &[]);
    assert!(signed.starts_with("/img/rocket.jpg?w=120&s="), "{signed}");
    assert!(http_get(port, &signed).starts_with(b"HTTP/1.1 200"));
    assert!(http_get(port, "/img/rocket.jpg?w=120").starts_with(b"HTTP/1.1 403"));
    let full = sign(
        &format!("http://127.0.0.1:{port}/img/dice.png?w=50"),
        &["--expires-in", "600"],
    );
    let path = full.trim_start_matches(&format!("http://127.0.0.1:{port}"));
    assert!(path.contains("expires="), "{full}");
    assert!(http_get(port, path).starts_with(b"HTTP/1.1 200"));
    // Without keys, sign refuses with a clear message.
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["sign", "/img/a.jpg"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signing_keys"));
    let _ = child.kill();
    let _ = child.wait();
}
