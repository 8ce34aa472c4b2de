//! Facts about the machine the Node reports: capacity, addresses, OS and identity.
//!
//! Invariants: every reader is bounded and falls back to a sensible value instead of failing (a
//! node with an odd `/etc/os-release` still registers); the InternalIP is never an address of the
//! pod or service ranges (the `k1s0` bridge holds one), and no packet is sent to find it (a UDP
//! `connect` only asks the kernel for a route).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;

use k1s_runtime::sandbox::Ipv4Cidr;

/// At most this much of a `/proc` or `/etc` file is read.
const MAX_READ: u64 = 64 * 1024;

fn read_small(path: &str) -> Option<String> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_READ)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// What the Node's capacity is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub cpus: u64,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
    pub pods: u64,
}

impl Capacity {
    /// This machine: cpus from the available parallelism, memory from `/proc/meminfo`, storage
    /// from `statvfs(data_dir)`, 110 pods.
    pub fn detect(data_dir: &Path) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let memory_bytes = read_small("/proc/meminfo")
            .and_then(|m| mem_total(&m))
            .unwrap_or(0);
        let ephemeral_storage_bytes = nix::sys::statvfs::statvfs(data_dir)
            .map(|s| s.blocks().saturating_mul(s.fragment_size()))
            .unwrap_or(0);
        Capacity {
            cpus,
            memory_bytes,
            ephemeral_storage_bytes,
            pods: 110,
        }
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `PRETTY_NAME` of an os-release file; `Linux` if missing.
pub fn os_image(os_release: Option<&str>) -> String {
    os_release
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim().trim_matches('"').to_string())
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "Linux".to_string())
}

/// OS and identity fields of `nodeInfo`.
#[derive(Debug, Clone)]
pub struct Info {
    pub kernel_version: String,
    pub os_image: String,
    pub architecture: String,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
}

impl Info {
    pub fn detect() -> Self {
        let kernel_version = read_small("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let os = read_small("/etc/os-release").or_else(|| read_small("/usr/lib/os-release"));
        let machine_id = read_small("/etc/machine-id")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_default();
        let system_uuid = read_small("/sys/class/dmi/id/product_uuid")
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| machine_id.clone());
        let boot_id = read_small("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Info {
            kernel_version,
            os_image: os_image(os.as_deref()),
            architecture: go_arch(std::env::consts::ARCH).to_string(),
            machine_id,
            system_uuid,
            boot_id,
        }
    }
}

/// Go's `GOARCH` name of a Rust architecture, as `kubernetes.io/arch` spells it.
pub fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The host name lower-cased, as the kubelet names its Node by default.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .map(|h| h.to_string_lossy().to_lowercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The node's primary address: the source address of the default route; else the first
/// non-loopback address outside `excluded` (pod and service ranges); else 127.0.0.1.
pub fn primary_ip(excluded: &[Ipv4Cidr]) -> IpAddr {
    let outside = |ip: &Ipv4Addr| !ip.is_loopback() && !excluded.iter().any(|c| c.contains(*ip));
    // Connecting a UDP socket sends nothing; it only picks the route and its source address.
    let routed = UdpSocket::bind("0.0.0.0:0").ok().and_then(|s| {
        s.connect(SocketAddr::from(([192, 0, 2, 1], 9))).ok()?;
        match s.local_addr().ok()?.ip() {
            IpAddr::V4(ip) if outside(&ip) && !ip.is_unspecified() => Some(ip),
            _ => None,
        }
    });
    if let Some(ip) = routed {
        return IpAddr::V4(ip);
    }
    let first = nix::ifaddrs::getifaddrs().ok().and_then(|addrs| {
        addrs
            .filter_map(|a| a.address?.as_sockaddr_in().map(|s| s.ip()))
            .find(outside)
    });
    IpAddr::V4(first.unwrap_or(Ipv4Addr::LOCALHOST))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_in_bytes() {
        let m = "MemTotal:       24570516 kB\nMemFree:        1000 kB\n";
        assert_eq!(mem_total(m), Some(24570516 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: x kB\n"), None);
    }

    #[test]
    fn os_image_from_pretty_name() {
        let t = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(os_image(Some(t)), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os_image(Some("ID=x\n")), "Linux");
        assert_eq!(os_image(None), "Linux");
    }

    #[test]
    fn capacity_of_this_machine() {
        let c = Capacity::detect(Path::new("/"));
        assert!(c.cpus >= 1);
        assert!(c.memory_bytes > 64 * 1024 * 1024, "{c:?}");
        assert!(c.ephemeral_storage_bytes > 0, "{c:?}");
        assert_eq!(c.pods, 110);
    }

    #[test]
    fn primary_ip_never_in_excluded_ranges() {
        let all = Ipv4Cidr::new(Ipv4Addr::new(0, 0, 0, 0), 0);
        // Everything excluded: only loopback remains.
        assert_eq!(primary_ip(&[all]), IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(go_arch("x86_64"), "amd64");
    }
}
