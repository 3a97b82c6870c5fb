//! Which addresses outgoing HTTP may reach (SSRF guard), for the HTTP origin and for webhooks.
//! The HTTP client resolves names itself through `GuardedResolver`, so the address checked is
//! the address connected to (no check-then-resolve gap); literal IPs (the base URL, redirect
//! targets) are checked where they appear. Redirects: none, or at most `max_redirects`, each
//! re-checked, http(s) only.
//!
//! Refused unless allowed by the caller's allow-list (`storage.http_allow_networks`,
//! `webhooks.allow_networks`): loopback, private (RFC 1918, ULA),
//! link-local, CGNAT (100.64/10), unspecified, multicast, broadcast, reserved, benchmarking and
//! the IPv4-mapped / NAT64 / 6to4 forms of all of these; Teredo and local-use NAT64 entirely.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Parse a config list of networks (`10.0.0.0/8`, or a bare IP as a /32 or /128); the message
/// names the config key.
pub fn parse_networks(list: &[String], key: &str) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{key}: not an IP or CIDR: {p}"))
        })
        .collect()
}

/// The policy: blocked ranges minus explicitly allowed networks.
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    allowed: Vec<IpNet>,
}

impl NetPolicy {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// May the origin connect to `ip`?
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|n| n.contains(&ip)) || !is_internal(ip)
    }
}

fn v4_internal(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xC0) == 64) // CGNAT 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xFE) == 18) // benchmarking 198.18.0.0/15
        || o[0] >= 240 // reserved
}

fn v6_internal(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_internal(v4);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64 64:ff9b::/96 carries an IPv4 address.
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return v4_internal(v4);
    }
    if s[0] == 0x2002 {
        // 6to4 2002::/16 carries an IPv4 address in its next 32 bits.
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return v4_internal(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] == 0x2001 && s[1] == 0) // Teredo 2001::/32 (tunnels to any IPv4)
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 64:ff9b:1::/48
        || (s[0] & 0xFE00) == 0xFC00 // unique local fc00::/7
        || (s[0] & 0xFFC0) == 0xFE80 // link-local fe80::/10
        || (s[0] & 0xFFC0) == 0xFEC0 // site-local (deprecated)
        || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated) and ::/96
}

/// Loopback, private, link-local, CGNAT and the other never-public ranges.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_internal(v4),
        IpAddr::V6(v6) => v6_internal(v6),
    }
}

/// Resolves with the system resolver, then keeps only addresses the policy allows.
struct GuardedResolver {
    policy: Arc<NetPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ok: Vec<SocketAddr> = all.into_iter().filter(|a| policy.allows(a.ip())).collect();
            if ok.is_empty() {
                return Err(format!("{host} resolves only to refused (internal) addresses").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(ok.into_iter());
            Ok(addrs)
        })
    }
}

/// The IP of a URL host given as a literal (`1.2.3.4`, `[::1]`), if it is one.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Whether `host` (a name or a literal IP) may be reached: a literal is checked as it is, a name
/// is resolved and refused when it resolves only to refused addresses. An early answer for a
/// form (the connection is checked again, by `client`'s resolver).
pub async fn check_host(host: &str, policy: &NetPolicy) -> Result<(), String> {
    if let Some(ip) = literal_ip(host) {
        return if policy.allows(ip) {
            Ok(())
        } else {
            Err(format!("{ip} is an internal address"))
        };
    }
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| format!("{host} does not resolve: {e}"))?
        .collect();
    if all.iter().any(|a| policy.allows(a.ip())) {
        Ok(())
    } else {
        Err(format!("{host} resolves only to internal addresses"))
    }
}

/// An outgoing HTTP client: guarded resolver, guarded redirects (at most `max_redirects`; 0
/// follows none), a connect timeout.
pub fn client(
    policy: NetPolicy,
    connect_timeout: Duration,
    max_redirects: usize,
) -> Result<reqwest::Client, String> {
    let policy = Arc::new(policy);
    let redirects = policy.clone();
    let builder = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(connect_timeout)
        .dns_resolver(Arc::new(GuardedResolver { policy }));
    if max_redirects == 0 {
        return builder
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("HTTP client: {e}"));
    }
    builder
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            // `previous` holds the original URL and every hop so far.
            if attempt.previous().len() > max_redirects {
                return attempt.error("too many redirects");
            }
            let url = attempt.url();
            if !matches!(url.scheme(), "http" | "https") {
                return attempt.error("redirect to a non-HTTP URL");
            }
            match url.host_str().map(literal_ip) {
                None => attempt.error("redirect without a host"),
                Some(Some(ip)) if !redirects.allows(ip) => {
                    attempt.error("redirect to a refused (internal) address")
                }
                Some(_) => attempt.follow(),
            }
        }))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_refused_and_public_ones_allowed() {
        let p = NetPolicy::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "64:ff9b:1::a00:1",
        ] {
            assert!(!p.allows(ip.parse().unwrap()), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
            "2001:db9::1",
        ] {
            assert!(p.allows(ip.parse().unwrap()), "{ip} must be allowed");
        }
        let lo = NetPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(lo.allows("127.0.0.1".parse().unwrap()));
        assert!(!lo.allows("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn literal_hosts() {
        assert_eq!(literal_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal_ip("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(literal_ip("example.com"), None);
    }
}
