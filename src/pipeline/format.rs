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
}

impl ImageFormat {
    /// Every format, in a stable order.
    pub const ALL: [ImageFormat; 5] = [Self::Jpeg, Self::Png, Self::Gif, Self::Webp, Self::Avif];

    /// The MIME type sent in `Content-Type`.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Avif => "image/avif",
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
            _ => None,
        }
    }

    /// Whether the pipeline can decode this format in this build.
    pub fn can_decode(self) -> bool {
        !matches!(self, Self::Avif)
    }

    /// Whether the pipeline can write this format.
    pub fn can_encode(self) -> bool {
        !matches!(self, Self::Gif)
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
        if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
            let brand = &bytes[8..12];
            if brand == b"avif" || brand == b"avis" {
                return Some(Self::Avif);
            }
            // Compatible brands follow the minor version; look for avif among them.
            let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            let end = size.min(bytes.len()).min(64);
            if end > 16 && bytes[16..end].chunks_exact(4).any(|b| b == b"avif") {
                return Some(Self::Avif);
            }
        }
        None
    }
}

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
