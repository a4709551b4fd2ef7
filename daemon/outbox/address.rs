//! Outbound address safety: webhook targets that resolve to loopback, private, link-local or
//! otherwise non-public addresses are refused unless the webhook sets `allow_private = true`
//! (so a webhook cannot be pointed at the daemon's own host or the internal network). The
//! check is the HTTP client's resolver: the addresses it returns are the ones connected to,
//! so a name that resolves differently a moment later (DNS rebinding) cannot slip past it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Why a target is refused (the delivery's error says "private address: " and this; `baton
/// doctor` says the same of the configured URL).
pub const PRIVATE_REFUSED: &str = "the target resolves only to private, loopback or link-local \
     addresses (set allow_private = true on the webhook to allow them)";

/// Whether a webhook without `allow_private` is refused at `addrs` (what its host resolves
/// to): every one of them is private, loopback, link-local or otherwise not public.
pub fn refused(addrs: &[SocketAddr]) -> bool {
    !addrs.is_empty() && !addrs.iter().any(|a| is_public(a.ip()))
}

/// The resolver of one endpoint's client.
pub struct Guard {
    pub allow_private: bool,
}

impl ureq::Resolver for Guard {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let all: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        if self.allow_private {
            return Ok(all);
        }
        let public: Vec<SocketAddr> = all.iter().copied().filter(|a| is_public(a.ip())).collect();
        if refused(&all) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                PRIVATE_REFUSED,
            ));
        }
        Ok(public)
    }
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// multicast, documentation or otherwise reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments, 192.0.0.0/24; benchmarking, 198.18.0.0/15.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // NAT64 to any IPv4 address could reach the internal network: refused as well.
        || (first == 0x0064 && ip.segments()[1] == 0xff9b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::Resolver;

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad}");
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert!(is_public(good.parse().unwrap()), "{good}");
        }
    }

    #[test]
    fn the_resolver_refuses_loopback_unless_allowed() {
        let refused = Guard {
            allow_private: false,
        }
        .resolve("127.0.0.1:80")
        .unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        assert!(refused.to_string().contains("allow_private"));
        let allowed = Guard {
            allow_private: true,
        }
        .resolve("127.0.0.1:80")
        .unwrap();
        assert_eq!(allowed, vec!["127.0.0.1:80".parse().unwrap()]);
    }
}
