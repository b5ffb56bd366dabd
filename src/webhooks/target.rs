//! Which targets the service may post to. Without `webhooks.allow_private_targets`, only
//! `https://` URLs whose addresses are public: never loopback, private (RFC 1918, fc00::/7),
//! shared (100.64.0.0/10), link-local (including cloud metadata at 169.254.169.254),
//! unspecified, broadcast or multicast. The check runs at registration and again on the
//! resolved address of every connection, so a name that later resolves inward is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Url;

/// Why a URL cannot be a webhook target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an absolute http(s) URL with a host.
    #[error("{0}")]
    Invalid(&'static str),
    /// A well-formed URL the service will not contact.
    #[error("{0}")]
    Refused(String),
}

/// A parsed target: where to connect and what to ask for.
#[derive(Debug, Clone)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

/// Parses and checks the form of a URL (not its addresses).
pub fn parse(raw: &str, allow_private: bool) -> Result<Target, TargetError> {
    let url = Url::parse(raw.trim()).map_err(|_| TargetError::Invalid("not an absolute URL"))?;
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        _ => return Err(TargetError::Invalid("must be an http or https URL")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Invalid(
            "must not carry a user name or password",
        ));
    }
    if url.fragment().is_some() {
        return Err(TargetError::Invalid("must not have a fragment"));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(TargetError::Invalid("must name a host")),
    };
    if !https && !allow_private {
        return Err(TargetError::Refused(
            "plain http:// is refused; use https://".to_string(),
        ));
    }
    if !allow_private
        && let Ok(ip) = host.parse::<IpAddr>()
        && is_refused(ip)
    {
        return Err(TargetError::Refused(format!(
            "{ip} is a loopback, private, link-local or otherwise non-public address"
        )));
    }
    let port = url
        .port_or_known_default()
        .ok_or(TargetError::Invalid("must have a port"))?;
    let mut path = url.path().to_string();
    if path.is_empty() {
        path.push('/');
    }
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    Ok(Target {
        https,
        host,
        port,
        path,
    })
}

/// Resolves the target's host and keeps the addresses that may be contacted. An error names
/// why none is left.
pub async fn resolve(target: &Target, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("{} does not resolve: {e}", target.host))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{} has no address", target.host));
    }
    let allowed: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| allow_private || !is_refused(a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(format!(
            "{} resolves only to non-public addresses",
            target.host
        ));
    }
    Ok(allowed)
}

/// Whether an address is one the service must never post to unless allowed.
pub fn is_refused(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_refused(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_refused(v4);
            }
            v6_refused(v6)
        }
    }
}

fn v4_refused(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        // 0.0.0.0/8 "this network", 100.64.0.0/10 shared (carrier-grade NAT)
        || a == 0
        || (a == 100 && (b & 0xc0) == 64)
}

fn v6_refused(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local, fe80::/10 link-local
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // an IPv4-compatible (deprecated) ::a.b.c.d hides an IPv4 address
        || (ip.segments()[..6].iter().all(|s| *s == 0) && v4_refused(Ipv4Addr::from_bits(ip.to_bits() as u32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
        ] {
            assert!(is_refused(ip.parse().expect(ip)), "{ip} should be refused");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in ["93.184.216.34", "8.8.8.8", "100.128.0.1", "2606:4700::1111"] {
            assert!(!is_refused(ip.parse().expect(ip)), "{ip} should be allowed");
        }
    }

    #[test]
    fn urls_are_checked_for_form_scheme_and_literal_addresses() {
        assert!(matches!(
            parse("not a url", false),
            Err(TargetError::Invalid(_))
        ));
        assert!(matches!(
            parse("ftp://example.com/", false),
            Err(TargetError::Invalid(_))
        ));
        assert!(matches!(
            parse("https://user:pw@example.com/", false),
            Err(TargetError::Invalid(_))
        ));
        assert!(matches!(
            parse("http://example.com/", false),
            Err(TargetError::Refused(_))
        ));
        assert!(matches!(
            parse("https://10.0.0.8/hook", false),
            Err(TargetError::Refused(_))
        ));
        assert!(matches!(
            parse("https://[::1]/hook", false),
            Err(TargetError::Refused(_))
        ));
        let t = parse("https://hooks.example.com/in?x=1", false).expect("public https");
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.path.as_str()),
            (true, "hooks.example.com", 443, "/in?x=1")
        );
        let t = parse("http://127.0.0.1:9000", true).expect("allowed when private targets are");
        assert_eq!((t.https, t.port, t.path.as_str()), (false, 9000, "/"));
    }
}
