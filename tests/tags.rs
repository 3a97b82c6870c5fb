//! Tags as things on the real server: ids, colours and types in the listing, create, rename
//! (merging onto an existing name), delete (off every image), many images at once (all or
//! none), toggle; the by-name APIs keep working; each changed image is announced.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{distinct_png, start_api, Api};
use serde_json::{json, Value};

fn tag_named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tag {name} in {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_things_with_ids_batches_merges_and_toggles() {
    let s = start_api(|_| {});
    let api = Api::admin(&s);
    let mut ids = Vec::new();
    for (i, tags) in [(1, "Cat,red"), (2, "cat"), (3, "dog"), (4, "")] {
        let img = api
            .upload_one(&format!("{i}.png"), &distinct_png(i), &[("tags", tags)])
            .await;
        ids.push(img["id"].as_str().unwrap().to_string());
    }

    // Names carried by images get ids; counts as before.
    let list = api.get("/api/v1/tags").await.json();
    let cat = tag_named(&list, "cat").clone();
    assert_eq!(cat["count"], 2);
    assert_eq!(cat["type"], "custom");
    assert!(cat["id"].is_string() && cat["color"].is_null());
    // Stable ids.
    assert_eq!(
        tag_named(&api.get("/api/v1/tags").await.json(), "cat")["id"],
        cat["id"]
    );

    // Create (case-insensitive names, unique per tenant), with a colour.
    let r = api
        .json(
            "POST",
            "/api/v1/tags",
            &json!({"name": "Favourite", "color": "#FFAA00"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let fav = r.json()["tag"].clone();
    assert_eq!(
        (
            fav["name"].as_str(),
            fav["color"].as_str(),
            fav["count"].as_i64()
        ),
        (Some("favourite"), Some("#ffaa00"), Some(0))
    );
    let fid = fav["id"].as_str().unwrap().to_string();
    let r = api
        .json("POST", "/api/v1/tags", &json!({"name": "FAVOURITE"}))
        .await;
    assert_eq!(r.status, 409);
    for bad in [
        json!({"name": ""}),
        json!({"name": "a,b"}),
        json!({"name": "x", "color": "red"}),
        json!({"nom": "x"}),
    ] {
        assert_eq!(
            api.json("POST", "/api/v1/tags", &bad).await.status,
            400,
            "{bad}"
        );
    }

    // Many images at once; the by-name filter sees them.
    let r = api
        .json(
            "POST",
            &format!("/api/v1/tags/{fid}/images"),
            &json!({"image_ids": [ids[0], ids[2], ids[3]]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tag"]["count"], 3);
    let mut tagged = api.ids("tag=favourite").await;
    tagged.sort();
    let mut want = vec![ids[0].clone(), ids[2].clone(), ids[3].clone()];
    want.sort();
    assert_eq!(tagged, want);
    // All or none: one unknown id changes nothing.
    let r = api
        .json(
            "DELETE",
            &format!("/api/v1/tags/{fid}/images"),
            &json!({"image_ids": [ids[0], "nope"]}),
        )
        .await;
    assert_eq!(r.status, 404);
    assert!(r.text().contains("nope"));
    assert_eq!(api.ids("tag=favourite").await.len(), 3);
    let r = api
        .json(
            "DELETE",
            &format!("/api/v1/tags/{fid}/images"),
            &json!({"image_ids": [ids[3]]}),
        )
        .await;
    assert_eq!(r.json()["changed"], json!([ids[3]]));

    // Toggle.
    let r = api
        .send(
            "POST",
            &format!("/api/v1/images/{}/tags/{fid}/toggle", ids[1]),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tagged"], true);
    assert!(r.json()["image"]["tags"]
        .as_array()
        .unwrap()
        .contains(&json!("favourite")));
    let r = api
        .send(
            "POST",
            &format!("/api/v1/images/{}/tags/{fid}/toggle", ids[1]),
            &[],
            None,
        )
        .await;
    assert_eq!(r.json()["tagged"], false);

    // Rename onto an existing name merges: "red" → "cat"; image 1 had both and keeps one.
    let red = tag_named(&api.get("/api/v1/tags").await.json(), "red")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api
        .json(
            "PATCH",
            &format!("/api/v1/tags/{red}"),
            &json!({"name": "CAT"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tag"]["id"], cat["id"], "the surviving tag");
    assert_eq!(r.json()["tag"]["count"], 2);
    let img0 = api.get(&format!("/api/v1/images/{}", ids[0])).await.json();
    assert_eq!(img0["tags"], json!(["cat", "favourite"]));
    assert_eq!(
        api.get(&format!("/api/v1/tags/{red}/images")).await.status,
        405
    );
    let list = api.get("/api/v1/tags").await.json();
    assert!(list["tags"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["name"] != "red"));
    // A plain rename keeps the id; colours change and clear.
    let r = api
        .json(
            "PATCH",
            &format!("/api/v1/tags/{fid}"),
            &json!({"name": "best", "color": null}),
        )
        .await;
    assert_eq!(
        (
            r.json()["tag"]["id"].as_str(),
            r.json()["tag"]["name"].as_str()
        ),
        (Some(fid.as_str()), Some("best"))
    );
    assert!(r.json()["tag"]["color"].is_null());
    assert_eq!(api.ids("tag=best").await.len(), 2);

    // Delete: off every image.
    assert_eq!(api.delete(&format!("/api/v1/tags/{fid}")).await.status, 200);
    assert!(api.ids("tag=best").await.is_empty());
    let img0 = api.get(&format!("/api/v1/images/{}", ids[0])).await.json();
    assert_eq!(img0["tags"], json!(["cat"]));
    assert_eq!(api.delete(&format!("/api/v1/tags/{fid}")).await.status, 404);

    // Another tenant sees none of it; a read key cannot change tags.
    let (_, other) = api.create_key("other", &["read", "write"]).await;
    let o = api.with_key(&other);
    let cid = cat["id"].as_str().unwrap();
    assert_eq!(
        o.json(
            "PATCH",
            &format!("/api/v1/tags/{cid}"),
            &json!({"name": "x"})
        )
        .await
        .status,
        404
    );
    assert_eq!(
        o.json(
            "POST",
            &format!("/api/v1/tags/{cid}/images"),
            &json!({"image_ids": [ids[0]]})
        )
        .await
        .status,
        404
    );
    let (_, reader) = api.create_key("default", &["read"]).await;
    assert_eq!(
        api.with_key(&reader)
            .json("POST", "/api/v1/tags", &json!({"name": "z"}))
            .await
            .status,
        403
    );
}
