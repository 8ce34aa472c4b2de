//! The files a sandbox's containers bind-mount over `/etc/hosts`, `/etc/hostname` and
//! `/etc/resolv.conf`. Each is written to a temporary name and renamed into place, so a reader
//! never sees a half-written file.

use std::net::IpAddr;
use std::path::Path;

use super::{Result, SandboxError};

/// The host's resolver configuration, copied into pods that bring no `resolv_conf` of their own.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
/// The host's hosts file, copied into `hostNetwork` pods (as the kubelet does).
const HOST_HOSTS: &str = "/etc/hosts";
/// Bound on what is copied from the host's files (they are small; a huge one is not a resolver
/// configuration we want to copy).
const MAX_HOST_FILE: u64 = 64 * 1024;

/// `/etc/hosts` of a pod with its own network namespace: localhost lines and `IP hostname`.
pub(crate) fn hosts(ip: Option<IpAddr>, hostname: &str) -> String {
    let mut s = String::from(
        "# Kubernetes-managed hosts file (k1s).\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    if let Some(ip) = ip {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    s
}

/// `/etc/hosts` of a `hostNetwork` pod: the host's own.
pub(crate) fn host_hosts(hostname: &str) -> String {
    read_bounded(HOST_HOSTS).unwrap_or_else(|| hosts(None, hostname))
}

/// The host's `/etc/resolv.conf`, with loopback nameservers dropped when the pod has its own
/// network namespace (a resolver on the host's 127.0.0.53 is not reachable from there).
pub(crate) fn host_resolv_conf(drop_loopback: bool) -> String {
    let host = read_bounded(HOST_RESOLV_CONF).unwrap_or_default();
    filter_resolv_conf(&host, drop_loopback)
}

fn filter_resolv_conf(text: &str, drop_loopback: bool) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if drop_loopback && words.next() == Some("nameserver") {
            let loopback = words
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_some_and(|a| a.is_loopback());
            if loopback {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn read_bounded(path: &str) -> Option<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_HOST_FILE)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// Writes `contents` to `path` atomically (temp file in the same directory, then rename).
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, contents).map_err(|e| SandboxError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| SandboxError::io("renaming into", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_only_loopback_nameservers() {
        let host = "# comment\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.0.2.1\nsearch example.org\n";
        assert_eq!(
            filter_resolv_conf(host, true),
            "# comment\nnameserver 192.0.2.1\nsearch example.org\n"
        );
        assert_eq!(filter_resolv_conf(host, false), host);
    }

    #[test]
    fn hosts_maps_the_pod_ip() {
        let h = hosts(Some("10.42.0.5".parse().unwrap()), "web-0");
        assert!(h.contains("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.42.0.5\tweb-0\n"));
    }
}
