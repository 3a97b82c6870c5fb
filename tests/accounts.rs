//! Accounts: login, refresh rotation and reuse detection, logout, password change, disabled
//! users, tampered tokens, the login throttle, no user enumeration; on the real server, its
//! SQLite database and the real `refract user` command.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::api::{start_api, Api};
use common::Server;
use refract::access::accounts::{sign_jwt, Claims};
use serde_json::{json, Value};

const EMAIL: &str = "Root@Example.com";
const PASSWORD: &str = "a long admin password";
const JWT_KEY: &str = "test-jwt-signing-key-0123456789abcdef";

fn server(tweak: impl FnOnce(&mut refract::config::Config)) -> Server {
    start_api(|c| {
        c.accounts.admin_email = Some(EMAIL.into());
        c.accounts.admin_password = Some(refract::util::secret::Secret(PASSWORD.into()));
        c.accounts.jwt_secret = Some(refract::util::secret::Secret(JWT_KEY.into()));
        tweak(c);
    })
}

/// A client with no key, and one with a bearer token.
fn anon(s: &Server) -> Api {
    Api::new(s, None)
}

async fn bearer(
    s: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> common::api::Resp {
    let auth = format!("Bearer {token}");
    let mut h = vec![("authorization", auth.as_str())];
    if body.is_some() {
        h.push(("content-type", "application/json"));
    }
    anon(s)
        .send(method, path, &h, body.map(|b| b.to_string().into_bytes()))
        .await
}

async fn login(s: &Server, email: &str, password: &str) -> common::api::Resp {
    anon(s)
        .json(
            "POST",
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
}

async fn tokens(s: &Server, email: &str, password: &str) -> (String, String) {
    let r = login(s, email, password).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 900);
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn login_refresh_rotation_reuse_and_logout() {
    let s = server(|_| {});
    let (access, refresh) = tokens(&s, "root@example.com", PASSWORD).await;
    // The token works wherever a key does, with the admin's role.
    let me = bearer(&s, &access, "GET", "/api/v1/auth/me", None).await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["user"]["email"], "root@example.com");
    assert_eq!(me.json()["user"]["role"], "admin");
    assert!(me.json()["user"].get("password_hash").is_none());
    assert_eq!(
        bearer(&s, &access, "GET", "/api/v1/images", None)
            .await
            .status,
        200
    );
    assert_eq!(
        bearer(&s, &access, "GET", "/api/v1/keys", None)
            .await
            .status,
        200
    );
    // API keys keep working.
    assert_eq!(Api::admin(&s).get("/api/v1/keys").await.status, 200);
    // PATCH me.
    let r = bearer(
        &s,
        &access,
        "PATCH",
        "/api/v1/auth/me",
        Some(json!({"name": "Root"})),
    )
    .await;
    assert_eq!(r.json()["user"]["name"], "Root");

    // Refresh rotates: a new pair, and the old refresh token is spent.
    let r = anon(&s)
        .json(
            "POST",
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (access2, refresh2) = (
        r.json()["access_token"].as_str().unwrap().to_string(),
        r.json()["refresh_token"].as_str().unwrap().to_string(),
    );
    assert_ne!(refresh2, refresh);
    assert_eq!(
        bearer(&s, &access2, "GET", "/api/v1/auth/me", None)
            .await
            .status,
        200
    );
    // Reuse of the spent token: 401, and the whole session is revoked (the thief's and the
    // owner's tokens alike).
    let r = anon(&s)
        .json(
            "POST",
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = anon(&s)
        .json(
            "POST",
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh2}),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        bearer(&s, &access2, "GET", "/api/v1/auth/me", None)
            .await
            .status,
        401
    );
    assert_eq!(
        bearer(&s, &access, "GET", "/api/v1/images", None)
            .await
            .status,
        401
    );

    // Logout ends a session at once; another session goes on.
    let (a1, r1) = tokens(&s, EMAIL, PASSWORD).await;
    let (a2, _) = tokens(&s, EMAIL, PASSWORD).await;
    assert_eq!(
        bearer(&s, &a1, "POST", "/api/v1/auth/logout", None)
            .await
            .status,
        200
    );
    assert_eq!(
        bearer(&s, &a1, "GET", "/api/v1/images", None).await.status,
        401
    );
    let r = anon(&s)
        .json(
            "POST",
            "/api/v1/auth/refresh",
            &json!({"refresh_token": r1}),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        bearer(&s, &a2, "GET", "/api/v1/images", None).await.status,
        200
    );
    // Once the access token is gone, the refresh token logs out too.
    let (a3, r3) = tokens(&s, EMAIL, PASSWORD).await;
    let r = anon(&s)
        .json("POST", "/api/v1/auth/logout", &json!({"refresh_token": r3}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        bearer(&s, &a3, "GET", "/api/v1/images", None).await.status,
        401
    );
    let r = anon(&s)
        .json("POST", "/api/v1/auth/logout", &json!({"refresh_token": r3}))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        anon(&s)
            .send("POST", "/api/v1/auth/logout", &[], None)
            .await
            .status,
        401
    );
    // Routes of the logged-in user need a token, not a key.
    assert_eq!(Api::admin(&s).get("/api/v1/auth/me").await.status, 401);
    // Nothing secret in the effective config.
    let cfg = Api::admin(&s).get("/api/v1/config").await.text();
    for secret in [PASSWORD, JWT_KEY] {
        assert!(!cfg.contains(secret));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_enumeration_and_a_throttle_on_failures() {
    let s = server(|c| c.accounts.free_failures = 2);
    let unknown = login(&s, "nobody@example.com", PASSWORD).await;
    let wrong = login(&s, EMAIL, "not the password at all").await;
    assert_eq!((unknown.status, wrong.status), (401, 401));
    assert_eq!(unknown.body, wrong.body, "the same answer for both");
    assert!(!wrong.text().contains("password_hash"));
    // A third failure for the account starts the throttle: 429 with Retry-After, even for the
    // right password, until the wait is over.
    assert_eq!(
        login(&s, EMAIL, "wrong again, still wrong").await.status,
        401
    );
    let r = login(&s, EMAIL, PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    // The same client is throttled on another account too (per IP).
    assert_eq!(
        login(&s, "other@example.com", "x-whatever-long")
            .await
            .status,
        429
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = login(&s, EMAIL, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Bad bodies are 400s naming the problem, not 500s.
    let r = anon(&s)
        .json("POST", "/api/v1/auth/login", &json!({"email": EMAIL}))
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_expired_and_foreign_tokens_are_refused() {
    let s = server(|_| {});
    let (access, _) = tokens(&s, EMAIL, PASSWORD).await;
    let parts: Vec<&str> = access.split('.').collect();
    let claims: Claims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let other_key = sign_jwt(b"some other key, 32 bytes or more!", &claims).unwrap();
    let mut aud = claims.clone();
    aud.aud = "somebody-else".into();
    let mut old = claims.clone();
    old.exp = old.iat - 1;
    let mut stranger = claims.clone();
    stranger.sub = "no-such-user".into();
    for (what, t) in [
        ("alg none", format!("{none}.{}.", parts[1])),
        (
            "alg none, signature kept",
            format!("{none}.{}.{}", parts[1], parts[2]),
        ),
        ("wrong key", other_key),
        (
            "wrong audience",
            sign_jwt(JWT_KEY.as_bytes(), &aud).unwrap(),
        ),
        ("expired", sign_jwt(JWT_KEY.as_bytes(), &old).unwrap()),
        (
            "unknown user",
            sign_jwt(JWT_KEY.as_bytes(), &stranger).unwrap(),
        ),
        ("truncated", access[..access.len() - 3].to_string()),
    ] {
        let r = bearer(&s, &t, "GET", "/api/v1/images", None).await;
        assert_eq!(r.status, 401, "{what}");
        assert!(!r.text().contains(&t), "{what}: the token is echoed");
    }
    assert_eq!(
        bearer(&s, &access, "GET", "/api/v1/images", None)
            .await
            .status,
        200
    );
}

/// `refract user create` adds a member; a member works only in its tenant and within its
/// scopes; a password change ends the other sessions; `refract user disable` locks out.
#[tokio::test(flavor = "multi_thread")]
async fn members_passwords_and_disabled_users() {
    let s = server(|_| {});
    let cli = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_refract"))
            .arg("--data-dir")
            .arg(s.data_dir())
            .arg("user")
            .args(args)
            // The server's database (PostgreSQL in the backend matrix).
            .envs(
                s.cfg
                    .database
                    .url
                    .as_ref()
                    .map(|u| ("REFRACT__DATABASE__URL", u.0.clone())),
            )
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = cli(
        &[
            "create",
            "--email",
            "ann@acme.test",
            "--role",
            "member",
            "--tenant",
            "acme",
            "--scopes",
            "read,write",
        ],
        "ann's password, long enough\n",
    );
    assert!(ok, "{out}");
    assert!(
        !out.contains("long enough"),
        "the password is echoed: {out}"
    );
    let (ok, out) = cli(
        &[
            "create",
            "--email",
            "ann@acme.test",
            "--role",
            "member",
            "--tenant",
            "acme",
        ],
        "another long password\n",
    );
    assert!(!ok, "a second user with the same email: {out}");
    // A member of tenant default with the admin scope would administer every tenant: refused.
    let (ok, out) = cli(
        &[
            "create",
            "--email",
            "eve@example.test",
            "--role",
            "member",
            "--tenant",
            "default",
            "--scopes",
            "read,admin",
        ],
        "eve's long password here\n",
    );
    assert!(!ok && out.contains("--role admin"), "{out}");
    let (ok, out) = cli(
        &[
            "create",
            "--email",
            "bob@acme.test",
            "--role",
            "member",
            "--tenant",
            "acme",
        ],
        "short\n",
    );
    assert!(!ok && out.contains("12"), "{out}");

    let (a1, _) = tokens(&s, "ann@acme.test", "ann's password, long enough").await;
    let (a2, _) = tokens(&s, "ann@acme.test", "ann's password, long enough").await;
    // Uploads go to the member's tenant; other tenants' images are 404s; no admin routes.
    let up = common::api::Form::new().file("file", "a.png", &common::api::distinct_png(1));
    let ct = format!("multipart/form-data; boundary={}", common::api::BOUNDARY);
    let auth = format!("Bearer {a1}");
    let r = anon(&s)
        .send(
            "POST",
            "/api/v1/images",
            &[
                ("authorization", auth.as_str()),
                ("content-type", ct.as_str()),
            ],
            Some(up.body()),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.json()["images"][0]["key"]
        .as_str()
        .unwrap()
        .starts_with("acme/"));
    let theirs = Api::admin(&s)
        .upload_one("b.png", &common::api::distinct_png(2), &[])
        .await;
    let path = format!("/api/v1/images/{}", theirs["id"].as_str().unwrap());
    assert_eq!(bearer(&s, &a1, "GET", &path, None).await.status, 404);
    assert_eq!(
        bearer(&s, &a1, "GET", "/api/v1/keys", None).await.status,
        403
    );

    // Password change: the old one is needed; the other session ends, this one goes on.
    let body = |old: &str, new: &str| Some(json!({"old_password": old, "new_password": new}));
    let r = bearer(
        &s,
        &a1,
        "POST",
        "/api/v1/auth/me/password",
        body("wrong old password", "a brand new password"),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = bearer(
        &s,
        &a1,
        "POST",
        "/api/v1/auth/me/password",
        body("ann's password, long enough", "short"),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = bearer(
        &s,
        &a1,
        "POST",
        "/api/v1/auth/me/password",
        body("ann's password, long enough", "a brand new password"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        bearer(&s, &a2, "GET", "/api/v1/images", None).await.status,
        401
    );
    assert_eq!(
        bearer(&s, &a1, "GET", "/api/v1/images", None).await.status,
        200
    );
    assert_eq!(
        login(&s, "ann@acme.test", "ann's password, long enough")
            .await
            .status,
        401
    );
    let (a3, r3) = tokens(&s, "ann@acme.test", "a brand new password").await;

    // Disabled: no login, no token, no refresh.
    let (ok, out) = cli(&["disable", "--email", "ann@acme.test"], "");
    assert!(ok, "{out}");
    assert_eq!(
        bearer(&s, &a3, "GET", "/api/v1/images", None).await.status,
        401
    );
    assert_eq!(
        login(&s, "ann@acme.test", "a brand new password")
            .await
            .status,
        401
    );
    let r = anon(&s)
        .json(
            "POST",
            "/api/v1/auth/refresh",
            &json!({"refresh_token": r3}),
        )
        .await;
    assert_eq!(r.status, 401);
}

/// Every write by an administrator (key or user) is in the audit log: who, what, when, from
/// where, and the status; reads and non-admin writes are not; a tenant's admin reads its own.
#[tokio::test(flavor = "multi_thread")]
async fn admin_writes_are_audited() {
    let s = server(|_| {});
    let admin = Api::admin(&s);
    let (_, acme_admin) = admin.create_key("acme", &["read", "write", "admin"]).await;
    let (_, writer) = admin.create_key("default", &["read", "write"]).await;
    let (access, _) = tokens(&s, EMAIL, PASSWORD).await;
    let r = bearer(
        &s,
        &access,
        "PATCH",
        "/api/v1/auth/me",
        Some(json!({"name": "Boss"})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(admin.get("/api/v1/images").await.status, 200); // a read: not recorded
    admin
        .with_key(&writer)
        .upload_one("w.png", &common::api::distinct_png(7), &[])
        .await; // not an admin
    let acme = admin.with_key(&acme_admin);
    acme.upload_one("a.png", &common::api::distinct_png(8), &[])
        .await;
    let r = admin
        .json(
            "POST",
            "/api/v1/keys",
            &json!({"name": "x", "scopes": ["bogus"]}),
        )
        .await;
    assert_eq!(r.status, 400);

    let all = admin.get("/api/v1/audit").await;
    assert_eq!(all.status, 200, "{}", all.text());
    let entries = all.json()["entries"].as_array().unwrap().clone();
    let seen: Vec<(String, String, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"]
                    .as_str()
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
                    .to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["status"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("bootstrap".into(), "CreateKey".into(), 400),
            (seen[1].0.clone(), "Upload".into(), 201),
            ("user".into(), "PatchMe".into(), 200),
            ("bootstrap".into(), "CreateKey".into(), 201),
            ("bootstrap".into(), "CreateKey".into(), 201),
        ],
        "{entries:#?}"
    );
    assert!(entries
        .iter()
        .all(|e| e["ip"] == "127.0.0.1" && e["at"].is_string()));
    assert_eq!(entries[1]["tenant"], "acme");
    assert_eq!(entries[0]["path"], "/api/v1/keys");
    // Paging.
    let page = admin.get("/api/v1/audit?limit=2").await.json();
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    let next = page["next_before"].as_str().unwrap().to_string();
    let rest = admin
        .get(&format!("/api/v1/audit?limit=10&before={next}"))
        .await
        .json();
    assert_eq!(rest["entries"].as_array().unwrap().len(), 3);
    assert_eq!(rest["entries"][0]["id"], entries[2]["id"]);
    // A tenant's admin reads only its tenant's entries; others may not read.
    let mine = acme.get("/api/v1/audit").await.json();
    assert_eq!(mine["entries"].as_array().unwrap().len(), 1);
    assert_eq!(mine["entries"][0]["action"], "Upload");
    assert_eq!(
        admin.with_key(&writer).get("/api/v1/audit").await.status,
        403
    );
    assert_eq!(admin.get("/api/v1/audit?limit=0").await.status, 400);
}

/// Open registration: a new tenant and its first member, who makes the tenant's keys while
/// logged in; registering a taken email looks the same and changes nothing. Closed by default.
#[tokio::test(flavor = "multi_thread")]
async fn registration_and_self_service_keys() {
    let closed = server(|_| {});
    let body = json!({"email": "new@example.com", "password": "a fine long password"});
    let r = anon(&closed)
        .json("POST", "/api/v1/auth/register", &body)
        .await;
    assert_eq!(r.status, 403);

    let s = server(|c| c.accounts.registration = refract::access::accounts::Registration::Open);
    let first = anon(&s).json("POST", "/api/v1/auth/register", &body).await;
    assert_eq!(first.status, 202, "{}", first.text());
    let again = anon(&s)
        .json(
            "POST",
            "/api/v1/auth/register",
            &json!({"email": "NEW@example.com", "password": "another long password"}),
        )
        .await;
    assert_eq!(
        (again.status, again.body.clone()),
        (202, first.body.clone())
    );
    let taken = anon(&s)
        .json(
            "POST",
            "/api/v1/auth/register",
            &json!({"email": EMAIL, "password": "yet another long one"}),
        )
        .await;
    assert_eq!((taken.status, taken.body), (202, first.body));
    assert_eq!(
        login(&s, "new@example.com", "another long password")
            .await
            .status,
        401
    );
    assert_eq!(login(&s, EMAIL, PASSWORD).await.status, 200);
    let bad = anon(&s)
        .json(
            "POST",
            "/api/v1/auth/register",
            &json!({"email": "x@example.com", "password": "short"}),
        )
        .await;
    assert_eq!(bad.status, 400);

    // The member makes its tenant's keys, and only its tenant's.
    let (access, _) = tokens(&s, "new@example.com", "a fine long password").await;
    let me = bearer(&s, &access, "GET", "/api/v1/auth/me", None)
        .await
        .json();
    let tenant = me["user"]["tenant"].as_str().unwrap().to_string();
    assert_eq!(me["user"]["role"], "member");
    assert_ne!(tenant, "default");
    let r = bearer(
        &s,
        &access,
        "POST",
        "/api/v1/keys",
        Some(json!({"name": "site", "scopes": ["read", "write"]})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let key = r.json()["key"]["key"].as_str().unwrap().to_string();
    let id = r.json()["key"]["id"].as_str().unwrap().to_string();
    let r = bearer(
        &s,
        &access,
        "POST",
        "/api/v1/keys",
        Some(json!({"name": "x", "tenant": "default", "scopes": ["read"]})),
    )
    .await;
    assert_eq!(r.status, 403);
    let listed = bearer(&s, &access, "GET", "/api/v1/keys", None)
        .await
        .json();
    let text = listed.to_string();
    assert!(
        text.contains(&tenant) && !text.contains("\"default\""),
        "{text}"
    );
    let mine = Api::new(&s, Some(&key));
    let up = mine
        .upload_one("a.png", &common::api::distinct_png(3), &[])
        .await;
    assert!(up["key"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{tenant}/")));
    assert_eq!(
        bearer(&s, &access, "DELETE", &format!("/api/v1/keys/{id}"), None)
            .await
            .status,
        200
    );
    assert_eq!(mine.get("/api/v1/images").await.status, 401);
}

/// Tenants as things: created, listed (with those only keys name), read with usage and
/// quotas, renamed; switched off, their keys stop at once (and stay stopped after a restart).
#[tokio::test(flavor = "multi_thread")]
async fn tenants_are_managed_and_switched_off_at_once() {
    let s = server(|_| {});
    let admin = Api::admin(&s);
    let r = admin
        .json(
            "POST",
            "/api/v1/tenants",
            &json!({"id": "acme", "name": "Acme Inc", "quota_images": 5}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let t = r.json()["tenant"].clone();
    assert_eq!(
        (t["name"].clone(), t["active"].clone()),
        (json!("Acme Inc"), json!(true))
    );
    assert_eq!(t["quota"]["quota_images"], 5);
    let dup = admin
        .json("POST", "/api/v1/tenants", &json!({"id": "acme"}))
        .await;
    assert_eq!(dup.status, 409);
    for bad in [
        json!({"id": "Not Valid"}),
        json!({}),
        json!({"id": "x", "quota_bytes": -1}),
    ] {
        assert_eq!(
            admin.json("POST", "/api/v1/tenants", &bad).await.status,
            400,
            "{bad}"
        );
    }
    let (_, acme_key) = admin.create_key("acme", &["read", "write", "admin"]).await;
    admin.create_key("beta", &["read"]).await;
    let acme = admin.with_key(&acme_key);
    acme.upload_one("a.png", &common::api::distinct_png(4), &[])
        .await;
    let list = admin.get("/api/v1/tenants").await.json();
    let ids: Vec<&str> = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["acme", "beta", "default"], "{list}");
    let one = admin.get("/api/v1/tenants/acme").await.json();
    assert_eq!(one["tenant"]["quota"]["used_images"], 1);
    assert_eq!(admin.get("/api/v1/tenants/nope").await.status, 404);
    // Only admins of every tenant manage tenants.
    assert_eq!(acme.get("/api/v1/tenants").await.status, 403);
    assert_eq!(
        acme.json("PATCH", "/api/v1/tenants/acme", &json!({"active": true}))
            .await
            .status,
        403
    );

    // Off: its key is refused at once; on again: it works.
    let r = admin
        .json(
            "PATCH",
            "/api/v1/tenants/acme",
            &json!({"active": false, "name": "Acme (paused)"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tenant"]["active"], false);
    assert_eq!(acme.get("/api/v1/images").await.status, 401);
    let r = admin
        .json(
            "PATCH",
            "/api/v1/tenants/default",
            &json!({"active": false}),
        )
        .await;
    assert_eq!(r.status, 400);
    let s = s.restart(|_| {});
    let admin = Api::admin(&s);
    let acme = admin.with_key(&acme_key);
    assert_eq!(
        acme.get("/api/v1/images").await.status,
        401,
        "still off after a restart"
    );
    let r = admin
        .json("PATCH", "/api/v1/tenants/acme", &json!({"active": true}))
        .await;
    assert_eq!(r.json()["tenant"]["name"], "Acme (paused)");
    assert_eq!(acme.get("/api/v1/images").await.status, 200);
}

/// The browser session: the refresh token lives only in an HttpOnly, SameSite=Strict cookie on
/// the session routes; it rotates; a spent one ends the session; sign-out clears it; the routes
/// need X-Requested-With.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sessions_keep_the_refresh_token_in_a_strict_cookie() {
    let s = server(|_| {});
    let c = common::client();
    let login = |extra: Option<(&'static str, &'static str)>| {
        let mut r = c
            .post(s.url("/api/v1/auth/session"))
            .header("content-type", "application/json")
            .body(json!({"email": EMAIL, "password": PASSWORD}).to_string());
        if let Some((k, v)) = extra {
            r = r.header(k, v);
        }
        r.send()
    };
    let r = login(None).await.unwrap();
    assert_eq!(r.status(), 403, "no X-Requested-With");
    let r = login(Some(("x-requested-with", "refract"))).await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for part in [
        "refract_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/api/v1/auth/session",
        "Max-Age=2592000",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http here: {cookie}");
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "the refresh token never reaches script"
    );
    let access = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        bearer(&s, &access, "GET", "/api/v1/auth/me", None)
            .await
            .status,
        200
    );
    let first = cookie.split(';').next().unwrap().to_string();

    let refresh = |cookie: String| {
        c.post(s.url("/api/v1/auth/session/refresh"))
            .header("x-requested-with", "refract")
            .header("cookie", cookie)
            .send()
    };
    let r = refresh(first.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let second = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(second, first, "the cookie rotates");
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(body["access_token"].is_string() && body.get("refresh_token").is_none());
    // The spent cookie again: 401, the cookie cleared, and the whole session revoked.
    let r = refresh(first).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        refresh(second).await.unwrap().status(),
        401,
        "reuse revoked the family"
    );

    // Sign out ends it at once; over https (per the proxy) the cookie is Secure.
    let r = c
        .post(s.url("/api/v1/auth/session"))
        .header("x-requested-with", "refract")
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/json")
        .body(json!({"email": EMAIL, "password": PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let third = cookie.split(';').next().unwrap().to_string();
    let r = c
        .delete(s.url("/api/v1/auth/session"))
        .header("x-requested-with", "refract")
        .header("cookie", third.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(refresh(third).await.unwrap().status(), 401);
    assert_eq!(
        c.post(s.url("/api/v1/auth/session/refresh"))
            .header("x-requested-with", "x")
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "no cookie"
    );
}

/// `GET /api/v1/users` and `PATCH /api/v1/users/{id}`: an admin of every tenant sees every
/// account, a tenant's admin only its own; disabling ends the sessions at once and refuses the
/// password, enabling lets it in again; nobody disables their own account.
#[tokio::test(flavor = "multi_thread")]
async fn admins_list_disable_and_enable_users() {
    let s = server(|c| c.accounts.registration = refract::access::accounts::Registration::Open);
    let body = json!({"email": "new@example.com", "password": "a fine long password"});
    let r = anon(&s).json("POST", "/api/v1/auth/register", &body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let (root, _) = tokens(&s, EMAIL, PASSWORD).await;
    let (member, refresh) = tokens(&s, "new@example.com", "a fine long password").await;

    let all = bearer(&s, &root, "GET", "/api/v1/users", None).await;
    assert_eq!(all.status, 200, "{}", all.text());
    let users = all.json()["users"].as_array().unwrap().clone();
    let emails: Vec<&str> = users.iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, vec!["root@example.com", "new@example.com"]);
    assert!(users.iter().all(|u| u.get("password_hash").is_none()));
    let id = |email: &str| {
        users.iter().find(|u| u["email"] == email).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (root_id, new_id) = (id("root@example.com"), id("new@example.com"));

    // A tenant's admin: its own accounts only; another tenant's is not found; not itself.
    let own = bearer(&s, &member, "GET", "/api/v1/users", None).await;
    assert_eq!(own.status, 200, "{}", own.text());
    assert_eq!(own.json()["users"].as_array().unwrap().len(), 1);
    let path = |id: &str| format!("/api/v1/users/{id}");
    let r = bearer(
        &s,
        &member,
        "PATCH",
        &path(&root_id),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = bearer(
        &s,
        &member,
        "PATCH",
        &path(&new_id),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    // Bad bodies.
    for bad in [
        json!({"disabled": "yes"}),
        json!({"disabled": true, "role": "admin"}),
        json!({}),
    ] {
        let r = bearer(&s, &root, "PATCH", &path(&new_id), Some(bad)).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.json()["error"]["message"].is_string());
    }

    // Disabled: the session is over and the password no longer works.
    let r = bearer(
        &s,
        &root,
        "PATCH",
        &path(&new_id),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"]["disabled"], true);
    let r = bearer(&s, &member, "GET", "/api/v1/users", None).await;
    assert_eq!(
        r.status,
        401,
        "the access token stops at once: {}",
        r.text()
    );
    assert_eq!(
        login(&s, "new@example.com", "a fine long password")
            .await
            .status,
        401
    );
    let r = anon(&s)
        .json(
            "POST",
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    // Enabled again.
    let r = bearer(
        &s,
        &root,
        "PATCH",
        &path(&new_id),
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(r.json()["user"]["disabled"], false);
    assert_eq!(
        login(&s, "new@example.com", "a fine long password")
            .await
            .status,
        200
    );
    assert_eq!(
        bearer(
            &s,
            &root,
            "PATCH",
            &path("nobody"),
            Some(json!({"disabled": true}))
        )
        .await
        .status,
        404
    );
}
