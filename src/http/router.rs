//! `(method, path)` → `Route`. No IO, no parameter parsing, no auth.

use http::Method;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    Health,
    Version,
    Metrics,
    /// `/img/{key}`; the key is still percent-encoded.
    Image {
        raw_key: &'a str,
    },
    /// `/api/...`: the control plane routes by itself (every method).
    Api,
    /// `/random`: a 302 to a random image.
    Random,
    NotFound,
    MethodNotAllowed,
}

/// Route a request.
pub fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let read_only = method == Method::GET || method == Method::HEAD;
    if path == "/api" || path.starts_with("/api/") {
        return Route::Api;
    }
    let r = match path {
        "/health" => Route::Health,
        "/version" => Route::Version,
        "/metrics" => Route::Metrics,
        "/random" => Route::Random,
        p => match p.strip_prefix("/img/") {
            Some(raw_key) => Route::Image { raw_key },
            None => return Route::NotFound,
        },
    };
    if read_only {
        r
    } else {
        Route::MethodNotAllowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_table() {
        assert_eq!(route(&Method::GET, "/health"), Route::Health);
        assert_eq!(
            route(&Method::HEAD, "/img/a/b.jpg"),
            Route::Image { raw_key: "a/b.jpg" }
        );
        assert_eq!(route(&Method::GET, "/img/"), Route::Image { raw_key: "" });
        assert_eq!(route(&Method::POST, "/img/a.jpg"), Route::MethodNotAllowed);
        assert_eq!(route(&Method::GET, "/nope"), Route::NotFound);
        assert_eq!(route(&Method::GET, "/img"), Route::NotFound);
        assert_eq!(route(&Method::DELETE, "/api/v1/images/x"), Route::Api);
        assert_eq!(route(&Method::GET, "/random"), Route::Random);
        assert_eq!(route(&Method::POST, "/random"), Route::MethodNotAllowed);
    }
}
