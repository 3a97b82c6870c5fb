//! EXIF carried into a JPEG output (`metadata=keep` or `copyright`): the source's TIFF-structured
//! EXIF with its orientation reset to 1 (the pixels are already upright), or a new one holding
//! only the copyright notice and artist; and the APP1 segment that carries it.
//!
//! Invariants: pure; reads only within the given slice (malformed EXIF gives `None`, never a
//! panic); a segment that would not fit in one APP1 (64 KiB) is left out.

const ORIENTATION: u16 = 0x0112;
const ARTIST: u16 = 0x013B;
const COPYRIGHT: u16 = 0x8298;
const ASCII: u16 = 2;
const SHORT: u16 = 3;

#[derive(Clone, Copy)]
struct Tiff<'a> {
    b: &'a [u8],
    big: bool,
}

impl<'a> Tiff<'a> {
    fn new(b: &'a [u8]) -> Option<Self> {
        let big = match b.get(0..4)? {
            [b'M', b'M', 0, 42] => true,
            [b'I', b'I', 42, 0] => false,
            _ => return None,
        };
        Some(Self { b, big })
    }

    fn u16(&self, at: usize) -> Option<u16> {
        let s = self.b.get(at..at.checked_add(2)?)?;
        let a = [s[0], s[1]];
        Some(if self.big {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        })
    }

    fn u32(&self, at: usize) -> Option<u32> {
        let s = self.b.get(at..at.checked_add(4)?)?;
        let a = [s[0], s[1], s[2], s[3]];
        Some(if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    /// IFD0's entries: (offset of the entry, tag, type, count).
    fn ifd0(&self) -> Option<Vec<(usize, u16, u16, u32)>> {
        let start = usize::try_from(self.u32(4)?).ok()?;
        let n = usize::from(self.u16(start)?);
        (0..n)
            .map(|i| {
                let at = start + 2 + i * 12;
                Some((at, self.u16(at)?, self.u16(at + 2)?, self.u32(at + 4)?))
            })
            .collect()
    }

    /// An ASCII entry's text (without its NUL), if IFD0 has `tag`.
    fn ascii(&self, tag: u16) -> Option<&'a [u8]> {
        let (at, _, ty, count) = self.ifd0()?.into_iter().find(|e| e.1 == tag)?;
        if ty != ASCII || count == 0 {
            return None;
        }
        let count = usize::try_from(count).ok()?;
        let from = if count <= 4 {
            at + 8
        } else {
            usize::try_from(self.u32(at + 8)?).ok()?
        };
        let s = self.b.get(from..from.checked_add(count)?)?;
        let s = s.split(|&c| c == 0).next().unwrap_or(s);
        (!s.is_empty()).then_some(s)
    }
}

/// The source's EXIF with IFD0's orientation set to 1 (`metadata=keep`).
pub fn upright(tiff: &[u8]) -> Option<Vec<u8>> {
    let t = Tiff::new(tiff)?;
    let mut out = tiff.to_vec();
    for (at, tag, ty, _) in t.ifd0()? {
        if tag == ORIENTATION && ty == SHORT {
            let one = if t.big { [0, 1] } else { [1, 0] };
            out.get_mut(at + 8..at + 10)?.copy_from_slice(&one);
        }
    }
    Some(out)
}

/// A new EXIF holding only the source's copyright notice and artist (`metadata=copyright`);
/// `None` when the source has neither.
pub fn copyright_only(tiff: &[u8]) -> Option<Vec<u8>> {
    let t = Tiff::new(tiff)?;
    let fields: Vec<(u16, &[u8])> = [ARTIST, COPYRIGHT]
        .into_iter()
        .filter_map(|tag| Some((tag, t.ascii(tag)?)))
        .collect();
    if fields.is_empty() {
        return None;
    }
    // Big-endian TIFF: header, one IFD (sorted tags), then the values it points to.
    let mut out = b"MM\0\x2a\0\0\0\x08".to_vec();
    out.extend_from_slice(&u16::try_from(fields.len()).ok()?.to_be_bytes());
    let mut value_at = 8 + 2 + fields.len() * 12 + 4;
    let mut values = Vec::new();
    for (tag, text) in &fields {
        let count = text.len() + 1;
        out.extend_from_slice(&tag.to_be_bytes());
        out.extend_from_slice(&ASCII.to_be_bytes());
        out.extend_from_slice(&u32::try_from(count).ok()?.to_be_bytes());
        if count <= 4 {
            let mut inline = [0u8; 4];
            inline[..text.len()].copy_from_slice(text);
            out.extend_from_slice(&inline);
        } else {
            out.extend_from_slice(&u32::try_from(value_at).ok()?.to_be_bytes());
            values.extend_from_slice(text);
            values.push(0);
            value_at += count;
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&values);
    Some(out)
}

/// `jpeg` with an APP1 EXIF segment holding `tiff`, after SOI and any APP0 (JFIF). Unchanged
/// when the segment would exceed 64 KiB or `jpeg` does not start with SOI.
pub fn insert_app1(jpeg: Vec<u8>, tiff: &[u8]) -> Vec<u8> {
    let seg_len = 2 + 6 + tiff.len();
    let (Ok(len16), true) = (u16::try_from(seg_len), jpeg.starts_with(&[0xFF, 0xD8])) else {
        return jpeg;
    };
    let mut at = 2;
    if jpeg.get(2..4) == Some(&[0xFF, 0xE0]) {
        if let Some(l) = jpeg.get(4..6) {
            at = 4 + usize::from(u16::from_be_bytes([l[0], l[1]]));
        }
    }
    if at > jpeg.len() {
        return jpeg;
    }
    let mut out = Vec::with_capacity(jpeg.len() + seg_len + 2);
    out.extend_from_slice(&jpeg[..at]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len16.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(tiff);
    out.extend_from_slice(&jpeg[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A little-endian TIFF with orientation 6, an artist and a copyright.
    fn sample() -> Vec<u8> {
        let mut b = b"II\x2a\0\x08\0\0\0".to_vec();
        b.extend_from_slice(&3u16.to_le_bytes());
        let entry = |b: &mut Vec<u8>, tag: u16, ty: u16, count: u32, val: [u8; 4]| {
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&ty.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&val);
        };
        entry(&mut b, ORIENTATION, SHORT, 1, [6, 0, 0, 0]);
        entry(&mut b, ARTIST, ASCII, 4, *b"Ann\0");
        let text_at = 8 + 2 + 3 * 12 + 4;
        entry(&mut b, COPYRIGHT, ASCII, 11, (text_at as u32).to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(b"(c) 2026 A\0");
        b
    }

    #[test]
    fn upright_resets_orientation_only() {
        let src = sample();
        let out = upright(&src).unwrap();
        assert_eq!(out.len(), src.len());
        assert_eq!(
            image::metadata::Orientation::from_exif_chunk(&out).map(|o| o.to_exif()),
            Some(1)
        );
        assert_eq!(
            Tiff::new(&out).unwrap().ascii(COPYRIGHT),
            Some(&b"(c) 2026 A"[..])
        );
    }

    #[test]
    fn copyright_only_keeps_the_notice_and_artist() {
        let out = copyright_only(&sample()).unwrap();
        let t = Tiff::new(&out).unwrap();
        assert_eq!(t.ascii(COPYRIGHT), Some(&b"(c) 2026 A"[..]));
        assert_eq!(t.ascii(ARTIST), Some(&b"Ann"[..]));
        assert_eq!(t.ifd0().unwrap().len(), 2);
        let e = exif::Reader::new().read_raw(out).unwrap();
        assert!(e
            .get_field(exif::Tag::Copyright, exif::In::PRIMARY)
            .is_some());
        assert!(e
            .get_field(exif::Tag::Orientation, exif::In::PRIMARY)
            .is_none());
    }

    #[test]
    fn app1_goes_after_jfif() {
        let jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 1, 2, 0xFF, 0xD9];
        let out = insert_app1(jpeg, b"MM\0\x2a\0\0\0\x08");
        assert_eq!(&out[..8], &[0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 1, 2]);
        assert_eq!(&out[8..10], &[0xFF, 0xE1]);
        assert_eq!(&out[12..18], b"Exif\0\0");
        assert_eq!(&out[out.len() - 2..], &[0xFF, 0xD9]);
        assert_eq!(insert_app1(vec![1, 2], b"x"), vec![1, 2]);
    }

    proptest! {
        #[test]
        fn malformed_exif_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut tiff = b"II\x2a\0".to_vec();
            tiff.extend_from_slice(&b);
            let _ = upright(&tiff);
            let _ = copyright_only(&tiff);
        }
    }
}
