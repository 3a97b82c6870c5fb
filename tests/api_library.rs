//! The library: search (every filter and combination), paging (pages and cursors under
//! concurrent inserts), patch, delete (and /img at once), tags, stats, expiry, random picks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::*;
use common::get;
use serde_json::{json, Value};
use std::collections::HashSet;

/// name, bytes, form fields, X-User-Id.
type Item = (
    &'static str,
    Vec<u8>,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
);

/// Upload a small library; returns name → id.
async fn library(api: &Api) -> std::collections::HashMap<&'static str, String> {
    let mut ids = std::collections::HashMap::new();
    let items: [Item; 5] = [
        (
            "cat",
            distinct_png(1),
            &[("tags", "cats,cute"), ("description", "A sleepy Cat")],
            Some("alice"),
        ),
        ("dog", portrait_png(), &[("tags", "dogs,cute")], Some("bob")),
        (
            "wild",
            fixture("path-2560x1600-icc.jpg"),
            &[("tags", "nature")],
            Some("alice"),
        ),
        (
            "portrait",
            fixture("orientation/Landscape_1.jpg"),
            &[("tags", "nature,people"), ("is_private", "true")],
            None,
        ),
        (
            "flower",
            fixture("flower-480x360-exif.webp"),
            &[("tags", "nature,cute")],
            None,
        ),
    ];
    for (name, bytes, fields, owner) in items {
        let mut f = Form::new().file("file", &format!("{name}.img"), &bytes);
        for (k, v) in fields {
            f = f.text(k, v);
        }
        let headers: Vec<(&str, &str)> = owner.map(|o| vec![("x-user-id", o)]).unwrap_or_default();
        let r = api.upload_with(f, &headers).await;
        assert_eq!(r.status, 201, "{}", r.text());
        ids.insert(
            name,
            r.json()["images"][0]["id"].as_str().unwrap().to_string(),
        );
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    ids
}

fn set(v: Vec<String>) -> HashSet<String> {
    v.into_iter().collect()
}

#[tokio::test]
async fn every_filter_and_combination() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let ids = library(&api).await;
    let of = |names: &[&str]| -> HashSet<String> { names.iter().map(|n| ids[n].clone()).collect() };
    let cases: &[(&str, &[&str])] = &[
        ("", &["cat", "dog", "wild", "portrait", "flower"]),
        ("tag=cute", &["cat", "dog", "flower"]),
        ("tag=cute&tag=nature", &["flower"]),
        ("tag=cute,nature", &["flower"]),
        ("any_tag=cats&any_tag=dogs", &["cat", "dog"]),
        ("not_tag=cute", &["wild", "portrait"]),
        ("tag=nature&not_tag=people", &["wild", "flower"]),
        (
            "any_tag=cats&any_tag=nature&not_tag=cute",
            &["wild", "portrait"],
        ),
        ("q=sleepy", &["cat"]),
        ("q=CAT", &["cat"]),
        ("q=people", &["portrait"]),
        ("q=flower.img", &["flower"]),
        ("q=%25", &[]),
        (
            "orientation=landscape",
            &["cat", "wild", "portrait", "flower"],
        ),
        ("orientation=portrait", &["dog"]),
        ("orientation=square", &[]),
        (
            "orientation=portrait&tag=cute&format=png&owner=bob",
            &["dog"],
        ),
        ("format=png", &["cat", "dog"]),
        ("format=webp&tag=cute", &["flower"]),
        ("owner=alice", &["cat", "wild"]),
        ("owner=alice&tag=cute", &["cat"]),
        ("private=true", &["portrait"]),
        ("private=false&tag=nature", &["wild", "flower"]),
        ("tag=nope", &[]),
    ];
    for (q, want) in cases {
        assert_eq!(set(api.ids(q).await), of(want), "{q}");
    }
    // Order.
    let desc = api.ids("").await;
    let asc = api.ids("sort=created_asc").await;
    assert_eq!(desc[0], ids["flower"]);
    assert_eq!(asc[0], ids["cat"]);
    assert_eq!(desc.iter().rev().cloned().collect::<Vec<_>>(), asc);
    let random = api.ids("sort=random").await;
    assert_eq!(set(random), set(desc.clone()));
    // Pages.
    let r = api.get("/api/v1/images?page=2&per_page=2").await.json();
    assert_eq!(
        (
            r["page"].as_u64(),
            r["per_page"].as_u64(),
            r["total"].as_u64()
        ),
        (Some(2), Some(2), Some(5))
    );
    let page2: Vec<_> = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(page2, desc[2..4].to_vec());
    assert_eq!(
        api.get("/api/v1/images?tag=cute&per_page=1").await.json()["total"],
        3
    );
    // Bad parameters name themselves.
    for (q, param) in [
        ("per_page=0", "per_page"),
        ("per_page=201", "per_page"),
        ("page=0", "page"),
        ("orientation=diagonal", "orientation"),
        ("format=bmp", "format"),
        ("sort=newest", "sort"),
        ("private=perhaps", "private"),
        ("tagg=x", "tagg"),
        ("cursor=%%%", "cursor"),
        ("cursor=&page=2", "cursor"),
        ("sort=random&limit=2", "cursor"),
        ("limit=1000", "limit"),
    ] {
        let r = api.get(&format!("/api/v1/images?{q}")).await;
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert_eq!(r.json()["error"]["details"]["param"], param, "{q}");
    }
}

#[tokio::test]
async fn cursors_never_skip_or_repeat_while_others_insert() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    for i in 0..15 {
        api.upload(Form::new().file("file", "x.png", &distinct_png(i)))
            .await;
    }
    let before: HashSet<String> = set(api.ids("per_page=100").await);
    let inserter = {
        let api = api.clone();
        tokio::spawn(async move {
            for i in 100..110 {
                let r = api
                    .upload(Form::new().file("file", "n.png", &distinct_png(i)))
                    .await;
                assert_eq!(r.status, 201);
            }
        })
    };
    let mut seen: Vec<String> = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = api
            .get(&format!("/api/v1/images?limit=4&cursor={cursor}"))
            .await
            .json();
        for i in r["images"].as_array().unwrap() {
            seen.push(i["id"].as_str().unwrap().to_string());
        }
        match r["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    inserter.await.unwrap();
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a cursor repeated an image");
    assert!(
        before.is_subset(&unique),
        "a cursor skipped an image that existed when paging began"
    );
    // Ascending cursors pick up the new ones at the end.
    let mut asc = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = api
            .get(&format!(
                "/api/v1/images?sort=created_asc&limit=7&cursor={cursor}"
            ))
            .await
            .json();
        asc.extend(
            r["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_string()),
        );
        match r["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(asc.len(), 25);
    assert_eq!(set(asc), set(api.ids("per_page=100").await));
}

#[tokio::test]
async fn patch_updates_and_validates() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let img = api
        .upload_one("a.png", &distinct_png(1), &[("tags", "one,two")])
        .await;
    let path = format!("/api/v1/images/{}", img["id"].as_str().unwrap());
    let r = api
        .json(
            "PATCH",
            &path,
            &json!({"add_tags": ["Three"], "remove_tags": ["one"], "description": "new"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json().clone();
    assert_eq!(v["tags"], json!(["three", "two"]));
    assert_eq!(v["description"], "new");
    let v = api
        .json(
            "PATCH",
            &path,
            &json!({"tags": ["solo"], "is_private": true}),
        )
        .await
        .json()
        .clone();
    assert_eq!(
        (v["tags"].clone(), v["is_private"].clone()),
        (json!(["solo"]), json!(true))
    );
    let v = api
        .json("PATCH", &path, &json!({"expiry_minutes": 30}))
        .await
        .json()
        .clone();
    assert!(v["expires_at"].is_string());
    let v = api
        .json(
            "PATCH",
            &path,
            &json!({"expires_at": "2999-01-01T00:00:00Z"}),
        )
        .await
        .json()
        .clone();
    assert_eq!(v["expires_at"], "2999-01-01T00:00:00.000Z");
    let v = api
        .json("PATCH", &path, &json!({"expires_at": null}))
        .await
        .json()
        .clone();
    assert!(v["expires_at"].is_null());
    for (body, field) in [
        (json!({"tags": ["a"], "add_tags": ["b"]}), "tags"),
        (json!({"expires_at": "next week"}), "expires_at"),
        (
            json!({"expiry_minutes": 5, "expires_at": null}),
            "expires_at",
        ),
        (json!({"add_tags": ["a,b"]}), "add_tags"),
    ] {
        let r = api.json("PATCH", &path, &body).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.json()["error"]["details"]["param"], field, "{body}");
    }
    let r = api.json("PATCH", &path, &json!({"colour": "red"})).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("colour"));
    assert_eq!(
        api.json("PATCH", "/api/v1/images/nope", &json!({}))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn delete_removes_row_object_and_every_cached_variant_at_once() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let img = api
        .upload_one("a.jpg", &fixture("rocket-640x427-adobergb.jpg"), &[])
        .await;
    let key = img["key"].as_str().unwrap().to_string();
    let variant = s.url(&format!("/img/{key}?w=200&fm=webp"));
    get(&variant, None).await;
    let (_, h, _) = get(&variant, None).await;
    assert_eq!(common::header(&h, "x-cache"), Some("HIT"));
    let r = api
        .delete(&format!("/api/v1/images/{}", img["id"].as_str().unwrap()))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["message"], "Image deleted successfully");
    for url in [variant.clone(), s.url(&format!("/img/{key}"))] {
        let (st, _, _) = get(&url, None).await;
        assert_eq!(st, 404, "{url} still served");
    }
    assert!(!s.root.join(&key).exists());
    assert_eq!(
        api.get(&format!("/api/v1/images/{}", img["id"].as_str().unwrap()))
            .await
            .status,
        404
    );
    assert_eq!(
        api.delete(&format!("/api/v1/images/{}", img["id"].as_str().unwrap()))
            .await
            .status,
        404
    );
    // Uploading the same bytes again works (a new image).
    let again = api
        .upload_one("a.jpg", &fixture("rocket-640x427-adobergb.jpg"), &[])
        .await;
    assert_eq!(again["duplicate"], false);
}

#[tokio::test]
async fn tags_and_stats() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let ids = library(&api).await;
    let t = api.get("/api/v1/tags").await.json();
    assert_eq!(
        names_and_counts(&t),
        json!([
            {"name": "cats", "count": 1}, {"name": "cute", "count": 3}, {"name": "dogs", "count": 1},
            {"name": "nature", "count": 3}, {"name": "people", "count": 1}
        ])
    );
    let d = api.get("/api/v1/tags?detail=true").await.json();
    let cute: HashSet<String> = d["cute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        cute,
        [&ids["cat"], &ids["dog"], &ids["flower"]]
            .into_iter()
            .cloned()
            .collect()
    );
    let st = api.get("/api/v1/stats").await.json();
    assert_eq!(st["images"], 5);
    assert_eq!(st["by_format"], json!({"jpeg": 2, "png": 2, "webp": 1}));
    assert_eq!(st["tags"], 5);
    assert!(st["bytes"].as_u64().unwrap() > 900_000);
}

#[tokio::test]
async fn expired_images_vanish_at_once_and_the_sweeper_deletes_them() {
    let s = start_api(|c| c.expiry.sweep_interval = 1);
    let api = Api::admin(&s);
    let img = api
        .upload_one(
            "e.png",
            &distinct_png(1),
            &[("tags", "temp"), ("expiry_minutes", "60")],
        )
        .await;
    let keep = api
        .upload_one("k.png", &distinct_png(2), &[("tags", "temp")])
        .await;
    let key = img["key"].as_str().unwrap().to_string();
    let id = img["id"].as_str().unwrap().to_string();
    assert_eq!(get(&s.url(&format!("/img/{key}")), None).await.0, 200);
    // Expire it now.
    let past = "2020-01-01T00:00:00Z";
    let r = api
        .json(
            "PATCH",
            &format!("/api/v1/images/{id}"),
            &json!({"expires_at": past}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["expires_at"].as_str()),
        (200, Some("2020-01-01T00:00:00.000Z"))
    );
    assert_eq!(get(&s.url(&format!("/img/{key}")), None).await.0, 404);
    assert_eq!(api.get(&format!("/api/v1/images/{id}")).await.status, 404);
    assert_eq!(
        api.ids("tag=temp").await,
        vec![keep["id"].as_str().unwrap().to_string()]
    );
    assert_eq!(
        names_and_counts(&api.get("/api/v1/tags").await.json()),
        json!([{"name": "temp", "count": 1}])
    );
    // The sweeper (every second here) removes the object.
    let mut gone = false;
    for _ in 0..50 {
        if !s.root.join(&key).exists() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "sweeper did not delete the expired object");
}

#[tokio::test]
async fn cleanup_endpoint_deletes_expired_images_now() {
    let s = start_api(|c| c.expiry.sweep_interval = 3600);
    let api = Api::admin(&s);
    let a = api.upload_one("a.png", &distinct_png(1), &[]).await;
    let b = api.upload_one("b.png", &distinct_png(2), &[]).await;
    for img in [&a, &b] {
        api.json(
            "PATCH",
            &format!("/api/v1/images/{}", img["id"].as_str().unwrap()),
            &json!({"expires_at": 1_600_000_000}),
        )
        .await;
    }
    let r = api
        .send("POST", "/api/v1/maintenance/cleanup", &[], None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"success": true, "message": "Expired image cleanup triggered.", "deleted": 2})
    );
    assert!(!s.root.join(a["key"].as_str().unwrap()).exists());
    let r = api
        .send("POST", "/api/v1/maintenance/cleanup", &[], None)
        .await;
    assert_eq!(r.json()["deleted"], 0);
}

#[tokio::test]
async fn random_picks_a_public_image_in_an_accepted_format() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let ids = library(&api).await;
    let anon = Api::new(&s, None);
    let keys: Vec<Value> = {
        let all = api.get("/api/v1/images?per_page=100").await.json();
        all["images"].as_array().unwrap().clone()
    };
    let key_of = |name: &str| {
        keys.iter().find(|i| i["id"] == ids[name].as_str()).unwrap()["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for _ in 0..10 {
        let r = anon
            .send(
                "GET",
                "/api/v1/random?tag=cute&w=300",
                &[("accept", "image/avif,image/webp,*/*")],
                None,
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let url = r.text();
        assert!(
            url.starts_with(&s.base) && url.contains("w=300") && url.ends_with("fm=avif"),
            "{url}"
        );
        assert!(
            ["cat", "dog", "flower"]
                .iter()
                .any(|n| url.contains(&key_of(n))),
            "{url}"
        );
    }
    let r = anon
        .send(
            "GET",
            "/api/v1/random?tag=nature",
            &[("accept", "image/webp,*/*")],
            None,
        )
        .await;
    assert!(r.text().ends_with("?fm=webp"), "{}", r.text());
    // Private images are never picked.
    for _ in 0..10 {
        let r = anon
            .send("GET", "/api/v1/random?tag=people", &[], None)
            .await;
        assert_eq!((r.status, r.code()), (404, "NOT_FOUND".into()));
    }
    let r = anon
        .send(
            "GET",
            "/api/v1/random?tag=dogs",
            &[("accept", "image/jpeg")],
            None,
        )
        .await;
    assert_eq!(r.text(), format!("{}/img/{}", s.base, key_of("dog")));
    // /random redirects, never cached, and the URL works.
    let c = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c
        .get(s.url("/random?tag=dogs&w=120"))
        .header("accept", "image/webp")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let (st, _, body) = get(&loc, None).await;
    assert_eq!(
        (st, common::magic(&body), common::dims(&body).0),
        (200, "webp", 120)
    );
    // Bad transform params are refused here, not in the image request.
    let r = anon.get("/api/v1/random?w=abc").await;
    assert_eq!(
        (r.status, r.json()["error"]["details"]["param"].as_str()),
        (400, Some("w"))
    );
    let r = anon.get("/api/v1/random?orientation=square").await;
    assert_eq!(r.status, 404);
    let r = anon.get("/api/v1/random?orientation=portrait").await;
    assert!(r.text().contains(&key_of("dog")));
}

#[tokio::test]
async fn random_uses_the_configured_tenant_only() {
    let s = start_api(|c| c.random.tenant = "gallery".into());
    let api = Api::admin(&s);
    api.upload_one("d.png", &distinct_png(1), &[]).await;
    assert_eq!(Api::new(&s, None).get("/api/v1/random").await.status, 404);
    let (_, g) = api.create_key("gallery", &["write"]).await;
    let img = api
        .with_key(&g)
        .upload_one("g.png", &distinct_png(2), &[])
        .await;
    let r = Api::new(&s, None).get("/api/v1/random").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains(img["key"].as_str().unwrap()));
}

/// The `{name, count}` of each TAG of a listing (tags also carry an id, a colour and a type).
fn names_and_counts(v: &serde_json::Value) -> serde_json::Value {
    v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!({"name": t["name"], "count": t["count"]}))
        .collect()
}
