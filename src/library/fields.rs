//! The rules for an image's own fields, written once: the upload form and `PATCH` both use
//! them (tags, description, expiry).

use crate::util::query::ParamError;

/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 2000;

/// Longest expiry: ten years, in minutes.
pub const MAX_EXPIRY_MINUTES: u64 = 10 * 366 * 24 * 60;

/// A description: at most `MAX_DESCRIPTION` characters.
pub fn description(v: &str, field: &str) -> Result<String, ParamError> {
    if v.chars().count() > MAX_DESCRIPTION {
        return Err(ParamError::new(
            field,
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(v.to_string())
}

/// An expiry in minutes: 0 = never (`None`); more than ten years is refused.
pub fn expiry_minutes(m: u64, field: &str) -> Result<Option<u64>, ParamError> {
    if m > MAX_EXPIRY_MINUTES {
        return Err(ParamError::new(field, "at most ten years"));
    }
    Ok((m > 0).then_some(m))
}

/// When an image given `minutes` at `now_ms` expires (Unix ms).
pub fn expires_at(now_ms: i64, minutes: u64) -> i64 {
    let m = i64::try_from(minutes.min(MAX_EXPIRY_MINUTES)).unwrap_or(0);
    now_ms.saturating_add(m * 60_000)
}

/// Tags as a JSON array or a comma-separated list; each normalised with `tag`.
pub fn parse_tags(v: &str, field: &str) -> Result<Vec<String>, ParamError> {
    let raw: Vec<String> = if v.starts_with('[') {
        serde_json::from_str(v)
            .map_err(|_| ParamError::new(field, "must be a JSON array of strings"))?
    } else {
        v.split(',').map(str::to_string).collect()
    };
    raw.iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| tag(t, field))
        .collect()
}

/// One tag: trimmed, lower-cased, 1..=64 characters, no control characters or commas.
pub fn tag(t: &str, field: &str) -> Result<String, ParamError> {
    let t = t.trim().to_lowercase();
    if t.is_empty() || t.chars().count() > 64 || t.chars().any(|c| c.is_control() || c == ',') {
        return Err(ParamError::new(
            field,
            "tags are 1 to 64 characters, without commas or control characters",
        ));
    }
    Ok(t)
}

/// A folder (storage prefix) as given (`a/b`, `/a/b/`) → `a/b/`, sanitised like keys; "" or
/// `/` is the root ("").
pub fn folder(v: &str, field: &str) -> Result<String, ParamError> {
    let v = v.trim_matches('/');
    if v.is_empty() {
        return Ok(String::new());
    }
    let clean = crate::storage::origin::sanitize_key(v)
        .map_err(|_| ParamError::new(field, "a folder is a storage path like a/b"))?;
    Ok(format!("{clean}/"))
}

/// Tags sorted, each once.
pub fn dedup_tags(mut tags: Vec<String>) -> Vec<String> {
    tags.sort();
    tags.dedup();
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_per_field() {
        assert!(description(&"x".repeat(2000), "description").is_ok());
        assert_eq!(
            description(&"x".repeat(2001), "description")
                .unwrap_err()
                .param,
            "description"
        );
        assert_eq!(expiry_minutes(0, "e"), Ok(None));
        assert_eq!(expiry_minutes(60, "e"), Ok(Some(60)));
        assert!(expiry_minutes(MAX_EXPIRY_MINUTES + 1, "e").is_err());
        assert_eq!(expires_at(1_000, 2), 121_000);
        assert_eq!(parse_tags("B, a,,", "tags").unwrap(), ["b", "a"]);
        assert!(tag(&"t".repeat(65), "tags").is_err());
        assert_eq!(
            dedup_tags(vec!["b".into(), "a".into(), "b".into()]),
            ["a", "b"]
        );
    }
}
