//! How an image looks in the API (the IMAGE object) and the absolute URLs in it.

use crate::delivery::signing::Signer;
use crate::store::{AlbumRecord, AvatarRecord, ImageRecord};
use http::HeaderMap;
use serde_json::{json, Value};

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
        "placeholder": parse(&r.placeholder),
    })
}

/// The ALBUM object.
pub fn album(a: &AlbumRecord) -> serde_json::Value {
    json!({
        "id": a.id,
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

/// Unix milliseconds → `2026-11-23T12:00:00.000Z`.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` → unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let f = &frac[..digits];
        millis = format!("{f:0<3}")[..3].parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let v = num(rest_range(s, o, 1, 3))? * 60 + num(rest_range(s, o, 4, 6))?;
            if o.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se - offset * 60) * 1000) + millis)
}

fn rest_range(s: &str, rest: &str, a: usize, b: usize) -> std::ops::Range<usize> {
    let start = s.len() - rest.len();
    start + a..start + b
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_435_200_123), "2026-11-23T12:00:00.123Z");
        for ms in [0, 951_782_400_000, 1_795_435_200_123, 4_102_444_800_000] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(
            parse_rfc3339("2026-11-23T10:00:00+02:00"),
            parse_rfc3339("2026-11-23T08:00:00Z")
        );
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

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
