//! Typed set and map elements: the keys and data of table `ip k1s`'s maps as small `Copy`
//! values, written once by [`crate::rules`] and read by every backend — as nft text
//! ([`std::fmt::Display`], for `nft -f` scripts and messages) or as the kernel's binary layout
//! ([`Key::encode`], [`Value`] for netlink) — so no element is ever formatted to a string and
//! parsed back.
//!
//! Invariants:
//! - the text of a key or value is exactly what the maps' declarations in
//!   [`crate::script::base`] accept (`ip . proto . port [. index]`, `proto . port [. index]`,
//!   `ip . ip`, `ip . port`, `goto CHAIN`);
//! - the binary key has each field padded to 4 bytes, as the kernel concatenates registers:
//!   addresses and ports in network order, the protocol as one byte, the `numgen` index in host
//!   order; it is at most [`MAX_KEY`] bytes, so encoding needs no allocation;
//! - the order of keys (`Ord`) is fixed by their fields, so generation stays deterministic.

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::model::Proto;

/// The longest key in bytes (`ip . proto . port . index`).
pub const MAX_KEY: usize = 16;

/// The key of one element; which variant a map takes is fixed by the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// `ip` (the `cluster-ips` set).
    Ip(Ipv4Addr),
    /// `ip . proto . port` (`service-ips`, `no-endpoint-services`).
    Addr(Ipv4Addr, Proto, u16),
    /// `proto . port` (`service-nodeports`, `no-endpoint-nodeports`).
    Port(Proto, u16),
    /// `ip . proto . port . index` (`endpoints`).
    AddrIndex(Ipv4Addr, Proto, u16, u32),
    /// `proto . port . index` (`nodeport-endpoints`).
    PortIndex(Proto, u16, u32),
    /// `ip . ip` (`hairpin`).
    Pair(Ipv4Addr, Ipv4Addr),
}

/// What an element maps to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// No datum: the element of a set.
    Member,
    /// An endpoint `ip . port` (the endpoint maps).
    Endpoint(Ipv4Addr, u16),
    /// `goto CHAIN` (the verdict maps); shared, so cloning a verdict never allocates.
    Goto(Arc<str>),
}

fn proto_byte(p: Proto) -> u8 {
    match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Sctp => 132,
    }
}

/// Appends fields of 4 bytes each to a fixed buffer.
struct Words {
    buf: [u8; MAX_KEY],
    len: usize,
}

impl Words {
    fn push(&mut self, w: [u8; 4]) {
        self.buf[self.len..self.len + 4].copy_from_slice(&w);
        self.len += 4;
    }
    fn ip(&mut self, ip: Ipv4Addr) {
        self.push(ip.octets());
    }
    fn proto(&mut self, p: Proto) {
        self.push([proto_byte(p), 0, 0, 0]);
    }
    fn port(&mut self, port: u16) {
        let [a, b] = port.to_be_bytes();
        self.push([a, b, 0, 0]);
    }
}

/// An encoded key or value: a fixed buffer and its used length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoded {
    buf: [u8; MAX_KEY],
    len: usize,
}

impl Encoded {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Key {
    /// The key in the kernel's layout.
    pub fn encode(&self) -> Encoded {
        let mut w = Words {
            buf: [0; MAX_KEY],
            len: 0,
        };
        match *self {
            Key::Ip(ip) => w.ip(ip),
            Key::Addr(ip, p, port) => {
                w.ip(ip);
                w.proto(p);
                w.port(port);
            }
            Key::Port(p, port) => {
                w.proto(p);
                w.port(port);
            }
            Key::AddrIndex(ip, p, port, i) => {
                w.ip(ip);
                w.proto(p);
                w.port(port);
                w.push(i.to_ne_bytes());
            }
            Key::PortIndex(p, port, i) => {
                w.proto(p);
                w.port(port);
                w.push(i.to_ne_bytes());
            }
            Key::Pair(a, b) => {
                w.ip(a);
                w.ip(b);
            }
        }
        Encoded {
            buf: w.buf,
            len: w.len,
        }
    }

    /// The key of the `index`-th endpoint element of an entry key (`Addr` or `Port`); `None` for
    /// other keys.
    pub fn with_index(self, index: u32) -> Option<Key> {
        match self {
            Key::Addr(ip, p, port) => Some(Key::AddrIndex(ip, p, port, index)),
            Key::Port(p, port) => Some(Key::PortIndex(p, port, index)),
            _ => None,
        }
    }
}

impl Value {
    /// An endpoint's `ip . port` in the kernel's layout (`None` for members and verdicts).
    pub fn encode_endpoint(&self) -> Option<Encoded> {
        let Value::Endpoint(ip, port) = *self else {
            return None;
        };
        let mut w = Words {
            buf: [0; MAX_KEY],
            len: 0,
        };
        w.ip(ip);
        w.port(port);
        Some(Encoded {
            buf: w.buf,
            len: w.len,
        })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Key::Ip(ip) => write!(f, "{ip}"),
            Key::Addr(ip, p, port) => write!(f, "{ip} . {} . {port}", p.nft()),
            Key::Port(p, port) => write!(f, "{} . {port}", p.nft()),
            Key::AddrIndex(ip, p, port, i) => write!(f, "{ip} . {} . {port} . {i}", p.nft()),
            Key::PortIndex(p, port, i) => write!(f, "{} . {port} . {i}", p.nft()),
            Key::Pair(a, b) => write!(f, "{a} . {b}"),
        }
    }
}

impl fmt::Display for Value {
    /// Empty for a set member.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Member => Ok(()),
            Value::Endpoint(ip, port) => write!(f, "{ip} . {port}"),
            Value::Goto(chain) => write!(f, "goto {chain}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_register_layout() {
        let ip = Ipv4Addr::new(10, 43, 0, 5);
        let k = Key::AddrIndex(ip, Proto::Tcp, 80, 3);
        let mut want = vec![10, 43, 0, 5, 6, 0, 0, 0, 0, 80, 0, 0];
        want.extend_from_slice(&3u32.to_ne_bytes());
        assert_eq!(k.encode().as_bytes(), want);
        assert_eq!(k.to_string(), "10.43.0.5 . tcp . 80 . 3");
        assert_eq!(
            Key::Port(Proto::Udp, 30053).encode().as_bytes(),
            [17, 0, 0, 0, 0x75, 0x65, 0, 0]
        );
        assert_eq!(Key::Port(Proto::Sctp, 1).to_string(), "sctp . 1");
        let ep = Value::Endpoint(Ipv4Addr::new(10, 42, 0, 9), 8080);
        assert_eq!(
            ep.encode_endpoint().unwrap().as_bytes(),
            [10, 42, 0, 9, 0x1f, 0x90, 0, 0]
        );
        assert_eq!(ep.to_string(), "10.42.0.9 . 8080");
        assert_eq!(
            Value::Goto("np-dnat-2".into()).to_string(),
            "goto np-dnat-2"
        );
        assert_eq!(Value::Member.to_string(), "");
        let pair = Key::Pair(Ipv4Addr::new(10, 42, 0, 1), Ipv4Addr::new(10, 42, 0, 2));
        assert_eq!(pair.encode().as_bytes(), [10, 42, 0, 1, 10, 42, 0, 2]);
        assert_eq!(pair.to_string(), "10.42.0.1 . 10.42.0.2");
        assert_eq!(Key::Ip(ip).encode().as_bytes(), [10, 43, 0, 5]);
    }

    #[test]
    fn index_keys_only_from_entry_keys() {
        let ip = Ipv4Addr::new(10, 43, 0, 5);
        assert_eq!(
            Key::Addr(ip, Proto::Tcp, 80).with_index(1),
            Some(Key::AddrIndex(ip, Proto::Tcp, 80, 1))
        );
        assert_eq!(
            Key::Port(Proto::Tcp, 30080).with_index(0),
            Some(Key::PortIndex(Proto::Tcp, 30080, 0))
        );
        assert_eq!(Key::Pair(ip, ip).with_index(0), None);
    }
}
