//! The transform parameters of `/img`: parsing from a query string, validation, canonical form.
//!
//! Invariants: pure (no IO, no HTTP types); every accepted query resolves to one `Transform` with
//! all defaults, aliases, `dpr` and `thumb` folded in, so that equal transforms have equal
//! canonical strings (and so equal cache keys); `parse(canonical(t)) == t`; never panics.

use crate::pipeline::format::ImageFormat;
pub use crate::util::query::ParamError;
use crate::util::query::Query;
use serde::{Deserialize, Serialize};

/// How the image is fitted into the `w`×`h` box (sharp's meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Fill the box, cropping the centre.
    Cover,
    /// Fit inside the box and pad to it with `bg`.
    Contain,
    /// Stretch to the box.
    Fill,
    /// Fit inside the box, no padding.
    Inside,
    /// Cover the box, no cropping.
    Outside,
}

impl Fit {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "cover" | "crop" => Some(Self::Cover),
            "contain" => Some(Self::Contain),
            "fill" => Some(Self::Fill),
            "inside" => Some(Self::Inside),
            "outside" => Some(Self::Outside),
            _ => None,
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cover => "cover",
            Self::Contain => "contain",
            Self::Fill => "fill",
            Self::Inside => "inside",
            Self::Outside => "outside",
        }
    }
}

/// The `[thumb]` section: what `thumb=1` means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThumbConfig {
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
}

impl Default for ThumbConfig {
    fn default() -> Self {
        Self {
            width: 256,
            height: 256,
            fit: Fit::Cover,
        }
    }
}

/// The output format asked for by `fm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormatRequest {
    /// Negotiate from `Accept`.
    Auto,
    /// Exactly this format.
    Fixed(ImageFormat),
}

/// An RGBA colour (`bg`).
pub type Rgba = [u8; 4];

/// Opaque white: the default `bg`.
pub const WHITE: Rgba = [255, 255, 255, 255];

/// A fully resolved transform.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Transform {
    /// Target width in device pixels (after `dpr`), if given.
    pub width: Option<u32>,
    /// Target height in device pixels (after `dpr`), if given.
    pub height: Option<u32>,
    /// Fit mode; `Inside` whenever fewer than two dimensions are given (all fits agree then).
    pub fit: Fit,
    /// Allow the output to be larger than the source.
    pub enlarge: bool,
    /// Encoder quality 1..=100; `None` = the per-format default from config.
    pub quality: Option<u8>,
    /// Output format request.
    pub format: FormatRequest,
    /// Pad colour for `contain`, and what alpha is flattened onto for JPEG.
    pub bg: Rgba,
}

/// The limits and presets the parser needs (a slice of the config, passed by value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParamConfig {
    /// Largest accepted `w`/`h` (after `dpr`, which is clamped to it).
    pub max_dimension: u32,
    /// `thumb=1` box width.
    pub thumb_width: u32,
    /// `thumb=1` box height.
    pub thumb_height: u32,
    /// `thumb=1` fit.
    pub thumb_fit: Fit,
}

impl Default for ParamConfig {
    fn default() -> Self {
        Self {
            max_dimension: 8192,
            thumb_width: 256,
            thumb_height: 256,
            thumb_fit: Fit::Cover,
        }
    }
}

fn err(param: &str, message: impl Into<String>) -> ParamError {
    ParamError::new(param, message)
}

/// The canonical parameter names, and their aliases.
const ALIASES: &[(&str, &str)] = &[
    ("w", "w"),
    ("width", "w"),
    ("h", "h"),
    ("height", "h"),
    ("dpr", "dpr"),
    ("fit", "fit"),
    ("enlarge", "enlarge"),
    ("q", "q"),
    ("quality", "q"),
    ("fm", "fm"),
    ("format", "fm"),
    ("thumb", "thumb"),
    ("bg", "bg"),
    ("t", "t"),
    ("v", "v"),
];

/// The canonical name of a parameter or alias (`width` → `w`); `None` for unknown names.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    ALIASES.iter().find(|(a, _)| *a == name).map(|(_, c)| *c)
}

/// Whether a parameter is a cache buster (accepted, ignored).
pub fn is_ignored(name: &str) -> bool {
    canonical_name(name).is_some_and(|c| IGNORED.contains(&c))
}

/// Parameters accepted and ignored (cache busters); they never reach the cache key.
const IGNORED: &[&str] = &["t", "v"];

#[derive(Default)]
struct Raw<'a> {
    w: Option<(&'static str, &'a str)>,
    h: Option<(&'static str, &'a str)>,
    dpr: Option<(&'static str, &'a str)>,
    fit: Option<(&'static str, &'a str)>,
    enlarge: Option<(&'static str, &'a str)>,
    q: Option<(&'static str, &'a str)>,
    fm: Option<(&'static str, &'a str)>,
    thumb: Option<(&'static str, &'a str)>,
    bg: Option<(&'static str, &'a str)>,
}

/// Parse a query's pairs. `Ok(None)` means no transform was asked for (no parameters, or only
/// cache busters): the original is served.
pub fn parse(query: &Query, cfg: &ParamConfig) -> Result<Option<Transform>, ParamError> {
    let mut raw = Raw::default();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut any = false;
    for pair in query.pairs() {
        let key = pair
            .key
            .as_deref()
            .ok_or_else(|| err("query", "query is not valid UTF-8"))?;
        let Some(&(written, canon)) = ALIASES.iter().find(|(a, _)| *a == key) else {
            let shown: String = key.chars().take(64).collect();
            return Err(err(&shown, format!("unknown parameter '{shown}'")));
        };
        if seen.contains(&canon) {
            return Err(err(
                written,
                format!("parameter '{written}' is given more than once"),
            ));
        }
        seen.push(canon);
        let value = pair
            .value
            .as_deref()
            .ok_or_else(|| err(written, format!("{written} is not valid UTF-8")))?;
        if IGNORED.contains(&canon) {
            continue;
        }
        any = true;
        let slot = match canon {
            "w" => &mut raw.w,
            "h" => &mut raw.h,
            "dpr" => &mut raw.dpr,
            "fit" => &mut raw.fit,
            "enlarge" => &mut raw.enlarge,
            "q" => &mut raw.q,
            "fm" => &mut raw.fm,
            "thumb" => &mut raw.thumb,
            _ => &mut raw.bg,
        };
        *slot = Some((written, value));
    }
    if !any {
        return Ok(None);
    }
    resolve(raw, cfg).map(Some)
}

fn parse_dim(p: &str, v: &str, max: u32) -> Result<u32, ParamError> {
    let msg = || format!("{p} must be an integer in 1..={max}");
    if v.is_empty() || v.len() > 6 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(p, msg()));
    }
    let n: u32 = v.parse().map_err(|_| err(p, msg()))?;
    if n == 0 || n > max {
        return Err(err(p, msg()));
    }
    Ok(n)
}

fn parse_bool(p: &str, v: &str) -> Result<bool, ParamError> {
    crate::util::query::flag(v, p)
}

fn parse_dpr(p: &str, v: &str) -> Result<f64, ParamError> {
    let msg = || format!("{p} must be a number in 1..=4");
    let ok_chars =
        !v.is_empty() && v.len() <= 8 && v.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !ok_chars {
        return Err(err(p, msg()));
    }
    let d: f64 = v.parse().map_err(|_| err(p, msg()))?;
    if !(1.0..=4.0).contains(&d) {
        return Err(err(p, msg()));
    }
    Ok(d)
}

/// Parse `rgb`, `rrggbb` or `rrggbbaa` (an optional leading `#` is allowed).
pub fn parse_color(v: &str) -> Option<Rgba> {
    let v = v.strip_prefix('#').unwrap_or(v);
    if !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = |s: &str| u8::from_str_radix(s, 16).ok();
    match v.len() {
        3 => {
            let mut c = [255u8; 4];
            for (i, ch) in v.chars().enumerate() {
                let d = ch.to_digit(16)? as u8;
                c[i] = d * 17;
            }
            Some(c)
        }
        6 => Some([hex(&v[0..2])?, hex(&v[2..4])?, hex(&v[4..6])?, 255]),
        8 => Some([
            hex(&v[0..2])?,
            hex(&v[2..4])?,
            hex(&v[4..6])?,
            hex(&v[6..8])?,
        ]),
        _ => None,
    }
}

fn resolve(raw: Raw<'_>, cfg: &ParamConfig) -> Result<Transform, ParamError> {
    let max = cfg.max_dimension;
    let thumb = match &raw.thumb {
        Some((p, v)) => parse_bool(p, v)?,
        None => false,
    };
    let mut width = raw
        .w
        .as_ref()
        .map(|(p, v)| parse_dim(p, v, max))
        .transpose()?;
    let mut height = raw
        .h
        .as_ref()
        .map(|(p, v)| parse_dim(p, v, max))
        .transpose()?;
    let mut fit = match &raw.fit {
        Some((p, v)) => Some(Fit::parse(v).ok_or_else(|| {
            err(
                p,
                format!("{p} must be one of cover, crop, contain, fill, inside, outside"),
            )
        })?),
        None => None,
    };
    if thumb {
        width = width.or(Some(cfg.thumb_width.clamp(1, max)));
        height = height.or(Some(cfg.thumb_height.clamp(1, max)));
        fit = fit.or(Some(cfg.thumb_fit));
    }
    if let Some((p, v)) = &raw.dpr {
        let dpr = parse_dpr(p, v)?;
        let scale = |d: u32| ((f64::from(d) * dpr).round() as u32).clamp(1, max);
        width = width.map(scale);
        height = height.map(scale);
    }
    let enlarge = match &raw.enlarge {
        Some((p, v)) => parse_bool(p, v)?,
        None => false,
    };
    let quality = match &raw.q {
        Some((p, v)) => {
            let msg = || format!("{p} must be an integer in 1..=100");
            if v.is_empty() || v.len() > 3 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(p, msg()));
            }
            let q: u8 = v.parse().map_err(|_| err(p, msg()))?;
            if !(1..=100).contains(&q) {
                return Err(err(p, msg()));
            }
            Some(q)
        }
        None => None,
    };
    let format = match &raw.fm {
        Some((_, v)) if *v == "auto" => FormatRequest::Auto,
        Some((p, v)) => match ImageFormat::from_name(v) {
            Some(f) if f.can_encode() => FormatRequest::Fixed(f),
            _ => {
                return Err(err(
                    p,
                    format!("{p} must be one of jpeg, jpg, png, webp, avif, auto"),
                ))
            }
        },
        None => FormatRequest::Auto,
    };
    let bg = match &raw.bg {
        Some((p, v)) => parse_color(v).ok_or_else(|| {
            err(
                p,
                format!("{p} must be a hex colour rgb, rrggbb or rrggbbaa"),
            )
        })?,
        None => WHITE,
    };
    let fit = match (width, height) {
        (Some(_), Some(_)) => fit.unwrap_or(Fit::Cover),
        _ => Fit::Inside,
    };
    Ok(Transform {
        width,
        height,
        fit,
        enlarge,
        quality,
        format,
        bg,
    })
}

impl Transform {
    /// The canonical query form: fixed order, canonical names and values, defaults spelled out.
    /// Equal transforms give equal strings; `parse` of it gives the transform back.
    pub fn canonical(&self) -> String {
        let mut s = String::with_capacity(64);
        if let Some(w) = self.width {
            s.push_str(&format!("w={w}&"));
        }
        if let Some(h) = self.height {
            s.push_str(&format!("h={h}&"));
        }
        s.push_str("fit=");
        s.push_str(self.fit.name());
        if self.enlarge {
            s.push_str("&enlarge=1");
        }
        if let Some(q) = self.quality {
            s.push_str(&format!("&q={q}"));
        }
        s.push_str("&fm=");
        s.push_str(match self.format {
            FormatRequest::Auto => "auto",
            FormatRequest::Fixed(f) => f.name(),
        });
        let [r, g, b, a] = self.bg;
        s.push_str(&format!("&bg={r:02x}{g:02x}{b:02x}{a:02x}"));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(q: &str) -> Result<Option<Transform>, ParamError> {
        parse(&Query::parse(q), &ParamConfig::default())
    }

    fn t(q: &str) -> Transform {
        p(q).unwrap().unwrap()
    }

    #[test]
    fn parse_no_params_or_only_busters_is_original() {
        assert_eq!(p("").unwrap(), None);
        assert_eq!(p("t=123&v=4").unwrap(), None);
        assert_eq!(p("&&").unwrap(), None);
    }

    #[test]
    fn parse_aliases_and_order_give_one_canonical_form() {
        let a = t("w=400&h=300&fit=crop&t=1");
        let b = t("height=300&width=400&fit=cover");
        assert_eq!(a, b);
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(t("w=400&fm=jpg"), t("format=jpeg&w=400"));
        assert_eq!(t("quality=70&w=1"), t("w=1&q=70"));
    }

    #[test]
    fn parse_default_fit_depends_on_dimensions() {
        assert_eq!(t("w=10&h=10").fit, Fit::Cover);
        assert_eq!(t("w=10").fit, Fit::Inside);
        // With one dimension every fit gives the same geometry, so they share a key.
        assert_eq!(t("w=10&fit=cover"), t("w=10"));
    }

    #[test]
    fn parse_dpr_multiplies_and_clamps() {
        assert_eq!(t("w=400&dpr=2").width, Some(800));
        assert_eq!(t("w=400&dpr=1.5&h=100").height, Some(150));
        assert_eq!(t("w=8000&dpr=4").width, Some(8192));
        assert_eq!(t("w=400&dpr=2"), t("w=800"));
        assert!(p("w=1&dpr=0.5").is_err());
        assert!(p("w=1&dpr=5").is_err());
        assert!(p("w=1&dpr=nan").is_err());
        assert!(p("w=1&dpr=inf").is_err());
    }

    #[test]
    fn parse_thumb_uses_preset_and_can_be_refined() {
        let th = t("thumb=1");
        assert_eq!(
            (th.width, th.height, th.fit),
            (Some(256), Some(256), Fit::Cover)
        );
        assert_eq!(t("thumb=true&w=100").width, Some(100));
        assert_eq!(t("thumb=1&fit=contain").fit, Fit::Contain);
    }

    #[test]
    fn parse_rejects_bad_input_naming_the_param() {
        let cases = [
            ("w=0", "w"),
            ("w=8193", "w"),
            ("w=-1", "w"),
            ("w=abc", "w"),
            ("width=1.5", "width"),
            ("h=", "h"),
            ("q=0", "q"),
            ("q=101", "q"),
            ("fit=squash", "fit"),
            ("fm=gif", "fm"),
            ("fm=tiff", "fm"),
            ("bg=zzz", "bg"),
            ("bg=12345", "bg"),
            ("enlarge=maybe", "enlarge"),
            ("foo=1", "foo"),
            ("w=1&w=2", "w"),
            ("w=1&width=2", "width"),
            ("t=1&t=2", "t"),
        ];
        for (q, param) in cases {
            let e = p(q).expect_err(q);
            assert_eq!(e.param, param, "{q}");
        }
    }

    #[test]
    fn parse_colours() {
        assert_eq!(parse_color("fff"), Some([255, 255, 255, 255]));
        assert_eq!(parse_color("#102030"), Some([16, 32, 48, 255]));
        assert_eq!(parse_color("10203040"), Some([16, 32, 48, 64]));
        assert_eq!(parse_color("ééé"), None);
    }

    fn arb_transform() -> impl Strategy<Value = Transform> {
        (
            proptest::option::of(1u32..=8192),
            proptest::option::of(1u32..=8192),
            prop_oneof![
                Just(Fit::Cover),
                Just(Fit::Contain),
                Just(Fit::Fill),
                Just(Fit::Inside),
                Just(Fit::Outside)
            ],
            any::<bool>(),
            proptest::option::of(1u8..=100),
            prop_oneof![
                Just(FormatRequest::Auto),
                Just(FormatRequest::Fixed(ImageFormat::Jpeg)),
                Just(FormatRequest::Fixed(ImageFormat::Png)),
                Just(FormatRequest::Fixed(ImageFormat::Webp)),
                Just(FormatRequest::Fixed(ImageFormat::Avif)),
            ],
            any::<[u8; 4]>(),
        )
            .prop_map(|(width, height, fit, enlarge, quality, format, bg)| {
                let fit = if width.is_some() && height.is_some() {
                    fit
                } else {
                    Fit::Inside
                };
                Transform {
                    width,
                    height,
                    fit,
                    enlarge,
                    quality,
                    format,
                    bg,
                }
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(q in ".{0,200}") {
            let _ = p(&q);
        }

        #[test]
        fn parse_never_panics_on_param_shaped_input(
            k in prop_oneof![Just("w"), Just("h"), Just("dpr"), Just("q"), Just("fm"), Just("bg"), Just("fit")],
            v in "[0-9a-z.%#+-]{0,12}"
        ) {
            let _ = p(&format!("{k}={v}"));
        }

        #[test]
        fn canonical_round_trips(tr in arb_transform()) {
            let back = p(&tr.canonical()).unwrap().unwrap();
            prop_assert_eq!(&back, &tr);
            prop_assert_eq!(back.canonical(), tr.canonical());
        }

        #[test]
        fn equal_transforms_have_equal_canonical_strings(w in 1u32..=4096, busted in any::<u32>()) {
            let a = t(&format!("w={w}&fit=crop&h=10&t={busted}"));
            let b = t(&format!("height=10&width={w}&fit=cover"));
            prop_assert_eq!(a.canonical(), b.canonical());
        }
    }
}
