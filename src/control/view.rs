//! How an image looks in the API (the IMAGE object) and the absolute URLs in it.

use crate::delivery::signing::Signer;
use crate::store::{AlbumRecord, AvatarRecord, ImageRecord};
use http::HeaderMap;
use serde_json::{json, Value};

pub use crate::util::clock::{parse_rfc3339, rfc3339};

/// The absolute base of returned URLs (`server.public_url`, else `http://<Host>`), and the
/// signer that signs them when signing keys are configured.
#[derive(Debug, Clone)]
pub struct Base {
    pub root: String,
    pub signer: Signer,
}

impl Base {
    /// From `server.public_url` (`public_url`), else the request's `Host`, else `listen`.
    pub fn of(
        public_url: Option<&str>,
        listen: &str,
        signer: &Signer,
        headers: &HeaderMap,
    ) -> Self {
        let signer = signer.clone();
        if let Some(u) = public_url {
            return Self {
                root: u.trim_end_matches('/').to_string(),
                signer,
            };
        }
        let host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 255
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .map_or_else(|| listen.to_string(), str::to_string);
        Self {
            root: format!("http://{host}"),
            signer,
        }
    }

    /// `<base>/img/<key>[?query]` with the key's segments escaped, signed when a key is set.
    pub fn image_url(&self, storage_key: &str, query: &str) -> String {
        format!(
            "{}{}",
            self.root,
            self.signer.image_path(storage_key, query)
        )
    }
}

/// The IMAGE object.
pub fn image(r: &ImageRecord, base: &Base) -> Value {
    let url = base.image_url(&r.storage_key, "");
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    json!({
        "id": r.id,
        "tenant": r.tenant,
        "key": r.storage_key,
        "url": url,
        "filename": r.filename,
        "content_type": r.content_type,
        "format": r.format,
        "bytes": r.bytes,
        "width": r.width,
        "height": r.height,
        "orientation": r.orientation,
        "has_alpha": r.has_alpha,
        "blake3": r.blake3,
        "tags": r.tags,
        "description": r.description,
        "is_private": r.is_private,
        "owner": r.owner,
        "created_at": rfc3339(r.created_at),
        "expires_at": r.expires_at.map(rfc3339),
        "urls": {
            "original": url,
            "webp": base.image_url(&r.storage_key, "fm=webp"),
            "avif": base.image_url(&r.storage_key, "fm=avif"),
            "thumb": base.image_url(&r.storage_key, "thumb=1"),
        },
        "exif": parse(&r.exif),
        "generation_info": r.generation_info.as_deref().map_or(Value::Null, parse),
        "generation": r
            .generation_info
            .as_deref()
            .and_then(|g| serde_json::from_str::<serde_json::Map<String, Value>>(g).ok())
            .and_then(|g| crate::library::meta::geninfo::parse(&g))
            .map_or(Value::Null, |p| json!(p)),
        "placeholder": parse(&r.placeholder),
        "source": if r.source.is_empty() { "upload" } else { r.source.as_str() },
        "folder": r.storage_key.rsplit_once('/').map_or("", |(f, _)| f),
        "file_name": r.storage_key.rsplit('/').next().unwrap_or(&r.storage_key),
        "file_mtime": r.file_mtime.map(rfc3339),
    })
}

/// The ALBUM object.
pub fn album(a: &AlbumRecord) -> serde_json::Value {
    json!({
        "id": a.id,
        "tenant": a.tenant,
        "name": a.name,
        "description": a.description,
        "is_public": a.is_public,
        "external_id": a.external_id,
        "cover_image_id": a.cover_image_id,
        "owner": a.owner,
        "image_count": a.image_count,
        "created_at": rfc3339(a.created_at),
        "updated_at": rfc3339(a.updated_at),
    })
}

/// The PUBLIC_IMAGE object (the gallery, no key): what a page needs to show a public image,
/// nothing about its owner, bytes or storage.
pub fn public_image(r: &ImageRecord, base: &Base) -> Value {
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    json!({
        "id": r.id,
        "url": base.image_url(&r.storage_key, ""),
        "path": base.signer.image_path(&r.storage_key, ""),
        "width": r.width,
        "height": r.height,
        "description": r.description,
        "tags": r.tags,
        "created_at": rfc3339(r.created_at),
        "placeholder": parse(&r.placeholder),
    })
}

/// The AVATAR object.
pub fn avatar(a: &AvatarRecord) -> Value {
    json!({
        "user_id": a.user_id,
        "format": a.format,
        "bytes": a.bytes,
        "width": a.width,
        "height": a.height,
        "updated_at": rfc3339(a.updated_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped_in_urls() {
        let mut b = Base {
            root: "https://img.example.com".into(),
            signer: Signer::default(),
        };
        assert_eq!(
            b.image_url("default/a b?.jpg", ""),
            "https://img.example.com/img/default/a%20b%3F.jpg"
        );
        assert_eq!(
            b.image_url("a.jpg", "w=1"),
            "https://img.example.com/img/a.jpg?w=1"
        );
        b.signer = Signer::new(&crate::delivery::signing::SecurityConfig {
            signing_keys: vec![crate::util::secret::Secret("k".into())],
            ..Default::default()
        });
        let signed = b.image_url("a.jpg", "w=1");
        assert!(
            signed.starts_with("https://img.example.com/img/a.jpg?w=1&s="),
            "{signed}"
        );
    }
}
