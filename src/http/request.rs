//! Reading what a request says about its client: the API key it presents and its address
//! (through trusted proxies). Plain HTTP plumbing: no domain types.

use http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// The key sent with a request: `X-API-Key: k` or `Authorization: Bearer k`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(k) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim());
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The client's address: the socket peer, or what a trusted proxy says (`CF-Connecting-IP`,
/// else the right-most untrusted `X-Forwarded-For` entry).
pub fn client_ip(trusted: &[ipnet::IpNet], peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer_ip = peer.ip();
    if !is_trusted(&peer_ip) {
        return peer_ip;
    }
    let header_ip = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    };
    if let Some(ip) = header_ip("cf-connecting-ip") {
        return ip;
    }
    if let Some(xff) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        for part in xff.rsplit(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) if !is_trusted(&ip) => return ip,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    peer_ip
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(presented_key(&h), Some("abc"));
        h.insert("x-api-key", "xyz".parse().unwrap());
        assert_eq!(presented_key(&h), Some("xyz"));
        let mut h = HeaderMap::new();
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(presented_key(&h), None);
    }

    #[test]
    fn client_ip_believes_only_trusted_proxies() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.2".parse().unwrap());
        assert_eq!(client_ip(&[], peer, &h), peer.ip());
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(&trusted, peer, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        h.insert("cf-connecting-ip", "198.51.100.7".parse().unwrap());
        assert_eq!(
            client_ip(&trusted, peer, &h),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }
}
