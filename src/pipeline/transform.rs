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
    /// Cover the box, each side at most the source's (never enlarges; a source smaller than
    /// the box is kept whole): Cloudflare's `fit=crop`.
    Clip,
}

impl Fit {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "cover" | "crop" => Some(Self::Cover),
            "contain" => Some(Self::Contain),
            "fill" => Some(Self::Fill),
            "inside" => Some(Self::Inside),
            "outside" => Some(Self::Outside),
            "clip" => Some(Self::Clip),
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
            Self::Clip => "clip",
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
    /// No image: the output's and the source's dimensions as JSON (`fm=json`).
    Json,
}

/// What of the source's EXIF a JPEG output keeps (`metadata`). Other outputs keep none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Metadata {
    /// Nothing (the default).
    #[default]
    None,
    /// The copyright notice (and artist) only.
    Copyright,
    /// All of it, with the orientation reset (the pixels are already upright).
    Keep,
}

impl Metadata {
    fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Copyright => "copyright",
            Self::Keep => "keep",
        }
    }
}

/// The perceptual quality names (Cloudflare's) and the numbers they stand for.
pub const QUALITY_NAMES: &[(&str, u8)] = &[
    ("high", 90),
    ("medium-high", 80),
    ("medium-low", 65),
    ("low", 50),
];

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
    /// EXIF kept in a JPEG output.
    pub metadata: Metadata,
    /// `compression=fast`: a negotiated answer is the source's family (no AVIF or WebP encode).
    pub fast: bool,
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
    ("f", "fm"),
    ("format", "fm"),
    ("thumb", "thumb"),
    ("bg", "bg"),
    ("background", "bg"),
    ("metadata", "metadata"),
    ("compression", "compression"),
    ("anim", "anim"),
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
    metadata: Option<(&'static str, &'a str)>,
    compression: Option<(&'static str, &'a str)>,
    anim: Option<(&'static str, &'a str)>,
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
            "metadata" => &mut raw.metadata,
            "compression" => &mut raw.compression,
            "anim" => &mut raw.anim,
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

/// CSS colour names accepted by `bg`/`background` (CSS level 2's, and `transparent`).
const COLOUR_NAMES: &[(&str, Rgba)] = &[
    ("transparent", [0, 0, 0, 0]),
    ("black", [0, 0, 0, 255]),
    ("silver", [192, 192, 192, 255]),
    ("gray", [128, 128, 128, 255]),
    ("grey", [128, 128, 128, 255]),
    ("white", [255, 255, 255, 255]),
    ("maroon", [128, 0, 0, 255]),
    ("red", [255, 0, 0, 255]),
    ("purple", [128, 0, 128, 255]),
    ("fuchsia", [255, 0, 255, 255]),
    ("green", [0, 128, 0, 255]),
    ("lime", [0, 255, 0, 255]),
    ("olive", [128, 128, 0, 255]),
    ("yellow", [255, 255, 0, 255]),
    ("navy", [0, 0, 128, 255]),
    ("blue", [0, 0, 255, 255]),
    ("teal", [0, 128, 128, 255]),
    ("aqua", [0, 255, 255, 255]),
    ("orange", [255, 165, 0, 255]),
];

/// Parse a colour: hex `rgb`, `rrggbb` or `rrggbbaa` (an optional leading `#`), `rgb(r,g,b)`,
/// `rgba(r,g,b,a)` (`a` in 0..=1), or a CSS name (`COLOUR_NAMES`, any case).
pub fn parse_color(v: &str) -> Option<Rgba> {
    let lower = v.trim().to_ascii_lowercase();
    if let Some((_, c)) = COLOUR_NAMES.iter().find(|(n, _)| *n == lower) {
        return Some(*c);
    }
    if let Some(inner) = lower
        .strip_prefix("rgba(")
        .or_else(|| lower.strip_prefix("rgb("))
        .and_then(|r| r.strip_suffix(')'))
    {
        return parse_rgb_function(inner);
    }
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

/// `r,g,b` or `r,g,b,a` (commas or spaces; channels 0..=255, alpha 0..=1).
fn parse_rgb_function(inner: &str) -> Option<Rgba> {
    let parts: Vec<&str> = inner
        .split([',', ' ', '/'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if !(3..=4).contains(&parts.len()) {
        return None;
    }
    let mut c = [255u8; 4];
    for (i, p) in parts.iter().take(3).enumerate() {
        c[i] = p.parse::<u8>().ok()?;
    }
    if let Some(a) = parts.get(3) {
        let a: f64 = a.parse().ok()?;
        if !(0.0..=1.0).contains(&a) {
            return None;
        }
        c[3] = (a * 255.0).round() as u8;
    }
    Some(c)
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
                format!("{p} must be one of cover, crop, contain, fill, inside, outside, clip"),
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
        Some((_, v)) if QUALITY_NAMES.iter().any(|(n, _)| n == v) => {
            QUALITY_NAMES.iter().find(|(n, _)| n == v).map(|(_, q)| *q)
        }
        Some((p, v)) => {
            let msg = || {
                format!("{p} must be an integer in 1..=100 or high, medium-high, medium-low, low")
            };
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
        Some((_, "auto")) => FormatRequest::Auto,
        Some((_, "json")) => FormatRequest::Json,
        Some((_, "baseline-jpeg")) => FormatRequest::Fixed(ImageFormat::Jpeg),
        Some((p, v)) => match ImageFormat::from_name(v) {
            Some(f) if f.can_encode() => FormatRequest::Fixed(f),
            _ => {
                return Err(err(
                    p,
                    format!(
                        "{p} must be one of auto, jpeg, jpg, baseline-jpeg, png, webp, avif, json"
                    ),
                ))
            }
        },
        None => FormatRequest::Auto,
    };
    let bg = match &raw.bg {
        Some((p, v)) => parse_color(v).ok_or_else(|| {
            err(
                p,
                format!(
                    "{p} must be a colour: hex (rgb, rrggbb, rrggbbaa, '#' optional), \
                     rgb(r,g,b), rgba(r,g,b,a) or a CSS name such as white or transparent"
                ),
            )
        })?,
        None => WHITE,
    };
    let metadata = match &raw.metadata {
        Some((_, "none")) | None => Metadata::None,
        Some((_, "copyright")) => Metadata::Copyright,
        Some((_, "keep")) => Metadata::Keep,
        Some((p, _)) => return Err(err(p, format!("{p} must be one of none, copyright, keep"))),
    };
    let fast = match &raw.compression {
        Some((_, "fast")) => true,
        Some((p, _)) => return Err(err(p, format!("{p} must be fast"))),
        None => false,
    };
    if let Some((p, v)) = &raw.anim {
        if parse_bool(p, v)? {
            return Err(err(
                p,
                format!(
                    "{p}=true is not supported: animations are answered as their first frame; \
                     say {p}=false"
                ),
            ));
        }
    }
    let fit = match (width, height) {
        (Some(_), Some(_)) => fit.unwrap_or(Fit::Cover),
        _ => Fit::Inside,
    };
    // Dropped where they change nothing, so that equal outputs share a cache key.
    let enlarge = enlarge && fit != Fit::Clip;
    let fast = fast && format == FormatRequest::Auto;
    let metadata = match format {
        FormatRequest::Auto | FormatRequest::Fixed(ImageFormat::Jpeg) => metadata,
        _ => Metadata::None,
    };
    Ok(Transform {
        width,
        height,
        fit,
        enlarge,
        quality,
        format,
        bg,
        metadata,
        fast,
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
            FormatRequest::Json => "json",
        });
        let [r, g, b, a] = self.bg;
        s.push_str(&format!("&bg={r:02x}{g:02x}{b:02x}{a:02x}"));
        if self.metadata != Metadata::None {
            s.push_str("&metadata=");
            s.push_str(self.metadata.name());
        }
        if self.fast {
            s.push_str("&compression=fast");
        }
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
            ("q=best", "q"),
            ("metadata=all", "metadata"),
            ("compression=slow", "compression"),
            ("anim=true", "anim"),
            ("anim=perhaps", "anim"),
            ("background=rgb(1)", "background"),
            ("f=tiff", "f"),
        ];
        for (q, param) in cases {
            let e = p(q).expect_err(q);
            assert_eq!(e.param, param, "{q}");
        }
    }

    #[test]
    fn cloudflare_names_share_the_parser() {
        assert_eq!(t("q=high&w=1").quality, Some(90));
        assert_eq!(t("quality=low&w=1").quality, Some(50));
        assert_eq!(t("f=baseline-jpeg&w=1"), t("fm=jpeg&w=1"));
        assert_eq!(t("fm=json").format, FormatRequest::Json);
        assert_eq!(t("background=red&w=1").bg, [255, 0, 0, 255]);
        assert_eq!(t("w=1&anim=false"), t("w=1"));
        // compression=fast only matters to a negotiated answer; metadata only to JPEG output.
        assert!(t("w=1&compression=fast").fast);
        assert_eq!(t("w=1&fm=webp&compression=fast"), t("w=1&fm=webp"));
        assert_eq!(t("w=1&metadata=keep").metadata, Metadata::Keep);
        assert_eq!(t("w=1&fm=png&metadata=keep"), t("w=1&fm=png"));
        assert_eq!(t("w=1&metadata=none"), t("w=1"));
    }

    #[test]
    fn parse_colours() {
        assert_eq!(parse_color("fff"), Some([255, 255, 255, 255]));
        assert_eq!(parse_color("#102030"), Some([16, 32, 48, 255]));
        assert_eq!(parse_color("10203040"), Some([16, 32, 48, 64]));
        assert_eq!(parse_color("ééé"), None);
        assert_eq!(parse_color("Transparent"), Some([0, 0, 0, 0]));
        assert_eq!(parse_color("red"), Some([255, 0, 0, 255]));
        assert_eq!(parse_color("rgb(1,2,3)"), Some([1, 2, 3, 255]));
        assert_eq!(parse_color("rgba(1, 2, 3, 0.5)"), Some([1, 2, 3, 128]));
        assert_eq!(parse_color("rgb(1,2)"), None);
        assert_eq!(parse_color("rgb(256,0,0)"), None);
        assert_eq!(parse_color("rgba(1,2,3,2)"), None);
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
                Just(Fit::Outside),
                Just(Fit::Clip)
            ],
            any::<bool>(),
            proptest::option::of(1u8..=100),
            prop_oneof![
                Just(FormatRequest::Auto),
                Just(FormatRequest::Fixed(ImageFormat::Jpeg)),
                Just(FormatRequest::Fixed(ImageFormat::Png)),
                Just(FormatRequest::Fixed(ImageFormat::Webp)),
                Just(FormatRequest::Fixed(ImageFormat::Avif)),
                Just(FormatRequest::Json),
            ],
            any::<[u8; 4]>(),
            prop_oneof![
                Just(Metadata::None),
                Just(Metadata::Copyright),
                Just(Metadata::Keep)
            ],
            any::<bool>(),
        )
            .prop_map(
                |(width, height, fit, enlarge, quality, format, bg, metadata, fast)| {
                    let fit = if width.is_some() && height.is_some() {
                        fit
                    } else {
                        Fit::Inside
                    };
                    let jpeg_or_auto = matches!(
                        format,
                        FormatRequest::Auto | FormatRequest::Fixed(ImageFormat::Jpeg)
                    );
                    Transform {
                        width,
                        height,
                        fit,
                        enlarge: enlarge && fit != Fit::Clip,
                        quality,
                        format,
                        bg,
                        metadata: if jpeg_or_auto {
                            metadata
                        } else {
                            Metadata::None
                        },
                        fast: fast && format == FormatRequest::Auto,
                    }
                },
            )
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
