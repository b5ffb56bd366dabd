//! Who the client is: the one place that turns the TCP peer and forwarding headers into the
//! client's address. Rate limits, enquiry IP hashes and request logs all use it.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use poem::{FromRequest, Request, RequestBody, http::HeaderMap};

/// An address block such as `10.0.0.0/8` or `2001:db8::/32` (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not a CIDR such as 10.0.0.0/8 or 2001:db8::/32"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self {
            network: mask(network, prefix),
            prefix,
        })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

/// `ip` with every bit past the first `prefix` cleared.
pub fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & kept))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & kept))
        }
    }
}

/// The proxies whose forwarding headers are believed (`server.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses the configured CIDRs; the configuration was validated at load time, so an
    /// unreadable entry here is skipped rather than trusted.
    pub fn new(cidrs: &[String]) -> Self {
        Self(cidrs.iter().filter_map(|c| c.parse().ok()).collect())
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client's address. From a trusted peer it is the rightmost forwarded address that is
    /// not itself a trusted proxy (`X-Forwarded-For`, else `Forwarded: for=`); from any other
    /// peer the forwarding headers are ignored and the peer is the client.
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_chain(headers);
        let mut client = peer;
        for hop in chain.iter().rev() {
            // A hop a trusted proxy could not name ("unknown", garbage) ends the chain: the
            // last address a trusted proxy vouched for is as far as we can see.
            let Some(ip) = hop else { break };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// The addresses in `X-Forwarded-For` (all its headers, in order), or when there is none, the
/// `for=` parameters of `Forwarded`. `None` stands for an entry that is not an address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().map(str::to_string).ok().into_iter())
        .flat_map(|v| {
            v.split(',')
                .map(|s| parse_node(s.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|v| v.to_str().map(str::to_string).ok().into_iter())
        .flat_map(|v| {
            v.split(',')
                .filter_map(|element| {
                    element.split(';').find_map(|pair| {
                        let (key, value) = pair.split_once('=')?;
                        key.trim()
                            .eq_ignore_ascii_case("for")
                            .then(|| parse_node(value.trim().trim_matches('"')))
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:443`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// What a per-client rate limit counts against: the address itself for IPv4, its first
/// `ipv6_prefix` bits for IPv6 (one host usually holds a whole /64).
pub fn bucket(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        v4 @ IpAddr::V4(_) => v4,
        v6 @ IpAddr::V6(_) => mask(v6, ipv6_prefix),
    }
}

/// The client's address, derived once per request by the request middleware. Handlers take
/// it as a parameter; it is `None` only for requests that did not come over a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<'a> FromRequest<'a> for ClientAddr {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(req
            .extensions()
            .get::<ClientAddr>()
            .copied()
            .unwrap_or(ClientAddr(None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().expect("header value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c: Cidr = "10.0.0.0/8".parse().expect("cidr");
        assert!(c.contains(ip("10.200.1.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        let single: Cidr = "127.0.0.1".parse().expect("cidr");
        assert!(single.contains(ip("127.0.0.1")));
        assert!(!single.contains(ip("127.0.0.2")));
        let v6: Cidr = "2001:db8::/32".parse().expect("cidr");
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("10.0.0.1")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0/8", "::/129", "1.2.3.4/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_peers() {
        let trusted = TrustedProxies::new(&["10.0.0.0/8".into()]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 10.0.0.7")]);
        assert_eq!(trusted.client_addr(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        // Anyone else's headers are ignored.
        assert_eq!(
            trusted.client_addr(ip("198.51.100.4"), &h),
            ip("198.51.100.4")
        );
        // The rightmost untrusted entry wins: what the client wrote itself is on the left.
        let forged = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9")]);
        assert_eq!(
            trusted.client_addr(ip("10.0.0.1"), &forged),
            ip("203.0.113.9")
        );
        // Several headers are one list.
        let split = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            trusted.client_addr(ip("10.0.0.1"), &split),
            ip("203.0.113.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            trusted.client_addr(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        // An entry that is not an address stops at the last one a trusted proxy gave.
        let garbage = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.0.0.8")]);
        assert_eq!(
            trusted.client_addr(ip("10.0.0.1"), &garbage),
            ip("10.0.0.8")
        );
        let untrusting = TrustedProxies::default();
        assert_eq!(untrusting.client_addr(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_forwarded_header_is_read_when_there_is_no_x_forwarded_for() {
        let trusted = TrustedProxies::new(&["10.0.0.0/8".into()]);
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http;by=203.0.113.43, For=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(
            trusted.client_addr(ip("10.0.0.1"), &h),
            ip("2001:db8:cafe::17")
        );
        let v4_port = headers(&[("forwarded", "for=\"192.0.2.60:8080\"")]);
        assert_eq!(
            trusted.client_addr(ip("10.0.0.1"), &v4_port),
            ip("192.0.2.60")
        );
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_prefix() {
        assert_eq!(
            bucket(ip("2001:db8:1:2:aaaa::1"), 64),
            bucket(ip("2001:db8:1:2:bbbb::9"), 64)
        );
        assert_ne!(
            bucket(ip("2001:db8:1:2::1"), 64),
            bucket(ip("2001:db8:1:3::1"), 64)
        );
        assert_eq!(bucket(ip("192.0.2.1"), 64), ip("192.0.2.1"));
        assert_eq!(bucket(ip("::ffff:192.0.2.1"), 64), ip("192.0.2.1"));
        assert_eq!(bucket(ip("2001:db8::1"), 128), ip("2001:db8::1"));
    }
}
