//! `remove_exif`: drop EXIF and XMP from an original without re-encoding it (lossless).
//! The EXIF orientation is the one field kept (as a minimal EXIF block), so the image still
//! displays the right way up. GIF carries neither and is returned as is.
//!
//! Invariant: the compressed image data is copied byte for byte; only metadata segments or
//! chunks are dropped or replaced.

use crate::pipeline::format::ImageFormat;

/// Whether `strip` can remove the metadata of this format losslessly (HEIC, AVIF and JPEG XL
/// keep theirs in ISO BMFF items, which are not rewritten here).
pub fn can_strip(format: ImageFormat) -> bool {
    matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Webp | ImageFormat::Gif
    )
}

/// The bytes without EXIF/XMP, or `None` when the container is malformed.
pub fn strip(bytes: &[u8], format: ImageFormat, orientation: u8) -> Option<Vec<u8>> {
    match format {
        ImageFormat::Jpeg => jpeg(bytes, orientation),
        ImageFormat::Png => png(bytes),
        ImageFormat::Webp => webp(bytes, orientation),
        _ => Some(bytes.to_vec()),
    }
}

/// A big-endian TIFF block with a single IFD entry: Orientation.
fn minimal_tiff(orientation: u8) -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, orientation, 0, 0]);
    t.extend_from_slice(&[0, 0, 0, 0]);
    t
}

fn jpeg(b: &[u8], orientation: u8) -> Option<Vec<u8>> {
    if b.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    if orientation > 1 {
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend(minimal_tiff(orientation));
        let len = u16::try_from(payload.len() + 2).ok()?;
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend(payload);
    }
    let mut i = 2;
    loop {
        if *b.get(i)? != 0xFF {
            return None;
        }
        let marker = *b.get(i + 1)?;
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            // Start of scan (or end): the rest is entropy-coded data, copied as is.
            out.extend_from_slice(&b[i..]);
            return Some(out);
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            out.extend_from_slice(&b[i..i + 2]);
            i += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*b.get(i + 2)?, *b.get(i + 3)?]));
        let end = i.checked_add(2)?.checked_add(len)?;
        let seg = b.get(i..end)?;
        let payload = &seg[4..];
        let is_metadata = marker == 0xE1
            && (payload.starts_with(b"Exif\0")
                || payload.starts_with(b"http://ns.adobe.com/xap/1.0/")
                || payload.starts_with(b"http://ns.adobe.com/xmp/extension/"));
        if !is_metadata {
            out.extend_from_slice(seg);
        }
        i = end;
    }
}

fn png(b: &[u8]) -> Option<Vec<u8>> {
    const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if b.get(..8)? != SIG {
        return None;
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(SIG);
    let mut i = 8;
    while i < b.len() {
        let len = u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize;
        let end = i.checked_add(12)?.checked_add(len)?;
        let chunk = b.get(i..end)?;
        let kind = &chunk[4..8];
        let data = &chunk[8..8 + len];
        let is_metadata =
            kind == b"eXIf" || (kind == b"iTXt" && data.starts_with(b"XML:com.adobe.xmp\0"));
        if !is_metadata {
            out.extend_from_slice(chunk);
        }
        i = end;
        if kind == b"IEND" {
            break;
        }
    }
    Some(out)
}

fn webp(b: &[u8], orientation: u8) -> Option<Vec<u8>> {
    if b.get(..4)? != b"RIFF" || b.get(8..12)? != b"WEBP" {
        return None;
    }
    let mut chunks: Vec<([u8; 4], Vec<u8>)> = Vec::new();
    let mut i = 12;
    while i + 8 <= b.len() {
        let kind: [u8; 4] = b[i..i + 4].try_into().ok()?;
        let len = u32::from_le_bytes(b[i + 4..i + 8].try_into().ok()?) as usize;
        let data = b.get(i + 8..i.checked_add(8)?.checked_add(len)?)?;
        i += 8 + len + (len & 1);
        if &kind == b"EXIF" || &kind == b"XMP " {
            continue;
        }
        chunks.push((kind, data.to_vec()));
    }
    let has_vp8x = chunks.first().is_some_and(|(k, _)| k == b"VP8X");
    if let Some((_, d)) = chunks.first_mut().filter(|_| has_vp8x) {
        let flags = d.first_mut()?;
        *flags &= !0x0C; // EXIF and XMP flags off
        if orientation > 1 {
            *flags |= 0x08;
        }
    }
    if orientation > 1 && has_vp8x {
        chunks.push((*b"EXIF", minimal_tiff(orientation)));
    }
    let mut body = b"WEBP".to_vec();
    for (k, d) in &chunks {
        body.extend_from_slice(k);
        body.extend_from_slice(&u32::try_from(d.len()).ok()?.to_le_bytes());
        body.extend_from_slice(d);
        if d.len() & 1 == 1 {
            body.push(0);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).ok()?.to_le_bytes());
    out.extend(body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_exif_is_replaced_by_orientation_only() {
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend(minimal_tiff(6));
        exif.extend_from_slice(b"secret camera serial");
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xE1];
        j.extend_from_slice(&u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
        j.extend(&exif);
        j.extend_from_slice(&[0xFF, 0xDA, 1, 2, 3, 0xFF, 0xD9]);
        let s = strip(&j, ImageFormat::Jpeg, 6).unwrap();
        assert!(!s.windows(6).any(|w| w == b"secret"));
        assert!(s.ends_with(&[0xFF, 0xDA, 1, 2, 3, 0xFF, 0xD9]));
        assert!(s.windows(2).any(|w| w == [0x01, 0x12]));
    }

    #[test]
    fn malformed_input_is_refused() {
        assert!(strip(b"\xFF\xD8\xFF\xE1\xFF", ImageFormat::Jpeg, 1).is_none());
        assert!(strip(b"RIFF", ImageFormat::Webp, 1).is_none());
    }
}
