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

/// Where a `cover`/`clip` crop window sits (`gravity`, `g`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gravity {
    /// The middle (the default).
    #[default]
    Centre,
    /// Centred on a point, as far as the window fits; ten-thousandths of the image (after
    /// orientation, flip and rotate). Sides and corners are points on the edge.
    Point { x: u16, y: u16 },
    /// Content-aware: the window with the most edges, saturation and skin (`auto`, `smart`).
    Auto,
}

/// A region of the source, before everything else (`crop=x,y,w,h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Crop {
    /// In source pixels (after EXIF orientation).
    Pixels {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
    },
    /// In ten-thousandths of the source.
    Fraction {
        x: u32,
        y: u32,
        width: u32,
        height: u32,
    },
}

/// Borders cut before resizing (`trim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Trim {
    #[default]
    None,
    /// Pixels from each side (Cloudflare's `trim=top;right;bottom;left`).
    Sides {
        top: u32,
        right: u32,
        bottom: u32,
        left: u32,
    },
    /// The uniform border: what matches the top-left corner's colour within `tolerance`.
    Auto { tolerance: u8 },
}

/// Mirroring before rotation (`flip=h|v|hv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flip {
    pub h: bool,
    pub v: bool,
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
    /// Where a `cover`/`clip` window sits.
    pub gravity: Gravity,
    /// A region of the source used instead of all of it.
    pub crop: Option<Crop>,
    /// Borders cut (inside the crop region).
    pub trim: Trim,
    /// Mirroring, then `rotate` degrees clockwise (after EXIF orientation; `w`/`h` are the
    /// output's axes).
    pub flip: Flip,
    pub rotate: u16,
    /// Effects at the output size, in hundredths: blur sigma (px), sharpen strength (0..=10),
    /// brightness/contrast/gamma/saturation factors (100 = unchanged); pixelate block (px).
    pub blur: u32,
    pub sharpen: u32,
    pub pixelate: u32,
    pub brightness: u32,
    pub contrast: u32,
    pub gamma: u32,
    pub saturation: u32,
    /// One still frame of an animation (`frame=N`).
    pub frame: Option<u32>,
    /// Keep an animated source animated (when the output format can); `anim=false` = the
    /// first frame.
    pub anim: bool,
    /// A configured watermark (`wm=NAME`).
    pub watermark: Option<String>,
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
    ("frame", "frame"),
    ("gravity", "g"),
    ("g", "g"),
    ("crop", "crop"),
    ("trim", "trim"),
    ("rotate", "rot"),
    ("rot", "rot"),
    ("flip", "flip"),
    ("blur", "blur"),
    ("sharpen", "sharpen"),
    ("pixelate", "pixelate"),
    ("brightness", "brightness"),
    ("contrast", "contrast"),
    ("gamma", "gamma"),
    ("saturation", "saturation"),
    ("wm", "wm"),
    ("watermark", "wm"),
    ("t", "t"),
    ("v", "v"),
];

/// The canonical name of a parameter or alias (`width` → `w`); `None` for unknown names.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    ALIASES.iter().find(|(a, _)| *a == name).map(|(_, c)| *c)
}

/// Every canonical parameter name, once.
pub fn canonical_names() -> impl Iterator<Item = &'static str> {
    ALIASES.iter().filter(|(a, c)| a == c).map(|(_, c)| *c)
}

/// Whether a parameter is a cache buster (accepted, ignored).
pub fn is_ignored(name: &str) -> bool {
    canonical_name(name).is_some_and(|c| IGNORED.contains(&c))
}

/// Parameters accepted and ignored (cache busters); they never reach the cache key.
const IGNORED: &[&str] = &["t", "v"];

/// The raw values of one query: (canonical name, name as written, value).
#[derive(Default)]
struct Raw<'a> {
    pairs: Vec<(&'static str, &'static str, &'a str)>,
}

impl<'a> Raw<'a> {
    fn get(&self, canon: &str) -> Option<(&'static str, &'a str)> {
        self.pairs
            .iter()
            .find(|(c, _, _)| *c == canon)
            .map(|(_, w, v)| (*w, *v))
    }
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
        raw.pairs.push((canon, written, value));
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
    let thumb = match raw.get("thumb") {
        Some((p, v)) => parse_bool(p, v)?,
        None => false,
    };
    let mut width = raw
        .get("w")
        .map(|(p, v)| parse_dim(p, v, max))
        .transpose()?;
    let mut height = raw
        .get("h")
        .map(|(p, v)| parse_dim(p, v, max))
        .transpose()?;
    let mut fit = match raw.get("fit") {
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
    if let Some((p, v)) = raw.get("dpr") {
        let dpr = parse_dpr(p, v)?;
        let scale = |d: u32| ((f64::from(d) * dpr).round() as u32).clamp(1, max);
        width = width.map(scale);
        height = height.map(scale);
    }
    let enlarge = match raw.get("enlarge") {
        Some((p, v)) => parse_bool(p, v)?,
        None => false,
    };
    let quality = match raw.get("q") {
        Some((_, v)) if QUALITY_NAMES.iter().any(|(n, _)| *n == v) => {
            QUALITY_NAMES.iter().find(|(n, _)| *n == v).map(|(_, q)| *q)
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
    let format = match raw.get("fm") {
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
    let bg = match raw.get("bg") {
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
    let metadata = match raw.get("metadata") {
        Some((_, "none")) | None => Metadata::None,
        Some((_, "copyright")) => Metadata::Copyright,
        Some((_, "keep")) => Metadata::Keep,
        Some((p, _)) => return Err(err(p, format!("{p} must be one of none, copyright, keep"))),
    };
    let fast = match raw.get("compression") {
        Some((_, "fast")) => true,
        Some((p, _)) => return Err(err(p, format!("{p} must be fast"))),
        None => false,
    };
    let more = resolve_more(&raw)?;
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
        gravity: more.gravity,
        crop: more.crop,
        trim: more.trim,
        flip: more.flip,
        rotate: more.rotate,
        blur: more.blur,
        sharpen: more.sharpen,
        pixelate: more.pixelate,
        brightness: more.brightness,
        contrast: more.contrast,
        gamma: more.gamma,
        saturation: more.saturation,
        frame: more.frame,
        anim: more.anim,
        watermark: more.watermark,
    })
}

/// The parameters of the transforms issue, resolved.
#[derive(Debug, Clone)]
struct More {
    gravity: Gravity,
    crop: Option<Crop>,
    trim: Trim,
    flip: Flip,
    rotate: u16,
    blur: u32,
    sharpen: u32,
    pixelate: u32,
    brightness: u32,
    contrast: u32,
    gamma: u32,
    saturation: u32,
    frame: Option<u32>,
    anim: bool,
    watermark: Option<String>,
}

/// A decimal in `min..=max`, as an integer of `1/scale` units (`1.5` at scale 100 → 150).
fn decimal(p: &str, v: &str, min: f64, max: f64, scale: f64) -> Result<u32, ParamError> {
    let msg = || format!("{p} must be a number in {min}..={max}");
    let ok = !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if !ok {
        return Err(err(p, msg()));
    }
    let x: f64 = v.parse().map_err(|_| err(p, msg()))?;
    if !(min..=max).contains(&x) {
        return Err(err(p, msg()));
    }
    Ok((x * scale).round() as u32)
}

/// `v` units of `1/scale` as the shortest decimal (`150` at 100 → `1.5`).
fn show(v: u32, scale: u32) -> String {
    let (whole, frac) = (v / scale, v % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = scale.ilog10() as usize;
    let f = format!("{frac:0digits$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// Ten-thousandths of the image, for gravity points and crop fractions.
const FRACTION: f64 = 10_000.0;

/// A gravity that names a point (a side, a corner, `center`, `XxY`), as watermark positions
/// are written in config.
pub fn parse_gravity_point(v: &str) -> Result<Gravity, ParamError> {
    parse_gravity("position", v)
}

fn parse_gravity(p: &str, v: &str) -> Result<Gravity, ParamError> {
    let point = |x: f64, y: f64| Gravity::Point {
        x: (x * FRACTION) as u16,
        y: (y * FRACTION) as u16,
    };
    let g = match v {
        "center" | "centre" | "ce" | "c" => Gravity::Centre,
        "north" | "top" | "no" | "n" => point(0.5, 0.0),
        "south" | "bottom" | "so" | "s" => point(0.5, 1.0),
        "east" | "right" | "ea" | "e" => point(1.0, 0.5),
        "west" | "left" | "we" | "w" => point(0.0, 0.5),
        "northeast" | "noea" | "ne" => point(1.0, 0.0),
        "northwest" | "nowe" | "nw" => point(0.0, 0.0),
        "southeast" | "soea" | "se" => point(1.0, 1.0),
        "southwest" | "sowe" | "sw" => point(0.0, 1.0),
        "auto" | "smart" | "sm" | "attention" => Gravity::Auto,
        "face" => {
            return Err(err(
                p,
                format!("{p}=face needs a face detector, which this server has not; use {p}=auto"),
            ))
        }
        _ => {
            let pair = v
                .strip_prefix("fp:")
                .and_then(|r| r.split_once(':'))
                .or_else(|| v.split_once('x'));
            let msg = || {
                format!(
                    "{p} must be center, a side or corner (north, southeast, ...), auto, or a \
                     point XxY / fp:X:Y in fractions 0..=1"
                )
            };
            let (x, y) = pair.ok_or_else(|| err(p, msg()))?;
            let x = decimal(p, x, 0.0, 1.0, FRACTION).map_err(|_| err(p, msg()))?;
            let y = decimal(p, y, 0.0, 1.0, FRACTION).map_err(|_| err(p, msg()))?;
            Gravity::Point {
                x: x as u16,
                y: y as u16,
            }
        }
    };
    Ok(match g {
        Gravity::Point { x: 5000, y: 5000 } => Gravity::Centre,
        g => g,
    })
}

fn parse_crop(p: &str, v: &str) -> Result<Crop, ParamError> {
    let msg = || {
        format!(
            "{p} must be x,y,width,height in source pixels (integers, width and height > 0) \
             or in fractions 0..=1 of the image (x+width and y+height at most 1)"
        )
    };
    let parts: Vec<&str> = v.split(',').collect();
    if parts.len() != 4 {
        return Err(err(p, msg()));
    }
    if parts.iter().any(|x| x.contains('.')) {
        let f: Vec<u32> = parts
            .iter()
            .map(|x| decimal(p, x, 0.0, 1.0, FRACTION).map_err(|_| err(p, msg())))
            .collect::<Result<_, _>>()?;
        if f[2] == 0 || f[3] == 0 || f[0] + f[2] > 10_000 || f[1] + f[3] > 10_000 {
            return Err(err(p, msg()));
        }
        return Ok(Crop::Fraction {
            x: f[0],
            y: f[1],
            width: f[2],
            height: f[3],
        });
    }
    let n: Vec<u32> = parts
        .iter()
        .map(|x| parse_uint(x, 1 << 20).ok_or_else(|| err(p, msg())))
        .collect::<Result<_, _>>()?;
    if n[2] == 0 || n[3] == 0 {
        return Err(err(p, msg()));
    }
    Ok(Crop::Pixels {
        x: n[0],
        y: n[1],
        width: n[2],
        height: n[3],
    })
}

fn parse_uint(v: &str, max: u32) -> Option<u32> {
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u32>().ok().filter(|n| *n <= max)
}

fn parse_trim(p: &str, v: &str) -> Result<Trim, ParamError> {
    let msg =
        || format!("{p} must be top;right;bottom;left in pixels, auto or auto:TOLERANCE (0..=255)");
    if v == "auto" {
        return Ok(Trim::Auto { tolerance: 10 });
    }
    if let Some(t) = v.strip_prefix("auto:") {
        let t = parse_uint(t, 255).ok_or_else(|| err(p, msg()))?;
        return Ok(Trim::Auto { tolerance: t as u8 });
    }
    let n: Vec<u32> = v
        .split(';')
        .map(|x| parse_uint(x, 1 << 20).ok_or_else(|| err(p, msg())))
        .collect::<Result<_, _>>()?;
    match n.as_slice() {
        [0, 0, 0, 0] => Ok(Trim::None),
        [top, right, bottom, left] => Ok(Trim::Sides {
            top: *top,
            right: *right,
            bottom: *bottom,
            left: *left,
        }),
        _ => Err(err(p, msg())),
    }
}

fn resolve_more(raw: &Raw<'_>) -> Result<More, ParamError> {
    let gravity = match raw.get("g") {
        Some((p, v)) => parse_gravity(p, v)?,
        None => Gravity::Centre,
    };
    let crop = raw.get("crop").map(|(p, v)| parse_crop(p, v)).transpose()?;
    let trim = match raw.get("trim") {
        Some((p, v)) => parse_trim(p, v)?,
        None => Trim::None,
    };
    let flip = match raw.get("flip") {
        None => Flip::default(),
        Some((_, "h")) => Flip { h: true, v: false },
        Some((_, "v")) => Flip { h: false, v: true },
        Some((_, "hv" | "vh")) => Flip { h: true, v: true },
        Some((p, _)) => return Err(err(p, format!("{p} must be h, v or hv"))),
    };
    let rotate = match raw.get("rot") {
        None => 0,
        Some((p, v)) => match v {
            "0" | "360" => 0,
            "90" => 90,
            "180" => 180,
            "270" => 270,
            _ => {
                return Err(err(
                    p,
                    format!("{p} must be 0, 90, 180 or 270 (degrees clockwise)"),
                ))
            }
        },
    };
    let factor = |name: &str, min: f64, max: f64, default: u32| -> Result<u32, ParamError> {
        match raw.get(name) {
            Some((p, v)) => decimal(p, v, min, max, 100.0),
            None => Ok(default),
        }
    };
    let blur = factor("blur", 0.0, 250.0, 0)?;
    let sharpen = factor("sharpen", 0.0, 10.0, 0)?;
    let brightness = factor("brightness", 0.0, 10.0, 100)?;
    let contrast = factor("contrast", 0.0, 10.0, 100)?;
    let saturation = factor("saturation", 0.0, 10.0, 100)?;
    let gamma = factor("gamma", 0.01, 10.0, 100)?;
    if raw.get("gamma").is_some() && gamma == 0 {
        return Err(err("gamma", "gamma must be a number in 0.01..=10"));
    }
    let pixelate = match raw.get("pixelate") {
        Some((p, v)) => parse_uint(v, 256)
            .ok_or_else(|| err(p, format!("{p} must be an integer block size in 0..=256")))?,
        None => 0,
    };
    let frame = raw
        .get("frame")
        .map(|(p, v)| {
            parse_uint(v, 65_535)
                .ok_or_else(|| err(p, format!("{p} must be a frame number 0..=65535")))
        })
        .transpose()?;
    let anim = match raw.get("anim") {
        Some((p, v)) => parse_bool(p, v)?,
        None => true,
    };
    let watermark = match raw.get("wm") {
        Some((p, v)) => {
            let ok = !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !ok {
                return Err(err(
                    p,
                    format!("{p} must name a configured watermark (a-z, 0-9, -, _)"),
                ));
            }
            Some(v.to_string())
        }
        None => None,
    };
    Ok(More {
        gravity,
        crop,
        trim,
        flip,
        rotate,
        blur,
        sharpen,
        pixelate: if pixelate <= 1 { 0 } else { pixelate },
        brightness,
        contrast,
        gamma,
        saturation,
        anim: anim && frame.is_none(),
        frame,
        watermark,
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
        match self.gravity {
            Gravity::Centre => {}
            Gravity::Auto => s.push_str("&g=auto"),
            Gravity::Point { x, y } => {
                s.push_str(&format!(
                    "&g={}x{}",
                    show(u32::from(x), 10_000),
                    show(u32::from(y), 10_000)
                ));
            }
        }
        match self.crop {
            None => {}
            Some(Crop::Pixels {
                x,
                y,
                width,
                height,
            }) => {
                s.push_str(&format!("&crop={x},{y},{width},{height}"));
            }
            Some(Crop::Fraction {
                x,
                y,
                width,
                height,
            }) => {
                let f = |v: u32| {
                    let t = show(v, 10_000);
                    if t.contains('.') {
                        t
                    } else {
                        format!("{t}.0")
                    }
                };
                s.push_str(&format!(
                    "&crop={},{},{},{}",
                    f(x),
                    f(y),
                    f(width),
                    f(height)
                ));
            }
        }
        match self.trim {
            Trim::None => {}
            Trim::Sides {
                top,
                right,
                bottom,
                left,
            } => {
                s.push_str(&format!("&trim={top};{right};{bottom};{left}"));
            }
            Trim::Auto { tolerance } => s.push_str(&format!("&trim=auto:{tolerance}")),
        }
        match (self.flip.h, self.flip.v) {
            (true, true) => s.push_str("&flip=hv"),
            (true, false) => s.push_str("&flip=h"),
            (false, true) => s.push_str("&flip=v"),
            (false, false) => {}
        }
        if self.rotate != 0 {
            s.push_str(&format!("&rot={}", self.rotate));
        }
        for (name, v, neutral) in [
            ("blur", self.blur, 0),
            ("sharpen", self.sharpen, 0),
            ("brightness", self.brightness, 100),
            ("contrast", self.contrast, 100),
            ("gamma", self.gamma, 100),
            ("saturation", self.saturation, 100),
        ] {
            if v != neutral {
                s.push_str(&format!("&{name}={}", show(v, 100)));
            }
        }
        if self.pixelate > 1 {
            s.push_str(&format!("&pixelate={}", self.pixelate));
        }
        if let Some(f) = self.frame {
            s.push_str(&format!("&frame={f}"));
        } else if !self.anim {
            s.push_str("&anim=0");
        }
        if let Some(w) = &self.watermark {
            s.push_str("&wm=");
            s.push_str(w);
        }
        s
    }

    /// The effects, as the pipeline applies them.
    pub fn effects(&self) -> crate::pipeline::effects::Effects {
        let f = |v: u32| v as f32 / 100.0;
        crate::pipeline::effects::Effects {
            blur: f(self.blur),
            sharpen: f(self.sharpen),
            pixelate: self.pixelate,
            brightness: f(self.brightness),
            contrast: f(self.contrast),
            gamma: f(self.gamma),
            saturation: f(self.saturation),
        }
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
        assert!(!t("w=1&anim=false").anim);
        // compression=fast only matters to a negotiated answer; metadata only to JPEG output.
        assert!(t("w=1&compression=fast").fast);
        assert_eq!(t("w=1&fm=webp&compression=fast"), t("w=1&fm=webp"));
        assert_eq!(t("w=1&metadata=keep").metadata, Metadata::Keep);
        assert_eq!(t("w=1&fm=png&metadata=keep"), t("w=1&fm=png"));
        assert_eq!(t("w=1&metadata=none"), t("w=1"));
    }

    #[test]
    fn transforms_issue_parameters() {
        assert_eq!(
            t("w=10&h=10&g=north").gravity,
            Gravity::Point { x: 5000, y: 0 }
        );
        assert_eq!(t("w=10&h=10&gravity=top"), t("w=10&h=10&g=no"));
        assert_eq!(t("w=10&h=10&g=0.5x0.5").gravity, Gravity::Centre);
        assert_eq!(
            t("w=10&h=10&g=fp:0.25:0.75").gravity,
            Gravity::Point { x: 2500, y: 7500 }
        );
        assert_eq!(t("w=10&h=10&g=smart").gravity, Gravity::Auto);
        assert_eq!(
            t("crop=1,2,30,40").crop,
            Some(Crop::Pixels {
                x: 1,
                y: 2,
                width: 30,
                height: 40
            })
        );
        assert_eq!(
            t("crop=0.1,0,0.5,1.0").crop,
            Some(Crop::Fraction {
                x: 1000,
                y: 0,
                width: 5000,
                height: 10_000
            })
        );
        assert_eq!(
            t("trim=1;2;3;4").trim,
            Trim::Sides {
                top: 1,
                right: 2,
                bottom: 3,
                left: 4
            }
        );
        assert_eq!(t("trim=auto").trim, Trim::Auto { tolerance: 10 });
        assert_eq!(t("trim=0;0;0;0&w=5"), t("w=5"));
        assert_eq!(t("rot=90").rotate, 90);
        assert_eq!(t("rotate=0&w=5"), t("w=5"));
        assert_eq!(t("flip=vh").flip, Flip { h: true, v: true });
        assert_eq!(
            t("brightness=1&contrast=1.0&gamma=1&saturation=1&blur=0&w=5"),
            t("w=5")
        );
        assert_eq!(t("blur=2.5").blur, 250);
        assert_eq!(t("pixelate=1&w=5"), t("w=5"));
        assert_eq!(t("frame=3").frame, Some(3));
        assert!(!t("frame=3").anim);
        assert!(!t("anim=false&w=1").anim);
        assert_eq!(t("wm=logo").watermark.as_deref(), Some("logo"));
        assert_eq!(show(150, 100), "1.5");
        assert_eq!(show(5, 100), "0.05");
        assert_eq!(show(3300, 10_000), "0.33");
        for (q, param) in [
            ("g=face", "g"),
            ("gravity=middle", "gravity"),
            ("g=1.5x0", "g"),
            ("crop=1,2,3", "crop"),
            ("crop=0,0,0,5", "crop"),
            ("crop=0.5,0,0.6,1", "crop"),
            ("trim=1;2", "trim"),
            ("trim=auto:300", "trim"),
            ("rot=45", "rot"),
            ("flip=x", "flip"),
            ("blur=251", "blur"),
            ("sharpen=11", "sharpen"),
            ("gamma=0", "gamma"),
            ("saturation=-1", "saturation"),
            ("pixelate=999", "pixelate"),
            ("frame=x", "frame"),
            ("wm=../x", "wm"),
        ] {
            assert_eq!(p(q).expect_err(q).param, param, "{q}");
        }
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

    fn arb_more() -> impl Strategy<Value = More> {
        (
            prop_oneof![
                Just(Gravity::Centre),
                Just(Gravity::Auto),
                (0u16..=10_000, 0u16..=10_000).prop_map(|(x, y)| Gravity::Point { x, y }),
            ],
            proptest::option::of(prop_oneof![
                (0u32..5000, 0u32..5000, 1u32..5000, 1u32..5000).prop_map(
                    |(x, y, width, height)| Crop::Pixels {
                        x,
                        y,
                        width,
                        height
                    }
                ),
                (0u32..5000, 0u32..5000, 1u32..5000, 1u32..5000).prop_map(
                    |(x, y, width, height)| Crop::Fraction {
                        x,
                        y,
                        width,
                        height
                    }
                ),
            ]),
            prop_oneof![
                Just(Trim::None),
                any::<u8>().prop_map(|tolerance| Trim::Auto { tolerance }),
                (0u32..100, 0u32..100, 0u32..100, 1u32..100).prop_map(
                    |(top, right, bottom, left)| Trim::Sides {
                        top,
                        right,
                        bottom,
                        left
                    }
                ),
            ],
            (any::<bool>(), any::<bool>()).prop_map(|(h, v)| Flip { h, v }),
            prop_oneof![Just(0u16), Just(90), Just(180), Just(270)],
            (
                0u32..=25_000,
                0u32..=1000,
                0u32..=1000,
                1u32..=1000,
                0u32..=1000,
            ),
            prop_oneof![Just(0u32), 2u32..=256],
            proptest::option::of(0u32..100),
            any::<bool>(),
            proptest::option::of("[a-z0-9_-]{1,10}"),
        )
            .prop_map(
                |(
                    gravity,
                    crop,
                    trim,
                    flip,
                    rotate,
                    (blur, sharpen, brightness, gamma, saturation),
                    pixelate,
                    frame,
                    anim,
                    watermark,
                )| {
                    let gravity = match gravity {
                        Gravity::Point { x: 5000, y: 5000 } => Gravity::Centre,
                        g => g,
                    };
                    More {
                        gravity,
                        crop,
                        trim,
                        flip,
                        rotate,
                        blur,
                        sharpen,
                        pixelate,
                        brightness,
                        contrast: brightness,
                        gamma,
                        saturation,
                        anim: anim && frame.is_none(),
                        frame,
                        watermark,
                    }
                },
            )
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
                        gravity: Gravity::Centre,
                        crop: None,
                        trim: Trim::None,
                        flip: Flip::default(),
                        rotate: 0,
                        blur: 0,
                        sharpen: 0,
                        pixelate: 0,
                        brightness: 100,
                        contrast: 100,
                        gamma: 100,
                        saturation: 100,
                        frame: None,
                        anim: true,
                        watermark: None,
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
        fn canonical_round_trips_with_every_parameter(tr in arb_transform(), m in arb_more()) {
            let tr = Transform {
                gravity: m.gravity,
                crop: m.crop,
                trim: m.trim,
                flip: m.flip,
                rotate: m.rotate,
                blur: m.blur,
                sharpen: m.sharpen,
                pixelate: m.pixelate,
                brightness: m.brightness,
                contrast: m.contrast,
                gamma: m.gamma,
                saturation: m.saturation,
                frame: m.frame,
                anim: m.anim,
                watermark: m.watermark,
                ..tr
            };
            let back = p(&tr.canonical()).unwrap().unwrap();
            prop_assert_eq!(&back, &tr);
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
