//! IPv4 CIDR blocks (`10.42.0.0/16`): always stored normalised (host bits zero), so equality and
//! containment are plain integer arithmetic.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// A malformed CIDR string.
#[derive(Debug, thiserror::Error)]
#[error("invalid IPv4 CIDR {0:?} (want A.B.C.D/N with N <= 32)")]
pub struct CidrError(String);

/// An IPv4 network: address with host bits cleared, and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Cidr {
    /// The network containing `addr` with `prefix` bits (host bits are cleared; prefix is capped
    /// at 32).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        let prefix = prefix.min(32);
        let network = Ipv4Addr::from(u32::from(addr) & mask(prefix));
        Ipv4Cidr { network, prefix }
    }

    /// The network address (all host bits zero).
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The broadcast address (all host bits one).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// Number of addresses, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// The `n`th address of the block (0 is the network address); wraps inside the block.
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | (n & !mask(self.prefix)))
    }

    /// Whether `addr` is inside the block.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == u32::from(self.network)
    }

    /// Whether `other` lies entirely inside this block.
    pub fn contains_cidr(&self, other: &Ipv4Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.network)
    }

    /// Whether the two blocks share any address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains_cidr(other) || other.contains_cidr(self)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CidrError(s.chars().take(64).collect());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Ipv4Cidr::new(addr, prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let c: Ipv4Cidr = "10.42.0.7/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.42.0.0/24");
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 42, 0, 255));
        assert_eq!(c.nth(1), Ipv4Addr::new(10, 42, 0, 1));
        assert_eq!(c.size(), 256);
        assert!("10.42.0.0".parse::<Ipv4Cidr>().is_err());
        assert!("10.42.0.0/33".parse::<Ipv4Cidr>().is_err());
        assert!("x/8".parse::<Ipv4Cidr>().is_err());
        assert_eq!("0.0.0.0/0".parse::<Ipv4Cidr>().unwrap().size(), 1 << 32);
    }

    #[test]
    fn containment() {
        let cluster: Ipv4Cidr = "10.42.0.0/16".parse().unwrap();
        let node: Ipv4Cidr = "10.42.3.0/24".parse().unwrap();
        let svc: Ipv4Cidr = "10.43.0.0/16".parse().unwrap();
        assert!(cluster.contains_cidr(&node));
        assert!(!node.contains_cidr(&cluster));
        assert!(cluster.overlaps(&node) && node.overlaps(&cluster));
        assert!(!cluster.overlaps(&svc));
        assert!(cluster.contains(Ipv4Addr::new(10, 42, 255, 1)));
        assert!(!cluster.contains(Ipv4Addr::new(10, 43, 0, 5)));
    }
}
