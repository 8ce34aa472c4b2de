//! Ruleset generation: from the [`Index`] to the dynamic part of table `ip k1s`. A service port
//! without session affinity is only map elements: its entry keys (`ip . proto . port`, or
//! `proto . port` for node ports) in the verdict maps go to a chain shared by every service with
//! the same entry kind and endpoint count (`dnat-N`, `ext-dnat-N`, `np-dnat-N`, ...), which DNATs
//! through the `endpoints` map keyed by `entry key . numgen random mod N`. So a full sync is a
//! handful of chains plus elements, and an endpoint change is element updates only. Services with
//! `sessionAffinity: ClientIP` keep a chain per service port (`svc-`, `ext-`) and per endpoint
//! (`ep-`) with one affinity set each. Also: the elements of the reject maps and the hairpin pairs.
//!
//! Pure: no I/O, deterministic for a given index (ordered maps everywhere).
//!
//! Invariants:
//! - every map key appears once: a second service claiming the same `ip . proto . port` (or node
//!   port) is left out and reported as a [`Problem`], so a transaction never fails on a duplicate
//!   (settled in [`crate::assemble`]);
//! - every chain named by a map element or a rule exists in [`Ruleset::chains`] (a service that
//!   lost every claim keeps its chains, unreferenced, so they do not depend on other services);
//! - endpoints used: ready ones; only when none is ready, serving terminating ones (upstream's
//!   rule); `Local` policies keep only this node's endpoints;
//! - a service port with no usable endpoint gets no `svc-`/`ext-` chain but a `no-endpoint-*`
//!   element that rejects at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::elem::{Key, Value};
use crate::model::{Index, Proto, Service, ServicePort};

/// The verdict maps of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Map {
    /// `ip daddr . meta l4proto . th dport` → service chain (cluster IPs, external IPs, LB IPs).
    ServiceIps,
    /// `meta l4proto . th dport` on local addresses → external chain.
    ServiceNodeports,
    /// Same key as `ServiceIps`, for service ports without endpoints → reject.
    NoEndpointServices,
    /// Same key as `ServiceNodeports`, without endpoints → reject.
    NoEndpointNodeports,
    /// `ip daddr . meta l4proto . th dport . index` → `endpoint ip . port`: where the shared
    /// `dnat-N` chains send a cluster, external or load-balancer IP's connection.
    Endpoints,
    /// `meta l4proto . th dport . index` → `endpoint ip . port`, for node ports.
    NodeportEndpoints,
    /// The set of `endpoint . endpoint` address pairs: a pod reaching itself through a service
    /// (hairpin) is masqueraded. A set, not a map: its elements have no verdict.
    Hairpin,
}

impl Map {
    /// The map's name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Map::ServiceIps => "service-ips",
            Map::ServiceNodeports => "service-nodeports",
            Map::NoEndpointServices => "no-endpoint-services",
            Map::NoEndpointNodeports => "no-endpoint-nodeports",
            Map::Endpoints => "endpoints",
            Map::NodeportEndpoints => "nodeport-endpoints",
            Map::Hairpin => "hairpin",
        }
    }
}

/// Fixed inputs of generation.
#[derive(Clone, Debug)]
pub struct Params {
    /// The Service range: traffic to addresses in it that no service owns is rejected.
    pub service_cidr: (Ipv4Addr, u8),
    /// Whether the kernel can NAT SCTP; without it SCTP ports are skipped with a problem.
    pub sctp: bool,
    /// The cluster DNS: (`kube-dns` ClusterIP, where the DNS server listens). Port 53 UDP and TCP
    /// of the ClusterIP are DNAT'd to the listen address, whatever the `kube-dns` Service says.
    pub dns: Option<(Ipv4Addr, SocketAddrV4)>,
}

/// Something the ruleset could not express for a service, reported as a Warning event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `namespace/name` of the service.
    pub service: Box<str>,
    pub reason: &'static str,
    pub message: String,
}

/// The dynamic part of table `ip k1s`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Chain name → its rules in order.
    pub chains: BTreeMap<String, Vec<String>>,
    /// Affinity set name → timeout in seconds.
    pub sets: BTreeMap<String, u32>,
    /// (map, key) → value ([`Value::Member`] in the verdict-less `hairpin` set).
    pub elements: BTreeMap<(Map, Key), Value>,
    /// Every allocated cluster IP (for rejecting their unused ports).
    pub cluster_ips: BTreeSet<Ipv4Addr>,
}

/// The chain every no-endpoint element jumps to.
pub const REJECT_CHAIN: &str = "reject-chain";

impl Ruleset {
    /// Every element as nft text, `(map, key) → value` (for tests and diagnostics).
    pub fn element_texts(&self) -> BTreeMap<(Map, String), String> {
        self.elements
            .iter()
            .map(|((m, k), v)| ((*m, k.to_string()), v.to_string()))
            .collect()
    }
}

/// Builds the ruleset for `index`, with the problems found along the way (all services at once;
/// the sync loop keeps an [`Assembled`](crate::assemble::Assembled) and regenerates only the
/// services that changed).
pub fn generate(index: &Index, params: &Params) -> (Ruleset, Vec<Problem>) {
    let mut all = crate::assemble::Assembled::new(params);
    for key in index.services.keys() {
        all.update(key, fragment(index, key, params));
    }
    let problems = all.problems();
    (all.ruleset, problems)
}

/// The pseudo-service key of the cluster DNS fragment (sorts before every `namespace/name`).
pub const DNS_KEY: &str = "";

/// The cluster DNS's part: `<cluster-dns> . udp/tcp . 53` DNAT'd to the DNS server.
pub fn dns_fragment(params: &Params) -> Option<(Ruleset, Vec<Problem>)> {
    let (ip, target) = params.dns?;
    let mut out = Ruleset::default();
    out.cluster_ips.insert(ip);
    for proto in [Proto::Udp, Proto::Tcp] {
        let chain = format!("dns-{}", proto.nft());
        let rule = format!("meta l4proto {} dnat to {target}", proto.nft());
        out.chains.insert(chain.clone(), vec![rule]);
        out.elements.insert(
            (Map::ServiceIps, Key::Addr(ip, proto, 53)),
            Value::Goto(chain.as_str().into()),
        );
    }
    Some((out, Vec::new()))
}

/// What service `key` contributes (its chains, sets, claimed map keys, cluster IPs) and its own
/// problems; `None` when it does not exist or has no virtual IP (headless, ExternalName). Claims
/// that collide with other services are settled by [`Assembled`](crate::assemble::Assembled).
pub fn fragment(index: &Index, key: &str, params: &Params) -> Option<(Ruleset, Vec<Problem>)> {
    let svc = index.services.get(key)?;
    if svc.cluster_ips.is_empty() {
        return None; // headless or ExternalName: DNS's job, no virtual IP
    }
    let mut out = Ruleset::default();
    let mut problems = Vec::new();
    out.cluster_ips.extend(&svc.cluster_ips);
    for sp in &svc.ports {
        if sp.proto == Proto::Sctp && !params.sctp {
            problems.push(Problem {
                service: key.into(),
                reason: "SCTPUnsupported",
                message: format!("port {}/SCTP skipped: this kernel cannot NAT SCTP", sp.port),
            });
            continue;
        }
        service_port(&mut out, &mut problems, index, key, svc, sp);
    }
    Some((out, problems))
}

/// An endpoint of one service port: address, resolved target port and conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    ip: Ipv4Addr,
    port: u16,
    ready: bool,
    serving_terminating: bool,
    local: bool,
}

fn service_port(
    out: &mut Ruleset,
    problems: &mut Vec<Problem>,
    index: &Index,
    key: &str,
    svc: &Service,
    sp: &ServicePort,
) {
    let (targets, unresolved) = targets(index, key, sp);
    if unresolved {
        problems.push(Problem {
            service: key.into(),
            reason: "PortNotResolved",
            message: format!(
                "no endpoint resolves port {:?} ({}/{}): it rejects connections",
                &*sp.name,
                sp.port,
                sp.proto.nft().to_uppercase()
            ),
        });
    }
    let cluster = usable(&targets, svc.internal_local);
    let external = usable(&targets, svc.external_local);
    let port_id = if sp.name.is_empty() {
        sp.port.to_string()
    } else {
        sanitize(&sp.name)
    };
    let base = format!("{}/{}/{port_id}", sanitize(key), sp.proto.nft());

    let svc_chain = format!("svc-{base}");
    let ext_chain = format!("ext-{base}");
    let affinity = svc.affinity_timeout;
    let reject = || Value::Goto(REJECT_CHAIN.into());
    let mut used_svc = false;
    let mut used_ext = false;
    let mut hairpin: BTreeSet<Ipv4Addr> = BTreeSet::new();
    // One verdict per chain, shared by every entry key of this port (an `Arc`, no copy each).
    let mut cluster_goto: Option<Value> = None;
    for ip in &svc.cluster_ips {
        let k = Key::Addr(*ip, sp.proto, sp.port);
        let verdict = if cluster.is_empty() {
            out.elements
                .entry((Map::NoEndpointServices, k))
                .or_insert_with(reject);
            continue;
        } else if affinity.is_some() {
            used_svc = true;
            Value::Goto(svc_chain.as_str().into())
        } else {
            hairpin.extend(cluster.iter().map(|t| t.ip));
            endpoint_elements(out, Map::Endpoints, k, &cluster);
            cluster_goto
                .get_or_insert_with(|| goto(shared_chain(out, Entry::Cluster, cluster.len())))
                .clone()
        };
        out.elements.entry((Map::ServiceIps, k)).or_insert(verdict);
    }
    let ext_entry = Entry::External {
        local: svc.external_local,
    };
    let mut ext_goto: Option<Value> = None;
    for ip in svc.external_ips.iter().chain(&svc.lb_ingress) {
        let k = Key::Addr(*ip, sp.proto, sp.port);
        let verdict = if external.is_empty() {
            out.elements
                .entry((Map::NoEndpointServices, k))
                .or_insert_with(reject);
            continue;
        } else if affinity.is_some() {
            used_ext = true;
            Value::Goto(ext_chain.as_str().into())
        } else {
            hairpin.extend(external.iter().map(|t| t.ip));
            endpoint_elements(out, Map::Endpoints, k, &external);
            ext_goto
                .get_or_insert_with(|| goto(shared_chain(out, ext_entry, external.len())))
                .clone()
        };
        out.elements.entry((Map::ServiceIps, k)).or_insert(verdict);
    }
    if let Some(np) = sp.node_port {
        let k = Key::Port(sp.proto, np);
        if external.is_empty() {
            out.elements
                .entry((Map::NoEndpointNodeports, k))
                .or_insert_with(reject);
        } else {
            let verdict = if affinity.is_some() {
                used_ext = true;
                Value::Goto(ext_chain.as_str().into())
            } else {
                hairpin.extend(external.iter().map(|t| t.ip));
                endpoint_elements(out, Map::NodeportEndpoints, k, &external);
                let entry = Entry::Nodeport {
                    local: svc.external_local,
                };
                goto(shared_chain(out, entry, external.len()))
            };
            out.elements
                .entry((Map::ServiceNodeports, k))
                .or_insert(verdict);
        }
    }
    for ip in hairpin {
        out.elements
            .insert((Map::Hairpin, Key::Pair(ip, ip)), Value::Member);
    }
    // Session affinity needs per-endpoint state (a set of recent clients each), so those services
    // keep their own chains; every other service is only map elements.
    let Some(timeout) = affinity else { return };
    let mut endpoint_chains = BTreeSet::new();
    if used_svc {
        let rules = balance(&base, &cluster, timeout, &mut endpoint_chains);
        out.chains.insert(svc_chain, rules);
    }
    if used_ext {
        let mut rules = vec![masquerade_rule(svc.external_local).to_string()];
        rules.extend(balance(&base, &external, timeout, &mut endpoint_chains));
        out.chains.insert(ext_chain, rules);
    }
    for t in endpoint_chains {
        out.elements
            .insert((Map::Hairpin, Key::Pair(t.ip, t.ip)), Value::Member);
        let chain = endpoint_chain(&base, &t);
        let set = affinity_set(&chain, timeout);
        let rules = vec![
            format!("update @{set} {{ ip saddr }}"),
            format!(
                "meta l4proto {} dnat to {}:{}",
                sp.proto.nft(),
                t.ip,
                t.port
            ),
        ];
        out.sets.insert(set, timeout);
        out.chains.insert(chain, rules);
    }
}

/// Masquerade external traffic so replies come back through this node, unless the policy is Local
/// (keep the client IP); loopback sources must always be rewritten (martians).
fn masquerade_rule(external_local: bool) -> &'static str {
    if external_local {
        "ip saddr 127.0.0.0/8 jump mark-for-masquerade"
    } else {
        "jump mark-for-masquerade"
    }
}

/// How traffic reached a shared DNAT chain: which endpoint map it looks up and whether it is
/// masqueraded.
#[derive(Clone, Copy)]
enum Entry {
    /// A cluster IP: key `ip daddr . proto . port`, no masquerade.
    Cluster,
    /// An external or load-balancer IP: same key, masqueraded unless `local`.
    External { local: bool },
    /// A node port: key `proto . port`, masqueraded unless `local`.
    Nodeport { local: bool },
}

/// The chain shared by every service whose entry is `entry` with `n` endpoints: one DNAT through
/// the endpoint map, indexed by `numgen random mod n`. Returns its name.
fn shared_chain(out: &mut Ruleset, entry: Entry, n: usize) -> String {
    let by_addr = format!(
        "dnat ip to ip daddr . meta l4proto . th dport . numgen random mod {n} map @{}",
        Map::Endpoints.name()
    );
    let (name, rules) = match entry {
        Entry::Cluster => (format!("dnat-{n}"), vec![by_addr]),
        Entry::External { local } => (
            format!("ext{}-dnat-{n}", if local { "-local" } else { "" }),
            vec![masquerade_rule(local).to_string(), by_addr],
        ),
        Entry::Nodeport { local } => (
            format!("np{}-dnat-{n}", if local { "-local" } else { "" }),
            vec![
                masquerade_rule(local).to_string(),
                format!(
                    "dnat ip to meta l4proto . th dport . numgen random mod {n} map @{}",
                    Map::NodeportEndpoints.name()
                ),
            ],
        ),
    };
    out.chains.insert(name.clone(), rules);
    name
}

/// The endpoint map's elements for one entry key: `key . i : ip . port` for i in 0..n.
fn endpoint_elements(out: &mut Ruleset, map: Map, key: Key, targets: &[Target]) {
    for (i, t) in (0u32..).zip(targets) {
        if let Some(k) = key.with_index(i) {
            out.elements
                .entry((map, k))
                .or_insert(Value::Endpoint(t.ip, t.port));
        }
    }
}

fn goto(chain: String) -> Value {
    Value::Goto(chain.into())
}

/// The endpoints of `sp` across the service's slices, and whether endpoints exist that carry no
/// port of this name (a named target port that did not resolve anywhere).
fn targets(index: &Index, key: &str, sp: &ServicePort) -> (Vec<Target>, bool) {
    let mut found = BTreeSet::new();
    let mut unresolved_endpoints = false;
    for slice in index.slices.get(key).into_iter().flat_map(|s| s.values()) {
        let port = slice
            .ports
            .iter()
            .find(|p| p.name == sp.name && p.proto == sp.proto);
        let Some(port) = port else {
            unresolved_endpoints |= !slice.endpoints.is_empty();
            continue;
        };
        for e in &slice.endpoints {
            found.insert(Target {
                ip: e.ip,
                port: port.port,
                ready: e.ready,
                serving_terminating: e.serving && e.terminating,
                local: e.local,
            });
        }
    }
    let unresolved = found.is_empty() && unresolved_endpoints;
    (found.into_iter().collect(), unresolved)
}

/// Upstream's endpoint choice: ready ones, else serving terminating ones; `local_only` first
/// narrows to this node's endpoints.
fn usable(targets: &[Target], local_only: bool) -> Vec<Target> {
    let pool = targets.iter().filter(|t| !local_only || t.local);
    let ready: Vec<Target> = pool.clone().filter(|t| t.ready).copied().collect();
    if !ready.is_empty() {
        return dedup(ready);
    }
    dedup(pool.filter(|t| t.serving_terminating).copied().collect())
}

/// One target per (ip, port), even if two slices list it.
fn dedup(mut v: Vec<Target>) -> Vec<Target> {
    v.sort();
    v.dedup_by_key(|t| (t.ip, t.port));
    v
}

/// Session affinity: remembered clients first, then a jump to a random endpoint chain.
fn balance(
    base: &str,
    targets: &[Target],
    timeout: u32,
    used: &mut BTreeSet<Target>,
) -> Vec<String> {
    used.extend(targets);
    let chains: Vec<String> = targets.iter().map(|t| endpoint_chain(base, t)).collect();
    let mut rules: Vec<String> = chains
        .iter()
        .map(|c| format!("ip saddr @{} goto {c}", affinity_set(c, timeout)))
        .collect();
    match chains.as_slice() {
        [one] => rules.push(format!("goto {one}")),
        many => {
            let mut r = format!("numgen random mod {} vmap {{ ", many.len());
            for (i, c) in many.iter().enumerate() {
                let sep = if i + 1 == many.len() { "" } else { ", " };
                let _ = write!(r, "{i} : goto {c}{sep}");
            }
            r.push_str(" }");
            rules.push(r);
        }
    }
    rules
}

fn endpoint_chain(base: &str, t: &Target) -> String {
    format!("ep-{base}__{}/{}", t.ip, t.port)
}

/// The set remembering clients of one endpoint chain; the timeout is part of the name so a
/// changed timeout makes a new set instead of altering one in use.
fn affinity_set(endpoint_chain: &str, timeout: u32) -> String {
    format!("aff-{}-{timeout}", &endpoint_chain[3..])
}

/// Keeps what nft accepts in an identifier (`[a-zA-Z0-9/_.-]`); API names are DNS labels, so
/// this only matters for hostile input, which then cannot inject syntax.
fn sanitize(s: &str) -> String {
    s.chars()
        .take(120)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
