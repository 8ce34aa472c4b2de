//! The capability set of a container process: containerd's default set with the spec's `add` and
//! `drop` applied in containerd's order (`add: ALL` fills, `drop: ALL` empties, then named adds,
//! then named drops, so `drop: [ALL], add: [NET_BIND_SERVICE]` keeps just that one), or every
//! capability the kernel knows when privileged.
//!
//! The set becomes bounding, permitted, effective and inheritable of the process (as containerd's
//! OCI spec does); ambient stays empty, so a non-root user has no effective capabilities after exec.

use std::collections::HashSet;

use caps::{CapSet, Capability, CapsHashSet};

use super::ContainerError;

/// containerd's default capabilities.
pub const DEFAULT: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

fn parse(name: &str) -> Result<Capability, ContainerError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    full.parse::<Capability>()
        .map_err(|_| ContainerError::Spec(format!("unknown capability {name:?}")))
}

/// Every capability this process may pass on: its permitted set (a host may withhold some, e.g.
/// `CAP_SYS_RESOURCE`, and asking for more fails `capset` with EPERM).
fn all() -> CapsHashSet {
    caps::read(None, CapSet::Permitted)
        .unwrap_or_else(|_| caps::runtime::procfs_all_supported(None).unwrap_or_default())
}

/// The container's capability set.
pub fn compute(
    privileged: bool,
    add: &[String],
    drop: &[String],
) -> Result<CapsHashSet, ContainerError> {
    if privileged {
        return Ok(all());
    }
    let is_all = |n: &String| n.eq_ignore_ascii_case("ALL");
    let mut set: CapsHashSet = DEFAULT.iter().copied().collect();
    if add.iter().any(is_all) {
        set = all();
    }
    if drop.iter().any(is_all) {
        set.clear();
    }
    for name in add.iter().filter(|n| !is_all(n)) {
        set.insert(parse(name)?);
    }
    for name in drop.iter().filter(|n| !is_all(n)) {
        set.remove(&parse(name)?);
    }
    Ok(set)
}

/// Drops everything outside `set` from the bounding set. Must run while still holding
/// `CAP_SETPCAP`, i.e. before [`apply`] and before changing uid.
pub fn limit_bounding(set: &CapsHashSet) -> Result<(), ContainerError> {
    let current = caps::read(None, CapSet::Bounding).map_err(caps_err)?;
    for cap in current.difference(set) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(caps_err)?;
    }
    Ok(())
}

/// Sets permitted, effective and inheritable to `set` (after the uid change, which
/// `PR_SET_KEEPCAPS` survived).
pub fn apply(set: &CapsHashSet) -> Result<(), ContainerError> {
    // Effective must shrink before permitted can, and grow after it.
    let empty = HashSet::new();
    caps::set(None, CapSet::Effective, &empty).map_err(caps_err)?;
    caps::set(None, CapSet::Inheritable, set).map_err(caps_err)?;
    caps::set(None, CapSet::Permitted, set).map_err(caps_err)?;
    caps::set(None, CapSet::Effective, set).map_err(caps_err)?;
    caps::clear(None, CapSet::Ambient).map_err(caps_err)?;
    Ok(())
}

fn caps_err(e: caps::errors::CapsError) -> ContainerError {
    ContainerError::Setup(format!("capabilities: {e}"))
}

/// The bit mask of `set`, as `/proc/PID/status` shows `CapEff`.
pub fn mask(set: &CapsHashSet) -> u64 {
    set.iter().fold(0, |m, c| m | c.bitmask())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_add_drop() {
        let s = compute(false, &[], &[]).unwrap();
        assert_eq!(mask(&s), 0xa80425fb);
        let s = compute(false, &["NET_ADMIN".into()], &["net_raw".into()]).unwrap();
        assert!(s.contains(&Capability::CAP_NET_ADMIN) && !s.contains(&Capability::CAP_NET_RAW));
        assert!(compute(false, &[], &["ALL".into()]).unwrap().is_empty());
        let s = compute(false, &["NET_BIND_SERVICE".into()], &["ALL".into()]).unwrap();
        assert_eq!(
            s.into_iter().collect::<Vec<_>>(),
            vec![Capability::CAP_NET_BIND_SERVICE]
        );
        assert!(compute(false, &["BOGUS".into()], &[]).is_err());
        assert!(
            compute(true, &[], &[])
                .unwrap()
                .contains(&Capability::CAP_SYS_ADMIN)
        );
    }
}
