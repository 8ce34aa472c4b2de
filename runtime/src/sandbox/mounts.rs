//! Mount-table helpers for the nsfs bind mounts that hold pod namespaces.
//!
//! Invariant: the sandboxes directory sits on a mount with private propagation, so a namespace
//! bind mount made there is not copied into peer mount namespaces (where it would keep a pod's
//! netns alive after the pod is removed), and its unmount is local and complete.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::{Result, SandboxError};

/// One line of `/proc/self/mountinfo`, the fields we need.
struct MountInfo {
    mount_point: PathBuf,
    shared: bool,
}

fn mountinfo() -> Result<Vec<MountInfo>> {
    let path = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(path).map_err(|e| SandboxError::io("reading", path, e))?;
    Ok(text.lines().filter_map(parse_line).collect())
}

fn parse_line(line: &str) -> Option<MountInfo> {
    // id parent maj:min root mount-point options [optional fields...] - fstype source super-options
    let mut fields = line.split(' ');
    let mount_point = unescape(fields.nth(4)?);
    let _options = fields.next()?;
    let mut shared = false;
    for f in fields {
        if f == "-" {
            break;
        }
        shared |= f.starts_with("shared:");
    }
    Some(MountInfo {
        mount_point: PathBuf::from(mount_point),
        shared,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push((v & 0xff) as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Makes sure mounts created under `dir` do not propagate: if the mount holding `dir` is shared,
/// bind-mounts `dir` onto itself and marks that mount private (as `ip netns` does for
/// `/run/netns`, but private). A private parent needs nothing.
pub(crate) fn ensure_private(dir: &Path) -> Result<()> {
    let infos = mountinfo()?;
    let holder = infos
        .iter()
        .filter(|m| dir.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.components().count());
    let Some(holder) = holder else {
        return Ok(());
    };
    if !holder.shared {
        return Ok(());
    }
    if holder.mount_point != dir {
        mount(
            Some(dir),
            dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|source| SandboxError::Sys {
            what: "bind-mounting the sandboxes directory onto itself",
            source,
        })?;
    }
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|source| SandboxError::Sys {
        what: "making the sandboxes directory a private mount",
        source,
    })
}

/// Lazily unmounts `path`; not being mounted (or not existing) is fine.
pub(crate) fn unmount(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(source) => Err(SandboxError::Sys {
            what: "unmounting a namespace",
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let m = parse_line(
            "36 35 98:0 /mnt1 /mnt\\040dir rw,noatime master:1 shared:7 - ext3 /dev/root rw",
        )
        .unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/mnt dir"));
        assert!(m.shared);
        let m = parse_line("36 35 98:0 / /run rw - ext4 /dev/root rw").unwrap();
        assert!(!m.shared);
        assert!(parse_line("garbage").is_none());
    }
}
