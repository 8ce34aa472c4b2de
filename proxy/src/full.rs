//! The full replacement of table `ip k1s` as one nf_tables netlink batch: the same transaction
//! [`crate::script::full`] writes for `nft -f` (`add table`, `delete table`, the skeleton, the
//! dynamic chains, every element), encoded here without the `nft` program, so a sync of 100,000
//! elements costs the kernel's insertions, not nft's parser and evaluator.
//!
//! Invariants:
//! - the batch creates exactly what the `nft -f` script does: the same table comment, sets and
//!   maps (with the userdata nft stores for their declarations, so `nft list` prints them the
//!   same), chains in the same order, rules with the expressions nft sends for the same text;
//! - [`batch`] returns `None` for any rule it does not know (the session-affinity chains, with
//!   their anonymous maps and dynamic sets): the caller then sends the `nft -f` script instead,
//!   so nothing is ever half-encoded; elements are typed ([`crate::elem`]) and always encode;
//! - only table `ip k1s` is named;
//! - the rules that use the endpoint maps carry no protocol check (nft adds a `meta l4proto tcp`
//!   to such rules when the maps' data is typed `tcp dport`, and refuses them against an existing
//!   map typed `th dport`): so [`new_chains`] is also how an incremental sync adds those chains.

use std::net::Ipv4Addr;

use crate::elem::{Key, Value};
use crate::elements::{self, Op};
use crate::expr::seq::{ct_flag, ip_addr, ip_in, l4proto, l4proto_is, th_dport, to_chain};
use crate::expr::{
    CT_STATE, CT_STATUS, Expr, META_MARK, NFT_JUMP, NFT_RETURN, REG_1, REG_2, REG32_0,
};
use crate::netlink::{
    Builder, NFNL_SUBSYS_NFTABLES, NFPROTO_IPV4, NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST,
    element_messages,
};
use crate::rules::{Map, Params, REJECT_CHAIN, Ruleset};
use crate::script::TABLE_NAME;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_NEWSET: u16 = 9;
const NLM_F_APPEND: u16 = 0x800;

/// The table's comment, as in [`crate::script::base`].
const COMMENT: &str = "k1s service proxy; owned by k1s, rewritten on every sync";
const MASQ_MARK: u32 = 0x4000;
/// `masquerade fully-random`.
const FULLY_RANDOM: u32 = 0x10;

/// A set or map of the skeleton: name, flags, key type and length, data type and length, and the
/// userdata nft 1.0.6 stores for its declaration (read by `nft list` only, never by the kernel).
struct SetDecl {
    name: &'static str,
    map: bool,
    key_type: u32,
    key_len: u32,
    data: Option<(u32, u32)>,
    udata: &'static str,
}

/// Userdata of a `type A . B : verdict` map (key and data byte order unset, concatenation).
const UDATA_VMAP: &str = "000400000000010400000000030800040d0000000100060400000000";
const VERDICT: u32 = 0xffff_ff00;

const SETS: [SetDecl; 8] = [
    SetDecl {
        name: "cluster-ips",
        map: false,
        key_type: 7, // ipv4_addr
        key_len: 4,
        data: None,
        udata: "000402000000",
    },
    SetDecl {
        name: "service-ips",
        map: true,
        key_type: 0x730d, // ipv4_addr . inet_proto . inet_service
        key_len: 12,
        data: Some((VERDICT, 0)),
        udata: UDATA_VMAP,
    },
    SetDecl {
        name: "service-nodeports",
        map: true,
        key_type: 0x30d, // inet_proto . inet_service
        key_len: 8,
        data: Some((VERDICT, 0)),
        udata: UDATA_VMAP,
    },
    SetDecl {
        name: "no-endpoint-services",
        map: true,
        key_type: 0x730d,
        key_len: 12,
        data: Some((VERDICT, 0)),
        udata: UDATA_VMAP,
    },
    SetDecl {
        name: "no-endpoint-nodeports",
        map: true,
        key_type: 0x30d,
        key_len: 8,
        data: Some((VERDICT, 0)),
        udata: UDATA_VMAP,
    },
    SetDecl {
        name: "endpoints",
        map: true,
        key_type: 0x1c_c344,
        key_len: 16,
        data: Some((0x1cd, 8)), // ipv4_addr . inet_service
        // typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport
        udata: "000400000000010400000000036000040d00000001580014000407000000010c00040c00000001040c000000010e00040900000001060004100000000214000407000000010c00040b000000010402000000031a0004170000000112000401000000010401000000020400000000043400040d000000012c0014000407000000010c00040c00000001040c0000000114000407000000010c00040b000000010402000000060400000000",
    },
    SetDecl {
        name: "nodeport-endpoints",
        map: true,
        key_type: 0xc344,
        key_len: 12,
        data: Some((0x1cd, 8)),
        // typeof meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport
        udata: "000400000000010400000000034a00040d0000000142000e00040900000001060004100000000114000407000000010c00040b000000010402000000021a0004170000000112000401000000010401000000020400000000043400040d000000012c0014000407000000010c00040c00000001040c0000000114000407000000010c00040b000000010402000000060400000000",
    },
    SetDecl {
        name: "hairpin",
        map: false,
        key_type: 0x1c7, // ipv4_addr . ipv4_addr
        key_len: 8,
        data: None,
        udata: "000400000000030800040d0000000100",
    },
];

/// A chain: name, and for a base chain its type, hook and priority (policy accept).
struct ChainDecl {
    name: String,
    hook: Option<(&'static str, u32, i32)>,
    rules: Vec<Vec<Expr>>,
}

const PREROUTING: u32 = 0;
const INPUT: u32 = 1;
const FORWARD: u32 = 2;
const OUTPUT: u32 = 3;
const POSTROUTING: u32 = 4;

/// The whole table as one batch starting at sequence number `first_seq`: the encoded batch and
/// the sequence numbers to be acknowledged; `None` when a part of `rs` cannot be encoded here.
pub fn batch(params: &Params, rs: &Ruleset, first_seq: u32) -> Option<(Vec<u8>, Vec<u32>)> {
    if !rs.sets.is_empty() {
        return None; // session affinity: dynamic sets and anonymous maps go through nft
    }
    let mut chains = skeleton(params);
    for (name, rules) in &rs.chains {
        let rules = rules
            .iter()
            .map(|r| dynamic_rule(r.as_str()))
            .collect::<Option<Vec<_>>>()?;
        chains.push(ChainDecl {
            name: name.clone(),
            hook: None,
            rules,
        });
    }
    let ops = all_elements(rs);

    let mut b = Builder {
        buf: Vec::with_capacity(1024 + ops.len() * 48),
    };
    let mut seq = first_seq;
    let mut acked = Vec::new();
    b.batch_begin(seq);
    let mut msg = |b: &mut Builder, kind: u16, flags: u16, seq: &mut u32| {
        *seq += 1;
        acked.push(*seq);
        b.begin(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            *seq,
            NFPROTO_IPV4,
            0,
        )
    };
    // `add table` + `delete table`: works whether or not it exists, and drops all of it.
    let at = msg(&mut b, NFT_MSG_NEWTABLE, NLM_F_CREATE, &mut seq);
    b.string(1, TABLE_NAME);
    b.end(at);
    let at = msg(&mut b, NFT_MSG_DELTABLE, 0, &mut seq);
    b.string(1, TABLE_NAME);
    b.end(at);
    let at = msg(&mut b, NFT_MSG_NEWTABLE, NLM_F_CREATE, &mut seq);
    b.string(1, TABLE_NAME);
    b.u32(2, 0);
    let mut udata = vec![0u8, COMMENT.len() as u8 + 1];
    udata.extend_from_slice(COMMENT.as_bytes());
    udata.push(0);
    b.attr(6, &udata);
    b.end(at);
    for c in &chains {
        let at = msg(&mut b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, &mut seq);
        b.string(1, TABLE_NAME);
        b.string(3, &c.name);
        if let Some((kind, hook, prio)) = c.hook {
            b.string(7, kind);
            b.u32(5, 1); // policy accept
            let h = b.open(4);
            b.u32(1, hook);
            b.u32(2, prio as u32);
            b.close(h);
        }
        b.end(at);
    }
    for (id, s) in SETS.iter().enumerate() {
        let at = msg(&mut b, NFT_MSG_NEWSET, NLM_F_CREATE, &mut seq);
        b.string(1, TABLE_NAME);
        b.string(2, s.name);
        b.u32(3, if s.map { 8 } else { 0 }); // NFT_SET_MAP
        b.u32(4, s.key_type);
        b.u32(5, s.key_len);
        if let Some((t, len)) = s.data {
            b.u32(6, t);
            b.u32(7, len);
        }
        b.u32(10, id as u32 + 1);
        b.attr(13, &hex(s.udata));
        b.end(at);
    }
    for c in &chains {
        for rule in &c.rules {
            let at = msg(
                &mut b,
                NFT_MSG_NEWRULE,
                NLM_F_CREATE | NLM_F_APPEND,
                &mut seq,
            );
            b.string(1, TABLE_NAME);
            b.string(2, &c.name);
            let list = b.open(4);
            for e in rule {
                e.encode(&mut b);
            }
            b.close(list);
            b.end(at);
        }
    }
    element_messages(&mut b, TABLE_NAME, &ops, &mut seq, &mut acked);
    seq += 1;
    b.batch_end(seq);
    Some((b.buf, acked))
}

/// New chains of the dynamic part (`name`, rule texts) as one additive batch starting at sequence
/// number `first_seq`: each chain created, then its rules appended. This is how a chain whose
/// rules use the endpoint maps is added to an existing table — `nft -f` cannot (see
/// [`crate::script::uses_endpoint_maps`]). `None` when a rule is not one [`batch`] knows.
pub fn new_chains<'a>(
    chains: impl IntoIterator<Item = (&'a str, &'a [String])>,
    first_seq: u32,
) -> Option<(Vec<u8>, Vec<u32>)> {
    let mut decls = Vec::new();
    for (name, rules) in chains {
        let rules = rules
            .iter()
            .map(|r| dynamic_rule(r.as_str()))
            .collect::<Option<Vec<_>>>()?;
        decls.push(ChainDecl {
            name: name.to_string(),
            hook: None,
            rules,
        });
    }
    let mut b = Builder {
        buf: Vec::with_capacity(256 + decls.len() * 256),
    };
    let mut seq = first_seq;
    let mut acked = Vec::new();
    b.batch_begin(seq);
    for c in &decls {
        seq += 1;
        acked.push(seq);
        let at = b.begin(
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
            seq,
            NFPROTO_IPV4,
            0,
        );
        b.string(1, TABLE_NAME);
        b.string(3, &c.name);
        b.end(at);
        for rule in &c.rules {
            seq += 1;
            acked.push(seq);
            let at = b.begin(
                (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE,
                NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
                seq,
                NFPROTO_IPV4,
                0,
            );
            b.string(1, TABLE_NAME);
            b.string(2, &c.name);
            let list = b.open(4);
            for e in rule {
                e.encode(&mut b);
            }
            b.close(list);
            b.end(at);
        }
    }
    seq += 1;
    b.batch_end(seq);
    Some((b.buf, acked))
}

/// Every element of `rs` (and every cluster IP) as an addition.
fn all_elements(rs: &Ruleset) -> Vec<Op> {
    let mut ops = Vec::with_capacity(rs.elements.len() + rs.cluster_ips.len());
    ops.extend(rs.elements.iter().map(|((map, key), v)| Op {
        delete: false,
        set: map.name(),
        key: *key,
        data: v.clone(),
    }));
    ops.extend(rs.cluster_ips.iter().map(|ip| Op {
        delete: false,
        set: elements::CLUSTER_IPS,
        key: Key::Ip(*ip),
        data: Value::Member,
    }));
    ops
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// `ip daddr . meta l4proto . th dport` into registers 8, 9, 10.
fn daddr_proto_port() -> [Expr; 3] {
    [
        ip_addr(16, REG_1),
        l4proto(REG32_0 + 1),
        th_dport(REG32_0 + 2),
    ]
}

/// `fib daddr type local meta l4proto . th dport`.
fn local_proto_port() -> [Expr; 4] {
    [
        Expr::FibDaddrType { dreg: REG_1 },
        Expr::Cmp {
            sreg: REG_1,
            neq: false,
            data: 2u32.to_ne_bytes().to_vec(), // RTN_LOCAL
        },
        l4proto(REG_1),
        th_dport(REG32_0 + 1),
    ]
}

fn vmap(set: Map) -> Expr {
    Expr::Lookup {
        set: set.name().into(),
        sreg: REG_1,
        dreg: Some(0),
    }
}

/// `meta mark set meta mark (& mask) ^ xor`.
fn set_mark(mask: u32, xor: u32) -> [Expr; 3] {
    [
        Expr::Meta {
            key: META_MARK,
            dreg: REG_1,
        },
        Expr::Bitwise {
            reg: REG_1,
            mask: mask.to_ne_bytes().to_vec(),
            xor: xor.to_ne_bytes().to_vec(),
        },
        Expr::MetaSet {
            key: META_MARK,
            sreg: REG_1,
        },
    ]
}

fn reject_port_unreachable() -> Expr {
    Expr::Reject { kind: 0, code: 3 }
}

/// The fixed chains of [`crate::script::base`], in its order, with its rules.
fn skeleton(params: &Params) -> Vec<ChainDecl> {
    let chain = |name: &str, hook, rules: Vec<Vec<Expr>>| ChainDecl {
        name: name.into(),
        hook,
        rules,
    };
    let ct_new_jump = |to: &str| {
        let mut r = ct_flag(CT_STATE, 8).to_vec();
        r.push(to_chain(NFT_JUMP, to));
        r
    };
    let hairpin = {
        let mut r = ct_flag(CT_STATUS, 0x20).to_vec(); // IPS_DST_NAT
        r.extend([
            ip_addr(12, REG_1),
            ip_addr(16, REG32_0 + 1),
            Expr::Lookup {
                set: Map::Hairpin.name().into(),
                sreg: REG_1,
                dreg: None,
            },
            Expr::Masq {
                flags: FULLY_RANDOM,
            },
        ]);
        r
    };
    let unmarked_return = vec![
        Expr::Meta {
            key: META_MARK,
            dreg: REG_1,
        },
        Expr::Bitwise {
            reg: REG_1,
            mask: MASQ_MARK.to_ne_bytes().to_vec(),
            xor: vec![0; 4],
        },
        Expr::Cmp {
            sreg: REG_1,
            neq: false,
            data: vec![0; 4],
        },
        Expr::Verdict {
            code: NFT_RETURN,
            chain: None,
        },
    ];
    let with = |a: &[Expr], last: Expr| {
        let mut r = a.to_vec();
        r.push(last);
        r
    };
    let (net, len) = params.service_cidr;
    vec![
        chain(
            "mark-for-masquerade",
            None,
            vec![set_mark(!MASQ_MARK, MASQ_MARK).to_vec()],
        ),
        chain(
            "masquerading",
            Some(("nat", POSTROUTING, 100)),
            vec![
                hairpin,
                unmarked_return,
                set_mark(u32::MAX, MASQ_MARK).to_vec(),
                vec![Expr::Masq {
                    flags: FULLY_RANDOM,
                }],
            ],
        ),
        chain(
            "services",
            None,
            vec![
                with(&daddr_proto_port(), vmap(Map::ServiceIps)),
                with(&local_proto_port(), vmap(Map::ServiceNodeports)),
            ],
        ),
        chain(
            "nat-prerouting",
            Some(("nat", PREROUTING, -100)),
            vec![vec![to_chain(NFT_JUMP, "services")]],
        ),
        chain(
            "nat-output",
            Some(("nat", OUTPUT, -100)),
            vec![vec![to_chain(NFT_JUMP, "services")]],
        ),
        chain(
            REJECT_CHAIN,
            None,
            vec![
                with(&l4proto_is(6), Expr::Reject { kind: 1, code: 0 }),
                vec![reject_port_unreachable()],
            ],
        ),
        chain(
            "endpoints-check",
            None,
            vec![
                with(&daddr_proto_port(), vmap(Map::NoEndpointServices)),
                with(&local_proto_port(), vmap(Map::NoEndpointNodeports)),
            ],
        ),
        chain(
            "cluster-ips-check",
            None,
            vec![
                vec![
                    ip_addr(16, REG_1),
                    Expr::Lookup {
                        set: elements::CLUSTER_IPS.into(),
                        sreg: REG_1,
                        dreg: None,
                    },
                    reject_port_unreachable(),
                ],
                with(&ip_in(16, net, len), reject_port_unreachable()),
            ],
        ),
        chain(
            "filter-input",
            Some(("filter", INPUT, -110)),
            vec![ct_new_jump("endpoints-check")],
        ),
        chain(
            "filter-forward",
            Some(("filter", FORWARD, -110)),
            vec![
                ct_new_jump("endpoints-check"),
                ct_new_jump("cluster-ips-check"),
            ],
        ),
        chain(
            "filter-output",
            Some(("filter", OUTPUT, -110)),
            vec![ct_new_jump("endpoints-check")],
        ),
        chain(
            "filter-output-post-dnat",
            Some(("filter", OUTPUT, -90)),
            vec![ct_new_jump("cluster-ips-check")],
        ),
    ]
}

/// The expressions of one rule of a dynamic chain, for the rule texts [`crate::rules`] writes
/// for services without session affinity and for the cluster DNS; `None` for any other text.
fn dynamic_rule(text: &str) -> Option<Vec<Expr>> {
    const BY_ADDR: &str = "dnat ip to ip daddr . meta l4proto . th dport . numgen random mod ";
    const BY_NODEPORT: &str = "dnat ip to meta l4proto . th dport . numgen random mod ";
    let mark = || to_chain(NFT_JUMP, "mark-for-masquerade");
    if text == "jump mark-for-masquerade" {
        return Some(vec![mark()]);
    }
    if text == "ip saddr 127.0.0.0/8 jump mark-for-masquerade" {
        let mut r = ip_in(12, Ipv4Addr::new(127, 0, 0, 0), 8);
        r.push(mark());
        return Some(r);
    }
    if let Some(rest) = text.strip_prefix(BY_ADDR) {
        let n = rest
            .strip_suffix(" map @endpoints")?
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)?;
        let mut r = daddr_proto_port().to_vec();
        r.extend(endpoint_dnat(REG32_0 + 3, n, Map::Endpoints));
        return Some(r);
    }
    if let Some(rest) = text.strip_prefix(BY_NODEPORT) {
        let n = rest
            .strip_suffix(" map @nodeport-endpoints")?
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)?;
        let mut r = vec![l4proto(REG_1), th_dport(REG32_0 + 1)];
        r.extend(endpoint_dnat(REG32_0 + 2, n, Map::NodeportEndpoints));
        return Some(r);
    }
    // `meta l4proto udp|tcp dnat to IP:PORT` (the cluster DNS).
    let rest = text.strip_prefix("meta l4proto ")?;
    let (proto, target) = rest.split_once(" dnat to ")?;
    let proto = match proto {
        "tcp" => 6,
        "udp" => 17,
        _ => return None,
    };
    let target: std::net::SocketAddrV4 = target.parse().ok()?;
    let mut r = l4proto_is(proto).to_vec();
    r.extend([
        Expr::Immediate {
            dreg: REG_1,
            data: target.ip().octets().to_vec(),
        },
        Expr::Immediate {
            dreg: REG_2,
            data: target.port().to_be_bytes().to_vec(),
        },
        Expr::Dnat {
            addr: REG_1,
            proto: REG_2,
            flags: Some(2), // NF_NAT_RANGE_PROTO_SPECIFIED
        },
    ]);
    Some(r)
}

/// `numgen random mod n` into `index_reg`, the endpoint map lookup into register 1 (address) and
/// register 9 (port), and the DNAT.
fn endpoint_dnat(index_reg: u32, n: u32, map: Map) -> [Expr; 3] {
    [
        Expr::NumgenRandom {
            dreg: index_reg,
            modulus: n,
        },
        Expr::Lookup {
            set: map.name().into(),
            sreg: REG_1,
            dreg: Some(REG_1),
        },
        Expr::Dnat {
            addr: REG_1,
            proto: REG32_0 + 1,
            flags: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_rules_encode_and_others_fall_back() {
        for ok in [
            "jump mark-for-masquerade",
            "ip saddr 127.0.0.0/8 jump mark-for-masquerade",
            "dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 10 map @endpoints",
            "dnat ip to meta l4proto . th dport . numgen random mod 2 map @nodeport-endpoints",
            "meta l4proto udp dnat to 10.43.0.10:53",
        ] {
            assert!(dynamic_rule(ok).is_some(), "{ok}");
        }
        for other in [
            "update @aff-x-10 { ip saddr }",
            "numgen random mod 2 vmap { 0 : goto a, 1 : goto b }",
            "dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 0 map @endpoints",
            "meta l4proto icmp dnat to 10.43.0.10:53",
        ] {
            assert!(dynamic_rule(other).is_none(), "{other}");
        }
    }

    #[test]
    fn affinity_sets_fall_back_to_nft() {
        let params = Params {
            service_cidr: (Ipv4Addr::new(10, 43, 0, 0), 16),
            sctp: false,
            dns: None,
        };
        let mut rs = Ruleset::default();
        assert!(batch(&params, &rs, 1).is_some());
        rs.sets.insert("aff-x-10".into(), 10);
        assert!(batch(&params, &rs, 1).is_none());
    }

    #[test]
    fn userdata_is_well_formed() {
        for s in &SETS {
            let u = hex(s.udata);
            assert_eq!(u.len() * 2, s.udata.len(), "{}", s.name);
            // A run of type, length, value entries that ends exactly.
            let mut at = 0;
            while at < u.len() {
                at += 2 + u[at + 1] as usize;
            }
            assert_eq!(at, u.len(), "{}", s.name);
        }
    }
}
