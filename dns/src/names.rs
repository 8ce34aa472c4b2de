//! Classifying a query name: a name in the cluster domain (and what it addresses), a reverse name
//! (`in-addr.arpa` / `ip6.arpa`), or anything else (forwarded).
//!
//! Invariants: input is the lowercased query name (hickory's `LowerName` rendering, trailing dot
//! optional); classification never allocates more than the name's own length and never panics on
//! any label content (labels are compared as strings, IPs parsed with std).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a name under the cluster domain addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterName<'a> {
    /// The zone apex (`cluster.local`).
    Apex,
    /// `dns-version.<zone>`.
    DnsVersion,
    /// `svc.<zone>` or `pod.<zone>`: names that exist only as parents.
    Parent,
    /// `<ns>.svc.<zone>`.
    Namespace(&'a str),
    /// `<service>.<ns>.svc.<zone>`; the key is `service.ns`.
    Service(&'a str),
    /// `<hostname>.<service>.<ns>.svc.<zone>`.
    Endpoint { host: &'a str, service: &'a str },
    /// `_<proto>.<service>.<ns>.svc.<zone>`: exists as the parent of SRV names.
    ProtoParent { proto: &'a str, service: &'a str },
    /// `_<port>._<proto>.<service>.<ns>.svc.<zone>`.
    Srv {
        port: &'a str,
        proto: &'a str,
        service: &'a str,
    },
    /// `<ns>.pod.<zone>`.
    PodNamespace,
    /// `<a-b-c-d>.<ns>.pod.<zone>` with a parseable IP.
    Pod(IpAddr),
    /// Anything else under the zone: NXDOMAIN.
    Unknown,
}

/// A query name classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Classified<'a> {
    Cluster(ClusterName<'a>),
    /// A complete reverse name for this IP.
    Reverse(IpAddr),
    /// Not ours: forward it.
    Other,
}

/// Classifies `name` (lowercase) against `zone` (lowercase, no trailing dot).
pub fn classify<'a>(name: &'a str, zone: &str) -> Classified<'a> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name == zone {
        return Classified::Cluster(ClusterName::Apex);
    }
    if let Some(rel) = name
        .strip_suffix(zone)
        .and_then(|r| r.strip_suffix('.'))
        .filter(|r| !r.is_empty())
    {
        return Classified::Cluster(cluster(rel));
    }
    if let Some(ip) = reverse(name) {
        return Classified::Reverse(ip);
    }
    Classified::Other
}

fn cluster(rel: &str) -> ClusterName<'_> {
    use ClusterName::*;
    if rel == "dns-version" {
        return DnsVersion;
    }
    if rel == "svc" || rel == "pod" {
        return Parent;
    }
    if let Some(rest) = rel.strip_suffix(".svc") {
        // rest = [[_port.]_proto. | host.]service.ns, or ns
        let labels: Vec<&str> = rest.split('.').collect();
        let n = labels.len();
        if n == 1 {
            return Namespace(rest);
        }
        // The service key is the last two labels of `rest`, as one slice of the name.
        let key_start = rest.len() - labels[n - 1].len() - 1 - labels[n - 2].len();
        let service = &rest[key_start..];
        return match n {
            2 => Service(service),
            3 if labels[0].starts_with('_') => ProtoParent {
                proto: &labels[0][1..],
                service,
            },
            3 => Endpoint {
                host: labels[0],
                service,
            },
            4 if labels[0].starts_with('_') && labels[1].starts_with('_') => Srv {
                port: &labels[0][1..],
                proto: &labels[1][1..],
                service,
            },
            _ => Unknown,
        };
    }
    if let Some(rest) = rel.strip_suffix(".pod") {
        return match rest.split_once('.') {
            None => PodNamespace,
            Some((ip, ns)) if !ns.contains('.') => match pod_ip(ip) {
                Some(ip) => Pod(ip),
                None => Unknown,
            },
            Some(_) => Unknown,
        };
    }
    Unknown
}

/// `10-0-0-1` → 10.0.0.1, `fd00--1` → fd00::1.
fn pod_ip(label: &str) -> Option<IpAddr> {
    if label.len() > 45 {
        return None;
    }
    if let Ok(v4) = label.replace('-', ".").parse::<Ipv4Addr>() {
        return Some(v4.into());
    }
    label
        .replace('-', ":")
        .parse::<Ipv6Addr>()
        .ok()
        .map(Into::into)
}

/// A complete `in-addr.arpa` or `ip6.arpa` name.
fn reverse(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut octets = [0u8; 4];
        let mut n = 0;
        for label in rest.split('.') {
            // Reject leading zeros and non-digits so one address has one reverse name.
            if n == 4 || label.is_empty() || (label.len() > 1 && label.starts_with('0')) {
                return None;
            }
            octets[3 - n] = label.parse().ok()?;
            n += 1;
        }
        return (n == 4).then(|| Ipv4Addr::from(octets).into());
    }
    if let Some(rest) = name.strip_suffix(".ip6.arpa") {
        let mut bits: u128 = 0;
        let mut n = 0;
        for label in rest.split('.') {
            if n == 32 || label.len() != 1 {
                return None;
            }
            let nibble = u128::from(label.chars().next()?.to_digit(16)?);
            bits |= nibble << (4 * n);
            n += 1;
        }
        return (n == 32).then(|| Ipv6Addr::from(bits).into());
    }
    None
}

/// The reverse name of `ip`, with a trailing dot.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(73);
            let bits = u128::from(v6);
            for i in 0..32 {
                let nibble = (bits >> (4 * i)) & 0xf;
                s.push(char::from_digit(nibble as u32, 16).unwrap_or('0'));
                s.push('.');
            }
            s.push_str("ip6.arpa.");
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClusterName::*;
    use super::*;

    const Z: &str = "cluster.local";

    fn c(name: &str) -> Classified<'_> {
        classify(name, Z)
    }

    #[test]
    fn cluster_names() {
        assert_eq!(c("cluster.local."), Classified::Cluster(Apex));
        assert_eq!(
            c("dns-version.cluster.local"),
            Classified::Cluster(DnsVersion)
        );
        assert_eq!(c("svc.cluster.local."), Classified::Cluster(Parent));
        assert_eq!(
            c("default.svc.cluster.local."),
            Classified::Cluster(Namespace("default"))
        );
        assert_eq!(
            c("web.default.svc.cluster.local."),
            Classified::Cluster(Service("web.default"))
        );
        assert_eq!(
            c("pet-0.db.default.svc.cluster.local."),
            Classified::Cluster(Endpoint {
                host: "pet-0",
                service: "db.default"
            })
        );
        assert_eq!(
            c("_http._tcp.web.default.svc.cluster.local."),
            Classified::Cluster(Srv {
                port: "http",
                proto: "tcp",
                service: "web.default"
            })
        );
        assert_eq!(
            c("_tcp.web.default.svc.cluster.local."),
            Classified::Cluster(ProtoParent {
                proto: "tcp",
                service: "web.default"
            })
        );
        assert_eq!(
            c("a.b.c.d.e.svc.cluster.local."),
            Classified::Cluster(Unknown)
        );
        assert_eq!(c("x.cluster.local."), Classified::Cluster(Unknown));
        // A search-path expansion of a cluster name is still ours (and NXDOMAIN), never forwarded.
        assert_eq!(
            c("web.default.svc.cluster.local.default.svc.cluster.local."),
            Classified::Cluster(Unknown)
        );
    }

    #[test]
    fn pod_names() {
        assert_eq!(
            c("10-42-0-5.default.pod.cluster.local."),
            Classified::Cluster(Pod("10.42.0.5".parse().unwrap()))
        );
        assert_eq!(
            c("fd00--5.default.pod.cluster.local."),
            Classified::Cluster(Pod("fd00::5".parse().unwrap()))
        );
        assert_eq!(
            c("default.pod.cluster.local."),
            Classified::Cluster(PodNamespace)
        );
        assert_eq!(
            c("10-42-0.default.pod.cluster.local."),
            Classified::Cluster(Unknown)
        );
        assert_eq!(
            c("10-42-0-999.default.pod.cluster.local."),
            Classified::Cluster(Unknown)
        );
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            c("10.0.43.10.in-addr.arpa."),
            Classified::Reverse("10.43.0.10".parse().unwrap())
        );
        assert_eq!(c("0.43.10.in-addr.arpa."), Classified::Other);
        assert_eq!(c("010.0.43.10.in-addr.arpa."), Classified::Other);
        assert_eq!(c("1.2.3.4.5.in-addr.arpa."), Classified::Other);
        let v6: IpAddr = "fd00::1:5".parse().unwrap();
        let name = reverse_name(v6);
        assert_eq!(c(&name), Classified::Reverse(v6));
        let v4: IpAddr = "10.43.0.1".parse().unwrap();
        assert_eq!(reverse_name(v4), "1.0.43.10.in-addr.arpa.");
        assert_eq!(c("example.com."), Classified::Other);
        assert_eq!(c("local."), Classified::Other);
        assert_eq!(c("notcluster.local."), Classified::Other);
    }
}
