//! The wall clock, in the two units the crate uses: Unix milliseconds (rows, expiry) and Unix
//! seconds (signed URLs, rate-limit resets, HTTP dates). One place, so tests and code agree.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now (0 before 1970, saturating far in the future).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    secs(SystemTime::now())
}

/// Unix seconds of `t` (0 before 1970).
pub fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_units_agree() {
        let (ms, s) = (now_ms(), now_secs());
        assert!((ms / 1000).abs_diff(i64::try_from(s).unwrap()) <= 1);
        assert_eq!(secs(UNIX_EPOCH - std::time::Duration::from_secs(5)), 0);
    }
}
