//! End to end: the real `k1s server` with its service proxy, inside a network namespace this test
//! creates (it re-executes itself under `unshare --net`), driven with kubectl: table `ip k1s`
//! appears, a LoadBalancer service gets the node IP as EXTERNAL-IP, its NodePort refuses at once
//! while it has no endpoints, and a clean stop removes the table. Pods are not needed for any of
//! this, so it runs without a kubelet.

mod common;
#[path = "runtime_support/netns.rs"]
mod netns;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{KUBECTL, KUBECTL_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, eventually, run};

/// Kills the server if the test fails before stopping it.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(KUBECTL);
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run(cmd, None, KUBECTL_TIMEOUT);
    assert_eq!(out.code, Some(0), "kubectl {args:?}: {}", out.stderr);
    out.stdout
}

#[test]
fn server_proxy_lifecycle() {
    netns::in_own_netns("server_proxy_lifecycle", inner);
}

fn inner(scratch: &Path) {
    let tmp = tempfile::tempdir_in(scratch).expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_k1s"))
        .args([
            "server",
            "--listen",
            "127.0.0.1:0",
            "--node-ip",
            "127.0.0.1",
        ])
        .args(["--disable", "controllers,scheduler"])
        .arg("--data-dir")
        .arg(tmp.path())
        .env_remove("K1S_DISABLE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning k1s server");
    let stdout = child.stdout.take().expect("stdout");
    let mut server = Server(Some(child));
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + START_TIMEOUT;
    let ready = loop {
        assert!(Instant::now() < deadline, "no ready line");
        match lines.next() {
            Some(Ok(l)) if l.starts_with("k1s is ready:") => break l,
            Some(_) => continue,
            None => panic!("k1s server exited before its ready line"),
        }
    };
    let (_, kubeconfig) = common::parse_ready_line(&ready).expect("ready line");

    // The table is there, with the `kubernetes` Service (no endpoints without controllers).
    eventually(Duration::from_secs(10), "table ip k1s", || {
        netns::nft_table().is_some_and(|t| t.contains("10.43.0.1 . tcp . 443 : goto reject-chain"))
    });

    kubectl(
        &kubeconfig,
        &["create", "service", "loadbalancer", "web", "--tcp=8080:80"],
    );
    eventually(Duration::from_secs(10), "EXTERNAL-IP 127.0.0.1", || {
        kubectl(&kubeconfig, &["get", "svc", "web", "-o", "wide"]).contains("127.0.0.1")
    });
    let node_port = kubectl(
        &kubeconfig,
        &[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ],
    );
    let node_port: u16 = node_port.trim().parse().expect("a nodePort");
    // No endpoints: the NodePort and the LoadBalancer address refuse at once.
    for port in [node_port, 8080] {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        eventually(Duration::from_secs(10), "a refused connection", || {
            let t = Instant::now();
            let refused = matches!(
                TcpStream::connect_timeout(&addr, Duration::from_secs(2)),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
            );
            refused && t.elapsed() < Duration::from_secs(1)
        });
    }
    let table = netns::nft_table().expect("table");
    assert!(
        table.contains(&format!("tcp . {node_port} : goto reject-chain")),
        "{table}"
    );

    // A clean stop removes the table.
    let mut child = server.0.take().expect("server");
    common::signal(child.id(), "TERM");
    let status = common::wait_deadline(&mut child, STOP_TIMEOUT).expect("server stops");
    assert!(status.success(), "server exit: {status}");
    assert!(netns::nft_table().is_none(), "table ip k1s left behind");
}
