//! Webhooks end to end: real receiver processes on 127.0.0.1 (tests/support/webhook_receiver.py,
//! which verifies signatures with the Standard Webhooks reference implementation from PyPI),
//! the real server and its SQLite outbox, and the real binary killed with SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{distinct_png, start_api, Api, Form, ADMIN, BOUNDARY};
use common::{free_port, spawn_guarded, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A receiver process, killed when dropped.
struct Receiver {
    port: u16,
    child: std::process::Child,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python that has `standardwebhooks` (.ci/test.sh installs it and sets the variable).
fn python() -> String {
    std::env::var("REFRACT_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

impl Receiver {
    fn start(port: u16) -> Self {
        Self::start_with(port, &[])
    }

    /// A receiver that answers its first requests with `statuses` (then 200).
    fn start_with(port: u16, statuses: &[u16]) -> Self {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/webhook_receiver.py"
        );
        let mut child = std::process::Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .arg(
                statuses
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3 (REFRACT_TEST_PYTHON) must run");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "the receiver exited ({st}): is `standardwebhooks` installed for {}? \
                     (.ci/test.sh installs it; or set REFRACT_TEST_PYTHON)",
                    python()
                );
            }
            assert!(Instant::now() < deadline, "receiver did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port, child }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn log(&self) -> Vec<Value> {
        let r = common::client()
            .get(self.url("/_log"))
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
    }

    /// Wait until `n` requests have arrived (at most 30 s).
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log().await;
            if log.len() >= n {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} deliveries arrived: {log:#?}",
                log.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn script(&self, statuses: &[u16], delay_ms: u64) {
        self.script_padded(statuses, delay_ms, 0).await;
    }

    /// As `script`, every answer's body lengthened by `pad_bytes`.
    async fn script_padded(&self, statuses: &[u16], delay_ms: u64, pad_bytes: usize) {
        common::client()
            .post(self.url("/_script"))
            .body(
                json!({"statuses": statuses, "delay_ms": delay_ms, "pad_bytes": pad_bytes})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
    }

    /// The reference implementation's verdict on request `index` under `secret`.
    async fn verify(&self, secret: &str, index: usize) -> Value {
        common::client()
            .post(self.url("/_verify"))
            .body(json!({"secret": secret, "index": index}).to_string())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap()
    }
}

/// A server whose webhooks may reach 127.0.0.1 over http, retrying every second.
fn server(tweak: impl FnOnce(&mut refract::config::Config)) -> Server {
    start_api(|c| {
        c.webhooks.allow_http = true;
        c.webhooks.allow_networks = vec!["127.0.0.1/32".into()];
        c.webhooks.retry_schedule_secs = vec![1, 1, 1, 1, 1, 1, 1, 1];
        c.expiry.sweep_interval = 1;
        tweak(c);
    })
}

/// Create an endpoint; returns (id, secret).
async fn endpoint(api: &Api, url: &str, events: Value) -> (String, String) {
    let r = api
        .json(
            "POST",
            "/api/v1/webhooks",
            &json!({"url": url, "events": events}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert!(v["webhook"].get("secret").is_none());
    (
        v["webhook"]["id"].as_str().unwrap().to_string(),
        v["secret"].as_str().unwrap().to_string(),
    )
}

async fn deliveries(api: &Api, hook: &str) -> Vec<Value> {
    let r = api
        .get(&format!("/api/v1/webhooks/{hook}/deliveries"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["deliveries"].as_array().unwrap().clone()
}

/// Poll the deliveries until `done` holds (at most 30 s).
async fn deliveries_until(api: &Api, hook: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = deliveries(api, hook).await;
        if done(&d) {
            return d;
        }
        assert!(Instant::now() < deadline, "deliveries stuck: {d:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn put_avatar(api: &Api, user: &str, bytes: &[u8]) -> u16 {
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    api.send(
        "PUT",
        &format!("/api/v1/avatars/{user}"),
        &[("content-type", ct.as_str())],
        Some(Form::new().file("file", "me.png", bytes).body()),
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_arrives_signed_in_order_and_verified_by_the_reference_implementation() {
    let rx = Receiver::start(free_port());
    let s = server(|_| {});
    let api = Api::admin(&s);
    let (hook, secret) = endpoint(&api, &rx.url("/hooks"), json!("*")).await;

    // The real actions, one of each event type.
    let img = api
        .upload_one("a.png", &distinct_png(1), &[("tags", "cat")])
        .await;
    let id = img["id"].as_str().unwrap().to_string();
    let r = api
        .json(
            "PATCH",
            &format!("/api/v1/images/{id}"),
            &json!({"description": "tabby"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let album = api
        .json("POST", "/api/v1/albums", &json!({"name": "Cats"}))
        .await
        .json()["album"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api
        .json(
            "POST",
            &format!("/api/v1/albums/{album}/images"),
            &json!({"imageIds": [id]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        api.delete(&format!("/api/v1/albums/{album}")).await.status,
        200
    );
    assert_eq!(put_avatar(&api, "alice", &distinct_png(2)).await, 200);
    assert_eq!(api.delete("/api/v1/avatars/alice").await.status, 200);
    assert_eq!(
        api.delete(&format!("/api/v1/images/{id}")).await.status,
        200
    );
    // An image that expires: its patch is announced, then the sweep's removal.
    let gone = api.upload_one("b.png", &distinct_png(3), &[]).await;
    let gone_id = gone["id"].as_str().unwrap().to_string();
    let r = api
        .json(
            "PATCH",
            &format!("/api/v1/images/{gone_id}"),
            &json!({"expires_at": 1}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api
        .send("POST", &format!("/api/v1/webhooks/{hook}/test"), &[], None)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    let log = rx.wait_for(12).await;
    let types: Vec<&str> = log
        .iter()
        .map(|e| e["body"]["type"].as_str().unwrap())
        .collect();
    for t in [
        "image.uploaded",
        "image.updated",
        "album.created",
        "album.updated",
        "album.deleted",
        "avatar.updated",
        "avatar.deleted",
        "image.deleted",
        "image.expired",
        "webhook.test",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    // Every request verifies with the reference implementation, and its payload is the body.
    for (i, e) in log.iter().enumerate() {
        let v = rx.verify(&secret, i).await;
        assert_eq!(v["ok"], true, "request {i}: {v}");
        assert_eq!(v["payload"], e["body"]);
        assert!(e["headers"]["webhook-id"]
            .as_str()
            .unwrap()
            .starts_with("msg_"));
        assert_eq!(e["headers"]["content-type"], "application/json");
    }
    // A wrong secret does not verify.
    let wrong = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert_eq!(rx.verify(wrong, 0).await["ok"], false);

    // Payloads: the IMAGE object (as the API shows it), the ALBUM object, ids for deletions.
    let of = |t: &str, id: &str| {
        log.iter()
            .position(|e| {
                e["body"]["type"] == t
                    && (e["body"]["data"]["id"] == id || e["body"]["data"]["user_id"] == id)
            })
            .unwrap_or_else(|| panic!("no {t} for {id}"))
    };
    let up = &log[of("image.uploaded", &id)]["body"];
    assert_eq!(up["data"]["key"], img["key"]);
    assert_eq!(up["data"]["url"], img["url"]);
    assert_eq!(up["data"]["tags"], json!(["cat"]));
    assert!(up["timestamp"].as_str().unwrap().ends_with('Z'));
    let upd = &log[of("image.updated", &id)]["body"];
    assert_eq!(upd["data"]["description"], "tabby");
    assert_eq!(
        log[of("album.created", &album)]["body"]["data"]["name"],
        "Cats"
    );
    let added = &log[of("album.updated", &album)]["body"]["data"];
    assert_eq!(added["image_count"], 1);
    assert_eq!(
        log[of("album.deleted", &album)]["body"]["data"],
        json!({ "id": album })
    );
    assert_eq!(
        log[of("avatar.updated", "alice")]["body"]["data"]["format"],
        "png"
    );
    assert_eq!(
        log[of("image.deleted", &id)]["body"]["data"],
        json!({ "id": id })
    );
    assert_eq!(
        log[of("image.expired", &gone_id)]["body"]["data"],
        json!({ "id": gone_id })
    );
    // Per object, commit order.
    assert!(of("image.uploaded", &id) < of("image.updated", &id));
    assert!(of("image.updated", &id) < of("image.deleted", &id));
    assert!(of("album.created", &album) < of("album.updated", &album));
    assert!(of("album.updated", &album) < of("album.deleted", &album));
    assert!(of("avatar.updated", "alice") < of("avatar.deleted", "alice"));
    assert!(of("image.updated", &gone_id) < of("image.expired", &gone_id));

    // The deliveries are listed as delivered, with the receiver's answer.
    let d = deliveries_until(&api, &hook, |d| {
        d.len() == 12 && d.iter().all(|x| x["status"] == "delivered")
    })
    .await;
    assert!(d
        .iter()
        .all(|x| x["last_status_code"] == 200 && x["attempts"] == 1));
    assert!(d[0]["response"].as_str().unwrap().contains("received"));
    // Metrics count them.
    let m = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("refract_webhook_deliveries_total{outcome=\"delivered\"} 12"),
        "{m}"
    );
    assert!(m.contains("refract_webhook_outbox_pending 0"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_filter_and_a_failed_change_announces_nothing() {
    let rx = Receiver::start(free_port());
    let s = server(|c| c.quota.default_images = 2);
    let api = Api::admin(&s);
    endpoint(&api, &rx.url("/only-uploads"), json!(["image.uploaded"])).await;
    endpoint(&api, &rx.url("/albums"), json!(["album.*"])).await;
    let first = api.upload_one("a.png", &distinct_png(10), &[]).await;
    // A batch refused as a whole because one file is not an image (it would fit the quota).
    let r = api
        .upload(Form::new().file("file", "c.png", &distinct_png(12)).file(
            "file",
            "d.png",
            b"not an image",
        ))
        .await;
    assert!([415, 422].contains(&r.status), "{}", r.text());
    // Over the quota: 507, nothing stored.
    let r = api
        .upload(Form::new().file("file", "e.png", &distinct_png(13)).file(
            "file",
            "f.png",
            &distinct_png(14),
        ))
        .await;
    assert_eq!(r.status, 507, "{}", r.text());
    let last = api.upload_one("g.png", &distinct_png(15), &[]).await;
    api.json("POST", "/api/v1/albums", &json!({"name": "A"}))
        .await;
    rx.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = rx.log().await;
    let mut got: Vec<(String, String, String)> = log
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["body"]["type"].as_str().unwrap().to_string(),
                e["body"]["data"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got.len(), 3, "{log:#?}");
    assert_eq!(got[0].0, "/albums");
    assert_eq!(
        got[1..]
            .iter()
            .map(|(p, t, i)| (p.as_str(), t.as_str(), i.as_str()))
            .collect::<std::collections::BTreeSet<_>>(),
        [
            (
                "/only-uploads",
                "image.uploaded",
                first["id"].as_str().unwrap()
            ),
            (
                "/only-uploads",
                "image.uploaded",
                last["id"].as_str().unwrap()
            ),
        ]
        .into_iter()
        .collect()
    );
}

/// One object's events wait behind its retry; other objects' go on.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_waits_for_its_retry_while_others_go_on() {
    let rx = Receiver::start_with(free_port(), &[500]);
    let s = server(|c| c.webhooks.retry_schedule_secs = vec![3, 3, 3]);
    let api = Api::admin(&s);
    endpoint(&api, &rx.url("/o"), json!("*")).await;
    let a = api.upload_one("a.png", &distinct_png(80), &[]).await;
    let a = a["id"].as_str().unwrap().to_string();
    rx.wait_for(1).await; // a's upload, answered 500: retried in about 3 s
    let r = api
        .json(
            "PATCH",
            &format!("/api/v1/images/{a}"),
            &json!({"description": "later"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let b = api.upload_one("b.png", &distinct_png(81), &[]).await;
    let b = b["id"].as_str().unwrap().to_string();
    let log = rx.wait_for(4).await;
    let seen: Vec<(String, String, u64)> = log
        .iter()
        .map(|e| {
            (
                e["body"]["type"].as_str().unwrap().to_string(),
                e["body"]["data"]["id"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("image.uploaded".into(), a.clone(), 500),
            ("image.uploaded".into(), b, 200),
            ("image.uploaded".into(), a.clone(), 200),
            ("image.updated".into(), a, 200),
        ],
        "b goes first; a's update waits for a's upload"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_not_followed_and_answers_are_kept_truncated() {
    let rx = Receiver::start_with(free_port(), &[302]);
    let s = server(|c| c.webhooks.max_response_bytes = 16);
    let api = Api::admin(&s);
    let (hook, _) = endpoint(&api, &rx.url("/r"), json!("*")).await;
    rx.script_padded(&[302], 0, 5000).await;
    api.upload_one("a.png", &distinct_png(90), &[]).await;
    let d = deliveries_until(&api, &hook, |d| {
        d.first().is_some_and(|x| x["status"] == "delivered")
    })
    .await;
    let log = rx.log().await;
    assert!(
        log.iter().all(|e| e["path"] == "/r"),
        "a redirect was followed: {log:#?}"
    );
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["status"], 302);
    assert_eq!(d[0]["attempts"], 2);
    assert_eq!(d[0]["response"].as_str().unwrap().len(), 16, "{}", d[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_failing_past_disable_after_hours_is_disabled() {
    // 0 hours: the first failed attempt already counts as failing too long.
    let rx = Receiver::start_with(free_port(), &[503]);
    let s = server(|c| c.webhooks.disable_after_hours = 0);
    let api = Api::admin(&s);
    let (hook, _) = endpoint(&api, &rx.url("/d"), json!("*")).await;
    api.upload_one("a.png", &distinct_png(95), &[]).await;
    let d = deliveries_until(&api, &hook, |d| {
        d.first().is_some_and(|x| x["status"] == "failed")
    })
    .await;
    assert_eq!(d[0]["last_status_code"], 503);
    let w = api.get(&format!("/api/v1/webhooks/{hook}")).await.json()["webhook"].clone();
    assert_eq!(w["enabled"], false);
    assert!(
        w["disabled_reason"].as_str().unwrap().contains("failed"),
        "{w}"
    );
    // Enabled again, it receives the next change.
    let r = api
        .json(
            "PATCH",
            &format!("/api/v1/webhooks/{hook}"),
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["webhook"]["disabled_reason"].clone()),
        (200, Value::Null)
    );
    api.upload_one("b.png", &distinct_png(96), &[]).await;
    assert_eq!(rx.wait_for(2).await[1]["status"], 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_sends_both_signatures_for_the_overlap() {
    let rx = Receiver::start(free_port());
    let s = server(|_| {});
    let api = Api::admin(&s);
    let (hook, old) = endpoint(&api, &rx.url("/r"), json!("*")).await;
    let r = api
        .send(
            "POST",
            &format!("/api/v1/webhooks/{hook}/rotate-secret"),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let new = r.json()["secret"].as_str().unwrap().to_string();
    assert!(r.json()["webhook"].get("secret").is_none());
    assert!(new.starts_with("whsec_") && new != old);
    assert!(r.json()["previous_secret_valid_until"].is_string());
    api.upload_one("a.png", &distinct_png(20), &[]).await;
    let log = rx.wait_for(1).await;
    let sig = log[0]["headers"]["webhook-signature"].as_str().unwrap();
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    assert_eq!(rx.verify(&new, 0).await["ok"], true);
    assert_eq!(rx.verify(&old, 0).await["ok"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_until_the_receiver_answers_with_the_same_message_id() {
    let port = free_port();
    let s = server(|_| {});
    let api = Api::admin(&s);
    let (hook, secret) = endpoint(&api, &format!("http://127.0.0.1:{port}/late"), json!("*")).await;
    // The receiver is down: the attempt fails and a retry is scheduled.
    api.upload_one("a.png", &distinct_png(30), &[]).await;
    let d = deliveries_until(&api, &hook, |d| {
        d.first().is_some_and(|x| x["attempts"] == 1)
    })
    .await;
    assert_eq!(d[0]["status"], "pending");
    assert!(
        d[0]["error"].as_str().unwrap().contains("connect"),
        "{}",
        d[0]
    );
    assert!(d[0]["next_attempt_at"].is_string());
    let m = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("refract_webhook_outbox_pending 1"), "{m}");
    // Up, answering 500 once, then 200.
    let rx = Receiver::start_with(port, &[500]);
    let log = rx.wait_for(2).await;
    assert_eq!(log[0]["status"], 500);
    assert_eq!(log[1]["status"], 200);
    assert_eq!(
        log[0]["headers"]["webhook-id"],
        log[1]["headers"]["webhook-id"]
    );
    assert_eq!(
        log[1]["headers"]["webhook-id"].as_str().unwrap(),
        d[0]["message_id"].as_str().unwrap()
    );
    assert_eq!(rx.verify(&secret, 1).await["ok"], true);
    let d = deliveries_until(&api, &hook, |d| d[0]["status"] == "delivered").await;
    assert!(d[0]["attempts"].as_i64().unwrap() >= 3, "{}", d[0]);
    // Redelivery: the same message again, as a new delivery.
    let first = d[0]["id"].as_str().unwrap();
    let r = api
        .send(
            "POST",
            &format!("/api/v1/webhooks/{hook}/deliveries/{first}/redeliver"),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let log = rx.wait_for(3).await;
    assert_eq!(
        log[2]["headers"]["webhook-id"],
        log[1]["headers"]["webhook-id"]
    );
    let r = api
        .send(
            "POST",
            &format!("/api/v1/webhooks/{hook}/deliveries/dlv_nope/redeliver"),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn gone_disables_at_once_and_a_slow_receiver_times_out() {
    let rx = Receiver::start(free_port());
    let s = server(|c| c.webhooks.timeout_secs = 1);
    let api = Api::admin(&s);
    let (gone, _) = endpoint(&api, &rx.url("/gone"), json!("*")).await;
    rx.script(&[410], 0).await;
    api.upload_one("a.png", &distinct_png(40), &[]).await;
    rx.wait_for(1).await;
    let d = deliveries_until(&api, &gone, |d| {
        d.first().is_some_and(|x| x["status"] == "failed")
    })
    .await;
    assert_eq!(d[0]["last_status_code"], 410);
    let w = api.get(&format!("/api/v1/webhooks/{gone}")).await.json()["webhook"].clone();
    assert_eq!(w["enabled"], false);
    assert!(
        w["disabled_reason"].as_str().unwrap().contains("410"),
        "{w}"
    );
    // Disabled: later changes are not sent to it.
    api.upload_one("b.png", &distinct_png(41), &[]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.log().await.len(), 1);
    assert_eq!(
        api.send("POST", &format!("/api/v1/webhooks/{gone}/test"), &[], None)
            .await
            .status,
        409
    );

    // A receiver slower than timeout_secs: the attempt times out and is retried.
    let (slow, _) = endpoint(&api, &rx.url("/slow"), json!("*")).await;
    rx.script(&[], 2500).await;
    api.upload_one("c.png", &distinct_png(42), &[]).await;
    let d = deliveries_until(&api, &slow, |d| {
        d.first().is_some_and(|x| x["attempts"] == 1)
    })
    .await;
    assert!(
        d[0]["error"].as_str().unwrap().contains("timed out"),
        "{}",
        d[0]
    );
    assert_eq!(d[0]["status"], "pending");
    assert!(d[0]["latency_ms"].as_i64().unwrap() >= 900);
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_at_internal_addresses_are_refused() {
    let s = start_api(|c| c.webhooks.allow_http = true);
    let api = Api::admin(&s);
    let port = free_port();
    for url in [
        format!("http://127.0.0.1:{port}/x"),
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://10.0.0.1/".to_string(),
        "http://[::1]/".to_string(),
        // A name that resolves to an internal address.
        format!("http://localhost:{port}/x"),
    ] {
        let r = api
            .json("POST", "/api/v1/webhooks", &json!({"url": url}))
            .await;
        assert_eq!(r.status, 400, "{url}: {}", r.text());
        assert_eq!(r.json()["error"]["details"]["param"], "url", "{}", r.text());
        assert!(r.text().contains("webhooks.allow_networks"), "{}", r.text());
    }
    // Listed networks open; the metadata address stays closed.
    let s = start_api(|c| {
        c.webhooks.allow_http = true;
        c.webhooks.allow_networks = vec!["127.0.0.0/8".into()];
    });
    let api = Api::admin(&s);
    let ok = api
        .json(
            "POST",
            "/api/v1/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/x")}),
        )
        .await;
    assert_eq!(ok.status, 201);
    let r = api
        .json(
            "POST",
            "/api/v1/webhooks",
            &json!({"url": "http://169.254.169.254/"}),
        )
        .await;
    assert_eq!(r.status, 400);
    // https only, unless allow_http.
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let r = api
        .json(
            "POST",
            "/api/v1/webhooks",
            &json!({"url": "http://example.com/hook"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("allow_http"), "{}", r.text());
    for url in ["ftp://example.com/", "not a url", ""] {
        let r = api
            .json("POST", "/api/v1/webhooks", &json!({"url": url}))
            .await;
        assert_eq!(r.status, 400, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_are_managed_by_tenant_admins_only() {
    let rx = Receiver::start(free_port());
    let s = server(|_| {});
    let admin = Api::admin(&s);
    let (hook, _) = endpoint(&admin, &rx.url("/a"), json!(["image.uploaded"])).await;
    let list = admin.get("/api/v1/webhooks").await.json();
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 1);
    assert!(list["webhooks"][0].get("secret").is_none());
    let r = admin
        .json(
            "PATCH",
            &format!("/api/v1/webhooks/{hook}"),
            &json!({"events": ["image.*", "album.created"], "description": "sync", "enabled": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let w = r.json()["webhook"].clone();
    assert_eq!(w["events"], json!(["image.*", "album.created"]));
    assert_eq!(
        (w["enabled"].clone(), w["description"].clone()),
        (json!(false), json!("sync"))
    );
    let r = admin
        .json(
            "PATCH",
            &format!("/api/v1/webhooks/{hook}"),
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(r.json()["webhook"]["enabled"], true);
    for bad in [
        json!({"events": ["image.exploded"]}),
        json!({"events": []}),
        json!({"color": "red"}),
        json!({"url": "http://169.254.169.254/"}),
    ] {
        let r = admin
            .json("PATCH", &format!("/api/v1/webhooks/{hook}"), &bad)
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    // A write key may not; another tenant's admin sees a 404.
    let (_, writer) = admin.create_key("default", &["read", "write"]).await;
    let w = admin.with_key(&writer);
    assert_eq!(w.get("/api/v1/webhooks").await.status, 403);
    let (_, other) = admin.create_key("other", &["read", "write", "admin"]).await;
    let o = admin.with_key(&other);
    assert_eq!(o.get(&format!("/api/v1/webhooks/{hook}")).await.status, 404);
    assert_eq!(
        o.delete(&format!("/api/v1/webhooks/{hook}")).await.status,
        404
    );
    assert_eq!(
        o.get("/api/v1/webhooks").await.json()["webhooks"],
        json!([])
    );
    // The other tenant's uploads are not announced to this tenant's endpoint.
    o.upload_one("o.png", &distinct_png(50), &[]).await;
    let r = admin
        .get(&format!("/api/v1/webhooks/{hook}/deliveries?status=bogus"))
        .await;
    assert_eq!(r.status, 400);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(deliveries(&admin, &hook).await.is_empty());
    assert_eq!(
        admin
            .delete(&format!("/api/v1/webhooks/{hook}"))
            .await
            .status,
        200
    );
    assert_eq!(
        admin.get(&format!("/api/v1/webhooks/{hook}")).await.status,
        404
    );
    assert!(rx.log().await.is_empty());
}

/// kill -9 between the commit and the send: the receiver is down, so every event waits in the
/// outbox; after a restart each committed change arrives, none twice under different ids, and
/// the refused batch announces nothing.
#[tokio::test(flavor = "multi_thread")]
async fn committed_changes_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let rport = free_port();
    let env = [
        ("REFRACT__WEBHOOKS__ALLOW_HTTP", "true"),
        ("REFRACT__WEBHOOKS__ALLOW_NETWORKS", "127.0.0.1/32"),
        (
            "REFRACT__WEBHOOKS__RETRY_SCHEDULE_SECS",
            "1,1,1,1,1,1,1,1,1,1",
        ),
    ];
    let port = free_port();
    let mut server = spawn_guarded(data.path(), port, &env);
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        key: Some(ADMIN.into()),
    };
    let (hook, secret) = endpoint(&api, &format!("http://127.0.0.1:{rport}/k"), json!("*")).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            api.upload_one("a.png", &distinct_png(60 + i), &[]).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let r = api
        .upload(Form::new().file("file", "c.png", &distinct_png(70)).file(
            "file",
            "d.png",
            b"not an image",
        ))
        .await;
    assert!(r.status >= 400);
    let r = api
        .json(
            "PATCH",
            &format!("/api/v1/images/{}", ids[0]),
            &json!({"description": "x"}),
        )
        .await;
    assert_eq!(r.status, 200);
    // At least one attempt has failed (the receiver is down), then SIGKILL.
    deliveries_until(&api, &hook, |d| d.iter().any(|x| x["attempts"] == 1)).await;
    let before: Vec<Value> = deliveries(&api, &hook).await;
    assert_eq!(before.len(), 4);
    unsafe_kill(server.id());
    drop(server);
    let rx = Receiver::start(rport);
    server = spawn_guarded(data.path(), port, &env);
    let log = rx.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = if rx.log().await.len() > log.len() {
        rx.log().await
    } else {
        log
    };
    // Each change arrives; repeats (at least once) carry the same id.
    let mut by_change = std::collections::BTreeMap::<(String, String), Vec<String>>::new();
    for (i, e) in log.iter().enumerate() {
        assert_eq!(rx.verify(&secret, i).await["ok"], true);
        let key = (
            e["body"]["type"].as_str().unwrap().to_string(),
            e["body"]["data"]["id"].as_str().unwrap().to_string(),
        );
        by_change
            .entry(key)
            .or_default()
            .push(e["headers"]["webhook-id"].as_str().unwrap().to_string());
    }
    let mut expected: Vec<(String, String)> = ids
        .iter()
        .map(|i| ("image.uploaded".to_string(), i.clone()))
        .collect();
    expected.push(("image.updated".into(), ids[0].clone()));
    expected.sort();
    assert_eq!(by_change.keys().cloned().collect::<Vec<_>>(), expected);
    for (change, msg_ids) in &by_change {
        assert!(
            msg_ids.iter().all(|m| m == &msg_ids[0]),
            "{change:?} arrived under different ids: {msg_ids:?}"
        );
    }
    let pos = |t: &str| {
        log.iter()
            .position(|e| e["body"]["type"] == t && e["body"]["data"]["id"] == ids[0].as_str())
            .unwrap()
    };
    assert!(pos("image.uploaded") < pos("image.updated"));
    drop(server);
}

/// SIGKILL (no chance to finish anything).
fn unsafe_kill(pid: u32) {
    let st = std::process::Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}
