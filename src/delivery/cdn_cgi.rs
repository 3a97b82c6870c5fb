//! `GET`/`HEAD /cdn-cgi/image/<OPTIONS>/<SOURCE>`: Cloudflare's URL form, so that URLs move
//! between Cloudflare Image Transformations and Refract unchanged.
//!
//! The options are translated into the `/img` parameters and go through the one transform
//! parser (`pipeline::transform`), so the same transform gives the same cache key and ETag in
//! both forms. Only what means something else here is translated: `fit` (Cloudflare's
//! `scale-down`, `contain`, `cover`, `crop`, `pad`, `squeeze`), and `scale-down` is the default.
//! Cloudflare options Refract does not implement answer 400 naming them.
//!
//! Invariants: the source is a storage key (an absolute `http(s)://` source only under the
//! configured HTTP origin); signatures cover the request's own path and query (so the options
//! are signed as part of the path); no IO here beyond `img::serve`.

use super::img;
use super::Delivery;
use crate::error::Error;
use crate::http::response::Body;
use crate::storage::origin::sanitize_key;
use crate::util::query::{Pair, Query};
use http::{Request, Response};
use std::sync::Arc;

/// Cloudflare options Refract does not implement: refused by name, never ignored.
const NOT_IMPLEMENTED: &[&str] = &[
    "trim.top",
    "trim.right",
    "trim.bottom",
    "trim.left",
    "trim.width",
    "trim.height",
    "trim.border",
    "segment",
    "upscale",
    "border",
    "zoom",
    "slow-connection-quality",
    "draw",
    "origin-auth",
];

/// Handle one `/cdn-cgi/image/...` request; `rest` is what follows the prefix (still
/// percent-encoded).
pub async fn handle<B>(
    app: &Arc<Delivery>,
    req: &Request<B>,
    rest: &str,
    peer: std::net::SocketAddr,
) -> Result<Response<Body>, Error> {
    img::rate_limit(app, req, peer).await?;
    if let Some(r) = img::remembered(app, req).await {
        return Ok(r);
    }
    let (options, source) = rest.split_once('/').ok_or_else(|| {
        Error::bad_param(
            "source",
            "expected /cdn-cgi/image/<OPTIONS>/<SOURCE>, e.g. /cdn-cgi/image/width=400/photos/cat.jpg",
        )
    })?;
    let pairs = translate(options)?;
    let key = source_key(source, app.http_base.as_deref())?;
    let query = Query::parse(req.uri().query().unwrap_or(""));
    Box::pin(img::serve(app, req, key, query, pairs)).await
}

/// The storage key of a source (still percent-encoded): a key, or an absolute URL under the
/// HTTP origin's base.
fn source_key(source: &str, http_base: Option<&str>) -> Result<String, Error> {
    let lower = source.to_ascii_lowercase();
    if !(lower.starts_with("http:/") || lower.starts_with("https:/")) {
        return Ok(sanitize_key(source)?);
    }
    let bad = |m: &str| Error::bad_param("source", m);
    let Some(base) = http_base else {
        return Err(bad(
            "an absolute source URL needs an HTTP origin (storage.backend = \"http\"); \
             here the source is a storage key",
        ));
    };
    // Proxies may merge the `//` after the scheme into one `/`.
    let (scheme, rest) = source.split_once(':').unwrap_or(("", ""));
    let normal = format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        rest.trim_start_matches('/')
    );
    let base = base.trim_end_matches('/');
    match normal.strip_prefix(base).and_then(|r| r.strip_prefix('/')) {
        Some(key) => Ok(sanitize_key(key)?),
        None => Err(bad("the source URL is not under this server's HTTP origin")),
    }
}

/// Split the options at commas outside parentheses (`background=rgb(1,2,3)`).
fn split_options(options: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in options.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(&options[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&options[start..]);
    out
}

/// The options as `/img` pairs: names kept (the transform parser knows Cloudflare's names and
/// aliases), `fit` translated, `fit=inside` (scale-down) when none is given.
pub fn translate(options: &str) -> Result<Vec<Pair>, Error> {
    let mut pairs = Vec::new();
    let mut fit_given = false;
    for part in split_options(options) {
        if part.is_empty() {
            return Err(Error::bad_param(
                "options",
                "empty option (options are comma-separated name=value pairs, at least one)",
            ));
        }
        let p = Pair::from_path(part);
        let (Some(name), Some(value)) = (p.key.as_deref(), p.value.as_deref()) else {
            return Err(Error::bad_param("options", "an option is not valid UTF-8"));
        };
        let shown: String = name.chars().take(64).collect();
        if NOT_IMPLEMENTED.contains(&name) {
            return Err(Error::bad_param(
                &shown,
                format!("option '{shown}' is not supported by this server"),
            ));
        }
        if !part.contains('=') || value.is_empty() {
            return Err(Error::bad_param(
                &shown,
                format!("option '{shown}' needs a value ({shown}=...)"),
            ));
        }
        if name == "blur" {
            // Cloudflare's blur is a radius 1..=250; ours is a Gaussian sigma: radius / 2.
            let r: f64 = value
                .parse()
                .ok()
                .filter(|r: &f64| (1.0..=250.0).contains(r))
                .ok_or_else(|| Error::bad_param("blur", "blur must be a radius in 1..=250"))?;
            pairs.push(Pair::new(
                "blur",
                &format!("{}", (r / 2.0 * 100.0).round() / 100.0),
            ));
            continue;
        }
        if name == "fit" {
            if fit_given {
                return Err(Error::bad_param(
                    "fit",
                    "option 'fit' is given more than once",
                ));
            }
            fit_given = true;
            let (fit, enlarge) = match value {
                "scale-down" => ("inside", false),
                "contain" => ("inside", true),
                "cover" => ("cover", true),
                "crop" => ("clip", false),
                "pad" => ("contain", true),
                "squeeze" => ("fill", true),
                _ => {
                    return Err(Error::bad_param(
                        "fit",
                        "fit must be one of scale-down, contain, cover, crop, pad, squeeze",
                    ))
                }
            };
            pairs.push(Pair::new("fit", fit));
            if enlarge {
                pairs.push(Pair::new("enlarge", "1"));
            }
            continue;
        }
        pairs.push(p);
    }
    if !fit_given {
        pairs.push(Pair::new("fit", "inside"));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::transform::{self, Fit, ParamConfig};

    fn t(options: &str, extra: &str) -> transform::Transform {
        let mut pairs = translate(options).unwrap();
        pairs.extend(Query::parse(extra).pairs().iter().cloned());
        transform::parse(&Query::from_pairs(pairs), &ParamConfig::default())
            .unwrap()
            .unwrap()
    }

    fn img(q: &str) -> transform::Transform {
        transform::parse(&Query::parse(q), &ParamConfig::default())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn same_transform_as_the_img_form() {
        assert_eq!(
            t("width=400,quality=75,format=auto", ""),
            img("w=400&q=75&fit=inside")
        );
        assert_eq!(t("w=400,h=300", ""), img("w=400&h=300&fit=inside"));
        assert_eq!(
            t("w=400,h=300,fit=cover", ""),
            img("w=400&h=300&fit=cover&enlarge=1")
        );
        assert_eq!(t("w=400,h=300,fit=crop", ""), img("w=400&h=300&fit=clip"));
        assert_eq!(
            t("w=400,h=300,fit=pad,background=%23ff0000", "").fit,
            Fit::Contain
        );
        assert_eq!(
            t("w=400,h=300,fit=pad,background=rgb(255,0,0)", "").bg,
            [255, 0, 0, 255]
        );
        assert_eq!(t("w=4,h=3,fit=squeeze", "").fit, Fit::Fill);
        assert_eq!(t("w=400,f=webp", "v=3"), img("w=400&fm=webp"));
        assert_eq!(t("w=400,q=high", "").quality, Some(90));
        assert_eq!(t("w=400,blur=50", ""), img("w=400&blur=25&fit=inside"));
        assert_eq!(
            t(
                "w=40,h=40,fit=cover,gravity=0.1x0.9,rotate=90,flip=h,trim=1;2;3;4",
                ""
            ),
            img("w=40&h=40&fit=cover&enlarge=1&g=0.1x0.9&rot=90&flip=h&trim=1;2;3;4")
        );
    }

    #[test]
    fn bad_options_are_named() {
        let param = |o: &str| match translate(o).and_then(|pairs| {
            transform::parse(&Query::from_pairs(pairs), &ParamConfig::default())
                .map_err(Error::from)
        }) {
            Err(Error::BadRequest { param, .. }) => param.unwrap_or_default(),
            other => panic!("{o}: {other:?}"),
        };
        assert_eq!(param("width=abc"), "width");
        assert_eq!(param("gravity=face"), "gravity");
        assert_eq!(param("blur=0"), "blur");
        assert_eq!(param("trim.top=5"), "trim.top");
        assert_eq!(param("w=1,segment=foreground"), "segment");
        assert_eq!(param("fit=stretch"), "fit");
        assert_eq!(param("w=1,fit=pad,fit=crop"), "fit");
        assert_eq!(param("bogus=1"), "bogus");
        assert_eq!(param(""), "options");
        assert_eq!(param("w=1,,h=2"), "options");
        assert_eq!(param("width"), "width");
        assert_eq!(param("w=1,w=2"), "w");
    }

    #[test]
    fn sources() {
        assert_eq!(
            source_key("photos/cat.jpg", None).unwrap(),
            "photos/cat.jpg"
        );
        assert_eq!(source_key("a%20b.jpg", None).unwrap(), "a b.jpg");
        assert!(source_key("https://evil.example/x.jpg", None).is_err());
        let base = Some("https://origin.example/images/");
        assert_eq!(
            source_key("https://origin.example/images/a/b.jpg", base).unwrap(),
            "a/b.jpg"
        );
        assert_eq!(
            source_key("https:/origin.example/images/a.jpg", base).unwrap(),
            "a.jpg"
        );
        assert!(source_key("https://origin.example/other/a.jpg", base).is_err());
        assert!(source_key("https://origin.example/images/../x", base).is_err());
        assert!(source_key("../x", None).is_err());
    }
}
