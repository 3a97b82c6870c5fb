//! Collections and sharing through the API on a real server with its SQLite database: albums
//! (CRUD, ordered membership, all or nothing), `album_id` on upload and as a list filter,
//! tenant isolation (404), album tokens and share links opening private images on `/img` and
//! `/s/{token}` (private caching no longer than they live, revoked at once, expired = gone,
//! view budgets never overspent), signed URLs as capabilities, and deleting an album never
//! deleting its images.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::*;
use common::*;
use serde_json::json;

async fn new_album(api: &Api, name: &str) -> String {
    let r = api
        .json(
            "POST",
            "/api/v1/albums",
            &json!({"name": name, "isPublic": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let a = r.json()["album"].clone();
    assert_eq!(a["name"], name);
    assert_eq!(a["is_public"], true);
    assert_eq!(a["image_count"], 0);
    a["id"].as_str().unwrap().to_string()
}

fn ids_of(v: &serde_json::Value) -> Vec<String> {
    v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn albums_crud_membership_and_filters() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let album = new_album(&api, "Holidays").await;
    let a = api.upload_one("a.png", &distinct_png(1), &[]).await;
    let b = api.upload_one("b.png", &distinct_png(2), &[]).await;
    let c = api
        .upload_one("c.png", &distinct_png(3), &[("album_id", &album)])
        .await;
    let (a, b, c) = (
        a["id"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
        c["id"].as_str().unwrap().to_string(),
    );
    // Uploaded into the album; then two more appended in the order given.
    let r = api
        .json(
            "POST",
            &format!("/api/v1/albums/{album}/images"),
            &json!({"imageIds": [b, a]}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["album"]["image_count"].as_i64()),
        (200, Some(3))
    );
    let r = api.get(&format!("/api/v1/albums/{album}/images")).await;
    assert_eq!(ids_of(&r.json()), [c.clone(), b.clone(), a.clone()]);
    assert_eq!(r.json()["total"], 3);
    let r = api
        .get(&format!("/api/v1/albums/{album}/images?page=2&per_page=2"))
        .await;
    assert_eq!(ids_of(&r.json()), [a.as_str()]);
    // Reordered: the ids given first, the others after them as they were; an id not in the
    // album changes nothing and is named.
    let order = |ids: serde_json::Value| {
        let api = &api;
        let album = &album;
        async move {
            api.json(
                "PUT",
                &format!("/api/v1/albums/{album}/images"),
                &json!({ "image_ids": ids }),
            )
            .await
        }
    };
    let r = order(json!([a])).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api.get(&format!("/api/v1/albums/{album}/images")).await;
    assert_eq!(ids_of(&r.json()), [a.clone(), c.clone(), b.clone()]);
    let r = order(json!([b, "nope"])).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("nope"), "{}", r.text());
    assert_eq!(order(json!([])).await.status, 400);
    let r = api.get(&format!("/api/v1/albums/{album}/images")).await;
    assert_eq!(ids_of(&r.json()), [a.clone(), c.clone(), b.clone()]);
    let r = order(json!([c, b, a])).await;
    assert_eq!(r.status, 200);
    let r = api.get(&format!("/api/v1/albums/{album}/images")).await;
    assert_eq!(ids_of(&r.json()), [c.clone(), b.clone(), a.clone()]);
    // The albums holding an image, by name.
    let another = new_album(&api, "Another").await;
    let r = api
        .json(
            "POST",
            &format!("/api/v1/albums/{another}/images"),
            &json!({"image_ids": [a]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let names = |v: serde_json::Value| {
        v["albums"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let r = api.get(&format!("/api/v1/images/{a}/albums")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(names(r.json()), ["Another", "Holidays"]);
    assert_eq!(
        names(api.get(&format!("/api/v1/images/{b}/albums")).await.json()),
        ["Holidays"]
    );
    assert_eq!(api.get("/api/v1/images/nope/albums").await.status, 404);
    let r = api.delete(&format!("/api/v1/albums/{another}")).await;
    assert_eq!(r.status, 200);
    // Adding again changes nothing; an unknown id changes nothing and is named.
    let r = api
        .json(
            "POST",
            &format!("/api/v1/albums/{album}/images"),
            &json!({"image_ids": [a, "nope"]}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (404, "NOT_FOUND"));
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nope"));
    assert_eq!(
        api.get(&format!("/api/v1/albums/{album}")).await.json()["album"]["image_count"],
        3
    );
    // The list filter.
    let mut filtered = api.ids(&format!("album_id={album}")).await;
    filtered.sort();
    let mut all = vec![a.clone(), b.clone(), c.clone()];
    all.sort();
    assert_eq!(filtered, all);
    assert_eq!(api.ids(&format!("albumId={album}&q=zzz")).await.len(), 0);
    // Remove (all or nothing), patch, list, delete: images stay.
    let r = api
        .send(
            "DELETE",
            &format!("/api/v1/albums/{album}/images"),
            &[("content-type", "application/json")],
            Some(serde_json::to_vec(&json!({"image_ids": [b]})).unwrap()),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["album"]["image_count"].as_i64()),
        (200, Some(2))
    );
    let r = api
        .json(
            "PATCH",
            &format!("/api/v1/albums/{album}"),
            &json!({"name": "Summer", "cover_image_id": c, "description": "sea"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (
            r.json()["album"]["name"].as_str(),
            r.json()["album"]["cover_image_id"].as_str()
        ),
        (Some("Summer"), Some(c.as_str()))
    );
    let r = api
        .json(
            "PATCH",
            &format!("/api/v1/albums/{album}"),
            &json!({"cover_image_id": "nope"}),
        )
        .await;
    assert_eq!(r.status, 400);
    let other = new_album(&api, "Other").await;
    let r = api.get("/api/v1/albums?per_page=1").await;
    assert_eq!(
        (
            r.json()["total"].as_i64(),
            r.json()["albums"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
    // Cursor paging walks every album once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = api
            .get(&format!("/api/v1/albums?limit=1&cursor={cursor}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        for a in v["albums"].as_array().unwrap() {
            seen.push(a["id"].as_str().unwrap().to_string());
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    seen.sort();
    let mut want = vec![album.clone(), other.clone()];
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(api.get("/api/v1/albums?limit=1&page=1").await.status, 400);
    assert_eq!(
        api.delete(&format!("/api/v1/albums/{album}")).await.status,
        200
    );
    assert_eq!(
        api.get(&format!("/api/v1/albums/{album}")).await.status,
        404
    );
    assert_eq!(
        api.ids("").await.len(),
        3,
        "deleting an album never deletes its images"
    );
    // Deleting an image takes it out of its albums.
    api.json(
        "POST",
        &format!("/api/v1/albums/{other}/images"),
        &json!({"image_ids": [a]}),
    )
    .await;
    assert_eq!(api.delete(&format!("/api/v1/images/{a}")).await.status, 200);
    assert_eq!(
        api.get(&format!("/api/v1/albums/{other}")).await.json()["album"]["image_count"],
        0
    );
    // Bad input: 400 naming it; unknown album on upload: 400, nothing stored.
    let r = api
        .json("POST", "/api/v1/albums", &json!({"name": ""}))
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["details"]["param"].as_str()),
        (400, Some("name"))
    );
    let r = api
        .json("POST", "/api/v1/albums", &json!({"name": "x", "colour": 1}))
        .await;
    assert_eq!(r.status, 400);
    let before = api.ids("").await.len();
    let r = api
        .upload(
            Form::new()
                .file("file", "d.png", &distinct_png(4))
                .text("album_id", "nope"),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["details"]["param"].as_str()),
        (400, Some("album_id"))
    );
    assert_eq!(api.ids("").await.len(), before);
    let r = api
        .json(
            "POST",
            "/api/v1/albums",
            &json!({"name": "x", "external_id": "e1"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = api
        .json(
            "POST",
            "/api/v1/albums",
            &json!({"name": "y", "externalId": "e1"}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "CONFLICT"));
}

#[tokio::test(flavor = "multi_thread")]
async fn albums_are_tenant_isolated() {
    let s = start_api(|_| {});
    let admin = Api::admin(&s);
    let (_, k1) = admin.create_key("one", &["read", "write"]).await;
    let (_, k2) = admin.create_key("two", &["read", "write"]).await;
    let (one, two) = (admin.with_key(&k1), admin.with_key(&k2));
    let album = new_album(&one, "mine").await;
    let img = one.upload_one("a.png", &distinct_png(7), &[]).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let theirs = two.upload_one("b.png", &distinct_png(8), &[]).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (m, path) in [
        ("GET", format!("/api/v1/albums/{album}")),
        ("DELETE", format!("/api/v1/albums/{album}")),
        ("GET", format!("/api/v1/albums/{album}/images")),
        ("POST", format!("/api/v1/albums/{album}/tokens")),
    ] {
        assert_eq!(
            two.send(m, &path, &[], None).await.status,
            404,
            "{m} {path}"
        );
    }
    let r = two
        .json(
            "POST",
            &format!("/api/v1/albums/{album}/images"),
            &json!({"image_ids": [img]}),
        )
        .await;
    assert_eq!(r.status, 404);
    // Another tenant's image cannot be put in my album.
    let r = one
        .json(
            "POST",
            &format!("/api/v1/albums/{album}/images"),
            &json!({"image_ids": [theirs]}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(two.get("/api/v1/albums").await.json()["total"], 0);
    // A read-only key cannot write.
    let (_, ro) = admin.create_key("one", &["read"]).await;
    let r = admin
        .with_key(&ro)
        .json("POST", "/api/v1/albums", &json!({"name": "n"}))
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn album_tokens_open_private_images_on_img() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let album = new_album(&api, "private").await;
    let img = api
        .upload_one(
            "p.png",
            &distinct_png(11),
            &[("is_private", "true"), ("album_id", &album)],
        )
        .await;
    let outside = api
        .upload_one("q.png", &distinct_png(12), &[("is_private", "true")])
        .await;
    let url = |i: &serde_json::Value, extra: &str| {
        format!("/img/{}?w=20&fm=png{extra}", i["key"].as_str().unwrap())
    };
    // Without a token an <img> gets a 404.
    let (st, _, _) = get(&s.url(&url(&img, "")), None).await;
    assert_eq!(st, 404);
    let r = api
        .json(
            "POST",
            &format!("/api/v1/albums/{album}/tokens"),
            &json!({"expires_in": 600}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let t = r.json()["token"].clone();
    let (token, token_id) = (
        t["token"].as_str().unwrap().to_string(),
        t["id"].as_str().unwrap().to_string(),
    );
    assert!(token.starts_with("rft_") && token.len() > 40);
    // The token opens the album's private image, cached privately for no longer than it lives.
    let (st, h, body) = get(&s.url(&url(&img, &format!("&token={token}"))), None).await;
    assert_eq!((st, magic(&body)), (200, "png"));
    let cc = header(&h, "cache-control").unwrap();
    let age: i64 = cc
        .strip_prefix("private, max-age=")
        .unwrap()
        .parse()
        .unwrap();
    assert!((590..=600).contains(&age), "{cc}");
    assert_eq!(header(&h, "cdn-cache-control"), None);
    // Same variant as the owner's (the token is not in the cache key).
    let (_, owner_h, _) = api_img(&s, &url(&img, "")).await;
    assert_eq!(header(&h, "etag"), header(&owner_h, "etag"));
    // Not an image outside the album; not with a wrong token.
    let (st, _, _) = get(&s.url(&url(&outside, &format!("&token={token}"))), None).await;
    assert_eq!(st, 404);
    let (st, _, _) = get(&s.url(&url(&img, "&token=rft_wrong")), None).await;
    assert_eq!(st, 404);
    // The /cdn-cgi/image/ form takes the token too.
    let cdn = format!(
        "/cdn-cgi/image/w=12/{}?token={token}",
        img["key"].as_str().unwrap()
    );
    let (st, _, body) = get(&s.url(&cdn), None).await;
    assert_eq!((st, dims(&body).0), (200, 12));
    // On the API the token reads the album and its images (private ones included), no key.
    let anon = Api::new(&s, None);
    let r = anon
        .get(&format!("/api/v1/albums/{album}?token={token}"))
        .await;
    assert_eq!(
        (r.status, r.json()["album"]["name"].as_str()),
        (200, Some("private"))
    );
    let r = anon
        .get(&format!("/api/v1/albums/{album}/images?token={token}"))
        .await;
    assert_eq!(ids_of(&r.json()), [img["id"].as_str().unwrap()]);
    assert_eq!(
        anon.get(&format!("/api/v1/albums/{album}")).await.status,
        401
    );
    let other = new_album(&api, "other").await;
    assert_eq!(
        anon.get(&format!("/api/v1/albums/{other}?token={token}"))
            .await
            .status,
        404
    );
    // Listed without the secret; revoked at once.
    let r = api.get(&format!("/api/v1/albums/{album}/tokens")).await;
    assert_eq!(r.json()["tokens"][0]["id"], token_id.as_str());
    assert!(!r.text().contains(&token));
    assert_eq!(
        api.delete(&format!("/api/v1/albums/{album}/tokens/{token_id}"))
            .await
            .status,
        200
    );
    let (st, _, _) = get(&s.url(&url(&img, &format!("&token={token}"))), None).await;
    assert_eq!(st, 404);
    assert_eq!(
        anon.get(&format!("/api/v1/albums/{album}?token={token}"))
            .await
            .status,
        404
    );
    assert_eq!(
        api.delete(&format!("/api/v1/albums/{album}/tokens/{token_id}"))
            .await
            .status,
        404
    );
    // An expired token opens nothing.
    let r = api
        .json(
            "POST",
            &format!("/api/v1/albums/{album}/tokens"),
            &json!({"expires_in": 1}),
        )
        .await;
    let short = r.json()["token"]["token"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (st, _, _) = get(&s.url(&url(&img, &format!("&token={short}"))), None).await;
    assert_eq!(st, 404);
    let r = anon
        .get(&format!("/api/v1/albums/{album}?token={short}"))
        .await;
    assert_eq!((r.status, r.code().as_str()), (410, "URL_EXPIRED"));
    let r = api
        .json(
            "POST",
            &format!("/api/v1/albums/{album}/tokens"),
            &json!({"expires_in": 0}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["details"]["param"].as_str()),
        (400, Some("expires_in"))
    );
    // A token without expiry, on a public image: served, privately.
    let r = api
        .send("POST", &format!("/api/v1/albums/{album}/tokens"), &[], None)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// `/img` with the admin key (the owner's view).
async fn api_img(s: &Server, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = client()
        .get(s.url(path))
        .header("x-api-key", ADMIN)
        .send()
        .await
        .unwrap();
    let (st, h) = (r.status().as_u16(), r.headers().clone());
    (st, h, r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn share_links_open_one_image_until_they_end() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let img = api
        .upload_one("p.png", &distinct_png(21), &[("is_private", "true")])
        .await;
    let other = api
        .upload_one("o.png", &distinct_png(22), &[("is_private", "true")])
        .await;
    let id = img["id"].as_str().unwrap();
    let r = api
        .json(
            "POST",
            &format!("/api/v1/images/{id}/shares"),
            &json!({"max_views": 3, "expires_in": 3600}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let share = r.json()["share"].clone();
    let token = share["token"].as_str().unwrap().to_string();
    let url = share["url"].as_str().unwrap().to_string();
    assert!(url.ends_with(&format!("/s/{token}")), "{url}");
    // /s/{token} serves the image, with transform parameters; privately.
    let (st, h, body) = get(&format!("{url}?w=16&fm=png"), None).await;
    assert_eq!((st, dims(&body).0), (200, 16));
    let cc = header(&h, "cache-control").unwrap();
    assert!(cc.starts_with("private, max-age="), "{cc}");
    // token= on /img works for this image only (and counts a view).
    let key = img["key"].as_str().unwrap();
    let (st, _, _) = get(&s.url(&format!("/img/{key}?w=8&token={token}")), None).await;
    assert_eq!(st, 200);
    let other_key = other["key"].as_str().unwrap();
    let (st, _, _) = get(&s.url(&format!("/img/{other_key}?w=8&token={token}")), None).await;
    assert_eq!(st, 404);
    // Another image's request spent nothing; the third view is the last.
    let r = api.get(&format!("/api/v1/images/{id}/shares")).await;
    assert_eq!(r.json()["shares"][0]["views"], 2);
    assert!(!r.text().contains(&token));
    assert_eq!(get(&url, None).await.0, 200);
    let (st, h, body) = get(&url, None).await;
    assert_eq!((st, error_code(&body).as_str()), (410, "URL_EXPIRED"));
    assert_eq!(header(&h, "cache-control"), Some("no-store"));
    // Revoked at once; unknown tokens are 404.
    let r = api
        .json("POST", &format!("/api/v1/images/{id}/shares"), &json!({}))
        .await;
    let s2 = r.json()["share"].clone();
    let (t2, sid) = (
        s2["token"].as_str().unwrap().to_string(),
        s2["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(get(&s.url(&format!("/s/{t2}")), None).await.0, 200);
    assert_eq!(
        api.delete(&format!("/api/v1/shares/{sid}")).await.status,
        200
    );
    assert_eq!(get(&s.url(&format!("/s/{t2}")), None).await.0, 404);
    assert_eq!(get(&s.url("/s/rfs_nothing"), None).await.0, 404);
    // Bad input, another tenant, and the image's deletion ending its links.
    let r = api
        .json(
            "POST",
            &format!("/api/v1/images/{id}/shares"),
            &json!({"max_views": 0}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["details"]["param"].as_str()),
        (400, Some("max_views"))
    );
    let (_, k) = api.create_key("else", &["read", "write"]).await;
    let theirs = api.with_key(&k);
    assert_eq!(
        theirs
            .json("POST", &format!("/api/v1/images/{id}/shares"), &json!({}))
            .await
            .status,
        404
    );
    assert_eq!(
        theirs.delete(&format!("/api/v1/shares/{sid}")).await.status,
        404
    );
    let r = api
        .json("POST", &format!("/api/v1/images/{id}/shares"), &json!({}))
        .await;
    let t3 = r.json()["share"]["token"].as_str().unwrap().to_string();
    assert_eq!(
        api.delete(&format!("/api/v1/images/{id}")).await.status,
        200
    );
    assert_eq!(get(&s.url(&format!("/s/{t3}")), None).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_share_with_one_view_left_is_used_once_under_concurrency() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let img = api.upload_one("c.png", &distinct_png(31), &[]).await;
    let id = img["id"].as_str().unwrap();
    let r = api
        .json(
            "POST",
            &format!("/api/v1/images/{id}/shares"),
            &json!({"max_views": 1}),
        )
        .await;
    let url = r.json()["share"]["url"].as_str().unwrap().to_string();
    let tries = (0..8).map(|_| {
        let u = url.clone();
        tokio::spawn(async move { get(&u, None).await.0 })
    });
    let mut codes: Vec<u16> = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, [200, 410, 410, 410, 410, 410, 410, 410]);
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_urls_open_private_images() {
    use refract::delivery::signing::Signer;
    use refract::util::secret::Secret;
    let s = start_api(|c| {
        c.security.signing_keys = vec![Secret("a-long-enough-test-signing-key-4567".into())];
    });
    let api = Api::admin(&s);
    let private = api
        .upload_one("p.png", &distinct_png(41), &[("is_private", "true")])
        .await;
    let public = api.upload_one("q.png", &distinct_png(42), &[]).await;
    let signer = Signer::new(&s.cfg.security);
    let path = |i: &serde_json::Value| format!("/img/{}", i["key"].as_str().unwrap());
    assert_eq!(
        get(&s.url(&format!("{}?w=10", path(&private))), None)
            .await
            .0,
        404
    );
    // Signed without expires (as the API's own URLs are): no capability, still a 404.
    let signed = signer.sign(&path(&private), "w=10").unwrap();
    assert_eq!(get(&s.url(&signed), None).await.0, 404);
    // Expiring more than a week ahead: not a capability either.
    let far = refract::util::clock::now_secs() + 8 * 86_400;
    let signed = signer
        .sign(&path(&private), &format!("w=10&expires={far}"))
        .unwrap();
    assert_eq!(get(&s.url(&signed), None).await.0, 404);
    // With an expiry: no longer than it; tampered: 403; past: 410.
    let until = refract::util::clock::now_secs() + 120;
    let signed = signer
        .sign(&path(&private), &format!("w=10&expires={until}"))
        .unwrap();
    let (st, h, _) = get(&s.url(&signed), None).await;
    let cc = header(&h, "cache-control").unwrap().to_string();
    let age: u64 = cc
        .strip_prefix("private, max-age=")
        .unwrap()
        .parse()
        .unwrap();
    assert!((st, (100..=120).contains(&age)) == (200, true), "{st} {cc}");
    assert_eq!(
        get(&s.url(&signed.replace("w=10", "w=11")), None).await.0,
        403
    );
    let past = signer.sign(&path(&private), "w=10&expires=1000").unwrap();
    assert_eq!(get(&s.url(&past), None).await.0, 410);
    // A signed URL of a public image keeps its public caching.
    let signed = signer.sign(&path(&public), "w=10").unwrap();
    let (_, h, _) = get(&s.url(&signed), None).await;
    assert!(header(&h, "cache-control").unwrap().starts_with("public"));
}

#[tokio::test(flavor = "multi_thread")]
async fn quotas_refuse_uploads_over_them_and_store_nothing() {
    let s = start_api(|c| c.quota.default_images = 2);
    let api = Api::admin(&s);
    api.upload_one("a.png", &distinct_png(51), &[]).await;
    api.upload_one("b.png", &distinct_png(52), &[]).await;
    let objects = files_under(&s.root).len();
    let r = api
        .upload(Form::new().file("file", "c.png", &distinct_png(53)))
        .await;
    assert_eq!((r.status, r.code().as_str()), (507, "INSUFFICIENT_STORAGE"));
    let d = &r.json()["error"]["details"];
    assert_eq!(
        (d["used_images"].as_i64(), d["quota_images"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(api.ids("").await.len(), 2);
    assert_eq!(files_under(&s.root).len(), objects, "no object left behind");
    // A duplicate of a stored image adds nothing: accepted.
    let r = api
        .upload(Form::new().file("file", "a2.png", &distinct_png(51)))
        .await;
    assert_eq!(r.status, 201);
    // The admin raises this tenant's quota; stats show usage against it.
    let r = api
        .json(
            "PUT",
            "/api/v1/tenants/default/quota",
            &json!({"quota_images": 3}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["quota"]["quota_images"], 3);
    api.upload_one("c.png", &distinct_png(53), &[]).await;
    let st = api.get("/api/v1/stats").await.json();
    assert_eq!(
        (
            st["quota"]["used_images"].as_i64(),
            st["quota"]["quota_images"].as_i64()
        ),
        (Some(3), Some(3))
    );
    // null goes back to the configured default; negative is refused; only admins set quotas.
    let r = api
        .json(
            "PUT",
            "/api/v1/tenants/default/quota",
            &json!({"quota_images": null}),
        )
        .await;
    assert_eq!(r.json()["quota"]["quota_images"], 2);
    let r = api
        .json(
            "PUT",
            "/api/v1/tenants/default/quota",
            &json!({"quota_bytes": -1}),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"]["details"]["param"].as_str()),
        (400, Some("quota_bytes"))
    );
    let (_, w) = api.create_key("default", &["read", "write"]).await;
    assert_eq!(
        api.with_key(&w)
            .get("/api/v1/tenants/default/quota")
            .await
            .status,
        403
    );
    // A tenant's own admin sees its quota but may not set it, nor see another's.
    let (_, acme) = api.create_key("acme", &["admin"]).await;
    let acme = api.with_key(&acme);
    assert_eq!(acme.get("/api/v1/tenants/acme/quota").await.status, 200);
    assert_eq!(acme.get("/api/v1/tenants/default/quota").await.status, 404);
    let r = acme
        .json(
            "PUT",
            "/api/v1/tenants/acme/quota",
            &json!({"quota_images": 0}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        api.get("/api/v1/tenants/Bad%20Name/quota").await.status,
        400
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_uploads_racing_for_the_last_quota_bytes_exactly_one_wins() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let (a, b) = (distinct_png(61), distinct_png(62));
    let room = a.len().max(b.len()) as i64 + 10;
    let r = api
        .json(
            "PUT",
            "/api/v1/tenants/default/quota",
            &json!({"quota_bytes": room}),
        )
        .await;
    assert_eq!(r.status, 200);
    let up = |bytes: Vec<u8>, name: &'static str| {
        let api = api.clone();
        tokio::spawn(async move {
            api.upload(Form::new().file("file", name, &bytes))
                .await
                .status
        })
    };
    let (x, y) = (up(a, "a.png"), up(b, "b.png"));
    let mut codes = vec![x.await.unwrap(), y.await.unwrap()];
    codes.sort();
    assert_eq!(codes, [201, 507]);
    assert_eq!(api.ids("").await.len(), 1);
    let stored: Vec<String> = files_under(&s.root)
        .into_iter()
        .filter(|f| f.starts_with("default/"))
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn private_images_are_their_owners_inside_a_tenant() {
    let s = start_api(|_| {});
    let admin = Api::admin(&s);
    let (_, k) = admin.create_key("team", &["read", "write"]).await;
    let key = admin.with_key(&k);
    let as_user = |u: &'static str| [("x-user-id", u)];
    let up = |bytes: Vec<u8>, private: &'static str| {
        let key = key.clone();
        async move {
            let f = Form::new()
                .file("file", "x.png", &bytes)
                .text("is_private", private);
            let r = key.upload_with(f, &as_user("alice")).await;
            assert_eq!(r.status, 201, "{}", r.text());
            r.json()["images"][0]["id"].as_str().unwrap().to_string()
        }
    };
    let secret = up(distinct_png(71), "true").await;
    let open = up(distinct_png(72), "false").await;
    let path = format!("/api/v1/images/{secret}");
    // Bob, in the same tenant, sees Alice's public image only: her private one is a 404.
    assert_eq!(
        key.send("GET", &path, &as_user("bob"), None).await.status,
        404
    );
    assert_eq!(
        key.send("DELETE", &path, &as_user("bob"), None)
            .await
            .status,
        404
    );
    let r = key
        .send(
            "PATCH",
            &path,
            &[("x-user-id", "bob"), ("content-type", "application/json")],
            Some(br#"{"description":"mine now"}"#.to_vec()),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = key
        .send("GET", "/api/v1/images", &as_user("bob"), None)
        .await;
    assert_eq!(ids_of(&r.json()), [open.as_str()]);
    // Alice sees both; the key without a user acts for the tenant; an admin key sees all.
    assert_eq!(
        key.send("GET", &path, &as_user("alice"), None).await.status,
        200
    );
    let r = key
        .send("GET", "/api/v1/images", &as_user("alice"), None)
        .await;
    assert_eq!(ids_of(&r.json()).len(), 2);
    assert_eq!(key.get(&path).await.status, 200);
    // An admin of every tenant opens any tenant's image by id (docs/accounts.md).
    assert_eq!(
        admin.send("GET", &path, &as_user("bob"), None).await.status,
        200,
        "an admin of every tenant"
    );
    // Nor through albums, shares, or an upload of the same bytes.
    let bob = |m: &'static str, p: String, body: Option<serde_json::Value>| {
        let key = key.clone();
        async move {
            let mut h = vec![("x-user-id", "bob")];
            let bytes = body.map(|b| {
                h.push(("content-type", "application/json"));
                serde_json::to_vec(&b).unwrap()
            });
            key.send(m, &p, &h, bytes).await
        }
    };
    let r = bob(
        "POST",
        "/api/v1/albums".into(),
        Some(json!({"name": "bob's"})),
    )
    .await;
    let bobs = r.json()["album"]["id"].as_str().unwrap().to_string();
    let r = bob(
        "POST",
        format!("/api/v1/albums/{bobs}/images"),
        Some(json!({"image_ids": [secret]})),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = bob(
        "POST",
        format!("/api/v1/images/{secret}/shares"),
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = bob("GET", format!("/api/v1/images/{secret}/shares"), None).await;
    assert_eq!(r.status, 404);
    let f = Form::new().file("file", "copy.png", &distinct_png(71));
    let r = key.upload_with(f, &as_user("bob")).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(!r.text().contains(&secret));
    // Alice's album holding her private image: Bob's listing leaves it out.
    let r = key
        .send(
            "POST",
            "/api/v1/albums",
            &[("x-user-id", "alice"), ("content-type", "application/json")],
            Some(br#"{"name":"alice's"}"#.to_vec()),
        )
        .await;
    let alices = r.json()["album"]["id"].as_str().unwrap().to_string();
    let r = key
        .send(
            "POST",
            &format!("/api/v1/albums/{alices}/images"),
            &[("x-user-id", "alice"), ("content-type", "application/json")],
            Some(serde_json::to_vec(&json!({"image_ids": [secret, open]})).unwrap()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = bob("GET", format!("/api/v1/albums/{alices}/images"), None).await;
    assert_eq!(ids_of(&r.json()), [open.as_str()]);
    let (_, tenant_admin) = admin.create_key("team", &["read", "write", "admin"]).await;
    let ta = admin.with_key(&tenant_admin);
    assert_eq!(
        ta.send("GET", &path, &as_user("bob"), None).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_rename_false_keeps_the_file_name_and_never_overwrites() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let keep = [("auto_rename", "false")];
    let a = api
        .upload_one("My Photo!.png", &distinct_png(81), &keep)
        .await;
    assert_eq!(a["key"], "default/My_Photo_.png");
    let b = api
        .upload_one("My Photo!.png", &distinct_png(82), &keep)
        .await;
    assert_eq!(b["key"], "default/My_Photo_-1.png");
    // Two files of one batch with one name; a path in the name is dropped.
    let r = api
        .upload(
            Form::new()
                .file("files[]", "../../x.png", &distinct_png(83))
                .file("files[]", "x.png", &distinct_png(84))
                .text("autoRename", "false"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let keys: Vec<String> = r.json()["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["default/x.png", "default/x-1.png"]);
    // The first image is intact (not overwritten).
    let (_, _, body) = get(&s.url("/img/default/My_Photo_.png"), None).await;
    assert_eq!(body, distinct_png(81));
    // Default: a random key.
    let c = api
        .upload_one("My Photo!.png", &distinct_png(85), &[])
        .await;
    assert!(!c["key"].as_str().unwrap().contains("My_Photo"));
}

#[tokio::test(flavor = "multi_thread")]
async fn fallback_image_answers_inaccessible_images_with_a_placeholder() {
    use refract::access::visibility::Fallback;
    let s = start_api(|c| c.access.fallback = Fallback::Image);
    let api = Api::admin(&s);
    let private = api
        .upload_one("p.png", &distinct_png(91), &[("is_private", "true")])
        .await;
    let rows = [
        ("/img/nothing.jpg?w=100".to_string(), None, 404, "png"),
        (
            "/img/nothing.jpg?w=100&fm=jpeg".to_string(),
            None,
            404,
            "jpeg",
        ),
        (
            "/img/nothing.jpg".to_string(),
            Some("image/webp,*/*"),
            404,
            "webp",
        ),
        (
            format!("/img/{}?w=10", private["key"].as_str().unwrap()),
            None,
            404,
            "png",
        ),
        (
            "/cdn-cgi/image/w=10/nothing.jpg".to_string(),
            None,
            404,
            "png",
        ),
        ("/s/rfs_nothing".to_string(), None, 404, "png"),
    ];
    for (path, accept, status, fmt) in rows {
        let (st, h, body) = get(&s.url(&path), accept).await;
        assert_eq!((st, magic(&body)), (status, fmt), "{path}");
        assert_eq!(header(&h, "cache-control"), Some("no-store"), "{path}");
        assert_eq!(dims(&body), (64, 64));
    }
    // A used-up share: 410 with the placeholder.
    let id = api.upload_one("q.png", &distinct_png(92), &[]).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api
        .json(
            "POST",
            &format!("/api/v1/images/{id}/shares"),
            &json!({"max_views": 1}),
        )
        .await;
    let url = r.json()["share"]["url"].as_str().unwrap().to_string();
    assert_eq!(get(&url, None).await.0, 200);
    let (st, _, body) = get(&url, None).await;
    assert_eq!((st, magic(&body)), (410, "png"));
    // Client errors stay JSON; the API is not concerned.
    let (st, h, _) = get(&s.url("/img/nothing.jpg?w=abc"), None).await;
    assert_eq!(
        (st, header(&h, "content-type")),
        (400, Some("application/json"))
    );
    assert_eq!(api.get("/api/v1/images/nope").await.code(), "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_can_be_stored_converted() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let png = distinct_png(95);
    // PicHub's convertToWebP: the stored original is a WebP, and the IMAGE object says so.
    let i = api
        .upload_one("a.png", &png, &[("convertToWebP", "true")])
        .await;
    assert_eq!(
        (i["format"].as_str(), i["content_type"].as_str()),
        (Some("webp"), Some("image/webp"))
    );
    assert!(i["key"].as_str().unwrap().ends_with(".webp"));
    let (_, _, stored) = get(
        &s.url(&format!("/img/{}", i["key"].as_str().unwrap())),
        None,
    )
    .await;
    assert_eq!(magic(&stored), "webp");
    assert_eq!(i["bytes"].as_u64(), Some(stored.len() as u64));
    // An explicit format and quality win; auto keeps the upload as it is.
    let j = api
        .upload_one(
            "b.png",
            &distinct_png(96),
            &[
                ("format", "jpeg"),
                ("quality", "40"),
                ("convertToWebP", "true"),
            ],
        )
        .await;
    assert_eq!(j["format"], "jpeg");
    let k = api
        .upload_one("c.png", &distinct_png(97), &[("format", "auto")])
        .await;
    assert_eq!(k["format"], "png");
    // Orientation is applied to what is stored.
    let portrait =
        std::fs::read(std::path::Path::new(FIXTURES).join("orientation/Landscape_6.jpg")).unwrap();
    let o = api
        .upload_one("o.jpg", &portrait, &[("format", "webp")])
        .await;
    let (_, _, stored) = get(
        &s.url(&format!("/img/{}", o["key"].as_str().unwrap())),
        None,
    )
    .await;
    let (w, h) = dims(&stored);
    assert!(w > h, "stored upright: {w}x{h}");
    assert_eq!(
        (o["width"].as_u64(), o["height"].as_u64()),
        (Some(u64::from(w)), Some(u64::from(h)))
    );
    // Bad values are named; nothing is stored.
    let before = api.ids("").await.len();
    for (k, v) in [
        ("format", "tiff"),
        ("quality", "0"),
        ("convertToWebP", "maybe"),
    ] {
        let r = api
            .upload(
                Form::new()
                    .file("file", "d.png", &distinct_png(98))
                    .text(k, v),
            )
            .await;
        assert_eq!(
            (r.status, r.json()["error"]["details"]["param"].as_str()),
            (400, Some(k)),
            "{k}"
        );
    }
    assert_eq!(api.ids("").await.len(), before);
}
