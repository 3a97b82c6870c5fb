//! Invariant: any `Accept` header parses without panicking, every q-value is in 0..=1, and a
//! negotiated output is AVIF or WebP only when the client names it acceptably, else the
//! source's family (JPEG here).
#![no_main]
use libfuzzer_sys::fuzz_target;
use refract::pipeline::format::ImageFormat;
use refract::delivery::negotiate::{self, Accept};
use refract::delivery::policy::Negotiate;
use refract::pipeline::output::{Enabled, OutputSpec};
use refract::pipeline::transform::FormatRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = std::str::from_utf8(data) else { return };
    let a = Accept::parse(h);
    for f in ImageFormat::ALL {
        let q = a.quality(f.mime());
        assert!((0.0..=1.0).contains(&q));
    }
    let on = Enabled { avif: true, webp: true };
    if let Ok(spec) = negotiate::decide(FormatRequest::Auto, &a, on, Negotiate::Vary) {
        match spec.resolve(ImageFormat::Jpeg, false) {
            Some(ImageFormat::Jpeg) => {}
            Some(out) => assert!(a.explicit_quality(out.mime()) > 0.0),
            None => panic!("no output for a JPEG source"),
        }
    }
});
