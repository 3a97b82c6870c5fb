//! The `[delivery]` section and the caching policy of `/img` answers: which `Cache-Control`
//! (default, versioned URL, or an access override), the optional CDN-only header, how long a
//! 404 may be kept, and whether `fm=auto` negotiates by `Accept` (and so answers `Vary`).
//!
//! Invariants: pure (no IO); a policy that shortens or restricts caching (private, expiring,
//! interim, stale) never carries the CDN header, so the edge cannot keep such an answer longer
//! than the browser may.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// How `fm=auto` (and no `fm`) chooses the output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Negotiate {
    /// The source's family (JPEG, or PNG for alpha/PNG/GIF sources), no `Vary`: right behind
    /// any cache, including one that keys by URL alone (Cloudflare's default).
    Off,
    /// AVIF or WebP by `Accept`, with `Vary: Accept`: for caches that honour `Vary`.
    Vary,
}

/// The `[delivery]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// `"off"` (default) or `"vary"`.
    pub negotiate: Negotiate,
    /// `Cache-Control` of successful image responses.
    pub cache_control: String,
    /// `Cache-Control` of a versioned URL (one carrying `v=`): its bytes never change.
    pub versioned_cache_control: String,
    /// A value for the CDN-only header (`cdn_cache_control_header`); empty = not sent.
    pub cdn_cache_control: String,
    /// Which CDN-only header: `CDN-Cache-Control` (RFC 9213; Cloudflare, Fastly, Akamai) or
    /// `Cloudflare-CDN-Cache-Control` (Cloudflare only).
    pub cdn_cache_control_header: String,
    /// `max-age` of a 404 from `/img`, seconds; 0 = `no-store` like every other error.
    pub not_found_max_age_secs: u32,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            negotiate: Negotiate::Off,
            cache_control:
                "public, max-age=86400, stale-while-revalidate=604800, stale-if-error=86400".into(),
            versioned_cache_control: "public, max-age=31536000, immutable".into(),
            cdn_cache_control: String::new(),
            cdn_cache_control_header: "CDN-Cache-Control".into(),
            not_found_max_age_secs: 0,
        }
    }
}

impl DeliveryConfig {
    /// Check the section; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let header_value = |key: &str, v: &str| {
            if v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
                Ok(())
            } else {
                Err(format!(
                    "delivery.{key} (REFRACT__DELIVERY__{}) must be printable ASCII",
                    key.to_ascii_uppercase()
                ))
            }
        };
        header_value("cache_control", &self.cache_control)?;
        header_value("versioned_cache_control", &self.versioned_cache_control)?;
        header_value("cdn_cache_control", &self.cdn_cache_control)?;
        let name = self.cdn_cache_control_header.to_ascii_lowercase();
        let token =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !token || name == "cache-control" {
            return Err(format!(
                "delivery.cdn_cache_control_header (REFRACT__DELIVERY__CDN_CACHE_CONTROL_HEADER) \
                 must be a header name other than Cache-Control, e.g. CDN-Cache-Control or \
                 Cloudflare-CDN-Cache-Control; got '{}'",
                self.cdn_cache_control_header
            ));
        }
        Ok(())
    }
}

/// The caching headers of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caching<'a> {
    pub cache_control: Cow<'a, str>,
    /// The CDN-only header's value, when this answer may carry it.
    pub cdn: Option<&'a str>,
}

impl<'a> Caching<'a> {
    /// The policy of a successful answer: `access` (a private or expiring object's own
    /// `Cache-Control`) wins; else a versioned URL's; else the default. The CDN header goes
    /// only with the last two.
    pub fn for_answer(cfg: &'a DeliveryConfig, access: Option<String>, versioned: bool) -> Self {
        let cdn = (!cfg.cdn_cache_control.is_empty()).then_some(cfg.cdn_cache_control.as_str());
        match access {
            Some(cc) => Self {
                cache_control: Cow::Owned(cc),
                cdn: None,
            },
            None if versioned => Self {
                cache_control: Cow::Borrowed(&cfg.versioned_cache_control),
                cdn,
            },
            None => Self {
                cache_control: Cow::Borrowed(&cfg.cache_control),
                cdn,
            },
        }
    }

    /// The same answer kept at most `secs` (an interim or stale answer): `public,
    /// max-age=secs`, unless the policy is private, not to be stored, or already shorter. The
    /// CDN header is dropped (the edge must not keep it longer).
    pub fn at_most(&self, secs: u32) -> Caching<'_> {
        let cc: &str = &self.cache_control;
        let current = cc
            .split(',')
            .find_map(|d| d.trim().strip_prefix("max-age="))
            .and_then(|v| v.trim().parse::<u32>().ok());
        let keep =
            cc.contains("private") || cc.contains("no-store") || current.is_some_and(|c| c <= secs);
        Caching {
            cache_control: if keep {
                Cow::Borrowed(cc)
            } else {
                Cow::Owned(format!("public, max-age={secs}"))
            },
            cdn: None,
        }
    }
}

/// The `Cache-Control` of a 404 from `/img`: `None` = the errors' `no-store`.
pub fn not_found(cfg: &DeliveryConfig) -> Option<String> {
    (cfg.not_found_max_age_secs > 0)
        .then(|| format!("public, max-age={}", cfg.not_found_max_age_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_answers_never_outlive_a_shorter_or_private_policy() {
        let cfg = DeliveryConfig {
            cdn_cache_control: "max-age=31536000".into(),
            ..DeliveryConfig::default()
        };
        let d = Caching::for_answer(&cfg, None, false);
        assert_eq!(d.cdn, Some("max-age=31536000"));
        assert_eq!(d.at_most(60).cache_control, "public, max-age=60");
        assert_eq!(d.at_most(60).cdn, None);
        let short = Caching::for_answer(&cfg, Some("public, max-age=12".into()), false);
        assert_eq!(short.cdn, None);
        assert_eq!(short.at_most(60).cache_control, "public, max-age=12");
        let private = Caching::for_answer(&cfg, Some("private, no-store".into()), true);
        assert_eq!(private.at_most(60).cache_control, "private, no-store");
    }

    #[test]
    fn versioned_urls_are_immutable_by_default() {
        let cfg = DeliveryConfig::default();
        let v = Caching::for_answer(&cfg, None, true);
        assert!(v.cache_control.contains("immutable"));
        assert_eq!(v.cdn, None);
        assert!(Caching::for_answer(&cfg, None, false)
            .cache_control
            .contains("stale-if-error=86400"));
    }

    #[test]
    fn config_is_checked() {
        assert!(DeliveryConfig::default().validate().is_ok());
        for bad in ["Cache-Control", "", "CDN Cache", "x:y"] {
            let c = DeliveryConfig {
                cdn_cache_control_header: bad.into(),
                ..DeliveryConfig::default()
            };
            assert!(c.validate().is_err(), "{bad}");
        }
        let c = DeliveryConfig {
            cache_control: "public\n".into(),
            ..DeliveryConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("delivery.cache_control"));
    }

    #[test]
    fn not_found_is_no_store_unless_configured() {
        assert_eq!(not_found(&DeliveryConfig::default()), None);
        let c = DeliveryConfig {
            not_found_max_age_secs: 30,
            ..DeliveryConfig::default()
        };
        assert_eq!(not_found(&c).as_deref(), Some("public, max-age=30"));
    }
}
