//! `k1s bench dns`: the in-process cluster DNS under load (issue 6, "Speed").
//!
//! Spawns `k1s server --dns-listen 127.0.0.1:0` (controllers and scheduler off; upstream a closed
//! port on 127.0.0.1, so nothing leaves the machine), creates `--services` ClusterIP Services over
//! HTTPS, waits until the last one resolves, then measures A queries for cluster names, cycling
//! through every service:
//! 1. a closed-loop UDP load client in this process (`--clients` sockets, one query in flight each)
//!    for queries/s and p50/p99 latency; once with one client (latency unloaded) and once with
//!    `--clients` (throughput);
//! 2. Debian's `dnsperf` (open loop, up to 100 queries outstanding) for queries/s and its average
//!    latency, when `--dnsperf` is found (it reports no percentiles);
//! 3. the server's RSS with the services indexed.
//!
//! Queries are built by hand (header + one question) since only the header of the reply is read:
//! a reply counts when its id matches and its RCODE is NOERROR with at least one answer.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use hyper::Method;
use serde_json::json;
use tokio::net::UdpSocket;

use super::api::{parse_duration, print_header};
use super::client::{Proto, endpoint_from_kubeconfig};
use super::spawn::{self, mib};
use super::stats::{self, Limit};

#[derive(Args, Debug)]
pub struct DnsArgs {
    /// The k1s binary to spawn (default: this executable).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// ClusterIP Services created before measuring.
    #[arg(long, default_value_t = 1000)]
    pub services: u64,
    /// Concurrent UDP clients in the throughput run.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// How long each measured run lasts (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The dnsperf binary (Debian package `dnsperf`); the run fails if it is missing.
    #[arg(long, default_value = "dnsperf")]
    pub dnsperf: PathBuf,
    /// Skip the dnsperf run.
    #[arg(long)]
    pub no_dnsperf: bool,
}

/// How long one query may wait for its reply before it counts as lost.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn run(args: DnsArgs) -> Result<()> {
    let bin = spawn::binary(&args.bin)?;
    let data = tempfile::Builder::new()
        .prefix("k1s-bench-dns-")
        .tempdir()?;
    let (server, _) = spawn::start(
        &bin,
        data.path(),
        &[
            "--dns-listen",
            "127.0.0.1:0",
            "--dns-upstream",
            "127.0.0.1:9",
            "--disable",
            "controllers,scheduler",
        ],
    )
    .await?;
    let dns = server
        .dns
        .ok_or_else(|| anyhow!("the server's ready line names no DNS address"))?;
    print_header("dns");
    println!(
        "workload: {} services, {} clients, {:?} per run, DNS at {dns}",
        args.services, args.clients, args.duration
    );

    let t = Instant::now();
    create_services(&server.kubeconfig, args.services).await?;
    let last = name(args.services - 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    sock.connect(dns).await?;
    while ask(&sock, &last, 1).await.is_err() {
        if Instant::now() > deadline {
            bail!("{last} did not resolve within 60 s of its creation");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "created {} services and saw the last in DNS after {:.1}s",
        args.services,
        t.elapsed().as_secs_f64()
    );

    for clients in [1, args.clients] {
        let lost = Arc::new(AtomicU64::new(0));
        let mut cs = Vec::new();
        for _ in 0..clients {
            let sock = UdpSocket::bind("127.0.0.1:0").await?;
            sock.connect(dns).await?;
            cs.push(Client {
                sock,
                services: args.services,
                lost: lost.clone(),
            });
        }
        let limit = Limit {
            // Bounded by time; the count only has to be out of reach (the driver adds warm-up to it).
            ops: u64::MAX / 2,
            duration: args.duration,
            warmup: 200,
        };
        let run = stats::drive(cs, limit).await?;
        let lost = lost.load(Ordering::Relaxed);
        run.samples
            .report(
                &format!("dns A, udp, {clients} client(s)"),
                run.ops,
                Some(run.wall),
            )
            .note(format!("lost {lost}"))
            .print();
    }

    if !args.no_dnsperf {
        dnsperf(&args, dns, data.path()).await?;
    }
    let (rss, hwm) = server.rss_kib()?;
    println!(
        "server RSS with {} services indexed: {} (peak {})",
        args.services,
        mib(rss),
        mib(hwm)
    );
    server.stop().await
}

fn name(i: u64) -> String {
    format!("svc-{i}.default.svc.cluster.local")
}

/// Creates `n` ClusterIP Services over 16 HTTP/2 streams.
async fn create_services(kubeconfig: &std::path::Path, n: u64) -> Result<()> {
    let ep = endpoint_from_kubeconfig(kubeconfig)?;
    let conn = ep.connect(Proto::Http2).await?;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let mut c = conn
            .stream()
            .ok_or_else(|| anyhow!("an HTTP/2 connection"))?;
        let next = next.clone();
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let body = json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
                    "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
                });
                c.call(
                    Method::POST,
                    "/api/v1/namespaces/default/services",
                    Some(Bytes::from(serde_json::to_vec(&body)?)),
                )
                .await?;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

/// An A query for `name` with id `id`, recursion desired.
fn query(name: &str, id: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(12 + name.len() + 6);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Sends one query on a connected socket and waits for its reply: `Ok` for NOERROR with answers.
async fn ask(sock: &UdpSocket, name: &str, id: u16) -> Result<()> {
    sock.send(&query(name, id)).await?;
    let mut buf = [0u8; 1500];
    let deadline = tokio::time::Instant::now() + QUERY_TIMEOUT;
    loop {
        let n = tokio::time::timeout_at(deadline, sock.recv(&mut buf))
            .await
            .context("no reply")??;
        // A late reply to an earlier (timed-out) query has another id: skip it.
        if n < 12 || buf[..2] != id.to_be_bytes() {
            continue;
        }
        let rcode = buf[3] & 0x0f;
        let answers = u16::from_be_bytes([buf[6], buf[7]]);
        if rcode != 0 || answers == 0 {
            bail!("{name}: rcode {rcode}, {answers} answers");
        }
        return Ok(());
    }
}

struct Client {
    sock: UdpSocket,
    services: u64,
    lost: Arc<AtomicU64>,
}

impl stats::Client for Client {
    async fn op(&mut self, i: u64) -> Result<()> {
        let name = name(i % self.services);
        match ask(&self.sock, &name, i as u16).await {
            Ok(()) => Ok(()),
            // UDP may drop under load: count it, as dnsperf does, rather than end the run.
            Err(e) if e.to_string() == "no reply" => {
                self.lost.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Runs dnsperf over every service name for `--duration` and prints its figures.
async fn dnsperf(args: &DnsArgs, dns: std::net::SocketAddr, dir: &std::path::Path) -> Result<()> {
    let file = dir.join("queries.txt");
    let mut text = String::new();
    for i in 0..args.services {
        text.push_str(&name(i));
        text.push_str(" A\n");
    }
    std::fs::write(&file, text)?;
    let out = tokio::process::Command::new(&args.dnsperf)
        .args(["-s", &dns.ip().to_string(), "-p", &dns.port().to_string()])
        .arg("-d")
        .arg(&file)
        .args(["-l", &args.duration.as_secs().max(1).to_string()])
        .args(["-c", "4", "-T", "2", "-q", "100"])
        .output()
        .await
        .with_context(|| {
            format!(
                "running {} (Debian package dnsperf; --no-dnsperf skips it)",
                args.dnsperf.display()
            )
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "dnsperf failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    println!(
        "{:<38} {} queries/s, avg latency {} s, completed {}, lost {}",
        "dnsperf A, udp, 100 outstanding",
        field("Queries per second:"),
        field("Average Latency (s):"),
        field("Queries completed:"),
        field("Queries lost:"),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_wire_format() {
        let q = query("a.bc", 0x1234);
        assert_eq!(
            q,
            [
                0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 2, b'b', b'c', 0, 0, 1, 0, 1
            ]
        );
    }
}
