//! Starting and stopping `k1s server` as a child process, and reading its memory use.
//!
//! The server prints `k1s is ready: API <url> kubeconfig <path> (<n> ms)` on stdout once
//! `/readyz` answers 200; that line is how a child is found ready. A child that exits or stays
//! silent past the timeout is an error carrying the tail of its stderr.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `k1s server` child; killed if dropped without [`Server::stop`].
pub struct Server {
    child: Child,
    pub pid: u32,
    pub url: String,
    pub kubeconfig: PathBuf,
    /// From spawn to the ready line read on our side.
    pub ready_line_after: Duration,
    /// What the server itself reported in the ready line.
    pub self_reported_ms: Option<u64>,
    /// Where its DNS listens (the ready line's `dns ADDR` after `--dns-listen`).
    pub dns: Option<std::net::SocketAddr>,
    stderr_tail: tokio::task::JoinHandle<String>,
}

/// The binary to spawn: `--bin` or this executable.
pub fn binary(flag: &Option<PathBuf>) -> Result<PathBuf> {
    match flag {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe().context("locating the k1s binary"),
    }
}

/// Spawns `bin server --data-dir <data_dir> --listen 127.0.0.1:0` (plus `extra` flags) and waits
/// for its ready line. `started` is the instant just before the spawn.
pub async fn start(bin: &Path, data_dir: &Path, extra: &[&str]) -> Result<(Server, Instant)> {
    start_with(bin, data_dir, extra, false).await
}

/// [`start`], with the kubelet running when `kubelet` is set (call it only inside a network
/// namespace of one's own: the kubelet creates the pod bridge).
pub async fn start_with(
    bin: &Path,
    data_dir: &Path,
    extra: &[&str],
    kubelet: bool,
) -> Result<(Server, Instant)> {
    let mut cmd = Command::new(bin);
    cmd.arg("server")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
        // Benchmarks run in the host's network namespace: no nftables table there.
        .arg("--disable=proxy")
        // The benchmarks measure the control plane; the kubelet would add the pod bridge to
        // the host network namespace.
        .args(if kubelet {
            &[][..]
        } else {
            &["--disable", "kubelet"][..]
        })
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {} server", bin.display()))?;
    let pid = child
        .id()
        .ok_or_else(|| anyhow!("the server exited at once"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout pipe"))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow!("no stderr pipe"))?;
    // Keep draining stderr so the child never blocks on a full pipe; keep its tail for errors.
    let stderr_tail = tokio::spawn(async move {
        let mut tail = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 8192 {
                tail.drain(..tail.len() - 8192);
            }
        }
        String::from_utf8_lossy(&tail).into_owned()
    });
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(READY_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("k1s is ready:") {
                return Ok(Some(line));
            }
        }
        anyhow::Ok(None)
    })
    .await;
    let ready_line_after = started.elapsed();
    let line = match line {
        Ok(Ok(Some(l))) => l,
        other => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            let tail = stderr_tail.await.unwrap_or_default();
            let why = match other {
                Err(_) => format!("no ready line within {READY_TIMEOUT:?}"),
                Ok(Err(e)) => format!("reading its stdout: {e}"),
                _ => "it exited before it was ready".to_owned(),
            };
            bail!(
                "k1s server on {}: {why}; stderr:\n{}",
                data_dir.display(),
                tail.trim()
            );
        }
    };
    // Drain the rest of stdout in the background.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let (url, kubeconfig, self_reported_ms) = parse_ready_line(&line)?;
    let dns = line
        .rsplit_once(") dns ")
        .and_then(|(_, addr)| addr.trim().parse().ok());
    Ok((
        Server {
            child,
            pid,
            url,
            kubeconfig,
            ready_line_after,
            self_reported_ms,
            dns,
            stderr_tail,
        },
        started,
    ))
}

/// `k1s is ready: API https://127.0.0.1:PORT kubeconfig PATH (N ms)`, maybe followed by ` dns ADDR`.
fn parse_ready_line(line: &str) -> Result<(String, PathBuf, Option<u64>)> {
    let bad = || anyhow!("unexpected ready line {line:?}");
    let rest = line.split_once(" API ").ok_or_else(bad)?.1;
    let (url, rest) = rest.split_once(" kubeconfig ").ok_or_else(bad)?;
    let (path, ms) = match rest.rsplit_once(" (") {
        Some((p, ms)) => (
            p,
            ms.split(')')
                .next()
                .unwrap_or_default()
                .trim_end_matches(" ms")
                .parse()
                .ok(),
        ),
        None => (rest, None),
    };
    Ok((url.to_owned(), PathBuf::from(path), ms))
}

impl Server {
    /// Resident set size now (VmRSS) and at its peak (VmHWM), in KiB.
    pub fn rss_kib(&self) -> Result<(u64, u64)> {
        rss_kib(self.pid)
    }

    /// SIGTERM, then wait for a clean exit (SIGKILL after [`STOP_TIMEOUT`]).
    pub async fn stop(mut self) -> Result<()> {
        let pid = rustix::process::Pid::from_raw(self.pid as i32)
            .ok_or_else(|| anyhow!("invalid pid {}", self.pid))?;
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => {
                let tail = self.stderr_tail.await.unwrap_or_default();
                bail!("k1s server exited with {status}; stderr:\n{}", tail.trim())
            }
            Ok(Err(e)) => Err(e).context("waiting for k1s server"),
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("k1s server did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed")
            }
        }
    }
}

/// VmRSS and VmHWM of a process, in KiB.
pub fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Ok((
        field("VmRSS:").ok_or_else(|| anyhow!("no VmRSS for pid {pid}"))?,
        field("VmHWM:").unwrap_or(0),
    ))
}

/// `12.3 MB` (MiB, as the targets are phrased).
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line() {
        let (url, kc, ms) = parse_ready_line(
            "k1s is ready: API https://127.0.0.1:4321 kubeconfig /tmp/x y/kubeconfig.yaml (42 ms)",
        )
        .unwrap();
        assert_eq!(url, "https://127.0.0.1:4321");
        assert_eq!(kc, PathBuf::from("/tmp/x y/kubeconfig.yaml"));
        assert_eq!(ms, Some(42));
    }
}
