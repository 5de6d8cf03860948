//! Who is on the other end of a request when proxies stand in between.
//!
//! `X-Forwarded-For` and `Forwarded` are written by whoever sent the request, so
//! they are believed only from a trusted proxy, and only as far as the chain of
//! trusted proxies reaches: each proxy appends the address it saw, so walking from
//! the right, the first address that is not a trusted proxy is the client. Anything
//! left of it was written by the client and may be forged.

use std::{net::IpAddr, str::FromStr};

use ipnet::IpNet;

/// The proxies whose forwarding headers are believed (`ATTUNE_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// Comma-separated CIDRs (`10.0.0.0/8, 2001:db8::/32`) or single addresses; an
    /// empty string trusts nobody.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let mut nets = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = part
                .parse::<IpNet>()
                .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{part}` is not a CIDR such as 10.0.0.0/8 or an IP address"))?;
            nets.push(net);
        }
        Ok(Self(nets))
    }
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy; then
/// the right-most address in the forwarding header that is not a trusted proxy.
///
/// `x_forwarded_for` and `forwarded` are the header values in the order received
/// (a header may be repeated). `X-Forwarded-For` is read when present, because it is
/// what common ingresses (nginx, Traefik, Envoy, cloud load balancers) append to;
/// `Forwarded` (RFC 7239) only when there is none. Reading the one the proxy does
/// not write would let a client forge it.
pub fn client_address(peer: IpAddr, x_forwarded_for: &[&str], forwarded: &[&str], trusted: &TrustedProxies) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.contains(peer) {
        return peer;
    }
    let hops: Vec<&str> = if x_forwarded_for.is_empty() {
        forwarded.iter().flat_map(|h| h.split(',')).filter_map(forwarded_for_param).collect()
    } else {
        x_forwarded_for.iter().flat_map(|h| h.split(',')).map(str::trim).collect()
    };
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        // An entry that is no address ("unknown", an obfuscated name) ends what can
        // be believed: the proxy that appended it is the last hop known.
        let Some(address) = parse_hop(hop) else { return nearest };
        if !trusted.contains(address) {
            return address;
        }
        nearest = address;
    }
    // Every hop was a trusted proxy: the left-most is where the request began.
    nearest
}

/// The `for=` parameter of one `Forwarded` element (RFC 7239 section 4).
fn forwarded_for_param(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim().eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"'))
    })
}

/// `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(address) = hop.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    let bracketed = hop.strip_prefix('[')?.split_once(']')?.0;
    bracketed.parse::<IpAddr>().ok().map(canonical)
}

/// An IPv4 client seen on a dual-stack socket arrives as `::ffff:a.b.c.d`; it is
/// the same client as `a.b.c.d`, and must match IPv4 CIDRs.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ingress() -> TrustedProxies {
        "10.0.0.0/8, 2001:db8:ffff::/48".parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let got = client_address(ip("198.51.100.9"), &["1.2.3.4"], &["for=5.6.7.8"], &ingress());
        assert_eq!(got, ip("198.51.100.9"));
        let nobody = TrustedProxies::default();
        assert_eq!(client_address(ip("10.0.0.5"), &["1.2.3.4"], &[], &nobody), ip("10.0.0.5"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client() {
        // The client forged "1.2.3.4"; the ingress appended the address it saw.
        let got = client_address(ip("10.0.0.5"), &["1.2.3.4, 203.0.113.7"], &[], &ingress());
        assert_eq!(got, ip("203.0.113.7"));
        // Two trusted hops, and the header repeated.
        let got = client_address(ip("10.0.0.5"), &["1.2.3.4", "203.0.113.7, 10.1.2.3"], &[], &ingress());
        assert_eq!(got, ip("203.0.113.7"));
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let header = r#"for=1.2.3.4, for="[2001:db8:cafe::17]:4711";proto=https, For=10.9.9.9"#;
        assert_eq!(client_address(ip("10.0.0.5"), &[], &[header], &ingress()), ip("2001:db8:cafe::17"));
        let header = "for=192.0.2.60;proto=http;by=203.0.113.43";
        assert_eq!(client_address(ip("10.0.0.5"), &[], &[header], &ingress()), ip("192.0.2.60"));
    }

    #[test]
    fn an_entry_that_is_no_address_stops_at_the_last_known_hop() {
        let got = client_address(ip("10.0.0.5"), &["1.2.3.4, unknown, 10.1.1.1"], &[], &ingress());
        assert_eq!(got, ip("10.1.1.1"));
        assert_eq!(client_address(ip("10.0.0.5"), &[], &[], &ingress()), ip("10.0.0.5"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        let got = client_address(ip("::ffff:10.0.0.5"), &["203.0.113.7:5555"], &[], &ingress());
        assert_eq!(got, ip("203.0.113.7"));
        let got = client_address(ip("10.0.0.5"), &["[2001:db8::1]:80"], &[], &ingress());
        assert_eq!(got, ip("2001:db8::1"));
    }

    #[test]
    fn the_setting_parses_cidrs_and_addresses_and_names_what_is_wrong() {
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        let parsed: TrustedProxies = "127.0.0.1, 10.0.0.0/8,".parse().unwrap();
        assert!(parsed.contains(ip("127.0.0.1")) && parsed.contains(ip("10.200.0.1")));
        assert!(!parsed.contains(ip("127.0.0.2")));
        let error = "10.0.0.0/8,ingress".parse::<TrustedProxies>().unwrap_err();
        assert!(error.contains("`ingress`"), "{error}");
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
    }
}
