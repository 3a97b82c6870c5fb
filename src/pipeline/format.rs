//! The one table of image formats: MIME type, extension, magic-byte sniffing and capabilities.
//!
//! Invariant: formats are recognised by their bytes, never by a file name.

use std::fmt;

/// An image format Refract knows about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImageFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    Avif,
    /// HEIC/HEIF (HEVC in the HEIF container): an input only.
    Heic,
    /// JPEG XL (bare codestream or ISO BMFF container): an input only.
    Jxl,
}

impl ImageFormat {
    /// Every format, in a stable order.
    pub const ALL: [ImageFormat; 7] = [
        Self::Jpeg,
        Self::Png,
        Self::Gif,
        Self::Webp,
        Self::Avif,
        Self::Heic,
        Self::Jxl,
    ];

    /// The MIME type sent in `Content-Type`.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Avif => "image/avif",
            Self::Heic => "image/heic",
            Self::Jxl => "image/jxl",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Webp => "webp",
            Self::Avif => "avif",
            Self::Heic => "heic",
            Self::Jxl => "jxl",
        }
    }

    /// The short name used in parameters and config (`fm=webp`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Webp => "webp",
            Self::Avif => "avif",
            Self::Heic => "heic",
            Self::Jxl => "jxl",
        }
    }

    /// Parse a format name as written in `fm=` or config (`jpg` is an alias of `jpeg`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "jpeg" | "jpg" => Some(Self::Jpeg),
            "png" => Some(Self::Png),
            "gif" => Some(Self::Gif),
            "webp" => Some(Self::Webp),
            "avif" => Some(Self::Avif),
            "heic" | "heif" => Some(Self::Heic),
            "jxl" => Some(Self::Jxl),
            _ => None,
        }
    }

    /// Whether the pipeline can decode this format in this build (AVIF and HEIC need the
    /// `heif` feature, JPEG XL the `jxl` feature).
    pub fn can_decode(self) -> bool {
        match self {
            Self::Avif | Self::Heic => cfg!(feature = "heif"),
            Self::Jxl => cfg!(feature = "jxl"),
            _ => true,
        }
    }

    /// Whether the pipeline can write this format.
    pub fn can_encode(self) -> bool {
        !matches!(self, Self::Gif | Self::Heic | Self::Jxl)
    }

    /// Whether the format can carry an animation (as an output).
    pub fn can_animate(self) -> bool {
        matches!(self, Self::Webp | Self::Gif)
    }

    /// Whether the format can carry an alpha channel.
    pub fn supports_alpha(self) -> bool {
        !matches!(self, Self::Jpeg)
    }

    /// Recognise a format from the first bytes of a file.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Some(Self::Jpeg);
        }
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Some(Self::Png);
        }
        if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            return Some(Self::Gif);
        }
        if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            return Some(Self::Webp);
        }
        if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(JXL_CONTAINER) {
            return Some(Self::Jxl);
        }
        if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
            let brand = &bytes[8..12];
            if brand == b"avif" || brand == b"avis" {
                return Some(Self::Avif);
            }
            // Compatible brands follow the minor version: avif among them wins (an AVIF with a
            // generic `mif1` major brand), then any HEVC brand.
            let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            let end = size.min(bytes.len()).min(64);
            let compatible = bytes.get(16..end).unwrap_or_default();
            if compatible.chunks_exact(4).any(|b| b == b"avif") {
                return Some(Self::Avif);
            }
            let hevc = |b: &[u8]| HEIC_BRANDS.contains(&b);
            if hevc(brand) || compatible.chunks_exact(4).any(hevc) {
                return Some(Self::Heic);
            }
        }
        None
    }
}

/// The ISO BMFF signature box that starts a JPEG XL container.
const JXL_CONTAINER: &[u8] = b"\0\0\0\x0cJXL \r\n\x87\n";

/// `ftyp` brands of HEVC-coded HEIF files (stills and sequences).
const HEIC_BRANDS: [&[u8]; 6] = [b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"];

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_recognises_magic_bytes_not_names() {
        assert_eq!(
            ImageFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageFormat::Png)
        );
        assert_eq!(ImageFormat::sniff(b"GIF89a...."), Some(ImageFormat::Gif));
        assert_eq!(
            ImageFormat::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageFormat::Webp)
        );
        assert_eq!(
            ImageFormat::sniff(b"\0\0\0\x1cftypavif\0\0\0\0"),
            Some(ImageFormat::Avif)
        );
        assert_eq!(
            ImageFormat::sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic"),
            Some(ImageFormat::Heic)
        );
        assert_eq!(
            ImageFormat::sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"),
            Some(ImageFormat::Heic)
        );
        assert_eq!(
            ImageFormat::sniff(b"\0\0\0\x1cftypmif1\0\0\0\0mif1avifmiaf"),
            Some(ImageFormat::Avif)
        );
        assert_eq!(ImageFormat::sniff(b"\0\0\0\x14ftypmif1\0\0\0\0mif1"), None);
        assert_eq!(
            ImageFormat::sniff(&[0xFF, 0x0A, 0x30]),
            Some(ImageFormat::Jxl)
        );
        assert_eq!(
            ImageFormat::sniff(b"\0\0\0\x0cJXL \r\n\x87\n\0\0\0\x14ftypjxl "),
            Some(ImageFormat::Jxl)
        );
        assert_eq!(ImageFormat::sniff(b"hello world, not an image"), None);
        assert_eq!(ImageFormat::sniff(b""), None);
    }

    #[test]
    fn names_round_trip() {
        for f in ImageFormat::ALL {
            assert_eq!(ImageFormat::from_name(f.name()), Some(f));
        }
        assert_eq!(ImageFormat::from_name("jpg"), Some(ImageFormat::Jpeg));
    }
}
