//! The element-only transaction: when a sync changes nothing but map and set elements (an
//! endpoint moved, a service without affinity came or went), its diff as typed operations for
//! the netlink backend, with keys and data in the kernel's binary layout.
//!
//! Invariants:
//! - [`changes`] returns `None` as soon as a chain or an affinity set differs: those need `nft`;
//! - the operations are the same as [`crate::script::diff_touched`]'s element lines, all
//!   deletions (of changed or gone elements) before all additions;
//! - every key and datum is encoded from the fixed per-map layout [`crate::rules`] writes
//!   (`ip . proto . port [. index]`, `proto . port [. index]`, `ip . ip`, `ip . port`,
//!   `goto CHAIN`); a string that does not fit its layout makes `changes` return `None`, so the
//!   sync falls back to `nft`, never sends a malformed element.

use std::net::Ipv4Addr;

use crate::assemble::Touched;
use crate::rules::{Map, Ruleset};

/// The set holding every allocated cluster IP.
pub const CLUSTER_IPS: &str = "cluster-ips";

/// What an element maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// A value (`ip . port` of an endpoint), already encoded.
    Value(Vec<u8>),
    /// `goto CHAIN` in a verdict map.
    Goto(String),
}

/// One element added to or deleted from a set or map of table `ip k1s`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub delete: bool,
    pub set: &'static str,
    /// The key: each field padded to 4 bytes, as the kernel concatenates registers.
    pub key: Vec<u8>,
    /// `None` for sets and for deletions.
    pub data: Option<Data>,
}

/// One field of a key.
#[derive(Clone, Copy)]
enum Field {
    /// An IPv4 address, network order.
    Ip,
    /// `tcp`, `udp` or `sctp`: the protocol number, one byte.
    Proto,
    /// A port, network order.
    Port,
    /// The `numgen` index: an integer in host order.
    Index,
}

fn layout(map: Map) -> &'static [Field] {
    use Field::*;
    match map {
        Map::ServiceIps | Map::NoEndpointServices => &[Ip, Proto, Port],
        Map::ServiceNodeports | Map::NoEndpointNodeports => &[Proto, Port],
        Map::Endpoints => &[Ip, Proto, Port, Index],
        Map::NodeportEndpoints => &[Proto, Port, Index],
        Map::Hairpin => &[Ip, Ip],
    }
}

/// Encodes `a . b . c` along `fields`; `None` when it does not fit.
fn encode(text: &str, fields: &[Field]) -> Option<Vec<u8>> {
    let parts: Vec<&str> = text.split(" . ").collect();
    if parts.len() != fields.len() {
        return None;
    }
    let mut out = Vec::with_capacity(4 * fields.len());
    for (part, field) in parts.iter().zip(fields) {
        let word: [u8; 4] = match field {
            Field::Ip => part.parse::<Ipv4Addr>().ok()?.octets(),
            Field::Proto => {
                let n = match *part {
                    "tcp" => 6,
                    "udp" => 17,
                    "sctp" => 132,
                    _ => return None,
                };
                [n, 0, 0, 0]
            }
            Field::Port => {
                let [a, b] = part.parse::<u16>().ok()?.to_be_bytes();
                [a, b, 0, 0]
            }
            Field::Index => part.parse::<u32>().ok()?.to_ne_bytes(),
        };
        out.extend_from_slice(&word);
    }
    Some(out)
}

/// The datum of an element of `map` (`None` inside: the map is a set).
fn encode_data(map: Map, text: &str) -> Option<Option<Data>> {
    Some(match map {
        Map::Hairpin => None,
        Map::Endpoints | Map::NodeportEndpoints => {
            Some(Data::Value(encode(text, &[Field::Ip, Field::Port])?))
        }
        _ => Some(Data::Goto(text.strip_prefix("goto ")?.to_string())),
    })
}

/// The addition of element `key : value` to `map`, or `None` when it does not fit its layout.
pub fn addition(map: Map, key: &str, value: &str) -> Option<Op> {
    Some(Op {
        delete: false,
        set: map.name(),
        key: encode(key, layout(map))?,
        data: encode_data(map, value)?,
    })
}

/// The element operations turning `old` into `new` over `touched`, or `None` when a chain or a
/// set changed (or an element does not fit its layout): then the transaction needs `nft`.
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
    let changed = |k: &&(Map, String)| old.elements.get(*k) != new.elements.get(*k);
    for (map, key) in touched.elements.iter().filter(changed) {
        if old.elements.contains_key(&(*map, key.clone())) {
            ops.push(Op {
                delete: true,
                set: map.name(),
                key: encode(key, layout(*map))?,
                data: None,
            });
        }
    }
    for (map, key) in touched.elements.iter().filter(changed) {
        if let Some(v) = new.elements.get(&(*map, key.clone())) {
            ops.push(Op {
                delete: false,
                set: map.name(),
                key: encode(key, layout(*map))?,
                data: encode_data(*map, v)?,
            });
        }
    }
    for ip in &touched.cluster_ips {
        let (was, is) = (old.cluster_ips.contains(ip), new.cluster_ips.contains(ip));
        if was != is {
            ops.push(Op {
                delete: was,
                set: CLUSTER_IPS,
                key: ip.octets().to_vec(),
                data: None,
            });
        }
    }
    // Deletions of cluster IPs must precede additions too (the text diff's order).
    ops.sort_by_key(|o| !o.delete);
    Some(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_register_layout() {
        let k = encode("10.43.0.5 . tcp . 80 . 3", layout(Map::Endpoints)).unwrap();
        let mut want = vec![10, 43, 0, 5, 6, 0, 0, 0, 0, 80, 0, 0];
        want.extend_from_slice(&3u32.to_ne_bytes());
        assert_eq!(k, want);
        assert_eq!(
            encode_data(Map::Endpoints, "10.42.0.9 . 8080").unwrap(),
            Some(Data::Value(vec![10, 42, 0, 9, 0x1f, 0x90, 0, 0]))
        );
        assert_eq!(
            encode_data(Map::ServiceNodeports, "goto np-dnat-2").unwrap(),
            Some(Data::Goto("np-dnat-2".into()))
        );
        assert_eq!(encode_data(Map::Hairpin, "").unwrap(), None);
    }

    #[test]
    fn misfits_are_refused() {
        for bad in [
            "10.43.0.5 . tcp . 80",
            "10.43.0.5 . icmp . 80 . 1",
            "x . tcp . 1 . 1",
        ] {
            assert!(encode(bad, layout(Map::Endpoints)).is_none(), "{bad}");
        }
        assert!(encode_data(Map::ServiceIps, "jump x").is_none());
    }

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
}
