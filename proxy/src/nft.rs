//! Running `nft` (Debian's nftables package): one process per transaction, fed the script on stdin.
//!
//! Invariants: every function here blocks; callers run them on a blocking thread, never on a tokio
//! worker. Nothing here touches a table other than `ip k1s`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::script::TABLE;

/// Why an `nft` run failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("running {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("nft rejected the transaction: {0}")]
    Rejected(String),
}

/// Applies `script` as one transaction (`nft -f -`); with `check`, only validates it (`-c`).
pub fn apply(nft: &Path, script: &str, check: bool) -> Result<(), NftError> {
    let spawn_err = |source| NftError::Spawn {
        program: nft.display().to_string(),
        source,
    };
    let mut cmd = Command::new(nft);
    if check {
        cmd.arg("-c");
    }
    let mut child = cmd
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    // Write stdin from its own thread: nft may print errors (filling stderr) before reading all.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let owned = script.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(owned.as_bytes()));
    let out = child.wait_with_output().map_err(spawn_err)?;
    let _ = writer.join();
    if out.status.success() {
        return Ok(());
    }
    let mut err = String::from_utf8_lossy(&out.stderr).into_owned();
    err.truncate(4096);
    Err(NftError::Rejected(err))
}

/// Removes table `ip k1s` if it exists.
pub fn delete_table(nft: &Path) -> Result<(), NftError> {
    apply(
        nft,
        &format!("add table {TABLE}\ndelete table {TABLE}\n"),
        false,
    )
}

/// Whether the kernel accepts SCTP NAT rules (validated in a throwaway check transaction).
pub fn sctp_supported(nft: &Path) -> bool {
    apply(nft, SCTP_PROBE, true).is_ok()
}

/// A check-only transaction that needs SCTP NAT in the kernel.
const SCTP_PROBE: &str = "table ip k1s-sctp-probe {\n  chain c {\n    type nat hook prerouting priority -100;\n    \
                 meta l4proto sctp sctp dport 1 dnat to 127.0.0.1:1\n  }\n}\n";

#[cfg(test)]
mod tests {
    /// The SCTP probe must at least be valid syntax: run it in a throwaway network namespace.
    #[test]
    fn sctp_probe_parses() {
        let out = std::process::Command::new("unshare")
            .args(["--net", "nft", "-c", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                let probe = super::SCTP_PROBE
                    .replace("sctp", "tcp")
                    .replace("tcp-probe", "sctp-probe");
                c.stdin.take().expect("stdin").write_all(probe.as_bytes())?;
                c.wait_with_output()
            })
            .expect("unshare and nft must be installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
