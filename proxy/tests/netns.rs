//! The proxy against real traffic: an in-process API server, the proxy, a bridge and two "pods"
//! (network namespaces held by `unshare --net sleep` processes, joined with `nsenter`, each
//! answering TCP with its name through `busybox nc`), all inside a network namespace this test
//! creates by re-executing itself under `unshare --net`. Nothing touches the host's network: the
//! bridge, veths, pod namespaces and table `ip k1s` vanish with the test's namespace, and the pod
//! holders and servers are killed by Drop guards, also when the test fails.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k1s_apiserver::client::{Client, Gvr};
use k1s_apiserver::{ApiConfig, AppState};
use k1s_proxy::{Proxy, ProxyConfig};
use k1s_store::{Store, StoreConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const SERVICES: Gvr = Gvr::new("", "v1", "services");
const SLICES: Gvr = Gvr::new("discovery.k8s.io", "v1", "endpointslices");
const DEADLINE: Duration = Duration::from_secs(10);
const BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 42, 0, 1);
const CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 10);
/// A stand-in for the DNS server's TCP side: the proxy must carry `<cluster-dns>:53` here.
const DNS_TARGET: std::net::SocketAddrV4 = std::net::SocketAddrV4::new(BRIDGE_IP, 5353);

fn sh(cmd: &str) -> Result<()> {
    let out = Command::new("sh").args(["-c", cmd]).output()?;
    ensure!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Processes killed (and reaped) when the guard drops.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A pod: a network namespace held by a sleeping process, on the bridge, serving its name on 8080.
struct Pod {
    name: &'static str,
    ip: Ipv4Addr,
    holder: u32,
}

fn pod(procs: &mut Procs, name: &'static str, ip: Ipv4Addr) -> Result<Pod> {
    let holder = Command::new("unshare")
        .args(["--net", "--", "sleep", "600"])
        .spawn()?;
    let pid = holder.id();
    procs.0.push(holder);
    let ns = format!("/proc/{pid}/ns/net");
    // The holder must have entered its namespace before we move a veth into it.
    let host_ns = std::fs::read_link("/proc/self/ns/net")?;
    let start = Instant::now();
    while std::fs::read_link(&ns).ok().is_none_or(|l| l == host_ns) {
        ensure!(start.elapsed() < DEADLINE, "pod holder did not unshare");
        std::thread::sleep(Duration::from_millis(5));
    }
    let veth = format!("veth-{name}");
    sh(&format!(
        "ip link add {veth} type veth peer name eth0 netns {pid} && \
         ip link set {veth} master br0 up && ip link set {veth} type bridge_slave hairpin on && \
         nsenter --net={ns} sh -c 'ip link set lo up && ip addr add {ip}/24 dev eth0 && \
         ip link set eth0 up && ip route add default via {BRIDGE_IP}'"
    ))?;
    let server = Command::new("nsenter")
        .arg(format!("--net={ns}"))
        .args(["busybox", "nc", "-ll", "-p", "8080", "-e"])
        .arg(busybox()?)
        .args(["echo", name])
        .stdout(Stdio::null())
        .spawn()?;
    procs.0.push(server);
    Ok(Pod {
        name,
        ip,
        holder: pid,
    })
}

fn network() -> Result<()> {
    sh("ip link set lo up && ip link add br0 type bridge && \
        ip addr add 10.42.0.1/24 dev br0 && ip link set br0 up && \
        ip route add 10.43.0.0/16 dev br0")?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
    // Pod-to-service replies are bridged: they must see conntrack to be un-NATed.
    let _ = std::fs::write("/proc/sys/net/bridge/bridge-nf-call-iptables", "1");
    Ok(())
}

/// The busybox binary's path (nc's `-e` wants one).
fn busybox() -> Result<std::path::PathBuf> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("busybox"))
                .find(|b| b.is_file())
        })
        .context("busybox is not on PATH")
}

/// Connects to `addr` from this namespace: `Ok(Some(reply))`, `Ok(None)` when refused.
fn fetch(addr: SocketAddr) -> Result<Option<String>> {
    match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(mut s) => {
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(Some(out.trim().to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(None),
        Err(e) => Err(e).with_context(|| format!("connecting to {addr}")),
    }
}

/// Connects from inside pod `from` with busybox nc.
fn fetch_from(from: &Pod, addr: SocketAddr) -> Result<String> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/proc/{}/ns/net", from.holder))
        .args([
            "busybox",
            "nc",
            "-w",
            "3",
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .stdin(Stdio::null())
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A UDP server answering every datagram with the pod's name: a thread that has entered the
/// pod's network namespace (setns changes only the calling thread's). It lives until the test
/// process exits.
fn udp_echo(pod: &Pod, port: u16) -> Result<()> {
    let ns = std::fs::File::open(format!("/proc/{}/ns/net", pod.holder))?;
    let name = pod.name;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let bound = nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(anyhow::Error::from)
            .and_then(|()| Ok(UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))?));
        let sock = match bound {
            Ok(s) => {
                let _ = tx.send(Ok(()));
                s
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let mut buf = [0u8; 512];
        while let Ok((_, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(name.as_bytes(), from);
        }
    });
    rx.recv()?
}

/// One UDP question to `addr` from a fresh socket (a fresh conntrack entry): the answer, or
/// `None` when none came.
fn udp_ask(addr: SocketAddr) -> Result<Option<String>> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    sock.set_read_timeout(Some(Duration::from_millis(300)))?;
    sock.send_to(b"who", addr)?;
    let mut buf = [0u8; 64];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Ok(Some(String::from_utf8_lossy(&buf[..n]).into_owned())),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("asking {addr}")),
    }
}

/// Both pods answer UDP through the service's ClusterIP and its NodePort.
async fn udp_reaches_both(what: &'static str, targets: [SocketAddr; 2]) -> Result<()> {
    for target in targets {
        blocking(move || {
            let mut seen = BTreeSet::new();
            until(what, || {
                if let Some(r) = udp_ask(target)? {
                    seen.insert(r);
                }
                Ok(seen.contains("pod-a") && seen.contains("pod-b"))
            })
        })
        .await
        .with_context(|| format!("UDP to {target}"))?;
    }
    Ok(())
}

/// Polls `f` until it returns true.
fn until(what: &str, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < DEADLINE {
        match f() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("timed out waiting for {what} (last error: {last:?})")
}

fn nft_table() -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "table", "ip", "k1s"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A table listing as its blocks (chains, sets, maps), sorted: `nft` lists them in creation
/// order, which differs between a table built by incremental syncs and one built in one go.
fn blocks(table: &str) -> Vec<&str> {
    let mut b: Vec<&str> = table
        .split("\n\n")
        .map(|b| b.trim_end_matches("\n}\n"))
        .collect();
    b.sort_unstable();
    b
}

async fn api() -> Result<Client> {
    let store = tokio::task::spawn_blocking(|| {
        Store::open(StoreConfig {
            path: None,
            ..Default::default()
        })
    })
    .await??;
    let state = AppState::new(store, ApiConfig::default());
    k1s_apiserver::crd::rebuild_table(&state);
    k1s_apiserver::bootstrap::run(&state)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap: {}", e.0.message))?;
    state.set_ready();
    Ok(Client::new(state, "proxy-test"))
}

async fn create(client: &Client, gvr: Gvr, obj: Value) -> Result<Value> {
    client
        .create(gvr, Some("default"), &obj)
        .await
        .map_err(|e| anyhow::anyhow!("creating: {}", e.message))
}

fn service(name: &str, extra: Value) -> Value {
    let mut spec =
        json!({"type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": spec})
}

fn slice(svc: &str, pods: &[&Pod]) -> Value {
    let eps: Vec<Value> = pods
        .iter()
        .map(|p| json!({"addresses": [p.ip.to_string()], "conditions": {"ready": true}, "nodeName": "n1"}))
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": svc, "namespace": "default", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4", "endpoints": eps,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
}

fn addr_of(svc: &Value) -> Result<(SocketAddr, u16)> {
    let ip: Ipv4Addr = svc["spec"]["clusterIP"]
        .as_str()
        .context("no clusterIP")?
        .parse()?;
    let np = svc["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .context("no nodePort")? as u16;
    Ok((SocketAddr::from((ip, 80)), np))
}

async fn start_proxy(client: &Client, token: &CancellationToken) -> Result<Proxy> {
    let config = ProxyConfig {
        node_name: "n1".into(),
        node_ip: Some(BRIDGE_IP),
        route_localnet: true,
        min_sync_interval: Duration::from_millis(10),
        dns: Some((CLUSTER_DNS, DNS_TARGET)),
        ..Default::default()
    };
    let proxy = k1s_proxy::start(client.clone(), config, token.clone()).await?;
    let mut status = proxy.status();
    tokio::time::timeout(
        DEADLINE,
        status.wait_for(|s| s.syncs >= 1 && s.last_error.is_none()),
    )
    .await
    .context("first sync")??;
    Ok(proxy)
}

/// Runs blocking network checks off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}

#[test]
fn services_carry_traffic() {
    k1s_testns::require_tools(&["nsenter", "busybox", "nft"]);
    k1s_testns::in_own_netns("services_carry_traffic", |_| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(scenario())
    });
}

async fn scenario() -> Result<()> {
    let mut procs = Procs(Vec::new());
    network()?;
    let a = pod(&mut procs, "pod-a", Ipv4Addr::new(10, 42, 0, 2))?;
    let b = pod(&mut procs, "pod-b", Ipv4Addr::new(10, 42, 0, 3))?;
    let client = api().await?;
    let token = CancellationToken::new();
    let proxy = start_proxy(&client, &token).await?;

    // A UDP service first, so its dnat-2 and np-dnat-2 chains come from an incremental sync
    // (the regression: nft-made DNAT rules through the endpoint maps were TCP-only).
    udp_echo(&a, 5300)?;
    udp_echo(&b, 5300)?;
    let udp_port = json!([{"name": "echo", "port": 5300, "protocol": "UDP", "targetPort": 5300}]);
    let dgram = create(
        &client,
        SERVICES,
        service("dgram", json!({"ports": udp_port})),
    )
    .await?;
    let eps: Vec<Value> = [&a, &b]
        .iter()
        .map(|p| json!({"addresses": [p.ip.to_string()], "conditions": {"ready": true}, "nodeName": "n1"}))
        .collect();
    create(
        &client,
        SLICES,
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "dgram", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "dgram"}},
            "addressType": "IPv4", "endpoints": eps,
            "ports": [{"name": "echo", "port": 5300, "protocol": "UDP"}]}),
    )
    .await?;
    let (dgram_ip, dgram_np) = addr_of(&dgram)?;
    let udp_targets = [
        SocketAddr::from((dgram_ip.ip(), 5300)),
        SocketAddr::from((BRIDGE_IP, dgram_np)),
    ];
    udp_reaches_both("both pods over UDP", udp_targets).await?;
    // Through the incremental path, not a full replacement after a failed increment.
    let failures = proxy.status().borrow().failures;
    ensure!(failures == 0, "{failures} failed syncs");

    let web = create(&client, SERVICES, service("web", json!({}))).await?;
    create(&client, SLICES, slice("web", &[&a, &b])).await?;
    let (web_ip, web_np) = addr_of(&web)?;

    // ClusterIP from the host namespace reaches both pods.
    blocking(move || {
        let mut seen = BTreeSet::new();
        until("both pods behind the ClusterIP", || {
            if let Some(r) = fetch(web_ip)? {
                seen.insert(r);
            }
            Ok(seen.len() == 2)
        })
    })
    .await?;

    // From a pod: both endpoints, including itself (hairpin).
    let (a_holder, b_ip) = (a.holder, b.ip);
    blocking(move || {
        let from = Pod {
            name: "pod-a",
            ip: Ipv4Addr::UNSPECIFIED,
            holder: a_holder,
        };
        let mut seen = BTreeSet::new();
        until("both pods (one is itself) from pod-a", || {
            seen.insert(fetch_from(&from, web_ip)?);
            Ok(seen.contains("pod-a") && seen.contains("pod-b"))
        })
    })
    .await?;
    let _ = b_ip;

    // NodePort on the node address and on 127.0.0.1.
    for host in [BRIDGE_IP, Ipv4Addr::LOCALHOST] {
        let np = SocketAddr::from((host, web_np));
        let r = blocking(move || fetch(np)).await?;
        ensure!(
            r.as_deref().is_some_and(|r| r.starts_with("pod-")),
            "NodePort {np}: {r:?}"
        );
    }

    // No endpoints: refused at once. Unallocated service IP: refused.
    let empty = create(&client, SERVICES, service("empty", json!({}))).await?;
    let (empty_ip, empty_np) = addr_of(&empty)?;
    // Rejected by the proxy's no-endpoint map (not merely unprogrammed): wait for its element.
    let element = format!("{} . tcp . 80 : goto reject-chain", empty_ip.ip());
    blocking(move || {
        until("the no-endpoint element", || {
            Ok(nft_table().is_some_and(|t| t.contains(&element)))
        })
    })
    .await?;
    for target in [
        empty_ip,
        SocketAddr::from((BRIDGE_IP, empty_np)),
        SocketAddr::from((Ipv4Addr::new(10, 43, 255, 254), 80)),
    ] {
        blocking(move || {
            until("a refused connection", || {
                let t = Instant::now();
                let r = fetch(target)?;
                Ok(r.is_none() && t.elapsed() < Duration::from_secs(1))
            })
        })
        .await
        .with_context(|| format!("{target} should refuse"))?;
    }

    // A restart (after a crash: the table is still there) converges to the same table.
    let before = nft_table().context("table ip k1s missing")?;
    let token2 = CancellationToken::new();
    let second = start_proxy(&client, &token2).await?;
    let after = nft_table().context("table ip k1s missing after restart")?;
    if blocks(&before) != blocks(&after) {
        let _ = std::fs::write(std::env::temp_dir().join("k1s-proxy-before.nft"), &before);
        let _ = std::fs::write(std::env::temp_dir().join("k1s-proxy-after.nft"), &after);
        bail!("restart changed the table (see k1s-proxy-before.nft / -after.nft in the temp dir)");
    }
    // The restarted proxy made the chains with its full batch: UDP still works.
    udp_reaches_both("both pods over UDP after the restart", udp_targets).await?;
    let failures = second.status().borrow().failures;
    ensure!(failures == 0, "{failures} failed syncs after the restart");
    token2.cancel();
    second.wait().await;
    ensure!(
        nft_table().is_none(),
        "a clean stop must delete table ip k1s"
    );

    // The first proxy's next sync finds its table gone, fails, and recovers with a full sync.
    // Removing pod-b from the endpoints: it stops receiving traffic.
    let current = client
        .get(SLICES, Some("default"), "web")
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let mut updated = slice("web", &[&a]);
    updated["metadata"]["resourceVersion"] =
        current.context("slice")?["metadata"]["resourceVersion"].clone();
    client
        .update(SLICES, &updated)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    blocking(move || {
        let mut streak = 0;
        until("only pod-a after removing pod-b", || {
            match fetch(web_ip)?.as_deref() {
                Some("pod-a") => streak += 1,
                _ => streak = 0,
            }
            Ok(streak >= 20)
        })
    })
    .await?;

    // The cluster DNS address reaches the DNS server's listen address, from a pod.
    let dns = std::net::TcpListener::bind(DNS_TARGET)?;
    std::thread::spawn(move || {
        for conn in dns.incoming().flatten() {
            let mut conn = conn;
            let _ = std::io::Write::write_all(&mut conn, b"dns\n");
        }
    });
    let a_holder = a.holder;
    blocking(move || {
        let from = Pod {
            name: "pod-a",
            ip: Ipv4Addr::UNSPECIFIED,
            holder: a_holder,
        };
        until("cluster DNS through its ClusterIP", || {
            Ok(fetch_from(&from, SocketAddr::from((CLUSTER_DNS, 53)))? == "dns")
        })
    })
    .await?;

    // LoadBalancer (ServiceLB style): the first service on a port gets the node IP and is
    // reachable there; a second one on the same port stays pending.
    let lb_spec = json!({"type": "LoadBalancer", "ports": [{"name": "http", "port": 8081, "targetPort": 8080}]});
    create(&client, SERVICES, service("lb1", lb_spec.clone())).await?;
    create(&client, SLICES, slice("lb1", &[&a])).await?;
    let start = Instant::now();
    loop {
        let lb1 = client
            .get(SERVICES, Some("default"), "lb1")
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        let ingress = lb1
            .as_ref()
            .map(|s| s["status"]["loadBalancer"]["ingress"][0]["ip"].clone());
        if ingress == Some(json!(BRIDGE_IP.to_string())) {
            break;
        }
        ensure!(
            start.elapsed() < DEADLINE,
            "lb1 got no ingress: {ingress:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lb2 = create(&client, SERVICES, service("lb2", lb_spec)).await?;
    let lb_addr = SocketAddr::from((BRIDGE_IP, 8081));
    blocking(move || {
        until("lb1 at the node IP", || {
            Ok(fetch(lb_addr)?.as_deref() == Some("pod-a"))
        })
    })
    .await?;
    // Once a sync has seen lb2 (its cluster IP is in the table), its status must still be empty.
    let lb2_ip = format!(
        "{} . tcp . 8081",
        lb2["spec"]["clusterIP"].as_str().context("lb2 ip")?
    );
    blocking(move || {
        until("lb2 in the table", || {
            Ok(nft_table().is_some_and(|t| t.contains(&lb2_ip)))
        })
    })
    .await?;
    let lb2 = client
        .get(SERVICES, Some("default"), "lb2")
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let ingress = lb2
        .map(|s| s["status"]["loadBalancer"]["ingress"].clone())
        .unwrap_or_default();
    ensure!(
        ingress.as_array().is_none_or(|a| a.is_empty()),
        "lb2 must stay pending: {ingress}"
    );

    // Session affinity pins a client to one pod.
    let sticky = create(
        &client,
        SERVICES,
        service(
            "sticky",
            json!({"sessionAffinity": "ClientIP", "type": "ClusterIP",
            "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}),
        ),
    )
    .await?;
    create(&client, SLICES, slice("sticky", &[&a, &b])).await?;
    let sticky_ip: Ipv4Addr = sticky["spec"]["clusterIP"]
        .as_str()
        .context("ip")?
        .parse()?;
    let sticky_addr = SocketAddr::from((sticky_ip, 80));
    blocking(move || {
        let mut first = None;
        until("the sticky service to answer", || {
            Ok(fetch(sticky_addr)?
                .inspect(|r| first = Some(r.clone()))
                .is_some())
        })?;
        for _ in 0..15 {
            let r = fetch(sticky_addr)?;
            ensure!(r == first, "affinity broken: {r:?} after {first:?}");
        }
        Ok(())
    })
    .await?;

    token.cancel();
    proxy.wait().await;
    ensure!(nft_table().is_none(), "shutdown must delete table ip k1s");
    drop(procs);
    let _ = (a.name, b.name);
    Ok(())
}
