//! Micro-benchmarks of the pipeline stages on real images: probe, decode (with and without
//! shrink-on-load), resize, and encode per output format. `cargo bench --bench pipeline`.
//! Figures go in `bench/RESULTS.md`; CI only builds this (no timing assertions anywhere).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use refract::pipeline::format::ImageFormat;
use refract::pipeline::{decode, encode, probe, EncodeConfig, Pixels};
use std::hint::black_box;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn stages(c: &mut Criterion) {
    let jpeg = fixture("path-2560x1600-icc.jpg");
    let png = fixture("dice-800x600-alpha.png");
    let p_jpeg = probe::probe(&jpeg).unwrap();
    let p_png = probe::probe(&png).unwrap();
    let mut g = c.benchmark_group("decode");
    g.sample_size(20);
    g.bench_function("probe 2560x1600 jpeg", |b| {
        b.iter(|| probe::probe(black_box(&jpeg)).unwrap())
    });
    g.bench_function("jpeg 2560x1600 full", |b| {
        b.iter(|| decode::decode(&jpeg, &p_jpeg, 1).unwrap())
    });
    g.bench_function("jpeg 2560x1600 shrink 1/4", |b| {
        b.iter(|| decode::decode(&jpeg, &p_jpeg, 4).unwrap())
    });
    g.bench_function("png 800x600 rgba", |b| {
        b.iter(|| decode::decode(&png, &p_png, 1).unwrap())
    });
    g.finish();

    let full = decode::decode(&jpeg, &p_jpeg, 1).unwrap();
    let rgba = decode::decode(&png, &p_png, 1).unwrap();
    let mut g = c.benchmark_group("resize");
    g.sample_size(20);
    let whole = |p: &Pixels| refract_resize::Crop {
        left: 0.0,
        top: 0.0,
        width: f64::from(p.width),
        height: f64::from(p.height),
    };
    g.bench_function("lanczos3 2560x1600 rgb -> 400x250", |b| {
        b.iter(|| {
            refract_resize::resize(
                &full.data,
                3,
                full.width,
                full.height,
                whole(&full),
                400,
                250,
            )
            .unwrap()
        })
    });
    g.bench_function("lanczos3 800x600 rgba -> 300x225", |b| {
        b.iter(|| {
            refract_resize::resize(
                &rgba.data,
                4,
                rgba.width,
                rgba.height,
                whole(&rgba),
                300,
                225,
            )
            .unwrap()
        })
    });
    g.finish();

    let small = Pixels {
        width: 400,
        height: 250,
        channels: 3,
        data: refract_resize::resize(
            &full.data,
            3,
            full.width,
            full.height,
            whole(&full),
            400,
            250,
        )
        .unwrap(),
    };
    let cfg = EncodeConfig::default();
    let mut g = c.benchmark_group("encode 400x250");
    g.sample_size(10);
    for f in [
        ImageFormat::Jpeg,
        ImageFormat::Webp,
        ImageFormat::Png,
        ImageFormat::Avif,
    ] {
        g.bench_function(f.name(), |b| {
            b.iter(|| encode::encode(&small, f, cfg.default_quality(f), &cfg).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
