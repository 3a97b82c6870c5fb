//! The output decision before the source is known: a fixed format, or the candidates a
//! negotiated response may use; `resolve` picks the final format once the source is probed.
//!
//! Invariant: pure; the `key_part` string is stable (it is part of every cache key).

use super::format::ImageFormat;

/// Which formats a negotiated response may use. Together with the source version this decides
/// the output, so it is part of the cache key (the key is known before the source is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Candidates {
    pub avif: bool,
    pub webp: bool,
    pub jpeg: bool,
    pub png: bool,
}

/// The output decision before the source is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputSpec {
    /// `fm` named a format.
    Fixed(ImageFormat),
    /// `fm=auto`: the best candidate for the source.
    Negotiated(Candidates),
}

/// Which output formats the config allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enabled {
    pub avif: bool,
    pub webp: bool,
}

impl OutputSpec {
    /// Whether the output is AVIF whatever the source is.
    pub fn is_avif(&self) -> bool {
        match self {
            Self::Fixed(f) => *f == ImageFormat::Avif,
            Self::Negotiated(c) => c.avif,
        }
    }

    /// The answer to give while an AVIF is encoded in the background: WebP when enabled (and,
    /// when negotiated, accepted), else the source's family. `None` when nothing else is
    /// acceptable.
    pub fn without_avif(&self, enabled: Enabled) -> Option<Self> {
        match self {
            Self::Fixed(ImageFormat::Avif) if enabled.webp => Some(Self::Fixed(ImageFormat::Webp)),
            Self::Fixed(ImageFormat::Avif) => Some(Self::Negotiated(Candidates {
                avif: false,
                webp: false,
                jpeg: true,
                png: true,
            })),
            Self::Fixed(_) => Some(*self),
            Self::Negotiated(c) => {
                let rest = Candidates { avif: false, ..*c };
                (rest.webp || rest.jpeg || rest.png).then_some(Self::Negotiated(rest))
            }
        }
    }

    /// Whether the response must carry `Vary: Accept`.
    pub fn varies(&self) -> bool {
        matches!(self, Self::Negotiated(_))
    }

    /// The final format for a source: avif > webp > the source's family (png for alpha, png or
    /// gif sources, else jpeg) > the other family. `None` = nothing acceptable.
    pub fn resolve(&self, source: ImageFormat, has_alpha: bool) -> Option<ImageFormat> {
        let c = match self {
            Self::Fixed(f) => return Some(*f),
            Self::Negotiated(c) => c,
        };
        let png_family = has_alpha || matches!(source, ImageFormat::Png | ImageFormat::Gif);
        let order = if png_family {
            [ImageFormat::Png, ImageFormat::Jpeg]
        } else {
            [ImageFormat::Jpeg, ImageFormat::Png]
        };
        let ok = |f: ImageFormat| match f {
            ImageFormat::Avif => c.avif,
            ImageFormat::Webp => c.webp,
            ImageFormat::Jpeg => c.jpeg,
            ImageFormat::Png => c.png,
            ImageFormat::Gif | ImageFormat::Heic | ImageFormat::Jxl => false,
        };
        [ImageFormat::Avif, ImageFormat::Webp, order[0], order[1]]
            .into_iter()
            .find(|f| ok(*f))
    }

    /// The output of an animated source that stays animated, if any: WebP when asked for or
    /// accepted; else a GIF or WebP source's own format (negotiated answers only); `None` = a
    /// still (AVIF and the stills formats do not animate here).
    pub fn resolve_animated(&self, source: ImageFormat) -> Option<ImageFormat> {
        match self {
            Self::Fixed(ImageFormat::Webp) => Some(ImageFormat::Webp),
            Self::Fixed(_) => None,
            Self::Negotiated(c) if c.webp => Some(ImageFormat::Webp),
            Self::Negotiated(_) => {
                matches!(source, ImageFormat::Gif | ImageFormat::Webp).then_some(source)
            }
        }
    }

    /// A stable string for the cache key.
    pub fn key_part(&self) -> String {
        match self {
            Self::Fixed(f) => format!("fixed:{}", f.name()),
            Self::Negotiated(c) => format!(
                "auto:{}{}{}{}",
                u8::from(c.avif),
                u8::from(c.webp),
                u8::from(c.jpeg),
                u8::from(c.png)
            ),
        }
    }
}
