//! The web interface's files, built into the binary (`assets/ui/`): pages at their paths
//! (`/gallery`), everything else at `/ui/assets/<name>`. A page names its files as
//! `{{name}}`, replaced at start by `/ui/assets/<name>?v=<hash>`: a file is cached for a year
//! under its hashed URL, and a new build changes the URL. Pages are `no-cache` with an ETag.
//! Every answer carries the strict CSP of `response::ui_file` (no inline script or style, this
//! origin only).

use crate::http::response::{self, Body};
use bytes::Bytes;
use http::Response;
use std::collections::HashMap;
use std::sync::OnceLock;

/// One file of `assets/ui/`: `(name, content type, bytes)`.
macro_rules! file {
    ($name:literal, $ct:literal) => {
        (
            $name,
            $ct,
            include_bytes!(concat!("../../assets/ui/", $name)) as &[u8],
        )
    };
}

/// Every file.
const FILES: &[(&str, &str, &[u8])] = &[
    file!("gallery.html", "text/html; charset=utf-8"),
    file!("app.html", "text/html; charset=utf-8"),
    file!("login.html", "text/html; charset=utf-8"),
    file!("albums.html", "text/html; charset=utf-8"),
    file!("admin.html", "text/html; charset=utf-8"),
    file!("shared.html", "text/html; charset=utf-8"),
    file!("albums.js", "text/javascript; charset=utf-8"),
    file!("admin.js", "text/javascript; charset=utf-8"),
    file!("shared.js", "text/javascript; charset=utf-8"),
    file!("dom.js", "text/javascript; charset=utf-8"),
    file!("gallery.js", "text/javascript; charset=utf-8"),
    file!("app.js", "text/javascript; charset=utf-8"),
    file!("login.js", "text/javascript; charset=utf-8"),
    file!("grid.js", "text/javascript; charset=utf-8"),
    file!("session.js", "text/javascript; charset=utf-8"),
    file!("thumbhash.js", "text/javascript; charset=utf-8"),
    file!("ui.css", "text/css; charset=utf-8"),
    file!("LICENSE-thumbhash.txt", "text/plain; charset=utf-8"),
];

/// Pages: path → file.
const PAGES: &[(&str, &str)] = &[
    ("/gallery", "gallery.html"),
    ("/ui/", "app.html"),
    ("/ui/login", "login.html"),
    ("/ui/albums", "albums.html"),
    ("/ui/admin", "admin.html"),
    ("/ui/shared", "shared.html"),
];

struct File {
    content_type: &'static str,
    bytes: Bytes,
    etag: String,
    hash: String,
}

fn files() -> &'static HashMap<&'static str, File> {
    static FILES_BY_NAME: OnceLock<HashMap<&'static str, File>> = OnceLock::new();
    FILES_BY_NAME.get_or_init(|| {
        let hashed: HashMap<&str, String> = FILES
            .iter()
            .map(|(n, _, b)| (*n, blake3::hash(b).to_hex()[..12].to_string()))
            .collect();
        FILES
            .iter()
            .map(|(name, ct, raw)| {
                let mut bytes = raw.to_vec();
                if name.ends_with(".html") {
                    let mut text = String::from_utf8_lossy(raw).into_owned();
                    for (n, h) in &hashed {
                        text =
                            text.replace(&format!("{{{{{n}}}}}"), &format!("/ui/assets/{n}?v={h}"));
                    }
                    bytes = text.into_bytes();
                }
                let hash = hashed.get(name).cloned().unwrap_or_default();
                let etag = format!("\"{}\"", &blake3::hash(&bytes).to_hex()[..16]);
                (
                    *name,
                    File {
                        content_type: ct,
                        bytes: Bytes::from(bytes),
                        etag,
                        hash,
                    },
                )
            })
            .collect()
    })
}

/// Whether `path` is a page or a file of the interface.
pub fn is_ui_path(path: &str) -> bool {
    PAGES.iter().any(|(p, _)| *p == path) || path.starts_with("/ui/assets/")
}

/// Serve a page or a file; `None` when there is no such one.
pub fn serve(
    path: &str,
    query: Option<&str>,
    if_none_match: Option<&str>,
    head: bool,
) -> Option<Response<Body>> {
    if let Some((_, name)) = PAGES.iter().find(|(p, _)| *p == path) {
        let f = files().get(name)?;
        return Some(response::ui_file(
            f.content_type,
            f.bytes.clone(),
            &f.etag,
            "no-cache",
            if_none_match,
            head,
        ));
    }
    let name = path.strip_prefix("/ui/assets/")?;
    let f = files().get(name)?;
    // Immutable under the URL the pages use; a bare or stale URL revalidates.
    let versioned = query.is_some_and(|q| q == format!("v={}", f.hash));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Some(response::ui_file(
        f.content_type,
        f.bytes.clone(),
        &f.etag,
        cache,
        if_none_match,
        head,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_name_their_files_by_hash() {
        let page = &files()["gallery.html"];
        let text = String::from_utf8_lossy(&page.bytes);
        assert!(!text.contains("{{"), "every placeholder is replaced");
        let js = &files()["gallery.js"];
        assert!(text.contains(&format!("/ui/assets/gallery.js?v={}", js.hash)));
        assert!(is_ui_path("/gallery") && is_ui_path("/ui/assets/ui.css") && !is_ui_path("/ui"));
        assert!(serve("/ui/assets/nope.js", None, None, false).is_none());
        // No inline script anywhere (the CSP would refuse it).
        for (name, _, bytes) in FILES {
            if name.ends_with(".html") {
                let t = String::from_utf8_lossy(bytes);
                assert!(
                    !t.contains("<script>") && !t.contains("style=") && !t.contains("onclick"),
                    "{name}"
                );
            }
        }
    }
}
