//! Invariant: the upload parser never panics on any body, split into chunks anywhere; what it
//! accepts respects the limits: 1..=max_files files, each at most max_file_bytes, tags
//! normalised (lower-case, 1..=64 chars, no comma), a wanted key sanitised (no `..` segment,
//! no leading `/`, no control character).
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use refract::library::upload::{parse, UploadLimits};

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else { return };
    // The first byte picks the chunk size, so boundaries fall at every position across runs.
    let size = usize::from(split).max(1);
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        body.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let lim = UploadLimits { max_file_bytes: 4096, max_files: 3 };
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let result = rt.block_on(parse(
        "multipart/form-data; boundary=XyZ",
        futures_util::stream::iter(chunks),
        lim,
    ));
    if let Ok(form) = result {
        assert!(!form.files.is_empty() && form.files.len() <= lim.max_files);
        for f in &form.files {
            assert!(f.bytes.len() as u64 <= lim.max_file_bytes);
            assert!(!f.filename.contains('/') && !f.filename.chars().any(char::is_control));
        }
        for t in &form.tags {
            assert!(!t.is_empty() && t.chars().count() <= 64 && !t.contains(','));
            assert_eq!(t, &t.to_lowercase());
        }
        if let Some(k) = &form.key {
            assert!(!k.starts_with('/') && !k.chars().any(char::is_control));
            assert!(k.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
        }
    }
});
