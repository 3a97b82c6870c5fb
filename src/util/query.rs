//! A query string, parsed once: its `key=value` pairs in order, each kept as sent (signatures
//! are computed over that) and decoded (`application/x-www-form-urlencoded`: `+` is a space,
//! then percent-decoding; a pair that is not UTF-8 keeps `None`). Every reader takes this:
//! URL signing, presets, the transform parser and the API's filters. Also the one bad-parameter
//! error (`ParamError`) and the one boolean vocabulary (`flag`).
//!
//! Invariants: pure; never panics; parsing never fails (readers decide what is an error).

use percent_encoding::percent_decode_str;
use std::fmt;

/// A refused parameter: its name as the client wrote it, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter name as the client wrote it (or `query`).
    pub param: String,
    /// A human-readable reason.
    pub message: String,
}

impl ParamError {
    pub fn new(param: &str, message: impl Into<String>) -> Self {
        Self {
            param: param.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParamError {}

/// One pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// `k=v` (or `k`) exactly as sent.
    pub raw: String,
    /// Decoded key and value; `None` when not UTF-8.
    pub key: Option<String>,
    pub value: Option<String>,
}

impl Pair {
    /// The key as sent (undecoded).
    pub fn raw_key(&self) -> &str {
        self.raw
            .split_once('=')
            .map_or(self.raw.as_str(), |(k, _)| k)
    }

    /// `k=v` (or `k`) from a URL path segment: percent-decoded, `+` kept as itself.
    pub fn from_path(part: &str) -> Self {
        let dec = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        };
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        Self {
            raw: part.to_string(),
            key: dec(k),
            value: dec(v),
        }
    }

    /// A pair made here (a preset's value, a pass-through): encoded for `raw`.
    pub fn new(key: &str, value: &str) -> Self {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        Self {
            raw: format!("{}={}", enc(key), enc(value)),
            key: Some(key.to_string()),
            value: Some(value.to_string()),
        }
    }
}

/// The pairs of a query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<Pair>,
}

/// Decoded, or `None` when not UTF-8 or holding a NUL (U+0000: no text column of any backend
/// stores it, and no parameter needs it).
fn decode(s: &str) -> Option<String> {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .ok()
        .filter(|c| !c.contains('\0'))
        .map(|c| c.into_owned())
}

impl Query {
    /// Parse (without the `?`); empty pairs are skipped.
    pub fn parse(q: &str) -> Self {
        let pairs = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|part| {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                Pair {
                    raw: part.to_string(),
                    key: decode(k),
                    value: decode(v),
                }
            })
            .collect();
        Self { pairs }
    }

    pub fn from_pairs(pairs: Vec<Pair>) -> Self {
        Self { pairs }
    }

    /// The pairs in order.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The query as sent (its pairs joined by `&`).
    pub fn raw(&self) -> String {
        self.pairs
            .iter()
            .map(|p| p.raw.as_str())
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Refuse any key not in `allowed`, and any pair that is not UTF-8.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ParamError> {
        for p in &self.pairs {
            let (Some(k), Some(_)) = (&p.key, &p.value) else {
                return Err(ParamError::new(p.raw_key(), "not valid UTF-8"));
            };
            if !allowed.contains(&k.as_str()) {
                return Err(ParamError::new(
                    k,
                    format!("unknown parameter; allowed: {}", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// The decoded pairs (pairs that are not UTF-8 skipped).
    pub fn decoded(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .filter_map(|p| Some((p.key.as_deref()?, p.value.as_deref()?)))
    }

    /// The last value of `k`.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.decoded()
            .filter(|(key, _)| *key == k)
            .last()
            .map(|(_, v)| v)
    }

    /// Every value of `k`, comma-separated values split, empty ones dropped.
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.decoded()
            .filter(|(key, _)| *key == k)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// `k` as a number in `range`.
    pub fn num(
        &self,
        k: &str,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<Option<u32>, ParamError> {
        self.get(k)
            .map(|v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        ParamError::new(
                            k,
                            format!("must be a number in {}..={}", range.start(), range.end()),
                        )
                    })
            })
            .transpose()
    }

    /// `k` as one of `choices` (case-insensitive; returned lower-cased).
    pub fn choice(&self, k: &str, choices: &[&str]) -> Result<Option<String>, ParamError> {
        self.get(k)
            .map(|v| {
                let v = v.to_ascii_lowercase();
                if choices.contains(&v.as_str()) {
                    Ok(v)
                } else {
                    Err(ParamError::new(
                        k,
                        format!("must be one of {}", choices.join(", ")),
                    ))
                }
            })
            .transpose()
    }

    /// `k` as a boolean (`flag`'s vocabulary).
    pub fn flag(&self, k: &str) -> Result<Option<bool>, ParamError> {
        self.get(k).map(|v| flag(v, k)).transpose()
    }
}

/// The one boolean vocabulary of query parameters and form fields: `1`/`true`/`yes`/`on` and
/// `0`/`false`/`no`/`off`/empty, any case.
pub fn flag(v: &str, param: &str) -> Result<bool, ParamError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(ParamError::new(
            param,
            format!("{param} must be true or false (1/0, yes/no, on/off)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_kept_as_sent_and_decoded() {
        let q = Query::parse("tag=a&tag=b,c&q=hello+world%21&&bad=%ff");
        assert_eq!(q.pairs().len(), 4);
        assert_eq!(q.all("tag"), ["a", "b", "c"]);
        assert_eq!(q.get("q"), Some("hello world!"));
        assert_eq!(q.pairs()[2].raw, "q=hello+world%21");
        assert_eq!(q.pairs()[3].value, None);
        assert_eq!(q.raw(), "tag=a&tag=b,c&q=hello+world%21&bad=%ff");
        assert!(q.only(&["tag", "q"]).is_err(), "bad is not allowed");
        assert!(Query::parse("tga=a").only(&["tag"]).is_err());
        assert!(q.num("q", 1..=5).is_err());
    }

    #[test]
    fn one_boolean_vocabulary() {
        for t in ["1", "true", "TRUE", "yes", "on"] {
            assert_eq!(flag(t, "x"), Ok(true), "{t}");
        }
        for f in ["0", "false", "No", "off", ""] {
            assert_eq!(flag(f, "x"), Ok(false), "{f}");
        }
        assert_eq!(flag("maybe", "x").unwrap_err().param, "x");
    }

    #[test]
    fn made_pairs_round_trip() {
        let p = Pair::new("bg", "#fff 50%");
        let q = Query::parse(&p.raw);
        assert_eq!(q.get("bg"), Some("#fff 50%"));
    }
}
