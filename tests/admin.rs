//! The admin API across tenants: `?tenant=` on images, albums, avatars and tags, by-id access to
//! any tenant's image or album, uploads on a tenant's behalf, stats (global and per tenant),
//! per-tenant rate limits, and the audit trail of it; members stay inside their tenant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{distinct_png, start_api, Api, Form};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_works_across_tenants_and_members_stay_home() {
    let s = start_api(|_| {});
    let admin = Api::admin(&s);
    let (_, ka) = admin.create_key("acme", &["read", "write"]).await;
    let (_, kb) = admin.create_key("bolt", &["read", "write"]).await;
    let (a, b) = (admin.with_key(&ka), admin.with_key(&kb));
    let ia = a
        .upload_one("a.png", &distinct_png(1), &[("tags", "cat,red")])
        .await;
    let ib = b
        .upload_one("b.png", &distinct_png(2), &[("tags", "cat")])
        .await;
    let (ia, ib) = (ia["id"].as_str().unwrap(), ib["id"].as_str().unwrap());

    // Listing one tenant, then all of them (each image says whose it is).
    assert_eq!(admin.ids("tenant=acme").await, vec![ia.to_string()]);
    let all = admin.get("/api/v1/images?tenant=*&per_page=50").await;
    assert_eq!(all.status, 200, "{}", all.text());
    let mut owners: Vec<(String, String)> = all.json()["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["tenant"].as_str().unwrap().into(),
                i["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    owners.sort();
    assert_eq!(
        owners,
        vec![
            ("acme".into(), ia.to_string()),
            ("bolt".into(), ib.to_string())
        ]
    );
    // Without `?tenant=`, an admin's own tenant (default) as before.
    assert!(admin.ids("").await.is_empty());

    // By id, whatever the tenant: get, patch, delete.
    let r = admin.get(&format!("/api/v1/images/{ib}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tenant"], "bolt");
    let r = admin
        .json(
            "PATCH",
            &format!("/api/v1/images/{ib}"),
            &json!({"description": "by admin"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        b.get(&format!("/api/v1/images/{ib}")).await.json()["description"],
        "by admin"
    );

    // Members: another tenant's image or listing is a 404, their own works with or without
    // naming it.
    assert_eq!(a.get(&format!("/api/v1/images/{ib}")).await.status, 404);
    let r = a.get("/api/v1/images?tenant=bolt").await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.code(), "NOT_FOUND");
    assert_eq!(a.get("/api/v1/images?tenant=*").await.status, 404);
    assert_eq!(a.ids("tenant=acme").await, vec![ia.to_string()]);
    assert_eq!(a.get("/api/v1/tags?tenant=bolt").await.status, 404);
    // A bad tenant name is a 400 naming the parameter; `*` is only for listings.
    let r = admin.get("/api/v1/images?tenant=Bad!").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["details"]["param"], "tenant");
    assert_eq!(
        admin
            .get(&format!("/api/v1/images/{ia}?tenant=*"))
            .await
            .status,
        400
    );

    // Uploading on a tenant's behalf.
    let r = admin
        .send(
            "POST",
            "/api/v1/images?tenant=bolt",
            &[(
                "content-type",
                &format!("multipart/form-data; boundary={}", common::api::BOUNDARY),
            )],
            Some(
                Form::new()
                    .file("file", "c.png", &distinct_png(3))
                    .text("tags", "dog")
                    .body(),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let ic = r.json()["images"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["images"][0]["tenant"], "bolt");
    assert!(b.ids("").await.contains(&ic));

    // Albums: create for a tenant, list across tenants, open by id.
    let r = admin
        .json(
            "POST",
            "/api/v1/albums?tenant=acme",
            &json!({"name": "Acme's"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let album = r.json()["album"]["id"].as_str().unwrap().to_string();
    assert_eq!(r.json()["album"]["tenant"], "acme");
    assert_eq!(a.get(&format!("/api/v1/albums/{album}")).await.status, 200);
    let r = admin.get("/api/v1/albums?tenant=*").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["albums"].as_array().unwrap().len(), 1);
    let r = admin
        .json(
            "POST",
            &format!("/api/v1/albums/{album}/images"),
            &json!({"image_ids": [ia]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(b.get(&format!("/api/v1/albums/{album}")).await.status, 404);

    // Tags across tenants, with counts.
    let r = admin.get("/api/v1/tags?tenant=*").await;
    let tags = r.json()["tags"].clone();
    assert!(
        tags.as_array()
            .unwrap()
            .contains(&json!({"name": "cat", "count": 2})),
        "{tags}"
    );
    // Searched and limited.
    let r = admin.get("/api/v1/tags?tenant=*&q=A&limit=1").await;
    assert_eq!(
        r.json()["tags"],
        json!([{"name": "cat", "count": 2}]),
        "{}",
        r.text()
    );
    let r = admin.get("/api/v1/tags?tenant=acme&q=e&detail=true").await;
    assert_eq!(r.json(), json!({"red": [ia]}), "{}", r.text());
    assert_eq!(admin.get("/api/v1/tags?limit=0").await.status, 400);

    // Avatars for a tenant's user.
    let r = admin
        .send(
            "PUT",
            "/api/v1/avatars/u1?tenant=acme",
            &[(
                "content-type",
                &format!("multipart/form-data; boundary={}", common::api::BOUNDARY),
            )],
            Some(Form::new().file("file", "me.png", &distinct_png(4)).body()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // acme's u1 has the uploaded avatar; bolt's u1 is still the generated identicon.
    let (in_a, in_b) = (
        a.get("/api/v1/avatars/u1").await,
        b.get("/api/v1/avatars/u1").await,
    );
    assert_eq!((in_a.status, in_b.status), (200, 200));
    assert!(in_a.body != in_b.body, "acme's avatar is bolt's identicon");

    // Delete any tenant's image by id.
    assert_eq!(
        admin.delete(&format!("/api/v1/images/{ib}")).await.status,
        200
    );
    assert_eq!(b.get(&format!("/api/v1/images/{ib}")).await.status, 404);

    // Every admin write is in the audit log with the tenant it acted on.
    let log = admin.get("/api/v1/audit?limit=100").await.json();
    let entries = log["entries"].as_array().unwrap();
    for (tenant, op) in [
        ("bolt", "PatchImage"),
        ("bolt", "Upload"),
        ("acme", "CreateAlbum"),
        ("acme", "AddAlbumImages"),
        ("acme", "PutAvatar"),
        ("bolt", "DeleteImage"),
    ] {
        assert!(
            entries.iter().any(|e| e["tenant"] == tenant
                && e["action"].as_str().unwrap_or("").eq_ignore_ascii_case(op)),
            "no audit entry {tenant} {op}: {log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_per_tenant_and_global_with_the_servers_counters() {
    let s = start_api(|_| {});
    let admin = Api::admin(&s);
    let (_, ka) = admin.create_key("acme", &["read", "write"]).await;
    let a = admin.with_key(&ka);
    for (i, tags) in [(1, "cat,red"), (2, "cat"), (3, "dog")] {
        a.upload_one(&format!("{i}.png"), &distinct_png(i), &[("tags", tags)])
            .await;
    }
    admin.upload_one("d.png", &distinct_png(9), &[]).await;
    // One transform, then the same again: a miss and a hit.
    let key = a.get("/api/v1/images").await.json()["images"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..2 {
        let r = common::client()
            .get(s.url(&format!("/img/{key}?w=16")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    let st = a.get("/api/v1/stats").await.json();
    assert_eq!(st["tenant"], "acme");
    assert_eq!(st["images"], 3);
    assert_eq!(st["by_format"]["png"], 3);
    assert!(st["bytes"].as_i64().unwrap() > 0);
    let days = st["uploads_per_day"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["count"], 3, "today is last: {days:?}");
    assert_eq!(
        days[29]["day"],
        refract::util::clock::ymd(refract::util::clock::now_ms())
    );
    assert!(days[..29].iter().all(|d| d["count"] == 0));
    assert_eq!(st["top_tags"][0], json!({"name": "cat", "count": 2}));
    assert_eq!(st["quota"]["used_images"], 3, "{st}");
    let server = &st["server"];
    assert!(server["requests"].as_u64().unwrap() >= 8, "{server}");
    assert!(server["cache_hits"].as_u64().unwrap() >= 1, "{server}");
    let ratio = server["cache_hit_ratio"].as_f64().unwrap();
    assert!(ratio > 0.0 && ratio <= 1.0, "{server}");

    // Global: every tenant's images; a member cannot ask for it.
    let g = admin.get("/api/v1/stats?tenant=*").await.json();
    assert_eq!(g["tenant"], "*");
    assert_eq!(g["images"], 4);
    assert!(g.get("quota").is_none());
    let t = admin.get("/api/v1/stats?tenant=acme").await.json();
    assert_eq!(t["images"], 3);
    assert_eq!(a.get("/api/v1/stats?tenant=*").await.status, 404);
    assert_eq!(a.get("/api/v1/stats?nope=1").await.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_rate_limit_applies_to_its_keys_under_their_own() {
    let s = start_api(|_| {});
    let admin = Api::admin(&s);
    let (_, ka) = admin.create_key("acme", &["read"]).await;
    let a = admin.with_key(&ka);
    let r = admin
        .json(
            "PATCH",
            "/api/v1/tenants/acme",
            &json!({"rate_limit": {"per_minute": 3}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tenant"]["rate_limit"]["per_minute"], 3);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = a.get("/api/v1/images").await;
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        statuses.push(r.status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    // A key with its own limit keeps it; other tenants and the admin are untouched.
    let r = admin
        .json(
            "POST",
            "/api/v1/keys",
            &json!({"name": "k", "tenant": "acme", "scopes": ["read"], "rate_limit": 50}),
        )
        .await;
    let own = admin.with_key(r.json()["key"]["key"].as_str().unwrap());
    assert_eq!(
        own.get("/api/v1/images").await.header("x-ratelimit-limit"),
        Some("50")
    );
    assert_ne!(
        admin
            .get("/api/v1/images")
            .await
            .header("x-ratelimit-limit"),
        Some("3")
    );
    // Bad limits are 400s naming the field; null clears (after a restart too).
    let r = admin
        .json(
            "PATCH",
            "/api/v1/tenants/acme",
            &json!({"rate_limit": {"per_minute": -1}}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["details"]["param"], "rate_limit");
    let s = s.restart(|_| {});
    let a = Api::new(&s, Some(&ka));
    assert_eq!(
        a.get("/api/v1/images").await.header("x-ratelimit-limit"),
        Some("3")
    );
    let admin = Api::admin(&s);
    let r = admin
        .json(
            "PATCH",
            "/api/v1/tenants/acme",
            &json!({"rate_limit": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["tenant"]["rate_limit"].is_null());
    assert_ne!(
        a.get("/api/v1/images").await.header("x-ratelimit-limit"),
        Some("3")
    );
}
