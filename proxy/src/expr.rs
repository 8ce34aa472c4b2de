//! nf_tables rule expressions in their netlink form, for the full replacement sent as one batch
//! ([`crate::full`]). Only the expressions table `ip k1s` uses are here, each with the attributes
//! the `nft` program sends for the same rule text, so `nft list table ip k1s` prints the same rules
//! whichever way the table was written.
//!
//! Invariants: registers follow nft's allocation (verdict register 0, 16-byte register 1, 4-byte
//! registers from 8 for concatenations); integers the kernel reads as host-order words (ct state
//! and status, meta mark, fib results, numgen) are encoded in host order, packet fields in network
//! order.

use crate::netlink::{Builder, NFTA_DATA_VALUE};

/// The verdict register.
pub const REG_VERDICT: u32 = 0;
/// The first 16-byte register (the same storage as the 4-byte registers 8..=11).
pub const REG_1: u32 = 1;
/// The second 16-byte register.
pub const REG_2: u32 = 2;
/// The first 4-byte register; concatenations use 8, 9, 10, ...
pub const REG32_0: u32 = 8;

/// Where a payload load reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    Network = 1,
    Transport = 2,
}

/// Verdict codes (`include/uapi/linux/netfilter/nf_tables.h`).
pub const NFT_JUMP: i32 = -3;
pub const NFT_GOTO: i32 = -4;
pub const NFT_RETURN: i32 = -5;

/// `meta` keys.
pub const META_MARK: u32 = 3;
pub const META_L4PROTO: u32 = 16;
/// `ct` keys.
pub const CT_STATE: u32 = 0;
pub const CT_STATUS: u32 = 2;

/// One expression of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// Load `len` bytes at `offset` from `base` into `dreg`.
    Payload {
        base: Base,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    /// Load a meta key into `dreg`.
    Meta { key: u32, dreg: u32 },
    /// Set a meta key from `sreg`.
    MetaSet { key: u32, sreg: u32 },
    /// Load a conntrack key into `dreg`.
    Ct { key: u32, dreg: u32 },
    /// `reg = (reg & mask) ^ xor`.
    Bitwise {
        reg: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    /// Compare `sreg` with `data`: equal (`neq` false) or not equal.
    Cmp { sreg: u32, neq: bool, data: Vec<u8> },
    /// Look `sreg..` up in a set; with `dreg`, a map (register 0: a verdict map).
    Lookup {
        set: String,
        sreg: u32,
        dreg: Option<u32>,
    },
    /// A verdict (`jump`, `goto` with a chain; `return`).
    Verdict { code: i32, chain: Option<String> },
    /// A constant into `dreg`.
    Immediate { dreg: u32, data: Vec<u8> },
    /// `fib daddr type` into `dreg`.
    FibDaddrType { dreg: u32 },
    /// `numgen random mod modulus` into `dreg`.
    NumgenRandom { dreg: u32, modulus: u32 },
    /// DNAT to the address in `addr` and the port in `proto`.
    Dnat {
        addr: u32,
        proto: u32,
        flags: Option<u32>,
    },
    /// `masquerade` with NAT flags (0x10: fully-random).
    Masq { flags: u32 },
    /// `reject`: type 0 ICMP unreachable with `code`, type 1 TCP reset.
    Reject { kind: u32, code: u8 },
}

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;

impl Expr {
    /// Appends this expression as one `NFTA_LIST_ELEM` of a rule's expression list.
    pub(crate) fn encode(&self, b: &mut Builder) {
        let elem = b.open(NFTA_LIST_ELEM);
        b.string(NFTA_EXPR_NAME, self.name());
        let data = b.open(NFTA_EXPR_DATA);
        match self {
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                b.u32(1, *dreg);
                b.u32(2, *base as u32);
                b.u32(3, *offset);
                b.u32(4, *len);
            }
            Expr::Meta { key, dreg } => {
                b.u32(1, *dreg);
                b.u32(2, *key);
            }
            Expr::MetaSet { key, sreg } => {
                b.u32(2, *key);
                b.u32(3, *sreg);
            }
            Expr::Ct { key, dreg } => {
                b.u32(1, *dreg);
                b.u32(2, *key);
            }
            Expr::Bitwise { reg, mask, xor } => {
                b.u32(1, *reg);
                b.u32(2, *reg);
                b.u32(3, mask.len() as u32);
                value(b, 4, mask);
                value(b, 5, xor);
            }
            Expr::Cmp { sreg, neq, data } => {
                b.u32(1, *sreg);
                b.u32(2, u32::from(*neq));
                value(b, 3, data);
            }
            Expr::Lookup { set, sreg, dreg } => {
                b.string(1, set);
                b.u32(2, *sreg);
                if let Some(d) = dreg {
                    b.u32(3, *d);
                }
            }
            Expr::Verdict { code, chain } => {
                b.u32(1, REG_VERDICT);
                let d = b.open(2);
                b.verdict(*code, chain.as_deref());
                b.close(d);
            }
            Expr::Immediate { dreg, data } => {
                b.u32(1, *dreg);
                value(b, 2, data);
            }
            Expr::FibDaddrType { dreg } => {
                b.u32(1, *dreg);
                b.u32(2, 3); // NFT_FIB_RESULT_ADDRTYPE
                b.u32(3, 2); // NFTA_FIB_F_DADDR
            }
            Expr::NumgenRandom { dreg, modulus } => {
                b.u32(1, *dreg);
                b.u32(2, *modulus);
                b.u32(3, 1); // NFT_NG_RANDOM
            }
            Expr::Dnat { addr, proto, flags } => {
                b.u32(1, 1); // NFT_NAT_DNAT
                b.u32(2, 2); // NFPROTO_IPV4
                b.u32(3, *addr);
                b.u32(5, *proto);
                if let Some(f) = flags {
                    b.u32(7, *f);
                }
            }
            Expr::Masq { flags } => b.u32(1, *flags),
            Expr::Reject { kind, code } => {
                b.u32(1, *kind);
                b.attr(2, &[*code]);
            }
        }
        b.close(data);
        b.close(elem);
    }

    fn name(&self) -> &'static str {
        match self {
            Expr::Payload { .. } => "payload",
            Expr::Meta { .. } | Expr::MetaSet { .. } => "meta",
            Expr::Ct { .. } => "ct",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Cmp { .. } => "cmp",
            Expr::Lookup { .. } => "lookup",
            Expr::Verdict { .. } | Expr::Immediate { .. } => "immediate",
            Expr::FibDaddrType { .. } => "fib",
            Expr::NumgenRandom { .. } => "numgen",
            Expr::Dnat { .. } => "nat",
            Expr::Masq { .. } => "masq",
            Expr::Reject { .. } => "reject",
        }
    }
}

/// A nested `NFTA_DATA_VALUE`.
fn value(b: &mut Builder, kind: u16, data: &[u8]) {
    let at = b.open(kind);
    b.attr(NFTA_DATA_VALUE, data);
    b.close(at);
}

/// Shorthands for the expression sequences the table's rules are made of.
pub mod seq {
    use super::*;

    /// `ip daddr` (`offset` 16) or `ip saddr` (12) into `dreg`.
    pub fn ip_addr(offset: u32, dreg: u32) -> Expr {
        Expr::Payload {
            base: Base::Network,
            offset,
            len: 4,
            dreg,
        }
    }

    /// `th dport` into `dreg`.
    pub fn th_dport(dreg: u32) -> Expr {
        Expr::Payload {
            base: Base::Transport,
            offset: 2,
            len: 2,
            dreg,
        }
    }

    /// `meta l4proto` into `dreg`.
    pub fn l4proto(dreg: u32) -> Expr {
        Expr::Meta {
            key: META_L4PROTO,
            dreg,
        }
    }

    /// `meta l4proto N` (a match).
    pub fn l4proto_is(proto: u8) -> [Expr; 2] {
        [
            l4proto(REG_1),
            Expr::Cmp {
                sreg: REG_1,
                neq: false,
                data: vec![proto],
            },
        ]
    }

    /// A host-order flag test on a ct key: `ct KEY FLAG` (`(reg & flag) != 0`).
    pub fn ct_flag(key: u32, flag: u32) -> [Expr; 3] {
        [
            Expr::Ct { key, dreg: REG_1 },
            Expr::Bitwise {
                reg: REG_1,
                mask: flag.to_ne_bytes().to_vec(),
                xor: vec![0; 4],
            },
            Expr::Cmp {
                sreg: REG_1,
                neq: true,
                data: vec![0; 4],
            },
        ]
    }

    /// `ip saddr|daddr NET/LEN` (`offset` 12 or 16), as nft encodes it: a whole-byte prefix
    /// compares only its bytes, any other a masked word.
    pub fn ip_in(offset: u32, net: std::net::Ipv4Addr, len: u8) -> Vec<Expr> {
        let len = len.min(32);
        if len == 0 {
            return Vec::new(); // every address
        }
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        let bytes = (u32::from(net) & mask).to_be_bytes();
        if len.is_multiple_of(8) {
            let n = u32::from(len / 8);
            let data = bytes[..n as usize].to_vec();
            vec![
                Expr::Payload {
                    base: Base::Network,
                    offset,
                    len: n,
                    dreg: REG_1,
                },
                Expr::Cmp {
                    sreg: REG_1,
                    neq: false,
                    data,
                },
            ]
        } else {
            vec![
                ip_addr(offset, REG_1),
                Expr::Bitwise {
                    reg: REG_1,
                    mask: mask.to_be_bytes().to_vec(),
                    xor: vec![0; 4],
                },
                Expr::Cmp {
                    sreg: REG_1,
                    neq: false,
                    data: bytes.to_vec(),
                },
            ]
        }
    }

    /// `jump CHAIN` / `goto CHAIN`.
    pub fn to_chain(code: i32, chain: &str) -> Expr {
        Expr::Verdict {
            code,
            chain: Some(chain.to_string()),
        }
    }
}
