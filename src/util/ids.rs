//! Random identifiers (image ids, key ids, API keys): from the OS's CSPRNG, URL-safe.

use base64::Engine;

/// A random URL-safe id of `n_bytes` bytes of entropy.
pub fn random_id(n_bytes: usize) -> Result<String, getrandom::Error> {
    let mut b = vec![0u8; n_bytes];
    getrandom::fill(&mut b)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(b)
        .replace(['-', '_'], "x"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_url_safe_and_distinct() {
        let (a, b) = (super::random_id(16).unwrap(), super::random_id(16).unwrap());
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
