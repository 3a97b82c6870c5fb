//! A cluster of real processes: three `refract` binaries on 127.0.0.1 sharing one PostgreSQL
//! database, one S3 bucket (SeaweedFS, with the persistent variant tier in it) and one Redis,
//! all started by `.ci/test.sh`. What one node does, the others see; what must run once runs
//! once, and goes on when its node is killed with SIGKILL. A PostgreSQL restart under a
//! running server answers 503 fast, then recovers without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{distinct_png, Form, ADMIN, BOUNDARY};
use common::s3::{s3_env, s3_operator};
use common::{free_port, spawn_guarded, Killed};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn need(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the suite with .ci/test.sh, which starts PostgreSQL, S3 and Redis")
    })
}

/// A webhook receiver: a thread answering 200 to every POST, keeping each body.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let g = g.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(stream.try_clone().unwrap());
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_ok() {
                        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                            g.lock().unwrap().push(v);
                        }
                    }
                    let mut s = stream;
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                });
            }
        });
        Self { port, got }
    }

    /// The events of `kind` received so far.
    fn of(&self, kind: &str) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["type"] == kind)
            .cloned()
            .collect()
    }
}

struct Node {
    base: String,
    process: Killed,
}

fn node(shared: &[(&str, String)], data: &std::path::Path) -> Node {
    let port = free_port();
    let env: Vec<(&str, &str)> = shared.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let process = spawn_guarded(data, port, &env);
    Node {
        base: format!("http://127.0.0.1:{port}"),
        process,
    }
}

async fn get(url: &str, key: Option<&str>) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut r = common::client().get(url);
    if let Some(k) = key {
        r = r.header("x-api-key", k);
    }
    let r = r.send().await.unwrap();
    let (st, h) = (r.status().as_u16(), r.headers().clone());
    (st, h, r.bytes().await.unwrap().to_vec())
}

async fn json_call(method: &str, url: &str, key: &str, body: &Value) -> (u16, Value) {
    let r = common::client()
        .request(method.parse().unwrap(), url)
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (
        st,
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null),
    )
}

async fn upload(base: &str, name: &str, bytes: &[u8], fields: &[(&str, &str)]) -> Value {
    let mut form = Form::new().file("file", name, bytes);
    for (k, v) in fields {
        form = form.text(k, v);
    }
    let r = common::client()
        .post(format!("{base}/api/v1/images"))
        .header("x-api-key", ADMIN)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form.body())
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(st, 201, "{v}");
    v["images"][0].clone()
}

/// Poll `check` every 25 ms until it holds, at most `within`.
async fn within<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_view_and_run_each_job_once() {
    let pg = common::create_database(&need("REFRACT_TEST_PG_URL"));
    let redis = need("REFRACT_TEST_REDIS");
    let (endpoint, bucket, s3_key, s3_secret) = s3_env();
    let prefix = format!(
        "cluster-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let shared: Vec<(&str, String)> = vec![
        ("REFRACT__DATABASE__URL", pg),
        ("REFRACT__STORAGE__BACKEND", "s3".into()),
        ("REFRACT__STORAGE__ENDPOINT", endpoint.clone()),
        ("REFRACT__STORAGE__BUCKET", bucket.clone()),
        ("REFRACT__STORAGE__ACCESS_KEY_ID", s3_key.clone()),
        ("REFRACT__STORAGE__SECRET_ACCESS_KEY", s3_secret.clone()),
        ("REFRACT__STORAGE__PREFIX", prefix.clone()),
        ("REFRACT__CACHE__PERSISTENT__BACKEND", "s3".into()),
        (
            "REFRACT__CACHE__PERSISTENT__PATH",
            format!("{prefix}-cache/"),
        ),
        ("REFRACT__RATELIMIT__REDIS_URL", redis),
        ("REFRACT__EXPIRY__SWEEP_INTERVAL", "1".into()),
        ("REFRACT__WEBHOOKS__ALLOW_HTTP", "true".into()),
        ("REFRACT__WEBHOOKS__ALLOW_NETWORKS", "127.0.0.1/32".into()),
    ];
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // One node first (it migrates the database), then the two others.
    let a = node(&shared, dirs[0].path());
    let b = node(&shared, dirs[1].path());
    let mut c = Some(node(&shared, dirs[2].path()));
    let c_base = c.as_ref().unwrap().base.clone();
    let nodes = [a.base.clone(), b.base.clone(), c_base.clone()];
    for n in &nodes {
        let (st, _, body) = get(&format!("{n}/ready"), None).await;
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    }

    // Upload on A; B and C read and transform it at once, to the same bytes.
    let img = upload(&a.base, "a.png", &distinct_png(31), &[]).await;
    let (id, key) = (
        img["id"].as_str().unwrap().to_string(),
        img["key"].as_str().unwrap().to_string(),
    );
    let url = |n: &str, q: &str| format!("{n}/img/{key}?{q}");
    let (ub, uc) = (url(&b.base, "w=64"), url(&c_base, "w=64"));
    let (rb, rc) = tokio::join!(get(&ub, None), get(&uc, None));
    assert_eq!((rb.0, rc.0), (200, 200));
    assert_eq!(rb.2, rc.2, "the same variant on every node");

    // A variant A made (and wrote to the shared persistent tier, in the background) is a
    // persistent hit on B.
    let tier = s3_operator(
        &endpoint,
        &bucket,
        &s3_key,
        &s3_secret,
        &format!("{prefix}-cache/"),
    );
    let cached = || async {
        tier.list_with("")
            .recursive(true)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .count()
    };
    // B's and C's own w=64 variants land first (written in the background too).
    within(
        Duration::from_secs(10),
        "the w=64 variants are stored",
        || async { cached().await >= 1 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cached().await;
    let (st, h, _) = get(&url(&a.base, "w=50"), None).await;
    assert_eq!((st, common::header(&h, "x-cache")), (200, Some("MISS")));
    within(
        Duration::from_secs(10),
        "A's variant reaches the shared tier",
        || async { cached().await > before },
    )
    .await;
    let (st, h, _) = get(&url(&b.base, "w=50"), None).await;
    assert_eq!(
        (st, common::header(&h, "x-cache")),
        (200, Some("HIT-PERSISTENT"))
    );

    // Private on B: A and C answer 404 within a second (the key of the tenant still sees it).
    let (st, v) = json_call(
        "PATCH",
        &format!("{}/api/v1/images/{id}", b.base),
        ADMIN,
        &json!({"is_private": true}),
    )
    .await;
    assert_eq!((st, &v["is_private"]), (200, &json!(true)), "{v}");
    for n in [&a.base, &c_base] {
        within(Duration::from_secs(1), "private everywhere", || async {
            get(&url(n, "w=64"), None).await.0 == 404
        })
        .await;
        assert_eq!(get(&url(n, "w=64"), Some(ADMIN)).await.0, 200);
    }
    // Public again on A: B and C serve it again.
    let (st, _) = json_call(
        "PATCH",
        &format!("{}/api/v1/images/{id}", a.base),
        ADMIN,
        &json!({"is_private": false}),
    )
    .await;
    assert_eq!(st, 200);
    for n in [&b.base, &c_base] {
        within(Duration::from_secs(1), "public everywhere", || async {
            get(&url(n, "w=64"), None).await.0 == 200
        })
        .await;
    }

    // A share link made on A opens on B; revoked on C, it opens nowhere at once.
    let (st, v) = json_call(
        "POST",
        &format!("{}/api/v1/images/{id}/shares", a.base),
        ADMIN,
        &json!({}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (share_id, token) = (
        v["share"]["id"].as_str().unwrap().to_string(),
        v["share"]["token"].as_str().unwrap().to_string(),
    );
    assert_eq!(get(&format!("{}/s/{token}", b.base), None).await.0, 200);
    let r = common::client()
        .delete(format!("{c_base}/api/v1/shares/{share_id}"))
        .header("x-api-key", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for n in &nodes {
        assert_eq!(get(&format!("{n}/s/{token}"), None).await.0, 404, "{n}");
    }

    // Deleted on C: the persistent tier's objects are gone, A and B answer 404.
    assert!(cached().await > 0, "variants in the shared tier");
    let r = common::client()
        .delete(format!("{c_base}/api/v1/images/{id}"))
        .header("x-api-key", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        cached().await,
        0,
        "the deleting node purged the shared tier"
    );
    for n in [&a.base, &b.base] {
        within(Duration::from_secs(1), "deleted everywhere", || async {
            get(&url(n, "w=64"), None).await.0 == 404 && get(&url(n, "w=50"), None).await.0 == 404
        })
        .await;
    }

    // A limit of 5 a minute is the cluster's: the sixth request, on any node, is refused.
    let (st, v) = json_call(
        "POST",
        &format!("{}/api/v1/keys", a.base),
        ADMIN,
        &json!({"name": "limited", "scopes": ["read"], "rate_limit": {"per_minute": 5}}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let limited = v["key"]["key"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    for i in 0..6 {
        let n = &nodes[i % 3];
        let (st, h, _) = get(&format!("{n}/api/v1/images"), Some(&limited)).await;
        statuses.push((
            st,
            common::header(&h, "x-ratelimit-remaining").map(str::to_string),
        ));
    }
    assert_eq!(
        statuses.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![200, 200, 200, 200, 200, 429],
        "{statuses:?}"
    );
    assert_eq!(statuses[4].1.as_deref(), Some("0"), "{statuses:?}");
    for n in &nodes {
        assert_eq!(
            get(&format!("{n}/api/v1/images"), Some(&limited)).await.0,
            429
        );
    }

    // The expiry sweep and its webhook run once in total with three nodes up.
    let rx = Receiver::start();
    let (st, v) = json_call(
        "POST",
        &format!("{}/api/v1/webhooks", b.base),
        ADMIN,
        &json!({"url": format!("http://127.0.0.1:{}/hook", rx.port), "events": ["image.expired"]}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let soon = |secs: i64| {
        let t = std::time::SystemTime::now() + Duration::from_secs(u64::try_from(secs).unwrap());
        humantime_rfc3339(t)
    };
    let e1 = upload(&a.base, "e1.png", &distinct_png(32), &[]).await;
    let (st, v) = json_call(
        "PATCH",
        &format!("{}/api/v1/images/{}", a.base, e1["id"].as_str().unwrap()),
        ADMIN,
        &json!({"expires_at": soon(2)}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    within(
        Duration::from_secs(20),
        "the first expiry is delivered",
        || async { !rx.of("image.expired").is_empty() },
    )
    .await;
    // Time for any other node to (wrongly) sweep or deliver it again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rx.of("image.expired").len(),
        1,
        "{:?}",
        rx.of("image.expired")
    );

    // The node running the upkeep is killed with SIGKILL; another takes it over.
    let mut holder = None;
    for n in &nodes {
        let (_, _, body) = get(&format!("{n}/ready"), None).await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        if v["leases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "upkeep")
        {
            holder = Some(n.clone());
        }
    }
    let holder = holder.expect("one node holds the upkeep lease");
    let mut a_proc = Some(a.process);
    let mut b_proc = Some(b.process);
    let victim = if holder == nodes[0] {
        a_proc.take()
    } else if holder == nodes[1] {
        b_proc.take()
    } else {
        c.take().map(|n| n.process)
    };
    let victim = victim.unwrap();
    let pid = victim.id();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    drop(victim);
    let alive: Vec<String> = nodes.iter().filter(|n| **n != holder).cloned().collect();
    let e2 = upload(&alive[0], "e2.png", &distinct_png(33), &[]).await;
    let (st, _) = json_call(
        "PATCH",
        &format!("{}/api/v1/images/{}", alive[1], e2["id"].as_str().unwrap()),
        ADMIN,
        &json!({"expires_at": soon(2)}),
    )
    .await;
    assert_eq!(st, 200);
    within(
        Duration::from_secs(30),
        "the second expiry is delivered",
        || async { rx.of("image.expired").len() >= 2 },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let expired = rx.of("image.expired");
    assert_eq!(expired.len(), 2, "{expired:?}");
    assert_ne!(expired[0]["data"]["id"], expired[1]["data"]["id"]);
    let mut survivors = 0;
    for n in &alive {
        let (_, _, body) = get(&format!("{n}/ready"), None).await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        survivors += usize::from(
            v["leases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l == "upkeep"),
        );
    }
    assert_eq!(survivors, 1, "one survivor took the upkeep over");
    drop((a_proc, b_proc, c));
}

/// RFC 3339 in UTC, seconds.
fn humantime_rfc3339(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    refract::util::clock::rfc3339(i64::try_from(secs * 1000).unwrap())
}

/// A PostgreSQL of one test (its own cluster in a temp folder, from Debian's binaries: the
/// restart test cannot stop the shared one).
struct OwnPostgres {
    bin: String,
    data: std::path::PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OwnPostgres {
    fn as_postgres(&self, tool: &str) -> std::process::Command {
        let path = format!("{}/{tool}", self.bin);
        if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", &path]);
            c
        } else {
            std::process::Command::new(path)
        }
    }

    fn start_new(bin: String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            std::process::Command::new("chown")
                .args(["postgres:postgres", dir.path().to_str().unwrap()])
                .status()
                .unwrap();
        }
        let me = Self {
            bin,
            data: dir.path().join("data"),
            port: free_port(),
            _dir: dir,
        };
        let st = me
            .as_postgres("initdb")
            .args([
                "-D",
                me.data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
            ])
            .args(["--locale=C.UTF-8", "--no-sync"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "initdb");
        me.start();
        me
    }

    fn start(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.data.parent().unwrap().display()
        );
        let st = self
            .as_postgres("pg_ctl")
            .args([
                "-D",
                self.data.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "-o",
                &opts,
            ])
            .arg("-l")
            .arg(self.data.parent().unwrap().join("server.log"))
            .arg("start")
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "pg_ctl start");
    }

    fn stop(&self) {
        let st = self
            .as_postgres("pg_ctl")
            .args([
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "pg_ctl stop");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .args([
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// PostgreSQL stops under a running server: API requests answer 503 (not a hang, not a 500),
/// `/ready` says the database is down while `/health` stays up; once it is back, the same
/// process serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_answers_503_fast_then_recovers() {
    let pg = OwnPostgres::start_new(need("REFRACT_TEST_PG_BIN"));
    let url = pg.url();
    let s = common::api::start_api(move |c| {
        c.database.url = Some(refract::util::secret::Secret(url));
        c.database.acquire_timeout_ms = Some(500);
    });
    let api = common::api::Api::admin(&s);
    api.upload_one("a.png", &distinct_png(41), &[]).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let call = |path: &str| client.get(s.url(path)).header("x-api-key", ADMIN).send();
    assert_eq!(call("/api/v1/images").await.unwrap().status(), 200);

    pg.stop();
    for _ in 0..3 {
        let r = call("/api/v1/images").await.expect("an answer, not a hang");
        let st = r.status().as_u16();
        let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(st, 503, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    let r = call("/ready").await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["status"], "unready");
    assert_ne!(v["database"], "ok");
    assert_eq!(v["storage"], "ok");
    assert_eq!(call("/health").await.unwrap().status(), 200);

    pg.start();
    within(Duration::from_secs(20), "the API serves again", || async {
        call("/api/v1/images")
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert_eq!(call("/ready").await.unwrap().status(), 200);
    assert_eq!(api.ids("").await.len(), 1, "nothing lost");
}
