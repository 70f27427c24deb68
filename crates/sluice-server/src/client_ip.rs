//! The client IP sent as `X-Forwarded-For`, honouring `remote_ip_headers` only when the peer
//! is a trusted proxy (gin's `ClientIP`).

use std::net::IpAddr;

use http::HeaderMap;
use sluice_config::RouterOptions;

#[derive(Debug, Clone)]
struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Option<Self> {
        let (ip, prefix) = match text.split_once('/') {
            Some((ip, prefix)) => (ip.parse::<IpAddr>().ok()?, prefix.parse().ok()?),
            None => {
                let ip: IpAddr = text.parse().ok()?;
                (ip, if ip.is_ipv4() { 32 } else { 128 })
            }
        };
        Some(Self {
            network: ip,
            prefix,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ClientIp {
    headers: Vec<String>,
    trusted: Vec<Cidr>,
}

impl ClientIp {
    pub(crate) fn new(options: &RouterOptions) -> Self {
        let headers = if options.forwarded_by_client_ip || !options.remote_ip_headers.is_empty() {
            options.remote_ip_headers.clone()
        } else {
            Vec::new()
        };
        Self {
            headers,
            trusted: options
                .trusted_proxies
                .iter()
                .filter_map(|t| Cidr::parse(t))
                .collect(),
        }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }

    pub(crate) fn resolve(&self, headers: &HeaderMap, peer: IpAddr) -> IpAddr {
        if self.headers.is_empty() || !self.is_trusted(peer) {
            return peer;
        }
        for name in &self.headers {
            let Some(value) = headers.get(name.as_str()).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            if let Some(client) = self.walk(value) {
                return client;
            }
        }
        peer
    }

    /// Walks a forwarding header from the nearest hop back (gin's `validateHeader`): the first
    /// address that is not a trusted proxy is the client, or the farthest when all are trusted.
    /// An entry that does not parse ends the walk and voids the header: skipping it would let a
    /// client put any address behind a bit of junk.
    fn walk(&self, value: &str) -> Option<IpAddr> {
        let mut hops = value.split(',').rev().peekable();
        while let Some(hop) = hops.next() {
            let ip: IpAddr = hop.trim().parse().ok()?;
            if hops.peek().is_none() || !self.is_trusted(ip) {
                return Some(ip);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn trusted_proxy_header_is_honoured() {
        let options = RouterOptions {
            remote_ip_headers: vec!["x-forwarded-for".into()],
            trusted_proxies: vec!["127.0.0.1/32".into(), "::1".into()],
            forwarded_by_client_ip: true,
            ..RouterOptions::default()
        };
        let ip = ClientIp::new(&options);
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "123.45.67.89".parse().unwrap());
        assert_eq!(
            ip.resolve(&headers, "127.0.0.1".parse().unwrap()),
            "123.45.67.89".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            ip.resolve(&headers, "10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn an_entry_that_does_not_parse_ends_the_walk() {
        let options = RouterOptions {
            remote_ip_headers: vec!["x-forwarded-for".into()],
            trusted_proxies: vec!["127.0.0.1/32".into(), "10.0.0.0/8".into()],
            forwarded_by_client_ip: true,
            ..RouterOptions::default()
        };
        let ip = ClientIp::new(&options);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        for (value, want) in [
            ("6.6.6.6, junk", "127.0.0.1"),
            ("6.6.6.6, junk, 10.0.0.2", "127.0.0.1"),
            ("6.6.6.6,", "127.0.0.1"),
            ("1.2.3.4, 10.0.0.2", "1.2.3.4"),
            ("10.0.0.3, 10.0.0.2", "10.0.0.3"),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("x-forwarded-for", value.parse().unwrap());
            assert_eq!(
                ip.resolve(&headers, peer),
                want.parse::<IpAddr>().unwrap(),
                "{value}"
            );
        }
    }
}
