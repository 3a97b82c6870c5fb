//! Micro-benchmarks of the pipeline stages on real images: probe, decode (with and without
//! shrink-on-load), resize, encode per output format, and each transform operation at 400 px
//! (effects, smart-crop window search, orientation turns, auto trim, watermark).
//! `cargo bench --bench pipeline`.
//! Figures go in `bench/RESULTS.md`; CI only builds this (no timing assertions anywhere).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use refract::pipeline::effects::{self, Effects};
use refract::pipeline::format::ImageFormat;
use refract::pipeline::{decode, encode, orient, probe, region, saliency, watermark};
use refract::pipeline::{EncodeConfig, Pixels};
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

    // The transforms issue: each operation on the 400x250 output (or, for the window search
    // and auto trim, on the shrunk decode they run on: 640x400).
    let mut g = c.benchmark_group("operations at 400 px");
    g.sample_size(20);
    let op = |e: Effects| {
        let mut px = small.clone();
        effects::apply(&mut px, &e);
        px
    };
    let none = Effects::default();
    g.bench_function("clone (baseline)", |b| b.iter(|| small.clone()));
    g.bench_function("blur sigma 2", |b| {
        b.iter(|| op(Effects { blur: 2.0, ..none }))
    });
    g.bench_function("blur sigma 20", |b| {
        b.iter(|| op(Effects { blur: 20.0, ..none }))
    });
    g.bench_function("sharpen 2", |b| {
        b.iter(|| {
            op(Effects {
                sharpen: 2.0,
                ..none
            })
        })
    });
    g.bench_function("pixelate 12", |b| {
        b.iter(|| {
            op(Effects {
                pixelate: 12,
                ..none
            })
        })
    });
    g.bench_function("brightness+contrast+gamma", |b| {
        b.iter(|| {
            op(Effects {
                brightness: 1.2,
                contrast: 1.1,
                gamma: 0.9,
                ..none
            })
        })
    });
    g.bench_function("saturation 0", |b| {
        b.iter(|| {
            op(Effects {
                saturation: 0.0,
                ..none
            })
        })
    });
    g.bench_function("rotate 90", |b| b.iter(|| orient::apply(small.clone(), 6)));
    let shrunk = decode::decode(&jpeg, &p_jpeg, 4).unwrap();
    g.bench_function("smart window 640x400 -> 400x400", |b| {
        b.iter(|| saliency::best_window(black_box(&shrunk), 400, 400))
    });
    g.bench_function("auto trim scan 640x400", |b| {
        b.iter(|| region::auto_trim(black_box(&shrunk), region::Region::full(640, 400), 10))
    });
    let mark = watermark::Mark {
        pixels: rgba.clone(),
        x: 10_000,
        y: 10_000,
        margin: 16,
        opacity: 0.6,
        scale: 0.25,
    };
    g.bench_function("watermark 25%", |b| {
        b.iter(|| {
            let mut px = small.clone();
            watermark::apply(&mut px, &mark).unwrap();
            px
        })
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
