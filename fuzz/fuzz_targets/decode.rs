//! Invariant: the whole pipeline (probe → limits → decode → orient → colour → resize → encode)
//! never panics on any bytes: it returns an image or a typed error. Limits are small so that
//! the fuzzer explores parsing, not big allocations. Every other input goes through the
//! decoded-source path (a shared decode scale, the prepared pixels borrowed from a cache).
#![no_main]
use libfuzzer_sys::fuzz_target;
use refract::pipeline::output::{Candidates, OutputSpec};
use refract::pipeline::transform::{parse, ParamConfig};
use refract::pipeline::{
    run, DecodedKey, DecodedSources, EncodeConfig, Job, Memo, PipelineError, PixelLimits, Pixels,
};
use std::sync::Arc;

/// A cache that keeps nothing: each decode is made and lent out once.
struct Lend;

impl DecodedSources for Lend {
    fn get_or_decode(
        &self,
        _key: DecodedKey,
        decode: &mut dyn FnMut() -> Result<Pixels, PipelineError>,
    ) -> Result<Arc<Pixels>, PipelineError> {
        decode().map(Arc::new)
    }
}

fuzz_target!(|data: &[u8]| {
    let t = parse(&refract::util::query::Query::parse("w=32&h=32&fit=contain"), &ParamConfig::default()).ok().flatten().expect("static params");
    let encode = EncodeConfig::default();
    let spec = OutputSpec::Negotiated(Candidates { avif: false, webp: false, jpeg: true, png: true });
    let lend = Lend;
    let memo = (data.len() % 2 == 0).then_some(Memo { cache: Some(&lend), source: [0; 32], share_width: 640 });
    let job = Job { transform: &t, output: spec, encode: &encode, limits: PixelLimits::uniform(4_000_000), deadline: None, watermark: None, memo };
    let _ = run(data, &job);
});
