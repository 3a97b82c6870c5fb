//! Helpers for control-plane tests: a multipart body builder, an API client with a key, and
//! real images made distinct (a PNG text chunk added) so that each upload has its own bytes.

use super::{client, Server, FIXTURES};
use serde_json::Value;

pub const ADMIN: &str = "test-admin-key-0123456789";

/// Start a server with the bootstrap admin key set; `tweak` edits the config.
pub fn start_api(tweak: impl FnOnce(&mut refract::config::Config)) -> Server {
    super::start(|c| {
        c.auth.admin_key = Some(refract::util::secret::Secret(ADMIN.into()));
        // Generous defaults so only rate-limit tests meet the limits.
        c.ratelimit.per_minute = 100_000;
        c.ratelimit.per_hour = 100_000;
        c.ratelimit.per_day = 100_000;
        c.ratelimit.uploads_per_minute = 100_000;
        tweak(c);
    })
}

/// A fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

/// A `multipart/form-data` body.
#[derive(Default)]
pub struct Form {
    parts: Vec<u8>,
}

pub const BOUNDARY: &str = "refract-test-boundary-7MA4YWxkTrZu0gW";

impl Form {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.parts.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
        self
    }

    pub fn file(mut self, name: &str, filename: &str, bytes: &[u8]) -> Self {
        self.parts.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        self.parts.extend_from_slice(bytes);
        self.parts.extend_from_slice(b"\r\n");
        self
    }

    pub fn body(mut self) -> Vec<u8> {
        self.parts
            .extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        self.parts
    }
}

/// A response: status, headers, body.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "status {} not JSON: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        super::header(&self.headers, name)
    }

    /// The error code, checking the error shape.
    pub fn code(&self) -> String {
        super::error_code(&self.body)
    }
}

/// A client of one server with one key (or none).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub key: Option<String>,
}

impl Api {
    pub fn new(server: &Server, key: Option<&str>) -> Self {
        Self {
            base: server.base.clone(),
            key: key.map(str::to_string),
        }
    }

    pub fn admin(server: &Server) -> Self {
        Self::new(server, Some(ADMIN))
    }

    pub fn with_key(&self, key: &str) -> Self {
        Self {
            base: self.base.clone(),
            key: Some(key.to_string()),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = client().request(m, format!("{}{}", self.base, path));
        if let Some(k) = &self.key {
            rb = rb.header("x-api-key", k);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let r = rb.send().await.unwrap();
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.unwrap().to_vec(),
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], None).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, &[], None).await
    }

    pub async fn json(&self, method: &str, path: &str, v: &Value) -> Resp {
        self.send(
            method,
            path,
            &[("content-type", "application/json")],
            Some(serde_json::to_vec(v).unwrap()),
        )
        .await
    }

    pub async fn upload(&self, form: Form) -> Resp {
        self.upload_with(form, &[]).await
    }

    pub async fn upload_with(&self, form: Form, headers: &[(&str, &str)]) -> Resp {
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        let mut h = vec![("content-type", ct.as_str())];
        h.extend_from_slice(headers);
        self.send("POST", "/api/v1/images", &h, Some(form.body()))
            .await
    }

    /// Upload one file; returns its IMAGE (asserting 201).
    pub async fn upload_one(&self, filename: &str, bytes: &[u8], fields: &[(&str, &str)]) -> Value {
        let mut f = Form::new().file("file", filename, bytes);
        for (k, v) in fields {
            f = f.text(k, v);
        }
        let r = self.upload(f).await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["images"][0].clone()
    }

    /// Create a key; returns (id, secret).
    pub async fn create_key(&self, tenant: &str, scopes: &[&str]) -> (String, String) {
        let r = self
            .json(
                "POST",
                "/api/v1/keys",
                &serde_json::json!({"name": format!("{tenant} key"), "tenant": tenant, "scopes": scopes}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let k = &r.json()["key"];
        (
            k["id"].as_str().unwrap().to_string(),
            k["key"].as_str().unwrap().to_string(),
        )
    }

    /// Ids of a listing.
    pub async fn ids(&self, query: &str) -> Vec<String> {
        let r = self.get(&format!("/api/v1/images?{query}")).await;
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        r.json()["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A real PNG with a `tEXt` chunk `keyword`=`text` added after IHDR (as Stable Diffusion web
/// UIs and ComfyUI write generation info). Different text = different bytes, same pixels.
pub fn png_with_text(png: &[u8], keyword: &str, text: &str) -> Vec<u8> {
    let ihdr_end = 8 + 8 + 13 + 4;
    let mut data = keyword.as_bytes().to_vec();
    data.push(0);
    data.extend_from_slice(text.as_bytes());
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    let mut typed = b"tEXt".to_vec();
    typed.extend_from_slice(&data);
    chunk.extend_from_slice(&typed);
    chunk.extend_from_slice(&crc32(&typed).to_be_bytes());
    let mut out = png[..ihdr_end].to_vec();
    out.extend(chunk);
    out.extend_from_slice(&png[ihdr_end..]);
    out
}

/// A distinct real image: the small astronaut-free dice PNG with a unique text chunk.
pub fn distinct_png(n: usize) -> Vec<u8> {
    png_with_text(
        &fixture("dice-800x600-alpha.png"),
        "Comment",
        &format!("copy {n}"),
    )
}

/// A real portrait image: a 300x500 crop of the dice photo, as PNG.
pub fn portrait_png() -> Vec<u8> {
    let img = image::load_from_memory(&fixture("dice-800x600-alpha.png")).unwrap();
    let crop = img.crop_imm(250, 50, 300, 500);
    let mut out = std::io::Cursor::new(Vec::new());
    crop.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A PNG header claiming `w`×`h` pixels (valid signature and CRCs, no real image data).
pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    let idat = b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01";
    out.extend_from_slice(&((idat.len() - 4) as u32).to_be_bytes());
    out.extend_from_slice(idat);
    out.extend_from_slice(&crc32(idat).to_be_bytes());
    let iend = b"IEND";
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(iend);
    out.extend_from_slice(&crc32(iend).to_be_bytes());
    out
}

/// Every file under `dir` (recursively), relative paths.
pub fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                for f in files_under(&p) {
                    out.push(format!("{}/{f}", e.file_name().to_string_lossy()));
                }
            } else {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}
