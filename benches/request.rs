//! Micro-benchmarks of the hot request path without IO: parameter parsing, Accept negotiation,
//! cache key and ETag, signature check, a variant-cache hit. `cargo bench --bench request`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use refract::delivery::key::CacheKey;
use refract::delivery::negotiate::{self, Accept};
use refract::delivery::persist::CacheConfig;
use refract::pipeline::format::ImageFormat;
use refract::pipeline::output::Enabled;
use refract::pipeline::transform::{parse, ParamConfig};
use refract::pipeline::Encoded;
use refract::storage::origin::SourceVersion;
use refract::util::cache::VariantCache;
use refract::util::query::Query;
use std::hint::black_box;

fn hot_path(c: &mut Criterion) {
    let cfg = ParamConfig::default();
    let q = "w=400&h=300&fit=cover&q=80&fm=auto&dpr=2";
    let accept = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    c.bench_function("parse params", |b| {
        b.iter(|| parse(&Query::parse(black_box(q)), &cfg).unwrap())
    });
    c.bench_function("parse Accept + decide", |b| {
        b.iter(|| {
            let a = Accept::parse(black_box(accept));
            negotiate::decide(
                refract::pipeline::transform::FormatRequest::Auto,
                &a,
                Enabled {
                    avif: true,
                    webp: true,
                },
                refract::delivery::policy::Negotiate::Vary,
            )
            .unwrap()
        })
    });
    let t = parse(&Query::parse(q), &cfg).unwrap().unwrap();
    let v = SourceVersion {
        etag: Some("\"abc\"".into()),
        modified: Some(1_700_000_000),
        len: 123_456,
    };
    let canonical = t.canonical();
    c.bench_function("cache key + etag", |b| {
        b.iter(|| {
            CacheKey::variant(
                black_box("photos/cat.jpg"),
                &v,
                &canonical,
                "avif,webp",
                "q80",
            )
            .etag()
        })
    });
    let signer =
        refract::delivery::signing::Signer::new(&refract::delivery::signing::SecurityConfig {
            signing_keys: vec![refract::util::secret::Secret("k".into())],
            require_signature: true,
            presets_only: false,
        });
    let signed = signer.sign("/img/photos/cat.jpg", q).unwrap();
    let (p, sq) = signed.split_once('?').unwrap();
    c.bench_function("signature check", |b| {
        b.iter(|| signer.check(black_box(p), Query::parse(sq), 0).unwrap())
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cache = VariantCache::new(
        CacheConfig::default().memory_bytes,
        std::time::Duration::from_secs(3600),
        |e: &refract::pipeline::Encoded| e.bytes.len(),
    );
    let key = CacheKey::variant("photos/cat.jpg", &v, &canonical, "avif,webp", "q80");
    let value = Encoded {
        bytes: bytes::Bytes::from(vec![0u8; 20_000]),
        format: ImageFormat::Webp,
        width: 400,
        height: 300,
    };
    rt.block_on(async {
        let v = value.clone();
        cache
            .get_or_make(key, async move { Ok::<_, refract::error::Error>((v, ())) })
            .await
            .unwrap();
    });
    c.bench_function("variant cache hit", |b| {
        b.iter(|| {
            rt.block_on(async {
                let miss = async { Err::<(Encoded, ()), _>(refract::error::Error::Busy) };
                let (v, made) = cache.get_or_make(key, miss).await.unwrap();
                assert!(made.is_none(), "a hit");
                v
            })
        })
    });
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
