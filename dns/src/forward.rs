//! Forwarding names outside the cluster to the host's resolvers, through hickory-resolver (which
//! caches positive answers for their TTL and negative ones for the SOA minimum, in a bounded cache).
//!
//! Invariants:
//! - only names the caller has classified as not ours reach [`Forwarder::lookup`]; cluster names
//!   never leave the node;
//! - an upstream that is this server itself is dropped when the list is built, so a query can never
//!   loop back to us;
//! - the cache holds at most [`CACHE_ENTRIES`] entries and a negative entry at most
//!   [`NEGATIVE_MAX_TTL`].

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use hickory_resolver::Resolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as NetDnsError, NetError};

use crate::answer::Answer;

/// Cached answers (name and type pairs) kept at most.
pub const CACHE_ENTRIES: u64 = 10_000;
/// Longest time a negative answer is cached.
pub const NEGATIVE_MAX_TTL: Duration = Duration::from_secs(300);

/// The nameservers of a resolv.conf: `nameserver` lines with a valid IP, in order, on port 53.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            // A scoped IPv6 address (`fe80::1%eth0`) carries a zone we cannot use: skip it.
            let ip: IpAddr = words.next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// Reads the nameservers of a resolv.conf file; a missing or unreadable file gives none.
pub fn read_resolv_conf(path: &Path) -> Vec<SocketAddr> {
    std::fs::read_to_string(path)
        .map(|t| parse_resolv_conf(&t))
        .unwrap_or_default()
}

/// Drops upstreams that are this server (`own`: where it listens, `cluster_dns`: its service IP).
pub fn without_self(
    upstreams: Vec<SocketAddr>,
    own: SocketAddr,
    cluster_dns: Option<IpAddr>,
) -> Vec<SocketAddr> {
    upstreams
        .into_iter()
        .filter(|u| {
            let is_own = u.port() == own.port()
                && (u.ip() == own.ip() || (own.ip().is_unspecified() && u.ip().is_loopback()));
            let is_service = Some(u.ip()) == cluster_dns && u.port() == 53;
            !is_own && !is_service
        })
        .collect()
}

/// A caching forwarder to a fixed list of upstream resolvers.
pub struct Forwarder {
    resolver: Resolver<TokioRuntimeProvider>,
}

impl Forwarder {
    /// A forwarder to `upstreams` (tried in order, UDP then TCP on truncation), or `None` when the
    /// list is empty.
    pub fn new(upstreams: &[SocketAddr], timeout: Duration) -> Option<Forwarder> {
        if upstreams.is_empty() {
            return None;
        }
        let servers = upstreams
            .iter()
            .map(|u| {
                let mut udp = ConnectionConfig::udp();
                udp.port = u.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = u.port();
                NameServerConfig::new(u.ip(), true, vec![udp, tcp])
            })
            .collect();
        let config = ResolverConfig::from_parts(None, Vec::new(), servers);
        let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
        let opts = builder.options_mut();
        opts.cache_size = CACHE_ENTRIES;
        opts.negative_max_ttl = Some(NEGATIVE_MAX_TTL);
        // The client's name is already fully qualified: no search list, no hosts file.
        opts.ndots = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.preserve_intermediates = true;
        opts.timeout = timeout;
        opts.attempts = 2;
        let resolver = builder.build().ok()?;
        Some(Forwarder { resolver })
    }

    /// Resolves `name` (fully qualified) upstream.
    pub async fn lookup(&self, name: &Name, qtype: RecordType) -> Answer {
        let mut name = name.clone();
        name.set_fqdn(true);
        match self.resolver.lookup(name, qtype).await {
            Ok(lookup) => Answer {
                rcode: ResponseCode::NoError,
                answers: lookup.answers().to_vec(),
                additionals: Vec::new(),
                soa: None,
                authoritative: false,
                chase: None,
            },
            Err(NetError::Dns(NetDnsError::NoRecordsFound(nr))) => Answer {
                rcode: nr.response_code,
                answers: Vec::new(),
                additionals: Vec::new(),
                soa: nr.soa.map(|soa| soa.into_record_of_rdata()),
                authoritative: false,
                chase: None,
            },
            Err(NetError::Dns(NetDnsError::ResponseCode(code))) => Answer::error(code),
            Err(e) => {
                tracing::debug!(error = %e, "forwarding failed");
                Answer::error(ResponseCode::ServFail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf() {
        let text = "# comment\nsearch example.com\nnameserver 192.0.2.1\nnameserver  fd00::53 \n\
                    nameserver fe80::1%eth0\nnameserver bogus\noptions ndots:2\nnameserver 127.0.0.1\n";
        let got = parse_resolv_conf(text);
        let want: Vec<SocketAddr> = ["192.0.2.1:53", "[fd00::53]:53", "127.0.0.1:53"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn never_forwards_to_itself() {
        let ups: Vec<SocketAddr> = [
            "127.0.0.1:53",
            "127.0.0.53:53",
            "10.43.0.10:53",
            "192.0.2.1:53",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let own: SocketAddr = "0.0.0.0:53".parse().unwrap();
        let kept = without_self(ups.clone(), own, Some("10.43.0.10".parse().unwrap()));
        assert_eq!(kept, vec!["192.0.2.1:53".parse::<SocketAddr>().unwrap()]);
        // On another port, the host's loopback resolver (e.g. systemd-resolved) is a real upstream.
        let own: SocketAddr = "127.0.0.1:1053".parse().unwrap();
        let kept = without_self(ups, own, None);
        assert_eq!(kept.len(), 4);
    }
}
