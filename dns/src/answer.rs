//! Building the records for names in the cluster domain and for reverse names of cluster IPs,
//! following the Kubernetes DNS specification (schema 1.1.0).
//!
//! Invariants:
//! - a name that exists with other types answers NOERROR with no records (NODATA); a name that does
//!   not exist answers NXDOMAIN; both carry the zone's SOA in the authority section (RFC 2308), whose
//!   minimum is the record TTL, so negative answers are cached no longer than positive ones;
//! - a headless service with no published endpoints is NXDOMAIN (spec 2.4.1);
//! - records are built from the index under the caller's read lock and own all their data, so no
//!   lock is held while a response is written.

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::index::{Index, Kind, Port, Service};
use crate::names::ClusterName;

/// The schema version published at `dns-version.<zone>`.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// The cluster zone: its name, record TTL, SOA, and the service range answered locally in reverse.
#[derive(Clone, Debug)]
pub struct Zone {
    /// Lowercase, no trailing dot, e.g. `cluster.local`.
    pub domain: String,
    pub ttl: u32,
    /// Reverse names of IPs in this range that match nothing are NXDOMAIN here, never forwarded.
    pub service_cidr: (Ipv4Addr, u8),
    soa: Record,
}

impl Zone {
    /// A zone for `domain` (e.g. `cluster.local`); `None` if it is not a valid domain name.
    pub fn new(domain: &str, ttl: u32, service_cidr: (Ipv4Addr, u8), serial: u32) -> Option<Zone> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let origin = Name::from_ascii(format!("{domain}.")).ok()?;
        let mname = Name::from_ascii(format!("ns.dns.{domain}.")).ok()?;
        let rname = Name::from_ascii(format!("hostmaster.{domain}.")).ok()?;
        let soa = SOA::new(mname, rname, serial, 7200, 1800, 86400, ttl);
        Some(Zone {
            domain,
            ttl,
            service_cidr,
            soa: Record::from_rdata(origin, ttl, RData::SOA(soa)),
        })
    }

    /// The zone's SOA record.
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    fn in_service_cidr(&self, ip: IpAddr) -> bool {
        let IpAddr::V4(v4) = ip else { return false };
        let (base, len) = self.service_cidr;
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        u32::from(v4) & mask == u32::from(base) & mask
    }

    /// `<key>.svc.<zone>.` for a service key `name.ns`, optionally under a host label.
    fn service_name(&self, key: &str, host: Option<&str>) -> Option<Name> {
        let s = match host {
            Some(h) => format!("{h}.{key}.svc.{}.", self.domain),
            None => format!("{key}.svc.{}.", self.domain),
        };
        Name::from_ascii(s).ok()
    }
}

/// A response's content before it is encoded.
#[derive(Clone, Debug)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub additionals: Vec<Record>,
    /// The SOA for the authority section (negative answers).
    pub soa: Option<Record>,
    /// Whether this server is the authority (cluster names) rather than a forwarder.
    pub authoritative: bool,
    /// An ExternalName's target still to be resolved for the query type.
    pub chase: Option<Name>,
}

impl Answer {
    fn records(zone: &Zone, answers: Vec<Record>, additionals: Vec<Record>) -> Answer {
        if answers.is_empty() {
            return Answer::nodata(zone);
        }
        Answer {
            rcode: ResponseCode::NoError,
            answers,
            additionals,
            soa: None,
            authoritative: true,
            chase: None,
        }
    }

    /// NOERROR with no records: the name exists with other types.
    pub fn nodata(zone: &Zone) -> Answer {
        Answer {
            rcode: ResponseCode::NoError,
            answers: Vec::new(),
            additionals: Vec::new(),
            soa: Some(zone.soa.clone()),
            authoritative: true,
            chase: None,
        }
    }

    /// NXDOMAIN: the name does not exist.
    pub fn nxdomain(zone: &Zone) -> Answer {
        Answer {
            rcode: ResponseCode::NXDomain,
            ..Answer::nodata(zone)
        }
    }

    /// An answer with only a response code (SERVFAIL, REFUSED, FORMERR, ...).
    pub fn error(rcode: ResponseCode) -> Answer {
        Answer {
            rcode,
            answers: Vec::new(),
            additionals: Vec::new(),
            soa: None,
            authoritative: false,
            chase: None,
        }
    }
}

/// Address records of `owner` for the IPs that match `qtype` (A: IPv4, AAAA: IPv6, ANY: both).
fn address_records(
    owner: &Name,
    ttl: u32,
    qtype: RecordType,
    ips: impl IntoIterator<Item = IpAddr>,
) -> Vec<Record> {
    ips.into_iter()
        .filter_map(|ip| {
            let rdata = match (ip, qtype) {
                (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => RData::A(A(v4)),
                (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => RData::AAAA(AAAA(v6)),
                _ => return None,
            };
            Some(Record::from_rdata(owner.clone(), ttl, rdata))
        })
        .collect()
}

/// The answer for a cluster-domain name. `owner` is the query name as asked (case preserved).
pub fn cluster(
    idx: &Index,
    zone: &Zone,
    owner: &Name,
    name: ClusterName<'_>,
    qtype: RecordType,
) -> Answer {
    use ClusterName::*;
    let ttl = zone.ttl;
    match name {
        Apex if matches!(qtype, RecordType::SOA | RecordType::ANY) => {
            Answer::records(zone, vec![zone.soa.clone()], Vec::new())
        }
        Apex | Parent | PodNamespace => Answer::nodata(zone),
        DnsVersion if matches!(qtype, RecordType::TXT | RecordType::ANY) => {
            let txt = TXT::new(vec![SCHEMA_VERSION.to_string()]);
            Answer::records(
                zone,
                vec![Record::from_rdata(owner.clone(), ttl, RData::TXT(txt))],
                Vec::new(),
            )
        }
        DnsVersion => Answer::nodata(zone),
        Namespace(ns) if idx.has_namespace(ns) => Answer::nodata(zone),
        Namespace(_) | Unknown => Answer::nxdomain(zone),
        Pod(ip) => Answer::records(zone, address_records(owner, ttl, qtype, [ip]), Vec::new()),
        Service(key) => match idx.service(key) {
            None => Answer::nxdomain(zone),
            Some(svc) => service(idx, zone, owner, key, svc, qtype),
        },
        Endpoint { host, service } => {
            let ips: Vec<IpAddr> = idx
                .endpoints(service)
                .filter(|(e, _)| e.dns_hostname().as_deref() == Some(host))
                .flat_map(|(e, _)| e.addrs.iter().copied())
                .collect();
            if ips.is_empty() || idx.service(service).is_none() {
                return Answer::nxdomain(zone);
            }
            Answer::records(zone, address_records(owner, ttl, qtype, ips), Vec::new())
        }
        ProtoParent { proto, service } => {
            let exists = idx.service(service).is_some_and(|s| {
                named(&s.ports, None, proto).next().is_some()
                    || idx
                        .endpoints(service)
                        .any(|(_, ports)| named(ports, None, proto).next().is_some())
            });
            if exists {
                Answer::nodata(zone)
            } else {
                Answer::nxdomain(zone)
            }
        }
        Srv {
            port,
            proto,
            service,
        } => match idx.service(service) {
            None => Answer::nxdomain(zone),
            Some(svc) => {
                let (answers, additionals) =
                    srv_records(idx, zone, owner, service, svc, Some(port), proto);
                if answers.is_empty() {
                    Answer::nxdomain(zone)
                } else if matches!(qtype, RecordType::SRV | RecordType::ANY) {
                    Answer::records(zone, answers, additionals)
                } else {
                    Answer::nodata(zone)
                }
            }
        },
    }
}

/// Ports named `port` (any name when `None`, but never unnamed) with protocol `proto`.
fn named<'a>(
    ports: &'a [Port],
    port: Option<&'a str>,
    proto: &'a str,
) -> impl Iterator<Item = &'a Port> + 'a {
    ports.iter().filter(move |p| {
        !p.name.is_empty() && port.is_none_or(|n| *p.name == *n) && *p.proto == *proto
    })
}

fn service(
    idx: &Index,
    zone: &Zone,
    owner: &Name,
    key: &str,
    svc: &Service,
    qtype: RecordType,
) -> Answer {
    let ttl = zone.ttl;
    match &svc.kind {
        Kind::ExternalName(target) => {
            let Ok(target) = Name::from_ascii(format!("{target}.")) else {
                return Answer::nodata(zone);
            };
            let cname = Record::from_rdata(owner.clone(), ttl, RData::CNAME(CNAME(target.clone())));
            let mut answer = Answer::records(zone, vec![cname], Vec::new());
            if !matches!(qtype, RecordType::CNAME | RecordType::ANY) {
                answer.chase = Some(target);
            }
            answer
        }
        Kind::ClusterIp(ips) if qtype == RecordType::SRV => {
            // SRV at the service name itself: every named port (as CoreDNS answers).
            let Some(target) = zone.service_name(key, None) else {
                return Answer::nodata(zone);
            };
            let answers = svc
                .ports
                .iter()
                .filter(|p| !p.name.is_empty())
                .map(|p| srv(owner, ttl, p.port, target.clone()))
                .collect();
            let additionals = address_records(&target, ttl, RecordType::ANY, ips.iter().copied());
            Answer::records(zone, answers, additionals)
        }
        Kind::ClusterIp(ips) => Answer::records(
            zone,
            address_records(owner, ttl, qtype, ips.iter().copied()),
            Vec::new(),
        ),
        Kind::Headless => {
            if idx.endpoints(key).next().is_none() {
                return Answer::nxdomain(zone);
            }
            if qtype == RecordType::SRV {
                let mut answers = Vec::new();
                let mut additionals = Vec::new();
                for proto in ["tcp", "udp", "sctp"] {
                    let (a, b) = srv_records(idx, zone, owner, key, svc, None, proto);
                    answers.extend(a);
                    additionals.extend(b);
                }
                return Answer::records(zone, answers, additionals);
            }
            let ips = idx
                .endpoints(key)
                .flat_map(|(e, _)| e.addrs.iter().copied());
            Answer::records(zone, address_records(owner, ttl, qtype, ips), Vec::new())
        }
    }
}

/// SRV records (and the A/AAAA records of their targets) for ports named `port` (any named port
/// when `None`) with protocol `proto`: one per port of a ClusterIP service, one per endpoint and
/// port of a headless one.
fn srv_records(
    idx: &Index,
    zone: &Zone,
    owner: &Name,
    key: &str,
    svc: &Service,
    port: Option<&str>,
    proto: &str,
) -> (Vec<Record>, Vec<Record>) {
    let ttl = zone.ttl;
    let mut answers = Vec::new();
    let mut additionals = Vec::new();
    match &svc.kind {
        Kind::ClusterIp(ips) => {
            let Some(target) = zone.service_name(key, None) else {
                return (answers, additionals);
            };
            for p in named(&svc.ports, port, proto) {
                answers.push(srv(owner, ttl, p.port, target.clone()));
            }
            if !answers.is_empty() {
                additionals = address_records(&target, ttl, RecordType::ANY, ips.iter().copied());
            }
        }
        Kind::Headless => {
            for (ep, ports) in idx.endpoints(key) {
                let Some(target) = ep
                    .dns_hostname()
                    .and_then(|h| zone.service_name(key, Some(&h)))
                else {
                    continue;
                };
                let before = answers.len();
                for p in named(ports, port, proto) {
                    answers.push(srv(owner, ttl, p.port, target.clone()));
                }
                if answers.len() > before {
                    additionals.extend(address_records(
                        &target,
                        ttl,
                        RecordType::ANY,
                        ep.addrs.iter().copied(),
                    ));
                }
            }
        }
        Kind::ExternalName(_) => {}
    }
    (answers, additionals)
}

fn srv(owner: &Name, ttl: u32, port: u16, target: Name) -> Record {
    // Priority 0 and an equal weight: every target is as good as another.
    Record::from_rdata(
        owner.clone(),
        ttl,
        RData::SRV(SRV::new(0, 100, port, target)),
    )
}

/// The answer for the reverse name of `ip`; `None` when it is not a cluster address (forward it).
pub fn reverse(
    idx: &Index,
    zone: &Zone,
    owner: &Name,
    ip: IpAddr,
    qtype: RecordType,
) -> Option<Answer> {
    let Some((key, host)) = idx.ptr(ip) else {
        return zone.in_service_cidr(ip).then(|| Answer::nxdomain(zone));
    };
    let target = zone.service_name(key, host)?;
    if !matches!(qtype, RecordType::PTR | RecordType::ANY) {
        return Some(Answer::nodata(zone));
    }
    let ptr = Record::from_rdata(owner.clone(), zone.ttl, RData::PTR(PTR(target)));
    Some(Answer::records(zone, vec![ptr], Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{service_from_json, slice_from_json};
    use crate::names::{Classified, classify};
    use serde_json::json;

    fn zone() -> Zone {
        Zone::new("cluster.local", 5, ("10.43.0.0".parse().unwrap(), 16), 1).unwrap()
    }

    fn index() -> Index {
        let mut idx = Index::default();
        for svc in [
            json!({"metadata": {"name": "web", "namespace": "default"},
                   "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}),
            json!({"metadata": {"name": "db", "namespace": "default"},
                   "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
            json!({"metadata": {"name": "empty", "namespace": "default"}, "spec": {"clusterIP": "None"}}),
            json!({"metadata": {"name": "ext", "namespace": "default"},
                   "spec": {"type": "ExternalName", "externalName": "example.com"}}),
        ] {
            let (k, s) = service_from_json(&svc).unwrap();
            idx.upsert_service(k, s);
        }
        let slice = json!({"metadata": {"name": "db-1", "namespace": "default",
                                        "labels": {"kubernetes.io/service-name": "db"}},
                           "endpoints": [{"addresses": ["10.42.0.7"], "hostname": "db-0"},
                                         {"addresses": ["10.42.0.8"]},
                                         {"addresses": ["10.42.0.9"], "conditions": {"ready": false}}],
                           "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]});
        let (k, n, s) = slice_from_json(&slice).unwrap();
        idx.upsert_slice(k, n, s);
        idx
    }

    fn ask(name: &str, qtype: RecordType) -> Answer {
        let (idx, zone) = (index(), zone());
        let owner = Name::from_ascii(name).unwrap();
        let lower = name.to_ascii_lowercase();
        match classify(&lower, &zone.domain) {
            Classified::Cluster(c) => cluster(&idx, &zone, &owner, c, qtype),
            Classified::Reverse(ip) => {
                reverse(&idx, &zone, &owner, ip, qtype).expect("a cluster reverse name")
            }
            Classified::Other => panic!("{name} is not a cluster name"),
        }
    }

    fn rdata(a: &Answer) -> Vec<String> {
        let mut v: Vec<String> = a.answers.iter().map(|r| r.data.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn cluster_ip_service() {
        let a = ask("Web.Default.svc.cluster.local.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(rdata(&a), ["10.43.0.20"]);
        assert_eq!(a.answers[0].ttl, 5);
        let aaaa = ask("web.default.svc.cluster.local.", RecordType::AAAA);
        assert_eq!((aaaa.rcode, aaaa.answers.len()), (ResponseCode::NoError, 0));
        assert!(aaaa.soa.is_some(), "NODATA carries the SOA");
        let srv = ask("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
        assert_eq!(rdata(&srv), ["0 100 80 web.default.svc.cluster.local."]);
        assert_eq!(srv.additionals.len(), 1);
        let udp = ask("_http._udp.web.default.svc.cluster.local.", RecordType::SRV);
        assert_eq!(udp.rcode, ResponseCode::NXDomain);
        let ptr = ask("20.0.43.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(rdata(&ptr), ["web.default.svc.cluster.local."]);
        let none = ask("99.0.43.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(none.rcode, ResponseCode::NXDomain);
    }

    #[test]
    fn headless_service() {
        let a = ask("db.default.svc.cluster.local.", RecordType::A);
        assert_eq!(
            rdata(&a),
            ["10.42.0.7", "10.42.0.8"],
            "ready endpoints only"
        );
        let pet = ask("db-0.db.default.svc.cluster.local.", RecordType::A);
        assert_eq!(rdata(&pet), ["10.42.0.7"]);
        let dashed = ask("10-42-0-8.db.default.svc.cluster.local.", RecordType::A);
        assert_eq!(rdata(&dashed), ["10.42.0.8"]);
        let srv = ask("_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV);
        assert_eq!(
            rdata(&srv),
            [
                "0 100 5432 10-42-0-8.db.default.svc.cluster.local.",
                "0 100 5432 db-0.db.default.svc.cluster.local."
            ]
        );
        let ptr = ask("7.0.42.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(rdata(&ptr), ["db-0.db.default.svc.cluster.local."]);
        let empty = ask("empty.default.svc.cluster.local.", RecordType::A);
        assert_eq!(empty.rcode, ResponseCode::NXDomain);
        let gone = ask("nobody.db.default.svc.cluster.local.", RecordType::A);
        assert_eq!(gone.rcode, ResponseCode::NXDomain);
    }

    #[test]
    fn other_names() {
        let ext = ask("ext.default.svc.cluster.local.", RecordType::A);
        assert_eq!(rdata(&ext), ["example.com."]);
        assert_eq!(ext.chase, Some(Name::from_ascii("example.com.").unwrap()));
        let pod = ask("10-42-0-5.anything.pod.cluster.local.", RecordType::A);
        assert_eq!(rdata(&pod), ["10.42.0.5"]);
        let ns = ask("default.svc.cluster.local.", RecordType::A);
        assert_eq!((ns.rcode, ns.answers.len()), (ResponseCode::NoError, 0));
        let no_ns = ask("nope.svc.cluster.local.", RecordType::A);
        assert_eq!(no_ns.rcode, ResponseCode::NXDomain);
        let missing = ask("missing.default.svc.cluster.local.", RecordType::A);
        assert_eq!(missing.rcode, ResponseCode::NXDomain);
        assert!(missing.soa.is_some(), "NXDOMAIN carries the SOA");
        let version = ask("dns-version.cluster.local.", RecordType::TXT);
        assert_eq!(rdata(&version), ["1.1.0"]);
        let soa = ask("cluster.local.", RecordType::SOA);
        assert_eq!(soa.answers.len(), 1);
    }
}
