//! Invariant: `transform::parse` never panics on any query string, nor on any
//! `/cdn-cgi/image/` options segment (through `cdn_cgi::translate`); whatever it accepts has a
//! canonical form that parses back to the same transform (and the same canonical string).
#![no_main]
use libfuzzer_sys::fuzz_target;
use refract::delivery::cdn_cgi::translate;
use refract::pipeline::transform::{parse, ParamConfig, Transform};
use refract::util::query::Query;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else { return };
    let cfg = ParamConfig::default();
    let round_trip = |t: Transform| {
        let c = t.canonical();
        let back = parse(&Query::parse(&c), &cfg).expect("canonical form must parse").expect("canonical form is a transform");
        assert_eq!(back, t);
        assert_eq!(back.canonical(), c);
    };
    if let Ok(Some(t)) = parse(&Query::parse(q), &cfg) {
        round_trip(t);
    }
    if let Ok(pairs) = translate(q) {
        if let Ok(Some(t)) = parse(&Query::from_pairs(pairs), &cfg) {
            round_trip(t);
        }
    }
});
