//! The element-only transaction: when a sync changes nothing but map and set elements (an
//! endpoint moved, a service without affinity came or went), its diff as typed operations for
//! the netlink backend, with keys and data in the kernel's binary layout.
//!
//! Invariants:
//! - [`changes`] returns `None` as soon as a chain or an affinity set differs: those need `nft`;
//! - the operations are the same as [`crate::script::diff_touched`]'s element lines, all
//!   deletions (of changed or gone elements) before all additions;
//! - keys and data are the typed values [`crate::rules`] writes ([`crate::elem`]), encoded into
//!   the kernel's layout only when the message is written: nothing is parsed back from text.

use crate::assemble::Touched;
use crate::elem::{Key, Value};
use crate::rules::{Map, Ruleset};

/// The set holding every allocated cluster IP.
pub const CLUSTER_IPS: &str = "cluster-ips";

/// One element added to or deleted from a set or map of table `ip k1s`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub delete: bool,
    pub set: &'static str,
    /// The key, typed: encoded into the kernel's layout when the message is written.
    pub key: Key,
    /// [`Value::Member`] for sets and for deletions.
    pub data: Value,
}

/// The element operations turning `old` into `new` over `touched`, or `None` when a chain or a
/// set changed: then the transaction needs `nft`.
pub fn changes(old: &Ruleset, new: &Ruleset, touched: &Touched) -> Option<Vec<Op>> {
    if touched
        .chains
        .iter()
        .any(|c| old.chains.get(c) != new.chains.get(c))
        || touched
            .sets
            .iter()
            .any(|s| old.sets.get(s) != new.sets.get(s))
    {
        return None;
    }
    let mut ops = Vec::new();
    let changed = |k: &&(Map, Key)| old.elements.get(*k) != new.elements.get(*k);
    for (map, key) in touched.elements.iter().filter(changed) {
        if old.elements.contains_key(&(*map, *key)) {
            ops.push(Op {
                delete: true,
                set: map.name(),
                key: *key,
                data: Value::Member,
            });
        }
    }
    for (map, key) in touched.elements.iter().filter(changed) {
        if let Some(v) = new.elements.get(&(*map, *key)) {
            ops.push(Op {
                delete: false,
                set: map.name(),
                key: *key,
                data: v.clone(),
            });
        }
    }
    for ip in &touched.cluster_ips {
        let (was, is) = (old.cluster_ips.contains(ip), new.cluster_ips.contains(ip));
        if was != is {
            ops.push(Op {
                delete: was,
                set: CLUSTER_IPS,
                key: Key::Ip(*ip),
                data: Value::Member,
            });
        }
    }
    // Deletions of cluster IPs must precede additions too (the text diff's order).
    ops.sort_by_key(|o| !o.delete);
    Some(ops)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::model::Proto;

    #[test]
    fn chain_changes_need_nft() {
        let old = Ruleset::default();
        let mut new = Ruleset::default();
        new.chains.insert("dnat-3".into(), vec!["x".into()]);
        let mut touched = Touched::default();
        touched.chains.insert("dnat-3".into());
        assert!(changes(&old, &new, &touched).is_none());
        touched.chains.clear();
        touched.cluster_ips.insert(Ipv4Addr::new(10, 43, 0, 1));
        new.cluster_ips.insert(Ipv4Addr::new(10, 43, 0, 1));
        let ops = changes(&old, &new, &touched).unwrap();
        assert_eq!(ops.len(), 1);
        assert!(!ops[0].delete && ops[0].set == CLUSTER_IPS);
    }

    #[test]
    fn a_changed_value_is_a_delete_then_an_add() {
        let k = (
            Map::Endpoints,
            Key::AddrIndex(Ipv4Addr::new(10, 43, 0, 5), Proto::Tcp, 80, 0),
        );
        let mut old = Ruleset::default();
        old.elements
            .insert(k, Value::Endpoint(Ipv4Addr::new(10, 42, 0, 5), 80));
        let mut new = Ruleset::default();
        new.elements
            .insert(k, Value::Endpoint(Ipv4Addr::new(10, 42, 0, 6), 80));
        let mut touched = Touched::default();
        touched.elements.insert(k);
        let ops = changes(&old, &new, &touched).unwrap();
        assert_eq!(ops.len(), 2);
        assert!(ops[0].delete && ops[0].data == Value::Member);
        assert!(!ops[1].delete && ops[1].data == new.elements[&k]);
        assert!(changes(&old, &old, &touched).unwrap().is_empty());
    }
}
