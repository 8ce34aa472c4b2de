//! Persisted IP address management for the node's pod CIDR.
//!
//! Invariant: an address is never held by two live sandboxes at once. Each allocated address is
//! one symlink `<dir>/<A.B.C.D>` whose target is the owner's sandbox id. `symlink(2)` is atomic and
//! fails with `EEXIST`, so creating the link *is* the allocation, and the owner travels in the same
//! inode. Nothing is ever reclaimed by guessing: only [`Ipam::release`] (called when a sandbox is
//! removed) deletes a link, and only if it names the caller's id.
//!
//! Which crashes this survives, and why nothing is fsynced:
//! - k1s crashing or being killed: the links are in the page cache, which outlives the process, so
//!   the next open sees every allocation exactly as it was.
//! - A power loss or kernel crash: links made or removed in the last seconds may be lost. That
//!   cannot hand one address to two live sandboxes, because every pod network namespace (and
//!   every veth with it) died with the kernel: no live holder is left to conflict with. What the
//!   directory may then disagree with is a sandbox record naming an address; the sandbox manager
//!   re-claims each record's address with [`Ipam::claim`] before it allocates anything, and tears
//!   down only the veth of an address its caller holds.
//!
//! The network, gateway (first host) and broadcast addresses are never handed out.

use std::io::ErrorKind;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::Ipv4Cidr;

/// Errors of the allocator.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("no free address left in {0}")]
    Exhausted(Ipv4Cidr),
    #[error("{address} belongs to {owner:?}, not {id:?}")]
    NotOwner {
        address: Ipv4Addr,
        owner: String,
        id: String,
    },
    #[error("IPAM {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IpamError + '_ {
    move |source| IpamError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The allocator over one directory and one subnet.
#[derive(Debug)]
pub struct Ipam {
    dir: PathBuf,
    subnet: Ipv4Cidr,
    /// Offset of the next address to try: allocation rotates through the range so a freed address
    /// is not handed out again at once (stale ARP caches, late packets).
    cursor: u32,
}

impl Ipam {
    /// Opens (creating) the allocator directory for `subnet`.
    pub fn open(dir: impl Into<PathBuf>, subnet: Ipv4Cidr) -> Result<Self, IpamError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        // Start after the highest allocated address, so a restart does not reuse recently freed ones
        // first either (best effort: a full rotation is still possible).
        let cursor = Self::read_all(&dir)?
            .iter()
            .filter(|(ip, _)| subnet.contains(*ip))
            .map(|(ip, _)| u32::from(*ip) - u32::from(subnet.network()))
            .max()
            .map_or(0, |last| last.saturating_sub(1));
        Ok(Ipam {
            dir,
            subnet,
            cursor,
        })
    }

    /// Number of addresses that can be handed out (all but network, gateway, broadcast).
    fn usable(&self) -> u32 {
        (self.subnet.size() - 3) as u32
    }

    /// Allocates a free address for `id` (see the module docs for what survives which crash).
    pub fn allocate(&mut self, id: &str) -> Result<Ipv4Addr, IpamError> {
        let usable = self.usable();
        for step in 0..usable {
            let offset = (self.cursor + step) % usable;
            // Host numbers 2..=size-2: skips network (0), gateway (1) and broadcast (size-1).
            let ip = self.subnet.nth(offset + 2);
            let path = self.dir.join(ip.to_string());
            match std::os::unix::fs::symlink(id, &path) {
                Ok(()) => {
                    self.cursor = (offset + 1) % usable;
                    return Ok(ip);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Err(IpamError::Exhausted(self.subnet))
    }

    /// Makes `id` the holder of `ip` again (a sandbox record names it, but a power loss may have
    /// lost the link). Already held by `id`: nothing to do; held by another id: an error, and
    /// nothing changes.
    pub fn claim(&mut self, ip: Ipv4Addr, id: &str) -> Result<(), IpamError> {
        let path = self.dir.join(ip.to_string());
        match std::os::unix::fs::symlink(id, &path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => match self.owner(ip)? {
                Some(owner) if owner == id => Ok(()),
                Some(owner) => Err(IpamError::NotOwner {
                    address: ip,
                    owner,
                    id: id.to_string(),
                }),
                // Released between the two calls: try once more.
                None => std::os::unix::fs::symlink(id, &path).map_err(io(&path)),
            },
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Frees `ip` if `id` holds it. Freeing an address nobody holds is a no-op; an address held
    /// by another id is an error and stays allocated.
    pub fn release(&mut self, ip: Ipv4Addr, id: &str) -> Result<(), IpamError> {
        let path = self.dir.join(ip.to_string());
        match self.owner(ip)? {
            None => Ok(()),
            Some(owner) if owner == id => {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                    Err(e) => return Err(io(&path)(e)),
                }
                Ok(())
            }
            Some(owner) => Err(IpamError::NotOwner {
                address: ip,
                owner,
                id: id.to_string(),
            }),
        }
    }

    /// Frees every address `id` holds (for a sandbox whose create never finished).
    pub fn release_all(&mut self, id: &str) -> Result<Vec<Ipv4Addr>, IpamError> {
        let mine: Vec<Ipv4Addr> = Self::read_all(&self.dir)?
            .into_iter()
            .filter(|(_, owner)| owner == id)
            .map(|(ip, _)| ip)
            .collect();
        for ip in &mine {
            self.release(*ip, id)?;
        }
        Ok(mine)
    }

    /// The id holding `ip`, if any.
    pub fn owner(&self, ip: Ipv4Addr) -> Result<Option<String>, IpamError> {
        let path = self.dir.join(ip.to_string());
        match std::fs::read_link(&path) {
            Ok(target) => Ok(Some(target.to_string_lossy().into_owned())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Every allocation: (address, owner id), sorted by address.
    pub fn allocations(&self) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        Self::read_all(&self.dir)
    }

    fn read_all(dir: &Path) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            // Anything that is not an address-named symlink is not ours: ignore it.
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let path = entry.path();
            match std::fs::read_link(&path) {
                Ok(target) => out.push((ip, target.to_string_lossy().into_owned())),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) if e.kind() == ErrorKind::InvalidInput => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn skips_reserved_and_never_repeats_until_exhausted() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = Ipam::open(dir.path(), subnet("10.42.0.0/29")).unwrap();
        let got: Vec<Ipv4Addr> = (0..5)
            .map(|i| ipam.allocate(&format!("p{i}")).unwrap())
            .collect();
        let want: Vec<Ipv4Addr> = (2..=6).map(|h| Ipv4Addr::new(10, 42, 0, h)).collect();
        assert_eq!(got, want);
        assert!(matches!(ipam.allocate("p5"), Err(IpamError::Exhausted(_))));
        ipam.release(want[1], "p1").unwrap();
        assert_eq!(ipam.allocate("p6").unwrap(), want[1]);
    }

    #[test]
    fn survives_reopen_without_release() {
        let dir = tempfile::tempdir().unwrap();
        let net = subnet("10.42.0.0/24");
        let a = Ipam::open(dir.path(), net).unwrap().allocate("a").unwrap();
        // A "crash": the first allocator is gone without releasing anything.
        let mut again = Ipam::open(dir.path(), net).unwrap();
        let b = again.allocate("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(again.owner(a).unwrap().as_deref(), Some("a"));
        // Another id cannot free a's address.
        assert!(matches!(
            again.release(a, "b"),
            Err(IpamError::NotOwner { .. })
        ));
        assert_eq!(again.release_all("a").unwrap(), vec![a]);
        assert_eq!(again.allocations().unwrap(), vec![(b, "b".to_string())]);
    }

    #[test]
    fn claim_restores_a_lost_link_but_never_takes_another_holders() {
        let dir = tempfile::tempdir().unwrap();
        let net = subnet("10.42.0.0/24");
        let mut ipam = Ipam::open(dir.path(), net).unwrap();
        let a = ipam.allocate("a").unwrap();
        // A power loss lost a's link; b got the address meanwhile.
        std::fs::remove_file(dir.path().join(a.to_string())).unwrap();
        ipam.claim(a, "a").unwrap();
        ipam.claim(a, "a").unwrap();
        assert_eq!(ipam.owner(a).unwrap().as_deref(), Some("a"));
        let b = ipam.allocate("b").unwrap();
        assert_ne!(a, b);
        assert!(matches!(
            ipam.claim(b, "a"),
            Err(IpamError::NotOwner { .. })
        ));
        assert_eq!(ipam.owner(b).unwrap().as_deref(), Some("b"));
    }

    #[test]
    fn rotates_instead_of_reusing_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = Ipam::open(dir.path(), subnet("10.42.0.0/24")).unwrap();
        let a = ipam.allocate("a").unwrap();
        ipam.release(a, "a").unwrap();
        assert_ne!(ipam.allocate("b").unwrap(), a);
    }
}
