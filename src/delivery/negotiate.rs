//! Content negotiation for `fm=auto`: a typed `Accept` header with q-values and the output
//! decision.
//!
//! Invariants: no substring matching (`image/avif;q=0` means no); AVIF and WebP are only chosen
//! when the client names them explicitly (a `*/*` from an old client is no promise that it
//! decodes AVIF); the decision reads only whether `image/avif` and `image/webp` are acceptable,
//! so one URL has at most four negotiated variants whatever `Accept` says (a normalised or junk
//! `Accept` cannot multiply cache entries); with `Negotiate::Off` it reads nothing of `Accept`;
//! pure, no IO.

use super::policy::Negotiate;
use crate::pipeline::format::ImageFormat;
use crate::pipeline::output::{Candidates, Enabled, OutputSpec};
use crate::pipeline::transform::FormatRequest;

/// One media range of an `Accept` header.
#[derive(Debug, Clone, PartialEq)]
struct MediaRange {
    ty: String,
    subtype: String,
    q: f32,
}

/// A parsed `Accept` header.
#[derive(Debug, Clone, PartialEq)]
pub struct Accept {
    ranges: Vec<MediaRange>,
}

impl Accept {
    /// No `Accept` header: the client accepts anything (RFC 9110 §12.5.1).
    pub fn any() -> Self {
        Self {
            ranges: vec![MediaRange {
                ty: "*".into(),
                subtype: "*".into(),
                q: 1.0,
            }],
        }
    }

    /// Parse a header value. Malformed members are skipped; never fails, never panics.
    pub fn parse(value: &str) -> Self {
        let mut ranges = Vec::new();
        for member in value.split(',').take(64) {
            let mut parts = member.split(';');
            let Some(range) = parts.next().map(str::trim) else {
                continue;
            };
            let Some((ty, subtype)) = range.split_once('/') else {
                continue;
            };
            let (ty, subtype) = (
                ty.trim().to_ascii_lowercase(),
                subtype.trim().to_ascii_lowercase(),
            );
            if ty.is_empty() || subtype.is_empty() || (ty == "*" && subtype != "*") {
                continue;
            }
            let mut q = 1.0f32;
            for param in parts {
                if let Some((k, v)) = param.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = match v.trim().parse::<f32>() {
                            Ok(x) if (0.0..=1.0).contains(&x) => x,
                            _ => 0.0,
                        };
                    }
                }
            }
            ranges.push(MediaRange { ty, subtype, q });
        }
        Self { ranges }
    }

    /// The q-value for `mime` by the most specific matching range (exact > `type/*` > `*/*`);
    /// several ranges equally specific (`image/avif;q=0, image/avif`) give their highest q, as
    /// `explicit_quality` does; 0 when nothing matches.
    pub fn quality(&self, mime: &str) -> f32 {
        let (ty, subtype) = mime.split_once('/').unwrap_or((mime, ""));
        let mut best: Option<(u8, f32)> = None;
        for r in &self.ranges {
            let spec = if r.ty == ty && r.subtype == subtype {
                3
            } else if r.ty == ty && r.subtype == "*" {
                2
            } else if r.ty == "*" {
                1
            } else {
                continue;
            };
            best = match best {
                Some((s, q)) if s > spec => Some((s, q)),
                Some((s, q)) if s == spec => Some((s, q.max(r.q))),
                _ => Some((spec, r.q)),
            };
        }
        best.map_or(0.0, |(_, q)| q)
    }

    /// The q-value when `mime` is named exactly (wildcards do not count).
    pub fn explicit_quality(&self, mime: &str) -> f32 {
        let (ty, subtype) = mime.split_once('/').unwrap_or((mime, ""));
        self.ranges
            .iter()
            .filter(|r| r.ty == ty && r.subtype == subtype)
            .map(|r| r.q)
            .fold(0.0, f32::max)
    }
}

/// Why no output could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiateError {
    /// `fm` names a format switched off in config.
    Disabled(ImageFormat),
    /// `fm=json`: no image at all (answered before negotiation).
    NoImage,
}

/// Decide from `fm` and `Accept`. JPEG and PNG are always candidates (a client that lists
/// neither still gets the source's family rather than a 406: every browser decodes both).
pub fn decide(
    fm: FormatRequest,
    accept: &Accept,
    enabled: Enabled,
    mode: Negotiate,
) -> Result<OutputSpec, NegotiateError> {
    match fm {
        FormatRequest::Json => Err(NegotiateError::NoImage),
        FormatRequest::Fixed(f) => {
            let on = match f {
                ImageFormat::Avif => enabled.avif,
                ImageFormat::Webp => enabled.webp,
                _ => true,
            };
            if on {
                Ok(OutputSpec::Fixed(f))
            } else {
                Err(NegotiateError::Disabled(f))
            }
        }
        FormatRequest::Auto => {
            let by_accept = mode == Negotiate::Vary;
            Ok(OutputSpec::Negotiated(Candidates {
                avif: by_accept && enabled.avif && accept.explicit_quality("image/avif") > 0.0,
                webp: by_accept && enabled.webp && accept.explicit_quality("image/webp") > 0.0,
                jpeg: true,
                png: true,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ON: Enabled = Enabled {
        avif: true,
        webp: true,
    };

    fn pick(accept: Option<&str>, src: ImageFormat, alpha: bool) -> Option<ImageFormat> {
        let a = accept.map_or_else(Accept::any, Accept::parse);
        decide(FormatRequest::Auto, &a, ON, Negotiate::Vary)
            .ok()?
            .resolve(src, alpha)
    }

    #[test]
    fn avif_fallback_is_webp_then_the_source_family() {
        use ImageFormat::*;
        let any = Accept::any();
        let fixed = decide(FormatRequest::Fixed(Avif), &any, ON, Negotiate::Vary).unwrap();
        assert!(fixed.is_avif());
        assert_eq!(fixed.without_avif(ON), Some(OutputSpec::Fixed(Webp)));
        let no_webp = Enabled {
            avif: true,
            webp: false,
        };
        let f = fixed.without_avif(no_webp).unwrap();
        assert_eq!(f.resolve(Jpeg, false), Some(Jpeg));
        let chromium = Accept::parse("image/avif,image/webp,*/*;q=0.8");
        let auto = decide(FormatRequest::Auto, &chromium, ON, Negotiate::Vary).unwrap();
        assert!(auto.is_avif());
        let f = auto.without_avif(ON).unwrap();
        assert!(!f.is_avif());
        assert_eq!(f.resolve(Jpeg, false), Some(Webp));
        let only_avif = Accept::parse("image/avif");
        let auto = decide(FormatRequest::Auto, &only_avif, ON, Negotiate::Vary).unwrap();
        // JPEG/PNG are always candidates: the fallback is the source's family.
        let f = auto.without_avif(ON).unwrap();
        assert_eq!(f.resolve(Jpeg, false), Some(Jpeg));
        let jpeg = decide(FormatRequest::Fixed(Jpeg), &any, ON, Negotiate::Vary).unwrap();
        assert!(!jpeg.is_avif());
    }

    #[test]
    fn negotiate_table() {
        use ImageFormat::*;
        let chromium = "image/jxl,image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        let rows: &[(Option<&str>, ImageFormat, bool, Option<ImageFormat>)] = &[
            (Some(chromium), Jpeg, false, Some(Avif)),
            (
                Some("image/avif;q=0,image/webp,*/*"),
                Jpeg,
                false,
                Some(Webp),
            ),
            (
                Some("image/avif;q=0, image/webp;q=0, */*"),
                Jpeg,
                false,
                Some(Jpeg),
            ),
            (Some("*/*"), Jpeg, false, Some(Jpeg)),
            (Some("*/*"), Png, true, Some(Png)),
            (Some("image/*"), Gif, false, Some(Png)),
            (Some("image/*"), Jpeg, true, Some(Png)),
            (None, Jpeg, false, Some(Jpeg)),
            // JPEG and PNG are always candidates: the source's family wins.
            (Some("image/png"), Jpeg, false, Some(Jpeg)),
            (Some("image/jpeg"), Png, true, Some(Png)),
            (Some("text/html"), Jpeg, false, Some(Jpeg)),
            (Some("image/webp,image/*;q=0"), Jpeg, false, Some(Webp)),
            (Some("IMAGE/AVIF"), Jpeg, false, Some(Avif)),
            (Some("image/avifx,*/*"), Jpeg, false, Some(Jpeg)),
        ];
        for (accept, src, alpha, want) in rows {
            assert_eq!(pick(*accept, *src, *alpha), *want, "{accept:?} {src:?}");
        }
    }

    #[test]
    fn off_reads_nothing_of_accept() {
        let chromium = Accept::parse("image/avif,image/webp,*/*;q=0.8");
        let spec = decide(FormatRequest::Auto, &chromium, ON, Negotiate::Off).unwrap();
        assert_eq!(
            spec.resolve(ImageFormat::Jpeg, false),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            spec.resolve(ImageFormat::Gif, false),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            spec,
            decide(FormatRequest::Auto, &Accept::any(), ON, Negotiate::Off).unwrap()
        );
        let fixed = decide(
            FormatRequest::Fixed(ImageFormat::Avif),
            &chromium,
            ON,
            Negotiate::Off,
        );
        assert_eq!(fixed, Ok(OutputSpec::Fixed(ImageFormat::Avif)));
    }

    #[test]
    fn negotiate_disabled_formats() {
        let off = Enabled {
            avif: false,
            webp: true,
        };
        let a = Accept::parse("image/avif,image/webp,*/*");
        let spec = decide(FormatRequest::Auto, &a, off, Negotiate::Vary).unwrap();
        assert_eq!(
            spec.resolve(ImageFormat::Jpeg, false),
            Some(ImageFormat::Webp)
        );
        assert_eq!(
            decide(
                FormatRequest::Fixed(ImageFormat::Avif),
                &a,
                off,
                Negotiate::Vary
            ),
            Err(NegotiateError::Disabled(ImageFormat::Avif))
        );
    }

    #[test]
    fn vary_only_when_negotiated() {
        let a = Accept::any();
        assert!(decide(FormatRequest::Auto, &a, ON, Negotiate::Vary)
            .unwrap()
            .varies());
        assert!(!decide(
            FormatRequest::Fixed(ImageFormat::Png),
            &a,
            ON,
            Negotiate::Vary
        )
        .unwrap()
        .varies());
    }

    #[test]
    fn accept_quality_uses_most_specific_range() {
        let a = Accept::parse("image/*;q=0.5, image/png;q=0, */*;q=0.1");
        assert_eq!(a.quality("image/png"), 0.0);
        assert_eq!(a.quality("image/jpeg"), 0.5);
        assert_eq!(a.quality("text/plain"), 0.1);
        assert_eq!(
            Accept::parse("image/webp;q=abc").explicit_quality("image/webp"),
            0.0
        );
    }

    proptest! {
        #[test]
        fn accept_parse_never_panics(s in ".{0,300}") {
            let a = Accept::parse(&s);
            let q = a.quality("image/webp");
            prop_assert!((0.0..=1.0).contains(&q));
        }

        /// Any `Accept` lands on one of four specs: the cache holds at most four negotiated
        /// variants per URL.
        #[test]
        fn any_accept_gives_one_of_four_specs(s in ".{0,200}") {
            let spec = decide(FormatRequest::Auto, &Accept::parse(&s), ON, Negotiate::Vary).unwrap();
            let four: Vec<OutputSpec> = [(false, false), (false, true), (true, false), (true, true)]
                .into_iter()
                .map(|(avif, webp)| OutputSpec::Negotiated(Candidates { avif, webp, jpeg: true, png: true }))
                .collect();
            prop_assert!(four.contains(&spec));
        }
    }
}
