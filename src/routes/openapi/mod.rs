//! The OpenAPI 3.1 document (`GET /openapi.json`) and the interactive docs (`GET /docs`).
//!
//! The document is generated, not written: its API paths and methods are the rows of the route
//! table (`routes::API`), each operation's scope comes from `Op::scope`, its parameters,
//! bodies and answers from `ops::doc`, and the `/img` parameters from the transform parser's
//! own list of names (a test fails when one is undocumented). The shapes of the bodies are in
//! `schemas.json`; `tests/openapi.rs` checks every live answer against them with a fuzzer.
//!
//! The docs page is RapiDoc (MIT, vendored in `assets/docs/`), served from the binary: no
//! third-party CDN.

mod ops;

use super::API;
use crate::control::Op;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// The document, built once.
pub fn document() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_vec(&build()).unwrap_or_default())
}

/// The `/docs` page.
pub const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Refract API</title>
<link rel="icon" href="data:,">
<script type="module" src="/docs/rapidoc-min.js"></script>
</head>
<body>
<rapi-doc spec-url="/openapi.json" render-style="read" show-header="false" allow-try="true"
  allow-server-selection="false" theme="light" schema-style="table"
  load-fonts="false" regular-font="system-ui, sans-serif" mono-font="ui-monospace, monospace"></rapi-doc>
</body>
</html>
"#;

/// RapiDoc 9.3.8 (`assets/docs/rapidoc-min.js`).
pub const RAPIDOC_JS: &[u8] = include_bytes!("../../../assets/docs/rapidoc-min.js");

/// The statuses every API operation may answer, each with the `Error` body.
const COMMON_ERRORS: &[u16] = &[400, 401, 403, 404, 405, 429, 503];

fn build() -> Value {
    let mut paths = Map::new();
    for route in API {
        let path = format!("/api/v1{}", route.path);
        let entry = paths
            .entry(path.clone())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut entry = entry;
        entry.insert(
            route.method.to_ascii_lowercase(),
            operation(route.method, &path, route.op),
        );
        paths.insert(path, Value::Object(entry));
    }
    for (path, item) in delivery_paths() {
        paths.insert(path.into(), item);
    }
    let schemas: Value = serde_json::from_str(include_str!("schemas.json")).unwrap_or_default();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Refract",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "On-the-fly image delivery (`/img`) and its control plane (`/api/v1`). \
                Authenticate with an API key (`X-API-Key` or `Authorization: Bearer rfk_…`) or a \
                user's access token from `POST /api/v1/auth/login` (`Authorization: Bearer <JWT>`). \
                Every error is JSON: `{\"success\": false, \"error\": {\"code\", \"message\", \"details\"}}`.",
            "license": {"name": "MIT OR Apache-2.0"}
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "images"}, {"name": "albums"}, {"name": "shares"}, {"name": "avatars"},
            {"name": "tags"}, {"name": "keys"}, {"name": "tenants"}, {"name": "webhooks"},
            {"name": "auth"}, {"name": "audit"}, {"name": "admin"}, {"name": "random"}, {"name": "library"},
            {"name": "delivery"}, {"name": "server"}
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                    "description": "An API key (`rfk_…`)."},
                "BearerKey": {"type": "http", "scheme": "bearer",
                    "description": "An API key as a bearer token."},
                "BearerJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "A user's access token (HS256, 15 minutes by default)."}
            }
        }
    })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn reason(status: u16) -> &'static str {
    crate::http::response::reason(status)
}

fn operation(method: &str, path: &str, op: Op) -> Value {
    let d = ops::doc(op);
    let mut params: Vec<Value> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({"name": name, "in": "path", "required": true,
                   "schema": {"type": "string", "minLength": 1}})
        })
        .collect();
    for p in d.query {
        params.push(json!({
            "name": p.name,
            "in": "query",
            "required": p.required,
            "description": p.description,
            "schema": serde_json::from_str::<Value>(p.schema).unwrap_or_else(|_| json!({})),
        }));
    }
    let mut responses = Map::new();
    let (status, ctype, schema) = d.ok;
    let body = match (ctype, schema) {
        (c, "") => json!({ c: {"schema": {"type": "string"}} }),
        (c, s) => json!({ c: {"schema": {"$ref": format!("#/components/schemas/{s}")}} }),
    };
    responses.insert(
        status.to_string(),
        json!({"description": reason(status), "content": body}),
    );
    let mut errors: Vec<u16> = COMMON_ERRORS.iter().chain(d.errors).copied().collect();
    errors.sort_unstable();
    errors.dedup();
    for e in errors {
        responses.insert(e.to_string(), error_response(reason(e)));
    }
    if op == Op::GetAvatar {
        responses.insert(
            "302".into(),
            json!({"description": "Found: `Location` is the avatar's `/img` URL (with the transform asked for)."}),
        );
    }
    responses.insert("default".into(), error_response("Another error"));
    let mut o = json!({
        "operationId": operation_id(method, op),
        "summary": d.summary,
        "tags": [d.tag],
        "parameters": params,
        "responses": responses,
    });
    match op.required_scope() {
        Some(scope) => {
            o["security"] = json!([{"ApiKey": []}, {"BearerKey": []}, {"BearerJwt": []}]);
            o["description"] = json!(format!("Needs the `{scope}` scope."));
        }
        None => o["security"] = json!([{}, {"ApiKey": []}, {"BearerKey": []}, {"BearerJwt": []}]),
    }
    if let Some((ctype, schema)) = d.body {
        o["requestBody"] = json!({
            "required": !optional_body(op),
            "content": { ctype: {"schema": {"$ref": format!("#/components/schemas/{schema}")}} }
        });
    }
    o
}

/// Operations whose JSON body may be empty.
fn optional_body(op: Op) -> bool {
    matches!(
        op,
        Op::Logout | Op::CreateShare | Op::CreateAlbumToken | Op::PatchWebhook | Op::ValidateKey
    )
}

/// `getImage`, and the method for the operations two routes share (`putAvatar` / `postAvatar`).
fn operation_id(method: &str, op: Op) -> String {
    let name = format!("{op:?}");
    let shared = API.iter().filter(|r| r.op == op).count() > 1;
    let mut id = String::new();
    if shared {
        id.push_str(&method.to_ascii_lowercase());
    }
    for (i, c) in name.chars().enumerate() {
        if i == 0 && !shared {
            id.push(c.to_ascii_lowercase());
        } else {
            id.push(c);
        }
    }
    id
}

/// A documented `/img` parameter: (canonical name, JSON Schema, description).
const IMG_PARAMS: &[(&str, &str, &str)] = &[
    (
        "w",
        r#"{"type":"integer","minimum":1}"#,
        "Width in pixels (alias `width`).",
    ),
    (
        "h",
        r#"{"type":"integer","minimum":1}"#,
        "Height in pixels (alias `height`).",
    ),
    (
        "dpr",
        r#"{"type":"number","minimum":1,"maximum":4}"#,
        "Device pixel ratio: multiplies `w` and `h`.",
    ),
    (
        "fit",
        r#"{"type":"string","enum":["cover","crop","contain","fill","inside","outside","clip"]}"#,
        "How the image fits the `w`×`h` box.",
    ),
    ("enlarge", r#"{"type":"boolean"}"#, "Allow upscaling."),
    (
        "q",
        r#"{"type":"integer","minimum":1,"maximum":100}"#,
        "Quality (alias `quality`).",
    ),
    (
        "fm",
        r#"{"type":"string","enum":["auto","avif","webp","jpeg","jpg","png","gif"]}"#,
        "Output format; `auto` negotiates from `Accept` (aliases `f`, `format`).",
    ),
    (
        "thumb",
        r#"{"type":"boolean"}"#,
        "The configured thumbnail box.",
    ),
    (
        "bg",
        r#"{"type":"string"}"#,
        "Background colour (hex or name) for padding and flattening (alias `background`).",
    ),
    (
        "metadata",
        r#"{"type":"string","enum":["none","copyright","keep"]}"#,
        "Which EXIF a JPEG output keeps.",
    ),
    (
        "compression",
        r#"{"type":"string","enum":["fast"]}"#,
        "Trade size for encoding speed.",
    ),
    (
        "anim",
        r#"{"type":"boolean"}"#,
        "Keep animation (`false`: the first frame).",
    ),
    (
        "frame",
        r#"{"type":"integer","minimum":0}"#,
        "Serve one frame of an animation.",
    ),
    (
        "g",
        r#"{"type":"string"}"#,
        "Gravity: `center`, `north`, …, `auto`, `face`, or `x,y` in 0..1 (alias `gravity`).",
    ),
    (
        "crop",
        r#"{"type":"string"}"#,
        "A region `x,y,w,h` of the source, cut before resizing.",
    ),
    (
        "trim",
        r#"{"type":"string"}"#,
        "Trim a uniform border (a threshold) or `top;right;bottom;left` pixels.",
    ),
    (
        "rot",
        r#"{"type":"integer","enum":[0,90,180,270,360]}"#,
        "Rotate clockwise (alias `rotate`).",
    ),
    (
        "flip",
        r#"{"type":"string","enum":["h","v","hv","vh"]}"#,
        "Mirror horizontally, vertically or both.",
    ),
    (
        "blur",
        r#"{"type":"number","minimum":0,"maximum":250}"#,
        "Gaussian blur sigma.",
    ),
    (
        "sharpen",
        r#"{"type":"number","minimum":0,"maximum":10}"#,
        "Sharpen amount.",
    ),
    (
        "pixelate",
        r#"{"type":"integer","minimum":1}"#,
        "Pixelate with blocks of this many pixels.",
    ),
    (
        "brightness",
        r#"{"type":"number"}"#,
        "Brightness factor (1 = unchanged).",
    ),
    (
        "contrast",
        r#"{"type":"number"}"#,
        "Contrast factor (1 = unchanged).",
    ),
    ("gamma", r#"{"type":"number"}"#, "Gamma (1 = unchanged)."),
    (
        "saturation",
        r#"{"type":"number"}"#,
        "Saturation factor (1 = unchanged).",
    ),
    (
        "wm",
        r#"{"type":"string"}"#,
        "A configured watermark by name (alias `watermark`).",
    ),
    (
        "t",
        r#"{"type":"string"}"#,
        "Cache buster: accepted and ignored.",
    ),
    (
        "v",
        r#"{"type":"string"}"#,
        "Cache buster: accepted and ignored.",
    ),
];

fn img_params() -> Vec<Value> {
    let mut out: Vec<Value> = IMG_PARAMS
        .iter()
        .map(|(name, schema, description)| {
            json!({"name": name, "in": "query", "required": false, "description": description,
                   "schema": serde_json::from_str::<Value>(schema).unwrap_or_else(|_| json!({}))})
        })
        .collect();
    for (name, description) in [
        (
            "preset",
            "A configured preset by name: its parameters, under any given here.",
        ),
        (
            "s",
            "The URL's signature, when signing keys are configured.",
        ),
        (
            "expires",
            "Unix seconds after which a signed URL stops working.",
        ),
    ] {
        out.push(json!({"name": name, "in": "query", "required": false,
                        "description": description, "schema": {"type": "string"}}));
    }
    out
}

/// `/img`, `/cdn-cgi/image`, `/s`, `/random` and the server's own routes.
fn delivery_paths() -> Vec<(&'static str, Value)> {
    let image_answers = json!({
        "200": {"description": "The image (or a byte range of it: 206).",
                "headers": {
                    "ETag": {"schema": {"type": "string"}},
                    "Cache-Control": {"schema": {"type": "string"}},
                    "Vary": {"schema": {"type": "string"}}},
                "content": {"image/*": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
        "206": {"description": "A byte range of the image.",
                "content": {"image/*": {"schema": {"type": "string"}}}},
        "304": {"description": "Not modified (`If-None-Match` / `If-Modified-Since`)."},
        "400": error_response("A parameter is invalid (`details.param` names it)"),
        "403": error_response("A signature is missing, wrong or expired, or the image is private"),
        "404": error_response("No such image"),
        "410": error_response("The image has expired"),
        "413": error_response("The source is over the byte or pixel limits"),
        "415": error_response("The source is not an image Refract decodes"),
        "416": error_response("The range is not satisfiable"),
        "422": error_response("The source cannot be decoded"),
        "429": error_response("Rate limited (`Retry-After`)"),
        "503": error_response("Too busy (`Retry-After`)"),
        "504": error_response("The origin did not answer in time"),
        "default": error_response("Another error"),
    });
    let key = json!({"name": "key", "in": "path", "required": true,
                     "description": "The image's storage key (path segments, percent-encoded).",
                     "schema": {"type": "string", "minLength": 1}});
    let mut img_params = img_params();
    img_params.insert(0, key);
    let text_ok = |d: &str| json!({"description": d, "content": {"text/plain": {"schema": {"type": "string"}}}});
    vec![
        (
            "/img/{key}",
            json!({"get": {
                "operationId": "getImageBytes",
                "summary": "An image, transformed on the fly and encoded in the best format the client accepts.",
                "tags": ["delivery"],
                "security": [{}],
                "parameters": img_params,
                "responses": image_answers.clone()}}),
        ),
        (
            "/cdn-cgi/image/{options}/{source}",
            json!({"get": {
                "operationId": "getCdnCgiImage",
                "summary": "Cloudflare's URL form: comma-separated options (`width=800,format=auto`), then the source key.",
                "tags": ["delivery"],
                "security": [{}],
                "parameters": [
                    {"name": "options", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "source", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": image_answers.clone()}}),
        ),
        (
            "/s/{token}",
            json!({"get": {
                "operationId": "getSharedImage",
                "summary": "An image through a share link (`/img` parameters apply).",
                "tags": ["delivery"],
                "security": [{}],
                "parameters": [{"name": "token", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": image_answers}}),
        ),
        (
            "/random",
            json!({"get": {
                "operationId": "randomRedirect",
                "summary": "A 302 to a random public image (`tag`, `orientation` and `/img` parameters).",
                "tags": ["random"],
                "security": [{}],
                "parameters": [
                    {"name": "tag", "in": "query", "schema": {"type": "string"}},
                    {"name": "orientation", "in": "query", "schema": {"type": "string", "enum": ["landscape", "portrait", "square"]}}],
                "responses": {"302": {"description": "Found: `Location` is the image's URL."},
                              "404": error_response("No image matches"),
                              "default": error_response("Another error")}}}),
        ),
        (
            "/health",
            json!({"get": {"operationId": "health", "summary": "Liveness.", "tags": ["server"], "security": [{}],
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}}}}}}}),
        ),
        (
            "/ready",
            json!({"get": {"operationId": "ready", "summary": "Readiness for load balancers: the database and the storage answer (each within 2 s).", "tags": ["server"], "security": [{}],
                "responses": {
                    "200": {"description": "Ready", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}},
                    "503": {"description": "The database or the storage is unreachable", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}}}}}),
        ),
        (
            "/version",
            json!({"get": {"operationId": "version", "summary": "The server's name and version.", "tags": ["server"], "security": [{}],
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["name", "version"],
                    "properties": {"name": {"type": "string"}, "version": {"type": "string"}}}}}}}}}),
        ),
        (
            "/metrics",
            json!({"get": {"operationId": "metrics", "summary": "Prometheus metrics.", "tags": ["server"], "security": [{}],
                "responses": {"200": text_ok("Prometheus text format")}}}),
        ),
        (
            "/openapi.json",
            json!({"get": {"operationId": "openapi", "summary": "This document.", "tags": ["server"], "security": [{}],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}}),
        ),
        (
            "/docs",
            json!({"get": {"operationId": "docs", "summary": "Interactive docs for this document.", "tags": ["server"], "security": [{}],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_and_img_parameter_is_documented() {
        let doc: Value = serde_json::from_slice(document()).unwrap();
        for r in API {
            let op = &doc["paths"][format!("/api/v1{}", r.path)][r.method.to_ascii_lowercase()];
            assert!(op["operationId"].is_string(), "{} {}", r.method, r.path);
        }
        for name in crate::pipeline::transform::canonical_names() {
            assert!(
                IMG_PARAMS.iter().any(|(n, _, _)| *n == name),
                "/img parameter {name} is not in the OpenAPI document"
            );
        }
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc: Value = serde_json::from_slice(document()).unwrap();
        let text = doc.to_string();
        let mut ids = std::collections::HashSet::new();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert!(
                doc["components"]["schemas"][&name].is_object(),
                "no schema {name}"
            );
        }
        for (_, item) in doc["paths"].as_object().unwrap() {
            for (_, op) in item.as_object().unwrap() {
                assert!(ids.insert(op["operationId"].as_str().unwrap().to_string()));
            }
        }
    }
}
