//! A ZIP archive written as a stream: each entry stored (images are compressed already), its
//! local header carrying the CRC-32 and sizes (the caller has the entry's bytes), then the
//! central directory. Entry names are made safe and unique here. No ZIP64: an archive stays
//! under 4 GiB and 65,535 entries (the caller refuses more before writing anything).

/// Largest archive (bytes of headers and data) written without ZIP64.
pub const MAX_BYTES: u64 = u32::MAX as u64 - (64 << 20);
/// Most entries.
pub const MAX_ENTRIES: usize = 65_000;

/// The archive being written: what the central directory needs.
#[derive(Default)]
pub struct Writer {
    offset: u64,
    central: Vec<u8>,
    entries: u16,
    names: std::collections::HashSet<String>,
}

impl Writer {
    /// The bytes of one entry (local header, then the data), named `name` made safe and unique.
    /// `None` past the limits.
    pub fn entry(&mut self, name: &str, data: &[u8], mtime_secs: i64) -> Option<Vec<u8>> {
        let name = self.unique(&safe_name(name));
        let crc = crc32fast::hash(data);
        let size = u32::try_from(data.len()).ok()?;
        let (time, date) = dos_time(mtime_secs);
        let n = name.as_bytes();
        let mut local = Vec::with_capacity(30 + n.len() + data.len());
        local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        local.extend_from_slice(&20u16.to_le_bytes()); // version needed
        local.extend_from_slice(&0x0800u16.to_le_bytes()); // flags: UTF-8 names
        local.extend_from_slice(&0u16.to_le_bytes()); // stored
        local.extend_from_slice(&time.to_le_bytes());
        local.extend_from_slice(&date.to_le_bytes());
        local.extend_from_slice(&crc.to_le_bytes());
        local.extend_from_slice(&size.to_le_bytes());
        local.extend_from_slice(&size.to_le_bytes());
        local.extend_from_slice(&u16::try_from(n.len()).ok()?.to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes()); // extra
        local.extend_from_slice(n);
        let offset = u32::try_from(self.offset).ok()?;
        if self.offset + local.len() as u64 + data.len() as u64 > MAX_BYTES
            || usize::from(self.entries) >= MAX_ENTRIES
        {
            return None;
        }
        let c = &mut self.central;
        c.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        c.extend_from_slice(&0x031eu16.to_le_bytes()); // made by: Unix, 3.0
        c.extend_from_slice(&20u16.to_le_bytes());
        c.extend_from_slice(&0x0800u16.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes());
        c.extend_from_slice(&time.to_le_bytes());
        c.extend_from_slice(&date.to_le_bytes());
        c.extend_from_slice(&crc.to_le_bytes());
        c.extend_from_slice(&size.to_le_bytes());
        c.extend_from_slice(&size.to_le_bytes());
        c.extend_from_slice(&(n.len() as u16).to_le_bytes());
        c.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
        c.extend_from_slice(&(0o100_644u32 << 16).to_le_bytes()); // -rw-r--r--
        c.extend_from_slice(&offset.to_le_bytes());
        c.extend_from_slice(n);
        local.extend_from_slice(data);
        self.offset += local.len() as u64;
        self.entries += 1;
        Some(local)
    }

    /// The central directory and its end record: the archive's last bytes.
    pub fn finish(self) -> Vec<u8> {
        let mut out = self.central;
        let size = out.len() as u32;
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0; 4]); // disk numbers
        out.extend_from_slice(&self.entries.to_le_bytes());
        out.extend_from_slice(&self.entries.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(self.offset as u32).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // comment
        out
    }

    /// `name`, or `name (2).ext`, `name (3).ext`… when taken (case-insensitively).
    fn unique(&mut self, name: &str) -> String {
        let (stem, ext) = match name.rsplit_once('.') {
            Some((s, e)) if !s.is_empty() && !s.ends_with('/') => (s, format!(".{e}")),
            _ => (name, String::new()),
        };
        let mut candidate = name.to_string();
        let mut n = 2;
        while !self.names.insert(candidate.to_lowercase()) {
            candidate = format!("{stem} ({n}){ext}");
            n += 1;
        }
        candidate
    }
}

/// A relative path with `/` separators: no empty, `.` or `..` segments, no leading `/`, no
/// backslashes or control characters, at most 200 bytes per segment.
pub fn safe_name(name: &str) -> String {
    let segs: Vec<String> = name
        .split(['/', '\\'])
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .map(|s| {
            let clean: String = s
                .chars()
                .map(|c| if c.is_control() || c == ':' { '_' } else { c })
                .collect();
            let mut end = clean.len().min(200);
            while !clean.is_char_boundary(end) {
                end -= 1;
            }
            clean[..end].to_string()
        })
        .collect();
    if segs.is_empty() {
        "file".into()
    } else {
        segs.join("/")
    }
}

/// MS-DOS time and date of unix seconds (UTC; 1980 at the earliest).
fn dos_time(secs: i64) -> (u16, u16) {
    let ymd = crate::util::clock::ymd(secs.max(315_532_800) * 1000);
    let (y, m, d) = (
        ymd[0..4].parse::<u16>().unwrap_or(1980),
        ymd[5..7].parse::<u16>().unwrap_or(1),
        ymd[8..10].parse::<u16>().unwrap_or(1),
    );
    let tod = secs.rem_euclid(86_400) as u16 as u32;
    let t = ((tod / 3600) << 11) | (((tod % 3600) / 60) << 5) | ((tod % 60) / 2);
    (
        t as u16,
        ((y.saturating_sub(1980).min(127)) << 9) | (m << 5) | d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_unique() {
        assert_eq!(safe_name("../../etc/passwd"), "etc/passwd");
        assert_eq!(safe_name("/a\\b/./c\u{7}.png"), "a/b/c_.png");
        assert_eq!(safe_name(".."), "file");
        let mut w = Writer::default();
        assert_eq!(w.unique("a.png"), "a.png");
        assert_eq!(w.unique("A.png"), "A (2).png");
        assert_eq!(w.unique("a.png"), "a (3).png");
        assert_eq!(w.unique("noext"), "noext");
        assert_eq!(w.unique("noext"), "noext (2)");
    }

    #[test]
    fn an_archive_has_its_entries_and_directory() {
        let mut w = Writer::default();
        let a = w.entry("x/a.txt", b"hello", 1_796_233_589).unwrap();
        let b = w.entry("x/a.txt", b"world!", 0).unwrap();
        let end = w.finish();
        assert_eq!(&a[..4], b"PK\x03\x04");
        assert!(a.ends_with(b"hello") && b.ends_with(b"world!"));
        assert!(end.windows(11).any(|x| x == b"x/a (2).txt"));
        assert_eq!(&end[end.len() - 22..end.len() - 18], b"PK\x05\x06");
        assert_eq!(
            u16::from_le_bytes([end[end.len() - 12], end[end.len() - 11]]),
            2
        );
    }
}
