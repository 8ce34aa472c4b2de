//! Port-forward's connect: a TCP connection to `localhost:PORT` inside a pod's network
//! namespace, as upstream's runtimes make it. A netns is per thread, so a short-lived thread
//! joins the pod's namespace (its nsfs bind mount), connects, and hands the socket back; the
//! socket stays in the namespace it was made in, and the thread, now in another namespace,
//! ends. Pods on the host network connect from the host's namespace.
//!
//! Invariants: no async worker ever calls `setns`; the connect is bounded by [`CONNECT_TIMEOUT`]
//! per address family; errors carry both attempts (IPv4, then IPv6) for kubectl to print.

use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

/// How long one connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `port` on the loopback of the network namespace at `netns` (the caller's own
/// when `None`). Blocking: run it on a dedicated thread (it changes that thread's namespace).
pub fn connect_in(netns: Option<PathBuf>, port: u16) -> Result<TcpStream, String> {
    if let Some(path) = &netns {
        let ns = File::open(path)
            .map_err(|e| format!("failed to open network namespace {}: {e}", path.display()))?;
        setns(ns, CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("failed to enter network namespace {}: {e}", path.display()))?;
    }
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let e4 = match TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT) {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    match TcpStream::connect_timeout(&v6, CONNECT_TIMEOUT) {
        Ok(s) => Ok(s),
        Err(e6) => Err(format!(
            "failed to connect to localhost:{port} inside the pod's network namespace, IPv4: dial tcp4 {v4}: connect: {} IPv6: dial tcp6 {v6}: connect: {}",
            describe(&e4),
            describe(&e6),
        )),
    }
}

/// The error as Go's net package words it, which is what kubectl users know.
fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "i/o timeout".into(),
        _ => e.to_string(),
    }
}

/// [`connect_in`] on a thread of its own, as a tokio socket; `netns` (which may look at the
/// runtime's state) runs on that thread too.
pub async fn connect<F>(netns: F, port: u16) -> Result<tokio::net::TcpStream, String>
where
    F: FnOnce() -> Result<Option<PathBuf>, String> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("port-forward".into())
        .spawn(move || {
            let _ = tx.send(netns().and_then(|ns| connect_in(ns, port)));
        })
        .map_err(|e| format!("failed to start the connect thread: {e}"))?;
    let std = rx
        .await
        .map_err(|_| "the connect thread failed".to_string())??;
    std.set_nonblocking(true).map_err(|e| e.to_string())?;
    tokio::net::TcpStream::from_std(std).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[tokio::test]
    async fn connects_in_the_callers_namespace_and_reports_refusals() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let srv = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(b"hi").unwrap();
        });
        let s = connect(|| Ok(None), port).await.unwrap();
        let mut s = s.into_std().unwrap();
        s.set_nonblocking(false).unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hi");
        srv.join().unwrap();
        // Nothing listens on the port any more.
        let e = connect(|| Ok(None), port).await.unwrap_err();
        assert!(
            e.contains("connection refused") || e.contains("Connection refused"),
            "{e}"
        );
        assert!(e.contains(&format!("localhost:{port}")), "{e}");
    }
}
