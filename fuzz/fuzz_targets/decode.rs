//! Invariant: the whole pipeline (probe → limits → decode → orient → colour → resize → encode)
//! never panics on any bytes: it returns an image or a typed error. Limits are small so that
//! the fuzzer explores parsing, not big allocations.
#![no_main]
use libfuzzer_sys::fuzz_target;
use refract::pipeline::output::{Candidates, OutputSpec};
use refract::pipeline::{run, EncodeConfig, Job, PixelLimits};
use refract::pipeline::transform::{parse, ParamConfig};

fuzz_target!(|data: &[u8]| {
    let t = parse(&refract::util::query::Query::parse("w=32&h=32&fit=contain"), &ParamConfig::default()).ok().flatten().expect("static params");
    let encode = EncodeConfig::default();
    let spec = OutputSpec::Negotiated(Candidates { avif: false, webp: false, jpeg: true, png: true });
    let job = Job { transform: &t, output: spec, encode: &encode, limits: PixelLimits::uniform(4_000_000), deadline: None, watermark: None, memo: None };
    let _ = run(data, &job);
});
