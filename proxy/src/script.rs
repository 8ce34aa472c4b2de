//! Rendering a [`Ruleset`] as an `nft -f` script: the full replacement of table `ip k1s`, or the
//! incremental transaction from one ruleset to the next.
//!
//! Invariants:
//! - a script is one transaction: `nft -f` applies all of it or nothing;
//! - the full script starts with `add table` + `delete table`, so it works whether or not the table
//!   exists and leaves no rule of a previous run (a restart after a crash converges, no duplicates);
//! - the incremental script orders its commands so each reference is valid when it is made: new
//!   sets and chains first, rule rewrites, map elements, and only then the removal of chains and
//!   sets nothing refers to any more;
//! - an incremental script never adds a rule that uses the endpoint maps (nft 1.0.6 cannot encode
//!   one against the existing maps): such chains are created beforehand by a netlink batch and
//!   left out ([`diff_touched_except`]). A chain's rules are a function of its name (`dnat-N`), so
//!   an existing one of these chains is never rewritten.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::assemble::Touched;
use crate::elem::{Key, Value};
use crate::rules::{Map, Params, REJECT_CHAIN, Ruleset};

/// The table's family and name.
pub const TABLE: &str = "ip k1s";

/// The table's name alone (its family is `ip`).
pub const TABLE_NAME: &str = "k1s";

/// Packets marked with this bit are masqueraded on the way out.
const MASQ_MARK: &str = "0x4000";

/// The fixed skeleton: maps, sets, hooks and helper chains.
///
/// The endpoint maps' data is typed `ip daddr . th dport`, not `tcp dport`: with `tcp dport` nft
/// 1.0.6 gives every rule it makes that uses the map a hidden `meta l4proto tcp` dependency, so
/// UDP and SCTP services would never be DNAT'd. With this typing nft accepts such rules only in
/// the transaction that declares the maps (this full script); an incremental script must leave
/// them to a netlink batch ([`uses_endpoint_maps`], [`crate::full::new_chains`]). The netlink
/// batch ([`crate::full`]) declares the maps with the same userdata nft sends for this text.
pub fn base(params: &Params) -> String {
    let (net, len) = params.service_cidr;
    format!(
        "table {TABLE} {{
  comment \"k1s service proxy; owned by k1s, rewritten on every sync\"
  set cluster-ips {{ type ipv4_addr; }}
  map service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict; }}
  map service-nodeports {{ type inet_proto . inet_service : verdict; }}
  map no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict; }}
  map no-endpoint-nodeports {{ type inet_proto . inet_service : verdict; }}
  map endpoints {{ typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport; }}
  map nodeport-endpoints {{ typeof meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport; }}
  set hairpin {{ type ipv4_addr . ipv4_addr; }}
  chain mark-for-masquerade {{ meta mark set meta mark or {MASQ_MARK}; }}
  chain masquerading {{
    type nat hook postrouting priority 100; policy accept;
    ct status dnat ip saddr . ip daddr @hairpin masquerade fully-random
    meta mark & {MASQ_MARK} == 0 return
    meta mark set meta mark xor {MASQ_MARK}
    masquerade fully-random
  }}
  chain services {{
    ip daddr . meta l4proto . th dport vmap @service-ips
    fib daddr type local meta l4proto . th dport vmap @service-nodeports
  }}
  chain nat-prerouting {{ type nat hook prerouting priority -100; policy accept; jump services; }}
  chain nat-output {{ type nat hook output priority -100; policy accept; jump services; }}
  chain {REJECT_CHAIN} {{
    meta l4proto tcp reject with tcp reset
    reject
  }}
  chain endpoints-check {{
    ip daddr . meta l4proto . th dport vmap @no-endpoint-services
    fib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports
  }}
  chain cluster-ips-check {{
    ip daddr @cluster-ips reject
    ip daddr {net}/{len} reject
  }}
  chain filter-input {{ type filter hook input priority -110; policy accept; ct state new jump endpoints-check; }}
  chain filter-forward {{
    type filter hook forward priority -110; policy accept;
    ct state new jump endpoints-check
    ct state new jump cluster-ips-check
  }}
  chain filter-output {{ type filter hook output priority -110; policy accept; ct state new jump endpoints-check; }}
  chain filter-output-post-dnat {{ type filter hook output priority -90; policy accept; ct state new jump cluster-ips-check; }}
}}
"
    )
}

/// The whole table, replacing whatever is there.
pub fn full(params: &Params, rs: &Ruleset) -> String {
    let mut s = String::with_capacity(256 + rs.chains.len() * 160);
    let _ = writeln!(s, "add table {TABLE}\ndelete table {TABLE}");
    s.push_str(&base(params));
    for (name, timeout) in &rs.sets {
        add_set(&mut s, name, *timeout);
    }
    for name in rs.chains.keys() {
        let _ = writeln!(s, "add chain {TABLE} {name}");
    }
    for (name, rules) in &rs.chains {
        add_rules(&mut s, name, rules);
    }
    elements(
        &mut s,
        "add",
        rs.elements.iter().map(|((m, k), v)| (*m, k, Some(v))),
    );
    ips(&mut s, "add", rs.cluster_ips.iter());
    s
}

/// The transaction turning `old` (what the kernel has) into `new`; empty when nothing changed.
pub fn diff(old: &Ruleset, new: &Ruleset) -> String {
    let both = |a: &Ruleset, b: &Ruleset| Touched {
        chains: a.chains.keys().chain(b.chains.keys()).cloned().collect(),
        sets: a.sets.keys().chain(b.sets.keys()).cloned().collect(),
        elements: a
            .elements
            .keys()
            .chain(b.elements.keys())
            .cloned()
            .collect(),
        cluster_ips: a.cluster_ips.union(&b.cluster_ips).copied().collect(),
    };
    diff_touched(old, new, &both(old, new))
}

/// [`diff`] restricted to the names in `touched` (everything else is known to be equal).
pub fn diff_touched(old: &Ruleset, new: &Ruleset, touched: &Touched) -> String {
    diff_touched_except(old, new, touched, &BTreeSet::new())
}

/// Whether a chain's rules use the endpoint maps. `nft -f` cannot add such a rule to an existing
/// table: nft 1.0.6 reads the maps' `ip daddr . th dport` data back as conflicting with the
/// rule's `th dport` ("conflicting protocols specified: ip vs. th"), and with `tcp dport` typing
/// it would silently make the rule TCP-only. So these chains are created by the netlink batch of
/// [`crate::full::new_chains`], never by an incremental script.
pub fn uses_endpoint_maps(rules: &[String]) -> bool {
    rules.iter().any(|r| {
        r.ends_with(&format!(" map @{}", Map::Endpoints.name()))
            || r.ends_with(&format!(" map @{}", Map::NodeportEndpoints.name()))
    })
}

/// [`diff_touched`] without creating the new chains in `made` (created before the script runs,
/// by a netlink batch).
pub fn diff_touched_except(
    old: &Ruleset,
    new: &Ruleset,
    touched: &Touched,
    made: &BTreeSet<String>,
) -> String {
    let mut s = String::new();
    for name in &touched.sets {
        if let (Some(timeout), false) = (new.sets.get(name), old.sets.contains_key(name)) {
            add_set(&mut s, name, *timeout);
        }
    }
    for name in &touched.chains {
        match (old.chains.get(name), new.chains.get(name)) {
            (None, Some(_)) if made.contains(name) => {}
            (None, Some(rules)) => {
                let _ = writeln!(s, "add chain {TABLE} {name}");
                add_rules(&mut s, name, rules);
            }
            (Some(old_rules), Some(rules)) if old_rules != rules => {
                let _ = writeln!(s, "flush chain {TABLE} {name}");
                add_rules(&mut s, name, rules);
            }
            _ => {}
        }
    }
    // Changed verdicts are deleted and re-added: nft has no "replace element".
    let changed = |k: &&(Map, Key)| old.elements.get(*k) != new.elements.get(*k);
    let gone = touched
        .elements
        .iter()
        .filter(changed)
        .filter(|k| old.elements.contains_key(*k));
    elements(&mut s, "delete", gone.map(|(m, k)| (*m, k, None)));
    let came = touched.elements.iter().filter(changed);
    let came = came.filter_map(|k| new.elements.get(k).map(|v| (k.0, &k.1, Some(v))));
    elements(&mut s, "add", came);
    let ips_gone = touched
        .cluster_ips
        .iter()
        .filter(|ip| old.cluster_ips.contains(ip) && !new.cluster_ips.contains(ip));
    ips(&mut s, "delete", ips_gone);
    let ips_came = touched
        .cluster_ips
        .iter()
        .filter(|ip| !old.cluster_ips.contains(ip) && new.cluster_ips.contains(ip));
    ips(&mut s, "add", ips_came);
    let removed: Vec<&String> = touched
        .chains
        .iter()
        .filter(|n| old.chains.contains_key(*n) && !new.chains.contains_key(*n))
        .collect();
    // A chain may still jump to another removed one: empty them all before deleting any.
    for name in &removed {
        let _ = writeln!(s, "flush chain {TABLE} {name}");
    }
    for name in &removed {
        let _ = writeln!(s, "delete chain {TABLE} {name}");
    }
    for name in touched
        .sets
        .iter()
        .filter(|n| old.sets.contains_key(*n) && !new.sets.contains_key(*n))
    {
        let _ = writeln!(s, "delete set {TABLE} {name}");
    }
    s
}

/// Brings `applied` (what the kernel has) up to `new` for the `touched` names, after the
/// transaction from [`diff_touched`] succeeded.
pub fn advance(applied: &mut Ruleset, new: &Ruleset, touched: &Touched) {
    for name in &touched.chains {
        match new.chains.get(name) {
            Some(r) => applied.chains.insert(name.clone(), r.clone()),
            None => applied.chains.remove(name),
        };
    }
    for name in &touched.sets {
        match new.sets.get(name) {
            Some(t) => applied.sets.insert(name.clone(), *t),
            None => applied.sets.remove(name),
        };
    }
    for k in &touched.elements {
        match new.elements.get(k) {
            Some(v) => applied.elements.insert(*k, v.clone()),
            None => applied.elements.remove(k),
        };
    }
    for ip in &touched.cluster_ips {
        if new.cluster_ips.contains(ip) {
            applied.cluster_ips.insert(*ip);
        } else {
            applied.cluster_ips.remove(ip);
        }
    }
}

fn add_set(s: &mut String, name: &str, timeout: u32) {
    let _ = writeln!(
        s,
        "add set {TABLE} {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"
    );
}

fn add_rules(s: &mut String, chain: &str, rules: &[String]) {
    for r in rules {
        let _ = writeln!(s, "add rule {TABLE} {chain} {r}");
    }
}

/// Map elements batched per map, a bounded number per command to keep lines reasonable.
fn elements<'a>(
    s: &mut String,
    verb: &str,
    items: impl Iterator<Item = (Map, &'a Key, Option<&'a Value>)>,
) {
    let mut current: Option<Map> = None;
    let mut n = 0;
    for (map, key, verdict) in items {
        if current != Some(map) || n == 1000 {
            if current.is_some() {
                s.push_str(" }\n");
            }
            let _ = write!(s, "{verb} element {TABLE} {} {{ ", map.name());
            current = Some(map);
            n = 0;
        } else {
            s.push_str(", ");
        }
        let _ = write!(s, "{key}");
        if let Some(v) = verdict.filter(|v| **v != Value::Member) {
            let _ = write!(s, " : {v}");
        }
        n += 1;
    }
    if current.is_some() {
        s.push_str(" }\n");
    }
}

fn ips<'a>(s: &mut String, verb: &str, ips: impl Iterator<Item = &'a Ipv4Addr>) {
    let list: Vec<String> = ips.map(Ipv4Addr::to_string).collect();
    for chunk in list.chunks(1000) {
        let _ = writeln!(
            s,
            "{verb} element {TABLE} cluster-ips {{ {} }}",
            chunk.join(", ")
        );
    }
}
