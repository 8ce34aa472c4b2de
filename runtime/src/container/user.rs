//! Resolving `securityContext.runAsUser`/image `User` to numeric ids, like runc's `user` package:
//! `uid[:gid]` numbers are taken as is, names are looked up in the container's `/etc/passwd` and
//! `/etc/group` (the topmost layer that has the file wins, as overlayfs shows it). Supplementary
//! groups are the groups listing the user by name, plus the spec's.
//!
//! Files are read with a size cap: image content is hostile input.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::ContainerError;

/// Numeric identity the container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// `HOME` from passwd (`/` if unknown), set when the env has none.
    pub home: String,
}

const MAX_FILE: u64 = 1 << 20;

/// The topmost layer's copy of `rel` (e.g. `etc/passwd`), read up to 1 MiB.
fn read_layered(layers: &[PathBuf], rel: &str) -> Option<String> {
    for layer in layers.iter().rev() {
        let path = layer.join(rel);
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if !meta.is_file() {
                return None;
            }
            let mut s = String::new();
            std::fs::File::open(&path)
                .ok()?
                .take(MAX_FILE)
                .read_to_string(&mut s)
                .ok()?;
            return Some(s);
        }
    }
    None
}

/// Resolves `user` against the rootfs made of `layers` (lowest first).
pub fn resolve(layers: &[PathBuf], user: &str, extra: &[u32]) -> Result<Identity, ContainerError> {
    let passwd = read_layered(layers, "etc/passwd").unwrap_or_default();
    let group = read_layered(layers, "etc/group").unwrap_or_default();
    resolve_in(&passwd, &group, user, extra)
}

/// [`resolve`] over file contents.
pub fn resolve_in(
    passwd: &str,
    group: &str,
    user: &str,
    extra: &[u32],
) -> Result<Identity, ContainerError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let bad = |what: &str| ContainerError::User(format!("{what} in user {user:?}"));
    // passwd: name:x:uid:gid:gecos:home:shell
    let entries = passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7).then(|| {
            (
                f[0],
                f[2].parse::<u32>().ok(),
                f[3].parse::<u32>().ok(),
                f[5],
            )
        })
    });
    let (uid, name, mut gid, home) = match u.parse::<u32>() {
        Ok(uid) => {
            let found = entries.clone().find(|e| e.1 == Some(uid));
            (
                uid,
                found.map(|e| e.0.to_string()),
                found.and_then(|e| e.2).unwrap_or(0),
                found.map(|e| e.3.to_string()),
            )
        }
        Err(_) => {
            let e = entries
                .clone()
                .find(|e| e.0 == u)
                .ok_or_else(|| bad("no such user in /etc/passwd"))?;
            (
                e.1.ok_or_else(|| bad("bad uid"))?,
                Some(u.to_string()),
                e.2.ok_or_else(|| bad("bad gid"))?,
                Some(e.3.to_string()),
            )
        }
    };
    // group: name:x:gid:member,member
    let groups_file = group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4).then(|| (f[0], f[2].parse::<u32>().ok(), f[3]))
    });
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups_file
                .clone()
                .find(|e| e.0 == g)
                .and_then(|e| e.1)
                .ok_or_else(|| bad("no such group in /etc/group"))?,
        };
    }
    let mut groups = Vec::new();
    // Supplementary groups from /etc/group only when the user was named in passwd and no group was
    // forced, as runc does.
    if let (Some(name), None) = (&name, g) {
        for (_, gid_, members) in groups_file {
            if let Some(id) = gid_
                && members.split(',').any(|m| m == name)
                && !groups.contains(&id)
            {
                groups.push(id);
            }
        }
    }
    for id in extra {
        if !groups.contains(id) {
            groups.push(*id);
        }
    }
    Ok(Identity {
        uid,
        gid,
        groups,
        home: home.filter(|h| !h.is_empty()).unwrap_or_else(|| "/".into()),
    })
}

/// Whether `path` names an executable inside the rootfs `root` (used for `PATH` look-ups after
/// `pivot_root`, where `root` is `/`).
pub fn find_in_path(root: &Path, argv0: &str, env: &[String]) -> Option<String> {
    if argv0.contains('/') {
        return Some(argv0.to_string());
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{}/{argv0}", d.trim_end_matches('/')))
        .find(|cand| {
            std::fs::metadata(root.join(cand.trim_start_matches('/')))
                .map(|m| m.is_file())
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnobody:x:65534:\nwheel:x:10:app,other\nstaff:x:50:app\n";

    #[test]
    fn numeric_and_named() {
        let id = resolve_in(PASSWD, GROUP, "1000", &[]).unwrap();
        assert_eq!(
            (id.uid, id.gid, id.groups.clone()),
            (1000, 1000, vec![10, 50])
        );
        assert_eq!(id.home, "/home/app");
        let id = resolve_in(PASSWD, GROUP, "nobody", &[7]).unwrap();
        assert_eq!((id.uid, id.gid, id.groups), (65534, 65534, vec![7]));
        let id = resolve_in(PASSWD, GROUP, "app:staff", &[]).unwrap();
        assert_eq!((id.uid, id.gid, id.groups), (1000, 50, vec![]));
        let id = resolve_in(PASSWD, GROUP, "4242:4343", &[]).unwrap();
        assert_eq!((id.uid, id.gid, id.home.as_str()), (4242, 4343, "/"));
        assert!(resolve_in(PASSWD, GROUP, "ghost", &[]).is_err());
        assert!(resolve_in(PASSWD, GROUP, "app:ghosts", &[]).is_err());
        assert_eq!(resolve_in("", "", "", &[]).unwrap().uid, 0);
    }
}
