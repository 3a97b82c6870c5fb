//! Invariant: `transform::parse` never panics on any query string; whatever it accepts has a
//! canonical form that parses back to the same transform (and the same canonical string).
#![no_main]
use libfuzzer_sys::fuzz_target;
use refract::pipeline::transform::{parse, ParamConfig};
use refract::util::query::Query;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else { return };
    let cfg = ParamConfig::default();
    if let Ok(Some(t)) = parse(&Query::parse(q), &cfg) {
        let c = t.canonical();
        let back = parse(&Query::parse(&c), &cfg).expect("canonical form must parse").expect("canonical form is a transform");
        assert_eq!(back, t);
        assert_eq!(back.canonical(), c);
    }
});
