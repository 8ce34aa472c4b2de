//! `k1s bench proxy --clusterip`: HTTP request latency and throughput through a ClusterIP next to
//! the same requests straight to the pod IP, in one run (issue 6: overhead ≤ 5 % at p50).
//!
//! Set-up, all inside the benchmark's own network namespace (the caller re-executed itself under
//! `unshare --net`): a bridge `k1sbr0` (10.42.0.1/24), a "pod" and a "client" network namespace
//! (each held by an `unshare --net sleep` process, joined through `/proc/PID/ns/net`) with a veth
//! on the bridge each, the proxy's real table `ip k1s` for one ClusterIP service whose one
//! endpoint is the pod, and a small keep-alive HTTP/1.1 server on a thread that joined the pod's
//! namespace before binding. The client threads join the client's namespace and send requests on
//! keep-alive connections; the two paths take turns, round by round, so drift in the machine's
//! load falls on both alike. Latencies are reported in 0.1 µs (nanosecond samples), pooled and
//! as the per-round ratio of the two p50s.
//!
//! Invariants: every address is in 10.42.0.0/24 or 10.43.0.0/16 inside namespaces this process
//! created; the holders are killed and reaped when [`Holders`] drops (the namespaces, bridge,
//! veths and table go with them and with the benchmark's namespace).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k1s_proxy::apply::Transaction;
use k1s_proxy::model::{Endpoint, Index, Proto, Service, ServicePort, Slice, SlicePort};
use k1s_proxy::rules::{Params, generate};

const BRIDGE: &str = "k1sbr0";
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 1);
const POD: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 2);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 3);
const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 100);
const POD_PORT: u16 = 8080;
const SERVICE_PORT: u16 = 80;
const BODY: &[u8] = b"hello from the pod\n";

/// What the ClusterIP comparison runs.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Rounds; each measures both paths once.
    pub rounds: usize,
    /// How long each path is measured per round and phase.
    pub secs: f64,
    /// Keep-alive connections in the throughput phase.
    pub connections: usize,
}

/// Namespace holder processes, killed and reaped on drop.
struct Holders(Vec<Child>);

impl Drop for Holders {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sh(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {}", args[0]))?;
    ensure!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A new network namespace held by a sleeping process; returns its `/proc/PID/ns/net`.
fn namespace(holders: &mut Holders) -> Result<String> {
    let child = Command::new("unshare")
        .args(["--net", "--", "sleep", "1000000"])
        .stdin(Stdio::null())
        .spawn()
        .context("unshare (util-linux)")?;
    let path = format!("/proc/{}/ns/net", child.id());
    holders.0.push(child);
    let ours = std::fs::read_link("/proc/self/ns/net")?;
    let deadline = Instant::now() + Duration::from_secs(5);
    // unshare creates the namespace before exec'ing sleep: wait until the link changes.
    loop {
        match std::fs::read_link(&path) {
            Ok(l) if l != ours => return Ok(path),
            _ => {}
        }
        ensure!(
            Instant::now() < deadline,
            "{path} never became a new namespace"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A veth from the bridge into `ns`, with `ip`/24 and the bridge as default gateway.
fn attach(ns: &str, host_if: &str, ip: Ipv4Addr) -> Result<()> {
    let pid = ns.trim_start_matches("/proc/").trim_end_matches("/ns/net");
    sh(&[
        "ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", pid,
    ])?;
    sh(&["ip", "link", "set", host_if, "master", BRIDGE, "up"])?;
    let net = format!("--net={ns}");
    let cidr = format!("{ip}/24");
    let gw = GATEWAY.to_string();
    for cmd in [
        vec!["ip", "addr", "add", cidr.as_str(), "dev", "eth0"],
        vec!["ip", "link", "set", "eth0", "up"],
        vec!["ip", "link", "set", "lo", "up"],
        vec!["ip", "route", "add", "default", "via", gw.as_str()],
    ] {
        let mut full = vec!["nsenter", net.as_str(), "--"];
        full.extend(cmd);
        sh(&full)?;
    }
    Ok(())
}

/// Moves the calling thread into the network namespace at `ns`.
fn enter(ns: &str) -> Result<()> {
    let f = std::fs::File::open(ns).with_context(|| format!("opening {ns}"))?;
    rustix::thread::move_into_link_name_space(
        f.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .with_context(|| format!("setns {ns}"))?;
    Ok(())
}

/// The proxy's table for one ClusterIP service (port 80) with the pod (port 8080) as endpoint,
/// sent the way the sync loop sends a full replacement.
fn program_service() -> Result<()> {
    let params = Params {
        service_cidr: (Ipv4Addr::new(10, 43, 0, 0), 16),
        sctp: false,
        dns: None,
    };
    let mut index = Index::default();
    index.upsert_service(Service {
        namespace: "bench".into(),
        name: "web".into(),
        uid: "".into(),
        created: "".into(),
        load_balancer: false,
        cluster_ips: vec![CLUSTER_IP],
        ports: vec![ServicePort {
            name: "http".into(),
            proto: Proto::Tcp,
            port: SERVICE_PORT,
            node_port: None,
        }],
        external_ips: vec![],
        lb_ingress: vec![],
        affinity_timeout: None,
        internal_local: false,
        external_local: false,
    });
    index.upsert_slice(
        "bench/web".into(),
        "s".into(),
        Slice {
            endpoints: vec![Endpoint {
                ip: POD,
                ready: true,
                serving: true,
                terminating: false,
                local: true,
            }],
            ports: vec![SlicePort {
                name: "http".into(),
                proto: Proto::Tcp,
                port: POD_PORT,
            }],
        },
    );
    let (rs, _) = generate(&index, &params);
    let tx = Transaction::plan(&params, None, &rs, &Default::default(), true);
    tx.run("nft".as_ref(), &mut Default::default())?;
    Ok(())
}

/// The pod's HTTP server: accepts on a thread inside the pod's namespace, one thread per
/// connection, answering every request of a keep-alive connection with [`BODY`].
fn serve(pod_ns: String) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let listener = match bind_in(&pod_ns) {
            Ok(l) => {
                let _ = tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || answer(conn));
        }
    });
    rx.recv().context("the server thread died")?
}

/// Joins `ns` (this thread only) and listens on the pod's address there.
fn bind_in(ns: &str) -> Result<TcpListener> {
    enter(ns)?;
    Ok(TcpListener::bind(SocketAddrV4::new(POD, POD_PORT))?)
}

fn answer(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        BODY.len()
    )
    .into_bytes();
    head.extend_from_slice(BODY);
    let mut buf = [0u8; 4096];
    let mut pending = 0usize;
    loop {
        let n = match conn.read(&mut buf[pending..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending += n;
        // Requests have no body: each ends at an empty line.
        while let Some(end) = find(&buf[..pending], b"\r\n\r\n") {
            if conn.write_all(&head).is_err() {
                return;
            }
            buf.copy_within(end + 4..pending, 0);
            pending -= end + 4;
        }
        if pending == buf.len() {
            return; // a request head larger than the buffer: not ours
        }
    }
}

/// A latency in microseconds with 0.1 µs resolution (the samples are in nanoseconds).
fn us(d: Duration) -> String {
    format!("{:.1}µs", d.as_nanos() as f64 / 1e3)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One keep-alive client: requests `target` back to back until `until`; returns each latency.
fn client(target: SocketAddr, until: Instant) -> Result<Vec<Duration>> {
    let mut conn = TcpStream::connect_timeout(&target, Duration::from_secs(2))
        .with_context(|| format!("connecting to {target}"))?;
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let request = format!("GET / HTTP/1.1\r\nHost: {target}\r\n\r\n").into_bytes();
    let mut buf = [0u8; 1024];
    let mut out = Vec::with_capacity(100_000);
    while Instant::now() < until {
        let t = Instant::now();
        conn.write_all(&request)?;
        // The response: a head with Content-Length, then the body.
        let mut got = 0;
        let want = loop {
            let n = conn.read(&mut buf[got..])?;
            if n == 0 {
                bail!("{target} closed the connection");
            }
            got += n;
            if let Some(end) = find(&buf[..got], b"\r\n\r\n") {
                break end + 4 + BODY.len();
            }
            ensure!(got < buf.len(), "response head too large");
        };
        ensure!(want <= buf.len(), "response too large");
        while got < want {
            let n = conn.read(&mut buf[got..want])?;
            ensure!(n > 0, "{target} closed the connection");
            got += n;
        }
        out.push(t.elapsed());
    }
    Ok(out)
}

/// `connections` clients on threads inside the client namespace for `secs`; all latencies and
/// the wall time.
fn load(
    client_ns: &str,
    target: SocketAddr,
    connections: usize,
    secs: f64,
) -> Result<(Vec<Duration>, Duration)> {
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let ns = client_ns.to_string();
            std::thread::spawn(move || -> Result<Vec<Duration>> {
                enter(&ns)?;
                client(target, until)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(
            t.join()
                .map_err(|_| anyhow::anyhow!("a client panicked"))??,
        );
    }
    Ok((all, start.elapsed()))
}

/// Runs the comparison and prints both paths side by side.
pub fn run(opts: Options) -> Result<()> {
    for f in [
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/net/bridge/bridge-nf-call-iptables",
    ] {
        // Forwarding between the bridge ports, and conntrack (so the ClusterIP's NAT) for
        // bridged replies, as a node with pods on a bridge has them.
        std::fs::write(f, "1").with_context(|| format!("writing {f}"))?;
    }
    sh(&["ip", "link", "set", "lo", "up"])?;
    sh(&["ip", "link", "add", BRIDGE, "type", "bridge"])?;
    let gateway = format!("{GATEWAY}/24");
    sh(&["ip", "addr", "add", gateway.as_str(), "dev", BRIDGE])?;
    sh(&["ip", "link", "set", BRIDGE, "up"])?;
    let mut holders = Holders(Vec::new());
    let pod_ns = namespace(&mut holders)?;
    let client_ns = namespace(&mut holders)?;
    attach(&pod_ns, "vh-pod", POD)?;
    attach(&client_ns, "vh-client", CLIENT)?;
    program_service()?;
    // For A/B experiments on the table (e.g. another chain layout) with the same binary: an nft
    // script applied on top of the proxy's table, inside the benchmark's namespace only.
    if let Some(path) = std::env::var_os("K1S_BENCH_CLUSTERIP_NFT") {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.to_string_lossy()))?;
        k1s_proxy::nft::apply("nft".as_ref(), &text, false)?;
        println!("applied {} on top of the table", path.to_string_lossy());
    }
    serve(pod_ns)?;
    let pod = SocketAddr::from((POD, POD_PORT));
    let vip = SocketAddr::from((CLUSTER_IP, SERVICE_PORT));
    // Warm-up (ARP, conntrack, first connections), and a check that both paths answer.
    for target in [pod, vip] {
        let (s, _) = load(&client_ns, target, 1, 0.3)?;
        ensure!(!s.is_empty(), "no answer from {target}");
    }
    println!(
        "{} rounds x {:.2} s per path and phase; {} connection(s) for throughput",
        opts.rounds, opts.secs, opts.connections
    );
    let mut latency = [Vec::new(), Vec::new()];
    // The p50 of each path per round: the two were measured seconds apart, so their ratio is
    // free of the machine's load drifting over the run.
    let mut round_p50 = [Vec::new(), Vec::new()];
    let mut throughput = [(0usize, Duration::ZERO), (0, Duration::ZERO)];
    for round in 0..opts.rounds {
        // Alternate which path goes first.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let target = [pod, vip][i];
            let (mut s, _) = load(&client_ns, target, 1, opts.secs)?;
            ensure!(!s.is_empty(), "no request completed to {target}");
            s.sort_unstable();
            round_p50[i].push(s[s.len() / 2]);
            latency[i].extend(s);
            let (s, wall) = load(&client_ns, target, opts.connections, opts.secs)?;
            throughput[i].0 += s.len();
            throughput[i].1 += wall;
        }
    }
    let names = ["pod IP   ", "ClusterIP"];
    let mut p50 = [Duration::ZERO; 2];
    let mut rate = [0.0; 2];
    for i in 0..2 {
        let lat = &mut latency[i];
        lat.sort_unstable();
        let at = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
        p50[i] = at(0.5);
        let (count, wall) = throughput[i];
        rate[i] = count as f64 / wall.as_secs_f64().max(1e-9);
        println!(
            "{}: 1 connection n={:<8} p10={} p50={} p90={} p99={}; {} connections: {:.0} req/s",
            names[i],
            lat.len(),
            us(at(0.1)),
            us(p50[i]),
            us(at(0.9)),
            us(at(0.99)),
            opts.connections,
            rate[i],
        );
    }
    let overhead = |a: f64, b: f64| (b / a.max(1e-12) - 1.0) * 100.0;
    let mut per_round: Vec<f64> = round_p50[0]
        .iter()
        .zip(&round_p50[1])
        .map(|(a, b)| overhead(a.as_secs_f64(), b.as_secs_f64()))
        .collect();
    per_round.sort_by(f64::total_cmp);
    let q = |f: f64| per_round[((per_round.len() - 1) as f64 * f).round() as usize];
    println!(
        "ClusterIP overhead at p50: pooled {} -> {} ({:+.1} %, target <= 5 %); per round (n={}): median {:+.1} %, quartiles {:+.1} / {:+.1} %",
        us(p50[0]),
        us(p50[1]),
        overhead(p50[0].as_secs_f64(), p50[1].as_secs_f64()),
        per_round.len(),
        q(0.5),
        q(0.25),
        q(0.75),
    );
    println!(
        "throughput {:.0} -> {:.0} req/s ({:+.1} %)",
        rate[0],
        rate[1],
        overhead(rate[0], rate[1]),
    );
    drop(holders);
    Ok(())
}
