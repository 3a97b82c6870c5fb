//! Keys, scopes and tenants: every control endpoint with no key, a wrong key, another tenant's
//! key and a key lacking the scope; key management; private images on /img; no secrets out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::*;
use common::get;
use serde_json::json;

/// `(method, path, needed scope)` of every keyed endpoint; `{id}` is replaced.
const ENDPOINTS: &[(&str, &str, &str)] = &[
    ("GET", "/api/v1/images", "read"),
    ("POST", "/api/v1/images", "write"),
    ("GET", "/api/v1/images/{id}", "read"),
    ("PATCH", "/api/v1/images/{id}", "write"),
    ("DELETE", "/api/v1/images/{id}", "write"),
    ("GET", "/api/v1/tags", "read"),
    ("GET", "/api/v1/stats", "read"),
    ("POST", "/api/v1/keys", "admin"),
    ("GET", "/api/v1/keys", "admin"),
    ("DELETE", "/api/v1/keys/{id}", "admin"),
    ("POST", "/api/v1/maintenance/cleanup", "admin"),
    ("GET", "/api/v1/config", "admin"),
];

async fn call(api: &Api, method: &str, path: &str) -> Resp {
    let body = match (method, path) {
        ("POST", "/api/v1/images") => {
            let ct = format!("multipart/form-data; boundary={BOUNDARY}");
            return api
                .send(
                    method,
                    path,
                    &[("content-type", &ct)],
                    Some(Form::new().file("file", "d.png", &distinct_png(77)).body()),
                )
                .await;
        }
        ("POST", "/api/v1/keys") => json!({"name": "n", "scopes": ["read"]}),
        ("PATCH", _) => json!({"description": "changed"}),
        _ => return api.send(method, path, &[], None).await,
    };
    api.json(method, path, &body).await
}

#[tokio::test]
async fn every_endpoint_refuses_missing_wrong_and_underscoped_keys() {
    let s = start_api(|_| {});
    let admin = Api::admin(&s);
    let img = admin.upload_one("a.png", &distinct_png(1), &[]).await;
    let (key_id, _) = admin.create_key("default", &["read"]).await;
    let (_, reader) = admin.create_key("default", &["read"]).await;
    let (_, writer) = admin.create_key("default", &["write"]).await;
    let none = Api::new(&s, None);
    let wrong = Api::new(&s, Some("rfk_definitely-not-a-key"));
    for (method, path, scope) in ENDPOINTS {
        let path = path.replace(
            "{id}",
            if path.contains("keys") {
                &key_id
            } else {
                img["id"].as_str().unwrap()
            },
        );
        let r = call(&none, method, &path).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "UNAUTHORIZED".into()),
            "{method} {path} without key"
        );
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        let r = call(&wrong, method, &path).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "UNAUTHORIZED".into()),
            "{method} {path} wrong key"
        );
        let lacking = match *scope {
            "read" => None,
            "write" => Some(&reader),
            _ => Some(&writer),
        };
        if let Some(k) = lacking {
            let r = call(&admin.with_key(k), method, &path).await;
            assert_eq!(
                (r.status, r.code()),
                (403, "FORBIDDEN".into()),
                "{method} {path} lacking {scope}"
            );
        }
    }
    // Bearer works like X-API-Key.
    let r = none
        .send(
            "GET",
            "/api/v1/images",
            &[("authorization", &format!("Bearer {reader}"))],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    // The image is untouched after all that.
    let r = admin
        .get(&format!("/api/v1/images/{}", img["id"].as_str().unwrap()))
        .await;
    assert_eq!(r.json()["description"], "");
}

#[tokio::test]
async fn another_tenants_image_is_not_found_never_forbidden() {
    let s = start_api(|_| {});
    let admin = Api::admin(&s);
    let mine = admin
        .upload_one("mine.png", &distinct_png(1), &[("tags", "secret-tag")])
        .await;
    let id = mine["id"].as_str().unwrap();
    let (_, other) = admin.create_key("acme", &["read", "write"]).await;
    let acme = admin.with_key(&other);
    for (method, path) in [
        ("GET", format!("/api/v1/images/{id}")),
        ("PATCH", format!("/api/v1/images/{id}")),
        ("DELETE", format!("/api/v1/images/{id}")),
    ] {
        let r = call(&acme, method, &path).await;
        assert_eq!(
            (r.status, r.code()),
            (404, "NOT_FOUND".into()),
            "{method} {path}"
        );
    }
    assert!(acme.ids("").await.is_empty());
    assert!(acme.ids("q=mine").await.is_empty());
    let tags = acme.get("/api/v1/tags").await.json();
    assert_eq!(tags["tags"], json!([]));
    assert_eq!(acme.get("/api/v1/stats").await.json()["images"], 0);
    // Still there for its owner.
    assert_eq!(admin.get(&format!("/api/v1/images/{id}")).await.status, 200);
}

#[tokio::test]
async fn keys_are_created_once_listed_without_secrets_validated_and_revoked() {
    let s = start_api(|_| {});
    let admin = Api::admin(&s);
    let r = admin
        .json(
            "POST",
            "/api/v1/keys",
            &json!({"name": "ci uploader", "tenant": "acme", "scopes": ["read", "write"], "rate_limit": {"per_minute": 5}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let k = r.json()["key"].clone();
    let secret = k["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with("rfk_") && secret.len() > 40);
    assert_eq!(k["tenant"], "acme");
    assert_eq!(k["scopes"], json!(["read", "write"]));
    assert_eq!(k["rate_limit"]["per_minute"], 5);
    // Listed without the secret or its hash.
    let list = admin.get("/api/v1/keys").await;
    assert_eq!(list.status, 200);
    assert!(!list.text().contains(&secret));
    assert!(!list
        .text()
        .contains(&blake3::hash(secret.as_bytes()).to_hex().to_string()));
    let listed = list.json()["keys"].as_array().unwrap().clone();
    assert!(listed
        .iter()
        .any(|x| x["id"] == k["id"] && x["prefix"] == k["prefix"]));
    // Validate: header or body.
    let v = admin
        .with_key(&secret)
        .send("POST", "/api/v1/keys/validate", &[], None)
        .await;
    assert_eq!(v.status, 200);
    assert_eq!(v.json()["valid"], true);
    assert_eq!(v.json()["tenant"], "acme");
    assert_eq!(v.json()["scopes"], json!(["read", "write"]));
    let v = Api::new(&s, None)
        .json("POST", "/api/v1/keys/validate", &json!({"key": secret}))
        .await;
    assert_eq!((v.status, v.json()["valid"].as_bool()), (200, Some(true)));
    let v = Api::new(&s, None)
        .json("POST", "/api/v1/keys/validate", &json!({"key": "rfk_nope"}))
        .await;
    assert_eq!(v.status, 401);
    assert_eq!(v.json()["valid"], false);
    let v = Api::new(&s, Some("rfk_nope"))
        .send("POST", "/api/v1/keys/validate", &[], None)
        .await;
    assert_eq!((v.status, v.json()["valid"].as_bool()), (401, Some(false)));
    // Bad bodies name the field.
    for (body, field) in [
        (json!({"name": "", "scopes": ["read"]}), "name"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x", "scopes": ["root"]}), "scopes"),
        (
            json!({"name": "x", "scopes": ["read"], "tenant": "Bad Tenant"}),
            "tenant",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "rate_limit": {"per_week": 1}}),
            "rate_limit",
        ),
    ] {
        let r = admin.json("POST", "/api/v1/keys", &body).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.json()["error"]["details"]["param"], field, "{body}");
    }
    let r = admin
        .send(
            "POST",
            "/api/v1/keys",
            &[("content-type", "application/json")],
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "BAD_REQUEST".into()));
    // An admin of another tenant manages only its own tenant's keys.
    let (_, acme_admin) = admin.create_key("acme", &["admin"]).await;
    let acme = admin.with_key(&acme_admin);
    let r = acme
        .json(
            "POST",
            "/api/v1/keys",
            &json!({"name": "x", "tenant": "default", "scopes": ["admin"]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "FORBIDDEN".into()));
    let theirs = acme.get("/api/v1/keys").await.json()["keys"]
        .as_array()
        .unwrap()
        .clone();
    assert!(theirs.iter().all(|x| x["tenant"] == "acme"), "{theirs:?}");
    let default_key = listed.iter().find(|x| x["tenant"] == "default");
    if let Some(dk) = default_key {
        let r = acme
            .delete(&format!("/api/v1/keys/{}", dk["id"].as_str().unwrap()))
            .await;
        assert_eq!(r.status, 404);
    }
    // Revoked keys stop working at once.
    let r = admin
        .delete(&format!("/api/v1/keys/{}", k["id"].as_str().unwrap()))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        admin.with_key(&secret).get("/api/v1/images").await.status,
        401
    );
    assert_eq!(
        admin
            .delete(&format!("/api/v1/keys/{}", k["id"].as_str().unwrap()))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn private_images_are_hidden_on_img_except_from_their_tenant() {
    let s = start_api(|_| {});
    let admin = Api::admin(&s);
    let img = admin
        .upload_one("p.png", &distinct_png(1), &[("is_private", "true")])
        .await;
    let key = img["key"].as_str().unwrap();
    for q in ["", "?w=100"] {
        let (st, _, body) = get(&s.url(&format!("/img/{key}{q}")), None).await;
        assert_eq!((st, common::error_code(&body)), (404, "NOT_FOUND".into()));
    }
    let (_, own) = admin.create_key("default", &["read"]).await;
    let (_, other) = admin.create_key("acme", &["read"]).await;
    let fetch = |k: String, q: &'static str| {
        let url = s.url(&format!("/img/{key}{q}"));
        async move {
            common::client()
                .get(url)
                .header("x-api-key", k)
                .send()
                .await
                .unwrap()
        }
    };
    let r = fetch(own.clone(), "?w=100").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    assert_eq!(fetch(other, "").await.status(), 404);
    let set_private = |private: bool| {
        let path = format!("/api/v1/images/{}", img["id"].as_str().unwrap());
        let admin = &admin;
        async move {
            let r = admin
                .json("PATCH", &path, &json!({"is_private": private}))
                .await;
            assert_eq!(r.status, 200);
        }
    };
    // Made public: served to anyone, with the normal caching.
    set_private(false).await;
    let (st, h, _) = get(&s.url(&format!("/img/{key}")), None).await;
    assert_eq!(st, 200);
    assert!(common::header(&h, "cache-control")
        .unwrap()
        .starts_with("public"));
    // A variant asked twice (the second answer from the request memo), then made private
    // again: hidden at once from anyone without the key, the owner's still private.
    // One connection: one event loop, whose memo keeps the line.
    let one = common::client();
    let url = s.url(&format!("/img/{key}?w=100"));
    for _ in 0..2 {
        let r = one.get(url.as_str()).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public"));
    }
    assert_eq!(common::metric(&s, "refract_memo_hits_total").await, 1);
    set_private(true).await;
    assert_eq!(one.get(url.as_str()).send().await.unwrap().status(), 404);
    let r = fetch(own, "?w=100").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "private, no-store");
}

#[tokio::test]
async fn config_endpoint_and_logs_hold_no_secret() {
    let s = start_api(|c| {
        c.storage.secret_access_key = Some(refract::util::secret::Secret("s3-secret-value".into()));
        c.server.public_url = Some("https://img.example.com".into());
    });
    let admin = Api::admin(&s);
    let r = admin.get("/api/v1/config").await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        !text.contains(ADMIN) && !text.contains("s3-secret-value") && !text.contains("***"),
        "{text}"
    );
    let v = r.json();
    assert_eq!(v["server"]["public_url"], "https://img.example.com");
    assert_eq!(v["ratelimit"]["per_minute"], 100_000);
    assert!(v["auth"].get("admin_key").is_none());
}
