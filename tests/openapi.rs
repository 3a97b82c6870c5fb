//! The OpenAPI document and the docs page, from outside: `/openapi.json` validated by
//! `openapi-spec-validator` (PyPI), the live server fuzzed from it by `schemathesis` (PyPI) with
//! a key (no 5xx, every answer in the document: status, content type and body schema), and
//! `/docs` opened in headless Chromium (every operation rendered, nothing fetched from elsewhere).
//! `.ci/test.sh` installs the Python tools, playwright-core and Chromium.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{distinct_png, start_api, Api, ADMIN};
use serde_json::Value;
use std::process::Command;

/// The Python with `openapi-spec-validator` and `schemathesis` (.ci/test.sh sets it).
fn python() -> String {
    std::env::var("REFRACT_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn server() -> common::Server {
    start_api(|c| {
        c.accounts.admin_email = Some("root@example.com".into());
        c.accounts.admin_password = Some(refract::util::secret::Secret(
            "a long admin password".into(),
        ));
        // The fuzzed webhook points at a closed local port.
        c.webhooks.allow_http = true;
        c.webhooks.allow_networks = vec!["127.0.0.1/32".into()];
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_openapi_and_covers_the_route_table() {
    let s = server();
    let r = common::client()
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        common::header(r.headers(), "content-type"),
        Some("application/json")
    );
    let doc: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, method) in [
        ("/api/v1/images", "get"),
        ("/api/v1/images", "post"),
        ("/api/v1/tenants/{tenant}", "patch"),
        ("/api/v1/auth/login", "post"),
        ("/img/{key}", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    for scheme in ["ApiKey", "BearerKey", "BearerJwt"] {
        assert!(doc["components"]["securitySchemes"][scheme].is_object());
    }
    // Every error answer is the Error body.
    let e = &doc["paths"]["/api/v1/images/{id}"]["get"]["responses"]["404"];
    assert_eq!(
        e["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = Command::new(python())
        .args(["-m", "openapi_spec_validator", "--schema", "3.1.0"])
        .arg(&file)
        .output()
        .expect("python (REFRACT_TEST_PYTHON) with openapi-spec-validator");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openapi-spec-validator: {said}");
    assert!(said.contains("OK"), "{said}");
}

/// Run schemathesis from `dir` (where its `schemathesis.toml` is) against the server; returns
/// its exit status's success, everything it printed, and its "Test cases" line.
fn schemathesis(
    dir: &std::path::Path,
    s: &common::Server,
    extra: &[&str],
) -> (bool, String, String) {
    let bin = std::path::Path::new(&python()).with_file_name("schemathesis");
    let out = Command::new(if bin.exists() { bin.into_os_string() } else { "schemathesis".into() })
        .current_dir(dir)
        .args([
            "run",
            &s.url("/openapi.json"),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--seed",
            "1",
            // One worker: with two, CPython 3.11's `ast` module can race inside hypothesis
            // ("AST constructor recursion depth mismatch"), an error of the tool, not of the API.
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-shrink",
            "--suppress-health-check",
            "all",
        ])
        .args(extra)
        .env("NO_COLOR", "1")
        .output()
        .expect("schemathesis (REFRACT_TEST_PYTHON's venv)");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let cases = said
        .lines()
        .skip_while(|l| !l.starts_with("Test cases:"))
        .nth(1)
        .unwrap_or("")
        .trim()
        .to_string();
    (out.status.success(), said, cases)
}

/// Schemathesis against the live server: examples, coverage (edge and invalid values) and
/// fuzzing phases over every operation, first with the admin key (path parameters naming a
/// real image, album, webhook and tenant, so the fuzzer gets past the 404s), then the account
/// routes with an admin's access token. Any 5xx, an undocumented status or content type, or a
/// body that is not what the document says fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let s = server();
    let api = Api::admin(&s);
    let img = api
        .upload_one("a.png", &distinct_png(1), &[("tags", "cat")])
        .await;
    let (id, key) = (img["id"].as_str().unwrap(), img["key"].as_str().unwrap());
    let r = api
        .json(
            "POST",
            "/api/v1/albums",
            &serde_json::json!({"name": "fuzzed", "is_public": true}),
        )
        .await;
    let album = r.json()["album"]["id"].as_str().unwrap().to_string();
    let r = api
        .json(
            "POST",
            "/api/v1/webhooks",
            &serde_json::json!({"url": "http://127.0.0.1:9/refract", "events": ["*"]}),
        )
        .await;
    let hook = r.json()["webhook"]["id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("schemathesis.toml"),
        format!(
            r#"
[[operations]]
include-path-regex = "^/api/v1/images/"
parameters = {{ "path.id" = "{id}" }}

[[operations]]
include-path-regex = "^/api/v1/albums/"
parameters = {{ "path.id" = "{album}" }}

[[operations]]
include-path-regex = "^/api/v1/webhooks/"
parameters = {{ "path.id" = "{hook}" }}

[[operations]]
include-path-regex = "^/api/v1/tenants/"
parameters = {{ "path.tenant" = "acme" }}

[[operations]]
include-path = "/img/{{key}}"
parameters = {{ "path.key" = "{key}" }}
"#
        ),
    )
    .unwrap();
    let admin_header = format!("X-API-Key: {ADMIN}");
    let (ok, said, cases) = schemathesis(dir.path(), &s, &["--header", &admin_header]);
    eprintln!("schemathesis, admin key: {cases}");
    assert!(ok, "schemathesis failed:\n{said}");
    assert!(
        said.contains("Tested: 64") || said.contains("Tested:"),
        "{said}"
    );
    assert!(
        cases.contains("generated") && !cases.contains("failed"),
        "{said}"
    );

    // The account routes, as a logged-in admin.
    let r = Api::new(&s, None)
        .json(
            "POST",
            "/api/v1/auth/login",
            &serde_json::json!({"email": "root@example.com", "password": "a long admin password"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let bearer = format!(
        "Authorization: Bearer {}",
        r.json()["access_token"].as_str().unwrap()
    );
    let (ok, said, cases) = schemathesis(
        dir.path(),
        &s,
        &[
            "--header",
            &bearer,
            "--include-path-regex",
            "^/api/v1/(auth|images|stats|tags)",
        ],
    );
    eprintln!("schemathesis, access token: {cases}");
    assert!(ok, "schemathesis (access token) failed:\n{said}");
    assert!(
        cases.contains("generated") && !cases.contains("failed"),
        "{said}"
    );
}

/// `/docs` in a real browser: RapiDoc renders every operation of the document, and the page
/// loads nothing from anywhere but this server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_every_operation_from_this_server_only() {
    let s = server();
    let r = common::client().get(s.url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = common::header(r.headers(), "content-security-policy")
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/docs_page.mjs");
    let out = Command::new("node")
        .arg(script)
        .arg(&s.base)
        .output()
        .expect("node");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "docs page: {said}{}\n(.ci/test.sh installs chromium and playwright-core; NODE_PATH must hold it)",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(said.trim()).unwrap();
    let requests: Vec<&str> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        requests.iter().any(|u| u.ends_with("/openapi.json")),
        "{requests:?}"
    );
    common::assert_browser_report(&report, &s.base);
    assert_eq!(report["console_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["title"], "Refract");
    let doc: Value = serde_json::from_slice(refract::routes::openapi::document()).unwrap();
    let ops: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    let rendered = report["operations"].as_array().unwrap().len();
    assert_eq!(rendered, ops, "rendered {rendered} of {ops}: {report}");
}
