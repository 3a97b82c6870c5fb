//! Rate limits through the real server: headers on every API response, 429 with Retry-After,
//! per-key overrides, upload budgets, per-IP limits and trusted proxies, the optional /img limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::*;
use serde_json::json;

fn limits(r: &Resp) -> (u64, u64, u64) {
    let n = |h: &str| {
        r.header(h)
            .unwrap_or_else(|| panic!("{h} missing"))
            .parse::<u64>()
            .unwrap()
    };
    (
        n("x-ratelimit-limit"),
        n("x-ratelimit-remaining"),
        n("x-ratelimit-reset"),
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn headers_count_down_then_429_with_retry_after() {
    let s = start_api(|c| {
        c.ratelimit.per_minute = 3;
        c.ratelimit.per_hour = 50;
    });
    let api = Api::admin(&s);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = api.get("/api/v1/images").await;
        assert_eq!(r.status, 200);
        let (limit, rem, reset) = limits(&r);
        assert_eq!(limit, 3, "the tightest window is the minute");
        assert!(reset >= unix_now() && reset <= unix_now() + 61, "{reset}");
        remaining.push(rem);
    }
    assert_eq!(remaining, vec![2, 1, 0]);
    let r = api.get("/api/v1/images").await;
    assert_eq!((r.status, r.code()), (429, "RATE_LIMIT_EXCEEDED".into()));
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(limits(&r).1, 0);
    // Errors count and carry the headers too.
    let r = api.get("/api/v1/nope").await;
    assert_eq!(r.status, 429);
    // Another client (no key: its IP) has its own budget; the 401 carries headers.
    let r = Api::new(&s, None).get("/api/v1/images").await;
    assert_eq!(r.status, 401);
    assert_eq!(limits(&r).0, 3);
}

#[tokio::test]
async fn env_style_config_and_per_key_overrides() {
    // REFRACT__RATELIMIT__PER_MINUTE=5 is the documented way; the same key in config here.
    let env = vec![(
        "REFRACT__RATELIMIT__PER_MINUTE".to_string(),
        "5".to_string(),
    )];
    let cfg = refract::config::Config::from_sources(None, &env, &Default::default()).unwrap();
    assert_eq!(cfg.ratelimit.per_minute, 5);
    let s = start_api(|c| c.ratelimit.per_minute = 5);
    let admin = Api::admin(&s);
    let r = admin
        .json(
            "POST",
            "/api/v1/keys",
            &json!({"name": "big", "scopes": ["read"], "rate_limit": {"per_minute": 50}}),
        )
        .await;
    let big = r.json()["key"]["key"].as_str().unwrap().to_string();
    let r = admin
        .json(
            "POST",
            "/api/v1/keys",
            &json!({"name": "small", "scopes": ["read"], "rate_limit": 2}),
        )
        .await;
    let small = r.json()["key"]["key"].as_str().unwrap().to_string();
    let r = admin.with_key(&big).get("/api/v1/tags").await;
    assert_eq!(limits(&r).0, 50);
    let sm = admin.with_key(&small);
    assert_eq!(sm.get("/api/v1/tags").await.status, 200);
    assert_eq!(sm.get("/api/v1/tags").await.status, 200);
    assert_eq!(sm.get("/api/v1/tags").await.status, 429);
    // Its neighbour is unaffected.
    assert_eq!(admin.with_key(&big).get("/api/v1/tags").await.status, 200);
}

#[tokio::test]
async fn uploads_have_their_own_budget() {
    let s = start_api(|c| c.ratelimit.uploads_per_minute = 2);
    let api = Api::admin(&s);
    for i in 0..2 {
        let r = api
            .upload(Form::new().file("file", "a.png", &distinct_png(i)))
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(limits(&r).0, 2, "the upload window is the tightest");
    }
    let r = api
        .upload(Form::new().file("file", "a.png", &distinct_png(3)))
        .await;
    assert_eq!((r.status, r.code()), (429, "RATE_LIMIT_EXCEEDED".into()));
    // Reads still work.
    assert_eq!(api.get("/api/v1/images").await.status, 200);
    assert_eq!(api.ids("").await.len(), 2);
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // Untrusted peer: X-Forwarded-For is ignored, every "client" shares the peer's budget.
    let s = start_api(|c| c.ratelimit.per_minute = 2);
    let anon = Api::new(&s, None);
    for ip in ["203.0.113.1", "203.0.113.2"] {
        let r = anon
            .send("GET", "/api/v1/random", &[("x-forwarded-for", ip)], None)
            .await;
        assert_eq!(r.status, 404);
    }
    let r = anon
        .send(
            "GET",
            "/api/v1/random",
            &[("x-forwarded-for", "203.0.113.3")],
            None,
        )
        .await;
    assert_eq!(r.status, 429);
    // Trusted peer (127.0.0.1): each forwarded client has its own budget.
    let s = start_api(|c| {
        c.ratelimit.per_minute = 2;
        c.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    });
    let anon = Api::new(&s, None);
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        for _ in 0..2 {
            let r = anon
                .send(
                    "GET",
                    "/api/v1/random",
                    &[("x-forwarded-for", &format!("{ip}, 127.0.0.1"))],
                    None,
                )
                .await;
            assert_eq!(r.status, 404, "{ip}");
        }
    }
    let r = anon
        .send(
            "GET",
            "/api/v1/random",
            &[("cf-connecting-ip", "203.0.113.1")],
            None,
        )
        .await;
    assert_eq!(r.status, 429, "CF-Connecting-IP names the same client");
}

#[tokio::test]
async fn img_limit_is_off_by_default_and_per_ip_when_set() {
    let s = start_api(|_| {});
    for _ in 0..20 {
        assert_eq!(
            common::get(&s.url("/img/rocket-640x427-adobergb.jpg"), None)
                .await
                .0,
            200
        );
    }
    let s = start_api(|c| c.ratelimit.img_per_minute = 3);
    for _ in 0..3 {
        assert_eq!(
            common::get(&s.url("/img/rocket-640x427-adobergb.jpg?w=50"), None)
                .await
                .0,
            200
        );
    }
    let (st, h, body) = common::get(&s.url("/img/rocket-640x427-adobergb.jpg"), None).await;
    assert_eq!(
        (st, common::error_code(&body)),
        (429, "RATE_LIMIT_EXCEEDED".into())
    );
    assert!(common::header(&h, "retry-after").is_some());
}
