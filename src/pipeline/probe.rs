//! Step 1: read what the header says (format by magic bytes, stored size, alpha, EXIF orientation,
//! ICC profile) without decoding pixels, and enforce the pixel limit.

use super::{PipelineError, PixelLimits};
use crate::pipeline::format::ImageFormat;
use std::io::Cursor;

/// What a source's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub format: ImageFormat,
    /// Stored width (before EXIF orientation).
    pub width: u32,
    /// Stored height (before EXIF orientation).
    pub height: u32,
    pub has_alpha: bool,
    /// EXIF orientation 1..=8 (1 when absent or invalid).
    pub orientation: u8,
    /// The embedded ICC profile, if any.
    pub icc: Option<Vec<u8>>,
    /// JPEG only: number of colour components (1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK).
    pub components: u8,
    /// JPEG only: an Adobe APP14 marker is present (CMYK is then stored inverted).
    pub adobe: bool,
    /// Frames of an animation (1 for still images); all count against the pixel limit.
    pub frames: u32,
    /// JPEG only: progressive (or another multi-scan coding).
    pub progressive: bool,
    /// JPEG only: where the EXIF (TIFF structure, after `Exif\0\0`) sits in the probed bytes.
    pub exif: Option<std::ops::Range<usize>>,
    /// HEIF only: the coded image's pixels (`ispe`) when more than the displayed ones (a `clap`
    /// crop): the decoder works on all of them, so the limit counts them (0 = width × height).
    pub coded_pixels: u64,
}

impl Probe {
    /// Size after EXIF orientation.
    pub fn oriented_size(&self) -> (u32, u32) {
        if self.orientation >= 5 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    /// Step 2: the pixel limit, from the header alone.
    pub fn check_limits(&self, limits: PixelLimits) -> Result<(), PipelineError> {
        let shown = u64::from(self.width) * u64::from(self.height);
        let pixels = shown.max(self.coded_pixels) * u64::from(self.frames.max(1));
        if pixels > limits.max_source_pixels {
            return Err(PipelineError::TooManyPixels {
                pixels,
                max: limits.max_source_pixels,
            });
        }
        if self.progressive && pixels > limits.max_progressive_pixels {
            return Err(PipelineError::ProgressiveTooLarge {
                pixels,
                max: limits.max_progressive_pixels,
            });
        }
        Ok(())
    }
}

/// Probe `bytes`.
pub fn probe(bytes: &[u8]) -> Result<Probe, PipelineError> {
    let format = ImageFormat::sniff(bytes).ok_or_else(|| {
        PipelineError::Unsupported(
            "not an image format Refract decodes (JPEG, PNG, GIF, WebP, AVIF, HEIC, JPEG XL)"
                .into(),
        )
    })?;
    if !format.can_decode() {
        return Err(PipelineError::Unsupported(format!(
            "{format} input is not supported by this build"
        )));
    }
    let p = match format {
        ImageFormat::Jpeg => probe_jpeg(bytes)?,
        ImageFormat::Webp => {
            let frames = check_riff_chunks(bytes)?;
            Probe {
                frames,
                ..probe_with_image(bytes, format)?
            }
        }
        ImageFormat::Gif => Probe {
            frames: gif_frames(bytes),
            ..probe_with_image(bytes, format)?
        },
        #[cfg(feature = "heif")]
        ImageFormat::Avif | ImageFormat::Heic => super::heif::probe(bytes, format)?,
        #[cfg(feature = "jxl")]
        ImageFormat::Jxl => super::jxl::probe(bytes)?,
        _ => probe_with_image(bytes, format)?,
    };
    if p.width == 0 || p.height == 0 {
        return Err(PipelineError::Corrupt("zero-sized image".into()));
    }
    Ok(p)
}

fn image_format(f: ImageFormat) -> Option<image::ImageFormat> {
    match f {
        ImageFormat::Png => Some(image::ImageFormat::Png),
        ImageFormat::Gif => Some(image::ImageFormat::Gif),
        ImageFormat::Webp => Some(image::ImageFormat::WebP),
        ImageFormat::Jpeg => Some(image::ImageFormat::Jpeg),
        ImageFormat::Avif | ImageFormat::Heic | ImageFormat::Jxl => None,
    }
}

/// A reader with tight allocation limits, shared by probe and decode.
pub(super) fn reader(
    bytes: &[u8],
    format: ImageFormat,
    max_alloc: u64,
) -> Result<image::ImageReader<Cursor<&[u8]>>, PipelineError> {
    let f = image_format(format)
        .ok_or_else(|| PipelineError::Unsupported(format!("{format} input")))?;
    let mut r = image::ImageReader::with_format(Cursor::new(bytes), f);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_alloc);
    r.limits(limits);
    Ok(r)
}

fn probe_with_image(bytes: &[u8], format: ImageFormat) -> Result<Probe, PipelineError> {
    use image::ImageDecoder;
    // Header parsing allocates little; 64 MiB bounds metadata chunks.
    let mut dec = reader(bytes, format, 64 << 20)?
        .into_decoder()
        .map_err(|e| PipelineError::Corrupt(e.to_string()))?;
    let (width, height) = dec.dimensions();
    let has_alpha = dec.color_type().has_alpha();
    let icc = dec.icc_profile().ok().flatten();
    let orientation = dec.orientation().map(|o| o.to_exif()).unwrap_or(1);
    Ok(Probe {
        format,
        width,
        height,
        has_alpha,
        progressive: false,
        orientation: if (1..=8).contains(&orientation) {
            orientation
        } else {
            1
        },
        icc,
        components: if has_alpha { 4 } else { 3 },
        adobe: false,
        frames: 1,
        exif: None,
        coded_pixels: 0,
    })
}

/// Every RIFF chunk of a WebP must fit in the file: a chunk that claims more bytes than remain
/// would make the decoder allocate its claimed size (found by fuzzing: a 4 GiB EXIF chunk).
/// Returns the number of frames (ANMF chunks; 1 for a still image).
fn check_riff_chunks(b: &[u8]) -> Result<u32, PipelineError> {
    let corrupt = |m: &str| PipelineError::Corrupt(format!("WebP: {m}"));
    let mut i = 12usize;
    let mut frames = 0u32;
    while i + 8 <= b.len() {
        if &b[i..i + 4] == b"ANMF" {
            frames = frames.saturating_add(1);
        }
        let size = u32::from_le_bytes([b[i + 4], b[i + 5], b[i + 6], b[i + 7]]) as usize;
        let end = (i + 8)
            .checked_add(size)
            .ok_or_else(|| corrupt("chunk size overflows"))?;
        if end > b.len() {
            return Err(corrupt("chunk larger than the file (truncated or forged)"));
        }
        i = end + (size & 1);
    }
    Ok(frames.max(1))
}

/// Image descriptors in a GIF (its frames), counted by walking its blocks without decoding.
/// A truncated file counts the frames seen before the cut (at least 1).
fn gif_frames(b: &[u8]) -> u32 {
    let mut frames = 0u32;
    let _ = walk_gif(b, &mut frames);
    frames.max(1)
}

fn walk_gif(b: &[u8], frames: &mut u32) -> Option<()> {
    fn skip_sub_blocks(b: &[u8], mut i: usize) -> Option<usize> {
        loop {
            let n = usize::from(*b.get(i)?);
            i += 1 + n;
            if n == 0 {
                return Some(i);
            }
        }
    }
    let table = |packed: u8| {
        if packed & 0x80 != 0 {
            3usize << ((packed & 7) + 1)
        } else {
            0
        }
    };
    let mut i = 13 + table(*b.get(10)?);
    loop {
        match *b.get(i)? {
            0x2C => {
                *frames = frames.saturating_add(1);
                i += 10 + table(*b.get(i + 9)?);
                i = skip_sub_blocks(b, i + 1)?;
            }
            0x21 => i = skip_sub_blocks(b, i + 2)?,
            _ => return Some(()),
        }
    }
}

/// Walk the JPEG markers up to the first scan: SOF dimensions, APP1 EXIF, APP2 ICC, APP14 Adobe.
fn probe_jpeg(b: &[u8]) -> Result<Probe, PipelineError> {
    let corrupt = |m: &str| PipelineError::Corrupt(format!("JPEG: {m}"));
    let mut i = 2usize;
    let mut size = None;
    let mut components = 3u8;
    let mut orientation = 1u8;
    let mut adobe = false;
    let mut progressive = false;
    let mut exif = None;
    let mut icc_chunks: Vec<(u8, &[u8])> = Vec::new();
    loop {
        // Find the next marker, skipping fill bytes.
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return Err(corrupt("no frame header"));
        };
        i += 1;
        if marker == 0xD8 || marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue;
        }
        if marker == 0xD9 {
            return Err(corrupt("end of image before any scan"));
        }
        let len = match b.get(i..i + 2) {
            Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])),
            None => return Err(corrupt("truncated marker")),
        };
        if len < 2 {
            return Err(corrupt("bad segment length"));
        }
        let Some(seg) = b.get(i + 2..i + len) else {
            return Err(corrupt("truncated segment"));
        };
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if seg.len() < 6 {
                    return Err(corrupt("short frame header"));
                }
                let h = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
                let w = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
                components = seg[5];
                size = Some((w, h));
                progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
            }
            0xE1 if seg.starts_with(b"Exif\0\0") => {
                if let Some(o) = image::metadata::Orientation::from_exif_chunk(&seg[6..]) {
                    orientation = o.to_exif();
                }
                exif.get_or_insert(i + 2 + 6..i + len);
            }
            0xE2 if seg.starts_with(b"ICC_PROFILE\0") && seg.len() > 14 => {
                icc_chunks.push((seg[12], &seg[14..]));
            }
            0xEE if seg.starts_with(b"Adobe") => adobe = true,
            0xDA => break,
            _ => {}
        }
        i += len;
    }
    let (width, height) = size.ok_or_else(|| corrupt("scan before frame header"))?;
    if !matches!(components, 1 | 3 | 4) {
        return Err(corrupt("unsupported number of components"));
    }
    icc_chunks.sort_by_key(|(n, _)| *n);
    let icc: Vec<u8> = icc_chunks
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .collect();
    Ok(Probe {
        frames: 1,
        progressive,
        format: ImageFormat::Jpeg,
        width,
        height,
        has_alpha: false,
        orientation: if (1..=8).contains(&orientation) {
            orientation
        } else {
            1
        },
        icc: if icc.is_empty() { None } else { Some(icc) },
        components,
        adobe,
        exif,
        coded_pixels: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn animated_gif_frames_are_counted() {
        let b = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/horses-402x280-anim.gif"
        ))
        .unwrap();
        let p = probe(&b).unwrap();
        assert!(p.frames > 1, "{}", p.frames);
        // The limit counts every frame: one frame's pixels times the frame count.
        let one = u64::from(p.width) * u64::from(p.height);
        assert!(p.check_limits(PixelLimits::uniform(one)).is_err());
        assert!(p
            .check_limits(PixelLimits::uniform(one * u64::from(p.frames)))
            .is_ok());
        // Truncated: the frames before the cut still count.
        assert!(gif_frames(&b[..b.len() / 2]) >= 1);
    }

    #[test]
    fn probe_tells_progressive_from_baseline() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
        let prog = std::fs::read(format!("{dir}seeding-5312x2988-progressive.jpg")).unwrap();
        let base = std::fs::read(format!("{dir}path-2560x1600-icc.jpg")).unwrap();
        let p = probe(&prog).unwrap();
        assert!(p.progressive);
        assert!(!probe(&base).unwrap().progressive);
        let limits = PixelLimits {
            max_source_pixels: 50_000_000,
            max_progressive_pixels: 10_000_000,
            max_animation_frames: 10,
        };
        assert!(matches!(
            p.check_limits(limits),
            Err(PipelineError::ProgressiveTooLarge {
                pixels: 15_872_256,
                max: 10_000_000
            })
        ));
    }

    #[test]
    fn probe_rejects_text_and_empty_input() {
        assert!(matches!(probe(b""), Err(PipelineError::Unsupported(_))));
        assert!(matches!(
            probe(b"just some text"),
            Err(PipelineError::Unsupported(_))
        ));
        assert!(matches!(
            probe(&[0xFF, 0xD8, 0xFF]),
            Err(PipelineError::Corrupt(_))
        ));
    }

    #[test]
    fn probe_reads_a_huge_png_header_without_decoding() {
        // IHDR claiming 100000 x 100000 RGBA.
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0]);
        let crc = crc32(&png[12..]);
        png.extend_from_slice(&crc.to_be_bytes());
        match probe(&png) {
            Ok(p) => {
                assert_eq!((p.width, p.height), (100_000, 100_000));
                assert!(p.check_limits(PixelLimits::uniform(50_000_000)).is_err());
            }
            Err(e) => assert!(matches!(e, PipelineError::Corrupt(_)), "{e:?}"),
        }
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
