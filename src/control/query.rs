//! Query strings of the API: `application/x-www-form-urlencoded` pairs, repeated keys kept,
//! unknown keys refused (a typo should not silently widen a search).

use crate::error::Error;
use percent_encoding::percent_decode_str;

/// The decoded pairs of a query string.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parse, accepting any key (undecodable pairs are dropped).
    pub fn parse_lenient(q: &str) -> Self {
        Self(pairs(q).filter_map(|(_, k, v)| Some((k?, v?))).collect())
    }

    /// Parse; `allowed` are the accepted keys.
    pub fn parse(q: &str, allowed: &[&str]) -> Result<Self, Error> {
        let mut out = Vec::new();
        for (raw, k, v) in pairs(q) {
            let bad = || Error::bad_param(raw, "not valid UTF-8");
            let (k, v) = (k.ok_or_else(bad)?, v.ok_or_else(bad)?);
            if !allowed.contains(&k.as_str()) {
                return Err(Error::bad_param(
                    &k,
                    format!("unknown parameter; allowed: {}", allowed.join(", ")),
                ));
            }
            out.push((k, v));
        }
        Ok(Self(out))
    }

    /// The last value of `k`.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `k`, comma-separated values split, empty ones dropped.
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == k)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// `k` as a number in `range`.
    pub fn num(&self, k: &str, range: std::ops::RangeInclusive<u32>) -> Result<Option<u32>, Error> {
        self.get(k)
            .map(|v| {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        Error::bad_param(
                            k,
                            format!("must be a number in {}..={}", range.start(), range.end()),
                        )
                    })
            })
            .transpose()
    }

    /// `k` as one of `choices`.
    pub fn choice(&self, k: &str, choices: &[&str]) -> Result<Option<String>, Error> {
        self.get(k)
            .map(|v| {
                let v = v.to_ascii_lowercase();
                if choices.contains(&v.as_str()) {
                    Ok(v)
                } else {
                    Err(Error::bad_param(
                        k,
                        format!("must be one of {}", choices.join(", ")),
                    ))
                }
            })
            .transpose()
    }

    /// The pairs in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// `(raw key, decoded key, decoded value)` of each pair; `None` where not UTF-8.
fn pairs(q: &str) -> impl Iterator<Item = (&str, Option<String>, Option<String>)> {
    let dec = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .ok()
    };
    q.split('&').filter(|p| !p.is_empty()).map(move |part| {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        (k, dec(k), dec(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_comma_separated_values() {
        let q = Query::parse("tag=a&tag=b,c&q=hello+world%21", &["tag", "q"]).unwrap();
        assert_eq!(q.all("tag"), ["a", "b", "c"]);
        assert_eq!(q.get("q"), Some("hello world!"));
        assert!(Query::parse("tga=a", &["tag"]).is_err());
        assert!(q.num("q", 1..=5).is_err());
    }
}
