//! The node's masquerade rule for pod traffic leaving the pod network, in its own nftables table
//! `ip k1s_podnet` (the table `k1s` belongs to the service proxy).
//!
//! Invariant: the table is replaced as a whole in one `nft -f -` transaction (declare, delete,
//! declare again with its rules), so it is never seen half-written and re-running is idempotent.
//! This runs once per node, never per pod, so the spawn costs nothing on the pod path.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{NetworkConfig, Result, SandboxError};

/// The nftables table this module owns.
pub const TABLE: &str = "k1s_podnet";

/// The `nft` binary (Debian's nftables package).
const NFT: &str = "nft";

fn masquerade_script(cfg: &NetworkConfig) -> String {
    let pods = cfg.cluster_cidr;
    format!(
        "table ip {TABLE}\n\
         delete table ip {TABLE}\n\
         table ip {TABLE} {{\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tip saddr {pods} ip daddr != {pods} masquerade\n\
         \t}}\n\
         }}\n"
    )
}

/// Installs (or replaces) the masquerade table.
pub(crate) fn install(cfg: &NetworkConfig) -> Result<()> {
    run(&masquerade_script(cfg))
}

/// Deletes the table if present.
pub(crate) fn remove() -> Result<()> {
    run(&format!("table ip {TABLE}\ndelete table ip {TABLE}\n"))
}

fn run(script: &str) -> Result<()> {
    let mut child = Command::new(NFT)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| SandboxError::Nft(format!("cannot run {NFT} (install nftables): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| SandboxError::Nft(format!("writing the script to {NFT}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| SandboxError::Nft(format!("waiting for {NFT}: {e}")))?;
    if !out.status.success() {
        return Err(SandboxError::Nft(format!(
            "{NFT} -f - failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Turns on IPv4 forwarding in the netns k1s runs in (pods reach the outside through it).
pub(crate) fn enable_forwarding() -> Result<()> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    std::fs::write(path, b"1").map_err(|e| SandboxError::io("writing", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_masquerades_only_traffic_leaving_the_cluster_cidr() {
        let s = masquerade_script(&NetworkConfig::default());
        assert!(s.starts_with("table ip k1s_podnet\ndelete table ip k1s_podnet\n"));
        assert!(s.contains("ip saddr 10.42.0.0/16 ip daddr != 10.42.0.0/16 masquerade"));
    }
}
