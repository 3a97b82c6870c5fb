//! Invariant: any `Accept` header parses without panicking, every q-value is in 0..=1, and a
//! negotiated output (when one exists) is a format the client accepts.
#![no_main]
use libfuzzer_sys::fuzz_target;
use refract::pipeline::format::ImageFormat;
use refract::delivery::negotiate::{self, Accept};
use refract::pipeline::output::{Enabled, OutputSpec};
use refract::pipeline::transform::FormatRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = std::str::from_utf8(data) else { return };
    let a = Accept::parse(h);
    for f in ImageFormat::ALL {
        let q = a.quality(f.mime());
        assert!((0.0..=1.0).contains(&q));
    }
    if let Ok(spec) = negotiate::decide(FormatRequest::Auto, &a, Enabled { avif: true, webp: true }) {
        if let Some(out) = spec.resolve(ImageFormat::Jpeg, false) {
            assert!(a.quality(out.mime()) > 0.0);
        }
    }
});
