//! EXIF fields an image API reports (camera, lens, exposure, time), read with `kamadak-exif`.
//! GPS position only when the config keeps it.

use serde_json::{json, Map, Value};
use std::io::Cursor;

/// The EXIF summary of `bytes` as a JSON object (empty when there is no EXIF).
pub fn summary(bytes: &[u8], keep_gps: bool) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(data) = read(bytes) else {
        return out;
    };
    let text = |tag: exif::Tag| -> Option<String> {
        let f = data.get_field(tag, exif::In::PRIMARY)?;
        match &f.value {
            exif::Value::Ascii(parts) => {
                let s = parts
                    .iter()
                    .map(|p| {
                        String::from_utf8_lossy(p)
                            .trim_matches(char::from(0))
                            .trim()
                            .to_string()
                    })
                    .find(|s| !s.is_empty())?;
                Some(s)
            }
            _ => None,
        }
    };
    let rational = |tag: exif::Tag| -> Option<(u32, u32)> {
        match &data.get_field(tag, exif::In::PRIMARY)?.value {
            exif::Value::Rational(v) => {
                v.first().filter(|r| r.denom != 0).map(|r| (r.num, r.denom))
            }
            _ => None,
        }
    };
    let uint = |tag: exif::Tag| -> Option<u32> {
        data.get_field(tag, exif::In::PRIMARY)?.value.get_uint(0)
    };
    for (name, tag) in [
        ("make", exif::Tag::Make),
        ("model", exif::Tag::Model),
        ("lens", exif::Tag::LensModel),
        ("software", exif::Tag::Software),
        ("artist", exif::Tag::Artist),
        ("copyright", exif::Tag::Copyright),
    ] {
        if let Some(v) = text(tag) {
            out.insert(name.into(), json!(v));
        }
    }
    if let Some(t) = text(exif::Tag::DateTimeOriginal).or_else(|| text(exif::Tag::DateTime)) {
        out.insert("taken_at".into(), json!(iso_time(&t).unwrap_or(t)));
    }
    if let Some((n, d)) = rational(exif::Tag::ExposureTime) {
        let s = if n == 0 {
            "0".to_string()
        } else if n < d {
            format!("1/{}", (f64::from(d) / f64::from(n)).round())
        } else {
            format!("{}", f64::from(n) / f64::from(d))
        };
        out.insert("exposure".into(), json!(s));
    }
    if let Some((n, d)) = rational(exif::Tag::FNumber) {
        out.insert(
            "f_number".into(),
            json!(round1(f64::from(n) / f64::from(d))),
        );
    }
    if let Some((n, d)) = rational(exif::Tag::FocalLength) {
        out.insert(
            "focal_length".into(),
            json!(round1(f64::from(n) / f64::from(d))),
        );
    }
    if let Some(iso) = uint(exif::Tag::PhotographicSensitivity) {
        out.insert("iso".into(), json!(iso));
    }
    if let Some(o) = uint(exif::Tag::Orientation) {
        out.insert("orientation".into(), json!(o));
    }
    if keep_gps {
        if let (Some(lat), Some(lon)) = (
            gps(
                &data,
                exif::Tag::GPSLatitude,
                exif::Tag::GPSLatitudeRef,
                b'S',
            ),
            gps(
                &data,
                exif::Tag::GPSLongitude,
                exif::Tag::GPSLongitudeRef,
                b'W',
            ),
        ) {
            out.insert("gps".into(), json!({"latitude": lat, "longitude": lon}));
        }
    }
    out
}

/// The EXIF of a JPEG, PNG or WebP. WebP writers disagree on whether the EXIF chunk starts with
/// `Exif\0\0`; both forms are read.
fn read(bytes: &[u8]) -> Option<exif::Exif> {
    if let Ok(e) = exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) {
        return Some(e);
    }
    if bytes.get(..4)? != b"RIFF" || bytes.get(8..12)? != b"WEBP" {
        return None;
    }
    let mut i = 12usize;
    while i + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().ok()?) as usize;
        let data = bytes.get(i + 8..(i + 8).checked_add(len)?)?;
        if &bytes[i..i + 4] == b"EXIF" {
            let tiff = data.strip_prefix(b"Exif\0\0").unwrap_or(data);
            return exif::Reader::new().read_raw(tiff.to_vec()).ok();
        }
        i += 8 + len + (len & 1);
    }
    None
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// `2024:05:01 10:20:30` → `2024-05-01T10:20:30`.
fn iso_time(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b':' || b[7] != b':' || b[10] != b' ' {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}",
        &s[0..4],
        &s[5..7],
        &s[8..10],
        &s[11..19]
    ))
}

fn gps(data: &exif::Exif, tag: exif::Tag, ref_tag: exif::Tag, negative: u8) -> Option<f64> {
    let exif::Value::Rational(v) = &data.get_field(tag, exif::In::PRIMARY)?.value else {
        return None;
    };
    if v.len() < 3 || v.iter().any(|r| r.denom == 0) {
        return None;
    }
    let deg = v[0].to_f64() + v[1].to_f64() / 60.0 + v[2].to_f64() / 3600.0;
    let neg = match &data.get_field(ref_tag, exif::In::PRIMARY)?.value {
        exif::Value::Ascii(a) => a.first().and_then(|x| x.first()) == Some(&negative),
        _ => false,
    };
    Some(if neg { -deg } else { deg })
}

/// The EXIF `UserComment`, decoded (where Stable Diffusion web UIs put `parameters` in JPEG and
/// WebP files).
pub fn user_comment(bytes: &[u8]) -> Option<String> {
    let data = read(bytes)?;
    let exif::Value::Undefined(raw, _) = &data
        .get_field(exif::Tag::UserComment, exif::In::PRIMARY)?
        .value
    else {
        return None;
    };
    let (charset, body) = raw.split_at_checked(8)?;
    let s = match charset {
        b"UNICODE\0" => {
            // Big-endian UTF-16 as written by piexif; little-endian when the first unit says so.
            let be = body.first() == Some(&0) || body.get(1) != Some(&0);
            let units: Vec<u16> = body
                .chunks_exact(2)
                .map(|c| {
                    if be {
                        u16::from_be_bytes([c[0], c[1]])
                    } else {
                        u16::from_le_bytes([c[0], c[1]])
                    }
                })
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    let s = s.trim_matches(char::from(0)).trim().to_string();
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exif_time_becomes_iso() {
        assert_eq!(
            iso_time("2024:05:01 10:20:30").as_deref(),
            Some("2024-05-01T10:20:30")
        );
        assert_eq!(iso_time("garbage"), None);
    }
}
